//! The runtime's side of named volumes: which containers use one (so it cannot be removed
//! under them), making them on first use with the image's content copied in (docker's
//! behaviour), and the binds a start gets. The directories themselves are `volume/`'s.
//! Creates and removals of volumes hold the create lock, so a volume is made once however
//! many creates name it, and never removed while a create is about to use it.

use super::{ContainerRecord, ContainerSpec, Result, Runtime, RuntimeError};
use crate::isolation::spec::Volume;
use crate::volume::{VolumeError, VolumeRecord, ANONYMOUS_LABEL};
use std::collections::BTreeMap;
use std::path::Path;

/// A volume with the containers using it.
pub struct VolumeUse {
    pub volume: VolumeRecord,
    pub mountpoint: std::path::PathBuf,
    /// IDs of the containers that mount it (any state).
    pub containers: Vec<String>,
}

/// The filters of `volume|container|network prune`: `label=k` / `label=k=v` (all must
/// match), `label!=k` / `label!=k=v` (none may), `until=` (created before).
#[derive(Debug, Default)]
pub struct PruneFilter {
    pub labels: Vec<(String, Option<String>)>,
    pub not_labels: Vec<(String, Option<String>)>,
    /// Unix nanoseconds: only what was created before.
    pub until: Option<i64>,
}

impl PruneFilter {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, Option<String>)| match v {
            None => labels.contains_key(k),
            Some(v) => labels.get(k) == Some(v),
        };
        self.labels.iter().all(has) && !self.not_labels.iter().any(has)
    }

    /// [`matches`](Self::matches), and created before `until`.
    pub fn matches_at(&self, labels: &BTreeMap<String, String>, created_at: i64) -> bool {
        self.matches(labels) && self.until.is_none_or(|u| created_at < u)
    }
}

impl Runtime {
    /// Makes the volumes a new container names (anonymous ones get a random name) and fills
    /// an empty one from the image's files under its path. Called under the create lock.
    /// Returns the anonymous volumes it made (for the create's undo); on an error it removes
    /// those it made itself.
    pub(super) fn make_volumes(&self, rec: &mut ContainerRecord) -> Result<Vec<String>> {
        let mut made = Vec::new();
        if let Err(e) = self.make_volumes_into(rec, &mut made) {
            for n in &made {
                if let Err(re) = self.volumes.remove(n) {
                    tracing::warn!(volume = %n, error = %re, "a failed create cannot remove its anonymous volume");
                }
            }
            return Err(e);
        }
        Ok(made)
    }

    fn make_volumes_into(&self, rec: &mut ContainerRecord, made: &mut Vec<String>) -> Result<()> {
        let layers: Vec<_> = rec.layers.iter().map(|d| self.images.layer_dir(d)).collect();
        for v in &mut rec.spec.named_volumes {
            let mut labels = BTreeMap::new();
            if v.anonymous && v.name.is_empty() {
                v.name = super::names::new_id().map_err(RuntimeError::Internal)?;
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                made.push(v.name.clone());
            }
            let (vol, new) = self.volumes.create(&v.name, "local", BTreeMap::new(), labels, v.anonymous)?;
            if new {
                self.log_event("volume", "create", &vol.name, &vol.name, &[("driver", vol.driver.clone())]);
            }
            let data = self.volumes.mountpoint(&vol.name);
            // As docker: an empty volume of the plain kind gets the image's files.
            let empty = std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_none());
            if empty && vol.options.is_empty() && !v.no_copy {
                let shift = rec.userns.as_ref().map(|l| &l.map);
                copy_image_path(&layers, &v.container, &data).map_err(|e| {
                    RuntimeError::Internal(format!(
                        "volume {}: copy the image's {} into it: {e}",
                        vol.name, v.container
                    ))
                })?;
                // In a user namespace the files are its root's (as docker's userns-remap).
                if let Some(map) = shift {
                    shift_tree(&data, map).map_err(|e| {
                        RuntimeError::Internal(format!(
                            "volume {}: shift its owners into the user namespace: {e}",
                            vol.name
                        ))
                    })?;
                }
            }
        }
        Ok(())
    }

    /// `--volumes-from C[:ro|rw]`: C's binds and volumes join the spec (in C's mode unless
    /// one is given; C's anonymous volumes stay C's). Called under the create lock.
    pub(super) fn add_volumes_from(&self, spec: &mut ContainerSpec) -> Result<()> {
        for f in std::mem::take(&mut spec.volumes_from) {
            let (c, mode) = match f.rsplit_once(':') {
                Some((c, m @ ("ro" | "rw"))) => (c, Some(m == "ro")),
                Some(_) => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "invalid --volumes-from {f:?}: use CONTAINER[:ro|rw]"
                    )))
                }
                None => (f.as_str(), None),
            };
            let from = self.resolve(c).map_err(|e| match e {
                RuntimeError::NotFound(_) => RuntimeError::InvalidArgument(format!("--volumes-from {f:?}: {e}")),
                e => e,
            })?;
            for v in &from.spec.volumes {
                spec.volumes.push(Volume { read_only: mode.unwrap_or(v.read_only), ..v.clone() });
            }
            for v in &from.spec.named_volumes {
                let read_only = mode.unwrap_or(v.read_only);
                spec.named_volumes.push(super::spec::NamedVolume { read_only, anonymous: false, ..v.clone() });
            }
        }
        Ok(())
    }

    /// The binds of a container about to start: its host paths, then its volumes (a typed
    /// one mounted now if it is not yet); a volume removed since fails the start.
    pub(super) fn volume_binds(&self, rec: &ContainerRecord) -> Result<Vec<Volume>> {
        let mut out = super::volumes::volumes_at_start(rec)?;
        for v in &rec.spec.named_volumes {
            let vol = self.volumes.get(&v.name)?.ok_or_else(|| {
                RuntimeError::FailedPrecondition(format!("volume {} of container {} is gone", v.name, rec.name))
            })?;
            let host = self.volumes.prepare(&vol).map_err(|e| match e {
                VolumeError::NotFound(m) => RuntimeError::FailedPrecondition(format!("container {}: {m}", rec.name)),
                e => e.into(),
            })?;
            let rw = if v.read_only { "false" } else { "true" };
            let attrs =
                [("container", rec.id.clone()), ("destination", v.container.clone()), ("read/write", rw.into())];
            self.log_event("volume", "mount", &v.name, &v.name, &attrs);
            out.push(Volume {
                host,
                container: v.container.clone(),
                read_only: v.read_only,
                propagation: Default::default(),
            });
        }
        Ok(out)
    }

    fn users_of(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.spec.named_volumes.iter().any(|v| v.name == name))
            .map(|c| c.id)
            .collect())
    }

    /// `volume create`: an empty name gets a random one, as docker's.
    pub async fn create_volume(
        &self,
        name: &str,
        driver: &str,
        options: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
    ) -> Result<VolumeUse> {
        let _g = self.create_lock.lock().await;
        let name = if name.is_empty() { super::names::new_id().map_err(RuntimeError::Internal)? } else { name.into() };
        let (vol, new) = self.volumes.create(&name, driver, options, labels, false)?;
        if new {
            self.log_event("volume", "create", &vol.name, &vol.name, &[("driver", vol.driver.clone())]);
        }
        self.volume_use(vol)
    }

    fn volume_use(&self, volume: VolumeRecord) -> Result<VolumeUse> {
        Ok(VolumeUse {
            mountpoint: self.volumes.mountpoint(&volume.name),
            containers: self.users_of(&volume.name)?,
            volume,
        })
    }

    pub fn volume(&self, name: &str) -> Result<VolumeUse> {
        let v = self.volumes.find(name)?;
        self.volume_use(v)
    }

    pub fn volume_list(&self) -> Result<Vec<VolumeUse>> {
        let recs = self.list()?;
        Ok(self
            .volumes
            .list()?
            .into_iter()
            .map(|volume| VolumeUse {
                mountpoint: self.volumes.mountpoint(&volume.name),
                containers: recs
                    .iter()
                    .filter(|c| c.spec.named_volumes.iter().any(|v| v.name == volume.name))
                    .map(|c| c.id.clone())
                    .collect(),
                volume,
            })
            .collect())
    }

    /// The bytes a volume holds.
    pub fn volume_size(&self, name: &str) -> u64 {
        self.volumes.size(name)
    }

    /// `volume rm`: refused while a container uses it (docker's words); `force` only
    /// forgives a volume that does not exist.
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        let _g = self.create_lock.lock().await;
        self.remove_volume_locked(name, force)
    }

    fn remove_volume_locked(&self, name: &str, force: bool) -> Result<()> {
        if self.volumes.get(name)?.is_none() {
            return if force { Ok(()) } else { Err(VolumeError::NotFound(format!("no such volume: {name}")).into()) };
        }
        let users = self.users_of(name)?;
        if !users.is_empty() {
            return Err(VolumeError::InUse(format!("remove {name}: volume is in use - [{}]", users.join(", "))).into());
        }
        self.volumes.remove(name)?;
        self.log_event("volume", "destroy", name, name, &[("driver", "local".into())]);
        Ok(())
    }

    /// `volume prune`: removes the unused volumes the filter matches; returns their names
    /// and the bytes they held.
    pub async fn prune_volumes(&self, filter: &PruneFilter) -> Result<(Vec<String>, u64)> {
        let _g = self.create_lock.lock().await;
        let (mut names, mut bytes) = (Vec::new(), 0);
        for u in self.volume_list()? {
            if !u.containers.is_empty() || !filter.matches(&u.volume.labels) {
                continue;
            }
            let size = self.volumes.size(&u.volume.name);
            self.remove_volume_locked(&u.volume.name, true)?;
            names.push(u.volume.name);
            bytes += size;
        }
        Ok((names, bytes))
    }

    /// After a container's removal with `rm -v` or `--rm`: its anonymous volumes go (named
    /// ones stay). A failure is logged: the container is gone already.
    pub(super) async fn remove_anonymous_volumes(&self, spec: &ContainerSpec) {
        for v in spec.named_volumes.iter().filter(|v| v.anonymous) {
            if let Err(e) = self.remove_volume(&v.name, true).await {
                tracing::warn!(volume = %v.name, error = %e, "cannot remove an anonymous volume of a removed container");
            }
        }
    }
}

/// The image's `VOLUME` paths the spec mounts nothing on become anonymous volumes (docker's).
pub(super) fn add_image_volumes(spec: &mut ContainerSpec, paths: &[String]) {
    for p in paths {
        let p = p.trim_end_matches('/');
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            tracing::warn!(path = %p, "ignoring the image's VOLUME that is not an absolute path");
            continue;
        }
        let taken = spec.volumes.iter().any(|v| v.container == p)
            || spec.named_volumes.iter().any(|v| v.container == p)
            || spec.tmpfs.iter().any(|t| t.path.trim_end_matches('/') == p);
        if !taken {
            let v = super::spec::NamedVolume { container: p.to_string(), anonymous: true, ..Default::default() };
            spec.named_volumes.push(v);
        }
    }
}

/// Copies what the image has under `path` (its layers bottom first, whiteouts honoured)
/// into `dest`, ownership, modes and symlinks kept.
fn copy_image_path(layers: &[std::path::PathBuf], path: &str, dest: &Path) -> std::io::Result<()> {
    let rel = path.trim_start_matches('/');
    for layer in layers {
        let src = layer.join(rel);
        // The path must be a real directory of the layer, not reached through a symlink.
        let through_link = Path::new(rel)
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .any(|a| std::fs::symlink_metadata(layer.join(a)).is_ok_and(|m| m.file_type().is_symlink()));
        if through_link {
            continue;
        }
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.is_dir() => {
                copy_owner_mode(&src, dest)?;
                copy_tree(&src, dest)?
            }
            _ => continue,
        }
    }
    Ok(())
}

/// Moves the owners of `dir` and everything under it into `map` (container IDs → host IDs).
fn shift_tree(dir: &Path, map: &crate::isolation::userns::IdMapping) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir)?;
    let (uid, gid) = map.shift_in(m.uid(), m.gid());
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    // chown clears set-user/group-ID bits: they come back.
    if m.is_file() && m.mode() & 0o6000 != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    if m.is_dir() {
        for e in std::fs::read_dir(dir)? {
            shift_tree(&e?.path(), map)?;
        }
    }
    Ok(())
}

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    m.file_type().is_char_device() && m.rdev() == 0
}

fn copy_owner_mode(src: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = std::fs::symlink_metadata(src)?;
    std::os::unix::fs::lchown(dest, Some(m.uid()), Some(m.gid()))?;
    if !m.file_type().is_symlink() {
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    }
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dest.join(e.file_name()));
        let m = std::fs::symlink_metadata(&from)?;
        if is_whiteout(&m) {
            remove_any(&to)?;
            continue;
        }
        let ft = m.file_type();
        if ft.is_dir() {
            if !std::fs::symlink_metadata(&to).is_ok_and(|t| t.is_dir()) {
                remove_any(&to)?;
                std::fs::create_dir(&to)?;
            }
            copy_owner_mode(&from, &to)?;
            copy_tree(&from, &to)?;
        } else if ft.is_symlink() {
            remove_any(&to)?;
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
            copy_owner_mode(&from, &to)?;
        } else if ft.is_file() {
            remove_any(&to)?;
            std::fs::copy(&from, &to)?;
            copy_owner_mode(&from, &to)?;
        }
        // Device nodes, fifos and sockets are not copied into a volume.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_content_is_merged_bottom_first_with_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let (l1, l2, dest) = (t.path().join("l1"), t.path().join("l2"), t.path().join("dest"));
        std::fs::create_dir_all(l1.join("etc/sub")).unwrap();
        std::fs::write(l1.join("etc/a"), "1").unwrap();
        std::fs::write(l1.join("etc/gone"), "x").unwrap();
        std::fs::write(l1.join("etc/sub/b"), "2").unwrap();
        std::fs::create_dir_all(l2.join("etc")).unwrap();
        std::fs::write(l2.join("etc/a"), "new").unwrap();
        nix::sys::stat::mknod(&l2.join("etc/gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .unwrap();
        std::fs::create_dir_all(&dest).unwrap();
        copy_image_path(&[l1, l2], "/etc", &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("a")).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(dest.join("sub/b")).unwrap(), "2");
        assert!(!dest.join("gone").exists());
        copy_image_path(&[t.path().join("none")], "/etc", &dest).unwrap();
    }
}
