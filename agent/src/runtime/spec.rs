//! The typed parts of a container spec: bind mounts, tmpfs mounts, device requests and the
//! security options, parsed once where a request enters (the API from docker's strings, the
//! CRI from its messages) and stored typed in the record. Start uses them as they are and
//! only checks what the host may have changed since (a bind source or device gone).
//!
//! Records written before these were typed held docker's strings; they still load.

use super::{Result, RuntimeError};
use crate::isolation::devices::{Device, DeviceError};
use crate::isolation::spec::Volume;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;

fn container_path(p: &str, what: &str, spec: &str) -> Result<String> {
    let ok = p.starts_with('/') && p != "/" && !p.split('/').any(|c| c == "..") && !p.contains('\0') && p.len() < 4096;
    if !ok {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid {what} {spec:?}: the container path must be absolute, not /, without '..'"
        )));
    }
    Ok(p.trim_end_matches('/').to_string())
}

/// Parses `-v HOST:CONTAINER[:ro|rw]`: both paths absolute, without `..` (whether the host
/// path exists is checked at create and at every start).
pub fn parse_volume(v: &str) -> Result<Volume> {
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
    let container = container_path(ctr, "volume", v)?;
    volume(host, &container, read_only).map_err(|e| match e {
        RuntimeError::InvalidArgument(m) => RuntimeError::InvalidArgument(format!("invalid volume {v:?}: {m}")),
        e => e,
    })
}

/// A bind mount from its parts (the CRI's Mount), with the same checks as `-v`.
pub fn volume(host: &str, container: &str, read_only: bool) -> Result<Volume> {
    if !host.starts_with('/') || host.split('/').any(|c| c == "..") || host.contains('\0') {
        return Err(RuntimeError::InvalidArgument(format!(
            "the host path {host:?} must be absolute and without '..' (named volumes are not supported)"
        )));
    }
    let container = container_path(container, "mount target", container)?;
    Ok(Volume { host: host.into(), container, read_only })
}

/// The docker form of a volume (`HOST:CONTAINER[:ro]`).
pub fn volume_string(v: &Volume) -> String {
    format!("{}:{}{}", v.host.display(), v.container, if v.read_only { ":ro" } else { "" })
}

/// A tmpfs mount (`--tmpfs PATH[:OPTIONS]`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TmpfsMount {
    pub path: String,
    pub options: String,
}

impl TmpfsMount {
    pub fn parse(t: &str) -> Result<TmpfsMount> {
        let (p, o) = t.split_once(':').unwrap_or((t, ""));
        let path = container_path(p, "tmpfs", t)?;
        if !o.bytes().all(|b| b.is_ascii_alphanumeric() || b",=_-".contains(&b)) {
            return Err(RuntimeError::InvalidArgument(format!("invalid tmpfs options in {t:?}")));
        }
        Ok(TmpfsMount { path, options: o.to_string() })
    }
}

impl std::fmt::Display for TmpfsMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.options.is_empty() {
            write!(f, "{}", self.path)
        } else {
            write!(f, "{}:{}", self.path, self.options)
        }
    }
}

/// A `--device HOST[:CONTAINER[:PERMS]]` request; the host node is looked up (kind,
/// major:minor) at create and again at every start.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DeviceRequest {
    pub host: PathBuf,
    pub container: String,
    pub perms: String,
}

impl DeviceRequest {
    pub fn parse(spec: &str) -> std::result::Result<DeviceRequest, DeviceError> {
        let (host, container, perms) = crate::isolation::devices::split(spec)?;
        Ok(DeviceRequest { host: host.into(), container, perms })
    }

    /// A request from its parts (the CRI's Device), with the same checks.
    pub fn new(host: &str, container: &str, perms: &str) -> std::result::Result<DeviceRequest, DeviceError> {
        DeviceRequest::parse(&format!("{host}:{container}:{perms}"))
    }

    /// The host's node now.
    pub fn resolve(&self) -> std::result::Result<Device, DeviceError> {
        crate::isolation::devices::resolve(&self.host, &self.container, &self.perms, &self.to_string())
    }
}

impl std::fmt::Display for DeviceRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.host.display(), self.container, self.perms)
    }
}

/// The seccomp filter a container gets.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Seccomp {
    /// The agent's default profile.
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
    /// A Docker-format profile (its JSON; it compiled at create).
    Profile(String),
}

/// `--security-opt` values, typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Security {
    #[serde(default)]
    pub seccomp: Seccomp,
    /// `no-new-privileges` was asked for (our containers always get it).
    #[serde(default)]
    pub no_new_privileges: bool,
}

impl Security {
    /// Parses docker's `--security-opt` values.
    pub fn parse(opts: &[String]) -> Result<Security> {
        let mut s = Security::default();
        for o in opts {
            match o.as_str() {
                "seccomp=unconfined" | "seccomp:unconfined" => s.seccomp = Seccomp::Unconfined,
                "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => s.no_new_privileges = true,
                o if o.starts_with("seccomp=") || o.starts_with("seccomp:") => {
                    let profile = &o["seccomp=".len()..];
                    if !profile.trim_start().starts_with('{') {
                        return Err(RuntimeError::InvalidArgument(format!(
                            "--security-opt seccomp={profile:?}: give the profile's JSON (agentctl reads the file), \
                             or unconfined"
                        )));
                    }
                    s.seccomp = Seccomp::Profile(profile.to_string());
                }
                o => return Err(RuntimeError::InvalidArgument(format!("unknown --security-opt {o:?}"))),
            }
        }
        Ok(s)
    }

    /// Docker's strings for these options.
    pub fn to_opts(&self) -> Vec<String> {
        let mut v = Vec::new();
        match &self.seccomp {
            Seccomp::Default => {}
            Seccomp::Unconfined => v.push("seccomp=unconfined".to_string()),
            Seccomp::Profile(p) => v.push(format!("seccomp={p}")),
        }
        if self.no_new_privileges {
            v.push("no-new-privileges".into());
        }
        v
    }
}

/// Old records: a list of docker strings, or the typed values.
#[derive(Deserialize)]
#[serde(untagged)]
enum Either<T> {
    Typed(T),
    Docker(String),
}

/// A list of typed values, or of docker strings parsed with `parse`.
fn compat_vec<'de, D, T, E>(
    d: D,
    parse: impl Fn(&str) -> std::result::Result<T, E>,
) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
    E: std::fmt::Display,
{
    Vec::<Either<T>>::deserialize(d)?
        .into_iter()
        .map(|e| match e {
            Either::Typed(v) => Ok(v),
            Either::Docker(s) => parse(&s).map_err(serde::de::Error::custom),
        })
        .collect()
}

pub(super) fn volumes_compat<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Volume>, D::Error> {
    compat_vec(d, parse_volume)
}

pub(super) fn tmpfs_compat<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<TmpfsMount>, D::Error> {
    compat_vec(d, TmpfsMount::parse)
}

pub(super) fn devices_compat<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<DeviceRequest>, D::Error> {
    compat_vec(d, DeviceRequest::parse)
}

pub(super) fn security_compat<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Security, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Typed(Security),
        Docker(Vec<String>),
    }
    match Repr::deserialize(d)? {
        Repr::Typed(s) => Ok(s),
        Repr::Docker(v) => Security::parse(&v).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_strings_parse_once_and_render_back() {
        let v = parse_volume("/no/such/dir:/data:ro").unwrap();
        assert_eq!(
            (v.host.display().to_string(), v.container.as_str(), v.read_only),
            ("/no/such/dir".into(), "/data", true)
        );
        assert_eq!(volume_string(&v), "/no/such/dir:/data:ro");
        assert!(parse_volume("rel:/data").unwrap_err().to_string().contains("\"rel:/data\""));
        assert!(parse_volume("/a:/").is_err() && parse_volume("/a:/b:rx").is_err() && parse_volume("/a").is_err());
        let t = TmpfsMount::parse("/run:size=1m").unwrap();
        assert_eq!((t.path.as_str(), t.options.as_str(), t.to_string()), ("/run", "size=1m", "/run:size=1m".into()));
        assert!(TmpfsMount::parse("/run:$(x)").is_err());
        let d = DeviceRequest::parse("/dev/null:/dev/n:r").unwrap();
        assert_eq!(d.to_string(), "/dev/null:/dev/n:r");
        assert_eq!(DeviceRequest::parse("/dev/null:rw").unwrap().container, "/dev/null");
        assert!(matches!(DeviceRequest::parse("/dev/null:/x:q"), Err(DeviceError::Perms { .. })));
        let s = Security::parse(&["seccomp=unconfined".into(), "no-new-privileges".into()]).unwrap();
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        assert_eq!(Security::parse(&s.to_opts()).unwrap(), s);
        assert!(Security::parse(&["apparmor=x".into()]).unwrap_err().to_string().contains("apparmor=x"));
        assert!(Security::parse(&["seccomp=/etc/p.json".into()]).is_err());
    }

    #[test]
    fn records_with_docker_strings_still_load() {
        #[derive(Deserialize)]
        struct Old {
            #[serde(deserialize_with = "volumes_compat")]
            volumes: Vec<Volume>,
            #[serde(deserialize_with = "tmpfs_compat")]
            tmpfs: Vec<TmpfsMount>,
            #[serde(deserialize_with = "devices_compat")]
            devices: Vec<DeviceRequest>,
            #[serde(deserialize_with = "security_compat")]
            security_opt: Security,
        }
        let old: Old = serde_json::from_str(
            r#"{"volumes":["/a:/b:ro"],"tmpfs":["/t"],"devices":["/dev/null"],"security_opt":["seccomp=unconfined"]}"#,
        )
        .unwrap();
        assert!(old.volumes[0].read_only && old.tmpfs[0].path == "/t" && old.devices[0].perms == "rwm");
        assert_eq!(old.security_opt.seccomp, Seccomp::Unconfined);
        let new = serde_json::json!({
            "volumes": [serde_json::to_value(&old.volumes[0]).unwrap()],
            "tmpfs": [serde_json::to_value(&old.tmpfs[0]).unwrap()],
            "devices": [serde_json::to_value(&old.devices[0]).unwrap()],
            "security_opt": serde_json::to_value(&old.security_opt).unwrap(),
        });
        let back: Old = serde_json::from_value(new).unwrap();
        assert_eq!(back.volumes, old.volumes);
        assert_eq!(back.security_opt, old.security_opt);
    }
}
