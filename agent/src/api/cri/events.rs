//! GetContainerEvents: our lifecycle events of CRI objects, as they happen.

use super::convert::event_type;
use super::CriRuntime;
use agent_proto::cri as pb;
use std::sync::Arc;
use tonic::Status;

pub(super) type EventStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ContainerEventResponse, Status>> + Send>>;

/// The stream of CRI events from now on; it ends when it falls behind (kubelet relists
/// when the stream ends: better than a silent gap).
pub(super) fn follow(cri: &CriRuntime) -> EventStream {
    use tokio::sync::broadcast::error::RecvError;
    let mut live = cri.rt.live_events();
    let rt = Arc::clone(&cri.rt);
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        loop {
            let got = tokio::select! {
                got = live.recv() => got,
                _ = tx.closed() => return,
            };
            let ev = match got {
                Ok(ev) => ev,
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
            };
            if ev.kind != "container" {
                continue;
            }
            let Some(kind) = event_type(&ev.action) else { continue };
            if !rt.is_cri_event(&ev) {
                continue;
            }
            let msg = pb::ContainerEventResponse {
                container_id: ev.id.clone(),
                container_event_type: kind as i32,
                created_at: ev.time,
                pod_sandbox_status: None,
                containers_statuses: vec![],
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
