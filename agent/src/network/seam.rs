//! The seams between the runtime and the kernel's networking: the firewall (the agent's one
//! nftables table) and links (bridges, veths of live connects, host routes), each a trait
//! with the real implementation here. Unit tests of the runtime use fakes that record what
//! exists and fail where told.

use super::attach::BridgeAttach;
use super::{NetError, Subnet};

/// The agent's firewall table.
pub trait Firewall: Send + Sync {
    /// Replaces the table with `ruleset` (one transaction).
    fn apply(&self, ruleset: &str) -> Result<(), NetError>;
    /// Deletes table `table`; absent is fine.
    fn delete_table(&self, table: &str);
    /// The rules of table `table` as `nft list` prints them ("" when it does not exist).
    fn ruleset(&self, table: &str) -> Result<String, NetError>;
}

/// Links, addresses and routes of the host.
pub trait Links: Send + Sync {
    /// Creates the bridge with the subnet's gateway (idempotent), up.
    fn ensure_bridge(&self, bridge: &str, subnet: &Subnet) -> Result<(), NetError>;
    /// Deletes a link; absent is fine, a failure is logged.
    fn delete_link(&self, dev: &str);
    fn link_exists(&self, dev: &str) -> bool;
    /// The host's IPv4 routes (not the default route) as (device, subnet).
    fn host_routes(&self) -> Result<Vec<(String, Subnet)>, NetError>;
    /// Wires a network into the namespace of running process `pid` (`network connect`).
    fn attach_live(&self, pid: i32, a: &BridgeAttach) -> Result<(), NetError>;
}

/// `nft -f`.
pub struct Nft;

impl Firewall for Nft {
    fn apply(&self, ruleset: &str) -> Result<(), NetError> {
        super::run_input("nft", &["-f", "-"], Some(ruleset)).map(|_| ())
    }
    fn delete_table(&self, table: &str) {
        if let Err(e) = super::run("nft", &["delete", "table", "ip", table]) {
            // Absent is the usual case (nothing was published since the agent started).
            tracing::debug!(table, error = %e, "nft delete table");
        }
    }
    fn ruleset(&self, table: &str) -> Result<String, NetError> {
        match super::run("nft", &["list", "table", "ip", table]) {
            Ok(out) => Ok(out),
            // No table: nothing was published or masqueraded yet.
            Err(e) if e.to_string().contains("No such file or directory") => Ok(String::new()),
            Err(e) => Err(e),
        }
    }
}

/// rtnetlink and /proc.
pub struct Kernel;

impl Links for Kernel {
    fn ensure_bridge(&self, bridge: &str, subnet: &Subnet) -> Result<(), NetError> {
        super::ensure_bridge(bridge, subnet)
    }
    fn delete_link(&self, dev: &str) {
        super::delete_bridge(dev)
    }
    fn link_exists(&self, dev: &str) -> bool {
        super::link_exists(dev)
    }
    fn host_routes(&self) -> Result<Vec<(String, Subnet)>, NetError> {
        super::host_routes()
    }
    fn attach_live(&self, pid: i32, a: &BridgeAttach) -> Result<(), NetError> {
        super::attach::setup(pid, a)
    }
}
