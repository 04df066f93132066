//! `--userns`: a container's root is an unprivileged host ID from a subordinate range.
//! Each test writes its own subuid/subgid files (the host's /etc/subuid is never touched)
//! with a range no other test uses.

use e2e::{privileged, Agent};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const IMG: &str = "local/busybox:latest";

/// An agent whose `[userns]` points at subuid/subgid files giving `slots` slots of 65536
/// IDs from `base`, plus `extra` config lines for `[userns]`.
fn agent(test: &str, base: u32, slots: u32, extra: &str) -> (Agent, tempfile::TempDir) {
    let ids = tempfile::tempdir().unwrap();
    let line = format!("agentd-e2e:{base}:{}\n", slots * 65536);
    std::fs::write(ids.path().join("subuid"), &line).unwrap();
    std::fs::write(ids.path().join("subgid"), &line).unwrap();
    let cfg = format!(
        "[userns]\nuser = \"agentd-e2e\"\nsubuid = \"{}\"\nsubgid = \"{}\"\n{extra}\n",
        ids.path().join("subuid").display(),
        ids.path().join("subgid").display()
    );
    (Agent::start_with_config(test, &cfg), ids)
}

fn host_uid_of(pid: &str) -> u32 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn upper(a: &Agent, name: &str) -> std::path::PathBuf {
    let id = a.inspect(name)["Id"].as_str().unwrap().to_string();
    a.root().join("containers").join(id).join("upper")
}

#[test]
fn remap_makes_root_an_unprivileged_host_id() {
    if !privileged("userns remap") {
        return;
    }
    let base = 3_100_000;
    let (a, _ids) = agent("usernsremap", base, 3, "");
    a.ok(&["run", "-d", "--name", "rr", "--userns", "remap", IMG, "sleep", "300"]);
    let info = a.inspect("rr");
    assert_eq!(info["IDMappings"]["UidMap"][0], format!("0:{base}:65536"), "{info}");
    let pid = info["State"]["Pid"].to_string();
    // The kernel's view from the host: the container's root is uid `base`.
    assert_eq!(host_uid_of(&pid), base);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap().split_whitespace().collect::<Vec<_>>(),
        ["0", &base.to_string(), "65536"]
    );
    // Inside, it is root, and the image's files are root's (idmapped layers or a shifted copy).
    assert_eq!(a.ok(&["exec", "rr", "id", "-u"]), "0");
    assert_eq!(a.ok(&["exec", "rr", "stat", "-c", "%u:%g", "/bin/busybox"]), "0:0");
    assert_eq!(a.ok(&["exec", "rr", "stat", "-c", "%u", "/"]), "0");
    // This kernel idmaps the layers: no shifted copy was made.
    assert!(!a.root().join("layers-shifted").exists(), "{}", a.log());
    // What it writes belongs to its host IDs.
    a.ok(&["exec", "rr", "sh", "-c", "echo x > /made && touch /by1000 && chown 1000:1000 /by1000"]);
    let up = upper(&a, "rr");
    assert_eq!(std::fs::metadata(up.join("made")).unwrap().uid(), base);
    let m = std::fs::metadata(up.join("by1000")).unwrap();
    assert_eq!((m.uid(), m.gid()), (base + 1000, base + 1000));
    // Its /etc files are its own (writable by its root, as in docker's userns-remap).
    a.ok(&["exec", "rr", "sh", "-c", "echo '10.9.9.9 extra' >> /etc/hosts"]);
    // Namespaced privileges still work: hostname, loopback, a sysctl of its own netns.
    assert_eq!(
        a.ok(&[
            "run",
            "--rm",
            "--userns",
            "remap",
            "--hostname",
            "inner",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            IMG,
            "sh",
            "-c",
            "hostname; cat /proc/sys/net/ipv4/ip_forward; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo"
        ]),
        "inner\n1\nlo"
    );
    // --read-only and --tmpfs hold in the user namespace too; host-level writes stay denied.
    assert_eq!(
        a.ok(&["run", "--rm", "--userns", "remap", "--read-only", "--tmpfs", "/scratch", IMG, "sh", "-c", "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmp; echo h > /proc/sysrq-trigger 2>/dev/null || echo sysrq; hostname other 2>/dev/null || echo nohost"]),
        "ro\ntmp\nsysrq\nnohost"
    );
    // A tty works (devpts of its own).
    assert!(a.ok(&["run", "--rm", "-t", "--userns", "remap", IMG, "tty"]).starts_with("/dev/pts/"));
    // commit shifts the owners back: the image records the IDs the container saw.
    a.ok(&["commit", "rr", "local/shifted:1"]);
    assert_eq!(
        a.ok(&["run", "--rm", "--userns", "host", "local/shifted:1", "stat", "-c", "%u:%g", "/by1000", "/made"]),
        "1000:1000\n0:0"
    );
    a.ok(&["rm", "-f", "rr"]);
    a.ok(&["rmi", "local/shifted:1"]);
    assert!(!a.root().join("tmp/idmap-probe").exists(), "the probe cleans up");
    a.assert_no_leftovers();
}

#[test]
fn host_root_files_stay_out_of_reach() {
    if !privileged("userns host files") {
        return;
    }
    let (a, _ids) = agent("usernsfiles", 3_400_000, 1, "");
    let host = a.dir.path().join("vol");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(host.join("secret"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::write(host.join("file"), "plain\n").unwrap();
    let v = format!("{}:/data", host.display());
    let f = format!("{}:/one:ro", host.join("file").display());
    // The agent's own dirs are 0700 here: the volumes still get in (detached copies
    // made by the shim), but the host's root-only file does not open for container root.
    let r = a.ctl(&[
        "run",
        "--rm",
        "--userns",
        "remap",
        "-v",
        &v,
        "-v",
        &f,
        IMG,
        "sh",
        "-c",
        "cat /one; stat -c %u /data/secret; cat /data/secret",
    ]);
    assert_ne!(r.code, 0, "container root must not read the host root's 0600 file: {}", r.stdout);
    assert!(r.stdout.starts_with("plain\n65534\n"), "{}|{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // Without --userns the same container root reads it: the check above is the userns'.
    assert_eq!(a.ok(&["run", "--rm", "-v", &v, IMG, "cat", "/data/secret"]), "s3cret");
    // Nor can it write through a read-only volume.
    let r = a.ctl(&["run", "--rm", "--userns", "remap", "-v", &f, IMG, "sh", "-c", "echo no > /one"]);
    assert_ne!(r.code, 0);
    assert_eq!(std::fs::read_to_string(host.join("file")).unwrap(), "plain\n");
    // A --device is bound from the host's node and opens (the device cgroup allows 1:3).
    assert_eq!(
        a.ok(&[
            "run",
            "--rm",
            "--userns",
            "remap",
            "--device",
            "/dev/null:/dev/xnull",
            IMG,
            "sh",
            "-c",
            "echo hi > /dev/xnull && echo ok"
        ]),
        "ok"
    );
    // The host network (sysfs bound from the host) and a shared network namespace work.
    assert!(a
        .ok(&["run", "--rm", "--userns", "remap", "--network", "host", IMG, "ls", "/sys/class/net"])
        .contains("lo"));
    a.ok(&["run", "-d", "--name", "netowner", IMG, "sleep", "300"]);
    assert!(a
        .ok(&["run", "--rm", "--userns", "remap", "--network", "container:netowner", IMG, "ip", "-o", "link"])
        .contains("eth0"));
    a.ok(&["rm", "-f", "netowner"]);
    a.assert_no_leftovers();
}

#[test]
fn image_device_nodes_are_inert_under_userns() {
    if !privileged("userns device nodes") {
        return;
    }
    let (a, _ids) = agent("usernsdev", 3_500_000, 1, "");
    // An image carrying a device node (made here by a container with CAP_MKNOD; the device
    // cgroup allows 1:5, so only the userns' nodev mount stands in the way below).
    a.ok(&["run", "--name", "mk", IMG, "mknod", "/zero", "c", "1", "5"]);
    a.ok(&["commit", "mk", "local/withdev:1"]);
    a.ok(&["rm", "mk"]);
    assert_eq!(a.ok(&["run", "--rm", "local/withdev:1", "sh", "-c", "head -c 3 /zero | wc -c"]), "3");
    let r = a.ctl(&["run", "--rm", "--userns", "remap", "local/withdev:1", "sh", "-c", "head -c 3 /zero"]);
    assert_ne!(r.code, 0, "a device node from an image must not open under --userns: {}", a.log());
    assert!(r.stderr.contains("Permission denied"), "code {} stdout {:?} stderr {:?}", r.code, r.stdout, r.stderr);
    // Nor can the container make one.
    let r = a.ctl(&["run", "--rm", "--userns", "remap", IMG, "mknod", "/z2", "c", "1", "5"]);
    assert_ne!(r.code, 0);
    a.ok(&["rmi", "local/withdev:1"]);
    a.assert_no_leftovers();
}

#[test]
fn auto_gives_each_container_its_own_range() {
    if !privileged("userns auto") {
        return;
    }
    let base = 3_200_000;
    let (a, _ids) = agent("usernsauto", base, 3, "");
    a.ok(&["run", "-d", "--name", "a1", "--userns", "auto", IMG, "sleep", "300"]);
    a.ok(&["run", "-d", "--name", "a2", "--userns", "auto", IMG, "sleep", "300"]);
    let u1 = host_uid_of(&a.inspect("a1")["State"]["Pid"].to_string());
    let u2 = host_uid_of(&a.inspect("a2")["State"]["Pid"].to_string());
    assert_eq!((u1, u2), (base + 65536, base + 2 * 65536), "slots 1 and 2 (slot 0 is remap's)");
    // The range holds three slots: a third auto container is refused, naming the range.
    let r = a.ctl(&["run", "--rm", "--userns", "auto", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("no free ID range") && r.stderr.contains("196608 subordinate IDs"), "{}", r.stderr);
    // A freed slot is reused.
    a.ok(&["rm", "-f", "a1"]);
    a.ok(&["run", "-d", "--name", "a3", "--userns", "auto", IMG, "sleep", "300"]);
    assert_eq!(host_uid_of(&a.inspect("a3")["State"]["Pid"].to_string()), base + 65536);
    // Refused combinations and values, with nothing left behind.
    let r = a.ctl(&["run", "--rm", "--userns", "remap", "--privileged", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("--privileged cannot be combined with --userns=remap"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "--userns", "remap", "--pid", "host", IMG, "true"]);
    assert!(r.stderr.contains("cannot be combined with a user namespace"), "{}", r.stderr);
    let r = a.ctl(&["run", "--rm", "--userns", "remap", "--uts", "host", IMG, "true"]);
    assert!(r.stderr.contains("--uts \"host\" cannot be combined with a user namespace"), "{}", r.stderr);
    // agentctl refuses it before calling (clap names the value and the choices).
    let r = a.ctl(&["run", "--rm", "--userns", "sideways", IMG, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("'sideways'") && r.stderr.contains("--userns"), "{}", r.stderr);
    a.ok(&["rm", "-f", "a2", "a3"]);
    a.assert_no_leftovers();
}

#[test]
fn missing_subordinate_ids_are_named() {
    if !privileged("userns no range") {
        return;
    }
    let ids = tempfile::tempdir().unwrap();
    std::fs::write(ids.path().join("subuid"), "someoneelse:100000:65536\n").unwrap();
    let cfg = format!(
        "[userns]\nuser = \"agentd-e2e\"\nsubuid = \"{}\"\nsubgid = \"{}\"\ndefault = \"remap\"\n",
        ids.path().join("subuid").display(),
        ids.path().join("subgid").display()
    );
    let a = Agent::start_with_config("usernsnorange", &cfg);
    // default = remap: a plain run is remapped, and fails clearly without a range.
    let r = a.ctl(&["run", "--rm", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("agentd-e2e") && r.stderr.contains("subuid") && r.stderr.contains("none there"),
        "{}",
        r.stderr
    );
    // --userns=host opts out.
    assert_eq!(a.ok(&["run", "--rm", "--userns", "host", IMG, "id", "-u"]), "0");
    a.assert_no_leftovers();
}

#[test]
fn shifted_copies_when_layers_cannot_be_idmapped() {
    if !privileged("userns copy") {
        return;
    }
    let base = 3_300_000;
    let (a, _ids) = agent("usernscopy", base, 1, "layers = \"copy\"");
    a.ok(&["run", "-d", "--name", "cc", "--userns", "remap", IMG, "sleep", "300"]);
    assert_eq!(a.ok(&["exec", "cc", "stat", "-c", "%u:%g", "/bin/busybox"]), "0:0");
    a.ok(&["exec", "cc", "sh", "-c", "echo hi > /bin/new"]);
    let shifted = a.root().join("layers-shifted");
    let maps: Vec<_> = std::fs::read_dir(&shifted).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(maps.len(), 1, "{maps:?}");
    let layer = std::fs::read_dir(&maps[0]).unwrap().flatten().next().unwrap().path();
    assert_eq!(std::fs::metadata(layer.join("bin/busybox")).unwrap().uid(), base, "the copy is owned by the range");
    assert_eq!(std::fs::metadata(upper(&a, "cc").join("bin/new")).unwrap().uid(), base);
    // A second container of the mapping shares the copy; the last one out removes it.
    a.ok(&["run", "--rm", "--userns", "remap", IMG, "true"]);
    assert!(maps[0].exists());
    a.ok(&["rm", "-f", "cc"]);
    assert!(!maps[0].exists(), "shifted copies go with the last container of their mapping");
    assert!(!Path::new(&layer).exists());
    a.assert_no_leftovers();
}

#[test]
fn default_remap_covers_builds_and_restarts() {
    if !privileged("userns default remap") {
        return;
    }
    let base = 3_600_000;
    let (mut a, _ids) = agent("usernsdefault", base, 1, "default = \"remap\"");
    // A build under the default: RUN is remapped, and the layer records the IDs it saw.
    let ctx = a.dir.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMG}\nRUN id -u > /who && touch /f && chown 1000:1000 /f\n"))
        .unwrap();
    a.ok(&["build", "-t", "local/built:1", ctx.to_str().unwrap()]);
    assert_eq!(
        a.ok(&["run", "--rm", "--userns", "host", "local/built:1", "sh", "-c", "cat /who; stat -c %u:%g /f"]),
        "0\n1000:1000"
    );
    // A remapped container survives an agent crash: exec still enters its user namespace.
    a.ok(&["run", "-d", "--name", "keep", IMG, "sleep", "300"]);
    let pid = a.inspect("keep")["State"]["Pid"].to_string();
    a.crash_and_restart();
    assert_eq!(a.inspect("keep")["State"]["Pid"].to_string(), pid);
    assert_eq!(
        a.ok(&["exec", "keep", "cat", "/proc/self/uid_map"]).split_whitespace().collect::<Vec<_>>(),
        ["0", &base.to_string(), "65536"]
    );
    a.ok(&["rm", "-f", "keep"]);
    a.ok(&["rmi", "local/built:1"]);
    a.assert_no_leftovers();
}

/// Mount propagation needs the host's user namespace: a remapped container's mounts are
/// locked and cannot share with the host, so the create is refused, naming the volume.
#[test]
fn propagation_needs_the_hosts_user_namespace() {
    if !privileged("userns propagation") {
        return;
    }
    let (a, _ids) = agent("usernsprop", 3_700_000, 1, "");
    let src = e2e::hostmount::HostMount::new("--make-shared");
    let vol = format!("{}:/x:rslave", src.path().display());
    let r = a.ctl(&["create", "--userns", "remap", "-v", &vol, IMG, "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("mount propagation needs the host's user namespace") && r.stderr.contains(&vol),
        "{}",
        r.stderr
    );
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

#[test]
fn a_new_volume_belongs_to_the_namespaces_root() {
    if !privileged("userns volume") {
        return;
    }
    let base = 3_800_000;
    let (a, _ids) = agent("usernsvol", base, 1, "");
    // The image's /etc copied in, owned by the container's root (the host's `base`), so it
    // can write there; inside, the files are root's.
    let out = a.ok(&[
        "run",
        "--rm",
        "--userns",
        "remap",
        "-v",
        "uv:/etc",
        IMG,
        "sh",
        "-c",
        "touch /etc/new && stat -c %u /etc/passwd",
    ]);
    assert_eq!(out, "0");
    use std::os::unix::fs::MetadataExt;
    let data = a.root().join("volumes/uv/_data");
    for p in [data.clone(), data.join("passwd"), data.join("new")] {
        assert_eq!(std::fs::symlink_metadata(&p).unwrap().uid(), base, "{}", p.display());
    }
    a.ok(&["volume", "rm", "uv"]);
    a.assert_no_leftovers();
}
