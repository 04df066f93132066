//! `agentctl explain`: what it prints must be what the kernel holds — checked against /proc,
//! the cgroup files, the host's links and nftables, and the files the overlay shows.

use e2e::{ns_inode, privileged, Agent};
use serde_json::Value;

const IMG: &str = "local/busybox:latest";

#[test]
fn explain_reads_back_namespaces_limits_layers_network_and_security() {
    const T: &str = "explain";
    if !privileged(T) {
        return;
    }
    let a = Agent::start("explain");
    let port = e2e::free_port().to_string();
    let web = a.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "-p",
        &format!("{port}:80"),
        "--sysctl",
        "net.ipv4.tcp_keepalive_time=600",
        IMG,
        "sleep",
        "300",
    ]);
    a.ok(&["run", "-d", "--name", "side", "--network", "container:web", IMG, "sleep", "300"]);
    a.ok(&["exec", "web", "sh", "-c", "echo hi > /written-by-web"]);
    let x: Value = serde_json::from_str(&a.ok(&["explain", "--format", "json", "web"])).expect("json");
    let pid = a.inspect("web")["State"]["Pid"].as_u64().expect("pid").to_string();
    assert_eq!(x["Pid"].as_u64().map(|p| p.to_string()), Some(pid.clone()));

    // Namespaces: the inodes of /proc/PID/ns; net shared with `side`, user the host's.
    let ns = |kind: &str| x["Namespaces"].as_array().and_then(|v| v.iter().find(|n| n["Type"] == kind).cloned());
    for kind in ["pid", "uts", "ipc", "mnt", "net", "cgroup"] {
        let n = ns(kind).unwrap_or_else(|| panic!("{kind} missing: {x}"));
        assert_eq!(ns_inode(&pid, kind), format!("{kind}:[{}]", n["Inode"]), "{kind}");
    }
    assert_eq!(ns("net").unwrap()["SharedWith"], "side");
    assert_eq!(ns("pid").unwrap()["SharedWith"], "");
    assert_eq!(ns("user").unwrap()["SharedWith"], "host", "no --userns: the host's user namespace");

    // Limits as the cgroup files hold them; the cgroup paths of /proc/PID/cgroup.
    assert_eq!(x["Limits"]["Memory"], "67108864", "{}", x["Limits"]);
    assert_eq!(x["Limits"]["PidsLimit"], "50");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    for c in x["Cgroups"].as_array().expect("cgroups") {
        assert!(cg.contains(c["Path"].as_str().unwrap_or("?")), "{c} in {cg}");
    }
    assert!(x["Cgroups"].as_array().unwrap().iter().any(|c| c["Path"].as_str().unwrap_or("").contains(&web)));

    // The overlay: lower = the image's layer (owned by busybox), upper = where writes land.
    let lower = &x["Overlay"]["Lower"][0];
    assert!(lower["Images"].as_array().unwrap().iter().any(|i| i == IMG), "{lower}");
    assert!(std::path::Path::new(lower["Path"].as_str().unwrap()).join("bin/busybox").exists(), "{lower}");
    let upper = x["Overlay"]["Upper"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(format!("{upper}/written-by-web")).unwrap_or_default(), "hi\n");
    assert!(x["Overlay"]["MountOptions"].as_str().unwrap().contains(&format!("upperdir={upper}")), "{x}");

    // The network path: the host veth exists, the IP is inspect's, the DNAT rule names it.
    let link = &x["Network"]["Links"][0];
    let ip = a.inspect("web")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    assert_eq!(link["IP"], ip.as_str());
    assert_eq!(link["HostVethPresent"], true);
    let veth = link["HostVeth"].as_str().unwrap();
    let shown = std::process::Command::new("ip").args(["link", "show", veth]).output().expect("ip");
    assert!(shown.status.success(), "the host end {veth} exists");
    assert!(link["ContainerInterfaces"].as_array().unwrap().iter().any(|i| i == "eth0"), "{link}");
    let rules = x["Network"]["Rules"].as_array().unwrap();
    assert!(rules.iter().any(|r| r.as_str().unwrap_or("").contains(&format!("dnat to {ip}:80"))), "{rules:?}");

    // Security from /proc/PID/status; the sysctl as the container's net namespace has it.
    let caps: Vec<&str> = x["Security"]["Capabilities"].as_array().unwrap().iter().filter_map(|c| c.as_str()).collect();
    assert!(caps.contains(&"CAP_CHOWN") && !caps.contains(&"CAP_SYS_ADMIN"), "{caps:?}");
    assert_eq!(x["Security"]["Seccomp"], "filter");
    assert_eq!(x["Security"]["NoNewPrivs"], true);
    assert_eq!(x["Sysctls"]["net.ipv4.tcp_keepalive_time"], "600", "{}", x["Sysctls"]);

    // The text form names the same things.
    let text = a.ok(&["explain", "web"]);
    for want in ["Namespaces", "shared with side", "Memory", "67108864", veth, "dnat to", "CAP_CHOWN"] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    a.ok(&["rm", "-f", "side"]);
    a.ok(&["stop", "-t", "1", "web"]);
    let r = a.ctl(&["explain", "web"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not running"), "{}", r.stderr);
    a.ok(&["rm", "web"]);
    a.assert_no_leftovers();
}
