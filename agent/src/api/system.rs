//! SystemService: version and host information.

use super::convert::status;
use crate::runtime::Runtime;
use agent_proto::v1 as pb;
use agent_proto::v1::system_service_server::SystemService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The SystemService implementation.
pub struct SystemApi {
    pub rt: Arc<Runtime>,
    /// `[limits] max_followers`.
    pub followers: Arc<super::followers::Followers>,
}

fn kernel() -> String {
    nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default()
}

#[tonic::async_trait]
impl SystemService for SystemApi {
    type EventsStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::Event, Status>> + Send>>;

    async fn events(&self, req: Request<pb::EventsRequest>) -> Result<Response<Self::EventsStream>, Status> {
        use tokio_stream::StreamExt;
        let r = req.into_inner();
        let filter = crate::runtime::EventFilter::parse(&r.filters).map_err(status)?;
        let slot = if r.follow { Some(self.followers.admit("events")?) } else { None };
        let rx = self.rt.events(r.since, r.follow, filter).map_err(status)?;
        let s = tokio_stream::wrappers::ReceiverStream::new(rx).map(|e| {
            Ok(pb::Event {
                seq: e.seq,
                time: e.time,
                r#type: e.kind,
                action: e.action,
                id: e.id,
                name: e.name,
                attributes: e.attributes.into_iter().collect(),
            })
        });
        Ok(Response::new(match slot {
            Some(slot) => slot.hold(s),
            None => Box::pin(s),
        }))
    }

    async fn version(&self, _req: Request<pb::VersionRequest>) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: "agent.v1".into(),
            git_commit: option_env!("AGENT_GIT_COMMIT").unwrap_or("").into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            kernel: kernel(),
        }))
    }

    async fn info(&self, _req: Request<pb::InfoRequest>) -> Result<Response<pb::InfoResponse>, Status> {
        let (all, running, stopped) = self.rt.counts().map_err(status)?;
        let images = self.rt.images().list().map(|v| v.len() as u32).unwrap_or(0);
        let cg = self.rt.cgroups().host();
        let mem = crate::cgroups::host_memory();
        let cfg = self.rt.config();
        let ledger = self.rt.ledger(None).map_err(status)?;
        let (root_free_bytes, root_full) = self.rt.root_space();
        Ok(Response::new(pb::InfoResponse {
            instance: cfg.instance.clone(),
            root: cfg.root.display().to_string(),
            run_dir: cfg.run_dir.display().to_string(),
            containers: all,
            containers_running: running,
            containers_stopped: stopped,
            images,
            cgroup_layout: cg.layout.to_string(),
            cgroup_controllers: cg
                .controllers()
                .into_iter()
                .map(|(name, m)| pb::CgroupController { name, mount_point: m.display().to_string() })
                .collect(),
            cpus: std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1),
            memory_bytes: mem,
            kernel: kernel(),
            storage_driver: "overlay".into(),
            hostname: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            capacity_cpus: ledger.capacity.cpus,
            capacity_memory: ledger.capacity.memory,
            allocatable_cpus: ledger.allocatable.cpus,
            allocatable_memory: ledger.allocatable.memory,
            allocated_cpus: ledger.allocated.cpus,
            allocated_memory: ledger.allocated.memory,
            root_free_bytes,
            root_full,
            exits_pending: self.rt.exits_pending() as u32,
        }))
    }
}
