//! The container records in memory: read from the store once, then written through.
//!
//! Every question about "all containers" (a free name, published ports, leases, the
//! capacity ledger, `ps`, resolving a name) used to parse every record from the store,
//! several times per create: the start rate fell with the number of containers (149/s at
//! 100, 41.5/s at 1000; BENCHMARKS.md). The store stays the truth: a write goes to the
//! store first and reaches memory only once the store took it.

use super::{ContainerRecord, Result};
use crate::store::{Kind, Store};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

type Map = HashMap<String, ContainerRecord>;

pub(super) struct Records {
    /// `None` until first read (loaded while this lock is held, so a write that lands
    /// meanwhile is applied after the load, never before).
    map: Mutex<Option<Map>>,
    /// Orders the writes of one record: its commits and its map updates happen in the same
    /// order. Striped by ID, so writes of different records run at once and share the
    /// store's commits (group commit).
    write: [Mutex<()>; STRIPES],
}

const STRIPES: usize = 64;

fn stripe(id: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish() as usize % STRIPES
}

impl Records {
    pub(super) fn new() -> Records {
        Records { map: Mutex::new(None), write: std::array::from_fn(|_| Mutex::new(())) }
    }

    fn loaded<'a>(&self, store: &Store, g: &'a mut MutexGuard<'_, Option<Map>>) -> Result<&'a mut Map> {
        if g.is_none() {
            let all: Vec<(String, ContainerRecord)> = store.all_entries(Kind::Container)?;
            **g = Some(all.into_iter().collect());
        }
        Ok(g.as_mut().expect("loaded above"))
    }

    /// Runs `f` over the records (loaded from the store on first use).
    pub(super) fn read<R>(&self, store: &Store, f: impl FnOnce(&Map) -> R) -> Result<R> {
        let mut g = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(self.loaded(store, &mut g)?))
    }

    /// Writes `id`'s record (`None`: deletes it) with `commit`, the store's write; memory
    /// follows only when the store took it.
    pub(super) fn write<R>(
        &self,
        id: &str,
        value: Option<&ContainerRecord>,
        commit: impl FnOnce() -> Result<R>,
    ) -> Result<R> {
        let _order = self.write[stripe(id)].lock().unwrap_or_else(|p| p.into_inner());
        let r = commit()?;
        let mut g = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = g.as_mut() {
            match value {
                Some(v) => {
                    m.insert(id.to_string(), v.clone());
                }
                None => {
                    m.remove(id);
                }
            }
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> ContainerRecord {
        let spec = serde_json::to_value(super::super::ContainerSpec::default()).unwrap();
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "image_id": "", "spec": spec, "layers": [], "args": [], "env": [],
            "cwd": "/", "user": "", "hostname": "", "network": "none", "stop_signal": "SIGTERM",
            "state": "Created", "pid": 0, "pid_start": 0, "shim_pid": 0, "shim_start": 0, "exit_code": 0,
            "error": "", "oom_killed": false, "created_at": 0, "started_at": 0, "finished_at": 0,
            "log_offset": 0, "restart_count": 0
        }))
        .unwrap()
    }

    #[test]
    fn reads_follow_the_store_and_refused_writes_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("meta.redb")).unwrap();
        store.put(Kind::Container, "a", &rec("a", "first")).unwrap();
        let r = Records::new();
        assert_eq!(r.read(&store, |m| m.len()).unwrap(), 1, "loaded from the store");
        let b = rec("b", "second");
        r.write("b", Some(&b), || Ok(store.put(Kind::Container, "b", &b)?)).unwrap();
        let c = rec("c", "third");
        let refused: Result<()> =
            r.write("c", Some(&c), || Err(super::super::RuntimeError::Internal("no space".into())));
        assert!(refused.is_err());
        r.write("a", None, || Ok(store.delete(Kind::Container, "a")?)).unwrap();
        let names = r.read(&store, |m| {
            let mut v: Vec<_> = m.values().map(|c| c.name.clone()).collect();
            v.sort();
            v
        });
        assert_eq!(names.unwrap(), vec!["second".to_string()]);
        // What memory says is what a fresh load from the store says.
        let fresh = Records::new();
        assert_eq!(fresh.read(&store, |m| m.keys().cloned().collect::<Vec<_>>()).unwrap(), vec!["b".to_string()]);
    }
}
