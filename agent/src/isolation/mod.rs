//! Process isolation: what runs between `clone(CLONE_NEW…)` and `execve` of the user's
//! command (the container's init), and what joins a running container (exec).

pub mod devices;
pub mod init;
pub mod mountapi;
pub mod mounts;
pub mod nsexec;
pub mod process;
pub mod pty;
pub mod seccomp;
pub mod seccomp_profile;
pub mod spec;
pub mod sysctl;
pub mod userns;

/// The start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`):
/// with the PID, it identifies a process across PID reuse.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// Closes every descriptor of this process except stdio and `keep`. The shim, the
/// container's init and exec helpers are long-lived: a stray inherited pipe (from the
/// agent or whoever started it) would keep its reader waiting for an EOF forever.
pub fn close_fds_except(keep: &[i32]) {
    let Ok(rd) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<i32> = rd.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect();
    for fd in fds {
        if fd > 2 && !keep.contains(&fd) {
            // SAFETY: closing descriptors this single-threaded process does not use; the
            // one used to read /proc/self/fd is already closed (EBADF is harmless).
            unsafe { libc::close(fd) };
        }
    }
}

/// Whether the process is alive (not gone and not a zombie).
pub fn alive(pid: i32, start: u64) -> bool {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(i) = s.rfind(')') else { return false };
    let state = s[i + 2..].chars().next().unwrap_or('X');
    state != 'Z' && state != 'X' && start_time(pid) == Some(start)
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_time_is_stable() {
        let me = std::process::id() as i32;
        let a = super::start_time(me).unwrap();
        assert_eq!(super::start_time(me), Some(a));
        assert!(super::alive(me, a));
        assert!(!super::alive(me, a + 1));
    }
}
