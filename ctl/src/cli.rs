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

pub use crate::cli_create::{CreateOpts, ResourceOpts};

/// Parses a docker size (`64m`, `1g`, `512k`, `100`, `64MB`) into bytes.
#[derive(Subcommand)]
pub enum Cmd {
    /// Create and start a container, attached unless -d
    Run {
        /// Run in the background and print the container ID
        #[arg(short = 'd', long = "detach")]
        detach: bool,
        #[command(flatten)]
        attach: crate::cli_verbs::RunAttach,
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
    /// what apply would do (exit 1 when it would change something, 2 on an error, like kubectl diff)
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
        /// Show extra details provided to logs (the labels and env named by --log-opt labels=/env=)
        #[arg(long)]
        details: bool,
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
    /// Remove all stopped containers (`container prune`)
    #[command(name = "container-prune", hide = true)]
    ContainerPrune(crate::commands::prune::PruneOpts),
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
    /// Generate the autocompletion script for the specified shell (bash, zsh, fish)
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
    /// Remove unused data: stopped containers, unused networks, dangling images (-a: all
    /// unused images; --volumes: unused volumes)
    Prune(crate::commands::prune::SystemPruneOpts),
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
    /// Remove all networks no container is attached to (the default bridge stays)
    Prune(crate::commands::prune::PruneOpts),
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
    /// Remove untagged unused images (-a: all unused images) and unreferenced layers
    Prune {
        /// Remove all unused images, not just dangling ones
        #[arg(short = 'a', long = "all")]
        all: bool,
        #[command(flatten)]
        prune: crate::commands::prune::PruneOpts,
    },
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
