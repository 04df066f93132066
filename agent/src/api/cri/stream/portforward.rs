//! Kubernetes' port-forward protocol (`portforward.k8s.io`) over a SPDY session, as kubelet
//! serves it: for every connection it forwards, the client opens a pair of streams with the
//! same `requestid` and `port` headers — `streamtype: error` (which it half-closes at once)
//! and `streamtype: data`. We connect to 127.0.0.1:PORT inside the pod's network namespace
//! and splice the data stream with that socket; a failure is written to the error stream.
//! Both streams end with FIN when the forward is done.

use super::remotecommand::Sink;
use super::session::{Session, Stream};
use crate::runtime::Runtime;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub const PROTOCOLS: &[&str] = &["portforward.k8s.io"];

/// How long a stream waits for its partner (kubelet's stream creation timeout).
const PAIRING: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Pair {
    error: Option<Stream>,
    data: Option<Stream>,
    since: Option<std::time::Instant>,
}

pub async fn serve(rt: &Arc<Runtime>, mut sess: Session, sandbox: &str) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(s) = sess.incoming.recv().await {
        let id = s.header("requestid").unwrap_or_default().to_string();
        let kind = s.header("streamtype").unwrap_or_default().to_string();
        // Pairs whose partner never came are dropped (their streams end).
        pairs.retain(|_, p| p.since.is_none_or(|t| t.elapsed() < PAIRING));
        let p = pairs.entry(id.clone()).or_default();
        p.since.get_or_insert_with(std::time::Instant::now);
        match kind.as_str() {
            "error" => p.error = Some(s),
            "data" => p.data = Some(s),
            other => {
                tracing::info!(sandbox, stream_type = other, "CRI port-forward: unexpected stream type; closing it");
                s.out.close().await;
                continue;
            }
        }
        if p.error.is_some() && p.data.is_some() {
            if let Some(Pair { error: Some(e), data: Some(d), .. }) = pairs.remove(&id) {
                tasks.spawn(forward(Arc::clone(rt), sandbox.to_string(), e, d));
            }
        }
    }
    // The client hung up: forwards still running have lost it too.
    tasks.abort_all();
    sess.finish(Duration::ZERO).await;
}

async fn forward(rt: Arc<Runtime>, sandbox: String, error: Stream, data: Stream) {
    let port = data.header("port").unwrap_or_default().to_string();
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("invalid port {port:?}")),
    };
    splice(rt, sandbox, port, data.data, Sink::Spdy(data.out), Sink::Spdy(error.out)).await
}

/// One forwarded connection, whatever carries it: what comes `from_client` goes to
/// 127.0.0.1:PORT in the pod, what comes back goes out on `data`; a failure is written to
/// `error`. Both are closed at the end.
pub(super) async fn splice(
    rt: Arc<Runtime>,
    sandbox: String,
    port: Result<u16, String>,
    mut from_client: mpsc::Receiver<Vec<u8>>,
    data: Sink,
    error: Sink,
) {
    let shown = match &port {
        Ok(p) => p.to_string(),
        Err(_) => "?".to_string(),
    };
    let conn = match port {
        Ok(p) => rt.connect_in_sandbox(&sandbox, p).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    let tcp = match conn {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("error forwarding port {shown} to pod {sandbox}: {e}");
            tracing::info!("{msg}");
            error.write(msg.as_bytes()).await;
            error.close().await;
            data.close().await;
            return;
        }
    };
    let (mut rd, mut wr) = tcp.into_split();
    let to_pod = async {
        while let Some(d) = from_client.recv().await {
            if wr.write_all(&d).await.is_err() {
                break;
            }
        }
        // The client sends no more: so does our side of the pod's connection.
        let _ = wr.shutdown().await;
    };
    let from_pod = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !data.write(&buf[..n]).await {
                        break;
                    }
                }
            }
        }
        data.close().await;
    };
    // The pod's end decides, as containerd's forwarder does: once it has closed, the client
    // has a second to finish sending, then both streams end.
    tokio::pin!(to_pod);
    tokio::pin!(from_pod);
    tokio::select! {
        _ = &mut to_pod => from_pod.await,
        _ = &mut from_pod => {
            let _ = tokio::time::timeout(Duration::from_secs(1), to_pod).await;
        }
    }
    error.close().await;
}
