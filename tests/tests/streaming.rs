//! The CRI streaming server, driven by crictl 1.26.1 (client-go 1.26's SPDY/3.1
//! remotecommand and portforward clients, default options): `exec -i` with piped stdin,
//! exit codes passed through, `exec -it` on a terminal, `attach` to live output,
//! `port-forward` to a server inside the pod; and single-use URLs, with a raw HTTP client.
//!
//! crictl comes from `CRICTL` (set by scripts/test.sh) or `target/crictl/bin/crictl`;
//! without either the crictl tests skip, saying why.

use agent_proto::cri as pb;
use e2e::{eventually, privileged, Agent, Ctl};
use pb::runtime_service_client::RuntimeServiceClient;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn crictl_bin(test: &str) -> Option<PathBuf> {
    let default = workspace().join("target/crictl/bin/crictl");
    let bin = std::env::var_os("CRICTL").map(PathBuf::from).unwrap_or(default);
    if bin.exists() {
        return Some(bin);
    }
    assert!(std::env::var_os("CRICTL").is_none(), "{test}: CRICTL is set but {} is missing", bin.display());
    eprintln!("SKIP {test}: {} is missing (set CRICTL, or run ../shared/tools/crictl.sh target/crictl)", bin.display());
    None
}

/// Runs `c` with `input` on its stdin to completion, killing it after `secs`; its output is
/// read while it runs (a big output must not fill the pipe and stall it).
fn run(mut c: Command, input: &[u8], secs: u64) -> Ctl {
    let what = format!("{c:?}");
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.expect("output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            let out = rx.recv().expect("output").expect("output");
            let tail = |b: &[u8]| String::from_utf8_lossy(&b[b.len().saturating_sub(2000)..]).into_owned();
            panic!("{what} did not finish in {secs} s:\n{}{}", tail(&out.stdout), tail(&out.stderr));
        }
    };
    let _ = feeder.join();
    out.into()
}

struct Crictl {
    bin: PathBuf,
    config: PathBuf,
}

impl Crictl {
    fn new(a: &Agent, bin: PathBuf) -> Crictl {
        let sock = a.host.strip_prefix("unix://").expect("unix agent");
        let config = a.dir.path().join("crictl.yaml");
        std::fs::write(
            &config,
            format!("runtime-endpoint: unix://{sock}\nimage-endpoint: unix://{sock}\ntimeout: 30\n"),
        )
        .unwrap();
        Crictl { bin, config }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config).args(args);
        c
    }

    fn cmd_in(&self, args: &[&str], input: &[u8]) -> Ctl {
        run(self.command(args), input, 60)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.cmd_in(args, b"");
        assert_eq!(r.code, 0, "crictl {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout.trim().to_string()
    }

    /// Starts `crictl ARGS` in the background, its stdout piped.
    fn spawn(&self, args: &[&str]) -> Child {
        self.command(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn")
    }
}

/// Reads `child`'s stdout lines (from a thread) until one satisfies `f` or `secs` pass.
fn wait_line(child: &mut Child, secs: u64, f: impl Fn(&str) -> bool + Send + 'static) -> Option<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end: a Go program whose stdout is closed dies of SIGPIPE.
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { return };
            if f(&l) {
                let _ = tx.send(l);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

fn kill(mut c: Child) -> String {
    let _ = c.kill();
    let out = c.wait_with_output().expect("output");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A pod with one container running `script`; (pod, container) IDs.
fn pod_with(cr: &Crictl, a: &Agent, name: &str, script: &str, stdin: bool) -> (String, String) {
    pod_with_tty(cr, a, name, script, stdin, false)
}

fn pod_with_tty(cr: &Crictl, a: &Agent, name: &str, script: &str, stdin: bool, tty: bool) -> (String, String) {
    let d = a.dir.path();
    let logs = d.join(format!("pods/{name}"));
    std::fs::create_dir_all(&logs).unwrap();
    let pod = d.join(format!("{name}-pod.json"));
    let ctr = d.join(format!("{name}-ctr.json"));
    let pod_cfg = serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "attempt": 1,
                     "uid": format!("c71c7b1e-0000-4000-8000-{:012}", name.len())},
        "log_directory": logs,
        "linux": {}
    });
    let ctr_cfg = serde_json::json!({
        "metadata": {"name": format!("{name}-c")},
        "image": {"image": "local/busybox"},
        "command": ["sh", "-c", script],
        "log_path": "c.0.log",
        "stdin": stdin,
        "tty": tty,
        "linux": {}
    });
    std::fs::write(&pod, pod_cfg.to_string()).unwrap();
    std::fs::write(&ctr, ctr_cfg.to_string()).unwrap();
    let (pod, ctr) = (pod.to_str().unwrap(), ctr.to_str().unwrap());
    let sb = cr.ok(&["runp", pod]);
    let id = cr.ok(&["create", &sb, ctr, pod]);
    cr.ok(&["start", &id]);
    (sb, id)
}

fn remove_pod(cr: &Crictl, sb: &str) {
    cr.ok(&["stopp", sb]);
    cr.ok(&["rmp", sb]);
}

#[test]
fn crictl_exec_streams() {
    const T: &str = "crictl exec";
    if !privileged(T) {
        return;
    }
    let Some(bin) = crictl_bin(T) else { return };
    let a = Agent::start("crexec");
    let cr = Crictl::new(&a, bin);
    let (sb, id) = pod_with(&cr, &a, "exec", "exec sleep 300", false);

    // stdin piped in, read by the command, its output back.
    let r = cr.cmd_in(&["exec", "-i", &id, "sh", "-c", "tr a-z A-Z; echo done >&2"], b"hello streams\n");
    assert_eq!(r.code, 0, "exec -i: {}{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "HELLO STREAMS\n", "stdout of exec -i (stderr {:?})", r.stderr);
    assert!(r.stderr.contains("done"), "stderr of exec -i: {:?}", r.stderr);
    // More than one flow-control window each way.
    let big = "x".repeat(300_000) + "\n";
    let r = cr.cmd_in(&["exec", "-i", &id, "wc", "-c"], big.as_bytes());
    assert_eq!((r.code, r.stdout.trim()), (0, "300001"), "exec -i with 300 kB: {}", r.stderr);
    let r = cr.cmd_in(&["exec", &id, "sh", "-c", "head -c 300000 /dev/zero | tr '\\0' y"], b"");
    assert_eq!((r.code, r.stdout.len()), (0, 300_000), "300 kB of output: {}", r.stderr);

    // The exit code comes through the v4 error channel: client-go decodes it into its
    // CodeExitError (code 3); crictl 1.26 reports that error and exits 1 (logrus.Fatal), it
    // does not exit with the command's code.
    let r = cr.cmd_in(&["exec", &id, "sh", "-c", "echo before; exit 3"], b"");
    assert_eq!((r.code, r.stdout.as_str()), (1, "before\n"), "exit 3: {}", r.stderr);
    assert!(r.stderr.contains("command terminated with exit code 3"), "exit 3: {}", r.stderr);
    let r = cr.cmd_in(&["exec", &id, "true"], b"");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""), "exit 0");

    // A terminal: crictl under script(1), so its stdin is a tty of 37 rows and 111 columns;
    // the size reaches the command's terminal through the resize stream.
    let script = format!(
        "stty rows 37 cols 111; {} --config {} exec -it {id} sh -c 'tty; stty size; echo on-a-terminal'",
        cr.bin.display(),
        cr.config.display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &script, "/dev/null"]);
    let r = run(c, b"", 60);
    assert_eq!(r.code, 0, "exec -it: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("/dev/pts/"), "tty inside: {:?}", r.stdout);
    assert!(r.stdout.contains("37 111"), "the terminal's size inside: {:?}", r.stdout);
    assert!(r.stdout.contains("on-a-terminal"), "{:?}", r.stdout);

    // A client that hangs up takes its command along: nothing of it stays in the container.
    let mut c = cr.command(&["exec", "-i", &id, "sleep", "123"]);
    let mut c = c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let ps = || cr.cmd_in(&["exec", &id, "ps"], b"").stdout;
    assert!(eventually(20, || ps().contains("sleep 123")), "the exec runs: {}", ps());
    let _ = c.kill();
    let _ = c.wait();
    assert!(eventually(20, || !ps().contains("sleep 123")), "the exec outlived its client: {}", ps());

    // A stopped container cannot be exec'd into; the error names it.
    cr.ok(&["stop", &id]);
    let r = cr.cmd_in(&["exec", &id, "true"], b"");
    assert!(r.code != 0 && r.stderr.contains("is not running"), "exec into a stopped container: {}", r.stderr);
    remove_pod(&cr, &sb);
    a.assert_no_leftovers();
}

#[test]
fn crictl_attach_and_port_forward() {
    const T: &str = "crictl attach";
    if !privileged(T) {
        return;
    }
    let Some(bin) = crictl_bin(T) else { return };
    let a = Agent::start("crattach");
    let cr = Crictl::new(&a, bin);
    let server = "mkdir -p /www && echo pong-from-pod > /www/index.html && httpd -p 127.0.0.1:8080 -h /www; \
                  i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.2; done";
    let (sb, id) = pod_with(&cr, &a, "attach", server, false);

    // attach: the container's output from now on.
    let mut c = cr.spawn(&["attach", &id]);
    let line = wait_line(&mut c, 20, |l| l.starts_with("tick-"));
    let err = kill(c);
    assert!(line.is_some(), "no live output through attach: {err}");

    // The server answers inside the pod.
    let inside = eventually(10, || {
        cr.cmd_in(&["exec", &id, "timeout", "5", "wget", "-qO-", "http://127.0.0.1:8080/"], b"")
            .stdout
            .contains("pong-from-pod")
    });
    assert!(inside, "httpd in the pod: {}", cr.cmd_in(&["exec", &id, "sh", "-c", "netstat -ltn; ps"], b"").stdout);

    // attach -i to a container created with stdin: what we type reaches it, and closing our
    // stdin ends its input (it exits, and so does attach).
    let (sb2, reader) = pod_with(&cr, &a, "stdin", "while read l; do echo got-$l; done; echo input-ended", true);
    let r = cr.cmd_in(&["attach", "-i", &reader], b"one\ntwo\n");
    assert_eq!(r.code, 0, "attach -i: {}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("got-one\ngot-two\ninput-ended"), "attach -i: {:?} {}", r.stdout, r.stderr);
    remove_pod(&cr, &sb2);

    // port-forward from a free local port to the pod's 127.0.0.1:8080.
    let port = e2e::free_port();
    let mut c = cr.spawn(&["port-forward", &sb, &format!("{port}:8080")]);
    let fwd = wait_line(&mut c, 20, |l| l.contains("Forwarding from"));
    if fwd.is_none() {
        panic!("port-forward did not start: {}", kill(c));
    }
    for round in 0..2 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        if !body.contains("pong-from-pod") {
            panic!("round {round} through port-forward: {body:?}; crictl: {}; agent: {}", kill(c), a.log());
        }
    }
    // A port nobody listens on: the connection ends, the forwarder lives on.
    let closed = e2e::free_port();
    drop(kill(c));
    let mut c = cr.spawn(&["port-forward", &sb, &format!("{closed}:9")]);
    assert!(wait_line(&mut c, 20, |l| l.contains("Forwarding from")).is_some());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", closed)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "nothing comes from a closed pod port: {buf:?}");
    let err = kill(c);
    assert!(err.contains("error forwarding port 9"), "the error stream names the port: {err}");

    remove_pod(&cr, &sb);
    a.assert_no_leftovers();
}

/// The status line of a SPDY upgrade request for `url`.
fn upgrade(url: &str, proto: &str) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect to the streaming server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         X-Stream-Protocol-Version: {proto}\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("status line");
    line.trim().to_string()
}

#[test]
fn streaming_urls_are_single_use() {
    const T: &str = "stream urls";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("crurls");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let meta =
            pb::PodSandboxMetadata { name: "urls".into(), uid: "u-1".into(), namespace: "default".into(), attempt: 0 };
        let cfg = pb::PodSandboxConfig {
            metadata: Some(meta),
            log_directory: a.dir.path().display().to_string(),
            ..Default::default()
        };
        let sb = c
            .run_pod_sandbox(pb::RunPodSandboxRequest { config: Some(cfg), runtime_handler: String::new() })
            .await
            .expect("runp")
            .into_inner()
            .pod_sandbox_id;

        let missing = c
            .exec(pb::ExecRequest {
                container_id: "nosuch".into(),
                cmd: vec!["true".into()],
                stdout: true,
                ..Default::default()
            })
            .await
            .expect_err("exec into nothing");
        assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
        assert!(missing.message().contains("nosuch"), "{missing:?}");
        let none = c.port_forward(pb::PortForwardRequest { pod_sandbox_id: "nosuch".into(), port: vec![80] }).await;
        assert_eq!(none.expect_err("no such pod").code(), tonic::Code::NotFound);

        let url = c
            .port_forward(pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![80] })
            .await
            .expect("port forward")
            .into_inner()
            .url;
        assert!(url.starts_with("http://127.0.0.1:") && url.contains("/portforward/"), "{url}");
        let url2 = url.clone();
        let (first, second) = tokio::task::spawn_blocking(move || {
            (upgrade(&url2, "portforward.k8s.io"), upgrade(&url2, "portforward.k8s.io"))
        })
        .await
        .unwrap();
        assert!(first.starts_with("HTTP/1.1 101"), "first use: {first}");
        assert!(second.starts_with("HTTP/1.1 404"), "second use: {second}");
        // A protocol the endpoint does not speak is refused, naming what it speaks.
        let exec_proto = c
            .port_forward(pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![80] })
            .await
            .expect("port forward")
            .into_inner()
            .url;
        let refused = tokio::task::spawn_blocking(move || upgrade(&exec_proto, "v4.channel.k8s.io")).await.unwrap();
        assert!(refused.starts_with("HTTP/1.1 403"), "a remotecommand protocol for port-forward: {refused}");
        let forged = url.rsplit_once('/').map(|(base, _)| format!("{base}/AAAAAAAAAAAAAAAAAAAAAA")).unwrap();
        let third = tokio::task::spawn_blocking(move || upgrade(&forged, "portforward.k8s.io")).await.unwrap();
        assert!(third.starts_with("HTTP/1.1 404"), "unknown token: {third}");

        c.stop_pod_sandbox(pb::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.expect("stopp");
        let stopped = c.port_forward(pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![80] }).await;
        assert_eq!(stopped.expect_err("stopped pod").code(), tonic::Code::FailedPrecondition);
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("rmp");
    });
    assert!(eventually(10, || a.ok(&["ps", "-aq"]).is_empty()));
    a.assert_no_leftovers();
}

/// Runs an exec over WebSocket with `proto`: (stdout, the error channel's message).
async fn ws_exec(
    c: &mut RuntimeServiceClient<tonic::transport::Channel>,
    id: &str,
    proto: &str,
    cmd: &[&str],
    input: &[u8],
) -> (Vec<u8>, String) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let req = pb::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        stdin: !input.is_empty(),
        stdout: true,
        stderr: true,
        tty: false,
    };
    let url = c.exec(req).await.expect("exec").into_inner().url.replacen("http://", "ws://", 1);
    let mut r = url.as_str().into_client_request().unwrap();
    r.headers_mut().insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
    let host = url.strip_prefix("ws://").unwrap().split('/').next().unwrap().to_string();
    let tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let (mut ws, resp) = tokio_tungstenite::client_async(r, tcp).await.expect("websocket handshake");
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), proto);
    if !input.is_empty() {
        let mut m = vec![0u8];
        m.extend_from_slice(input);
        ws.send(Message::Binary(m.into())).await.unwrap();
        // v5: the close signal ends the command's stdin.
        ws.send(Message::Binary(vec![255, 0].into())).await.unwrap();
    }
    let (mut out, mut err) = (Vec::new(), String::new());
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) if b.first() == Some(&1) => out.extend_from_slice(&b[1..]),
                Message::Binary(b) if b.first() == Some(&3) => err.push_str(&String::from_utf8_lossy(&b[1..])),
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the exec ended");
    (out, err)
}

#[test]
fn exec_over_websocket() {
    const T: &str = "stream websocket";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("crws");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let meta =
            pb::PodSandboxMetadata { name: "ws".into(), uid: "u-ws".into(), namespace: "default".into(), attempt: 0 };
        let logs = a.dir.path().display().to_string();
        let cfg = pb::PodSandboxConfig { metadata: Some(meta), log_directory: logs, ..Default::default() };
        let sb = c
            .run_pod_sandbox(pb::RunPodSandboxRequest { config: Some(cfg.clone()), runtime_handler: String::new() })
            .await
            .expect("runp")
            .into_inner()
            .pod_sandbox_id;
        let ctr = pb::ContainerConfig {
            metadata: Some(pb::ContainerMetadata { name: "ws-c".into(), attempt: 0 }),
            image: Some(pb::ImageSpec { image: "local/busybox:latest".into(), ..Default::default() }),
            command: vec!["sleep".into(), "300".into()],
            log_path: "ws.log".into(),
            ..Default::default()
        };
        let id = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(ctr),
                sandbox_config: Some(cfg),
            })
            .await
            .expect("create")
            .into_inner()
            .container_id;
        c.start_container(pb::StartContainerRequest { container_id: id.clone() }).await.expect("start");

        let (out, status) = ws_exec(&mut c, &id, "v5.channel.k8s.io", &["tr", "a-z", "A-Z"], b"over websocket\n").await;
        assert_eq!(String::from_utf8_lossy(&out), "OVER WEBSOCKET\n");
        assert_eq!(status, r#"{"metadata":{},"status":"Success"}"#);
        let (out, status) = ws_exec(&mut c, &id, "v4.channel.k8s.io", &["sh", "-c", "echo v4; exit 3"], b"").await;
        assert_eq!(String::from_utf8_lossy(&out), "v4\n");
        let st: serde_json::Value = serde_json::from_str(&status).expect("a metav1.Status");
        assert_eq!((st["status"].as_str(), st["reason"].as_str()), (Some("Failure"), Some("NonZeroExitCode")), "{st}");
        assert_eq!(st["details"]["causes"][0]["message"], "3", "{st}");

        c.stop_pod_sandbox(pb::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.expect("stopp");
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("rmp");
    });
    assert!(eventually(10, || a.ok(&["ps", "-aq"]).is_empty()));
    a.assert_no_leftovers();
}

#[test]
fn attach_resizes_a_tty_container() {
    const T: &str = "attach resize";
    if !privileged(T) {
        return;
    }
    let Some(bin) = crictl_bin(T) else { return };
    let a = Agent::start("crresize");
    let cr = Crictl::new(&a, bin);
    let (sb, id) = pod_with_tty(&cr, &a, "resize", "exec sh", true, true);

    // crictl under script(1), its terminal 37 x 111: `attach -it` sends that size on the
    // resize stream, and the container's terminal (24 x 80 until then) takes it.
    let script =
        format!("stty rows 37 cols 111; {} --config {} attach -it {id}", cr.bin.display(), cr.config.display());
    let mut c = Command::new("script");
    c.args(["-qec", &script, "/dev/null"]);
    let r = run(c, b"sleep 1; stty size; exit\n", 60);
    assert!(r.stdout.contains("37 111"), "the size through attach: {:?} {:?}", r.stdout, r.stderr);
    remove_pod(&cr, &sb);

    // Over WebSocket (v5): each resize message changes the size, as `stty size` shows.
    let (sb, id) = pod_with_tty(&cr, &a, "resize-ws", "exec sh", true, true);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let req = pb::AttachRequest { container_id: id.clone(), stdin: true, stdout: true, tty: true, stderr: false };
        let url = c.attach(req).await.expect("attach").into_inner().url;
        let mut ws = ws_connect(&url, "v5.channel.k8s.io").await;
        let mut seen = String::new();
        for (rows, cols) in [(45, 123), (50, 132)] {
            let size = format!("\x04{{\"Width\":{cols},\"Height\":{rows}}}");
            ws.send(Message::Binary(size.into_bytes().into())).await.unwrap();
            let want = format!("{rows} {cols}");
            let found = tokio::time::timeout(Duration::from_secs(20), async {
                // Asked again until it shows: the size and the keystrokes travel apart.
                loop {
                    ws.send(Message::Binary(b"\x00stty size\n".to_vec().into())).await.unwrap();
                    let until = tokio::time::Instant::now() + Duration::from_millis(500);
                    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
                        if let Message::Binary(b) = m {
                            if b.first() == Some(&1) {
                                seen.push_str(&String::from_utf8_lossy(&b[1..]));
                            }
                        }
                    }
                    if seen.contains(&want) {
                        return;
                    }
                }
            })
            .await;
            assert!(found.is_ok(), "{want} after a WebSocket resize: {seen:?}");
        }
        let _ = ws.close(None).await;
    });
    remove_pod(&cr, &sb);
    a.assert_no_leftovers();
}

/// A WebSocket connection to a streaming `url` (http://) with subprotocol `proto`.
async fn ws_connect(url: &str, proto: &str) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = url.replacen("http://", "ws://", 1);
    let mut r = url.as_str().into_client_request().unwrap();
    r.headers_mut().insert("Sec-WebSocket-Protocol", proto.parse().unwrap());
    let host = url.strip_prefix("ws://").unwrap().split('/').next().unwrap().to_string();
    let tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
    let (ws, resp) = tokio_tungstenite::client_async(r, tcp).await.expect("websocket handshake");
    assert_eq!(resp.headers().get("sec-websocket-protocol").unwrap(), proto);
    ws
}

/// Reads a port-forward WebSocket until the server closes it: what came on each channel
/// (binary frames, or base64 text frames decoded).
async fn pf_read(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> std::collections::BTreeMap<u8, Vec<Vec<u8>>> {
    use base64::Engine;
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let mut got: std::collections::BTreeMap<u8, Vec<Vec<u8>>> = Default::default();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            let (chan, data) = match m {
                Message::Binary(b) if !b.is_empty() => (b[0], b[1..].to_vec()),
                Message::Text(t) if !t.is_empty() => {
                    let d = base64::engine::general_purpose::STANDARD.decode(&t.as_bytes()[1..]).expect("base64");
                    (t.as_bytes()[0] - b'0', d)
                }
                Message::Close(_) => break,
                _ => continue,
            };
            got.entry(chan).or_default().push(data);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the server closed the forward");
    got
}

#[test]
fn port_forward_over_websocket() {
    const T: &str = "port-forward websocket";
    if !privileged(T) {
        return;
    }
    let Some(bin) = crictl_bin(T) else { return };
    let a = Agent::start("crpfws");
    let cr = Crictl::new(&a, bin);
    let server = "mkdir -p /www && echo pong-over-ws > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www";
    let (sb, id) = pod_with(&cr, &a, "pfws", server, false);
    let up = || cr.cmd_in(&["exec", &id, "timeout", "5", "wget", "-qO-", "http://127.0.0.1:8080/"], b"").stdout;
    assert!(eventually(10, || up().contains("pong-over-ws")), "httpd in the pod");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let get = b"GET / HTTP/1.0\r\n\r\n";

        // v4.channel.k8s.io, the ports of the request: 8080 (served) and 9 (closed).
        let req = pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![8080, 9] };
        let url = c.port_forward(req).await.expect("port forward").into_inner().url;
        let mut ws = ws_connect(&url, "v4.channel.k8s.io").await;
        let mut m = vec![0u8];
        m.extend_from_slice(get);
        ws.send(Message::Binary(m.into())).await.unwrap();
        let got = pf_read(&mut ws).await;
        for (chan, port) in [(0, 8080u16), (1, 8080), (2, 9), (3, 9)] {
            let first = got.get(&chan).and_then(|v| v.first());
            assert_eq!(first.map(|f| f.as_slice()), Some(&port.to_le_bytes()[..]), "channel {chan}: {got:?}");
        }
        let body: Vec<u8> = got[&0][1..].concat();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("200 OK") && body.contains("pong-over-ws"), "through the forward: {body:?}");
        assert!(got[&1].len() == 1, "no error for port 8080: {got:?}");
        let err = String::from_utf8_lossy(&got[&3][1..].concat()).into_owned();
        assert!(err.contains("error forwarding port 9"), "the error channel names the port: {err:?}");
        assert!(got.get(&2).is_some_and(|v| v.len() == 1), "nothing from a closed port: {got:?}");

        // v4.base64.channel.k8s.io, the port from the URL's query (the request named none).
        let req = pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![] };
        let url = c.port_forward(req).await.expect("port forward").into_inner().url;
        let mut ws = ws_connect(&format!("{url}?port=8080"), "v4.base64.channel.k8s.io").await;
        let text = {
            use base64::Engine;
            format!("0{}", base64::engine::general_purpose::STANDARD.encode(get))
        };
        ws.send(Message::Text(text.into())).await.unwrap();
        let got = pf_read(&mut ws).await;
        assert_eq!(got.get(&0).and_then(|v| v.first()).map(|f| f.as_slice()), Some(&8080u16.to_le_bytes()[..]));
        let body = String::from_utf8_lossy(&got[&0][1..].concat()).into_owned();
        assert!(body.contains("pong-over-ws"), "through the base64 forward: {body:?}");

        // Without a port anywhere, the upgrade is refused, saying why.
        let req = pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![] };
        let url = c.port_forward(req).await.expect("port forward").into_inner().url;
        let url = url.replacen("http://", "ws://", 1);
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let host = url.strip_prefix("ws://").unwrap().split('/').next().unwrap().to_string();
        let tcp = tokio::net::TcpStream::connect(host).await.unwrap();
        match tokio_tungstenite::client_async(url.as_str().into_client_request().unwrap(), tcp).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
                assert_eq!(r.status(), 400);
                let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned();
                assert!(body.contains("needs its ports"), "{body}");
            }
            other => panic!("no ports: {:?}", other.map(|(_, r)| r.status())),
        }
    });
    remove_pod(&cr, &sb);
    a.assert_no_leftovers();
}

#[test]
fn streaming_over_tls() {
    const T: &str = "stream tls";
    if !privileged(T) {
        return;
    }
    let Some(bin) = crictl_bin(T) else { return };
    let certs = tempfile::tempdir().unwrap();
    let o = Command::new(e2e::bin_dir().join("agentctl"))
        .args(["certs", "init", "--dir"])
        .arg(certs.path())
        .output()
        .expect("agentctl certs");
    assert!(o.status.success(), "certs init: {}", String::from_utf8_lossy(&o.stderr));
    let d = certs.path().display();
    let cfg = format!("[cri]\nstream_tls_cert = \"{d}/server.pem\"\nstream_tls_key = \"{d}/server-key.pem\"\n");
    let a = Agent::start_with_config("crtls", &cfg);
    let cr = Crictl::new(&a, bin);
    let (sb, id) = pod_with(&cr, &a, "tls", "exec sleep 300", false);

    // The URLs are https://; an unknown token is a 404 over TLS, checked against our CA.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = rt.block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let req = pb::PortForwardRequest { pod_sandbox_id: sb.clone(), port: vec![80] };
        c.port_forward(req).await.expect("port forward").into_inner().url
    });
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let forged = url.rsplit_once('/').map(|(base, _)| format!("{base}/AAAAAAAAAAAAAAAAAAAAAA")).unwrap();
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", &format!("{d}/ca.pem"), &forged]);
    let r = run(c, b"", 30);
    assert_eq!((r.code, r.stdout.as_str()), (0, "404"), "curl over TLS: {}", r.stderr);
    // Plain HTTP to the TLS port gets no answer.
    let mut c = Command::new("curl");
    c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &forged.replacen("https://", "http://", 1)]);
    let r = run(c, b"", 30);
    assert_ne!(r.stdout, "404", "plain HTTP was served on the TLS port");

    // crictl (client-go's SPDY executor) execs over TLS.
    let r = cr.cmd_in(&["exec", "-i", &id, "tr", "a-z", "A-Z"], b"over tls\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "OVER TLS\n"), "exec over TLS: {}", r.stderr);
    remove_pod(&cr, &sb);
    a.assert_no_leftovers();
}
