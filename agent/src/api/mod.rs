//! The gRPC API: thin services over the runtime, plus health and reflection.

pub mod container;
pub mod convert;
pub mod cri;
pub mod details;
pub mod explain;
pub mod followers;
pub mod group;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;

use crate::auth::layer::{AuthLayer, AuthState};
use crate::metrics::layer::MetricsLayer;
use crate::runtime::Runtime;
use agent_proto::v1::container_service_server::ContainerServiceServer;
use agent_proto::v1::group_service_server::GroupServiceServer;
use agent_proto::v1::image_service_server::ImageServiceServer;
use agent_proto::v1::network_service_server::NetworkServiceServer;
use agent_proto::v1::system_service_server::SystemServiceServer;
use agent_proto::v1::volume_service_server::VolumeServiceServer;
use std::sync::Arc;
use tonic::transport::server::Router;
use tower::layer::util::{Identity, Stack};

/// The health service's name for the agent's root filesystem: NOT_SERVING while it is
/// full (`Runtime::root_space`), checked every few seconds.
pub const ROOT_HEALTH: &str = "agentd.root";

fn watch_root(health: tonic_health::server::HealthReporter, rt: Arc<Runtime>) {
    use tonic_health::ServingStatus;
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let (free, full) = rt.root_space();
            if last != Some(full) {
                if full {
                    tracing::warn!(root = %rt.config().root.display(), free, pending = rt.exits_pending(), "the agent's root is full");
                } else if last.is_some() {
                    tracing::info!(root = %rt.config().root.display(), free, "the agent's root has room again");
                }
                let st = if full { ServingStatus::NotServing } else { ServingStatus::Serving };
                health.set_service_status(ROOT_HEALTH, st).await;
                last = Some(full);
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
    });
}

/// Builds the router with every service of the agent.
pub async fn router(
    rt: Arc<Runtime>,
    auth: Arc<AuthState>,
    puller: Arc<crate::image::pull::Puller>,
    cri_cfg: cri::CriConfig,
    streams: Arc<cri::stream::StreamServer>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    clients: &followers::Clients,
) -> anyhow::Result<Router<Stack<AuthLayer, Stack<MetricsLayer, Identity>>>> {
    // Largest message received or sent, the same for every service (import chunks, exec
    // output, the CRI's lists).
    let (limits, followers) = (&clients.limits, Arc::clone(&clients.followers));
    let max = limits.max_message_size;
    let (health, health_svc) = tonic_health::server::health_reporter();
    health.set_serving::<ContainerServiceServer<container::ContainerApi>>().await;
    health.set_serving::<ImageServiceServer<image::ImageApi>>().await;
    health.set_serving::<SystemServiceServer<system::SystemApi>>().await;
    health.set_serving::<GroupServiceServer<group::GroupApi>>().await;
    health.set_serving::<NetworkServiceServer<network::NetworkApi>>().await;
    health.set_serving::<VolumeServiceServer<volume::VolumeApi>>().await;
    watch_root(health.clone(), Arc::clone(&rt));
    let refl_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(agent_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let refl_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(agent_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    Ok(limits
        .server()
        // Outermost: refused calls are timed and counted too.
        .layer(MetricsLayer::new(metrics))
        .layer(AuthLayer::new(auth))
        .add_service(health_svc)
        .add_service(refl_v1)
        .add_service(refl_v1alpha)
        .add_service(
            ContainerServiceServer::new(container::ContainerApi {
                rt: Arc::clone(&rt),
                followers: Arc::clone(&followers),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            ImageServiceServer::new(image::ImageApi { rt: Arc::clone(&rt), puller: Arc::clone(&puller) })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            agent_proto::cri::runtime_service_server::RuntimeServiceServer::new(cri::CriRuntime {
                rt: Arc::clone(&rt),
                cfg: cri_cfg,
                streams,
                followers: Arc::clone(&followers),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            agent_proto::cri::image_service_server::ImageServiceServer::new(cri::CriImages {
                rt: Arc::clone(&rt),
                puller: Arc::clone(&puller),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            GroupServiceServer::new(group::GroupApi { rt: Arc::clone(&rt) })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            NetworkServiceServer::new(network::NetworkApi { rt: Arc::clone(&rt) })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            VolumeServiceServer::new(volume::VolumeApi { rt: Arc::clone(&rt) })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            SystemServiceServer::new(system::SystemApi { rt, followers })
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        ))
}
