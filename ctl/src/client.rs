//! Where to connect (flags over the named or current context over the local socket) and the
//! gRPC clients of one connection.

use crate::cli::ConnOpts;
use crate::context;
use crate::error::{Exit, Res};
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
/// the local socket.
pub fn target(conn: &ConnOpts) -> Res<(String, Option<agent_proto::ClientTls>)> {
    let cfg = context::CtlConfig::load()?;
    let ctx_name = conn.context.clone().or_else(|| if conn.host.is_some() { None } else { cfg.current.clone() });
    let ctx = match ctx_name.as_deref() {
        None | Some("default") => context::Ctx::default(),
        Some(n) => cfg
            .contexts
            .get(n)
            .cloned()
            .ok_or_else(|| Exit::agent(format!("context {n:?} not found (see `agentctl context ls`)")))?,
    };
    let host = conn.host.clone().unwrap_or_else(|| {
        if ctx.host.is_empty() {
            agent_proto::DEFAULT_HOST.to_string()
        } else {
            ctx.host.clone()
        }
    });
    let ca = conn.tlscacert.clone().or(ctx.tlscacert);
    let cert = conn.tlscert.clone().or(ctx.tlscert);
    let key = conn.tlskey.clone().or(ctx.tlskey);
    let tls = match (ca, cert, key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| Exit::agent(format!("cannot read {}: {e}", p.display())))
            };
            Some(agent_proto::ClientTls { ca: read(&ca)?, cert: read(&cert)?, key: read(&key)? })
        }
        (ca, cert, key) => {
            let missing: Vec<&str> =
                [("--tlscacert", ca.is_none()), ("--tlscert", cert.is_none()), ("--tlskey", key.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
            return Err(Exit::agent(format!(
                "mutual TLS needs --tlscacert, --tlscert and --tlskey; missing {}",
                missing.join(", ")
            )));
        }
    };
    if tls.is_some() && host.starts_with("unix://") {
        return Err(Exit::agent(format!("TLS files given for {host}: TLS is for tcp:// agents")));
    }
    Ok((host, tls))
}

/// Connects to the agent that `conn` names.
pub async fn connect(conn: &ConnOpts) -> Res<Clients> {
    let (host, tls) = target(conn)?;
    let ch = agent_proto::connect_with(&host, tls.as_ref()).await.map_err(|e| Exit::agent(e.to_string()))?;
    const MAX: usize = 16 * 1024 * 1024;
    Ok(Clients {
        c: ContainerServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        g: GroupServiceClient::new(ch.clone()),
        n: NetworkServiceClient::new(ch.clone()),
        i: ImageServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        v: VolumeServiceClient::new(ch.clone()),
        s: SystemServiceClient::new(ch),
    })
}
