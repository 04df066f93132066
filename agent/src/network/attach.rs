//! Joins a new container network namespace to the agent's bridge (run by the shim between
//! the container's `clone` and its `execve`, as a CNI plugin would): a veth pair, the host
//! end on the bridge, the other end as `eth0` with its address and default route. The
//! pair disappears with the namespace, so a dead container leaves no link behind.

use super::{run, run_input, NetError};
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
}

fn eth0() -> String {
    "eth0".into()
}

/// Wires the network namespace of process `pid`.
pub fn setup(pid: i32, a: &BridgeAttach) -> Result<(), NetError> {
    let p = pid.to_string();
    let mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", a.bridge)).unwrap_or_else(|_| "1500".into());
    let mtu = mtu.trim();
    let eth = a.ifname.as_str();
    // One `ip -batch` for the host side and one inside: each process spawn costs ~2 ms.
    let host = format!(
        "link add {veth} mtu {mtu} type veth peer name {eth} mtu {mtu} netns {p}\n\
         link set {veth} master {br} up\n\
         link set {veth} type bridge_slave hairpin on\n",
        veth = a.veth,
        br = a.bridge
    );
    // (hairpin: a container may reach its own published port through the host)
    if let Err(e) = run_input("ip", &["-batch", "-"], Some(&host)) {
        let _ = run("ip", &["link", "del", &a.veth]);
        return Err(e);
    }
    // Only the first network gives the default route.
    let route = if eth == "eth0" { format!("route add default via {}\n", a.gateway) } else { String::new() };
    let batch = format!("addr add {} dev {eth}\nlink set {eth} up\nlink set lo up\n{route}", a.address);
    let res = run_input("nsenter", &["-t", &p, "-n", "ip", "-batch", "-"], Some(&batch)).map(|_| ());
    if res.is_err() {
        let _ = run("ip", &["link", "del", &a.veth]);
    }
    res
}
