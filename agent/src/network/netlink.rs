//! The three rtnetlink requests a container's bridge attachment needs, sent straight from
//! the shim: create the veth pair (host end enslaved to the bridge and up, the peer born in
//! the container's network namespace), and turn hairpin on for the host end.
//!
//! Written by hand rather than with rtnetlink/netlink-packet-route: the shim is a small
//! synchronous process on the start-up path, these messages are fixed, and spawning `ip`
//! for them cost more than everything else the bridge needs (see README, Speed).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDRLEN: usize = 16;
const IFINFOMSG_LEN: usize = 16;
const NLA_F_NESTED: u16 = 0x8000;

// <linux/if_link.h>, <linux/veth.h>
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;

/// A netlink message under construction (attributes nest by remembering their offsets).
struct Msg {
    buf: Vec<u8>,
    open: Vec<usize>,
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    fn new(ty: u16, flags: u16, family: u8, index: i32, ifi_flags: u32, change: u32) -> Msg {
        let mut m = Msg { buf: vec![0; NLMSG_HDRLEN], open: vec![] };
        m.buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        m.buf[6..8].copy_from_slice(&(flags | libc::NLM_F_REQUEST as u16 | libc::NLM_F_ACK as u16).to_ne_bytes());
        m.buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        m.ifinfo(family, index, ifi_flags, change);
        m
    }

    fn ifinfo(&mut self, family: u8, index: i32, flags: u32, change: u32) {
        let mut h = [0u8; IFINFOMSG_LEN];
        h[0] = family;
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        h[8..12].copy_from_slice(&flags.to_ne_bytes());
        h[12..16].copy_from_slice(&change.to_ne_bytes());
        self.buf.extend_from_slice(&h);
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn str(&mut self, ty: u16, s: &str) {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(ty, &d);
    }

    fn u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    fn begin(&mut self, ty: u16) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A NETLINK_ROUTE socket.
struct Socket(OwnedFd);

impl Socket {
    fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor we own.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&self, msg: Vec<u8>) -> io::Result<()> {
        // SAFETY: msg is a valid buffer of its length; the kernel is the destination.
        let n = unsafe { libc::send(self.0.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = [0u8; 8192];
        loop {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + NLMSG_HDRLEN <= n {
                let len = u32::from_ne_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]]) as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < NLMSG_HDRLEN || off + len > n {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink reply"));
                }
                if ty == libc::NLMSG_ERROR as u16 && len >= NLMSG_HDRLEN + 4 {
                    let p = off + NLMSG_HDRLEN;
                    let err = i32::from_ne_bytes([buf[p], buf[p + 1], buf[p + 2], buf[p + 3]]);
                    return if err == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(-err)) };
                }
                off += align(len);
            }
        }
    }
}

fn ifindex(name: &str) -> io::Result<i32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is NUL-terminated.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")));
    }
    Ok(i as i32)
}

/// Creates veth `host` (MTU `mtu`, enslaved to `bridge`, up, hairpin on) whose peer `peer`
/// is created inside the network namespace of process `pid`.
pub fn add_veth_to_bridge(host: &str, peer: &str, pid: i32, bridge: &str, mtu: u32) -> io::Result<()> {
    let s = Socket::open()?;
    let master = ifindex(bridge)?;
    let flags = (libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
    let up = libc::IFF_UP as u32;
    let mut m = Msg::new(libc::RTM_NEWLINK, flags, libc::AF_UNSPEC as u8, 0, up, up);
    m.str(IFLA_IFNAME, host);
    m.u32(IFLA_MTU, mtu);
    m.u32(IFLA_MASTER, master as u32);
    m.begin(IFLA_LINKINFO);
    m.str(IFLA_INFO_KIND, "veth");
    m.begin(IFLA_INFO_DATA);
    m.begin(VETH_INFO_PEER);
    m.ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
    m.str(IFLA_IFNAME, peer);
    m.u32(IFLA_MTU, mtu);
    m.u32(IFLA_NET_NS_PID, pid as u32);
    m.end();
    m.end();
    m.end();
    s.request(m.finish())?;
    let index = ifindex(host)?;
    // Hairpin: a container can reach its own published port through the bridge.
    let mut m = Msg::new(libc::RTM_SETLINK, 0, libc::AF_BRIDGE as u8, index, 0, 0);
    m.begin(IFLA_PROTINFO);
    m.attr(IFLA_BRPORT_MODE, &[1]);
    m.end();
    s.request(m.finish())
}

/// Deletes a link by name (cleanup after a failed attachment).
pub fn del_link(name: &str) -> io::Result<()> {
    let s = Socket::open()?;
    let index = ifindex(name)?;
    s.request(Msg::new(libc::RTM_DELLINK, 0, libc::AF_UNSPEC as u8, index, 0, 0).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_well_formed() {
        let mut m = Msg::new(libc::RTM_NEWLINK, 0, 0, 0, 1, 1);
        m.str(IFLA_IFNAME, "ab");
        m.begin(IFLA_LINKINFO);
        m.str(IFLA_INFO_KIND, "veth");
        m.end();
        let b = m.finish();
        assert_eq!(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize, b.len());
        assert_eq!(b.len() % 4, 0);
        // ifname attribute right after the header and ifinfomsg: len 4 + "ab\0" = 7.
        assert_eq!(u16::from_ne_bytes([b[32], b[33]]), 7);
        // The nested linkinfo spans its "veth\0" attribute: 4 + align(4 + 5) = 16.
        assert_eq!(u16::from_ne_bytes([b[40], b[41]]), 16);
        assert_eq!(u16::from_ne_bytes([b[42], b[43]]), IFLA_LINKINFO | NLA_F_NESTED);
    }
}
