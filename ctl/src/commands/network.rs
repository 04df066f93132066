//! `network create|ls|inspect|rm|connect|disconnect|prune` (prune: prune.rs): each network its own bridge and subnet.

use super::echo;
use super::parse_kv;
use crate::cli::NetworkCmd;
use crate::client::Clients;
use crate::error::Res;
use crate::output;
use agent_proto::v1 as pb;

/// `network …`.
pub async fn run(cl: &mut Clients, cmd: NetworkCmd) -> Res<u8> {
    match cmd {
        NetworkCmd::Create { name, subnet, internal, label } => {
            let labels = parse_kv(&label, "label")?;
            let req = pb::CreateNetworkRequest { name, subnet: subnet.unwrap_or_default(), internal, labels };
            println!("{}", cl.n.create(req).await?.into_inner().name);
        }
        NetworkCmd::Ls { quiet, format } => {
            output::networks(&cl.n.list(pb::ListNetworksRequest {}).await?.into_inner().networks, quiet, format)?
        }
        NetworkCmd::Inspect { name } => output::print_json(&output::network_json(
            &cl.n.inspect(pb::InspectNetworkRequest { name }).await?.into_inner(),
        ))?,
        NetworkCmd::Rm { name } => {
            echo(&name, cl.n.remove(pb::RemoveNetworkRequest { name: name.clone() }).await?);
        }
        NetworkCmd::Connect { network, container } => {
            cl.n.connect_container(pb::ConnectRequest { network, container }).await?;
        }
        NetworkCmd::Disconnect { network, container } => {
            cl.n.disconnect_container(pb::DisconnectRequest { network, container }).await?;
        }
        NetworkCmd::Prune(o) => return super::prune::networks(cl, o).await,
    }
    Ok(0)
}
