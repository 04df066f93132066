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

/// A pidfd of our own child `pid`, not reaped yet (so the PID is surely still its).
pub(super) fn child_pidfd(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: the kernel just gave us this descriptor.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
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

/// Signals through `fd`; a process that exited since the pidfd was opened is gone, not an
/// error (the monitor records its exit).
fn signal_unless_gone(fd: &OwnedFd, sig: i32, name: &str) -> Result<()> {
    match signal_pidfd(fd, sig) {
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
        r => r.map_err(|e| RuntimeError::Internal(format!("signal {sig} to container {name}: {e}"))),
    }
}

/// Whether process `pid` has a handler for `sig` (`SigCgt` in its status). Unknown (no
/// such process, unreadable) counts as no.
fn catches(pid: i32, sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    caught_in(&status, sig)
}

fn caught_in(status: &str, sig: i32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
        .is_some_and(|mask| (1..=64).contains(&sig) && mask & (1u64 << (sig - 1)) != 0)
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
        if matches!(sig, libc::SIGKILL | libc::SIGTERM | libc::SIGINT | libc::SIGQUIT) {
            self.mark_stopped_by_user(&rec).await?;
        }
        self.signal(&rec, sig)?;
        self.thaw_after_signal(&rec, sig).await
    }

    /// A user's stop or kill: the restart policy holds off until the next start. Under the
    /// container's lifecycle lock, on a fresh read: an exit recorded meanwhile is kept.
    async fn mark_stopped_by_user(&self, rec: &ContainerRecord) -> Result<()> {
        if rec.spec.restart == super::restart::RestartPolicy::No {
            return Ok(());
        }
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut r = self.load(&rec.id)?;
        if !r.stopped_by_user {
            r.stopped_by_user = true;
            self.save(&r)?;
        }
        Ok(())
    }

    pub(super) fn signal(&self, rec: &ContainerRecord, sig: i32) -> Result<()> {
        // Without a PID namespace of its own (`--pid host|container:`), the init's death
        // does not take its children along (they would keep the shim's pipes, and the
        // container, open): a kill reaches every process of its cgroup, like `runc kill --all`.
        if sig == libc::SIGKILL && !rec.spec.pid.is_empty() {
            self.cgroups.kill_all(&rec.cg());
        }
        match pidfd(rec.pid, rec.pid_start) {
            Some(fd) => signal_unless_gone(&fd, sig, &rec.name),
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
    ///
    /// A signal without a handler is dropped by the kernel for the init of a PID namespace,
    /// so a stop right after a start may reach the program before it installed its handler:
    /// until a send is known to have reached a handler (the init caught the signal before
    /// it was sent), it is sent again (after 100 ms, then backing off to once a second), and
    /// never after that (a second SIGTERM means "hurry" to some programs).
    /// Stops `name`: its stop signal, then SIGKILL after `timeout` (`None`: the container's
    /// `--stop-timeout`, else 10 s).
    pub async fn stop(&self, name: &str, timeout: impl Into<Option<Duration>>) -> Result<()> {
        let rec = self.resolve(name)?;
        if rec.state != State::Running {
            return Ok(());
        }
        let timeout = timeout.into().unwrap_or_else(|| Duration::from_secs(rec.spec.stop_timeout.unwrap_or(10) as u64));
        let sig = match parse_signal(&rec.stop_signal) {
            _ if rec.stop_signal.is_empty() => libc::SIGTERM,
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(container = %rec.id, error = %e, "the image's stop signal; using SIGTERM");
                libc::SIGTERM
            }
        };
        self.mark_stopped_by_user(&rec).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut delivered = catches(rec.pid, sig);
        self.signal(&rec, sig)?;
        self.thaw_after_signal(&rec, sig).await?;
        crate::crash::point("stop.after_signal");
        let mut pause = Duration::from_millis(100);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            if self.wait_not_running(&rec.id, Some(pause.min(left))).await.is_some() {
                return Ok(());
            }
            if !delivered {
                delivered = catches(rec.pid, sig);
                self.signal(&rec, sig)?;
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        if self.wait_not_running(&rec.id, Some(Duration::ZERO)).await.is_some() {
            return Ok(());
        }
        self.signal(&rec, libc::SIGKILL)?;
        self.thaw_after_signal(&rec, libc::SIGKILL).await?;
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
    fn a_process_that_exited_after_its_pidfd_was_opened_is_gone_not_an_error() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        let fd = child_pidfd(pid).expect("pidfd");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(signal_pidfd(&fd, libc::SIGKILL).unwrap_err().raw_os_error(), Some(libc::ESRCH));
        assert!(signal_unless_gone(&fd, libc::SIGKILL, "c").is_ok());
    }

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("").unwrap(), libc::SIGKILL);
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("sigint").unwrap(), libc::SIGINT);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn caught_signals_are_read_from_the_status() {
        // SIGTERM (15) is bit 14: 0x4000; SIGINT (2) is bit 1.
        let status = "Name:\tsh\nSigIgn:\t0000000000000000\nSigCgt:\t0000000000004002\n";
        assert!(caught_in(status, libc::SIGTERM));
        assert!(caught_in(status, libc::SIGINT));
        assert!(!caught_in(status, libc::SIGHUP));
        assert!(!caught_in("Name:\tsleep\n", libc::SIGTERM));
    }
}
