//! agentd's open-file limit. Every client connection, follower, log file, shim pipe and
//! pidfd is a descriptor, and a service manager's default soft limit (1024) is far below
//! what `[limits] max_connections` alone allows (4096): past it `accept` fails with EMFILE
//! and new clients are refused while the agent looks idle. So agentd raises its soft limit
//! to its hard one at start, as containerd and dockerd do (Go does it for every program),
//! and — as Go does for the programs it starts — gives the programs it starts (shims, and
//! so containers, and exec helpers) the soft limit it was started with: a container's
//! `ulimit -n` is what it was before, unless `--ulimit nofile` says otherwise.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::sync::OnceLock;

/// The (soft, hard) limit agentd was started with, once it raised its own.
static ORIGINAL: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft limit to the hard one; returns (before, now). Logged by the caller.
pub fn raise() -> Result<(u64, u64), String> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    if soft >= hard {
        return Ok((soft, soft));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {hard}): {e}"))?;
    let _ = ORIGINAL.set((soft, hard));
    Ok((soft, hard))
}

/// What a program agentd starts gets back: the limit agentd was started with, if it raised
/// its own. Read before fork; [`restore`] applies it in the child.
pub fn for_children() -> Option<(u64, u64)> {
    ORIGINAL.get().copied()
}

/// In a forked child before exec (async-signal-safe: one setrlimit).
pub fn restore(limit: Option<(u64, u64)>) -> std::io::Result<()> {
    match limit {
        Some((soft, hard)) => setrlimit(Resource::RLIMIT_NOFILE, soft, hard).map_err(std::io::Error::from),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_to_restore_when_never_raised() {
        assert!(super::restore(None).is_ok());
    }
}
