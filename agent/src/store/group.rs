//! Group commit: writers that arrive together share one redb write transaction and one
//! commit (one fsync) instead of one each.
//!
//! redb runs one write transaction at a time, and each commit waits for the disk. A writer
//! makes its change in the open transaction (beginning one when there is none) and then,
//! unless another writer is committing, commits it for every writer whose change is in it
//! (the leader); the others wait until their batch is committed. Writers that arrive while
//! a commit is in flight wait for redb's write lock and then all put their changes in the
//! next transaction, which the first of them to wake commits. A lone writer commits at once,
//! as before.
//!
//! Each call stays atomic (its changes are all in one transaction) and returns only after
//! its transaction is durable, so a reader sees what a returned call wrote. A change that
//! fails (redb fails them only for I/O, after which it refuses every later call anyway)
//! aborts its batch: every call of the batch gets the error, none of their changes is kept.

use super::StoreError;
use redb::{Database, WriteTransaction};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Failed batches kept for their members to read (members read theirs at once).
const FAILURES_KEPT: usize = 64;

pub(super) struct Group {
    state: Mutex<State>,
    done: Condvar,
}

struct State {
    /// The transaction collecting batch `open` (1, 2, …).
    tx: Option<WriteTransaction>,
    open: u64,
    /// The first error of a change in batch `open`: it is aborted instead of committed.
    doomed: Option<StoreError>,
    /// A leader is committing (outside the lock).
    committing: bool,
    /// Every batch up to this one is finished (0: none yet).
    finished: u64,
    /// The batches that failed, with the error.
    failures: Vec<(u64, StoreError)>,
    /// Commits made, and changes they held (for tests and the log).
    commits: u64,
    changes: u64,
}

impl Group {
    pub(super) fn new() -> Group {
        let state = State {
            tx: None,
            open: 1,
            doomed: None,
            committing: false,
            finished: 0,
            failures: Vec::new(),
            commits: 0,
            changes: 0,
        };
        Group { state: Mutex::new(state), done: Condvar::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `change` in the shared transaction and returns its result once the transaction
    /// holding it is committed.
    pub(super) fn write<T>(
        &self,
        db: &Database,
        change: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut st = self.lock();
        if st.tx.is_none() {
            // Waits for redb's write lock while a leader's commit is in flight (the leader
            // takes this lock only after its commit).
            st.tx = Some(db.begin_write()?);
        }
        let mine = st.open;
        let result = match st.tx.as_ref() {
            Some(tx) => change(tx),
            None => Err(StoreError::Db("group commit: no open transaction".into())),
        };
        st.changes += 1;
        if let Err(e) = &result {
            if st.doomed.is_none() {
                st.doomed = Some(e.dup());
            }
        }
        while st.finished < mine {
            if st.committing {
                st = self.done.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead: batch `mine` is the open one (it advances only when a leader takes it).
            let tx = st.tx.take();
            let doomed = st.doomed.take();
            st.open += 1;
            st.committing = true;
            drop(st);
            let outcome = match (tx, doomed) {
                (Some(tx), None) => tx.commit().map_err(StoreError::from),
                (Some(tx), Some(e)) => {
                    if let Err(a) = tx.abort() {
                        tracing::warn!(error = %a, "metadata store: aborting a failed batch");
                    }
                    Err(e)
                }
                (None, Some(e)) => Err(e),
                (None, None) => Ok(()),
            };
            st = self.lock();
            st.committing = false;
            st.finished = mine;
            st.commits += 1;
            if let Err(e) = outcome {
                st.failures.push((mine, e));
                let n = st.failures.len();
                if n > FAILURES_KEPT {
                    st.failures.drain(..n - FAILURES_KEPT);
                }
            }
            self.done.notify_all();
        }
        let failed = st.failures.iter().find(|(b, _)| *b == mine).map(|(_, e)| e.dup());
        drop(st);
        match (result, failed) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(e)) => Err(e),
            (Ok(v), None) => Ok(v),
        }
    }

    /// (commits made, changes written) since the store was opened.
    pub(super) fn counts(&self) -> (u64, u64) {
        let st = self.lock();
        (st.commits, st.changes)
    }
}

impl StoreError {
    /// The same error for another member of a failed batch (an I/O error keeps its OS code,
    /// so a full disk is still told apart).
    pub(super) fn dup(&self) -> StoreError {
        match self {
            StoreError::Db(m) => StoreError::Db(m.clone()),
            StoreError::Corrupt { key, err } => StoreError::Db(format!("corrupt record {key}: {err}")),
            StoreError::NoSpace { path, free } => StoreError::NoSpace { path: path.clone(), free: free.clone() },
            StoreError::Io { path, source } => StoreError::Io {
                path: path.clone(),
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            StoreError::Closed(p) => StoreError::Closed(p.clone()),
        }
    }
}
