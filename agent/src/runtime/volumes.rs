//! The host paths a container binds: `-v`, `--tmpfs` and `--device`, checked at create
//! (InvalidArgument) and again at every start, where a host path that has gone since
//! fails the start (FailedPrecondition, naming it) instead of being left out.

use super::{ContainerRecord, Result, RuntimeError};
use crate::isolation::devices::Device;
use crate::isolation::spec::Volume;

/// Refuses a bind source that does not exist (at create: InvalidArgument).
pub fn check_source(v: &Volume) -> Result<()> {
    if std::fs::symlink_metadata(&v.host).is_err() {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid volume {:?}: host path {} does not exist",
            super::spec::volume_string(v),
            v.host.display()
        )));
    }
    Ok(())
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
}
