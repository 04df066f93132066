//! Embedded transactional metadata (redb): containers, images and tags.
//!
//! Values are JSON documents of the domain records; every change is one redb write
//! transaction, so a crash at any point leaves either the old or the new state.

use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const GROUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("groups");
const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const BUILD_CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("build_cache");

/// How many events the log keeps (older ones are trimmed).
pub const EVENTS_KEPT: u64 = 10_000;

/// Errors of the metadata store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata store: {0}")]
    Db(String),
    #[error("metadata store: corrupt record {key}: {err}")]
    Corrupt { key: String, err: serde_json::Error },
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

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
        }
    }
}

/// The agent's metadata database, `<root>/meta.redb`.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database file and its tables.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
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
        }
        tx.commit()?;
        Ok(Store { db })
    }

    /// Inserts or replaces one record.
    pub fn put<T: Serialize>(&self, kind: Kind, key: &str, value: &T) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Db(e.to_string()))?;
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(kind.table())?;
            t.insert(key, bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
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
        let tx = self.db.begin_write()?;
        let mut got = None;
        {
            let mut t = tx.open_table(kind.table())?;
            for key in candidates {
                if t.get(key.as_str())?.is_none() {
                    t.insert(key.as_str(), bytes.as_slice())?;
                    got = Some(key);
                    break;
                }
            }
        }
        if got.is_some() {
            tx.commit()?;
        }
        Ok(got)
    }

    /// Removes one record; absent is fine.
    pub fn delete(&self, kind: Kind, key: &str) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(kind.table())?;
            t.remove(key)?;
        }
        tx.commit()?;
        Ok(())
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
        let tx = self.db.begin_write()?;
        let ev;
        let seq;
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
            let mut log = tx.open_table(EVENTS)?;
            seq = log.last()?.map(|(k, _)| k.value()).unwrap_or(0) + 1;
            ev = event(seq);
            let eb = serde_json::to_vec(&ev).map_err(|e| StoreError::Db(e.to_string()))?;
            log.insert(seq, eb.as_slice())?;
            if seq > EVENTS_KEPT && seq % 100 == 0 {
                let cut = seq - EVENTS_KEPT;
                log.retain_in(..cut, |_, _| false)?;
            }
        }
        tx.commit()?;
        Ok((seq, ev))
    }

    /// Events with a sequence number above `since`, oldest first.
    pub fn events_since<E: DeserializeOwned>(&self, since: u64) -> Result<Vec<E>, StoreError> {
        let tx = self.db.begin_read()?;
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
    }

    /// Reads one record.
    pub fn get<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Result<Option<T>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(kind.table())?;
        match t.get(key)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(|err| StoreError::Corrupt { key: key.to_string(), err }),
        }
    }

    /// Every key of a kind.
    pub fn keys(&self, kind: Kind) -> Result<Vec<String>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(kind.table())?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, _) = item?;
            out.push(k.value().to_string());
        }
        Ok(out)
    }

    /// Reads every record of a kind.
    pub fn all<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<T>, StoreError> {
        Ok(self.all_entries(kind)?.into_iter().map(|(_, v)| v).collect())
    }

    /// Reads every record of a kind with its key.
    pub fn all_entries<T: DeserializeOwned>(&self, kind: Kind) -> Result<Vec<(String, T)>, StoreError> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(kind.table())?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            let rec = serde_json::from_slice(v.value())
                .map_err(|err| StoreError::Corrupt { key: k.value().to_string(), err })?;
            out.push((k.value().to_string(), rec));
        }
        Ok(out)
    }
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
