//! The host paths a container binds: `-v`, `--tmpfs` and `--device`, checked at create
//! (InvalidArgument) and again at every start, where a host path that has gone since
//! fails the start (FailedPrecondition, naming it) instead of being left out.

use super::{ContainerRecord, Result, RuntimeError};
use crate::isolation::devices::Device;
use crate::isolation::spec::Volume;

/// Refuses a bind source that does not exist, or whose mount on the host cannot
/// propagate as the volume asks (at create: InvalidArgument).
pub fn check_source(v: &Volume) -> Result<()> {
    if std::fs::symlink_metadata(&v.host).is_err() {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid volume {:?}: host path {} does not exist",
            super::spec::volume_string(v),
            v.host.display()
        )));
    }
    propagation_possible(v).map_err(RuntimeError::InvalidArgument)
}

/// As containerd and docker check it: a volume that shares mounts with the host needs its
/// source on a shared mount of the host, one that receives them a shared or slave mount
/// (kubelet makes its volume directories so; `mount --make-rshared DIR` does).
fn propagation_possible(v: &Volume) -> std::result::Result<(), String> {
    if !v.propagation.receives() {
        return Ok(());
    }
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read /proc/self/mountinfo: {e}"))?;
    let path = std::fs::canonicalize(&v.host).map_err(|e| format!("{}: {e}", v.host.display()))?;
    propagation_allowed(v, &info, &path)
}

fn propagation_allowed(v: &Volume, mountinfo: &str, path: &std::path::Path) -> std::result::Result<(), String> {
    let m = crate::isolation::mounts::mount_of(mountinfo, path)
        .ok_or_else(|| format!("no mount holds {}", path.display()))?;
    let (ok, need) = if v.propagation.sends() {
        (m.shared(), "a shared mount")
    } else {
        (m.shared() || m.slave(), "a shared or slave mount")
    };
    if ok {
        return Ok(());
    }
    Err(format!(
        "volume {:?} ({}): path {} is mounted on {} but it is not {need}",
        super::spec::volume_string(v),
        v.propagation.name(),
        v.host.display(),
        m.mount_point.display()
    ))
}

/// The volumes of a container about to start; a bind source that has vanished fails it.
pub(super) fn volumes_at_start(rec: &ContainerRecord) -> Result<Vec<Volume>> {
    let mut out = Vec::new();
    for vol in &rec.spec.volumes {
        if let Err(e) = std::fs::symlink_metadata(&vol.host) {
            return Err(RuntimeError::FailedPrecondition(format!(
                "bind source path does not exist: {} (volume {:?} of container {}: {e})",
                vol.host.display(),
                super::spec::volume_string(vol),
                rec.name
            )));
        }
        propagation_possible(vol)
            .map_err(|e| RuntimeError::FailedPrecondition(format!("container {}: {e}", rec.name)))?;
        out.push(vol.clone());
    }
    Ok(out)
}

/// The tmpfs mounts of a container about to start.
pub(super) fn tmpfs_at_start(rec: &ContainerRecord) -> Vec<(String, String)> {
    rec.spec.tmpfs.iter().map(|t| (t.path.clone(), t.options.clone())).collect()
}

/// The devices of a container about to start; one that has vanished (or is no longer a
/// device) fails it.
pub(super) fn devices_at_start(rec: &ContainerRecord) -> Result<Vec<Device>> {
    rec.spec
        .devices
        .iter()
        .map(|d| {
            d.resolve().map_err(|e| {
                RuntimeError::FailedPrecondition(format!(
                    "device {d:?} of container {} is no longer available: {e}",
                    rec.name
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bind_source_is_named() {
        let v = crate::runtime::spec::parse_volume("/no/such/dir:/data").unwrap();
        let e = check_source(&v).unwrap_err().to_string();
        assert!(e.contains("/no/such/dir") && e.contains("does not exist"), "{e}");
        assert!(check_source(&crate::runtime::spec::parse_volume("/tmp:/data").unwrap()).is_ok());
    }

    #[test]
    fn propagation_needs_a_shared_or_slave_source_mount() {
        let info = "1 0 8:1 / / rw shared:1 - ext4 /dev/sda1 rw\n\
                    2 1 0:40 / /srv/priv rw - tmpfs tmpfs rw\n\
                    3 1 0:41 / /srv/slave rw master:4 - tmpfs tmpfs rw\n";
        let v = |s: &str| crate::runtime::spec::parse_volume(s).unwrap();
        let p = std::path::Path::new;
        assert!(propagation_allowed(&v("/srv/x:/d:rshared"), info, p("/srv/x")).is_ok());
        let e = propagation_allowed(&v("/srv/priv/x:/d:rshared"), info, p("/srv/priv/x")).unwrap_err();
        assert!(e.contains("/srv/priv/x is mounted on /srv/priv but it is not a shared mount"), "{e}");
        assert!(propagation_allowed(&v("/srv/slave:/d:rshared"), info, p("/srv/slave")).is_err());
        assert!(propagation_allowed(&v("/srv/slave:/d:rslave"), info, p("/srv/slave")).is_ok());
        assert!(propagation_allowed(&v("/srv/priv:/d:rslave"), info, p("/srv/priv")).is_err());
    }
}
