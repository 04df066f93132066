//! `--ip`, `--ip6`, `--mac-address`, `--uts` and `--storage-opt`: typed once where the
//! request comes in (`NetOpts::parse`, called by `api/convert.rs`), checked at create
//! against the container's network and the host (docker 20.10's rules and messages), and
//! the fixed address leased in one store transaction (`Runtime::lease_fixed`).

use super::{ContainerSpec, Result, Runtime, RuntimeError};
use crate::isolation::spec::NetMode;
use crate::network::mac::MacAddr;
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The options of this module, as the record keeps them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct NetOpts {
    /// `--ip`: a fixed address on its user-defined network, leased at create, kept until rm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: refused at create (the networks here are IPv4-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip6: Option<Ipv6Addr>,
    /// `--mac-address`: eth0's MAC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// `--uts host`: the host's UTS namespace (its hostname; no sethostname).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub uts_host: bool,
    /// `--storage-opt size=N`, bytes (refused at create, see [`check_storage_quota`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_size: Option<u64>,
}

fn bad(m: String) -> RuntimeError {
    RuntimeError::InvalidArgument(m)
}

impl NetOpts {
    /// Docker's strings (empty: not given), checked for form only (InvalidArgument naming
    /// the value); what depends on the network or the host is checked at create.
    pub fn parse(ip: &str, ip6: &str, mac: &str, uts: &str, storage: &BTreeMap<String, String>) -> Result<NetOpts> {
        let ip = match ip {
            "" => None,
            s => Some(s.parse::<Ipv4Addr>().map_err(|_| bad(format!("invalid IPv4 address: {s}")))?),
        };
        let ip6 = match ip6 {
            "" => None,
            s => Some(s.parse::<Ipv6Addr>().map_err(|_| bad(format!("invalid IPv6 address: {s}")))?),
        };
        let mac = match mac {
            "" => None,
            s => Some(MacAddr::parse(s)?),
        };
        let uts_host = match uts {
            "" => false,
            "host" => true,
            u => return Err(bad(format!("invalid UTS mode {u:?}: use host (or nothing, for its own)"))),
        };
        let mut storage_size = None;
        for (k, v) in storage {
            match k.as_str() {
                "size" => {
                    let n = crate::logfile::config::human_size(v, true)
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad(format!("invalid --storage-opt size={v}: use a size like 10G")))?;
                    storage_size = Some(n);
                }
                _ => return Err(bad(format!("unknown --storage-opt {k:?}: only size=N is supported"))),
            }
        }
        Ok(NetOpts { ip, ip6, mac, uts_host, storage_size })
    }
}

impl Runtime {
    /// Checks the options of a spec against its network `mode` (`spec.network` holds the
    /// network's name) and the host; nothing is taken yet.
    pub(super) fn check_net_opts(&self, spec: &ContainerSpec, mode: NetMode) -> Result<()> {
        check_conflicts(spec, mode)?;
        let o = &spec.net_opts;
        if o.ip.is_some() || o.ip6.is_some() {
            // The default network's addresses are handed out by the agent, as docker's.
            if mode != NetMode::Bridge || spec.network == "bridge" {
                return Err(bad("user specified IP address is supported on user defined networks only".into()));
            }
            let def = self.network_def(&spec.network)?;
            if let Some(ip6) = o.ip6 {
                return Err(bad(format!("invalid --ip6 {ip6}: network {} has no IPv6 subnet", def.name)));
            }
            if let Some(ip) = o.ip {
                if let Some(why) = def.subnet.unusable(ip) {
                    return Err(bad(format!(
                        "invalid --ip {ip}: it is {why} of network {} ({})",
                        def.name, def.subnet
                    )));
                }
            }
        }
        if o.storage_size.is_some() {
            check_storage_quota(&self.cfg.root)?;
        }
        Ok(())
    }

    /// Leases `ip` on network `net` to container `id` (key `<net>/<ip>`), looked up and
    /// taken in one store transaction: of concurrent creates asking for one address,
    /// exactly one gets it; the others are told who holds it (AlreadyExists).
    pub(super) fn lease_fixed(&self, net: &str, ip: Ipv4Addr, id: &str) -> Result<Ipv4Addr> {
        let Some(holder) = self.store.insert_new(Kind::Lease, &format!("{net}/{ip}"), &id.to_string())? else {
            return Ok(ip);
        };
        let who = self.load(&holder).map(|c| c.name).unwrap_or_else(|_| holder.chars().take(12).collect());
        Err(RuntimeError::AlreadyExists(format!(
            "--ip {ip}: the address is already in use on network {net} by container {who}"
        )))
    }
}

/// What the options conflict with in the rest of `spec` (its network in `mode`).
fn check_conflicts(spec: &ContainerSpec, mode: NetMode) -> Result<()> {
    let o = &spec.net_opts;
    if o.uts_host && !spec.hostname.is_empty() {
        return Err(bad("conflicting options: hostname and the UTS mode".into()));
    }
    if o.uts_host && !spec.domainname.is_empty() {
        return Err(bad("conflicting options: domainname and the UTS mode".into()));
    }
    // The UTS namespace's own sysctls, in the host's namespace, would rename the host.
    let uts_key = |k: &str| matches!(k.trim().replace('/', ".").as_str(), "kernel.domainname" | "kernel.hostname");
    if let Some(k) = spec.sysctls.keys().find(|k| o.uts_host && uts_key(k)) {
        return Err(bad(format!("sysctl {k} is not allowed with --uts host: it would change the host's value")));
    }
    if o.mac.is_some() && mode != NetMode::Bridge {
        return Err(bad(format!(
            "conflicting options: mac-address and the network mode ({}): a MAC address needs a bridge network",
            spec.network
        )));
    }
    Ok(())
}

/// The host's hostname, for a `--uts host` container's record, /etc/hostname and HOSTNAME.
pub(super) fn host_hostname() -> Result<String> {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .map_err(|e| RuntimeError::Internal(format!("gethostname: {e}")))
}

/// `--storage-opt size`: like docker, only for overlay over xfs mounted with project quotas
/// (`pquota`/`prjquota`); the quota itself (FS_IOC_FSSETXATTR project IDs) is not
/// implemented yet, so every size is refused (FailedPrecondition naming the filesystem of
/// the agent's root) before anything is made.
pub(super) fn check_storage_quota(root: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|err| RuntimeError::Io {
        what: "read",
        path: "/proc/self/mountinfo".into(),
        err,
    })?;
    let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let m = crate::isolation::mounts::mount_of(&info, &canon);
    let (fstype, opts) = m.map(|m| (m.fstype, m.super_options)).unwrap_or_else(|| ("unknown".into(), vec![]));
    Err(RuntimeError::FailedPrecondition(storage_refusal(root, &fstype, &opts)))
}

/// Why `--storage-opt size` is refused for an agent root on `fstype` with super options `opts`.
fn storage_refusal(root: &Path, fstype: &str, opts: &[String]) -> String {
    let pquota = opts.iter().any(|o| matches!(o.as_str(), "pquota" | "prjquota" | "pqnoenforce"));
    if fstype == "xfs" && pquota {
        format!(
            "--storage-opt size: the agent root {} is on xfs with project quotas, but this agent does not set \
             project quotas yet",
            root.display()
        )
    } else {
        let how =
            if fstype == "xfs" { "xfs without the 'pquota' mount option".to_string() } else { fstype.to_string() };
        format!(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option: the agent root {} \
             is on {how}",
            root.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ip: &str, ip6: &str, mac: &str, uts: &str, storage: &[(&str, &str)]) -> Result<NetOpts> {
        let storage = storage.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        NetOpts::parse(ip, ip6, mac, uts, &storage)
    }

    #[test]
    fn options_parse_into_typed_values() {
        let o = parse("10.9.0.7", "fd00::7", "02:42:ac:11:00:02", "host", &[("size", "10G")]).unwrap();
        assert_eq!(o.ip, Some(Ipv4Addr::new(10, 9, 0, 7)));
        assert_eq!(o.ip6, Some("fd00::7".parse().unwrap()));
        assert_eq!(o.mac.unwrap().to_string(), "02:42:ac:11:00:02");
        assert!(o.uts_host);
        assert_eq!(o.storage_size, Some(10 << 30));
        assert_eq!(parse("", "", "", "", &[]).unwrap(), NetOpts::default());
        // A record without these options stores none of them.
        assert_eq!(serde_json::to_string(&NetOpts::default()).unwrap(), "{}");
    }

    #[test]
    fn bad_values_are_refused_naming_them() {
        let msg = |r: Result<NetOpts>| match r {
            Err(RuntimeError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(msg(parse("10.9.0.300", "", "", "", &[])).contains("10.9.0.300"));
        assert!(msg(parse("fd00::7", "", "", "", &[])).contains("invalid IPv4 address: fd00::7"));
        assert!(msg(parse("", "10.0.0.1", "", "", &[])).contains("invalid IPv6 address: 10.0.0.1"));
        assert!(msg(parse("", "", "03:42:ac:11:00:02", "", &[])).contains("multicast"));
        assert!(msg(parse("", "", "", "container:x", &[])).contains("\"container:x\""));
        assert!(msg(parse("", "", "", "", &[("size", "lots")])).contains("size=lots"));
        assert!(msg(parse("", "", "", "", &[("inodes", "10")])).contains("\"inodes\""));
    }

    #[test]
    fn uts_host_conflicts_with_what_would_name_the_host() {
        let uts = NetOpts { uts_host: true, ..Default::default() };
        let spec = |f: &dyn Fn(&mut ContainerSpec)| {
            let mut s = ContainerSpec { net_opts: uts.clone(), ..Default::default() };
            f(&mut s);
            s
        };
        let msg = |s: ContainerSpec| match check_conflicts(&s, NetMode::Bridge) {
            Err(RuntimeError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(check_conflicts(&spec(&|_| {}), NetMode::Bridge).is_ok());
        assert!(msg(spec(&|s| s.hostname = "x".into())).contains("hostname and the UTS mode"));
        assert!(msg(spec(&|s| s.domainname = "x.test".into())).contains("domainname and the UTS mode"));
        // The UTS namespace's sysctls would change the host's names.
        for key in ["kernel.domainname", "kernel/domainname", "kernel.hostname"] {
            let m = msg(spec(&|s| {
                s.sysctls.insert(key.into(), "evil.test".into());
            }));
            assert!(m.contains("is not allowed with --uts host"), "{key}: {m}");
        }
        let mac = ContainerSpec {
            network: "none".into(),
            net_opts: NetOpts { mac: Some(MacAddr([2, 0, 0, 0, 0, 1])), ..Default::default() },
            ..Default::default()
        };
        assert!(check_conflicts(&mac, NetMode::None).is_err());
        assert!(check_conflicts(&mac, NetMode::Bridge).is_ok());
    }

    #[test]
    fn the_storage_refusal_names_the_filesystem() {
        let root = Path::new("/var/lib/agentd");
        let m = storage_refusal(root, "ext4", &["rw".into()]);
        assert!(
            m.contains("only for overlay over xfs with 'pquota'") && m.contains("/var/lib/agentd is on ext4"),
            "{m}"
        );
        let m = storage_refusal(root, "xfs", &["rw".into(), "noquota".into()]);
        assert!(m.contains("on xfs without the 'pquota' mount option"), "{m}");
        let m = storage_refusal(root, "xfs", &["rw".into(), "prjquota".into()]);
        assert!(m.contains("does not set project quotas yet"), "{m}");
    }
}
