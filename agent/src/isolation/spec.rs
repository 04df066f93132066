//! What the shim needs to start a container's init, written by the runtime as
//! `launch.json` in the container's directory.

use crate::snapshot::RootfsSpec;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which network namespace the container gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    /// A new namespace with only loopback.
    None,
    /// The host's namespace.
    Host,
    /// A new namespace joined to the agent's bridge (see `network::attach`).
    Bridge,
    /// The namespace of another container's init (`container:<name>`), by host PID.
    Join(i32),
}

impl NetMode {
    /// Whether the container gets a network namespace of its own.
    pub fn own_namespace(self) -> bool {
        matches!(self, NetMode::None | NetMode::Bridge)
    }
}

/// Whose IPC or PID namespace a container gets (`--ipc`, `--pid`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NsShare {
    /// A new namespace of its own.
    #[default]
    Private,
    /// The host's.
    Host,
    /// That of another container's init, by host PID (joined by the shim before the clone).
    Join(i32),
}

/// A file bind-mounted into the container (`/etc/hostname`, `/etc/hosts`, …).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BindFile {
    pub host: PathBuf,
    pub container: String,
}

/// One `--ulimit`: a resource limit set on the container's process before it runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rlimit {
    /// docker's name (`nofile`, `nproc`, …).
    pub name: String,
    /// `None`: unlimited (`-1`).
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

const RLIMITS: &[(&str, i32)] = &[
    ("as", libc::RLIMIT_AS as i32),
    ("core", libc::RLIMIT_CORE as i32),
    ("cpu", libc::RLIMIT_CPU as i32),
    ("data", libc::RLIMIT_DATA as i32),
    ("fsize", libc::RLIMIT_FSIZE as i32),
    ("locks", libc::RLIMIT_LOCKS as i32),
    ("memlock", libc::RLIMIT_MEMLOCK as i32),
    ("msgqueue", libc::RLIMIT_MSGQUEUE as i32),
    ("nice", libc::RLIMIT_NICE as i32),
    ("nofile", libc::RLIMIT_NOFILE as i32),
    ("nproc", libc::RLIMIT_NPROC as i32),
    ("rss", libc::RLIMIT_RSS as i32),
    ("rtprio", libc::RLIMIT_RTPRIO as i32),
    ("rttime", libc::RLIMIT_RTTIME as i32),
    ("sigpending", libc::RLIMIT_SIGPENDING as i32),
    ("stack", libc::RLIMIT_STACK as i32),
];

impl Rlimit {
    /// Parses docker's `NAME=SOFT[:HARD]` (`-1`: unlimited; HARD defaults to SOFT).
    pub fn parse(s: &str) -> Result<Rlimit, String> {
        let bad = |why: &str| format!("invalid --ulimit {s:?}: {why}");
        let (name, vals) = s.split_once('=').ok_or_else(|| bad("use NAME=SOFT[:HARD]"))?;
        if !RLIMITS.iter().any(|(n, _)| *n == name) {
            let names: Vec<&str> = RLIMITS.iter().map(|(n, _)| *n).collect();
            return Err(bad(&format!("unknown limit {name:?} (one of {})", names.join(", "))));
        }
        let num = |v: &str| match v.trim() {
            "-1" | "unlimited" => Ok(None),
            v => v.parse::<u64>().map(Some).map_err(|_| bad(&format!("{v:?} is not a number"))),
        };
        let (soft, hard) = match vals.split_once(':') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(vals)?, num(vals)?),
        };
        let lim = |v: Option<u64>| v.unwrap_or(u64::MAX);
        if lim(soft) > lim(hard) {
            return Err(bad("the soft limit is above the hard limit"));
        }
        Ok(Rlimit { name: name.to_string(), soft, hard })
    }

    /// The `RLIMIT_*` resource.
    pub fn resource(&self) -> Option<i32> {
        RLIMITS.iter().find(|(n, _)| *n == self.name).map(|(_, r)| *r)
    }
}

impl std::fmt::Display for Rlimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |x: Option<u64>| x.map(|n| n.to_string()).unwrap_or_else(|| "-1".into());
        write!(f, "{}={}:{}", self.name, v(self.soft), v(self.hard))
    }
}

/// Everything needed to start the init process of a container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub id: String,
    /// argv; `args[0]` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `user[:group]`, names or numbers, resolved inside the container.
    pub user: String,
    pub hostname: String,
    /// `--domainname` (empty: unchanged).
    #[serde(default)]
    pub domainname: String,
    /// `--shm-size` in bytes (0: 64 MiB).
    #[serde(default)]
    pub shm_size: u64,
    /// `--ulimit`s, set before the command runs.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    pub tty: bool,
    pub stdin: bool,
    pub network: NetMode,
    pub rootfs: RootfsSpec,
    pub binds: Vec<BindFile>,
    /// The container's cgroup directories, joined before the init runs.
    pub cgroup_dirs: Vec<PathBuf>,
    pub log: PathBuf,
    /// How the shim rotates `log` (`None`: it grows without bound).
    #[serde(default)]
    pub log_rotation: Option<crate::logfile::Rotation>,
    pub exit_file: PathBuf,
    /// A FIFO the agent writes the container's stdin into (with `stdin`).
    pub stdin_fifo: Option<PathBuf>,
    /// A FIFO the agent writes a tty's new sizes into (with `tty`; `shim::protocol::resize_line`).
    #[serde(default)]
    pub resize_fifo: Option<PathBuf>,
    /// Run a tiny init as PID 1 that reaps zombies and forwards signals (`--init`).
    #[serde(default)]
    pub init: bool,
    /// Validated, namespaced sysctls written before the command runs.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    /// Written to /proc/self/oom_score_adj before exec.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// How the shim wires the namespace to the bridge (NetMode::Bridge).
    #[serde(default)]
    pub bridge: Option<crate::network::attach::BridgeAttach>,
    /// Capability names kept (empty: Docker's default 14; `NONE`: none).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `-v` bind mounts.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// `--tmpfs path[:options]`.
    #[serde(default)]
    pub tmpfs: Vec<(String, String)>,
    /// `--read-only`: the root filesystem is mounted read-only.
    #[serde(default)]
    pub read_only: bool,
    /// `--security-opt seccomp=unconfined`: no seccomp filter.
    #[serde(default)]
    pub seccomp_unconfined: bool,
    /// A custom profile, compiled (`--security-opt seccomp={…}`): replaces the default.
    #[serde(default)]
    pub seccomp_programs: Option<Vec<crate::isolation::seccomp_profile::Program>>,
    /// More networks (connected with NetworkService.Connect), as eth1, eth2…
    #[serde(default)]
    pub extra_bridges: Vec<crate::network::attach::BridgeAttach>,
    /// `--privileged`: host devices in /dev, writable /sys, nothing masked.
    #[serde(default)]
    pub privileged: bool,
    /// `--device`: (host node, path in the container).
    #[serde(default)]
    pub devices: Vec<(PathBuf, String)>,
    /// A second log in the CRI format, where kubelet reads it (CreateContainer's log path);
    /// re-opened on SIGHUP to the shim (kubelet's log rotation).
    #[serde(default)]
    pub cri_log: Option<PathBuf>,
    /// The shim's own cgroup directories, joined once the container runs.
    #[serde(default)]
    pub shim_cgroup_dirs: Vec<PathBuf>,
    /// `--ipc`: the IPC namespace (and /dev/shm) it gets.
    #[serde(default)]
    pub ipc: NsShare,
    /// `--pid`: the PID namespace it gets.
    #[serde(default)]
    pub pid_ns: NsShare,
    /// `--uts host`: the host's UTS namespace (hostname and domain name left alone); else its own.
    #[serde(default)]
    pub uts: NsShare,
    /// `--cgroupns host`: the init keeps the host's cgroup namespace (no CLONE_NEWCGROUP).
    #[serde(default)]
    pub cgroupns_host: bool,
    /// `--userns`: the container's ID maps (its init starts in a new user namespace).
    #[serde(default)]
    pub userns: Option<crate::isolation::userns::IdMapping>,
    /// Instead of executing `args`, the init stays as a pod's pause process.
    #[serde(default)]
    pub pause: bool,
    /// Set no_new_privs before exec (`--security-opt no-new-privileges=false`, the CRI's
    /// `no_new_privs: false`: not).
    #[serde(default = "yes")]
    pub no_new_privs: bool,
    /// Groups added to the process's supplementary groups (`--group-add`, the CRI's
    /// supplemental_groups): numbers, or names resolved in the container's /etc/group.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Whether the groups listing the user in the container's /etc/group are added too
    /// (the CRI's supplemental_groups_policy Strict: not).
    #[serde(default = "yes")]
    pub image_groups: bool,
    /// Paths hidden in the container (bind of /dev/null on files, read-only tmpfs on dirs).
    #[serde(default = "default_masked")]
    pub masked_paths: Vec<String>,
    /// Paths made read-only in the container.
    #[serde(default = "default_readonly")]
    pub readonly_paths: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_masked() -> Vec<String> {
    super::mounts::MASKED_PATHS.iter().map(|p| p.to_string()).collect()
}

fn default_readonly() -> Vec<String> {
    super::mounts::READONLY_PATHS.iter().map(|p| p.to_string()).collect()
}

/// The propagation of a bind mount (docker's `-v …:rshared`, the CRI's `propagation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// Nothing propagates, recursively (docker's and the CRI's default).
    #[default]
    Rprivate,
    Private,
    /// Mounts propagate from the host into the container, recursively (the CRI's HOST_TO_CONTAINER).
    Rslave,
    Slave,
    /// Mounts propagate both ways, recursively (the CRI's BIDIRECTIONAL).
    Rshared,
    Shared,
}

impl Propagation {
    pub const ALL: [Propagation; 6] = [
        Propagation::Rprivate,
        Propagation::Private,
        Propagation::Rslave,
        Propagation::Slave,
        Propagation::Rshared,
        Propagation::Shared,
    ];

    /// Docker's name of it.
    pub fn name(self) -> &'static str {
        match self {
            Propagation::Rprivate => "rprivate",
            Propagation::Private => "private",
            Propagation::Rslave => "rslave",
            Propagation::Slave => "slave",
            Propagation::Rshared => "rshared",
            Propagation::Shared => "shared",
        }
    }

    pub fn parse(s: &str) -> Option<Propagation> {
        Propagation::ALL.into_iter().find(|p| p.name() == s)
    }

    /// Whether the host's mounts must reach the container (its source must then be on a
    /// shared or slave mount on the host).
    pub fn receives(self) -> bool {
        !matches!(self, Propagation::Rprivate | Propagation::Private)
    }

    /// Whether the container's mounts reach the host (its source must be on a shared mount).
    pub fn sends(self) -> bool {
        matches!(self, Propagation::Rshared | Propagation::Shared)
    }
}

/// A bind mount from the host (`-v HOST:CONTAINER[:ro]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    pub host: PathBuf,
    pub container: String,
    pub read_only: bool,
    #[serde(default)]
    pub propagation: Propagation,
}

/// What `agentd nsexec` needs to run a command inside a running container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExecLaunch {
    /// Host PID of the container's init, whose namespaces are joined.
    pub pid: i32,
    pub cgroup_dirs: Vec<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub tty: bool,
    /// The container's capability names (see LaunchSpec::capabilities).
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub seccomp_unconfined: bool,
    #[serde(default)]
    pub seccomp_programs: Option<Vec<crate::isolation::seccomp_profile::Program>>,
    /// The container runs in its own user namespace: join it too.
    #[serde(default)]
    pub userns: bool,
    /// As LaunchSpec's.
    #[serde(default = "yes")]
    pub no_new_privs: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default = "yes")]
    pub image_groups: bool,
}

/// Which seccomp filter a process gets right before `execve`.
#[derive(Clone, Copy, Debug)]
pub enum Seccomp<'a> {
    /// The default profile.
    Default,
    /// None.
    Off,
    /// A compiled custom profile.
    Programs(&'a [crate::isolation::seccomp_profile::Program]),
}

impl<'a> Seccomp<'a> {
    /// The mode for a container: unconfined wins, then a custom profile, else the default.
    pub fn of(unconfined: bool, programs: &'a Option<Vec<crate::isolation::seccomp_profile::Program>>) -> Seccomp<'a> {
        match (unconfined, programs) {
            (true, _) => Seccomp::Off,
            (false, Some(p)) => Seccomp::Programs(p),
            (false, None) => Seccomp::Default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rlimit;

    #[test]
    fn ulimits_parse_like_dockers() {
        let l = Rlimit::parse("nofile=1024:2048").unwrap();
        assert_eq!((l.soft, l.hard, l.resource()), (Some(1024), Some(2048), Some(libc::RLIMIT_NOFILE as i32)));
        assert_eq!(Rlimit::parse("nproc=64").unwrap().hard, Some(64), "HARD defaults to SOFT");
        let u = Rlimit::parse("core=-1").unwrap();
        assert_eq!((u.soft, u.hard), (None, None));
        assert_eq!(u.to_string(), "core=-1:-1");
        assert!(Rlimit::parse("memlock=-1:1").unwrap_err().contains("soft limit is above"));
        assert!(Rlimit::parse("nofiles=1").unwrap_err().contains("unknown limit \"nofiles\""));
        assert!(Rlimit::parse("nofile").unwrap_err().contains("NAME=SOFT[:HARD]"));
        assert!(Rlimit::parse("nofile=x").unwrap_err().contains("\"x\" is not a number"));
    }
}
