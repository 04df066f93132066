//! `explain`: how a running container is isolated, read back from the kernel rather than
//! from what was asked: its namespaces (and who shares them), cgroups and the limits in
//! force, the overlay root with the images owning each lower layer, the network path and
//! the nftables rules naming its address, capabilities, seccomp, no_new_privs, ID maps,
//! and its sysctls as its own namespaces see them. The parsers are pure and unit-tested;
//! the reads are of /proc and the cgroup files, nothing is changed.

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The namespace types, in the order they are shown.
pub const NAMESPACES: &[&str] = &["pid", "uts", "ipc", "mnt", "net", "cgroup", "user", "time"];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    pub id: String,
    pub name: String,
    pub pid: i32,
    pub namespaces: Vec<Namespace>,
    /// (controllers, path) from /proc/PID/cgroup.
    pub cgroups: Vec<(String, String)>,
    pub limits: BTreeMap<String, String>,
    pub overlay: Overlay,
    pub network: NetworkPath,
    pub security: Security,
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Namespace {
    pub kind: String,
    pub inode: u64,
    /// "" (its own), "host", or the names of the containers sharing it.
    pub shared_with: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overlay {
    /// (path, diff ID, images with that layer), top first.
    pub lower: Vec<(String, String, Vec<String>)>,
    pub upper: String,
    pub work: String,
    pub mount_options: String,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkPath {
    pub mode: String,
    pub links: Vec<Link>,
    pub rules: Vec<String>,
    pub ports: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub network: String,
    pub bridge: String,
    pub host_veth: String,
    pub host_veth_present: bool,
    pub ip: String,
    pub gateway: String,
    pub container_interfaces: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Security {
    pub capabilities: Vec<String>,
    pub bounding: Vec<String>,
    pub seccomp: String,
    pub seccomp_filters: u32,
    pub no_new_privs: bool,
    pub uid_map: Vec<String>,
    pub gid_map: Vec<String>,
    pub read_only_rootfs: bool,
}

/// The inode of `/proc/<pid>/ns/<kind>` (`net:[4026531840]`).
fn ns_inode(pid: &str, kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    parse_ns_link(&link.to_string_lossy())
}

fn parse_ns_link(s: &str) -> Option<u64> {
    s.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// `/proc/PID/cgroup` lines → (controllers, path).
fn parse_cgroup_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
            Some((ctrl.trim_start_matches("name=").to_string(), path.to_string()))
        })
        .collect()
}

/// The options of the mount at `/` in a mountinfo (mount options + super options).
fn root_mount_options(mountinfo: &str) -> Option<String> {
    mountinfo.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let f: Vec<&str> = pre.split(' ').collect();
        if f.get(4) != Some(&"/") {
            return None;
        }
        let p: Vec<&str> = post.split(' ').collect();
        Some(format!("{} {} {}", p.first()?, f.get(5).unwrap_or(&""), p.get(2).unwrap_or(&"")))
    })
}

/// A `/proc/PID/status` field.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

/// Capability names of a hex mask (`CapEff:\t00000000a80425fb`).
fn cap_names(hex_mask: &str) -> Vec<String> {
    let Ok(mask) = u64::from_str_radix(hex_mask, 16) else { return vec![] };
    let mut v: Vec<String> = caps::all()
        .into_iter()
        .filter(|c| c.index() < 64 && mask & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect();
    v.sort();
    v
}

fn seccomp_mode(v: &str) -> &'static str {
    match v {
        "0" => "disabled",
        "1" => "strict",
        "2" => "filter",
        _ => "unknown",
    }
}

/// Interface names in a `/proc/PID/net/dev`.
fn interfaces(net_dev: &str) -> Vec<String> {
    net_dev.lines().skip(2).filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string())).collect()
}

/// Reads the sysctls `keys` as the namespaces of `pid` see them: a thread joins its net, ipc
/// and uts namespaces (per-thread for these) and reads /proc/sys.
fn read_sysctls(pid: i32, keys: Vec<String>) -> BTreeMap<String, String> {
    let join = std::thread::spawn(move || {
        use nix::sched::{setns, CloneFlags};
        let mut out = BTreeMap::new();
        for (ns, flag) in
            [("net", CloneFlags::CLONE_NEWNET), ("ipc", CloneFlags::CLONE_NEWIPC), ("uts", CloneFlags::CLONE_NEWUTS)]
        {
            let joined = std::fs::File::open(format!("/proc/{pid}/ns/{ns}"))
                .map_err(|e| e.to_string())
                .and_then(|f| setns(f, flag).map_err(|e| e.to_string()));
            if let Err(e) = joined {
                for k in &keys {
                    out.insert(k.clone(), format!("(cannot join the {ns} namespace: {e})"));
                }
                return out;
            }
        }
        for k in keys {
            let path = PathBuf::from("/proc/sys").join(k.replace('.', "/"));
            let v = match std::fs::read_to_string(&path) {
                Ok(v) => v.trim().replace('\t', " "),
                Err(e) => format!("(unreadable: {e})"),
            };
            out.insert(k, v);
        }
        out
    });
    join.join().unwrap_or_default()
}

impl Runtime {
    /// Explains a running container.
    pub fn explain(&self, name: &str) -> Result<Explanation> {
        let rec = self.resolve(name)?;
        if rec.state != State::Running || rec.pid <= 0 {
            return Err(RuntimeError::FailedPrecondition(format!(
                "container {} is not running: explain reads its processes' namespaces",
                rec.name
            )));
        }
        let pid = rec.pid;
        let read = |p: String| std::fs::read_to_string(&p).unwrap_or_default();
        let mut x = Explanation { id: rec.id.clone(), name: rec.name.clone(), pid, ..Default::default() };
        x.namespaces = self.namespaces(&rec)?;
        x.cgroups = parse_cgroup_file(&read(format!("/proc/{pid}/cgroup")));
        x.limits = limits(&self.cgroups.read_back(&rec.cg()));
        x.overlay = self.overlay(&rec, &read(format!("/proc/{pid}/mountinfo")))?;
        x.network = self.network_path(&rec, &read(format!("/proc/{pid}/net/dev")));
        let status = read(format!("/proc/{pid}/status"));
        x.security = Security {
            capabilities: cap_names(status_field(&status, "CapEff").unwrap_or("")),
            bounding: cap_names(status_field(&status, "CapBnd").unwrap_or("")),
            seccomp: seccomp_mode(status_field(&status, "Seccomp").unwrap_or("")).to_string(),
            seccomp_filters: status_field(&status, "Seccomp_filters").and_then(|v| v.parse().ok()).unwrap_or(0),
            no_new_privs: status_field(&status, "NoNewPrivs") == Some("1"),
            uid_map: read(format!("/proc/{pid}/uid_map"))
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect(),
            gid_map: read(format!("/proc/{pid}/gid_map"))
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect(),
            read_only_rootfs: rec.spec.read_only,
        };
        x.sysctls = read_sysctls(pid, rec.spec.sysctls.keys().cloned().collect());
        Ok(x)
    }

    fn namespaces(&self, rec: &ContainerRecord) -> Result<Vec<Namespace>> {
        let others: Vec<ContainerRecord> =
            self.list()?.into_iter().filter(|c| c.state == State::Running && c.id != rec.id && c.pid > 0).collect();
        let mut out = Vec::new();
        for kind in NAMESPACES {
            let Some(inode) = ns_inode(&rec.pid.to_string(), kind) else { continue };
            // The agent's own namespaces are the host's (PID 1's may not be readable).
            let shared_with = if ns_inode("self", kind) == Some(inode) {
                "host".to_string()
            } else {
                let names: Vec<&str> = others
                    .iter()
                    .filter(|c| ns_inode(&c.pid.to_string(), kind) == Some(inode))
                    .map(|c| c.name.as_str())
                    .collect();
                names.join(",")
            };
            out.push(Namespace { kind: kind.to_string(), inode, shared_with });
        }
        Ok(out)
    }

    fn overlay(&self, rec: &ContainerRecord, mountinfo: &str) -> Result<Overlay> {
        let spec = self.rootfs_spec(rec);
        let images = self.images.list().map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let owners = |diff: &str| -> Vec<String> {
            images
                .iter()
                .filter(|i| i.layers.iter().any(|l| l.diff_id == diff))
                .map(|i| i.familiar_tags().first().cloned().unwrap_or_else(|| i.id.chars().take(19).collect()))
                .collect()
        };
        // rootfs_spec's lowers are top first; rec.layers bottom first.
        let diffs: Vec<&String> = rec.layers.iter().rev().collect();
        let lower = spec
            .lower
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let d = diffs.get(i).map(|d| d.to_string()).unwrap_or_default();
                (p.display().to_string(), d.clone(), owners(&d))
            })
            .collect();
        Ok(Overlay {
            lower,
            upper: spec.upper.display().to_string(),
            work: spec.work.display().to_string(),
            mount_options: root_mount_options(mountinfo).unwrap_or_default(),
        })
    }

    fn network_path(&self, rec: &ContainerRecord, net_dev: &str) -> NetworkPath {
        let mode = if rec.spec.network.is_empty() { "bridge".to_string() } else { rec.spec.network.clone() };
        let container_interfaces = interfaces(net_dev);
        let mut links = Vec::new();
        for (i, (net, ip)) in rec.bridge_networks().into_iter().enumerate() {
            let net = if net.is_empty() { "bridge".to_string() } else { net };
            let host_veth =
                if i == 0 { self.net_names.veth(&rec.id) } else { self.net_names.veth(&format!("{}/{net}", rec.id)) };
            let (bridge, gateway) = match self.network_def(&net) {
                Ok(d) => (d.bridge.clone(), d.subnet.gateway().to_string()),
                Err(_) => (String::new(), String::new()),
            };
            links.push(Link {
                network: net,
                bridge,
                host_veth_present: self.host.links.link_exists(&host_veth),
                host_veth,
                ip,
                gateway,
                container_interfaces: container_interfaces.clone(),
            });
        }
        if links.is_empty() && !container_interfaces.is_empty() {
            links.push(Link { network: mode.clone(), container_interfaces, ..Default::default() });
        }
        let ips: Vec<String> = links.iter().map(|l| l.ip.clone()).filter(|ip| !ip.is_empty()).collect();
        let rules = match self.host.firewall.ruleset(&self.net_names.table) {
            Ok(text) => rules_naming(&text, &ips),
            Err(e) => vec![format!("(cannot list the nftables table {}: {e})", self.net_names.table)],
        };
        NetworkPath { mode, links, rules, ports: rec.ports.iter().map(port_string).collect() }
    }
}

/// `[host_ip:]host_port->container_port/proto`, as docker's `port` prints it.
fn port_string(p: &crate::network::PortMap) -> String {
    let host = p.host_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "0.0.0.0".into());
    format!("{}/{} -> {host}:{}", p.container_port, p.proto, p.host_port)
}

/// The rules of an `nft list table` that name one of `ips` as a whole address.
fn rules_naming(ruleset: &str, ips: &[String]) -> Vec<String> {
    ruleset
        .lines()
        .map(str::trim)
        .filter(|l| {
            ips.iter().any(|ip| {
                l.match_indices(ip.as_str()).any(|(i, _)| {
                    let after = l[i + ip.len()..].chars().next();
                    let before = l[..i].chars().last();
                    !after.is_some_and(|c| c.is_ascii_digit() || c == '.')
                        && !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                })
            })
        })
        .map(str::to_string)
        .collect()
}

/// Limits with docker's names; unset ones are left out.
fn limits(r: &crate::cgroups::Resources) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("CpuQuota", r.cpu_quota.map(|v| v.to_string()));
    put("CpuPeriod", r.cpu_period.map(|v| v.to_string()));
    put("CpuShares", r.cpu_shares.map(|v| v.to_string()));
    put("CpusetCpus", r.cpuset_cpus.clone());
    put("CpusetMems", r.cpuset_mems.clone());
    put("Memory", r.memory.map(|v| v.to_string()));
    put("MemoryReservation", r.memory_reservation.map(|v| v.to_string()));
    put("MemorySwap", r.memory_swap.map(|v| v.to_string()));
    put("PidsLimit", r.pids_limit.map(|v| v.to_string()));
    put("BlkioWeight", r.blkio_weight.map(|v| v.to_string()));
    put("OomScoreAdj", r.oom_score_adj.map(|v| v.to_string()));
    put("MemorySwappiness", r.memory_swappiness.map(|v| v.to_string()));
    put("OomKillDisable", r.oom_kill_disable.map(|v| v.to_string()));
    put("CpuRealtimePeriod", r.cpu_rt_period.map(|v| v.to_string()));
    put("CpuRealtimeRuntime", r.cpu_rt_runtime.map(|v| v.to_string()));
    let b = &r.blkio_devices;
    let lines = |l: &[crate::cgroups::blkio::DeviceLimit]| {
        (!l.is_empty()).then(|| l.iter().map(|d| d.line()).collect::<Vec<_>>().join(", "))
    };
    put("BlkioDeviceReadBps", lines(&b.read_bps));
    put("BlkioDeviceWriteBps", lines(&b.write_bps));
    put("BlkioDeviceReadIOps", lines(&b.read_iops));
    put("BlkioDeviceWriteIOps", lines(&b.write_iops));
    put("BlkioWeightDevice", lines(&b.weight));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        assert_eq!(parse_ns_link("net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_ns_link("garbage"), None);
        let cg = parse_cgroup_file("12:memory:/agentd/abc\n1:name=systemd:/agentd/abc\n0::/\n");
        assert_eq!(cg[0], ("memory".into(), "/agentd/abc".into()));
        assert_eq!(cg[1].0, "systemd");
        assert_eq!(cg[2], ("".into(), "/".into()));
        let mi = "22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w\n\
                  23 22 0:22 / /proc rw - proc proc rw\n";
        assert_eq!(root_mount_options(mi).unwrap(), "overlay rw,relatime rw,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w");
        let st = "Name:\tsh\nCapEff:\t00000000a80425fb\nSeccomp:\t2\nSeccomp_filters:\t1\nNoNewPrivs:\t1\n";
        let caps = cap_names(status_field(st, "CapEff").unwrap());
        assert!(
            caps.contains(&"CAP_CHOWN".to_string()) && caps.contains(&"CAP_NET_BIND_SERVICE".to_string()),
            "{caps:?}"
        );
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(caps.len(), 14, "docker's default set: {caps:?}");
        assert_eq!(seccomp_mode(status_field(st, "Seccomp").unwrap()), "filter");
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 0 0\n  eth0: 1 2\n";
        assert_eq!(interfaces(dev), ["lo", "eth0"]);
    }

    #[test]
    fn rules_are_matched_on_whole_addresses() {
        let rs = "table ip t {\n  chain c {\n    ip daddr 10.88.0.2 accept\n    ip daddr 10.88.0.20 accept\n    dnat to 10.88.0.2:80\n  }\n}";
        assert_eq!(rules_naming(rs, &["10.88.0.2".into()]), ["ip daddr 10.88.0.2 accept", "dnat to 10.88.0.2:80"]);
        assert!(rules_naming(rs, &[]).is_empty());
    }
}
