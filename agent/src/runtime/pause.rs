//! `pause`/`unpause`: every process of a running container frozen by its cgroup's freezer
//! (`cgroups::CgroupOps::freeze`), and thawed. The container stays Running with `paused`
//! set (docker's `State.Paused`); a stop, kill or `rm -f` thaws it after its signal, as
//! docker does, so the signal is acted on; exec and attach are refused while it is paused.

use super::{ContainerRecord, Result, Runtime, RuntimeError, State};
use std::sync::Arc;

impl Runtime {
    /// Freezes every process of a running container.
    pub async fn pause(&self, name: &str) -> Result<()> {
        self.set_paused(name, true).await
    }

    /// Thaws a paused container.
    pub async fn unpause(&self, name: &str) -> Result<()> {
        self.set_paused(name, false).await
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Result<()> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let mut rec = self.load(&rec.id)?;
        if rec.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running", rec.name)));
        }
        match (rec.paused, paused) {
            (true, true) => {
                return Err(RuntimeError::FailedPrecondition(format!("container {} is already paused", rec.name)))
            }
            (false, false) => {
                return Err(RuntimeError::FailedPrecondition(format!("container {} is not paused", rec.name)))
            }
            _ => {}
        }
        self.freeze_blocking(&rec, paused).await?;
        rec.paused = paused;
        if let Err(e) = self.save_and_log(&rec, if paused { "pause" } else { "unpause" }, &[], false) {
            // Unrecorded, the change is undone: the record says what the kernel does.
            if let Err(u) = self.freeze_blocking(&rec, !paused).await {
                tracing::warn!(container = %rec.id, error = %u, "undoing a freezer change the store refused");
            }
            return Err(e);
        }
        Ok(())
    }

    /// The freezer's writes and its bounded wait for the kernel, off the async threads.
    async fn freeze_blocking(&self, rec: &ContainerRecord, frozen: bool) -> Result<()> {
        let cg = Arc::clone(&self.cgroups);
        let id = rec.cg();
        tokio::task::spawn_blocking(move || cg.freeze(&id, frozen))
            .await
            .map_err(|e| RuntimeError::Internal(format!("freezer task: {e}")))??;
        Ok(())
    }

    /// After a signal that ends the container (SIGKILL, or its stop signal; any signal when
    /// the image names none, as docker's `killWithSignal`), a paused container is thawed so
    /// that the signal is acted on, with an `unpause` event.
    pub(super) async fn thaw_after_signal(&self, rec: &ContainerRecord, sig: i32) -> Result<()> {
        let ends = sig == libc::SIGKILL
            || rec.stop_signal.is_empty()
            || super::stop::parse_signal(&rec.stop_signal).is_ok_and(|s| s == sig);
        // The common case, without the lifecycle lock: neither recorded nor frozen.
        if !ends || (!rec.paused && !self.cgroups.is_frozen(&rec.cg())) {
            return Ok(());
        }
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        let Ok(mut rec) = self.load(&rec.id) else { return Ok(()) };
        if !rec.paused {
            return Ok(());
        }
        self.freeze_blocking(&rec, false).await?;
        rec.paused = false;
        self.save_and_log(&rec, "unpause", &[], false)
    }
}
