//! A tty container's terminal size, as attach clients set it: the shim holds the terminal's
//! master and reads new sizes from the container's resize FIFO (`shim::protocol`).

use super::{Result, Runtime, RuntimeError, State};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

impl Runtime {
    /// Sets the terminal of running tty container `name` to `rows` x `cols`.
    pub fn resize_tty(&self, name: &str, rows: u16, cols: u16) -> Result<()> {
        let rec = self.resolve(name)?;
        if !rec.spec.tty {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} has no terminal to resize (created without tty)",
                rec.name
            )));
        }
        if rec.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot resize the terminal of container {}: it is not running",
                rec.name
            )));
        }
        let path = crate::shim::protocol::resize_path(&self.container_dir(&rec.id));
        // Non-blocking: a shim that is gone (no reader, ENXIO) or does not read its sizes
        // (a full FIFO) is an error, never a hang.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|err| RuntimeError::Io { what: "open the resize FIFO", path: path.clone(), err })?;
        f.write_all(crate::shim::protocol::resize_line(rows, cols).as_bytes()).map_err(|err| RuntimeError::Io {
            what: "write the resize FIFO",
            path,
            err,
        })
    }
}
