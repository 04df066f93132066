//! Volume names and the `local` driver's options, checked as docker checks them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// docker's rule for a volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (two characters at least).
pub fn validate_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 255 {
        Ok(())
    } else {
        Err(format!(
            "{name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
        ))
    }
}

/// What `-o type=…,device=…,o=…` asks of the `local` driver.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DriverOptions {
    /// The filesystem type (`tmpfs`, `ext4`, …; `none` with `o=bind` for a host directory).
    pub fs_type: Option<String>,
    pub device: Option<String>,
    /// mount(8) options: flags (`ro`, `nosuid`, `bind`, …) and data (`size=64m`, …).
    pub o: Option<String>,
}

impl DriverOptions {
    /// Checks the options: only `type`, `device` and `o`, `type` and `device` together
    /// (as docker's local driver), a bind's device an absolute existing directory.
    pub fn parse(opts: &BTreeMap<String, String>) -> Result<DriverOptions, String> {
        let mut d = DriverOptions::default();
        for (k, v) in opts {
            match k.as_str() {
                "type" => d.fs_type = Some(v.clone()),
                "device" => d.device = Some(v.clone()),
                "o" => d.o = Some(v.clone()),
                k => return Err(format!("invalid option key: {k:?} (type, device or o)")),
            }
        }
        if d.fs_type.is_some() != d.device.is_some() {
            return Err("the options type and device go together (as docker's local driver)".into());
        }
        if d.o.is_some() && d.fs_type.is_none() {
            return Err("option o needs type and device".into());
        }
        if d.is_bind() {
            let dev = d.device.as_deref().unwrap_or_default();
            if !dev.starts_with('/') || !Path::new(dev).is_dir() {
                return Err(format!("bind device {dev:?} is not an absolute path to a directory"));
            }
        }
        Ok(d)
    }

    /// Nothing to mount: a plain directory.
    pub fn is_plain(&self) -> bool {
        self.fs_type.is_none()
    }

    fn is_bind(&self) -> bool {
        self.o.as_deref().is_some_and(|o| o.split(',').any(|f| f == "bind" || f == "rbind"))
    }

    /// The flags and data of `o` for mount(2).
    fn flags_and_data(&self) -> (nix::mount::MsFlags, String) {
        use nix::mount::MsFlags;
        let mut flags = MsFlags::empty();
        let mut data = Vec::new();
        for f in self.o.as_deref().unwrap_or_default().split(',').filter(|f| !f.is_empty()) {
            match f {
                "ro" => flags |= MsFlags::MS_RDONLY,
                "rw" => {}
                "nosuid" => flags |= MsFlags::MS_NOSUID,
                "nodev" => flags |= MsFlags::MS_NODEV,
                "noexec" => flags |= MsFlags::MS_NOEXEC,
                "bind" => flags |= MsFlags::MS_BIND,
                "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
                f => data.push(f),
            }
        }
        (flags, data.join(","))
    }

    /// Mounts the device on `target` as the options say.
    pub fn mount(&self, target: &Path) -> Result<(), String> {
        let (flags, data) = self.flags_and_data();
        let fs_type = self.fs_type.as_deref().unwrap_or("none");
        let device = PathBuf::from(self.device.as_deref().unwrap_or("none"));
        let data = (!data.is_empty()).then_some(data.as_str());
        nix::mount::mount(Some(&device), target, Some(fs_type), flags, data).map_err(|e| {
            format!("mount {} (type {fs_type}, options {:?}) on {}: {e}", device.display(), self.o, target.display())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_allows_them() {
        for ok in ["data", "a1", "my_vol.2-x", "0abc"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "_x", ".x", "-x", "a/b", "a b", "a:b", "../x", "ü12"] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn driver_options() {
        assert!(DriverOptions::parse(&opts(&[])).unwrap().is_plain());
        let d =
            DriverOptions::parse(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=64m,nosuid")])).unwrap();
        assert_eq!(d.fs_type.as_deref(), Some("tmpfs"));
        let (flags, data) = d.flags_and_data();
        assert_eq!((flags, data.as_str()), (nix::mount::MsFlags::MS_NOSUID, "size=64m"));
        let bind = DriverOptions::parse(&opts(&[("type", "none"), ("device", "/tmp"), ("o", "bind")])).unwrap();
        assert!(bind.is_bind() && bind.flags_and_data().0.contains(nix::mount::MsFlags::MS_BIND));
        for (bad, says) in [
            (opts(&[("size", "1m")]), "\"size\""),
            (opts(&[("type", "tmpfs")]), "go together"),
            (opts(&[("o", "size=1m")]), "needs type"),
            (opts(&[("type", "none"), ("device", "/no/such/dir"), ("o", "bind")]), "/no/such/dir"),
        ] {
            let e = DriverOptions::parse(&bad).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
    }
}
