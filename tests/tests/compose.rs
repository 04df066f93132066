//! `agentctl apply/diff/down` with Compose files, against a real agent: apply twice
//! changes nothing; a changed service (env, image) is recreated and only it; `--prune`;
//! `depends_on: service_healthy` orders starts; `network_mode: service:X`; published ports answer on 127.0.0.1;
//! `down` leaves nothing; a bad file names the key and line and creates nothing.

use e2e::{privileged, Agent, Registry};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

const IMG: &str = "local/busybox:latest";

/// A subnet octet of this test process (the agents of parallel tests never share one).
fn octet() -> u32 {
    std::process::id() % 200 + 20
}

fn get(port: u16) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return String::new() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

/// The index of the progress line `KIND NAME  STATE` in `out`.
fn line(out: &str, what: &str, state: &str) -> Option<usize> {
    out.lines().position(|l| l.trim() == format!("{what}  {state}"))
}

fn id(a: &Agent, name: &str) -> String {
    a.inspect(name)["Id"].as_str().unwrap_or_default().to_string()
}

fn started(a: &Agent, name: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let s = a.inspect(name)["State"]["StartedAt"].as_str().unwrap_or_default().to_string();
    chrono::DateTime::parse_from_rfc3339(&s).unwrap_or_else(|e| panic!("StartedAt of {name} {s:?}: {e}"))
}

fn write(dir: &Path, text: &str) -> String {
    let f = dir.join("compose.yaml");
    std::fs::write(&f, text).expect("write compose.yaml");
    f.display().to_string()
}

fn shop(cache_image: &str, with_old: bool) -> String {
    // old stops at once on SIGTERM: once dropped from the file, its stop_grace_period is not known.
    let old = if with_old {
        format!("  old:\n    image: {IMG}\n    command: [sh, -c, 'trap \"exit 0\" TERM; sleep 1000 & wait']\n")
    } else {
        String::new()
    };
    format!(
        r#"services:
  web:
    image: {IMG}
    command: ["sh", "-c", "mkdir -p /www && echo color-$$COLOR > /www/index.html && exec httpd -f -p 80 -h /www"]
    environment:
      COLOR: ${{SHOP_COLOR:-blue}}
    ports:
      - "127.0.0.1:${{SHOP_PORT}}:80"
    depends_on: [cache]
    stop_grace_period: 1s
    networks: [default, back]
    volumes:
      - ./data:/data:ro
      - type: bind
        source: ./data
        target: /rw
  cache:
    image: {cache_image}
    command: sleep 1000
    stop_grace_period: 1s
{old}networks:
  default:
    ipam:
      config:
        - subnet: 10.248.{o}.0/24
  back:
    ipam: {{config: [{{subnet: 10.250.{o}.0/24}}]}}
"#,
        o = octet()
    )
}

#[test]
fn apply_reconciles_only_what_changed() {
    if !privileged("compose apply") {
        return;
    }
    let a = Agent::start("composeapply");
    let d = tempfile::tempdir().expect("tempdir");
    // The project is named after the directory, as compose does it (lowercased).
    let dir = d.path().join("Web_Shop");
    std::fs::create_dir(&dir).expect("project dir");
    let port = e2e::free_port();
    std::fs::write(dir.join(".env"), format!("SHOP_PORT={port}\n")).expect(".env");
    std::fs::create_dir(dir.join("data")).expect("data dir");
    std::fs::write(dir.join("data/hello"), "hi from the host").expect("data file");
    let f = write(&dir, &shop(IMG, true));
    let out = a.ok(&["apply", "-f", &f]);
    for l in ["Network web_shop_default", "Container web_shop-web-1", "Container web_shop-cache-1"] {
        assert!(out.contains(l), "{l} in {out}");
    }
    assert!(out.contains("Started"), "{out}");
    let labels = a.inspect("web_shop-web-1")["Config"]["Labels"].clone();
    assert_eq!(labels["com.docker.compose.project"], "web_shop", "{labels}");
    assert_eq!(labels["com.docker.compose.service"], "web", "{labels}");
    assert_eq!(labels["com.docker.compose.config-hash"].as_str().map(str::len), Some(64), "{labels}");
    // The published port answers on 127.0.0.1, with the value the file interpolated.
    assert!(e2e::eventually(10, || get(port).contains("color-blue")), "{}", get(port));
    // Binds relative to the file (short syntax read-only, long syntax writable); both networks.
    assert_eq!(a.ok(&["exec", "web_shop-web-1", "cat", "/data/hello"]), "hi from the host");
    assert_ne!(a.ctl(&["exec", "web_shop-web-1", "touch", "/data/x"]).code, 0, "read-only");
    a.ok(&["exec", "web_shop-web-1", "touch", "/rw/written"]);
    assert!(dir.join("data/written").exists());
    let nets = a.ok(&["exec", "web_shop-web-1", "ls", "/sys/class/net"]);
    assert!(nets.contains("eth0") && nets.contains("eth1"), "{nets}");
    assert!(a.ok(&["network", "ls"]).contains("web_shop_back"));
    // Like compose, a service is reached by its service name (a network alias) too.
    // Started after it: its peers learn of it a moment later (runtime/peers.rs).
    let hosts = || a.ok(&["exec", "web_shop-cache-1", "cat", "/etc/hosts"]);
    assert!(e2e::eventually(10, || hosts().lines().any(|l| l.ends_with("\tweb_shop-web-1 web"))), "{}", hosts());
    let page = a.ok(&["exec", "web_shop-cache-1", "sh", "-c", "timeout 3 wget -qO- http://web/; exit $?"]);
    assert!(page.starts_with("color-"), "{page}");
    let ids = |a: &Agent| ["web", "cache", "old"].map(|s| id(a, &format!("web_shop-{s}-1")));
    let first = ids(&a);
    let t_cache = started(&a, "web_shop-cache-1");

    // Twice: nothing changes; diff says so with exit 0.
    let r = a.ctl(&["diff", "-f", &f]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("unchanged") && !r.stdout.contains("recreate"), "{}", r.stdout);
    let out = a.ok(&["apply", "-f", &f]);
    assert!(out.contains("up to date") && !out.contains("Waiting"), "{out}");
    assert_eq!(ids(&a), first);
    assert_eq!(started(&a, "web_shop-cache-1"), t_cache, "not restarted");

    // The environment changes one service's value: only it is recreated.
    let r = a.cmd().args(["diff", "-f", &f]).env("SHOP_COLOR", "red").output().expect("diff");
    let diff = String::from_utf8_lossy(&r.stdout).to_string();
    assert_eq!(r.status.code(), Some(1), "{diff}");
    assert!(diff.contains("web_shop-web-1 (web): recreate: env: ~COLOR"), "{diff}");
    assert!(diff.contains("web_shop-cache-1 (cache): unchanged"), "{diff}");
    let r = a.cmd().args(["apply", "-f", &f]).env("SHOP_COLOR", "red").output().expect("apply");
    let out = String::from_utf8_lossy(&r.stdout).to_string();
    assert_eq!(r.status.code(), Some(0), "{out}{}", String::from_utf8_lossy(&r.stderr));
    assert!(line(&out, "Container web_shop-web-1", "Recreated").is_some(), "{out}");
    let second = ids(&a);
    assert_ne!(second[0], first[0], "web recreated");
    assert_eq!(&second[1..], &first[1..], "the others left alone");
    assert!(e2e::eventually(10, || get(port).contains("color-red")), "{}", get(port));
    // The recreated container's predecessor is gone.
    assert_eq!(a.ok(&["ps", "-aq"]).lines().count(), 3);

    // A changed image: only cache is recreated (web keeps SHOP_COLOR=red from the environment).
    a.ok(&["image", "busybox", "--tag", "local/busybox:other"]);
    let f = write(&dir, &shop("local/busybox:other", true));
    let r = a.cmd().args(["apply", "-f", &f]).env("SHOP_COLOR", "red").output().expect("apply");
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let third = ids(&a);
    assert_eq!((third[0] == second[0], third[1] == second[1], third[2] == second[2]), (true, false, true));
    assert_eq!(a.inspect("web_shop-cache-1")["Image"], "local/busybox:other");
    // The same file, but the tag now names another image: cache is recreated.
    a.ok(&["commit", "web_shop-cache-1", "local/busybox:other"]);
    let r = a.cmd().args(["diff", "-f", &f]).env("SHOP_COLOR", "red").output().expect("diff");
    let diff = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(r.status.code() == Some(1) && diff.contains("recreate: image local/busybox:other now names"), "{diff}");
    let r = a.cmd().args(["apply", "-f", &f]).env("SHOP_COLOR", "red").output().expect("apply");
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let fourth = ids(&a);
    assert_eq!((fourth[0] == third[0], fourth[1] == third[1], fourth[2] == third[2]), (true, false, true));
    let third = fourth;

    // A service dropped from the file stays (with a warning) until --prune.
    let f = write(&dir, &shop("local/busybox:other", false));
    let r = a.cmd().args(["apply", "-f", &f]).env("SHOP_COLOR", "red").output().expect("apply");
    assert!(String::from_utf8_lossy(&r.stderr).contains("orphan"), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(id(&a, "web_shop-old-1"), third[2]);
    let r = a.cmd().args(["diff", "--prune", "-f", &f]).env("SHOP_COLOR", "red").output().expect("diff");
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stdout).contains("- container web_shop-old-1 (old): remove"));
    let r = a.cmd().args(["apply", "--prune", "-f", &f]).env("SHOP_COLOR", "red").output().expect("apply");
    let out = String::from_utf8_lossy(&r.stdout).to_string();
    assert!(line(&out, "Container web_shop-old-1", "Removed").is_some(), "{out}");
    assert_ne!(a.ctl(&["inspect", "web_shop-old-1"]).code, 0, "old is gone");
    assert_eq!([id(&a, "web_shop-web-1"), id(&a, "web_shop-cache-1")], [third[0].clone(), third[1].clone()]);

    // down: containers, then the network; nothing is left.
    let out = a.ok(&["down", "-f", &f]);
    let (web, cache) = (out.find("web_shop-web-1").unwrap_or(0), out.find("web_shop-cache-1").unwrap_or(0));
    assert!(web < cache, "the dependent goes first: {out}");
    assert!(line(&out, "Network web_shop_default", "Removed").is_some(), "{out}");
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    assert!(!a.ok(&["network", "ls"]).contains("web_shop"), "networks removed");
    a.ok(&["rmi", "local/busybox:other"]);
    a.assert_no_leftovers();
}

#[test]
fn depends_on_service_healthy_orders_starts() {
    if !privileged("compose depends_on") {
        return;
    }
    let a = Agent::start("composehealthy");
    let text = format!(
        r#"name: ordered
services:
  web:
    image: {IMG}
    command: sleep 1000
    stop_grace_period: 1s
    depends_on:
      db:
        condition: service_healthy
  db:
    image: {IMG}
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 1000"]
    stop_grace_period: 1s
    environment: ["NOTE=${{DB_NOTE:-first}}"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 300ms
      retries: 30
  side:
    image: {IMG}
    command: sleep 1000
    stop_grace_period: 1s
    network_mode: service:db
networks:
  default:
    ipam: {{config: [{{subnet: 10.249.{}.0/24}}]}}
"#,
        octet()
    );
    // From stdin (`-f -`).
    let r = a.ctl_stdin(&["apply", "-f", "-"], text.as_bytes());
    assert_eq!(r.code, 0, "{}{}\n{}", r.stdout, r.stderr, a.log());
    let healthy = line(&r.stdout, "Container ordered-db-1", "Healthy");
    let web = line(&r.stdout, "Container ordered-web-1", "Started");
    assert!(healthy.is_some() && healthy < web, "{}", r.stdout);
    let db = a.inspect("ordered-db-1");
    assert_eq!(db["State"]["Health"]["Status"], "healthy", "{db}");
    // Again: nothing to start, so nothing waits.
    let again = a.ctl_stdin(&["apply", "-f", "-"], text.as_bytes());
    assert!(again.code == 0 && again.stdout.contains("ordered: up to date"), "{}{}", again.stdout, again.stderr);
    assert!(!again.stdout.contains("Waiting"), "{}", again.stdout);
    let (t_db, t_web) = (started(&a, "ordered-db-1"), started(&a, "ordered-web-1"));
    assert!(t_web - t_db >= chrono::Duration::milliseconds(2000), "web started {} after db", t_web - t_db);
    let passed = db["State"]["Health"]["Log"].as_array().and_then(|l| l.iter().find(|p| p["ExitCode"] == 0)).cloned();
    if let Some(p) = passed.and_then(|p| p["End"].as_str().map(str::to_string)) {
        let end = chrono::DateTime::parse_from_rfc3339(&p).expect("End");
        assert!(t_web >= end, "web started at {t_web}, db's first passing check ended at {end}");
    }
    // network_mode: service:db joins db's network namespace.
    let pid = |n: &str| a.inspect(n)["State"]["Pid"].to_string();
    let db_net = e2e::ns_inode(&pid("ordered-db-1"), "net");
    assert!(db_net.starts_with("net:["), "{db_net:?}");
    assert_eq!(e2e::ns_inode(&pid("ordered-side-1"), "net"), db_net);
    assert_ne!(e2e::ns_inode(&pid("ordered-web-1"), "net"), db_net);
    // db made anew: side follows it into its new namespace; web (on the network) stays.
    let d = tempfile::tempdir().expect("tempdir");
    let f = write(d.path(), &text);
    let (web_id, side_id) = (id(&a, "ordered-web-1"), id(&a, "ordered-side-1"));
    let r = a.cmd().args(["apply", "-f", &f]).env("DB_NOTE", "second").output().expect("apply");
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(id(&a, "ordered-web-1"), web_id);
    assert_ne!(id(&a, "ordered-side-1"), side_id);
    let db_net = e2e::ns_inode(&pid("ordered-db-1"), "net");
    assert!(db_net.starts_with("net:["), "{db_net:?}");
    assert_eq!(e2e::ns_inode(&pid("ordered-side-1"), "net"), db_net);
    let r = a.ctl_stdin(&["down", "-f", "-"], text.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    assert!(!a.ok(&["network", "ls"]).contains("ordered_default"));
    a.assert_no_leftovers();
}

#[test]
fn a_bad_file_names_the_key_and_line_and_creates_nothing() {
    if !privileged("compose bad file") {
        return;
    }
    let a = Agent::start("composebad");
    let d = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "name: bad\nservices:\n  ok:\n    image: {IMG}\n  web:\n    image: {IMG}\n    restart_policy: always\n"
    );
    let f = write(d.path(), &text);
    for verb in ["apply", "diff"] {
        let r = a.ctl(&[verb, "-f", &f]);
        // apply fails with 1 as docker's verbs; diff with 2, its 1 meaning "would change".
        assert_eq!(r.code, if verb == "diff" { 2 } else { 1 }, "{verb}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("line 7") && r.stderr.contains("\"restart_policy\""), "{verb}: {}", r.stderr);
    }
    // An unset required variable names its line too.
    let f = write(
        d.path(),
        &format!("name: bad\nservices:\n  web:\n    image: \"{IMG}\"\n    user: ${{WHO:?who runs it}}\n"),
    );
    let r = a.ctl(&["apply", "-f", &f]);
    assert!(r.code == 1 && r.stderr.contains("line 5") && r.stderr.contains("who runs it"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "", "no container");
    assert!(!a.ok(&["network", "ls"]).contains("bad_"), "no network");
    a.assert_no_leftovers();
}

#[test]
fn apply_pulls_a_missing_image() {
    if !privileged("compose pull") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some(reg) = Registry::start(&tmp.path().join("registry"), None) else { return };
    let a = Agent::start_with_config("composepull", &format!("[registry]\ninsecure = [\"{}\"]\n", reg.host()));
    let archive = tmp.path().join("bb.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap_or_default(), IMG]);
    reg.push(&archive, "team/app:1", None);
    let image = format!("{}/team/app:1", reg.host());
    let text = format!(
        "name: pulled\nservices:\n  app:\n    image: {image}\n    command: sleep 1000\n    stop_grace_period: 1s\nnetworks:\n  default:\n    ipam: {{config: [{{subnet: 10.251.{}.0/24}}]}}\n",
        octet()
    );
    let f = write(tmp.path(), &text);
    let out = a.ok(&["apply", "-f", &f]);
    assert!(line(&out, &format!("Image {image}"), "Pulled").is_some(), "{out}");
    assert!(line(&out, "Container pulled-app-1", "Started").is_some(), "{out}");
    assert_eq!(a.inspect("pulled-app-1")["State"]["Status"], "running");
    let out = a.ok(&["apply", "-f", &f]);
    assert!(!out.contains("Pulled") && out.contains("up to date"), "{out}");
    a.ok(&["down", "-f", &f]);
    a.ok(&["rmi", &image]);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

#[test]
fn service_completed_successfully_gates_the_start() {
    if !privileged("compose completed") {
        return;
    }
    let a = Agent::start("composedone");
    let d = tempfile::tempdir().expect("tempdir");
    let file = |code: u8| {
        format!(
            "name: gated\nservices:\n  app:\n    image: {IMG}\n    command: sleep 1000\n    stop_grace_period: 1s\n    depends_on:\n      migrate: {{condition: service_completed_successfully}}\n  migrate:\n    image: {IMG}\n    command: [sh, -c, 'exit {code}']\nnetworks:\n  default:\n    ipam: {{config: [{{subnet: 10.252.{}.0/24}}]}}\n",
            octet()
        )
    };
    let f = write(d.path(), &file(3));
    let r = a.ctl(&["apply", "-f", &f]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("\"migrate\" didn't complete successfully: exit 3"), "{}", r.stderr);
    assert_ne!(a.ctl(&["inspect", "gated-app-1"]).code, 0, "app is not made");
    let f = write(d.path(), &file(0));
    let out = a.ok(&["apply", "-f", &f]);
    assert!(line(&out, "Container gated-migrate-1", "Exited").is_some(), "{out}");
    assert_eq!(a.inspect("gated-app-1")["State"]["Status"], "running");
    assert_eq!(a.inspect("gated-migrate-1")["State"]["ExitCode"], 0);
    // Done is done: a second apply does not run the job again.
    let out = a.ok(&["apply", "-f", &f]);
    assert!(out.contains("gated: up to date"), "{out}");
    a.ok(&["down", "-f", &f]);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}
