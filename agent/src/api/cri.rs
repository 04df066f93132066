//! The Kubernetes CRI (`runtime.v1` RuntimeService and ImageService), served beside our
//! own API on the same listeners, so kubelet or crictl can drive agentd
//! (`--container-runtime-endpoint unix:///run/agentd/agentd.sock`). A thin translation:
//! sandboxes are `runtime::sandbox`, containers and images are our own.
//!
//! Not served yet (Unimplemented, naming what to use instead): the streaming Exec/Attach/
//! PortForward (they need kubelet's streaming server), checkpoints.
//! Stats carry CPU, memory and process counts (no network or filesystem figures yet).

use super::convert::status;
use crate::runtime::sandbox::{self, CriMeta, SandboxSpec};
use crate::runtime::{ContainerRecord, ContainerSpec, Runtime, State};
use agent_proto::cri as pb;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// `[cri]` in the config file.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CriConfig {
    /// The image of every sandbox's infra process (must be here: it is never pulled).
    pub pause_image: String,
    /// Its command.
    pub pause_command: Vec<String>,
}

impl Default for CriConfig {
    fn default() -> Self {
        CriConfig {
            pause_image: "local/busybox:latest".into(),
            pause_command: vec!["sleep".into(), "2147483647".into()],
        }
    }
}

/// RuntimeService.
pub struct CriRuntime {
    pub rt: Arc<Runtime>,
    pub cfg: CriConfig,
}

/// ImageService.
pub struct CriImages {
    pub rt: Arc<Runtime>,
    pub puller: Arc<crate::image::pull::Puller>,
}

fn unimplemented(what: &str, instead: &str) -> Status {
    Status::unimplemented(format!("{what} is not served by agentd yet; {instead}"))
}

fn to_btree(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn sandbox_state(r: &ContainerRecord) -> i32 {
    if r.state == State::Running {
        pb::PodSandboxState::SandboxReady as i32
    } else {
        pb::PodSandboxState::SandboxNotready as i32
    }
}

fn container_state(r: &ContainerRecord) -> i32 {
    (match r.state {
        State::Created => pb::ContainerState::ContainerCreated,
        State::Running => pb::ContainerState::ContainerRunning,
        State::Exited => pb::ContainerState::ContainerExited,
        State::Removing => pb::ContainerState::ContainerUnknown,
    }) as i32
}

fn sandbox_meta(r: &ContainerRecord) -> pb::PodSandboxMetadata {
    let m = sandbox::meta(r).unwrap_or_default();
    pb::PodSandboxMetadata { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt }
}

fn container_meta(r: &ContainerRecord) -> pb::ContainerMetadata {
    let m = sandbox::meta(r).unwrap_or_default();
    pb::ContainerMetadata { name: m.name, attempt: m.attempt }
}

fn labels_match(r: &ContainerRecord, sel: &HashMap<String, String>) -> bool {
    sel.iter().all(|(k, v)| r.spec.labels.get(k) == Some(v))
}

fn id_match(id: &str, want: &str) -> bool {
    want.is_empty() || id.starts_with(want)
}

fn image_spec(r: &ContainerRecord) -> pb::ImageSpec {
    let image = r.spec.annotations.get(sandbox::IMAGE).cloned().unwrap_or_else(|| r.spec.image.clone());
    pb::ImageSpec { image, ..Default::default() }
}

fn mounts(r: &ContainerRecord) -> Vec<pb::Mount> {
    r.spec
        .volumes
        .iter()
        .filter_map(|v| crate::runtime::parse_volume_syntax(v).ok())
        .map(|v| pb::Mount {
            container_path: v.container,
            host_path: v.host.display().to_string(),
            readonly: v.read_only,
            ..Default::default()
        })
        .collect()
}

/// Which of (network, IPC, PID) are the node's (`NamespaceMode::NODE`).
fn node_namespaces(ns: Option<&pb::NamespaceOption>) -> (bool, bool, bool) {
    let node = |m: i32| m == pb::NamespaceMode::Node as i32;
    ns.map_or((false, false, false), |n| (node(n.network), node(n.ipc), node(n.pid)))
}

/// The domain spec of a CreateContainer request (before the sandbox completes it).
fn container_spec(cfg: &pb::ContainerConfig) -> Result<ContainerSpec, Status> {
    let image = cfg.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument("config.image.image is required"));
    }
    let mut spec = ContainerSpec {
        image,
        entrypoint: (!cfg.command.is_empty()).then(|| cfg.command.clone()),
        command: cfg.args.clone(),
        env: cfg.envs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect(),
        working_dir: cfg.working_dir.clone(),
        labels: to_btree(cfg.labels.clone()),
        annotations: to_btree(cfg.annotations.clone()),
        tty: cfg.tty,
        stdin_open: cfg.stdin,
        ..Default::default()
    };
    for m in &cfg.mounts {
        if m.host_path.is_empty() || m.container_path.is_empty() {
            return Err(Status::invalid_argument(format!(
                "mount {:?} → {:?}: both paths are required (image volumes are not supported)",
                m.host_path, m.container_path
            )));
        }
        spec.volumes.push(format!("{}:{}{}", m.host_path, m.container_path, if m.readonly { ":ro" } else { "" }));
    }
    spec.devices = cfg
        .devices
        .iter()
        .map(|d| match d.permissions.as_str() {
            "" => format!("{}:{}", d.host_path, d.container_path),
            p => format!("{}:{}:{p}", d.host_path, d.container_path),
        })
        .collect();
    if let Some(linux) = &cfg.linux {
        if let Some(r) = &linux.resources {
            let res = &mut spec.resources;
            res.cpu_period = (r.cpu_period > 0).then_some(r.cpu_period as u64);
            res.cpu_quota = (r.cpu_quota > 0).then_some(r.cpu_quota);
            res.cpu_shares = (r.cpu_shares > 0).then_some(r.cpu_shares as u64);
            res.memory = (r.memory_limit_in_bytes > 0).then_some(r.memory_limit_in_bytes);
            res.memory_swap = (r.memory_swap_limit_in_bytes > 0).then_some(r.memory_swap_limit_in_bytes);
            // Positive only: lowering it needs CAP_SYS_RESOURCE, which hosts may withhold.
            res.oom_score_adj = (r.oom_score_adj > 0).then_some(r.oom_score_adj.min(1000) as i32);
            res.cpuset_cpus = (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone());
            res.cpuset_mems = (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone());
        }
        if let Some(sc) = &linux.security_context {
            spec.privileged = sc.privileged;
            spec.read_only = sc.readonly_rootfs;
            if let Some(c) = &sc.capabilities {
                spec.cap_add = c.add_capabilities.clone();
                spec.cap_drop = c.drop_capabilities.clone();
            }
            spec.user = match (&sc.run_as_user, &sc.run_as_group, sc.run_as_username.as_str()) {
                (Some(u), Some(g), _) => format!("{}:{}", u.value, g.value),
                (Some(u), None, _) => u.value.to_string(),
                (None, _, name) => name.to_string(),
            };
            if sc.no_new_privs {
                spec.security_opt.push("no-new-privileges".into());
            }
            // Privileged pods and pods in the node's namespaces need the host's IDs,
            // whatever the agent's default user namespace mode.
            let (net, ipc, pid) = node_namespaces(sc.namespace_options.as_ref());
            if sc.privileged || net || ipc || pid {
                spec.userns = "host".into();
            }
        }
    }
    Ok(spec)
}

fn to_container(r: &ContainerRecord) -> pb::Container {
    pb::Container {
        id: r.id.clone(),
        pod_sandbox_id: r.spec.annotations.get(sandbox::SANDBOX).cloned().unwrap_or_default(),
        metadata: Some(container_meta(r)),
        image: Some(image_spec(r)),
        image_ref: r.image_id.clone(),
        state: container_state(r),
        created_at: r.created_at,
        labels: to_hash(&r.spec.labels),
        annotations: to_hash(&sandbox::user_annotations(r)),
        image_id: r.image_id.clone(),
    }
}

fn to_sandbox(r: &ContainerRecord) -> pb::PodSandbox {
    pb::PodSandbox {
        id: r.id.clone(),
        metadata: Some(sandbox_meta(r)),
        state: sandbox_state(r),
        created_at: r.created_at,
        labels: to_hash(&r.spec.labels),
        annotations: to_hash(&sandbox::user_annotations(r)),
        runtime_handler: String::new(),
    }
}

/// Kills a timed-out exec (see `ExecIo::kill`), without holding its output channel.
fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn u64v(value: u64) -> Option<pb::UInt64Value> {
    Some(pb::UInt64Value { value })
}

/// CPU and memory of one usage sample, as kubelet reads them (working set = usage minus
/// page cache, as cAdvisor counts it).
fn usage_of(u: &crate::cgroups::stats::Usage, ts: i64) -> (pb::CpuUsage, pb::MemoryUsage) {
    let ws = u.memory_usage.saturating_sub(u.memory_cache);
    (
        pb::CpuUsage { timestamp: ts, usage_core_nano_seconds: u64v(u.cpu_usage_ns), usage_nano_cores: None },
        pb::MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(ws),
            available_bytes: (u.memory_limit > 0).then(|| u.memory_limit.saturating_sub(ws)).and_then(u64v),
            usage_bytes: u64v(u.memory_usage),
            ..Default::default()
        },
    )
}

fn container_stats(r: &ContainerRecord, u: &crate::cgroups::stats::Usage, ts: i64) -> pb::ContainerStats {
    let (cpu, memory) = usage_of(u, ts);
    pb::ContainerStats {
        attributes: Some(pb::ContainerAttributes {
            id: r.id.clone(),
            metadata: Some(container_meta(r)),
            labels: to_hash(&r.spec.labels),
            annotations: to_hash(&sandbox::user_annotations(r)),
        }),
        cpu: Some(cpu),
        memory: Some(memory),
        writable_layer: None,
        swap: None,
    }
}

impl CriRuntime {
    /// Stats of CRI containers passing `keep`.
    fn containers_stats(&self, keep: impl Fn(&ContainerRecord) -> bool) -> Result<Vec<pb::ContainerStats>, Status> {
        let names: Vec<String> =
            self.rt.cri_records("container").map_err(status)?.into_iter().filter(|r| keep(r)).map(|r| r.id).collect();
        if names.is_empty() {
            return Ok(vec![]);
        }
        let ts = now_ns();
        Ok(self.rt.stats(&names).map_err(status)?.iter().map(|(r, u)| container_stats(r, u, ts)).collect())
    }

    /// A sandbox's stats: its containers' sums, and each of them.
    fn sandbox_stats(&self, sb: &ContainerRecord) -> Result<pb::PodSandboxStats, Status> {
        let ts = now_ns();
        let mut ids = vec![sb.id.clone()];
        ids.extend(self.rt.sandbox_members(&sb.id).map_err(status)?.into_iter().map(|m| m.id));
        let samples = self.rt.stats(&ids).map_err(status)?;
        let mut total = crate::cgroups::stats::Usage::default();
        for (_, u) in &samples {
            total.cpu_usage_ns += u.cpu_usage_ns;
            total.memory_usage += u.memory_usage;
            total.memory_cache += u.memory_cache;
            total.pids += u.pids;
        }
        let (cpu, memory) = usage_of(&total, ts);
        Ok(pb::PodSandboxStats {
            attributes: Some(pb::PodSandboxAttributes {
                id: sb.id.clone(),
                metadata: Some(sandbox_meta(sb)),
                labels: to_hash(&sb.spec.labels),
                annotations: to_hash(&sandbox::user_annotations(sb)),
            }),
            linux: Some(pb::LinuxPodSandboxStats {
                cpu: Some(cpu),
                memory: Some(memory),
                network: None,
                process: Some(pb::ProcessUsage { timestamp: ts, process_count: u64v(total.pids) }),
                containers: samples.iter().skip(1).map(|(r, u)| container_stats(r, u, ts)).collect(),
            }),
            windows: None,
        })
    }
}

#[tonic::async_trait]
impl pb::runtime_service_server::RuntimeService for CriRuntime {
    async fn version(&self, _: Request<pb::VersionRequest>) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "node-agent".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<pb::RunPodSandboxRequest>,
    ) -> Result<Response<pb::RunPodSandboxResponse>, Status> {
        let r = req.into_inner();
        let cfg = r.config.ok_or_else(|| Status::invalid_argument("config is required"))?;
        let m = cfg.metadata.clone().unwrap_or_default();
        let ns =
            cfg.linux.as_ref().and_then(|l| l.security_context.as_ref()).and_then(|s| s.namespace_options.as_ref());
        let (host_network, host_ipc, host_pid) = node_namespaces(ns);
        let mut ports = Vec::new();
        for p in &cfg.port_mappings {
            // With the node's network a port is the node's already (the API server fills
            // hostPort = containerPort for such pods): nothing to publish.
            if p.host_port <= 0 || host_network {
                continue;
            }
            let proto = if p.protocol == pb::Protocol::Udp as i32 { "udp" } else { "tcp" };
            let ip = if p.host_ip.is_empty() { String::new() } else { format!("{}:", p.host_ip) };
            ports.push(format!("{ip}{}:{}/{proto}", p.host_port, p.container_port));
        }
        let spec = SandboxSpec {
            meta: CriMeta { name: m.name, namespace: m.namespace, uid: m.uid, attempt: m.attempt },
            hostname: cfg.hostname.clone(),
            labels: to_btree(cfg.labels.clone()),
            annotations: to_btree(cfg.annotations.clone()),
            log_directory: cfg.log_directory.clone(),
            host_network,
            host_ipc,
            host_pid,
            dns_servers: cfg.dns_config.as_ref().map(|d| d.servers.clone()).unwrap_or_default(),
            ports,
            pause_image: self.cfg.pause_image.clone(),
            pause_command: self.cfg.pause_command.clone(),
        };
        let rec = self.rt.run_sandbox(spec).await.map_err(status)?;
        Ok(Response::new(pb::RunPodSandboxResponse { pod_sandbox_id: rec.id }))
    }

    async fn stop_pod_sandbox(
        &self,
        req: Request<pb::StopPodSandboxRequest>,
    ) -> Result<Response<pb::StopPodSandboxResponse>, Status> {
        self.rt.stop_sandbox(&req.into_inner().pod_sandbox_id).await.map_err(status)?;
        Ok(Response::new(pb::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        req: Request<pb::RemovePodSandboxRequest>,
    ) -> Result<Response<pb::RemovePodSandboxResponse>, Status> {
        self.rt.remove_sandbox(&req.into_inner().pod_sandbox_id).await.map_err(status)?;
        Ok(Response::new(pb::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        req: Request<pb::PodSandboxStatusRequest>,
    ) -> Result<Response<pb::PodSandboxStatusResponse>, Status> {
        let r = self.rt.sandbox(&req.into_inner().pod_sandbox_id).map_err(status)?;
        let mode = if r.network == crate::isolation::spec::NetMode::Host {
            pb::NamespaceMode::Node
        } else {
            pb::NamespaceMode::Pod
        };
        Ok(Response::new(pb::PodSandboxStatusResponse {
            status: Some(pb::PodSandboxStatus {
                id: r.id.clone(),
                metadata: Some(sandbox_meta(&r)),
                state: sandbox_state(&r),
                created_at: r.created_at,
                network: Some(pb::PodSandboxNetworkStatus { ip: r.ip.clone(), additional_ips: vec![] }),
                linux: Some(pb::LinuxPodSandboxStatus {
                    namespaces: Some(pb::Namespace {
                        options: Some(pb::NamespaceOption {
                            network: mode as i32,
                            pid: if r.spec.pid == "host" {
                                pb::NamespaceMode::Node as i32
                            } else {
                                pb::NamespaceMode::Container as i32
                            },
                            ipc: if r.spec.ipc == "host" {
                                pb::NamespaceMode::Node as i32
                            } else {
                                pb::NamespaceMode::Pod as i32
                            },
                            ..Default::default()
                        }),
                    }),
                }),
                labels: to_hash(&r.spec.labels),
                annotations: to_hash(&sandbox::user_annotations(&r)),
                runtime_handler: String::new(),
            }),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<pb::ListPodSandboxRequest>,
    ) -> Result<Response<pb::ListPodSandboxResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let items = self
            .rt
            .cri_records("sandbox")
            .map_err(status)?
            .iter()
            .filter(|r| id_match(&r.id, &f.id))
            .filter(|r| f.state.as_ref().is_none_or(|s| s.state == sandbox_state(r)))
            .filter(|r| labels_match(r, &f.label_selector))
            .map(to_sandbox)
            .collect();
        Ok(Response::new(pb::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let r = req.into_inner();
        let cfg = r.config.ok_or_else(|| Status::invalid_argument("config is required"))?;
        let m = cfg.metadata.clone().unwrap_or_default();
        if m.name.is_empty() {
            return Err(Status::invalid_argument("config.metadata.name is required"));
        }
        let spec = container_spec(&cfg)?;
        let meta = CriMeta { name: m.name, attempt: m.attempt, ..Default::default() };
        let share_pid = cfg
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.pid == pb::NamespaceMode::Pod as i32);
        let spec = self.rt.member_spec(&r.pod_sandbox_id, meta, &cfg.log_path, share_pid, spec).map_err(status)?;
        let rec = self.rt.create(spec).await.map_err(status)?;
        Ok(Response::new(pb::CreateContainerResponse { container_id: rec.id }))
    }

    async fn start_container(
        &self,
        req: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        self.rt.start(&req.into_inner().container_id).await.map_err(status)?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        req: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let r = req.into_inner();
        let t = std::time::Duration::from_secs(r.timeout.max(0) as u64);
        match self.rt.stop(&r.container_id, t).await {
            Ok(()) | Err(crate::runtime::RuntimeError::NotFound(_)) => Ok(Response::new(pb::StopContainerResponse {})),
            Err(e) => Err(status(e)),
        }
    }

    async fn remove_container(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        match self.rt.remove(&req.into_inner().container_id, true).await {
            Ok(()) | Err(crate::runtime::RuntimeError::NotFound(_)) => {
                Ok(Response::new(pb::RemoveContainerResponse {}))
            }
            Err(e) => Err(status(e)),
        }
    }

    async fn list_containers(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let containers = self
            .rt
            .cri_records("container")
            .map_err(status)?
            .iter()
            .filter(|r| id_match(&r.id, &f.id))
            .filter(|r| {
                f.pod_sandbox_id.is_empty()
                    || r.spec.annotations.get(sandbox::SANDBOX).is_some_and(|s| s.starts_with(&f.pod_sandbox_id))
            })
            .filter(|r| f.state.as_ref().is_none_or(|s| s.state == container_state(r)))
            .filter(|r| labels_match(r, &f.label_selector))
            .map(to_container)
            .collect();
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        req: Request<pb::ContainerStatusRequest>,
    ) -> Result<Response<pb::ContainerStatusResponse>, Status> {
        let r = self.rt.resolve(&req.into_inner().container_id).map_err(status)?;
        if sandbox::kind(&r) != Some("container") {
            return Err(Status::not_found(format!("no such container: {}", r.id)));
        }
        let reason = match r.state {
            State::Exited if r.oom_killed => "OOMKilled",
            State::Exited if r.exit_code == 0 => "Completed",
            State::Exited => "Error",
            _ => "",
        };
        Ok(Response::new(pb::ContainerStatusResponse {
            status: Some(pb::ContainerStatus {
                id: r.id.clone(),
                metadata: Some(container_meta(&r)),
                state: container_state(&r),
                created_at: r.created_at,
                started_at: r.started_at,
                finished_at: r.finished_at,
                exit_code: r.exit_code,
                image: Some(image_spec(&r)),
                image_ref: r.image_id.clone(),
                reason: reason.into(),
                message: r.error.clone(),
                labels: to_hash(&r.spec.labels),
                annotations: to_hash(&sandbox::user_annotations(&r)),
                mounts: mounts(&r),
                log_path: r.spec.log_path.clone(),
                image_id: r.image_id.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn update_container_resources(
        &self,
        req: Request<pb::UpdateContainerResourcesRequest>,
    ) -> Result<Response<pb::UpdateContainerResourcesResponse>, Status> {
        let r = req.into_inner();
        let l = r.linux.unwrap_or_default();
        let upd = crate::cgroups::Resources {
            cpu_period: (l.cpu_period > 0).then_some(l.cpu_period as u64),
            cpu_quota: (l.cpu_quota > 0).then_some(l.cpu_quota),
            cpu_shares: (l.cpu_shares > 0).then_some(l.cpu_shares as u64),
            memory: (l.memory_limit_in_bytes > 0).then_some(l.memory_limit_in_bytes),
            cpuset_cpus: (!l.cpuset_cpus.is_empty()).then_some(l.cpuset_cpus),
            cpuset_mems: (!l.cpuset_mems.is_empty()).then_some(l.cpuset_mems),
            ..Default::default()
        };
        self.rt.update(&r.container_id, upd).await.map_err(status)?;
        Ok(Response::new(pb::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        req: Request<pb::ReopenContainerLogRequest>,
    ) -> Result<Response<pb::ReopenContainerLogResponse>, Status> {
        self.rt.reopen_log(&req.into_inner().container_id).map_err(status)?;
        Ok(Response::new(pb::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, req: Request<pb::ExecSyncRequest>) -> Result<Response<pb::ExecSyncResponse>, Status> {
        use crate::runtime::OutputChunk;
        let r = req.into_inner();
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd is required"));
        }
        let ex = crate::runtime::ExecRequest { args: r.cmd, ..Default::default() };
        let mut io = self.rt.exec(&r.container_id, ex).await.map_err(status)?;
        let collect = async {
            let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
            while let Some(c) = io.output.recv().await {
                match c {
                    OutputChunk::Stdout(d) => stdout.extend(d),
                    OutputChunk::Stderr(d) => stderr.extend(d),
                    OutputChunk::Exit(code) => return pb::ExecSyncResponse { stdout, stderr, exit_code: code },
                }
            }
            pb::ExecSyncResponse { stdout, stderr, exit_code: 255 }
        };
        let out = if r.timeout > 0 {
            match tokio::time::timeout(std::time::Duration::from_secs(r.timeout as u64), collect).await {
                Ok(out) => out,
                Err(_) => {
                    // Answered once the command is gone, not while it is still a zombie.
                    io.terminate().await;
                    return Err(Status::deadline_exceeded(format!(
                        "command did not finish within {} seconds (killed)",
                        r.timeout
                    )));
                }
            }
        } else {
            collect.await
        };
        Ok(Response::new(out))
    }

    async fn exec(&self, _: Request<pb::ExecRequest>) -> Result<Response<pb::ExecResponse>, Status> {
        Err(unimplemented("streaming Exec", "use ExecSync, or agentctl exec"))
    }

    async fn attach(&self, _: Request<pb::AttachRequest>) -> Result<Response<pb::AttachResponse>, Status> {
        Err(unimplemented("streaming Attach", "use agentctl attach"))
    }

    async fn port_forward(
        &self,
        _: Request<pb::PortForwardRequest>,
    ) -> Result<Response<pb::PortForwardResponse>, Status> {
        Err(unimplemented("PortForward", "publish the port on the sandbox (hostPort)"))
    }

    async fn container_stats(
        &self,
        req: Request<pb::ContainerStatsRequest>,
    ) -> Result<Response<pb::ContainerStatsResponse>, Status> {
        let r = self.rt.resolve(&req.into_inner().container_id).map_err(status)?;
        if sandbox::kind(&r) != Some("container") {
            return Err(Status::not_found(format!("no such container: {}", r.id)));
        }
        let stats = self.containers_stats(|c| c.id == r.id)?.pop();
        Ok(Response::new(pb::ContainerStatsResponse { stats }))
    }

    async fn list_container_stats(
        &self,
        req: Request<pb::ListContainerStatsRequest>,
    ) -> Result<Response<pb::ListContainerStatsResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let stats = self.containers_stats(|r| {
            r.state == State::Running
                && id_match(&r.id, &f.id)
                && (f.pod_sandbox_id.is_empty()
                    || r.spec.annotations.get(sandbox::SANDBOX).is_some_and(|s| s.starts_with(&f.pod_sandbox_id)))
                && labels_match(r, &f.label_selector)
        })?;
        Ok(Response::new(pb::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        req: Request<pb::PodSandboxStatsRequest>,
    ) -> Result<Response<pb::PodSandboxStatsResponse>, Status> {
        let sb = self.rt.sandbox(&req.into_inner().pod_sandbox_id).map_err(status)?;
        Ok(Response::new(pb::PodSandboxStatsResponse { stats: Some(self.sandbox_stats(&sb)?) }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        req: Request<pb::ListPodSandboxStatsRequest>,
    ) -> Result<Response<pb::ListPodSandboxStatsResponse>, Status> {
        let f = req.into_inner().filter.unwrap_or_default();
        let mut stats = Vec::new();
        for sb in self.rt.cri_records("sandbox").map_err(status)? {
            if sb.state == State::Running && id_match(&sb.id, &f.id) && labels_match(&sb, &f.label_selector) {
                stats.push(self.sandbox_stats(&sb)?);
            }
        }
        Ok(Response::new(pb::ListPodSandboxStatsResponse { stats }))
    }

    async fn update_runtime_config(
        &self,
        _: Request<pb::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<pb::UpdateRuntimeConfigResponse>, Status> {
        // The pod CIDR is the bridge network's business ([network] in agentd.toml).
        Ok(Response::new(pb::UpdateRuntimeConfigResponse {}))
    }

    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::StatusResponse>, Status> {
        let cond = |t: &str| pb::RuntimeCondition { r#type: t.into(), status: true, ..Default::default() };
        Ok(Response::new(pb::StatusResponse {
            status: Some(pb::RuntimeStatus { conditions: vec![cond("RuntimeReady"), cond("NetworkReady")] }),
            ..Default::default()
        }))
    }

    async fn checkpoint_container(
        &self,
        _: Request<pb::CheckpointContainerRequest>,
    ) -> Result<Response<pb::CheckpointContainerResponse>, Status> {
        Err(unimplemented("CheckpointContainer", "commit the container instead (agentctl commit)"))
    }

    type GetContainerEventsStream =
        std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ContainerEventResponse, Status>> + Send>>;

    async fn get_container_events(
        &self,
        _: Request<pb::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        use tokio::sync::broadcast::error::RecvError;
        let mut live = self.rt.live_events();
        let rt = Arc::clone(&self.rt);
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                let ev = match live.recv().await {
                    Ok(ev) => ev,
                    // kubelet relists when the stream ends: better than a silent gap.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                };
                let Some(kind) = cri_event_type(&ev.action) else { continue };
                // A removed record is gone from the store: CRI objects are named k8s_….
                let cri = match rt.resolve(&ev.id) {
                    Ok(r) => sandbox::kind(&r).is_some(),
                    Err(_) => ev.name.starts_with("k8s_"),
                };
                if !cri {
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
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_metric_descriptors(
        &self,
        _: Request<pb::ListMetricDescriptorsRequest>,
    ) -> Result<Response<pb::ListMetricDescriptorsResponse>, Status> {
        Ok(Response::new(pb::ListMetricDescriptorsResponse { descriptors: vec![] }))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _: Request<pb::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<pb::ListPodSandboxMetricsResponse>, Status> {
        Ok(Response::new(pb::ListPodSandboxMetricsResponse { pod_metrics: vec![] }))
    }

    async fn runtime_config(
        &self,
        _: Request<pb::RuntimeConfigRequest>,
    ) -> Result<Response<pb::RuntimeConfigResponse>, Status> {
        Ok(Response::new(pb::RuntimeConfigResponse {
            linux: Some(pb::LinuxRuntimeConfiguration { cgroup_driver: pb::CgroupDriver::Cgroupfs as i32 }),
        }))
    }
}

/// The CRI event of one of our lifecycle actions.
fn cri_event_type(action: &str) -> Option<pb::ContainerEventType> {
    Some(match action {
        "create" => pb::ContainerEventType::ContainerCreatedEvent,
        "start" => pb::ContainerEventType::ContainerStartedEvent,
        "die" => pb::ContainerEventType::ContainerStoppedEvent,
        "destroy" => pb::ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    })
}

fn to_image(i: &crate::image::ImageRecord) -> pb::Image {
    let uid = i.config.user.split(':').next().and_then(|u| u.parse::<i64>().ok());
    pb::Image {
        id: i.id.clone(),
        repo_tags: i.tags.clone(),
        repo_digests: if i.digest.is_empty() {
            vec![]
        } else {
            i.tags
                .iter()
                .filter_map(|t| t.rsplit_once(':').map(|(repo, _)| format!("{repo}@{}", i.digest)))
                .take(1)
                .collect()
        },
        size: i.size(),
        uid: uid.map(|value| pb::Int64Value { value }),
        username: if uid.is_none() { i.config.user.clone() } else { String::new() },
        spec: Some(pb::ImageSpec { image: i.id.clone(), ..Default::default() }),
        pinned: false,
    }
}

/// Credentials of a PullImage: username/password, or `auth` (base64 `user:password`).
fn cri_credentials(a: Option<pb::AuthConfig>) -> Result<Option<crate::image::pull::Credentials>, Status> {
    let Some(a) = a else { return Ok(None) };
    if !a.username.is_empty() {
        return Ok(Some(crate::image::pull::Credentials { username: a.username, password: a.password }));
    }
    if a.auth.is_empty() {
        return Ok(None);
    }
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.auth.trim())
        .map_err(|_| Status::invalid_argument("auth.auth is not base64 of user:password"))?;
    let text = String::from_utf8(raw).map_err(|_| Status::invalid_argument("auth.auth is not UTF-8"))?;
    let (u, p) = text.split_once(':').ok_or_else(|| Status::invalid_argument("auth.auth is not user:password"))?;
    Ok(Some(crate::image::pull::Credentials { username: u.into(), password: p.into() }))
}

#[tonic::async_trait]
impl pb::image_service_server::ImageService for CriImages {
    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let want = req.into_inner().filter.and_then(|f| f.image).map(|i| i.image).unwrap_or_default();
        let images = if want.is_empty() {
            self.rt.images().list().map_err(|e| super::convert::image_status(&e))?
        } else {
            self.rt.images().resolve(&want).into_iter().collect()
        };
        Ok(Response::new(pb::ListImagesResponse { images: images.iter().map(to_image).collect() }))
    }

    async fn image_status(
        &self,
        req: Request<pb::ImageStatusRequest>,
    ) -> Result<Response<pb::ImageStatusResponse>, Status> {
        let name = req.into_inner().image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("image.image is required"));
        }
        // A missing image is not an error here: kubelet asks before it pulls.
        let image = self.rt.images().resolve(&name).ok().map(|i| to_image(&i));
        Ok(Response::new(pb::ImageStatusResponse { image, info: HashMap::new() }))
    }

    async fn pull_image(&self, req: Request<pb::PullImageRequest>) -> Result<Response<pb::PullImageResponse>, Status> {
        let r = req.into_inner();
        let name = r.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(Status::invalid_argument("image.image is required"));
        }
        let creds = cri_credentials(r.auth)?;
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let img = self.puller.pull(&name, creds, false, tx).await.map_err(|e| super::convert::image_status(&e))?;
        Ok(Response::new(pb::PullImageResponse { image_ref: img.id }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let name = req.into_inner().image.map(|i| i.image).unwrap_or_default();
        let users = self.rt.container_images().map_err(status)?;
        let images = Arc::clone(self.rt.images());
        let res = tokio::task::spawn_blocking(move || images.remove(&name, false, &users))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        match res {
            Ok(_) | Err(crate::image::ImageError::NotFound(_)) => Ok(Response::new(pb::RemoveImageResponse {})),
            Err(e) => Err(super::convert::image_status(&e)),
        }
    }

    async fn image_fs_info(
        &self,
        _: Request<pb::ImageFsInfoRequest>,
    ) -> Result<Response<pb::ImageFsInfoResponse>, Status> {
        let layers = self.rt.config().root.join("layers");
        let dir = layers.clone();
        let used = tokio::task::spawn_blocking(move || crate::image::usage::du(&dir)).await.unwrap_or(0);
        let fs = pb::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(pb::FilesystemIdentifier { mountpoint: layers.display().to_string() }),
            used_bytes: Some(pb::UInt64Value { value: used }),
            inodes_used: None,
        };
        Ok(Response::new(pb::ImageFsInfoResponse { image_filesystems: vec![fs], container_filesystems: vec![] }))
    }
}
