//! Domain types for what schedulers read: a node's capacity, a container's state and
//! health, an event. Read from the protobuf messages once, here.

use agent_proto::v1 as pb;
use std::collections::BTreeMap;

/// CPUs and bytes of memory.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Amount {
    pub cpus: f64,
    pub memory: u64,
}

impl Amount {
    /// What is left of `self` after `used` (never negative).
    pub fn minus(&self, used: &Amount) -> Amount {
        Amount { cpus: (self.cpus - used.cpus).max(0.0), memory: self.memory.saturating_sub(used.memory) }
    }

    /// Whether `want` fits in `self`.
    pub fn fits(&self, want: &Amount) -> bool {
        want.cpus <= self.cpus + 1e-9 && want.memory <= self.memory
    }
}

/// A node, from `Info`: who it is and its capacity ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub instance: String,
    pub hostname: String,
    /// What the host has.
    pub capacity: Amount,
    /// What may be reserved: capacity minus the system reservation, times the overcommit.
    pub allocatable: Amount,
    /// What containers and groups reserve now.
    pub allocated: Amount,
    pub containers: u32,
    pub containers_running: u32,
    /// The agent's root filesystem is (nearly) full.
    pub root_full: bool,
}

impl NodeInfo {
    /// Allocatable minus allocated: what a new reservation may take.
    pub fn free(&self) -> Amount {
        self.allocatable.minus(&self.allocated)
    }
}

impl From<pb::InfoResponse> for NodeInfo {
    fn from(i: pb::InfoResponse) -> NodeInfo {
        NodeInfo {
            instance: i.instance,
            hostname: i.hostname,
            capacity: Amount { cpus: i.capacity_cpus, memory: i.capacity_memory },
            allocatable: Amount { cpus: i.allocatable_cpus, memory: i.allocatable_memory },
            allocated: Amount { cpus: i.allocated_cpus, memory: i.allocated_memory },
            containers: i.containers,
            containers_running: i.containers_running,
            root_full: i.root_full,
        }
    }
}

/// A container's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Removing,
    /// A state this library does not know (a newer agent).
    Unknown,
}

impl From<i32> for State {
    fn from(v: i32) -> State {
        match pb::ContainerState::try_from(v) {
            Ok(pb::ContainerState::Created) => State::Created,
            Ok(pb::ContainerState::Running) => State::Running,
            Ok(pb::ContainerState::Exited) => State::Exited,
            Ok(pb::ContainerState::Removing) => State::Removing,
            _ => State::Unknown,
        }
    }
}

/// A health check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    fn parse(s: &str) -> Option<Health> {
        match s {
            "starting" => Some(Health::Starting),
            "healthy" => Some(Health::Healthy),
            "unhealthy" => Some(Health::Unhealthy),
            _ => None,
        }
    }
}

/// A container as `Inspect`/`List` report it.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// As the user named it.
    pub image: String,
    pub state: State,
    pub paused: bool,
    /// Of the last run (when exited).
    pub exit_code: i32,
    /// None: no health check.
    pub health: Option<Health>,
    pub restart_count: u32,
    /// On the bridge network.
    pub ip_address: String,
    pub labels: BTreeMap<String, String>,
    /// The spec as the agent keeps it.
    pub spec: pb::ContainerSpec,
}

impl From<pb::ContainerInfo> for Container {
    fn from(c: pb::ContainerInfo) -> Container {
        let spec = c.spec.unwrap_or_default();
        Container {
            id: c.id,
            name: c.name,
            image: c.image,
            state: State::from(c.state),
            paused: c.paused,
            exit_code: c.exit_code,
            health: c.health.as_ref().and_then(|h| Health::parse(&h.status)),
            restart_count: c.restart_count,
            ip_address: c.ip_address,
            labels: spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            spec,
        }
    }
}

/// The answer to a create.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
    /// The container was there already, with this spec (an earlier attempt whose reply was
    /// lost, or an earlier run of the caller).
    pub existed: bool,
}

/// One entry of the agent's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The log's sequence number: unique and increasing on one agent, kept across its
    /// restarts.
    pub seq: u64,
    /// Unix nanoseconds.
    pub time: i64,
    /// `container`, `image`, `network`…
    pub kind: String,
    /// create, start, die, oom, restart, health_status, destroy…
    pub action: String,
    pub id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl From<pb::Event> for Event {
    fn from(e: pb::Event) -> Event {
        Event {
            seq: e.seq,
            time: e.time,
            kind: e.r#type,
            action: e.action,
            id: e.id,
            name: e.name,
            attributes: e.attributes.into_iter().collect(),
        }
    }
}

/// What [`crate::Client::wait`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The container is not running (its exit code is returned).
    Exit,
    /// Its health check passed; with `fail_unhealthy`, an unhealthy verdict ends the wait
    /// with FailedPrecondition.
    Healthy { fail_unhealthy: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_becomes_a_ledger() {
        let n = NodeInfo::from(pb::InfoResponse {
            allocatable_cpus: 4.0,
            allocatable_memory: 8 << 30,
            allocated_cpus: 1.5,
            allocated_memory: 10 << 30,
            ..Default::default()
        });
        assert_eq!(n.free(), Amount { cpus: 2.5, memory: 0 }, "over-allocated memory leaves none, not a wrap");
        assert!(n.free().fits(&Amount { cpus: 2.5, memory: 0 }));
        assert!(!n.free().fits(&Amount { cpus: 0.1, memory: 1 }));
    }

    #[test]
    fn states_and_health_are_read() {
        let c = Container::from(pb::ContainerInfo {
            state: pb::ContainerState::Running as i32,
            health: Some(pb::Health { status: "healthy".into(), ..Default::default() }),
            ..Default::default()
        });
        assert_eq!((c.state, c.health), (State::Running, Some(Health::Healthy)));
        assert_eq!(State::from(99), State::Unknown);
        assert_eq!(Container::from(pb::ContainerInfo::default()).health, None);
    }
}
