//! NetworkService: decode, validate, call the runtime, map errors.

use super::convert::status;
use crate::runtime::{NetworkDef, Runtime};
use agent_proto::v1 as pb;
use agent_proto::v1::network_service_server::NetworkService;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The NetworkService implementation.
pub struct NetworkApi {
    pub rt: Arc<Runtime>,
}

impl NetworkApi {
    fn info(
        &self,
        d: &NetworkDef,
        labels: std::collections::BTreeMap<String, String>,
    ) -> Result<pb::NetworkInfo, Status> {
        Ok(pb::NetworkInfo {
            name: d.name.clone(),
            subnet: d.subnet.to_string(),
            gateway: d.subnet.gateway().to_string(),
            internal: d.internal,
            bridge: d.bridge.clone(),
            labels: labels.into_iter().collect(),
            containers: self.rt.network_members(&d.name).map_err(status)?.into_iter().map(|c| c.id).collect(),
        })
    }
}

#[tonic::async_trait]
impl NetworkService for NetworkApi {
    async fn create(&self, req: Request<pb::CreateNetworkRequest>) -> Result<Response<pb::NetworkInfo>, Status> {
        let r = req.into_inner();
        let rec = self
            .rt
            .create_network(&r.name, &r.subnet, r.internal, r.labels.into_iter().collect())
            .await
            .map_err(status)?;
        let d = self.rt.network_def(&rec.name).map_err(status)?;
        Ok(Response::new(self.info(&d, rec.labels)?))
    }

    async fn list(&self, _req: Request<pb::ListNetworksRequest>) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let networks = self
            .rt
            .networks()
            .map_err(status)?
            .into_iter()
            .map(|(d, r)| self.info(&d, r.map(|r| r.labels).unwrap_or_default()))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn inspect(&self, req: Request<pb::InspectNetworkRequest>) -> Result<Response<pb::NetworkInfo>, Status> {
        let name = req.into_inner().name;
        let (d, r) = self
            .rt
            .networks()
            .map_err(status)?
            .into_iter()
            .find(|(d, _)| d.name == name)
            .ok_or_else(|| Status::not_found(format!("no such network: {name}")))?;
        Ok(Response::new(self.info(&d, r.map(|r| r.labels).unwrap_or_default())?))
    }

    async fn connect_container(
        &self,
        req: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectResponse>, Status> {
        let r = req.into_inner();
        self.rt.connect(&r.container, &r.network).await.map_err(status)?;
        Ok(Response::new(pb::ConnectResponse {}))
    }

    async fn disconnect_container(
        &self,
        req: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::DisconnectResponse>, Status> {
        let r = req.into_inner();
        self.rt.disconnect(&r.container, &r.network).await.map_err(status)?;
        Ok(Response::new(pb::DisconnectResponse {}))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneNetworksRequest>,
    ) -> Result<Response<pb::PruneNetworksResponse>, Status> {
        let filter = super::convert::prune_filter_from_pb(req.into_inner().filters).map_err(status)?;
        let deleted = self.rt.prune_networks(&filter).await.map_err(status)?;
        Ok(Response::new(pb::PruneNetworksResponse { deleted }))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveNetworkRequest>,
    ) -> Result<Response<pb::RemoveNetworkResponse>, Status> {
        self.rt.remove_network(&req.into_inner().name).await.map_err(status)?;
        Ok(Response::new(pb::RemoveNetworkResponse {}))
    }
}
