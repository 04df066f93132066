//! ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats.

use super::convert::{container_stats, now_ns, sandbox_stats};
use super::{in_sandbox, select, CriRuntime, Rpc};
use crate::api::convert::status;
use crate::runtime::{ContainerRecord, State};
use agent_proto::cri as pb;
use tonic::Status;

/// Stats of CRI containers.
fn containers_stats(cri: &CriRuntime, recs: Vec<ContainerRecord>) -> Result<Vec<pb::ContainerStats>, Status> {
    let ids: Vec<String> = recs.into_iter().map(|r| r.id).collect();
    // No IDs would mean every running container to `stats`.
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let ts = now_ns();
    Ok(cri.rt.stats(&ids).map_err(status)?.iter().map(|(r, u)| container_stats(r, u, ts)).collect())
}

fn one_sandbox_stats(cri: &CriRuntime, sb: &ContainerRecord) -> Result<pb::PodSandboxStats, Status> {
    let ts = now_ns();
    let (total, members) = cri.rt.sandbox_usage(sb).map_err(status)?;
    Ok(sandbox_stats(sb, &total, &members, ts))
}

pub(super) async fn container(cri: &CriRuntime, r: pb::ContainerStatsRequest) -> Rpc<pb::ContainerStatsResponse> {
    let rec = cri.rt.cri_container(&r.container_id).map_err(status)?;
    Ok(pb::ContainerStatsResponse { stats: containers_stats(cri, vec![rec])?.pop() })
}

pub(super) async fn list_containers(
    cri: &CriRuntime,
    r: pb::ListContainerStatsRequest,
) -> Rpc<pb::ListContainerStatsResponse> {
    let f = r.filter.unwrap_or_default();
    let mut recs = select(cri, "container", &f.id, &f.label_selector)?;
    recs.retain(|r| r.state == State::Running && in_sandbox(r, &f.pod_sandbox_id));
    let stats = containers_stats(cri, recs)?;
    Ok(pb::ListContainerStatsResponse { stats })
}

pub(super) async fn sandbox(cri: &CriRuntime, r: pb::PodSandboxStatsRequest) -> Rpc<pb::PodSandboxStatsResponse> {
    let sb = cri.rt.sandbox(&r.pod_sandbox_id).map_err(status)?;
    Ok(pb::PodSandboxStatsResponse { stats: Some(one_sandbox_stats(cri, &sb)?) })
}

pub(super) async fn list_sandboxes(
    cri: &CriRuntime,
    r: pb::ListPodSandboxStatsRequest,
) -> Rpc<pb::ListPodSandboxStatsResponse> {
    let f = r.filter.unwrap_or_default();
    let mut stats = Vec::new();
    for sb in select(cri, "sandbox", &f.id, &f.label_selector)? {
        if sb.state == State::Running {
            stats.push(one_sandbox_stats(cri, &sb)?);
        }
    }
    Ok(pb::ListPodSandboxStatsResponse { stats })
}

pub(super) async fn metric_descriptors(
    _: &CriRuntime,
    _: pb::ListMetricDescriptorsRequest,
) -> Rpc<pb::ListMetricDescriptorsResponse> {
    Ok(pb::ListMetricDescriptorsResponse { descriptors: vec![] })
}

pub(super) async fn sandbox_metrics(
    _: &CriRuntime,
    _: pb::ListPodSandboxMetricsRequest,
) -> Rpc<pb::ListPodSandboxMetricsResponse> {
    Ok(pb::ListPodSandboxMetricsResponse { pod_metrics: vec![] })
}
