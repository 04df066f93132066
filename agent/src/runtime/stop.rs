//! Stop, kill and wait: signals through pidfds (immune to PID reuse).

use super::{ContainerRecord, Phase, Result, Runtime, RuntimeError, State};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// Opens a pidfd for `pid` if it is still the process that started at `start`.
pub(super) fn pidfd(pid: i32, start: u64) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after opening: the pidfd now pins this exact process.
    crate::isolation::alive(pid, start).then_some(fd)
}

/// Sends `sig` through a pidfd (immune to PID reuse).
pub(super) fn signal_pidfd(fd: &OwnedFd, sig: i32) -> std::io::Result<()> {
    // SAFETY: pidfd_send_signal(pidfd, sig, NULL info, 0 flags).
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), sig, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Parses a signal name (`KILL`, `SIGTERM`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(libc::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(RuntimeError::InvalidArgument(format!("invalid signal {s:?}: numbers are 1-64")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| RuntimeError::InvalidArgument(format!("invalid signal {s:?}")))
}

impl Runtime {
    /// Sends a signal to a running container's init.
    pub async fn kill(&self, name: &str, signal: &str) -> Result<()> {
        let sig = parse_signal(signal)?;
        let rec = self.resolve(name)?;
        if rec.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running", rec.name)));
        }
        self.signal(&rec, sig)
    }

    pub(super) fn signal(&self, rec: &ContainerRecord, sig: i32) -> Result<()> {
        // Without a PID namespace of its own (`--pid host|container:`), the init's death
        // does not take its children along (they would keep the shim's pipes, and the
        // container, open): a kill reaches every process of its cgroup, like `runc kill --all`.
        if sig == libc::SIGKILL && !rec.spec.pid.is_empty() {
            self.cgroups.kill_all(&rec.cg());
        }
        match pidfd(rec.pid, rec.pid_start) {
            Some(fd) => signal_pidfd(&fd, sig)
                .map_err(|e| RuntimeError::Internal(format!("signal {sig} to container {}: {e}", rec.name))),
            // Already gone; the monitor records the exit.
            None => Ok(()),
        }
    }

    /// Waits until the container is no longer running; returns its exit code.
    pub(super) async fn wait_not_running(&self, id: &str, timeout: Option<Duration>) -> Option<i32> {
        let mut rx = self.watch(id);
        let fut = async {
            loop {
                let p = rx.borrow_and_update().clone();
                match p {
                    Phase::Exited { code } | Phase::Removed { code } => return Some(code),
                    _ => {}
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.ok().flatten(),
            None => fut.await,
        }
    }

    /// SIGTERM (or the image's stop signal), then SIGKILL after `timeout`. Idempotent.
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<()> {
        let rec = self.resolve(name)?;
        if rec.state != State::Running {
            return Ok(());
        }
        let sig = if rec.stop_signal.is_empty() {
            libc::SIGTERM
        } else {
            parse_signal(&rec.stop_signal).unwrap_or(libc::SIGTERM)
        };
        self.signal(&rec, sig)?;
        if self.wait_not_running(&rec.id, Some(timeout)).await.is_some() {
            return Ok(());
        }
        self.signal(&rec, libc::SIGKILL)?;
        match self.wait_not_running(&rec.id, Some(Duration::from_secs(30))).await {
            Some(_) => Ok(()),
            None => Err(RuntimeError::Internal(format!("container {} did not exit after SIGKILL", rec.name))),
        }
    }

    /// Blocks while the container is created or running; returns its exit code.
    pub async fn wait(&self, name: &str) -> Result<(i32, String)> {
        let rec = self.resolve(name)?;
        if rec.state == State::Exited {
            return Ok((rec.exit_code, rec.error));
        }
        let code = self.wait_not_running(&rec.id, None).await.unwrap_or(rec.exit_code);
        let err = self.load(&rec.id).map(|r| r.error).unwrap_or_default();
        Ok((code, err))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigint").unwrap(), libc::SIGINT);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
