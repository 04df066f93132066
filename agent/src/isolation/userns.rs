//! User namespaces (`--userns`): which host IDs a container's IDs map to, taken from the
//! subordinate ID ranges of `/etc/subuid` and `/etc/subgid`, and writing those maps.
//!
//! Two modes, like Docker's `--userns-remap` and Podman's `--userns=auto`:
//! - `remap`: every remapped container shares the first `size` IDs of the range (slot 0);
//! - `auto`: each container gets a slot of its own (1, 2, …), so two containers never
//!   share a host ID.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One line of a uid_map/gid_map: `size` IDs from `container` map to `host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// A container's uid and gid maps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

/// Why a `--userns` setting is refused, or a user namespace cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    #[error("invalid --userns {0:?}: use host, remap or auto")]
    Mode(String),
    #[error("[userns] default {0:?}: use host, remap or auto")]
    DefaultMode(String),
    #[error("[userns] layers {0:?}: use auto, idmap or copy")]
    Layers(String),
    #[error("[userns] size {0}: at least 1024 IDs per container")]
    Size(u32),
    #[error("[userns] user is empty")]
    NoUser,
    #[error("write {path}: {source}")]
    WriteMap { path: String, source: std::io::Error },
    #[error("{step} in the user namespace: {}", .source.desc())]
    BecomeRoot { step: &'static str, source: nix::Error },
    #[error("{what}: {source}")]
    Helper { what: &'static str, source: nix::Error },
    #[error("the kernel refused a new user namespace (unshare CLONE_NEWUSER)")]
    Refused,
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
}

/// The ID the kernel shows for an ID with no mapping (`/proc/sys/kernel/overflowuid`).
pub const OVERFLOW_ID: u32 = 65534;

fn to_host(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find(|r| id >= r.container && id - r.container < r.size).map(|r| r.host + (id - r.container))
}

fn to_container(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges.iter().find(|r| id >= r.host && id - r.host < r.size).map(|r| r.container + (id - r.host))
}

fn map_text(ranges: &[IdRange]) -> String {
    ranges.iter().map(|r| format!("{} {} {}\n", r.container, r.host, r.size)).collect()
}

impl IdMapping {
    /// The host uid of container uid `id`.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        to_host(&self.uids, id)
    }
    /// The host gid of container gid `id`.
    pub fn host_gid(&self, id: u32) -> Option<u32> {
        to_host(&self.gids, id)
    }
    /// The container uid of host uid `id` (`None`: not mapped).
    pub fn container_uid(&self, id: u32) -> Option<u32> {
        to_container(&self.uids, id)
    }
    /// The container gid of host gid `id`.
    pub fn container_gid(&self, id: u32) -> Option<u32> {
        to_container(&self.gids, id)
    }
    /// The host (uid, gid) of the container's root.
    pub fn root(&self) -> (u32, u32) {
        (self.host_uid(0).unwrap_or(OVERFLOW_ID), self.host_gid(0).unwrap_or(OVERFLOW_ID))
    }
    /// Shifts a host-side (uid, gid) of a file into the mapping (a layer's root-owned file
    /// becomes the container root's). IDs beyond the mapping become the overflow ID.
    pub fn shift_in(&self, uid: u32, gid: u32) -> (u32, u32) {
        (self.host_uid(uid).unwrap_or(OVERFLOW_ID), self.host_gid(gid).unwrap_or(OVERFLOW_ID))
    }
    /// A short name for directories of things made for this mapping (shifted layers).
    pub fn key(&self) -> String {
        let part = |v: &[IdRange]| {
            v.iter().map(|r| format!("{}-{}-{}", r.container, r.host, r.size)).collect::<Vec<_>>().join("_")
        };
        format!("u{}.g{}", part(&self.uids), part(&self.gids))
    }

    /// Writes `/proc/PID/uid_map` and `gid_map` of a process in a new user namespace (from
    /// its privileged parent, so `setgroups` stays allowed inside).
    pub fn write(&self, pid: i32) -> Result<(), UsernsError> {
        for (file, ranges) in [("uid_map", &self.uids), ("gid_map", &self.gids)] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, map_text(ranges)).map_err(|source| UsernsError::WriteMap { path, source })?;
        }
        Ok(())
    }
}

/// Becomes uid/gid 0 of the user namespace this process just entered (whose maps are
/// written): until then it is the host's root, which the namespace does not map, and could
/// not even create a file.
pub fn become_root() -> Result<(), UsernsError> {
    let failed = |step| move |source| UsernsError::BecomeRoot { step, source };
    nix::unistd::setgroups(&[]).map_err(failed("setgroups"))?;
    let g = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(g, g, g).map_err(failed("setgid 0"))?;
    let u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(u, u, u).map_err(failed("setuid 0"))
}

/// `[userns]` in the config file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsernsConfig {
    /// The user (name or number) whose subordinate IDs hold remapped containers.
    pub user: String,
    pub subuid: PathBuf,
    pub subgid: PathBuf,
    /// What a container gets without `--userns`: `host`, `remap` or `auto`.
    pub default: String,
    /// IDs per container (a slot).
    pub size: u32,
    /// How image layers are shown with the container's owners: `auto` (idmapped mounts,
    /// else a shifted copy), `idmap`, or `copy`.
    pub layers: String,
}

impl Default for UsernsConfig {
    fn default() -> Self {
        UsernsConfig {
            user: "agentd".into(),
            subuid: "/etc/subuid".into(),
            subgid: "/etc/subgid".into(),
            default: "host".into(),
            size: 65536,
            layers: "auto".into(),
        }
    }
}

/// A container's `--userns` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Host,
    Remap,
    Auto,
}

impl Mode {
    /// Parses a `--userns` value (`""`: the agent's default).
    pub fn parse(s: &str) -> Result<Mode, UsernsError> {
        match s {
            "host" => Ok(Mode::Host),
            "remap" => Ok(Mode::Remap),
            "auto" => Ok(Mode::Auto),
            _ => Err(UsernsError::Mode(s.into())),
        }
    }
}

impl UsernsConfig {
    /// Checks the values (the files are read when a container needs them).
    pub fn validate(&self) -> Result<(), UsernsError> {
        Mode::parse(&self.default).map_err(|_| UsernsError::DefaultMode(self.default.clone()))?;
        if !matches!(self.layers.as_str(), "auto" | "idmap" | "copy") {
            return Err(UsernsError::Layers(self.layers.clone()));
        }
        if self.size < 1024 {
            return Err(UsernsError::Size(self.size));
        }
        if self.user.is_empty() {
            return Err(UsernsError::NoUser);
        }
        Ok(())
    }

    /// The effective mode of a container asking for `asked` (`""`: the default).
    pub fn mode(&self, asked: &str) -> Result<Mode, UsernsError> {
        Mode::parse(if asked.is_empty() { &self.default } else { asked })
    }

    /// The mapping of slot `slot` (0: `remap`), or why there is none.
    pub fn mapping(&self, slot: u32) -> Result<IdMapping, MapError> {
        let uid = nix::unistd::User::from_name(&self.user).ok().flatten().map(|u| u.uid.as_raw());
        let gid = nix::unistd::Group::from_name(&self.user).ok().flatten().map(|g| g.gid.as_raw());
        let read = |p: &PathBuf, id: Option<u32>| {
            std::fs::read_to_string(p).map(|t| subid_ranges(&t, &self.user, id)).map_err(|e| {
                MapError::NoRange(format!(
                    "--userns needs subordinate IDs for user {:?} from {}: {e}",
                    self.user,
                    p.display()
                ))
            })
        };
        let pick = |ranges: &[(u32, u32)], file: &PathBuf| {
            take(ranges, u64::from(slot) * u64::from(self.size), self.size).ok_or_else(|| {
                let total: u64 = ranges.iter().map(|r| u64::from(r.1)).sum();
                if total == 0 {
                    MapError::NoRange(format!(
                        "--userns needs subordinate IDs for user {:?} in {}: none there (add a line like \
                         \"{}:100000:{}\")",
                        self.user,
                        file.display(),
                        self.user,
                        self.size
                    ))
                } else {
                    MapError::Exhausted(format!(
                        "no free ID range for this container: {:?} has {total} subordinate IDs in {}, and \
                         slot {slot} of {} is beyond them (--userns=auto gives each container its own slot; \
                         slot 0 is --userns=remap's)",
                        self.user,
                        file.display(),
                        self.size
                    ))
                }
            })
        };
        let uids = pick(&read(&self.subuid, uid)?, &self.subuid)?;
        let gids = pick(&read(&self.subgid, gid)?, &self.subgid)?;
        Ok(IdMapping { uids, gids })
    }
}

/// Why a container gets no ID range.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The user has no subordinate IDs (or the file is unreadable): a setup problem.
    #[error("{0}")]
    NoRange(String),
    /// Every slot of the range is taken.
    #[error("{0}")]
    Exhausted(String),
}

/// The (start, count) ranges of `user` (or its number) in a subuid/subgid file.
pub fn subid_ranges(text: &str, user: &str, id: Option<u32>) -> Vec<(u32, u32)> {
    let idstr = id.map(|i| i.to_string());
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let mut f = l.split(':');
            let (who, start, count) = (f.next()?, f.next()?.parse::<u32>().ok()?, f.next()?.parse::<u32>().ok()?);
            let mine = who == user || idstr.as_deref() == Some(who);
            // A range reaching past the 32-bit ID space is invalid: skip it.
            (mine && count > 0 && u64::from(start) + u64::from(count) <= u64::from(u32::MAX)).then_some((start, count))
        })
        .collect()
}

/// Container IDs 0..size mapped onto the IDs `offset..offset+size` of the concatenated
/// `ranges`; `None` when they do not hold that many.
pub fn take(ranges: &[(u32, u32)], offset: u64, size: u32) -> Option<Vec<IdRange>> {
    let mut out = Vec::new();
    let mut skip = offset;
    let mut need = u64::from(size);
    let mut container = 0u64;
    for &(start, count) in ranges {
        if need == 0 {
            break;
        }
        let count = u64::from(count);
        if skip >= count {
            skip -= count;
            continue;
        }
        let n = (count - skip).min(need);
        out.push(IdRange { container: container as u32, host: (u64::from(start) + skip) as u32, size: n as u32 });
        container += n;
        need -= n;
        skip = 0;
    }
    (need == 0).then_some(out)
}

/// A throwaway process in a new user namespace with `map`, for building idmapped mounts
/// before any container exists (the probe). Dropping it ends the process.
pub struct ScratchUserns {
    pid: i32,
    release: Option<std::os::fd::OwnedFd>,
    ns: std::os::fd::OwnedFd,
}

impl ScratchUserns {
    /// Forks a child that unshares a user namespace and waits; writes `map` for it.
    pub fn new(map: &IdMapping) -> Result<ScratchUserns, UsernsError> {
        let helper = |what| move |source| UsernsError::Helper { what, source };
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(helper("pipe"))?;
        let (hold_r, hold_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(helper("pipe"))?;
        // SAFETY: the child only makes async-signal-safe syscalls (unshare, write, read,
        // _exit), so forking a multi-threaded process is sound.
        match unsafe { nix::unistd::fork() } {
            Err(e) => Err(helper("fork")(e)),
            Ok(nix::unistd::ForkResult::Child) => {
                // SAFETY: raw syscalls on descriptors this child owns, then _exit.
                unsafe {
                    let ok = libc::unshare(libc::CLONE_NEWUSER) == 0;
                    libc::write(std::os::fd::AsRawFd::as_raw_fd(&ready_w), [u8::from(ok)].as_ptr().cast(), 1);
                    let mut b = [0u8; 1];
                    libc::close(std::os::fd::AsRawFd::as_raw_fd(&hold_w));
                    libc::read(std::os::fd::AsRawFd::as_raw_fd(&hold_r), b.as_mut_ptr().cast(), 1);
                    libc::_exit(0)
                }
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => {
                drop(ready_w);
                drop(hold_r);
                let pid = child.as_raw();
                let mut me = ScratchUserns { pid, release: Some(hold_w), ns: ready_r };
                let mut b = [0u8; 1];
                let n = nix::unistd::read(&me.ns, &mut b).map_err(helper("user namespace helper"))?;
                if n != 1 || b[0] != 1 {
                    return Err(UsernsError::Refused);
                }
                map.write(pid)?;
                let path = format!("/proc/{pid}/ns/user");
                me.ns = std::fs::File::open(&path).map_err(|source| UsernsError::Open { path, source })?.into();
                Ok(me)
            }
        }
    }

    /// The user namespace.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.ns)
    }
}

impl Drop for ScratchUserns {
    fn drop(&mut self) {
        self.release.take();
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_a_user_by_name_or_number() {
        let t = "# comment\nagentd:100000:65536\nother:200000:65536\n1234:300000:10\nagentd:400000:0\nagentd:x:1\n";
        assert_eq!(subid_ranges(t, "agentd", None), vec![(100000, 65536)]);
        assert_eq!(subid_ranges(t, "bob", Some(1234)), vec![(300000, 10)]);
        assert!(subid_ranges(t, "nobody", None).is_empty());
        assert!(subid_ranges("a:4294967295:2\n", "a", None).is_empty());
    }

    #[test]
    fn slots_span_ranges() {
        let r = [(100000, 1000), (500000, 3000)];
        assert_eq!(take(&r, 0, 1000), Some(vec![IdRange { container: 0, host: 100000, size: 1000 }]));
        assert_eq!(
            take(&r, 500, 1000),
            Some(vec![
                IdRange { container: 0, host: 100500, size: 500 },
                IdRange { container: 500, host: 500000, size: 500 }
            ])
        );
        assert_eq!(take(&r, 3000, 1000), Some(vec![IdRange { container: 0, host: 502000, size: 1000 }]));
        assert_eq!(take(&r, 3001, 1000), None);
    }

    #[test]
    fn mapping_translates_both_ways() {
        let m = IdMapping {
            uids: vec![
                IdRange { container: 0, host: 100000, size: 10 },
                IdRange { container: 10, host: 700000, size: 5 },
            ],
            gids: vec![IdRange { container: 0, host: 200000, size: 65536 }],
        };
        assert_eq!(m.root(), (100000, 200000));
        assert_eq!(m.host_uid(12), Some(700002));
        assert_eq!(m.container_uid(700004), Some(14));
        assert_eq!(m.container_uid(5), None);
        assert_eq!(m.shift_in(15, 1), (OVERFLOW_ID, 200001));
        assert_eq!(map_text(&m.uids), "0 100000 10\n10 700000 5\n");
    }

    #[test]
    fn config_mapping_errors_name_the_file_and_user() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("subuid"), "agentd-t:100000:131072\n").unwrap();
        std::fs::write(d.path().join("subgid"), "").unwrap();
        let c = UsernsConfig {
            user: "agentd-t".into(),
            subuid: d.path().join("subuid"),
            subgid: d.path().join("subgid"),
            ..Default::default()
        };
        let e = c.mapping(0).unwrap_err().to_string();
        assert!(e.contains("agentd-t") && e.contains("subgid") && e.contains("none there"), "{e}");
        std::fs::write(d.path().join("subgid"), "agentd-t:100000:131072\n").unwrap();
        assert_eq!(c.mapping(1).unwrap().root(), (165536, 165536));
        let e = c.mapping(2).unwrap_err().to_string();
        assert!(e.contains("131072 subordinate IDs") && e.contains("slot 2"), "{e}");
        assert!(c.validate().is_ok());
        let e = UsernsConfig { default: "maybe".into(), ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "[userns] default \"maybe\": use host, remap or auto");
        assert_eq!(
            Mode::parse("sideways").unwrap_err().to_string(),
            "invalid --userns \"sideways\": use host, remap or auto"
        );
    }
}
