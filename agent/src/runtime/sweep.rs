//! What a crash can leave behind, found and repaired when the agent starts: container
//! directories without a record and records without a directory, processes and cgroups of
//! containers whose start was never recorded, address leases of containers that are gone,
//! and cgroups of the instance that belong to no container, shim or group. (Unfinished
//! layers under `<root>/tmp` go when the image store opens.) Each repair is logged.

use super::{ContainerRecord, Runtime, State};
use crate::store::Kind;
use std::collections::HashSet;

impl Runtime {
    /// Repairs what no record accounts for (after `recover` has settled the records).
    pub(super) fn sweep(&self) {
        self.sweep_records();
        // Layers and blobs a pull or import stored before the agent died and before it
        // recorded their image (half-unpacked layers under `tmp/` went when the image store
        // opened).
        match self.container_images().and_then(|u| Ok(self.images.gc(&u)?)) {
            Ok(removed) => {
                for p in removed {
                    tracing::warn!(path = %p.display(), "start-up sweep: removed a layer or blob no image or container uses");
                }
            }
            Err(e) => tracing::warn!(error = %e, "start-up sweep: cannot collect unused layers and blobs"),
        }
        // Volume directories without a record (their owner, `volume/`, repairs them).
        self.volumes.sweep();
        let recs: Vec<ContainerRecord> = match self.list() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "start-up sweep: cannot list containers; nothing swept");
                return;
            }
        };
        let ids: HashSet<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        // Directories: a create that died between making the directory and the record.
        let dir = self.cfg.root.join("containers");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !ids.contains(name.as_str()) {
                    match std::fs::remove_dir_all(e.path()) {
                        Ok(()) => {
                            tracing::warn!(dir = %e.path().display(), "start-up sweep: removed a container directory without a record")
                        }
                        Err(err) => {
                            tracing::warn!(dir = %e.path().display(), error = %err, "start-up sweep: cannot remove a container directory without a record")
                        }
                    }
                }
            }
        }
        // Leases (`<network>/<ip>` → container ID) of containers that no longer exist.
        match self.store.all_entries::<String>(Kind::Lease) {
            Ok(leases) => {
                for (key, owner) in leases {
                    if !ids.contains(owner.as_str()) {
                        match self.store.delete(Kind::Lease, &key) {
                            Ok(()) => {
                                tracing::warn!(lease = %key, container = %owner, "start-up sweep: released the address of a container that is gone")
                            }
                            Err(e) => {
                                tracing::warn!(lease = %key, error = %e, "start-up sweep: cannot release a stale lease")
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "start-up sweep: cannot read the leases"),
        }
        // Cgroups: `<id>`, `shim-<id>` and `group-<name>` are accounted for; the rest of
        // those names goes (a cgroup that still holds processes cannot be removed: that is
        // logged). Other names are not the agent's to remove: a `--cgroup-parent` that
        // existed before its containers stays, as docker leaves it.
        let mut keep: HashSet<String> = HashSet::new();
        for r in &recs {
            keep.insert(r.cg().split('/').next().unwrap_or_default().to_string());
            keep.insert(r.shim_cg());
        }
        if let Ok(groups) = self.groups() {
            keep.extend(groups.iter().map(|g| super::group_cgroup(&g.name)));
        }
        let ours = |c: &str| {
            let id = c.strip_prefix("shim-").unwrap_or(c);
            c.starts_with("group-") || (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        };
        for c in self.cgroups.children() {
            if !keep.contains(&c) && ours(&c) {
                match self.cgroups.remove(&c) {
                    Ok(()) => tracing::warn!(cgroup = %c, "start-up sweep: removed a cgroup without a container"),
                    Err(e) => {
                        tracing::warn!(cgroup = %c, error = %e, "start-up sweep: cannot remove a cgroup without a container")
                    }
                }
            }
        }
    }

    /// Records a crash made wrong: a container that is not running but has a cgroup (the
    /// agent died while starting it: the start is undone, its processes killed), and a
    /// record whose directory is gone (removed with its event and its leases).
    fn sweep_records(&self) {
        let recs: Vec<ContainerRecord> = match self.list() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "start-up sweep: cannot list containers; records not checked");
                return;
            }
        };
        for rec in recs.iter().filter(|r| r.state != State::Running) {
            for cg in [rec.cg(), rec.shim_cg()] {
                if self.cgroups.dirs(&cg).iter().any(|d| d.exists()) {
                    self.cgroups.kill_all(&cg);
                    match self.cgroups.remove(&cg) {
                        Ok(()) => tracing::warn!(container = %rec.id, cgroup = %cg, state = ?rec.state,
                            "start-up sweep: killed the processes and removed the cgroup of a container whose start was not recorded"),
                        Err(e) => tracing::warn!(container = %rec.id, cgroup = %cg, error = %e,
                            "start-up sweep: cannot remove the cgroup of a container that is not running"),
                    }
                }
            }
            if !self.container_dir(&rec.id).exists() {
                let gone = self.save_and_log(rec, "destroy", &[], true).and_then(|()| self.release(rec));
                match gone {
                    Ok(()) => tracing::warn!(container = %rec.id, name = %rec.name,
                        "start-up sweep: removed a container record whose directory is gone"),
                    Err(e) => tracing::warn!(container = %rec.id, error = %e,
                        "start-up sweep: cannot remove a container record whose directory is gone"),
                }
                self.forget(&rec.id);
            }
        }
    }
}
