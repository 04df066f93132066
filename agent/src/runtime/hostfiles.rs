//! The files the agent writes for a container and binds into it: /etc/hostname, /etc/hosts
//! (its own entries, `--add-host`, and the running peers of its networks, rewritten in place
//! as they come and go) and /etc/resolv.conf.

use super::lifecycle::io;
use super::{ContainerRecord, Result, Runtime, State};
use crate::isolation::spec::NetMode;
use std::path::Path;

impl Runtime {
    pub(super) fn prepare_dir(&self, rec: &ContainerRecord, dir: &Path) -> Result<()> {
        std::fs::create_dir(dir).map_err(io("create", dir))?;
        self.rootfs_spec(rec).prepare().map_err(io("create rootfs in", dir))?;
        let own_ip = if rec.ip.is_empty() { "127.0.1.1".to_string() } else { rec.ip.clone() };
        let hosts = match rec.network {
            NetMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            _ => format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{own_ip}\t{} {}\n",
                rec.hostname, rec.name
            ),
        };
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = match rec.network {
            NetMode::Host
                if rec.spec.dns.is_empty() && rec.spec.dns_search.is_empty() && rec.spec.dns_options.is_empty() =>
            {
                host_resolv
            }
            _ => {
                let dns = super::dns::Dns {
                    servers: &rec.spec.dns,
                    search: &rec.spec.dns_search,
                    options: &rec.spec.dns_options,
                };
                super::dns::resolv_conf(&host_resolv, dns, &self.cfg.network.dns_upstream)
            }
        };
        let mut hosts = hosts;
        for h in &rec.spec.add_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        for (f, content) in [
            ("hostname", format!("{}\n", rec.hostname)),
            ("hosts.base", hosts.clone()),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ] {
            let p = dir.join(f);
            std::fs::write(&p, content).map_err(io("write", &p))?;
        }
        // There from the start, so an attach made before the first start holds it open.
        let log = super::logs::log_base(dir, &rec.spec.log_config);
        std::fs::write(&log, "").map_err(io("write", &log))?;
        if let Some(l) = &rec.userns {
            // The container's root owns its root directory and its /etc files, as in
            // Docker with userns-remap (the host's root would be "nobody" in there).
            let (uid, gid) = l.map.root();
            let rootfs = self.rootfs_spec(rec);
            for p in [rootfs.upper, dir.join("hostname"), dir.join("hosts"), dir.join("resolv.conf")] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid)).map_err(io("chown", &p))?;
            }
        }
        Ok(())
    }

    /// Rewrites /etc/hosts of every container on network `net`: its own entries plus one
    /// line per running container of the same network, so they resolve each other by name.
    /// Written in place: the file is bind-mounted into the containers.
    pub(super) fn refresh_hosts(&self, net: &str) {
        self.refresh_hosts_with(net, None)
    }

    /// Like [`Self::refresh_hosts`], counting `starting` as running: its file is then
    /// already final before its command runs, and is not rewritten under it afterwards.
    pub(super) fn refresh_hosts_with(&self, net: &str, starting: Option<&str>) {
        let _serial = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        let all = match self.list() {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!(network = net, error = %e, "refreshing /etc/hosts: listing containers");
                return;
            }
        };
        let members: Vec<&ContainerRecord> = all
            .iter()
            .filter(|c| c.state != State::Removing && c.bridge_networks().iter().any(|(n, _)| n == net))
            .collect();
        let peers_of = |n: &str| -> String {
            all.iter()
                .filter(|c| c.state == State::Running || Some(c.id.as_str()) == starting)
                .filter_map(|c| {
                    c.bridge_networks().into_iter().find(|(cn, _)| cn == n).map(|(_, ip)| {
                        let names: Vec<&str> = std::iter::once(c.name.as_str())
                            .chain(c.spec.network_aliases.iter().map(String::as_str))
                            .collect();
                        format!("{ip}\t{}\n", names.join(" "))
                    })
                })
                .collect()
        };
        for c in members {
            let dir = self.container_dir(&c.id);
            let mut text = match std::fs::read_to_string(dir.join("hosts.base")) {
                Ok(t) => t,
                // Removed meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(container = %c.id, error = %e, "refreshing /etc/hosts: reading hosts.base");
                    continue;
                }
            };
            for (n, _) in c.bridge_networks() {
                text.push_str(&format!("# containers of network {n}\n{}", peers_of(&n)));
            }
            // Rewritten in place (a rename would break the bind mount): only on change.
            // Never created here: a container removed meanwhile (its directory being
            // deleted, `rm -f` of several at once) must not get its file back.
            if std::fs::read_to_string(dir.join("hosts")).ok().as_deref() != Some(text.as_str()) {
                let f = std::fs::OpenOptions::new().write(true).truncate(true).open(dir.join("hosts"));
                match f.and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes())) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(container = %c.id, error = %e, "rewriting /etc/hosts"),
                }
            }
        }
    }
}
