//! Process isolation: what runs between `clone(CLONE_NEW…)` and `execve` of the user's
//! command (the container's init), and what joins a running container (exec).

pub mod init;
pub mod mounts;
pub mod nsexec;
pub mod process;
pub mod pty;
pub mod spec;

/// The start time of a process in clock ticks since boot (field 22 of `/proc/PID/stat`):
/// with the PID, it identifies a process across PID reuse.
pub fn start_time(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
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
