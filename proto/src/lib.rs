//! The public API of node-agent: generated protobuf/gRPC code for package `agent.v1`,
//! shared by `agentd`, `agentctl` and the tests, plus a helper that connects a client to
//! an agent by URL (`unix:///run/agentd/agentd.sock`, `http://host:port`).

#![allow(clippy::large_enum_variant)]

/// Generated types and services of package `agent.v1`.
pub mod v1 {
    tonic::include_proto!("agent.v1");
}

/// The Kubernetes Container Runtime Interface (package `runtime.v1`), which kubelet and
/// crictl speak.
pub mod cri {
    #![allow(missing_docs, clippy::doc_lazy_continuation, clippy::doc_overindented_list_items)]
    tonic::include_proto!("runtime.v1");
}

/// The encoded file descriptor set of every `agent.v1` proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/agent_descriptor.bin"));

pub mod chunks;

/// The default socket an agent listens on and a client connects to.
pub const DEFAULT_HOST: &str = "unix:///run/agentd/agentd.sock";

/// Errors from [`connect`].
#[derive(Debug)]
pub enum ConnectError {
    /// The URL's scheme is not `unix`, `http` or `tcp`.
    BadUrl(String),
    /// The transport failed (no socket, refused, …).
    Transport(String, tonic::transport::Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::BadUrl(u) => {
                write!(f, "unsupported agent address {u:?}: use unix:///path/to/agentd.sock or tcp://host:port")
            }
            ConnectError::Transport(u, e) => {
                let msg = with_causes(e.to_string(), std::error::Error::source(e));
                write!(f, "cannot connect to the agent at {u}: {msg}")
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// `msg` followed by each cause in `source`'s chain that it does not already say
/// (`transport error: connection refused`): transport errors hide what broke in their causes.
pub fn with_causes(mut msg: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(s) = source {
        let t = s.to_string();
        if !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        source = s.source();
    }
    msg
}

/// A client's TLS material (PEM): the CA that signed the agent's certificate, and the
/// client's own certificate and key.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// CA certificate(s) to verify the agent with.
    pub ca: Vec<u8>,
    /// The client's certificate (chain).
    pub cert: Vec<u8>,
    /// The client's private key.
    pub key: Vec<u8>,
}

/// Connects a channel to an agent at `url`: `unix:///path` or `http://host:port`
/// (`tcp://host:port` is read as `http://`).
pub async fn connect(url: &str) -> Result<tonic::transport::Channel, ConnectError> {
    connect_with(url, None).await
}

/// Like [`connect`], with mutual TLS for `tcp://host:port` (or `https://`) when `tls` is given.
pub async fn connect_with(url: &str, tls: Option<&ClientTls>) -> Result<tonic::transport::Channel, ConnectError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    if let Some(tls) = tls {
        let rest = url
            .strip_prefix("tcp://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| ConnectError::BadUrl(url.to_string()))?;
        let ep = Endpoint::from_shared(format!("https://{rest}")).map_err(|_| ConnectError::BadUrl(url.to_string()))?;
        let cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca))
            .identity(Identity::from_pem(&tls.cert, &tls.key));
        let ep = keep_alive(ep.tls_config(cfg).map_err(|e| ConnectError::Transport(url.to_string(), e))?);
        return ep.connect().await.map_err(|e| ConnectError::Transport(url.to_string(), e));
    }
    connect_plain(url).await
}

/// A TCP agent's connection is pinged (HTTP/2 PING) while a call is open: a node that
/// stops answering mid-call (frozen, cable cut) fails the call within 30 s instead of never.
fn keep_alive(ep: tonic::transport::Endpoint) -> tonic::transport::Endpoint {
    ep.connect_timeout(std::time::Duration::from_secs(10))
        .http2_keep_alive_interval(std::time::Duration::from_secs(10))
        .keep_alive_timeout(std::time::Duration::from_secs(20))
}

async fn connect_plain(url: &str) -> Result<tonic::transport::Channel, ConnectError> {
    use tonic::transport::Endpoint;
    if let Some(path) = url.strip_prefix("unix://") {
        let path = path.to_string();
        let ep = Endpoint::from_static("http://localhost");
        let p = path.clone();
        return ep
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let p = p.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(p).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .map_err(|e| ConnectError::Transport(url.to_string(), e));
    }
    let http = if let Some(rest) = url.strip_prefix("tcp://") {
        format!("http://{rest}")
    } else if url.starts_with("http://") {
        url.to_string()
    } else {
        return Err(ConnectError::BadUrl(url.to_string()));
    };
    let ep = keep_alive(Endpoint::from_shared(http).map_err(|_| ConnectError::BadUrl(url.to_string()))?);
    ep.connect().await.map_err(|e| ConnectError::Transport(url.to_string(), e))
}
