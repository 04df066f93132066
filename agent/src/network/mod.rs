//! Networking for bridge-mode containers: the agent's bridge, IP leases, the agent's own
//! nftables table (masquerade for egress, DNAT for published ports), and the veth that
//! joins a container's network namespace to the bridge. The only module that touches
//! links, addresses, routes and firewall rules.
//!
//! A container's veth pair is made with rtnetlink requests from the shim (`netlink.rs`; the
//! container side with ioctls from its init): on the start-up path a process costs more
//! than the work. The bridge (once per agent run) and a live `network connect` still use
//! iproute2, and the firewall `nft -f` (one transaction that replaces the agent's table
//! and nothing else), like netavark's nft backend does through `nft -j`; those run beside
//! the start or off it.

pub mod attach;
pub mod netlink;
pub mod ports;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use std::process::Command;

/// Errors of network set-up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{cmd}: {msg}")]
    Command { cmd: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("no free address left in {0}")]
    Exhausted(String),
    #[error("{0}")]
    Conflict(String),
}

/// Runs a command and returns stdout, or an error carrying its stderr.
pub fn run(cmd: &str, args: &[&str]) -> Result<String, NetError> {
    run_input(cmd, args, None)
}

/// Like [`run`] with `input` on stdin.
pub fn run_input(cmd: &str, args: &[&str], input: Option<&str>) -> Result<String, NetError> {
    use std::io::Write;
    let shown = format!("{cmd} {}", args.join(" "));
    let mut c = Command::new(cmd);
    c.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    c.stdin(if input.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    let mut child = c.spawn().map_err(|e| NetError::Command { cmd: shown.clone(), msg: e.to_string() })?;
    if let (Some(i), Some(mut stdin)) = (input, child.stdin.take()) {
        let _ = stdin.write_all(i.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| NetError::Command { cmd: shown.clone(), msg: e.to_string() })?;
    if !out.status.success() {
        return Err(NetError::Command { cmd: shown, msg: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An IPv4 subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `10.88.0.0/16`.
    pub fn parse(s: &str) -> Result<Subnet, NetError> {
        let bad = || NetError::Invalid(format!("invalid subnet {s:?}: use a.b.c.d/len with len 8-30"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(bad());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { addr: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// The first host address: the gateway on the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The n-th usable container address (n = 0 is gateway + 1).
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u32 << (32 - self.prefix);
        let off = n + 2;
        (off < size - 1).then(|| Ipv4Addr::from(u32::from(self.addr) + off))
    }

    /// Whether two subnets overlap.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let m = self.mask().min(other.mask());
        (u32::from(self.addr) & m) == (u32::from(other.addr) & m)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn short_hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))[..8].to_string()
}

/// Host object names of one agent instance.
#[derive(Clone, Debug)]
pub struct Names {
    /// The default network's bridge.
    pub bridge: String,
    pub table: String,
}

impl Names {
    /// `agt0` and table `agentd` for the default instance; hashed, unique names otherwise
    /// (link names are limited to 15 characters).
    pub fn for_instance(instance: &str) -> Names {
        let bridge = if instance == "agentd" { "agt0".to_string() } else { format!("ag{}0", short_hash(instance)) };
        Names { bridge, table: instance.to_string() }
    }

    /// The bridge device of network `net` ("bridge" is the default network).
    pub fn bridge_of(&self, net: &str) -> String {
        if net == "bridge" {
            self.bridge.clone()
        } else {
            format!("ag{}n", short_hash(&format!("{}/{net}", self.table)))
        }
    }

    /// The host end of a container's veth.
    pub fn veth(&self, id: &str) -> String {
        format!("ag{}", short_hash(&format!("{}/{id}", self.table)))
    }
}

/// One bridge network as the firewall sees it.
#[derive(Clone, Debug)]
pub struct BridgeNet {
    pub dev: String,
    pub subnet: Subnet,
    /// No egress: traffic may only stay on the bridge.
    pub internal: bool,
}

/// A published port: `[host_ip:]host_port:container_port[/proto]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

/// A running container's part of the firewall.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub veth: String,
    pub ports: Vec<PortMap>,
}

/// The agent's nftables table for these networks and endpoints: the whole table, so
/// applying it replaces exactly what the agent owns and nothing else.
pub fn ruleset(table: &str, nets: &[BridgeNet], endpoints: &[Endpoint]) -> String {
    let t = table;
    let mut dnat = String::new();
    for e in endpoints {
        for p in &e.ports {
            let dst = match p.host_ip {
                Some(ip) => format!("ip daddr {ip} "),
                None => String::new(),
            };
            dnat.push_str(&format!(
                "\t\t{dst}{} dport {} dnat to {}:{}\n",
                p.proto, p.host_port, e.ip, p.container_port
            ));
        }
    }
    let mut post = String::new();
    let mut fwd = String::new();
    for n in nets {
        let (br, subnet) = (&n.dev, &n.subnet);
        if !n.internal {
            post.push_str(&format!("\t\tip saddr {subnet} ip daddr != {subnet} masquerade\n"));
        }
        post.push_str(&format!("\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade\n"));
        post.push_str(&format!("\t\toifname \"{br}\" ct status dnat ip saddr {subnet} masquerade\n"));
        // Networks are isolated from each other; an internal one from everything else.
        for m in nets.iter().filter(|m| m.dev != n.dev) {
            fwd.push_str(&format!("\t\tiifname \"{br}\" oifname \"{}\" drop\n", m.dev));
        }
        if n.internal {
            fwd.push_str(&format!("\t\tiifname \"{br}\" oifname != \"{br}\" drop\n"));
            fwd.push_str(&format!("\t\toifname \"{br}\" iifname != \"{br}\" drop\n"));
        }
    }
    for n in nets {
        let br = &n.dev;
        fwd.push_str(&format!("\t\tiifname \"{br}\" accept\n"));
        fwd.push_str(&format!("\t\toifname \"{br}\" ct state established,related accept\n"));
        fwd.push_str(&format!("\t\toifname \"{br}\" ct status dnat accept\n"));
    }
    format!(
        "table ip {t}\n\
         delete table ip {t}\n\
         table ip {t} {{\n\
         \tchain ports {{\n{dnat}\t}}\n\
         \tchain prerouting {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump ports\n\t}}\n\
         \tchain output {{\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump ports\n\t}}\n\
         \tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n{post}\t}}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n{fwd}\t}}\n\
         }}\n"
    )
}

/// Applies the table atomically.
pub fn apply_ruleset(rules: &str) -> Result<(), NetError> {
    run_input("nft", &["-f", "-"], Some(rules)).map(|_| ())
}

/// Deletes the agent's table (at shutdown with nothing running); absent is fine.
pub fn delete_table(names: &Names) {
    let _ = run("nft", &["delete", "table", "ip", &names.table]);
}

/// Whether a failed `ip` command failed only because its object exists already.
fn exists_already(r: &Result<String, NetError>) -> bool {
    matches!(r, Err(NetError::Command { msg, .. }) if msg.contains("File exists"))
}

/// Creates the bridge `br` with the gateway address (idempotent: a bridge or address that
/// exists already is fine), enables forwarding.
pub fn ensure_bridge(br: &str, subnet: &Subnet) -> Result<(), NetError> {
    if run("ip", &["link", "show", br]).is_err() {
        let r = run("ip", &["link", "add", br, "type", "bridge"]);
        if !exists_already(&r) {
            r?;
        }
        let gw = format!("{}/{}", subnet.gateway(), subnet.prefix);
        let r = run("ip", &["addr", "add", &gw, "dev", br]);
        if !exists_already(&r) {
            r?;
        }
    }
    run("ip", &["link", "set", br, "up"])?;
    // Published ports reached at 127.0.0.1 are DNATed onto this bridge only.
    let _ = std::fs::write(format!("/proc/sys/net/ipv4/conf/{br}/route_localnet"), "1");
    if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "0").unwrap_or(false) {
        tracing::warn!("enabling IPv4 forwarding (net.ipv4.ip_forward=1) for bridge networking");
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
            .map_err(|e| NetError::Command { cmd: "enable ip_forward".into(), msg: e.to_string() })?;
    }
    Ok(())
}

/// Deletes a bridge; absent is fine.
pub fn delete_bridge(dev: &str) {
    let _ = run("ip", &["link", "del", dev]);
}

/// Refuses a subnet that overlaps a route of the host (other than via bridge `own`).
pub fn check_subnet_free(subnet: &Subnet, own: &str) -> Result<(), NetError> {
    let routes = run("ip", &["-4", "route", "show"])?;
    for l in routes.lines() {
        let mut w = l.split_whitespace();
        let Some(dst) = w.next() else { continue };
        let via_own = !own.is_empty() && (l.contains(&format!("dev {own} ")) || l.ends_with(&format!("dev {own}")));
        if dst == "default" || via_own {
            continue;
        }
        let r = if dst.contains('/') {
            Subnet::parse(dst).ok()
        } else {
            dst.parse::<Ipv4Addr>().ok().map(|a| Subnet { addr: a, prefix: 30 })
        };
        if let Some(r) = r {
            if r.overlaps(subnet) {
                return Err(NetError::Conflict(format!(
                    "subnet {subnet} overlaps the host route {l:?}: choose another subnet"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s = Subnet::parse("10.88.3.4/16").unwrap();
        assert_eq!(s.to_string(), "10.88.0.0/16");
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(s.host(0), Some(Ipv4Addr::new(10, 88, 0, 2)));
        let small = Subnet::parse("10.1.0.0/30").unwrap();
        assert_eq!(small.host(0), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(small.host(1), None);
        assert!(s.overlaps(&Subnet::parse("10.88.200.0/24").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("10.89.0.0/16").unwrap()));
        assert!(Subnet::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn names_fit_in_ifnamsiz() {
        let n = Names::for_instance("t12345averylongtestname");
        assert!(n.bridge.len() <= 15 && n.veth(&"a".repeat(64)).len() <= 15);
        assert_eq!(Names::for_instance("agentd").bridge, "agt0");
        assert_ne!(n.veth("a"), n.veth("b"));
    }

    /// The documented table for a fixed scenario (like moby's iptablesdoc): reviewers see
    /// the exact rules, and any change to them shows up here.
    #[test]
    fn ruleset_document() {
        let nets = [
            BridgeNet { dev: "agt0".into(), subnet: Subnet::parse("10.88.0.0/16").unwrap(), internal: false },
            BridgeNet { dev: "agnet1n".into(), subnet: Subnet::parse("10.89.0.0/24").unwrap(), internal: true },
        ];
        let eps = [Endpoint {
            ip: Ipv4Addr::new(10, 88, 0, 2),
            veth: "ag0".into(),
            ports: vec![
                PortMap { host_ip: None, host_port: 6379, container_port: 6379, proto: "tcp".into() },
                PortMap {
                    host_ip: Some(Ipv4Addr::new(127, 0, 0, 1)),
                    host_port: 8053,
                    container_port: 53,
                    proto: "udp".into(),
                },
            ],
        }];
        let want = include_str!("ruleset_doc.nft");
        assert_eq!(ruleset("agentd", &nets, &eps), want);
    }
}
