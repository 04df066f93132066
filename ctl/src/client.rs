//! Where to connect (flags over the named or current context over the local socket) and the
//! gRPC clients of one connection.

use crate::cli::ConnOpts;
use crate::context;
use crate::error::{Exit, Res};
use agent_client::{Overrides, Target};
use agent_proto::v1::container_service_client::ContainerServiceClient;
use agent_proto::v1::group_service_client::GroupServiceClient;
use agent_proto::v1::image_service_client::ImageServiceClient;
use agent_proto::v1::network_service_client::NetworkServiceClient;
use agent_proto::v1::system_service_client::SystemServiceClient;
use agent_proto::v1::volume_service_client::VolumeServiceClient;
use tonic::transport::Channel;

/// The agent's services over one channel.
/// The container service's client (cheap to clone: calls on one channel).
pub type Client = ContainerServiceClient<Channel>;

pub struct Clients {
    pub n: NetworkServiceClient<Channel>,
    pub c: ContainerServiceClient<Channel>,
    pub g: GroupServiceClient<Channel>,
    pub i: ImageServiceClient<Channel>,
    pub s: SystemServiceClient<Channel>,
    pub v: VolumeServiceClient<Channel>,
}

/// Where to connect and with which TLS files: flags over the named or current context over
/// the local socket (the client library's rule, shared with schedulers).
fn target(conn: &ConnOpts) -> Res<(String, Option<agent_proto::ClientTls>)> {
    let o = Overrides {
        host: conn.host.clone(),
        tlscacert: conn.tlscacert.clone(),
        tlscert: conn.tlscert.clone(),
        tlskey: conn.tlskey.clone(),
    };
    let t = Target::resolve(&context::CtlConfig::load()?, conn.context.as_deref(), &o)?;
    Ok((t.host, t.tls))
}

/// Connects to the agent that `conn` names.
pub async fn connect(conn: &ConnOpts) -> Res<Clients> {
    let (host, tls) = target(conn)?;
    let ch = agent_proto::connect_with(&host, tls.as_ref()).await.map_err(|e| Exit::agent(e.to_string()))?;
    const MAX: usize = agent_client::MAX_MESSAGE;
    Ok(Clients {
        c: ContainerServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        g: GroupServiceClient::new(ch.clone()),
        n: NetworkServiceClient::new(ch.clone()),
        i: ImageServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        v: VolumeServiceClient::new(ch.clone()),
        s: SystemServiceClient::new(ch),
    })
}
