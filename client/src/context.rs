//! Contexts: named agents (address + TLS files) in `~/.config/agentctl/config.toml`, like
//! `docker context`. The file is `agentctl`'s; schedulers read the same one, so a node
//! reachable with `agentctl --context NODE` is reachable from this library by its name.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why the contexts file could not be read or written, or a name is refused.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("read {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("parse {}: {err}", path.display())]
    Parse { path: PathBuf, err: toml::de::Error },
    #[error("write {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
    #[error("serialize contexts: {0}")]
    Serialize(#[from] toml::ser::Error),
    #[error("invalid context name {0:?}: letters, digits and _.+- (not \"default\")")]
    BadName(String),
}

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
    pub fn load() -> Result<CtlConfig, ContextError> {
        let p = path();
        match std::fs::read_to_string(&p) {
            Ok(t) => toml::from_str(&t).map_err(|err| ContextError::Parse { path: p, err }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CtlConfig::default()),
            Err(err) => Err(ContextError::Read { path: p, err }),
        }
    }

    /// Writes the file (0600: it names key files) atomically.
    pub fn save(&self) -> Result<(), ContextError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = path();
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|err| ContextError::Write { path: d.to_path_buf(), err })?;
        }
        let text = toml::to_string_pretty(self)?;
        let tmp = p.with_extension("toml.tmp");
        let write = |err| ContextError::Write { path: tmp.clone(), err };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(write)?;
        f.write_all(text.as_bytes()).map_err(write)?;
        std::fs::rename(&tmp, &p).map_err(|err| ContextError::Write { path: p, err })
    }
}

/// Checks a context name: like docker, `[a-zA-Z0-9][a-zA-Z0-9_.+-]*`, and not `default`.
pub fn validate_name(name: &str) -> Result<(), ContextError> {
    let ok = name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !ok || name == "default" {
        return Err(ContextError::BadName(name.to_string()));
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
