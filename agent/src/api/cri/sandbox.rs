//! RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox.

use super::convert::{sandbox_spec, sandbox_state, sandbox_status, to_sandbox};
use super::{select, CriRuntime, Rpc};
use crate::api::convert::status;
use agent_proto::cri as pb;
use tonic::Status;

pub(super) async fn run(cri: &CriRuntime, r: pb::RunPodSandboxRequest) -> Rpc<pb::RunPodSandboxResponse> {
    let cfg = r.config.ok_or_else(|| Status::invalid_argument("config is required"))?;
    let rec = cri.rt.run_sandbox(sandbox_spec(cfg, &cri.cfg)).await.map_err(status)?;
    Ok(pb::RunPodSandboxResponse { pod_sandbox_id: rec.id })
}

pub(super) async fn stop(cri: &CriRuntime, r: pb::StopPodSandboxRequest) -> Rpc<pb::StopPodSandboxResponse> {
    // Idempotent in the runtime (a sandbox already gone is stopped).
    cri.rt.stop_sandbox(&r.pod_sandbox_id).await.map_err(status)?;
    Ok(pb::StopPodSandboxResponse {})
}

pub(super) async fn remove(cri: &CriRuntime, r: pb::RemovePodSandboxRequest) -> Rpc<pb::RemovePodSandboxResponse> {
    // Idempotent in the runtime too.
    cri.rt.remove_sandbox(&r.pod_sandbox_id).await.map_err(status)?;
    Ok(pb::RemovePodSandboxResponse {})
}

pub(super) async fn status_of(cri: &CriRuntime, r: pb::PodSandboxStatusRequest) -> Rpc<pb::PodSandboxStatusResponse> {
    let sb = cri.rt.sandbox(&r.pod_sandbox_id).map_err(status)?;
    let mut st = sandbox_status(&sb);
    let mut ips = cri.rt.pod_ips(&sb).map_err(status)?.into_iter();
    st.network = Some(pb::PodSandboxNetworkStatus {
        ip: ips.next().unwrap_or_default(),
        additional_ips: ips.map(|ip| pb::PodIp { ip }).collect(),
    });
    // CHECK runs the plugins (a few processes): only for a verbose status (crictl inspectp),
    // not for kubelet's frequent plain ones.
    let mut info = std::collections::HashMap::new();
    if r.verbose {
        if let Some(check) = cri.rt.check_pod_network(&sb).await {
            let v = match check {
                Ok(()) => serde_json::json!({ "check": "passed" }),
                Err(e) => serde_json::json!({ "check": "failed", "error": e }),
            };
            info.insert("cni".to_string(), v.to_string());
        }
    }
    Ok(pb::PodSandboxStatusResponse { status: Some(st), info, ..Default::default() })
}

pub(super) async fn list(cri: &CriRuntime, r: pb::ListPodSandboxRequest) -> Rpc<pb::ListPodSandboxResponse> {
    let f = r.filter.unwrap_or_default();
    let items = select(cri, "sandbox", &f.id, &f.label_selector)?
        .iter()
        .filter(|r| f.state.as_ref().is_none_or(|s| s.state == sandbox_state(r)))
        .map(to_sandbox)
        .collect();
    Ok(pb::ListPodSandboxResponse { items })
}
