//! `agent-client`: a client library of node-agent for schedulers and fleet automation.
//!
//! - [`Client::from_context`] connects like `agentctl --context NODE` (the same contexts
//!   file, unix socket or TCP + mutual TLS); [`Client::connect`] takes a [`Target`].
//! - Calls fail with [`Error`], an enum of the agent's codes with their facts parsed
//!   ([`Shortfall`] of a refused reservation, the exit code of a failed start).
//! - Calls that are safe to repeat are repeated while the agent is unreachable, with
//!   back-off ([`RetryPolicy`]); [`Client::create`] with a name is one of them: a create
//!   whose reply was lost finds its container on the next attempt.
//! - [`Client::events`] is the agent's event log as a stream that resumes after its sequence
//!   number when the connection drops or the agent restarts: every event once.
//!
//! ```no_run
//! # async fn f() -> Result<(), agent_client::Error> {
//! use agent_client::{Client, ContainerSpec, WaitFor};
//! let node = Client::from_context(Some("node1")).await?;
//! println!("free: {:?}", node.info().await?.free());
//! let spec = ContainerSpec { name: "web-1".into(), image: "local/busybox".into(), ..Default::default() };
//! let c = node.create(spec).await?;
//! node.start(&c.id).await?;
//! node.wait(&c.id, WaitFor::Healthy { fail_unhealthy: true }).await?;
//! # Ok(()) }
//! ```

mod containers;
pub mod context;
mod error;
mod events;
pub mod retry;
mod target;
mod types;

pub use agent_proto::v1 as pb;
pub use agent_proto::v1::{ContainerSpec, HealthConfig, Resources};
pub use containers::{spec_hash, SPEC_HASH_LABEL};
pub use error::{parse_shortfall, Error, Shortfall, EXIT_CODE_KEY};
pub use events::{EventStream, EventsOptions};
pub use retry::{Idempotency, RetryPolicy};
pub use target::{Overrides, Target, TargetError};
pub use types::{Amount, Container, Created, Event, Health, NodeInfo, State, WaitFor};

use agent_proto::v1::container_service_client::ContainerServiceClient;
use agent_proto::v1::system_service_client::SystemServiceClient;
use tonic::transport::Channel;

/// Largest message a client sends or accepts (inspect of many containers, big specs).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// A connection to one agent. Cheap to clone (one HTTP/2 connection, shared); it
/// reconnects by itself after the agent restarts.
#[derive(Clone)]
pub struct Client {
    host: String,
    retry: RetryPolicy,
    channel: Channel,
}

impl Client {
    /// Connects to `target`, trying again while the agent is unreachable (the default
    /// [`RetryPolicy`]).
    pub async fn connect(target: &Target) -> Result<Client, Error> {
        Client::connect_with(target, RetryPolicy::default()).await
    }

    /// Connects with `retry` as the policy of the connection and of every call. Connected
    /// means the agent answered (its Version); each attempt gets `retry.connect_timeout`,
    /// and a node that never answers is `Error::Unavailable` naming its address once the
    /// policy gives up.
    pub async fn connect_with(target: &Target, retry: RetryPolicy) -> Result<Client, Error> {
        let host = target.host.as_str();
        let channel = retry
            .run(Idempotency::Idempotent, |_| async move {
                let attempt = async {
                    let ch = agent_proto::connect_with(host, target.tls.as_ref()).await.map_err(Error::from)?;
                    // A listener that accepts and never speaks (a wedged node) must not pass.
                    match SystemServiceClient::new(ch.clone()).version(pb::VersionRequest {}).await {
                        Err(s) if Error::from(s.clone()).is_unavailable() => {
                            Err(Error::Unavailable(format!("cannot reach the agent at {host}: {}", Error::from(s))))
                        }
                        // Any answer, even a refusal, is the agent's.
                        _ => Ok(ch),
                    }
                };
                tokio::time::timeout(retry.connect_timeout, attempt).await.unwrap_or_else(|_| {
                    Err(Error::Unavailable(format!(
                        "cannot connect to the agent at {host}: no answer within {:?}",
                        retry.connect_timeout
                    )))
                })
            })
            .await?;
        Ok(Client { host: target.host.clone(), retry, channel })
    }

    /// Connects to the context `name` of `agentctl`'s contexts file (None: its current
    /// context, else the local socket).
    pub async fn from_context(name: Option<&str>) -> Result<Client, Error> {
        Client::connect(&Target::from_context(name)?).await
    }

    /// The agent's address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The retry policy of this client's calls.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// This client with another retry policy (`RetryPolicy::none()`: every call once).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Client {
        self.retry = retry;
        self
    }

    /// The channel, for the services this library does not wrap (images, networks…).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub(crate) fn containers(&self) -> ContainerServiceClient<Channel> {
        ContainerServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    pub(crate) fn system(&self) -> SystemServiceClient<Channel> {
        SystemServiceClient::new(self.channel.clone())
    }

    /// The node: its identity and capacity ledger (allocatable, allocated).
    pub async fn info(&self) -> Result<NodeInfo, Error> {
        self.retry
            .run(Idempotency::Idempotent, |_| async move {
                Ok(self.system().info(pb::InfoRequest {}).await?.into_inner().into())
            })
            .await
    }

    /// The agent's version.
    pub async fn version(&self) -> Result<pb::VersionResponse, Error> {
        self.retry
            .run(Idempotency::Idempotent, |_| async move {
                Ok(self.system().version(pb::VersionRequest {}).await?.into_inner())
            })
            .await
    }
}
