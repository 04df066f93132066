//! The runtime's side of networking: which mode a container asked for, its IP lease,
//! published ports, and keeping the agent's firewall table equal to what runs.

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use crate::isolation::spec::NetMode;
use crate::network::attach::BridgeAttach;
use crate::network::{self, ports, Endpoint, NetError, PortMap};
use crate::store::Kind;
use serde::Deserialize;
use std::net::Ipv4Addr;

/// Settings of the networks (config file `[network]`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetConfig {
    /// The default bridge network's subnet; empty: the first free block of the pools,
    /// chosen once and kept in the store.
    pub bridge_subnet: String,
    /// Where networks without a configured subnet take theirs (docker's
    /// `default-address-pools`).
    pub default_address_pools: Vec<network::AddressPool>,
    /// Nameservers that replace a loopback resolver of the host (127.0.0.x is not
    /// reachable from a container's own network namespace).
    pub dns_upstream: Vec<String>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge_subnet: String::new(),
            default_address_pools: network::default_pools(),
            dns_upstream: vec![],
        }
    }
}

/// The store key of the default bridge's chosen subnet (in the network table; no user
/// network can be named `bridge`).
const DEFAULT_NET_KEY: &str = "bridge";

/// The default bridge's subnet: configured, or kept from an earlier run, or the first free
/// block of the pools (then kept). A user network's subnet and the host's routes are taken.
pub(super) fn resolve_default_subnet(
    cfg: &NetConfig,
    store: &crate::store::Store,
    links: &dyn network::seam::Links,
) -> Result<network::Subnet> {
    if !cfg.bridge_subnet.is_empty() {
        return Ok(network::Subnet::parse(&cfg.bridge_subnet)?);
    }
    if let Some(r) = store.get::<NetworkRecord>(Kind::Network, DEFAULT_NET_KEY)? {
        return Ok(network::Subnet::parse(&r.subnet)?);
    }
    let mut taken: Vec<network::Subnet> = links.host_routes()?.into_iter().map(|(_, s)| s).collect();
    for r in store.all::<NetworkRecord>(Kind::Network)? {
        taken.push(network::Subnet::parse(&r.subnet)?);
    }
    let subnet = network::first_free(&cfg.default_address_pools, &taken)?;
    let rec = NetworkRecord {
        name: DEFAULT_NET_KEY.into(),
        subnet: subnet.to_string(),
        internal: false,
        labels: Default::default(),
        created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
    };
    store.put(Kind::Network, DEFAULT_NET_KEY, &rec)?;
    tracing::info!(%subnet, "default bridge network: subnet chosen from the address pools (kept for later runs)");
    Ok(subnet)
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
            NetError::MissingProgram(m) => RuntimeError::FailedPrecondition(m),
            e @ NetError::Command { .. } => RuntimeError::Internal(e.to_string()),
        }
    }
}

/// A user network as the store keeps it (the default `bridge` network comes from the config).
#[derive(Clone, Debug, serde::Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    pub subnet: String,
    pub internal: bool,
    pub labels: std::collections::BTreeMap<String, String>,
    pub created_at: i64,
}

/// A network with its derived host objects.
#[derive(Clone, Debug)]
pub struct NetworkDef {
    pub name: String,
    pub subnet: network::Subnet,
    pub internal: bool,
    pub bridge: String,
}

impl Runtime {
    pub(super) fn subnet(&self) -> Result<network::Subnet> {
        Ok(self.default_subnet)
    }

    /// The default network and every user network.
    pub fn networks(&self) -> Result<Vec<(NetworkDef, Option<NetworkRecord>)>> {
        let mut out = vec![(
            NetworkDef {
                name: "bridge".into(),
                subnet: self.subnet()?,
                internal: false,
                bridge: self.net_names.bridge.clone(),
            },
            None,
        )];
        for r in self.store.all::<NetworkRecord>(Kind::Network)? {
            if r.name == DEFAULT_NET_KEY {
                continue;
            }
            let subnet = network::Subnet::parse(&r.subnet)?;
            out.push((
                NetworkDef {
                    name: r.name.clone(),
                    subnet,
                    internal: r.internal,
                    bridge: self.net_names.bridge_of(&r.name),
                },
                Some(r),
            ));
        }
        Ok(out)
    }

    /// One network by name.
    pub fn network_def(&self, name: &str) -> Result<NetworkDef> {
        self.networks()?
            .into_iter()
            .map(|(d, _)| d)
            .find(|d| d.name == name)
            .ok_or_else(|| RuntimeError::NotFound(format!("network {name}")))
    }

    /// Creates a user network (its bridge appears when a container first uses it).
    pub async fn create_network(
        &self,
        name: &str,
        subnet: &str,
        internal: bool,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<NetworkRecord> {
        if !super::names::valid_name(name)
            || name.len() > 64
            || ["bridge", "host", "none"].contains(&name)
            || name.starts_with("container")
        {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid network name {name:?}: [a-zA-Z0-9][a-zA-Z0-9_.-], 2-64 characters, not bridge/host/none/container*"
            )));
        }
        let _g = self.create_lock.lock().await;
        let nets = self.networks()?;
        if nets.iter().any(|(d, _)| d.name == name) {
            return Err(RuntimeError::AlreadyExists(format!("network {name:?} already exists")));
        }
        let subnet = if subnet.is_empty() {
            // Like docker: the first block of the pools that overlaps neither our networks
            // nor a host route.
            let mut taken: Vec<network::Subnet> = self.host.links.host_routes()?.into_iter().map(|(_, s)| s).collect();
            taken.extend(nets.iter().map(|(d, _)| d.subnet));
            network::first_free(&self.cfg.network.default_address_pools, &taken)?
        } else {
            network::Subnet::parse(subnet)?
        };
        if let Some((d, _)) = nets.iter().find(|(d, _)| d.subnet.overlaps(&subnet)) {
            return Err(RuntimeError::FailedPrecondition(format!(
                "subnet {subnet} overlaps network {} ({})",
                d.name, d.subnet
            )));
        }
        network::check_subnet_free_in(&self.host.links.host_routes()?, &subnet, "")?;
        let rec = NetworkRecord {
            name: name.to_string(),
            subnet: subnet.to_string(),
            internal,
            labels,
            created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
        };
        self.store.put(Kind::Network, name, &rec)?;
        // Its isolation and masquerade are in place before anyone can use it.
        if let Err(e) = self.reconcile_firewall() {
            if let Err(d) = self.store.delete(Kind::Network, name) {
                tracing::warn!(network = name, error = %d, "undoing the network's creation");
            }
            return Err(e);
        }
        Ok(rec)
    }

    /// Containers attached to a network.
    pub fn network_members(&self, name: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self.list()?.into_iter().filter(|c| c.bridge_networks().iter().any(|(n, _)| n == name)).collect())
    }

    /// Removes a user network without containers, with its bridge.
    pub async fn remove_network(&self, name: &str) -> Result<()> {
        let _g = self.create_lock.lock().await;
        if name == "bridge" {
            return Err(RuntimeError::FailedPrecondition("the default bridge network cannot be removed".into()));
        }
        let def = self.network_def(name)?;
        let members = self.network_members(name)?;
        if !members.is_empty() {
            let names: Vec<String> = members.into_iter().map(|c| c.name).collect();
            return Err(RuntimeError::FailedPrecondition(format!(
                "network {name} has {} attached container(s): {}; remove them first",
                names.len(),
                names.join(", ")
            )));
        }
        self.store.delete(Kind::Network, name)?;
        {
            let mut ready = self.net_ready.lock().unwrap_or_else(|p| p.into_inner());
            self.host.links.delete_link(&def.bridge);
            ready.remove(&def.bridge);
        }
        self.reconcile_firewall()
    }

    /// The mode a spec asks for; `container:<x>` is resolved to that container's ID.
    pub(super) fn parse_network(&self, mode: &str) -> Result<(NetMode, String)> {
        Ok(match mode {
            "none" => (NetMode::None, "none".into()),
            // Like docker: the default network is the bridge.
            "" => (NetMode::Bridge, "bridge".into()),
            "host" => (NetMode::Host, "host".into()),
            m => match m.strip_prefix("container:") {
                Some(target) => {
                    let t = self.resolve(target)?;
                    (NetMode::Join(0), format!("container:{}", t.id))
                }
                None => match self.network_def(m) {
                    Ok(d) => (NetMode::Bridge, d.name),
                    Err(_) => {
                        return Err(RuntimeError::NotFound(format!(
                            "network {m} (modes: bridge, none, host, container:<name|id>, or a network from `agentctl network create`)"
                        )))
                    }
                },
            },
        })
    }

    /// Parses `-p` specs and refuses ports published by another container or in use.
    pub(super) fn parse_ports(&self, specs: &[String], mode: NetMode) -> Result<Vec<PortMap>> {
        if specs.is_empty() {
            return Ok(vec![]);
        }
        if mode != NetMode::Bridge {
            return Err(RuntimeError::InvalidArgument("published ports (-p) need a bridge network".into()));
        }
        let mut out: Vec<PortMap> = Vec::new();
        for s in specs {
            out.extend(ports::parse(s)?);
        }
        let taken: Vec<(String, PortMap)> =
            self.scan(|it| it.flat_map(|c| c.ports.iter().map(move |p| (c.name.clone(), p.clone()))).collect())?;
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

    /// Leases the lowest free address of network `net` to `id` (key `<net>/<ip>`), picked
    /// and taken in one store transaction: concurrent leases never share an address.
    pub(super) fn lease(&self, net: &str, id: &str) -> Result<Ipv4Addr> {
        let subnet = self.network_def(net)?.subnet;
        let candidates = (0..).map_while(|n| subnet.host(n)).map(|ip| format!("{net}/{ip}"));
        let Some(key) = self.store.insert_first_free(Kind::Lease, candidates, &id.to_string())? else {
            return Err(NetError::Exhausted(subnet.to_string()).into());
        };
        key.rsplit('/')
            .next()
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| RuntimeError::Internal(format!("lease key {key:?} holds no address")))
    }

    /// Returns a container's addresses to the pools.
    pub(super) fn release(&self, rec: &ContainerRecord) -> Result<()> {
        for (net, ip) in rec.bridge_networks() {
            if !ip.is_empty() {
                self.store.delete(Kind::Lease, &format!("{net}/{ip}"))?;
            }
        }
        Ok(())
    }

    /// What the shim needs to wire a bridge-mode container (creating the bridge if needed).
    pub(super) fn bridge_attach(&self, rec: &ContainerRecord) -> Result<Option<BridgeAttach>> {
        if rec.network != NetMode::Bridge {
            return Ok(None);
        }
        let def = self.network_def(&rec.spec.network)?;
        self.ensure_network_bridge(&def)?;
        Ok(Some(BridgeAttach {
            bridge: def.bridge,
            veth: self.net_names.veth(&rec.id),
            address: format!("{}/{}", rec.ip, def.subnet.prefix()),
            gateway: def.subnet.gateway().to_string(),
            ifname: "eth0".into(),
            mac: rec.spec.net_opts.mac,
        }))
    }

    /// The one place that creates a network's bridge: serialized (concurrent starts and
    /// connects of a new network create it once), and checked once per bridge and agent
    /// run (each `ip` spawn costs a few ms per start).
    fn ensure_network_bridge(&self, def: &NetworkDef) -> Result<()> {
        let mut ready = self.net_ready.lock().unwrap_or_else(|p| p.into_inner());
        if ready.contains(&def.bridge) {
            return Ok(());
        }
        if !self.host.links.link_exists(&def.bridge) {
            network::check_subnet_free_in(&self.host.links.host_routes()?, &def.subnet, &def.bridge)?;
        }
        self.host.links.ensure_bridge(&def.bridge, &def.subnet)?;
        ready.insert(def.bridge.clone());
        Ok(())
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
        self.scan(|it| {
            it.filter(|c| c.spec.network == key && c.state == State::Running).map(|c| c.name.clone()).collect()
        })
    }

    /// Forgets which bridges and table were set up, so the next start checks them again.
    pub(super) fn forget_network_setup(&self) {
        self.net_ready.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.firewall.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Marks a container as starting until the guard is dropped (see `Runtime::starting`).
    pub(super) fn mark_starting(&self, id: &str) -> StartingGuard<'_> {
        self.starting.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string());
        StartingGuard(self, id.to_string())
    }

    /// Makes the agent's firewall table match the networks and running containers.
    pub(super) fn reconcile_firewall(&self) -> Result<()> {
        self.reconcile_firewall_with(None)
    }

    /// Like [`Self::reconcile_firewall`], counting `starting` as running. Cheap when nothing
    /// changed (the table is computed from the store and compared with the one applied last),
    /// so every change that may alter the rules calls it: network create/remove,
    /// connect/disconnect, start, exit and removal of a container.
    pub(super) fn reconcile_firewall_with(&self, starting: Option<&ContainerRecord>) -> Result<()> {
        let mut applied = self.firewall.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.list()?;
        {
            let starting = self.starting.lock().unwrap_or_else(|p| p.into_inner());
            for c in all.iter_mut().filter(|c| starting.contains(&c.id)) {
                c.state = State::Running;
            }
        }
        if let Some(s) = starting {
            all.retain(|c| c.id != s.id);
            let mut s = s.clone();
            s.state = State::Running;
            all.push(s);
        }
        if !all.iter().any(|c| c.network == NetMode::Bridge) {
            match applied.as_deref() {
                // Nothing of ours is there.
                Some("") => return Ok(()),
                // What an earlier run may have left (or a failed apply): unknown, so it goes.
                None => {
                    self.host.firewall.delete_table(&self.net_names.table);
                    *applied = Some(String::new());
                    return Ok(());
                }
                // Applied in this run: it stays while the agent runs (like docker's rules),
                // minus the ports of containers that are gone — below, usually no change and
                // so no `nft` at all. The agent's shutdown removes it (teardown).
                Some(_) => {}
            }
        }
        let nets: Vec<network::BridgeNet> = self
            .networks()?
            .into_iter()
            .map(|(d, _)| network::BridgeNet { dev: d.bridge, subnet: d.subnet, internal: d.internal })
            .collect();
        let mut endpoints = Vec::new();
        for c in all.iter().filter(|c| c.network == NetMode::Bridge && c.state == State::Running) {
            let ip = c.ip.parse().map_err(|_| {
                RuntimeError::Internal(format!("container {} has an invalid address {:?} in its record", c.name, c.ip))
            })?;
            endpoints.push(Endpoint { ip, veth: self.net_names.veth(&c.id), ports: c.ports.clone() });
        }
        let table = network::ruleset(&self.net_names.table, &nets, &endpoints);
        if applied.as_deref() == Some(table.as_str()) {
            return Ok(());
        }
        *applied = None;
        self.host.firewall.apply(&table)?;
        *applied = Some(table);
        Ok(())
    }

    /// Reconciles after a change that may alter the rules but has already happened (it
    /// cannot be undone any more): a failure is logged, and the next change tries again.
    pub(super) fn reconcile_firewall_logged(&self, after: &str) {
        if let Err(e) = self.reconcile_firewall() {
            tracing::warn!(error = %e, "reconciling the firewall table after {after}");
        }
    }

    /// The attachment of an extra network `net` (address `ip`) as `eth<index>`.
    pub(super) fn extra_attach(
        &self,
        rec: &ContainerRecord,
        net: &str,
        ip: &str,
        index: usize,
    ) -> Result<BridgeAttach> {
        let def = self.network_def(net)?;
        self.ensure_network_bridge(&def)?;
        Ok(BridgeAttach {
            bridge: def.bridge,
            veth: self.net_names.veth(&format!("{}/{net}", rec.id)),
            address: format!("{ip}/{}", def.subnet.prefix()),
            gateway: def.subnet.gateway().to_string(),
            ifname: format!("eth{index}"),
            mac: None,
        })
    }

    /// Connects a container to another network (live when it runs: a new `ethN`).
    pub async fn connect(&self, name: &str, net: &str) -> Result<()> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut rec = self.load(&rec.id)?;
        if rec.network != NetMode::Bridge {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} uses network mode {}: only bridge-network containers can join more networks",
                rec.name, rec.spec.network
            )));
        }
        self.network_def(net)?;
        if rec.bridge_networks().iter().any(|(n, _)| n == net) {
            return Err(RuntimeError::AlreadyExists(format!("container {} is already on network {net}", rec.name)));
        }
        let ip = self.lease(net, &rec.id)?.to_string();
        if rec.state == State::Running {
            let attached = self
                .extra_attach(&rec, net, &ip, rec.extra_networks.len() + 1)
                .and_then(|a| self.host.links.attach_live(rec.pid, &a).map_err(RuntimeError::from));
            if let Err(e) = attached {
                let _ = self.store.delete(Kind::Lease, &format!("{net}/{ip}"));
                return Err(e);
            }
        }
        rec.extra_networks.push((net.to_string(), ip));
        self.save_and_log(&rec, "connect", &[("network", net.to_string())], false)?;
        self.refresh_hosts(net);
        self.reconcile_firewall_logged("a connect");
        Ok(())
    }

    /// Disconnects a container from a network it was connected to later.
    pub async fn disconnect(&self, name: &str, net: &str) -> Result<()> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut rec = self.load(&rec.id)?;
        let Some(pos) = rec.extra_networks.iter().position(|(n, _)| n == net) else {
            if rec.spec.network == net {
                return Err(RuntimeError::FailedPrecondition(format!(
                    "{net} is the network container {} was created on; only networks connected later can be disconnected",
                    rec.name
                )));
            }
            return Err(RuntimeError::NotFound(format!("container {} is not on network {net}", rec.name)));
        };
        let (_, ip) = rec.extra_networks.remove(pos);
        if rec.state == State::Running {
            // Deleting the host end removes the pair.
            self.host.links.delete_link(&self.net_names.veth(&format!("{}/{net}", rec.id)));
        }
        self.store.delete(Kind::Lease, &format!("{net}/{ip}"))?;
        self.save_and_log(&rec, "disconnect", &[("network", net.to_string())], false)?;
        self.refresh_hosts(net);
        // The container itself keeps its other networks' peers.
        for (n, _) in rec.bridge_networks() {
            self.refresh_hosts(&n);
        }
        self.reconcile_firewall_logged("a disconnect");
        Ok(())
    }

    /// With a subnet from the pools, the default bridge is set up when the agent starts (like
    /// docker0): its route then marks the subnet as taken for other agents on this host.
    pub(super) fn prepare_default_bridge(&self) -> Result<()> {
        let def = self.network_def("bridge")?;
        if self.host.links.host_routes()?.iter().any(|(dev, _)| *dev == def.bridge) {
            return Ok(());
        }
        self.ensure_network_bridge(&def)
    }

    /// At shutdown with nothing running: remove the bridges and the table.
    pub fn teardown_network_if_idle(&self) {
        // After any unpublish still in flight, never interleaved with one.
        let mut applied = self.firewall.lock().unwrap_or_else(|p| p.into_inner());
        let idle = self.list().map(|l| l.iter().all(|c| c.state != State::Running)).unwrap_or(false);
        if idle {
            self.host.firewall.delete_table(&self.net_names.table);
            *applied = Some(String::new());
            if let Ok(nets) = self.networks() {
                for (d, _) in nets {
                    self.host.links.delete_link(&d.bridge);
                }
            }
        }
    }
}

/// Ends a container's "starting" mark when dropped.
pub(super) struct StartingGuard<'a>(&'a Runtime, String);

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        self.0.starting.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.1);
    }
}
