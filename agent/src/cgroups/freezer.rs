//! `pause`/`unpause`: the freezer. On v1 (and this host's hybrid layout) the `freezer`
//! hierarchy's `freezer.state` (`FROZEN`/`THAWED`, with `FREEZING` while the kernel gets
//! every task to stop); on v2 `cgroup.freeze` (`1`/`0`), done when `cgroup.events` says
//! `frozen 1`. Like runc, a freeze waits (bounded) until the kernel reports it complete, so a
//! paused container is known not to run when the call returns.

use super::{at, CgroupError, Cgroups, Layout};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a freeze may take before it is undone and reported.
const FREEZE_DEADLINE: Duration = Duration::from_secs(10);

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroups {
    fn freezer(&self, id: &str) -> Result<Freezer, CgroupError> {
        if self.host.layout == Layout::V2 {
            let h = self.host.hierarchies.first().ok_or(CgroupError::NoCgroups)?;
            return Ok(Freezer::V2(self.path_in(&h.mount_point, id)));
        }
        match self.host.hierarchy_of("freezer") {
            Some(h) => Ok(Freezer::V1(self.path_in(&h.mount_point, id))),
            None => Err(CgroupError::NoController("freezer.state".into())),
        }
    }

    /// Freezes (`true`) or thaws every process of the container's cgroup; returns once the
    /// kernel reports the state reached.
    pub fn freeze(&self, id: &str, frozen: bool) -> Result<(), CgroupError> {
        match self.freezer(id)? {
            Freezer::V1(dir) => {
                let file = dir.join("freezer.state");
                let want = if frozen { "FROZEN" } else { "THAWED" };
                write(&file, want)?;
                let reached = wait_for(|| Ok(std::fs::read_to_string(&file).map_err(at(&file))?.trim() == want));
                self.settle(id, frozen, reached, &file)
            }
            Freezer::V2(dir) => {
                let file = dir.join("cgroup.freeze");
                write(&file, if frozen { "1" } else { "0" })?;
                let events = dir.join("cgroup.events");
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                let reached = wait_for(|| {
                    let text = std::fs::read_to_string(&events).map_err(at(&events))?;
                    Ok(text.lines().any(|l| l.trim() == want))
                });
                self.settle(id, frozen, reached, &file)
            }
        }
    }

    /// A freeze that did not complete is undone (a half-frozen container is worse than a
    /// running one) and reported; a thaw's error is reported as is.
    fn settle(
        &self,
        id: &str,
        frozen: bool,
        reached: Result<bool, CgroupError>,
        file: &std::path::Path,
    ) -> Result<(), CgroupError> {
        match reached {
            Ok(true) => Ok(()),
            Ok(false) if frozen => {
                let _ = self.freeze(id, false);
                Err(CgroupError::Io {
                    path: file.to_path_buf(),
                    err: std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the freeze did not complete in 10 s (thawed again)",
                    ),
                })
            }
            Ok(false) => Err(CgroupError::Io {
                path: file.to_path_buf(),
                err: std::io::Error::new(std::io::ErrorKind::TimedOut, "the thaw did not complete in 10 s"),
            }),
            Err(e) => {
                if frozen {
                    let _ = self.freeze(id, false);
                }
                Err(e)
            }
        }
    }

    /// Whether the container's cgroup is frozen now (read from the kernel).
    pub fn is_frozen(&self, id: &str) -> bool {
        match self.freezer(id) {
            Ok(Freezer::V1(dir)) => {
                std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
            }
            Ok(Freezer::V2(dir)) => std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1"),
            Err(_) => false,
        }
    }
}

fn write(file: &std::path::Path, v: &str) -> Result<(), CgroupError> {
    std::fs::write(file, v).map_err(|err| CgroupError::Limit { file: file.to_path_buf(), value: v.into(), err })
}

/// Polls `done` until it is true or the deadline passes (the kernel offers no notification
/// for v1's FREEZING → FROZEN; v2's cgroup.events could be watched, a few reads suffice).
fn wait_for(mut done: impl FnMut() -> Result<bool, CgroupError>) -> Result<bool, CgroupError> {
    let deadline = Instant::now() + FREEZE_DEADLINE;
    let mut pause = Duration::from_micros(200);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CgroupHost, Cgroups};
    use std::path::Path;

    fn v2(root: &Path) -> Cgroups {
        let mi = format!("40 1 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw\n", root.display());
        std::fs::write(root.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        let host =
            CgroupHost::from_mountinfo(&mi, |p| std::fs::read_to_string(p.join("cgroup.controllers")).ok()).unwrap();
        Cgroups::new(host, "inst")
    }

    #[test]
    fn v2_freeze_writes_cgroup_freeze_and_waits_for_the_event() {
        let tree = tempfile::tempdir().unwrap();
        let cg = v2(tree.path());
        cg.create("c1").unwrap();
        let dir = tree.path().join("inst/c1");
        // The kernel's answer, as a fake: frozen already reported.
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        cg.freeze("c1", true).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "1");
        assert!(cg.is_frozen("c1"));
        std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        cg.freeze("c1", false).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("cgroup.freeze")).unwrap(), "0");
        assert!(!cg.is_frozen("c1"));
    }

    #[test]
    fn v2_freeze_of_a_missing_cgroup_names_the_file() {
        let tree = tempfile::tempdir().unwrap();
        let cg = v2(tree.path());
        let e = cg.freeze("gone", true).unwrap_err().to_string();
        assert!(e.contains("inst/gone/cgroup.freeze"), "{e}");
    }

    #[test]
    fn v1_without_a_freezer_is_refused_naming_the_file() {
        let mi = "31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n";
        let cg = Cgroups::new(CgroupHost::from_mountinfo(mi, |_| None).unwrap(), "inst");
        let e = cg.freeze("c1", true).unwrap_err().to_string();
        assert!(e.contains("freezer.state"), "{e}");
    }
}
