//! Docker's hardening flags that users rely on: capabilities, bind mounts, read-only root,
//! tmpfs. Each assertion checks the effect inside the container.

use e2e::{privileged, Agent};

const IMG: &str = "local/busybox:latest";

#[test]
fn capabilities_add_and_drop() {
    if !privileged("capabilities") {
        return;
    }
    let a = Agent::start("caps");
    let eff = |args: &[&str]| {
        let mut v = vec!["run", "--rm"];
        v.extend_from_slice(args);
        v.extend_from_slice(&[IMG, "sh", "-c", "grep CapEff /proc/self/status"]);
        a.ok(&v)
    };
    assert!(eff(&["--cap-drop", "ALL"]).ends_with("0000000000000000"));
    assert!(eff(&["--cap-add", "NET_ADMIN"]).ends_with("00000000a80435fb"), "NET_ADMIN is bit 12");
    assert!(eff(&["--cap-drop", "chown"]).ends_with("00000000a80425fa"), "CHOWN is bit 0");
    let r = a.ctl(&["run", "--rm", "--cap-drop", "ALL", IMG, "sh", "-c", "touch /f && chown 1 /f"]);
    assert_ne!(r.code, 0, "chown must fail without CAP_CHOWN");
    let r = a.ctl(&["run", "--rm", "--cap-add", "BOGUS", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("unknown capability \"BOGUS\""), "{}", r.stderr);
    // exec gets the container's capabilities, not more.
    a.ok(&["run", "-d", "--name", "nocaps", "--cap-drop", "ALL", IMG, "sleep", "100"]);
    assert!(a.ok(&["exec", "nocaps", "grep", "CapEff", "/proc/self/status"]).ends_with("0000000000000000"));
}

#[test]
fn volumes_read_only_root_and_tmpfs() {
    if !privileged("volumes") {
        return;
    }
    let a = Agent::start("vols");
    let host = a.dir.path().join("shared");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("in"), "from-host\n").unwrap();
    let rw = format!("{}:/data", host.display());
    assert_eq!(
        a.ok(&["run", "--rm", "-v", &rw, IMG, "sh", "-c", "cat /data/in; echo from-ctr > /data/out"]),
        "from-host"
    );
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap(), "from-ctr\n", "writes reach the host");
    let ro = format!("{}:/data:ro", host.display());
    let r = a.ctl(&["run", "--rm", "-v", &ro, IMG, "sh", "-c", "echo x > /data/nope"]);
    assert_ne!(r.code, 0);
    assert!(!host.join("nope").exists());
    for (bad, why) in [
        ("relative:/data", "absolute"),
        ("/no/such/dir/here:/data", "does not exist"),
        (&format!("{}:/../etc", host.display())[..], "without '..'"),
        (&format!("{}:/data:rx", host.display())[..], "not ro or rw"),
    ] {
        let r = a.ctl(&["run", "--rm", "-v", bad, IMG, "true"]);
        assert_eq!(r.code, 125, "{bad}");
        assert!(r.stderr.contains(why) && r.stderr.contains(bad), "{bad}: {}", r.stderr);
    }
    // --read-only: the root refuses writes; a tmpfs on top accepts them.
    let r = a.ctl(&["run", "--rm", "--read-only", IMG, "touch", "/x"]);
    assert_ne!(r.code, 0, "the root is read-only");
    assert!(r.stderr.contains("Read-only file system"), "{}", r.stderr);
    let out = a.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch:size=1m",
        IMG,
        "sh",
        "-c",
        "touch /scratch/y && grep ' /scratch ' /proc/mounts",
    ]);
    assert!(out.contains("tmpfs") && out.contains("size=1024k"), "{out}");
    a.assert_no_leftovers();
}

#[test]
fn default_seccomp_profile() {
    if !privileged("seccomp") {
        return;
    }
    let a = Agent::start("seccomp");
    // A user namespace needs no capability; Docker's profile (and ours) refuses it.
    let r = a.ctl(&["run", "--rm", IMG, "unshare", "-U", "true"]);
    assert_ne!(r.code, 0, "unshare -U must be refused");
    assert!(r.stderr.contains("Operation not permitted"), "{}", r.stderr);
    let out = a.ok(&["run", "--rm", IMG, "grep", "Seccomp:", "/proc/self/status"]);
    assert!(out.ends_with('2'), "filter mode: {out}");
    // Threads and forks still work (clone without namespace flags).
    assert_eq!(a.ok(&["run", "--rm", IMG, "sh", "-c", "(echo forked) | cat"]), "forked");
    // exec gets the same filter.
    a.ok(&["run", "-d", "--name", "sc", IMG, "sleep", "100"]);
    assert!(a.ok(&["exec", "sc", "grep", "Seccomp:", "/proc/self/status"]).ends_with('2'));
    // seccomp=unconfined lifts it.
    let out =
        a.ok(&["run", "--rm", "--security-opt", "seccomp=unconfined", IMG, "grep", "Seccomp:", "/proc/self/status"]);
    assert!(out.ends_with('0'), "{out}");
    let r = a.ctl(&["run", "--rm", "--security-opt", "seccomp=/tmp/profile.json", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("custom seccomp profiles are not supported yet"), "{}", r.stderr);
}
