//! `agentd nsexec`: runs a command inside a running container. Joins the init's cgroup and
//! namespaces, forks (a PID namespace applies to children only), and in the child drops
//! privileges and execs; the parent waits and exits with the child's code.

use super::process::{self, Failure};
use super::spec::ExecLaunch;
use nix::sched::CloneFlags;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::ForkResult;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The command's PID (and process group), for the SIGTERM handler.
static COMMAND: AtomicI32 = AtomicI32::new(0);

/// SIGTERM to nsexec: kill the command's process group; the wait below then reaps it, so
/// nothing of it is left (not even a zombie the container's init might never reap) once
/// nsexec has exited. Only async-signal-safe calls.
extern "C" fn kill_command(_: libc::c_int) {
    let c = COMMAND.load(Ordering::SeqCst);
    if c > 0 {
        // SAFETY: kill(2) takes integers and is async-signal-safe.
        unsafe {
            libc::kill(-c, libc::SIGKILL);
            libc::kill(c, libc::SIGKILL);
        }
    }
}

/// Blocks SIGTERM (until the handler is in place), returning the previous mask.
fn block_term() -> Result<nix::sys::signal::SigSet, nix::errno::Errno> {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::from(Signal::SIGTERM)), Some(&mut old))?;
    Ok(old)
}

fn join(l: &ExecLaunch) -> Result<(), Failure> {
    // Open every namespace first: after joining the mount namespace, /proc is the container's.
    let mut fds: Vec<(OwnedFd, CloneFlags, &str)> = Vec::new();
    for (name, flag) in [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ] {
        let p = format!("/proc/{}/ns/{name}", l.pid);
        let f = std::fs::File::open(&p).map_err(|e| Failure::setup(format!("container is not running ({p}: {e})")))?;
        fds.push((f.into(), flag, name));
    }
    // The user namespace last: this process is privileged over every namespace as the
    // host's root, and in the container's user namespace only over the ones it owns
    // (not the host network of --network host, say).
    if l.userns {
        let p = format!("/proc/{}/ns/user", l.pid);
        let f = std::fs::File::open(&p).map_err(|e| Failure::setup(format!("container is not running ({p}: {e})")))?;
        fds.push((f.into(), CloneFlags::CLONE_NEWUSER, "user"));
    }
    crate::cgroups::Cgroups::join(&l.cgroup_dirs, std::process::id() as i32)
        .map_err(|e| Failure::setup(e.to_string()))?;
    for (fd, flag, name) in fds {
        // The host network namespace (--network host) is already ours; setns to it is fine.
        nix::sched::setns(fd, flag).map_err(|e| Failure::setup(format!("join {name} namespace: {}", e.desc())))?;
    }
    if l.userns {
        super::userns::become_root().map_err(Failure::setup)?;
    }
    Ok(())
}

/// Entry point of `agentd nsexec '<json>'`; returns the process exit code.
pub fn main(json: &str) -> i32 {
    let l: ExecLaunch = match serde_json::from_str(json) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nsexec: bad launch spec: {e}");
            return 125;
        }
    };
    super::close_fds_except(if l.tty { &[CONSOLE_SOCKET_FD] } else { &[] });
    if let Err(f) = join(&l) {
        eprintln!("{}", f.msg);
        return f.code;
    }
    // A SIGTERM (the agent ending the command) waits until the handler knows the child.
    let old_mask = match block_term() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("nsexec: block SIGTERM: {}", e.desc());
            return 125;
        }
    };
    // SAFETY: this process is single-threaded (nsexec runs before any runtime starts).
    match unsafe { nix::unistd::fork() } {
        Err(e) => {
            eprintln!("fork: {}", e.desc());
            125
        }
        Ok(ForkResult::Child) => {
            // SAFETY: prctl with integer arguments: die with the parent (the agent's relay).
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            if let Err(e) =
                nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old_mask), None)
            {
                eprintln!("nsexec: restore the signal mask: {}", e.desc());
                // SAFETY: leave the forked child without unwinding.
                unsafe { libc::_exit(125) }
            }
            if !l.tty {
                // Its own process group (a terminal's session makes one too), which the
                // SIGTERM handler kills as a whole.
                if let Err(e) = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0)) {
                    eprintln!("nsexec: setpgid: {}", e.desc());
                    // SAFETY: leave the forked child without unwinding.
                    unsafe { libc::_exit(125) }
                }
            }
            if l.tty {
                if let Err(f) = container_terminal() {
                    eprintln!("{f}");
                    // SAFETY: leave the forked child without unwinding.
                    unsafe { libc::_exit(125) }
                }
            }
            let seccomp = super::spec::Seccomp::of(l.seccomp_unconfined, &l.seccomp_programs);
            let who = process::Identity {
                user: &l.user,
                groups: &l.groups,
                image_groups: l.image_groups,
                no_new_privs: l.no_new_privs,
            };
            let f = process::exec(&l.args, &l.env, &l.cwd, who, &l.capabilities, seccomp);
            eprintln!("{}", f.msg);
            // SAFETY: leave the forked child without unwinding.
            unsafe { libc::_exit(f.code) }
        }
        Ok(ForkResult::Parent { child }) => {
            COMMAND.store(child.as_raw(), Ordering::SeqCst);
            use nix::sys::signal::{pthread_sigmask, sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow};
            let act = SigAction::new(SigHandler::Handler(kill_command), SaFlags::SA_RESTART, SigSet::empty());
            // SAFETY: the handler only loads an atomic and calls kill(2).
            let set = unsafe { sigaction(nix::sys::signal::Signal::SIGTERM, &act) }
                .and_then(|_| pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None));
            if let Err(e) = set {
                eprintln!("nsexec: SIGTERM handler: {}", e.desc());
            }
            loop {
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, c)) => return c,
                    Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => return 125,
                }
            }
        }
    }
}

/// The descriptor on which the agent waits for the terminal's master.
pub const CONSOLE_SOCKET_FD: i32 = 3;

/// Opens a terminal from the container's devpts, sends its master to the agent, and makes
/// the slave this process's stdio and controlling terminal.
fn container_terminal() -> Result<(), Failure> {
    let failed = |what: &str, e: nix::Error| Failure::setup(format!("{what}: {}", e.desc()));
    let (master, slave) = super::pty::open().map_err(|e| failed("open a terminal in the container", e))?;
    super::pty::send_fd(CONSOLE_SOCKET_FD, std::os::fd::AsRawFd::as_raw_fd(&master))
        .map_err(|e| failed("hand the terminal to the agent", e))?;
    drop(master);
    // SAFETY: closing the console socket, which this process no longer needs.
    unsafe { libc::close(CONSOLE_SOCKET_FD) };
    nix::unistd::setsid().map_err(|e| failed("setsid", e))?;
    let s = std::os::fd::AsRawFd::as_raw_fd(&slave);
    // SAFETY: s is the slave pty; TIOCSCTTY takes an int; dup2 onto stdio of this child.
    unsafe {
        if libc::ioctl(s, libc::TIOCSCTTY, 0) < 0 {
            return Err(Failure::setup(format!("set controlling terminal: {}", std::io::Error::last_os_error())));
        }
        for fd in 0..3 {
            libc::dup2(s, fd);
        }
    }
    Ok(())
}
