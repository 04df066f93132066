//! The container's root filesystem: the image's layers (read-only lowerdirs, shared) under
//! a per-container writable layer, joined by overlayfs. The only module that mounts overlays.
//!
//! The overlay is mounted inside the container's own mount namespace (by its init, before
//! `pivot_root`), so it never appears in the host's mount table and vanishes with the
//! container: nothing to unmount, nothing to leak after a crash.

pub mod idmap;
pub mod shift;
pub mod view;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a container's overlay parts live.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RootfsSpec {
    /// Lower layers, top first (overlayfs order).
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// The mount point.
    pub target: PathBuf,
    /// The lower layers are seen through the container's user namespace (`--userns` with
    /// idmapped mounts): the shim builds the overlay (see [`idmap`]), the init attaches it.
    #[serde(default)]
    pub idmapped: bool,
    /// Mount the root nodev: device nodes shipped in an image stay inert. Set where no
    /// device cgroup decides what a container may open (pure cgroup v2 without a BPF
    /// program); `--userns` roots are always nodev.
    #[serde(default)]
    pub nodev: bool,
}

impl RootfsSpec {
    /// Lays out `<dir>/{upper,work,rootfs}` for image layers given bottom first.
    pub fn for_container(dir: &Path, layers_bottom_first: &[PathBuf]) -> RootfsSpec {
        RootfsSpec {
            lower: layers_bottom_first.iter().rev().cloned().collect(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("rootfs"),
            idmapped: false,
            nodev: false,
        }
    }

    /// Creates the writable layer's directories.
    pub fn prepare(&self) -> std::io::Result<()> {
        for d in [&self.upper, &self.work, &self.target] {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }

    /// The overlayfs mount data.
    pub fn mount_data(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|p| p.display().to_string()).collect();
        format!("lowerdir={},upperdir={},workdir={}", lower.join(":"), self.upper.display(), self.work.display())
    }

    /// The mount flags of the root.
    pub fn flags(&self) -> nix::mount::MsFlags {
        if self.nodev {
            nix::mount::MsFlags::MS_NODEV
        } else {
            nix::mount::MsFlags::empty()
        }
    }

    /// Mounts the overlay at `target` in the current mount namespace.
    pub fn mount(&self) -> nix::Result<()> {
        nix::mount::mount(
            Some("overlay"),
            &self.target,
            Some("overlay"),
            self.flags(),
            Some(self.mount_data().as_str()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdirs_are_top_first() {
        let s = RootfsSpec::for_container(Path::new("/c"), &[PathBuf::from("/l/base"), PathBuf::from("/l/top")]);
        assert_eq!(s.mount_data(), "lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work");
        assert!(s.flags().is_empty());
        assert_eq!(RootfsSpec { nodev: true, ..s }.flags(), nix::mount::MsFlags::MS_NODEV);
    }
}
