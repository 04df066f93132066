//! Exits the store has not accepted yet (a full disk, an I/O error): the exit is kept here
//! (and in the shim's `exit.json`), waiters hear of it at once, reads of the record see it,
//! and one background task records it — retrying with back-off, logging at most once a
//! minute — as soon as the store accepts writes again; then the container's restart policy
//! or `--rm` takes its course. Nothing needs a restart of the agent.

use super::{ContainerRecord, Phase, Result, Runtime, RuntimeError};
use crate::shim::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What is still to be done for a container whose shim is gone.
pub(super) enum Pending {
    /// Its record could not even be read: collect the exit again (`on_exit`).
    Collect,
    /// Its exited record, still to be written (with the `oom` event first, unless written).
    Record { rec: Box<ContainerRecord>, oom_logged: bool },
    /// Its exit is recorded, but its `--rm` removal failed (no space for the change).
    Remove,
}

/// The back-off of the recorder: 250 ms, doubling up to 5 s.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);
/// How often a recorder that keeps failing says so.
const LOG_EVERY: Duration = Duration::from_secs(60);

impl Runtime {
    /// The exited version of a record whose exit is not in the store yet.
    pub(super) fn pending_record(&self, id: &str) -> Option<ContainerRecord> {
        match self.pending.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            Some(Pending::Record { rec, .. }) => Some((**rec).clone()),
            _ => None,
        }
    }

    /// Every record that waits to be stored (usually none), by ID.
    pub(super) fn pending_records(&self) -> std::collections::HashMap<String, ContainerRecord> {
        let g = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        g.iter()
            .filter_map(|(id, p)| match p {
                Pending::Record { rec, .. } => Some((id.clone(), (**rec).clone())),
                _ => None,
            })
            .collect()
    }

    /// How many exits wait to be recorded.
    pub fn exits_pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Free bytes of the root's filesystem, and whether it counts as full (too little free,
    /// or exits the store refused).
    pub fn root_space(&self) -> (u64, bool) {
        let free = crate::space::free_bytes(&self.cfg.root).unwrap_or(0);
        (free, free < crate::space::FULL_BELOW || self.exits_pending() > 0)
    }

    /// A write of the container's record succeeded: nothing of it is pending any more.
    pub(super) fn settled(&self, id: &str) {
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(p.get(id), Some(Pending::Record { .. })) {
            p.remove(id);
        }
    }

    /// Writes an exit (`oom`, then `die`).
    fn write_exit(&self, rec: &ContainerRecord, oom_logged: &mut bool) -> Result<()> {
        if rec.oom_killed && !*oom_logged {
            self.save_and_log(rec, "oom", &[], false)?;
            *oom_logged = true;
        }
        self.save_and_log(
            rec,
            "die",
            &[("exitCode", rec.exit_code.to_string()), ("oomKilled", rec.oom_killed.to_string())],
            false,
        )
    }

    /// Records an exit, or keeps it for the recorder when the store refuses it (then tells
    /// the waiters already). True when it is in the store.
    pub(super) fn record_exit(self: &Arc<Self>, rec: &ContainerRecord) -> bool {
        let mut oom_logged = false;
        match self.write_exit(rec, &mut oom_logged) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(container = %rec.id, code = rec.exit_code, error = %e,
                    "the store refused the container's exit: kept in memory, recorded once the store accepts it");
                self.park(&rec.id, Pending::Record { rec: Box::new(rec.clone()), oom_logged });
                self.live(&rec.id).phase.send_replace(Phase::Exited { code: rec.exit_code });
                false
            }
        }
    }

    /// `on_exit` could not read the record: tell the waiters what the shim recorded and
    /// collect the exit again later.
    pub(super) fn collect_later(self: &Arc<Self>, id: &str, e: &RuntimeError) {
        let code = ExitStatus::read(&self.container_dir(id)).map(|s| s.exit_code).unwrap_or(255);
        tracing::warn!(container = %id, code, error = %e, "cannot read the record of a container that exited; collecting its exit again later");
        self.park(id, Pending::Collect);
        self.live(id).phase.send_replace(Phase::Exited { code });
    }

    /// Before a verb changes a container: its pending exit goes into the store first (or the
    /// verb fails with the store's error, e.g. no space).
    pub(super) fn flush_pending(&self, id: &str) -> Result<()> {
        let taken = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match p.get(id) {
                Some(Pending::Record { .. }) => p.remove(id),
                _ => None,
            }
        };
        let Some(Pending::Record { rec, mut oom_logged }) = taken else {
            return Ok(());
        };
        if let Err(e) = self.write_exit(&rec, &mut oom_logged) {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.to_string(), Pending::Record { rec, oom_logged });
            return Err(e);
        }
        Ok(())
    }

    /// The `--rm` removal after an exit failed: the recorder tries it again.
    pub(super) fn remove_later(self: &Arc<Self>, id: &str, e: &RuntimeError) {
        tracing::warn!(container = %id, error = %e, "cannot remove an auto-removed container yet; retrying");
        self.park(id, Pending::Remove);
    }

    fn park(self: &Arc<Self>, id: &str, p: Pending) {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id.to_string(), p);
        if !self.recorder.swap(true, Ordering::SeqCst) {
            let rt = Arc::clone(self);
            tokio::spawn(async move { rt.recorder().await });
        }
    }

    /// Retries every pending exit until the store takes them all.
    async fn recorder(self: Arc<Self>) {
        let mut delay = FIRST_RETRY;
        let mut said = Instant::now();
        loop {
            tokio::time::sleep(delay).await;
            let ids: Vec<String> = self.pending.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
            let mut last_err = None;
            for id in &ids {
                if let Err(e) = self.retry_one(id).await {
                    last_err = Some(e);
                }
            }
            let left = self.exits_pending();
            if left == 0 {
                self.recorder.store(false, Ordering::SeqCst);
                // One may have been parked between the count and the flag.
                if self.exits_pending() == 0 || self.recorder.swap(true, Ordering::SeqCst) {
                    return;
                }
                continue;
            }
            match last_err {
                Some(e) if said.elapsed() >= LOG_EVERY => {
                    tracing::warn!(pending = left, error = %e, "container exits still not recorded; retrying");
                    said = Instant::now();
                }
                _ => {}
            }
            delay = (delay * 2).min(LAST_RETRY);
        }
    }

    async fn retry_one(self: &Arc<Self>, id: &str) -> Result<()> {
        let live = self.live(id);
        let op = live.op.lock().await;
        let taken = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match taken {
            None => Ok(()),
            Some(Pending::Collect) => {
                drop(op);
                // on_exit parks it again when the record still cannot be read.
                self.on_exit(id).await
            }
            Some(Pending::Remove) => {
                drop(op);
                if let Err(e) = self.remove(id, true).await {
                    self.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(id.to_string())
                        .or_insert(Pending::Remove);
                    return Err(e);
                }
                tracing::info!(container = %id, "removed an auto-removed container now that the store accepts it");
                Ok(())
            }
            Some(Pending::Record { rec, mut oom_logged }) => {
                if let Err(e) = self.write_exit(&rec, &mut oom_logged) {
                    self.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(id.to_string())
                        .or_insert(Pending::Record { rec, oom_logged });
                    return Err(e);
                }
                tracing::info!(container = %id, code = rec.exit_code, "recorded the container's exit now that the store accepts it");
                drop(op);
                self.after_exit(&rec).await
            }
        }
    }
}
