//! Pods networked by standard CNI plugins (Debian's containernetworking-plugins in
//! /usr/lib/cni: bridge + host-local + portmap + loopback), driven with crictl 1.26.1:
//! a hostPort reached from a test host in its own network namespace, the pod IP reported
//! as the plugins gave it, CHECK on a verbose status (passing, and failing once the pod's
//! veth is gone), DEL on stop (also after agentd was killed and restarted) and on removal
//! (crictl rmp -f, agentctl rm -f), a plugin failure reported by name with nothing left, and
//! NetworkReady false while a plugin or the config is missing. Every host object the plugins leave (the bridge, portmap's
//! top-level chains) is removed by the test.

use e2e::crictl::Crictl;
use e2e::{eventually, privileged, Agent, TestHost};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;

const PLUGINS: &str = "/usr/lib/cni";

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Serializes the tests that use portmap (its top-level chains are shared by every
/// portmap user of the host, and removed here when the last one is done).
struct HostLock {
    _file: std::fs::File,
}

impl HostLock {
    fn take() -> HostLock {
        // The plugins' directory itself: a lock that leaves no file behind.
        let f = std::fs::File::open(PLUGINS).expect("open the CNI plugin dir");
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
        HostLock { _file: f }
    }
}

/// The test's CNI network: config and plugin dirs, host-local's data dir, the bridge.
struct Net {
    conf: PathBuf,
    bin: PathBuf,
    leases: PathBuf,
    name: String,
    bridge: String,
    _lock: HostLock,
}

impl Net {
    /// A network `e2e-<tag>` on `10.<a>.<pid>.0/24` with its own bridge, in `dir`.
    fn new(dir: &Path, tag: &str, a: u8) -> Net {
        let lock = HostLock::take();
        let pid = std::process::id();
        let (conf, bin, leases) = (dir.join("cni-conf"), dir.join("cni-bin"), dir.join("cni-ipam"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        // The plugin dir is links to Debian's plugins, so a test can take one away.
        for p in ["bridge", "host-local", "portmap", "loopback"] {
            std::os::unix::fs::symlink(Path::new(PLUGINS).join(p), bin.join(p)).unwrap();
        }
        let name = format!("e2e-{tag}-{pid}");
        let bridge = format!("cn{}{tag}", pid % 100000);
        let list = json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "dataDir": leases,
                          "ranges": [[{"subnet": format!("10.{a}.{}.0/24", pid % 250)}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "loopback"}
            ]
        });
        std::fs::write(conf.join("10-e2e.conflist"), list.to_string()).unwrap();
        let _ = Command::new("ip").args(["link", "del", &bridge]).status();
        Net { conf, bin, leases, name, bridge, _lock: lock }
    }

    fn agent_config(&self) -> String {
        format!("[cri]\ncni_conf_dir = \"{}\"\ncni_bin_dir = \"{}\"\n", self.conf.display(), self.bin.display())
    }

    fn lease(&self, ip: &str) -> PathBuf {
        self.leases.join(&self.name).join(ip)
    }

    /// The host ends of veths on the bridge.
    fn veths(&self) -> usize {
        sh(&format!("ip -o link show master {} 2>/dev/null", self.bridge)).lines().count()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The bridge plugin never deletes its bridge; portmap never deletes its top-level
        // chains and their jumps: gone once no portmap rule is left.
        let _ = Command::new("ip").args(["link", "del", &self.bridge]).status();
        // A failed test may have left a pod's portmap rules (a jump commented with the
        // network's name to a chain of the pod's).
        let mine = format!("\\\"{}\\\"", self.name);
        for l in
            sh("iptables-save -t nat").lines().filter(|l| l.starts_with("-A CNI-HOSTPORT-DNAT") && l.contains(&mine))
        {
            let _ =
                Command::new("sh").args(["-c", &format!("iptables -t nat {}", l.replacen("-A ", "-D ", 1))]).status();
            if let Some(chain) = l.rsplit("-j ").next() {
                let _ = Command::new("iptables").args(["-t", "nat", "-F", chain]).status();
                let _ = Command::new("iptables").args(["-t", "nat", "-X", chain]).status();
            }
        }
        let nat = sh("iptables-save -t nat");
        if !nat.lines().any(|l| l.starts_with("-A CNI-HOSTPORT-DNAT")) {
            for l in nat.lines().filter(|l| l.starts_with("-A ") && l.contains("-j CNI-HOSTPORT-")) {
                let rule = l.replacen("-A ", "-D ", 1);
                let _ = Command::new("sh").args(["-c", &format!("iptables -t nat {rule}")]).status();
            }
            for c in ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"] {
                let _ = Command::new("iptables").args(["-t", "nat", "-F", c]).status();
                let _ = Command::new("iptables").args(["-t", "nat", "-X", c]).status();
            }
        }
        // iptables-nft made the nat tables for portmap: gone when they hold no rule.
        for (save, family) in [("iptables-save", "ip"), ("ip6tables-save", "ip6")] {
            if !sh(&format!("{save} -t nat")).lines().any(|l| l.starts_with("-A ")) {
                let _ = Command::new("nft").args(["delete", "table", family, "nat"]).status();
            }
        }
    }
}

/// Rules of any table that name `id` (portmap's comments carry the container ID).
fn rules_naming(id: &str) -> Vec<String> {
    sh("iptables-save").lines().filter(|l| l.contains(id)).map(str::to_string).collect()
}

fn pod_config(cr: &Crictl, a: &Agent, name: &str, host_port: u16) -> String {
    let logs = a.dir.path().join("pods").join(name);
    std::fs::create_dir_all(&logs).unwrap();
    let cfg = json!({
        "metadata": {"name": name, "namespace": "default", "attempt": 0,
                     "uid": format!("c0ffee00-0000-4000-8000-{:012}", host_port)},
        "log_directory": logs,
        "port_mappings": [{"protocol": 0, "container_port": 80, "host_port": host_port}],
        "linux": {}
    });
    cr.config_file(&format!("{name}-pod.json"), &cfg)
}

/// A pod serving `token` over HTTP on port 80: (pod ID, container ID, pod IP).
fn web_pod(cr: &Crictl, a: &Agent, name: &str, host_port: u16, token: &str) -> (String, String, String) {
    let pod_cfg = pod_config(cr, a, name, host_port);
    let pod = cr.ok(&["runp", &pod_cfg]);
    let c = json!({
        "metadata": {"name": "web"},
        "image": {"image": "local/busybox:latest"},
        "command": ["sh", "-c", format!("mkdir -p /www && echo {token} > /www/index.html && exec httpd -f -p 80 -h /www")],
        "log_path": "web.log",
        "linux": {}
    });
    let cfile = cr.config_file(&format!("{name}-web.json"), &c);
    let cid = cr.ok(&["create", &pod, &cfile, &pod_cfg]);
    cr.ok(&["start", &cid]);
    let ip = cr.json(&["inspectp", &pod])["status"]["network"]["ip"].as_str().unwrap_or_default().to_string();
    (pod, cid, ip)
}

/// What the test host gets from `http://ip:port/` (empty on failure).
fn fetch(h: &TestHost, ip: &str, port: u16) -> String {
    let url = format!("http://{ip}:{port}/");
    let o = h.cmd(&["timeout", "5", "busybox", "wget", "-qO-", &url]).output().expect("wget");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn cni_pod_hostport_from_a_test_host_and_del_on_stop() {
    const T: &str = "cni_pod_hostport_from_a_test_host_and_del_on_stop";
    if !privileged(T) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let net = Net::new(d.path(), "a", 240);
    let mut a = Agent::start_with_config("cricni", &net.agent_config());
    let Some(cr) = Crictl::for_agent(T, &a) else { return };
    let host = TestHost::new("cnih", 245, (std::process::id() % 250) as u8);

    let info = cr.json(&["info"]);
    let ready = info["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "NetworkReady").cloned();
    assert_eq!(ready.as_ref().map(|c| c["status"].clone()), Some(json!(true)), "{info}");

    // Pod 1: reached on its hostPort from the test host, through portmap's DNAT.
    let port = e2e::free_port();
    let (pod, cid, ip) = web_pod(&cr, &a, "cniweb", port, "served-by-cni-pod");
    assert!(ip.starts_with(&format!("10.240.{}.", std::process::id() % 250)), "pod IP from host-local: {ip:?}");
    let inside = cr.ok(&["exec", "-s", &cid, "sh", "-c", "ip -4 -o addr show eth0"]);
    assert!(inside.contains(&format!("inet {ip}/24")), "the pod's eth0 has the reported IP: {inside}");
    assert!(net.lease(&ip).exists(), "host-local leased {ip}");
    assert_eq!(net.veths(), 1, "one veth on {}", net.bridge);
    assert!(!rules_naming(&pod).is_empty(), "portmap's rules for the pod");
    assert!(
        eventually(10, || fetch(&host, &host.host_ip, port) == "served-by-cni-pod"),
        "hostPort {port} reached from the test host: {:?}",
        fetch(&host, &host.host_ip, port)
    );
    // CHECK through a verbose status.
    // CHECK through a verbose status (crictl prints the info's keys beside `status`).
    // Debian's portmap 1.1 fails CHECK for a pod without IPv6 ports ("could not check ipv6
    // dnat: chain … not found", fixed upstream later); its failure still shows that bridge's
    // CHECK, before it, passed.
    let v = cr.json(&["inspectp", &pod]);
    let err = v["cni"]["error"].as_str().unwrap_or_default();
    assert!(
        v["cni"]["check"] == "passed"
            || (v["cni"]["check"] == "failed"
                && err.starts_with("CNI plugin portmap failed on CHECK: could not check ipv6")),
        "{v}"
    );

    // Stop: the plugins' DEL ran.
    cr.ok(&["stopp", &pod]);
    assert!(!net.lease(&ip).exists(), "host-local released {ip}");
    assert_eq!(net.veths(), 0, "the veth is gone");
    assert_eq!(rules_naming(&pod), Vec::<String>::new(), "portmap's rules are gone");
    assert_eq!(fetch(&host, &host.host_ip, port), "");
    cr.ok(&["rmp", &pod]);
    assert_eq!(std::fs::read_dir(a.root().join("cni/results")).map(|d| d.count()).unwrap_or(0), 0, "no cache left");

    // Pod 2: DEL from the cached result after agentd is killed and started again.
    let port2 = e2e::free_port();
    let (pod2, _, ip2) = web_pod(&cr, &a, "cniweb2", port2, "second-pod");
    assert!(eventually(10, || fetch(&host, &host.host_ip, port2) == "second-pod"), "pod 2 served");
    a.crash_and_restart();
    assert!(net.lease(&ip2).exists());
    cr.ok(&["stopp", &pod2]);
    assert!(!net.lease(&ip2).exists(), "DEL after a restart released {ip2}");
    assert_eq!(net.veths(), 0);
    assert_eq!(rules_naming(&pod2), Vec::<String>::new());
    cr.ok(&["rmp", &pod2]);
    assert_eq!(cr.ok(&["pods", "-q"]), "");
    assert_eq!(a.ok(&["ps", "-aq"]), "");
    a.assert_no_leftovers();
}

#[test]
fn cni_failures_are_named_and_leave_nothing() {
    const T: &str = "cni_failures_are_named_and_leave_nothing";
    if !privileged(T) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let net = Net::new(d.path(), "b", 241);
    let a = Agent::start_with_config("cricnifail", &net.agent_config());
    let Some(cr) = Crictl::for_agent(T, &a) else { return };
    let network_ready = || {
        let info = cr.json(&["info"]);
        info["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "NetworkReady").cloned().unwrap()
    };

    // A plugin missing: not ready, saying which; RunPodSandbox refused before anything runs.
    std::fs::remove_file(net.bin.join("portmap")).unwrap();
    let c = network_ready();
    assert_eq!(c["status"], false, "{c}");
    assert_eq!(c["reason"], "NetworkPluginNotReady");
    let msg = c["message"].as_str().unwrap_or_default();
    assert!(msg.contains("portmap") && msg.contains(&net.bin.display().to_string()), "{msg}");
    let pod_cfg = pod_config(&cr, &a, "nopm", e2e::free_port());
    let r = cr.cmd(&["runp", &pod_cfg]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("portmap"), "{}", r.stderr);
    assert_eq!(cr.ok(&["pods", "-q"]), "");
    std::os::unix::fs::symlink(Path::new(PLUGINS).join("portmap"), net.bin.join("portmap")).unwrap();
    assert_eq!(network_ready()["status"], true);

    // No config at all: not ready either.
    let file = net.conf.join("10-e2e.conflist");
    let kept = std::fs::read_to_string(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let c = network_ready();
    assert_eq!(c["status"], false);
    assert!(c["message"].as_str().unwrap_or_default().contains("no network config found"), "{c}");
    std::fs::write(&file, &kept).unwrap();

    // A plugin that fails in ADD (host-local cannot parse its range): the error names the
    // plugin and its message; the sandbox, its cache and any veth or lease are gone.
    let mut bad: serde_json::Value = serde_json::from_str(&kept).unwrap();
    bad["plugins"][0]["ipam"]["ranges"] = json!([[{"subnet": "10.999.0.0/24"}]]);
    std::fs::write(net.conf.join("00-bad.conflist"), bad.to_string()).unwrap();
    let r = cr.cmd(&["runp", &pod_cfg]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("CNI plugin bridge failed on ADD") && r.stderr.contains("10.999.0.0"), "{}", r.stderr);
    assert_eq!(cr.ok(&["pods", "-q"]), "");
    assert_eq!(a.ok(&["ps", "-aq"]), "", "the sandbox is removed");
    assert_eq!(std::fs::read_dir(a.root().join("cni/results")).map(|d| d.count()).unwrap_or(0), 0, "nothing cached");
    assert_eq!(net.veths(), 0, "no veth left");
    std::fs::remove_file(net.conf.join("00-bad.conflist")).unwrap();
    // The bridge plugin (1.1) made its bridge before host-local failed, and a bridge
    // without ports has no MAC on this kernel, which the plugin's next ADD cannot set
    // ("could not set bridge's mac: invalid argument"): the plugin's quirk, not the pod's
    // leftover. An operator deletes the bridge the same way.
    let _ = Command::new("ip").args(["link", "del", &net.bridge]).status();

    // With the config back, the same pod runs (nothing of the failed one was in the way).
    let pod = cr.ok(&["runp", &pod_cfg]);
    let ip = cr.json(&["inspectp", &pod])["status"]["network"]["ip"].as_str().unwrap_or_default().to_string();
    assert!(net.lease(&ip).exists(), "{ip}");
    cr.ok(&["rmp", "-f", &pod]);
    assert!(!net.lease(&ip).exists(), "rmp -f ran DEL");
    assert_eq!(net.veths(), 0);
    assert_eq!(rules_naming(&pod), Vec::<String>::new());

    // CHECK sees a pod whose veth was taken away (bridge's CHECK, the first plugin's, fails);
    // a sandbox removed through our own API (not the CRI) gets its DEL too, veth or not.
    let pod = cr.ok(&["runp", &pod_cfg]);
    let ip = cr.json(&["inspectp", &pod])["status"]["network"]["ip"].as_str().unwrap_or_default().to_string();
    assert!(net.lease(&ip).exists(), "{ip}");
    let veth = sh(&format!("ip -o link show master {}", net.bridge));
    let veth = veth.split(": ").nth(1).and_then(|n| n.split('@').next()).unwrap_or_default().to_string();
    assert!(veth.starts_with("veth"), "{veth:?}");
    assert!(Command::new("ip").args(["link", "del", &veth]).status().unwrap().success());
    let v = cr.json(&["inspectp", &pod]);
    assert_eq!(v["cni"]["check"], "failed", "{v}");
    assert!(v["cni"]["error"].as_str().unwrap_or_default().starts_with("CNI plugin bridge failed on CHECK"), "{v}");
    a.ok(&["rm", "-f", &pod]);
    assert!(!net.lease(&ip).exists(), "agentctl rm -f ran DEL");
    assert_eq!((net.veths(), rules_naming(&pod)), (0, Vec::<String>::new()));
    assert_eq!(cr.ok(&["pods", "-q"]), "");
    a.assert_no_leftovers();
}
