//! Log drivers and rotation through agentctl: `--log-driver json-file|local|none`,
//! `--log-opt max-size=,max-file=,compress=`, agentd's `[logs]` defaults, `logs` across
//! rotated files (`--tail`, `-f`), `logs --details`, and bad values refused.

use e2e::{privileged, Agent};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

const IMG: &str = "local/busybox:latest";

/// The container's log files (name, size), sorted.
fn log_files(a: &Agent, name: &str) -> Vec<(String, u64)> {
    let id = a.inspect(name)["Id"].as_str().expect("id").to_string();
    let dir: PathBuf = a.root().join("containers").join(id);
    let mut v: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .expect("container dir")
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .filter(|(n, _)| n == "log" || n.starts_with("log.") || n == "attach")
        .collect();
    v.sort();
    v
}

/// A shell loop printing `PREFIX-0` … `PREFIX-(n-1)`, a pause every `every` lines.
fn printer(prefix: &str, n: u32, every: u32, pause: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo {prefix}-$i; i=$((i+1)); [ $((i % {every})) -eq 0 ] && sleep {pause}; done; true")
}

fn numbers(out: &str, prefix: &str) -> Vec<u32> {
    out.lines()
        .map(|l| {
            l.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("line {l:?}"))
        })
        .collect()
}

#[test]
fn rotation_keeps_max_file_files_and_logs_reads_across_them() {
    if !privileged("log rotation") {
        return;
    }
    let a = Agent::start("logrot");
    // 500 lines of ~10 bytes (23 framed): ~11.5 kB, much more than 3 files of 2 kB.
    let sh = printer("line", 500, 1000, "0");
    a.ok(&["run", "--name", "big", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", IMG, "sh", "-c", &sh]);
    let files = log_files(&a, "big");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["log", "log.1", "log.2"], "{files:?}");
    // json-file reads sizes in decimal units, like docker: 2k = 2000 bytes.
    assert!(files.iter().all(|(_, len)| *len <= 2000), "{files:?}");
    let all = numbers(&a.ok(&["logs", "big"]), "line");
    let first = all[0];
    assert!(first > 0, "the oldest lines were rotated away");
    assert_eq!(all, (first..500).collect::<Vec<_>>(), "the newest lines, in order, across the files");
    assert!(all.len() > 180, "three files' worth: {}", all.len());
    // --tail spans files (a file holds ~85 lines).
    assert_eq!(numbers(&a.ok(&["logs", "--tail", "150", "big"]), "line"), (350..500).collect::<Vec<_>>());
    assert_eq!(numbers(&a.ok(&["logs", "-n", "2", "big"]), "line"), [498, 499]);
    let cfg = a.inspect("big")["HostConfig"]["LogConfig"].clone();
    assert_eq!(cfg["Type"], "json-file", "{cfg}");
    assert_eq!(cfg["Config"]["max-size"], "2k", "{cfg}");

    // --since/--until still cut by time across files.
    let stamped = a.ok(&["logs", "-t", "big"]);
    let mid = stamped.lines().nth(all.len() / 2).and_then(|l| l.split(' ').next()).expect("a timestamp").to_string();
    let since = numbers(&a.ok(&["logs", "--since", &mid, "big"]), "line");
    let until = numbers(&a.ok(&["logs", "--until", &mid, "big"]), "line");
    assert_eq!(*since.last().unwrap(), 499);
    assert_eq!(until[0], first);
    assert!(since.len() + until.len() >= all.len(), "{} + {} of {}", since.len(), until.len(), all.len());

    // local + compress: the rotated files gzipped, read in order; local's sizes are binary.
    a.ok(&[
        "run",
        "--name",
        "gz",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        IMG,
        "sh",
        "-c",
        &sh,
    ]);
    let files = log_files(&a, "gz");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["log", "log.1.gz", "log.2.gz"], "{files:?}");
    assert!(files[0].1 <= 1024, "{files:?}");
    let all = numbers(&a.ok(&["logs", "gz"]), "line");
    assert_eq!(all, (all[0]..500).collect::<Vec<_>>());
    a.ok(&["rm", "big", "gz"]);
    a.assert_no_leftovers();
}

#[test]
fn a_follower_sees_every_line_once_across_rotations() {
    if !privileged("log follow rotation") {
        return;
    }
    let a = Agent::start("logfollow");
    // ~45 lines per 1 kB file, 600 lines: a dozen rotations while it is followed.
    let sh = format!("sleep 1; {}", printer("f", 600, 20, "0.05"));
    a.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        IMG,
        "sh",
        "-c",
        &sh,
    ]);
    let mut child = a.cmd().args(["logs", "-f", "chatty"]).stdout(Stdio::piped()).spawn().expect("logs -f");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
    let status = child.wait().expect("logs -f ends with the container");
    assert!(status.success());
    let got = numbers(&lines.join("\n"), "f");
    assert_eq!(got, (0..600).collect::<Vec<_>>(), "every line once, in order");
    assert!(log_files(&a, "chatty").len() <= 2);
    a.ok(&["rm", "chatty"]);
    a.assert_no_leftovers();
}

#[test]
fn driver_none_keeps_no_log_and_details_and_defaults() {
    if !privileged("log driver none") {
        return;
    }
    let a = Agent::start_with_config("lognone", "[logs]\nmax_size = \"1k\"\nmax_file = 2\n");
    // An attached run still shows the output (as docker's), but nothing is kept to read.
    assert_eq!(a.ok(&["run", "--name", "quiet", "--log-driver", "none", IMG, "echo", "hi"]), "hi");
    let files = log_files(&a, "quiet");
    assert!(files.iter().all(|(n, _)| !n.starts_with("log")), "{files:?}");
    let r = a.ctl(&["logs", "quiet"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("configured logging driver does not support reading"), "{}", r.stderr);

    // [logs] defaults apply to a container that gives no limits.
    let sh = printer("d", 300, 1000, "0");
    a.ok(&["run", "--name", "dflt", IMG, "sh", "-c", &sh]);
    let files = log_files(&a, "dflt");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|(_, len)| *len <= 1000), "{files:?}");
    assert_eq!(a.inspect("dflt")["HostConfig"]["LogConfig"]["Config"]["max-file"], "2");

    // --details: the attributes docker prints before each line (none: a lone space).
    a.ok(&[
        "run",
        "--name",
        "det",
        "-l",
        "team=core x",
        "-e",
        "E=v",
        "--log-opt",
        "labels=team,absent",
        "--log-opt",
        "env=E",
        IMG,
        "echo",
        "hi",
    ]);
    assert_eq!(a.ctl(&["logs", "--details", "det"]).stdout, "E=v,team=core+x hi\n");
    assert_eq!(a.ctl(&["logs", "--details", "dflt", "--tail", "1"]).stdout, " d-299\n");
    a.ok(&["rm", "quiet", "dflt", "det"]);
    a.assert_no_leftovers();
}

#[test]
fn bad_log_options_are_refused_naming_the_value() {
    if !privileged("bad log options") {
        return;
    }
    let a = Agent::start("logbad");
    for (args, want) in [
        (vec!["--log-opt", "max-size=abc"], "abc"),
        (vec!["--log-opt", "max-size=1k", "--log-opt", "max-file=0"], "max-file=0"),
        (vec!["--log-driver", "syslog"], "syslog"),
        (vec!["--log-driver", "none", "--log-opt", "max-size=1k"], "max-size"),
        (vec!["--log-opt", "mode=fast"], "mode"),
        (vec!["--log-opt", "novalue"], "novalue"),
    ] {
        for verb in ["run", "create"] {
            let mut cmd = vec![verb, "--name", "nope"];
            cmd.extend(&args);
            cmd.extend([IMG, "true"]);
            let r = a.ctl(&cmd);
            assert_eq!(r.code, 125, "{cmd:?}: {}", r.stderr);
            assert!(r.stderr.contains(want), "{cmd:?}: {}", r.stderr);
        }
    }
    assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing was created");
    a.assert_no_leftovers();
}
