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

#[test]
fn a_paused_container_is_not_health_checked() {
    if !privileged("pause health") {
        return;
    }
    let a = Agent::start("clipausehc");
    let hc = ["--health-cmd", "true", "--health-interval", "100ms", "--health-retries", "1"];
    let mut args = vec!["run", "-d", "--name", "hc"];
    args.extend_from_slice(&hc);
    args.extend_from_slice(&[IMG, "sleep", "300"]);
    a.ok(&args);
    assert!(e2e::eventually(10, || a.inspect("hc")["State"]["Health"]["Status"] == "healthy"));
    a.ok(&["pause", "hc"]);
    std::thread::sleep(Duration::from_millis(800));
    let h = a.inspect("hc")["State"]["Health"].clone();
    assert_eq!(h["Status"], "healthy", "{h}");
    let log = h["Log"].as_array().cloned().unwrap_or_default();
    assert!(log.iter().all(|p| p["ExitCode"] == 0), "a probe failed while paused: {h}");
    a.ok(&["rm", "-f", "hc"]);
    a.assert_no_leftovers();
}

fn mode_owner(p: &std::path::Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid())
}

#[test]
fn cp_both_ways_keeps_modes_and_owners_and_stays_inside() {
    if !privileged("cp") {
        return;
    }
    let a = Agent::start("clicp");
    let d = tempfile::tempdir().expect("tempdir");
    let host = d.path();
    // A symlink in the container that would lead to the host's /etc if followed on the host.
    let setup = "mkdir -p /data/sub && echo hi > /data/sub/f && chmod 0751 /data/sub/f && chown 1234:5678 /data/sub/f \
                 && ln -s /../../../etc /escape && ln -s sub/f /data/link && echo mine > /etc/marker && sleep 300";
    a.ok(&["run", "-d", "--name", "web", "--tmpfs", "/scratch", IMG, "sh", "-c", setup]);
    assert!(e2e::eventually(10, || a.ctl(&["exec", "web", "test", "-e", "/etc/marker"]).code == 0));

    // From the container: a file into a directory, under its name.
    a.ok(&["cp", "web:/etc/hostname", host.to_str().unwrap()]);
    let id = a.inspect("web")["Id"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(host.join("hostname")).unwrap().trim(), &id[..12]);
    // A directory with -a: modes and owners kept; a new name when the destination does not exist.
    let got = host.join("got");
    a.ok(&["cp", "-a", "web:/data", got.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(got.join("sub/f")).unwrap(), "hi\n");
    assert_eq!(mode_owner(&got.join("sub/f")), (0o751, 1234, 5678));
    assert_eq!(std::fs::read_link(got.join("link")).unwrap().to_str(), Some("sub/f"), "a symlink stays a link");
    // -L follows a symlink given as the source.
    let followed = host.join("followed");
    a.ok(&["cp", "-L", "web:/data/link", followed.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&followed).unwrap(), "hi\n");
    // A symlink out of the root resolves inside the container: its /etc, never the host's.
    let esc = host.join("esc");
    a.ok(&["cp", "web:/escape/marker", esc.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&esc).unwrap(), "mine\n");
    let r = a.ctl(&["cp", "web:/escape/os-release", host.to_str().unwrap()]);
    assert!(std::path::Path::new("/etc/os-release").exists());
    assert!(
        r.code == 1 && r.stderr.contains("Could not find the file"),
        "the host's /etc was reached: {} {}",
        r.code,
        r.stderr
    );
    // `-` : a tar on stdout.
    let out = a.cmd().args(["cp", "web:/data/sub", "-"]).output().expect("cp -");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut ar = tar::Archive::new(&out.stdout[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names, vec!["sub/", "sub/f"]);

    // Into the container: a directory under /tmp/, root-owned without -a, modes kept.
    let src = host.join("dir");
    std::fs::create_dir_all(src.join("inner")).unwrap();
    std::fs::write(src.join("inner/x"), "payload").unwrap();
    std::fs::set_permissions(src.join("inner/x"), std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(src.join("inner/x"), Some(4321), Some(8765)).unwrap();
    a.ok(&["cp", src.to_str().unwrap(), "web:/tmp/"]);
    assert_eq!(a.ok(&["exec", "web", "cat", "/tmp/dir/inner/x"]), "payload");
    assert_eq!(a.ok(&["exec", "web", "stat", "-c", "%a %u %g", "/tmp/dir/inner/x"]), "640 0 0");
    a.ok(&["cp", "-a", src.join("inner/x").to_str().unwrap(), "web:/tmp/renamed"]);
    assert_eq!(a.ok(&["exec", "web", "stat", "-c", "%a %u %g", "/tmp/renamed"]), "640 4321 8765");
    // A running container is written through its mount namespace: a --tmpfs mount gets it.
    a.ok(&["cp", src.join("inner/x").to_str().unwrap(), "web:/scratch/"]);
    assert_eq!(a.ok(&["exec", "web", "cat", "/scratch/x"]), "payload");
    assert!(a.ok(&["exec", "web", "grep", " /scratch ", "/proc/mounts"]).starts_with("tmpfs"));
    // A tar on stdin; and a write through the escaping symlink lands in the container's /etc.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    b.append_data(&mut h, "fromstdin", &b"abc"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    let r = a.ctl_stdin(&["cp", "-", "web:/escape"], &tarball);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(a.ok(&["exec", "web", "cat", "/etc/fromstdin"]), "abc");
    assert!(!std::path::Path::new("/etc/fromstdin").exists(), "written on the host");

    // Bad input: docker's messages, exit 1, nothing left behind.
    let r = a.ctl(&["cp", "web:/no/such", host.to_str().unwrap()]);
    assert!(
        r.code == 1 && r.stderr.contains("Could not find the file /no/such in container web"),
        "{} {}",
        r.code,
        r.stderr
    );
    let r = a.ctl(&["cp", "nosuch:/etc/hostname", host.to_str().unwrap()]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["cp", "/no/local/file", "web:/tmp/"]);
    assert!(r.code == 1 && r.stderr.contains("/no/local/file"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["cp", src.to_str().unwrap(), "web:/no/such/dir/"]);
    assert!(r.code == 1 && r.stderr.contains("Could not find the file"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["cp", "a", "b"]);
    assert!(r.code == 1 && r.stderr.contains("must specify at least one container source"), "{}", r.stderr);
    let r = a.ctl(&["cp", "--bogus", "a", "web:/"]);
    assert_eq!(r.code, 125);

    // A stopped container: through its layers.
    a.ok(&["stop", "-t", "1", "web"]);
    a.ok(&["cp", src.join("inner/x").to_str().unwrap(), "web:/stopped-copy"]);
    let back = host.join("back");
    a.ok(&["cp", "web:/stopped-copy", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "payload");
    a.ok(&["rm", "-f", "web"]);
    a.assert_no_leftovers();
}

#[test]
fn diff_and_export() {
    if !privileged("diff") {
        return;
    }
    let a = Agent::start("clidiff");
    a.ok(&[
        "run",
        "--name",
        "ch",
        IMG,
        "sh",
        "-c",
        "echo new > /added && rm /bin/ls && mkdir -p /tmp/d && echo x >> /etc/passwd",
    ]);
    let diff = a.ok(&["diff", "ch"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in ["A /added", "C /bin", "D /bin/ls", "C /etc/passwd", "A /tmp/d"] {
        assert!(lines.contains(&want), "{want} missing in\n{diff}");
    }
    assert!(!diff.contains("/etc/hostname") && !diff.contains("/etc/hosts"), "runtime files are no changes:\n{diff}");
    // Exactly those paths (and /etc, /tmp as parents, as docker lists them when their times changed).
    let extra: Vec<&&str> = lines
        .iter()
        .filter(|l| {
            !["A /added", "C /bin", "D /bin/ls", "C /etc", "C /etc/passwd", "A /tmp/d", "C /tmp", "A /tmp"].contains(l)
        })
        .collect();
    assert!(extra.is_empty(), "unexpected changes {extra:?} in\n{diff}");

    let d = tempfile::tempdir().expect("tempdir");
    let out = d.path().join("ch.tar");
    a.ok(&["export", "-o", out.to_str().unwrap(), "ch"]);
    let mut ar = tar::Archive::new(std::fs::File::open(&out).unwrap());
    let mut names = std::collections::HashMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut body = String::new();
        if e.header().entry_type().is_file() {
            let _ = std::io::Read::read_to_string(&mut e, &mut body);
        }
        names.insert(name, body);
    }
    assert!(names.contains_key("bin/busybox"), "{:?}", names.keys().take(20).collect::<Vec<_>>());
    assert_eq!(names.get("added").map(String::as_str), Some("new\n"));
    assert!(!names.contains_key("bin/ls"), "a deleted file is not exported");
    // To stdout as well; an unknown container leaves no file.
    let o = a.cmd().args(["export", "ch"]).output().expect("export");
    assert!(o.status.success() && o.stdout.len() > 1024);
    let bad = d.path().join("bad.tar");
    let r = a.ctl(&["export", "-o", bad.to_str().unwrap(), "nosuch"]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);
    assert!(std::fs::read_dir(d.path()).unwrap().count() == 1, "nothing left behind");
    // A running container exports its root filesystem too (its writable layer as it is now).
    a.ok(&["run", "-d", "--name", "live", IMG, "sh", "-c", "echo now > /live && sleep 300"]);
    assert!(e2e::eventually(10, || a.ctl(&["exec", "live", "test", "-e", "/live"]).code == 0));
    let o = a.cmd().args(["export", "live"]).output().expect("export");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut ar = tar::Archive::new(&o.stdout[..]);
    let names: Vec<String> = ar.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert!(names.iter().any(|n| n == "live") && names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("proc/") && n.len() > 5), "no /proc contents: {names:?}");
    a.ok(&["rm", "-f", "live"]);
    let r = a.ctl(&["diff", "nosuch"]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);
    a.ok(&["rm", "ch"]);
    a.assert_no_leftovers();
}

#[test]
fn top_shows_the_containers_processes() {
    if !privileged("top") {
        return;
    }
    let a = Agent::start("clitop");
    a.ok(&["run", "-d", "--name", "sl", IMG, "sleep", "4321"]);
    a.ok(&["run", "-d", "--name", "other", IMG, "sleep", "9876"]);
    let out = a.ok(&["top", "sl"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or("");
    assert!(header.starts_with("UID") && header.contains("PID") && header.contains("CMD"), "{out}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].contains("sleep 4321"), "{out}");
    let pid = a.inspect("sl")["State"]["Pid"].to_string();
    assert!(rows[0].split_whitespace().any(|f| f == pid), "{out}");
    // ps options pass through.
    let out = a.ok(&["top", "sl", "-o", "pid,comm"]);
    assert_eq!(out.lines().next().map(|l| l.split_whitespace().collect::<Vec<_>>()), Some(vec!["PID", "COMMAND"]));
    assert!(out.contains(&pid) && !out.contains("9876"), "{out}");
    let r = a.ctl(&["top", "sl", "-o", "ppid=PID"]);
    assert!(r.code == 1 && r.stderr.contains("not allowed"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["top", "nosuch"]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);
    a.ok(&["rm", "-f", "sl", "other"]);
    a.assert_no_leftovers();
}

#[test]
fn attach_detach_keys_and_sig_proxy() {
    if !privileged("attach") {
        return;
    }
    let a = Agent::start("cliattach");
    a.ok(&["run", "-d", "-i", "--name", "echo", IMG, "sh", "-c", "while read l; do echo got:$l; done; echo eof"]);
    // A line, then docker's default detach keys: agentctl leaves (0), the container runs on.
    let r = a.ctl_stdin(&["attach", "echo"], b"hello\n\x10\x11");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(e2e::eventually(10, || a.ok(&["logs", "echo"]).contains("got:hello")));
    // Its stdin stayed open: a second client's line (custom keys) reaches it too.
    let r = a.ctl_stdin(&["attach", "--detach-keys", "ctrl-x,x", "echo"], b"again\n\x18x");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(e2e::eventually(10, || a.ok(&["logs", "echo"]).contains("got:again")));
    assert_eq!(a.inspect("echo")["State"]["Status"], "running");
    assert!(!a.ok(&["logs", "echo"]).contains("eof"), "stdin was closed by a detach");
    let r = a.ctl_stdin(&["attach", "--detach-keys", "ctrl-", "echo"], b"");
    assert!(r.code == 1 && r.stderr.contains("Invalid detach keys (ctrl-)"), "{} {}", r.code, r.stderr);
    a.ok(&["pause", "echo"]);
    let r = a.ctl_stdin(&["attach", "echo"], b"");
    assert!(r.code == 1 && r.stderr.contains("paused"), "{} {}", r.code, r.stderr);
    a.ok(&["unpause", "echo"]);
    // The end of our input leaves its stdin open (docker closes it only for StdinOnce): attach
    // stays until the container ends and returns its exit code.
    let mut child = a
        .cmd()
        .args(["attach", "echo"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("attach");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"last\n").expect("write");
    assert!(e2e::eventually(10, || a.ok(&["logs", "echo"]).contains("got:last")));
    assert!(!a.ok(&["logs", "echo"]).contains("eof"), "our end of input closed its stdin");
    a.ok(&["kill", "echo"]);
    let out = child.wait_with_output().expect("attach");
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stdout));
    let r = a.ctl(&["attach", "echo"]);
    assert!(r.code == 1 && r.stderr.contains("start it first"), "{} {}", r.code, r.stderr);
    let r = a.ctl(&["attach", "nosuch"]);
    assert!(r.code == 1 && r.stderr.contains("nosuch"), "{} {}", r.code, r.stderr);

    // --sig-proxy (default): a SIGTERM to agentctl reaches the container, whose code it returns.
    let trap = "trap 'echo caught; exit 7' TERM; while :; do sleep 0.1; done";
    a.ok(&["run", "-d", "--name", "trap", IMG, "sh", "-c", trap]);
    let attached = |extra: &[&str]| {
        let mut args = vec!["attach"];
        args.extend_from_slice(extra);
        args.push("trap");
        let child = a.cmd().args(&args).stdout(std::process::Stdio::piped()).spawn().expect("attach");
        // Until it has its signal handlers and the stream (no observable sign from outside).
        std::thread::sleep(Duration::from_millis(1500));
        child
    };
    let child = attached(&[]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().expect("attach");
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("caught"));
    // --sig-proxy=false: the signal is agentctl's own; the container runs on.
    a.ok(&["start", "trap"]);
    let mut child = attached(&["--sig-proxy=false"]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().expect("attach");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGTERM));
    assert_eq!(a.inspect("trap")["State"]["Status"], "running");
    a.ok(&["rm", "-f", "echo", "trap"]);
    a.ok(&["ps", "-aq"]);
    a.assert_no_leftovers();
}

#[test]
fn run_attach_streams_detach_keys_and_sig_proxy() {
    if !privileged("run -a") {
        return;
    }
    let a = Agent::start("clirunattach");
    let both = "echo to-out; echo to-err >&2";
    // -a picks the streams shown; the others are still logged.
    let r = a.ctl(&["run", "--name", "out", "-a", "stdout", IMG, "sh", "-c", both]);
    assert_eq!((r.code, r.stdout.trim(), r.stderr.trim()), (0, "to-out", ""), "{}", r.stderr);
    assert!(a.ctl(&["logs", "out"]).stderr.contains("to-err"));
    let r = a.ctl(&["run", "--rm", "-a", "STDERR", IMG, "sh", "-c", both]);
    assert_eq!((r.code, r.stdout.trim(), r.stderr.trim()), (0, "", "to-err"));
    // Bad values and conflicts are refused (125) before anything is created.
    let r = a.ctl(&["run", "-a", "stdmiddle", IMG, "true"]);
    assert!(
        r.code == 125 && r.stderr.contains("\"stdmiddle\"") && r.stderr.contains("STDIN, STDOUT and STDERR"),
        "{r:?}"
    );
    let r = a.ctl(&["run", "-d", "-a", "stdout", IMG, "true"]);
    assert!(r.code == 125 && r.stderr.contains("Conflicting options: -a and -d"), "{r:?}");
    let r = a.ctl(&["run", "--detach-keys", "ctrl-pp", IMG, "true"]);
    assert!(r.code == 125 && r.stderr.contains("Invalid detach keys (ctrl-pp)"), "{r:?}");
    assert_eq!(a.ok(&["ps", "-aq"]).lines().count(), 1, "only out was created");

    // With -it the detach keys leave the container running; our input before them reached it.
    let r = a.ctl_stdin(
        &[
            "run",
            "-it",
            "--name",
            "shell",
            "--detach-keys",
            "ctrl-x,x",
            IMG,
            "sh",
            "-c",
            "read l; echo got:$l; sleep 600",
        ],
        b"hello\n\x18x",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(e2e::eventually(10, || a.ok(&["logs", "shell"]).contains("got:hello")));
    assert_eq!(a.inspect("shell")["State"]["Status"], "running");

    // --sig-proxy (default): a SIGTERM to `agentctl run` reaches the container, whose code it returns.
    let trap = "trap 'echo caught; exit 7' TERM; echo ready; while :; do sleep 0.1; done";
    let running = |extra: &[&str], name: &str| {
        let mut args = vec!["run", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMG, "sh", "-c", trap]);
        let child = a.cmd().args(&args).stdout(std::process::Stdio::piped()).spawn().expect("run");
        assert!(e2e::eventually(10, || a.ctl(&["logs", name]).stdout.contains("ready")));
        // Until it has its signal handlers (no observable sign from outside).
        std::thread::sleep(Duration::from_millis(500));
        child
    };
    let child = running(&[], "trap");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().expect("run");
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("caught"));
    // --sig-proxy=false: the signal is agentctl's own; the container runs on.
    let mut child = running(&["--sig-proxy=false"], "trap2");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let st = child.wait().expect("run");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(libc::SIGTERM));
    assert_eq!(a.inspect("trap2")["State"]["Status"], "running");
    a.ok(&["rm", "-f", "out", "shell", "trap", "trap2"]);
    a.assert_no_leftovers();
}
