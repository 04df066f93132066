//! `agentd --metrics-listen`: a scrape with curl, parsed by the Prometheus project's own
//! Python parser (`prometheus_client.parser`, in the venv `scripts/test.sh` prepares), must
//! show the running container's cgroup usage, exits by reason, and the calls made.

use e2e::{free_port, privileged, Agent};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf()
}

fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "10"]).args(args).output().expect("curl");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Samples as (name, labels, value), by prometheus_client's text parser; None (and why)
/// when the venv lacks it and K8S_TOOLS is unset.
fn parse_with_prometheus_client(text: &str) -> Option<Vec<(String, serde_json::Value, f64)>> {
    let tools =
        std::env::var_os("K8S_TOOLS").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/k8s-tools"));
    let python = tools.join("venv/bin/python");
    let have = python.exists()
        && Command::new(&python).args(["-c", "import prometheus_client"]).status().is_ok_and(|s| s.success());
    if !have {
        assert!(std::env::var_os("K8S_TOOLS").is_none(), "K8S_TOOLS is set but its venv has no prometheus_client");
        eprintln!(
            "SKIP the Prometheus parser check: no prometheus_client in {} (scripts/test.sh installs it)",
            python.display()
        );
        return None;
    }
    let script = "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  out = [[s.name, s.labels, s.value] for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
                  print(json.dumps(out))\n";
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "the Prometheus parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, serde_json::Value, f64)> = serde_json::from_slice(&out.stdout).expect("json");
    Some(v)
}

fn value(samples: &[(String, serde_json::Value, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(|x| x.as_str()) == Some(*v)))
        .map(|(_, _, v)| *v)
}

#[test]
fn a_scrape_shows_containers_exits_and_calls() {
    const T: &str = "metrics scrape";
    if !privileged(T) {
        return;
    }
    let port = free_port();
    let a = Agent::start_with_config("metrics", &format!("metrics_listen = \"127.0.0.1:{port}\""));
    let url = format!("http://127.0.0.1:{port}/metrics");
    let id = a.ok(&["run", "-d", "--name", "web", "-m", "64m", "local/busybox", "sleep", "300"]);
    let r = a.ctl(&["run", "--name", "bad", "local/busybox", "sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_ne!(a.ctl(&["inspect", "no-such"]).code, 0);
    let (code, text) = curl(&[&url]);
    assert_eq!(code, 0, "curl {url}: {text}\n{}", a.log());
    let Some(s) = parse_with_prometheus_client(&text) else {
        // Without the parser still check the plain text.
        assert!(text.contains("agentd_containers{state=\"running\"} 1"), "{text}");
        return;
    };
    assert_eq!(value(&s, "agentd_containers", &[("state", "running")]), Some(1.0), "{text}");
    assert_eq!(value(&s, "agentd_containers", &[("state", "exited")]), Some(1.0), "{text}");
    let mem = value(&s, "agentd_container_memory_bytes", &[("name", "web"), ("id", &id)]);
    assert!(mem.is_some_and(|m| m > 0.0), "web's memory from its cgroup: {mem:?}\n{text}");
    let limit = value(&s, "agentd_container_memory_limit_bytes", &[("name", "web")]);
    assert_eq!(limit, Some(64.0 * 1024.0 * 1024.0), "{text}");
    assert!(value(&s, "agentd_container_pids", &[("name", "web")]).is_some_and(|p| p >= 1.0), "{text}");
    assert!(value(&s, "agentd_container_memory_bytes", &[("name", "bad")]).is_none(), "only running ones");
    assert_eq!(value(&s, "agentd_container_exits_total", &[("reason", "error")]), Some(1.0), "{text}");
    assert!(value(&s, "agentd_container_events_total", &[("action", "start")]).is_some_and(|v| v >= 2.0), "{text}");
    let creates = value(
        &s,
        "agentd_rpc_requests_total",
        &[("service", "agent.v1.ContainerService"), ("method", "Create"), ("code", "Ok")],
    );
    assert!(creates.is_some_and(|v| v >= 2.0), "two creates counted: {creates:?}\n{text}");
    let not_found = s.iter().any(|(n, l, v)| n == "agentd_rpc_requests_total" && l["code"] == "NotFound" && *v >= 1.0);
    assert!(not_found, "the failed inspect is counted by its code\n{text}");
    assert!(
        value(&s, "agentd_rpc_duration_seconds_count", &[("method", "Create")]).is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert!(value(&s, "agentd_images", &[]).is_some_and(|v| v >= 1.0), "{text}");
    assert!(value(&s, "agentd_image_store_bytes", &[]).is_some_and(|v| v > 0.0), "{text}");

    // Only /metrics is served; the removed container's series go with it.
    let (_, body) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{port}/other")]);
    assert_eq!(body, "404");
    a.ok(&["rm", "-f", "web", "bad"]);
    let (_, text) = curl(&[&url]);
    assert!(!text.contains("name=\"web\""), "{text}");
    assert!(text.contains("agentd_containers{state=\"running\"} 0"), "{text}");
    a.assert_no_leftovers();
}
