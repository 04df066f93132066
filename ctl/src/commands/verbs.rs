//! pause, unpause: each a call and docker's output.

use super::{each, echo};
use crate::cli_verbs::VerbCmd;
use crate::client::Clients;
use crate::error::Res;
use agent_proto::v1 as pb;

/// Runs one of the verbs.
pub async fn run(cl: &mut Clients, cmd: VerbCmd) -> Res<u8> {
    match cmd {
        VerbCmd::Pause { containers } => {
            each(containers, async |id| cl.c.pause(pb::PauseContainerRequest { id }).await.map(drop), echo).await
        }
        VerbCmd::Unpause { containers } => {
            each(containers, async |id| cl.c.unpause(pb::UnpauseContainerRequest { id }).await.map(drop), echo).await
        }
    }
}
