//! Clients nobody on this project wrote, with their default options, on the agent's unix
//! socket: Python grpcio (code generated from proto/ at test time), grpcurl (reflection),
//! and crictl 1.26.1 (kubelet-era CRI dialer). They send the socket path as the HTTP/2
//! `:authority`, which the agent must accept.
//!
//! The tools come from `scripts/test.sh`, which installs them and sets `K8S_TOOLS` (grpcurl
//! and a Python venv with grpcio, from `../shared/tools/k8s-tools.sh`) and `CRICTL` (the
//! crictl binary, from `../shared/tools/crictl.sh`). Without those variables the tests look
//! in `target/k8s-tools` and `target/crictl/bin/crictl` and skip, saying why, when a tool is
//! absent; with a variable set, a missing tool is a failure (CI must really run them).

use e2e::crictl::run;
use e2e::{eventually, privileged, Agent, Ctl};
use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

/// `path` if it exists; else None and a printed reason, or a panic when `var` named it.
fn tool(test: &str, var: &str, path: PathBuf, install: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(std::env::var_os(var).is_none(), "{test}: {var} is set but {} is missing", path.display());
    eprintln!("SKIP {test}: {} is missing (set {var}, or run {install})", path.display());
    None
}

fn k8s_tools() -> PathBuf {
    std::env::var_os("K8S_TOOLS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/k8s-tools"))
}

/// The unix socket path of an agent (`unix:///…/agentd.sock` → `/…/agentd.sock`).
fn socket(a: &Agent) -> String {
    a.host.strip_prefix("unix://").expect("unix agent").to_string()
}

#[test]
fn python_grpcio_with_default_options() {
    const T: &str = "python grpcio";
    if !privileged(T) {
        return;
    }
    let Some(python) = tool(T, "K8S_TOOLS", k8s_tools().join("venv/bin/python"), "../shared/tools/k8s-tools.sh") else {
        return;
    };
    // All but half a CPU reserved: the client's reservation of every CPU is short by the rest.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let a = Agent::start_with_config("pyclient", &format!("[capacity]\nreserved_cpus = {}\n", cpus - 0.5));
    let mut c = Command::new(python);
    c.arg(workspace().join("tests/clients/agent_client.py")).arg(workspace().join("proto")).arg(socket(&a));
    let r = run(c, 180);
    assert_eq!(r.code, 0, "the Python client failed:\n{}{}\nagent log:\n{}", r.stdout, r.stderr, a.log());
    // Exact, from the details: CPUs as the shortest decimal, memory in bytes.
    let shortfall = format!("agent_client: details: short by {} CPUs and {} bytes", cpus - 0.5, (3u64 << 30) + 12345);
    for want in [
        "events ['create', 'start', 'die', 'destroy']",
        "10 concurrent creates",
        "agent_client: volumes",
        "1 of 10 concurrent creates, 9 ALREADY_EXISTS",
        shortfall.as_str(),
        "agent_client: details: BadRequest --shm-size, START_FAILED exit_code 127",
        "agent_client: ok",
    ] {
        assert!(r.stdout.contains(want), "{want:?} missing from:\n{}", r.stdout);
    }
    assert_eq!(a.ok(&["ps", "-aq"]), "", "the client removed what it made");
    a.assert_no_leftovers();
}

#[test]
fn grpcurl_without_authority() {
    const T: &str = "grpcurl";
    if !privileged(T) {
        return;
    }
    let Some(grpcurl) = tool(T, "K8S_TOOLS", k8s_tools().join("bin/grpcurl"), "../shared/tools/k8s-tools.sh") else {
        return;
    };
    let a = Agent::start("grpcurl");
    let sock = socket(&a);
    // grpcurl [flags] ADDRESS [METHOD]
    let call = |flags: &[&str], args: &[&str]| {
        let mut c = Command::new(&grpcurl);
        c.args(["-plaintext", "-unix"]).args(flags).arg(&sock).args(args);
        let r = run(c, 60);
        assert_eq!(r.code, 0, "grpcurl {flags:?} {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    // Reflection (grpcurl 1.8.6 speaks v1alpha).
    let list = call(&[], &["list"]);
    let services: Vec<&str> = list.lines().collect();
    for want in [
        "agent.v1.ContainerService",
        "agent.v1.ImageService",
        "agent.v1.SystemService",
        "runtime.v1.RuntimeService",
        "runtime.v1.ImageService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&want), "{want} missing from:\n{list}");
    }
    let v: serde_json::Value = serde_json::from_str(&call(&[], &["agent.v1.SystemService/Version"])).expect("json");
    assert_eq!(v["apiVersion"], "agent.v1", "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"), "{v}");
    assert_eq!(v["os"], "linux", "{v}");
    let h: serde_json::Value = serde_json::from_str(&call(&[], &["grpc.health.v1.Health/Check"])).expect("json");
    assert_eq!(h["status"], "SERVING", "{h}");
    // A server stream: the event log holds a container's life.
    a.ok(&["run", "--rm", "--network", "none", "--name", "curlme", "local/busybox", "true"]);
    let ev = call(&["-d", r#"{"since": 0, "follow": false}"#], &["agent.v1.SystemService/Events"]);
    let actions: Vec<String> = serde_json::Deserializer::from_str(&ev)
        .into_iter::<serde_json::Value>()
        .map(|e| e.expect("event json"))
        .filter(|e| e["name"] == "curlme")
        .map(|e| e["action"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{ev}");
    a.assert_no_leftovers();
}

/// crictl with a config file of its own (never the machine's /etc/crictl.yaml).
struct Crictl {
    bin: PathBuf,
    config: PathBuf,
}

impl Crictl {
    fn cmd(&self, args: &[&str]) -> Ctl {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config).args(args);
        run(c, 120)
    }

    /// Runs `crictl ARGS`, asserts success, returns trimmed stdout.
    fn ok(&self, args: &[&str]) -> String {
        let r = self.cmd(args);
        assert_eq!(r.code, 0, "crictl {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout.trim().to_string()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("crictl {args:?}: {e}: {out}"))
    }
}

#[test]
fn crictl_runs_a_pod() {
    const T: &str = "crictl";
    if !privileged(T) {
        return;
    }
    let default = workspace().join("target/crictl/bin/crictl");
    let bin = std::env::var_os("CRICTL").map(PathBuf::from).unwrap_or(default);
    let Some(bin) = tool(T, "CRICTL", bin, "../shared/tools/crictl.sh target/crictl") else {
        return;
    };
    let a = Agent::start("crictl");
    let d = a.dir.path();
    let sock = socket(&a);
    let config = d.join("crictl.yaml");
    // The endpoints, and a deadline roomier than crictl's 2 s for a loaded 2-core machine.
    std::fs::write(&config, format!("runtime-endpoint: unix://{sock}\nimage-endpoint: unix://{sock}\ntimeout: 30\n"))
        .unwrap();
    let cr = Crictl { bin, config };
    let logs = d.join("pods/crictl");
    std::fs::create_dir_all(&logs).unwrap();
    let pod = d.join("pod.json");
    let ctr = d.join("ctr.json");
    let pod_cfg = serde_json::json!({
        "metadata": {"name": "crictl-pod", "namespace": "default", "attempt": 1,
                     "uid": "c71c7b1e-0000-4000-8000-000000000001"},
        "log_directory": logs,
        "linux": {}
    });
    let ctr_cfg = serde_json::json!({
        "metadata": {"name": "talker"},
        "image": {"image": "local/busybox"},
        "command": ["sh", "-c", "echo hello-from-crictl; exec sleep 300"],
        "log_path": "talker.0.log",
        "linux": {}
    });
    std::fs::write(&pod, pod_cfg.to_string()).unwrap();
    std::fs::write(&ctr, ctr_cfg.to_string()).unwrap();
    let (pod, ctr) = (pod.to_str().unwrap(), ctr.to_str().unwrap());

    let v = cr.ok(&["version"]);
    assert!(v.contains("RuntimeName:  node-agent") && v.contains("RuntimeApiVersion:  v1"), "{v}");
    // The ImageService: the image as the CRI names it (docker.io/ prefix, :latest).
    let img = cr.json(&["inspecti", "local/busybox"]);
    assert!(img["status"]["id"].as_str().is_some_and(|i| i.starts_with("sha256:")), "{img}");
    assert_eq!(img["status"]["repoTags"][0], "docker.io/local/busybox:latest", "{img}");

    let sb = cr.ok(&["runp", pod]);
    assert_eq!(sb.len(), 64, "pod id {sb:?}");
    assert_eq!(cr.ok(&["pods", "-q"]), sb);
    let st = cr.json(&["inspectp", &sb]);
    assert_eq!(st["status"]["state"], "SANDBOX_READY", "{st}");
    assert_eq!(st["status"]["metadata"]["name"], "crictl-pod", "{st}");

    // crictl 1.26 creates without pulling (pull-image-on-create defaults to false).
    let id = cr.ok(&["create", &sb, ctr, pod]);
    assert_eq!(id.len(), 64, "container id {id:?}");
    assert_eq!(cr.json(&["inspect", &id])["status"]["state"], "CONTAINER_CREATED");
    assert_eq!(cr.ok(&["start", &id]), id);
    let ps = cr.json(&["ps", "-o", "json"]);
    let running = ps["containers"].as_array().expect("containers");
    assert_eq!(running.len(), 1, "{ps}");
    assert_eq!(running[0]["id"], id.as_str(), "{ps}");
    assert_eq!(running[0]["podSandboxId"], sb.as_str(), "{ps}");
    assert_eq!(running[0]["state"], "CONTAINER_RUNNING", "{ps}");
    let st = cr.json(&["inspect", &id]);
    assert_eq!(st["status"]["state"], "CONTAINER_RUNNING", "{st}");
    assert_eq!(st["status"]["metadata"]["name"], "talker", "{st}");
    assert_eq!(st["status"]["logPath"], logs.join("talker.0.log").display().to_string(), "{st}");

    // crictl reads kubelet's log format from the log path.
    let saw = eventually(10, || cr.cmd(&["logs", &id]).stdout.lines().any(|l| l == "hello-from-crictl"));
    assert!(saw, "crictl logs: {:?}", cr.cmd(&["logs", &id]).stdout);
    let hi = cr.cmd(&["exec", "-s", &id, "echo", "hi"]);
    assert_eq!((hi.code, hi.stdout.lines().next()), (0, Some("hi")), "exec -s: {}{}", hi.stdout, hi.stderr);
    let three = cr.cmd(&["exec", "-s", &id, "sh", "-c", "exit 3"]);
    assert!(three.code != 0 && three.stderr.contains("exited with 3"), "exec -s exit 3: {}", three.stderr);

    assert_eq!(cr.ok(&["stop", &id]), id);
    let st = cr.json(&["inspect", &id]);
    assert_eq!(st["status"]["state"], "CONTAINER_EXITED", "{st}");
    assert_eq!(cr.ok(&["ps", "-q"]), "", "nothing runs after stop");
    assert_eq!(cr.ok(&["rm", &id]), id);
    assert_eq!(cr.ok(&["ps", "-a", "-q"]), "", "removed");

    assert!(cr.ok(&["stopp", &sb]).contains(&sb));
    assert_eq!(cr.json(&["inspectp", &sb])["status"]["state"], "SANDBOX_NOTREADY");
    assert!(cr.ok(&["rmp", &sb]).contains(&sb));
    assert_eq!(cr.ok(&["pods", "-q"]), "", "no pods after rmp");
    assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing of the pod is left in the agent");
    a.assert_no_leftovers();
}
