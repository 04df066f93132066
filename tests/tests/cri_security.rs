//! The CRI's security contexts and mount propagation, driven with crictl 1.26.1 as a
//! node's operator would: supplemental groups, masked and read-only paths, seccomp
//! profiles (unset, RuntimeDefault, Localhost, the deprecated path), no_new_privs, and
//! rshared / rslave mounts. Each assertion reads the effect inside the container or on the host.

use e2e::crictl::Crictl;
use e2e::hostmount::{host_mounted, HostMount};
use e2e::{privileged, Agent};
use serde_json::json;

/// A user with an image group, for `id -G`.
fn build_group_image(a: &Agent) {
    let ctx = a.dir.path().join("grp");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM local/busybox\nRUN echo 'app:x:1234:1234::/:/bin/sh' >> /etc/passwd && \
         printf 'app:x:1234:\\nteam:x:2345:app\\n' >> /etc/group\n",
    )
    .unwrap();
    a.ok(&["build", "--network", "none", "-q", "-t", "local/grp", ctx.to_str().unwrap()]);
}

/// A pod, and a way to run containers in it from configs.
struct Pod<'a> {
    cr: &'a Crictl,
    id: String,
    pod_config: String,
}

impl Pod<'_> {
    fn new<'a>(cr: &'a Crictl, a: &Agent, name: &str) -> Pod<'a> {
        let logs = a.dir.path().join("pods").join(name);
        std::fs::create_dir_all(&logs).unwrap();
        let cfg = json!({
            "metadata": {"name": name, "namespace": "default", "attempt": 1,
                         "uid": format!("5ec0c7e1-0000-4000-8000-{:012}", name.len())},
            "log_directory": logs,
            "linux": {}
        });
        let pod_config = cr.config_file(&format!("{name}-pod.json"), &cfg);
        let id = cr.ok(&["runp", &pod_config]);
        Pod { cr, id, pod_config }
    }

    /// The crictl result of creating a container named `name` of `image` with this
    /// `linux.security_context` and these mounts (it sleeps).
    fn create(&self, name: &str, image: &str, sc: serde_json::Value, mounts: serde_json::Value) -> e2e::Ctl {
        let cfg = json!({
            "metadata": {"name": name},
            "image": {"image": image},
            "command": ["sleep", "300"],
            "log_path": format!("{name}.log"),
            "mounts": mounts,
            "linux": {"security_context": sc}
        });
        let file = self.cr.config_file(&format!("{name}.json"), &cfg);
        self.cr.cmd(&["create", &self.id, &file, &self.pod_config])
    }

    /// Creates and starts a container; returns its ID.
    fn run(&self, name: &str, image: &str, sc: serde_json::Value, mounts: serde_json::Value) -> String {
        let r = self.create(name, image, sc, mounts);
        assert_eq!(r.code, 0, "create {name}: {}{}", r.stdout, r.stderr);
        let id = r.stdout.trim().to_string();
        self.cr.ok(&["start", &id]);
        id
    }

    /// `crictl exec -s ID sh -c CMD`: (exit code, stdout + stderr).
    fn sh(&self, id: &str, cmd: &str) -> (i32, String) {
        let r = self.cr.cmd(&["exec", "-s", id, "sh", "-c", cmd]);
        (r.code, format!("{}{}", r.stdout, r.stderr))
    }

    fn out(&self, id: &str, cmd: &str) -> String {
        let (code, out) = self.sh(id, cmd);
        assert_eq!(code, 0, "{cmd}: {out}");
        out.trim().to_string()
    }

    fn remove(self, a: &Agent) {
        self.cr.ok(&["stopp", &self.id]);
        self.cr.ok(&["rmp", &self.id]);
        assert_eq!(self.cr.ok(&["pods", "-q"]), "");
        assert_eq!(a.ok(&["ps", "-aq"]), "", "nothing of the pod is left in the agent");
    }
}

fn gids(out: &str) -> std::collections::BTreeSet<u32> {
    out.split_whitespace().map(|g| g.parse().unwrap_or_else(|_| panic!("id -G: {out:?}"))).collect()
}

const STATUS: &str = "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t' | tr '\\n' ' '";

#[test]
fn crictl_security_contexts() {
    const T: &str = "crictl_security_contexts";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("crisec");
    let Some(cr) = Crictl::for_agent(T, &a) else { return };
    build_group_image(&a);
    let pod = Pod::new(&cr, &a, "secpod");

    // Groups: the primary gid, the image's groups of the user, the supplemental ones.
    let g = pod.run(
        "groups",
        "local/grp",
        json!({"run_as_user": {"value": 1234}, "supplemental_groups": [4000, 4001]}),
        json!([]),
    );
    assert_eq!(gids(&pod.out(&g, "id -G")), [1234, 2345, 4000, 4001].into());
    let root = pod.run("rootgroups", "local/grp", json!({"supplemental_groups": [4000]}), json!([]));
    assert_eq!(gids(&pod.out(&root, "id -G")), [0, 4000].into());

    // Masked and read-only paths from the request replace the defaults.
    let p = pod.run(
        "paths",
        "local/busybox",
        json!({"masked_paths": ["/proc/version", "/proc/tty"], "readonly_paths": ["/tmp"]}),
        json!([]),
    );
    // (This kernel has no /proc/sched_debug: a file and a directory that always exist.)
    assert_eq!(pod.out(&p, "wc -c < /proc/version; ls /proc/tty | wc -l"), "0\n0", "masked");
    assert_ne!(pod.out(&p, "ls /proc/ | wc -l"), "0");
    let timer: u64 = pod.out(&p, "wc -c < /proc/timer_list").parse().unwrap();
    assert!(timer > 0, "/proc/timer_list is masked only by default");
    let (code, out) = pod.sh(&p, "touch /tmp/x");
    assert!(code != 0 && out.contains("Read-only file system"), "EROFS: {out}");
    pod.out(&p, "touch /x");
    let d = pod.run("defaults", "local/busybox", json!({}), json!([]));
    assert_eq!(pod.out(&d, "wc -c < /proc/timer_list"), "0", "the defaults without lists");

    // Seccomp: unset means no filter in this CRI version; unshare(2) is what the default
    // profile refuses and busybox can call. no_new_privs as asked.
    let unconfined = "unshare -U true && echo unshare-ok";
    let d_status = pod.out(&d, STATUS);
    assert_eq!(d_status, "NoNewPrivs:0 Seccomp:0");
    assert!(pod.out(&d, unconfined).contains("unshare-ok"));
    let rd = pod.run(
        "runtimedefault",
        "local/busybox",
        json!({"seccomp": {"profile_type": 0}, "no_new_privs": true}),
        json!([]),
    );
    assert_eq!(pod.out(&rd, STATUS), "NoNewPrivs:1 Seccomp:2");
    let (code, out) = pod.sh(&rd, unconfined);
    assert!(code != 0 && out.contains("Operation not permitted"), "{out}");
    let rd_nnp0 = pod.run("rd-nnp0", "local/busybox", json!({"seccomp_profile_path": "runtime/default"}), json!([]));
    assert_eq!(pod.out(&rd_nnp0, STATUS), "NoNewPrivs:0 Seccomp:2");
    let u = pod.run(
        "unconfined",
        "local/busybox",
        json!({"seccomp": {"profile_type": 1}, "no_new_privs": true}),
        json!([]),
    );
    assert_eq!(pod.out(&u, STATUS), "NoNewPrivs:1 Seccomp:0");

    // Localhost: a profile file on the node, read by the agent; it blocks mkdir with EPERM.
    let profile = a.dir.path().join("no-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
    )
    .unwrap();
    let profile = profile.display().to_string();
    let l = pod.run(
        "localhost",
        "local/busybox",
        json!({"seccomp": {"profile_type": 2, "localhost_ref": profile}}),
        json!([]),
    );
    let (code, out) = pod.sh(&l, "mkdir /tmp/d");
    assert!(code != 0 && out.contains("Operation not permitted"), "{out}");
    assert_eq!(pod.out(&l, STATUS), "NoNewPrivs:0 Seccomp:2");
    let old = pod.run(
        "localhost-path",
        "local/busybox",
        json!({"seccomp_profile_path": format!("localhost/{profile}")}),
        json!([]),
    );
    let (code, out) = pod.sh(&old, "mkdir /tmp/d");
    assert!(code != 0 && out.contains("Operation not permitted"), "{out}");
    assert!(pod.out(&d, "mkdir /tmp/d && echo made").contains("made"), "others may mkdir");

    // Bad profiles: InvalidArgument naming the path, nothing created.
    let before = cr.ok(&["ps", "-a", "-q"]);
    let missing = a.dir.path().join("no-such-profile.json").display().to_string();
    for (name, sc) in [
        ("badref", json!({"seccomp": {"profile_type": 2, "localhost_ref": missing}})),
        ("badpath", json!({"seccomp_profile_path": profile})),
        ("badold", json!({"seccomp_profile_path": format!("localhost/{missing}")})),
    ] {
        let r = pod.create(name, "local/busybox", sc, json!([]));
        assert_ne!(r.code, 0, "{name} must be refused");
        let shown = if name == "badpath" { &profile } else { &missing };
        assert!(r.stderr.contains("InvalidArgument") && r.stderr.contains(shown.as_str()), "{name}: {}", r.stderr);
    }
    std::fs::write(&profile, "{not json").unwrap();
    let r = pod.create(
        "notjson",
        "local/busybox",
        json!({"seccomp": {"profile_type": 2, "localhost_ref": profile}}),
        json!([]),
    );
    assert!(r.code != 0 && r.stderr.contains("InvalidArgument") && r.stderr.contains("not JSON"), "{}", r.stderr);
    assert_eq!(cr.ok(&["ps", "-a", "-q"]), before, "nothing was left behind");

    pod.remove(&a);
    a.assert_no_leftovers();
}

#[test]
fn crictl_mount_propagation() {
    const T: &str = "crictl_mount_propagation";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("criprop");
    let Some(cr) = Crictl::for_agent(T, &a) else { return };
    let both = HostMount::new("--make-shared");
    let into = HostMount::new("--make-shared");
    let private = HostMount::new("--make-private");
    let pod = Pod::new(&cr, &a, "proppod");
    let mount =
        |host: &HostMount, ctr: &str, p: u8| json!({"host_path": host.path(), "container_path": ctr, "propagation": p});
    // Bidirectional needs a privileged container (kubelet insists, and mount(2) needs it).
    let id = pod.run(
        "prop",
        "local/busybox",
        json!({"privileged": true}),
        json!([mount(&both, "/both", 2), mount(&into, "/in", 1)]),
    );
    let st = cr.json(&["inspect", &id]);
    let props: Vec<(&str, &str)> = st["status"]["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| (m["containerPath"].as_str().unwrap(), m["propagation"].as_str().unwrap()))
        .collect();
    assert_eq!(props, [("/both", "PROPAGATION_BIDIRECTIONAL"), ("/in", "PROPAGATION_HOST_TO_CONTAINER")], "{st}");
    // Host → container: a mount made under the source after the start.
    std::fs::write(both.mount_below("from-host").join("f"), "hi").unwrap();
    std::fs::write(into.mount_below("from-host").join("g"), "ho").unwrap();
    assert_eq!(pod.out(&id, "cat /both/from-host/f /in/from-host/g"), "hiho");
    // Container → host: bidirectional only.
    pod.out(&id, "mkdir /both/c /in/c && mount -t tmpfs t /both/c && mount -t tmpfs t /in/c");
    assert!(host_mounted(&both.path().join("c")), "bidirectional: the container's mount reaches the host");
    assert!(!host_mounted(&into.path().join("c")), "host-to-container: it does not");
    // A source on a private mount cannot receive: refused as containerd refuses it.
    let before = cr.ok(&["ps", "-a", "-q"]);
    let r = pod.create("bad", "local/busybox", json!({}), json!([mount(&private, "/p", 1)]));
    assert!(r.code != 0 && r.stderr.contains("is not a shared or slave mount"), "{}", r.stderr);
    let r = pod.create("bad2", "local/busybox", json!({"privileged": true}), json!([mount(&into, "/p", 7)]));
    assert!(r.code != 0 && r.stderr.contains("unknown propagation"), "{}", r.stderr);
    assert_eq!(cr.ok(&["ps", "-a", "-q"]), before, "nothing was left behind");
    pod.remove(&a);
    a.assert_no_leftovers();
}
