//! CreateContainer, StartContainer, StopContainer, RemoveContainer, ListContainers,
//! ContainerStatus, UpdateContainerResources, ReopenContainerLog.

use super::convert::{container_request, container_state, container_status, resources, to_container};
use super::{gone_is_ok, in_sandbox, select, unimplemented, CriRuntime, Rpc};
use crate::api::convert::status;
use crate::cgroups::Resources;
use agent_proto::cri as pb;
use tonic::Status;

pub(super) async fn create(cri: &CriRuntime, r: pb::CreateContainerRequest) -> Rpc<pb::CreateContainerResponse> {
    let cfg = r.config.ok_or_else(|| Status::invalid_argument("config is required"))?;
    let (meta, share_pid, spec) = container_request(&cfg)?;
    let spec = cri.rt.member_spec(&r.pod_sandbox_id, meta, &cfg.log_path, share_pid, spec).map_err(status)?;
    let rec = cri.rt.create(spec).await.map_err(status)?;
    Ok(pb::CreateContainerResponse { container_id: rec.id })
}

pub(super) async fn start(cri: &CriRuntime, r: pb::StartContainerRequest) -> Rpc<pb::StartContainerResponse> {
    cri.rt.start(&r.container_id).await.map_err(status)?;
    Ok(pb::StartContainerResponse {})
}

pub(super) async fn stop(cri: &CriRuntime, r: pb::StopContainerRequest) -> Rpc<pb::StopContainerResponse> {
    let grace = std::time::Duration::from_secs(r.timeout.max(0) as u64);
    gone_is_ok(cri.rt.stop(&r.container_id, grace).await)?;
    Ok(pb::StopContainerResponse {})
}

pub(super) async fn remove(cri: &CriRuntime, r: pb::RemoveContainerRequest) -> Rpc<pb::RemoveContainerResponse> {
    gone_is_ok(cri.rt.remove(&r.container_id, true).await)?;
    Ok(pb::RemoveContainerResponse {})
}

pub(super) async fn list(cri: &CriRuntime, r: pb::ListContainersRequest) -> Rpc<pb::ListContainersResponse> {
    let f = r.filter.unwrap_or_default();
    let containers = select(cri, "container", &f.id, &f.label_selector)?
        .iter()
        .filter(|r| in_sandbox(r, &f.pod_sandbox_id))
        .filter(|r| f.state.as_ref().is_none_or(|s| s.state == container_state(r)))
        .map(to_container)
        .collect();
    Ok(pb::ListContainersResponse { containers })
}

pub(super) async fn status_of(cri: &CriRuntime, r: pb::ContainerStatusRequest) -> Rpc<pb::ContainerStatusResponse> {
    let rec = cri.rt.cri_container(&r.container_id).map_err(status)?;
    Ok(pb::ContainerStatusResponse { status: Some(container_status(&rec)), ..Default::default() })
}

pub(super) async fn update_resources(
    cri: &CriRuntime,
    r: pb::UpdateContainerResourcesRequest,
) -> Rpc<pb::UpdateContainerResourcesResponse> {
    // CPU, memory and cpusets; swap and the OOM score keep what the container was created with.
    let upd = Resources { memory_swap: None, oom_score_adj: None, ..resources(&r.linux.unwrap_or_default()) };
    cri.rt.update(&r.container_id, upd).await.map_err(status)?;
    Ok(pb::UpdateContainerResourcesResponse {})
}

pub(super) async fn reopen_log(
    cri: &CriRuntime,
    r: pb::ReopenContainerLogRequest,
) -> Rpc<pb::ReopenContainerLogResponse> {
    cri.rt.reopen_log(&r.container_id).map_err(status)?;
    Ok(pb::ReopenContainerLogResponse {})
}

pub(super) async fn checkpoint(
    _: &CriRuntime,
    _: pb::CheckpointContainerRequest,
) -> Rpc<pb::CheckpointContainerResponse> {
    Err(unimplemented("CheckpointContainer", "commit the container instead (agentctl commit)"))
}
