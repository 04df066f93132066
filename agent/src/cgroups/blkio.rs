//! Per-device block I/O limits: docker's `--device-read-bps`/`--device-write-bps`
//! (`PATH:RATE`, RATE with kb/mb/gb), `--device-read-iops`/`--device-write-iops` (`PATH:N`)
//! and `--blkio-weight-device` (`PATH:WEIGHT`, 10-1000), typed once where a request enters
//! (the path stat'ed: it must be a block device), then written as v1
//! `blkio.throttle.*_device` / `blkio.weight_device` lines or v2 `io.max` / `io.weight`.

use serde::{Deserialize, Serialize};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// A block device's limit: the path as given, its numbers, and the value (bytes or I/Os
/// per second, or a weight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLimit {
    pub path: String,
    pub major: u64,
    pub minor: u64,
    pub value: u64,
}

impl DeviceLimit {
    /// `MAJ:MIN VALUE`, as the cgroup files take it.
    pub fn line(&self) -> String {
        format!("{}:{} {}", self.major, self.minor, self.value)
    }
}

/// The per-device limits of a container (each list as docker keeps it, in order).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioDevices {
    #[serde(default)]
    pub read_bps: Vec<DeviceLimit>,
    #[serde(default)]
    pub write_bps: Vec<DeviceLimit>,
    #[serde(default)]
    pub read_iops: Vec<DeviceLimit>,
    #[serde(default)]
    pub write_iops: Vec<DeviceLimit>,
    #[serde(default)]
    pub weight: Vec<DeviceLimit>,
}

impl BlkioDevices {
    pub fn is_empty(&self) -> bool {
        self.read_bps.is_empty()
            && self.write_bps.is_empty()
            && self.read_iops.is_empty()
            && self.write_iops.is_empty()
            && self.weight.is_empty()
    }
}

/// Why a device limit was refused (InvalidArgument, naming the value).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidDeviceLimit(pub String);

/// Which flag a value came with: how its value part is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bytes per second with docker's units (`10mb`, `1gb`, `512k`).
    Bps,
    /// A plain count per second.
    Iops,
    /// A weight 10-1000.
    Weight,
}

/// Docker's `RAMInBytes`: a number (decimals allowed) with an optional binary unit
/// `b|k|m|g|t|p`, optionally followed by `b`/`ib` (`10mb`, `1.5g`, `512KiB`).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1 {
        return None;
    }
    let unit = unit.trim_start_matches(' ').to_ascii_lowercase();
    let mut u = unit.as_str();
    let mult: u64 = match u.chars().next() {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        Some('t') => 1 << 40,
        Some('p') => 1 << 50,
        _ => 1,
    };
    if mult > 1 {
        u = &u[1..];
        u = u.strip_prefix('i').unwrap_or(u);
    }
    if !(u.is_empty() || u == "b") {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let bytes = v * mult as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Parses `PATH:VALUE` of `flag` and stats PATH (an existing block device).
pub fn parse(spec: &str, flag: &str, kind: Kind) -> Result<DeviceLimit, InvalidDeviceLimit> {
    let bad = |m: String| Err(InvalidDeviceLimit(m));
    let Some((path, value)) = spec.rsplit_once(':') else {
        return bad(format!("invalid {flag} {spec:?}: use PATH:{}", value_syntax(kind)));
    };
    if !path.starts_with("/dev/") || path.split('/').any(|c| c == "..") {
        return bad(format!("invalid {flag} {spec:?}: the device path must start with /dev/"));
    }
    let value = match kind {
        Kind::Bps => parse_bytes(value),
        Kind::Iops => value.parse::<u64>().ok(),
        Kind::Weight => value.parse::<u64>().ok().filter(|w| (10..=1000).contains(w)),
    };
    let Some(value) = value else {
        return bad(format!("invalid {flag} {spec:?}: the value must be {}", value_syntax(kind)));
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return bad(format!("{flag} {spec:?}: {path} does not exist"));
        }
        Err(e) => return bad(format!("{flag} {spec:?}: {path}: {e}")),
    };
    if !meta.file_type().is_block_device() {
        return bad(format!("{flag} {spec:?}: {path} is not a block device"));
    }
    let rdev = meta.rdev();
    Ok(DeviceLimit {
        path: path.to_string(),
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        value,
    })
}

fn value_syntax(kind: Kind) -> &'static str {
    match kind {
        Kind::Bps => "a number of bytes per second, optionally with a unit kb, mb or gb (10mb)",
        Kind::Iops => "a whole number of I/Os per second",
        Kind::Weight => "a weight from 10 to 1000",
    }
}

/// The v1 files and lines (one write per device).
pub(super) fn v1_writes(b: &BlkioDevices) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (file, list) in [
        ("blkio.throttle.read_bps_device", &b.read_bps),
        ("blkio.throttle.write_bps_device", &b.write_bps),
        ("blkio.throttle.read_iops_device", &b.read_iops),
        ("blkio.throttle.write_iops_device", &b.write_iops),
        ("blkio.weight_device", &b.weight),
    ] {
        out.extend(list.iter().map(|d| (file, d.line())));
    }
    out
}

/// The v2 writes: one `io.max` line per device with every key of it that is set
/// (`MAJ:MIN rbps=.. wbps=.. riops=.. wiops=..`), then one `io.weight` line per device.
pub(super) fn v2_writes(b: &BlkioDevices) -> Vec<(&'static str, String)> {
    let mut devices: Vec<(u64, u64)> = Vec::new();
    for d in b.read_bps.iter().chain(&b.write_bps).chain(&b.read_iops).chain(&b.write_iops) {
        if !devices.contains(&(d.major, d.minor)) {
            devices.push((d.major, d.minor));
        }
    }
    let mut out = Vec::new();
    for (maj, min) in devices {
        let mut line = format!("{maj}:{min}");
        for (key, list) in
            [("rbps", &b.read_bps), ("wbps", &b.write_bps), ("riops", &b.read_iops), ("wiops", &b.write_iops)]
        {
            // The last one given for a device wins, as the kernel's own would.
            if let Some(d) = list.iter().rev().find(|d| (d.major, d.minor) == (maj, min)) {
                line.push_str(&format!(" {key}={}", d.value));
            }
        }
        out.push(("io.max", line));
    }
    out.extend(b.weight.iter().map(|d| ("io.weight", d.line())));
    out
}

/// Reads `MAJ:MIN VALUE` lines of a v1 throttle file back (the paths are not known).
pub(super) fn read_lines(text: &str) -> Vec<DeviceLimit> {
    text.lines()
        .filter_map(|l| {
            let (dev, v) = l.trim().split_once(' ')?;
            let (maj, min) = dev.split_once(':')?;
            Some(DeviceLimit {
                path: String::new(),
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                value: v.trim().parse().ok()?,
            })
        })
        .collect()
}

/// Reads v2 `io.max` back (`MAJ:MIN rbps=max wbps=1048576 …`; `max` is no limit).
pub(super) fn read_io_max(text: &str) -> BlkioDevices {
    let mut b = BlkioDevices::default();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((maj, min)) = it.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else { continue };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(value) = v.parse::<u64>() else { continue };
            let d = DeviceLimit { path: String::new(), major, minor, value };
            match k {
                "rbps" => b.read_bps.push(d),
                "wbps" => b.write_bps.push(d),
                "riops" => b.read_iops.push(d),
                "wiops" => b.write_iops.push(d),
                _ => {}
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_units() {
        assert_eq!(parse_bytes("10mb"), Some(10 << 20));
        assert_eq!(parse_bytes("1gb"), Some(1 << 30));
        assert_eq!(parse_bytes("512kb"), Some(512 << 10));
        assert_eq!(parse_bytes("512k"), Some(512 << 10));
        assert_eq!(parse_bytes("1.5M"), Some(3 << 19));
        assert_eq!(parse_bytes("2KiB"), Some(2048));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("100b"), Some(100));
        for bad in ["", "mb", "-1mb", "10xb", "1..2m", "10mbb", ".5m"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let e = parse("/dev/null", "--device-read-bps", Kind::Bps).unwrap_err();
        assert!(e.0.contains("use PATH:"), "{e}");
        let e = parse("/dev/null:10xb", "--device-read-bps", Kind::Bps).unwrap_err();
        assert!(e.0.contains("\"/dev/null:10xb\"") && e.0.contains("kb, mb or gb"), "{e}");
        let e = parse("/dev/null:1.5", "--device-read-iops", Kind::Iops).unwrap_err();
        assert!(e.0.contains("whole number"), "{e}");
        let e = parse("/dev/null:5", "--blkio-weight-device", Kind::Weight).unwrap_err();
        assert!(e.0.contains("10 to 1000"), "{e}");
        let e = parse("/tmp/x:1mb", "--device-write-bps", Kind::Bps).unwrap_err();
        assert!(e.0.contains("must start with /dev/"), "{e}");
        let e = parse("/dev/no-such-disk:1mb", "--device-write-bps", Kind::Bps).unwrap_err();
        assert!(e.0.contains("/dev/no-such-disk does not exist"), "{e}");
        let e = parse("/dev/null:1mb", "--device-write-bps", Kind::Bps).unwrap_err();
        assert!(e.0.contains("/dev/null is not a block device"), "{e}");
    }

    fn dev(major: u64, minor: u64, value: u64) -> DeviceLimit {
        DeviceLimit { path: format!("/dev/x{minor}"), major, minor, value }
    }

    #[test]
    fn v1_and_v2_lines() {
        let b = BlkioDevices {
            read_bps: vec![dev(254, 0, 1 << 20)],
            write_bps: vec![dev(254, 0, 2 << 20), dev(7, 1, 5)],
            write_iops: vec![dev(254, 0, 100)],
            weight: vec![dev(254, 0, 300)],
            ..Default::default()
        };
        let v1 = v1_writes(&b);
        assert!(v1.contains(&("blkio.throttle.read_bps_device", "254:0 1048576".into())));
        assert!(v1.contains(&("blkio.throttle.write_bps_device", "7:1 5".into())));
        assert!(v1.contains(&("blkio.weight_device", "254:0 300".into())));
        assert_eq!(
            v2_writes(&b),
            vec![
                ("io.max", "254:0 rbps=1048576 wbps=2097152 wiops=100".to_string()),
                ("io.max", "7:1 wbps=5".to_string()),
                ("io.weight", "254:0 300".to_string()),
            ]
        );
        let back = read_io_max("254:0 rbps=1048576 wbps=max riops=max wiops=100\n");
        assert_eq!((back.read_bps[0].value, back.write_iops[0].value, back.write_bps.len()), (1 << 20, 100, 0));
        assert_eq!(read_lines("254:0 1048576\n")[0].line(), "254:0 1048576");
    }
}
