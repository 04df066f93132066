//! What a newcomer meets first: the README's start script on a clean state, a host without
//! a program the agent needs, two agents with default configs on one host, a plain log.

use e2e::{bin_dir, privileged, Agent};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Tests here whose agents take subnets from the default address pools run one at a time:
/// two agents choosing at the same instant could both pick the same free block.
static POOLS: Mutex<()> = Mutex::new(());

fn pools_lock() -> std::sync::MutexGuard<'static, ()> {
    POOLS.lock().unwrap_or_else(|p| p.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// The default bridge network's subnet as `network inspect bridge` shows it.
fn bridge_subnet(a: &Agent) -> String {
    let out = a.ok(&["network", "inspect", "bridge"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("network inspect json");
    let v = if v.is_array() { v[0].clone() } else { v };
    v["Subnet"].as_str().expect("Subnet").to_string()
}

fn in_subnet(ip: &str, subnet: &str) -> bool {
    let (net, len) = subnet.split_once('/').expect("cidr");
    let (ip, net): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (ip.parse().expect("ip"), net.parse().expect("net"));
    let len: u32 = len.parse().expect("len");
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn overlap(a: &str, b: &str) -> bool {
    let first = |s: &str| s.split_once('/').map(|(n, _)| n.to_string()).expect("cidr");
    in_subnet(&first(a), b) || in_subnet(&first(b), a)
}

/// Stops the agentd that start.sh left running (by its pid file), whatever the test saw.
struct StartedAgent(PathBuf);

impl Drop for StartedAgent {
    fn drop(&mut self) {
        let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse::<i32>().ok()) else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
}

#[test]
fn the_start_script_runs_a_container_on_the_default_network_from_a_clean_state() {
    if !privileged("the_start_script_runs_a_container_on_the_default_network_from_a_clean_state") {
        return;
    }
    let _pools = pools_lock();
    let dir = tempfile::Builder::new().prefix("e2e-start-").tempdir().expect("tempdir");
    let d = dir.path();
    let instance = format!("t{}start", std::process::id() % 100000);
    std::fs::write(d.join("agentd.toml"), "").expect("config");
    let _agent = StartedAgent(d.join("run/agentd.pid"));
    let out = Command::new("bash")
        .arg(repo().join("scripts/start.sh"))
        .env("BIN_DIR", bin_dir())
        .env("AGENTD_ROOT", d.join("root"))
        .env("AGENTD_RUN_DIR", d.join("run"))
        .env("AGENTD_INSTANCE", &instance)
        .env("AGENTD_CONFIG", d.join("agentd.toml"))
        .env("AGENTD_LOG", d.join("agentd.log"))
        .env("AGENTCTL_CONFIG", d.join("agentctl.toml"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run start.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(d.join("agentd.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "start.sh failed: {stdout}{}\nagent log:\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from container"), "{stdout}");
    assert!(stdout.contains("I am PID 1 in my own namespaces, address 10."), "on the default bridge: {stdout}");
    assert!(log.contains("subnet chosen from the address pools"), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file:\n{log}");
}

#[test]
fn a_missing_host_program_is_named_with_its_package_at_start_and_when_needed() {
    if !privileged("a_missing_host_program_is_named_with_its_package_at_start_and_when_needed") {
        return;
    }
    // A PATH with everything the agent runs except nft.
    let bin = tempfile::Builder::new().prefix("e2e-path-").tempdir().expect("tempdir");
    for p in ["ip", "cp"] {
        let found =
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].iter().map(|d| Path::new(d).join(p)).find(|p| p.exists());
        std::os::unix::fs::symlink(found.expect("host program"), bin.path().join(p)).expect("symlink");
    }
    let subnet = format!("10.87.{}.0/24", std::process::id() % 250);
    let path = bin.path().display().to_string();
    let a = Agent::start_exact("nonft", &format!("[network]\nbridge_subnet = \"{subnet}\"\n"), &[("PATH", &path)]);
    assert!(
        e2e::eventually(5, || a.log().contains("the host program `nft` is not installed (Debian package nftables)")),
        "start-up names the missing program: {}",
        a.log()
    );
    a.ok(&["image", "busybox"]);
    let r = a.ctl(&["run", "--rm", "local/busybox", "true"]);
    assert_eq!(r.code, 125, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("`nft`") && r.stderr.contains("nftables"), "{}", r.stderr);
    assert!(!r.stderr.contains("publishing ports"), "nothing was published: {}", r.stderr);
    // Without the firewall the container network still works: `--network none` runs.
    assert_eq!(a.ctl(&["run", "--rm", "--network", "none", "local/busybox", "true"]).code, 0);
    a.assert_no_leftovers();
}

#[test]
fn two_agents_with_default_configs_take_distinct_subnets_and_reach_their_containers() {
    if !privileged("two_agents_with_default_configs_take_distinct_subnets_and_reach_their_containers") {
        return;
    }
    let _pools = pools_lock();
    let a = Agent::start_exact("poola", "", &[]);
    a.ok(&["image", "busybox"]);
    a.ok(&["run", "-d", "--name", "c1", "local/busybox", "sleep", "60"]);
    let mut b = Agent::start_exact("poolb", "", &[]);
    b.ok(&["image", "busybox"]);
    b.ok(&["run", "-d", "--name", "c1", "local/busybox", "sleep", "60"]);
    let (sa, sb) = (bridge_subnet(&a), bridge_subnet(&b));
    assert!(!overlap(&sa, &sb), "{sa} and {sb} overlap");
    for (agent, subnet) in [(&a, &sa), (&b, &sb)] {
        let ip = agent.inspect("c1")["NetworkSettings"]["IPAddress"].as_str().unwrap_or_default().to_string();
        assert!(in_subnet(&ip, subnet), "{ip} in {subnet}");
        let ping = Command::new("busybox").args(["ping", "-c", "1", "-W", "2", &ip]).output().expect("ping");
        assert!(ping.status.success(), "host reaches {ip}: {}", String::from_utf8_lossy(&ping.stdout));
    }
    // A user network without --subnet comes from the pools too, beside both bridges.
    b.ok(&["network", "create", "poolnet"]);
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["network", "inspect", "poolnet"])).expect("json");
    let v = if v.is_array() { v[0].clone() } else { v };
    let sn = v["Subnet"].as_str().expect("Subnet").to_string();
    assert!(!overlap(&sn, &sa) && !overlap(&sn, &sb), "{sn} vs {sa}, {sb}");
    // The chosen subnet is kept across restarts.
    b.crash_and_restart();
    assert_eq!(bridge_subnet(&b), sb);
    assert!(!a.log().contains('\x1b') && !b.log().contains('\x1b'), "no colour codes in log files");
    b.ok(&["rm", "-f", "c1"]);
    b.ok(&["network", "rm", "poolnet"]);
}
