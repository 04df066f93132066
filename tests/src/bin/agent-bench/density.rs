//! Density: N sleeping containers on one agent — start rate, memory per container (agentd,
//! shims, MemAvailable), `ps`/`inspect` latency at N, restart to serving with all N
//! re-adopted, and `rm -f` of all N.

use crate::latency::{self, channel, remove_all};
use crate::procfs;
use crate::stats::{Report, Samples};
use agent_proto::v1::container_service_client::ContainerServiceClient;
use agent_proto::v1::{ContainerState, ListContainersRequest};
use e2e::Agent;
use std::time::{Duration, Instant};

pub async fn run(agent: &mut Agent, n: usize, clients: usize, report: &mut Report) -> Result<(), String> {
    eprintln!("density: {n} containers, {clients} clients");
    let agentd = agent.pid().ok_or("agentd is not running")?;
    let avail0 = procfs::mem_available_kib();
    let rss0 = procfs::rss_kib(agentd);
    let (ids, wall) = latency::start_many(agent, clients, n).await?;
    report.figure(
        format!("N={n}: start, seconds per container ({clients} API clients)"),
        wall.as_secs_f64() / n as f64,
        "s",
    );
    report.figure(format!("N={n}: starts per second ({clients} API clients)"), n as f64 / wall.as_secs_f64(), "/s");
    // Let short-lived start-up work (exited helpers, freed buffers) settle before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let shims = procfs::shims_of(&agent.root());
    let shim_pss: u64 = shims.iter().map(|p| procfs::pss_kib(*p)).sum();
    let shim_rss: u64 = shims.iter().map(|p| procfs::rss_kib(*p)).sum();
    let rss1 = procfs::rss_kib(agentd);
    let pss1 = procfs::pss_kib(agentd);
    let avail1 = procfs::mem_available_kib();
    let nf = n as f64;
    report.figure(format!("N={n}: shims found"), shims.len() as f64, "");
    report.figure(format!("N={n}: agentd RSS before"), rss0 as f64 / 1024.0, "MiB");
    report.figure(format!("N={n}: agentd RSS with N"), rss1 as f64 / 1024.0, "MiB");
    report.figure(format!("N={n}: shim RSS per container"), shim_rss as f64 / nf / 1024.0, "MiB");
    report.figure(
        format!("N={n}: agent + shim PSS per container"),
        (shim_pss as f64 + pss1 as f64) / nf / 1024.0,
        "MiB",
    );
    report.figure(
        format!("N={n}: MemAvailable used per container (all told)"),
        avail0.saturating_sub(avail1) as f64 / nf / 1024.0,
        "MiB",
    );
    let mut ps = Samples::new(format!("N={n}: CLI `ps`"));
    let mut inspect = Samples::new(format!("N={n}: CLI `inspect` one container"));
    let mut list = Samples::new(format!("N={n}: API List"));
    let mut c = ContainerServiceClient::new(channel(agent).await?);
    let probe = ids.get(n / 2).cloned().unwrap_or_default();
    for _ in 0..10 {
        let t = Instant::now();
        cli_ok(agent, &["ps", "-q"])?;
        ps.push(t.elapsed());
        let t = Instant::now();
        cli_ok(agent, &["inspect", &probe])?;
        inspect.push(t.elapsed());
        let t = Instant::now();
        c.list(ListContainersRequest { all: true }).await.map_err(|e| format!("list: {}", e.message()))?;
        list.push(t.elapsed());
    }
    report.latencies.extend([ps, inspect, list]);
    // Restart: agentd killed (-9) and started again; serving = List answers with all N running.
    let t = Instant::now();
    agent.crash_and_restart();
    let mut c = ContainerServiceClient::new(channel(agent).await?);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = c
            .list(ListContainersRequest { all: true })
            .await
            .map(|r| r.into_inner().containers.iter().filter(|i| i.state == ContainerState::Running as i32).count())
            .unwrap_or(0);
        if running >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("after the restart only {running} of {n} containers are running"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report.figure(
        format!("N={n}: agent restart (kill -9) → serving, all re-adopted"),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
    );
    let t = Instant::now();
    remove_all(agent, &ids)?;
    report.figure(format!("N={n}: `rm -f` of all"), t.elapsed().as_secs_f64(), "s");
    Ok(())
}

fn cli_ok(agent: &Agent, args: &[&str]) -> Result<(), String> {
    let out = agent.cmd().args(args).output().map_err(|e| format!("agentctl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("agentctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}
