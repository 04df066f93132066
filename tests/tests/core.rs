//! End-to-end tests of the runtime core: isolation, filesystem, lifecycle, logs, exec,
//! exit codes, restart survival and clean-up. Root only; each test has its own agent.

use e2e::{eventually, ns_inode, privileged, Agent};

const IMG: &str = "local/busybox:latest";

#[test]
fn namespaces_pid1_and_hostname() {
    if !privileged("namespaces_pid1_and_hostname") {
        return;
    }
    let a = Agent::start("ns");
    let out = a.ok(&[
        "run",
        "--rm",
        "--hostname",
        "box1",
        IMG,
        "sh",
        "-c",
        "echo $$; hostname; for n in pid uts ipc mnt net cgroup; do readlink /proc/self/ns/$n; done",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the container's shell must be PID 1: {out}");
    assert_eq!(lines[1], "box1");
    for (i, ns) in ["pid", "uts", "ipc", "mnt", "net", "cgroup"].iter().enumerate() {
        let host = ns_inode("self", ns);
        assert!(!host.is_empty());
        assert_ne!(lines[2 + i], host, "{ns} namespace must differ from the host's");
    }
    // Default hostname: the first 12 hex of the ID.
    let id = a.ok(&["run", "-d", IMG, "sleep", "100"]);
    assert_eq!(a.ok(&["exec", &id, "hostname"]), &id[..12]);
    // --network host shares the host's network namespace, and only that.
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMG,
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/pid",
    ]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], ns_inode("self", "net"));
    assert_ne!(l[1], ns_inode("self", "pid"));
    // --network none: loopback only, and up.
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMG,
        "sh",
        "-c",
        "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo pinged",
    ]);
    // The default is the bridge network, like docker: eth0 with an address.
    let out2 = a.ok(&["run", "--rm", IMG, "sh", "-c", "ls /sys/class/net | tr '\\n' ' '"]);
    assert_eq!(out2.trim(), "eth0 lo", "{out2}");
    assert_eq!(out.lines().next(), Some("lo"), "only loopback expected: {out}");
    assert!(out.contains("pinged"), "loopback must be up: {out}");
}

#[test]
fn writes_land_in_the_upper_layer_and_lowers_are_shared() {
    if !privileged("writes_land_in_the_upper_layer") {
        return;
    }
    let a = Agent::start("upper");
    let id1 = a.ok(&["run", "-d", IMG, "sh", "-c", "echo hi > /created-here; rm /bin/ls; sleep 1000"]);
    let id2 = a.ok(&["run", "-d", IMG, "sleep", "1000"]);
    let upper = a.root().join("containers").join(&id1).join("upper");
    assert!(eventually(5, || upper.join("created-here").exists()), "write must land in the upper dir");
    assert_eq!(std::fs::read_to_string(upper.join("created-here")).unwrap(), "hi\n");
    // The deletion is a whiteout in the upper dir; the shared lower layer keeps the file.
    assert!(eventually(5, || std::fs::symlink_metadata(upper.join("bin/ls")).is_ok()));
    assert!(!std::path::Path::new("/created-here").exists(), "nothing may appear on the host's root");
    let layers = a.root().join("layers");
    let layer_dirs: Vec<_> = std::fs::read_dir(&layers).unwrap().flatten().collect();
    assert_eq!(layer_dirs.len(), 1, "busybox has one layer, unpacked once");
    let lower = layer_dirs[0].path().join("fs");
    assert!(std::fs::symlink_metadata(lower.join("bin/ls")).is_ok(), "lower layer must be untouched");
    assert!(!lower.join("created-here").exists());
    // The other container still has ls: its view is its own.
    assert_eq!(a.ctl(&["exec", &id2, "ls", "/bin/ls"]).code, 0);
    assert_ne!(a.ctl(&["exec", &id1, "ls", "/bin/ls"]).code, 0);
    // Both overlays use the same lower directory (read from each container's mount table).
    let lowerdir_of = |id: &str| {
        let pid = a.inspect(id)["State"]["Pid"].as_u64().unwrap();
        let m = std::fs::read_to_string(format!("/proc/{pid}/mounts")).unwrap();
        let line = m
            .lines()
            .find(|l| l.starts_with("overlay / overlay"))
            .unwrap_or_else(|| panic!("no overlay root in {m}"))
            .to_string();
        line.split(',').find_map(|o| o.strip_prefix("lowerdir=")).unwrap().to_string()
    };
    let (l1, l2) = (lowerdir_of(&id1), lowerdir_of(&id2));
    assert_eq!(l1, l2);
    assert_eq!(l1, lower.display().to_string());
    // The overlay is not in the host's mount table.
    let host_mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!host_mounts.contains(&upper.display().to_string()));
}

#[test]
fn exit_codes_and_clear_errors() {
    if !privileged("exit_codes_and_clear_errors") {
        return;
    }
    let a = Agent::start("codes");
    assert_eq!(a.ctl(&["run", "--rm", IMG, "sh", "-c", "exit 3"]).code, 3);
    let r = a.ctl(&["run", "--name", "nf", IMG, "foo"]);
    assert_eq!(r.code, 127, "{}", r.stderr);
    assert!(r.stderr.contains("exec: \"foo\": executable file not found"), "{}", r.stderr);
    // The record is kept, as exited with 127.
    let nf = a.inspect("nf");
    assert_eq!(nf["State"]["Status"], "exited");
    assert_eq!(nf["State"]["ExitCode"], 127);
    let r = a.ctl(&["run", "--rm", IMG, "/etc/passwd"]);
    assert_eq!(r.code, 126, "{}", r.stderr);
    assert!(r.stderr.contains("permission denied"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "no/such-image:1", "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("no such image: no/such-image:1"), "{}", r.stderr);
    a.ok(&["create", "--name", "dup", IMG, "true"]);
    let r = a.ctl(&["create", "--name", "dup", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("\"dup\" is already in use"), "{}", r.stderr);
    let r = a.ctl(&["create", "--name", "bad name!", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid container name \"bad name!\""), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "-u", "ghost", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("unable to find user ghost"), "{}", r.stderr);
    let r = a.ctl(&["run", "--bogus-flag", IMG]);
    assert_eq!(r.code, 125, "usage errors exit 125");
    let r = a.ctl(&["kill", "-s", "NOPE", "dup"]);
    assert_ne!(r.code, 0);
    // Size limits name the field and leave nothing.
    let mut args: Vec<String> = vec!["create".into()];
    for i in 0..300 {
        args.push("-l".into());
        args.push(format!("k{i}=v"));
    }
    args.extend([IMG.to_string(), "true".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = a.ctl(&args);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("too many labels (300; at most 256)"), "{}", r.stderr);
    let mut args = vec!["create"];
    for _ in 0..20 {
        args.extend(["--dns", "10.0.0.1"]);
    }
    args.extend([IMG, "true"]);
    let r = a.ctl(&args);
    assert!(r.stderr.contains("too many dns (20; at most 16)"), "{}", r.stderr);
    // Failed creates left nothing; remove what exists and check the host is clean.
    a.ok(&["rm", "nf", "dup"]);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

#[test]
fn lifecycle_stop_kill_wait_start_rm() {
    if !privileged("lifecycle") {
        return;
    }
    let a = Agent::start("life");
    let id = a.ok(&["run", "-d", "--name", "web", IMG, "sleep", "1000"]);
    assert_eq!(id.len(), 64);
    assert!(a.ok(&["ps"]).contains("web"));
    let j = a.inspect("web");
    assert_eq!(j["State"]["Running"], true);
    let pid = j["State"]["Pid"].as_u64().unwrap();
    // The container's cgroup exists in every hierarchy and holds its init.
    for d in a.cgroup_dirs(&id) {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        assert!(procs.split_whitespace().any(|p| p == pid.to_string()), "{} must hold {pid}", d.display());
    }
    // A unique prefix names the container too; rm of a running container is refused.
    let r = a.ctl(&["rm", &id[..8]]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("running"), "{}", r.stderr);
    // sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    a.ok(&["stop", "-t", "1", "web"]);
    let j = a.inspect("web");
    assert_eq!(j["State"]["Status"], "exited");
    assert_eq!(j["State"]["ExitCode"], 137);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the process must be gone");
    for d in a.cgroup_dirs(&id) {
        assert!(!d.exists(), "cgroup {} must be removed on exit", d.display());
    }
    // Stop is idempotent.
    a.ok(&["stop", "web"]);
    a.ok(&["start", "web"]);
    assert_eq!(a.inspect("web")["State"]["Running"], true);
    // PID 1 of a namespace only gets signals it handles (or KILL/STOP from outside).
    a.ok(&["kill", "web"]);
    assert_eq!(a.ok(&["wait", "web"]), "137");
    // A container that traps TERM exits cleanly on stop.
    a.ok(&["run", "-d", "--name", "trap", IMG, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done"]);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let t0 = std::time::Instant::now();
    a.ok(&["stop", "-t", "20", "trap"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(a.inspect("trap")["State"]["ExitCode"], 0);
    a.ok(&["run", "-d", "--name", "running", IMG, "sleep", "1000"]);
    a.ok(&["rm", "-f", "web", "trap", "running"]);
    let r = a.ctl(&["inspect", "web"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no such container: web"), "{}", r.stderr);
    a.assert_no_leftovers();
}

#[test]
fn logs_and_timestamps() {
    if !privileged("logs") {
        return;
    }
    let a = Agent::start("logs");
    a.ok(&["run", "-d", "--name", "lg", IMG, "sh", "-c", "echo out1; echo err1 >&2; echo out2"]);
    assert_eq!(a.ok(&["wait", "lg"]), "0");
    let r = a.ctl(&["logs", "lg"]);
    assert_eq!(r.stdout, "out1\nout2\n");
    assert_eq!(r.stderr, "err1\n");
    let r = a.ctl(&["logs", "--timestamps", "lg"]);
    let first = r.stdout.lines().next().unwrap();
    let (ts, msg) = first.split_once(' ').unwrap();
    assert_eq!(msg, "out1");
    assert!(ts.starts_with("20") && ts.ends_with('Z') && ts.contains('T'), "{ts}");
    // stdout and stderr are separate pipes: their relative order is not defined, so
    // --tail is checked on a stdout-only container.
    a.ok(&["run", "-d", "--name", "tl", IMG, "sh", "-c", "echo a; echo b; echo c"]);
    a.ok(&["wait", "tl"]);
    assert_eq!(a.ok(&["logs", "--tail", "2", "tl"]), "b\nc");
    // -f follows until the container exits.
    a.ok(&["run", "-d", "--name", "fw", IMG, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"]);
    let r = a.ctl(&["logs", "-f", "fw"]);
    assert_eq!(r.stdout, "line1\nline2\nline3\n");
    // Attached run streams stdout and stderr apart.
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "echo to-out; echo to-err >&2"]);
    assert_eq!(r.stdout, "to-out\n");
    assert_eq!(r.stderr, "to-err\n");
}

#[test]
fn exec_and_stdin() {
    if !privileged("exec") {
        return;
    }
    let a = Agent::start("exec");
    a.ok(&["run", "-d", "--name", "ex", "-e", "FOO=bar", "-w", "/tmp", IMG, "sleep", "1000"]);
    let ps = a.ok(&["exec", "ex", "ps", "-o", "pid,args"]);
    assert!(ps.lines().any(|l| l.trim() == "1 sleep 1000"), "{ps}");
    assert_eq!(a.ok(&["exec", "ex", "sh", "-c", "echo $FOO; pwd"]), "bar\n/tmp");
    assert_eq!(a.ok(&["exec", "-e", "FOO=baz", "-w", "/", "ex", "sh", "-c", "echo $FOO; pwd"]), "baz\n/");
    assert_eq!(a.ctl(&["exec", "ex", "sh", "-c", "exit 7"]).code, 7);
    let r = a.ctl(&["exec", "ex", "nope"]);
    assert_eq!(r.code, 127);
    assert!(r.stderr.contains("executable file not found"), "{}", r.stderr);
    let r = a.ctl_stdin(&["exec", "-i", "ex", "sh", "-c", "tr a-z A-Z"], b"hello\n");
    assert_eq!(r.stdout, "HELLO\n");
    // -t gives the process a terminal.
    let r = a.ctl(&["exec", "-t", "ex", "sh", "-c", "tty; [ -t 0 ] && echo is-a-tty"]);
    assert!(r.stdout.contains("/dev/pts/"), "{}", r.stdout);
    assert!(r.stdout.contains("is-a-tty"), "{}", r.stdout);
    // exec in a user
    assert_eq!(a.ok(&["exec", "-u", "nobody", "ex", "id", "-u"]), "65534");
    // run -t: the terminal comes from the container's own devpts and is its console.
    let r = a.ctl(&["run", "--rm", "-t", IMG, "sh", "-c", "tty; [ -c /dev/console ] && echo console-ok"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("/dev/pts/0"), "{}", r.stdout);
    assert!(r.stdout.contains("console-ok"), "{}", r.stdout);
    // run -it: input goes through the terminal, the exit code comes back.
    let r = a.ctl_stdin(&["run", "--rm", "-i", "-t", IMG, "sh"], b"echo typed-$((40+2))\nexit 3\n");
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("typed-42"), "{}", r.stdout);
    // run -i feeds stdin and closes it at EOF.
    let r = a.ctl_stdin(&["run", "--rm", "-i", IMG, "sh", "-c", "wc -l"], b"a\nb\nc\n");
    assert_eq!(r.stdout.trim(), "3");
    a.ok(&["stop", "-t", "0", "ex"]);
    let r = a.ctl(&["exec", "ex", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
}

#[test]
fn hardening_defaults() {
    if !privileged("hardening") {
        return;
    }
    let a = Agent::start("hard");
    let out = a.ok(&["run", "--rm", IMG, "sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status"]);
    assert!(out.contains("CapEff:\t00000000a80425fb"), "Docker's 14 default capabilities: {out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    // Masked and read-only paths.
    assert_eq!(a.ok(&["run", "--rm", IMG, "sh", "-c", "wc -c < /proc/timer_list"]), "0");
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid"]);
    assert_ne!(r.code, 0, "/proc/sys must be read-only");
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "touch /sys/x"]);
    assert_ne!(r.code, 0, "/sys must be read-only");
    // The writes above could fail for other reasons: check the mount flags themselves.
    let mounts = a.ok(&["run", "--rm", IMG, "cat", "/proc/self/mounts"]);
    for path in [" /sys ", " /proc/sys ", " /proc/sysrq-trigger ", " /proc/bus "] {
        if let Some(line) = mounts.lines().find(|l| l.contains(path)) {
            assert!(line.split(' ').nth(3).unwrap().split(',').any(|o| o == "ro"), "{path} must be mounted ro: {line}");
        } else if path == " /sys " || path == " /proc/sys " {
            panic!("{path} is not a separate mount: {mounts}");
        }
    }
    let r = a.ctl(&["run", "--rm", IMG, "sh", "-c", "mount -t tmpfs t /mnt"]);
    assert_ne!(r.code, 0, "mount needs CAP_SYS_ADMIN");
    let host = nix::unistd::gethostname().unwrap();
    let _ = a.ctl(&["run", "--rm", IMG, "hostname", "evil"]);
    assert_eq!(nix::unistd::gethostname().unwrap(), host, "the host's hostname must not change");
    // /dev and the per-container /etc files.
    let out =
        a.ok(&["run", "--rm", "--hostname", "h1", IMG, "sh", "-c", "ls /dev; cat /etc/hostname; grep h1 /etc/hosts"]);
    for d in ["null", "zero", "random", "urandom", "tty", "pts", "shm", "mqueue", "full", "ptmx"] {
        assert!(out.lines().any(|l| l == d), "/dev/{d} missing: {out}");
    }
    assert!(out.contains("\nh1\n"), "{out}");
    // User switch; the primary group is a supplementary group too (docker and containerd
    // since CVE-2023-25173).
    assert_eq!(
        a.ok(&["run", "--rm", "-u", "65534:65534", IMG, "id"]),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    );
    // Orphans are reparented to PID 1. A plain `sleep` as PID 1 never reaps them; with
    // --init, a tiny init is PID 1, reaps them, and the command is PID 2.
    let orphan = "(sleep 0.1 &); exec sleep 1000";
    a.ok(&["run", "-d", "--name", "noinit", IMG, "sh", "-c", orphan]);
    a.ok(&["run", "-d", "--name", "withinit", "--init", IMG, "sh", "-c", orphan]);
    let zombies = |c: &str| a.ok(&["exec", c, "sh", "-c", "ps -o stat | grep -c Z || true"]);
    assert!(eventually(5, || zombies("noinit") == "1"), "without an init the orphan stays a zombie");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(zombies("withinit"), "0", "--init must reap orphans");
    assert_eq!(a.ok(&["run", "--rm", "--init", IMG, "sh", "-c", "echo $$"]), "2");
    // The init forwards signals: TERM reaches sh, which handles it.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "fwd",
        "--init",
        IMG,
        "sh",
        "-c",
        "trap 'exit 9' TERM; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    a.ok(&["stop", "-t", "20", "fwd"]);
    assert_eq!(a.inspect("fwd")["State"]["ExitCode"], 9);
}

#[test]
fn containers_survive_an_agent_crash() {
    if !privileged("restart") {
        return;
    }
    let mut a = Agent::start("restart");
    let id = a.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        IMG,
        "sh",
        "-c",
        "i=0; while true; do echo n$i; i=$((i+1)); sleep 0.2; done",
    ]);
    a.ok(&["run", "-d", "--name", "gone", IMG, "sh", "-c", "sleep 1; exit 5"]);
    let pid = a.inspect("keep")["State"]["Pid"].as_u64().unwrap();
    a.crash_and_restart();
    // The exit that happened while the agent was down is recorded with its code.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    a.crash_and_restart();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container must survive");
    let j = a.inspect("keep");
    assert_eq!(j["State"]["Running"], true);
    assert_eq!(j["State"]["Pid"].as_u64().unwrap(), pid);
    assert!(eventually(5, || a.inspect("gone")["State"]["ExitCode"] == 5), "exit while away: {}", a.log());
    assert_eq!(a.ok(&["exec", "keep", "echo", "still-here"]), "still-here");
    assert!(a.ok(&["logs", "keep"]).contains("n0"));
    a.ok(&["stop", "-t", "1", "keep"]);
    assert_eq!(a.inspect(&id)["State"]["Status"], "exited");
    a.ok(&["rm", "keep", "gone"]);
    a.assert_no_leftovers();
}

/// The agent's own cgroup is killed as a whole (what systemd's KillMode=control-group or
/// a pod runtime does to a DaemonSet's pod): the shims live in cgroups of their own, so the
/// containers keep their supervisors, logs keep flowing, exits are still recorded.
#[test]
fn killing_the_agents_cgroup_spares_the_containers() {
    if !privileged("agent_cgroup_killed") {
        return;
    }
    let mut a = Agent::start("podkill");
    let pod: Vec<std::path::PathBuf> =
        e2e::cgroup_mounts().into_iter().map(|m| m.join(format!("{}-pod", a.instance))).collect();
    // However the test ends, the stand-in pod cgroup goes.
    struct Pod(Vec<std::path::PathBuf>);
    impl Drop for Pod {
        fn drop(&mut self) {
            for d in &self.0 {
                for p in std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default().split_whitespace() {
                    if let Ok(p) = p.parse() {
                        let _ =
                            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
                    }
                }
                let _ = e2e::eventually(5, || std::fs::remove_dir(d).is_ok() || !d.exists());
            }
        }
    }
    let _pod = Pod(pod.clone());
    let agent_pid = a.pid().unwrap();
    for d in &pod {
        std::fs::create_dir_all(d).unwrap();
        // A v1 cpuset cgroup takes no process before it has CPUs and memory nodes.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if d.join(f).exists() {
                let v = std::fs::read_to_string(d.parent().unwrap().join(f)).unwrap();
                std::fs::write(d.join(f), v.trim()).unwrap();
            }
        }
        std::fs::write(d.join("cgroup.procs"), agent_pid.to_string()).unwrap();
    }
    a.ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        IMG,
        "sh",
        "-c",
        "echo before; read x < /dev/null; sleep 2; echo after; sleep 300",
    ]);
    let pid = a.inspect("keep")["State"]["Pid"].as_u64().unwrap();
    let procs = |d: &std::path::Path| -> Vec<i32> {
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    };
    // Once the shim has left for its own cgroup, only the agent is in the pod's.
    assert!(
        eventually(5, || pod.iter().all(|d| procs(d) == vec![agent_pid as i32])),
        "{:?}",
        pod.iter().map(|d| procs(d)).collect::<Vec<_>>()
    );
    for d in &pod {
        for p in procs(d) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
        }
    }
    a.crash_and_restart();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "the container must survive");
    assert_eq!(a.inspect("keep")["State"]["Running"], true);
    // Its shim still relays its output and will record its exit.
    assert!(eventually(10, || a.ok(&["logs", "keep"]).contains("after")), "{}", a.ok(&["logs", "keep"]));
    a.ok(&["stop", "-t", "1", "keep"]);
    assert_eq!(a.inspect("keep")["State"]["ExitCode"], 137);
    a.ok(&["rm", "keep"]);
    a.assert_no_leftovers();
}

/// `--ipc` and `--pid` like docker's: join another container's namespaces (and its
/// /dev/shm), or the host's.
#[test]
fn ipc_and_pid_namespaces_can_be_shared() {
    if !privileged("ipc_pid_sharing") {
        return;
    }
    let a = Agent::start("ipcpid");
    a.ok(&["run", "-d", "--name", "owner", IMG, "sh", "-c", "echo shared-mem > /dev/shm/x; exec sleep 300"]);
    let owner = a.inspect("owner")["State"]["Pid"].to_string();
    assert!(eventually(5, || std::path::Path::new(&format!("/proc/{owner}/root/dev/shm/x")).exists()));
    assert_eq!(a.ok(&["run", "--rm", "--ipc", "container:owner", IMG, "cat", "/dev/shm/x"]), "shared-mem");
    assert!(a.ctl(&["run", "--rm", IMG, "cat", "/dev/shm/x"]).code != 0, "a private /dev/shm is empty");
    let ps = a.ok(&["run", "--rm", "--pid", "container:owner", IMG, "ps", "-o", "args"]);
    assert!(ps.contains("sleep 300"), "{ps}");
    a.ok(&[
        "run",
        "-d",
        "--name",
        "joiner",
        "--ipc",
        "container:owner",
        "--pid",
        "container:owner",
        IMG,
        "sleep",
        "300",
    ]);
    let joiner = a.inspect("joiner")["State"]["Pid"].to_string();
    for ns in ["ipc", "pid"] {
        assert_eq!(ns_inode(&joiner, ns), ns_inode(&owner, ns), "{ns}");
    }
    assert_ne!(ns_inode(&joiner, "uts"), ns_inode(&owner, "uts"));
    a.ok(&["run", "-d", "--name", "hostns", "--ipc", "host", "--pid", "host", IMG, "sleep", "300"]);
    let h = a.inspect("hostns")["State"]["Pid"].to_string();
    for ns in ["ipc", "pid"] {
        assert_eq!(ns_inode(&h, ns), ns_inode("self", ns), "{ns} of the host");
    }
    let comm = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(a.ok(&["exec", "hostns", "cat", "/proc/1/comm"]), comm.trim(), "the host's PID 1 is visible");
    for (flag, bad, why) in [
        ("--ipc", "sideways", "invalid --ipc \"sideways\""),
        ("--pid", "container:", "invalid --pid \"container:\""),
        ("--ipc", "container:nosuch", "nosuch"),
    ] {
        let r = a.ctl(&["run", "--rm", flag, bad, IMG, "true"]);
        assert_eq!(r.code, 125, "{flag} {bad}");
        assert!(r.stderr.contains(why), "{flag} {bad}: {}", r.stderr);
    }
    a.ok(&["rm", "-f", "joiner", "hostns", "owner"]);
    a.assert_no_leftovers();
}

#[test]
fn second_agent_on_the_same_root_is_refused() {
    if !privileged("second_agent") {
        return;
    }
    let a = Agent::start_bare("lock");
    let out =
        a.agentd_cmd().arg("--listen").arg(format!("unix://{}/other.sock", a.dir.path().display())).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another agentd already uses --root"));
    let v = a.ok(&["version"]);
    assert!(v.contains("agent.v1"), "{v}");
    let info = a.ok(&["info", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(j["Instance"], a.instance.as_str());
    assert!(!j["CgroupControllers"].as_array().unwrap().is_empty());
}

fn events(a: &Agent, since: u64) -> Vec<serde_json::Value> {
    a.ok(&["events", "--no-follow", "--format", "json", "--since", &since.to_string()])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn events_are_logged_in_order_and_resumable_after_a_restart() {
    if !privileged("events") {
        return;
    }
    let mut a = Agent::start("events");
    assert_eq!(a.ctl(&["run", "--rm", "--name", "ev1", IMG, "sh", "-c", "exit 3"]).code, 3);
    let evs = events(&a, 0);
    let actions: Vec<&str> = evs.iter().filter(|e| e["Name"] == "ev1").map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{evs:?}");
    let die = evs.iter().find(|e| e["Action"] == "die").unwrap();
    assert_eq!(die["Attributes"]["exitCode"], "3");
    let seqs: Vec<u64> = evs.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers are consecutive: {seqs:?}");
    let last = *seqs.last().unwrap();
    // A follower started now sees the next container's events live.
    let mut follower = a
        .cmd()
        .args(["events", "--format", "json", "--since", &last.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read the follower's lines as they come (it streams until killed).
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    a.ok(&["create", "--name", "ev2", IMG, "true"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut live = String::new();
    while !live.contains("\"ev2\"") && std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(100)) {
            live.push_str(&l);
            live.push('\n');
        }
    }
    assert!(live.contains("\"ev2\""), "the live follower saw ev2: {live}");
    let _ = follower.kill();
    let _ = follower.wait();
    a.crash_and_restart();
    // The log survives the crash; a client resumes from the last seq it saw.
    let after: Vec<serde_json::Value> = events(&a, last);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["Action"], "create");
    assert_eq!(after[0]["Name"], "ev2");
    assert_eq!(after[0]["seq"].as_u64().unwrap(), last + 1);
    a.ok(&["rm", "ev2"]);

    // docker's --filter, applied by the agent (so every API client gets it).
    let filtered = |f: &[&str]| -> Vec<String> {
        let mut args = vec!["events", "--no-follow", "--format", "json"];
        for x in f {
            args.extend(["--filter", x]);
        }
        a.ok(&args)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .map(|e| format!("{}/{}", e["Name"].as_str().unwrap_or(""), e["Action"].as_str().unwrap_or("")))
            .collect()
    };
    assert_eq!(filtered(&["container=ev1", "event=die"]), ["ev1/die"]);
    assert_eq!(filtered(&["type=container,event=create"]), ["ev1/create", "ev2/create"], "comma-separated");
    assert_eq!(filtered(&["event=create", "event=destroy", "container=ev2"]), ["ev2/create", "ev2/destroy"]);
    assert_eq!(filtered(&["type=image"]), ["local/busybox:latest/import"], "the image the agent started with");
    let r = a.ctl(&["events", "--no-follow", "--filter", "colour=red"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("\"colour\""), "{}", r.stderr);
}

#[test]
fn image_events_are_logged() {
    if !privileged("image events") {
        return;
    }
    let a = Agent::start("imgevents");
    a.ok(&["rmi", IMG]);
    let evs: Vec<String> = a
        .ok(&["events", "--no-follow", "--format", "json", "--filter", "type=image"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|e| e["Action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(evs, ["import", "untag", "delete"], "the import at start, then rmi");
    let by_image = a.ok(&["events", "--no-follow", "--filter", "type=image", "--filter", "image=local/busybox:latest"]);
    assert!(by_image.lines().count() >= 2, "{by_image}");
}

/// `stop` right after `start`: the first SIGTERM may reach the init before its program
/// installed a handler (the kernel drops it for a PID 1), so it is delivered again until
/// the handler runs: the stop ends long before its timeout, with the handler's exit code.
#[test]
fn stop_right_after_start_reaches_the_handler() {
    if !privileged("stop_after_start") {
        return;
    }
    let a = Agent::start("stopfast");
    let trap = "trap 'exit 0' TERM; while :; do sleep 0.1; done";
    // The second installs its handler late, like a program that takes a while to start.
    let late = format!("sleep 0.3; {trap}");
    for (i, script) in [trap, trap, trap, late.as_str(), late.as_str()].iter().enumerate() {
        let id = a.ok(&["run", "-d", IMG, "sh", "-c", script]);
        let t0 = std::time::Instant::now();
        a.ok(&["stop", "-t", "30", &id]);
        let took = t0.elapsed();
        assert!(took < std::time::Duration::from_secs(10), "stop {i} ({script}) took {took:?}");
        assert_eq!(a.inspect(&id)["State"]["ExitCode"], 0, "stop {i} ({script}): the TERM handler ran, no SIGKILL");
        a.ok(&["rm", &id]);
    }
    a.assert_no_leftovers();
}

#[test]
fn restart_policies_like_dockers() {
    if !privileged("restart_policies_like_dockers") {
        return;
    }
    let mut a = Agent::start("restart");
    // on-failure:2 restarts a failing container twice, then leaves it exited with its code.
    a.ok(&["run", "-d", "--name", "flaky", "--restart", "on-failure:2", IMG, "sh", "-c", "exit 3"]);
    let done = |a: &Agent, name: &str, n: i64| {
        let i = a.inspect(name);
        i["RestartCount"].as_i64() == Some(n) && i["State"]["Status"] == "exited"
    };
    assert!(e2e::eventually(20, || done(&a, "flaky", 2)), "{}", a.inspect("flaky"));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let i = a.inspect("flaky");
    assert_eq!((i["RestartCount"].as_i64(), i["State"]["ExitCode"].as_i64()), (Some(2), Some(3)), "{i}");
    assert_eq!(i["HostConfig"]["RestartPolicy"]["Name"], "on-failure:2");
    let ev = a.ok(&["events", "--since", "0", "--no-follow"]);
    assert_eq!(ev.lines().filter(|l| l.contains("restart") && l.contains("flaky")).count(), 2, "{ev}");
    // always: a clean exit restarts too; a stop by the user does not.
    a.ok(&["run", "-d", "--name", "loop", "--restart", "always", IMG, "sh", "-c", "sleep 0.2"]);
    assert!(e2e::eventually(20, || a.inspect("loop")["RestartCount"].as_i64() >= Some(1)), "{}", a.inspect("loop"));
    a.ok(&["stop", "-t", "1", "loop"]);
    let n = a.inspect("loop")["RestartCount"].as_i64();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let i = a.inspect("loop");
    assert_eq!(
        (i["State"]["Status"].as_str(), i["RestartCount"].as_i64()),
        (Some("exited"), n),
        "stopped stays stopped: {i}"
    );
    // A container that dies while the agent is away is restarted when it comes back.
    a.ok(&["run", "-d", "--name", "away", "--restart", "always", IMG, "sh", "-c", "sleep 1; exit 1"]);
    a.crash_and_restart_after(std::time::Duration::from_secs(2));
    assert!(e2e::eventually(20, || a.inspect("away")["RestartCount"].as_i64() >= Some(1)), "{}", a.inspect("away"));
    a.ok(&["rm", "-f", "flaky", "loop", "away"]);
    a.assert_no_leftovers();
    // A bad policy names itself.
    let r = a.ctl(&["run", "--rm", "--restart", "sometimes", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --restart \"sometimes\""), "{}", r.stderr);
}

/// The exe of the parent of `pid` (a container's init: its shim).
fn parent_exe(pid: u64) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let ppid = stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).expect("ppid");
    std::fs::read_link(format!("/proc/{ppid}/exe")).expect("exe").display().to_string()
}

#[test]
fn shims_are_the_small_agent_shim_binary_and_agentd_can_stand_in() {
    if !privileged("shims_are_the_small_agent_shim_binary_and_agentd_can_stand_in") {
        return;
    }
    let a = Agent::start("shimbin");
    let id = a.ok(&["run", "-d", "--network", "none", IMG, "sleep", "100"]);
    let pid = a.inspect(&id)["State"]["Pid"].as_u64().unwrap();
    assert!(parent_exe(pid).ends_with("/agent-shim"), "shim: {}", parent_exe(pid));
    assert_eq!(a.ok(&["exec", &id, "echo", "via-nsexec"]), "via-nsexec");
    a.ok(&["rm", "-f", &id]);
    a.assert_no_leftovers();
    drop(a);

    // Without agent-shim (AGENTD_SHIM naming agentd), agentd itself is the shim.
    let agentd = e2e::bin_dir().join("agentd").display().to_string();
    let mut b =
        Agent::start_exact("shimself", "[network]\nbridge_subnet = \"10.79.1.0/24\"\n", &[("AGENTD_SHIM", &agentd)]);
    b.ok(&["image", "busybox"]);
    let id = b.ok(&["run", "-d", "--network", "none", IMG, "sleep", "100"]);
    let pid = b.inspect(&id)["State"]["Pid"].as_u64().unwrap();
    assert!(parent_exe(pid).ends_with("/agentd"), "shim: {}", parent_exe(pid));
    assert_eq!(b.ok(&["exec", &id, "echo", "via-agentd"]), "via-agentd");
    b.ok(&["rm", "-f", &id]);
    b.assert_no_leftovers();
    b.stop();

    // A wrong explicit path: agentd refuses to start, naming it.
    let out = b.agentd_cmd().env("AGENTD_SHIM", "/nonexistent/agent-shim").output().expect("agentd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AGENTD_SHIM=/nonexistent/agent-shim: not an executable file"), "{err}");
}
