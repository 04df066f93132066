//! `run`/`create`'s `--ip`, `--ip6`, `--mac-address`, `--uts` and `--storage-opt` (checked
//! by the agent, which names the bad value; here only their form).

use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct NetFlags {
    /// IPv4 address (e.g., 172.30.100.104) on the container's user-defined network
    #[arg(long, value_name = "ADDRESS")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33); refused: the agent's networks are IPv4-only
    #[arg(long, value_name = "ADDRESS")]
    pub ip6: Option<String>,
    /// Container MAC address on eth0 (e.g., 92:d0:c6:0a:29:33), bridge networks only
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// UTS namespace to use: host (the host's hostname; admin role by default)
    #[arg(long, value_name = "MODE")]
    pub uts: Option<String>,
    /// Storage driver options for the container (size=N: needs an agent root on xfs with pquota)
    #[arg(long = "storage-opt", value_name = "KEY=VALUE")]
    pub storage_opt: Vec<String>,
}

impl NetFlags {
    /// Puts the flags into `spec`.
    pub fn apply(&self, spec: &mut pb::ContainerSpec) -> Res<()> {
        spec.ip = self.ip.clone().unwrap_or_default();
        spec.ip6 = self.ip6.clone().unwrap_or_default();
        spec.mac_address = self.mac_address.clone().unwrap_or_default();
        spec.uts = self.uts.clone().unwrap_or_default();
        for o in &self.storage_opt {
            let Some((k, v)) = o.split_once('=') else {
                return Err(Exit::agent(format!("invalid storage option {o:?}: use KEY=VALUE (size=10G)")));
            };
            spec.storage_opt.insert(k.to_string(), v.to_string());
        }
        Ok(())
    }
}
