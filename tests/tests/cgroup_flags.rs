//! `run`'s cgroup flags beyond the limits `update` shares, read back from the kernel:
//! --memory-swappiness, --oom-kill-disable, --cpu-rt-period/--cpu-rt-runtime, the per-device
//! block I/O limits, --device-cgroup-rule, --cgroupns, --cgroup-parent; and their refusals
//! (the error text, nothing left behind).

use e2e::{privileged, Agent};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;

const IMG: &str = "local/busybox:latest";

/// The mount point of the v1 hierarchy holding `controller`.
fn mount_of(controller: &str) -> Option<PathBuf> {
    e2e::cgroup_mounts()
        .into_iter()
        .find(|m| m.file_name().is_some_and(|n| n.to_string_lossy().split(',').any(|c| c == controller)))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
}

/// `agentctl ps -aq` is empty: a refused create left no container.
fn no_containers(a: &Agent) {
    assert_eq!(a.ok(&["ps", "-aq"]), "", "a refused create left a container");
}

#[test]
fn memory_swappiness_and_oom_kill_disable() {
    if !privileged("memory_swappiness") {
        return;
    }
    let Some(mem) = mount_of("memory") else {
        eprintln!("SKIP memory_swappiness: no v1 memory controller (cgroup v2 refuses both flags)");
        return;
    };
    let a = Agent::start("swap");
    let id = a.ok(&[
        "run",
        "-d",
        "--name",
        "s1",
        "-m",
        "64m",
        "--memory-swappiness",
        "7",
        "--oom-kill-disable",
        IMG,
        "sleep",
        "300",
    ]);
    let dir = mem.join(&a.instance).join(&id);
    assert_eq!(read(dir.join("memory.swappiness")), "7");
    assert!(read(dir.join("memory.oom_control")).lines().any(|l| l == "oom_kill_disable 1"));
    let j = a.inspect("s1");
    assert_eq!(j["HostConfig"]["MemorySwappiness"], 7, "{j}");
    assert_eq!(j["HostConfig"]["OomKillDisable"], true, "{j}");
    let x: serde_json::Value = serde_json::from_str(&a.ok(&["explain", "s1", "--format", "json"])).unwrap();
    assert_eq!(x["Limits"]["MemorySwappiness"], "7", "{x}");
    assert_eq!(x["Limits"]["OomKillDisable"], "true", "{x}");
    // Without the flags the kernel's defaults stay.
    let id2 = a.ok(&["run", "-d", "--name", "s2", IMG, "sleep", "300"]);
    assert!(read(mem.join(&a.instance).join(&id2).join("memory.oom_control")).contains("oom_kill_disable 0"));
    assert_eq!(a.inspect("s2")["HostConfig"]["MemorySwappiness"], serde_json::Value::Null);
    a.ok(&["rm", "-f", "s1", "s2"]);
    let r = a.ctl(&["run", "--rm", "--memory-swappiness", "101", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --memory-swappiness 101"), "{}", r.stderr);
    let r = a.ctl(&["update", "--memory-swappiness", "5", "s1"]);
    assert_ne!(r.code, 0, "update has no --memory-swappiness");
    no_containers(&a);
    a.assert_no_leftovers();
}

#[test]
fn cpu_rt_budget_reaches_the_container_through_its_ancestors() {
    if !privileged("cpu_rt") {
        return;
    }
    let Some(cpu) = mount_of("cpu").filter(|m| m.join("cpu.rt_runtime_us").exists()) else {
        eprintln!("SKIP cpu_rt: no cpu.rt_runtime_us here");
        return;
    };
    let a = Agent::start("rt");
    let id = a.ok(&[
        "run",
        "-d",
        "--name",
        "rt1",
        "--cpu-rt-period",
        "500000",
        "--cpu-rt-runtime",
        "25000",
        IMG,
        "sleep",
        "300",
    ]);
    let dir = cpu.join(&a.instance).join(&id);
    assert_eq!(read(dir.join("cpu.rt_period_us")), "500000");
    assert_eq!(read(dir.join("cpu.rt_runtime_us")), "25000");
    // The instance's cgroup got (at least) the container's share of its own 1 s period.
    let inst: u64 = read(cpu.join(&a.instance).join("cpu.rt_runtime_us")).parse().unwrap();
    assert!(inst >= 50_000, "instance budget {inst}");
    // A realtime policy runs inside (busybox chrt, if it has one).
    let r = a.ctl(&["exec", "rt1", "chrt", "-f", "1", "true"]);
    if !r.stderr.contains("applet not found") && !r.stderr.contains("not found") {
        assert_eq!(r.code, 0, "SCHED_FIFO inside the budget: {}{}", r.stdout, r.stderr);
    }
    let j = a.inspect("rt1");
    assert_eq!(
        (j["HostConfig"]["CpuRealtimePeriod"].clone(), j["HostConfig"]["CpuRealtimeRuntime"].clone()),
        (serde_json::json!(500000), serde_json::json!(25000))
    );
    let x: serde_json::Value = serde_json::from_str(&a.ok(&["explain", "rt1", "--format", "json"])).unwrap();
    assert_eq!(x["Limits"]["CpuRealtimeRuntime"], "25000", "{x}");
    a.ok(&["rm", "-f", "rt1"]);
    // runtime > period: refused before anything is made.
    let r = a.ctl(&["run", "--rm", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--cpu-rt-runtime 2000 cannot be higher than --cpu-rt-period 1000"), "{}", r.stderr);
    // More than the host has (950000 of 1000000 for every realtime group): the kernel's
    // refusal, clearly, and the ancestors' budgets are put back.
    let before = read(cpu.join(&a.instance).join("cpu.rt_runtime_us"));
    let r = a.ctl(&["run", "--rm", "--name", "rt2", "--cpu-rt-runtime", "990000", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("more realtime budget than this host has left"), "{}", r.stderr);
    assert_eq!(read(cpu.join(&a.instance).join("cpu.rt_runtime_us")), before);
    no_containers(&a);
    // Two creates that each fit, whose starts together do not: the second start is
    // refused by the kernel, its cgroup goes and the ancestors' budgets are put back.
    a.ok(&["create", "--name", "rt3", "--cpu-rt-runtime", "500000", IMG, "sleep", "300"]);
    a.ok(&["create", "--name", "rt4", "--cpu-rt-runtime", "500000", IMG, "sleep", "300"]);
    a.ok(&["start", "rt3"]);
    let before = read(cpu.join(&a.instance).join("cpu.rt_runtime_us"));
    let r = a.ctl(&["start", "rt4"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("more realtime budget than this host has left"), "{}", r.stderr);
    assert_eq!(read(cpu.join(&a.instance).join("cpu.rt_runtime_us")), before);
    let id4 = a.inspect("rt4")["Id"].as_str().unwrap().to_string();
    assert!(!cpu.join(&a.instance).join(&id4).exists(), "the refused start's cgroup is removed");
    a.ok(&["rm", "-f", "rt3", "rt4"]);
    a.assert_no_leftovers();
}

/// A block device of this host, its path and `MAJ:MIN`.
fn block_device() -> Option<(String, String)> {
    ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"].iter().find_map(|p| {
        let m = std::fs::metadata(p).ok()?;
        m.file_type().is_block_device().then(|| {
            (p.to_string(), format!("{}:{}", nix::sys::stat::major(m.rdev()), nix::sys::stat::minor(m.rdev())))
        })
    })
}

#[test]
fn block_io_throttles_per_device() {
    if !privileged("blkio_throttle") {
        return;
    }
    let (Some(blkio), Some((dev, num))) = (mount_of("blkio"), block_device()) else {
        eprintln!("SKIP blkio_throttle: no v1 blkio controller or block device");
        return;
    };
    let a = Agent::start("bio");
    let rbps = format!("{dev}:1mb");
    let wbps = format!("{dev}:2MB");
    let riops = format!("{dev}:200");
    let wiops = format!("{dev}:100");
    let id = a.ok(&[
        "run",
        "-d",
        "--name",
        "b1",
        "--device-read-bps",
        &rbps,
        "--device-write-bps",
        &wbps,
        "--device-read-iops",
        &riops,
        "--device-write-iops",
        &wiops,
        IMG,
        "sleep",
        "300",
    ]);
    let dir = blkio.join(&a.instance).join(&id);
    assert_eq!(read(dir.join("blkio.throttle.read_bps_device")), format!("{num} 1048576"));
    assert_eq!(read(dir.join("blkio.throttle.write_bps_device")), format!("{num} 2097152"));
    assert_eq!(read(dir.join("blkio.throttle.read_iops_device")), format!("{num} 200"));
    assert_eq!(read(dir.join("blkio.throttle.write_iops_device")), format!("{num} 100"));
    let j = a.inspect("b1");
    assert_eq!(j["HostConfig"]["BlkioDeviceReadBps"], serde_json::json!([{"Path": dev, "Rate": 1048576}]), "{j}");
    assert_eq!(j["HostConfig"]["BlkioDeviceWriteIOps"], serde_json::json!([{"Path": dev, "Rate": 100}]), "{j}");
    let x: serde_json::Value = serde_json::from_str(&a.ok(&["explain", "b1", "--format", "json"])).unwrap();
    assert_eq!(x["Limits"]["BlkioDeviceReadBps"], format!("{num} 1048576"), "{x}");
    a.ok(&["rm", "-f", "b1"]);
    // Bad values: InvalidArgument naming the value; nothing is created.
    for (flag, v, want) in [
        ("--device-read-bps", "/dev/null:1mb", "/dev/null is not a block device"),
        ("--device-read-bps", "/dev/no-such-disk:1mb", "/dev/no-such-disk does not exist"),
        ("--device-write-bps", &format!("{dev}:10xb") as &str, "kb, mb or gb"),
        ("--device-read-iops", &format!("{dev}:fast") as &str, "whole number"),
        ("--device-write-iops", "vda:5", "must start with /dev/"),
    ] {
        let r = a.ctl(&["run", "--rm", flag, v, IMG, "true"]);
        assert_eq!(r.code, 125, "{flag} {v}");
        assert!(r.stderr.contains(want) && r.stderr.contains(v), "{flag} {v}: {}", r.stderr);
    }
    // This kernel's blkio has no weight_device (no scheduler with weights on its disks):
    // refused at create, naming the missing file.
    let weight = format!("{dev}:300");
    let r = a.ctl(&["run", "--rm", "--name", "w1", "--blkio-weight-device", &weight, IMG, "true"]);
    if blkio.join("blkio.weight_device").exists() {
        assert_eq!(r.code, 0, "{}", r.stderr);
    } else {
        assert_eq!(r.code, 125);
        assert!(r.stderr.contains("no cgroup file blkio.weight_device"), "{}", r.stderr);
    }
    let r = a.ctl(&["run", "--rm", "--blkio-weight-device", &format!("{dev}:5"), IMG, "true"]);
    assert!(r.stderr.contains("a weight from 10 to 1000"), "{}", r.stderr);
    no_containers(&a);
    a.assert_no_leftovers();
}

/// `script` (mknod and write /dev/kmsg, 1:11: no default rule) fails without a rule and
/// prints "opened" with `--device-cgroup-rule 'c 1:11 w'`.
fn rule_is_needed_and_enough(a: &Agent, script: &str) {
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", script]);
    assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Operation not permitted") && !r.stdout.contains("opened"), "{}", r.stderr);
    let out = a.ok(&["run", "--rm", "--device-cgroup-rule", "c 1:11 w", IMG, "sh", "-c", script]);
    assert_eq!(out, "opened");
}

#[test]
fn device_cgroup_rule_lets_a_made_node_open() {
    if !privileged("device_cgroup_rule") {
        return;
    }
    if mount_of("devices").is_none() {
        eprintln!("SKIP device_cgroup_rule: no v1 devices controller");
        return;
    }
    let a = Agent::start("dcr");
    // /dev/kmsg (1:11) is not among the default rules: made (m is allowed), not opened.
    let script = "mknod /tmp/n c 1 11 && echo agentd-e2e-rule > /tmp/n && echo opened";
    rule_is_needed_and_enough(&a, script);
    // The brief's example: c 1:3 (null; a default too) made and written.
    let out = a.ok(&[
        "run",
        "--rm",
        "--device-cgroup-rule",
        "c 1:3 rwm",
        IMG,
        "sh",
        "-c",
        "mknod /tmp/n c 1 3 && echo x > /tmp/n && echo ok",
    ]);
    assert_eq!(out, "ok");
    let id = a.ok(&["run", "-d", "--name", "d1", "--device-cgroup-rule", "b 7:* r", IMG, "sleep", "300"]);
    let list = read(mount_of("devices").unwrap().join(&a.instance).join(&id).join("devices.list"));
    assert!(list.lines().any(|l| l == "b 7:* r"), "{list}");
    assert_eq!(a.inspect("d1")["HostConfig"]["DeviceCgroupRules"], serde_json::json!(["b 7:* r"]));
    a.ok(&["rm", "-f", "d1"]);
    let r = a.ctl(&["run", "--rm", "--device-cgroup-rule", "c 1-3 rwm", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --device-cgroup-rule \"c 1-3 rwm\""), "{}", r.stderr);
    no_containers(&a);
    a.assert_no_leftovers();
}

#[test]
fn cgroupns_private_by_default_and_host_on_request() {
    if !privileged("cgroupns") {
        return;
    }
    let a = Agent::start("cgns");
    for args in [&[][..], &["--cgroupns", "private"][..]] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend_from_slice(args);
        cmd.extend_from_slice(&[IMG, "cat", "/proc/self/cgroup"]);
        let out = a.ok(&cmd);
        assert!(out.lines().all(|l| l.ends_with(":/")), "{args:?}: {out}");
    }
    let out = a.ok(&["run", "--rm", "--cgroupns", "host", IMG, "cat", "/proc/self/cgroup"]);
    let inst = format!("/{}/", a.instance);
    assert!(out.lines().any(|l| l.contains(&inst)), "the host's view names the agent's cgroup: {out}");
    a.ok(&["create", "--name", "n1", "--cgroupns", "host", IMG, "true"]);
    assert_eq!(a.inspect("n1")["HostConfig"]["CgroupnsMode"], "host");
    a.ok(&["create", "--name", "n2", IMG, "true"]);
    assert_eq!(a.inspect("n2")["HostConfig"]["CgroupnsMode"], "private");
    a.ok(&["rm", "n1", "n2"]);
    let r = a.ctl(&["run", "--rm", "--cgroupns", "shared", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("shared"), "{}", r.stderr);
    no_containers(&a);
    a.assert_no_leftovers();
}

#[test]
fn cgroup_parent_places_the_container_and_goes_with_it_when_made() {
    if !privileged("cgroup_parent") {
        return;
    }
    let a = Agent::start("cgp");
    let id = a.ok(&["run", "-d", "--name", "p1", "--cgroup-parent", "mygroup/sub", IMG, "sleep", "300"]);
    let pid = a.inspect("p1")["State"]["Pid"].to_string();
    let want = format!("/{}/mygroup/sub/{id}", a.instance);
    let host_view = read(PathBuf::from(format!("/proc/{pid}/cgroup")));
    assert!(host_view.lines().filter(|l| !l.starts_with("0::")).all(|l| l.ends_with(&want)), "{host_view}");
    for m in e2e::cgroup_mounts() {
        assert!(m.join(&a.instance).join("mygroup/sub").join(&id).is_dir(), "{}", m.display());
    }
    let j = a.inspect("p1");
    assert_eq!(j["HostConfig"]["CgroupParent"], "mygroup/sub");
    assert_eq!(j["CgroupPath"], want);
    a.ok(&["rm", "-f", "p1"]);
    for m in e2e::cgroup_mounts() {
        assert!(!m.join(&a.instance).join("mygroup").exists(), "made with the container, removed with it");
    }
    // A parent two containers share goes with the last of them.
    a.ok(&["run", "-d", "--name", "s1", "--cgroup-parent", "shared", IMG, "sleep", "300"]);
    a.ok(&["run", "-d", "--name", "s2", "--cgroup-parent", "shared/deeper", IMG, "sleep", "300"]);
    a.ok(&["rm", "-f", "s1"]);
    for m in e2e::cgroup_mounts() {
        assert!(m.join(&a.instance).join("shared/deeper").is_dir(), "still in use by s2");
    }
    a.ok(&["rm", "-f", "s2"]);
    for m in e2e::cgroup_mounts() {
        assert!(!m.join(&a.instance).join("shared").exists(), "{}: gone with the last", m.display());
    }
    // A parent that existed stays.
    for m in e2e::cgroup_mounts() {
        std::fs::create_dir_all(m.join(&a.instance).join("kept")).unwrap();
    }
    a.ok(&["run", "--rm", "--cgroup-parent", "kept", IMG, "true"]);
    for m in e2e::cgroup_mounts() {
        let kept = m.join(&a.instance).join("kept");
        assert!(kept.is_dir(), "{}", kept.display());
        std::fs::remove_dir(&kept).unwrap();
    }
    // Absolute: from each hierarchy's root.
    let abs = format!("/{}-abs", a.instance);
    let id = a.ok(&["run", "-d", "--name", "p2", "--cgroup-parent", &abs, IMG, "sleep", "300"]);
    let pid = a.inspect("p2")["State"]["Pid"].to_string();
    let host_view = read(PathBuf::from(format!("/proc/{pid}/cgroup")));
    assert!(host_view.contains(&format!("{abs}/{id}")), "{host_view}");
    a.ok(&["rm", "-f", "p2"]);
    for m in e2e::cgroup_mounts() {
        assert!(!m.join(abs.trim_start_matches('/')).exists(), "{}", m.display());
    }
    for (args, want) in [
        (&["--cgroup-parent", "a/../b"][..], "invalid --cgroup-parent \"a/../b\""),
        (&["--cgroup-parent", "a//b"][..], "empty path component"),
        (&["--cgroup-parent", "mine", "--group", "g1"][..], "cannot be combined"),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend_from_slice(args);
        cmd.extend_from_slice(&[IMG, "true"]);
        let r = a.ctl(&cmd);
        assert_eq!(r.code, 125, "{args:?}");
        assert!(r.stderr.contains(want), "{args:?}: {}", r.stderr);
    }
    no_containers(&a);
    a.assert_no_leftovers();
}

/// The v2 code paths against the real kernel: an agent that sees only this host's cgroup2
/// tree. Its device cgroup is the eBPF device program: a rule lets a made node open, without
/// it the open is refused; the v1-only flags are refused clearly, nothing left behind.
#[test]
fn on_cgroup_v2_the_device_program_and_the_refusals() {
    if !privileged("cgroup_v2_view") {
        return;
    }
    let Some(a) = Agent::start_v2_view("v2view") else {
        eprintln!("SKIP cgroup_v2_view: no cgroup2 tree beside v1 here (a pure v2 host runs the other tests on v2)");
        return;
    };
    let v2 = a.v2_view().unwrap();
    assert!(a.log().contains("layout=v2"), "{}", a.log());
    let script = "mknod /tmp/n c 1 11 && echo agentd-e2e-v2-rule > /tmp/n && echo opened";
    rule_is_needed_and_enough(&a, script);
    // --device is a rule of the program too (1:11 is no default, as above).
    let out = a.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/kmsg:/dev/k:w",
        IMG,
        "sh",
        "-c",
        "echo agentd-e2e-v2-device > /dev/k && echo written",
    ]);
    assert_eq!(out, "written");
    // The defaults still hold: /dev/null opens, the container's own cgroup namespace.
    let out = a.ok(&["run", "--rm", IMG, "sh", "-c", "echo x > /dev/null && grep '^0::' /proc/self/cgroup"]);
    assert_eq!(out, "0::/");
    let id = a.ok(&["run", "-d", "--name", "v1", IMG, "sleep", "300"]);
    assert!(v2.join(&a.instance).join(&id).is_dir());
    // A parent on v2: every ancestor passes its controllers down; made, then removed.
    let id2 = a.ok(&["run", "-d", "--name", "v2p", "--cgroup-parent", "p/q", IMG, "sleep", "300"]);
    let pid = a.inspect("v2p")["State"]["Pid"].to_string();
    let want = format!("0::/{}/p/q/{id2}", a.instance);
    assert!(read(PathBuf::from(format!("/proc/{pid}/cgroup"))).lines().any(|l| l == want), "{want}");
    a.ok(&["rm", "-f", "v1", "v2p"]);
    assert!(!v2.join(&a.instance).join("p").exists());
    for (flags, want) in [
        (&["--memory-swappiness", "10"][..], "cgroup v2 has no per-cgroup swappiness"),
        (&["--oom-kill-disable"][..], "cgroup v2 cannot disable the OOM killer"),
        (&["--cpu-rt-runtime", "1000"][..], "cgroup v2 has no realtime budgets"),
    ] {
        let mut cmd = vec!["run", "--rm"];
        cmd.extend_from_slice(flags);
        cmd.extend_from_slice(&[IMG, "true"]);
        let r = a.ctl(&cmd);
        assert_eq!(r.code, 125, "{flags:?}");
        assert!(r.stderr.contains(want), "{flags:?}: {}", r.stderr);
    }
    no_containers(&a);
    let left: Vec<_> = std::fs::read_dir(v2.join(&a.instance))
        .map(|rd| rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "leftover v2 cgroups: {left:?}");
    a.assert_no_leftovers();
}
