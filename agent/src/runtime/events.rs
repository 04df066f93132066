//! The event log: every lifecycle change of a container is recorded with a sequence
//! number in the same store transaction as the change, and broadcast to followers. A
//! client that lost its stream resumes with `since=<last seq>` and misses nothing.

use super::{ContainerRecord, Result, Runtime};
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::sync::{broadcast, mpsc};

/// One event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub seq: u64,
    /// Unix nanoseconds.
    pub time: i64,
    /// `container` (images may follow).
    pub kind: String,
    /// create, start, die, oom, destroy, update.
    pub action: String,
    pub id: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
}

impl Runtime {
    /// Saves (or with `delete`, removes) a container record and logs `action` atomically.
    pub(super) fn save_and_log(
        &self,
        rec: &ContainerRecord,
        action: &str,
        attrs: &[(&str, String)],
        delete: bool,
    ) -> Result<()> {
        let value = (!delete).then_some(rec);
        let (_, ev) = self.store.change_and_log(Kind::Container, &rec.id, value, |seq| Event {
            seq,
            time: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            kind: "container".into(),
            action: action.into(),
            id: rec.id.clone(),
            name: rec.name.clone(),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .chain([("image".to_string(), rec.spec.image.clone())])
                .collect(),
        })?;
        self.settled(&rec.id);
        // No receiver is fine: nobody follows right now.
        let _ = self.events.send(ev);
        Ok(())
    }

    /// Events from now on, as they happen (a follower that lags loses them: `Lagged`).
    pub fn live_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Events after `since`, then (with `follow`) new ones as they happen.
    pub fn events(&self, since: u64, follow: bool) -> Result<mpsc::Receiver<Event>> {
        // Subscribe before reading the log so nothing falls between the two.
        let mut live = self.events.subscribe();
        let past: Vec<Event> = self.store.events_since(since)?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut last = since;
            for e in past {
                last = e.seq;
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                match live.recv().await {
                    Ok(e) if e.seq > last => {
                        last = e.seq;
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // A slow follower lost events: end the stream; it resumes with since=last.
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(rx)
    }
}
