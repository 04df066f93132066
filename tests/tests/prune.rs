//! `container prune`, `network prune`, `image prune`, `system prune` through agentctl: what goes (stopped
//! containers, unused networks, with --volumes unused volumes), what stays (running
//! containers, networks in use, the default bridge), docker's filters and output.

use e2e::{privileged, Agent};

const IMG: &str = "local/busybox:latest";

fn names(a: &Agent, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = a.ok(args).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

#[test]
fn prune_removes_the_unused_and_keeps_what_is_in_use() {
    if !privileged("prune") {
        return;
    }
    let a = Agent::start("pruner");
    let b = (std::process::id() % 200) as u8 + 20;
    let (s1, s2, s3) = (format!("10.236.{b}.0/24"), format!("10.237.{b}.0/24"), format!("10.238.{b}.0/24"));
    a.ok(&["network", "create", "used", "--subnet", &s1]);
    a.ok(&["network", "create", "idle", "--subnet", &s2]);
    a.ok(&["network", "create", "temp", "--subnet", &s3, "-l", "temp=1"]);
    a.ok(&["run", "-d", "--name", "up", IMG, "sleep", "300"]);
    a.ok(&["run", "-d", "--name", "onnet", "--network", "used", IMG, "sleep", "300"]);
    let fresh = a.ok(&["create", "--name", "fresh", IMG, "true"]);
    a.ok(&["run", "--name", "done", IMG, "true"]);
    let done = a.inspect("done")["Id"].as_str().unwrap().to_string();
    a.ok(&["run", "--name", "keep", "-l", "keep=1", IMG, "true"]);

    // Without -f it asks; no "y" on stdin: nothing goes.
    let r = a.ctl(&["container", "prune"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("WARNING! This will remove all stopped containers."), "{}", r.stderr);
    assert_eq!(names(&a, &["ps", "-aq"]).len(), 5);

    // until= keeps what is younger; nothing is that old.
    let out = a.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out, "Total reclaimed space: 0B");
    let out = a.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    let mut want = vec![fresh.clone(), done.clone()];
    want.sort();
    let (head, rest) = out.split_once('\n').expect("lines");
    assert_eq!(head, "Deleted Containers:", "{out}");
    let mut got: Vec<String> = rest.lines().take_while(|l| !l.is_empty()).map(String::from).collect();
    got.sort();
    assert_eq!(got, want, "{out}");
    assert!(out.lines().last().unwrap().starts_with("Total reclaimed space: "), "{out}");
    let left = names(&a, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left, ["keep", "onnet", "up"], "running containers and the filtered-out one stay");
    // A bad filter is refused before anything goes.
    let r = a.ctl(&["container", "prune", "-f", "--filter", "color=red"]);
    assert!(r.code == 1 && r.stderr.contains("color=red"), "{}", r.stderr);

    let out = a.ok(&["network", "prune", "-f", "--filter", "label=temp"]);
    assert_eq!(out, "Deleted Networks:\ntemp");
    let out = a.ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\nidle");
    let nets = names(&a, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(nets.contains(&"bridge".to_string()) && nets.contains(&"used".to_string()), "{nets:?}");
    assert!(!nets.contains(&"idle".to_string()), "{nets:?}");

    // system prune: stopped containers and unused networks; volumes only with --volumes.
    a.ok(&["network", "create", "idle3", "--subnet", &s2]);
    a.ok(&["volume", "create", "vol1"]);
    let out = a.ok(&["system", "prune", "-f"]);
    let keep = a.ctl(&["inspect", "keep"]);
    assert_ne!(keep.code, 0, "keep was pruned: {out}");
    assert!(out.contains("Deleted Containers:\n") && out.contains("Deleted Networks:\nidle3\n"), "{out}");
    assert!(!out.contains("Deleted Volumes:"), "{out}");
    assert!(out.lines().last().unwrap().starts_with("Total reclaimed space: "), "{out}");
    assert_eq!(names(&a, &["volume", "ls", "-q"]), ["vol1"]);
    let out = a.ok(&["system", "prune", "-f", "-a", "--volumes"]);
    assert!(out.contains("Deleted Volumes:\nvol1\n"), "{out}");
    assert!(names(&a, &["volume", "ls", "-q"]).is_empty());
    // The image the running containers use stays, and so do they.
    assert!(a.ok(&["images"]).contains("local/busybox"));
    assert_eq!(names(&a, &["ps", "--format", "{{.Names}}"]), ["onnet", "up"]);
    let out = a.ok(&["system", "prune", "-f", "-a", "--filter", "label=x"]);
    assert!(out.lines().last().unwrap().starts_with("Total reclaimed space: "), "{out}");

    a.ok(&["rm", "-f", "up", "onnet"]);
    a.ok(&["network", "rm", "used"]);
    a.assert_no_leftovers();
}

#[test]
fn image_prune_filters_by_label_and_age() {
    if !privileged("image prune") {
        return;
    }
    let a = Agent::start("imgpruner");
    let ctx = tempfile::tempdir().expect("tempdir");
    let build = |tag: &str, label: &str| {
        std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {IMG}\nLABEL {label}\nRUN echo {tag} > /t\n"))
            .expect("Dockerfile");
        let r = a.ctl(&["build", "-t", tag, ctx.path().to_str().expect("path")]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    };
    let tags = |a: &Agent| names(a, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    build("local/tmp:1", "tier=tmp");
    build("local/keep:1", "tier=keep");
    // Without -f it asks; no "y" on stdin: nothing goes.
    let r = a.ctl(&["image", "prune", "-a"]);
    assert!(r.code == 0 && r.stderr.contains("without at least one container"), "{}", r.stderr);
    assert_eq!(tags(&a).len(), 3, "{:?}", tags(&a));
    // Created just now: an age filter of an hour keeps both.
    let out = a.ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("Deleted Images:"), "{out}");
    // A label filter takes only the matching one; busybox (no such label) stays.
    let out = a.ok(&["image", "prune", "-a", "-f", "--filter", "label=tier=tmp"]);
    assert!(out.contains("Deleted Images:\ndeleted: sha256:"), "{out}");
    assert_eq!(tags(&a), ["local/busybox:latest", "local/keep:1"]);
    // label!= spares what carries the label; a container's image always stays.
    a.ok(&["create", "--name", "user", IMG, "true"]);
    let out = a.ok(&["image", "prune", "-a", "-f", "--filter", "label!=tier=keep"]);
    assert!(!out.contains("Deleted Images:"), "{out}");
    assert_eq!(tags(&a), ["local/busybox:latest", "local/keep:1"]);
    let r = a.ctl(&["image", "prune", "-f", "--filter", "colour=red"]);
    assert!(r.code == 1 && r.stderr.contains("colour=red"), "{}", r.stderr);
    a.ok(&["image", "prune", "-a", "-f"]);
    assert_eq!(tags(&a), ["local/busybox:latest"]);
    a.ok(&["rm", "user"]);
    a.assert_no_leftovers();
}
