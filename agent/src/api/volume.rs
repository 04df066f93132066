//! VolumeService: decode, call the runtime, map errors.

use super::convert::status;
use crate::runtime::{PruneFilter, Runtime, VolumeUse};
use agent_proto::v1 as pb;
use agent_proto::v1::volume_service_server::VolumeService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The VolumeService implementation.
pub struct VolumeApi {
    pub rt: Arc<Runtime>,
}

fn info(u: VolumeUse, size: Option<u64>) -> pb::VolumeInfo {
    let v = u.volume;
    pb::VolumeInfo {
        name: v.name,
        driver: v.driver,
        mountpoint: u.mountpoint.display().to_string(),
        labels: v.labels.into_iter().collect(),
        options: v.options.into_iter().collect(),
        scope: "local".into(),
        created_at: v.created_at,
        containers: u.containers,
        anonymous: v.anonymous,
        size: size.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
    }
}

#[tonic::async_trait]
impl VolumeService for VolumeApi {
    async fn create(&self, req: Request<pb::CreateVolumeRequest>) -> Result<Response<pb::VolumeInfo>, Status> {
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let r = req.into_inner();
        // Mounting a device or binding a host directory reaches the host as root, like a
        // host bind mount of a container: the same callers only.
        if !r.options.is_empty() && !caller.as_ref().is_some_and(|c| c.may_privileged) {
            let role = caller.as_ref().map(|c| c.role.as_str()).unwrap_or("unknown");
            return Err(Status::permission_denied(format!(
                "permission denied: role {role} may not create volume {} with driver options (a mount on the host; \
                 needs admin, or allow_privileged_operator = true in agentd's config)",
                r.name
            )));
        }
        let u = self
            .rt
            .create_volume(&r.name, &r.driver, r.options.into_iter().collect(), r.labels.into_iter().collect())
            .await
            .map_err(status)?;
        Ok(Response::new(info(u, None)))
    }

    async fn list(&self, req: Request<pb::ListVolumesRequest>) -> Result<Response<pb::ListVolumesResponse>, Status> {
        let with_size = req.into_inner().size;
        let volumes = self
            .rt
            .volume_list()
            .map_err(status)?
            .into_iter()
            .map(|u| {
                let size = with_size.then(|| self.rt.volume_size(&u.volume.name));
                info(u, size)
            })
            .collect();
        Ok(Response::new(pb::ListVolumesResponse { volumes }))
    }

    async fn inspect(&self, req: Request<pb::InspectVolumeRequest>) -> Result<Response<pb::VolumeInfo>, Status> {
        let u = self.rt.volume(&req.into_inner().name).map_err(status)?;
        Ok(Response::new(info(u, None)))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveVolumeRequest>,
    ) -> Result<Response<pb::RemoveVolumeResponse>, Status> {
        let r = req.into_inner();
        self.rt.remove_volume(&r.name, r.force).await.map_err(status)?;
        Ok(Response::new(pb::RemoveVolumeResponse {}))
    }

    async fn prune(&self, req: Request<pb::PruneVolumesRequest>) -> Result<Response<pb::PruneVolumesResponse>, Status> {
        let mut filter = PruneFilter::default();
        for f in req.into_inner().label_filters {
            if f.is_empty() {
                return Err(Status::invalid_argument("an empty label filter"));
            }
            filter.labels.push(match f.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (f, None),
            });
        }
        let (removed, bytes) = self.rt.prune_volumes(&filter).await.map_err(status)?;
        Ok(Response::new(pb::PruneVolumesResponse { removed, reclaimed_bytes: bytes }))
    }
}
