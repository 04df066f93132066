//! `context create|use|ls|inspect|rm`: named agents with their address and TLS files.

use crate::cli::{ConnOpts, ContextCmd};
use crate::context::{self, CtlConfig, Ctx};
use crate::error::{Exit, Res};
use crate::output;
use std::path::PathBuf;

/// `context …` (local files only).
pub fn run(cmd: ContextCmd, conn: &ConnOpts) -> Res<u8> {
    let mut cfg = CtlConfig::load()?;
    let not_found = |name: &str| Exit::agent(format!("context {name:?} not found"));
    match cmd {
        ContextCmd::Create { name, description } => {
            context::validate_name(&name)?;
            if cfg.contexts.contains_key(&name) {
                return Err(Exit::agent(format!("context {name:?} already exists")));
            }
            let Some(host) = conn.host.clone() else {
                return Err(Exit::agent("context create needs --host unix:///path or tcp://host:port"));
            };
            if !(host.starts_with("unix://") || host.starts_with("tcp://")) {
                return Err(Exit::agent(format!("invalid --host {host:?}: use unix:///path or tcp://host:port")));
            }
            let abs = |p: &Option<PathBuf>| -> Res<Option<PathBuf>> {
                p.as_ref()
                    .map(|p| std::fs::canonicalize(p).map_err(|e| Exit::agent(format!("{}: {e}", p.display()))))
                    .transpose()
            };
            let ctx = Ctx {
                host,
                tlscacert: abs(&conn.tlscacert)?,
                tlscert: abs(&conn.tlscert)?,
                tlskey: abs(&conn.tlskey)?,
                description,
            };
            cfg.contexts.insert(name.clone(), ctx);
            cfg.save()?;
            println!("{name}");
        }
        ContextCmd::Use { name } => {
            if name == "default" {
                cfg.current = None;
            } else if cfg.contexts.contains_key(&name) {
                cfg.current = Some(name.clone());
            } else {
                return Err(not_found(&name));
            }
            cfg.save()?;
            println!("{name}");
        }
        ContextCmd::Ls => output::contexts(&cfg),
        ContextCmd::Inspect { name } => output::print_json(cfg.contexts.get(&name).ok_or_else(|| not_found(&name))?)?,
        ContextCmd::Rm { names } => {
            for n in names {
                if cfg.contexts.remove(&n).is_none() {
                    return Err(not_found(&n));
                }
                if cfg.current.as_deref() == Some(n.as_str()) {
                    cfg.current = None;
                }
                println!("{n}");
            }
            cfg.save()?;
        }
    }
    Ok(0)
}
