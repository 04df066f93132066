//! An example scheduler on `agent-client`: reads each node's capacity ledger (`Info`),
//! places N containers by bin-packing (best fit: the node with the least room that still
//! fits, so nodes fill one after another and big gaps stay free), creates and starts them,
//! and waits until every one is healthy. A node whose agent restarts meanwhile is ridden
//! out by the library's retries: creates are keyed by name, so one whose reply was lost is
//! found, not doubled. An example of the API, not a cluster manager.
//!
//! ```text
//! scheduler --nodes a,b,c --replicas 6 --cpus 0.2 --memory 32m --prefix web
//! ```
//! Nodes are `agentctl` contexts (`agentctl context create …`); without `--nodes`, all of
//! them; a node that does not answer within `--connect-timeout` is skipped, named on
//! stderr. Prints one line per step (`placed`, `created`, `started`, `healthy`) and exits 0
//! once all are healthy, 1 otherwise.

use agent_client::{
    Amount, Client, ContainerSpec, Error, HealthConfig, NodeInfo, Resources, RetryPolicy, Target, WaitFor,
};
use clap::Parser;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Place N containers on agent nodes by bin-packing and wait until they are healthy")]
struct Args {
    /// Contexts of the nodes, comma-separated [default: every context]
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// How many containers
    #[arg(long, short = 'n', default_value_t = 3)]
    replicas: usize,
    /// CPUs each reserves (its limit)
    #[arg(long, default_value_t = 0.1)]
    cpus: f64,
    /// Memory each reserves (its limit): bytes or 64k, 32m, 1g
    #[arg(long, default_value = "32m", value_parser = parse_size)]
    memory: u64,
    #[arg(long, default_value = "local/busybox:latest")]
    image: String,
    /// Containers are named PREFIX-0 … PREFIX-(N-1)
    #[arg(long, default_value = "sched")]
    prefix: String,
    /// The health check, run with sh -c in the container
    #[arg(long, default_value = "true")]
    health_cmd: String,
    /// The command the containers run
    #[arg(long, num_args = 1.., default_values = ["sleep", "3600"])]
    command: Vec<String>,
    /// Seconds a node has to answer at first: one that does not is skipped (named)
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().map(|n| n * mult).map_err(|_| format!("invalid size {s:?}: bytes or 64k, 32m, 1g"))
}

/// A node's name and what is still free on it.
struct Node {
    name: String,
    free: Amount,
}

/// Best fit: each item goes to the node where it fits with the least room left (memory,
/// then CPUs). Returns the node index of each item, or the index of the first item that fits
/// nowhere.
fn place(nodes: &mut [Node], want: Amount, n: usize) -> Result<Vec<usize>, usize> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let best = nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.free.fits(&want))
            .min_by(|(_, x), (_, y)| {
                let (x, y) = (x.free.minus(&want), y.free.minus(&want));
                (x.memory, x.cpus).partial_cmp(&(y.memory, y.cpus)).unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(k, _)| k)
            .ok_or(i)?;
        nodes[best].free = nodes[best].free.minus(&want);
        out.push(best);
    }
    Ok(out)
}

fn spec(a: &Args, name: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_string(),
        image: a.image.clone(),
        command: a.command.clone(),
        network_mode: "none".into(),
        labels: [("scheduler".to_string(), a.prefix.clone())].into(),
        resources: Some(Resources { cpus: a.cpus, memory: a.memory as i64, ..Default::default() }),
        health: Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), a.health_cmd.clone()],
            interval_ns: 500_000_000,
            timeout_ns: 5_000_000_000,
            retries: 3,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates and starts `name` on one of `nodes` (`first` first); a node that turns out to
/// be full (someone else took its room since Info) is skipped for the next that fits.
async fn run_one(
    a: &Args,
    clients: &[Client],
    infos: &mut [Node],
    first: usize,
    name: &str,
) -> Result<(usize, String), Error> {
    let want = Amount { cpus: a.cpus, memory: a.memory };
    let mut k = first;
    loop {
        match clients[k].create(spec(a, name)).await {
            Ok(c) => {
                let how = if c.existed { " (it was there)" } else { "" };
                println!("created {name} on {} id {}{how}", infos[k].name, &c.id[..12]);
                clients[k].start(&c.id).await?;
                println!("started {name} on {}", infos[k].name);
                return Ok((k, c.id));
            }
            Err(Error::ResourceExhausted { message, shortfall }) => {
                eprintln!("{name}: node {} is full ({shortfall:?}): {message}", infos[k].name);
                infos[k].free = Amount::default();
                let mut rest: Vec<Node> = infos.iter().map(|n| Node { name: n.name.clone(), free: n.free }).collect();
                k = place(&mut rest, want, 1).map_err(|_| Error::ResourceExhausted { message, shortfall })?[0];
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run(a: Args) -> Result<(), String> {
    let names = if a.nodes.is_empty() {
        agent_client::context::CtlConfig::load().map_err(|e| e.to_string())?.contexts.into_keys().collect()
    } else {
        a.nodes.clone()
    };
    if names.is_empty() {
        return Err("no nodes: name contexts with --nodes or create them with `agentctl context create`".into());
    }
    // Every node at once, each for at most --connect-timeout: a node that never comes up
    // is skipped, not waited for.
    let first = RetryPolicy {
        max_elapsed: Duration::from_secs(a.connect_timeout),
        connect_timeout: Duration::from_secs(a.connect_timeout.clamp(1, 5)),
        ..RetryPolicy::default()
    };
    let connects = names.iter().map(|n| async move {
        let t = Target::from_context(Some(n)).map_err(|e| format!("node {n}: {e}"))?;
        match Client::connect_with(&t, first).await {
            Ok(c) => Ok(Some(c.with_retry(RetryPolicy::default()))),
            Err(e @ Error::Unavailable(_)) => {
                eprintln!("node {n} skipped: {e}");
                Ok(None)
            }
            Err(e) => Err(format!("node {n}: {e}")),
        }
    });
    let connected = futures::future::join_all(connects).await;
    let mut clients = Vec::new();
    let mut nodes = Vec::new();
    for (n, c) in names.iter().zip(connected) {
        let Some(c) = c? else { continue };
        let info: NodeInfo = c.info().await.map_err(|e| format!("node {n}: info: {e}"))?;
        println!(
            "node {n}: allocatable {:.2} CPUs {} B, free {:.2} CPUs {} B",
            info.allocatable.cpus,
            info.allocatable.memory,
            info.free().cpus,
            info.free().memory
        );
        nodes.push(Node { name: n.clone(), free: info.free() });
        clients.push(c);
    }
    if clients.is_empty() {
        return Err(format!("no node answered within {} s", a.connect_timeout));
    }
    let want = Amount { cpus: a.cpus, memory: a.memory };
    let mut plan_nodes: Vec<Node> = nodes.iter().map(|n| Node { name: n.name.clone(), free: n.free }).collect();
    let plan = place(&mut plan_nodes, want, a.replicas).map_err(|i| {
        format!("{}-{i} fits on no node ({:.2} CPUs, {} B each; {} placed)", a.prefix, want.cpus, want.memory, i)
    })?;
    for (i, k) in plan.iter().enumerate() {
        println!("placed {}-{i} on {}", a.prefix, nodes[*k].name);
    }
    let mut running = Vec::new();
    for (i, k) in plan.iter().enumerate() {
        let name = format!("{}-{i}", a.prefix);
        let (k, id) = run_one(&a, &clients, &mut nodes, *k, &name).await.map_err(|e| format!("{name}: {e}"))?;
        running.push((name, k, id));
    }
    let waits = running.iter().map(|(name, k, id)| {
        let (c, node) = (&clients[*k], &nodes[*k].name);
        async move {
            c.wait(id, WaitFor::Healthy { fail_unhealthy: true })
                .await
                .map_err(|e| format!("{name} on {node}: {e}"))?;
            println!("healthy {name} on {node}");
            Ok::<_, String>(())
        }
    });
    let failed: Vec<String> = futures::future::join_all(waits).await.into_iter().filter_map(Result::err).collect();
    if !failed.is_empty() {
        return Err(failed.join("\n"));
    }
    println!("all {} healthy", a.replicas);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scheduler: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(free: &[(f64, u64)]) -> Vec<Node> {
        free.iter()
            .enumerate()
            .map(|(i, (c, m))| Node { name: format!("n{i}"), free: Amount { cpus: *c, memory: *m } })
            .collect()
    }

    #[test]
    fn best_fit_fills_the_tightest_node_first() {
        let want = Amount { cpus: 0.2, memory: 100 };
        let mut n = nodes(&[(2.0, 1000), (0.5, 250), (0.5, 1000)]);
        // n1 has the least room: two go there, then n2 (less memory left than n0), …
        assert_eq!(place(&mut n, want, 4).unwrap(), [1, 1, 2, 2]);
        let mut n = nodes(&[(0.5, 1000), (0.5, 1000)]);
        assert_eq!(place(&mut n, want, 5), Err(4), "the fifth fits nowhere");
        assert_eq!(parse_size("32m"), Ok(32 << 20));
        assert!(parse_size("x").is_err());
    }
}
