//! One cgroup per container under the instance's parent (`<instance>/<id>`), on cgroup v1,
//! v2, or this host's hybrid layout (v1 controllers plus a cgroup2 tree holding only
//! hugetlb). The only module that writes under `/sys/fs/cgroup`.
//!
//! Why not cgroups-rs here: it hard-codes `/sys/fs/cgroup` as the v2 mount point, so the
//! v2 code path could not be unit-tested against a fake tree on this (hybrid) host; what
//! the lifecycle needs (create, join, kill, OOM flag, remove) is a few file writes.

pub mod blkio;
pub mod devfilter;
pub mod freezer;
pub mod limits;
pub mod ops;
pub mod parent;
mod rt;
pub mod stats;

pub use limits::Resources;
pub use ops::CgroupOps;

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the host's cgroup hierarchies are arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Layout {
    /// Only v1 hierarchies.
    V1,
    /// One cgroup2 tree at the root holding every controller.
    V2,
    /// v1 controllers plus a cgroup2 tree (systemd's "hybrid"): v1 is what limits.
    Hybrid,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::V1 => "v1",
            Layout::V2 => "v2",
            Layout::Hybrid => "hybrid",
        })
    }
}

/// A mounted hierarchy that the agent uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controller names (`cpu,cpuacct`, `memory`, `name=systemd`; for v2 the list of
    /// `cgroup.controllers`).
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
}

/// The host's cgroup layout, read from mountinfo at start-up.
#[derive(Clone, Debug)]
pub struct CgroupHost {
    pub layout: Layout,
    /// The hierarchies a container cgroup is created in (all v1 ones, or the v2 root).
    pub hierarchies: Vec<Hierarchy>,
    /// The cgroup2 mount of a hybrid host (not limited by us).
    pub unified: Option<PathBuf>,
}

/// Errors of cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup hierarchy is mounted (looked in /proc/self/mountinfo)")]
    NoCgroups,
    #[error("cgroup {path}: {err}")]
    Io { path: PathBuf, err: io::Error },
    #[error("cgroup {0} still has processes after being killed")]
    Busy(PathBuf),
    #[error("cannot enforce this limit here: the kernel offers no cgroup file {0} on this host")]
    NoController(String),
    #[error("setting {value} in {file}: {err}")]
    Limit { file: PathBuf, value: String, err: io::Error },
    /// What this host's kernel or cgroup version cannot do (FailedPrecondition), said whole.
    #[error("{0}")]
    Unsupported(String),
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |err| CgroupError::Io { path: path.to_path_buf(), err }
}

impl CgroupHost {
    /// Reads this process's mountinfo.
    pub fn detect() -> Result<CgroupHost, CgroupError> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").map_err(at(Path::new("/proc/self/mountinfo")))?;
        Self::from_mountinfo(&mi, |p| std::fs::read_to_string(p.join("cgroup.controllers")).ok())
    }

    /// Parses mountinfo text; `v2_controllers` reads a cgroup2 mount's controller list.
    pub fn from_mountinfo(
        mountinfo: &str,
        v2_controllers: impl Fn(&Path) -> Option<String>,
    ) -> Result<CgroupHost, CgroupError> {
        let mut v1: Vec<Hierarchy> = Vec::new();
        let mut v2: Option<PathBuf> = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = match left.split(' ').nth(4) {
                Some(m) => PathBuf::from(m.replace("\\040", " ")),
                None => continue,
            };
            let mut r = right.split(' ');
            let fstype = r.next().unwrap_or("");
            let _source = r.next();
            let opts = r.next().unwrap_or("");
            match fstype {
                "cgroup" => {
                    let controllers: Vec<String> = opts
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "relatime"
                                    | "xattr"
                                    | "clone_children"
                                    | "noprefix"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(str::to_string)
                        .collect();
                    if !controllers.is_empty() && !v1.iter().any(|h| h.mount_point == mount_point) {
                        v1.push(Hierarchy { controllers, mount_point });
                    }
                }
                "cgroup2" if v2.is_none() => v2 = Some(mount_point),
                _ => {}
            }
        }
        match (v1.is_empty(), v2) {
            (true, None) => Err(CgroupError::NoCgroups),
            (true, Some(root)) => {
                let controllers = v2_controllers(&root)
                    .map(|s| s.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default();
                Ok(CgroupHost {
                    layout: Layout::V2,
                    hierarchies: vec![Hierarchy { controllers, mount_point: root }],
                    unified: None,
                })
            }
            (false, unified) => Ok(CgroupHost {
                layout: if unified.is_some() { Layout::Hybrid } else { Layout::V1 },
                hierarchies: v1,
                unified,
            }),
        }
    }

    /// Controller name → mount point, like `lssubsys -m`.
    pub fn controllers(&self) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for h in &self.hierarchies {
            for c in &h.controllers {
                out.push((c.clone(), h.mount_point.clone()));
            }
        }
        if let Some(u) = &self.unified {
            out.push(("unified".into(), u.clone()));
        }
        out
    }

    fn hierarchy_of(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.controllers.iter().any(|c| c == controller))
    }
}

/// The cgroups of one agent instance: `<hierarchy>/<instance>/<id>`.
#[derive(Clone, Debug)]
pub struct Cgroups {
    host: CgroupHost,
    parent: String,
}

impl Cgroups {
    /// Manages cgroups under `<instance>` in each hierarchy of `host`.
    pub fn new(host: CgroupHost, instance: &str) -> Cgroups {
        Cgroups { host, parent: instance.to_string() }
    }

    /// The host layout.
    pub fn host(&self) -> &CgroupHost {
        &self.host
    }

    /// The path of a container's cgroup relative to each hierarchy root. `id` is relative
    /// to the instance's parent, or absolute (from the hierarchy's root: `--cgroup-parent
    /// /mygroup`).
    pub fn relative(&self, id: &str) -> String {
        if id.starts_with('/') {
            id.to_string()
        } else {
            format!("/{}/{}", self.parent, id)
        }
    }

    /// `id`'s directory in the hierarchy mounted at `mount` (see [`Cgroups::relative`]).
    pub fn path_in(&self, mount: &Path, id: &str) -> PathBuf {
        match id.strip_prefix('/') {
            Some(abs) => mount.join(abs),
            None => mount.join(&self.parent).join(id),
        }
    }

    /// The container's directory in every hierarchy.
    pub fn dirs(&self, id: &str) -> Vec<PathBuf> {
        self.host.hierarchies.iter().map(|h| self.path_in(&h.mount_point, id)).collect()
    }

    /// Creates the container's cgroup (and the instance parent, and any missing parent
    /// of a `--cgroup-parent`) everywhere. A failure removes what it made.
    pub fn create(&self, id: &str) -> Result<Vec<PathBuf>, CgroupError> {
        let mut made = Vec::new();
        let res = (|| {
            for h in &self.host.hierarchies {
                let dir = self.path_in(&h.mount_point, id);
                let is_cpuset = self.host.layout != Layout::V2 && h.controllers.iter().any(|c| c == "cpuset");
                // The ancestors below the mount, top down, each made (and given cpus/mems) if missing.
                let mut ancestors: Vec<&Path> = dir.ancestors().skip(1).take_while(|a| *a != h.mount_point).collect();
                ancestors.reverse();
                for a in &ancestors {
                    if !a.exists() {
                        match std::fs::create_dir(a) {
                            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(at(a)(e)),
                            _ => {}
                        }
                    }
                    // Also a parent someone else made (`--cgroup-parent`) without cpus/mems.
                    if is_cpuset {
                        inherit_cpuset(a)?;
                    }
                }
                if self.host.layout == Layout::V2 {
                    if let Some(parent) = dir.parent() {
                        enable_subtree(&h.mount_point, parent, &h.controllers);
                    }
                }
                std::fs::create_dir(&dir).map_err(at(&dir))?;
                made.push(dir.clone());
                if is_cpuset {
                    inherit_cpuset(&dir)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = res {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
            return Err(e);
        }
        Ok(made)
    }

    /// Whether a device cgroup can restrict which device nodes containers open: v1's
    /// `devices` controller, or on pure v2 a device program (`devfilter.rs`) this kernel takes.
    pub fn has_device_controller(&self) -> bool {
        self.host.hierarchy_of("devices").is_some() || (self.host.layout == Layout::V2 && devfilter::supported())
    }

    /// Lets the container open only the devices `allow` names (device cgroup rules like
    /// `c 1:3 rwm`); `None` leaves every device allowed (privileged). v1: devices.deny and
    /// devices.allow; pure v2: a device program attached to its cgroup. A no-op without either.
    pub fn restrict_devices(&self, id: &str, allow: Option<&[String]>) -> Result<(), CgroupError> {
        if let (Layout::V2, Some(allow), Some(h)) = (self.host.layout, allow, self.host.hierarchies.first()) {
            if !devfilter::supported() {
                return Ok(());
            }
            let dir = self.path_in(&h.mount_point, id);
            return devfilter::attach(&dir, allow).map_err(at(&dir));
        }
        let (Some(h), Some(allow)) = (self.host.hierarchy_of("devices"), allow) else { return Ok(()) };
        let dir = self.path_in(&h.mount_point, id);
        let write = |file: &str, v: &str| {
            let p = dir.join(file);
            std::fs::write(&p, v).map_err(at(&p))
        };
        write("devices.deny", "a")?;
        for r in allow {
            write("devices.allow", r)?;
        }
        Ok(())
    }

    /// Moves process `pid` into the container's cgroup in every hierarchy.
    pub fn join(dirs: &[PathBuf], pid: i32) -> Result<(), CgroupError> {
        for d in dirs {
            let f = d.join("cgroup.procs");
            std::fs::write(&f, pid.to_string()).map_err(at(&f))?;
        }
        Ok(())
    }

    /// Whether the kernel OOM-killed a process of the container.
    pub fn oom_killed(&self, id: &str) -> bool {
        let file = match self.host.layout {
            Layout::V2 => self.host.hierarchies.first().map(|h| self.path_in(&h.mount_point, id).join("memory.events")),
            _ => self.host.hierarchy_of("memory").map(|h| self.path_in(&h.mount_point, id).join("memory.oom_control")),
        };
        let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
            return false;
        };
        text.lines()
            .any(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse::<u64>().ok()).is_some_and(|n| n > 0))
    }

    /// PIDs in the container's cgroup.
    pub fn pids(&self, id: &str) -> Vec<i32> {
        let mut out = Vec::new();
        for d in self.dirs(id) {
            if let Ok(s) = std::fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
                break;
            }
        }
        out
    }

    /// SIGKILLs every process left in the container's cgroup.
    pub fn kill_all(&self, id: &str) {
        for pid in self.pids(id) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Removes the container's cgroup everywhere, killing stragglers; absent is fine.
    pub fn remove(&self, id: &str) -> Result<(), CgroupError> {
        let deadline = Instant::now() + Duration::from_secs(5);
        for d in self.dirs(id) {
            loop {
                match std::fs::remove_dir(&d) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                        if Instant::now() > deadline {
                            return Err(CgroupError::Busy(d));
                        }
                        self.kill_all(id);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(at(&d)(e)),
                }
            }
        }
        Ok(())
    }

    /// The names of the instance's direct children, in every hierarchy.
    pub fn children(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        for h in &self.host.hierarchies {
            if let Ok(rd) = std::fs::read_dir(h.mount_point.join(&self.parent)) {
                for e in rd.flatten().filter(|e| e.path().is_dir()) {
                    out.insert(e.file_name().to_string_lossy().into_owned());
                }
            }
        }
        out.into_iter().collect()
    }

    /// Removes the instance's parent directories if they are empty (at shutdown).
    pub fn remove_parent(&self) {
        for h in &self.host.hierarchies {
            let _ = std::fs::remove_dir(h.mount_point.join(&self.parent));
        }
    }
}

/// The host's memory in bytes (MemTotal), the limit of an unlimited cgroup.
pub fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// A new v1 cpuset cgroup starts with empty cpus/mems; copy the parent's.
pub(crate) fn inherit_cpuset(dir: &Path) -> Result<(), CgroupError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if cur.trim().is_empty() {
            let v = std::fs::read_to_string(parent.join(f)).map_err(at(&parent.join(f)))?;
            std::fs::write(dir.join(f), v.trim()).map_err(at(&dir.join(f)))?;
        }
    }
    Ok(())
}

/// On v2, controllers must be enabled in each ancestor's subtree_control to reach a child:
/// `root` and every directory below it down to `parent`, top down.
pub(crate) fn enable_subtree(root: &Path, parent: &Path, controllers: &[String]) {
    let mut dirs: Vec<&Path> = parent.ancestors().take_while(|a| a.starts_with(root)).collect();
    dirs.reverse();
    for dir in dirs {
        for c in controllers {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
32 25 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpu,cpuacct
33 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
";

    #[test]
    fn detects_hybrid() {
        let h = CgroupHost::from_mountinfo(HYBRID, |_| None).unwrap();
        assert_eq!(h.layout, Layout::Hybrid);
        assert_eq!(h.unified.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(h.hierarchies.len(), 4);
        let cpu = h.hierarchy_of("cpuacct").unwrap();
        assert_eq!(cpu.mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert!(h.hierarchy_of("name=systemd").is_some());
    }

    #[test]
    fn detects_pure_v2_and_manages_a_fake_tree() {
        let tree = tempfile::tempdir().unwrap();
        let root = tree.path().to_path_buf();
        let mi = format!("40 1 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n", root.display());
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let host =
            CgroupHost::from_mountinfo(&mi, |p| std::fs::read_to_string(p.join("cgroup.controllers")).ok()).unwrap();
        assert_eq!(host.layout, Layout::V2);
        assert_eq!(host.hierarchies[0].controllers, vec!["cpu", "memory", "pids"]);
        let cg = Cgroups::new(host, "inst");
        let dirs = cg.create("c1").unwrap();
        assert_eq!(dirs, vec![root.join("inst/c1")]);
        // The fake tree records the controllers enabled for the child.
        assert_eq!(std::fs::read_to_string(root.join("inst/cgroup.subtree_control")).unwrap(), "+pids");
        std::fs::write(root.join("inst/c1/memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        assert!(cg.oom_killed("c1"));
        std::fs::remove_file(root.join("inst/c1/memory.events")).unwrap();
        std::fs::remove_file(root.join("inst/cgroup.subtree_control")).unwrap();
        cg.remove("c1").unwrap();
        assert!(!root.join("inst/c1").exists());
        cg.remove_parent();
        assert!(!root.join("inst").exists());
    }

    #[test]
    fn no_cgroups_is_an_error() {
        assert!(matches!(CgroupHost::from_mountinfo("", |_| None), Err(CgroupError::NoCgroups)));
    }
}
