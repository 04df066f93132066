//! Every rtnetlink request the agent and its shims make: bridges (create, address, up),
//! veth pairs onto a bridge (the peer born in a container's network namespace), hairpin,
//! link removal. Messages are netlink-packet-route's types sent over a netlink-sys socket,
//! synchronously: the shim is a small single-threaded process on the start-up path, and a
//! request and its acknowledgement are all it needs. No `ip` process is spawned.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::io;
use std::net::Ipv4Addr;

/// A NETLINK_ROUTE socket (close-on-exec) with its request counter.
struct Conn {
    sock: Socket,
    seq: u32,
}

impl Conn {
    fn open() -> io::Result<Conn> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Conn { sock, seq: 0 })
    }

    /// Sends one request and waits for its acknowledgement (or the kernel's error).
    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        loop {
            let mut rx = Vec::with_capacity(16 * 1024);
            let n = self.sock.recv(&mut rx, 0)?;
            let mut off = 0;
            while off < n.min(rx.len()) {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("netlink reply: {e}")))?;
                let len = reply.header.length as usize;
                if let NetlinkPayload::Error(e) = reply.payload {
                    if reply.header.sequence_number == self.seq {
                        return match e.code {
                            None => Ok(()),
                            Some(c) => Err(io::Error::from_raw_os_error(-c.get())),
                        };
                    }
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }
}

/// The index of link `name`, if it exists.
pub fn link_index(name: &str) -> io::Result<Option<u32>> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: c is NUL-terminated.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    Ok((i != 0).then_some(i))
}

fn require_index(name: &str) -> io::Result<u32> {
    link_index(name)?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no interface {name}")))
}

fn link(index: u32, attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes = attributes;
    m
}

fn up(mut m: LinkMessage) -> LinkMessage {
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    m
}

/// Creates bridge `name` with address `gateway/prefix` and sets it up. Idempotent: a bridge
/// or address that already exists (made earlier, or by a concurrent caller) is kept.
pub fn ensure_bridge(name: &str, gateway: Ipv4Addr, prefix: u8) -> io::Result<()> {
    let mut c = Conn::open()?;
    if link_index(name)?.is_none() {
        let m = link(
            0,
            vec![
                LinkAttribute::IfName(name.to_string()),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
            ],
        );
        match c.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            _ => {}
        }
    }
    let index = require_index(name)?;
    let mut a = AddressMessage::default();
    a.header.family = AddressFamily::Inet;
    a.header.prefix_len = prefix;
    a.header.index = index;
    a.attributes = vec![AddressAttribute::Local(gateway.into()), AddressAttribute::Address(gateway.into())];
    match c.request(RouteNetlinkMessage::NewAddress(a), NLM_F_CREATE | NLM_F_EXCL) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
        _ => {}
    }
    c.request(RouteNetlinkMessage::SetLink(up(link(index, vec![]))), 0)
}

/// Creates veth `host` (MTU `mtu`, enslaved to `bridge`, up, hairpin on) whose peer `peer`
/// is created inside the network namespace of process `pid`, with MAC address `mac` if given
/// (else the kernel's random one).
pub fn add_veth_to_bridge(
    host: &str,
    peer: &str,
    pid: i32,
    bridge: &str,
    mtu: u32,
    mac: Option<[u8; 6]>,
) -> io::Result<()> {
    let mut c = Conn::open()?;
    let master = require_index(bridge)?;
    let pid = u32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let peer = link(0, peer_attributes(peer, mtu, pid, mac));
    let m = up(link(
        0,
        vec![
            LinkAttribute::IfName(host.to_string()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::Controller(master),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ],
    ));
    c.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)?;
    // Hairpin: a container can reach its own published port through the bridge.
    let index = require_index(host)?;
    let m = link(
        index,
        vec![LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bridge),
            LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(true)])),
        ])],
    );
    c.request(RouteNetlinkMessage::NewLink(m), 0)
}

/// The attributes of a veth's peer: its name, MTU, namespace and (`--mac-address`) MAC.
fn peer_attributes(name: &str, mtu: u32, pid: u32, mac: Option<[u8; 6]>) -> Vec<LinkAttribute> {
    let mut a = vec![LinkAttribute::IfName(name.to_string()), LinkAttribute::Mtu(mtu), LinkAttribute::NetNsPid(pid)];
    a.extend(mac.map(|m| LinkAttribute::Address(m.to_vec())));
    a
}

/// Deletes link `name`; one that does not exist is fine.
pub fn del_link(name: &str) -> io::Result<()> {
    let Some(index) = link_index(name)? else { return Ok(()) };
    match Conn::open()?.request(RouteNetlinkMessage::DelLink(link(index, vec![])), 0) {
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    #[test]
    fn a_veth_request_nests_its_peer_and_names_the_bridge_port() {
        let peer = link(0, peer_attributes("eth0", 1500, 42, Some([2, 0x42, 0xac, 0x11, 0, 9])));
        let m = up(link(
            0,
            vec![
                LinkAttribute::IfName("agabc".into()),
                LinkAttribute::Controller(7),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Veth),
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
                ]),
            ],
        ));
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        assert_eq!(buf.len() % 4, 0);
        // ifinfomsg: flags and change mask say "up".
        assert_eq!(u32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]), libc::IFF_UP as u32);
        let text = String::from_utf8_lossy(&buf);
        assert!(text.contains("agabc") && text.contains("veth") && text.contains("eth0"), "{buf:?}");
        // The peer's IFLA_ADDRESS (type 1, length 4 + 6) carries the MAC.
        let mac_attr = [10u8, 0, 1, 0, 2, 0x42, 0xac, 0x11, 0, 9];
        assert!(buf.windows(mac_attr.len()).any(|w| w == mac_attr), "{buf:?}");
        assert!(!peer_attributes("eth0", 1500, 42, None).iter().any(|a| matches!(a, LinkAttribute::Address(_))));
        assert!(link_index("lo").unwrap().is_some());
        assert!(link_index("no-such-link0").unwrap().is_none());
    }
}
