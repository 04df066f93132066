//! The files the agent writes for a container and binds into it: /etc/hostname, /etc/hosts
//! (its own entries and `--add-host` in `hosts.base`; the running peers of its networks are
//! added by `peers.rs`) and /etc/resolv.conf.

use super::lifecycle::io;
use super::{ContainerRecord, Result, Runtime};
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
}
