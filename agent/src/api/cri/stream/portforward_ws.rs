//! Port-forward over WebSocket, as kubelet serves it (`v4.channel.k8s.io`, or
//! `v4.base64.channel.k8s.io`, on the `portforward` URL): the ports are fixed when the
//! connection opens (those of the PortForward request, else the URL's `?port=` values),
//! each with two channels — 2i data, 2i+1 error — and one connection to 127.0.0.1:PORT in
//! the pod. The first message we send on each channel is the port, 2 bytes little-endian;
//! then the data channel carries the connection both ways, and the error channel a failure.
//! The WebSocket closes once every port's connection has ended.

use super::portforward::splice;
use super::remotecommand::Sink;
use super::ws::{Codec, WsConn};
use crate::runtime::Runtime;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// In the server's order; the client's preference decides (none offered: binary).
pub const PROTOCOLS: &[&str] = &["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/// How many ports one connection carries under `proto` (base64 names channels by a digit).
pub fn max_ports(proto: &str) -> usize {
    match Codec::of(proto) {
        Codec::Base64 => 5,
        Codec::Binary => 127,
    }
}

/// The `port` values of a URL's query (`?port=80&port=8080`); an error names a bad one.
pub fn query_ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let mut ports = Vec::new();
    for kv in query.unwrap_or_default().split('&') {
        let Some(v) = kv.strip_prefix("port=") else { continue };
        match v.parse::<u16>() {
            Ok(p) if p > 0 => ports.push(p),
            _ => return Err(format!("port {v:?} is not a TCP port (1-65535)")),
        }
    }
    Ok(ports)
}

pub async fn serve<IO>(rt: &Arc<Runtime>, io: IO, proto: &str, sandbox: &str, ports: Vec<u16>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let chans: Vec<u8> = (0..ports.len()).map(|i| (2 * i) as u8).collect();
    let mut conn = WsConn::start(io, proto, &chans).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (&c, &port) in chans.iter().zip(&ports) {
        let (data, error) = (conn.writer(c), conn.writer(c + 1));
        let prefix = port.to_le_bytes();
        if !data.write(&prefix).await || !error.write(&prefix).await {
            break;
        }
        let Some(from_client) = conn.take(c) else { continue };
        let (rt, sandbox) = (Arc::clone(rt), sandbox.to_string());
        tasks.spawn(splice(rt, sandbox, Ok(port), from_client, Sink::Ws(data), Sink::Ws(error)));
    }
    let mut gone = conn.gone.clone();
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        _ = gone.wait_for(|g| *g) => tasks.abort_all(),
    }
    conn.finish(Duration::from_secs(5)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_the_query() {
        assert_eq!(query_ports(Some("port=80&port=8080")), Ok(vec![80, 8080]));
        assert_eq!(query_ports(None), Ok(vec![]));
        assert_eq!(query_ports(Some("x=1")), Ok(vec![]));
        assert!(query_ports(Some("port=0")).unwrap_err().contains("\"0\""));
        assert!(query_ports(Some("port=http")).unwrap_err().contains("http"));
        assert_eq!((max_ports("v4.base64.channel.k8s.io"), max_ports("v4.channel.k8s.io")), (5, 127));
    }
}
