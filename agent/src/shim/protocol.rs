//! What agentd and a shim exchange: the launch spec the agent writes into the container's
//! directory (`launch.json`, [`LaunchSpec`]), the start report the shim prints once the
//! init has exec'd or failed, and the exit status it records in `exit.json`. Both sides use
//! only these types and paths.

pub use crate::isolation::spec::LaunchSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the shim tells the agent once the init has exec'd (or failed to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartReport {
    pub shim_pid: i32,
    pub shim_start: u64,
    pub pid: i32,
    pub pid_start: u64,
    /// Set when the container did not start; `exit_code` says how (125/126/127).
    pub error: Option<String>,
    pub exit_code: i32,
}

/// The exit status the shim records in the container's `exit.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitStatus {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub finished_at: i64,
}

/// The launch spec file in a container directory.
pub fn spec_path(dir: &Path) -> PathBuf {
    dir.join("launch.json")
}

/// The exit status file in a container directory.
pub fn exit_path(dir: &Path) -> PathBuf {
    dir.join("exit.json")
}

impl StartReport {
    /// One JSON line, as the shim prints it.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"shim_pid":0,"shim_start":0,"pid":0,"pid_start":0,"error":"encoding the start report: {e}","exit_code":125}}"#)
        })
    }

    /// Reads what the shim printed.
    pub fn decode(bytes: &[u8]) -> Result<StartReport, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The FIFO through which the agent sets a tty container's size: `ROWS COLS` lines, each
/// shorter than PIPE_BUF so that writers never interleave.
pub fn resize_path(dir: &Path) -> PathBuf {
    dir.join("resize")
}

/// One size message.
pub fn resize_line(rows: u16, cols: u16) -> String {
    format!("{rows} {cols}\n")
}

/// The last well-formed size of the complete lines in `buf` (a malformed line is skipped).
pub fn last_size(buf: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(buf).ok()?;
    let complete = &text[..text.rfind('\n')? + 1];
    complete.lines().rev().find_map(|l| {
        let (r, c) = l.trim().split_once(' ')?;
        Some((r.parse().ok()?, c.parse().ok()?))
    })
}

/// Room reserved for an exit status: more than its JSON ever takes.
const EXIT_ROOM: usize = 256;

impl ExitStatus {
    /// Reserves the room of the exit status beside `path` (`exit.tmp`, blanks): written over
    /// at the exit, it needs no new space on a disk the container may have filled meanwhile.
    pub fn reserve(path: &Path) -> Option<std::fs::File> {
        use std::io::Write;
        let mut f = std::fs::File::create(path.with_extension("tmp")).ok()?;
        f.write_all(&[b' '; EXIT_ROOM]).ok()?;
        f.sync_data().ok()?;
        Some(f)
    }

    /// Writes the status to `path` (through the reserved file when there is one), replacing
    /// it atomically.
    pub fn write(&self, path: &Path, reserved: Option<std::fs::File>) {
        use std::io::{Seek, Write};
        let tmp = path.with_extension("tmp");
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        let ok = match reserved {
            Some(mut f) if bytes.len() <= EXIT_ROOM => {
                // Trailing blanks are whitespace to a JSON reader.
                bytes.resize(EXIT_ROOM, b' ');
                f.rewind().and_then(|_| f.write_all(&bytes)).is_ok()
            }
            _ => std::fs::write(&tmp, &bytes).is_ok(),
        };
        if ok {
            let _ = std::fs::rename(&tmp, path);
        }
    }

    /// The exit status the shim of the container in `dir` recorded, if it did.
    pub fn read(dir: &Path) -> Option<ExitStatus> {
        std::fs::read(exit_path(dir)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let r =
            StartReport { shim_pid: 1, shim_start: 2, pid: 3, pid_start: 4, error: Some("x".into()), exit_code: 127 };
        let back = StartReport::decode(r.encode().as_bytes()).unwrap();
        assert_eq!((back.pid, back.exit_code, back.error.as_deref()), (3, 127, Some("x")));
        let d = tempfile::tempdir().unwrap();
        assert!(ExitStatus::read(d.path()).is_none());
        let e = ExitStatus { exit_code: 137, signal: Some(9), finished_at: 5 };
        std::fs::write(exit_path(d.path()), serde_json::to_vec(&e).unwrap()).unwrap();
        assert_eq!(ExitStatus::read(d.path()).map(|e| e.exit_code), Some(137));
        let p = exit_path(d.path());
        let room = ExitStatus::reserve(&p);
        assert!(room.is_some());
        ExitStatus { exit_code: 7, signal: None, finished_at: 1 }.write(&p, room);
        assert_eq!(ExitStatus::read(d.path()).map(|e| e.exit_code), Some(7));
        assert!(!p.with_extension("tmp").exists());
    }

    #[test]
    fn size_lines_round_trip_and_the_last_complete_one_wins() {
        let two = resize_line(24, 80) + &resize_line(45, 123);
        assert_eq!(last_size(two.as_bytes()), Some((45, 123)));
        assert_eq!(last_size(b"10 20\n30 4"), Some((10, 20)), "an incomplete line is not read");
        assert_eq!(last_size(b"10 20\nnonsense\n"), Some((10, 20)));
        assert_eq!(last_size(b"70000 1\n"), None);
        assert_eq!(last_size(b""), None);
    }
}
