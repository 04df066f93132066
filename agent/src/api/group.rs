//! GroupService: decode, validate, call the runtime, map errors.

use super::convert::{resources_to_pb, status, update_resources_from_pb};
use crate::runtime::{group_cgroup, GroupRecord, Runtime};
use agent_proto::v1 as pb;
use agent_proto::v1::group_service_server::GroupService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The GroupService implementation.
pub struct GroupApi {
    pub rt: Arc<Runtime>,
}

impl GroupApi {
    fn info(&self, g: &GroupRecord) -> Result<pb::GroupInfo, Status> {
        Ok(pb::GroupInfo {
            name: g.name.clone(),
            resources: Some(resources_to_pb(&g.resources)),
            labels: g.labels.clone().into_iter().collect(),
            members: self.rt.group_members(&g.name).map_err(status)?,
            created_at: g.created_at,
            cgroup: self.rt.cgroups().relative(&group_cgroup(&g.name)),
        })
    }
}

#[tonic::async_trait]
impl GroupService for GroupApi {
    async fn create(&self, req: Request<pb::CreateGroupRequest>) -> Result<Response<pb::GroupInfo>, Status> {
        let r = req.into_inner();
        let res = update_resources_from_pb(&r.resources.unwrap_or_default(), "a group").map_err(status)?;
        let g = self.rt.create_group(&r.name, res, r.labels.into_iter().collect()).await.map_err(status)?;
        Ok(Response::new(self.info(&g)?))
    }

    async fn list(&self, _req: Request<pb::ListGroupsRequest>) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let groups = self.rt.groups().map_err(status)?.iter().map(|g| self.info(g)).collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListGroupsResponse { groups }))
    }

    async fn inspect(&self, req: Request<pb::InspectGroupRequest>) -> Result<Response<pb::GroupInfo>, Status> {
        let g = self.rt.group(&req.into_inner().name).map_err(status)?;
        Ok(Response::new(self.info(&g)?))
    }

    async fn remove(&self, req: Request<pb::RemoveGroupRequest>) -> Result<Response<pb::RemoveGroupResponse>, Status> {
        self.rt.remove_group(&req.into_inner().name).await.map_err(status)?;
        Ok(Response::new(pb::RemoveGroupResponse {}))
    }
}
