//! The command line: clap's types for every verb and flag, docker's names.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `--format`: a table for people, one JSON object a line (or one document) for scripts,
/// or a Go template as docker's (`{{.Names}}`, `table {{.ID}}\t{{.Status}}`: see
/// template.rs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    /// The template's source. `&'static` keeps `Format` `Copy` for its many users: one
    /// string per process, leaked once when the command line is parsed.
    Template(&'static str),
}

impl std::str::FromStr for Format {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Format, Self::Err> {
        Ok(match s {
            "" | "table" => Format::Table,
            "json" => Format::Json,
            t => Format::Template(Box::leak(t.to_string().into_boxed_str())),
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::Table => f.write_str("table"),
            Format::Json => f.write_str("json"),
            Format::Template(t) => f.write_str(t),
        }
    }
}

/// The role a client certificate carries in its OU (what agentd maps by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Admin,
    Operator,
    Viewer,
}

/// `--userns`: which user namespace a container gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Userns {
    Host,
    Remap,
    Auto,
}

/// The name of a value as it is written on the command line (and sent to the agent).
pub fn name(v: &impl ValueEnum) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

#[derive(Parser)]
#[command(name = "agentctl", version, about = "Command line for node-agent (docker-compatible verbs)")]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnOpts,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Which agent to talk to, and how (every verb takes these).
#[derive(Args, Clone, Default)]
pub struct ConnOpts {
    /// The agent to talk to: unix:///path/agentd.sock or tcp://host:port [default: the current
    /// context's, else unix:///run/agentd/agentd.sock]
    #[arg(long, short = 'H', env = "AGENT_HOST", global = true)]
    pub host: Option<String>,
    /// Use this context (see `agentctl context`); several (a,b,c) or `all` run the verb on
    /// every one of those nodes at once
    #[arg(long, env = "AGENT_CONTEXT", global = true)]
    pub context: Option<String>,
    /// With several contexts: how long each node may take, seconds
    #[arg(long = "node-timeout", default_value_t = 60, global = true, value_name = "SECS")]
    pub node_timeout: u64,
    /// CA certificate that signed the agent's certificate (tcp:// with mutual TLS)
    #[arg(long, env = "AGENT_TLSCACERT", global = true)]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate
    #[arg(long, env = "AGENT_TLSCERT", global = true)]
    pub tlscert: Option<PathBuf>,
    /// Client private key
    #[arg(long, env = "AGENT_TLSKEY", global = true)]
    pub tlskey: Option<PathBuf>,
}

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
    pub more: crate::run_flags::RunFlags,
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

/// Parses a docker size (`64m`, `1g`, `512k`, `100`, `64MB`) into bytes.
#[derive(Subcommand)]
pub enum Cmd {
    /// Create and start a container, attached unless -d
    Run {
        /// Run in the background and print the container ID
        #[arg(short = 'd', long = "detach")]
        detach: bool,
        #[command(flatten)]
        opts: CreateOpts,
    },
    /// Create a container without starting it
    Create {
        #[command(flatten)]
        opts: CreateOpts,
    },
    /// Start one or more containers
    Start {
        /// Attach to the output and return the exit code
        #[arg(short = 'a', long = "attach")]
        attach: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop containers: SIGTERM, then SIGKILL after the timeout
    Stop {
        /// Seconds to wait before killing (default: the container's --stop-timeout, else 10)
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop then start containers
    Restart {
        /// Seconds to wait before killing (default: the container's --stop-timeout, else 10)
        #[arg(short = 't', long = "time")]
        time: Option<u32>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Send a signal to containers
    Kill {
        /// Signal name or number
        #[arg(short = 's', long = "signal", default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers
    Rm {
        /// Kill running containers first
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// Remove their anonymous volumes too
        #[arg(short = 'v', long = "volumes")]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes
    Wait {
        /// not-running (print the exit code), or healthy (until the health check passes)
        #[arg(long, default_value = "not-running")]
        condition: String,
        /// With --condition healthy: fail as soon as it is unhealthy
        #[arg(long = "fail-unhealthy")]
        fail_unhealthy: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers
    Ps {
        /// Show all containers (default shows just running)
        #[arg(short = 'a', long = "all")]
        all: bool,
        /// Only display IDs
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Show how a running container is isolated, read back from the kernel: namespaces,
    /// cgroups and limits, the overlay root, the network path and rules, security
    Explain {
        container: String,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Create or update the containers and networks of a Compose file (only what changed)
    Apply(crate::compose::ApplyArgs),
    /// Inspect changes to files or directories on a container's filesystem; with -f, show
    /// what apply would do (exit 1 when it would change something, like diff)
    Diff(crate::compose::DiffArgs),
    /// Remove the containers and networks of a Compose file's project
    Down(crate::compose::DownArgs),
    /// Rename a container
    Rename { container: String, new_name: String },
    #[command(flatten)]
    Verbs(crate::cli_verbs::VerbCmd),
    /// List port mappings or a specific mapping for the container
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        private_port: Option<String>,
    },
    /// Show low-level information on containers (JSON)
    Inspect {
        /// Format the output using a Go template (docker's): `{{.State.Pid}}`
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Fetch the logs of a container
    Logs {
        /// Follow log output
        #[arg(short = 'f', long = "follow")]
        follow: bool,
        /// Show timestamps
        #[arg(short = 't', long = "timestamps")]
        timestamps: bool,
        /// Number of lines to show from the end
        #[arg(short = 'n', long = "tail")]
        tail: Option<i64>,
        /// Show logs since a timestamp (2026-12-01T10:00:00Z), Unix seconds, or relative (42m)
        #[arg(long)]
        since: Option<String>,
        /// Show logs before a timestamp or relative time (as --since); a follower ends there
        #[arg(long)]
        until: Option<String>,
        container: String,
    },
    /// Run a command in a running container
    Exec {
        /// Keep STDIN open
        #[arg(short = 'i', long = "interactive")]
        interactive: bool,
        /// Allocate a pseudo-TTY
        #[arg(short = 't', long = "tty")]
        tty: bool,
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        #[arg(short = 'w', long = "workdir")]
        workdir: Option<String>,
        #[arg(short = 'u', long = "user")]
        user: Option<String>,
        /// Container, then the command and its arguments
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        container_and_cmd: Vec<String>,
    },
    /// Change the resource limits of containers, live
    Update {
        #[command(flatten)]
        res: ResourceOpts,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Live resource usage of containers
    Stats {
        /// Print one sample and exit
        #[arg(long = "no-stream")]
        no_stream: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
        containers: Vec<String>,
    },
    /// List images
    Images {
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Make a new image from a container's changes
    Commit { container: String, reference: String },
    /// Pull an image from a registry
    Pull {
        /// Speak plain HTTP to this registry
        #[arg(long)]
        insecure: bool,
        /// Print only the image's name
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        reference: String,
    },
    /// Build an image from a Dockerfile
    Build {
        /// Name the image (repeatable)
        #[arg(short = 't', long = "tag")]
        tag: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile)
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Build-time variables KEY=VALUE (KEY alone: from this environment)
        #[arg(long = "build-arg")]
        build_arg: Vec<String>,
        /// Do not use the cache
        #[arg(long = "no-cache")]
        no_cache: bool,
        /// Network of RUN steps (default bridge)
        #[arg(long, default_value = "")]
        network: String,
        /// Print only the image ID
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// The build context directory
        #[arg(value_name = "CONTEXT")]
        dir: PathBuf,
    },
    /// Log in to a registry (credentials are checked by the agent and kept here, 0600)
    Login {
        #[arg(short = 'u', long = "username")]
        username: Option<String>,
        /// Password (prefer --password-stdin)
        #[arg(short = 'p', long = "password")]
        password: Option<String>,
        /// Read the password from stdin
        #[arg(long = "password-stdin")]
        password_stdin: bool,
        #[arg(long)]
        insecure: bool,
        /// host[:port] (default: docker.io)
        registry: Option<String>,
    },
    /// Forget the credentials of a registry
    Logout { registry: Option<String> },
    /// Save images to an OCI archive (readable by skopeo and docker load)
    Save {
        /// Write to this file instead of stdout
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images
    Rmi {
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Manage images
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
    /// Manage groups: pod-like parents whose limits bound their members
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
    /// System-wide information
    System {
        #[command(subcommand)]
        cmd: SystemCmd,
    },
    /// Manage networks: each its own bridge and subnet, isolated from the others
    Network {
        #[command(subcommand)]
        cmd: NetworkCmd,
    },
    /// Manage volumes: named directories (or tmpfs) that outlive containers
    Volume {
        #[command(subcommand)]
        cmd: crate::commands::volume::VolumeCmd,
    },
    /// Stream the agent's events (follows until interrupted)
    Events {
        /// Only events after this sequence number
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Filter (KEY=VALUE, repeatable or comma-separated): type, container, event, image, label
        #[arg(short = 'f', long = "filter", value_name = "FILTER")]
        filter: Vec<String>,
        /// Print the events so far and exit
        #[arg(long = "no-follow")]
        no_follow: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Show the agent's version
    Version {
        /// Format the output using a Go template (docker's): `{{.Server.Version}}`
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
    },
    /// Manage contexts: named agents with their address and TLS files
    Context {
        #[command(subcommand)]
        cmd: ContextCmd,
    },
    /// Make a CA and certificates for mutual TLS between agentctl/schedulers and agentd
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// Show information about the agent and the host
    Info {
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand, Clone)]
pub enum ContextCmd {
    /// Create a context from --host and the --tls* files
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Make a context the current one (`default`: the local socket)
    Use { name: String },
    /// List contexts
    Ls,
    /// Show a context (JSON)
    Inspect { name: String },
    /// Remove contexts
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand, Clone)]
pub enum CertsCmd {
    /// A new CA, a server certificate and admin/operator/viewer client certificates in DIR
    Init {
        /// Where to write ca.pem, server.pem, admin.pem … (keys: *-key.pem, mode 0600)
        #[arg(long, default_value = "agent-certs")]
        dir: PathBuf,
        /// Extra names/IPs of the agent for its server certificate (localhost, 127.0.0.1
        /// and this host's name are always in)
        #[arg(long = "host-name")]
        host_name: Vec<String>,
    },
    /// Sign one more client certificate with the CA in DIR: NAME.pem, NAME-key.pem
    Client {
        #[arg(long, default_value = "agent-certs")]
        dir: PathBuf,
        /// admin, operator or viewer (the certificate's OU)
        #[arg(long, value_enum, hide_possible_values = true)]
        role: Role,
        /// Days of validity
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Issue a certificate that expired yesterday (to check that agents refuse it)
        #[arg(long)]
        expired: bool,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum SystemCmd {
    /// Disk usage: images (shared layers counted once), containers' writable layers
    Df {
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
}

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// Create a network
    Create {
        name: String,
        /// Subnet, e.g. 10.90.0.0/24 (default: the first free block of the agent's address pools)
        #[arg(long)]
        subnet: Option<String>,
        /// No egress: only the containers of this network
        #[arg(long)]
        internal: bool,
        #[arg(short = 'l', long = "label")]
        label: Vec<String>,
    },
    /// List networks
    Ls {
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Show a network (JSON)
    Inspect { name: String },
    /// Remove a network without containers
    Rm { name: String },
    /// Connect a container to a network
    Connect { network: String, container: String },
    /// Disconnect a container from a network
    Disconnect { network: String, container: String },
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum GroupCmd {
    /// Create a group with limits shared by its members
    Create {
        name: String,
        #[command(flatten)]
        res: ResourceOpts,
        #[arg(short = 'l', long = "label")]
        label: Vec<String>,
    },
    /// List groups
    Ls,
    /// Show a group (JSON)
    Inspect { name: String },
    /// Remove an empty group
    Rm { name: String },
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Import an OCI archive, a `docker save` archive, or (with --rootfs) a rootfs tar; `-` reads stdin
    Import {
        /// The file is a plain root filesystem tar (like `docker import`)
        #[arg(long)]
        rootfs: bool,
        /// Tag the imported image
        #[arg(short = 't', long = "tag")]
        tag: Vec<String>,
        /// Default command of a rootfs image
        #[arg(long)]
        cmd: Option<String>,
        file: String,
    },
    /// Build and import an image from the host's static busybox (no registry needed)
    Busybox {
        /// The busybox binary to use
        #[arg(long, default_value = "/bin/busybox")]
        busybox: String,
        #[arg(short = 't', long = "tag", default_value = "local/busybox:latest")]
        tag: String,
    },
    /// List images
    Ls {
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Show an image's details (JSON)
    Inspect {
        /// Format the output using a Go template (docker's): `{{.Config.Cmd}}`
        #[arg(short = 'f', long = "format")]
        format: Option<String>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Each layer of an image: the step that made it, its size, which images share it
    History {
        image: String,
        /// Output format: table, json, or a Go template (docker's)
        #[arg(long, default_value_t)]
        format: Format,
    },
    /// Remove untagged unused images and unreferenced layers
    Prune,
    /// Remove images
    Rm {
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
