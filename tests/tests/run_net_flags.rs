//! `run --ip/--ip6/--mac-address/--uts/--storage-opt` with docker 20.10's rules, the effect
//! read back from the kernel (the address and MAC inside, the UTS namespace's inode) and
//! the refusals with their codes; nothing left behind.

use agent_proto::v1 as pb;
use e2e::{ns_inode, privileged, Agent};

const IMG: &str = "local/busybox:latest";

fn addr_inside(a: &Agent, name: &str) -> String {
    let out = a.ok(&["exec", name, "ip", "-4", "addr", "show", "dev", "eth0"]);
    out.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string()
}

/// Runs `agentctl run` with `args` and asserts it fails (125) with `want` in its message.
fn refused(a: &Agent, args: &[&str], want: &str) {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    let r = a.ctl(&all);
    assert_eq!(r.code, 125, "{args:?} should be refused: {}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(want), "{args:?}: want {want:?}, got {}", r.stderr);
}

/// The gRPC code a create of `spec` fails with.
fn create_code(a: &Agent, spec: pb::ContainerSpec) -> (tonic::Code, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let ch = agent_proto::connect(&a.host).await.expect("connect");
        let mut cs = pb::container_service_client::ContainerServiceClient::new(ch);
        let e = cs.create(pb::CreateContainerRequest { spec: Some(spec) }).await.expect_err("create should fail");
        (e.code(), e.message().to_string())
    })
}

#[test]
fn fixed_ip_and_mac_address_on_a_user_network() {
    if !privileged("fixed_ip_and_mac") {
        return;
    }
    let mut a = Agent::start("fixedip");
    let b = (std::process::id() % 200) as u8 + 20;
    let net = format!("10.232.{b}");
    a.ok(&["network", "create", "fix1", "--subnet", &format!("{net}.0/24")]);
    let ip = format!("{net}.50");
    let mac = "02:42:ac:11:00:02";
    a.ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "fix1",
        "--ip",
        &ip,
        "--mac-address",
        mac,
        IMG,
        "sleep",
        "300",
    ]);
    assert_eq!(addr_inside(&a, "fixed"), format!("{ip}/24"));
    assert_eq!(a.ok(&["exec", "fixed", "cat", "/sys/class/net/eth0/address"]), mac);
    let info = a.inspect("fixed");
    let n = &info["NetworkSettings"]["Networks"]["fix1"];
    assert_eq!(n["IPAMConfig"]["IPv4Address"], ip.as_str(), "{info}");
    assert_eq!(n["IPAddress"], ip.as_str(), "{info}");
    assert_eq!(n["MacAddress"], mac, "{info}");
    assert_eq!(info["NetworkSettings"]["MacAddress"], mac, "{info}");
    // Docker allows two containers with one MAC; so do we.
    a.ok(&["run", "-d", "--name", "twin", "--network", "fix1", "--mac-address", mac, IMG, "sleep", "300"]);
    assert_eq!(a.ok(&["exec", "twin", "cat", "/sys/class/net/eth0/address"]), mac);
    assert_ne!(addr_inside(&a, "twin"), format!("{ip}/24"), "a dynamic lease skips the fixed address");
    // The address is the container's: taken, it is refused naming the holder (AlreadyExists).
    refused(&a, &["--network", "fix1", "--ip", &ip, IMG, "true"], "already in use on network fix1 by container fixed");
    let (code, msg) = create_code(
        &a,
        pb::ContainerSpec { image: IMG.into(), network_mode: "fix1".into(), ip: ip.clone(), ..Default::default() },
    );
    assert_eq!(code, tonic::Code::AlreadyExists, "{msg}");
    // Kept across stop/start and a restart of the agent.
    a.ok(&["stop", "-t", "1", "fixed"]);
    a.ok(&["start", "fixed"]);
    assert_eq!(addr_inside(&a, "fixed"), format!("{ip}/24"));
    a.crash_and_restart();
    assert_eq!(a.inspect("fixed")["NetworkSettings"]["IPAddress"], ip.as_str());
    refused(&a, &["--network", "fix1", "--ip", &ip, IMG, "true"], "by container fixed");
    a.ok(&["restart", "-t", "1", "fixed"]);
    assert_eq!(addr_inside(&a, "fixed"), format!("{ip}/24"));
    // Freed on rm.
    a.ok(&["rm", "-f", "fixed"]);
    assert_eq!(
        a.ok(&[
            "run",
            "--rm",
            "--network",
            "fix1",
            "--ip",
            &ip,
            IMG,
            "sh",
            "-c",
            "ip -4 -o addr show dev eth0 | grep -c ' inet '"
        ]),
        "1"
    );

    // Docker's refusals, with the value named (InvalidArgument).
    refused(
        &a,
        &["--ip", &format!("{net}.9"), IMG, "true"],
        "user specified IP address is supported on user defined networks only",
    );
    refused(
        &a,
        &["--network", "none", "--ip", &format!("{net}.9"), IMG, "true"],
        "supported on user defined networks only",
    );
    for (host, why) in [("0", "the network address"), ("1", "the gateway address"), ("255", "the broadcast address")] {
        let bad = format!("{net}.{host}");
        refused(
            &a,
            &["--network", "fix1", "--ip", &bad, IMG, "true"],
            &format!("invalid --ip {bad}: it is {why} of network fix1"),
        );
    }
    refused(
        &a,
        &["--network", "fix1", "--ip", "192.0.2.7", IMG, "true"],
        "invalid --ip 192.0.2.7: it is outside the subnet of network fix1",
    );
    refused(&a, &["--network", "fix1", "--ip", "10.1.2.300", IMG, "true"], "invalid IPv4 address: 10.1.2.300");
    refused(&a, &["--network", "fix1", "--ip6", "fd00::7", IMG, "true"], "network fix1 has no IPv6 subnet");
    refused(&a, &["--network", "fix1", "--ip6", "nope", IMG, "true"], "invalid IPv6 address: nope");
    refused(&a, &["--network", "fix1", "--mac-address", "01:00:5e:00:00:01", IMG, "true"], "multicast");
    refused(
        &a,
        &["--network", "fix1", "--mac-address", "02:42:ac:11:00", IMG, "true"],
        "invalid --mac-address \"02:42:ac:11:00\"",
    );
    refused(
        &a,
        &["--network", "none", "--mac-address", mac, IMG, "true"],
        "conflicting options: mac-address and the network mode",
    );
    let (code, msg) = create_code(
        &a,
        pb::ContainerSpec {
            image: IMG.into(),
            network_mode: "fix1".into(),
            ip: format!("{net}.1"),
            ..Default::default()
        },
    );
    assert_eq!(code, tonic::Code::InvalidArgument, "{msg}");

    a.ok(&["rm", "-f", "twin"]);
    a.ok(&["network", "rm", "fix1"]);
    a.assert_no_leftovers();
}

/// Ten runs at once asking for one `--ip`: the lease is taken in one store transaction, so
/// exactly one gets it and the nine others are told it is taken.
#[test]
fn concurrent_runs_for_one_fixed_ip_have_one_winner() {
    if !privileged("fixed_ip_race") {
        return;
    }
    let a = Agent::start("fixedrace");
    let b = (std::process::id() % 200) as u8 + 20;
    a.ok(&["network", "create", "fixrace", "--subnet", &format!("10.233.{b}.0/24")]);
    let ip = format!("10.233.{b}.60");
    let results: Vec<e2e::Ctl> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..10)
            .map(|i| {
                let (a, ip) = (&a, &ip);
                s.spawn(move || {
                    let n = format!("f{i}");
                    a.ctl(&["run", "-d", "--name", &n, "--network", "fixrace", "--ip", ip, IMG, "sleep", "300"])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let won: Vec<usize> = (0..10).filter(|i| results[*i].code == 0).collect();
    assert_eq!(won.len(), 1, "exactly one run gets {ip}: {:?}", results.iter().map(|r| &r.stderr).collect::<Vec<_>>());
    let winner = format!("f{}", won[0]);
    for r in results.iter().filter(|r| r.code != 0) {
        assert_eq!(r.code, 125);
        assert!(r.stderr.contains(&format!("already in use on network fixrace by container {winner}")), "{}", r.stderr);
    }
    assert_eq!(addr_inside(&a, &winner), format!("{ip}/24"));
    // The losers left nothing: only the winner exists.
    assert_eq!(a.ok(&["ps", "-a", "--format", "{{.Names}}"]), winner);
    a.ok(&["rm", "-f", &winner]);
    a.ok(&["network", "rm", "fixrace"]);
    a.assert_no_leftovers();
}

#[test]
fn uts_host_shares_the_hosts_uts_namespace() {
    if !privileged("uts_host") {
        return;
    }
    let a = Agent::start("utshost");
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    a.ok(&["run", "-d", "--name", "uh", "--uts", "host", IMG, "sleep", "300"]);
    let pid = a.inspect("uh")["State"]["Pid"].to_string();
    assert_eq!(ns_inode(&pid, "uts"), ns_inode("self", "uts"), "the host's UTS namespace");
    assert_eq!(a.ok(&["exec", "uh", "hostname"]), host);
    assert_eq!(a.ok(&["exec", "uh", "cat", "/etc/hostname"]), host);
    assert_eq!(a.ok(&["exec", "uh", "sh", "-c", "echo $HOSTNAME"]), host);
    assert_eq!(a.inspect("uh")["HostConfig"]["UTSMode"], "host");
    // Without it: a namespace of its own.
    a.ok(&["run", "-d", "--name", "own", IMG, "sleep", "300"]);
    let own = a.inspect("own")["State"]["Pid"].to_string();
    assert_ne!(ns_inode(&own, "uts"), ns_inode("self", "uts"));
    assert_ne!(a.ok(&["exec", "own", "hostname"]), host);
    refused(&a, &["--uts", "host", "--hostname", "x", IMG, "true"], "conflicting options: hostname and the UTS mode");
    refused(
        &a,
        &["--uts", "host", "--domainname", "x.test", IMG, "true"],
        "conflicting options: domainname and the UTS mode",
    );
    refused(&a, &["--uts", "sideways", IMG, "true"], "invalid UTS mode \"sideways\"");
    let domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    refused(
        &a,
        &["--uts", "host", "--sysctl", "kernel.domainname=evil.test", IMG, "true"],
        "sysctl kernel.domainname is not allowed with --uts host",
    );
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(), domain);
    assert_eq!(nix::unistd::gethostname().unwrap().to_string_lossy(), host, "the host's name is untouched");
    a.ok(&["rm", "-f", "uh", "own"]);
    a.assert_no_leftovers();
}

#[test]
fn storage_opt_is_refused_naming_the_filesystem_and_leaves_nothing() {
    if !privileged("storage_opt") {
        return;
    }
    let a = Agent::start("storageopt");
    let b = (std::process::id() % 200) as u8 + 20;
    let root = a.root();
    let fstype = std::process::Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "-T"])
        .arg(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap();
    assert_ne!(fstype, "xfs", "this test expects an agent root without project quotas");
    a.ok(&["network", "create", "stor", "--subnet", &format!("10.234.{b}.0/24")]);
    let ip = format!("10.234.{b}.7");
    refused(
        &a,
        &["--network", "stor", "--ip", &ip, "--storage-opt", "size=10G", "--name", "sized", IMG, "true"],
        &format!(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option: the agent root {} is on {fstype}",
            root.display()
        ),
    );
    let (code, msg) = create_code(
        &a,
        pb::ContainerSpec {
            image: IMG.into(),
            storage_opt: [("size".to_string(), "1G".to_string())].into(),
            ..Default::default()
        },
    );
    assert_eq!(code, tonic::Code::FailedPrecondition, "{msg}");
    refused(
        &a,
        &["--storage-opt", "inodes=10", IMG, "true"],
        "unknown --storage-opt \"inodes\": only size=N is supported",
    );
    refused(&a, &["--storage-opt", "size=lots", IMG, "true"], "invalid --storage-opt size=lots");
    refused(&a, &["--storage-opt", "size", IMG, "true"], "invalid storage option \"size\"");
    // Nothing left: no record, no lease (the address is free), no directory.
    assert_eq!(a.ok(&["ps", "-a", "-q"]), "");
    a.ok(&["run", "--rm", "--network", "stor", "--ip", &ip, IMG, "true"]);
    a.ok(&["network", "rm", "stor"]);
    a.assert_no_leftovers();
}
