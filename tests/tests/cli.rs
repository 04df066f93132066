//! docker's flags that scripts use: `--env-file`, `--label-file`, unknown flags reported as
//! such, `logs --since/--until`.

use e2e::{privileged, Agent};

const IMG: &str = "local/busybox:latest";

#[test]
fn env_and_label_files_and_unknown_flags() {
    if !privileged("env files") {
        return;
    }
    let a = Agent::start("clifiles");
    let d = tempfile::tempdir().expect("tempdir");
    let envs = d.path().join("envs");
    std::fs::write(&envs, "# settings\nA=1\nB=two words\n\n").expect("envs");
    let labels = d.path().join("labels");
    std::fs::write(&labels, "team=core\nflag\n").expect("labels");
    let (e, l) = (envs.to_str().unwrap(), labels.to_str().unwrap());
    let out = a.ok(&["run", "--rm", "--env-file", e, "-e", "B=flag wins", IMG, "sh", "-c", "echo $A/$B"]);
    assert_eq!(out, "1/flag wins");
    a.ok(&["create", "--name", "lab", "--label-file", l, "-l", "x=y", IMG, "true"]);
    let labels = a.inspect("lab")["Config"]["Labels"].clone();
    assert_eq!(labels["team"], "core", "{labels}");
    assert_eq!(labels["flag"], "", "{labels}");
    assert_eq!(labels["x"], "y", "{labels}");
    a.ok(&["rm", "lab"]);
    // An unknown flag is named as one (exit 125), not taken for the image.
    let r = a.ctl(&["run", "--rm", "--bogus-flag", "x", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("unknown flag: --bogus-flag"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "--env-file", "/no/such/envs", IMG, "true"]);
    assert!(r.code == 125 && r.stderr.contains("/no/such/envs"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

#[test]
fn logs_since_and_until() {
    if !privileged("logs since") {
        return;
    }
    let a = Agent::start("clilogs");
    a.ok(&["run", "-d", "--name", "talk", IMG, "sh", "-c", "echo one; sleep 1.5; echo two; sleep 300"]);
    assert!(e2e::eventually(10, || a.ok(&["logs", "talk"]).contains("two")));
    let logs = a.ok(&["logs", "-t", "talk"]);
    let stamp = |word: &str| -> chrono::DateTime<chrono::FixedOffset> {
        let l = logs.lines().find(|l| l.ends_with(word)).unwrap_or_else(|| panic!("{word} in {logs}"));
        chrono::DateTime::parse_from_rfc3339(l.split(' ').next().unwrap()).expect("timestamp")
    };
    let between = stamp("one") + (stamp("two") - stamp("one")) / 2;
    let between = between.to_rfc3339();
    assert_eq!(a.ok(&["logs", "--since", &between, "talk"]), "two");
    assert_eq!(a.ok(&["logs", "--until", &between, "talk"]), "one");
    assert_eq!(a.ok(&["logs", "--since", "1h", "talk"]), "one\ntwo", "relative");
    // A follower with --until ends there, although the container runs on.
    let t0 = std::time::Instant::now();
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let out = a.ok(&["logs", "-f", "--until", &soon, "talk"]);
    let took = t0.elapsed();
    assert!(took >= std::time::Duration::from_millis(1000), "followed until then: {took:?}");
    assert!(took < std::time::Duration::from_secs(10), "and ended: {took:?}");
    assert_eq!(out, "one\ntwo");
    let r = a.ctl(&["logs", "--since", "yesterday-ish", "talk"]);
    assert!(r.code == 1 && r.stderr.contains("\"yesterday-ish\""), "{}", r.stderr);
    a.ok(&["rm", "-f", "talk"]);
    a.assert_no_leftovers();
}

#[test]
fn rename_and_port() {
    if !privileged("rename and port") {
        return;
    }
    let a = Agent::start("cliren");
    let port = e2e::free_port().to_string();
    let id = a.ok(&["run", "-d", "--name", "old", "-p", &format!("{port}:80"), IMG, "sleep", "300"]);
    a.ok(&["run", "-d", "--name", "peer", IMG, "sleep", "300"]);
    a.ok(&["rename", "old", "new"]);
    assert_eq!(a.inspect("new")["Id"], id.as_str());
    assert_ne!(a.ctl(&["inspect", "old"]).code, 0, "the old name is free");
    // Peers on the network see the new name.
    assert!(e2e::eventually(5, || a.ok(&["exec", "peer", "cat", "/etc/hosts"]).contains("new")));
    let r = a.ctl(&["rename", "new", "peer"]);
    assert!(r.code == 1 && r.stderr.contains("already in use"), "{}", r.stderr);
    let r = a.ctl(&["rename", "new", "bad name"]);
    assert!(r.code == 1 && r.stderr.contains("\"bad name\""), "{}", r.stderr);
    let evs = a.ok(&["events", "--no-follow", "--filter", "event=rename"]);
    assert_eq!(evs.lines().count(), 1, "{evs}");
    // port: docker's lines; one port's host address; an unpublished one is an error.
    assert_eq!(a.ok(&["port", "new"]), format!("80/tcp -> 0.0.0.0:{port}"));
    assert_eq!(a.ok(&["port", "new", "80"]), format!("0.0.0.0:{port}"));
    let r = a.ctl(&["port", "new", "81/tcp"]);
    assert!(r.code == 1 && r.stderr.contains("No public port '81/tcp'"), "{}", r.stderr);
    a.ok(&["rm", "-f", "new", "peer"]);
    a.assert_no_leftovers();
}

#[test]
fn format_takes_dockers_go_templates() {
    if !privileged("format_takes_dockers_go_templates") {
        return;
    }
    let a = Agent::start("gotmpl");
    let id = a.ok(&["run", "-d", "--name", "web", "--label", "tier=front", IMG, "sleep", "100"]);
    a.ok(&["create", "--name", "idle", IMG, "true"]);
    assert_eq!(a.ok(&["ps", "--format", "{{.Names}}"]), "web");
    let mut all: Vec<String> =
        a.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]).lines().map(String::from).collect();
    all.sort();
    assert_eq!(all, ["idle created", "web running"]);
    // `table`: docker's titles, columns aligned, a literal \t as typed in a shell.
    let t = a.ok(&["ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Labels}}"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "CONTAINER ID   NAMES     LABELS", "{t}");
    assert_eq!(lines[1], format!("{}   web       tier=front", &id[..12]), "{t}");
    let pid = a.ok(&["inspect", "--format", "{{.State.Pid}}", "web"]);
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "pid {pid}");
    assert_eq!(a.ok(&["inspect", "-f", "{{json .Config.Labels}}", "web"]), "{\"tier\":\"front\"}");
    assert_eq!(
        a.ok(&["inspect", "-f", "{{.Name}} {{upper .State.Status}}", "web", "idle"]),
        "web RUNNING\nidle CREATED"
    );
    assert!(a.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines().any(|l| l == "local/busybox:latest"));
    assert_eq!(a.ok(&["image", "inspect", "-f", "{{index .RepoTags 0}}", IMG]), "local/busybox:latest");
    assert_eq!(a.ok(&["info", "--format", "{{.Instance}}"]), a.instance);
    assert!(!a.ok(&["version", "--format", "{{.Server.Version}}"]).is_empty());
    assert!(a.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "bridge"));
    // Bad templates: docker's messages, exit 1, nothing printed.
    let r = a.ctl(&["ps", "--format", "{{.Names"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("template parsing error"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    let r = a.ctl(&["inspect", "-f", "{{.NoSuchField}}", "web"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("NoSuchField"), "{}", r.stderr);
    a.ok(&["rm", "-f", "web", "idle"]);
    a.assert_no_leftovers();
}

#[test]
fn run_flags_dns_domain_shm_ulimit_stop_cidfile_platform() {
    if !privileged("run_flags_dns_domain_shm_ulimit_stop_cidfile_platform") {
        return;
    }
    let a = Agent::start("runflags");
    let out = a.ok(&[
        "run",
        "--rm",
        "--dns-search",
        "a.example",
        "--dns-search",
        "b.example",
        "--dns-option",
        "ndots:2",
        "--domainname",
        "corp.example",
        "--shm-size",
        "8m",
        "--ulimit",
        "nofile=512:1024",
        IMG,
        "sh",
        "-c",
        "grep -E '^(search|options)' /etc/resolv.conf; cat /proc/sys/kernel/domainname; \
         grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'; ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "search a.example b.example\noptions ndots:2\ncorp.example\nsize=8192k\n512\n1024", "{out}");
    // Bad values: named, nothing created.
    for (flags, want) in [
        (vec!["--ulimit", "nofiles=1"], "unknown limit \"nofiles\""),
        (vec!["--ulimit", "nofile=10:5"], "soft limit is above the hard limit"),
        (vec!["--stop-signal", "SIGNOPE"], "invalid signal"),
        (vec!["--dns-option", "a b"], "resolver option"),
        (vec!["--platform", "linux/arm64"], "linux/amd64 images only"),
        (vec!["--shm-size", "0"], "--shm-size"),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter());
        args.extend([IMG, "true"]);
        let r = a.ctl(&args);
        assert_eq!(r.code, 125, "{flags:?}: {}", r.stderr);
        assert!(r.stderr.contains(want), "{flags:?}: {}", r.stderr);
    }
    // A hard limit above the agent's own is refused by the kernel; the message says why.
    let r = a.ctl(&["run", "--rm", "--ulimit", "nofile=2000000000", IMG, "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--ulimit nofile=2000000000:2000000000"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing left by the refused runs");

    // --stop-signal: `stop` sends it; --stop-timeout: a stop without -t waits that long.
    let trap = "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done";
    a.ok(&["run", "-d", "--name", "usr1", "--stop-signal", "USR1", IMG, "sh", "-c", trap]);
    let catches_usr1 = || {
        let status = a.ok(&["exec", "usr1", "cat", "/proc/1/status"]);
        let mask = status.lines().find_map(|l| l.strip_prefix("SigCgt:")).map(|m| m.trim().to_string());
        mask.and_then(|m| u64::from_str_radix(&m, 16).ok()).is_some_and(|m| m & (1 << 9) != 0)
    };
    assert!(e2e::eventually(5, catches_usr1), "the trap is set");
    a.ok(&["stop", "usr1"]);
    assert_eq!(a.inspect("usr1")["State"]["ExitCode"], 0);
    assert!(a.ok(&["logs", "usr1"]).contains("got-usr1"));
    a.ok(&["run", "-d", "--name", "stubborn", "--stop-timeout", "1", IMG, "sleep", "100"]);
    let t = std::time::Instant::now();
    a.ok(&["stop", "stubborn"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(6), "stop took {:?}", t.elapsed());
    assert_eq!(a.inspect("stubborn")["State"]["ExitCode"], 137);

    // --cidfile: the ID written; an existing file refused before anything is created.
    let d = tempfile::tempdir().expect("tempdir");
    let cid = d.path().join("cid");
    let c = cid.to_str().unwrap();
    let id = a.ok(&["run", "-d", "--cidfile", c, IMG, "sleep", "100"]);
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    let r = a.ctl(&["run", "-d", "--cidfile", c, IMG, "sleep", "100"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("Container ID file found"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-q"]).lines().count(), 1);
    a.ok(&["rm", "-f", "usr1", "stubborn", &id]);
    a.assert_no_leftovers();
}

#[test]
fn run_pulls_only_when_asked() {
    if !privileged("run_pulls_only_when_asked") {
        return;
    }
    let a = Agent::start("runpull");
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    let archive = a.dir.path().join("bb.tar");
    a.ok(&["save", "-o", archive.to_str().unwrap(), IMG]);
    reg.push(&archive, "test/bb:1", None);
    let image = format!("{}/test/bb:1", reg.host());
    let r = a.ctl(&["run", "--rm", &image, "true"]);
    assert_ne!(r.code, 0, "no pull without --pull");
    let r = a.ctl(&["run", "--rm", "--pull", "never", &image, "true"]);
    assert_ne!(r.code, 0);
    assert_eq!(a.ok(&["run", "--rm", "--pull", "missing", "-q", &image, "echo", "pulled"]), "pulled");
    assert!(a.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).contains("/test/bb:1"));
    // Present now: `missing` does not pull again, `always` does.
    assert_eq!(a.ok(&["run", "--rm", "--pull", "missing", &image, "echo", "again"]), "again");
    assert_eq!(a.ok(&["run", "--rm", "--pull", "always", "-q", &image, "echo", "always"]), "always");
    a.assert_no_leftovers();
}

#[test]
fn tag_history_load_import_and_container_forms() {
    if !privileged("tag_history_load_import_and_container_forms") {
        return;
    }
    let a = Agent::start("aliases");
    a.ok(&["tag", IMG, "mine/box:1"]);
    let refs = a.ok(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]);
    let id_of = |r: &str| {
        refs.lines().find(|l| l.starts_with(&format!("{r} "))).map(|l| l.split(' ').nth(1).unwrap_or("").to_string())
    };
    assert!(id_of("mine/box:1").is_some() && id_of("mine/box:1") == id_of("local/busybox:latest"), "{refs}");
    let r = a.ctl(&["tag", "no/such:1", "x:1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no/such:1"), "{}", r.stderr);
    assert!(!a.ok(&["history", "mine/box:1"]).is_empty());
    // save → rmi → load: the same image back.
    let d = tempfile::tempdir().expect("tempdir");
    let tar = d.path().join("box.tar");
    a.ok(&["save", "-o", tar.to_str().unwrap(), "mine/box:1"]);
    a.ok(&["rmi", "mine/box:1"]);
    a.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(a.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]).lines().any(|l| l == "mine/box:1"));
    // export → import: a rootfs image that runs.
    a.ok(&["create", "--name", "src", IMG, "true"]);
    let rootfs = d.path().join("rootfs.tar");
    a.ok(&["export", "-o", rootfs.to_str().unwrap(), "src"]);
    a.ok(&["import", rootfs.to_str().unwrap(), "flat/box:2"]);
    assert_eq!(a.ok(&["run", "--rm", "flat/box:2", "echo", "flat"]), "flat");
    // docker's `container` management forms.
    assert_eq!(a.ok(&["container", "ls", "-a", "--format", "{{.Names}}"]), "src");
    assert_eq!(a.ok(&["container", "inspect", "-f", "{{.Name}}", "src"]), "src");
    a.ok(&["container", "rm", "src"]);
    a.assert_no_leftovers();
}

#[test]
fn push_then_pull_back() {
    if !privileged("push_then_pull_back") {
        return;
    }
    let a = Agent::start("push");
    let Some(reg) = e2e::Registry::start(&a.dir.path().join("registry"), None) else { return };
    let image = format!("{}/test/pushed:1", reg.host());
    a.ok(&["tag", IMG, &image]);
    let out = a.ok(&["push", &image]);
    assert!(out.contains("Pushed") && out.contains("1: digest: sha256:"), "{out}");
    // Again: every blob is there already.
    let out = a.ok(&["push", &image]);
    assert!(out.contains("Layer already exists") && !out.contains("Pushed"), "{out}");
    // skopeo (a client nobody here wrote) reads what we pushed.
    let o = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{image}")])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&o.stderr));
    // Gone here, pulled back (a loopback registry needs no --insecure, like docker's), runs.
    a.ok(&["rmi", &image]);
    a.ok(&["pull", "-q", &image]);
    assert_eq!(a.ok(&["run", "--rm", &image, "echo", "round-trip"]), "round-trip");
    let r = a.ctl(&["push", &format!("{}/test/nothere:1", reg.host())]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("nothere"), "{}", r.stderr);
    // A registry that wants a login refuses an anonymous push, saying so.
    let Some(locked) = e2e::Registry::start(&a.dir.path().join("locked"), Some(("u", "pw"))) else { return };
    let img2 = format!("{}/test/locked:1", locked.host());
    a.ok(&["tag", IMG, &img2]);
    let r = a.ctl(&["push", &img2]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.to_lowercase().contains("unauthorized") || r.stderr.contains("authentication"), "{}", r.stderr);
    a.ok(&["login", "-u", "u", "-p", "pw", "--insecure", &locked.host()]);
    assert!(a.ok(&["push", "-q", &img2]).contains("locked:1"));
    a.assert_no_leftovers();
}

#[test]
fn expose_and_annotations() {
    if !privileged("expose_and_annotations") {
        return;
    }
    let a = Agent::start("expose");
    let serve = "while true; do echo exposed | nc -l -p 8081; done";
    a.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--expose",
        "8081",
        "-P",
        "--annotation",
        "team=core",
        IMG,
        "sh",
        "-c",
        serve,
    ]);
    let port = a.ok(&["port", "web", "8081"]);
    let host_port: u16 = port.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("port: {port}"));
    let got = e2e::eventually(10, || {
        use std::io::Read;
        let mut s = String::new();
        std::net::TcpStream::connect(("127.0.0.1", host_port)).and_then(|mut c| c.read_to_string(&mut s)).is_ok()
            && s.trim() == "exposed"
    });
    assert!(got, "-P published the --expose port on {host_port}");
    assert_eq!(a.ok(&["inspect", "-f", "{{index .HostConfig.Annotations \"team\"}}", "web"]), "core");
    assert!(a.ok(&["inspect", "-f", "{{json .Config.ExposedPorts}}", "web"]).contains("8081/tcp"));
    let r = a.ctl(&["run", "--rm", "--expose", "80/icmp", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --expose \"80/icmp\""), "{}", r.stderr);
    a.ok(&["rm", "-f", "web"]);
    a.assert_no_leftovers();
}

#[test]
fn rm_f_of_many_runs_them_at_once_and_reports_in_order() {
    if !privileged("rm_many") {
        return;
    }
    let a = Agent::start("rmmany");
    let names: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    for n in &names {
        a.ok(&["run", "-d", "--network", "none", "--name", n, IMG, "sleep", "600"]);
    }
    // The owner of a network namespace named before its joiner: while the joiner runs the
    // owner's removal is refused; run at once, a refused one is tried again after the others.
    a.ok(&["run", "-d", "--name", "owner", IMG, "sleep", "600"]);
    a.ok(&["run", "-d", "--name", "joiner", "--network", "container:owner", IMG, "sleep", "600"]);
    let mut args = vec!["rm", "-f", "owner"];
    args.extend(names.iter().map(String::as_str));
    args.push("joiner");
    let r = a.ctl(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want: Vec<&str> = args[2..].to_vec();
    assert_eq!(r.stdout.lines().collect::<Vec<_>>(), want, "each name once, in the order asked");
    assert_eq!(a.ok(&["ps", "-aq"]), "", "all removed");
    a.assert_no_leftovers();
}
