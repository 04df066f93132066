//! The host paths a container binds: `-v`, `--tmpfs` and `--device`, checked at create
//! (InvalidArgument) and again at every start, where a host path that has gone since
//! fails the start (FailedPrecondition, naming it) instead of being left out.

use super::{ContainerRecord, Result, RuntimeError};
use crate::isolation::devices::{self, Device};
use crate::isolation::spec::Volume;

fn container_path(p: &str, what: &str, spec: &str) -> Result<String> {
    let ok = p.starts_with('/') && p != "/" && !p.split('/').any(|c| c == "..") && !p.contains('\0') && p.len() < 4096;
    if !ok {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid {what} {spec:?}: the container path must be absolute, not /, without '..'"
        )));
    }
    Ok(p.trim_end_matches('/').to_string())
}

/// Parses `-v HOST:CONTAINER[:ro|rw]` without looking at the host: both paths absolute,
/// without `..`.
pub fn parse_volume_syntax(v: &str) -> Result<Volume> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "rw"),
        [h, c, m] => (*h, *c, *m),
        _ => return Err(RuntimeError::InvalidArgument(format!("invalid volume {v:?}: use HOST:CONTAINER[:ro]"))),
    };
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        m => return Err(RuntimeError::InvalidArgument(format!("invalid volume {v:?}: mode {m:?} is not ro or rw"))),
    };
    if !host.starts_with('/') || host.split('/').any(|c| c == "..") {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid volume {v:?}: the host path must be absolute and without '..' (named volumes are not supported)"
        )));
    }
    let container = container_path(ctr, "volume", v)?;
    Ok(Volume { host: host.into(), container, read_only })
}

/// Parses `-v HOST:CONTAINER[:ro|rw]`: the host path must be absolute, exist, and have no `..`.
pub fn parse_volume(v: &str) -> Result<Volume> {
    let vol = parse_volume_syntax(v)?;
    if std::fs::symlink_metadata(&vol.host).is_err() {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid volume {v:?}: host path {} does not exist",
            vol.host.display()
        )));
    }
    Ok(vol)
}

/// Parses `--tmpfs PATH[:OPTIONS]`.
pub fn parse_tmpfs(t: &str) -> Result<(String, String)> {
    let (p, o) = t.split_once(':').unwrap_or((t, ""));
    let path = container_path(p, "tmpfs", t)?;
    if !o.bytes().all(|b| b.is_ascii_alphanumeric() || b",=_-".contains(&b)) {
        return Err(RuntimeError::InvalidArgument(format!("invalid tmpfs options in {t:?}")));
    }
    Ok((path, o.to_string()))
}

/// A value of the record that passed at create but no longer does.
fn no_longer(rec: &ContainerRecord, what: &str, e: RuntimeError) -> RuntimeError {
    RuntimeError::FailedPrecondition(format!("container {}: {what} is no longer valid: {e}", rec.name))
}

/// The volumes of a container about to start; a bind source that has vanished fails it.
pub(super) fn volumes_at_start(rec: &ContainerRecord) -> Result<Vec<Volume>> {
    let mut out = Vec::new();
    for v in &rec.spec.volumes {
        let vol = parse_volume_syntax(v).map_err(|e| no_longer(rec, "a volume", e))?;
        if let Err(e) = std::fs::symlink_metadata(&vol.host) {
            return Err(RuntimeError::FailedPrecondition(format!(
                "bind source path does not exist: {} (volume {v:?} of container {}: {e})",
                vol.host.display(),
                rec.name
            )));
        }
        out.push(vol);
    }
    Ok(out)
}

/// The tmpfs mounts of a container about to start.
pub(super) fn tmpfs_at_start(rec: &ContainerRecord) -> Result<Vec<(String, String)>> {
    rec.spec.tmpfs.iter().map(|t| parse_tmpfs(t).map_err(|e| no_longer(rec, "a tmpfs", e))).collect()
}

/// The devices of a container about to start; one that has vanished (or is no longer a
/// device) fails it.
pub(super) fn devices_at_start(rec: &ContainerRecord) -> Result<Vec<Device>> {
    rec.spec
        .devices
        .iter()
        .map(|d| {
            devices::parse(d).map_err(|e| {
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
    fn volume_syntax_is_checked_without_the_host() {
        let v = parse_volume_syntax("/no/such/dir:/data:ro").unwrap();
        assert_eq!(
            (v.host.display().to_string(), v.container.as_str(), v.read_only),
            ("/no/such/dir".into(), "/data", true)
        );
        assert!(parse_volume("/no/such/dir:/data").unwrap_err().to_string().contains("does not exist"));
        assert!(parse_volume_syntax("rel:/data").is_err());
        assert!(parse_volume_syntax("/a:/../etc").is_err());
        assert_eq!(parse_tmpfs("/scratch:size=1m").unwrap(), ("/scratch".into(), "size=1m".into()));
    }
}
