//! `run`/`create`'s flags (docker's names) and the resource limits shared with `update`
//! and `group create`; the rest of `run`'s flags are in run_flags.rs.

use crate::cli::Userns;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct CreateOpts {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables (KEY=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "FILE")]
    pub label_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Keep STDIN open
    #[arg(short = 'i', long = "interactive")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    pub tty: bool,
    /// Network: bridge (default), none, host, container:<name|id>, or a network's name
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Publish a container's port: [hostIP:]hostPort:containerPort[/tcp|udp] (bridge network)
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Nameserver for the container's /etc/resolv.conf
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a line to /etc/hosts (name:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Add a capability (CHOWN, NET_ADMIN, ALL)
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop a capability (ALL for all)
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Bind mount a host path: HOST:CONTAINER[:ro|rw][,rprivate|rslave|rshared|private|slave|shared],
    /// or a volume: NAME:CONTAINER[:ro|rw][,nocopy] (created on first use), or CONTAINER (anonymous volume)
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// Attach a mount: type=bind,source=HOST,target=PATH[,readonly][,bind-propagation=P] or
    /// type=volume,source=NAME,target=PATH[,readonly][,volume-nocopy][,volume-opt=K=V] or
    /// type=tmpfs,target=PATH[,tmpfs-size=N][,tmpfs-mode=M]
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount the volumes of a container: CONTAINER[:ro|rw]
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    /// Add a supplementary group (a name in the container's /etc/group, or a number)
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Security options: seccomp=unconfined, seccomp=PROFILE.json (docker's format),
    /// no-new-privileges[=true|false], systempaths=unconfined
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// All capabilities and host devices, no seccomp, writable /sys (admin role by default)
    #[arg(long)]
    pub privileged: bool,
    /// Add a host device: HOST[:CONTAINER[:PERMS]] (PERMS of rwm)
    #[arg(long)]
    pub device: Vec<String>,
    /// IPC namespace: private, host, or container:NAME (shares its /dev/shm too)
    #[arg(long)]
    pub ipc: Option<String>,
    /// PID namespace: private, host, or container:NAME (sees and signals its processes)
    #[arg(long)]
    pub pid: Option<String>,
    /// User namespace: host (the host's IDs), remap (root = a subordinate ID range from
    /// /etc/subuid, shared), auto (a range of its own) [default: the agent's]
    #[arg(long, value_enum, hide_possible_values = true)]
    pub userns: Option<Userns>,
    /// Set metadata (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub label: Vec<String>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Command to run to check health (run by sh -c in the container)
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) [default: 30s]
    #[arg(long = "health-interval", value_name = "DURATION")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) [default: 30s]
    #[arg(long = "health-timeout", value_name = "DURATION")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy [default: 3]
    #[arg(long = "health-retries", value_name = "N")]
    pub health_retries: Option<u32>,
    /// Start period for the container to initialize before failures count (ms|s|m|h) [default: 0s]
    #[arg(long = "health-start-period", value_name = "DURATION")]
    pub health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h) [default: the interval]
    #[arg(long = "health-start-interval", value_name = "DURATION")]
    pub health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Set a namespaced kernel parameter (KEY=VALUE)
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Run inside this group (its limits bound all members)
    #[arg(long)]
    pub group: Option<String>,
    #[command(flatten)]
    pub res: ResourceOpts,
    #[command(flatten)]
    pub cg: crate::cg_flags::CgroupFlags,
    #[command(flatten)]
    pub more: crate::run_flags::RunFlags,
    #[command(flatten)]
    pub logging: crate::log_flags::LogFlags,
    #[command(flatten)]
    pub net: crate::net_flags::NetFlags,
    /// Image, then the command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub image_and_cmd: Vec<String>,
}

/// Resource limits, with docker's flags.
#[derive(Args, Clone, Default)]
pub struct ResourceOpts {
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CFS quota in microseconds per period
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Relative CPU weight
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CPUs allowed (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of processes; -1 for unlimited
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block I/O weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u32>,
    /// OOM killer preference (0-1000 here)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
}
