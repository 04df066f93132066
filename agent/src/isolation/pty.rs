//! Terminals created inside the container (from its own devpts instance), so that
//! `tty` and `ttyname` work there, with the master handed back over a socket (SCM_RIGHTS),
//! as runc does with its console socket.

use nix::fcntl::OFlag;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Opens a new pty pair from the current mount namespace's `/dev/ptmx`.
pub fn open() -> nix::Result<(OwnedFd, OwnedFd)> {
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    // SAFETY: ptsname is not thread-safe; callers are single-threaded (shim child, nsexec).
    let name = unsafe { nix::pty::ptsname(&master)? };
    let slave = nix::fcntl::open(name.as_str(), OFlag::O_RDWR | OFlag::O_NOCTTY, nix::sys::stat::Mode::empty())?;
    // SAFETY: into_raw_fd transfers ownership of the master descriptor.
    let m = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(master)) };
    Ok((m, slave))
}

/// Sets a terminal's size.
pub fn set_size(fd: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize struct that lives across the call.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

/// Sends `fd` over the unix socket `sock`.
pub fn send_fd(sock: RawFd, fd: RawFd) -> nix::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"p")];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None).map(|_| ())
}

/// Receives one descriptor from `sock`; `None` when the peer closed without sending.
pub fn recv_fd(sock: &OwnedFd) -> nix::Result<Option<OwnedFd>> {
    recv_msg(sock).map(|(_, fd)| fd)
}

/// Receives one message: whether it had a byte (`false`: the peer closed) and the
/// descriptor it carried, if any.
pub fn recv_msg(sock: &OwnedFd) -> nix::Result<(bool, Option<OwnedFd>)> {
    let mut buf = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let got = msg.bytes > 0;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this descriptor for us.
                return Ok((got, Some(unsafe { OwnedFd::from_raw_fd(fd) })));
            }
        }
    }
    Ok((got, None))
}
