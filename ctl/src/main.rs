//! `agentctl`: the command line of node-agent, with docker's verbs, flags and exit codes.

mod build;
mod busybox;
mod certs;
mod context;
mod output;
mod registry;
mod tty;

use agent_proto::v1 as pb;
use agent_proto::v1::container_service_client::ContainerServiceClient;
use agent_proto::v1::group_service_client::GroupServiceClient;
use agent_proto::v1::image_service_client::ImageServiceClient;
use agent_proto::v1::network_service_client::NetworkServiceClient;
use agent_proto::v1::system_service_client::SystemServiceClient;
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use tokio::io::AsyncReadExt;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Exit code for errors of the agent or of usage, like docker.
const EXIT_AGENT: u8 = 125;

#[derive(Parser)]
#[command(name = "agentctl", version, about = "Command line for node-agent (docker-compatible verbs)")]
struct Cli {
    /// The agent to talk to: unix:///path/agentd.sock or tcp://host:port [default: the current
    /// context's, else unix:///run/agentd/agentd.sock]
    #[arg(long, short = 'H', env = "AGENT_HOST", global = true)]
    host: Option<String>,
    /// Use this context (see `agentctl context`)
    #[arg(long, env = "AGENT_CONTEXT", global = true)]
    context: Option<String>,
    /// CA certificate that signed the agent's certificate (tcp:// with mutual TLS)
    #[arg(long, env = "AGENT_TLSCACERT", global = true)]
    tlscacert: Option<std::path::PathBuf>,
    /// Client certificate
    #[arg(long, env = "AGENT_TLSCERT", global = true)]
    tlscert: Option<std::path::PathBuf>,
    /// Client private key
    #[arg(long, env = "AGENT_TLSKEY", global = true)]
    tlskey: Option<std::path::PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone, Default)]
struct CreateOpts {
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take it from here)
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Container host name
    #[arg(long)]
    hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Keep STDIN open
    #[arg(short = 'i', long = "interactive")]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long = "tty")]
    tty: bool,
    /// Network: bridge (default), none, host, container:<name|id>, or a network's name
    #[arg(long, alias = "net")]
    network: Option<String>,
    /// Publish a container's port: [hostIP:]hostPort:containerPort[/tcp|udp] (bridge network)
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Nameserver for the container's /etc/resolv.conf
    #[arg(long)]
    dns: Vec<String>,
    /// Add a line to /etc/hosts (name:ip)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Add a capability (CHOWN, NET_ADMIN, ALL)
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop a capability (ALL for all)
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Bind mount a host path: HOST:CONTAINER[:ro]
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS]
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Security options: seccomp=unconfined, seccomp=PROFILE.json (docker's format), no-new-privileges
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// All capabilities and host devices, no seccomp, writable /sys (admin role by default)
    #[arg(long)]
    privileged: bool,
    /// Add a host device: HOST[:CONTAINER[:PERMS]] (PERMS of rwm)
    #[arg(long)]
    device: Vec<String>,
    /// IPC namespace: private, host, or container:NAME (shares its /dev/shm too)
    #[arg(long)]
    ipc: Option<String>,
    /// PID namespace: private, host, or container:NAME (sees and signals its processes)
    #[arg(long)]
    pid: Option<String>,
    /// User namespace: host (the host's IDs), remap (root = a subordinate ID range from
    /// /etc/subuid, shared), auto (a range of its own) [default: the agent's]
    #[arg(long)]
    userns: Option<String>,
    /// Set metadata (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Set a namespaced kernel parameter (KEY=VALUE)
    #[arg(long)]
    sysctl: Vec<String>,
    /// Run inside this group (its limits bound all members)
    #[arg(long)]
    group: Option<String>,
    #[command(flatten)]
    res: ResourceOpts,
    /// Image, then the command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    image_and_cmd: Vec<String>,
}

/// Resource limits, with docker's flags.
#[derive(Args, Clone, Default)]
struct ResourceOpts {
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    cpus: Option<f64>,
    /// CFS quota in microseconds per period
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<i64>,
    /// Relative CPU weight
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPUs allowed (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes allowed
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Maximum number of processes; -1 for unlimited
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block I/O weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u32>,
    /// OOM killer preference (0-1000 here)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    oom_score_adj: Option<i32>,
}

/// Parses a docker size (`64m`, `1g`, `512k`, `100`, `64MB`) into bytes.
fn parse_size(s: &str, what: &str) -> Res<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').filter(|x| !x.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match num.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok((n * mult as f64) as i64),
        _ => Err(Exit(EXIT_AGENT, format!("invalid {what} {s:?}: use a size like 64m or 1g"))),
    }
}

impl ResourceOpts {
    fn to_pb(&self) -> Res<pb::Resources> {
        let size = |v: &Option<String>, what: &str| {
            v.as_deref().map(|s| parse_size(s, what)).transpose().map(|o| o.unwrap_or(0))
        };
        if let Some(c) = self.cpus {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Exit(EXIT_AGENT, format!("invalid --cpus {c}: must be more than 0")));
            }
        }
        Ok(pb::Resources {
            cpus: self.cpus.unwrap_or(0.0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.clone().unwrap_or_default(),
            memory: size(&self.memory, "--memory")?,
            memory_reservation: size(&self.memory_reservation, "--memory-reservation")?,
            memory_swap: size(&self.memory_swap, "--memory-swap")?,
            pids_limit: self.pids_limit.unwrap_or(0),
            blkio_weight: self.blkio_weight.unwrap_or(0),
            oom_score_adj: self.oom_score_adj.unwrap_or(0),
        })
    }
}

#[derive(Subcommand)]
enum Cmd {
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
        /// Seconds to wait before killing
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u32,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop then start containers
    Restart {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u32,
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
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes
    Wait {
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
        /// Output format: table or json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Show low-level information on containers (JSON)
    Inspect {
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
        #[arg(long, default_value = "table")]
        format: String,
        containers: Vec<String>,
    },
    /// List images
    Images {
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        #[arg(long, default_value = "table")]
        format: String,
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
        file: Option<std::path::PathBuf>,
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
        dir: std::path::PathBuf,
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
    /// Stream the agent's events (follows until interrupted)
    Events {
        /// Only events after this sequence number
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// Print the events so far and exit
        #[arg(long = "no-follow")]
        no_follow: bool,
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Show the agent's version
    Version,
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
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand, Clone)]
enum ContextCmd {
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
enum CertsCmd {
    /// A new CA, a server certificate and admin/operator/viewer client certificates in DIR
    Init {
        /// Where to write ca.pem, server.pem, admin.pem … (keys: *-key.pem, mode 0600)
        #[arg(long, default_value = "agent-certs")]
        dir: std::path::PathBuf,
        /// Extra names/IPs of the agent for its server certificate (localhost, 127.0.0.1
        /// and this host's name are always in)
        #[arg(long = "host-name")]
        host_name: Vec<String>,
    },
    /// Sign one more client certificate with the CA in DIR: NAME.pem, NAME-key.pem
    Client {
        #[arg(long, default_value = "agent-certs")]
        dir: std::path::PathBuf,
        /// admin, operator or viewer (the certificate's OU)
        #[arg(long)]
        role: String,
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
enum SystemCmd {
    /// Disk usage: images (shared layers counted once), containers' writable layers
    Df {
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Subcommand)]
enum NetworkCmd {
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
    Ls,
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
enum GroupCmd {
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
enum ImageCmd {
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
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Show an image's details (JSON)
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Each layer of an image: the step that made it, its size, which images share it
    History {
        image: String,
        #[arg(long, default_value = "table")]
        format: String,
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

/// An error that ends the command with a specific exit code.
struct Exit(u8, String);

impl From<tonic::Status> for Exit {
    fn from(s: tonic::Status) -> Exit {
        Exit(EXIT_AGENT, format!("Error response from agent: {}", s.message()))
    }
}

impl From<anyhow::Error> for Exit {
    fn from(e: anyhow::Error) -> Exit {
        Exit(EXIT_AGENT, format!("{e:#}"))
    }
}

impl From<std::io::Error> for Exit {
    fn from(e: std::io::Error) -> Exit {
        Exit(EXIT_AGENT, e.to_string())
    }
}

type Res<T = ()> = Result<T, Exit>;

struct Clients {
    n: NetworkServiceClient<Channel>,
    c: ContainerServiceClient<Channel>,
    g: GroupServiceClient<Channel>,
    i: ImageServiceClient<Channel>,
    s: SystemServiceClient<Channel>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_AGENT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agentctl: {e}");
            return ExitCode::from(EXIT_AGENT);
        }
    };
    match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(Exit(code, msg)) => {
            if !msg.is_empty() {
                eprintln!("{msg}");
            }
            ExitCode::from(code)
        }
    }
}

/// Where to connect and with which TLS files: flags over the named or current context over
/// the local socket.
fn target(cli: &Cli) -> Res<(String, Option<agent_proto::ClientTls>)> {
    let cfg = context::CtlConfig::load()?;
    let ctx_name = cli.context.clone().or_else(|| if cli.host.is_some() { None } else { cfg.current.clone() });
    let ctx = match ctx_name.as_deref() {
        None | Some("default") => context::Ctx::default(),
        Some(n) => cfg
            .contexts
            .get(n)
            .cloned()
            .ok_or_else(|| Exit(EXIT_AGENT, format!("context {n:?} not found (see `agentctl context ls`)")))?,
    };
    let host = cli.host.clone().unwrap_or_else(|| {
        if ctx.host.is_empty() {
            agent_proto::DEFAULT_HOST.to_string()
        } else {
            ctx.host.clone()
        }
    });
    let ca = cli.tlscacert.clone().or(ctx.tlscacert);
    let cert = cli.tlscert.clone().or(ctx.tlscert);
    let key = cli.tlskey.clone().or(ctx.tlskey);
    let tls = match (ca, cert, key) {
        (None, None, None) => None,
        (Some(ca), Some(cert), Some(key)) => {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| Exit(EXIT_AGENT, format!("cannot read {}: {e}", p.display())))
            };
            Some(agent_proto::ClientTls { ca: read(&ca)?, cert: read(&cert)?, key: read(&key)? })
        }
        (ca, cert, key) => {
            let missing: Vec<&str> =
                [("--tlscacert", ca.is_none()), ("--tlscert", cert.is_none()), ("--tlskey", key.is_none())]
                    .iter()
                    .filter(|(_, m)| *m)
                    .map(|(n, _)| *n)
                    .collect();
            return Err(Exit(
                EXIT_AGENT,
                format!("mutual TLS needs --tlscacert, --tlscert and --tlskey; missing {}", missing.join(", ")),
            ));
        }
    };
    if tls.is_some() && host.starts_with("unix://") {
        return Err(Exit(EXIT_AGENT, format!("TLS files given for {host}: TLS is for tcp:// agents")));
    }
    Ok((host, tls))
}

async fn connect(host: &str, tls: Option<&agent_proto::ClientTls>) -> Res<Clients> {
    let ch = agent_proto::connect_with(host, tls).await.map_err(|e| Exit(EXIT_AGENT, e.to_string()))?;
    const MAX: usize = 16 * 1024 * 1024;
    Ok(Clients {
        c: ContainerServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        g: GroupServiceClient::new(ch.clone()),
        n: NetworkServiceClient::new(ch.clone()),
        i: ImageServiceClient::new(ch.clone()).max_decoding_message_size(MAX).max_encoding_message_size(MAX),
        s: SystemServiceClient::new(ch),
    })
}

async fn dispatch(cli: Cli) -> Res<u8> {
    match cli.cmd {
        Cmd::Context { ref cmd } => return context_cmd(cmd.clone(), &cli),
        Cmd::Certs { ref cmd } => return certs_cmd(cmd.clone()),
        Cmd::Logout { ref registry } => {
            let reg = registry.clone().unwrap_or_else(|| "docker.io".into());
            registry::forget(&reg)?;
            println!("Removing login credentials for {reg}");
            return Ok(0);
        }
        _ => {}
    }
    let (host, tls) = target(&cli)?;
    let mut cl = connect(&host, tls.as_ref()).await?;
    match cli.cmd {
        Cmd::Context { .. } | Cmd::Certs { .. } => Ok(0),
        Cmd::Run { detach, opts } => run(&mut cl, detach, opts).await,
        Cmd::Create { opts } => {
            let id = create(&mut cl, &opts).await?;
            println!("{id}");
            Ok(0)
        }
        Cmd::Start { attach, containers } => {
            if attach {
                let Some(c) = containers.first() else {
                    return Ok(0);
                };
                let info = inspect(&mut cl, c).await?;
                let spec = info.spec.unwrap_or_default();
                return attach_and_start(&mut cl, &info.id, spec.stdin_open, spec.tty, true).await;
            }
            each(containers, |c| {
                let mut cc = cl.c.clone();
                async move { cc.start(pb::StartContainerRequest { id: c }).await.map(|_| ()) }
            })
            .await
        }
        Cmd::Stop { time, containers } => each(containers, |c| {
            let mut cc = cl.c.clone();
            async move { cc.stop(pb::StopContainerRequest { id: c, timeout_seconds: Some(time) }).await.map(|_| ()) }
        })
        .await,
        Cmd::Restart { time, containers } => {
            each(containers, |c| {
                let mut cc = cl.c.clone();
                async move {
                    cc.stop(pb::StopContainerRequest { id: c.clone(), timeout_seconds: Some(time) }).await?;
                    cc.start(pb::StartContainerRequest { id: c }).await.map(|_| ())
                }
            })
            .await
        }
        Cmd::Kill { signal, containers } => {
            each(containers, |c| {
                let mut cc = cl.c.clone();
                let signal = signal.clone();
                async move { cc.kill(pb::KillContainerRequest { id: c, signal }).await.map(|_| ()) }
            })
            .await
        }
        Cmd::Rm { force, containers } => {
            each(containers, |c| {
                let mut cc = cl.c.clone();
                async move { cc.remove(pb::RemoveContainerRequest { id: c, force }).await.map(|_| ()) }
            })
            .await
        }
        Cmd::Wait { containers } => {
            // Like docker: print each exit code; the command itself succeeds.
            for c in containers {
                let r = cl.c.wait(pb::WaitContainerRequest { id: c }).await?.into_inner();
                println!("{}", r.exit_code);
            }
            Ok(0)
        }
        Cmd::Ps { all, quiet, format } => {
            let list = cl.c.list(pb::ListContainersRequest { all }).await?.into_inner().containers;
            output::containers(&list, quiet, &format)?;
            Ok(0)
        }
        Cmd::Inspect { containers } => {
            let mut out = Vec::new();
            for c in containers {
                out.push(output::container_json(&inspect(&mut cl, &c).await?));
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(0)
        }
        Cmd::Logs { follow, timestamps, tail, container } => logs(&mut cl, &container, follow, timestamps, tail).await,
        Cmd::Exec { interactive, tty, env, workdir, user, container_and_cmd } => {
            exec(&mut cl, interactive, tty, env, workdir, user, container_and_cmd).await
        }
        Cmd::Update { res, containers } => {
            let r = res.to_pb()?;
            let mut failed = false;
            for c in containers {
                match cl
                    .c
                    .update_resources(pb::UpdateResourcesRequest { id: c.clone(), resources: Some(r.clone()) })
                    .await
                {
                    Ok(_) => println!("{c}"),
                    Err(e) => {
                        eprintln!("Error response from agent: {}", e.message());
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        Cmd::Stats { no_stream, format, containers } => {
            let mut s = cl.c.stats(pb::StatsRequest { ids: containers, stream: !no_stream }).await?.into_inner();
            let mut prev: std::collections::HashMap<String, (u64, u64)> = std::collections::HashMap::new();
            while let Some(m) = s.next().await {
                output::stats(&m?.stats, &mut prev, &format)?;
            }
            Ok(0)
        }
        Cmd::Images { quiet, format } | Cmd::Image { cmd: ImageCmd::Ls { quiet, format } } => {
            let list = cl.i.list(pb::ListImagesRequest {}).await?.into_inner().images;
            output::images(&list, quiet, &format)?;
            Ok(0)
        }
        Cmd::Rmi { force, images } | Cmd::Image { cmd: ImageCmd::Rm { force, images } } => {
            let mut failed = false;
            for i in images {
                match cl.i.remove(pb::RemoveImageRequest { image: i, force }).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        for u in r.untagged {
                            println!("Untagged: {u}");
                        }
                        for d in r.deleted {
                            println!("Deleted: {d}");
                        }
                    }
                    Err(e) => {
                        eprintln!("Error response from agent: {}", e.message());
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        Cmd::Image { cmd: ImageCmd::Inspect { images } } => {
            let mut out = Vec::new();
            for i in images {
                let img =
                    cl.i.inspect(pb::InspectImageRequest { image: i }).await?.into_inner().image.unwrap_or_default();
                out.push(output::image_json(&img));
            }
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            Ok(0)
        }
        Cmd::Image { cmd: ImageCmd::Import { rootfs, tag, cmd, file } } => {
            let data = if file == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v)?;
                v
            } else {
                std::fs::read(&file).map_err(|e| Exit(EXIT_AGENT, format!("open {file}: {e}")))?
            };
            let cmd = cmd.map(|c| vec!["/bin/sh".to_string(), "-c".to_string(), c]).unwrap_or_default();
            import(&mut cl, data, pb::ImportOptions { rootfs, tags: tag, cmd, env: vec![] }).await
        }
        Cmd::Image { cmd: ImageCmd::Busybox { busybox, tag } } => {
            let data = busybox::rootfs_tar(std::path::Path::new(&busybox))?;
            import(
                &mut cl,
                data,
                pb::ImportOptions { rootfs: true, tags: vec![tag], cmd: vec!["sh".into()], env: vec![] },
            )
            .await
        }
        Cmd::Group { cmd } => group(&mut cl, cmd).await,
        Cmd::Build { tag, file, build_arg, no_cache, network, quiet, dir } => {
            build::build(
                &mut cl.i,
                build::Args { tags: tag, file, build_args: build_arg, no_cache, network, quiet, context: dir },
            )
            .await
        }
        Cmd::Pull { insecure, quiet, reference } => {
            let auth = registry::credentials_for(&reference)?;
            registry::pull(&mut cl.i, reference, auth, insecure, quiet).await
        }
        Cmd::Login { username, password, password_stdin, insecure, registry: reg } => {
            let reg = reg.unwrap_or_else(|| "docker.io".into());
            let username = match username {
                Some(u) => u,
                None => return Err(Exit(EXIT_AGENT, "login needs --username".into())),
            };
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut p = String::new();
                    std::io::stdin().read_to_string(&mut p)?;
                    p.trim_end_matches(['\n', '\r']).to_string()
                }
                _ => return Err(Exit(EXIT_AGENT, "login needs exactly one of --password and --password-stdin".into())),
            };
            let auth = pb::RegistryAuth { username, password };
            let r = cl.i.login(pb::LoginRequest { registry: reg.clone(), auth: Some(auth.clone()), insecure }).await?;
            registry::store(&reg, &auth)?;
            println!("{}", r.into_inner().status);
            Ok(0)
        }
        Cmd::Logout { .. } => Ok(0),
        Cmd::Commit { container, reference } => {
            let img = cl.i.commit(pb::CommitRequest { container, reference }).await?.into_inner();
            println!("{}", img.id);
            Ok(0)
        }
        Cmd::Image { cmd: ImageCmd::History { image, format } } => {
            let h = cl.i.history(pb::ImageHistoryRequest { image }).await?.into_inner();
            output::history(&h.entries, &format)?;
            Ok(0)
        }
        Cmd::Image { cmd: ImageCmd::Prune } => {
            let r = cl.i.prune(pb::PruneImagesRequest {}).await?.into_inner();
            for d in &r.deleted {
                println!("Deleted: {d}");
            }
            println!("Total reclaimed space: {} bytes", r.reclaimed_bytes);
            Ok(0)
        }
        Cmd::System { cmd: SystemCmd::Df { format } } => {
            let u = cl.i.disk_usage(pb::DiskUsageRequest {}).await?.into_inner();
            output::disk_usage(&u, &format)?;
            Ok(0)
        }
        Cmd::Save { output, images } => {
            let mut s = cl.i.save(pb::SaveImagesRequest { images }).await?.into_inner();
            let mut out: Box<dyn Write> = match &output {
                Some(p) => {
                    Box::new(std::fs::File::create(p).map_err(|e| Exit(EXIT_AGENT, format!("create {p}: {e}")))?)
                }
                None => {
                    if std::io::stdout().is_terminal() {
                        return Err(Exit(EXIT_AGENT, "refusing to write an archive to a terminal: use -o FILE".into()));
                    }
                    Box::new(std::io::stdout())
                }
            };
            while let Some(c) = s.next().await {
                out.write_all(&c?.data)?;
            }
            out.flush()?;
            Ok(0)
        }
        Cmd::Network { cmd } => network(&mut cl, cmd).await,
        Cmd::Events { since, no_follow, format } => {
            let mut s = cl.s.events(pb::EventsRequest { since, follow: !no_follow }).await?.into_inner();
            while let Some(e) = s.next().await {
                output::event(&e?, &format)?;
            }
            Ok(0)
        }
        Cmd::Version => {
            let v = cl.s.version(pb::VersionRequest {}).await?.into_inner();
            println!(
                "Client:\n Version:\t{}\n\nServer:\n Version:\t{}\n API version:\t{}\n OS/Arch:\t{}/{}\n Kernel:\t{}",
                env!("CARGO_PKG_VERSION"),
                v.version,
                v.api_version,
                v.os,
                v.arch,
                v.kernel
            );
            Ok(0)
        }
        Cmd::Info { format } => {
            let i = cl.s.info(pb::InfoRequest {}).await?.into_inner();
            output::info(&i, &format)?;
            Ok(0)
        }
    }
}

/// Applies `f` to each container, printing its name on success like docker.
async fn each<F, Fut>(containers: Vec<String>, f: F) -> Res<u8>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), tonic::Status>>,
{
    let mut failed = false;
    for c in containers {
        match f(c.clone()).await {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error response from agent: {}", e.message());
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

async fn inspect(cl: &mut Clients, c: &str) -> Res<pb::ContainerInfo> {
    Ok(cl
        .c
        .inspect(pb::InspectContainerRequest { id: c.to_string() })
        .await?
        .into_inner()
        .container
        .unwrap_or_default())
}

async fn import(cl: &mut Clients, data: Vec<u8>, opts: pb::ImportOptions) -> Res<u8> {
    use pb::import_request::Msg;
    let mut msgs = vec![pb::ImportRequest { msg: Some(Msg::Options(opts)) }];
    for chunk in data.chunks(1 << 20) {
        msgs.push(pb::ImportRequest { msg: Some(Msg::Chunk(chunk.to_vec())) });
    }
    let r = cl.i.import(tokio_stream::iter(msgs)).await?.into_inner();
    for img in r.images {
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in img.tags {
            println!("Loaded image: {t}");
        }
    }
    Ok(0)
}

fn parse_kv(items: &[String], what: &str) -> Res<std::collections::HashMap<String, String>> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ if !l.is_empty() && !l.contains('=') => Ok((l.clone(), String::new())),
            _ => Err(Exit(EXIT_AGENT, format!("invalid {what} {l:?}: use KEY=VALUE"))),
        })
        .collect()
}

/// `-e KEY` takes KEY from this environment, like docker (dropped when unset).
fn resolve_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(
            |e| {
                if e.contains('=') {
                    Some(e.clone())
                } else {
                    std::env::var(e).ok().map(|v| format!("{e}={v}"))
                }
            },
        )
        .collect()
}

/// `--security-opt seccomp=FILE` sends the file's JSON, like docker (the agent never reads
/// client paths).
fn security_opts(opts: &[String]) -> Res<Vec<String>> {
    opts.iter()
        .map(|o| match o.strip_prefix("seccomp=").or_else(|| o.strip_prefix("seccomp:")) {
            Some(p) if p != "unconfined" && !p.trim_start().starts_with('{') => std::fs::read_to_string(p)
                .map(|json| format!("seccomp={json}"))
                .map_err(|e| Exit(EXIT_AGENT, format!("--security-opt seccomp={p}: {e}"))),
            _ => Ok(o.clone()),
        })
        .collect()
}

async fn create(cl: &mut Clients, o: &CreateOpts) -> Res<String> {
    let (image, cmd) = o.image_and_cmd.split_first().ok_or_else(|| Exit(EXIT_AGENT, "an image is required".into()))?;
    let (entrypoint, entrypoint_set) = match &o.entrypoint {
        Some(e) if e.is_empty() => (vec![], true),
        Some(e) => (vec![e.clone()], true),
        None => (vec![], false),
    };
    let spec = pb::ContainerSpec {
        name: o.name.clone().unwrap_or_default(),
        image: image.clone(),
        command: cmd.to_vec(),
        entrypoint,
        entrypoint_set,
        env: resolve_env(&o.env),
        working_dir: o.workdir.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        hostname: o.hostname.clone().unwrap_or_default(),
        tty: o.tty,
        stdin_open: o.interactive,
        network_mode: o.network.clone().unwrap_or_default(),
        labels: parse_kv(&o.label, "label")?,
        auto_remove: o.rm,
        init: o.init,
        resources: Some(o.res.to_pb()?),
        sysctls: parse_kv(&o.sysctl, "sysctl")?,
        group: o.group.clone().unwrap_or_default(),
        ports: o.publish.clone(),
        dns: o.dns.clone(),
        add_hosts: o.add_host.clone(),
        publish_all: o.publish_all,
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        volumes: o.volume.clone(),
        tmpfs: o.tmpfs.clone(),
        read_only: o.read_only,
        security_opt: security_opts(&o.security_opt)?,
        privileged: o.privileged,
        devices: o.device.clone(),
        userns: o.userns.clone().unwrap_or_default(),
        ipc: o.ipc.clone().unwrap_or_default(),
        pid: o.pid.clone().unwrap_or_default(),
    };
    Ok(cl.c.create(pb::CreateContainerRequest { spec: Some(spec) }).await?.into_inner().id)
}

async fn run(cl: &mut Clients, detach: bool, opts: CreateOpts) -> Res<u8> {
    let id = create(cl, &opts).await?;
    if detach {
        if let Err(e) = cl.c.start(pb::StartContainerRequest { id: id.clone() }).await {
            let info = inspect(cl, &id).await.ok();
            return Err(start_failure(e, info.as_ref()));
        }
        println!("{id}");
        return Ok(0);
    }
    attach_and_start(cl, &id, opts.interactive, opts.tty, true).await
}

/// Maps a failed start to docker's exit codes: 126/127 for the command, else 125.
fn start_failure(e: tonic::Status, info: Option<&pb::ContainerInfo>) -> Exit {
    let from_meta =
        e.metadata().get("agent-exit-code").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    let code = from_meta.or(info.map(|i| i.exit_code)).filter(|c| *c == 126 || *c == 127).unwrap_or(EXIT_AGENT as i32);
    Exit(code as u8, format!("agentctl: Error response from agent: {}", e.message()))
}

/// Attaches (stdin if `stdin`), starts when `start`, streams output, returns the exit code.
async fn attach_and_start(cl: &mut Clients, id: &str, stdin: bool, tty: bool, start: bool) -> Res<u8> {
    use pb::attach_request::Msg;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AttachRequest>(16);
    let _ = tx.send(pb::AttachRequest { msg: Some(Msg::Start(pb::AttachStart { id: id.to_string() })) }).await;
    let mut out = cl.c.attach(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    // Output is streamed from the first message on: only then start, so nothing is lost.
    let first = out.next().await;
    if !matches!(first, Some(Ok(pb::AttachResponse { msg: Some(pb::attach_response::Msg::Attached(true)) }))) {
        return Err(Exit(EXIT_AGENT, "the agent did not acknowledge the attach".into()));
    }
    let _raw = (tty && std::io::stdin().is_terminal()).then(tty::RawMode::enable);
    if stdin {
        tokio::spawn(pump_stdin(tx.clone(), |d| pb::AttachRequest {
            msg: Some(match d {
                Some(d) => Msg::Stdin(d),
                None => Msg::CloseStdin(true),
            }),
        }));
    }
    if start {
        if let Err(e) = cl.c.start(pb::StartContainerRequest { id: id.to_string() }).await {
            drop(_raw);
            let info = inspect(cl, id).await.ok();
            return Err(start_failure(e, info.as_ref()));
        }
    }
    let mut code = None;
    while let Some(m) = out.next().await {
        let m = m?;
        match m.msg {
            Some(pb::attach_response::Msg::Stdout(d)) => write_out(&d),
            Some(pb::attach_response::Msg::Stderr(d)) => write_err(&d),
            Some(pb::attach_response::Msg::ExitCode(c)) => code = Some(c),
            _ => {}
        }
    }
    drop(tx);
    match code {
        Some(c) => Ok(c.clamp(0, 255) as u8),
        None => Err(Exit(EXIT_AGENT, "lost the connection to the agent before the container exited".into())),
    }
}

async fn logs(cl: &mut Clients, c: &str, follow: bool, timestamps: bool, tail: Option<i64>) -> Res<u8> {
    let req = pb::LogsRequest {
        id: c.to_string(),
        follow,
        timestamps,
        since: 0,
        tail: tail.unwrap_or(0),
        stdout: false,
        stderr: false,
    };
    let mut s = cl.c.logs(req).await?.into_inner();
    while let Some(e) = s.next().await {
        let e = e?;
        let mut line = Vec::new();
        if timestamps {
            let t = chrono::DateTime::from_timestamp_nanos(e.time);
            line.extend_from_slice(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true).as_bytes());
            line.push(b' ');
        }
        line.extend_from_slice(&e.data);
        if e.stream == pb::LogStream::Stderr as i32 {
            write_err(&line);
        } else {
            write_out(&line);
        }
    }
    Ok(0)
}

async fn exec(
    cl: &mut Clients,
    interactive: bool,
    tty: bool,
    env: Vec<String>,
    workdir: Option<String>,
    user: Option<String>,
    container_and_cmd: Vec<String>,
) -> Res<u8> {
    use pb::exec_request::Msg;
    let (container, cmd) =
        container_and_cmd.split_first().ok_or_else(|| Exit(EXIT_AGENT, "a container is required".into()))?;
    if cmd.is_empty() {
        return Err(Exit(EXIT_AGENT, "exec needs a command to run".into()));
    }
    let (rows, cols) = tty::size();
    let spec = pb::ExecSpec {
        container_id: container.clone(),
        command: cmd.to_vec(),
        env: resolve_env(&env),
        working_dir: workdir.unwrap_or_default(),
        user: user.unwrap_or_default(),
        tty,
        stdin: interactive,
        size: Some(pb::TerminalSize { rows, cols }),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ExecRequest>(16);
    let _ = tx.send(pb::ExecRequest { msg: Some(Msg::Start(spec)) }).await;
    let mut out = cl.c.exec(tokio_stream::wrappers::ReceiverStream::new(rx)).await?.into_inner();
    let _raw = (tty && std::io::stdin().is_terminal()).then(tty::RawMode::enable);
    if interactive {
        tokio::spawn(pump_stdin(tx.clone(), |d| pb::ExecRequest {
            msg: Some(match d {
                Some(d) => Msg::Stdin(d),
                None => Msg::CloseStdin(true),
            }),
        }));
    }
    if tty {
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
                return;
            };
            while sig.recv().await.is_some() {
                let (rows, cols) = tty::size();
                if tx.send(pb::ExecRequest { msg: Some(Msg::Resize(pb::TerminalSize { rows, cols })) }).await.is_err() {
                    return;
                }
            }
        });
    }
    let mut code = None;
    while let Some(m) = out.next().await {
        match m?.msg {
            Some(pb::exec_response::Msg::Stdout(d)) => write_out(&d),
            Some(pb::exec_response::Msg::Stderr(d)) => write_err(&d),
            Some(pb::exec_response::Msg::ExitCode(c)) => code = Some(c),
            None => {}
        }
    }
    drop(tx);
    match code {
        Some(c) => Ok(c.clamp(0, 255) as u8),
        None => Err(Exit(EXIT_AGENT, "lost the connection to the agent before the command exited".into())),
    }
}

/// Copies this process's stdin into request messages (`None` = end of input).
async fn pump_stdin<T, F>(tx: tokio::sync::mpsc::Sender<T>, make: F)
where
    F: Fn(Option<Vec<u8>>) -> T,
{
    let mut input = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match input.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(make(None)).await;
                return;
            }
            Ok(n) => {
                if tx.send(make(Some(buf[..n].to_vec()))).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn write_out(d: &[u8]) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(d);
    let _ = o.flush();
}

fn write_err(d: &[u8]) {
    let _ = std::io::stderr().write_all(d);
}

async fn group(cl: &mut Clients, cmd: GroupCmd) -> Res<u8> {
    match cmd {
        GroupCmd::Create { name, res, label } => {
            let req =
                pb::CreateGroupRequest { name, resources: Some(res.to_pb()?), labels: parse_kv(&label, "label")? };
            println!("{}", cl.g.create(req).await?.into_inner().name);
        }
        GroupCmd::Ls => {
            let list = cl.g.list(pb::ListGroupsRequest {}).await?.into_inner().groups;
            println!("{:<24}{:<10}{:<14}MEMBERS", "NAME", "CPUS", "MEMORY");
            for g in list {
                let r = g.resources.unwrap_or_default();
                println!("{:<24}{:<10}{:<14}{}", g.name, format!("{:.2}", r.cpus), r.memory, g.members.len());
            }
        }
        GroupCmd::Inspect { name } => {
            let g = cl.g.inspect(pb::InspectGroupRequest { name }).await?.into_inner();
            let r = g.resources.clone().unwrap_or_default();
            let v = serde_json::json!({
                "Name": g.name, "Members": g.members, "Labels": g.labels, "CgroupPath": g.cgroup,
                "Resources": {"NanoCpus": (r.cpus * 1e9) as i64, "Memory": r.memory, "MemorySwap": r.memory_swap, "PidsLimit": r.pids_limit, "CpusetCpus": r.cpuset_cpus},
            });
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        GroupCmd::Rm { name } => {
            cl.g.remove(pb::RemoveGroupRequest { name: name.clone() }).await?;
            println!("{name}");
        }
    }
    Ok(0)
}

fn network_json(n: &pb::NetworkInfo) -> serde_json::Value {
    serde_json::json!({
        "Name": n.name, "Subnet": n.subnet, "Gateway": n.gateway, "Internal": n.internal,
        "Bridge": n.bridge, "Labels": n.labels, "Containers": n.containers,
    })
}

async fn network(cl: &mut Clients, cmd: NetworkCmd) -> Res<u8> {
    match cmd {
        NetworkCmd::Create { name, subnet, internal, label } => {
            let req = pb::CreateNetworkRequest {
                name,
                subnet: subnet.unwrap_or_default(),
                internal,
                labels: parse_kv(&label, "label")?,
            };
            println!("{}", cl.n.create(req).await?.into_inner().name);
        }
        NetworkCmd::Ls => {
            let list = cl.n.list(pb::ListNetworksRequest {}).await?.into_inner().networks;
            println!("{:<24}{:<20}{:<10}CONTAINERS", "NAME", "SUBNET", "INTERNAL");
            for n in list {
                println!("{:<24}{:<20}{:<10}{}", n.name, n.subnet, n.internal, n.containers.len());
            }
        }
        NetworkCmd::Inspect { name } => {
            let n = cl.n.inspect(pb::InspectNetworkRequest { name }).await?.into_inner();
            println!("{}", serde_json::to_string_pretty(&network_json(&n)).unwrap_or_default());
        }
        NetworkCmd::Rm { name } => {
            cl.n.remove(pb::RemoveNetworkRequest { name: name.clone() }).await?;
            println!("{name}");
        }
        NetworkCmd::Connect { network, container } => {
            cl.n.connect_container(pb::ConnectRequest { network, container }).await?;
        }
        NetworkCmd::Disconnect { network, container } => {
            cl.n.disconnect_container(pb::DisconnectRequest { network, container }).await?;
        }
    }
    Ok(0)
}

fn context_cmd(cmd: ContextCmd, cli: &Cli) -> Res<u8> {
    let mut cfg = context::CtlConfig::load()?;
    match cmd {
        ContextCmd::Create { name, description } => {
            context::validate_name(&name)?;
            if cfg.contexts.contains_key(&name) {
                return Err(Exit(EXIT_AGENT, format!("context {name:?} already exists")));
            }
            let Some(ctx_host) = cli.host.clone() else {
                return Err(Exit(EXIT_AGENT, "context create needs --host unix:///path or tcp://host:port".into()));
            };
            if !(ctx_host.starts_with("unix://") || ctx_host.starts_with("tcp://")) {
                return Err(Exit(
                    EXIT_AGENT,
                    format!("invalid --host {ctx_host:?}: use unix:///path or tcp://host:port"),
                ));
            }
            let abs = |p: Option<std::path::PathBuf>| -> Res<Option<std::path::PathBuf>> {
                p.map(|p| std::fs::canonicalize(&p).map_err(|e| Exit(EXIT_AGENT, format!("{}: {e}", p.display()))))
                    .transpose()
            };
            let ctx = context::Ctx {
                host: ctx_host,
                tlscacert: abs(cli.tlscacert.clone())?,
                tlscert: abs(cli.tlscert.clone())?,
                tlskey: abs(cli.tlskey.clone())?,
                description,
            };
            cfg.contexts.insert(name.clone(), ctx);
            cfg.save()?;
            println!("{name}");
        }
        ContextCmd::Use { name } => {
            if name == "default" {
                cfg.current = None;
            } else if cfg.contexts.contains_key(&name) {
                cfg.current = Some(name.clone());
            } else {
                return Err(Exit(EXIT_AGENT, format!("context {name:?} not found")));
            }
            cfg.save()?;
            println!("{name}");
        }
        ContextCmd::Ls => {
            let cur = cfg.current.clone().unwrap_or_else(|| "default".into());
            let mut rows = vec![vec!["NAME".to_string(), "DESCRIPTION".into(), "HOST".into(), "TLS".into()]];
            let mark = |n: &str| if n == cur { format!("{n} *") } else { n.to_string() };
            rows.push(vec![mark("default"), "the local socket".into(), agent_proto::DEFAULT_HOST.into(), "".into()]);
            for (n, c) in &cfg.contexts {
                let tls = if c.tlscert.is_some() { "mutual" } else { "" };
                rows.push(vec![mark(n), c.description.clone(), c.host.clone(), tls.into()]);
            }
            output::print_table(&rows);
        }
        ContextCmd::Inspect { name } => {
            let c = cfg.contexts.get(&name).ok_or_else(|| Exit(EXIT_AGENT, format!("context {name:?} not found")))?;
            println!("{}", serde_json::to_string_pretty(c).map_err(|e| Exit(EXIT_AGENT, e.to_string()))?);
        }
        ContextCmd::Rm { names } => {
            for n in names {
                if cfg.contexts.remove(&n).is_none() {
                    return Err(Exit(EXIT_AGENT, format!("context {n:?} not found")));
                }
                if cfg.current.as_deref() == Some(n.as_str()) {
                    cfg.current = None;
                }
                println!("{n}");
            }
            cfg.save()?;
        }
    }
    Ok(0)
}

fn certs_cmd(cmd: CertsCmd) -> Res<u8> {
    match cmd {
        CertsCmd::Init { dir, host_name } => {
            certs::init(&dir, &host_name)?;
            let d = std::fs::canonicalize(&dir)?;
            let d = d.display();
            println!("CA, server and client certificates written to {d}");
            println!("Start the agent:");
            println!(
                "  agentd --listen tcp://0.0.0.0:7443 --tls-cert {d}/server.pem --tls-key {d}/server-key.pem \\\n         --tls-client-ca {d}/ca.pem"
            );
            println!("Talk to it (role admin; operator.pem and viewer.pem are also there):");
            println!(
                "  agentctl --host tcp://127.0.0.1:7443 --tlscacert {d}/ca.pem --tlscert {d}/admin.pem --tlskey {d}/admin-key.pem info"
            );
        }
        CertsCmd::Client { dir, role, days, expired, name } => {
            if !certs::ROLES.contains(&role.as_str()) {
                return Err(Exit(EXIT_AGENT, format!("invalid --role {role:?}: use admin, operator or viewer")));
            }
            certs::client(&dir, &name, &role, days, expired)?;
            println!("{}", dir.join(format!("{name}.pem")).display());
        }
    }
    Ok(0)
}

#[cfg(test)]
mod cli_tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
