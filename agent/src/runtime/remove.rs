//! Removing a container and everything it has on the host.

use super::lifecycle::io;
use super::stop::{pidfd, signal_pidfd};
use super::{ContainerRecord, Phase, Result, Runtime, RuntimeError, State};
use std::time::Duration;

impl Runtime {
    /// Removes a container and everything it has on the host.
    pub async fn remove(&self, name: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name, force, false).await
    }

    /// `rm [-f] [-v]`: with `volumes` (or for a `--rm` container) its anonymous volumes go too.
    pub async fn remove_with_volumes(&self, name: &str, force: bool, volumes: bool) -> Result<()> {
        let rec = match self.resolve(name) {
            Ok(r) => r,
            // Idempotent: an auto-removed container may be gone already.
            Err(RuntimeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let joined = self.joined_by(&rec.id)?;
        if !joined.is_empty() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot remove container {}: container {} uses its network namespace",
                rec.name,
                joined.join(", ")
            )));
        }
        if rec.state == State::Running && !force {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot remove container {}: it is running; stop it first or force the removal",
                rec.name
            )));
        }
        // A pod sandbox removed through our own API (`agentctl rm -f`) also gets its CNI DEL,
        // while its namespace still exists.
        if super::sandbox::kind(&rec) == Some("sandbox") {
            self.pod_net_down(&rec).await?;
        }
        if rec.state == State::Running {
            self.signal(&rec, libc::SIGKILL)?;
            self.thaw_after_signal(&rec, libc::SIGKILL).await?;
            self.wait_not_running(&rec.id, Some(Duration::from_secs(30))).await;
        }
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        // An exit the store has not taken yet goes in first (its `die` event included).
        self.flush_pending(&rec.id)?;
        let Ok(mut rec) = self.load(&rec.id) else {
            return Ok(());
        };
        if rec.state == State::Running {
            // Exited meanwhile without the monitor having recorded it yet (or a new start).
            if let Some(fd) = pidfd(rec.shim_pid, rec.shim_start) {
                let _ = signal_pidfd(&fd, libc::SIGKILL);
            }
            self.cgroups.kill_all(&rec.cg());
        }
        rec.state = State::Removing;
        rec.remove_volumes = volumes || rec.spec.auto_remove;
        self.save(&rec)?;
        crate::crash::point("remove.after_mark");
        self.finish_remove(&rec)?;
        if !rec.ports.is_empty() {
            // Its exit unpublished them off the exit path; `rm` returns once they are gone
            // (reconciles are serialized and each applies the state it reads), as docker's
            // does: the host port is free when `rm -f` returns.
            self.reconcile_firewall_logged("a removal");
        }
        live.phase.send_replace(Phase::Removed { code: rec.exit_code });
        self.forget(&rec.id);
        if rec.remove_volumes {
            self.remove_anonymous_volumes(&rec.spec).await;
        }
        Ok(())
    }

    pub(super) fn finish_remove(&self, rec: &ContainerRecord) -> Result<()> {
        self.cgroups.remove(&rec.cg())?;
        self.cgroups.remove(&rec.shim_cg())?;
        if let Some(made) = &rec.cgroup_parent_made {
            self.cgroups.remove_parent_chain(&rec.spec.cgroup_parent, made);
        }
        let dir = self.container_dir(&rec.id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &dir)(e)),
        }
        crate::crash::point("remove.after_dir");
        self.save_and_log(rec, "destroy", &[], true)?;
        crate::crash::point("remove.after_record");
        self.release(rec)?;
        // The firewall: its ports went when it exited (`remove` waits for that; the table
        // stays while the agent runs; the agent's shutdown removes it).
        if let Some(l) = &rec.userns {
            // Shifted layer copies live as long as some container has their mapping.
            if !self.list()?.iter().any(|c| c.id != rec.id && c.userns.as_ref().is_some_and(|o| o.map == l.map)) {
                crate::snapshot::shift::remove_mapping(&self.cfg.root, &l.map);
            }
        }
        // The image may have been force-removed while we used its layers.
        if self.images.resolve(&rec.image_id).is_err() {
            let _ = self.images.gc(&self.container_images()?);
        }
        Ok(())
    }
}
