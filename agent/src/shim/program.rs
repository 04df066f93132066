//! Which program agentd runs for a container's shim (`… shim DIR`) and for an exec helper
//! (`… nsexec JSON`): the small `agent-shim` binary installed beside agentd (see
//! src/bin/agent-shim.rs: a shim is paid for per container, and that binary costs a
//! fraction of agentd's memory and start time), or agentd itself (`/proc/self/exe`, which
//! dispatches the same subcommands) when it is not there. `AGENTD_SHIM` names another path.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The helper program, found once.
#[derive(Debug, Clone)]
pub struct Program {
    pub path: PathBuf,
    /// argv\[0\] of the helper (what `ps` shows).
    pub arg0: &'static str,
    /// Why this one (for agentd's start-up log).
    pub origin: &'static str,
}

static PROGRAM: OnceLock<Program> = OnceLock::new();

/// The helper program (`AGENTD_SHIM`, else `agent-shim` beside agentd, else agentd).
pub fn program() -> &'static Program {
    PROGRAM.get_or_init(|| {
        let beside = std::env::current_exe().ok().and_then(|e| e.parent().map(|d| d.join("agent-shim")));
        choose(std::env::var_os("AGENTD_SHIM").map(PathBuf::from), beside)
    })
}

fn choose(explicit: Option<PathBuf>, beside: Option<PathBuf>) -> Program {
    if let Some(p) = explicit.filter(|p| !p.as_os_str().is_empty()) {
        return Program { path: p, arg0: "agent-shim", origin: "AGENTD_SHIM" };
    }
    match beside.filter(|p| is_executable(p)) {
        Some(p) => Program { path: p, arg0: "agent-shim", origin: "beside agentd" },
        None => Program {
            path: PathBuf::from("/proc/self/exe"),
            arg0: "agentd",
            origin: "agentd itself (no agent-shim beside it: about 0.7 MiB more memory per container)",
        },
    }
}

impl Program {
    /// An error naming the path when an explicitly named helper cannot be run.
    pub fn check(&self) -> Result<(), String> {
        if self.origin == "AGENTD_SHIM" && !is_executable(&self.path) {
            return Err(format!("AGENTD_SHIM={}: not an executable file", self.path.display()));
        }
        Ok(())
    }
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// A command running the helper with `sub` (`shim` or `nsexec`) as its first argument.
pub fn command(sub: &str) -> tokio::process::Command {
    let p = program();
    let mut c = tokio::process::Command::new(&p.path);
    c.arg0(p.arg0).arg(sub);
    // Shims, their containers and exec'd processes get the open-file limit agentd was
    // started with, not the one it raised for itself (`crate::nofile`).
    let limit = crate::nofile::for_children();
    if limit.is_some() {
        // SAFETY: `restore` makes one setrlimit call (async-signal-safe) and touches no
        // memory shared with the parent.
        unsafe {
            c.pre_exec(move || crate::nofile::restore(limit));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn explicit_then_beside_then_agentd_itself() {
        let d = tempfile::tempdir().unwrap();
        let shim = d.path().join("agent-shim");
        let p = choose(None, Some(shim.clone()));
        assert_eq!(p.path, PathBuf::from("/proc/self/exe"), "absent: agentd itself");
        assert_eq!(p.arg0, "agentd");
        std::fs::write(&shim, b"#!/bin/sh\n").unwrap();
        assert_eq!(choose(None, Some(shim.clone())).arg0, "agentd", "not executable: not taken");
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = choose(None, Some(shim.clone()));
        assert_eq!((p.path.as_path(), p.arg0), (shim.as_path(), "agent-shim"));
        let other = PathBuf::from("/opt/x/agent-shim");
        let p = choose(Some(other.clone()), Some(shim.clone()));
        assert_eq!(p.path, other);
        assert!(p.check().unwrap_err().contains("/opt/x/agent-shim"), "an explicit path must exist");
        assert!(choose(Some(shim.clone()), None).check().is_ok());
    }
}
