//! The container's init, run in the child of `clone(CLONE_NEW…)`: waits until the shim
//! has placed it in its cgroup, then isolates itself and execs the user's command.

use super::mounts;
use super::process::{self, Failure};
use super::spec::{LaunchSpec, NetMode};
use nix::sched::CloneFlags;
use std::os::fd::{AsRawFd, OwnedFd};

/// The child's standard streams, as the shim prepared them.
pub enum ChildIo {
    /// Pipes (or /dev/null) for stdin, stdout, stderr.
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
    /// A terminal: the init opens it from the container's own devpts, after `pivot_root`,
    /// and sends the master to the shim over this socket.
    Console { socket: OwnedFd },
}

/// The namespaces every container gets (plus a network namespace unless `--network host`
/// or `container:`, and a user namespace with `--userns`). Created in one clone, the other
/// namespaces belong to the new user namespace, so its root may mount /proc, /sys, mqueue.
pub fn clone_flags(spec: &LaunchSpec) -> CloneFlags {
    use super::spec::NsShare;
    let mut f = CloneFlags::CLONE_NEWNS;
    if spec.uts == NsShare::Private {
        f |= CloneFlags::CLONE_NEWUTS;
    }
    if spec.network.own_namespace() {
        f |= CloneFlags::CLONE_NEWNET;
    }
    if spec.ipc == NsShare::Private {
        f |= CloneFlags::CLONE_NEWIPC;
    }
    if spec.pid_ns == NsShare::Private {
        f |= CloneFlags::CLONE_NEWPID;
    }
    let userns = spec.userns.is_some();
    if userns {
        f |= CloneFlags::CLONE_NEWUSER;
    }
    f
}

/// Writes a failure for the shim: one byte of exit code, then the message.
pub fn report(fd: &OwnedFd, f: &Failure) {
    let mut buf = vec![f.code.clamp(0, 255) as u8];
    buf.extend_from_slice(f.msg.as_bytes());
    let _ = nix::unistd::write(fd, &buf);
}

/// Runs in the cloned child; never returns.
/// What a `--userns` init gets from the shim: the socket on which its maps are announced
/// (with the overlay), and the host mounts it binds.
pub struct UsernsHandoff {
    pub sync: OwnedFd,
    pub host: mounts::HostMounts,
}

/// `shm`: with `--ipc container:X`, a detached copy of X's /dev/shm (see the shim).
pub fn run(
    spec: &LaunchSpec,
    go: OwnedFd,
    errw: OwnedFd,
    io: ChildIo,
    userns: Option<UsernsHandoff>,
    shm: Option<OwnedFd>,
) -> ! {
    let f = setup_and_exec(spec, io, &errw, go, userns, shm);
    report(&errw, &f);
    // SAFETY: _exit ends the child without running the shim's destructors twice.
    unsafe { libc::_exit(f.code) }
}

/// Blocks until the shim has moved this process into its cgroup.
fn wait_for_cgroup(go: OwnedFd) {
    let mut b = [0u8; 1];
    match nix::unistd::read(&go, &mut b) {
        Ok(1) => {}
        // SAFETY: the shim gave up (cgroup join failed) and reports that itself.
        _ => unsafe { libc::_exit(125) },
    }
}

/// In a new user namespace: waits until the shim has written the ID maps, then becomes
/// the namespace's root (uid/gid 0 inside, the mapping's first host ID outside). Returns
/// the idmapped overlay the shim built, if it built one.
fn become_userns_root(sync: &OwnedFd) -> Result<Option<OwnedFd>, Failure> {
    let (got, rootfs) = super::pty::recv_msg(sync)
        .map_err(|e| Failure::setup(format!("wait for the user namespace maps: {}", e.desc())))?;
    if !got {
        return Err(Failure::setup("the shim gave up before mapping the user namespace"));
    }
    super::userns::become_root().map_err(Failure::setup)?;
    Ok(rootfs)
}

fn setup_and_exec(
    spec: &LaunchSpec,
    io: ChildIo,
    errw: &OwnedFd,
    go: OwnedFd,
    userns: Option<UsernsHandoff>,
    shm: Option<OwnedFd>,
) -> Failure {
    let console = match io {
        ChildIo::Pipes { stdin, stdout, stderr } => {
            if let Err(e) = nix::unistd::setsid() {
                return Failure::setup(format!("setsid: {}", e.desc()));
            }
            for (fd, target) in [(&stdin, 0), (&stdout, 1), (&stderr, 2)] {
                // SAFETY: dup2 onto the standard descriptors of this single-threaded child.
                if unsafe { libc::dup2(fd.as_raw_fd(), target) } < 0 {
                    return Failure::setup(format!("dup2: {}", std::io::Error::last_os_error()));
                }
            }
            None
        }
        ChildIo::Console { socket } => Some(socket),
    };
    // Nothing of the shim may stay open in the container (an init that never execs would
    // otherwise keep the shim's pipes, and their readers, waiting).
    let mut keep = vec![errw.as_raw_fd(), go.as_raw_fd()];
    keep.extend(console.as_ref().map(|c| c.as_raw_fd()));
    keep.extend(shm.as_ref().map(|c| c.as_raw_fd()));
    if let Some(u) = &userns {
        keep.push(u.sync.as_raw_fd());
        keep.extend(u.host.raw_fds());
    }
    super::close_fds_except(&keep);
    let rootfs_mount = match userns.as_ref().map(|u| become_userns_root(&u.sync)) {
        None => None,
        Some(Ok(m)) => m,
        Some(Err(f)) => return f,
    };
    // With `--uts host` the names are the host's, and stay so.
    if spec.uts == super::spec::NsShare::Private {
        if let Err(e) = nix::unistd::sethostname(&spec.hostname) {
            return Failure::setup(format!("sethostname {:?}: {}", spec.hostname, e.desc()));
        }
        if !spec.domainname.is_empty() {
            // SAFETY: a pointer and length of a live string; the UTS namespace is our own.
            let r = unsafe { libc::setdomainname(spec.domainname.as_ptr().cast(), spec.domainname.len()) };
            if r != 0 {
                let e = nix::errno::Errno::last();
                return Failure::setup(format!("setdomainname {:?}: {}", spec.domainname, e.desc()));
            }
        }
    }
    match spec.network {
        NetMode::None | NetMode::Bridge => {
            if let Err(f) = mounts::loopback_up() {
                return f;
            }
        }
        // The shim joined the other container's namespace before the clone.
        NetMode::Host | NetMode::Join(_) => {}
    }
    if let Err(f) = mounts::setup_rootfs(spec, rootfs_mount, userns.as_ref().map(|u| &u.host), shm.as_ref()) {
        return f;
    }
    drop(shm);
    // The host mounts are attached now: nothing of them may stay open in the container.
    drop(userns);
    // With --userns the working directory is the new root (see mounts::setup_rootfs).
    let new_root = if spec.userns.is_some() { std::path::Path::new(".") } else { spec.rootfs.target.as_path() };
    if let Err(f) = mounts::pivot_root(new_root) {
        return f;
    }
    if let Some(sock) = console {
        if let Err(f) = console_terminal(sock) {
            return f;
        }
    }
    if spec.read_only {
        if let Err(f) = mounts::read_only_root() {
            return f;
        }
    }
    // /proc/sys becomes read-only below: namespaced sysctls go in first.
    if let Err(e) = super::sysctl::apply(&spec.sysctls) {
        return Failure::setup(e);
    }
    if !spec.privileged {
        if let Err(f) = mounts::mask_paths(&spec.masked_paths, &spec.readonly_paths) {
            return f;
        }
    }
    if let Some(adj) = spec.oom_score_adj {
        if let Err(e) = std::fs::write("/proc/self/oom_score_adj", adj.to_string()) {
            return Failure::setup(format!("oom_score_adj {adj}: {e}"));
        }
    }
    for l in &spec.rlimits {
        if let Err(f) = set_rlimit(l) {
            return f;
        }
    }
    // Everything above overlaps with the shim moving us into our cgroup (a migration on
    // cgroup v1 waits for an RCU grace period, ~10 ms here); nothing of the user's runs
    // before it is done, and the cgroup namespace is rooted at that cgroup.
    wait_for_cgroup(go);
    // The shim has moved our veth ends in: give them their addresses and route.
    for b in spec.bridge.iter().chain(spec.extra_bridges.iter()) {
        if let Err(e) = crate::network::attach::configure_inside(b) {
            return Failure::setup(format!("network: {e}"));
        }
    }
    if !spec.cgroupns_host {
        if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP) {
            return Failure::setup(format!("new cgroup namespace: {}", e.desc()));
        }
    }
    if spec.pause {
        return pause(spec, errw);
    }
    if spec.init {
        return tiny_init(spec, errw);
    }
    let seccomp = super::spec::Seccomp::of(spec.seccomp_unconfined, &spec.seccomp_programs);
    process::exec(&spec.args, &spec.env, &spec.cwd, identity(spec), &spec.capabilities, seccomp)
}

fn identity(spec: &LaunchSpec) -> process::Identity<'_> {
    process::Identity {
        user: &spec.user,
        groups: &spec.groups,
        image_groups: spec.image_groups,
        no_new_privs: spec.no_new_privs,
    }
}

/// Opens the container's terminal from its own devpts, hands the master to the shim,
/// makes the slave the controlling terminal and stdio, and binds it on /dev/console.
fn console_terminal(sock: OwnedFd) -> Result<(), Failure> {
    let (master, slave) =
        super::pty::open().map_err(|e| Failure::setup(format!("open the container's terminal: {}", e.desc())))?;
    super::pty::set_size(master.as_raw_fd(), 24, 80);
    super::pty::send_fd(sock.as_raw_fd(), master.as_raw_fd())
        .map_err(|e| Failure::setup(format!("hand the terminal to the shim: {}", e.desc())))?;
    drop(master);
    drop(sock);
    nix::unistd::setsid().map_err(|e| Failure::setup(format!("setsid: {}", e.desc())))?;
    let s = slave.as_raw_fd();
    // SAFETY: s is the slave pty; TIOCSCTTY takes an int; dup2 onto stdio of this child.
    unsafe {
        if libc::ioctl(s, libc::TIOCSCTTY, 0) < 0 {
            return Err(Failure::setup(format!("set controlling terminal: {}", std::io::Error::last_os_error())));
        }
        for fd in 0..3 {
            libc::dup2(s, fd);
        }
    }
    let path =
        std::fs::read_link(format!("/proc/self/fd/{s}")).map_err(|e| Failure::setup(format!("terminal path: {e}")))?;
    drop(slave);
    mounts::bind_console(&path)
}

/// A pod's pause process (its infra container): nothing to execute. As PID 1 it holds the
/// pod's namespaces, reaps whatever the pod's processes leave (with a shared PID namespace)
/// and exits 0 on SIGTERM or SIGINT — what kubelet's pause image does.
fn pause(spec: &LaunchSpec, errw: &OwnedFd) -> Failure {
    use nix::sys::signal::{SigSet, SigmaskHow};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let user =
        process::lookup_user(&spec.user).unwrap_or(process::User { uid: 0, gid: 0, groups: vec![], home: "/".into() });
    if let Err(e) = process::drop_privileges(&user, &process::cap_set(&spec.capabilities), spec.no_new_privs) {
        return e;
    }
    // Set up: the shim reads the closed error pipe as "started".
    // SAFETY: closing our copy; this process never returns to drop the OwnedFd.
    unsafe { libc::close(errw.as_raw_fd()) };
    let all = SigSet::all();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    loop {
        let ts = libc::timespec { tv_sec: 1, tv_nsec: 0 };
        // SAFETY: sigtimedwait on a valid set with a null info pointer.
        let sig = unsafe { libc::sigtimedwait(all.as_ref(), std::ptr::null_mut(), &ts) };
        if sig == libc::SIGTERM || sig == libc::SIGINT {
            // SAFETY: leave PID 1; the kernel kills what remains in the namespace.
            unsafe { libc::_exit(0) }
        }
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {}
    }
}

/// `--init`: stay PID 1, run the command as PID 2, forward signals to it, reap every
/// orphan, and exit with the command's status (what tini does for `docker run --init`).
fn tiny_init(spec: &LaunchSpec, errw: &OwnedFd) -> Failure {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    // SAFETY: this process is single-threaded.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Failure::setup(format!("fork for --init: {}", e.desc())),
        Ok(nix::unistd::ForkResult::Child) => {
            return process::exec(
                &spec.args,
                &spec.env,
                &spec.cwd,
                identity(spec),
                &spec.capabilities,
                super::spec::Seccomp::of(spec.seccomp_unconfined, &spec.seccomp_programs),
            )
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => child,
    };
    // The init must not hold the error pipe open: the shim waits for its EOF (= exec done).
    // SAFETY: closing our copy; this process never returns to drop the OwnedFd.
    unsafe { libc::close(errw.as_raw_fd()) };
    let user =
        process::lookup_user(&spec.user).unwrap_or(process::User { uid: 0, gid: 0, groups: vec![], home: "/".into() });
    let _ = process::drop_privileges(&user, &process::cap_set(&spec.capabilities), spec.no_new_privs);
    let all = SigSet::all();
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&all), None);
    let mut code = None;
    loop {
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 100_000_000 };
        // SAFETY: sigtimedwait on a valid set with a null info pointer.
        let sig = unsafe { libc::sigtimedwait(all.as_ref(), std::ptr::null_mut(), &ts) };
        if sig > 0 && sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(child, s);
            }
        }
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) if p == child => code = Some(c),
                Ok(WaitStatus::Signaled(p, s, _)) if p == child => code = Some(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if let Some(c) = code {
            // SAFETY: leave PID 1; the kernel kills what remains in the namespace.
            unsafe { libc::_exit(c) }
        }
    }
}

/// Sets one `--ulimit` on this process (the command inherits it through exec). Raising a
/// hard limit needs CAP_SYS_RESOURCE in the host's user namespace: refused with EPERM
/// otherwise, reported naming the limit.
fn set_rlimit(l: &super::spec::Rlimit) -> Result<(), Failure> {
    let Some(res) = l.resource() else {
        return Err(Failure::setup(format!("--ulimit {l}: unknown limit")));
    };
    let v = |x: Option<u64>| x.unwrap_or(libc::RLIM_INFINITY);
    let r = libc::rlimit { rlim_cur: v(l.soft), rlim_max: v(l.hard) };
    // SAFETY: setrlimit with a valid resource and a live struct.
    if unsafe { libc::setrlimit(res as _, &r) } != 0 {
        let e = nix::errno::Errno::last();
        let why = if e == nix::errno::Errno::EPERM {
            " (raising a hard limit needs CAP_SYS_RESOURCE, which the agent does not hold)"
        } else {
            ""
        };
        return Err(Failure::setup(format!("--ulimit {l}: {}{why}", e.desc())));
    }
    Ok(())
}
