//! Embedded transactional metadata (redb): containers, images and tags.
//!
//! Values are JSON documents of the domain records; every call's changes are in one redb
//! write transaction, so a crash at any point leaves either the old or the new state.
//! Concurrent calls share a transaction and its commit (group commit, `group.rs`).
//!
//! redb refuses every call after one I/O error (`PreviousIo`) until the database is opened
//! again: a write that failed for space would otherwise poison the store for good. So a call
//! that fails with an I/O error closes the database, and the next call opens it again (redb
//! repairs it from the last commit), which succeeds once the filesystem has room again.

mod group;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const BUILD_CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("build_cache");
const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

/// How many events the log keeps (older ones are trimmed).
pub const EVENTS_KEPT: u64 = 10_000;

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Db(String),
    #[error("metadata store: corrupt record {key}: {err}")]
    Corrupt { key: String, err: serde_json::Error },
    /// The filesystem of the database is full (or its quota exhausted).
    #[error("metadata store {}: no space left on device ({free})", .path.display())]
    NoSpace { path: PathBuf, free: String },
    #[error("metadata store {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// An earlier I/O error closed the database and it could not be opened again yet.
    #[error("metadata store {}: closed after an I/O error", .0.display())]
    Closed(PathBuf),
}

impl StoreError {
    /// An error after which redb must be opened again.
    fn poisons(&self) -> bool {
        matches!(self, StoreError::Io { .. } | StoreError::NoSpace { .. } | StoreError::Closed(_))
    }

    /// True when the store failed for want of space.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::NoSpace { .. })
    }

    /// Names the database file (errors converted from redb do not know it) and tells a
    /// full filesystem from other I/O errors.
    fn at(self, path: &Path) -> StoreError {
        match self {
            StoreError::Io { source, .. } if crate::space::is_full(&source) => {
                StoreError::NoSpace { path: path.to_path_buf(), free: crate::space::describe_free(path) }
            }
            StoreError::Io { source, .. } => StoreError::Io { path: path.to_path_buf(), source },
            StoreError::Closed(_) => StoreError::Closed(path.to_path_buf()),
            e => e,
        }
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        match e {
            redb::Error::Io(source) => StoreError::Io { path: PathBuf::new(), source },
            redb::Error::PreviousIo => StoreError::Closed(PathBuf::new()),
            e => StoreError::Db(e.to_string()),
        }
    }
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::from(redb::Error::from(e)) }
        }
    )*};
}
db_err!(redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// Which collection a record belongs to.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Container,
    Image,
    Group,
    /// `<network>/<ip>` -> container ID.
    Lease,
    Network,
    /// Build cache key (parent state + instruction + inputs) → the layer it made.
    BuildCache,
    /// Named volumes (`volume/`).
    Volume,
}

impl Kind {
    fn table(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Kind::Container => CONTAINERS,
            Kind::Image => IMAGES,
            Kind::Group => GROUPS,
            Kind::Lease => LEASES,
            Kind::Network => NETWORKS,
            Kind::BuildCache => BUILD_CACHE,
            Kind::Volume => VOLUMES,
        }
    }
}

/// The open database and how many times it was opened (a failed call closes only the
/// database it used, never one opened again meanwhile).
struct Open {
    db: Option<Database>,
    generation: u64,
}

/// The agent's metadata database, `<root>/meta.redb`.
pub struct Store {
    path: PathBuf,
    // Before `open`: dropped first, so no transaction outlives the database (whose drop
    // would wait for it).
    group: group::Group,
    open: RwLock<Open>,
}

fn open_db(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path)?;
    let tx = db.begin_write()?;
    {
        tx.open_table(CONTAINERS)?;
        tx.open_table(IMAGES)?;
        tx.open_table(EVENTS)?;
        tx.open_table(GROUPS)?;
        tx.open_table(LEASES)?;
        tx.open_table(NETWORKS)?;
        tx.open_table(BUILD_CACHE)?;
        tx.open_table(VOLUMES)?;
    }
    tx.commit()?;
    Ok(db)
}

impl Store {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = open_db(path).map_err(|e| e.at(path))?;
        Ok(Store {
            path: path.to_path_buf(),
            group: group::Group::new(),
            open: RwLock::new(Open { db: Some(db), generation: 0 }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the database, opening it again first when an I/O error closed it; an I/O
    /// error of `f` closes it (redb refuses every later call until then).
    fn run<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let closed = self.open.read().unwrap_or_else(|p| p.into_inner()).db.is_none();
        if closed {
            let mut o = self.open.write().unwrap_or_else(|p| p.into_inner());
            if o.db.is_none() {
                let db = open_db(&self.path).map_err(|e| e.at(&self.path))?;
                o.db = Some(db);
                o.generation += 1;
                tracing::info!(path = %self.path.display(), "metadata store opened again after an I/O error");
            }
        }
        let (r, generation) = {
            let o = self.open.read().unwrap_or_else(|p| p.into_inner());
            match o.db.as_ref() {
                Some(db) => (f(db), o.generation),
                None => (Err(StoreError::Closed(PathBuf::new())), o.generation),
            }
        };
        r.map_err(|e| {
            let e = e.at(&self.path);
            if e.poisons() {
                let mut o = self.open.write().unwrap_or_else(|p| p.into_inner());
                if o.generation == generation && o.db.is_some() {
                    o.db = None;
                    tracing::warn!(path = %self.path.display(), error = %e, "metadata store closed after an I/O error; the next call opens it again");
                }
            }
            e
        })
    }

    /// Makes `change` in the shared write transaction and returns once it is committed
    /// (group commit: see group.rs).
    fn write<T>(&self, change: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(|db| self.group.write(db, change))
    }

    /// (commits made, changes written) since the store was opened: how well writes group.
    pub fn commit_counts(&self) -> (u64, u64) {
        self.group.counts()
    }

    /// Inserts or replaces one record.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))?;
        self.write(|tx| {
            tx.open_table(kind.table())?.insert(key, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Inserts `value` under the first of `candidates` that is not taken yet, in one write
    /// transaction (two callers never get the same key); `None` when all are taken.
    pub fn insert_first_free<T: Serialize>(
        &self,
        kind: Kind,
        candidates: impl IntoIterator<Item = String>,
        value: &T,
    ) -> Result<Option<String>, StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))?;
        self.write(|tx| {
            let mut t = tx.open_table(kind.table())?;
            for key in candidates {
                if t.get(key.as_str())?.is_none() {
                    t.insert(key.as_str(), bytes.as_slice())?;
                    return Ok(Some(key));
                }
            }
            Ok(None)
        })
    }

    /// Inserts `value` under `key` unless the key is taken, in one write transaction: `None`
    /// when it was inserted, else the value that holds it (of two concurrent callers for
    /// one key, exactly one gets `None`).
    pub fn insert_new<T: Serialize + DeserializeOwned>(
        &self,
        kind: Kind,
        key: &str,
        value: &T,
    ) -> Result<Option<T>, StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))?;
        let held = self.write(|tx| {
            let mut t = tx.open_table(kind.table())?;
            let held = t.get(key)?.map(|v| v.value().to_vec());
            if held.is_none() {
                t.insert(key, bytes.as_slice())?;
            }
            Ok(held)
        })?;
        // Read outside the transaction: a corrupt holder fails this call, not its batch.
        held.map(|v| serde_json::from_slice(&v).map_err(|err| StoreError::Corrupt { key: key.to_string(), err }))
            .transpose()
    }

    /// Removes one record; absent is fine.
    pub fn delete(&self, kind: Kind, key: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.open_table(kind.table())?.remove(key)?;
            Ok(())
        })
    }

    /// Changes one record (`Some`: put, `None`: delete) and appends `event` in the same
    /// transaction, so the log never disagrees with the state. Returns the event's sequence
    /// number (1, 2, …).
    pub fn change_and_log<T: Serialize, E: Serialize>(
        &self,
        kind: Kind,
        key: &str,
        value: Option<&T>,
        event: impl FnOnce(u64) -> E,
    ) -> Result<(u64, E), StoreError> {
        let bytes = value.map(serde_json::to_vec).transpose().map_err(|e| StoreError::Db(e.to_string()))?;
        self.write(|tx| {
            {
                let mut t = tx.open_table(kind.table())?;
                match &bytes {
                    Some(b) => {
                        t.insert(key, b.as_slice())?;
                    }
                    None => {
                        t.remove(key)?;
                    }
                }
            }
            append_event(tx, event)
        })
    }

    /// Appends `event` alone (what changed is kept elsewhere: an image, a network).
    pub fn log<E: Serialize>(&self, event: impl FnOnce(u64) -> E) -> Result<(u64, E), StoreError> {
        self.write(|tx| append_event(tx, event))
    }

    /// Events with a sequence number above `since`, oldest first.
    pub fn events_since<E: DeserializeOwned>(&self, since: u64) -> Result<Vec<E>, StoreError> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in t.range(since + 1..)? {
                let (k, v) = item?;
                out.push(
                    serde_json::from_slice(v.value())
                        .map_err(|err| StoreError::Corrupt { key: format!("event {}", k.value()), err })?,
                );
            }
            Ok(out)
        })
    }

    /// Reads one record.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, StoreError> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(kind.table())?;
            match t.get(key)? {
                None => Ok(None),
                Some(v) => serde_json::from_slice(v.value())
                    .map(Some)
                    .map_err(|err| StoreError::Corrupt { key: key.to_string(), err }),
            }
        })
    }

    /// Every key of a kind.
    pub fn keys(&self, kind: Kind) -> Result<Vec<String>, StoreError> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(kind.table())?;
            let mut out = Vec::new();
            for item in t.iter()? {
                let (k, _) = item?;
                out.push(k.value().to_string());
            }
            Ok(out)
        })
    }

    /// Reads every record of a kind.
    pub fn all<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, StoreError> {
        Ok(self.all_entries(kind)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Reads every record of a kind with its key.
    pub fn all_entries<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, StoreError> {
        self.run(|db| {
            let tx = db.begin_read()?;
            let t = tx.open_table(kind.table())?;
            let mut out = Vec::new();
            for item in t.iter()? {
                let (k, v) = item?;
                let rec = serde_json::from_slice(v.value())
                    .map_err(|err| StoreError::Corrupt { key: k.value().to_string(), err })?;
                out.push((k.value().to_string(), rec));
            }
            Ok(out)
        })
    }
}

/// Appends an event with the next sequence number in `tx`; trims the oldest beyond
/// [`EVENTS_KEPT`] now and then.
fn append_event<E: Serialize>(
    tx: &redb::WriteTransaction,
    event: impl FnOnce(u64) -> E,
) -> Result<(u64, E), StoreError> {
    let mut log = tx.open_table(EVENTS)?;
    let seq = log.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
    let ev = event(seq);
    let eb = serde_json::to_vec(&ev).map_err(|e| StoreError::Db(e.to_string()))?;
    log.insert(seq, eb.as_slice())?;
    if seq > EVENTS_KEPT && seq % 100 == 0 {
        let cut = seq - EVENTS_KEPT;
        log.retain_in(..cut, |_, _| false)?;
    }
    Ok((seq, ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_delete_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("meta.redb");
        {
            let s = Store::open(&p).unwrap();
            s.put(Kind::Container, "a", &vec![1, 2, 3]).unwrap();
            s.put(Kind::Container, "b", &vec![4]).unwrap();
            s.delete(Kind::Container, "b").unwrap();
        }
        let s = Store::open(&p).unwrap();
        assert_eq!(s.get::<Vec<i32>>(Kind::Container, "a").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(s.get::<Vec<i32>>(Kind::Container, "b").unwrap(), None);
        assert_eq!(s.all::<Vec<i32>>(Kind::Container).unwrap().len(), 1);
        assert!(s.all::<Vec<i32>>(Kind::Image).unwrap().is_empty());
    }

    #[test]
    fn concurrent_inserts_of_one_key_have_one_winner_and_name_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Store::open(&dir.path().join("meta.redb")).unwrap());
        let got: Vec<Option<String>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let s = &s;
                    sc.spawn(move || s.insert_new(Kind::Lease, "n/10.0.0.9", &format!("c{i}")).unwrap())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(got.iter().filter(|g| g.is_none()).count(), 1, "{got:?}");
        let holder: String = s.get(Kind::Lease, "n/10.0.0.9").unwrap().unwrap();
        assert!(got.iter().flatten().all(|h| *h == holder), "{got:?} vs {holder}");
    }

    #[test]
    fn concurrent_writers_share_commits_and_every_change_lands() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("meta.redb")).unwrap();
        std::thread::scope(|sc| {
            for t in 0..16 {
                let s = &s;
                sc.spawn(move || {
                    for i in 0..20 {
                        s.put(Kind::Container, &format!("c{t}-{i}"), &i).unwrap();
                        // Read-your-writes: the call returned after its commit.
                        assert_eq!(s.get::<i32>(Kind::Container, &format!("c{t}-{i}")).unwrap(), Some(i));
                    }
                });
            }
        });
        assert_eq!(s.keys(Kind::Container).unwrap().len(), 320);
        let (commits, changes) = s.commit_counts();
        assert_eq!(changes, 320);
        assert!(commits < changes, "16 writers at once never shared a commit: {commits} commits");
        eprintln!("group commit: {changes} changes in {commits} commits");
        // Events logged from many threads get distinct, gapless sequence numbers.
        let seqs: Vec<u64> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8).map(|_| sc.spawn(|| s.log(|seq| seq).unwrap().0)).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(sorted, (1..=8).collect::<Vec<_>>(), "{seqs:?}");
    }

    #[test]
    fn a_failed_change_keeps_nothing_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("meta.redb")).unwrap();
        s.put(Kind::Container, "kept", &1).unwrap();
        let r: Result<(), StoreError> = s.write(|tx| {
            tx.open_table(Kind::Container.table())?.insert("half", b"1".as_slice())?;
            Err(StoreError::Db("injected".into()))
        });
        assert!(r.unwrap_err().to_string().contains("injected"));
        assert_eq!(s.get::<i32>(Kind::Container, "half").unwrap(), None, "the aborted change is not kept");
        s.put(Kind::Container, "after", &2).unwrap();
        assert_eq!(s.keys(Kind::Container).unwrap(), ["after", "kept"]);
    }

    #[test]
    fn concurrent_first_free_inserts_never_share_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Store::open(&dir.path().join("meta.redb")).unwrap());
        s.put(Kind::Lease, "n/1", &"taken").unwrap();
        let got: Vec<String> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let s = &s;
                    sc.spawn(move || {
                        s.insert_first_free(Kind::Lease, (1..=10).map(|n| format!("n/{n}")), &format!("c{i}"))
                            .unwrap()
                            .unwrap()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut uniq = got.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 8, "{got:?}");
        assert!(!got.contains(&"n/1".to_string()));
        assert_eq!(s.insert_first_free(Kind::Lease, ["n/1".to_string()], &"x").unwrap(), None);
    }
}
