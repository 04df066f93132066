//! The Kubernetes CRI (`runtime.v1` RuntimeService and ImageService), served beside our
//! own API on the same listeners, so kubelet or crictl can drive agentd
//! (`--container-runtime-endpoint unix:///run/agentd/agentd.sock`). A thin translation:
//! sandboxes are `runtime::sandbox`, containers and images are our own.
//!
//! One file per group of RPCs, like containerd's CRI plugin: `sandbox.rs`, `container.rs`,
//! `exec.rs`, `stats.rs`, `events.rs`, `image.rs` (the ImageService); `convert.rs` is the
//! only one that sees both CRI messages and domain types. The RuntimeService trait is
//! implemented here as a table: each RPC hands its request to its group's handler, an
//! `async fn(&CriRuntime, Request) -> Result<Response, Status>`.
//!
//! Exec/Attach/PortForward answer with a URL of the streaming server (`stream/`).
//! Not served yet (Unimplemented, naming what to use instead): checkpoints.
//! Stats carry CPU, memory and process counts (no network or filesystem figures yet).

mod container;
mod convert;
mod events;
mod exec;
mod image;
mod sandbox;
mod stats;
pub mod stream;

use crate::runtime::{ContainerRecord, Runtime, RuntimeError};
use agent_proto::cri as pb;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// `[cri]` in the config file.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriConfig {
    /// The image of every sandbox's infra process (must be here: it is never pulled);
    /// empty (the default): agentd's own pause on a built-in empty root, no image needed.
    pub pause_image: String,
    /// Its command.
    pub pause_command: Vec<String>,
    /// `IP:PORT` of the streaming server (Exec/Attach/PortForward URLs); port 0: the OS
    /// chooses. Default 127.0.0.1:0: any other address must be asked for.
    pub stream_listen: String,
    /// CNI network configurations (the first `*.conflist`/`*.conf`/`*.json` in lexical
    /// order); with `cni_bin_dir`, pods get their network from CNI plugins instead of our
    /// bridge. Empty (the default): our bridge.
    pub cni_conf_dir: String,
    /// The CNI plugins' directory (`CNI_PATH`; several separated by `:`), e.g. /usr/lib/cni.
    pub cni_bin_dir: String,
    /// PEM certificate chain and private key of the streaming server (both or neither):
    /// with them it speaks TLS and its URLs are https://.
    pub stream_tls_cert: String,
    pub stream_tls_key: String,
}

impl CriConfig {
    /// Both CNI directories or neither, absolute; both streaming TLS files or neither,
    /// absolute and loadable.
    pub fn validate(&self) -> Result<(), String> {
        self.stream_tls()?;
        match (self.cni_conf_dir.is_empty(), self.cni_bin_dir.is_empty()) {
            (true, true) => return Ok(()),
            (false, true) => return Err("[cri] cni_conf_dir needs cni_bin_dir (where the CNI plugins are)".into()),
            (true, false) => return Err("[cri] cni_bin_dir needs cni_conf_dir (where the network configs are)".into()),
            _ => {}
        }
        let dirs = std::iter::once(("cni_conf_dir", self.cni_conf_dir.as_str()))
            .chain(self.cni_bin_dir.split(':').map(|d| ("cni_bin_dir", d)));
        for (key, d) in dirs {
            if !std::path::Path::new(d).is_absolute() {
                return Err(format!("[cri] {key} must be absolute, not {d:?}"));
            }
        }
        Ok(())
    }

    /// The streaming server's TLS configuration, when its files are set (an error names a
    /// missing, unreadable or mismatched one).
    pub fn stream_tls(&self) -> Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>, String> {
        let (cert, key) = (self.stream_tls_cert.as_str(), self.stream_tls_key.as_str());
        match (cert.is_empty(), key.is_empty()) {
            (true, true) => return Ok(None),
            (false, true) => return Err("[cri] stream_tls_cert needs stream_tls_key".into()),
            (true, false) => return Err("[cri] stream_tls_key needs stream_tls_cert".into()),
            _ => {}
        }
        for (k, p) in [("stream_tls_cert", cert), ("stream_tls_key", key)] {
            if !std::path::Path::new(p).is_absolute() {
                return Err(format!("[cri] {k} must be an absolute path, not {p:?}"));
            }
        }
        let alpn = [b"http/1.1".to_vec()];
        crate::auth::tls::load_server_only(cert.as_ref(), key.as_ref(), &alpn)
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| format!("[cri] streaming TLS: {e}"))
    }

    /// The CNI client, when both directories are set; its cache is under the agent's root.
    pub fn cni(&self, root: &std::path::Path) -> Option<crate::network::cni::Cni> {
        if self.cni_conf_dir.is_empty() || self.cni_bin_dir.is_empty() {
            return None;
        }
        Some(crate::network::cni::Cni::new(&self.cni_conf_dir, &self.cni_bin_dir, root.join("cni").join("results")))
    }
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig {
            pause_image: String::new(),
            pause_command: vec!["sleep".into(), "2147483647".into()],
            stream_listen: "127.0.0.1:0".into(),
            cni_conf_dir: String::new(),
            cni_bin_dir: String::new(),
            stream_tls_cert: String::new(),
            stream_tls_key: String::new(),
        }
    }
}

/// RuntimeService.
pub struct CriRuntime {
    pub rt: Arc<Runtime>,
    pub cfg: CriConfig,
    pub streams: Arc<stream::StreamServer>,
    /// `[limits] max_followers`: GetContainerEvents holds a slot.
    pub followers: Arc<crate::api::followers::Followers>,
}

/// ImageService.
pub struct CriImages {
    pub rt: Arc<Runtime>,
    pub puller: Arc<crate::image::pull::Puller>,
}

/// What a handler answers: its response, or the status of the failure.
type Rpc<T> = Result<T, Status>;

fn unimplemented(what: &str, instead: &str) -> Status {
    Status::unimplemented(format!("{what} is not served by agentd yet; {instead}"))
}

/// Stop and Remove are idempotent: an object already gone is no error.
fn gone_is_ok(r: Result<(), RuntimeError>) -> Result<(), Status> {
    match r {
        Ok(()) | Err(RuntimeError::NotFound(_)) => Ok(()),
        Err(e) => Err(crate::api::convert::status(e)),
    }
}

/// The CRI records of `kind` (`sandbox` or `container`) that a List filter selects: an ID
/// prefix (empty: any) and labels that must match.
fn select(
    cri: &CriRuntime,
    kind: &str,
    id_prefix: &str,
    labels: &HashMap<String, String>,
) -> Result<Vec<ContainerRecord>, Status> {
    let all = cri.rt.cri_records(kind).map_err(crate::api::convert::status)?;
    Ok(all
        .into_iter()
        .filter(|r| r.id.starts_with(id_prefix) && labels.iter().all(|(k, v)| r.spec.labels.get(k) == Some(v)))
        .collect())
}

/// Whether a CRI container belongs to a sandbox whose ID starts with `prefix` (empty: any).
fn in_sandbox(r: &ContainerRecord, prefix: &str) -> bool {
    prefix.is_empty() || crate::runtime::sandbox::sandbox_of(r).is_some_and(|s| s.starts_with(prefix))
}

/// Implements RuntimeService from a table of `rpc(Request) -> Response = handler;`.
macro_rules! runtime_service {
    ($($rpc:ident($req:ident) -> $resp:ident = $handler:path;)*) => {
        #[tonic::async_trait]
        impl pb::runtime_service_server::RuntimeService for CriRuntime {
            $(
                async fn $rpc(&self, req: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    $handler(self, req.into_inner()).await.map(Response::new)
                }
            )*

            type GetContainerEventsStream = events::EventStream;

            async fn get_container_events(
                &self,
                _: Request<pb::GetEventsRequest>,
            ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
                let slot = self.followers.admit("GetContainerEvents")?;
                Ok(Response::new(slot.hold(events::follow(self))))
            }
        }
    };
}

runtime_service! {
    version(VersionRequest) -> VersionResponse = version;
    status(StatusRequest) -> StatusResponse = status;
    runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse = runtime_config;
    update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse = update_runtime_config;

    run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse = sandbox::run;
    stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse = sandbox::stop;
    remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse = sandbox::remove;
    pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse = sandbox::status_of;
    list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse = sandbox::list;

    create_container(CreateContainerRequest) -> CreateContainerResponse = container::create;
    start_container(StartContainerRequest) -> StartContainerResponse = container::start;
    stop_container(StopContainerRequest) -> StopContainerResponse = container::stop;
    remove_container(RemoveContainerRequest) -> RemoveContainerResponse = container::remove;
    list_containers(ListContainersRequest) -> ListContainersResponse = container::list;
    container_status(ContainerStatusRequest) -> ContainerStatusResponse = container::status_of;
    update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse
        = container::update_resources;
    reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse = container::reopen_log;
    checkpoint_container(CheckpointContainerRequest) -> CheckpointContainerResponse = container::checkpoint;

    exec_sync(ExecSyncRequest) -> ExecSyncResponse = exec::exec_sync;
    exec(ExecRequest) -> ExecResponse = exec::exec;
    attach(AttachRequest) -> AttachResponse = exec::attach;
    port_forward(PortForwardRequest) -> PortForwardResponse = exec::port_forward;

    container_stats(ContainerStatsRequest) -> ContainerStatsResponse = stats::container;
    list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse = stats::list_containers;
    pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse = stats::sandbox;
    list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse = stats::list_sandboxes;
    list_metric_descriptors(ListMetricDescriptorsRequest) -> ListMetricDescriptorsResponse = stats::metric_descriptors;
    list_pod_sandbox_metrics(ListPodSandboxMetricsRequest) -> ListPodSandboxMetricsResponse = stats::sandbox_metrics;
}

async fn version(_: &CriRuntime, _: pb::VersionRequest) -> Rpc<pb::VersionResponse> {
    Ok(pb::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "node-agent".into(),
        runtime_version: env!("CARGO_PKG_VERSION").into(),
        runtime_api_version: "v1".into(),
    })
}

async fn status(cri: &CriRuntime, _: pb::StatusRequest) -> Rpc<pb::StatusResponse> {
    let cond = |t: &str| pb::RuntimeCondition { r#type: t.into(), status: true, ..Default::default() };
    // Our own bridge is always there; CNI's network only with a valid config and its plugins.
    let network = match cri.rt.cni().map(|c| c.ready()) {
        None | Some(Ok(_)) => cond("NetworkReady"),
        Some(Err(e)) => pb::RuntimeCondition {
            r#type: "NetworkReady".into(),
            status: false,
            reason: "NetworkPluginNotReady".into(),
            message: e.to_string(),
        },
    };
    Ok(pb::StatusResponse {
        status: Some(pb::RuntimeStatus { conditions: vec![cond("RuntimeReady"), network] }),
        ..Default::default()
    })
}

async fn runtime_config(_: &CriRuntime, _: pb::RuntimeConfigRequest) -> Rpc<pb::RuntimeConfigResponse> {
    Ok(pb::RuntimeConfigResponse {
        linux: Some(pb::LinuxRuntimeConfiguration { cgroup_driver: pb::CgroupDriver::Cgroupfs as i32 }),
    })
}

async fn update_runtime_config(
    _: &CriRuntime,
    _: pb::UpdateRuntimeConfigRequest,
) -> Rpc<pb::UpdateRuntimeConfigResponse> {
    // The pod CIDR is the bridge network's business ([network] in agentd.toml).
    Ok(pb::UpdateRuntimeConfigResponse {})
}
