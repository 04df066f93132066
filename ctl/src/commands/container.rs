//! Container verbs: run, create, start, stop, restart, kill, rm, wait, ps, inspect, logs,
//! exec, update, stats, commit.

use super::attach::Session;
use super::{each, echo, parse_kv, resources, PARALLEL};
use crate::cli::{self, CreateOpts, Format, ResourceOpts};
use crate::client::{Client, Clients};
use crate::error::{Exit, Res, EXIT_AGENT};
use crate::{output, tty};
use agent_proto::v1 as pb;
use std::io::{IsTerminal, Write};
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// One message of an attach or exec stream.
enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    Other,
}

/// The [`Chunk`] of an attach or exec response message: their `Msg` enums (imported as
/// `Out` where this is used) have the same output variants.
macro_rules! chunk {
    ($msg:expr) => {
        match $msg {
            Some(Out::Stdout(d)) => Chunk::Stdout(d),
            Some(Out::Stderr(d)) => Chunk::Stderr(d),
            Some(Out::ExitCode(c)) => Chunk::Exit(c),
            _ => Chunk::Other,
        }
    };
}

/// `run`: create, then start detached (printing the ID) or attached (returning its exit code).
pub async fn run(cl: &mut Clients, detach: bool, a: crate::cli_verbs::RunAttach, opts: CreateOpts) -> Res<u8> {
    let session = run_session(detach, &a, &opts)?;
    let id = create_container(cl, &opts).await?;
    let Some(session) = session else {
        start_or_explain(cl, &id).await?;
        println!("{id}");
        return Ok(0);
    };
    attach_and_start(cl, &id, session, opts.tty).await
}

/// How a foreground `run` attaches (docker's `-a`, `--detach-keys`, `--sig-proxy`),
/// checked before anything is created; `None` for `-d`.
fn run_session(detach: bool, a: &crate::cli_verbs::RunAttach, o: &CreateOpts) -> Res<Option<Session>> {
    let mut streams = [false; 3];
    for v in &a.attach {
        match v.to_ascii_lowercase().as_str() {
            "stdin" => streams[0] = true,
            "stdout" => streams[1] = true,
            "stderr" => streams[2] = true,
            _ => {
                return Err(Exit::agent(format!(
                    "invalid argument \"{v}\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
                )))
            }
        }
    }
    let keys = match &a.detach_keys {
        Some(k) => super::attach::parse_detach_keys(k).map_err(Exit::agent)?,
        None => vec![16, 17],
    };
    if detach {
        if !a.attach.is_empty() {
            return Err(Exit::agent("Conflicting options: -a and -d"));
        }
        return Ok(None);
    }
    if a.attach.is_empty() {
        streams = [o.interactive, true, true];
    }
    Ok(Some(Session {
        // Without -i the container's stdin is not open: nothing of ours would reach it.
        stdin: o.interactive,
        close_stdin_at_eof: true,
        // As docker: the detach keys are looked for only on a terminal.
        escape: (o.interactive && o.tty).then_some(keys),
        sig_proxy: a.sig_proxy && !o.tty,
        stdout: streams[1],
        stderr: streams[2],
        fail_code: crate::error::EXIT_AGENT,
    }))
}

/// `create`: prints the new container's ID.
pub async fn create(cl: &mut Clients, opts: CreateOpts) -> Res<u8> {
    println!("{}", create_container(cl, &opts).await?);
    Ok(0)
}

/// `start`: each container, or with `-a` the first one attached.
pub async fn start(cl: &mut Clients, attach: bool, containers: Vec<String>) -> Res<u8> {
    if attach {
        let Some(c) = containers.first() else {
            return Ok(0);
        };
        let info = inspect_one(cl, c).await?;
        let spec = info.spec.unwrap_or_default();
        let session = Session {
            stdin: spec.stdin_open,
            close_stdin_at_eof: true,
            escape: (spec.stdin_open && spec.tty).then(|| vec![16, 17]),
            sig_proxy: !spec.tty,
            stdout: true,
            stderr: true,
            fail_code: crate::error::EXIT_AGENT,
        };
        return attach_and_start(cl, &info.id, session, spec.tty).await;
    }
    // One at a time, in order: a later one may join an earlier one's namespaces.
    each(
        &cl.c,
        containers,
        1,
        |mut c, id| async move { c.start(pb::StartContainerRequest { id }).await.map(drop) },
        echo,
    )
    .await
}

/// `stop`: SIGTERM, then SIGKILL after `time` seconds.
pub async fn stop(cl: &mut Clients, time: Option<u32>, containers: Vec<String>) -> Res<u8> {
    let stop = |mut c: Client, id| async move {
        c.stop(pb::StopContainerRequest { id, timeout_seconds: time }).await.map(drop)
    };
    each(&cl.c, containers, PARALLEL, stop, echo).await
}

/// `restart`: stop, then start.
pub async fn restart(cl: &mut Clients, time: Option<u32>, containers: Vec<String>) -> Res<u8> {
    let restart = |mut c: Client, id: String| async move {
        c.stop(pb::StopContainerRequest { id: id.clone(), timeout_seconds: time }).await?;
        c.start(pb::StartContainerRequest { id }).await.map(drop)
    };
    each(&cl.c, containers, 1, restart, echo).await
}

/// `kill`: sends `signal`.
pub async fn kill(cl: &mut Clients, signal: String, containers: Vec<String>) -> Res<u8> {
    let kill = |mut c: Client, id| {
        let signal = signal.clone();
        async move { c.kill(pb::KillContainerRequest { id, signal }).await.map(drop) }
    };
    each(&cl.c, containers, PARALLEL, kill, echo).await
}

/// `rm`: removes containers (`force`: running ones too).
pub async fn rm(cl: &mut Clients, force: bool, remove_volumes: bool, containers: Vec<String>) -> Res<u8> {
    let rm = |mut c: Client, id| async move {
        c.remove(pb::RemoveContainerRequest { id, force, remove_volumes }).await.map(drop)
    };
    each(&cl.c, containers, PARALLEL, rm, echo).await
}

/// `wait`: like docker, prints each exit code; the command itself succeeds.
pub async fn wait(cl: &mut Clients, condition: String, fail_unhealthy: bool, containers: Vec<String>) -> Res<u8> {
    let healthy = condition == "healthy";
    for id in containers {
        let req = pb::WaitContainerRequest { id: id.clone(), condition: condition.clone(), fail_unhealthy };
        let code = cl.c.wait(req).await?.into_inner().exit_code;
        if healthy {
            println!("{id}");
        } else {
            println!("{code}");
        }
    }
    Ok(0)
}

/// `port`: docker's `80/tcp -> 0.0.0.0:8080` lines, or the host addresses of one port.
pub async fn port(cl: &mut Clients, container: String, private_port: Option<String>) -> Res<u8> {
    let info = inspect_one(cl, &container).await?;
    let want = match &private_port {
        None => None,
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let n: u32 = num.parse().map_err(|_| Exit::agent(format!("invalid port {p:?}: use PORT[/tcp|udp]")))?;
            Some((n, proto.to_string()))
        }
    };
    let mut found = false;
    for b in &info.published {
        match &want {
            None => println!("{}/{} -> {}:{}", b.container_port, b.proto, b.host_ip, b.host_port),
            Some((n, proto)) if *n == b.container_port && *proto == b.proto => {
                println!("{}:{}", b.host_ip, b.host_port)
            }
            Some(_) => continue,
        }
        found = true;
    }
    if let (Some(p), false) = (&private_port, found) {
        return Err(Exit::agent(format!("Error: No public port '{p}' published for {container}")));
    }
    Ok(0)
}

/// `ps`.
pub async fn ps(cl: &mut Clients, all: bool, quiet: bool, format: Format) -> Res<u8> {
    let list = cl.c.list(pb::ListContainersRequest { all }).await?.into_inner().containers;
    output::containers(&list, quiet, format)?;
    Ok(0)
}

/// `inspect`: one JSON array of the containers.
pub async fn inspect(cl: &mut Clients, containers: Vec<String>, format: Option<String>) -> Res<u8> {
    let mut out = Vec::new();
    for c in containers {
        out.push(output::container_json(&inspect_one(cl, &c).await?));
    }
    output::print_inspect(&out, format.as_deref())?;
    Ok(0)
}

/// Go's `url.QueryEscape`, as docker's `--details` writes attribute values.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `logs`: what the container wrote, to our stdout and stderr.
/// What `logs` was given.
pub struct LogArgs {
    pub follow: bool,
    pub timestamps: bool,
    pub tail: Option<i64>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub details: bool,
}

pub async fn logs(cl: &mut Clients, container: String, o: LogArgs) -> Res<u8> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let since = o.since.as_deref().map(|s| crate::flags::time("--since", s, now)).transpose()?.unwrap_or(0);
    let until = o.until.as_deref().map(|s| crate::flags::time("--until", s, now)).transpose()?.unwrap_or(0);
    let (follow, timestamps) = (o.follow, o.timestamps);
    let req = pb::LogsRequest {
        id: container,
        follow,
        timestamps,
        since,
        tail: o.tail.unwrap_or(0),
        stdout: false,
        stderr: false,
        until,
        details: o.details,
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
        if o.details {
            // docker's: the attributes as k=v,k2=v2 (sorted, query-escaped), then a space.
            let mut attrs: Vec<_> = e.attrs.iter().collect();
            attrs.sort();
            let kv: Vec<String> =
                attrs.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect();
            line.extend_from_slice(kv.join(",").as_bytes());
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

/// What `exec` was given.
pub struct ExecArgs {
    pub interactive: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub container_and_cmd: Vec<String>,
}

/// `exec`: runs a command in a running container; returns its exit code.
pub async fn exec(cl: &mut Clients, a: ExecArgs) -> Res<u8> {
    use pb::exec_request::Msg;
    use pb::exec_response::Msg as Out;
    let (container, cmd) = a.container_and_cmd.split_first().ok_or_else(|| Exit::agent("a container is required"))?;
    if cmd.is_empty() {
        return Err(Exit::agent("exec needs a command to run"));
    }
    let (rows, cols) = tty::size();
    let spec = pb::ExecSpec {
        container_id: container.clone(),
        command: cmd.to_vec(),
        env: resolve_env(&a.env),
        working_dir: a.workdir.unwrap_or_default(),
        user: a.user.unwrap_or_default(),
        tty: a.tty,
        stdin: a.interactive,
        size: Some(pb::TerminalSize { rows, cols }),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ExecRequest>(16);
    let _ = tx.send(pb::ExecRequest { msg: Some(Msg::Start(spec)) }).await;
    let out = cl.c.exec(ReceiverStream::new(rx)).await?.into_inner();
    let _raw = (a.tty && std::io::stdin().is_terminal()).then(tty::RawMode::enable);
    if a.interactive {
        let close = pb::ExecRequest { msg: Some(Msg::CloseStdin(true)) };
        tokio::spawn(pump_stdin(tx.clone(), |d| pb::ExecRequest { msg: Some(Msg::Stdin(d)) }, close));
    }
    if a.tty {
        tokio::spawn(forward_resizes(tx.clone()));
    }
    let code = relay(out.map(|m| m.map(|m| chunk!(m.msg))), "the command").await;
    drop(tx);
    code
}

/// Sends the terminal's new size on every SIGWINCH while the exec runs.
async fn forward_resizes(tx: tokio::sync::mpsc::Sender<pb::ExecRequest>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut sig) = signal(SignalKind::window_change()) else {
        return;
    };
    while sig.recv().await.is_some() {
        let (rows, cols) = tty::size();
        let msg = pb::exec_request::Msg::Resize(pb::TerminalSize { rows, cols });
        if tx.send(pb::ExecRequest { msg: Some(msg) }).await.is_err() {
            return;
        }
    }
}

/// `update`: new resource limits, live.
pub async fn update(cl: &mut Clients, res: ResourceOpts, containers: Vec<String>) -> Res<u8> {
    let r = resources(&res)?;
    let update = |mut c: Client, id| {
        let resources = Some(r.clone());
        async move { c.update_resources(pb::UpdateResourcesRequest { id, resources }).await }
    };
    each(&cl.c, containers, 1, update, echo).await
}

/// `stats`: one sample, or samples until interrupted.
pub async fn stats(cl: &mut Clients, no_stream: bool, format: Format, containers: Vec<String>) -> Res<u8> {
    let mut s = cl.c.stats(pb::StatsRequest { ids: containers, stream: !no_stream }).await?.into_inner();
    let mut prev = std::collections::HashMap::new();
    while let Some(m) = s.next().await {
        output::stats(&m?.stats, &mut prev, format)?;
    }
    Ok(0)
}

/// `commit`: a new image from the container's writable layer; prints its ID.
pub async fn commit(cl: &mut Clients, container: String, reference: String) -> Res<u8> {
    let img = cl.i.commit(pb::CommitRequest { container, reference }).await?.into_inner();
    println!("{}", img.id);
    Ok(0)
}

async fn inspect_one(cl: &mut Clients, c: &str) -> Res<pb::ContainerInfo> {
    let r = cl.c.inspect(pb::InspectContainerRequest { id: c.to_string() }).await?;
    Ok(r.into_inner().container.unwrap_or_default())
}

/// `-e KEY` takes KEY from this environment, like docker (dropped when unset).
fn resolve_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(
            |e| if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) },
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
                .map_err(|e| Exit::agent(format!("--security-opt seccomp={p}: {e}"))),
            _ => Ok(o.clone()),
        })
        .collect()
}

async fn create_container(cl: &mut Clients, o: &CreateOpts) -> Res<String> {
    let spec = spec_of(o)?;
    // `--mount type=volume,source=N,volume-opt=…`: N made with those options first.
    for m in &o.mount {
        if let crate::mounts::Mount::Named { name, options, .. } = crate::mounts::parse(m).map_err(Exit::agent)? {
            if !options.is_empty() {
                let options = options.into_iter().collect();
                let req = pb::CreateVolumeRequest { name, driver: String::new(), options, labels: Default::default() };
                cl.v.create(req).await?;
            }
        }
    }
    o.more.before_create(cl, &spec.image).await?;
    let id = cl.c.create(pb::CreateContainerRequest { spec: Some(spec) }).await?.into_inner().id;
    o.more.after_create(&id)?;
    Ok(id)
}

/// The API's ContainerSpec for `run`/`create` flags (also what `apply` builds from a
/// Compose service, by way of the same flags).
pub fn spec_of(o: &CreateOpts) -> Res<pb::ContainerSpec> {
    let (image, cmd) = o.image_and_cmd.split_first().ok_or_else(|| Exit::agent("an image is required"))?;
    // The image slot takes anything (the command after it may start with -): a flag there
    // is one we do not know, as docker says.
    if image.starts_with('-') {
        let flag = image.split('=').next().unwrap_or(image);
        return Err(Exit::agent(format!("unknown flag: {flag}\nSee 'agentctl run --help'.")));
    }
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(crate::flags::env_file(f, "--env-file")?);
    }
    env.extend(resolve_env(&o.env));
    let mut label_lines = Vec::new();
    for f in &o.label_file {
        label_lines.extend(crate::flags::label_file(f)?);
    }
    label_lines.extend(o.label.iter().cloned());
    let (entrypoint, entrypoint_set) = match &o.entrypoint {
        Some(e) if e.is_empty() => (vec![], true),
        Some(e) => (vec![e.clone()], true),
        None => (vec![], false),
    };
    let mut volumes = o.volume.clone();
    let mut tmpfs = o.tmpfs.clone();
    for m in &o.mount {
        match crate::mounts::parse(m).map_err(Exit::agent)? {
            crate::mounts::Mount::Volume(v) => volumes.push(v),
            crate::mounts::Mount::Tmpfs(t) => tmpfs.push(t),
            // A volume with `volume-opt`s is created before the container (create_container).
            crate::mounts::Mount::Named { volume, .. } => volumes.push(volume),
        }
    }
    let mut spec = pb::ContainerSpec {
        name: o.name.clone().unwrap_or_default(),
        image: image.clone(),
        command: cmd.to_vec(),
        entrypoint,
        entrypoint_set,
        env,
        working_dir: o.workdir.clone().unwrap_or_default(),
        user: o.user.clone().unwrap_or_default(),
        hostname: o.hostname.clone().unwrap_or_default(),
        tty: o.tty,
        stdin_open: o.interactive,
        network_mode: o.network.clone().unwrap_or_default(),
        labels: parse_kv(&label_lines, "label")?,
        auto_remove: o.rm,
        init: o.init,
        resources: Some(resources(&o.res)?),
        sysctls: parse_kv(&o.sysctl, "sysctl")?,
        group: o.group.clone().unwrap_or_default(),
        ports: o.publish.clone(),
        dns: o.dns.clone(),
        add_hosts: o.add_host.clone(),
        publish_all: o.publish_all,
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        volumes,
        volumes_from: o.volumes_from.clone(),
        tmpfs,
        read_only: o.read_only,
        security_opt: security_opts(&o.security_opt)?,
        privileged: o.privileged,
        devices: o.device.clone(),
        userns: o.userns.as_ref().map(cli::name).unwrap_or_default(),
        restart: o.restart.clone(),
        health: health(o)?,
        ipc: o.ipc.clone().unwrap_or_default(),
        pid: o.pid.clone().unwrap_or_default(),
        group_add: o.group_add.clone(),
        ..Default::default()
    };
    o.more.apply(&mut spec)?;
    o.logging.apply(&mut spec)?;
    o.net.apply(&mut spec)?;
    o.cg.apply(&mut spec);
    Ok(spec)
}

/// `--health-*` / `--no-healthcheck` as the API's HealthConfig (unset: the image's).
fn health(o: &CreateOpts) -> Res<Option<pb::HealthConfig>> {
    let dur = |flag: &str, v: &Option<String>| -> Res<i64> {
        let Some(v) = v else { return Ok(0) };
        let d = humantime::parse_duration(v)
            .map_err(|e| Exit::agent(format!("invalid argument {v:?} for \"--{flag}\" flag: {e}")))?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| Exit::agent(format!("--{flag} {v:?}: too long")))?;
        if ns < 1_000_000 {
            return Err(Exit::agent(format!("--{flag} {v:?}: must be at least 1ms")));
        }
        Ok(ns)
    };
    let any = o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_retries.is_some()
        || o.health_start_period.is_some()
        || o.health_start_interval.is_some();
    if o.no_healthcheck {
        if any {
            return Err(Exit::agent("--no-healthcheck conflicts with --health-* options"));
        }
        return Ok(Some(pb::HealthConfig { test: vec!["NONE".into()], ..Default::default() }));
    }
    if !any {
        return Ok(None);
    }
    if o.health_retries == Some(0) {
        return Err(Exit::agent("--health-retries cannot be 0 (leave it out for the default of 3)"));
    }
    Ok(Some(pb::HealthConfig {
        test: o.health_cmd.iter().flat_map(|c| ["CMD-SHELL".to_string(), c.clone()]).collect(),
        interval_ns: dur("health-interval", &o.health_interval)?,
        timeout_ns: dur("health-timeout", &o.health_timeout)?,
        start_period_ns: dur("health-start-period", &o.health_start_period)?,
        retries: o.health_retries.unwrap_or(0),
        start_interval_ns: dur("health-start-interval", &o.health_start_interval)?,
    }))
}

/// Starts a container; a failure exits like docker: 126/127 when the command could not be
/// run, else 125.
async fn start_or_explain(cl: &mut Clients, id: &str) -> Res {
    let Err(e) = cl.c.start(pb::StartContainerRequest { id: id.to_string() }).await else {
        return Ok(());
    };
    let info = inspect_one(cl, id).await.ok();
    let from_meta =
        e.metadata().get("agent-exit-code").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i32>().ok());
    let code = from_meta.or(info.map(|i| i.exit_code)).filter(|c| *c == 126 || *c == 127).unwrap_or(EXIT_AGENT as i32);
    Err(Exit(code as u8, format!("agentctl: Error response from agent: {}", e.message())))
}

/// Attaches, then starts, streams as `session` says, returns the exit code.
async fn attach_and_start(cl: &mut Clients, id: &str, session: Session, tty: bool) -> Res<u8> {
    use pb::attach_request::Msg;
    use pb::attach_response::Msg as Out;
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::AttachRequest>(16);
    let _ = tx
        .send(pb::AttachRequest { msg: Some(Msg::Start(pb::AttachStart { id: id.to_string(), keep_stdin: false })) })
        .await;
    let mut out = cl.c.attach(ReceiverStream::new(rx)).await?.into_inner();
    // Output is streamed from the first message on: only then start, so nothing is lost.
    let first = out.next().await;
    if !matches!(first, Some(Ok(pb::AttachResponse { msg: Some(Out::Attached(true)) }))) {
        return Err(Exit::agent("the agent did not acknowledge the attach"));
    }
    let raw = (tty && std::io::stdin().is_terminal()).then(tty::RawMode::enable);
    if let Err(e) = start_or_explain(cl, id).await {
        drop(raw);
        return Err(e);
    }
    super::attach::relay_session(cl, id, out, tx, session).await
}

/// Copies the stream to our stdout and stderr; returns the exit code it ends with (0-255).
async fn relay(mut out: impl Stream<Item = Result<Chunk, tonic::Status>> + Unpin, what: &str) -> Res<u8> {
    let mut code = None;
    while let Some(m) = out.next().await {
        match m? {
            Chunk::Stdout(d) => write_out(&d),
            Chunk::Stderr(d) => write_err(&d),
            Chunk::Exit(c) => code = Some(c),
            Chunk::Other => {}
        }
    }
    let lost = || Exit::agent(format!("lost the connection to the agent before {what} exited"));
    code.map(|c| c.clamp(0, 255) as u8).ok_or_else(lost)
}

/// Copies this process's stdin into `data` messages, then sends `close` at the end of input.
async fn pump_stdin<T>(tx: tokio::sync::mpsc::Sender<T>, data: impl Fn(Vec<u8>) -> T, close: T) {
    let mut input = tokio::io::stdin();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match input.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(close).await;
                return;
            }
            Ok(n) => {
                if tx.send(data(buf[..n].to_vec())).await.is_err() {
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
