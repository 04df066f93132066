//! CPU quota, measured (alone in its test binary, so other tests do not share the CPUs).

use e2e::{privileged, Agent};

fn cpu_ns(a: &Agent, name: &str) -> (u64, u64) {
    let s = a.ok(&["stats", "--no-stream", "--format", "json", name]);
    let v: serde_json::Value = serde_json::from_str(s.lines().next().unwrap()).unwrap();
    (v["CPUNanos"].as_u64().unwrap(), v["ThrottledPeriods"].as_u64().unwrap())
}

fn cores_used(a: &Agent, name: &str) -> (f64, u64) {
    let (c0, t0) = cpu_ns(a, name);
    let start = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let (c1, t1) = cpu_ns(a, name);
    ((c1 - c0) as f64 / start.elapsed().as_nanos() as f64, t1 - t0)
}

#[test]
fn cpus_quota_is_enforced_and_updated_live() {
    if !privileged("cpus_quota") {
        return;
    }
    let a = Agent::start("cpu");
    a.ok(&["run", "-d", "--name", "busy", "--cpus", "0.5", "local/busybox", "sh", "-c", "while :; do :; done"]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (used, throttled) = cores_used(&a, "busy");
    assert!((0.4..=0.6).contains(&used), "--cpus 0.5 must give 0.5 core ±20%, measured {used:.3}");
    assert!(throttled > 0, "the throttling counter must rise");
    a.ok(&["update", "--cpus", "1", "busy"]);
    let (used, _) = cores_used(&a, "busy");
    assert!(used > 0.8, "after update --cpus 1 a busy loop gets about one core, measured {used:.3}");
}
