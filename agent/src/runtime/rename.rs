//! `rename`: a container's name changes; its ID, processes and addresses stay. Peers on its
//! networks see the new name in /etc/hosts.

use super::{names, Result, Runtime, RuntimeError};

impl Runtime {
    /// Renames container `name` to `new`.
    pub async fn rename(&self, name: &str, new: &str) -> Result<()> {
        let new = new.trim_start_matches('/');
        if !names::valid_name(new) {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid container name {new:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, 2-128 characters"
            )));
        }
        // Names are allocated under the create lock: no create or rename can take it meanwhile.
        let _g = self.create_lock.lock().await;
        let rec = self.resolve(name)?;
        if rec.name == new {
            return Err(RuntimeError::InvalidArgument(format!("container {new} already has that name")));
        }
        if let Some(other) = self.list()?.into_iter().find(|c| c.name == new) {
            return Err(RuntimeError::AlreadyExists(format!(
                "the container name {new:?} is already in use by container {}; remove or rename that container",
                &other.id[..12.min(other.id.len())]
            )));
        }
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut rec = self.load(&rec.id)?;
        let old = std::mem::replace(&mut rec.name, new.to_string());
        self.save_and_log(&rec, "rename", &[("oldName", old)], false)?;
        for (net, _) in rec.bridge_networks() {
            self.refresh_hosts(&net);
        }
        Ok(())
    }
}
