//! Resource limits enforced by the kernel: memory (OOM kill reported), PIDs, cpuset, live
//! updates read back from the cgroup files, stats, sysctls inside the container only.

use e2e::{privileged, Agent};

const IMG: &str = "local/busybox:latest";

fn cg_file(a: &Agent, id: &str, controller: &str, file: &str) -> Option<String> {
    a.cgroup_dirs(id)
        .into_iter()
        .find(|d| d.parent().and_then(|p| p.parent()).is_some_and(|m| m.ends_with(controller)) || d.join(file).exists())
        .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
        .map(|s| s.trim().to_string())
}

/// `create --cpus 0.5` is refused by admission, short by `short` CPUs.
fn refused_short_by(a: &Agent, name: &str, short: &str) {
    let r = a.ctl(&["create", "--name", name, "--cpus", "0.5", IMG, "true"]);
    assert_eq!(r.code, 125);
    let want = format!("short by {short} CPUs");
    assert!(r.stderr.contains("not enough allocatable resources") && r.stderr.contains(&want), "{}", r.stderr);
}

#[test]
fn memory_limit_oom_kills_and_is_reported() {
    if !privileged("memory_limit") {
        return;
    }
    let a = Agent::start("mem");
    // `tail` keeps newline-free input in memory: 64 MiB does not fit in 32 MiB.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "big",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        IMG,
        "sh",
        "-c",
        "head -c 64m /dev/zero | tail",
    ]);
    assert_eq!(a.ok(&["wait", "big"]), "137");
    let j = a.inspect("big");
    assert_eq!(j["State"]["OOMKilled"], true, "{j}");
    assert_eq!(j["State"]["ExitCode"], 137);
    assert_eq!(j["HostConfig"]["Memory"], 32 << 20);
    let evs = a.ok(&["events", "--no-follow", "--format", "json"]);
    assert!(evs.lines().any(|l| l.contains("\"oom\"") && l.contains("\"big\"")), "an oom event is emitted: {evs}");
    a.ok(&[
        "run",
        "-d",
        "--name",
        "small",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        IMG,
        "sh",
        "-c",
        "head -c 8m /dev/zero | tail | wc -c",
    ]);
    assert_eq!(a.ok(&["wait", "small"]), "0");
    assert_eq!(a.inspect("small")["State"]["OOMKilled"], false);
    assert_eq!(a.ok(&["logs", "small"]), (8 << 20).to_string());
    // Bad values are refused with the value named, and nothing is created.
    let r = a.ctl(&["run", "--rm", "-m", "10k", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("10240 bytes is below the 6 MiB minimum"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "--oom-score-adj", "-5", IMG, "true"]);
    assert!(r.stderr.contains("CAP_SYS_RESOURCE"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "-m", "lots", IMG, "true"]);
    assert!(r.stderr.contains("invalid --memory \"lots\""), "{}", r.stderr);
    assert_eq!(a.ok(&["run", "--rm", "--oom-score-adj", "500", IMG, "cat", "/proc/self/oom_score_adj"]), "500");
    // A limit the kernel cannot enforce here is refused at create, naming the file.
    let weight = e2e::cgroup_mounts()
        .iter()
        .any(|m| m.join(&a.instance).join("blkio.weight").exists() || m.join("blkio.weight").exists());
    let r = a.ctl(&["run", "--rm", "--blkio-weight", "300", IMG, "true"]);
    if weight {
        assert_eq!(r.code, 0, "{}", r.stderr);
    } else {
        assert_eq!(r.code, 125);
        assert!(r.stderr.contains("no cgroup file blkio.weight"), "{}", r.stderr);
    }
    a.ok(&["rm", "big", "small"]);
    a.assert_no_leftovers();
}

#[test]
fn pids_limit_and_cpuset() {
    if !privileged("pids_limit") {
        return;
    }
    let a = Agent::start("pids");
    // 30 background processes: a shell that cannot fork gives up ("can't fork").
    let script = "i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; echo forked-all";
    let r = a.ctl(&["run", "--rm", "--pids-limit", "20", IMG, "sh", "-c", script]);
    assert_ne!(r.code, 0, "the 21st process must fail to start: {}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("fork"), "{}", r.stderr);
    assert!(!r.stdout.contains("forked-all"));
    let r = a.ctl(&["run", "--rm", "--pids-limit", "40", IMG, "sh", "-c", script]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("forked-all"));
    let out = a.ok(&["run", "--rm", "--cpuset-cpus", "0", IMG, "grep", "Cpus_allowed_list", "/proc/self/status"]);
    assert!(out.ends_with("\t0"), "{out}");
}

#[test]
fn live_update_reads_back_from_the_kernel_and_stats_report_usage() {
    if !privileged("live_update") {
        return;
    }
    let a = Agent::start("upd");
    let id =
        a.ok(&["run", "-d", "--name", "u1", "-m", "64m", "--pids-limit", "30", IMG, "sh", "-c", "while :; do :; done"]);
    assert_eq!(cg_file(&a, &id, "memory", "memory.limit_in_bytes").as_deref(), Some("67108864"));
    a.ok(&["update", "--memory", "128m", "--memory-swap", "256m", "--pids-limit", "50", "--cpus", "1", "u1"]);
    assert_eq!(cg_file(&a, &id, "memory", "memory.limit_in_bytes").as_deref(), Some("134217728"));
    assert_eq!(cg_file(&a, &id, "pids", "pids.max").as_deref(), Some("50"));
    assert_eq!(cg_file(&a, &id, "cpu", "cpu.cfs_quota_us").as_deref(), Some("100000"));
    let j = a.inspect("u1");
    assert_eq!(j["HostConfig"]["Memory"], 128 << 20);
    assert_eq!(j["HostConfig"]["PidsLimit"], 50);
    // Lowering below the minimum is refused and changes nothing.
    let r = a.ctl(&["update", "--memory", "1m", "u1"]);
    assert_ne!(r.code, 0);
    assert_eq!(cg_file(&a, &id, "memory", "memory.limit_in_bytes").as_deref(), Some("134217728"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let s = a.ok(&["stats", "--no-stream", "--format", "json", "u1"]);
    let v: serde_json::Value = serde_json::from_str(s.lines().next().unwrap()).unwrap();
    assert!(v["CPUNanos"].as_u64().unwrap() > 100_000_000, "a busy container used CPU: {v}");
    assert!(v["MemUsage"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["MemLimit"].as_u64().unwrap(), 128 << 20);
    assert!(v["PIDs"].as_u64().unwrap() >= 1);
    let table = a.ok(&["stats", "--no-stream"]);
    assert!(table.contains("u1") && table.contains("MEM USAGE / LIMIT"), "{table}");
}

#[test]
fn sysctls_stay_in_the_container() {
    if !privileged("sysctls") {
        return;
    }
    let a = Agent::start("sysctl");
    let host = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap();
    let out = a.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "net.core.somaxconn=1024",
        "--sysctl",
        "kernel/shmmni=1000",
        IMG,
        "sh",
        "-c",
        "cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni",
    ]);
    assert_eq!(out, "1024\n1000");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap(),
        host,
        "the host's value must not change"
    );
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let r = a.ctl(&["run", "--rm", "--name", "px", "--sysctl", "kernel.pid_max=100000", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("kernel.pid_max is not namespaced"), "{}", r.stderr);
    assert!(r.stderr.contains("whole host"), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap(), pid_max);
    let r = a.ctl(&["run", "--rm", "--network", "host", "--sysctl", "net.core.somaxconn=1024", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--network host"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "", "refused creates leave nothing");
    a.assert_no_leftovers();
}

#[test]
fn admission_refuses_beyond_allocatable_and_returns_reservations() {
    if !privileged("admission") {
        return;
    }
    let a = Agent::start("admit");
    let info = |a: &Agent| -> serde_json::Value { serde_json::from_str(&a.ok(&["info", "--format", "json"])).unwrap() };
    let i = info(&a);
    let allocatable = i["Allocatable"]["CPUs"].as_f64().unwrap();
    assert!(allocatable > 0.0 && allocatable <= i["Capacity"]["CPUs"].as_f64().unwrap());
    assert_eq!(i["Allocated"]["CPUs"].as_f64().unwrap(), 0.0);
    // Take all allocatable CPU in one container, then one more is refused.
    let all = format!("{allocatable}");
    a.ok(&["create", "--name", "hog", "--cpus", &all, IMG, "true"]);
    assert!((info(&a)["Allocated"]["CPUs"].as_f64().unwrap() - allocatable).abs() < 1e-6);
    refused_short_by(&a, "more", "0.50");
    // A container without limits reserves nothing (best effort): admitted all the same.
    let be = a.ok(&["create", IMG, "true"]);
    assert!((info(&a)["Allocated"]["CPUs"].as_f64().unwrap() - allocatable).abs() < 1e-6);
    a.ok(&["rm", &be]);
    // Memory beyond the node.
    let r = a.ctl(&["update", "--memory", "100t", "hog"]);
    assert!(r.stderr.contains("short by"), "{}", r.stderr);
    // Removing returns the reservation.
    a.ok(&["rm", "hog"]);
    assert_eq!(info(&a)["Allocated"]["CPUs"].as_f64().unwrap(), 0.0);
    a.ok(&["create", "--name", "more", "--cpus", "0.5", IMG, "true"]);
    a.ok(&["rm", "more"]);
}

#[test]
fn groups_bound_their_members() {
    if !privileged("groups") {
        return;
    }
    let a = Agent::start("groups");
    a.ok(&["group", "create", "g1", "--memory", "64m", "--memory-swap", "64m", "--cpus", "1"]);
    let r = a.ctl(&["group", "create", "g1"]);
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    // Each member alone fits in 64 MiB; together they do not: the group's limit kills one.
    let hold = "(head -c 40m /dev/zero; sleep 3) | tail";
    let m1 = a.ok(&["run", "-d", "--name", "m1", "--group", "g1", IMG, "sh", "-c", hold]);
    let j: serde_json::Value = serde_json::from_str(&a.ok(&["group", "inspect", "g1"])).unwrap();
    assert!(j["Members"].as_array().unwrap().iter().any(|m| m == m1.as_str()));
    let cg = j["CgroupPath"].as_str().unwrap().to_string();
    assert!(
        a.inspect("m1")["CgroupPath"].as_str().unwrap().starts_with(&format!("{cg}/")),
        "members live below the group"
    );
    std::thread::sleep(std::time::Duration::from_millis(800));
    a.ok(&["run", "-d", "--name", "m2", "--group", "g1", IMG, "sh", "-c", hold]);
    let killed = e2e::eventually(10, || {
        ["m1", "m2"]
            .iter()
            .any(|m| a.inspect(m)["State"]["OOMKilled"] == true || a.inspect(m)["State"]["ExitCode"] == 137)
    });
    assert!(killed, "one member must be OOM-killed by the group's 64 MiB limit");
    // The group's limits are what the ledger reserves.
    let info: serde_json::Value = serde_json::from_str(&a.ok(&["info", "--format", "json"])).unwrap();
    assert!((info["Allocated"]["CPUs"].as_f64().unwrap() - 1.0).abs() < 1e-6, "{info}");
    let r = a.ctl(&["group", "rm", "g1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("still has 2 container(s)"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "--group", "nope", IMG, "true"]);
    assert!(r.stderr.contains("no such container: group nope") || r.stderr.contains("group nope"), "{}", r.stderr);
    a.ok(&["rm", "-f", "m1", "m2"]);
    a.ok(&["group", "rm", "g1"]);
    a.assert_no_leftovers();
}

/// Containers without limits reserve nothing: a node with almost nothing allocatable still
/// admits many of them, while a container that reserves more than is left is refused
/// (ResourceExhausted), and `info` shows what is reserved.
#[test]
fn unlimited_containers_reserve_nothing() {
    if !privileged("ledger_best_effort") {
        return;
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    // Allocatable: 0.1 CPU.
    let a = Agent::start_with_config("besteffort", &format!("[capacity]\nreserved_cpus = {}\n", cpus - 0.1));
    let allocated = || {
        let v: serde_json::Value = serde_json::from_str(&a.ok(&["info", "--format", "json"])).unwrap();
        v["Allocated"]["CPUs"].as_f64().unwrap()
    };
    // Under the old default (0.01 CPU each) the 11th was refused.
    for i in 0..15 {
        a.ok(&["create", "--name", &format!("be{i}"), IMG, "true"]);
    }
    assert_eq!(allocated(), 0.0, "unlimited containers reserve nothing");
    a.ok(&["create", "--name", "small", "--cpus", "0.05", IMG, "true"]);
    assert!((allocated() - 0.05).abs() < 1e-6, "{}", allocated());
    refused_short_by(&a, "big", "0.45");
    let e = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut cs = agent_proto::v1::container_service_client::ContainerServiceClient::new(ch);
        let res = agent_proto::v1::Resources { cpu_quota: 50_000, cpu_period: 100_000, ..Default::default() };
        let spec = agent_proto::v1::ContainerSpec {
            image: IMG.into(),
            command: vec!["true".into()],
            resources: Some(res),
            ..Default::default()
        };
        cs.create(agent_proto::v1::CreateContainerRequest { spec: Some(spec) }).await.unwrap_err()
    });
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    // Still room for best effort.
    a.ok(&["run", "--rm", IMG, "true"]);
    for id in a.ok(&["ps", "-aq"]).split_whitespace() {
        a.ok(&["rm", "-f", id]);
    }
    a.assert_no_leftovers();
}
