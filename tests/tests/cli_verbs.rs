//! docker's container verbs on processes and files, through agentctl: pause/unpause, cp,
//! diff, export, top. Each asserts the effect on the container.

use e2e::{privileged, Agent};
use std::time::{Duration, Instant};

const IMG: &str = "local/busybox:latest";

/// A file of a running container, read from the host through its init's root.
fn read_in(a: &Agent, name: &str, path: &str) -> String {
    let pid = a.inspect(name)["State"]["Pid"].as_u64().expect("pid");
    std::fs::read_to_string(format!("/proc/{pid}/root{path}")).unwrap_or_default().trim().to_string()
}

fn counter(a: &Agent) -> u64 {
    read_in(a, "tick", "/tmp/n").parse().unwrap_or(0)
}

const TICK: &str = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done";

#[test]
fn pause_freezes_and_unpause_thaws() {
    if !privileged("pause") {
        return;
    }
    let a = Agent::start("clipause");
    a.ok(&["run", "-d", "--name", "tick", IMG, "sh", "-c", TICK]);
    assert!(e2e::eventually(10, || counter(&a) > 2), "the counter runs");
    assert_eq!(a.ok(&["pause", "tick"]), "tick");
    let st = a.inspect("tick")["State"].clone();
    assert_eq!(st["Status"], "paused", "{st}");
    assert_eq!(st["Paused"], true, "{st}");
    assert_eq!(st["Running"], true, "{st}");
    assert!(a.ok(&["ps"]).contains("(Paused)"), "ps shows it");
    // Frozen: the counter does not advance.
    let n = counter(&a);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counter(&a), n, "a paused container ran");
    // exec and a second pause are refused, naming the reason.
    let r = a.ctl(&["exec", "tick", "true"]);
    assert!(r.code != 0 && r.stderr.contains("is paused"), "{}", r.stderr);
    let r = a.ctl(&["pause", "tick"]);
    assert!(r.code == 1 && r.stderr.contains("already paused"), "{} {}", r.code, r.stderr);
    assert_eq!(a.ok(&["unpause", "tick"]), "tick");
    assert!(e2e::eventually(10, || counter(&a) > n + 2), "thawed, the counter runs again");
    assert_eq!(a.inspect("tick")["State"]["Status"], "running");
    let r = a.ctl(&["unpause", "tick"]);
    assert!(r.code == 1 && r.stderr.contains("not paused"), "{} {}", r.code, r.stderr);
    let evs = a.ok(&["events", "--no-follow", "--filter", "container=tick"]);
    assert!(evs.contains(" pause ") || evs.contains("pause"), "{evs}");
    assert!(evs.contains("unpause"), "{evs}");
    // Bad input: docker's exit code 1 and the name.
    let r = a.ctl(&["pause", "nosuch"]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);
    a.ok(&["create", "--name", "idle", IMG, "true"]);
    let r = a.ctl(&["pause", "idle"]);
    assert!(r.code == 1 && r.stderr.contains("is not running"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["pause"]);
    assert_eq!(r.code, 125, "a missing argument is a usage error");

    // A paused container stops (thawed after the signal), is killed and is removed.
    a.ok(&["pause", "tick"]);
    let t0 = Instant::now();
    a.ok(&["stop", "-t", "1", "tick"]);
    assert!(t0.elapsed() < Duration::from_secs(15), "stop of a paused container took {:?}", t0.elapsed());
    let st = a.inspect("tick")["State"].clone();
    assert_eq!(st["Status"], "exited", "{st}");
    assert_eq!(st["Paused"], false, "{st}");
    a.ok(&["start", "tick"]);
    a.ok(&["pause", "tick"]);
    a.ok(&["kill", "tick"]);
    assert!(e2e::eventually(10, || a.inspect("tick")["State"]["Status"] == "exited"), "killed while paused");
    a.ok(&["start", "tick"]);
    a.ok(&["pause", "tick"]);
    a.ok(&["rm", "-f", "tick", "idle"]);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}
