//! The remote API: mutual TLS, roles from the client certificate, the audit log, SIGHUP
//! reload of the certificates, the unix socket's group.

use e2e::{bin_dir, free_port, privileged, Agent};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `agentctl certs …` (no agent needed).
fn certs(args: &[&str]) {
    let o = Command::new(bin_dir().join("agentctl")).arg("certs").args(args).output().expect("agentctl certs");
    assert!(o.status.success(), "agentctl certs {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// An agent that serves mutual TLS on a loopback port with the files in `live`.
fn tls_agent(test: &str, live: &Path, extra_config: &str) -> (Agent, String) {
    let port = free_port();
    let cfg = format!(
        "tls_cert = \"{0}/server.pem\"\ntls_key = \"{0}/server-key.pem\"\ntls_client_ca = \"{0}/ca.pem\"\n{extra_config}",
        live.display()
    );
    let url = format!("tcp://127.0.0.1:{port}");
    let a = Agent::start_listening(test, &cfg, std::slice::from_ref(&url));
    // The TCP listener is up once the unix one is (both bound before "ready"); still, wait for it.
    assert!(e2e::eventually(10, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()), "{}", a.log());
    (a, url)
}

/// `agentctl` against `url` as client `who` of the CA in `dir`.
fn remote(a: &Agent, url: &str, ca: &Path, dir: &Path, who: &str, args: &[&str]) -> e2e::Ctl {
    a.cmd()
        .env_remove("AGENT_HOST")
        .arg("--host")
        .arg(url)
        .arg("--tlscacert")
        .arg(ca.join("ca.pem"))
        .arg("--tlscert")
        .arg(dir.join(format!("{who}.pem")))
        .arg("--tlskey")
        .arg(dir.join(format!("{who}-key.pem")))
        .args(args)
        .output()
        .expect("agentctl")
        .into()
}

fn copy_identity(from: &Path, to: &Path) {
    for f in ["server.pem", "server-key.pem", "ca.pem"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copy cert");
    }
}

fn audit_lines(a: &Agent) -> Vec<serde_json::Value> {
    std::fs::read_to_string(a.root().join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

#[test]
fn mutual_tls_roles_and_audit() {
    if !privileged("mutual_tls_roles_and_audit") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    let other = tmp.path().join("other");
    let live = tmp.path().join("live");
    certs(&["init", "--dir", fleet.to_str().unwrap()]);
    certs(&["init", "--dir", other.to_str().unwrap()]);
    certs(&["client", "--dir", fleet.to_str().unwrap(), "--role", "admin", "--expired", "old"]);
    certs(&["client", "--dir", fleet.to_str().unwrap(), "--role", "viewer", "sched"]);
    std::fs::create_dir(&live).unwrap();
    copy_identity(&fleet, &live);
    let key_mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(fleet.join("ca-key.pem")).unwrap().permissions());
    assert_eq!(key_mode & 0o777, 0o600, "private keys are 0600");

    // The config maps CN=sched to operator although its OU says viewer: CN wins.
    let (mut a, url) = tls_agent("mtls", &live, "[roles]\n\"CN=sched\" = \"operator\"\n");
    let ok = |who: &str, args: &[&str]| {
        let r = remote(&a, &url, &fleet, &fleet, who, args);
        assert_eq!(r.code, 0, "{who} {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    let denied = |who: &str, args: &[&str], role: &str, method: &str| {
        let r = remote(&a, &url, &fleet, &fleet, who, args);
        assert_ne!(r.code, 0, "{who} {args:?} should be refused: {}", r.stdout);
        let want = format!("role {role} may not call {method}");
        assert!(r.stderr.contains(&want), "{who} {args:?}: want {want:?}, got {}", r.stderr);
    };

    // admin may do everything, including the agent's own configuration.
    assert!(ok("admin", &["version"]).contains("Server"));
    ok("admin", &["image", "busybox"]);
    ok("admin", &["network", "create", "--subnet", "10.231.7.0/24", "tlsnet"]);
    ok("admin", &["network", "rm", "tlsnet"]);
    // operator: containers and images, not networks.
    let out =
        ok("operator", &["run", "--rm", "--network", "none", "--name", "remote1", "local/busybox", "echo", "over-tls"]);
    assert!(out.contains("over-tls"), "{out}");
    denied("operator", &["network", "create", "x"], "operator", "/agent.v1.NetworkService/Create");
    // --privileged is for admins unless the config lets operators.
    let r = remote(&a, &url, &fleet, &fleet, "operator", &["create", "--privileged", "local/busybox", "true"]);
    assert!(r.stderr.contains("role operator may not create containers with --privileged"), "{}", r.stderr);
    let id = ok("admin", &["create", "--privileged", "--network", "none", "local/busybox", "true"]);
    ok("admin", &["rm", id.trim()]);
    // Volumes: plain ones for operators (viewers only look), a mount on the host (driver
    // options) for admins.
    ok("operator", &["volume", "create", "opvol"]);
    let r = remote(
        &a,
        &url,
        &fleet,
        &fleet,
        "operator",
        &["volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "opt"],
    );
    assert!(r.stderr.contains("role operator may not create volume opt with driver options"), "{}", r.stderr);
    assert!(ok("viewer", &["volume", "ls", "-q"]).contains("opvol"));
    denied("viewer", &["volume", "rm", "opvol"], "viewer", "/agent.v1.VolumeService/Remove");
    ok("operator", &["volume", "rm", "opvol"]);
    // Nor anything else that reaches the host as root.
    for (flags, what) in [
        (&["-v", "/:/host"][..], "a host bind mount"),
        (&["--cap-add", "SYS_ADMIN"][..], "--cap-add SYS_ADMIN"),
        (&["--network", "host"][..], "--network host"),
        (&["--security-opt", "seccomp=unconfined"][..], "--security-opt seccomp=unconfined"),
        (&["--device", "/dev/null"][..], "a host device"),
        (&["--ipc", "host"][..], "--ipc host"),
        (&["--pid", "host"][..], "--pid host"),
        (&["--uts", "host"][..], "--uts host"),
        (&["--cgroupns", "host"][..], "--cgroupns host"),
        (&["--device-cgroup-rule", "b 254:0 rwm"][..], "a device cgroup rule (--device-cgroup-rule 'b 254:0 rwm')"),
        (&["--cgroup-parent", "/elsewhere"][..], "a cgroup outside the agent's (--cgroup-parent /elsewhere)"),
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend(["local/busybox", "true"]);
        let r = remote(&a, &url, &fleet, &fleet, "operator", &args);
        assert!(r.stderr.contains(&format!("role operator may not create containers with {what}")), "{}", r.stderr);
    }
    // Nor may an operator borrow the host from an admin's container: by joining its
    // namespaces, or by entering it.
    ok(
        "admin",
        &["run", "-d", "--name", "hostpid", "--pid", "host", "--network", "none", "local/busybox", "sleep", "300"],
    );
    for flag in ["--pid", "--ipc", "--network"] {
        let r = remote(
            &a,
            &url,
            &fleet,
            &fleet,
            "operator",
            &["create", flag, "container:hostpid", "local/busybox", "true"],
        );
        assert!(
            r.stderr.contains(&format!(
                "may not create containers with {flag} container:hostpid (that container was created with --pid host)"
            )),
            "{flag}: {}",
            r.stderr
        );
    }
    let r = remote(&a, &url, &fleet, &fleet, "operator", &["exec", "hostpid", "true"]);
    assert!(
        r.stderr.contains("role operator may not exec in container hostpid: it was created with --pid host"),
        "{}",
        r.stderr
    );
    ok("admin", &["exec", "hostpid", "true"]);
    ok("admin", &["rm", "-f", "hostpid"]);
    // Harmless additions stay allowed.
    let id = ok("operator", &["create", "--cap-add", "NET_ADMIN", "--network", "none", "local/busybox", "true"]);
    ok("operator", &["rm", id.trim()]);
    // viewer: read-only.
    ok("viewer", &["ps", "-a"]);
    ok("viewer", &["images"]);
    denied("viewer", &["create", "local/busybox"], "viewer", "/agent.v1.ContainerService/Create");
    denied("viewer", &["rmi", "local/busybox"], "viewer", "/agent.v1.ImageService/Remove");
    // The role map: CN=sched is an operator.
    ok("sched", &["create", "--name", "bysched", "--network", "none", "local/busybox", "true"]);
    ok("sched", &["rm", "bysched"]);

    // Refused at the handshake: a client of another CA, an expired certificate.
    for (ca, dir, who) in [(&fleet, &other, "admin"), (&fleet, &fleet, "old")] {
        let r = remote(&a, &url, ca, dir, who, &["ps"]);
        assert_eq!(r.code, 1, "{who} from {} must be refused: {}", dir.display(), r.stdout);
    }
    assert!(a.log().contains("TLS handshake refused"), "{}", a.log());
    // No client certificate at all: the handshake is refused too.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ca_pem = std::fs::read(fleet.join("ca.pem")).unwrap();
    let res: Result<(), String> = rt.block_on(async {
        use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
        let ep = Endpoint::from_shared(url.replace("tcp://", "https://"))
            .unwrap()
            .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca_pem)))
            .map_err(|e| e.to_string())?;
        let ch = ep.connect().await.map_err(|e| e.to_string())?;
        let mut c = agent_proto::v1::system_service_client::SystemServiceClient::new(ch);
        c.version(agent_proto::v1::VersionRequest {}).await.map_err(|e| e.to_string())?;
        Ok(())
    });
    assert!(res.is_err(), "a client without a certificate was served");

    // A pull from a registry that is not there fails after the stream started.
    let r = remote(&a, &url, &fleet, &fleet, "operator", &["pull", "--insecure", "127.0.0.1:9/no/such:1"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    // The audit log: mutating and refused calls, with peer, role, target and result.
    let lines = audit_lines(&a);
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| lines.iter().any(pred);
    assert!(
        find(&|l| l["method"] == "/agent.v1.ContainerService/Create"
            && l["peer"].as_str().is_some_and(|p| p.starts_with("CN=operator"))
            && l["role"] == "operator"
            && l["target"]["spec.name"] == "remote1"
            && l["result"] == "Ok"),
        "operator's create not audited: {lines:#?}"
    );
    assert!(
        find(&|l| l["method"] == "/agent.v1.ContainerService/Create"
            && l["role"] == "viewer"
            && l["result"] == "PermissionDenied"),
        "viewer's refused create not audited"
    );
    assert!(
        find(&|l| l["method"] == "/agent.v1.ImageService/Remove"
            && l["target"]["image"] == "local/busybox"
            && l["result"] == "PermissionDenied"),
        "refused rmi not audited with its target: {lines:#?}"
    );
    assert!(
        find(&|l| l["method"] == "/agent.v1.ContainerService/Remove"
            && l["peer"].as_str().is_some_and(|p| p.starts_with("CN=sched"))
            && l["target"]["id"] == "bysched"),
        "sched's rm not audited"
    );
    assert!(!find(&|l| l["method"] == "/agent.v1.ContainerService/List"), "read-only calls are not audited");
    assert!(
        find(&|l| l["method"] == "/agent.v1.ImageService/Pull"
            && l["target"]["reference"] == "127.0.0.1:9/no/such:1"
            && l["result"] == "Unavailable"),
        "a streaming call that fails mid-stream is audited with its real result: {lines:#?}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(a.root().join("audit.log")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // SIGHUP: the agent takes the other fleet's certificates; old clients are refused, new served.
    copy_identity(&other, &live);
    let pid = a.pid().expect("agentd pid") as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(e2e::eventually(10, || a.log().contains("TLS certificates reloaded")), "{}", a.log());
    let r = remote(&a, &url, &other, &other, "viewer", &["ps"]);
    assert_eq!(r.code, 0, "new fleet after reload: {}", r.stderr);
    let r = remote(&a, &url, &fleet, &fleet, "admin", &["ps"]);
    assert_eq!(r.code, 1, "old fleet must be refused after reload");
    // A broken file on reload keeps the working certificates.
    std::fs::write(live.join("server.pem"), "garbage").unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP).unwrap();
    assert!(e2e::eventually(10, || a.log().contains("TLS reload failed")), "{}", a.log());
    assert_eq!(remote(&a, &url, &other, &other, "viewer", &["ps"]).code, 0);

    a.stop();
    a.assert_no_leftovers();
}

#[test]
fn contexts_pick_the_agent_and_its_tls_files() {
    if !privileged("contexts_pick_the_agent_and_its_tls_files") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    certs(&["init", "--dir", fleet.to_str().unwrap()]);
    let (mut a, url) = tls_agent("ctx", &fleet, "");
    let ctl = |args: &[&str]| -> e2e::Ctl { a.cmd().env_remove("AGENT_HOST").args(args).output().unwrap().into() };
    let p = |f: &str| -> String { fleet.join(f).display().to_string() };
    let r = ctl(&[
        "context",
        "create",
        "node1",
        "--host",
        &url,
        "--tlscacert",
        &p("ca.pem"),
        "--tlscert",
        &p("viewer.pem"),
        "--tlskey",
        &p("viewer-key.pem"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ctl(&["context", "use", "node1"]).code, 0);
    let ls = ctl(&["context", "ls"]).stdout;
    assert!(ls.contains("node1 *") && ls.contains(&url), "{ls}");
    // Through the context: a viewer.
    let r = ctl(&["ps"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = ctl(&["create", "local/busybox"]);
    assert!(r.stderr.contains("role viewer may not call"), "{}", r.stderr);
    // --context default / --host win over the current context.
    let r = ctl(&["--context", "default", "--host", &a.host, "network", "ls"]);
    assert_eq!(r.code, 0, "local socket is admin: {}", r.stderr);
    // Bad input is named.
    let r = ctl(&["--context", "nope", "ps"]);
    assert!(r.code == 1 && r.stderr.contains("\"nope\""), "{}", r.stderr);
    let r = ctl(&["--tlscert", &p("admin.pem"), "ps"]);
    assert!(r.stderr.contains("missing --tlscacert, --tlskey") || r.code == 1, "{}", r.stderr);
    assert_eq!(ctl(&["context", "rm", "node1"]).code, 0);
    assert!(!ctl(&["context", "ls"]).stdout.contains("node1"));
    a.stop();
    a.assert_no_leftovers();
}

#[test]
fn listeners_are_guarded() {
    if !privileged("listeners_are_guarded") {
        return;
    }
    // Plain TCP without --insecure-tcp: agentd refuses to start, naming the fix.
    let tmp = tempfile::tempdir().unwrap();
    let o = Command::new(bin_dir().join("agentd"))
        .args(["--root", &tmp.path().join("r").display().to_string()])
        .args(["--run-dir", &tmp.path().join("run").display().to_string()])
        .args(["--instance", "tguard", "--listen", &format!("tcp://127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("without TLS") && err.contains("--tls-client-ca"), "{err}");
    // The unix socket: 0660 and owned by the configured group.
    let mut a = Agent::start_listening("sockgroup", "socket_group = \"nogroup\"\n", &[]);
    let sock = PathBuf::from(a.host.trim_start_matches("unix://"));
    let md = std::fs::metadata(&sock).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(md.permissions().mode() & 0o777, 0o660);
    let gid = nix::unistd::Group::from_name("nogroup").unwrap().expect("nogroup exists").gid;
    assert_eq!(md.gid(), gid.as_raw());
    a.stop();
    a.assert_no_leftovers();
}

/// `--context a,b,c VERB`: three agents, each behind its own mTLS listener, answer at once;
/// a NODE column merges the tables; a stopped node is reported failed while the others'
/// results are printed.
#[test]
fn fan_out_over_three_nodes() {
    if !privileged("fan_out_over_three_nodes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    certs(&["init", "--dir", fleet.to_str().unwrap()]);
    let mut agents: Vec<(Agent, String)> = ["fana", "fanb", "fanc"].iter().map(|t| tls_agent(t, &fleet, "")).collect();
    for (i, (a, _)) in agents.iter().enumerate() {
        assert_eq!(a.ctl(&["image", "busybox"]).code, 0);
        a.ok(&["create", "--name", &format!("svc{i}"), "local/busybox", "true"]);
    }
    let p = |f: &str| -> String { fleet.join(f).display().to_string() };
    // One agentctl config holds the three contexts.
    let config = tmp.path().join("agentctl.toml");
    let ctl = |args: &[&str]| -> e2e::Ctl {
        Command::new(bin_dir().join("agentctl"))
            .env_remove("AGENT_HOST")
            .env("AGENTCTL_CONFIG", &config)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    for (name, (_, url)) in ["a", "b", "c"].iter().zip(&agents) {
        let r = ctl(&[
            "context",
            "create",
            name,
            "--host",
            url,
            "--tlscacert",
            &p("ca.pem"),
            "--tlscert",
            &p("admin.pem"),
            "--tlskey",
            &p("admin-key.pem"),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = ctl(&["--context", "a,b,c", "ps", "-a"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("NODE") && lines[0].contains("NAMES"), "{}", r.stdout);
    for (node, svc) in [("a", "svc0"), ("b", "svc1"), ("c", "svc2")] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{node} ")) && l.ends_with(svc)),
            "{node}/{svc}:\n{}",
            r.stdout
        );
    }
    let r = ctl(&["--context", "all", "ps", "-a", "--format", "json"]);
    let nodes: Vec<String> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["Node"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(nodes, ["a", "b", "c"], "{}", r.stdout);
    // A node that is down fails alone.
    agents[1].0.stop();
    let r = ctl(&["--context", "a,b,c", "--node-timeout", "20", "ps", "-a"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("b: FAILED"), "{}", r.stderr);
    assert!(r.stdout.contains("svc0") && r.stdout.contains("svc2") && !r.stdout.contains("svc1"), "{}", r.stdout);
    let r = ctl(&["--context", "a,nope", "ps"]);
    assert!(r.code == 1 && r.stderr.contains("\"nope\""), "{}", r.stderr);
    for (i, (a, _)) in agents.iter_mut().enumerate() {
        if i == 1 {
            a.crash_and_restart();
        }
        a.ok(&["rm", &format!("svc{i}")]);
        a.stop();
        a.assert_no_leftovers();
    }
}

/// The example scheduler (client/examples/scheduler.rs) over three agents behind mTLS, each
/// with room for two containers: it places six by bin-packing, two per node, and waits
/// until all are healthy, while node b's agent is killed (-9) and restarted as soon as its
/// first container is created.
#[test]
fn scheduler_example_places_all_while_a_node_restarts() {
    if !privileged("scheduler_example_places_all_while_a_node_restarts") {
        return;
    }
    use std::io::BufRead;
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    certs(&["init", "--dir", fleet.to_str().unwrap()]);
    // 0.5 allocatable CPUs a node: two containers of 0.2 each.
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let cfg = format!("[capacity]\nreserved_cpus = {}\n", cpus - 0.5);
    let mut agents: Vec<(Agent, String)> =
        ["scha", "schb", "schc"].iter().map(|t| tls_agent(t, &fleet, &cfg)).collect();
    let p = |f: &str| -> String { fleet.join(f).display().to_string() };
    let config = tmp.path().join("agentctl.toml");
    for (name, (a, url)) in ["a", "b", "c"].iter().zip(&agents) {
        assert_eq!(a.ctl(&["image", "busybox"]).code, 0);
        let r: e2e::Ctl = Command::new(bin_dir().join("agentctl"))
            .env_remove("AGENT_HOST")
            .env("AGENTCTL_CONFIG", &config)
            .args(["context", "create", name, "--host", url])
            .args(["--tlscacert", &p("ca.pem"), "--tlscert", &p("admin.pem"), "--tlskey", &p("admin-key.pem")])
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let mut child = Command::new(bin_dir().join("examples").join("scheduler"))
        .env("AGENTCTL_CONFIG", &config)
        .args(["--nodes", "a,b,c", "-n", "6", "--cpus", "0.2", "--memory", "16m", "--prefix", "sch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the scheduler example (cargo build -p agent-client --examples)");
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let mut restarted = false;
    for l in out.lines() {
        let l = l.unwrap();
        // As soon as node b has a container: its next create and every wait on it meet the
        // agent down (for a second), then a new one that re-adopted the containers.
        let first_on_b = !restarted && l.starts_with("created ") && l.contains(" on b ");
        lines.push(l);
        if first_on_b {
            agents[1].0.crash_and_restart_after(std::time::Duration::from_secs(1));
            restarted = true;
            lines.push("-- node b restarted".to_string());
        }
    }
    let o = child.wait_with_output().unwrap();
    let text = lines.join("\n");
    assert!(o.status.success(), "{text}\n{}", String::from_utf8_lossy(&o.stderr));
    println!("{text}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(restarted && text.contains("all 6 healthy"), "{text}");
    let at = |line: &str| text.find(line).unwrap_or(usize::MAX);
    assert!(at("-- node b restarted") < at("all 6 healthy"), "the restart was mid-run: {text}");
    for node in ["a", "b", "c"] {
        let placed = lines.iter().filter(|l| l.starts_with("placed ") && l.ends_with(&format!(" on {node}"))).count();
        assert_eq!(placed, 2, "bin-packing puts two on {node}: {text}");
    }
    // On each node: its two containers, running and healthy, one of each name.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut names = Vec::new();
    for (a, _) in &agents {
        let c = rt
            .block_on(agent_client::Client::connect(&agent_client::Target { host: a.host.clone(), tls: None }))
            .unwrap();
        let mine: Vec<_> = rt
            .block_on(c.list(true))
            .unwrap()
            .into_iter()
            .filter(|x| x.labels.get("scheduler").map(String::as_str) == Some("sch"))
            .collect();
        assert_eq!(mine.len(), 2, "{}: {mine:?}", a.instance);
        for x in &mine {
            assert_eq!(
                (x.state, x.health),
                (agent_client::State::Running, Some(agent_client::Health::Healthy)),
                "{x:?}"
            );
            names.push(x.name.clone());
        }
    }
    names.sort();
    assert_eq!(names, (0..6).map(|i| format!("sch-{i}")).collect::<Vec<_>>());
    for (a, _) in agents.iter_mut() {
        for n in a.ok(&["ps", "-aq"]).split_whitespace() {
            a.ok(&["rm", "-f", n]);
        }
        a.stop();
        a.assert_no_leftovers();
    }
}

/// Connecting to a node that never comes up ends, within the retry policy's time, in
/// Unavailable naming the address: nothing listening (refused at once), and a port whose
/// listener never answers (the kernel completes the TCP handshake, nothing speaks: plain
/// HTTP/2 and mutual TLS). The example scheduler skips such a node, naming it, and places
/// on the others.
#[test]
fn a_node_that_never_comes_up_is_unavailable_in_bounded_time() {
    if !privileged("a_node_that_never_comes_up_is_unavailable_in_bounded_time") {
        return;
    }
    use agent_client::{Client, Error, RetryPolicy, Target};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let fleet = tmp.path().join("fleet");
    certs(&["init", "--dir", fleet.to_str().unwrap()]);
    let pem = |f: &str| std::fs::read(fleet.join(f)).unwrap();
    let tls = agent_proto::ClientTls { ca: pem("ca.pem"), cert: pem("admin.pem"), key: pem("admin-key.pem") };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let policy = RetryPolicy {
        max_elapsed: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    // Never accepted: connections sit in its backlog.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("tcp://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let dead_url = format!("tcp://127.0.0.1:{}", free_port());
    for (what, target) in [
        ("nothing listening", Target { host: dead_url.clone(), tls: None }),
        ("nothing listening, TLS", Target { host: dead_url.clone(), tls: Some(tls.clone()) }),
        ("a silent listener", Target { host: silent_url.clone(), tls: None }),
        ("a silent listener, TLS", Target { host: silent_url.clone(), tls: Some(tls.clone()) }),
    ] {
        let t0 = Instant::now();
        // The outer bound only turns a hang into this test's failure.
        let r = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), async {
                let c = Client::connect_with(&target, policy).await?;
                c.info().await
            })
            .await
        });
        let took = t0.elapsed();
        let addr = target.host.trim_start_matches("tcp://");
        match r {
            Ok(Err(Error::Unavailable(m))) => assert!(m.contains(addr), "{what}: the address is named: {m}"),
            Ok(r) => panic!("{what}: want Unavailable, got {r:?}"),
            Err(_) => panic!("{what}: still trying after {took:?}"),
        }
        // Retried with back-off (100+200+400+800 ms) up to the policy's 3 s, plus one attempt.
        assert!(took >= Duration::from_millis(1400), "{what}: gave up after {took:?}: not retried");
        assert!(took < Duration::from_secs(20), "{what}: {took:?}");
        println!("{what}: Unavailable after {took:?}");
    }
    drop(rt);

    // The scheduler with one live node and one that never answers.
    let (mut a, url) = tls_agent("schdead", &fleet, "");
    assert_eq!(a.ctl(&["image", "busybox"]).code, 0);
    let config = tmp.path().join("agentctl.toml");
    let p = |f: &str| -> String { fleet.join(f).display().to_string() };
    for (name, url) in [("live", &url), ("dead", &silent_url)] {
        let r: e2e::Ctl = Command::new(bin_dir().join("agentctl"))
            .env_remove("AGENT_HOST")
            .env("AGENTCTL_CONFIG", &config)
            .args(["context", "create", name, "--host", url])
            .args(["--tlscacert", &p("ca.pem"), "--tlscert", &p("admin.pem"), "--tlskey", &p("admin-key.pem")])
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let t0 = Instant::now();
    let o = Command::new(bin_dir().join("examples").join("scheduler"))
        .env("AGENTCTL_CONFIG", &config)
        .args(["--nodes", "dead,live", "-n", "1", "--cpus", "0.1", "--memory", "16m", "--prefix", "sd"])
        .args(["--connect-timeout", "3"])
        .output()
        .expect("the scheduler example (cargo build -p agent-client --examples)");
    let took = t0.elapsed();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    let silent_addr = silent_url.trim_start_matches("tcp://");
    assert!(err.contains("node dead skipped") && err.contains(silent_addr), "the dead node is named: {err}");
    assert!(out.contains("placed sd-0 on live") && out.contains("all 1 healthy"), "{out}");
    assert!(took < Duration::from_secs(40), "{took:?}");
    println!("scheduler with a dead node: {took:?}\n{out}{err}");
    a.ok(&["rm", "-f", "sd-0"]);
    drop(silent);
    a.stop();
    a.assert_no_leftovers();
}
