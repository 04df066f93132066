//! Docker's hardening flags that users rely on: capabilities, bind mounts, read-only root,
//! tmpfs. Each assertion checks the effect inside the container.

use e2e::hostmount::{host_mounted, HostMount};
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
        // (`name:/data` is a named volume, as docker's.)
        ("./relative:/data", "use an absolute path"),
        ("/no/such/dir/here:/data", "does not exist"),
        (&format!("{}:/../etc", host.display())[..], "without '..'"),
        (&format!("{}:/data:rx", host.display())[..], "is not ro, rw or a propagation"),
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
    let r = a.ctl(&["run", "--rm", "--security-opt", "seccomp=/nonexistent/profile.json", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("seccomp=/nonexistent/profile.json: No such file"), "{}", r.stderr);
}

/// Calls raw system calls from inside a container with the host's python (its /usr bound
/// read-only) and prints each errno.
fn errnos(a: &Agent, extra: &[&str], calls: &[(i64, &str)]) -> Vec<i32> {
    let py = calls
        .iter()
        .map(|(nr, args)| format!("ctypes.set_errno(0); libc.syscall({nr}{args}); print(ctypes.get_errno())"))
        .collect::<Vec<_>>()
        .join("; ");
    let script = format!("import ctypes; libc = ctypes.CDLL(None, use_errno=True); {py}");
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
    ];
    args.extend_from_slice(extra);
    args.extend([IMG, "/usr/bin/python3", "-c", &script]);
    let out = a.ok(&args);
    out.lines().map(|l| l.trim().parse().unwrap_or(-1)).collect()
}

#[test]
fn default_seccomp_is_an_allowlist() {
    if !privileged("default_seccomp_is_an_allowlist") {
        return;
    }
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: /usr/bin/python3 is needed to make raw system calls");
        return;
    }
    let a = Agent::start("allowlist");
    // 463 (setxattrat, Linux 6.13) is newer than the allowlist; 250 is keyctl (refused);
    // 39 is getpid (allowed: errno stays 0).
    let calls = [(463, ", -1, 0, 0, 0, 0"), (250, ", 0, 0, 0, 0, 0"), (39, "")];
    let unconfined = errnos(&a, &["--security-opt", "seccomp=unconfined"], &calls);
    let confined = errnos(&a, &[], &calls);
    assert_eq!(confined[1], 1, "keyctl: EPERM under the default profile: {confined:?}");
    assert_ne!(unconfined[1], 1, "keyctl reaches the kernel unconfined: {unconfined:?}");
    assert_eq!(confined[2], 0, "getpid is allowed: {confined:?}");
    if unconfined[0] == 38 {
        eprintln!("this kernel has no system call 463: the allowlist's ENOSYS is not observable here");
    } else {
        assert_eq!(confined[0], 38, "a system call newer than the allowlist gets ENOSYS: {confined:?}");
    }
    a.assert_no_leftovers();
}

/// A block device of the host that the host (this test, as root) can open, and its
/// major:minor: a container must not be able to open it.
fn host_disk() -> Option<(String, String)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block").ok()?.flatten().map(|e| e.file_name()).collect();
    names.sort();
    names.into_iter().map(|n| n.to_string_lossy().into_owned()).find_map(|n| {
        std::fs::File::open(format!("/dev/{n}")).ok()?;
        let dev = std::fs::read_to_string(format!("/sys/block/{n}/dev")).ok()?;
        Some((n, dev.trim().to_string()))
    })
}

#[test]
fn devices_are_fenced_and_privileged_opens_them() {
    if !privileged("devices_are_fenced_and_privileged_opens_them") {
        return;
    }
    let a = Agent::start("devices");
    // A node for the host's disk can be made (CAP_MKNOD, like docker) but not opened: the
    // device cgroup refuses. Without it, root in the container could read the host's disk.
    if let Some((name, dev)) = host_disk() {
        let (maj, min) = dev.split_once(':').unwrap();
        let script = format!(
            "mknod /dev/hostdisk b {maj} {min} && dd if=/dev/hostdisk of=/dev/null bs=512 count=1 2>&1; echo rc=$?"
        );
        let out = a.ok(&["run", "--rm", "--network", "none", IMG, "sh", "-c", &script]);
        assert!(
            out.contains("rc=1") && out.contains("not permitted"),
            "host disk {name} readable from a container: {out}"
        );
        // --privileged: the host's devices are there and open.
        let out = a.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--privileged",
            IMG,
            "sh",
            "-c",
            &format!("ls -l /dev/{name}; dd if=/dev/{name} of=/dev/null bs=512 count=1 2>&1; echo rc=$?"),
        ]);
        assert!(out.contains("rc=0"), "privileged container cannot read /dev/{name}: {out}");
    } else {
        eprintln!("no host disk found in /sys/block: the device cgroup part is skipped");
    }
    // --privileged: every capability, no seccomp, /sys writable, /proc/sys not masked read-only.
    let out = a.ok(&[
        "run", "--rm", "--network", "none", "--privileged", IMG, "sh", "-c",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; grep ' /sys ' /proc/mounts; grep ' /proc/sys ' /proc/mounts | wc -l",
    ]);
    let eff = out.lines().find_map(|l| l.strip_prefix("CapEff:\t")).and_then(|h| u64::from_str_radix(h, 16).ok());
    // All the host allows (this host withholds CAP_SYS_RESOURCE): at least SYS_ADMIN and SYS_RAWIO.
    assert!(eff.is_some_and(|e| e & (1 << 21) != 0 && e & (1 << 17) != 0), "{out}");
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.lines().any(|l| l.contains(" /sys sysfs rw")), "{out}");
    assert_eq!(out.lines().last(), Some("0"), "/proc/sys is not remounted read-only: {out}");
    // --device: the node is there under its new name and usable; the rest stays fenced.
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/mynull",
        IMG,
        "sh",
        "-c",
        "test -c /dev/mynull && echo hi > /dev/mynull && echo ok",
    ]);
    assert_eq!(out, "ok");
    let r = a.ctl(&["run", "--rm", "--device", "/etc/passwd", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("/etc/passwd is not a character or block device"), "{}", r.stderr);
    a.assert_no_leftovers();
}

#[test]
fn custom_seccomp_profile_in_dockers_format() {
    if !privileged("custom_seccomp_profile_in_dockers_format") {
        return;
    }
    let a = Agent::start("seccompjson");
    let p = a.dir.path().join("profile.json");
    // Allow everything but mkdir (EACCES): the custom profile replaces the default.
    std::fs::write(
        &p,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", p.display());
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        IMG,
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; echo rc=$?; grep Seccomp: /proc/self/status",
    ]);
    assert!(out.contains("Permission denied") && out.contains("rc=1"), "mkdir must fail with EACCES: {out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // exec gets the same profile.
    a.ok(&["run", "-d", "--name", "sj", "--network", "none", "--security-opt", &opt, IMG, "sleep", "30"]);
    let r = a.ctl(&["exec", "sj", "mkdir", "/tmp/y"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("Permission denied") || r.stdout.contains("Permission denied"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    a.ok(&["rm", "-f", "sj"]);
    // Bad profiles are refused at create, naming the problem.
    std::fs::write(&p, r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap();
    let r = a.ctl(&["create", "--security-opt", &opt, IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("SCMP_ACT_NOTIFY") && r.stderr.contains("not supported"), "{}", r.stderr);
    std::fs::write(&p, "{not json").unwrap();
    let r = a.ctl(&["create", "--security-opt", &opt, IMG, "true"]);
    assert!(r.stderr.contains("seccomp profile"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

/// A bind source or device that vanished while the container was stopped fails its next
/// start (FailedPrecondition, naming the path), like Docker; nothing starts without it.
#[test]
fn a_vanished_bind_source_or_device_fails_the_start() {
    if !privileged("vanished_sources") {
        return;
    }
    let a = Agent::start("vanish");
    let src = a.dir.path().join("x");
    std::fs::create_dir(&src).unwrap();
    let vol = format!("{}:/data", src.display());
    let dev = a.dir.path().join("nulldev");
    let st = std::process::Command::new("mknod").arg(&dev).args(["c", "1", "3"]).status().unwrap();
    assert!(st.success(), "mknod");
    let devspec = format!("{}:/dev/mynull", dev.display());
    let vt = a.ok(&["run", "-d", "--name", "vt", "-v", &vol, IMG, "sleep", "300"]);
    let vd = a.ok(&["run", "-d", "--name", "vd", "--device", &devspec, IMG, "sleep", "300"]);
    a.ok(&["stop", "-t", "1", "vt", "vd"]);
    std::fs::remove_dir_all(&src).unwrap();
    std::fs::remove_file(&dev).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (id, path) in [(&vt, &src), (&vd, &dev)] {
        let r = a.ctl(&["start", id]);
        assert_ne!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&path.display().to_string()), "names the path: {}", r.stderr);
        let e = rt.block_on(async {
            let ch = agent_proto::connect(&a.host).await.expect("connect");
            let mut cs = agent_proto::v1::container_service_client::ContainerServiceClient::new(ch);
            cs.start(agent_proto::v1::StartContainerRequest { id: id.clone() }).await.unwrap_err()
        });
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        let j = a.inspect(id);
        assert_eq!(j["State"]["Status"], "exited", "{j}");
        assert!(a.cgroup_dirs(id).iter().all(|d| !d.exists()), "no cgroup is left of the failed start");
    }
    let r = a.ctl(&["start", &vt]);
    assert!(r.stderr.contains("bind source path does not exist"), "{}", r.stderr);
    a.ok(&["rm", "-f", &vt, &vd]);
    a.assert_no_leftovers();
}

/// A user with an image group (`team`), for `id -G`.
fn build_group_image(a: &Agent) {
    let ctx = a.dir.path().join("grp");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM local/busybox\nRUN echo 'app:x:1234:1234::/:/bin/sh' >> /etc/passwd && \
         printf 'app:x:1234:\\nteam:x:2345:root,app\\nextra:x:3456:\\n' >> /etc/group\n",
    )
    .unwrap();
    a.ok(&["build", "--network", "none", "-q", "-t", "local/grp", ctx.to_str().unwrap()]);
}

fn gids(out: &str) -> std::collections::BTreeSet<u32> {
    out.split_whitespace().map(|g| g.parse().unwrap_or_else(|_| panic!("id -G: {out:?}"))).collect()
}

/// `--group-add` (names from the container's /etc/group, numbers), `--security-opt
/// no-new-privileges=false` and `systempaths=unconfined`, as docker has them.
#[test]
fn group_add_no_new_privileges_and_systempaths() {
    if !privileged("group_add_no_new_privileges_and_systempaths") {
        return;
    }
    let a = Agent::start("grpadd");
    build_group_image(&a);
    let run = |args: &[&str], cmd: &str| {
        let mut v = vec!["run", "--rm", "--network", "none"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["local/grp", "sh", "-c", cmd]);
        a.ok(&v)
    };
    // The primary group, the image's groups of the user, the added ones.
    assert_eq!(gids(&run(&["-u", "app"], "id -G")), [1234, 2345].into());
    let out = run(&["-u", "app", "--group-add", "extra", "--group-add", "4000"], "id -G");
    assert_eq!(gids(&out), [1234, 2345, 3456, 4000].into());
    assert_eq!(gids(&run(&["--group-add", "4000"], "id -G")), [0, 2345, 4000].into());
    let r = a.ctl(&["run", "--rm", "--group-add", "nosuchgroup", "local/grp", "true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("unable to find group nosuchgroup"), "{}", r.stderr);
    let r = a.ctl(&["create", "--group-add", "a:b", "local/grp", "true"]);
    assert!(r.code == 125 && r.stderr.contains("invalid group \"a:b\""), "{}", r.stderr);

    // no_new_privs: set by default; off on request, the default seccomp filter still in force
    // (installed before the user switch), for root and for another user, and for exec.
    let status = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | tr '\\n' ' '";
    assert_eq!(run(&[], status), "NoNewPrivs:1 Seccomp:2");
    let off = ["--security-opt", "no-new-privileges=false"];
    assert_eq!(run(&off, status), "NoNewPrivs:0 Seccomp:2");
    assert_eq!(run(&[off[0], off[1], "-u", "app"], status), "NoNewPrivs:0 Seccomp:2");
    assert_eq!(run(&["--security-opt", "no-new-privileges=true"], status), "NoNewPrivs:1 Seccomp:2");
    a.ok(&["run", "-d", "--name", "nnp", "--network", "none", off[0], off[1], "local/grp", "sleep", "60"]);
    assert_eq!(a.ok(&["exec", "nnp", "sh", "-c", status]), "NoNewPrivs:0 Seccomp:2");
    a.ok(&["rm", "-f", "nnp"]);

    // systempaths=unconfined: nothing masked, nothing read-only in /proc.
    let check = "wc -c < /proc/timer_list; grep -c ' /proc/sys ' /proc/mounts; true";
    let masked: Vec<String> = run(&[], check).lines().map(str::to_string).collect();
    assert_eq!(masked, ["0", "1"], "masked and read-only by default");
    let open = run(&["--security-opt", "systempaths=unconfined"], check);
    let open: Vec<&str> = open.lines().collect();
    assert!(open[0].parse::<u64>().unwrap() > 0 && open[1] == "0", "{open:?}");
    a.assert_no_leftovers();
}

/// `-v SRC:DST:rshared` and `--mount …,bind-propagation=rslave`: mounts made on the host
/// below the source after the start appear in the container; with rshared, one made in
/// the container appears on the host; a private source is refused, as docker does.
#[test]
fn bind_propagation_like_docker() {
    if !privileged("bind_propagation_like_docker") {
        return;
    }
    let a = Agent::start("bindprop");
    let shared = HostMount::new("--make-shared");
    let slave_src = HostMount::new("--make-shared");
    let private = HostMount::new("--make-private");
    let vol = format!("{}:/both:rshared", shared.path().display());
    let mnt = format!("type=bind,source={},target=/in,bind-propagation=rslave", slave_src.path().display());
    a.ok(&[
        "run",
        "-d",
        "--name",
        "prop",
        "--network",
        "none",
        "--privileged",
        "-v",
        &vol,
        "--mount",
        &mnt,
        IMG,
        "sleep",
        "120",
    ]);
    // Host → container, both kinds.
    let h1 = shared.mount_below("from-host");
    std::fs::write(h1.join("f"), "hi").unwrap();
    let h2 = slave_src.mount_below("from-host");
    std::fs::write(h2.join("g"), "ho").unwrap();
    assert_eq!(a.ok(&["exec", "prop", "cat", "/both/from-host/f", "/in/from-host/g"]), "hiho");
    // Container → host: with rshared only.
    a.ok(&[
        "exec",
        "prop",
        "sh",
        "-c",
        "mkdir /both/from-ctr /in/from-ctr && mount -t tmpfs t /both/from-ctr && mount -t tmpfs t /in/from-ctr",
    ]);
    assert!(host_mounted(&shared.path().join("from-ctr")), "rshared: the container's mount is on the host");
    assert!(!host_mounted(&slave_src.path().join("from-ctr")), "rslave: it is not");
    let inspect = a.inspect("prop");
    let props: Vec<(&str, &str)> = inspect["Mounts"]
        .as_array()
        .map(|m| m.iter().map(|m| (m["Destination"].as_str().unwrap(), m["Propagation"].as_str().unwrap())).collect())
        .unwrap_or_default();
    assert_eq!(props, [("/both", "rshared"), ("/in", "rslave")], "{inspect}");
    a.ok(&["rm", "-f", "prop"]);
    // A private source cannot propagate.
    let bad = format!("{}:/x:rslave", private.path().display());
    let r = a.ctl(&["create", "-v", &bad, IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("is not a shared or slave mount"), "{}", r.stderr);
    let r = a.ctl(&["create", "-v", &format!("{}:/x:rshared,rslave", shared.path().display()), IMG, "true"]);
    assert!(r.code == 125 && r.stderr.contains("repeats"), "{}", r.stderr);
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}
