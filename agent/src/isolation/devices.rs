//! Device access: `--device` parsing, and the device cgroup (v1) that lets a container open
//! only the harmless nodes of its own /dev plus the devices it was given. Without it, a
//! container with CAP_MKNOD could create a node for the host's disk and read it.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

/// Docker's default device rules: create any node (`m`), open only these.
pub const DEFAULT_ALLOW: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",    // null
    "c 1:5 rwm",    // zero
    "c 1:7 rwm",    // full
    "c 1:8 rwm",    // random
    "c 1:9 rwm",    // urandom
    "c 5:0 rwm",    // tty
    "c 5:1 rwm",    // console
    "c 5:2 rwm",    // ptmx
    "c 136:* rwm",  // pts
    "c 10:200 rwm", // net/tun
];

/// Why a `--device` request is refused.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("invalid device {0:?}: use HOST[:CONTAINER[:PERMS]]")]
    Syntax(String),
    #[error("invalid device {0:?}: paths must be absolute, without ..")]
    Path(String),
    #[error("invalid device {spec:?}: permissions are letters of rwm, not {perms:?}")]
    Perms { spec: String, perms: String },
    #[error("device {}: {source}", .host.display())]
    Host { host: PathBuf, source: std::io::Error },
    #[error("invalid device {spec:?}: {} is not a character or block device", .host.display())]
    NotADevice { spec: String, host: PathBuf },
}

/// A `--device` request, checked against the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub host: PathBuf,
    pub container: String,
    /// `c` or `b`.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    /// Of `rwm`.
    pub perms: String,
}

impl Device {
    /// The device cgroup rule that lets the container use it.
    pub fn rule(&self) -> String {
        format!("{} {}:{} {}", self.kind, self.major, self.minor, self.perms)
    }
}

/// Parses `HOST[:CONTAINER[:PERMS]]`: the host path must be an existing character or block
/// device; the container path defaults to the host path; PERMS defaults to `rwm`.
pub fn parse(spec: &str) -> Result<Device, DeviceError> {
    let (host, container, perms) = split(spec)?;
    resolve(std::path::Path::new(&host), &container, &perms, spec)
}

/// The parts of `HOST[:CONTAINER[:PERMS]]` (host, container, perms), checked for syntax
/// only: absolute paths without `..`, permissions of `rwm`.
pub fn split(spec: &str) -> Result<(String, String, String), DeviceError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if !c.is_empty() && c.chars().all(|x| "rwm".contains(x)) && !c.starts_with('/') => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(DeviceError::Syntax(spec.into())),
    };
    if !host.starts_with('/') || !container.starts_with('/') || container.split('/').any(|c| c == "..") {
        return Err(DeviceError::Path(spec.into()));
    }
    if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
        return Err(DeviceError::Perms { spec: spec.into(), perms: perms.into() });
    }
    Ok((host.to_string(), container.to_string(), perms.to_string()))
}

/// The host's node at `host` now (`spec` names the request in errors).
pub fn resolve(host: &std::path::Path, container: &str, perms: &str, spec: &str) -> Result<Device, DeviceError> {
    let md = std::fs::metadata(host).map_err(|source| DeviceError::Host { host: host.into(), source })?;
    let kind = if md.file_type().is_char_device() {
        'c'
    } else if md.file_type().is_block_device() {
        'b'
    } else {
        return Err(DeviceError::NotADevice { spec: spec.into(), host: host.into() });
    };
    let rdev = md.rdev();
    Ok(Device {
        host: host.to_path_buf(),
        container: container.to_string(),
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        perms: perms.to_string(),
    })
}

/// A `--device-cgroup-rule` (`c|b|a MAJ:MIN|* PERMS`, docker's syntax): added to the
/// device cgroup after the defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceRule {
    /// `c`, `b` or `a` (all).
    pub kind: char,
    /// `None`: any (`*`).
    pub major: Option<u64>,
    pub minor: Option<u64>,
    /// Of `rwm`.
    pub perms: String,
}

impl DeviceRule {
    /// Parses docker's `TYPE MAJOR:MINOR PERMS` (`c 1:3 rwm`, `b *:* m`, `a *:* rwm`).
    pub fn parse(rule: &str) -> Result<DeviceRule, String> {
        let bad = || {
            format!("invalid --device-cgroup-rule {rule:?}: use 'c|b|a MAJOR:MINOR PERMS' (MAJOR and MINOR a number or *, PERMS of rwm), e.g. 'c 1:3 rwm'")
        };
        let parts: Vec<&str> = rule.split_whitespace().collect();
        let [kind, nums, perms] = parts.as_slice() else { return Err(bad()) };
        let kind = match *kind {
            "c" | "b" | "a" => kind.chars().next().ok_or_else(bad)?,
            _ => return Err(bad()),
        };
        let (maj, min) = nums.split_once(':').ok_or_else(bad)?;
        let num = |s: &str| -> Result<Option<u64>, String> {
            match s {
                "*" => Ok(None),
                n if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => n.parse().map(Some).map_err(|_| bad()),
                _ => Err(bad()),
            }
        };
        let (major, minor) = (num(maj)?, num(min)?);
        if perms.is_empty() || perms.len() > 3 || !perms.chars().all(|c| "rwm".contains(c)) {
            return Err(bad());
        }
        Ok(DeviceRule { kind, major, minor, perms: perms.to_string() })
    }
}

impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "*".into());
        write!(f, "{} {}:{} {}", self.kind, n(self.major), n(self.minor), self.perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_cgroup_rules() {
        let r = DeviceRule::parse("c 1:3 rwm").unwrap();
        assert_eq!((r.kind, r.major, r.minor, r.to_string().as_str()), ('c', Some(1), Some(3), "c 1:3 rwm"));
        assert_eq!(DeviceRule::parse("b *:* m").unwrap().to_string(), "b *:* m");
        assert_eq!(DeviceRule::parse("a 7:* r").unwrap().minor, None);
        for bad in ["", "c 1:3", "x 1:3 rwm", "c 1-3 rwm", "c 1:3 rwx", "c a:3 rwm", "c 1:3 rwm extra", "c :3 r"] {
            let e = DeviceRule::parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn device_specs() {
        let d = parse("/dev/null").unwrap();
        assert_eq!((d.kind, d.major, d.minor, d.container.as_str()), ('c', 1, 3, "/dev/null"));
        assert_eq!(d.rule(), "c 1:3 rwm");
        let d = parse("/dev/null:/dev/mynull:r").unwrap();
        assert_eq!((d.container.as_str(), d.perms.as_str()), ("/dev/mynull", "r"));
        assert_eq!(parse("/dev/zero:rw").unwrap().perms, "rw");
        let e = parse("/etc/passwd").unwrap_err().to_string();
        assert_eq!(e, "invalid device \"/etc/passwd\": /etc/passwd is not a character or block device");
        assert!(parse("/dev/nope-x").unwrap_err().to_string().starts_with("device /dev/nope-x: "));
        assert!(parse("/dev/nope-x").is_err());
        assert!(parse("dev/null").is_err());
        assert!(parse("/dev/null:/dev/../x").is_err());
        assert!(parse("/dev/null:/dev/x:rwz").is_err());
    }
}
