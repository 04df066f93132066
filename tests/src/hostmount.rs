//! Host mounts for propagation tests: a tmpfs on a fresh directory, shared (as kubelet
//! keeps its volume directories) or private, unmounted with everything below it on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct HostMount(tempfile::TempDir);

impl HostMount {
    /// `propagation`: `--make-shared`, `--make-private`, …
    pub fn new(propagation: &str) -> HostMount {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().to_str().expect("utf-8 path").to_string();
        for args in [&["-t", "tmpfs", "tmpfs", &p][..], &[propagation, &p]] {
            let st = Command::new("mount").args(args).status().expect("mount");
            assert!(st.success(), "mount {args:?}");
        }
        HostMount(d)
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// Mounts a tmpfs on `sub` below it, from the host; returns its path.
    pub fn mount_below(&self, sub: &str) -> PathBuf {
        let p = self.path().join(sub);
        std::fs::create_dir_all(&p).expect("mkdir");
        let st = Command::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(&p).status().expect("mount");
        assert!(st.success(), "mount on {}", p.display());
        p
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg("-l").arg(self.0.path()).status();
    }
}

/// Whether `p` is a mount point in the host's mount table.
pub fn host_mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines().any(|l| l.split(' ').nth(4) == p.to_str())
}
