//! The verbs, one file per family: each a thin function from the parsed arguments to the
//! agent's calls and the output.

pub mod attach;
pub mod certs;
pub mod container;
pub mod context;
pub mod cp;
pub mod explain;
pub mod group;
pub mod image;
pub mod network;
pub mod prune;
pub mod system;
pub mod verbs;
pub mod volume;

use crate::cli::{Cmd, ResourceOpts, SystemCmd};
use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use std::collections::HashMap;

/// Runs a verb that talks to the agent.
pub async fn run(cl: &mut Clients, cmd: Cmd) -> Res<u8> {
    match cmd {
        Cmd::Run { detach, attach, opts } => container::run(cl, detach, attach, opts).await,
        Cmd::Create { opts } => container::create(cl, opts).await,
        Cmd::Start { attach, containers } => container::start(cl, attach, containers).await,
        Cmd::Stop { time, containers } => container::stop(cl, time, containers).await,
        Cmd::Restart { time, containers } => container::restart(cl, time, containers).await,
        Cmd::Kill { signal, containers } => container::kill(cl, signal, containers).await,
        Cmd::Rm { force, volumes, containers } => container::rm(cl, force, volumes, containers).await,
        Cmd::Wait { condition, fail_unhealthy, containers } => {
            container::wait(cl, condition, fail_unhealthy, containers).await
        }
        Cmd::Ps { all, quiet, format } => container::ps(cl, all, quiet, format).await,
        Cmd::Inspect { containers, format } => container::inspect(cl, containers, format).await,
        Cmd::Rename { container, new_name } => {
            cl.c.rename(pb::RenameContainerRequest { id: container, new_name }).await?;
            Ok(0)
        }
        Cmd::Verbs(v) => verbs::run(cl, v).await,
        Cmd::Port { container, private_port } => container::port(cl, container, private_port).await,
        Cmd::Explain { container, format } => explain::explain(cl, container, format).await,
        Cmd::Logs { follow, timestamps, tail, since, until, details, container } => {
            let o = container::LogArgs { follow, timestamps, tail, since, until, details };
            container::logs(cl, container, o).await
        }
        Cmd::Exec { interactive, tty, env, workdir, user, container_and_cmd } => {
            let a = container::ExecArgs { interactive, tty, env, workdir, user, container_and_cmd };
            container::exec(cl, a).await
        }
        Cmd::Update { res, containers } => container::update(cl, res, containers).await,
        Cmd::Stats { no_stream, format, containers } => container::stats(cl, no_stream, format, containers).await,
        Cmd::Commit { container, reference } => container::commit(cl, container, reference).await,
        Cmd::Images { quiet, format } => image::ls(cl, quiet, format).await,
        Cmd::Rmi { force, images } => image::rm(cl, force, images).await,
        Cmd::Image { cmd } => image::run(cl, cmd).await,
        Cmd::Pull { insecure, quiet, reference } => image::pull(cl, insecure, quiet, reference).await,
        Cmd::Build { tag, file, build_arg, no_cache, network, quiet, dir } => {
            let a =
                crate::build::Args { tags: tag, file, build_args: build_arg, no_cache, network, quiet, context: dir };
            crate::build::build(&mut cl.i, a).await
        }
        Cmd::Login { username, password, password_stdin, insecure, registry } => {
            image::login(cl, username, password, password_stdin, insecure, registry).await
        }
        Cmd::Save { output, images } => image::save(cl, output, images).await,
        Cmd::Group { cmd } => group::run(cl, cmd).await,
        Cmd::Network { cmd } => network::run(cl, cmd).await,
        Cmd::Volume { cmd } => volume::run(cl, cmd).await,
        Cmd::System { cmd: SystemCmd::Df { format } } => system::df(cl, format).await,
        Cmd::System { cmd: SystemCmd::Prune(o) } => prune::system(cl, o).await,
        Cmd::ContainerPrune(o) => prune::containers(cl, o).await,
        Cmd::Events { since, filter, no_follow, format } => system::events(cl, since, filter, no_follow, format).await,
        Cmd::Version { format } => system::version(cl, format).await,
        Cmd::Info { format } => system::info(cl, format).await,
        // Local files only: main runs these without connecting.
        Cmd::Context { .. } | Cmd::Certs { .. } | Cmd::Logout { .. } | Cmd::Completion { .. } => Ok(0),
        // Read their file, then connect: main runs these.
        Cmd::Diff(crate::compose::DiffArgs { container: Some(c), .. }) => verbs::diff(cl, c).await,
        Cmd::Apply(_) | Cmd::Diff(_) | Cmd::Down(_) => Ok(0),
    }
}

/// Calls the agent for each item in turn; each success is shown by `show` (docker prints
/// the name), each failure as the agent's message, and any failure makes the exit code 1.
async fn each<C: Clone, T, F>(
    client: &C,
    items: Vec<String>,
    width: usize,
    call: impl Fn(C, String) -> F,
    show: impl Fn(&str, T),
) -> Res<u8>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    use futures::StreamExt;
    let calls = items.into_iter().map(|item| {
        let f = call(client.clone(), item.clone());
        async move { (item, f.await) }
    });
    let mut results: Vec<(String, Result<T, tonic::Status>)> =
        futures::stream::iter(calls).buffered(width.max(1)).collect().await;
    // Run at once, one may have waited on another (a container whose network namespace
    // another one asked for uses): those go again, one by one, as a sequential run had them.
    if width > 1 {
        for (item, r) in results.iter_mut() {
            if matches!(r, Err(e) if e.code() == tonic::Code::FailedPrecondition) {
                *r = call(client.clone(), item.clone()).await;
            }
        }
    }
    let mut failed = false;
    for (item, r) in results {
        match r {
            Ok(v) => show(&item, v),
            Err(e) => {
                eprintln!("Error response from agent: {}", e.message());
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// How many containers `rm`, `stop`, `kill`, `pause` and `unpause` handle at once (docker's
/// CLI runs these verbs in parallel too, 50 at a time); results are shown in the order asked.
const PARALLEL: usize = 50;

/// Shows a success by the name it was asked for.
fn echo<T>(name: &str, _: T) {
    println!("{name}");
}

/// `KEY=VALUE` items (a bare `KEY` has an empty value).
pub(crate) fn parse_kv(items: &[String], what: &str) -> Res<HashMap<String, String>> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ if !l.is_empty() && !l.contains('=') => Ok((l.clone(), String::new())),
            _ => Err(Exit::agent(format!("invalid {what} {l:?}: use KEY=VALUE"))),
        })
        .collect()
}

/// Parses a docker size (`64m`, `1g`, `512k`, `100`, `64MB`) into bytes.
pub(crate) fn parse_size(s: &str, what: &str) -> Res<i64> {
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
        _ => Err(Exit::agent(format!("invalid {what} {s:?}: use a size like 64m or 1g"))),
    }
}

/// The limits of `run`, `update` and `group create` as the API takes them.
fn resources(r: &ResourceOpts) -> Res<pb::Resources> {
    let size = |v: &Option<String>, what: &str| {
        v.as_deref().map(|s| parse_size(s, what)).transpose().map(Option::unwrap_or_default)
    };
    if let Some(c) = r.cpus {
        if !(c > 0.0 && c.is_finite()) {
            return Err(Exit::agent(format!("invalid --cpus {c}: must be more than 0")));
        }
    }
    Ok(pb::Resources {
        cpus: r.cpus.unwrap_or(0.0),
        cpu_period: r.cpu_period.unwrap_or(0),
        cpu_quota: r.cpu_quota.unwrap_or(0),
        cpu_shares: r.cpu_shares.unwrap_or(0),
        cpuset_cpus: r.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: r.cpuset_mems.clone().unwrap_or_default(),
        memory: size(&r.memory, "--memory")?,
        memory_reservation: size(&r.memory_reservation, "--memory-reservation")?,
        memory_swap: size(&r.memory_swap, "--memory-swap")?,
        pids_limit: r.pids_limit.unwrap_or(0),
        blkio_weight: r.blkio_weight.unwrap_or(0),
        oom_score_adj: r.oom_score_adj.unwrap_or(0),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_labels() {
        assert_eq!(parse_size("64m", "--memory").ok(), Some(64 << 20));
        assert_eq!(parse_size("1GB", "--memory").ok(), Some(1 << 30));
        assert_eq!(parse_size("-1", "--memory-swap").ok(), Some(-1));
        assert!(parse_size("lots", "--memory").is_err());
        let kv = parse_kv(&["a=1".into(), "b".into()], "label").ok().unwrap_or_default();
        assert_eq!((kv["a"].as_str(), kv["b"].as_str()), ("1", ""));
        assert!(parse_kv(&["=x".into()], "label").is_err());
    }
}
