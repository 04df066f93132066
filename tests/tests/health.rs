//! Health checks as docker's: `--health-*` flags, the image's HEALTHCHECK, status in ps and
//! inspect, `health_status` events, across an agent crash.

use e2e::{eventually, privileged, Agent};

const IMG: &str = "local/busybox:latest";

fn health(a: &Agent, name: &str) -> serde_json::Value {
    a.inspect(name)["State"]["Health"].clone()
}

fn events(a: &Agent) -> Vec<String> {
    a.ok(&["events", "--no-follow", "--format", "json"])
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["action"].as_str().or(e["Action"].as_str()).map(str::to_string))
        .collect()
}

#[test]
fn a_failing_check_turns_unhealthy_and_a_passing_one_healthy() {
    const T: &str = "health check flags";
    if !privileged(T) {
        return;
    }
    let mut a = Agent::start("health");
    let args = [
        "run",
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        IMG,
        "sleep",
        "300",
    ];
    a.ok(&args);
    let h = health(&a, "web");
    assert!(h["Status"] == "starting" || h["Status"] == "unhealthy", "{h}");
    assert!(eventually(15, || health(&a, "web")["Status"] == "unhealthy"), "{}", health(&a, "web"));
    let h = health(&a, "web");
    assert!(h["FailingStreak"].as_u64().unwrap_or(0) >= 2, "{h}");
    let log = h["Log"].as_array().cloned().unwrap_or_default();
    assert!(!log.is_empty() && log.iter().all(|p| p["ExitCode"] == 1), "{h}");
    assert!(a.ok(&["ps"]).contains("(unhealthy)"), "{}", a.ok(&["ps"]));
    let cfg = &a.inspect("web")["Config"]["Healthcheck"];
    assert_eq!(cfg["Test"], serde_json::json!(["CMD-SHELL", "test -f /tmp/ok && echo fine"]), "{cfg}");
    assert_eq!(cfg["Interval"], 200_000_000);

    // A scheduler can wait for healthy: --fail-unhealthy refuses now; a plain wait blocks
    // until the check passes.
    let r = a.ctl(&["wait", "--condition", "healthy", "--fail-unhealthy", "web"]);
    assert!(r.code == 1 && r.stderr.contains("unhealthy"), "{}", r.stderr);
    let mut waiter = a
        .cmd()
        .args(["wait", "--condition", "healthy", "web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wait");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(waiter.try_wait().expect("try_wait").is_none(), "still waiting while unhealthy");
    a.ok(&["exec", "web", "touch", "/tmp/ok"]);
    assert!(eventually(15, || waiter.try_wait().ok().flatten().is_some()), "the wait returned");
    assert!(waiter.wait().expect("wait").success());
    assert_eq!(health(&a, "web")["Status"], "healthy");
    let h = health(&a, "web");
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"].as_array().and_then(|l| l.last().cloned()).unwrap_or_default();
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"].as_str().map(str::trim), Some("fine"), "{h}");
    assert!(a.ok(&["ps"]).contains("(healthy)"));
    let ev = events(&a);
    let un = ev.iter().position(|e| e == "health_status: unhealthy");
    let ok = ev.iter().position(|e| e == "health_status: healthy");
    assert!(un.is_some() && ok > un, "events in order: {ev:?}");

    // Across a crash of the agent the check goes on (and the status was kept).
    a.crash_and_restart();
    assert_eq!(health(&a, "web")["Status"], "healthy");
    a.ok(&["exec", "web", "rm", "/tmp/ok"]);
    assert!(eventually(15, || health(&a, "web")["Status"] == "unhealthy"), "checks resumed: {}", health(&a, "web"));

    // A check that overruns its timeout fails, and is killed.
    a.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "200ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        IMG,
        "sleep",
        "300",
    ]);
    assert!(eventually(15, || health(&a, "slow")["Status"] == "unhealthy"), "{}", health(&a, "slow"));
    let out = health(&a, "slow")["Log"][0]["Output"].as_str().unwrap_or_default().to_string();
    assert!(out.contains("timeout"), "{out}");
    let procs = a.ok(&["exec", "slow", "ps", "-o", "args"]);
    assert!(!procs.lines().any(|l| l.trim() == "sleep 30"), "timed-out checks are killed:\n{procs}");

    let r = a.ctl(&["run", "-d", "--name", "plain", IMG, "sleep", "300"]);
    assert_eq!(r.code, 0);
    let r = a.ctl(&["wait", "--condition", "healthy", "plain"]);
    assert!(r.code == 1 && r.stderr.contains("no health check"), "{}", r.stderr);
    let r = a.ctl(&["wait", "--condition", "soon", "plain"]);
    assert!(r.code == 1 && r.stderr.contains("\"soon\""), "{}", r.stderr);
    a.ok(&["rm", "-f", "plain"]);

    // Bad values are refused by name, nothing created.
    let r = a.ctl(&["run", "-d", "--name", "bad", "--health-interval", "soon", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("\"soon\"") && r.stderr.contains("--health-interval"), "{}", r.stderr);
    let r = a.ctl(&["run", "-d", "--name", "bad", "--no-healthcheck", "--health-cmd", "true", IMG, "true"]);
    assert!(r.stderr.contains("conflicts"), "{}", r.stderr);
    assert!(!a.ok(&["ps", "-a"]).contains("bad"));
    a.ok(&["rm", "-f", "web", "slow"]);
    a.assert_no_leftovers();
}

#[test]
fn the_image_healthcheck_applies_unless_disabled() {
    const T: &str = "image HEALTHCHECK";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("healthimg");
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMG}\nHEALTHCHECK --interval=200ms --retries=1 CMD [\"false\"]\n"),
    )
    .expect("Dockerfile");
    let r = a.ctl(&["build", "-t", "local/checked:1", ctx.path().to_str().expect("path")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let img = a.ok(&["image", "inspect", "local/checked:1"]);
    assert!(img.contains("CMD") && img.contains("false"), "the image config records it: {img}");
    a.ok(&["run", "-d", "--name", "inherits", "local/checked:1", "sleep", "300"]);
    assert!(eventually(15, || health(&a, "inherits")["Status"] == "unhealthy"), "{}", health(&a, "inherits"));
    a.ok(&["run", "-d", "--name", "off", "--no-healthcheck", "local/checked:1", "sleep", "300"]);
    assert!(health(&a, "off").is_null(), "{}", health(&a, "off"));
    assert!(!a.ok(&["ps"]).lines().any(|l| l.contains(" off") && l.contains("health")));
    // The user's interval over the image's test.
    a.ok(&["run", "-d", "--name", "mixed", "--health-interval", "5m", "local/checked:1", "sleep", "300"]);
    let cfg = &a.inspect("mixed")["Config"]["Healthcheck"];
    assert_eq!(cfg["Test"], serde_json::json!(["CMD", "false"]), "{cfg}");
    assert_eq!(cfg["Interval"], 300_000_000_000_i64);
    assert_eq!(health(&a, "mixed")["Status"], "starting");
    a.ok(&["rm", "-f", "inherits", "off", "mixed"]);
    a.ok(&["rmi", "local/checked:1"]);
    a.assert_no_leftovers();
}

#[test]
fn the_start_interval_paces_checks_during_the_start_period() {
    const T: &str = "--health-start-interval";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("healthstartiv");
    // Checked every 200 ms while starting: healthy in well under the hour of the interval.
    let start = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--name", name, "--health-cmd", "true", "--health-interval", "1h"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMG, "sleep", "300"]);
        a.ok(&args);
    };
    start("fast", &["--health-start-period", "1m", "--health-start-interval", "200ms"]);
    assert!(eventually(15, || health(&a, "fast")["Status"] == "healthy"), "{}", health(&a, "fast"));
    assert_eq!(a.inspect("fast")["Config"]["Healthcheck"]["StartInterval"], 200_000_000);
    // Without it the interval applies from the first check, as before docker 25.
    start("slow", &["--health-start-period", "1m"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(health(&a, "slow")["Status"], "starting");
    let r = a.ctl(&["run", "-d", "--health-cmd", "true", "--health-start-interval", "10ns", IMG, "true"]);
    assert!(r.code == 125 && r.stderr.contains("health-start-interval"), "{}", r.stderr);

    // The image's HEALTHCHECK --start-interval is recorded and used.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {IMG}\nHEALTHCHECK --interval=1h --start-period=1m --start-interval=200ms CMD [\"true\"]\n"),
    )
    .expect("Dockerfile");
    let r = a.ctl(&["build", "-t", "local/startiv:1", ctx.path().to_str().expect("path")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    a.ok(&["run", "-d", "--name", "img", "local/startiv:1", "sleep", "300"]);
    assert!(eventually(15, || health(&a, "img")["Status"] == "healthy"), "{}", health(&a, "img"));
    assert_eq!(a.inspect("img")["Config"]["Healthcheck"]["StartInterval"], 200_000_000);
    a.ok(&["rm", "-f", "fast", "slow", "img"]);
    a.ok(&["rmi", "local/startiv:1"]);
    a.assert_no_leftovers();
}
