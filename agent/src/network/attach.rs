//! Joins a container's network namespace to a bridge, before its command runs (as a CNI
//! plugin would): a veth pair, the host end on the bridge (the shim, between `clone` and
//! "go"), the other end as `eth0` with its address and default route (the init itself,
//! with ioctls). [`setup`] does both sides from outside, for networks connected to a
//! running container. The pair disappears with the namespace, so a dead container leaves
//! no link behind.

use super::NetError;
use serde::{Deserialize, Serialize};

/// What the shim needs to wire a container to the bridge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BridgeAttach {
    pub bridge: String,
    pub veth: String,
    /// `10.88.0.2/16`.
    pub address: String,
    pub gateway: String,
    /// The interface inside (`eth0`; `eth1`… for networks connected later).
    #[serde(default = "eth0")]
    pub ifname: String,
    /// `--mac-address` (eth0 only); `None`: the kernel's random one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<super::mac::MacAddr>,
}

fn eth0() -> String {
    "eth0".into()
}

/// Wires the network namespace of process `pid` from outside (a network connected to a
/// running container): the host side as at start, then the inside from a thread that
/// enters the namespace (a thread's network namespace is its own; it ends with the thread).
pub fn setup(pid: i32, a: &BridgeAttach) -> Result<(), NetError> {
    setup_host_side(pid, a)?;
    let inside = a.clone();
    let res = std::thread::spawn(move || -> Result<(), String> {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(|e| format!("open netns of {pid}: {e}"))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {pid}: {e}"))?;
        configure_inside(&inside)
    })
    .join()
    .unwrap_or_else(|_| Err("the namespace thread panicked".into()));
    res.map_err(|msg| {
        if let Err(e) = super::netlink::del_link(&a.veth) {
            tracing::warn!(link = %a.veth, error = %e, "could not remove a half-made veth");
        }
        NetError::Command { cmd: format!("configure {} in the network namespace of {pid}", a.ifname), msg }
    })
}

/// Sets the host side of a veth pair (create, into `pid`'s namespace as `ifname`, on the
/// bridge, up, hairpin — so a container can reach its own published port) with rtnetlink
/// requests, no process; the namespace side is configured by the container's init itself
/// ([`configure_inside`]).
pub fn setup_host_side(pid: i32, a: &BridgeAttach) -> Result<(), NetError> {
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", a.bridge))
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(1500);
    if let Err(e) = super::netlink::add_veth_to_bridge(&a.veth, &a.ifname, pid, &a.bridge, mtu, a.mac.map(|m| m.0)) {
        let _ = super::netlink::del_link(&a.veth);
        return Err(NetError::Command {
            cmd: format!("netlink: veth {} on bridge {}", a.veth, a.bridge),
            msg: e.to_string(),
        });
    }
    Ok(())
}

// Interface and route ioctls (stable Linux values; not all are exported by libc for glibc).
const SIOCSIFADDR: libc::c_ulong = 0x8916;
const SIOCSIFNETMASK: libc::c_ulong = 0x891c;
const SIOCADDRT: libc::c_ulong = 0x890b;
const RTF_UP: libc::c_ushort = 0x1;
const RTF_GATEWAY: libc::c_ushort = 0x2;

/// `struct rtentry` of <net/route.h>.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn sockaddr_v4(ip: std::net::Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(ip).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; this is how the ioctls take it.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Run by the container's init in its new network namespace: address, up, default route
/// (first interface only). Returns a message on failure.
pub fn configure_inside(a: &BridgeAttach) -> Result<(), String> {
    let (addr, prefix) = a.address.split_once('/').ok_or_else(|| format!("bad address {}", a.address))?;
    let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| format!("bad address {}", a.address))?;
    let prefix: u32 = prefix.parse().map_err(|_| format!("bad prefix in {}", a.address))?;
    let mask = std::net::Ipv4Addr::from(if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) });
    let gw: std::net::Ipv4Addr = a.gateway.parse().map_err(|_| format!("bad gateway {}", a.gateway))?;
    // SAFETY: plain socket/ioctl calls on zeroed, correctly sized structures that live
    // across each call.
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let fail = |what: &str| {
            let e = std::io::Error::last_os_error();
            libc::close(s);
            Err(format!("{what} {}: {e}", a.ifname))
        };
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in a.ifname.bytes().take(15).enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        req.ifr_ifru.ifru_addr = sockaddr_v4(ip);
        if libc::ioctl(s, SIOCSIFADDR as _, &req) < 0 {
            return fail("set address of");
        }
        req.ifr_ifru.ifru_netmask = sockaddr_v4(mask);
        if libc::ioctl(s, SIOCSIFNETMASK as _, &req) < 0 {
            return fail("set netmask of");
        }
        if libc::ioctl(s, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            return fail("read flags of");
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(s, libc::SIOCSIFFLAGS as _, &req) < 0 {
            return fail("bring up");
        }
        if a.ifname == "eth0" {
            let mut rt: RtEntry = std::mem::zeroed();
            rt.rt_dst = sockaddr_v4(std::net::Ipv4Addr::UNSPECIFIED);
            rt.rt_genmask = sockaddr_v4(std::net::Ipv4Addr::UNSPECIFIED);
            rt.rt_gateway = sockaddr_v4(gw);
            rt.rt_flags = RTF_UP | RTF_GATEWAY;
            if libc::ioctl(s, SIOCADDRT as _, &rt) < 0 {
                return fail("add the default route via");
            }
        }
        libc::close(s);
    }
    Ok(())
}
