//! Start latency through the CLI (whole `agentctl` process) and through the API (create →
//! start → wait → remove on one gRPC channel), and start throughput with concurrent clients.

use crate::stats::Samples;
use agent_proto::v1::container_service_client::ContainerServiceClient;
use agent_proto::v1::{
    ContainerSpec, CreateContainerRequest, RemoveContainerRequest, StartContainerRequest, WaitContainerRequest,
};
use e2e::Agent;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub const IMAGE: &str = "local/busybox:latest";

/// How a measured container is networked.
#[derive(Clone, Copy)]
pub enum Net {
    None,
    Bridge,
    /// The bridge and one published port (127.0.0.1:PORT:80).
    Publish(u16),
}

impl Net {
    pub fn label(self) -> &'static str {
        match self {
            Net::None => "network none",
            Net::Bridge => "bridge",
            Net::Publish(_) => "bridge + -p",
        }
    }

    fn cli_args(self) -> Vec<String> {
        match self {
            Net::None => vec!["--network".into(), "none".into()],
            Net::Bridge => vec![],
            Net::Publish(p) => vec!["-p".into(), format!("127.0.0.1:{p}:80")],
        }
    }

    fn apply(self, spec: &mut ContainerSpec) {
        match self {
            Net::None => spec.network_mode = "none".into(),
            Net::Bridge => spec.network_mode = "bridge".into(),
            Net::Publish(p) => {
                spec.network_mode = "bridge".into();
                spec.ports = vec![format!("127.0.0.1:{p}:80")];
            }
        }
    }
}

/// `agentctl run --rm [NET] IMAGE /bin/true`, `runs` times (after 3 warm-ups).
pub fn cli_run_rm(agent: &Agent, net: Net, runs: usize) -> Result<Samples, String> {
    let mut s = Samples::new(format!("CLI `run --rm` /bin/true, {}", net.label()));
    for i in 0..runs + 3 {
        let t = Instant::now();
        let out = agent
            .cmd()
            .arg("run")
            .arg("--rm")
            .args(net.cli_args())
            .args([IMAGE, "/bin/true"])
            .output()
            .map_err(|e| format!("agentctl: {e}"))?;
        let d = t.elapsed();
        if !out.status.success() {
            return Err(format!("run --rm ({}): {}", net.label(), String::from_utf8_lossy(&out.stderr)));
        }
        if i >= 3 {
            s.push(d);
        }
    }
    Ok(s)
}

/// `agentctl run -d --network none IMAGE sleep 3600`, `runs` times; the containers are removed after.
pub fn cli_run_detached(agent: &Agent, runs: usize) -> Result<Samples, String> {
    let mut s = Samples::new("CLI `run -d` sleep (detached start), network none");
    let mut ids = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = agent
            .cmd()
            .args(["run", "-d", "--network", "none", IMAGE, "sleep", "3600"])
            .output()
            .map_err(|e| format!("agentctl: {e}"))?;
        s.push(t.elapsed());
        if !out.status.success() {
            return Err(format!("run -d: {}", String::from_utf8_lossy(&out.stderr)));
        }
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    remove_all(agent, &ids)?;
    Ok(s)
}

/// `agentctl rm -f` of `ids` in one call (nothing when empty).
pub fn remove_all(agent: &Agent, ids: &[String]) -> Result<(), String> {
    for chunk in ids.chunks(500) {
        let out = agent.cmd().arg("rm").arg("-f").args(chunk).output().map_err(|e| format!("agentctl: {e}"))?;
        if !out.status.success() {
            return Err(format!("rm -f: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(())
}

pub async fn channel(agent: &Agent) -> Result<Channel, String> {
    agent_proto::connect(&agent.host).await.map_err(|e| e.to_string())
}

fn spec(net: Net, command: &[&str]) -> ContainerSpec {
    let mut s = ContainerSpec {
        image: IMAGE.into(),
        command: command.iter().map(|c| c.to_string()).collect(),
        ..Default::default()
    };
    net.apply(&mut s);
    s
}

/// create → start → wait → remove of `/bin/true` through the API, `runs` times (after 3 warm-ups).
pub async fn api_lifecycle(ch: Channel, net: Net, runs: usize) -> Result<Samples, String> {
    let mut c = ContainerServiceClient::new(ch);
    let mut s = Samples::new(format!("API create→start→wait→remove /bin/true, {}", net.label()));
    for i in 0..runs + 3 {
        let t = Instant::now();
        let id = c
            .create(CreateContainerRequest { spec: Some(spec(net, &["/bin/true"])) })
            .await
            .map_err(|e| format!("create: {}", e.message()))?
            .into_inner()
            .id;
        c.start(StartContainerRequest { id: id.clone() }).await.map_err(|e| format!("start: {}", e.message()))?;
        let w = c
            .wait(WaitContainerRequest { id: id.clone(), ..Default::default() })
            .await
            .map_err(|e| format!("wait: {}", e.message()))?
            .into_inner();
        c.remove(RemoveContainerRequest { id, force: false, remove_volumes: false })
            .await
            .map_err(|e| format!("remove: {}", e.message()))?;
        let d = t.elapsed();
        if w.exit_code != 0 {
            return Err(format!("/bin/true exited {} ({})", w.exit_code, w.error));
        }
        if i >= 3 {
            s.push(d);
        }
    }
    Ok(s)
}

/// Creates and starts `total` sleeping containers (network none) from `clients` concurrent
/// API clients (a channel each); returns their IDs and the wall time.
pub async fn start_many(agent: &Agent, clients: usize, total: usize) -> Result<(Vec<String>, Duration), String> {
    let mut chans = Vec::new();
    for _ in 0..clients {
        chans.push(channel(agent).await?);
    }
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for ch in chans {
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = ContainerServiceClient::new(ch);
            let mut ids = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < total {
                let id = c
                    .create(CreateContainerRequest { spec: Some(spec(Net::None, &["sleep", "36000"])) })
                    .await
                    .map_err(|e| format!("create: {}", e.message()))?
                    .into_inner()
                    .id;
                ids.push(id.clone());
                c.start(StartContainerRequest { id }).await.map_err(|e| format!("start: {}", e.message()))?;
            }
            Ok::<_, String>(ids)
        }));
    }
    let mut ids = Vec::new();
    let mut err = None;
    for task in tasks {
        match task.await {
            Ok(Ok(mut v)) => ids.append(&mut v),
            Ok(Err(e)) => err = Some(e),
            Err(e) => err = Some(format!("client task: {e}")),
        }
    }
    let wall = t.elapsed();
    match err {
        // The caller removes what was started before the failure.
        Some(e) => Err(format!("{e} (after {} containers)", ids.len())),
        None => Ok((ids, wall)),
    }
}
