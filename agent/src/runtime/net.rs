//! The runtime's side of networking: which mode a container asked for, its IP lease,
//! published ports, and keeping the agent's firewall table equal to what runs.

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use crate::isolation::spec::NetMode;
use crate::network::attach::BridgeAttach;
use crate::network::{self, ports, Endpoint, NetError, PortMap};
use crate::store::Kind;
use serde::Deserialize;
use std::net::Ipv4Addr;

/// Settings of the default bridge network (config file `[network]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// The default bridge network's subnet.
    pub bridge_subnet: String,
    /// Nameservers that replace a loopback resolver of the host (127.0.0.x is not
    /// reachable from a container's own network namespace).
    pub dns_upstream: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { bridge_subnet: "10.88.0.0/16".into(), dns_upstream: vec![] }
    }
}

/// The container's resolv.conf: `dns` when given, else the host's with loopback
/// nameservers replaced by `upstream`.
pub fn resolv_conf(host: &str, dns: &[String], upstream: &[String]) -> String {
    let mut out = String::new();
    let mut replaced = false;
    for l in host.lines() {
        let mut w = l.split_whitespace();
        let is_ns = w.next() == Some("nameserver");
        let addr = w.next().unwrap_or("");
        if is_ns && (!dns.is_empty() || addr.starts_with("127.") || addr == "::1") {
            if dns.is_empty() && !replaced {
                for u in upstream {
                    out.push_str(&format!("nameserver {u}\n"));
                }
            }
            replaced = true;
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    for d in dns {
        out.push_str(&format!("nameserver {d}\n"));
    }
    out
}

/// Validates `--dns` and `--add-host` values.
pub fn check_dns_and_hosts(dns: &[String], add_hosts: &[String]) -> Result<()> {
    for d in dns {
        if d.parse::<std::net::IpAddr>().is_err() {
            return Err(RuntimeError::InvalidArgument(format!("invalid --dns {d:?}: an IP address is expected")));
        }
    }
    for h in add_hosts {
        let ok = h.split_once(':').is_some_and(|(n, ip)| {
            !n.is_empty()
                && n.len() <= 253
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
                && ip.parse::<std::net::IpAddr>().is_ok()
        });
        if !ok {
            return Err(RuntimeError::InvalidArgument(format!("invalid --add-host {h:?}: use name:ip")));
        }
    }
    Ok(())
}

/// `-P`: every exposed port (`80/tcp`) on a free host port chosen by the kernel.
pub fn publish_all(exposed: &[String]) -> Result<Vec<PortMap>> {
    let mut out = Vec::new();
    for e in exposed {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else { continue };
        let host_port = match proto {
            "udp" => std::net::UdpSocket::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr()).map(|a| a.port()),
            _ => std::net::TcpListener::bind(("0.0.0.0", 0)).and_then(|s| s.local_addr()).map(|a| a.port()),
        }
        .map_err(|e| RuntimeError::Internal(format!("finding a free host port: {e}")))?;
        out.push(PortMap { host_ip: None, host_port, container_port, proto: proto.to_string() });
    }
    Ok(out)
}

impl From<NetError> for RuntimeError {
    fn from(e: NetError) -> Self {
        match e {
            NetError::Invalid(m) => RuntimeError::InvalidArgument(m),
            NetError::Conflict(m) => RuntimeError::FailedPrecondition(m),
            NetError::Exhausted(m) => RuntimeError::ResourceExhausted(format!("no free address left in {m}")),
            e @ NetError::Command { .. } => RuntimeError::Internal(e.to_string()),
        }
    }
}

impl Runtime {
    pub(super) fn subnet(&self) -> Result<network::Subnet> {
        Ok(network::Subnet::parse(&self.cfg.network.bridge_subnet)?)
    }

    /// The mode a spec asks for; `container:<x>` is resolved to that container's ID.
    pub(super) fn parse_network(&self, mode: &str) -> Result<(NetMode, String)> {
        Ok(match mode {
            "" | "none" => (NetMode::None, "none".into()),
            "host" => (NetMode::Host, "host".into()),
            "bridge" => (NetMode::Bridge, "bridge".into()),
            m => match m.strip_prefix("container:") {
                Some(target) => {
                    let t = self.resolve(target)?;
                    (NetMode::Join(0), format!("container:{}", t.id))
                }
                None => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "network mode {m:?} is not supported: use bridge, none, host or container:<name|id>"
                    )))
                }
            },
        })
    }

    /// Parses `-p` specs and refuses ports published by another container or in use.
    pub(super) fn parse_ports(&self, specs: &[String], mode: NetMode) -> Result<Vec<PortMap>> {
        if specs.is_empty() {
            return Ok(vec![]);
        }
        if mode != NetMode::Bridge {
            return Err(RuntimeError::InvalidArgument("published ports (-p) need the bridge network".into()));
        }
        let mut out: Vec<PortMap> = Vec::new();
        for s in specs {
            out.extend(ports::parse(s)?);
        }
        let taken: Vec<(String, PortMap)> = self
            .list()?
            .into_iter()
            .flat_map(|c| c.ports.clone().into_iter().map(move |p| (c.name.clone(), p)))
            .collect();
        for (i, p) in out.iter().enumerate() {
            let clash = |q: &PortMap| {
                q.host_port == p.host_port
                    && q.proto == p.proto
                    && (q.host_ip.is_none() || p.host_ip.is_none() || q.host_ip == p.host_ip)
            };
            if let Some((name, _)) = taken.iter().find(|(_, q)| clash(q)) {
                return Err(RuntimeError::FailedPrecondition(format!(
                    "host port {}/{} is already published by container {name}",
                    p.host_port, p.proto
                )));
            }
            if out[..i].iter().any(clash) {
                return Err(RuntimeError::InvalidArgument(format!(
                    "host port {}/{} is given twice",
                    p.host_port, p.proto
                )));
            }
            ports::check_free(p)?;
        }
        Ok(out)
    }

    /// Leases the lowest free address of the bridge subnet to `id`.
    pub(super) fn lease(&self, id: &str) -> Result<Ipv4Addr> {
        let subnet = self.subnet()?;
        let used: Vec<String> = self.store.keys(Kind::Lease)?;
        let mut n = 0;
        while let Some(ip) = subnet.host(n) {
            if !used.contains(&ip.to_string()) {
                self.store.put(Kind::Lease, &ip.to_string(), &id.to_string())?;
                return Ok(ip);
            }
            n += 1;
        }
        Err(NetError::Exhausted(subnet.to_string()).into())
    }

    /// Returns a container's address to the pool.
    pub(super) fn release(&self, rec: &ContainerRecord) -> Result<()> {
        if !rec.ip.is_empty() {
            self.store.delete(Kind::Lease, &rec.ip)?;
        }
        Ok(())
    }

    /// What the shim needs to wire a bridge-mode container (creating the bridge if needed).
    pub(super) fn bridge_attach(&self, rec: &ContainerRecord) -> Result<Option<BridgeAttach>> {
        if rec.network != NetMode::Bridge {
            return Ok(None);
        }
        let subnet = self.subnet()?;
        if network::run("ip", &["link", "show", &self.net_names.bridge]).is_err() {
            network::check_subnet_free(&subnet, &self.net_names)?;
        }
        network::ensure_bridge(&self.net_names, &subnet)?;
        Ok(Some(BridgeAttach {
            bridge: self.net_names.bridge.clone(),
            veth: self.net_names.veth(&rec.id),
            address: format!("{}/{}", rec.ip, subnet.prefix),
            gateway: subnet.gateway().to_string(),
        }))
    }

    /// The PID whose network namespace a `container:<id>` container joins.
    pub(super) fn join_target(&self, rec: &ContainerRecord) -> Result<NetMode> {
        let Some(target) = rec.spec.network.strip_prefix("container:") else { return Ok(rec.network) };
        let t = self.load(target).map_err(|_| {
            RuntimeError::FailedPrecondition(format!(
                "the container {target} whose network this one joins no longer exists"
            ))
        })?;
        if t.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot join the network of container {}: it is not running",
                t.name
            )));
        }
        Ok(NetMode::Join(t.pid))
    }

    /// Running containers that joined `id`'s network namespace.
    pub(super) fn joined_by(&self, id: &str) -> Result<Vec<String>> {
        let key = format!("container:{id}");
        Ok(self
            .list()?
            .into_iter()
            .filter(|c| c.spec.network == key && c.state == State::Running)
            .map(|c| c.name)
            .collect())
    }

    /// Makes the agent's firewall table match the running bridge containers.
    pub(super) fn reconcile_firewall(&self) -> Result<()> {
        let running: Vec<ContainerRecord> =
            self.list()?.into_iter().filter(|c| c.network == NetMode::Bridge && c.state == State::Running).collect();
        let any_bridge = self.list()?.iter().any(|c| c.network == NetMode::Bridge);
        if !any_bridge {
            network::delete_table(&self.net_names);
            return Ok(());
        }
        let endpoints: Vec<Endpoint> = running
            .iter()
            .filter_map(|c| {
                Some(Endpoint { ip: c.ip.parse().ok()?, veth: self.net_names.veth(&c.id), ports: c.ports.clone() })
            })
            .collect();
        network::apply_ruleset(&network::ruleset(&self.net_names, &self.subnet()?, &endpoints))?;
        Ok(())
    }

    /// At shutdown with nothing running: remove the bridge and the table.
    pub fn teardown_network_if_idle(&self) {
        let idle = self.list().map(|l| l.iter().all(|c| c.state != State::Running)).unwrap_or(false);
        if idle {
            network::delete_table(&self.net_names);
            network::delete_bridge(&self.net_names);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_replaces_loopback_resolvers() {
        let host = "search example\nnameserver 127.0.0.53\noptions edns0\n";
        assert_eq!(
            resolv_conf(host, &[], &["10.0.0.53".into()]),
            "search example\nnameserver 10.0.0.53\noptions edns0\n"
        );
        assert_eq!(resolv_conf(host, &[], &[]), "search example\noptions edns0\n");
        let host = "nameserver 192.0.2.1\n";
        assert_eq!(resolv_conf(host, &[], &[]), "nameserver 192.0.2.1\n");
        assert_eq!(resolv_conf(host, &["192.0.2.9".into()], &[]), "nameserver 192.0.2.9\n");
        assert!(check_dns_and_hosts(&["x".into()], &[]).is_err());
        assert!(check_dns_and_hosts(&[], &["db:10.0.0.5".into()]).is_ok());
        assert!(check_dns_and_hosts(&[], &["db".into()]).is_err());
    }
}
