//! `agentd shim DIR`: the per-container supervisor. It is the container init's parent:
//! it clones the init into new namespaces, puts it in its cgroup, copies its output into
//! the log file, feeds its stdin, and records its exit status. It detaches from the agent
//! (double fork + setsid), so containers outlive agentd restarts and crashes.

use crate::isolation::init::{self, ChildIo};
use crate::isolation::spec::{LaunchSpec, NetMode};
use crate::logfile::{self, Stream};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

pub mod program;
pub mod protocol;
pub use protocol::{spec_path, ExitStatus, StartReport};

/// Why the shim cannot start the container (sent to the agent in the start report).
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("read {}: {source}", .path.display())]
    ReadSpec { path: std::path::PathBuf, source: std::io::Error },
    #[error("parse {}: {source}", .path.display())]
    ParseSpec { path: std::path::PathBuf, source: serde_json::Error },
    #[error("pipe: {0}")]
    Pipe(#[source] nix::Error),
    #[error("{what}: {source}")]
    Socket { what: &'static str, source: std::io::Error },
    #[error("{path}: {source}")]
    Open { path: String, source: std::io::Error },
    #[error("fork: {0}")]
    Fork(#[source] nix::Error),
    #[error("cannot share the /dev/shm of the container of PID {0}")]
    Shm(i32),
    #[error("join the {ns} namespace of {path}: {source}")]
    JoinOpen { ns: &'static str, path: String, source: std::io::Error },
    #[error("join the {ns} namespace of {path}: {}", .source.desc())]
    Join { ns: &'static str, path: String, source: nix::Error },
    /// The detached copies of the host paths a `--userns` init binds (the message names the path).
    #[error(transparent)]
    HostMounts(std::io::Error),
    #[error("chdir {}: {}", .path.display(), .source.desc())]
    Chdir { path: std::path::PathBuf, source: nix::Error },
    #[error(transparent)]
    Userns(#[from] crate::isolation::userns::UsernsError),
    #[error("rootfs: {0}")]
    Rootfs(#[source] std::io::Error),
    #[error("hand the rootfs to the init: {}", .0.desc())]
    Handoff(#[source] nix::Error),
    #[error("clone new namespaces: {}", .0.desc())]
    Clone(#[source] nix::Error),
    #[error("network: {0}")]
    Network(#[source] crate::network::NetError),
}

fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Entry point of `agentd shim DIR`, before any thread exists. Returns the exit code of
/// the first process (which only relays the start report).
pub fn main(dir: &Path) -> i32 {
    let spec: LaunchSpec = match read_spec(dir) {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{}",
                serde_json::json!({"shim_pid":0,"shim_start":0,"pid":0,"pid_start":0,"error":format!("shim: launch spec in {}: {e}", dir.display()),"exit_code":125})
            );
            return 1;
        }
    };
    let (rep_r, rep_w) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("shim: pipe: {e}");
            return 1;
        }
    };
    // SAFETY: the process is single-threaded here.
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("shim: fork: {e}");
            1
        }
        Ok(ForkResult::Parent { .. }) => {
            drop(rep_w);
            let mut s = String::new();
            let _ = std::fs::File::from(rep_r).read_to_string(&mut s);
            print!("{s}");
            let _ = std::io::stdout().flush();
            0
        }
        Ok(ForkResult::Child) => {
            drop(rep_r);
            let _ = nix::unistd::setsid();
            if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                for fd in 0..3 {
                    // SAFETY: replacing the standard descriptors of this single-threaded process.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            crate::isolation::close_fds_except(&[rep_w.as_raw_fd()]);
            supervise(&spec, rep_w);
            // SAFETY: end the detached shim without unwinding into the caller's main.
            unsafe { libc::_exit(0) }
        }
    }
}

fn read_spec(dir: &Path) -> Result<LaunchSpec, ShimError> {
    let path = spec_path(dir);
    let bytes = std::fs::read(&path).map_err(|source| ShimError::ReadSpec { path: path.clone(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| ShimError::ParseSpec { path, source })
}

/// The container's standard streams as the shim holds them.
enum ParentIo {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// Waiting for the terminal master that the init sends once it has opened it.
    Console {
        socket: OwnedFd,
    },
    Pty {
        master: OwnedFd,
    },
}

/// A connected socket pair; `what` names it in an error.
fn socket_pair(what: &'static str) -> Result<(OwnedFd, OwnedFd), ShimError> {
    let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|source| ShimError::Socket { what, source })?;
    Ok((a.into(), b.into()))
}

fn open_file(path: String) -> Result<std::fs::File, ShimError> {
    std::fs::File::open(&path).map_err(|source| ShimError::Open { path, source })
}

fn open_io(spec: &LaunchSpec) -> Result<(ParentIo, ChildIo), ShimError> {
    let p = || pipe2(OFlag::O_CLOEXEC).map_err(ShimError::Pipe);
    if spec.tty {
        let (ours, theirs) = socket_pair("console socket")?;
        return Ok((ParentIo::Console { socket: ours }, ChildIo::Console { socket: theirs }));
    }
    let (out_r, out_w) = p()?;
    let (err_r, err_w) = p()?;
    let (stdin_parent, stdin_child) = if spec.stdin {
        let (r, w) = p()?;
        (Some(w), r)
    } else {
        let null = open_file("/dev/null".into())?;
        (None, OwnedFd::from(null))
    };
    Ok((
        ParentIo::Pipes { stdin: stdin_parent, stdout: out_r, stderr: err_r },
        ChildIo::Pipes { stdin: stdin_child, stdout: out_w, stderr: err_w },
    ))
}

/// A detached copy of the /dev/shm of the container whose init is `pid` (for `--ipc
/// container:`): it lives in that container's mount namespace, which a bind mount cannot
/// reach from ours, so a child of the shim enters it and clones the mount from there.
fn shm_of(pid: i32) -> Result<OwnedFd, ShimError> {
    let ns = open_file(format!("/proc/{pid}/ns/mnt"))?;
    let (ours, theirs) = socket_pair("socket")?;
    // SAFETY: the shim is single-threaded here; the child only makes syscalls and _exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(ShimError::Fork(e)),
        Ok(ForkResult::Child) => {
            let ok = nix::sched::setns(ns, CloneFlags::CLONE_NEWNS).is_ok()
                && crate::isolation::mountapi::open_tree_clone(Path::new("/dev/shm"), false)
                    .is_ok_and(|t| crate::isolation::pty::send_fd(theirs.as_raw_fd(), t.as_raw_fd()).is_ok());
            // SAFETY: leave the forked child without running the shim's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            let fd = crate::isolation::pty::recv_fd(&ours);
            let _ = waitpid(child, None);
            match fd {
                Ok(Some(fd)) => Ok(fd),
                _ => Err(ShimError::Shm(pid)),
            }
        }
    }
}

/// Before the clone of a `--userns` init: the socket that announces its maps, detached
/// copies of the host paths it binds, and the working directory it starts in (its mount
/// point: the clone's copy of it is where the init attaches its root, as it may have no
/// right to resolve the host path).
fn userns_prepare(spec: &LaunchSpec) -> Result<(OwnedFd, init::UsernsHandoff), ShimError> {
    let (ours, theirs) = socket_pair("userns socket")?;
    let host = crate::isolation::mounts::HostMounts::open(spec).map_err(ShimError::HostMounts)?;
    let path = &spec.rootfs.target;
    nix::unistd::chdir(path).map_err(|source| ShimError::Chdir { path: path.clone(), source })?;
    Ok((ours, init::UsernsHandoff { sync: theirs, host }))
}

/// Writes the init's ID maps and hands it its root: the overlay as a detached mount built
/// here (the shim is privileged on the host, the init no longer is), its layers idmapped
/// through the init's user namespace, or shifted copies taken as they are.
fn userns_handoff(
    spec: &LaunchSpec,
    map: &crate::isolation::userns::IdMapping,
    pid: i32,
    sock: &OwnedFd,
) -> Result<(), ShimError> {
    map.write(pid)?;
    let ns = open_file(format!("/proc/{pid}/ns/user"))?;
    let idmapped = spec.rootfs.idmapped.then(|| ns.as_fd());
    let m = crate::snapshot::idmap::overlay(&spec.rootfs, idmapped).map_err(ShimError::Rootfs)?;
    crate::isolation::pty::send_fd(sock.as_raw_fd(), m.as_raw_fd()).map_err(ShimError::Handoff)
}

/// Joins the `file` namespace (`ns` in messages) of the process `target`.
fn join_ns(target: i32, file: &str, ns: &'static str, flag: CloneFlags) -> Result<(), ShimError> {
    let path = format!("/proc/{target}/ns/{file}");
    let f = std::fs::File::open(&path).map_err(|source| ShimError::JoinOpen { ns, path: path.clone(), source })?;
    nix::sched::setns(f, flag).map_err(|source| ShimError::Join { ns, path, source })
}

fn send_report(rep: OwnedFd, r: &StartReport) {
    let mut f = std::fs::File::from(rep);
    if let Err(e) = writeln!(f, "{}", r.encode()) {
        eprintln!("shim: sending the start report: {e}");
    }
}

fn wait_exit(pid: Pid) -> (i32, Option<i32>) {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return (c, None),
            Ok(WaitStatus::Signaled(_, s, _)) => return (128 + s as i32, Some(s as i32)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return (255, None),
        }
    }
}

fn supervise(spec: &LaunchSpec, rep: OwnedFd) {
    let me = std::process::id() as i32;
    let mut report = StartReport {
        shim_pid: me,
        shim_start: crate::isolation::start_time(me).unwrap_or(0),
        pid: 0,
        pid_start: 0,
        error: None,
        exit_code: 0,
    };
    let fail = |mut r: StartReport, rep: OwnedFd, code: i32, msg: String| {
        r.error = Some(msg);
        r.exit_code = code;
        send_report(rep, &r);
    };
    let (parent_io, child_io) = match open_io(spec) {
        Ok(x) => x,
        Err(e) => return fail(report, rep, 125, e.to_string()),
    };
    let (pipes, errp) = match (pipe2(OFlag::O_CLOEXEC), pipe2(OFlag::O_CLOEXEC)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(report, rep, 125, ShimError::Pipe(e).to_string()),
    };
    let (go_r, go_w) = pipes;
    let (err_r, err_w) = errp;
    // `--network container:X`: the shim joins X's network namespace and the init is born
    // in it; joining from the init would be too late once it sits in a user namespace of
    // its own (it holds no privilege over X's namespace there).
    if let NetMode::Join(target) = spec.network {
        if let Err(e) = join_ns(target, "net", "network", CloneFlags::CLONE_NEWNET) {
            return fail(report, rep, 125, e.to_string());
        }
    }
    // With --userns the init waits on this socket until its ID maps are written (and
    // receives the idmapped overlay, when the kernel makes one).
    let (sync_ours, handoff) = if spec.userns.is_some() {
        match userns_prepare(spec) {
            Ok((ours, h)) => (Some(ours), Some(h)),
            Err(e) => return fail(report, rep, 125, e.to_string()),
        }
    } else {
        (None, None)
    };
    let shm = match spec.ipc {
        crate::isolation::spec::NsShare::Join(target) => match shm_of(target) {
            Ok(fd) => Some(fd),
            Err(e) => return fail(report, rep, 125, e.to_string()),
        },
        _ => None,
    };
    let mut payload = Some((go_r, err_w, child_io, handoff, shm));
    let mut stack = vec![0u8; 512 * 1024];
    let cb = Box::new(|| match payload.take() {
        Some((g, e, io, sync, shm)) => init::run(spec, g, e, io, sync, shm),
        None => 125,
    });
    // --ipc/--pid container:X likewise: a PID namespace joined by the shim applies to the
    // children it makes, the init.
    for (share, file, flag) in
        [(spec.ipc, "ipc", CloneFlags::CLONE_NEWIPC), (spec.pid_ns, "pid", CloneFlags::CLONE_NEWPID)]
    {
        if let crate::isolation::spec::NsShare::Join(target) = share {
            if let Err(e) = join_ns(target, file, file, flag) {
                return fail(report, rep, 125, e.to_string());
            }
        }
    }
    // The exit status gets its room now, before the container may fill the disk.
    let reserved = ExitStatus::reserve(&spec.exit_file);
    let flags = init::clone_flags(spec);
    // SAFETY: single-threaded process; the child runs `init::run`, which never returns.
    let pid = match unsafe { nix::sched::clone(cb, &mut stack, flags, Some(libc::SIGCHLD)) } {
        Ok(p) => p,
        Err(e) => return fail(report, rep, 125, ShimError::Clone(e).to_string()),
    };
    // The child's ends (held by the closure's copy in this process) close here.
    drop(payload);
    let abort = |report: StartReport, rep: OwnedFd, err_r: OwnedFd, why: String| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        wait_exit(pid);
        // The init may have failed first (that is why this step failed): say why.
        let mut msg = Vec::new();
        let _ = std::fs::File::from(err_r).read_to_end(&mut msg);
        if msg.len() > 1 {
            return fail(report, rep, msg[0] as i32, String::from_utf8_lossy(&msg[1..]).into_owned());
        }
        fail(report, rep, 125, why)
    };
    if let (Some(map), Some(sock)) = (&spec.userns, sync_ours) {
        if let Err(e) = userns_handoff(spec, map, pid.as_raw(), &sock) {
            drop(go_w);
            return abort(report, rep, err_r, e.to_string());
        }
    }
    // The init sets up its mounts meanwhile and waits for "go" before it execs.
    if let Err(e) = crate::cgroups::Cgroups::join(&spec.cgroup_dirs, pid.as_raw()) {
        drop(go_w);
        return abort(report, rep, err_r, e.to_string());
    }
    // A bridge-mode namespace is wired before the init may exec.
    // Host side here; the init configures its side itself after "go" (no extra process).
    for b in spec.bridge.iter().chain(spec.extra_bridges.iter()) {
        if let Err(e) = crate::network::attach::setup_host_side(pid.as_raw(), b) {
            // An init that failed its own set-up (an --ulimit the kernel refuses) exits and
            // takes its namespace with it: then its reason is the one to report.
            drop(go_w);
            return abort(report, rep, err_r, ShimError::Network(e).to_string());
        }
    }
    let _ = nix::unistd::write(&go_w, b"g");
    drop(go_w);
    let parent_io = match parent_io {
        ParentIo::Console { socket } => match crate::isolation::pty::recv_fd(&socket) {
            Ok(Some(master)) => ParentIo::Pty { master },
            // The init failed before opening its terminal: the error pipe says why.
            _ => ParentIo::Console { socket },
        },
        io => io,
    };
    let mut msg = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut msg);
    if !msg.is_empty() {
        let code = msg[0] as i32;
        wait_exit(pid);
        return fail(report, rep, code, String::from_utf8_lossy(&msg[1..]).into_owned());
    }
    report.pid = pid.as_raw();
    report.pid_start = crate::isolation::start_time(pid.as_raw()).unwrap_or(0);
    send_report(rep, &report);
    // Leave the agent's cgroup for our own (whoever kills the agent's cgroup, systemd or a
    // pod's runtime, leaves the containers and their supervisors alone), beside the relay:
    // a v1 migration waits for an RCU grace period, and the output must not wait for it.
    // Nothing forks or clones here any more, so a thread is safe.
    let dirs = spec.shim_cgroup_dirs.clone();
    let _ = std::thread::Builder::new().name("cgroup".into()).spawn(move || {
        let _ = crate::cgroups::Cgroups::join(&dirs, me);
    });
    relay(spec, parent_io);
    let (exit_code, signal) = wait_exit(pid);
    ExitStatus { exit_code, signal, finished_at: now() }.write(&spec.exit_file, reserved);
}

/// Set by SIGHUP: re-open the CRI log (kubelet rotated it).
static REOPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_hup(_: libc::c_int) {
    REOPEN.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Copies the container's output into the log and the stdin FIFO into its stdin, until
/// the output ends (the init and everything in its PID namespace exited).
fn relay(spec: &LaunchSpec, io: ParentIo) {
    // A log write that fails (a full disk) drops output and never stops the draining, so the
    // container never blocks on a full pipe (`logfile::Appender`); the log is rotated here
    // (`logfile::rotate`).
    let mut log = logfile::LogWriter::open(&spec.log, spec.log_rotation);
    let open_cri = || {
        let p = spec.cri_log.as_deref()?;
        // kubelet makes the pod's log directory; a container's own subdirectory may be ours.
        if let Some(d) = p.parent() {
            let _ = std::fs::create_dir_all(d);
        }
        Some(logfile::Appender::open(p))
    };
    let mut cri = open_cri();
    // Always handled (a stray SIGHUP must not kill the supervisor): the handler only
    // stores to an atomic (async-signal-safe); without SA_RESTART a blocked poll returns
    // EINTR, and the flag is also checked before every write.
    // SAFETY: installing a handler for SIGHUP with a zeroed, then filled, sigaction.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_hup as extern "C" fn(libc::c_int) as usize;
        libc::sigaction(libc::SIGHUP, &sa, std::ptr::null_mut());
    }
    let mut fifo: Option<OwnedFd> = spec.stdin_fifo.as_ref().and_then(|p| {
        nix::fcntl::open(
            p.as_path(),
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    // A tty's size, set by the agent through the resize FIFO (held open for writing too,
    // so that a writer's going away is no end of it).
    let term = match &io {
        ParentIo::Pty { master } => master.try_clone().ok(),
        _ => None,
    };
    let mut resize: Option<OwnedFd> = spec.resize_fifo.as_ref().filter(|_| term.is_some()).and_then(|p| {
        nix::fcntl::open(
            p.as_path(),
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    let mut sizes = Vec::new();
    let (mut outs, mut stdin): (Vec<(OwnedFd, Stream)>, Option<OwnedFd>) = match io {
        ParentIo::Pipes { stdin, stdout, stderr } => (vec![(stdout, Stream::Stdout), (stderr, Stream::Stderr)], stdin),
        ParentIo::Pty { master } => {
            let w = master.try_clone().ok();
            (vec![(master, Stream::Stdout)], w)
        }
        ParentIo::Console { .. } => (vec![], None),
    };
    let tty = spec.tty;
    let mut buf = vec![0u8; 64 * 1024];
    while !outs.is_empty() {
        let n_outs = outs.len();
        let mut fds: Vec<PollFd> = outs.iter().map(|(fd, _)| PollFd::new(fd.as_fd(), PollFlags::POLLIN)).collect();
        if let Some(f) = &fifo {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
        }
        let at_resize = fds.len();
        if let Some(r) = &resize {
            fds.push(PollFd::new(r.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {
                if REOPEN.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    cri = open_cri();
                }
                continue;
            }
            Err(_) => break,
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut closed = Vec::new();
        for (i, (fd, stream)) in outs.iter().enumerate() {
            if !ready[i] {
                continue;
            }
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => closed.push(i),
                Ok(n) => {
                    if REOPEN.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        cri = open_cri();
                    }
                    let t = now();
                    log.write(*stream, t, &buf[..n]);
                    if let Some(c) = cri.as_mut() {
                        c.write(n, |c| logfile::write_cri(c, *stream, t, &buf[..n]));
                    }
                }
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => closed.push(i),
            }
        }
        for i in closed.into_iter().rev() {
            outs.remove(i);
        }
        if let (Some(r), Some(t), Some(true)) = (&resize, &term, ready.get(at_resize)) {
            if !read_size(r, t, &mut buf, &mut sizes) {
                resize = None;
            }
        }
        if fifo.is_some() && ready.get(n_outs) == Some(&true) {
            let Some(f) = fifo.as_ref() else { continue };
            match nix::unistd::read(f, &mut buf) {
                Ok(0) => {
                    // The attached client closed its stdin: pass the EOF on (not for a tty,
                    // where the terminal stays open for the next attach).
                    fifo = None;
                    if !tty {
                        stdin = None;
                    }
                }
                Ok(n) => {
                    if let Some(s) = &stdin {
                        let _ = write_all(s, &buf[..n]);
                    }
                }
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => fifo = None,
            }
        }
    }
    drop(stdin);
}

/// Reads what the agent wrote to the resize FIFO and sets the last complete size on the
/// terminal; false when the FIFO cannot be read any more.
fn read_size(fifo: &OwnedFd, term: &OwnedFd, buf: &mut [u8], pending: &mut Vec<u8>) -> bool {
    match nix::unistd::read(fifo, buf) {
        Ok(n) => {
            pending.extend_from_slice(&buf[..n]);
            if let Some((rows, cols)) = protocol::last_size(pending) {
                crate::isolation::pty::set_size(term.as_raw_fd(), rows, cols);
            }
            // What follows the last newline is the start of the next message.
            let keep = pending.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            pending.drain(..keep);
            if pending.len() > 64 {
                // No size is that long: garbage, dropped.
                pending.clear();
            }
            true
        }
        Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => true,
        Err(_) => false,
    }
}

fn write_all(fd: &OwnedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
