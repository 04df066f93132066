//! Running an extra process in a running container (`agentctl exec`), through
//! `agentd nsexec`, with pipes or a pseudo-terminal.

use super::{OutputChunk, Result, Runtime, RuntimeError, State};
use crate::isolation::spec::ExecLaunch;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub tty: bool,
    pub stdin: bool,
    pub rows: u16,
    pub cols: u16,
}

/// Input to a running exec.
#[derive(Clone, Debug)]
pub enum ExecInput {
    Data(Vec<u8>),
    Resize(u16, u16),
    Close,
}

/// The two ends of a running exec.
pub struct ExecIo {
    pub output: mpsc::Receiver<OutputChunk>,
    pub input: mpsc::Sender<ExecInput>,
    /// Host PID of the exec's `agentd nsexec` (not reaped before the exit is sent, so it
    /// cannot be reused meanwhile): killing it ends the command (its death signal).
    pub pid: Option<u32>,
    /// A pidfd of that `agentd nsexec`, opened while it was surely ours (not yet reaped).
    pidfd: Option<OwnedFd>,
}

impl ExecIo {
    /// Ends the command (a timed-out ExecSync must not leave it running).
    pub fn kill(&self) {
        Self::kill_pid(self.pid);
    }

    /// Ends the command and returns once it is reaped: `agentd nsexec` kills the command's
    /// process group on SIGTERM and waits for it, so nothing of it is left in the container
    /// (not even a zombie its init might never reap). Output still buffered is dropped; if
    /// the exec has not ended 5 s later, its nsexec is killed.
    pub async fn terminate(&mut self) {
        match &self.pidfd {
            Some(fd) => {
                if let Err(e) = super::stop::signal_pidfd(fd, libc::SIGTERM) {
                    if e.raw_os_error() != Some(libc::ESRCH) {
                        tracing::warn!(pid = ?self.pid, error = %e, "ending an exec");
                    }
                }
            }
            None => Self::kill_pid(self.pid),
        }
        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while let Some(c) = self.output.recv().await {
                if matches!(c, OutputChunk::Exit(_)) {
                    return;
                }
            }
        })
        .await;
        if ended.is_err() {
            tracing::warn!(pid = ?self.pid, "an exec did not end within 5 s of SIGTERM; killing its nsexec");
            if let Some(fd) = &self.pidfd {
                let _ = super::stop::signal_pidfd(fd, libc::SIGKILL);
            }
        }
    }

    /// Like [`ExecIo::kill`], for a PID taken from an `ExecIo` that is borrowed elsewhere.
    pub fn kill_pid(pid: Option<u32>) {
        if let Some(p) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn set_winsize(fd: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

impl Runtime {
    /// Starts `req` inside a running container.
    pub async fn exec(&self, name: &str, req: ExecRequest) -> Result<ExecIo> {
        let rec = self.resolve(name)?;
        if rec.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running", rec.name)));
        }
        if rec.paused {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} is paused, unpause the container before exec",
                rec.name
            )));
        }
        if req.args.is_empty() {
            return Err(RuntimeError::InvalidArgument("exec needs a command".into()));
        }
        super::env::check(&req.env)?;
        let mut env = super::env::merge(&rec.env, &req.env);
        if req.tty {
            env = super::env::fill(&env, &["TERM=xterm".to_string()]);
        }
        let launch = ExecLaunch {
            pid: rec.pid,
            cgroup_dirs: self.cgroups.dirs(&rec.cg()),
            args: req.args.clone(),
            env,
            cwd: if req.cwd.is_empty() { rec.cwd.clone() } else { req.cwd.clone() },
            user: if req.user.is_empty() { rec.user.clone() } else { req.user.clone() },
            tty: req.tty,
            capabilities: self.capabilities(&rec.spec)?,
            seccomp_unconfined: rec.spec.seccomp_unconfined(),
            seccomp_programs: self.seccomp_programs(&rec.spec)?,
            userns: rec.userns.is_some(),
            no_new_privs: rec.spec.no_new_privs(),
            groups: rec.spec.group_add.clone(),
            image_groups: !rec.spec.strict_groups,
        };
        let json = serde_json::to_string(&launch).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let mut cmd = crate::shim::program::command("nsexec");
        cmd.arg(json).kill_on_drop(true);
        let (otx, orx) = mpsc::channel(64);
        let (itx, mut irx) = mpsc::channel::<ExecInput>(64);
        let spawn_err = |e: std::io::Error| RuntimeError::Internal(format!("starting exec: {e}"));
        let pid;
        // Opened right after the spawn, before anything can reap it: surely our nsexec's.
        let pidfd_of =
            |c: &tokio::process::Child| c.id().and_then(|p| i32::try_from(p).ok()).and_then(super::stop::child_pidfd);
        let pidfd;
        if req.tty {
            // The terminal is opened inside the container (see isolation::pty): nsexec
            // sends its master back over this socket pair.
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(spawn_err)?;
            let theirs_fd = theirs.as_raw_fd();
            // SAFETY: dup2 in the forked child before exec; theirs_fd stays open until spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::dup2(theirs_fd, crate::isolation::nsexec::CONSOLE_SOCKET_FD) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(spawn_err)?;
            pidfd = pidfd_of(&child);
            drop(theirs);
            let ours = OwnedFd::from(ours);
            let got = tokio::task::spawn_blocking(move || crate::isolation::pty::recv_fd(&ours))
                .await
                .map_err(|e| RuntimeError::Internal(e.to_string()))?;
            let master = match got {
                Ok(Some(m)) => m,
                _ => {
                    let mut msg = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut msg).await;
                    }
                    let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(125);
                    let _ = otx.send(OutputChunk::Stderr(msg.into_bytes())).await;
                    let _ = otx.send(OutputChunk::Exit(code)).await;
                    return Ok(ExecIo { output: orx, input: itx, pid: None, pidfd: None });
                }
            };
            set_winsize(&master, req.rows.max(1), req.cols.max(1));
            pid = child.id();
            let errs = child.stderr.take();
            tokio::spawn(pump(errs, otx.clone(), false));
            let resize = master.try_clone().map_err(spawn_err)?;
            let wfd = master.try_clone().map_err(spawn_err)?;
            let mut reader = tokio::fs::File::from_std(std::fs::File::from(master));
            let mut writer = tokio::fs::File::from_std(std::fs::File::from(wfd));
            tokio::spawn(async move {
                while let Some(i) = irx.recv().await {
                    match i {
                        ExecInput::Data(d) => {
                            if writer.write_all(&d).await.is_err() || writer.flush().await.is_err() {
                                break;
                            }
                        }
                        ExecInput::Resize(r, c) => set_winsize(&resize, r, c),
                        ExecInput::Close => {}
                    }
                }
            });
            let out = otx.clone();
            let pump = tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out.send(OutputChunk::Stdout(buf[..n].to_vec())).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            tokio::spawn(async move {
                let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(255);
                // The pty gives EIO once every holder of the slave is gone.
                let _ = tokio::time::timeout(std::time::Duration::from_millis(200), pump).await;
                let _ = otx.send(OutputChunk::Exit(code)).await;
            });
        } else {
            cmd.stdin(if req.stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(spawn_err)?;
            pidfd = pidfd_of(&child);
            pid = child.id();
            let mut stdin = child.stdin.take();
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            tokio::spawn(async move {
                while let Some(i) = irx.recv().await {
                    match i {
                        ExecInput::Data(d) => {
                            if let Some(s) = stdin.as_mut() {
                                if s.write_all(&d).await.is_err() {
                                    stdin = None;
                                }
                            }
                        }
                        ExecInput::Close => stdin = None,
                        ExecInput::Resize(..) => {}
                    }
                }
            });
            let p1 = tokio::spawn(pump(stdout, otx.clone(), true));
            let p2 = tokio::spawn(pump(stderr, otx.clone(), false));
            tokio::spawn(async move {
                let _ = p1.await;
                let _ = p2.await;
                let code = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(255);
                let _ = otx.send(OutputChunk::Exit(code)).await;
            });
        }
        Ok(ExecIo { output: orx, input: itx, pid, pidfd })
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(r: Option<R>, tx: mpsc::Sender<OutputChunk>, stdout: bool) {
    let Some(mut r) = r else { return };
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let d = buf[..n].to_vec();
                let c = if stdout { OutputChunk::Stdout(d) } else { OutputChunk::Stderr(d) };
                if tx.send(c).await.is_err() {
                    return;
                }
            }
        }
    }
}
