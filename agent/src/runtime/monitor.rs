//! Watching running containers: recording an exit, and re-adoption after an agent restart.

use super::lifecycle::now;
use super::stop::pidfd;
use super::{ContainerRecord, Phase, Result, Runtime, RuntimeError, State};
use crate::isolation::spec::NetMode;
use crate::shim::ExitStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;

impl Runtime {
    /// Watches the shim of a running container and records its exit.
    pub(super) fn monitor(self: &Arc<Self>, rec: &ContainerRecord) {
        let rt = Arc::clone(self);
        let id = rec.id.clone();
        let (shim_pid, shim_start) = (rec.shim_pid, rec.shim_start);
        let fd = pidfd(shim_pid, shim_start);
        tokio::spawn(async move {
            if let Some(fd) = fd {
                // SAFETY: the AsyncFd owns the pidfd, which stays open until it is dropped.
                match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
                    Ok(afd) => {
                        let _ = afd.readable().await;
                    }
                    Err(_) => {
                        // Cannot poll: fall back to checking liveness.
                        while crate::isolation::alive(shim_pid, shim_start) {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
            if let Err(e) = rt.on_exit(&id).await {
                tracing::warn!(container = %id, error = %e, "recording container exit");
            }
        });
        self.watch_health(rec);
    }

    /// Records the exit of a container whose shim is gone.
    pub(super) async fn on_exit(self: &Arc<Self>, id: &str) -> Result<()> {
        let live = self.live(id);
        let op = live.op.lock().await;
        let mut rec = match self.load(id) {
            Ok(r) => r,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => {
                self.collect_later(id, &e);
                return Ok(());
            }
        };
        if rec.state != State::Running {
            return Ok(());
        }
        let status = ExitStatus::read(&self.container_dir(id));
        let t0 = std::time::Instant::now();
        rec.oom_killed = self.cgroups.oom_killed(&rec.cg());
        if rec.paused || self.cgroups.is_frozen(&rec.cg()) {
            // Frozen processes (v1) do not die of SIGKILL until thawed.
            if let Err(e) = self.cgroups.freeze(&rec.cg(), false) {
                tracing::warn!(container = %id, error = %e, "thawing the cgroup of an exited container");
            }
        }
        self.cgroups.kill_all(&rec.cg());
        if let Err(e) = self.cgroups.remove(&rec.cg()) {
            tracing::warn!(container = %id, error = %e, "removing cgroup");
        }
        // The shim is gone (that is why we are here): its cgroup goes too.
        let _ = self.cgroups.remove(&rec.shim_cg());
        let t_cg = t0.elapsed();
        match status {
            Some(s) => {
                rec.exit_code = s.exit_code;
                rec.finished_at = s.finished_at;
            }
            None => {
                rec.exit_code = 255;
                rec.error = "the container's shim exited without recording an exit status".into();
                rec.finished_at = now();
            }
        }
        rec.state = State::Exited;
        rec.paused = false;
        rec.pid = 0;
        // A store that refuses the write (a full disk) keeps the exit pending: the waiters
        // hear of it now, the recorder writes it later (`pending.rs`).
        let recorded = self.record_exit(&rec);
        // Like `docker run --rm`: those who wait for an auto-removed container hear of its
        // exit once it is gone (Phase::Removed), so nothing of it is left when they return.
        if recorded && !rec.spec.auto_remove {
            live.phase.send_replace(Phase::Exited { code: rec.exit_code });
        }
        if rec.network == NetMode::Bridge {
            self.refresh_hosts(&rec.spec.network);
            // Off the exit path: `nft` takes ~15 ms and nobody waits for the unpublish;
            // reconciles are serialized and each reads the state it applies, so a later
            // start cannot be overtaken by this one.
            let me = Arc::clone(self);
            let cid = id.to_string();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = me.reconcile_firewall() {
                    tracing::warn!(container = %cid, error = %e, "reconciling the firewall after an exit");
                }
            });
        }
        tracing::info!(container = %id, code = rec.exit_code, recorded, cgroup = ?t_cg, total = ?t0.elapsed(), "container exited");
        if !recorded {
            return Ok(());
        }
        drop(op);
        self.after_exit(&rec).await
    }

    /// Once an exit is recorded: the restart policy, or `--rm`.
    pub(super) async fn after_exit(self: &Arc<Self>, rec: &ContainerRecord) -> Result<()> {
        if !rec.spec.auto_remove {
            self.maybe_restart(rec);
            return Ok(());
        }
        if let Err(e) = self.remove(&rec.id, true).await {
            self.live(&rec.id).phase.send_replace(Phase::Exited { code: rec.exit_code });
            self.remove_later(&rec.id, &e);
        }
        Ok(())
    }

    /// After a restart: re-adopt running containers, record exits that happened while
    /// the agent was away, finish interrupted removals.
    pub(super) async fn recover(self: &Arc<Self>) -> Result<()> {
        for rec in self.list()? {
            let live = self.live(&rec.id);
            match rec.state {
                State::Running => {
                    live.phase.send_replace(Phase::Running { log_offset: rec.log_offset });
                    if crate::isolation::alive(rec.shim_pid, rec.shim_start) {
                        tracing::info!(container = %rec.id, pid = rec.pid, "re-adopted running container");
                        self.monitor(&rec);
                    } else {
                        self.on_exit(&rec.id).await?;
                    }
                }
                State::Removing => {
                    self.finish_remove(&rec)?;
                    self.forget(&rec.id);
                    if rec.remove_volumes {
                        self.remove_anonymous_volumes(&rec.spec).await;
                    }
                }
                State::Exited => {
                    live.phase.send_replace(Phase::Exited { code: rec.exit_code });
                }
                State::Created => {}
            }
        }
        self.sweep();
        // Rules of removed containers disappear, rules of live ones are restored.
        if let Err(e) = self.reconcile_firewall() {
            tracing::warn!(error = %e, "reconciling the firewall table");
        }
        Ok(())
    }
}
