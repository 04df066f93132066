//! The lifecycle engine: container records and their state machine, driven by the API.
//! It asks `image/` for layers, `snapshot/` for the rootfs layout, `cgroups/` for the
//! cgroup, and the shim (`agentd shim`) to run the process.

pub mod build;
pub mod cp;
mod diff;
mod dns;
mod env;
mod events;
mod exec;
pub mod explain;
#[cfg(test)]
mod failure_tests;
#[cfg(test)]
mod fakes;
mod groups;
pub mod health;
pub mod host;
mod hostfiles;
mod ledger;
mod lifecycle;
mod limits;
mod logs;
mod logwatch;
mod monitor;
mod named_volumes;
mod names;
mod net;
pub mod net_opts;
mod pause;
mod peers;
mod pending;
mod pod_net;
#[cfg(test)]
mod pod_net_tests;
pub mod policy;
mod portforward;
mod prune;
mod records;
mod remove;
mod rename;
mod resources;
pub mod restart;
pub mod sandbox;
pub mod spec;
mod stop;
mod sweep;
mod top;
mod tty;
mod undo;
mod volumes;
pub use named_volumes::{PruneFilter, VolumeUse};

pub use diff::{Change, ChangeKind};
pub use dns::check_search_and_options;
pub use resources::system_cpu_ns;
pub use stop::parse_signal;
pub use top::Top;

pub use events::{Event, EventFilter};
pub use exec::{ExecInput, ExecIo, ExecRequest};
pub use groups::GroupRecord;
pub use ledger::{Amount, CapacityConfig, Ledger, Shortfall};
pub use logs::{LogOptions, OutputChunk};
pub use net::{NetConfig, NetworkDef, NetworkRecord};

use crate::cgroups::{CgroupError, CgroupOps};
use crate::image::{ImageError, ImageStore};
use crate::isolation::spec::NetMode;
use crate::store::{Kind, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// Where the agent keeps its state and how it names host objects.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Prefix of every host object (cgroup parent, …).
    pub instance: String,
    /// Persistent state: metadata, images, containers.
    pub root: PathBuf,
    /// Sockets and other runtime files.
    pub run_dir: PathBuf,
    /// The capacity ledger's settings.
    pub capacity: ledger::CapacityConfig,
    /// The operator's additions to the sysctl allowlist.
    pub sysctl: crate::isolation::sysctl::SysctlPolicy,
    /// The default bridge network.
    pub network: NetConfig,
    /// `--userns`: subordinate ID ranges and the default mode.
    pub userns: crate::isolation::userns::UsernsConfig,
    /// Pod networks from CNI plugins (`[cri] cni_conf_dir` / `cni_bin_dir`); `None`: our bridge.
    pub cni: Option<crate::network::cni::Cni>,
    /// `[logs]`: the log driver and rotation of containers that give none.
    pub logs: crate::logfile::LogDefaults,
}

/// What a user asks for when creating a container (free of protobuf types).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Vec<String>,
    /// `Some` replaces the image's entrypoint (even with an empty list).
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub stdin_open: bool,
    pub network: String,
    pub labels: BTreeMap<String, String>,
    pub auto_remove: bool,
    pub init: bool,
    #[serde(default)]
    pub resources: crate::cgroups::Resources,
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    /// The group (pod-like parent cgroup) this container belongs to, if any.
    #[serde(default)]
    pub group: String,
    /// `-p` specs as given.
    #[serde(default)]
    pub ports: Vec<String>,
    /// `--dns` nameservers.
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--dns-search`: search domains of its resolv.conf (empty: the host's).
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options (empty: the host's).
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host name:ip`.
    #[serde(default)]
    pub add_hosts: Vec<String>,
    /// `-P`.
    #[serde(default)]
    pub publish_all: bool,
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub cap_drop: Vec<String>,
    /// `-v HOST:CONTAINER[:ro]`.
    #[serde(default, deserialize_with = "spec::volumes_compat")]
    pub volumes: Vec<crate::isolation::spec::Volume>,
    /// `-v NAME:/path`, `-v /path` (anonymous), `--mount type=volume`.
    #[serde(default)]
    pub named_volumes: Vec<spec::NamedVolume>,
    /// `--volumes-from C[:ro|rw]` as asked; create resolves them into the two lists above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// `--tmpfs PATH[:OPTIONS]`.
    #[serde(default, deserialize_with = "spec::tmpfs_compat")]
    pub tmpfs: Vec<spec::TmpfsMount>,
    #[serde(default)]
    pub read_only: bool,
    /// `--security-opt` (`seccomp=unconfined|{profile}`, `no-new-privileges`), typed.
    #[serde(default, rename = "security_opt", deserialize_with = "spec::security_compat")]
    pub security: spec::Security,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--device HOST[:CONTAINER[:PERMS]]`.
    #[serde(default, deserialize_with = "spec::devices_compat")]
    pub devices: Vec<spec::DeviceRequest>,
    /// `--userns`: `host`, `remap` or `auto` (empty: the agent's default).
    #[serde(default)]
    pub userns: String,
    /// `--ipc`: `""` (private), `host`, or `container:<id>`.
    #[serde(default)]
    pub ipc: String,
    /// `--pid`: `""` (private), `host`, or `container:<id>`.
    #[serde(default)]
    pub pid: String,
    /// Unstructured metadata (the CRI's annotations and our CRI bookkeeping).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// A second log in the CRI format at this host path (kubelet's), besides our own.
    #[serde(default)]
    pub log_path: String,
    /// A pod sandbox's infra process: agentd's own pause (with no `image`: the built-in
    /// empty one), which only waits for SIGTERM and reaps what the pod's processes leave.
    #[serde(default)]
    pub pause: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: restart::RestartPolicy,
    /// `--health-*` / `--no-healthcheck` as given; after create, the check that applies
    /// (merged with the image's `HEALTHCHECK`), `None` when there is none.
    #[serde(default)]
    pub health: Option<health::HealthConfig>,
    /// `--group-add` (the CRI's supplemental_groups): numbers or names in the container's
    /// /etc/group, added to the user's supplementary groups.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// The CRI's supplemental_groups_policy Strict: the groups the image's /etc/group gives
    /// the user are not added.
    #[serde(default)]
    pub strict_groups: bool,
    /// `--domainname`.
    #[serde(default)]
    pub domainname: String,
    /// `--stop-signal` (validated; empty: the image's, else SIGTERM).
    #[serde(default)]
    pub stop_signal: String,
    /// `--stop-timeout`: seconds a `stop` without its own timeout waits.
    #[serde(default)]
    pub stop_timeout: Option<u32>,
    /// `--shm-size` in bytes (0: 64 MiB).
    #[serde(default)]
    pub shm_size: u64,
    /// `--ulimit`.
    #[serde(default)]
    pub ulimits: Vec<crate::isolation::spec::Rlimit>,
    /// `--network-alias`: names its peers resolve it by, besides its name.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--expose`: ports (`80/tcp`) exposed besides the image's (`-P` publishes them too).
    #[serde(default)]
    pub expose: Vec<String>,
    /// `--log-driver` and `--log-opt` (the agent's `[logs]` defaults filled in at create).
    #[serde(default)]
    pub log_config: crate::logfile::LogConfig,
    /// `--ip`, `--ip6`, `--mac-address`, `--uts`, `--storage-opt` (checked at create: `net_opts.rs`).
    #[serde(default)]
    pub net_opts: net_opts::NetOpts,
    /// `--device-cgroup-rule`: device cgroup rules after the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<crate::isolation::devices::DeviceRule>,
    /// `--cgroup-parent` (validated): relative to the instance's parent, or absolute.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cgroup_parent: String,
    /// `--cgroupns`.
    #[serde(default)]
    pub cgroupns: CgroupNs,
}

/// `--cgroupns`: whether the container gets a cgroup namespace of its own (rooted at its
/// cgroup, so /proc/self/cgroup shows `/`) or sees the host's.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CgroupNs {
    /// Ours by default on every layout (docker's is `host` on v1, `private` on v2).
    #[default]
    Private,
    /// The host's: admin only by default (as `--pid host`).
    Host,
}

impl CgroupNs {
    /// `private` or `host`; empty: the default.
    pub fn parse(s: &str) -> std::result::Result<CgroupNs, RuntimeError> {
        match s {
            "" | "private" => Ok(CgroupNs::Private),
            "host" => Ok(CgroupNs::Host),
            _ => Err(RuntimeError::InvalidArgument(format!("invalid --cgroupns {s:?}: use private or host"))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CgroupNs::Private => "private",
            CgroupNs::Host => "host",
        }
    }
}

impl ContainerSpec {
    /// No seccomp filter: `--privileged` or `--security-opt seccomp=unconfined`.
    pub fn seccomp_unconfined(&self) -> bool {
        self.privileged || self.security.seccomp == spec::Seccomp::Unconfined
    }

    /// The JSON of a custom seccomp profile (`--security-opt seccomp={…}`), if any.
    pub fn seccomp_profile(&self) -> Option<&str> {
        if self.privileged {
            return None;
        }
        self.security.seccomp.profile()
    }

    /// Whether the container's processes get no_new_privs.
    pub fn no_new_privs(&self) -> bool {
        !self.security.new_privileges
    }

    /// The paths masked in the container (none when privileged).
    pub fn masked_paths(&self) -> Vec<String> {
        match (&self.security.masked_paths, self.privileged) {
            (_, true) => vec![],
            (Some(p), _) => p.clone(),
            (None, _) => crate::isolation::mounts::MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The paths made read-only in the container (none when privileged).
    pub fn readonly_paths(&self) -> Vec<String> {
        match (&self.security.readonly_paths, self.privileged) {
            (_, true) => vec![],
            (Some(p), _) => p.clone(),
            (None, _) => crate::isolation::mounts::READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
        }
    }
}

/// A container's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Created,
    Running,
    Exited,
    Removing,
}

/// A container as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub spec: ContainerSpec,
    /// Diff IDs of the image's layers, bottom first (kept alive while the container exists).
    pub layers: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    pub network: NetMode,
    pub stop_signal: String,
    pub state: State,
    pub pid: i32,
    pub pid_start: u64,
    pub shim_pid: i32,
    pub shim_start: u64,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    /// Size of the log file when the current run started (attach reads from here).
    pub log_offset: u64,
    pub restart_count: u32,
    /// Stopped or killed by a user since its last start: its restart policy holds off.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Restarts in a row that each ran under 10 s (the back-off's exponent).
    #[serde(default)]
    pub rapid_restarts: u32,
    /// The health check's state in the current run (`None`: no check, or not running).
    #[serde(default)]
    pub health: Option<health::Health>,
    /// The leased address on the bridge network.
    #[serde(default)]
    pub ip: String,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<crate::network::PortMap>,
    /// Networks connected after create: (network, address).
    #[serde(default)]
    pub extra_networks: Vec<(String, String)>,
    /// The user namespace's ID ranges (`--userns remap|auto`), fixed at create.
    #[serde(default)]
    pub userns: Option<UsernsLease>,
    /// Frozen by `pause` (its state stays Running, as docker's `State.Paused`).
    #[serde(default)]
    pub paused: bool,
    /// Set with the Removing state by `rm -v` (or `--rm`): a removal finished after a
    /// crash removes the anonymous volumes too.
    #[serde(default)]
    pub remove_volumes: bool,
    /// The first component of `--cgroup-parent` that did not exist at create: the
    /// container's start makes it and its removal removes it (one that existed stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_parent_made: Option<String>,
}

/// A container's share of the subordinate IDs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UsernsLease {
    /// 0 for `remap` (shared), 1… for `auto` (one container each).
    pub slot: u32,
    pub map: crate::isolation::userns::IdMapping,
}

impl ContainerRecord {
    /// Every bridge network the container is on, with its address there.
    pub fn bridge_networks(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        if self.network == crate::isolation::spec::NetMode::Bridge {
            v.push((self.spec.network.clone(), self.ip.clone()));
        }
        v.extend(self.extra_networks.iter().cloned());
        v
    }

    /// The shim's own cgroup below the instance's parent (no limits): out of the agent's
    /// cgroup, so a service manager or a pod runtime that kills the agent's cgroup does
    /// not take the containers' shims with it.
    pub fn shim_cg(&self) -> String {
        format!("shim-{}", self.id)
    }

    /// The container's cgroup below the instance's parent: `<id>`, `group-<g>/<id>` for
    /// a member of a group, `<parent>/<id>` with `--cgroup-parent` (absolute: from each
    /// hierarchy's root).
    pub fn cg(&self) -> String {
        if !self.spec.cgroup_parent.is_empty() {
            format!("{}/{}", self.spec.cgroup_parent, self.id)
        } else if self.spec.group.is_empty() {
            self.id.clone()
        } else {
            format!("{}/{}", group_cgroup(&self.spec.group), self.id)
        }
    }
}

/// The cgroup of a group below the instance's parent.
pub fn group_cgroup(name: &str) -> String {
    format!("group-{name}")
}

/// What watchers of a container see change.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Created,
    Running { log_offset: u64 },
    Exited { code: i32 },
    Removed { code: i32 },
}

/// Errors of the runtime, each mapped to one gRPC code by the API layer.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// The capacity ledger refused a reservation (ResourceExhausted with the shortfall).
    #[error("{0}")]
    Insufficient(Box<ledger::Shortfall>),
    /// A path that does not exist in a container (cp), with docker's message.
    #[error("{0}")]
    PathNotFound(String),
    /// The process did not start; the record holds `code` as its exit code.
    #[error("{msg}")]
    StartFailed { code: i32, msg: String },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Volume(#[from] crate::volume::VolumeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what} {path}: {err}")]
    Io { what: &'static str, path: PathBuf, err: std::io::Error },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Per-container live state: a watch of its phase and a lock serializing lifecycle verbs.
struct Live {
    phase: watch::Sender<Phase>,
    op: tokio::sync::Mutex<()>,
}

/// The lifecycle engine.
pub struct Runtime {
    cfg: RuntimeConfig,
    store: Arc<Store>,
    images: Arc<ImageStore>,
    cgroups: Arc<dyn CgroupOps>,
    /// The host seams (firewall, links, shim launcher; cgroups above).
    host: host::Host,
    live: Mutex<HashMap<String, Arc<Live>>>,
    /// Serializes name allocation in create.
    create_lock: tokio::sync::Mutex<()>,
    /// Named volumes (their directories and records).
    volumes: crate::volume::Volumes,
    /// Live followers of the event log.
    events: tokio::sync::broadcast::Sender<Event>,
    /// Host object names of the network.
    net_names: crate::network::Names,
    /// The default bridge network's subnet (configured, kept, or chosen from the pools).
    default_subnet: crate::network::Subnet,
    /// Bridges known to be set up in this agent run.
    net_ready: Mutex<std::collections::HashSet<String>>,
    /// The firewall table as this agent run last applied it (`Some("")`: deleted; `None`:
    /// unknown, so the next reconcile applies). Held while the table is computed and
    /// applied, so applies never interleave.
    firewall: Mutex<Option<String>>,
    /// Held while /etc/hosts files are written (a starting container's own file, or a pass of
    /// `peers.rs`): each reads the records under it, so the last to run has seen every change.
    hosts: Mutex<()>,
    /// Networks whose members' /etc/hosts are due, and the thread's caches (`peers.rs`).
    peers: Arc<peers::Peers>,
    /// Containers being started: the firewall counts them as running (their record says so
    /// only once the shim reports), so a concurrent reconcile cannot drop their ports.
    starting: Mutex<std::collections::HashSet<String>>,
    /// Exits the store has not accepted yet (`pending.rs`), and whether their recorder runs.
    pending: Mutex<HashMap<String, pending::Pending>>,
    recorder: std::sync::atomic::AtomicBool,
    /// The container records in memory, written through to the store (`records.rs`).
    records: records::Records,
    /// Whether this kernel builds idmapped overlays (probed on the first `--userns` start).
    idmap_probe: tokio::sync::OnceCell<std::result::Result<(), String>>,
}

impl Runtime {
    /// Opens the runtime over its store and re-adopts containers that were running.
    pub async fn open(
        cfg: RuntimeConfig,
        store: Arc<Store>,
        images: Arc<ImageStore>,
        host: host::Host,
    ) -> Result<Arc<Runtime>> {
        let dir = cfg.root.join("containers");
        std::fs::create_dir_all(&dir).map_err(|err| RuntimeError::Io { what: "create", path: dir.clone(), err })?;
        let cfg_instance = cfg.instance.clone();
        let volumes = crate::volume::Volumes::new(&cfg.root, Arc::clone(&store));
        let default_subnet = net::resolve_default_subnet(&cfg.network, &store, host.links.as_ref())?;
        let rt = Arc::new(Runtime {
            cfg,
            store,
            images,
            cgroups: Arc::clone(&host.cgroups),
            host,
            live: Mutex::new(HashMap::new()),
            create_lock: tokio::sync::Mutex::new(()),
            volumes,
            events: tokio::sync::broadcast::channel(1024).0,
            net_names: crate::network::Names::for_instance(&cfg_instance),
            default_subnet,
            net_ready: Mutex::new(std::collections::HashSet::new()),
            firewall: Mutex::new(None),
            hosts: Mutex::new(()),
            peers: Arc::new(peers::Peers::new()),
            starting: Mutex::new(std::collections::HashSet::new()),
            idmap_probe: tokio::sync::OnceCell::new(),
            pending: Mutex::new(HashMap::new()),
            recorder: std::sync::atomic::AtomicBool::new(false),
            records: records::Records::new(),
        });
        peers::spawn(&rt);
        let weak = Arc::downgrade(&rt);
        rt.images.set_in_use_source(Box::new(move || match weak.upgrade()?.container_images() {
            Ok(u) => Some(u),
            Err(e) => {
                tracing::warn!(error = %e, "reading the containers' image layers");
                None
            }
        }));
        rt.recover().await?;
        if rt.cfg.network.bridge_subnet.is_empty() {
            if let Err(e) = rt.prepare_default_bridge() {
                tracing::warn!(error = %e, "default bridge network not set up at start; bridge containers will fail");
            }
        }
        let maps: Vec<_> = rt.list()?.into_iter().filter_map(|c| c.userns.map(|l| l.map)).collect();
        crate::snapshot::shift::sweep(&rt.cfg.root, &maps);
        Ok(rt)
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    /// The image store.
    pub fn images(&self) -> &Arc<ImageStore> {
        &self.images
    }

    /// The cgroup manager.
    pub fn cgroups(&self) -> &dyn CgroupOps {
        self.cgroups.as_ref()
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    fn live(&self, id: &str) -> Arc<Live> {
        let mut m = self.live.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(id.to_string())
            .or_insert_with(|| {
                Arc::new(Live { phase: watch::channel(Phase::Created).0, op: tokio::sync::Mutex::new(()) })
            })
            .clone()
    }

    fn forget(&self, id: &str) {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.peers.forget(id);
    }

    fn save(&self, rec: &ContainerRecord) -> Result<()> {
        self.records.write(&rec.id, Some(rec), || Ok(self.store.put(Kind::Container, &rec.id, rec)?))?;
        self.settled(&rec.id);
        Ok(())
    }

    /// A container's record (with its exit when that is still pending).
    fn load(&self, id: &str) -> Result<ContainerRecord> {
        if let Some(r) = self.pending_record(id) {
            return Ok(r);
        }
        self.records.read(&self.store, |m| m.get(id).cloned())?.ok_or_else(|| RuntimeError::NotFound(id.to_string()))
    }

    /// Every container record, newest first (with the exits still pending).
    /// Runs `f` over every record (pending exits applied) without copying them: for the
    /// questions about all containers that calls ask per container (a free name, the
    /// ledger, ports, who joined a namespace), which cloning every record made O(N) copies
    /// each, and `List` (converted in place, newest first, as `list()` orders them). `f` runs
    /// under the records' lock: it must not call back into the runtime's records.
    pub fn scan<R>(&self, f: impl FnOnce(&mut dyn Iterator<Item = &ContainerRecord>) -> R) -> Result<R> {
        let pending = self.pending_records();
        self.records.read(&self.store, |m| {
            let mut it = m.values().map(|r| pending.get(&r.id).unwrap_or(r));
            f(&mut it)
        })
    }

    pub fn list(&self) -> Result<Vec<ContainerRecord>> {
        let mut v: Vec<ContainerRecord> = self.records.read(&self.store, |m| m.values().cloned().collect())?;
        for r in v.iter_mut() {
            if let Some(p) = self.pending_record(&r.id) {
                *r = p;
            }
        }
        v.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(v)
    }

    /// Finds a container by full ID, name, or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<ContainerRecord> {
        if name.is_empty() {
            return Err(RuntimeError::InvalidArgument("a container ID or name is required".into()));
        }
        let bare = name.trim_start_matches('/');
        let found = self.records.read(&self.store, |m| {
            if let Some(c) = m.get(name).or_else(|| m.values().find(|c| c.name == bare)) {
                return Ok(c.id.clone());
            }
            let mut hits = m.keys().filter(|id| id.starts_with(name));
            match (hits.next(), hits.count()) {
                (Some(id), 0) => Ok(id.clone()),
                (None, _) => Err(RuntimeError::NotFound(name.to_string())),
                (Some(_), more) => Err(RuntimeError::InvalidArgument(format!(
                    "container ID prefix {name:?} matches {} containers; give more of it",
                    more + 1
                ))),
            }
        })??;
        self.load(&found)
    }

    /// Inspects one container.
    pub fn inspect(&self, name: &str) -> Result<ContainerRecord> {
        self.resolve(name)
    }

    /// Subscribes to a container's phase.
    fn watch(&self, id: &str) -> watch::Receiver<Phase> {
        self.live(id).phase.subscribe()
    }

    /// The cgroup path of a container relative to each hierarchy root.
    pub fn cgroup_path(&self, rec: &ContainerRecord) -> String {
        self.cgroups.relative(&rec.cg())
    }

    /// Counts of containers: (all, running, stopped).
    pub fn counts(&self) -> Result<(u32, u32, u32)> {
        let (all, running) =
            self.scan(|it| it.fold((0u32, 0u32), |(a, r), c| (a + 1, r + u32::from(c.state == State::Running))))?;
        Ok((all, running, all - running))
    }
}
