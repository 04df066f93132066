//! The image store's garbage collector and the verbs that work on its files before (or
//! without) an image record naming them: a pull that reuses a layer it found and unpacks its
//! own, an import, a commit, a build (its steps' layers), the built-in pause layer until
//! its sandbox's record holds it, a save or push reading blobs. While one of them holds a
//! [`Busy`] guard, a collection is not run but owed: the last guard to go runs it, with the
//! containers' holdings read afresh ([`ImageStore::set_in_use_source`]). So a collection
//! never removes what a verb found or wrote and has not recorded yet, and what it owed is
//! still collected — without a scan per verb or a lease per file.
//!
//! One mutex orders the two: a collection holds it while it runs, a verb takes it to become
//! busy; a verb that starts during a collection waits for it to end, then sees the store
//! as the collection left it.

use super::{ImageError, ImageStore, InUse};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// Where a deferred collection reads what containers hold (the runtime's records).
pub type InUseSource = Box<dyn Fn() -> Option<InUse> + Send + Sync>;

#[derive(Default)]
pub(super) struct Gate {
    state: Mutex<State>,
    source: OnceLock<InUseSource>,
}

#[derive(Default)]
struct State {
    busy: usize,
    owed: bool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A verb at work on the store's files; collections wait until the last one is dropped.
#[must_use = "the store is only protected while the guard lives"]
pub struct Busy {
    store: Arc<ImageStore>,
}

impl ImageStore {
    /// Marks the store busy for the caller's verb, until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.gate.lock().busy += 1;
        Busy { store: Arc::clone(self) }
    }

    /// Where a collection owed by a busy store, run when it is no longer busy, reads the
    /// containers' holdings. Set once, by the runtime; without it an owed collection waits
    /// for the next one asked for.
    pub fn set_in_use_source(&self, f: InUseSource) {
        if self.gate.source.set(f).is_err() {
            tracing::warn!("the image store's in-use source was set twice; keeping the first");
        }
    }

    /// Deletes layers and blobs that no image and no container references, and returns
    /// what it removed — or, while a verb is busy with the store, nothing yet: the
    /// collection is then run when the last one is done.
    pub fn gc(&self, in_use: &InUse) -> Result<Vec<PathBuf>, ImageError> {
        let mut st = self.gate.lock();
        if st.busy > 0 {
            if !st.owed {
                tracing::debug!(busy = st.busy, "image store busy: the collection of unused layers is deferred");
            }
            st.owed = true;
            return Ok(Vec::new());
        }
        st.owed = false;
        let removed = self.collect(in_use);
        drop(st);
        removed
    }

    /// Runs the collection a busy store owes, if it owes one and is idle now.
    fn pay_owed(&self) {
        let Some(source) = self.gate.source.get() else { return };
        let Some(in_use) = source() else {
            tracing::warn!("a deferred collection of unused layers could not read the containers; left to the next");
            return;
        };
        match self.gc(&in_use) {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(removed = removed.len(), "deferred collection of unused layers and blobs")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "deferred collection of unused layers and blobs failed"),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let owed = {
            let mut st = self.store.gate.lock();
            st.busy = st.busy.saturating_sub(1);
            st.busy == 0 && st.owed
        };
        if owed {
            self.store.pay_owed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn store(dir: &std::path::Path) -> Arc<ImageStore> {
        let db = Arc::new(Store::open(&dir.join("db")).unwrap());
        Arc::new(ImageStore::open(&dir.join("images"), db).unwrap())
    }

    fn unrecorded_layer(s: &ImageStore, name: &str) -> PathBuf {
        let p = s.root.join("layers").join(name);
        std::fs::create_dir_all(p.join("fs")).unwrap();
        p
    }

    #[test]
    fn a_collection_while_busy_is_owed_and_run_by_the_last_guard_with_fresh_holdings() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let kept = unrecorded_layer(&s, "kept");
        let stray = unrecorded_layer(&s, "stray");
        let holdings = Arc::new(Mutex::new(InUse::default()));
        let h = Arc::clone(&holdings);
        s.set_in_use_source(Box::new(move || Some(h.lock().unwrap().clone())));
        let (a, b) = (s.busy(), s.busy());
        assert!(s.gc(&InUse::default()).unwrap().is_empty(), "busy: nothing collected");
        assert!(kept.is_dir() && stray.is_dir());
        // Meanwhile a container came to hold `kept` (as a sandbox holds the pause layer).
        holdings.lock().unwrap().layers.insert("kept".into());
        drop(a);
        assert!(stray.is_dir(), "one verb still busy");
        drop(b);
        assert!(!stray.exists(), "the owed collection ran when the last guard went");
        assert!(kept.is_dir(), "with the holdings as they were then");
    }

    #[test]
    fn an_idle_store_collects_at_once_and_owes_nothing_after() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let stray = unrecorded_layer(&s, "stray");
        assert_eq!(s.gc(&InUse::default()).unwrap(), vec![stray.clone()]);
        let late = unrecorded_layer(&s, "late");
        drop(s.busy());
        assert!(late.is_dir(), "nothing was owed: a guard alone collects nothing");
    }
}
