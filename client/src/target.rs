//! Which agent to talk to and with which TLS files: explicit settings over the named (or
//! current) context over the local socket — `agentctl`'s rules, shared with it.

use crate::context::{CtlConfig, Ctx};
use agent_proto::ClientTls;
use std::path::{Path, PathBuf};

/// Settings that win over the context's (`agentctl`'s `--host` and `--tls*` flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `unix:///path` or `tcp://host:port`.
    pub host: Option<String>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

/// An agent's address and, for `tcp://`, the client's mutual-TLS material.
#[derive(Debug, Clone)]
pub struct Target {
    /// `unix:///path` or `tcp://host:port`.
    pub host: String,
    pub tls: Option<ClientTls>,
}

/// Why no target could be made of a context and the overrides.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Config(#[from] crate::context::ContextError),
    #[error("context {0:?} not found (see `agentctl context ls`)")]
    NoContext(String),
    #[error("cannot read {}: {err}", path.display())]
    ReadTls { path: PathBuf, err: std::io::Error },
    #[error("mutual TLS needs --tlscacert, --tlscert and --tlskey; missing {0}")]
    PartialTls(String),
    #[error("TLS files given for {0}: TLS is for tcp:// agents")]
    TlsOnUnix(String),
}

impl Target {
    /// The local socket (`unix:///run/agentd/agentd.sock`).
    pub fn local() -> Target {
        Target { host: agent_proto::DEFAULT_HOST.to_string(), tls: None }
    }

    /// The context `name` of `agentctl`'s contexts file (`None`: the current context, else
    /// the local socket; `default`: the local socket).
    pub fn from_context(name: Option<&str>) -> Result<Target, TargetError> {
        Target::resolve(&CtlConfig::load()?, name, &Overrides::default())
    }

    /// `agentctl`'s rule: `overrides` over the context `name` (none named: the current one,
    /// unless a host is given) over the local socket.
    pub fn resolve(cfg: &CtlConfig, name: Option<&str>, o: &Overrides) -> Result<Target, TargetError> {
        let name = name.map(str::to_string).or_else(|| if o.host.is_some() { None } else { cfg.current.clone() });
        let ctx = match name.as_deref() {
            None | Some("default") => Ctx::default(),
            Some(n) => cfg.contexts.get(n).cloned().ok_or_else(|| TargetError::NoContext(n.to_string()))?,
        };
        let host = o.host.clone().unwrap_or_else(|| {
            if ctx.host.is_empty() {
                agent_proto::DEFAULT_HOST.to_string()
            } else {
                ctx.host.clone()
            }
        });
        let ca = o.tlscacert.clone().or(ctx.tlscacert);
        let cert = o.tlscert.clone().or(ctx.tlscert);
        let key = o.tlskey.clone().or(ctx.tlskey);
        let tls = match (ca, cert, key) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => {
                Some(ClientTls { ca: read(&ca)?, cert: read(&cert)?, key: read(&key)? })
            }
            (ca, cert, key) => {
                let missing: Vec<&str> =
                    [("--tlscacert", ca.is_none()), ("--tlscert", cert.is_none()), ("--tlskey", key.is_none())]
                        .iter()
                        .filter(|(_, m)| *m)
                        .map(|(n, _)| *n)
                        .collect();
                return Err(TargetError::PartialTls(missing.join(", ")));
            }
        };
        if tls.is_some() && host.starts_with("unix://") {
            return Err(TargetError::TlsOnUnix(host));
        }
        Ok(Target { host, tls })
    }
}

fn read(p: &Path) -> Result<Vec<u8>, TargetError> {
    std::fs::read(p).map_err(|err| TargetError::ReadTls { path: p.to_path_buf(), err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_and_partial_tls_is_named() {
        let mut cfg = CtlConfig::default();
        cfg.contexts.insert("n1".into(), Ctx { host: "tcp://n1:7443".into(), ..Default::default() });
        cfg.current = Some("n1".into());
        let t = Target::resolve(&cfg, None, &Overrides::default()).unwrap();
        assert_eq!(t.host, "tcp://n1:7443", "the current context");
        let o = Overrides { host: Some("unix:///x.sock".into()), ..Default::default() };
        assert_eq!(Target::resolve(&cfg, None, &o).unwrap().host, "unix:///x.sock", "a host skips the current context");
        assert_eq!(
            Target::resolve(&cfg, Some("default"), &Overrides::default()).unwrap().host,
            agent_proto::DEFAULT_HOST
        );
        let e = Target::resolve(&cfg, Some("nope"), &Overrides::default()).unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
        let o = Overrides { tlscert: Some("/c.pem".into()), ..Default::default() };
        let e = Target::resolve(&cfg, None, &o).unwrap_err();
        assert_eq!(
            e.to_string(),
            "mutual TLS needs --tlscacert, --tlscert and --tlskey; missing --tlscacert, --tlskey"
        );
    }
}
