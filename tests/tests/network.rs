//! Bridge networking with real traffic between real network namespaces: published ports
//! reached from another host and from 127.0.0.1, egress through NAT, container: mode,
//! leases across restarts, and nothing left behind.

use e2e::{eventually, privileged, Agent, TestHost};
use std::process::Stdio;

const IMG: &str = "local/busybox:latest";

/// A one-shot TCP server in a test host that answers with the peer address it sees.
fn peer_echo_server(h: &TestHost, port: u16) -> std::process::Child {
    let py = format!(
        "import socket,sys\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0',{port})); s.listen(1); s.settimeout(20)\nprint('ready', flush=True)\n\
         c,a=s.accept(); c.sendall((a[0]+'\\n').encode()); c.close()\n"
    );
    let mut c = h.cmd(&["python3", "-c", &py]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    c
}

/// The source address `server` sees when a container on network `net` connects to it:
/// with masquerade, the host's side of the test host's link.
fn egress_source(a: &Agent, net: &str, server: &TestHost, port: u16) -> String {
    let srv = peer_echo_server(server, port);
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        net,
        IMG,
        "sh",
        "-c",
        &format!("timeout 5 nc {} {port}; exit $?", server.ip),
    ]);
    let _ = srv.wait_with_output();
    out
}

#[test]
fn bridge_nat_published_ports_and_container_mode() {
    if !privileged("bridge_network") {
        return;
    }
    let a = Agent::start("net");
    let b = (std::process::id() % 200) as u8 + 20;
    let client = TestHost::new("cli", 251, b);
    let server = TestHost::new("srv", 252, b);

    // A server in a container, published on host port 18080.
    let web = a.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18080:80",
        IMG,
        "sh",
        "-c",
        "while true; do echo hi-from-ctr | nc -l -p 80; done",
    ]);
    let ip = a.inspect(&web)["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    assert!(!ip.is_empty());
    // From another host, through the host's address on that link.
    let fetch = |c: &mut std::process::Command| {
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert!(
        eventually(10, || fetch(
            client.cmd(&["timeout", "3", "busybox", "nc", &client.host_ip, "18080"]).stdin(Stdio::null())
        ) == "hi-from-ctr"),
        "the published port must answer another host"
    );
    // From the host itself, at 127.0.0.1.
    assert!(eventually(10, || {
        fetch(
            std::process::Command::new("timeout")
                .args(["3", "busybox", "nc", "127.0.0.1", "18080"])
                .stdin(Stdio::null()),
        ) == "hi-from-ctr"
    }));
    // Hairpin: the container reaches its own published port through a host address.
    let hp = format!("timeout 3 nc {} 18080; exit $?", client.host_ip);
    assert!(eventually(10, || a.ctl(&["exec", "web", "sh", "-c", &hp]).stdout.trim() == "hi-from-ctr"), "hairpin");
    // /etc/hosts has the container's own name and address; --add-host and --dns land in it.
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "--name",
        "named",
        "--add-host",
        "db.test:10.9.9.9",
        "--dns",
        "192.0.2.53",
        IMG,
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ]);
    assert!(out.lines().any(|l| l.contains("named") && l.starts_with("10.")), "{out}");
    assert!(out.contains("10.9.9.9\tdb.test"), "{out}");
    assert!(out.contains("nameserver 192.0.2.53") && !out.contains("nameserver 127."), "{out}");
    // The same port again is refused with a clear error.
    let r = a.ctl(&["run", "-d", "-p", "18080:81", IMG, "sleep", "10"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("18080/tcp is already published by container web"), "{}", r.stderr);

    // Egress: a container reaches the server host through NAT; the server sees the host's address.
    let out = egress_source(&a, "bridge", &server, 8080);
    assert_eq!(out, server.host_ip, "masquerade: the server sees the host's address, not {ip}");

    // container: mode shares the network namespace (same localhost, same address).
    let out =
        a.ok(&["run", "--rm", "--network", "container:web", IMG, "sh", "-c", "timeout 3 nc 127.0.0.1 80; exit $?"]);
    assert_eq!(out, "hi-from-ctr");
    a.ok(&["run", "-d", "--name", "side", "--network", "container:web", IMG, "sleep", "100"]);
    let r = a.ctl(&["rm", "-f", "web"]);
    assert!(r.stderr.contains("uses its network namespace"), "{}", r.stderr);
    a.ok(&["rm", "-f", "side"]);

    // Leases are never handed out twice, and survive restarts.
    let mut a = a;
    a.crash_and_restart();
    let other = a.ok(&["create", "--network", "bridge", IMG, "true"]);
    let ip2 = a.inspect(&other)["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    assert_ne!(ip2, ip);
    // Rules of live containers are restored after the restart.
    assert!(eventually(10, || {
        fetch(
            std::process::Command::new("timeout")
                .args(["3", "busybox", "nc", "127.0.0.1", "18080"])
                .stdin(Stdio::null()),
        ) == "hi-from-ctr"
    }));
    a.ok(&["rm", "-f", "web", &other]);
    // Leases return on removal: the next container gets the first address again.
    let again = a.ok(&["create", "--network", "bridge", IMG, "true"]);
    assert_eq!(a.inspect(&again)["NetworkSettings"]["IPAddress"].as_str().unwrap(), ip);
    a.ok(&["rm", &again]);
    let table = std::process::Command::new("nft").args(["list", "table", "ip", &a.instance]).output().unwrap();
    let rules = String::from_utf8_lossy(&table.stdout);
    assert!(!rules.contains("18080"), "the rule of a removed container must disappear: {rules}");
    a.stop();
    let t = std::process::Command::new("nft").args(["list", "table", "ip", &a.instance]).output().unwrap();
    assert!(!t.status.success(), "the agent's table is gone after a stop with nothing running");
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains(&a.root().display().to_string()));
    assert!(
        a.log().contains("enabling IPv4 forwarding")
            || std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap().trim() == "1"
    );
}

#[test]
fn user_networks_isolate_resolve_names_and_internal_has_no_egress() {
    if !privileged("user_networks") {
        return;
    }
    let a = Agent::start("usernet");
    let b = (std::process::id() % 200) as u8 + 20;
    let (s1, s2, s3) = (format!("10.241.{b}.0/24"), format!("10.242.{b}.0/24"), format!("10.243.{b}.0/24"));
    a.ok(&["network", "create", "n1", "--subnet", &s1]);
    a.ok(&["network", "create", "n2", "--subnet", &s2]);
    a.ok(&["network", "create", "n3", "--subnet", &s3, "--internal"]);
    let r = a.ctl(&["network", "create", "n4", "--subnet", &s1]);
    assert!(r.stderr.contains("overlaps network n1"), "{}", r.stderr);
    let server = TestHost::new("usrv", 253, b);

    let serve = "while true; do echo hi-from-$(hostname) | nc -l -p 80; done";
    a.ok(&["run", "-d", "--name", "c1", "--hostname", "c1", "--network", "n1", IMG, "sh", "-c", serve]);
    let ip1 = a.inspect("c1")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    assert!(ip1.starts_with(&format!("10.241.{b}.")), "{ip1}");
    // Same network: reachable, by name.
    let reach = |net: &str, target: &str, want: &str| {
        let cmd = format!("timeout 3 nc {target} 80; exit $?");
        eventually(15, || a.ctl(&["run", "--rm", "--network", net, IMG, "sh", "-c", &cmd]).stdout.trim() == want)
    };
    assert!(reach("n1", "c1", "hi-from-c1"), "same network, by name");
    // Another network: not reachable, not even by address.
    let r = a.ctl(&["run", "--rm", "--network", "n2", IMG, "sh", "-c", &format!("timeout 3 nc {ip1} 80; exit $?")]);
    assert!(!r.stdout.contains("hi-from-c1"), "networks must be isolated: {}", r.stdout);
    // Internal: members talk, nothing leaves.
    a.ok(&["run", "-d", "--name", "c3", "--hostname", "c3", "--network", "n3", IMG, "sh", "-c", serve]);
    assert!(reach("n3", "c3", "hi-from-c3"), "members of an internal network reach each other");
    let srv = peer_echo_server(&server, 8081);
    let r = a.ctl(&[
        "run",
        "--rm",
        "--network",
        "n3",
        IMG,
        "sh",
        "-c",
        &format!("timeout 3 nc {} 8081; exit $?", server.ip),
    ]);
    assert!(!r.stdout.contains(&server.host_ip), "an internal network has no egress: {}", r.stdout);
    // The same from n2 goes out (and ends the one-shot server).
    let out = a.ok(&[
        "run",
        "--rm",
        "--network",
        "n2",
        IMG,
        "sh",
        "-c",
        &format!("timeout 5 nc {} 8081; exit $?", server.ip),
    ]);
    assert_eq!(out, server.host_ip);
    let _ = srv.wait_with_output();
    // connect: c1 (on n1) joins n2 live as eth1; n2's members then reach it by name.
    a.ok(&["run", "-d", "--name", "c2", "--hostname", "c2", "--network", "n2", IMG, "sh", "-c", serve]);
    a.ok(&["network", "connect", "n2", "c1"]);
    let ifs = a.ok(&["exec", "c1", "sh", "-c", "ls /sys/class/net | tr '\\n' ' '"]);
    assert_eq!(ifs.trim(), "eth0 eth1 lo", "{ifs}");
    assert!(reach("n2", "c1", "hi-from-c1"), "after connect, n2 reaches c1 by name");
    // c1 reaches c2 by name over n2 (its hosts file knows both networks' peers).
    assert!(eventually(15, || a.ctl(&["exec", "c1", "sh", "-c", "timeout 3 nc c2 80; exit $?"]).stdout.trim()
        == "hi-from-c2"));
    let r = a.ctl(&["network", "disconnect", "n1", "c1"]);
    assert!(r.stderr.contains("only networks connected later"), "{}", r.stderr);
    a.ok(&["network", "disconnect", "n2", "c1"]);
    let ifs = a.ok(&["exec", "c1", "sh", "-c", "ls /sys/class/net | tr '\\n' ' '"]);
    assert_eq!(ifs.trim(), "eth0 lo", "{ifs}");
    a.ok(&["rm", "-f", "c2"]);
    // A network with containers cannot be removed; without, it can, with its bridge.
    let r = a.ctl(&["network", "rm", "n1"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("has 1 attached container(s): c1"), "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&a.ok(&["network", "inspect", "n1"])).unwrap();
    let bridge = j["Bridge"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists());
    a.ok(&["rm", "-f", "c1", "c3"]);
    for n in ["n1", "n2", "n3"] {
        a.ok(&["network", "rm", n]);
    }
    assert!(!std::path::Path::new(&format!("/sys/class/net/{bridge}")).exists(), "the network's bridge is removed");
    assert!(a.ok(&["network", "ls"]).contains("bridge"));
}

/// The seed document's example: `docker run -d -p 6379:6379 redis`, with a tiny TCP server.
#[test]
fn seed_example_publish_6379() {
    if !privileged("seed_6379") {
        return;
    }
    if std::net::TcpListener::bind(("0.0.0.0", 6379)).is_err() {
        eprintln!("SKIP seed_example_publish_6379: host port 6379 is in use on this machine");
        return;
    }
    let a = Agent::start("seed6379");
    a.ok(&[
        "run",
        "-d",
        "--name",
        "redis",
        "-p",
        "6379:6379",
        IMG,
        "sh",
        "-c",
        "while true; do echo +PONG | nc -l -p 6379; done",
    ]);
    let rules = std::process::Command::new("nft").args(["list", "table", "ip", &a.instance]).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    assert!(rules.contains("tcp dport 6379 dnat to"), "the DNAT rule for 6379 is in the agent's table: {rules}");
    assert!(eventually(10, || {
        let out = std::process::Command::new("timeout")
            .args(["3", "busybox", "nc", "127.0.0.1", "6379"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "+PONG"
    }));
    a.ok(&["rm", "-f", "redis"]);
    let rules = std::process::Command::new("nft").args(["list", "table", "ip", &a.instance]).output().unwrap();
    let rules = String::from_utf8_lossy(&rules.stdout).to_string();
    assert!(!rules.contains("dport 6379"), "the rule goes with the container: {rules}");
}

/// Networks created while the agent runs, after its table was first applied, are isolated
/// and masqueraded at once (not only after a restart or a published port).
#[test]
fn networks_created_at_runtime_get_their_rules_at_once() {
    if !privileged("late_networks") {
        return;
    }
    let a = Agent::start("latenet");
    let b = (std::process::id() % 200) as u8 + 20;
    // The agent's table exists (for the default bridge) before the networks do.
    a.ok(&["run", "--rm", IMG, "true"]);
    a.ok(&["network", "create", "n1", "--subnet", &format!("10.244.{b}.0/24")]);
    a.ok(&["network", "create", "n2", "--subnet", &format!("10.245.{b}.0/24")]);
    a.ok(&["run", "-d", "--name", "u1", "--network", "n1", IMG, "sleep", "300"]);
    let ip1 = a.inspect("u1")["NetworkSettings"]["IPAddress"].as_str().unwrap().to_string();
    // u1 answers pings from its own network…
    let same = a.ctl(&["run", "--rm", "--network", "n1", IMG, "ping", "-c1", "-W2", &ip1]);
    assert_eq!(same.code, 0, "same network: {}{}", same.stdout, same.stderr);
    // …not from another one.
    let other = a.ctl(&["run", "--rm", "--network", "n2", IMG, "ping", "-c1", "-W2", &ip1]);
    assert_ne!(other.code, 0, "networks must be isolated: {}", other.stdout);
    // And n2 has egress through masquerade: the server sees the host's address.
    let server = TestHost::new("lsrv", 254, b);
    let out = egress_source(&a, "n2", &server, 8082);
    assert_eq!(out, server.host_ip, "masquerade for a network created at runtime");
    a.ok(&["rm", "-f", "u1"]);
    a.ok(&["network", "rm", "n1"]);
    a.ok(&["network", "rm", "n2"]);
    a.assert_no_leftovers();
}

/// The IPv4 address of `dev` inside container `name`, as its kernel has it.
fn addr_inside(a: &Agent, name: &str, dev: &str) -> String {
    let out = a.ok(&["exec", name, "ip", "-4", "addr", "show", "dev", dev]);
    out.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_default().to_string()
}

/// Ten connects at once to a new network, and ten runs at once on another: every call
/// succeeds (the bridge is created once) and every container gets its own address.
#[test]
fn concurrent_connects_and_runs_get_distinct_addresses() {
    if !privileged("concurrent_ipam") {
        return;
    }
    let a = Agent::start("raceipam");
    let b = (std::process::id() % 200) as u8 + 20;
    let names: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    for n in &names {
        a.ok(&["run", "-d", "--name", n, IMG, "sleep", "300"]);
    }
    a.ok(&["network", "create", "racenet", "--subnet", &format!("10.246.{b}.0/24")]);
    let results: Vec<e2e::Ctl> = std::thread::scope(|s| {
        let hs: Vec<_> = names.iter().map(|n| s.spawn(|| a.ctl(&["network", "connect", "racenet", n]))).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (n, r) in names.iter().zip(&results) {
        assert_eq!(r.code, 0, "connect {n}: {}{}", r.stdout, r.stderr);
    }
    let mut ips: Vec<String> = names.iter().map(|n| addr_inside(&a, n, "eth1")).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 10, "ten distinct addresses on racenet: {ips:?}");
    assert!(ips.iter().all(|ip| ip.starts_with(&format!("10.246.{b}."))), "{ips:?}");

    a.ok(&["network", "create", "racenet2", "--subnet", &format!("10.247.{b}.0/24")]);
    let results: Vec<e2e::Ctl> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..10)
            .map(|i| {
                let a = &a;
                s.spawn(move || {
                    let n = format!("s{i}");
                    a.ctl(&["run", "-d", "--name", &n, "--network", "racenet2", IMG, "sleep", "300"])
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.code, 0, "run s{i}: {}{}", r.stdout, r.stderr);
    }
    let mut ips: Vec<String> = (0..10).map(|i| addr_inside(&a, &format!("s{i}"), "eth0")).collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 10, "ten distinct addresses on racenet2: {ips:?}");
    // Every one of them lists all ten peers in its /etc/hosts (those started later reach
    // the earlier ones' files in a pass a moment after, runtime/peers.rs), and after five
    // are removed the others list the five left.
    let peers_in = |n: &str| -> Vec<String> {
        let mut v: Vec<String> = a
            .ok(&["exec", n, "sh", "-c", "sed -n '/^# containers of network/,$p' /etc/hosts"])
            .lines()
            .filter_map(|l| l.split('\t').nth(1).map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let all: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    for n in &all {
        assert!(e2e::eventually(10, || peers_in(n) == all), "{n}: {:?}", peers_in(n));
    }
    a.ok(&["rm", "-f", "s0", "s1", "s2", "s3", "s4"]);
    for n in &all[5..] {
        assert!(e2e::eventually(10, || peers_in(n) == all[5..]), "{n}: {:?}", peers_in(n));
    }
    let ids = a.ok(&["ps", "-aq"]);
    for id in ids.split_whitespace() {
        a.ok(&["rm", "-f", id]);
    }
    a.ok(&["network", "rm", "racenet"]);
    a.ok(&["network", "rm", "racenet2"]);
    a.assert_no_leftovers();
}

#[test]
fn network_aliases_resolve_for_peers() {
    if !privileged("network_aliases_resolve_for_peers") {
        return;
    }
    let a = Agent::start("netalias");
    let b = (std::process::id() % 200) as u8 + 20;
    a.ok(&["network", "create", "an1", "--subnet", &format!("10.253.{b}.0/24")]);
    let serve = "while true; do echo hi-from-cache | nc -l -p 80; done";
    a.ok(&[
        "run",
        "-d",
        "--name",
        "p-cache-1",
        "--network",
        "an1",
        "--network-alias",
        "cache",
        "--network-alias",
        "kv.local",
        IMG,
        "sh",
        "-c",
        serve,
    ]);
    let cmd = "grep -w cache /etc/hosts | grep -c kv.local; timeout 3 nc cache 80; timeout 3 nc kv.local 80; exit 0";
    let ok = eventually(15, || {
        let out = a.ctl(&["run", "--rm", "--network", "an1", IMG, "sh", "-c", cmd]).stdout;
        out.trim() == "1\nhi-from-cache\nhi-from-cache"
    });
    assert!(ok, "peers reach the container by its aliases");
    let r = a.ctl(&["run", "--rm", "--network-alias", "bad alias", IMG, "true"]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("invalid --network-alias \"bad alias\""), "{}", r.stderr);
    a.ok(&["rm", "-f", "p-cache-1"]);
    a.ok(&["network", "rm", "an1"]);
    a.assert_no_leftovers();
}
