//! `group create|ls|inspect|rm`: pod-like parents whose limits bound their members.

use super::echo;
use super::{parse_kv, resources};
use crate::cli::GroupCmd;
use crate::client::Clients;
use crate::error::Res;
use crate::output;
use agent_proto::v1 as pb;

/// `group …`.
pub async fn run(cl: &mut Clients, cmd: GroupCmd) -> Res<u8> {
    match cmd {
        GroupCmd::Create { name, res, label } => {
            let req =
                pb::CreateGroupRequest { name, resources: Some(resources(&res)?), labels: parse_kv(&label, "label")? };
            println!("{}", cl.g.create(req).await?.into_inner().name);
        }
        GroupCmd::Ls => output::groups(&cl.g.list(pb::ListGroupsRequest {}).await?.into_inner().groups),
        GroupCmd::Inspect { name } => output::print_json(&output::group_json(
            &cl.g.inspect(pb::InspectGroupRequest { name }).await?.into_inner(),
        ))?,
        GroupCmd::Rm { name } => {
            echo(&name, cl.g.remove(pb::RemoveGroupRequest { name: name.clone() }).await?);
        }
    }
    Ok(0)
}
