//! The typed parts of a container spec: bind mounts, tmpfs mounts, device requests and the
//! security options, parsed once where a request enters (the API from docker's strings, the
//! CRI from its messages) and stored typed in the record. Start uses them as they are and
//! only checks what the host may have changed since (a bind source or device gone).
//!
//! Records written before these were typed held docker's strings; they still load.

use super::{Result, RuntimeError};
use crate::isolation::devices::{Device, DeviceError};
use crate::isolation::spec::{Propagation, Volume};
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

/// Parses `-v HOST:CONTAINER[:OPTIONS]`, OPTIONS a comma-separated list of `ro`/`rw` and
/// a propagation (`rprivate`, `private`, `rslave`, `slave`, `rshared`, `shared`), as
/// docker: both paths absolute, without `..` (whether the host path exists, and is on a
/// mount that can propagate, is checked at create and at every start).
pub fn parse_volume(v: &str) -> Result<Volume> {
    let parts: Vec<&str> = v.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, ""),
        [h, c, m] => (*h, *c, *m),
        _ => {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid volume {v:?}: use HOST:CONTAINER[:ro|rw][,PROPAGATION]"
            )))
        }
    };
    let bad = |m: &str| RuntimeError::InvalidArgument(format!("invalid volume {v:?}: {m}"));
    let (mut read_only, mut propagation) = (None, None);
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match (o, Propagation::parse(o)) {
            ("ro" | "rw", _) if read_only.is_none() => read_only = Some(o == "ro"),
            (_, Some(p)) if propagation.is_none() => propagation = Some(p),
            ("ro" | "rw", _) | (_, Some(_)) => return Err(bad(&format!("mode {mode:?} repeats an option"))),
            (o, None) => {
                return Err(bad(&format!("mode {o:?} is not ro, rw or a propagation (rprivate, rslave, rshared…)")))
            }
        }
    }
    let container = container_path(ctr, "volume", v)?;
    volume(host, &container, read_only.unwrap_or(false), propagation.unwrap_or_default()).map_err(|e| match e {
        RuntimeError::InvalidArgument(m) => bad(&m),
        e => e,
    })
}

/// A named (or anonymous) volume a container mounts: `-v NAME:/path[:ro|rw]`, `-v /path`
/// (anonymous: named at create), `--mount type=volume`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NamedVolume {
    pub name: String,
    pub container: String,
    pub read_only: bool,
    /// Made for this container: `rm -v` and `--rm` remove it with the container.
    #[serde(default)]
    pub anonymous: bool,
    /// `nocopy`: an empty volume does not get the image's files.
    #[serde(default)]
    pub no_copy: bool,
}

/// What one `-v` is: a bind of a host path, or a volume.
#[derive(Debug, PartialEq)]
pub enum VolumeArg {
    Bind(Volume),
    Named(NamedVolume),
}

/// Parses a `-v` as docker does: a source that is not an absolute path is a volume name
/// (checked against docker's rule), a lone container path an anonymous volume.
pub fn parse_volume_arg(v: &str) -> Result<VolumeArg> {
    let parts: Vec<&str> = v.split(':').collect();
    let bad = |m: String| RuntimeError::InvalidArgument(format!("invalid volume {v:?}: {m}"));
    let (name, ctr, mode) = match parts.as_slice() {
        [c] if c.starts_with('/') => ("", *c, ""),
        [h, ..] if h.starts_with('/') => return parse_volume(v).map(VolumeArg::Bind),
        [n, c] => (*n, *c, ""),
        [n, c, m] => (*n, *c, *m),
        _ => return Err(bad("use NAME:CONTAINER[:ro|rw], HOST:CONTAINER[:OPTIONS] or CONTAINER".into())),
    };
    if !name.is_empty() {
        crate::volume::validate_name(name).map_err(|e| {
            bad(format!("volume name {e}; if you intended to pass a host directory, use an absolute path"))
        })?;
    }
    let (mut read_only, mut no_copy) = (None, false);
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" if read_only.is_none() => read_only = Some(o == "ro"),
            "nocopy" if !no_copy => no_copy = true,
            "ro" | "rw" | "nocopy" => return Err(bad(format!("mode {mode:?} repeats an option"))),
            m => return Err(bad(format!("mode {m:?} is not ro, rw or nocopy (a volume takes no propagation)"))),
        }
    }
    let container = container_path(ctr, "volume", v)?;
    Ok(VolumeArg::Named(NamedVolume {
        name: name.into(),
        container,
        read_only: read_only.unwrap_or(false),
        anonymous: name.is_empty(),
        no_copy,
    }))
}

/// The docker form of a volume mount (`NAME:CONTAINER[:ro]`).
pub fn named_volume_string(v: &NamedVolume) -> String {
    let opts: Vec<&str> = [(v.read_only, "ro"), (v.no_copy, "nocopy")].iter().filter(|o| o.0).map(|o| o.1).collect();
    let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
    format!("{}:{}{opts}", v.name, v.container)
}

/// A bind mount from its parts (the CRI's Mount, `--mount type=bind`), with the same checks as `-v`.
pub fn volume(host: &str, container: &str, read_only: bool, propagation: Propagation) -> Result<Volume> {
    if !host.starts_with('/') || host.split('/').any(|c| c == "..") || host.contains('\0') {
        return Err(RuntimeError::InvalidArgument(format!(
            "the host path {host:?} must be absolute and without '..' (named volumes are not supported)"
        )));
    }
    let container = container_path(container, "mount target", container)?;
    Ok(Volume { host: host.into(), container, read_only, propagation })
}

/// The docker form of a volume (`HOST:CONTAINER[:ro][,PROPAGATION]`).
pub fn volume_string(v: &Volume) -> String {
    let mut opts = Vec::new();
    if v.read_only {
        opts.push("ro");
    }
    if v.propagation != Propagation::Rprivate {
        opts.push(v.propagation.name());
    }
    let opts = if opts.is_empty() { String::new() } else { format!(":{}", opts.join(",")) };
    format!("{}:{}{opts}", v.host.display(), v.container)
}

/// A container path list (masked or read-only paths), each checked like a mount target.
pub fn container_paths(paths: &[String], what: &str) -> Result<Vec<String>> {
    paths.iter().map(|p| container_path(p, what, p)).collect()
}

/// A supplementary group (`--group-add`): a number, or a name looked up in the
/// container's /etc/group when it starts.
pub fn group(g: &str) -> Result<String> {
    let ok = !g.is_empty()
        && g.len() <= 256
        && (g.parse::<u32>().is_ok()
            || (!g.bytes().all(|b| b.is_ascii_digit())
                && g.bytes().all(|b| b.is_ascii_graphic() && b != b':' && b != b',')));
    if !ok {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid group {g:?}: give a group name or a number up to {}",
            u32::MAX
        )));
    }
    Ok(g.to_string())
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
    /// A Docker-format profile read from a file on the agent's host at create (the CRI's
    /// Localhost profiles): its path, for messages, and its JSON.
    File { path: PathBuf, json: String },
}

impl Seccomp {
    /// The profile in the file at `path` (absolute), read now: a missing or unreadable
    /// file, or one that is not JSON, is InvalidArgument naming the path.
    pub fn from_file(path: &str) -> Result<Seccomp> {
        let bad = |why: String| RuntimeError::InvalidArgument(format!("seccomp profile {path:?}: {why}"));
        if !path.starts_with('/') {
            return Err(bad("the path must be absolute".into()));
        }
        let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
        if !meta.is_file() || meta.len() > 4 << 20 {
            return Err(bad("not a regular file of at most 4 MiB".into()));
        }
        let json = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        serde_json::from_str::<serde_json::Value>(&json).map_err(|e| bad(format!("not JSON: {e}")))?;
        Ok(Seccomp::File { path: path.into(), json })
    }

    /// The custom profile's JSON, if any.
    pub fn profile(&self) -> Option<&str> {
        match self {
            Seccomp::Profile(p) | Seccomp::File { json: p, .. } => Some(p),
            _ => None,
        }
    }

    /// Where a custom profile came from, for messages.
    pub fn source(&self) -> String {
        match self {
            Seccomp::File { path, .. } => format!("seccomp profile {}", path.display()),
            _ => "seccomp profile".into(),
        }
    }
}

/// `--security-opt` values, typed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Security {
    #[serde(default)]
    pub seccomp: Seccomp,
    /// `no-new-privileges` was asked for (our containers get it unless `new_privileges`).
    #[serde(default)]
    pub no_new_privileges: bool,
    /// `no-new-privileges=false` (the CRI's `no_new_privs: false`): no_new_privs is not set.
    #[serde(default)]
    pub new_privileges: bool,
    /// Paths masked instead of the default ones (the CRI's masked_paths; empty with
    /// `systempaths=unconfined`).
    #[serde(default)]
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only instead of the default ones (the CRI's readonly_paths).
    #[serde(default)]
    pub readonly_paths: Option<Vec<String>>,
}

impl Security {
    /// Parses docker's `--security-opt` values.
    pub fn parse(opts: &[String]) -> Result<Security> {
        let mut s = Security::default();
        for o in opts {
            match o.as_str() {
                "seccomp=unconfined" | "seccomp:unconfined" => s.seccomp = Seccomp::Unconfined,
                "no-new-privileges" | "no-new-privileges=true" | "no-new-privileges:true" => {
                    (s.no_new_privileges, s.new_privileges) = (true, false)
                }
                "no-new-privileges=false" | "no-new-privileges:false" => {
                    (s.no_new_privileges, s.new_privileges) = (false, true)
                }
                "systempaths=unconfined" | "systempaths:unconfined" => {
                    (s.masked_paths, s.readonly_paths) = (Some(vec![]), Some(vec![]))
                }
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
            Seccomp::Profile(p) | Seccomp::File { json: p, .. } => v.push(format!("seccomp={p}")),
        }
        if self.no_new_privileges {
            v.push("no-new-privileges".into());
        }
        if self.new_privileges {
            v.push("no-new-privileges=false".into());
        }
        if self.masked_paths.as_ref().is_some_and(|m| m.is_empty())
            && self.readonly_paths.as_ref().is_some_and(|r| r.is_empty())
        {
            v.push("systempaths=unconfined".into());
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

/// `--expose PORT[/PROTO]` (a range `8000-8002` too) as `PORT/PROTO` entries, like the
/// image's ExposedPorts.
pub fn expose(items: &[String]) -> Result<Vec<String>, RuntimeError> {
    let mut out = Vec::new();
    for e in items {
        let bad = || RuntimeError::InvalidArgument(format!("invalid --expose {e:?}: use PORT[/tcp|udp] or START-END"));
        let (ports, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        if !matches!(proto, "tcp" | "udp" | "sctp") {
            return Err(bad());
        }
        let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
        let (a, b) = (a.parse::<u16>().map_err(|_| bad())?, b.parse::<u16>().map_err(|_| bad())?);
        if a == 0 || b < a || b - a > 1000 {
            return Err(bad());
        }
        for p in a..=b {
            let v = format!("{p}/{proto}");
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_ports_and_ranges() {
        assert_eq!(expose(&["80".into(), "53/udp".into()]).unwrap(), ["80/tcp", "53/udp"]);
        assert_eq!(expose(&["8000-8002".into()]).unwrap(), ["8000/tcp", "8001/tcp", "8002/tcp"]);
        for bad in ["0", "x", "80/icmp", "9-8", "1-5000"] {
            assert!(expose(&[bad.into()]).unwrap_err().to_string().contains(bad), "{bad}");
        }
    }

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
        let off = Security::parse(&["no-new-privileges=false".into(), "systempaths=unconfined".into()]).unwrap();
        assert!(off.new_privileges && !off.no_new_privileges);
        assert_eq!((off.masked_paths.as_deref(), off.readonly_paths.as_deref()), (Some(&[][..]), Some(&[][..])));
        assert_eq!(Security::parse(&off.to_opts()).unwrap(), off);
        let on = Security::parse(&["no-new-privileges=false".into(), "no-new-privileges".into()]).unwrap();
        assert!(on.no_new_privileges && !on.new_privileges, "the last one wins");
    }

    #[test]
    fn named_and_anonymous_volumes() {
        let VolumeArg::Named(n) = parse_volume_arg("data:/d:ro").unwrap() else { panic!("not named") };
        assert_eq!((n.name.as_str(), n.container.as_str(), n.read_only, n.anonymous), ("data", "/d", true, false));
        assert_eq!(named_volume_string(&n), "data:/d:ro");
        let VolumeArg::Named(c) = parse_volume_arg("data:/d:nocopy,ro").unwrap() else { panic!("not named") };
        assert!(c.no_copy && c.read_only);
        assert_eq!(named_volume_string(&c), "data:/d:ro,nocopy");
        let VolumeArg::Named(a) = parse_volume_arg("/cache").unwrap() else { panic!("not anonymous") };
        assert!(a.anonymous && a.name.is_empty() && a.container == "/cache");
        assert!(matches!(parse_volume_arg("/h:/c:ro").unwrap(), VolumeArg::Bind(_)));
        for bad in ["_x:/d", "a b:/d", "data:/d:rshared", "data:rel", "x:/d", "data:/d:ro,rw", "data:/d:nocopy,nocopy"]
        {
            let e = parse_volume_arg(bad).unwrap_err();
            assert!(matches!(e, RuntimeError::InvalidArgument(_)) && e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn volume_modes_and_propagation_as_docker_parses_them() {
        let v = parse_volume("/src:/dst:ro,rshared").unwrap();
        assert!(v.read_only && v.propagation == Propagation::Rshared);
        assert_eq!(volume_string(&v), "/src:/dst:ro,rshared");
        assert_eq!(parse_volume(&volume_string(&v)).unwrap(), v);
        let v = parse_volume("/src:/dst:rslave").unwrap();
        assert!(!v.read_only && v.propagation == Propagation::Rslave);
        assert_eq!(parse_volume("/src:/dst").unwrap().propagation, Propagation::Rprivate);
        assert_eq!(volume_string(&parse_volume("/src:/dst:rprivate").unwrap()), "/src:/dst");
        for bad in ["/s:/d:rshared,rslave", "/s:/d:ro,rw", "/s:/d:bogus", "/s:/d:ro,z"] {
            let e = parse_volume(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        // An old record's volume (no propagation) still loads.
        let old: Volume = serde_json::from_str(r#"{"host":"/a","container":"/b","read_only":false}"#).unwrap();
        assert_eq!(old.propagation, Propagation::Rprivate);
    }

    #[test]
    fn groups_paths_and_profile_files() {
        assert_eq!(group("staff").unwrap(), "staff");
        assert_eq!(group("4000").unwrap(), "4000");
        for bad in ["", "a:b", "4294967296", "a b", "x,y"] {
            assert!(group(bad).unwrap_err().to_string().contains(&format!("{bad:?}")), "{bad}");
        }
        assert_eq!(container_paths(&["/proc/x/".into()], "masked path").unwrap(), ["/proc/x"]);
        assert!(container_paths(&["proc/x".into()], "masked path").is_err());
        assert!(container_paths(&["/proc/../etc".into()], "masked path").is_err());
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope.json");
        let e = Seccomp::from_file(missing.to_str().unwrap()).unwrap_err();
        assert!(matches!(&e, RuntimeError::InvalidArgument(m) if m.contains("nope.json")), "{e}");
        let f = d.path().join("p.json");
        std::fs::write(&f, "{not json").unwrap();
        let e = Seccomp::from_file(f.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("p.json") && e.contains("not JSON"), "{e}");
        std::fs::write(&f, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let s = Seccomp::from_file(f.to_str().unwrap()).unwrap();
        assert_eq!(s.profile(), Some(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#));
        assert!(Seccomp::from_file("rel/p.json").is_err());
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
