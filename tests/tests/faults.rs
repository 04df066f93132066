//! Fault injection: a full disk under the agent's root (from a container, logs, a commit, a
//! pull's download and its unpacking), agentd aborting at named points of its verbs (pulls
//! included), and `kill -9` at random moments; clients that pile up are `pileup.rs`. After each fault the invariants are checked
//! (every record has its directory and the other way round, nothing of a container outlives
//! it, every exit is recorded); each test prints its row of the table of faults injected,
//! invariants checked and violations, and fails on any violation. Root only.

use e2e::tally::Tally;
use e2e::{eventually, privileged, Agent};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const IMG: &str = "local/busybox:latest";

/// Waits for `c` up to `secs`; kills it and returns `None` when it is still running.
fn wait_bounded(mut c: Child, secs: u64) -> Option<(i32, String)> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            let out = c.wait_with_output().ok()?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            return Some((out.status.code().unwrap_or(-1), text));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

/// The health service's status of the agent's root (`agentd.root`): 1 serving, 2 not.
fn root_health(a: &Agent) -> i32 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let Ok(ch) = agent_proto::connect(&a.host).await else { return -1 };
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch);
        match h.check(tonic_health::pb::HealthCheckRequest { service: "agentd.root".into() }).await {
            Ok(r) => r.into_inner().status,
            Err(_) => -1,
        }
    })
}

fn free_bytes(p: &Path) -> u64 {
    nix::sys::statvfs::statvfs(p).map(|s| s.blocks_available() * s.fragment_size()).unwrap_or(0)
}

fn state(a: &Agent, name: &str) -> (String, i64) {
    let r = a.ctl(&["inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
    (v[0]["State"]["Status"].as_str().unwrap_or("").to_string(), v[0]["State"]["ExitCode"].as_i64().unwrap_or(-1))
}

/// `die` events in the store's log: (container name, exit code).
fn deaths(a: &Agent) -> Vec<(String, String)> {
    a.ctl(&["events", "--no-follow", "--format", "json"])
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["Action"] == "die")
        .map(|e| {
            (
                e["Name"].as_str().unwrap_or("").to_string(),
                e["Attributes"]["exitCode"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Removes the files the containers wrote into their writable layers.
fn free_space(a: &Agent) {
    for e in std::fs::read_dir(a.root().join("containers")).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(e.path().join("upper/big"));
    }
}

#[test]
fn a_full_disk_loses_no_exit_and_recovers_without_a_restart() {
    if !privileged("a_full_disk_loses_no_exit_and_recovers_without_a_restart") {
        return;
    }
    let mut t = Tally::new("disk full");
    let a = Agent::start_on_tmpfs("diskfull", 48, &[]);
    let root = a.root();
    // Made while there is room: one to be killed while the disk is full, one that floods its
    // output (the log cannot grow) once told to.
    a.ok(&["run", "-d", "--name", "late", IMG, "sleep", "1000"]);
    a.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        IMG,
        "sh",
        "-c",
        "trap 'seq 1 200000; exit 3' USR1; while true; do sleep 0.1; done",
    ]);
    // Floods its output on USR2 (while the disk is full: dropped), says "after" on USR1.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "resume",
        IMG,
        "sh",
        "-c",
        "trap 'seq 1 100000' USR2; trap 'echo after' USR1; while true; do sleep 0.1; done",
    ]);
    // An attached `run --rm` that exits 9 once the disk is full: the client must hear the 9
    // although the store cannot take the exit.
    let rm_client = a
        .cmd()
        .args(["run", "--rm", "--name", "rmme", IMG, "sh", "-c", "trap 'exit 9' USR1; while true; do sleep 0.1; done"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agentctl run");
    assert!(eventually(20, || state(&a, "rmme").0 == "running"), "rmme did not start: {}", a.log());
    // The hog fills its writable layer and keeps taking whatever is freed.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "hog",
        IMG,
        "sh",
        "-c",
        "while true; do cat /dev/zero >> /big 2>/dev/null; sleep 0.05; done",
    ]);
    t.faults += 1;
    t.check(eventually(30, || free_bytes(&root) < 64 * 1024), || {
        format!("the disk is not full: {} free", free_bytes(&root))
    });
    a.ok(&["kill", "-s", "USR1", "rmme"]);
    let got = wait_bounded(rm_client, 30);
    t.check(got.as_ref().is_some_and(|(c, _)| *c == 9), || format!("run --rm on a full disk: {got:?}\n{}", a.log()));

    // A container killed while the disk is full is Exited (137) at once, for ps/inspect/wait.
    a.ok(&["kill", "late"]);
    t.faults += 1;
    t.check(eventually(20, || state(&a, "late") == ("exited".into(), 137)), || {
        format!("killed on a full disk: {:?}\n{}", state(&a, "late"), a.log())
    });
    let w = a.ctl(&["wait", "late"]);
    t.check(w.stdout.trim() == "137", || format!("wait on a full disk: {} {}", w.stdout, w.stderr));
    // Output that the log cannot take never blocks the container.
    a.ok(&["kill", "-s", "USR1", "chatty"]);
    t.faults += 1;
    t.check(eventually(30, || state(&a, "chatty") == ("exited".into(), 3)), || {
        format!("flooding a full log: {:?}", state(&a, "chatty"))
    });
    a.ok(&["kill", "-s", "USR2", "resume"]);
    // Calls that need space fail with ResourceExhausted naming the path and the free space.
    let c = a.ctl(&["create", IMG, "true"]);
    t.check(c.code == 125 && c.stderr.to_lowercase().contains("no space") && c.stderr.contains(" free"), || {
        format!("create on a full disk: {} {}", c.code, c.stderr)
    });
    t.check(c.stderr.contains(&root.display().to_string()), || format!("the error names no path: {}", c.stderr));
    // A commit writes a layer: the same answer, and no half-written layer stays.
    let c = a.ctl(&["commit", "late", "local/full:1"]);
    t.check(c.code == 1 && c.stderr.to_lowercase().contains("no space") && c.stderr.contains(" free"), || {
        format!("commit on a full disk: {} {}", c.code, c.stderr)
    });
    let tmp: Vec<_> = std::fs::read_dir(root.join("tmp")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    t.check(tmp.is_empty(), || format!("a failed commit left {tmp:?}"));
    // info and health say so.
    let root_full = || {
        let info = a.ctl(&["info", "--format", "json"]).stdout;
        serde_json::from_str::<serde_json::Value>(&info).unwrap_or_default()["RootFull"].as_bool()
    };
    t.check(root_full() == Some(true), || format!("info on a full disk: {:?}", root_full()));
    t.check(eventually(10, || root_health(&a) == 2), || format!("health on a full disk: {}", root_health(&a)));

    // Space returns (the hog stopped, its file deleted): everything pending is recorded,
    // without a restart.
    a.ok(&["kill", "hog"]);
    t.check(eventually(20, || state(&a, "hog") == ("exited".into(), 137)), || format!("hog: {:?}", state(&a, "hog")));
    free_space(&a);
    let want = [("rmme", "9"), ("late", "137"), ("chatty", "3"), ("hog", "137")];
    let recorded = eventually(30, || {
        let d = deaths(&a);
        want.iter().all(|(n, c)| d.contains(&(n.to_string(), c.to_string())))
    });
    t.check(recorded, || format!("exits recorded after freeing space: {:?}\n{}", deaths(&a), a.log()));
    // The --rm container is removed once its exit is recorded.
    t.check(eventually(20, || a.ctl(&["inspect", "rmme"]).code != 0), || "rmme was not removed".into());
    t.check(eventually(10, || root_full() == Some(false)), || format!("info after freeing space: {:?}", root_full()));
    t.check(eventually(10, || root_health(&a) == 1), || format!("health after freeing space: {}", root_health(&a)));
    // The log that could not grow grows again (well-formed: the cut records are gone).
    a.ok(&["kill", "-s", "USR1", "resume"]);
    t.check(eventually(10, || a.ctl(&["logs", "resume"]).stdout.lines().any(|l| l == "after")), || {
        format!("resume's log after freeing space: {:?}", a.ctl(&["logs", "--tail", "3", "resume"]).stdout)
    });
    let l = a.ctl(&["logs", "chatty"]);
    t.check(l.code == 0, || format!("logs of chatty: {}", l.stderr));
    // The agent works again: a run, then removal of everything.
    let r = a.ctl(&["run", "--rm", IMG, "echo", "again"]);
    t.check(r.code == 0 && r.stdout.trim() == "again", || {
        format!("run after freeing space: {} {}", r.stdout, r.stderr)
    });
    for n in ["late", "chatty", "hog", "resume"] {
        a.ok(&["rm", "-f", n]);
    }
    let left: Vec<_> =
        std::fs::read_dir(root.join("containers")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    t.check(left.is_empty(), || format!("container directories left: {left:?}\n{}", a.log()));
    if left.is_empty() {
        a.assert_no_leftovers();
    }
    t.finish();
}

/// A container as `ps -a --format json` shows it.
struct Seen {
    id: String,
    status: String,
    pid: i64,
    ip: String,
}

fn containers(a: &Agent) -> Option<Vec<Seen>> {
    let r = a.ctl(&["ps", "-a", "--format", "json"]);
    if r.code != 0 {
        return None;
    }
    Some(
        r.stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| Seen {
                id: v["Id"].as_str().unwrap_or("").to_string(),
                status: v["State"]["Status"].as_str().unwrap_or("").to_string(),
                pid: v["State"]["Pid"].as_i64().unwrap_or(0),
                ip: v["NetworkSettings"]["IPAddress"].as_str().unwrap_or("").to_string(),
            })
            .collect(),
    )
}

fn alive(pid: i64) -> bool {
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}

/// The invariants after a restart: every record has its directory and every directory its
/// record; no cgroup (hence no process, mount namespace or veth: they die with the
/// container's processes) without a running container; a running container's process
/// lives; no address in the firewall table of a container that is not running; no two
/// containers share an address.
fn invariants(a: &Agent, t: &mut Tally, when: &str) {
    let Some(list) = containers(a) else {
        t.check(false, || format!("{when}: ps failed after the restart:\n{}", a.log()));
        return;
    };
    let dirs: Vec<String> = std::fs::read_dir(a.root().join("containers"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for c in &list {
        t.check(dirs.contains(&c.id), || format!("{when}: record {} ({}) has no directory", c.id, c.status));
        if c.status == "running" {
            t.check(alive(c.pid), || format!("{when}: running container {} has no live process {}", c.id, c.pid));
        }
    }
    for d in &dirs {
        t.check(list.iter().any(|c| &c.id == d), || format!("{when}: directory {d} has no record"));
    }
    let running: Vec<&Seen> = list.iter().filter(|c| c.status == "running").collect();
    for m in e2e::cgroup_mounts() {
        for e in std::fs::read_dir(m.join(&a.instance)).into_iter().flatten().flatten() {
            if !e.path().is_dir() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.trim_start_matches("shim-");
            t.check(running.iter().any(|c| c.id == id), || {
                format!("{when}: cgroup {} belongs to no running container", e.path().display())
            });
        }
    }
    let table = std::process::Command::new("nft")
        .args(["list", "table", "ip", &a.instance])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for c in list.iter().filter(|c| c.status != "running" && !c.ip.is_empty()) {
        let needle = format!("{} ", c.ip);
        t.check(!table.contains(&needle), || {
            format!("{when}: the firewall still names {} of {}:\n{table}", c.ip, c.id)
        });
    }
    let mut ips: Vec<&str> = list.iter().map(|c| c.ip.as_str()).filter(|i| !i.is_empty()).collect();
    ips.sort();
    let n = ips.len();
    ips.dedup();
    t.check(ips.len() == n, || format!("{when}: containers share an address: {ips:?}"));
}

/// agentd's process ended (a zombie until the harness reaps it).
fn agentd_gone(a: &Agent) -> bool {
    a.pid().is_some_and(|p| !alive(p as i64))
}

#[test]
fn a_crash_at_every_point_of_a_verb_is_repaired_at_the_next_start() {
    if !privileged("a_crash_at_every_point_of_a_verb_is_repaired_at_the_next_start") {
        return;
    }
    let mut t = Tally::new("crash points");
    let mut a = Agent::start("crashpoints");
    // (point, how to get there, the verb that passes it)
    type Prep = fn(&Agent, &str) -> Vec<String>;
    let none: Prep = |_, n| vec!["create".into(), "--name".into(), n.into(), IMG.into(), "sleep".into(), "1000".into()];
    let created: Prep = |a, n| {
        let port = format!("127.0.0.1:{}:80", e2e::free_port());
        a.ok(&["create", "--name", n, "-p", &port, IMG, "sleep", "1000"]);
        vec!["start".into(), n.into()]
    };
    let running: Prep = |a, n| {
        let port = format!("127.0.0.1:{}:80", e2e::free_port());
        a.ok(&["run", "-d", "--name", n, "-p", &port, IMG, "sleep", "1000"]);
        vec!["stop".into(), "-t".into(), "1".into(), n.into()]
    };
    let removable: Prep = |a, n| {
        a.ok(&["run", "-d", "--name", n, IMG, "sleep", "1000"]);
        a.ok(&["stop", "-t", "0", n]);
        vec!["rm".into(), n.into()]
    };
    let committable: Prep = |a, n| {
        a.ok(&["run", "-d", "--name", n, IMG, "sh", "-c", "echo x > /f; sleep 1000"]);
        vec!["commit".into(), n.into(), format!("local/{n}:1")]
    };
    let plan: &[(&str, Prep)] = &[
        ("create.after_lease", none),
        ("create.after_dir", none),
        ("create.after_record", none),
        ("start.after_cgroup", created),
        ("start.after_shim", created),
        ("start.after_record", created),
        ("stop.after_signal", running),
        ("remove.after_mark", removable),
        ("remove.after_dir", removable),
        ("remove.after_record", removable),
        ("commit.after_layer", committable),
    ];
    for (i, (point, prep)) in plan.iter().enumerate() {
        a.env = vec![("AGENTD_CRASH_AT".into(), point.to_string())];
        a.crash_and_restart();
        let name = format!("c{i}");
        let verb = prep(&a, &name);
        let args: Vec<&str> = verb.iter().map(String::as_str).collect();
        let r = a.ctl(&args);
        t.faults += 1;
        t.check(r.code != 0, || format!("{point}: {args:?} succeeded: {}", r.stdout));
        t.check(eventually(10, || agentd_gone(&a)), || format!("{point}: agentd did not abort"));
        a.env.clear();
        a.crash_and_restart();
        invariants(&a, &mut t, point);
        // The agent works on: the same verb again (or its name reused) succeeds.
        let again = a.ctl(&["rm", "-f", &name]);
        t.check(again.code == 0, || format!("{point}: rm -f {name}: {}", again.stderr));
        let r = a.ctl(&["run", "--rm", "--name", &name, IMG, "true"]);
        t.check(r.code == 0, || format!("{point}: run --rm after the repair: {} {}", r.stderr, a.log()));
    }
    let log = a.log();
    let repairs: Vec<&str> = log.lines().filter(|l| l.contains("start-up sweep")).collect();
    println!("repairs logged:\n{}", repairs.join("\n"));
    t.check(!repairs.is_empty(), || "no repair was logged".into());
    for c in containers(&a).unwrap_or_default() {
        let _ = a.ctl(&["rm", "-f", &c.id]);
    }
    invariants(&a, &mut t, "the end");
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn random_kill_9_of_the_agent_under_a_create_remove_load() {
    if !privileged("random_kill_9_of_the_agent_under_a_create_remove_load") {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut t = Tally::new("kill -9 under load");
    let mut a = Agent::start("killload");
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = Arc::clone(&stop);
        let host = a.host.clone();
        let cfg = a.dir.path().join("agentctl.toml");
        std::thread::spawn(move || {
            let ctl = |args: &[&str]| {
                let _ = std::process::Command::new(e2e::bin_dir().join("agentctl"))
                    .env("AGENT_HOST", &host)
                    .env("AGENTCTL_CONFIG", &cfg)
                    .args(args)
                    .stdin(Stdio::null())
                    .output();
            };
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < 500 {
                let n = format!("l{i}");
                ctl(&["create", "--name", &n, IMG, "sleep", "100"]);
                ctl(&["start", &n]);
                ctl(&["run", "--rm", IMG, "true"]);
                ctl(&["rm", "-f", &n]);
                i += 1;
            }
        })
    };
    // A small linear congruential generator seeded by the clock: random moments, bounded count.
    let mut seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(1) as u64;
    let mut pauses = Vec::new();
    for _ in 0..6 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let ms = 150 + (seed >> 33) % 600;
        pauses.push(ms);
        std::thread::sleep(Duration::from_millis(ms));
        a.crash_and_restart();
        t.faults += 1;
    }
    println!("kill -9 after (ms): {pauses:?}");
    stop.store(true, Ordering::SeqCst);
    let _ = load.join();
    invariants(&a, &mut t, "after the kill -9 rounds");
    // Every exit is recorded: nothing shows as running but the agent's own created loads,
    // which all ran `sleep 100` and are still running or were removed.
    for c in containers(&a).unwrap_or_default() {
        if c.status == "running" {
            t.check(alive(c.pid), || format!("{} shows running without a process", c.id));
        }
        let r = a.ctl(&["rm", "-f", &c.id]);
        t.check(r.code == 0, || format!("rm -f {}: {}", c.id, r.stderr));
    }
    invariants(&a, &mut t, "after removing everything");
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn a_pull_that_fills_the_disk_fails_with_resource_exhausted_and_gives_its_room_back() {
    if !privileged("a_pull_that_fills_the_disk") {
        return;
    }
    if !std::process::Command::new("skopeo").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: skopeo is missing (apt-get install skopeo)");
        return;
    }
    use e2e::fixtures::{layer, oci_archive, Blob, Entry};
    let mut t = Tally::new("pull on a full disk");
    let a = Agent::start_on_tmpfs("pullfull", 32, &[]);
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    // 40 MiB that do not compress, on a 32 MiB root.
    let mut big = vec![0u8; 40 << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let p = a.dir.path().join("big.tar");
    std::fs::write(&p, oci_archive(&[Blob::plain(layer(&[Entry::File("big", &big)]))], &["sh"], "latest", false))
        .expect("archive");
    reg.push(&p, "test/big:1", None);
    let small = a.dir.path().join("small.tar");
    std::fs::write(&small, oci_archive(&[Blob::plain(layer(&[Entry::File("x", b"x")]))], &["sh"], "latest", false))
        .expect("archive");
    reg.push(&small, "test/small:1", None);
    let before = free_bytes(&a.root());
    let r = a.ctl(&["pull", "--insecure", &format!("{}/test/big:1", reg.host())]);
    t.faults += 1;
    t.check(r.code == 1 && r.stderr.to_lowercase().contains("no space") && r.stderr.contains(" free"), || {
        format!("pull onto a full disk: {} {} {}", r.code, r.stdout, r.stderr)
    });
    let after = free_bytes(&a.root());
    t.check(after + (1 << 20) >= before, || {
        format!("the failed pull keeps its room: {before} free before, {after} after")
    });
    let r = a.ctl(&["pull", "--insecure", &format!("{}/test/small:1", reg.host())]);
    t.check(r.code == 0, || format!("a pull that fits, after: {} {}", r.stdout, r.stderr));
    a.assert_no_leftovers();
    t.finish();
}

fn have_skopeo() -> bool {
    let ok = std::process::Command::new("skopeo").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: skopeo is missing (apt-get install skopeo)");
    }
    ok
}

/// The names under `<root>/<dir>` (sorted).
fn names_in(root: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The image store holds exactly what `baseline` held: no half-unpacked layer under `tmp/`,
/// no layer or blob of an image that was never recorded.
fn store_as_before(a: &Agent, baseline: &[Vec<String>; 2], t: &mut Tally, when: &str) {
    let root = a.root();
    let tmp = names_in(&root, "tmp");
    t.check(tmp.is_empty(), || format!("{when}: unfinished layers under tmp/: {tmp:?}"));
    for (i, dir) in ["layers", "blobs/sha256"].iter().enumerate() {
        let now = names_in(&root, dir);
        t.check(now == baseline[i], || format!("{when}: {dir} holds {now:?}, before the pull {:?}", baseline[i]));
    }
}

#[test]
fn a_pull_that_fills_the_disk_while_unpacking_leaves_no_half_layer_and_succeeds_once_there_is_room() {
    if !privileged("a_pull_that_fills_the_disk_while_unpacking") || !have_skopeo() {
        return;
    }
    use e2e::fixtures::{layer, oci_archive, Blob, Entry};
    let mut t = Tally::new("unpack on a full disk");
    let a = Agent::start_on_tmpfs("unpackfull", 40, &[]);
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    // 48 MiB of zeros: a download of 50 KB that unpacks into more than the root has.
    let zeros = vec![0u8; 48 << 20];
    let p = a.dir.path().join("zeros.tar");
    std::fs::write(&p, oci_archive(&[Blob::gz(layer(&[Entry::File("zeros", &zeros)]))], &["sh"], "latest", false))
        .expect("archive");
    drop(zeros);
    reg.push(&p, "test/zeros:1", None);
    let baseline = [names_in(&a.root(), "layers"), names_in(&a.root(), "blobs/sha256")];
    let before = free_bytes(&a.root());
    let image = format!("{}/test/zeros:1", reg.host());
    let r = a.ctl(&["pull", "--insecure", &image]);
    t.faults += 1;
    let err = r.stderr.to_lowercase();
    t.check(r.code == 1 && err.contains("no space") && err.contains(" free") && r.stderr.contains("/layers/"), || {
        format!("pull that cannot be unpacked: {} {} {}", r.code, r.stdout, r.stderr)
    });
    println!("the refusal: {}", r.stderr.trim());
    store_as_before(&a, &baseline, &mut t, "after the failed unpack");
    let after = free_bytes(&a.root());
    // What stays is the verified download (50 KB), for the next attempt.
    t.check(after + (1 << 20) >= before, || {
        format!("the failed unpack keeps its room: {before} free before, {after} after")
    });
    t.check(a.ctl(&["ps"]).code == 0, || "ps after the failed pull".into());
    // Room comes back (the filesystem grows): the same pull succeeds, without a restart.
    nix::mount::mount(
        None::<&str>,
        &a.root(),
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT,
        Some("size=120m,mode=0711"),
    )
    .expect("grow the root's tmpfs");
    let r = a.ctl(&["pull", "--insecure", &image]);
    t.check(r.code == 0, || format!("the pull once there is room: {} {}", r.stdout, r.stderr));
    let listed = a.ctl(&["images"]).stdout;
    t.check(listed.contains("test/zeros"), || format!("the pulled image is listed: {listed}"));
    let left = names_in(&a.root(), "downloads");
    t.check(left.is_empty(), || format!("downloads left after the pull: {left:?}"));
    a.assert_no_leftovers();
    t.finish();
}

#[test]
fn a_crash_at_every_point_of_a_pull_leaves_no_half_layer_or_orphan_blob() {
    if !privileged("a_crash_at_every_point_of_a_pull") || !have_skopeo() {
        return;
    }
    use e2e::fixtures::{layer, oci_archive, Blob, Entry};
    let mut t = Tally::new("pull crash points");
    let mut a = Agent::start("pullcrash");
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    let p = a.dir.path().join("two.tar");
    let big = vec![7u8; 1 << 20];
    let layers = [
        Blob::gz(layer(&[Entry::File("a", b"first"), Entry::File("big", &big)])),
        Blob::gz(layer(&[Entry::File("b", b"second"), Entry::File("c", b"third")])),
    ];
    std::fs::write(&p, oci_archive(&layers, &["sh"], "latest", false)).expect("archive");
    reg.push(&p, "test/two:1", None);
    let image = format!("{}/test/two:1", reg.host());
    let baseline = [names_in(&a.root(), "layers"), names_in(&a.root(), "blobs/sha256")];
    for point in ["pull.after_download", "unpack.mid_layer", "image.before_record"] {
        a.env = vec![("AGENTD_CRASH_AT".into(), point.to_string())];
        a.crash_and_restart();
        let r = a.ctl(&["pull", "--insecure", &image]);
        t.faults += 1;
        t.check(r.code != 0, || format!("{point}: the pull succeeded: {}", r.stdout));
        t.check(eventually(10, || agentd_gone(&a)), || format!("{point}: agentd did not abort"));
        a.env.clear();
        a.crash_and_restart();
        store_as_before(&a, &baseline, &mut t, point);
        let listed = a.ctl(&["images"]).stdout;
        t.check(!listed.contains("test/two"), || format!("{point}: an image half pulled is listed: {listed}"));
        let r = a.ctl(&["pull", "--insecure", &image]);
        t.check(r.code == 0, || format!("{point}: the pull after the repair: {} {}", r.stderr, a.log()));
        let whole = names_in(&a.root(), "layers")
            .iter()
            .any(|l| std::fs::read(a.root().join("layers").join(l).join("fs/c")).is_ok_and(|c| c == b"third"));
        t.check(whole, || format!("{point}: the second layer's last file is not unpacked"));
        let left = names_in(&a.root(), "downloads");
        t.check(left.is_empty(), || format!("{point}: downloads left after the pull: {left:?}"));
        a.ok(&["rmi", &image]);
        store_as_before(&a, &baseline, &mut t, &format!("{point}, after rmi"));
    }
    let log = a.log();
    let repairs = log.lines().filter(|l| l.contains("start-up sweep")).count();
    println!("start-up sweep repairs logged: {repairs}");
    t.check(repairs >= 2, || format!("too few repairs logged ({repairs}):\n{log}"));
    a.assert_no_leftovers();
    t.finish();
}

/// Whether some layer of the store holds `file` with `content`.
fn layer_holds(a: &Agent, file: &str, content: &[u8]) -> bool {
    names_in(&a.root(), "layers")
        .iter()
        .any(|l| std::fs::read(a.root().join("layers").join(l).join("fs").join(file)).is_ok_and(|c| c == content))
}

#[test]
fn an_image_removed_while_a_pull_reuses_its_layer_leaves_the_pull_whole_and_nothing_behind() {
    if !privileged("an_image_removed_while_a_pull_reuses_its_layer") || !have_skopeo() {
        return;
    }
    use e2e::fixtures::{layer, oci_archive, Blob, Entry};
    let mut t = Tally::new("gc during a pull");
    let mut a = Agent::start("pullgc");
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    let first = || Blob::plain(layer(&[Entry::File("a", b"first")]));
    let one = a.dir.path().join("one.tar");
    let own = Blob::plain(layer(&[Entry::File("c", b"one's own")]));
    std::fs::write(&one, oci_archive(&[first(), own], &["sh"], "latest", false)).expect("archive");
    reg.push(&one, "test/one:1", None);
    let two = a.dir.path().join("two.tar");
    let second = Blob::plain(layer(&[Entry::File("b", b"second")]));
    std::fs::write(&two, oci_archive(&[first(), second], &["sh"], "latest", false)).expect("archive");
    reg.push(&two, "test/two:1", None);
    let (one, two) = (format!("{}/test/one:1", reg.host()), format!("{}/test/two:1", reg.host()));
    let baseline = [names_in(&a.root(), "layers"), names_in(&a.root(), "blobs/sha256")];
    a.ok(&["pull", "--insecure", &one]);
    // The pull of `two` reuses `one`'s layer, unpacks its own, and waits before recording
    // its image; meanwhile `one` is removed, which collects what no image references.
    a.env = vec![("AGENTD_DELAY_AT".into(), "image.before_record=3000".into())];
    a.crash_and_restart();
    let pull = a.cmd().args(["pull", "--insecure", &two]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let pull = pull.expect("agentctl pull");
    let waiting = eventually(30, || a.log().contains("test hook AGENTD_DELAY_AT: waiting"));
    t.check(waiting, || format!("the pull never reached image.before_record:\n{}", a.log()));
    t.faults += 1;
    let r = a.ctl(&["rmi", &one]);
    t.check(r.code == 0, || format!("rmi during the pull: {} {}", r.stdout, r.stderr));
    let got = wait_bounded(pull, 60);
    t.check(got.as_ref().is_some_and(|(c, _)| *c == 0), || format!("the pull: {got:?}"));
    // Everything the pulled image names is still there: both layers and every blob.
    t.check(layer_holds(&a, "a", b"first"), || "the reused layer was collected during the pull".into());
    t.check(layer_holds(&a, "b", b"second"), || {
        "the pull's own layer was collected before its image was recorded".into()
    });
    let saved = a.dir.path().join("saved.tar");
    let r = a.ctl(&["save", "-o", saved.to_str().expect("path"), &two]);
    t.check(r.code == 0, || format!("save of the pulled image (all its blobs): {} {}", r.stdout, r.stderr));
    // What the removal owed is collected once the pull is done with the store: `one`'s own
    // layer goes, and removing the pulled image leaves the store as it was before both pulls.
    t.check(eventually(10, || !layer_holds(&a, "c", b"one's own")), || {
        "the removed image's own layer is still there after the pull".into()
    });
    a.env.clear();
    a.ok(&["rmi", &two]);
    store_as_before(&a, &baseline, &mut t, "after rmi of both images");
    a.assert_no_leftovers();
    t.finish();
}
