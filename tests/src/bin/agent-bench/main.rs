//! `agent-bench`: drives a real agentd (its own instance, root and subnet, started from the
//! binaries beside this one — build with `cargo build --release --workspace`) and prints what
//! the [speed] issue asks for: start latency through the CLI and the API for none / bridge /
//! `-p` (p50/p90/p99), start throughput with 1, 4 and 16 concurrent API clients, density at
//! N containers (seconds per container, agentd RSS, agent+shim PSS and MemAvailable per
//! container, `ps`/`inspect` latency, restart to serving, `rm -f` of all), and image import
//! and pull MB/s. A Markdown table on stdout; `--json FILE` writes every sample.
//!
//! It drives the agent with the generated gRPC client of `agent-proto` (the same API any
//! scheduler uses) and with the real `agentctl`. Root only (it runs containers).

mod density;
mod images;
mod latency;
mod procfs;
mod stats;

use clap::Parser;
use latency::Net;
use stats::Report;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Benchmark a real agentd: start latency, throughput, density, image MB/s")]
struct Opts {
    /// Runs per latency figure (after 3 warm-ups)
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Container counts for the density figures (comma-separated; 0 or empty: none)
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    density: Vec<usize>,
    /// Concurrent API clients for the throughput figures
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Containers started per throughput figure
    #[arg(long, default_value_t = 160)]
    throughput_total: usize,
    /// Size of the image used for import/pull MB/s (0: skip)
    #[arg(long, default_value_t = 64)]
    image_mib: usize,
    /// Write every sample as JSON to this file
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// A small run that only proves the harness works (N=10, 5 runs): the test command's
    #[arg(long)]
    quick: bool,
}

fn main() -> ExitCode {
    let mut o = Opts::parse();
    if o.quick {
        o.runs = 5;
        o.density = vec![10];
        o.clients = vec![1, 4];
        o.throughput_total = 8;
        o.image_mib = 4;
    }
    if !e2e::privileged("agent-bench") {
        return ExitCode::SUCCESS;
    }
    // The agent binaries are the ones beside this one (target/release or target/debug).
    if std::env::var_os("AGENT_BIN_DIR").is_none() {
        if let Some(dir) = std::env::current_exe().ok().and_then(|e| e.parent().map(|p| p.to_path_buf())) {
            std::env::set_var("AGENT_BIN_DIR", dir);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent-bench: tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::default();
    let result = rt.block_on(bench(&o, &mut report));
    print!("{}", report.markdown());
    if let Some(path) = &o.json {
        let meta = serde_json::json!({
            "date": chrono::Utc::now().to_rfc3339(),
            "bin_dir": e2e::bin_dir(),
            "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
            "runs": o.runs,
        });
        let text = serde_json::to_string_pretty(&report.json(meta)).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("agent-bench: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(o: &Opts, report: &mut Report) -> Result<(), String> {
    let mut agent = e2e::Agent::start("agentbench");
    let port = e2e::free_port();
    for net in [Net::None, Net::Bridge, Net::Publish(port)] {
        eprintln!("latency: CLI run --rm, {}", net.label());
        report.latencies.push(latency::cli_run_rm(&agent, net, o.runs)?);
    }
    for net in [Net::None, Net::Bridge, Net::Publish(port)] {
        eprintln!("latency: API lifecycle, {}", net.label());
        let ch = latency::channel(&agent).await?;
        report.latencies.push(latency::api_lifecycle(ch, net, o.runs).await?);
    }
    eprintln!("latency: CLI run -d");
    report.latencies.push(latency::cli_run_detached(&agent, o.runs)?);
    for &clients in &o.clients {
        eprintln!("throughput: {clients} clients");
        let (ids, wall) = latency::start_many(&agent, clients, o.throughput_total).await?;
        report.figure(
            format!("throughput: starts per second, {clients} concurrent API clients ({} containers)", ids.len()),
            ids.len() as f64 / wall.as_secs_f64(),
            "/s",
        );
        latency::remove_all(&agent, &ids)?;
    }
    for &n in o.density.iter().filter(|n| **n > 0) {
        density::run(&mut agent, n, 16, report).await?;
    }
    if o.image_mib > 0 {
        eprintln!("images: {} MiB", o.image_mib);
        images::run(&agent, o.image_mib, report)?;
    }
    agent.assert_no_leftovers();
    Ok(())
}
