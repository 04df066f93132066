//! Named volumes, docker's `local` driver: each a directory `<root>/volumes/<name>/_data`
//! with a record in the store (`Kind::Volume`). This module is the one owner of those
//! directories: it makes them, mounts a typed one (`-o type=tmpfs|…,device=…,o=…`, at its
//! first use), unmounts and removes them. The runtime tells it which containers use one.
//!
//! Crash safety: a directory is made before its record is written and the record deleted
//! before its directory goes, so a crash leaves at worst a directory without a record,
//! which `sweep` removes (unmounting it first) and logs.

pub mod options;

use crate::store::{Kind, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use options::{validate_name, DriverOptions};

/// The label docker puts on an anonymous volume.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// A volume as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The driver options as given (`type`, `device`, `o`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// Made for one container (`-v /path`, an image's `VOLUME`): removed with it by `rm -v`.
    #[serde(default)]
    pub anonymous: bool,
}

/// Errors of the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {}: {err}", .path.display())]
    Io { what: &'static str, path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Mount(String),
}

type Result<T> = std::result::Result<T, VolumeError>;

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> VolumeError + 'a {
    move |err| VolumeError::Io { what, path: path.to_path_buf(), err }
}

/// The volumes of one agent.
pub struct Volumes {
    dir: PathBuf,
    store: Arc<Store>,
}

impl Volumes {
    /// `root` is the agent's root; volumes live under `<root>/volumes`.
    pub fn new(root: &Path, store: Arc<Store>) -> Volumes {
        Volumes { dir: root.join("volumes"), store }
    }

    /// `<root>/volumes/<name>`.
    fn volume_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Where a volume's data is (what a container binds).
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    pub fn get(&self, name: &str) -> Result<Option<VolumeRecord>> {
        Ok(self.store.get(Kind::Volume, name)?)
    }

    /// The volume named so, or NotFound in docker's words.
    pub fn find(&self, name: &str) -> Result<VolumeRecord> {
        self.get(name)?.ok_or_else(|| VolumeError::NotFound(format!("no such volume: {name}")))
    }

    pub fn list(&self) -> Result<Vec<VolumeRecord>> {
        Ok(self.store.all(Kind::Volume)?)
    }

    /// Creates a volume; one that exists already is returned as it is when the request
    /// asks for nothing else (docker's idempotent create), refused when it asks for other
    /// options. The caller serializes creates and removals (the runtime's create lock).
    /// Returns the record and whether it was made now.
    pub fn create(
        &self,
        name: &str,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool)> {
        validate_name(name).map_err(VolumeError::InvalidArgument)?;
        let driver = if driver.is_empty() { "local" } else { driver };
        if driver != "local" {
            return Err(VolumeError::InvalidArgument(format!(
                "volume {name}: driver {driver:?} is not supported (only \"local\")"
            )));
        }
        DriverOptions::parse(&options).map_err(|e| VolumeError::InvalidArgument(format!("volume {name}: {e}")))?;
        if let Some(old) = self.get(name)? {
            if !options.is_empty() && old.options != options {
                return Err(VolumeError::InvalidArgument(format!(
                    "volume {name} exists already with other options ({:?})",
                    old.options
                )));
            }
            return Ok((old, false));
        }
        let data = self.mountpoint(name);
        std::fs::create_dir_all(&data).map_err(io("create volume directory", &data))?;
        crate::crash::point("volume.after_dir");
        let rec = VolumeRecord {
            name: name.to_string(),
            driver: driver.to_string(),
            labels,
            options,
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            anonymous,
        };
        if let Err(e) = self.store.put(Kind::Volume, name, &rec) {
            if let Err(re) = remove_dir(&self.volume_dir(name)) {
                tracing::warn!(volume = %name, error = %re, "a volume whose record failed keeps its directory until the next start's sweep");
            }
            return Err(e.into());
        }
        Ok((rec, true))
    }

    /// Makes a volume ready for a container: a typed one is mounted on its `_data` (once:
    /// it stays mounted until the volume is removed). Returns the path to bind.
    pub fn prepare(&self, rec: &VolumeRecord) -> Result<PathBuf> {
        let data = self.mountpoint(&rec.name);
        if !data.is_dir() {
            return Err(VolumeError::NotFound(format!(
                "volume {}: its directory {} is gone",
                rec.name,
                data.display()
            )));
        }
        let opts = DriverOptions::parse(&rec.options).map_err(VolumeError::InvalidArgument)?;
        if opts.is_plain() || is_mountpoint(&data) {
            return Ok(data);
        }
        opts.mount(&data).map_err(|e| VolumeError::Mount(format!("volume {}: {e}", rec.name)))?;
        Ok(data)
    }

    /// Removes a volume the caller found unused: record first, then the directory (a crash
    /// between leaves a directory without a record, which the sweep removes).
    pub fn remove(&self, name: &str) -> Result<()> {
        self.find(name)?;
        let vdir = self.volume_dir(name);
        unmount_if_mounted(&self.mountpoint(name)).map_err(|e| VolumeError::Mount(format!("volume {name}: {e}")))?;
        self.store.delete(Kind::Volume, name)?;
        crate::crash::point("volume.after_record");
        remove_dir(&vdir)
    }

    /// The bytes under a volume's data (for `system df` and `prune`).
    pub fn size(&self, name: &str) -> u64 {
        dir_size(&self.mountpoint(name))
    }

    /// Start-up: directories under `<root>/volumes` without a record (a create or removal
    /// cut short) are unmounted and removed, a record's missing directory made again; each
    /// repair is logged.
    pub fn sweep(&self) {
        let names: std::collections::HashSet<String> = match self.store.keys(Kind::Volume) {
            Ok(k) => k.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "start-up sweep: cannot list volumes; none swept");
                return;
            }
        };
        // A record whose directory is gone (removed by hand): an empty one again, so its
        // containers start; what it held is lost, which is logged.
        for name in &names {
            let data = self.mountpoint(name);
            if !data.exists() {
                match std::fs::create_dir_all(&data) {
                    Ok(()) => {
                        tracing::warn!(volume = %name, dir = %data.display(), "start-up sweep: the directory of a volume was gone; made it again, empty")
                    }
                    Err(e) => {
                        tracing::warn!(volume = %name, error = %e, "start-up sweep: cannot make the missing directory of a volume")
                    }
                }
            }
        }
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if names.contains(&name) {
                continue;
            }
            let path = e.path();
            let res =
                unmount_if_mounted(&path.join("_data")).map_err(VolumeError::Mount).and_then(|()| remove_dir(&path));
            match res {
                Ok(()) => {
                    tracing::warn!(dir = %path.display(), "start-up sweep: removed a volume directory without a record")
                }
                Err(err) => {
                    tracing::warn!(dir = %path.display(), error = %err, "start-up sweep: cannot remove a volume directory without a record")
                }
            }
        }
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove volume directory", dir)(e)),
    }
}

/// True when something is mounted on `path` itself.
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let Ok(path) = std::fs::canonicalize(path) else { return false };
    crate::isolation::mounts::mount_of(&info, &path).is_some_and(|m| m.mount_point == path)
}

/// Unmounts whatever is mounted on `path` (every layer of it), so that removing the
/// directory never reaches into a bound host directory.
fn unmount_if_mounted(path: &Path) -> std::result::Result<(), String> {
    for _ in 0..16 {
        if !is_mountpoint(path) {
            return Ok(());
        }
        nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| format!("unmount {}: {e}", path.display()))?;
    }
    Err(format!("{} is still a mount point after 16 unmounts", path.display()))
}

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.len();
    }
    let Ok(rd) = std::fs::read_dir(p) else { return 0 };
    rd.flatten().map(|e| dir_size(&e.path())).sum()
}
