//! `container prune` and `network prune`: what is not in use goes, as docker decides it.
//! Containers: the stopped ones (created or exited; not those the CRI manages, which
//! kubelet removes itself). Networks: user networks no container is attached to (the
//! default `bridge` stays). Each goes through the same removal as `rm` / `network rm`, so a
//! container started meanwhile is refused by it and stays.

use super::{PruneFilter, Result, Runtime, RuntimeError, State};

impl Runtime {
    /// Removes the stopped containers the filter matches; returns their IDs and the bytes
    /// their writable layers held.
    pub async fn prune_containers(&self, filter: &PruneFilter) -> Result<(Vec<String>, u64)> {
        let (mut deleted, mut bytes) = (Vec::new(), 0);
        for rec in self.list()? {
            if !matches!(rec.state, State::Created | State::Exited)
                || super::sandbox::kind(&rec).is_some()
                || !filter.matches_at(&rec.spec.labels, rec.created_at)
            {
                continue;
            }
            let size = crate::image::usage::du(&self.container_dir(&rec.id).join("upper"));
            match self.remove(&rec.id, false).await {
                Ok(()) => {
                    deleted.push(rec.id);
                    bytes += size;
                }
                // Started, or removed, since it was listed.
                Err(RuntimeError::FailedPrecondition(_) | RuntimeError::NotFound(_)) => {}
                Err(e) => tracing::warn!(id = %rec.id, error = %e, "container prune: cannot remove"),
            }
        }
        Ok((deleted, bytes))
    }

    /// Removes the user networks no container is attached to that the filter matches;
    /// returns their names.
    pub async fn prune_networks(&self, filter: &PruneFilter) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        for (def, rec) in self.networks()? {
            let Some(rec) = rec else { continue };
            if !filter.matches_at(&rec.labels, rec.created_at) || !self.network_members(&def.name)?.is_empty() {
                continue;
            }
            match self.remove_network(&def.name).await {
                Ok(()) => deleted.push(def.name),
                Err(RuntimeError::FailedPrecondition(_) | RuntimeError::NotFound(_)) => {}
                Err(e) => tracing::warn!(network = %def.name, error = %e, "network prune: cannot remove"),
            }
        }
        Ok(deleted)
    }
}
