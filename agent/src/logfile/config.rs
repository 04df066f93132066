//! `--log-driver` and `--log-opt`, typed, and agentd's `[logs]` defaults.
//!
//! Docker's `json-file` and `local` both mean our own framed file (`logfile`), rotated by
//! the shim; `none` means no log file at all (`logs` answers docker's "configured logging
//! driver does not support reading"). Sizes are read as docker reads them: `json-file`'s
//! `max-size` in decimal units (`10m` = 10,000,000 bytes, `units.FromHumanSize`), `local`'s
//! in binary ones (`10m` = 10 MiB, `units.RAMInBytes`).

use super::Rotation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const JSON_FILE: &str = "json-file";
pub const LOCAL: &str = "local";
pub const NONE: &str = "none";

/// What docker answers `logs` of a container whose driver keeps no log.
pub const NOT_READABLE: &str = "configured logging driver does not support reading";

/// A container's logging, as resolved at create (the `[logs]` defaults filled in).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogConfig {
    /// `json-file`, `local` or `none` (empty: not given; resolved at create).
    #[serde(default)]
    pub driver: String,
    /// Rotate when the file would grow past this many bytes (`None`: never).
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Files kept, the current one included (with `max_size`; default 1).
    #[serde(default)]
    pub max_file: Option<u32>,
    /// Rotated files are gzipped.
    #[serde(default)]
    pub compress: Option<bool>,
    /// `labels=`: the container's labels `logs --details` shows.
    #[serde(default)]
    pub labels: Vec<String>,
    /// `env=`: the container's variables `logs --details` shows.
    #[serde(default)]
    pub env: Vec<String>,
    /// The options as given (for inspect).
    #[serde(default)]
    pub opts: BTreeMap<String, String>,
}

/// `[logs]` in agentd's config: what a container that names no limits gets.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogDefaults {
    /// `json-file` (default), `local` or `none`.
    pub driver: Option<String>,
    /// Like `--log-opt max-size` (`"10m"`, or a number of bytes).
    pub max_size: Option<SizeValue>,
    /// Like `--log-opt max-file`.
    pub max_file: Option<u32>,
    /// Like `--log-opt compress`.
    pub compress: Option<bool>,
}

/// A size in the config file: bytes, or docker's text (`"10m"`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl LogDefaults {
    /// Checks the section as `--log-opt` would be checked.
    pub fn validate(&self) -> Result<(), String> {
        self.as_config().map(|_| ()).map_err(|e| format!("[logs]: {e}"))
    }

    fn as_config(&self) -> Result<LogConfig, String> {
        let mut opts = BTreeMap::new();
        let driver = self.driver.clone().unwrap_or_default();
        if let Some(s) = &self.max_size {
            let v = match s {
                SizeValue::Bytes(b) => b.to_string(),
                SizeValue::Text(t) => t.clone(),
            };
            opts.insert("max-size".to_string(), v);
        }
        if let Some(n) = self.max_file {
            opts.insert("max-file".to_string(), n.to_string());
        }
        if let Some(c) = self.compress {
            opts.insert("compress".to_string(), c.to_string());
        }
        LogConfig::parse(&driver, &opts)
    }
}

/// A size as docker reads it: a number with an optional k/m/g/t/p unit (and `b`, `i`).
pub(crate) fn human_size(s: &str, binary: bool) -> Option<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok().filter(|n: &f64| n.is_finite())?;
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let base: f64 = if binary { 1024.0 } else { 1000.0 };
    let exp = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return None,
    };
    let v = n * base.powi(exp);
    (v < u64::MAX as f64).then_some(v as u64)
}

impl LogConfig {
    /// `--log-driver` and `--log-opt`s, checked like docker's (the error names the value).
    pub fn parse(driver: &str, opts: &BTreeMap<String, String>) -> Result<LogConfig, String> {
        let name = if driver.is_empty() { JSON_FILE } else { driver };
        if ![JSON_FILE, LOCAL, NONE].contains(&name) {
            return Err(format!(
                "logger: no log driver named '{driver}' is registered (this agent has json-file, local and none)"
            ));
        }
        let mut c = LogConfig { driver: driver.to_string(), opts: opts.clone(), ..LogConfig::default() };
        for (k, v) in opts {
            match (name, k.as_str()) {
                (NONE, _) => return Err(format!("unknown log opt '{k}' for none log driver")),
                (_, "max-size") => {
                    let n = human_size(v, name == LOCAL)
                        .ok_or_else(|| format!("--log-opt max-size={v}: invalid size: '{v}'"))?;
                    if n == 0 {
                        return Err(format!("--log-opt max-size={v}: must be a positive size"));
                    }
                    c.max_size = Some(n);
                }
                (_, "max-file") => {
                    let n: i64 = v.parse().map_err(|_| format!("--log-opt max-file={v}: not a number: '{v}'"))?;
                    if n < 1 {
                        return Err(format!("--log-opt max-file={v}: max-file cannot be less than 1"));
                    }
                    c.max_file = Some(u32::try_from(n).map_err(|_| format!("--log-opt max-file={v}: too many"))?);
                }
                (_, "compress") => {
                    c.compress = Some(match v.as_str() {
                        "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                        "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                        _ => return Err(format!("--log-opt compress={v}: not a boolean: '{v}'")),
                    })
                }
                (JSON_FILE, "labels") => c.labels = list(v),
                (JSON_FILE, "env") => c.env = list(v),
                (JSON_FILE, "tag") => {}
                _ => return Err(format!("unknown log opt '{k}' for {name} log driver")),
            }
        }
        if name == JSON_FILE && c.max_size.is_none() && c.max_file.is_some_and(|n| n > 1) {
            return Err(format!(
                "--log-opt max-file={}: max-file needs max-size (a json-file log is rotated by size)",
                c.max_file.unwrap_or(1)
            ));
        }
        if name == JSON_FILE && c.compress == Some(true) && c.max_size.is_none() {
            return Err("--log-opt compress=true: compress cannot be true when max-size is not set".into());
        }
        Ok(c)
    }

    /// The driver's name (`json-file` when none was given).
    pub fn driver_name(&self) -> &str {
        if self.driver.is_empty() {
            JSON_FILE
        } else {
            &self.driver
        }
    }

    /// Fills in what the container did not give: the driver and, for a container that gave
    /// no limits, the `[logs]` limits (checked at start-up), then docker's `local` defaults.
    pub fn resolved(mut self, defaults: &LogDefaults) -> LogConfig {
        let d = defaults.as_config().unwrap_or_default();
        if self.driver.is_empty() {
            self.driver = d.driver_name().to_string();
        }
        if self.driver == NONE {
            return self;
        }
        let given = self.max_size.is_some() || self.max_file.is_some();
        if !given && d.driver_name() != NONE {
            self.max_size = d.max_size;
            self.max_file = d.max_file;
        }
        if self.compress.is_none() && self.max_size.is_some() {
            self.compress = d.compress;
        }
        if self.driver == LOCAL {
            // docker's local driver: 20 MiB, 5 files, compressed.
            self.max_size = self.max_size.or(Some(20 << 20));
            self.max_file = self.max_file.or(Some(5));
            self.compress = self.compress.or(Some(true));
        }
        self
    }

    /// The options in effect: those given, and the limits the defaults filled in.
    pub fn effective_opts(&self) -> BTreeMap<String, String> {
        let mut o = self.opts.clone();
        if let Some(n) = self.max_size {
            o.entry("max-size".into()).or_insert_with(|| n.to_string());
        }
        if let Some(n) = self.max_file {
            o.entry("max-file".into()).or_insert_with(|| n.to_string());
        }
        if let Some(c) = self.compress {
            o.entry("compress".into()).or_insert_with(|| c.to_string());
        }
        o
    }

    /// Whether `logs` can read this container's output.
    pub fn readable(&self) -> bool {
        self.driver != NONE
    }

    /// How the shim rotates the log file (`None`: it grows without bound).
    pub fn rotation(&self) -> Option<Rotation> {
        let max_size = self.max_size?;
        Some(Rotation { max_size, max_file: self.max_file.unwrap_or(1).max(1), compress: self.compress == Some(true) })
    }

    /// The attributes `logs --details` shows: the listed labels and variables that are set.
    pub fn attrs(&self, labels: &BTreeMap<String, String>, env: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for k in &self.labels {
            if let Some(v) = labels.get(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        for k in &self.env {
            if let Some(v) = env.iter().rev().find_map(|e| e.strip_prefix(k.as_str())?.strip_prefix('=')) {
                out.insert(k.clone(), v.to_string());
            }
        }
        out
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn docker_sizes_and_refusals_name_the_value() {
        let c = LogConfig::parse("json-file", &opts(&[("max-size", "10k"), ("max-file", "3")])).unwrap();
        assert_eq!((c.max_size, c.max_file), (Some(10_000), Some(3)));
        let c = LogConfig::parse("local", &opts(&[("max-size", "1m")])).unwrap();
        assert_eq!(c.max_size, Some(1 << 20));
        assert_eq!(LogConfig::parse("", &opts(&[("max-size", "1.5KB")])).unwrap().max_size, Some(1500));
        for (k, v, want) in [
            ("max-size", "abc", "'abc'"),
            ("max-size", "0", "max-size=0"),
            ("max-file", "0", "max-file=0"),
            ("max-file", "x", "'x'"),
            ("compress", "maybe", "'maybe'"),
            ("bogus", "1", "'bogus'"),
        ] {
            let e = LogConfig::parse(
                "json-file",
                &opts(&[(k, v), ("max-size", "1k")][..if k == "max-size" { 1 } else { 2 }]),
            )
            .unwrap_err();
            assert!(e.contains(want), "{k}={v}: {e}");
        }
        let e = LogConfig::parse("syslog", &BTreeMap::new()).unwrap_err();
        assert!(e.contains("'syslog'"), "{e}");
        let e = LogConfig::parse("none", &opts(&[("max-size", "1k")])).unwrap_err();
        assert!(e.contains("none log driver"), "{e}");
        assert!(LogConfig::parse("json-file", &opts(&[("max-file", "2")])).is_err());
    }

    #[test]
    fn defaults_fill_what_the_container_did_not_give() {
        let d = LogDefaults { max_size: Some(SizeValue::Text("1m".into())), max_file: Some(2), ..Default::default() };
        d.validate().unwrap();
        let c = LogConfig::default().resolved(&d);
        assert_eq!(c.driver, "json-file");
        assert_eq!(c.rotation(), Some(Rotation { max_size: 1_000_000, max_file: 2, compress: false }));
        let own = LogConfig::parse("", &opts(&[("max-size", "5k")])).unwrap().resolved(&d);
        assert_eq!(own.rotation(), Some(Rotation { max_size: 5000, max_file: 1, compress: false }));
        let none = LogConfig::parse("none", &BTreeMap::new()).unwrap().resolved(&d);
        assert!(!none.readable() && none.rotation().is_none());
        let local = LogConfig::parse("local", &BTreeMap::new()).unwrap().resolved(&LogDefaults::default());
        assert_eq!(local.rotation(), Some(Rotation { max_size: 20 << 20, max_file: 5, compress: true }));
        assert_eq!(LogConfig::default().resolved(&LogDefaults::default()).rotation(), None);
        let bad = LogDefaults { max_size: Some(SizeValue::Text("lots".into())), ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("'lots'"));
    }

    #[test]
    fn details_show_the_listed_labels_and_env() {
        let c = LogConfig::parse("json-file", &opts(&[("labels", "a,zz"), ("env", "E")])).unwrap();
        let labels = [("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())].into();
        let attrs = c.attrs(&labels, &["E=x=y".into(), "F=1".into()]);
        assert_eq!(attrs, [("E".to_string(), "x=y".to_string()), ("a".to_string(), "1".to_string())].into());
    }
}
