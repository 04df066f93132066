//! agentd: the node agent. A daemon that runs isolated containers (namespaces, cgroups,
//! overlayfs) for remote schedulers over gRPC, and, re-executed, each container's shim.

pub mod api;
pub mod auth;
pub mod build;
pub mod cgroups;
pub mod config;
pub mod crash;
pub mod daemon;
pub mod fuzzing;
pub mod image;
pub mod isolation;
pub mod logfile;
pub mod metrics;
pub mod network;
pub mod nofile;
pub mod runtime;
pub mod shim;
pub mod snapshot;
pub mod space;
pub mod store;
pub mod transport;
pub mod volume;
