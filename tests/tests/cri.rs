//! The Kubernetes CRI, driven the way kubelet drives it: a pod sandbox whose containers
//! share its network namespace and hostname, logs in kubelet's format at its log path,
//! ExecSync, status and lists with filters, stop/remove idempotent, images through the
//! ImageService (including a pull from a local registry).

use agent_proto::cri as pb;
use e2e::{ns_inode, privileged, Agent, Registry};
use pb::image_service_client::ImageServiceClient;
use pb::runtime_service_client::RuntimeServiceClient;
use std::collections::HashMap;

type Rt = RuntimeServiceClient<tonic::transport::Channel>;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn sandbox_config(logs: &std::path::Path, port: u16) -> pb::PodSandboxConfig {
    pb::PodSandboxConfig {
        metadata: Some(pb::PodSandboxMetadata {
            name: "web".into(),
            uid: "0b3c7f1e-1111-4c1d-9d2b-5a0e2f9f0001".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web-pod".into(),
        log_directory: logs.display().to_string(),
        port_mappings: vec![pb::PortMapping {
            protocol: pb::Protocol::Tcp as i32,
            container_port: 80,
            host_port: port as i32,
            host_ip: "127.0.0.1".into(),
        }],
        labels: HashMap::from([("app".into(), "web".into())]),
        annotations: HashMap::from([("note".into(), "from-kubelet".into())]),
        ..Default::default()
    }
}

fn container_config(name: &str, args: &[&str]) -> pb::ContainerConfig {
    pb::ContainerConfig {
        metadata: Some(pb::ContainerMetadata { name: name.into(), attempt: 0 }),
        image: Some(pb::ImageSpec { image: "local/busybox:latest".into(), ..Default::default() }),
        command: vec!["sh".into(), "-c".into()],
        args: args.iter().map(|s| s.to_string()).collect(),
        envs: vec![pb::KeyValue { key: "GREETING".into(), value: "hello".into() }],
        labels: HashMap::from([("role".into(), name.into())]),
        log_path: format!("{name}/0.log"),
        ..Default::default()
    }
}

/// RunPodSandbox with `cfg`; the sandbox ID.
async fn run_pod(c: &mut Rt, cfg: pb::PodSandboxConfig, what: &str) -> String {
    c.run_pod_sandbox(pb::RunPodSandboxRequest { config: Some(cfg), runtime_handler: String::new() })
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .into_inner()
        .pod_sandbox_id
}

async fn pod_status(c: &mut Rt, id: &str) -> pb::PodSandboxStatus {
    c.pod_sandbox_status(pb::PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: false })
        .await
        .expect("sandbox status")
        .into_inner()
        .status
        .expect("sandbox status body")
}

async fn status(c: &mut Rt, id: &str) -> pb::ContainerStatus {
    c.container_status(pb::ContainerStatusRequest { container_id: id.into(), verbose: false })
        .await
        .expect("status")
        .into_inner()
        .status
        .expect("status body")
}

#[test]
fn a_pod_runs_through_the_cri() {
    if !privileged("cri pod") {
        return;
    }
    let a = Agent::start("cri");
    let logs = a.dir.path().join("pods/web");
    std::fs::create_dir_all(&logs).unwrap();
    let port = e2e::free_port();
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch.clone());
        let v = c.version(pb::VersionRequest { version: "v1".into() }).await.unwrap().into_inner();
        assert_eq!((v.runtime_name.as_str(), v.runtime_api_version.as_str()), ("node-agent", "v1"));
        let st = c.status(pb::StatusRequest { verbose: false }).await.unwrap().into_inner();
        assert!(st.status.unwrap().conditions.iter().all(|c| c.status));

        // Events, as kubelet's evented PLEG follows them.
        let mut events = c.get_container_events(pb::GetEventsRequest {}).await.expect("events").into_inner();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i32)>::new()));
        let sink = std::sync::Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok(Some(e)) = events.message().await {
                sink.lock().unwrap().push((e.container_id, e.container_event_type));
            }
        });
        a.ok(&["run", "--rm", "--name", "notcri", "local/busybox:latest", "true"]);

        let sb_cfg = sandbox_config(&logs, port);
        let sb = run_pod(&mut c, sb_cfg.clone(), "run sandbox").await;
        let sst = pod_status(&mut c, &sb).await;
        assert_eq!(sst.state, pb::PodSandboxState::SandboxReady as i32);
        assert_eq!(sst.metadata.as_ref().unwrap().name, "web");
        assert_eq!(sst.annotations.get("note").map(String::as_str), Some("from-kubelet"));
        assert!(!sst.annotations.keys().any(|k| k.starts_with("io.agentd")), "our bookkeeping stays hidden");
        let ip = sst.network.unwrap().ip;
        assert!(ip.starts_with("10."), "{ip}");

        // Two containers of the pod: one serves on port 80, one writes logs.
        let web = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(container_config("server", &["echo -n pod-says-$GREETING > /i; httpd -f -p 80 -h /"])),
                sandbox_config: Some(sb_cfg.clone()),
            })
            .await
            .expect("create server")
            .into_inner()
            .container_id;
        let talk = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(container_config("talker", &["echo out-line; echo err-line >&2; sleep 300"])),
                sandbox_config: Some(sb_cfg.clone()),
            })
            .await
            .expect("create talker")
            .into_inner()
            .container_id;
        assert_eq!(status(&mut c, &web).await.state, pb::ContainerState::ContainerCreated as i32);
        for id in [&web, &talk] {
            c.start_container(pb::StartContainerRequest { container_id: id.clone() }).await.expect("start");
        }
        assert_eq!(status(&mut c, &web).await.state, pb::ContainerState::ContainerRunning as i32);

        // They share the sandbox's network namespace and hostname.
        let pid = |id: &str| a.inspect(id)["State"]["Pid"].to_string();
        let infra = pid(&sb);
        assert_eq!(ns_inode(&pid(&web), "net"), ns_inode(&infra, "net"));
        assert_eq!(ns_inode(&pid(&talk), "net"), ns_inode(&infra, "net"));
        assert_eq!(ns_inode(&pid(&talk), "ipc"), ns_inode(&infra, "ipc"), "a pod shares IPC");
        assert_ne!(ns_inode(&pid(&talk), "pid"), ns_inode(&infra, "pid"), "but not PIDs by default");
        let ex = c
            .exec_sync(pb::ExecSyncRequest { container_id: talk.clone(), cmd: vec!["hostname".into()], timeout: 10 })
            .await
            .expect("exec")
            .into_inner();
        assert_eq!((String::from_utf8_lossy(&ex.stdout).trim(), ex.exit_code), ("web-pod", 0));
        // The talker reaches the server over the pod's loopback; the host through the
        // sandbox's published port.
        let ex = c
            .exec_sync(pb::ExecSyncRequest {
                container_id: talk.clone(),
                cmd: vec!["wget".into(), "-qO-".into(), "http://127.0.0.1:80/i".into()],
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&ex.stdout), "pod-says-hello");
        let host_view = e2e::eventually(5, || {
            std::process::Command::new("busybox")
                .args(["wget", "-qO-", &format!("http://127.0.0.1:{port}/i")])
                .output()
                .is_ok_and(|o| o.stdout == b"pod-says-hello")
        });
        assert!(host_view, "the sandbox's hostPort serves the pod");
        let ex = c
            .exec_sync(pb::ExecSyncRequest {
                container_id: talk.clone(),
                cmd: vec!["sh".into(), "-c".into(), "exit 3".into()],
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(ex.exit_code, 3);
        // A timed-out ExecSync fails and leaves nothing running (kubelet probes time out).
        let e = c
            .exec_sync(pb::ExecSyncRequest {
                container_id: talk.clone(),
                cmd: vec!["sleep".into(), "37".into()],
                timeout: 1,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::DeadlineExceeded, "{e}");
        // Reaped before the answer: not even a zombie of it is left in the container.
        let ps = c
            .exec_sync(pb::ExecSyncRequest {
                container_id: talk.clone(),
                cmd: vec![
                    "sh".into(),
                    "-c".into(),
                    "for p in /proc/[0-9]*; do echo \"$(cut -d' ' -f3 $p/stat) $(tr '\\0' ' ' < $p/cmdline)\"; done"
                        .into(),
                ],
                timeout: 10,
            })
            .await
            .unwrap()
            .into_inner();
        let ps = String::from_utf8_lossy(&ps.stdout).to_string();
        assert!(ps.lines().any(|l| l.contains("sleep 300")), "the listing sees the container's processes: {ps}");
        assert!(
            !ps.lines().any(|l| l.starts_with('Z') || l.contains("sleep 37")),
            "the timed-out command is gone: {ps}"
        );
        let gone = e2e::eventually(5, || {
            std::process::Command::new("ps")
                .args(["-eo", "args"])
                .output()
                .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == "sleep 37"))
        });
        assert!(gone, "the timed-out command was killed");

        // Logs in kubelet's format where it reads them.
        let log = logs.join("talker/0.log");
        assert!(e2e::eventually(5, || std::fs::read_to_string(&log).is_ok_and(|s| s.contains("err-line"))), "{log:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().any(|l| l.ends_with(" stdout F out-line")), "{text}");
        assert!(lines.iter().any(|l| l.ends_with(" stderr F err-line")), "{text}");
        assert!(
            lines.iter().all(|l| l.split(' ').next().is_some_and(|t| t.ends_with('Z') && t.contains('T'))),
            "{text}"
        );
        // Rotation: kubelet renames the file and asks for a reopen; new output lands in a new file.
        std::fs::rename(&log, logs.join("talker/0.log.1")).unwrap();
        c.reopen_container_log(pb::ReopenContainerLogRequest { container_id: talk.clone() }).await.expect("reopen");
        c.exec_sync(pb::ExecSyncRequest {
            container_id: talk.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo after-rotate > /proc/1/fd/1".into()],
            timeout: 10,
        })
        .await
        .unwrap();
        assert!(
            e2e::eventually(5, || std::fs::read_to_string(&log).is_ok_and(|s| s.contains("stdout F after-rotate"))),
            "new: {:?} old: {:?}",
            std::fs::read_to_string(&log),
            std::fs::read_to_string(logs.join("talker/0.log.1"))
        );

        // Stats: each running container, and the pod's sums with its containers.
        let st = c
            .list_container_stats(pb::ListContainerStatsRequest {
                filter: Some(pb::ContainerStatsFilter { pod_sandbox_id: sb.clone(), ..Default::default() }),
            })
            .await
            .unwrap()
            .into_inner()
            .stats;
        assert_eq!(st.len(), 2);
        for s in &st {
            assert!(s.cpu.as_ref().unwrap().usage_core_nano_seconds.as_ref().unwrap().value > 0, "{s:?}");
            assert!(s.memory.as_ref().unwrap().usage_bytes.as_ref().unwrap().value > 0, "{s:?}");
        }
        let ps = c
            .pod_sandbox_stats(pb::PodSandboxStatsRequest { pod_sandbox_id: sb.clone() })
            .await
            .unwrap()
            .into_inner()
            .stats
            .unwrap()
            .linux
            .unwrap();
        assert_eq!(ps.containers.len(), 2);
        assert!(ps.process.unwrap().process_count.unwrap().value >= 3, "pause + httpd + sh/sleep");

        // Lists and filters.
        let list = |f: pb::ContainerFilter| {
            let mut c = c.clone();
            async move {
                c.list_containers(pb::ListContainersRequest { filter: Some(f) }).await.unwrap().into_inner().containers
            }
        };
        assert_eq!(list(pb::ContainerFilter { pod_sandbox_id: sb.clone(), ..Default::default() }).await.len(), 2);
        let only = list(pb::ContainerFilter {
            label_selector: HashMap::from([("role".into(), "talker".into())]),
            ..Default::default()
        })
        .await;
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].id, talk);
        assert_eq!(only[0].metadata.as_ref().unwrap().name, "talker");
        assert_eq!(only[0].image.as_ref().unwrap().image, "local/busybox:latest");
        let pods = c.list_pod_sandbox(pb::ListPodSandboxRequest { filter: None }).await.unwrap().into_inner().items;
        assert_eq!(pods.len(), 1, "containers are not listed as sandboxes");

        // Stop a container: its exit is reported with kubelet's reason.
        c.stop_container(pb::StopContainerRequest { container_id: talk.clone(), timeout: 1 }).await.unwrap();
        let s = status(&mut c, &talk).await;
        assert_eq!(s.state, pb::ContainerState::ContainerExited as i32);
        assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
        assert_eq!(s.log_path, log.display().to_string());

        // Stopping the sandbox stops the rest; both verbs are idempotent.
        for _ in 0..2 {
            c.stop_pod_sandbox(pb::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.expect("stop sandbox");
        }
        assert_eq!(status(&mut c, &web).await.state, pb::ContainerState::ContainerExited as i32);
        for _ in 0..2 {
            c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb.clone() }).await.expect("remove");
        }
        let of =
            |id: &str| -> Vec<i32> { seen.lock().unwrap().iter().filter(|(c, _)| c == id).map(|(_, t)| *t).collect() };
        use pb::ContainerEventType as E;
        let want =
            [E::ContainerCreatedEvent, E::ContainerStartedEvent, E::ContainerStoppedEvent, E::ContainerDeletedEvent];
        let want: Vec<i32> = want.iter().map(|t| *t as i32).collect();
        for _ in 0..50 {
            if of(&talk) == want && of(&sb) == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(of(&talk), want, "a container's life in events");
        assert_eq!(of(&sb), want, "the sandbox's too");
        assert!(seen.lock().unwrap().len() >= 12, "both containers and the sandbox");
        assert!(
            seen.lock().unwrap().iter().all(|(id, _)| [&sb, &web, &talk].contains(&id)),
            "containers not made through the CRI are not reported"
        );
        let gone = c.container_status(pb::ContainerStatusRequest { container_id: web.clone(), verbose: false }).await;
        assert_eq!(gone.unwrap_err().code(), tonic::Code::NotFound);
        assert!(c
            .list_pod_sandbox(pb::ListPodSandboxRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .items
            .is_empty());

        // Bad input: named, right code, nothing left.
        let e = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: "nosuchsandbox".into(),
                config: Some(container_config("x", &["true"])),
                sandbox_config: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e}");
        let e = c
            .run_pod_sandbox(pb::RunPodSandboxRequest {
                config: Some(pb::PodSandboxConfig::default()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("name, namespace and uid"), "{e}");
    });
    a.assert_no_leftovers();
}

#[test]
fn a_pod_needs_no_image_imported() {
    if !privileged("a_pod_needs_no_image_imported") {
        return;
    }
    // No image at all on this agent: kubelet never imports a pause image.
    let a = Agent::start_bare("crinoimg");
    let logs = a.dir.path().join("pods/web");
    std::fs::create_dir_all(&logs).unwrap();
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch.clone());
        let mut cfg = sandbox_config(&logs, 0);
        cfg.port_mappings.clear();
        let sb = run_pod(&mut c, cfg, "run sandbox without any image here").await;
        let sst = pod_status(&mut c, &sb).await;
        assert_eq!(sst.state, pb::PodSandboxState::SandboxReady as i32);
        // The infra process is agentd's pause, alone as PID 1 of the pod, holding its own
        // network namespace.
        let pid = a.inspect(&sb)["State"]["Pid"].as_i64().expect("pid").to_string();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(stat.lines().any(|l| l.starts_with("NSpid:") && l.trim_end().ends_with("\t1")), "{stat}");
        assert_ne!(ns_inode(&pid, "net"), ns_inode("self", "net"));
        let images = ImageServiceClient::new(ch.clone())
            .list_images(pb::ListImagesRequest { filter: None })
            .await
            .unwrap()
            .into_inner()
            .images;
        assert!(images.is_empty(), "nothing was imported or pulled: {images:?}");
        // It ends on SIGTERM itself: exit code 0 (a SIGKILL after the grace period gives 137).
        c.stop_pod_sandbox(pb::StopPodSandboxRequest { pod_sandbox_id: sb.clone() }).await.expect("stop");
        assert_eq!(a.inspect(&sb)["State"]["ExitCode"].as_i64(), Some(0));
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("remove");
    });
    a.assert_no_leftovers();
}

#[test]
fn a_pods_dns_config_and_sysctls_reach_its_containers() {
    if !privileged("a_pods_dns_config_and_sysctls_reach_its_containers") {
        return;
    }
    let a = Agent::start("cridns");
    let logs = a.dir.path().join("pods/web");
    std::fs::create_dir_all(&logs).unwrap();
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let mut cfg = sandbox_config(&logs, 0);
        cfg.port_mappings.clear();
        cfg.dns_config = Some(pb::DnsConfig {
            servers: vec!["192.0.2.53".into()],
            searches: vec!["default.svc.cluster.local".into(), "svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        });
        cfg.linux = Some(pb::LinuxPodSandboxConfig {
            sysctls: HashMap::from([
                ("kernel.shm_rmid_forced".into(), "1".into()),
                ("fs.mqueue.msg_max".into(), "17".into()),
                ("net.ipv4.ip_unprivileged_port_start".into(), "0".into()),
            ]),
            ..Default::default()
        });
        let sb = run_pod(&mut c, cfg.clone(), "run sandbox").await;
        let id = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(container_config("app", &["sleep 300"])),
                sandbox_config: Some(cfg),
            })
            .await
            .expect("create")
            .into_inner()
            .container_id;
        c.start_container(pb::StartContainerRequest { container_id: id.clone() }).await.expect("start");
        let read = |path: &str| {
            let mut c = c.clone();
            let (id, path) = (id.clone(), path.to_string());
            async move {
                let r = c
                    .exec_sync(pb::ExecSyncRequest { container_id: id, cmd: vec!["cat".into(), path], timeout: 10 })
                    .await
                    .expect("exec")
                    .into_inner();
                String::from_utf8_lossy(&r.stdout).into_owned()
            }
        };
        let resolv = read("/etc/resolv.conf").await;
        assert!(resolv.lines().any(|l| l == "nameserver 192.0.2.53"), "{resolv}");
        assert!(resolv.lines().any(|l| l == "search default.svc.cluster.local svc.cluster.local"), "{resolv}");
        assert!(resolv.lines().any(|l| l == "options ndots:5"), "{resolv}");
        assert_eq!(read("/proc/sys/kernel/shm_rmid_forced").await.trim(), "1");
        assert_eq!(read("/proc/sys/fs/mqueue/msg_max").await.trim(), "17");
        assert_eq!(read("/proc/sys/net/ipv4/ip_unprivileged_port_start").await.trim(), "0");
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("remove");
    });
    // The host's values are untouched; an IPC sysctl with the host's IPC namespace is refused.
    assert_ne!(std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max").unwrap().trim(), "17");
    let r = a.ctl(&["run", "--rm", "--ipc", "host", "--sysctl", "kernel.shm_rmid_forced=1", "local/busybox", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("not allowed with --ipc host"), "{}", r.stderr);
    a.assert_no_leftovers();
}

#[test]
fn images_through_the_cri() {
    if !privileged("cri images") {
        return;
    }
    let regdir = tempfile::tempdir().unwrap();
    let Some(reg) = Registry::start(regdir.path(), None) else {
        eprintln!("SKIP cri images: docker-registry not installed");
        return;
    };
    // A plain-HTTP registry on loopback: the agent's config names it insecure.
    let a = Agent::start_with_config("criimg", &format!("[registry]\ninsecure = [\"{}\"]\n", reg.host()));
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut i = ImageServiceClient::new(ch);
        let spec = |s: &str| Some(pb::ImageSpec { image: s.into(), ..Default::default() });
        let all = i.list_images(pb::ListImagesRequest { filter: None }).await.unwrap().into_inner().images;
        assert!(all.iter().any(|im| im.repo_tags.iter().any(|t| t.contains("local/busybox"))), "{all:?}");
        // A missing image is "no image", not an error (kubelet asks before pulling).
        let st = i.image_status(pb::ImageStatusRequest { image: spec("nothere/x:1"), verbose: false }).await.unwrap();
        assert!(st.into_inner().image.is_none());
        // Pull from a registry of our own, then remove.
        let archive = a.dir.path().join("img.tar");
        a.ok(&["save", "-o", archive.to_str().unwrap(), "local/busybox:latest"]);
        reg.push(&archive, "cri/bb:1", None);
        let name = format!("{}/cri/bb:1", reg.host());
        let r = i
            .pull_image(pb::PullImageRequest { image: spec(&name), auth: None, sandbox_config: None })
            .await
            .expect("pull")
            .into_inner();
        assert!(r.image_ref.starts_with("sha256:"), "{r:?}");
        let st =
            i.image_status(pb::ImageStatusRequest { image: spec(&name), verbose: false }).await.unwrap().into_inner();
        assert_eq!(st.image.unwrap().id, r.image_ref);
        let fs = i.image_fs_info(pb::ImageFsInfoRequest {}).await.unwrap().into_inner();
        assert!(fs.image_filesystems[0].used_bytes.as_ref().unwrap().value > 1_000_000);
        i.remove_image(pb::RemoveImageRequest { image: spec(&name) }).await.expect("remove");
        i.remove_image(pb::RemoveImageRequest { image: spec(&name) }).await.expect("remove again is fine");
        let st =
            i.image_status(pb::ImageStatusRequest { image: spec(&name), verbose: false }).await.unwrap().into_inner();
        assert!(st.image.is_none());
    });
    a.assert_no_leftovers();
}

/// Pods in the node's namespaces (kube-proxy, CNI daemonsets) under an agent that remaps
/// containers by default: a hostNetwork sandbox with declared ports starts (nothing to
/// publish), and it and a privileged container in it keep the host's IDs.
#[test]
fn node_namespace_pods_under_a_remapping_default() {
    if !privileged("cri node pods") {
        return;
    }
    let ids = tempfile::tempdir().unwrap();
    std::fs::write(ids.path().join("subuid"), "agentd-e2e:3700000:65536\n").unwrap();
    std::fs::write(ids.path().join("subgid"), "agentd-e2e:3700000:65536\n").unwrap();
    let cfg = format!(
        "[userns]\nuser = \"agentd-e2e\"\nsubuid = \"{}\"\nsubgid = \"{}\"\ndefault = \"remap\"\n",
        ids.path().join("subuid").display(),
        ids.path().join("subgid").display()
    );
    let a = Agent::start_with_config("crinode", &cfg);
    let logs = a.dir.path().join("pods/node");
    std::fs::create_dir_all(&logs).unwrap();
    rt().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut c = RuntimeServiceClient::new(ch);
        let mut sb_cfg = sandbox_config(&logs, 9100);
        sb_cfg.port_mappings[0].container_port = 9100;
        let node = pb::NamespaceOption {
            network: pb::NamespaceMode::Node as i32,
            pid: pb::NamespaceMode::Node as i32,
            ..Default::default()
        };
        sb_cfg.linux = Some(pb::LinuxPodSandboxConfig {
            security_context: Some(pb::LinuxSandboxSecurityContext {
                namespace_options: Some(node.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let sb = run_pod(&mut c, sb_cfg.clone(), "a hostNetwork sandbox with ports runs").await;
        let mut cc = container_config("proxy", &["sleep 300"]);
        cc.linux = Some(pb::LinuxContainerConfig {
            security_context: Some(pb::LinuxContainerSecurityContext {
                privileged: true,
                namespace_options: Some(node),
                ..Default::default()
            }),
            ..Default::default()
        });
        let id = c
            .create_container(pb::CreateContainerRequest {
                pod_sandbox_id: sb.clone(),
                config: Some(cc),
                sandbox_config: Some(sb_cfg),
            })
            .await
            .expect("a privileged container under a remapping default")
            .into_inner()
            .container_id;
        c.start_container(pb::StartContainerRequest { container_id: id.clone() }).await.expect("start");
        for who in [&sb, &id] {
            let pid = a.inspect(who)["State"]["Pid"].to_string();
            let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
            assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "0", "4294967295"], "host IDs for {who}");
            assert_eq!(ns_inode(&pid, "net"), ns_inode("self", "net"), "the node's network");
            assert_eq!(ns_inode(&pid, "pid"), ns_inode("self", "pid"), "the node's PIDs");
        }
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("remove");
        // A pod of its own namespaces is remapped, its built-in pause root included.
        let mut plain = sandbox_config(&logs, 0);
        plain.port_mappings.clear();
        plain.metadata.as_mut().unwrap().name = "plain".into();
        let sb = run_pod(&mut c, plain, "a remapped sandbox").await;
        let pid = a.inspect(&sb)["State"]["Pid"].to_string();
        let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
        assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", "3700000", "65536"], "remapped");
        c.remove_pod_sandbox(pb::RemovePodSandboxRequest { pod_sandbox_id: sb }).await.expect("remove");
    });
    a.assert_no_leftovers();
}
