//! Contexts: named agents (address + TLS files) in `~/.config/agentctl/config.toml`, like
//! `docker context`. `--host`/`--tls*` flags win over the context.

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One named agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Ctx {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    /// CA certificate that signed the agent's certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlscert: Option<PathBuf>,
    /// Client key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlskey: Option<PathBuf>,
    /// Free text shown by `context ls`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CtlConfig {
    /// The context used when none is named; none: the local socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// Contexts by name.
    #[serde(default)]
    pub contexts: BTreeMap<String, Ctx>,
}

/// Where the file lives: `$AGENTCTL_CONFIG`, else `$XDG_CONFIG_HOME/agentctl/config.toml`,
/// else `~/.config/agentctl/config.toml`.
pub fn path() -> PathBuf {
    if let Some(p) = std::env::var_os("AGENTCTL_CONFIG") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/root/.config"));
    base.join("agentctl").join("config.toml")
}

impl CtlConfig {
    /// Reads the file; a missing file is an empty config.
    pub fn load() -> anyhow::Result<CtlConfig> {
        let p = path();
        match std::fs::read_to_string(&p) {
            Ok(t) => toml::from_str(&t).with_context(|| format!("parse {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CtlConfig::default()),
            Err(e) => Err(e).with_context(|| format!("read {}", p.display())),
        }
    }

    /// Writes the file (0600: it names key files) atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = path();
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let text = toml::to_string_pretty(self).context("serialize contexts")?;
        let tmp = p.with_extension("toml.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, &p).with_context(|| format!("write {}", p.display()))
    }
}

/// Checks a context name: like docker, `[a-zA-Z0-9][a-zA-Z0-9_.+-]*`, and not `default`.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !ok || name == "default" {
        anyhow::bail!("invalid context name {name:?}: letters, digits and _.+- (not \"default\")");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_names() {
        let mut c = CtlConfig::default();
        c.contexts.insert(
            "prod".into(),
            Ctx { host: "tcp://n:7443".into(), tlscacert: Some("/ca.pem".into()), ..Default::default() },
        );
        c.current = Some("prod".into());
        let t = toml::to_string_pretty(&c).unwrap();
        let back: CtlConfig = toml::from_str(&t).unwrap();
        assert_eq!(back.contexts["prod"], c.contexts["prod"]);
        assert!(validate_name("prod-1.eu").is_ok());
        assert!(validate_name("default").is_err());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("").is_err());
    }
}
