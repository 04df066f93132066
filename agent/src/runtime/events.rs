//! The event log: every lifecycle change of a container is recorded with a sequence
//! number in the same store transaction as the change, and broadcast to followers. A
//! client that lost its stream resumes with `since=<last seq>` and misses nothing.

use super::{ContainerRecord, Result, Runtime, RuntimeError};
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
        let (_, ev) = self.records.write(&rec.id, value, || {
            Ok(self.store.change_and_log(Kind::Container, &rec.id, value, |seq| Event {
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
            })?)
        })?;
        self.settled(&rec.id);
        // No receiver is fine: nobody follows right now.
        let _ = self.events.send(ev);
        Ok(())
    }

    /// Logs an event about something other than a container record (an image: pull,
    /// import, untag, delete), after the change it reports. A failure is logged: the change
    /// itself has happened.
    pub fn log_event(&self, kind: &str, action: &str, id: &str, name: &str, attrs: &[(&str, String)]) {
        let made = self.store.log(|seq| Event {
            seq,
            time: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
            kind: kind.into(),
            action: action.into(),
            id: id.into(),
            name: name.into(),
            attributes: attrs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        });
        match made {
            Ok((_, ev)) => {
                let _ = self.events.send(ev);
            }
            Err(e) => tracing::warn!(kind, action, id, error = %e, "could not log an event"),
        }
    }

    /// Events from now on, as they happen (a follower that lags loses them: `Lagged`).
    pub fn live_events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Events after `since` that pass `filter`, then (with `follow`) new ones as they happen.
    pub fn events(&self, since: u64, follow: bool, filter: EventFilter) -> Result<mpsc::Receiver<Event>> {
        // Subscribe before reading the log so nothing falls between the two.
        let mut live = self.events.subscribe();
        let past: Vec<Event> = self.store.events_since(since)?;
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut last = since;
            for e in past {
                last = e.seq;
                if !filter.matches(&e) {
                    continue;
                }
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            loop {
                // A client that went away ends its follower now, not at the next event.
                let got = tokio::select! {
                    got = live.recv() => got,
                    _ = tx.closed() => return,
                };
                match got {
                    Ok(e) if e.seq > last => {
                        last = e.seq;
                        if !filter.matches(&e) {
                            continue;
                        }
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

/// docker's `--filter` for events: `type=`, `container=` (ID, ID prefix or name), `event=`
/// (the action; `health_status` matches every `health_status: …`), `image=`, `label=KEY` or
/// `KEY=VALUE` (on the event's attributes). Values of one key are alternatives; different
/// keys must all match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    kinds: Vec<String>,
    containers: Vec<String>,
    actions: Vec<String>,
    images: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

impl EventFilter {
    /// Parses `KEY=VALUE` strings; an unknown key or a missing value is InvalidArgument.
    pub fn parse(filters: &[String]) -> Result<EventFilter> {
        let mut f = EventFilter::default();
        for raw in filters {
            let Some((k, v)) = raw.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty()) else {
                return Err(RuntimeError::InvalidArgument(format!("bad filter {raw:?}: use KEY=VALUE")));
            };
            match k {
                "type" => f.kinds.push(v.to_string()),
                "container" | "name" | "id" => f.containers.push(v.to_string()),
                "event" | "action" => f.actions.push(v.to_string()),
                "image" => f.images.push(v.to_string()),
                "label" => f.labels.push(match v.split_once('=') {
                    Some((lk, lv)) => (lk.to_string(), Some(lv.to_string())),
                    None => (v.to_string(), None),
                }),
                _ => {
                    return Err(RuntimeError::InvalidArgument(format!(
                        "invalid filter {k:?} in {raw:?}: use type, container, event, image or label"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Event) -> bool {
        let any = |vals: &[String], ok: &dyn Fn(&str) -> bool| vals.is_empty() || vals.iter().any(|v| ok(v));
        any(&self.kinds, &|v| e.kind == v)
            && any(&self.containers, &|v| e.name == v || e.id == v || (v.len() >= 3 && e.id.starts_with(v)))
            && any(&self.actions, &|v| e.action == v || e.action.split(':').next() == Some(v))
            && any(&self.images, &|v| e.attributes.get("image").is_some_and(|i| i == v || image_matches(i, v)))
            && self.labels.iter().all(|(k, want)| match (e.attributes.get(k), want) {
                (Some(have), Some(w)) => have == w,
                (Some(_), None) => true,
                (None, _) => false,
            })
    }
}

/// `busybox` matches `busybox:latest` and `docker.io/library/busybox:latest`.
fn image_matches(have: &str, want: &str) -> bool {
    let norm = |s: &str| {
        let s = s.strip_prefix("docker.io/").unwrap_or(s);
        let s = s.strip_prefix("library/").unwrap_or(s);
        if s.rsplit('/').next().is_some_and(|last| last.contains(':') || last.contains('@')) {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    norm(have) == norm(want)
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    fn ev(action: &str, name: &str, image: &str) -> Event {
        Event {
            seq: 1,
            time: 0,
            kind: "container".into(),
            action: action.into(),
            id: "0123456789abcdef".into(),
            name: name.into(),
            attributes: [("image".to_string(), image.to_string()), ("exitCode".to_string(), "3".to_string())]
                .into_iter()
                .collect(),
        }
    }

    fn f(v: &[&str]) -> EventFilter {
        EventFilter::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn filters_combine_like_docker() {
        let die = ev("die", "web", "busybox");
        assert!(f(&[]).matches(&die));
        assert!(f(&["type=container", "container=web", "event=die"]).matches(&die));
        assert!(f(&["event=start", "event=die"]).matches(&die), "one key: alternatives");
        assert!(!f(&["event=die", "container=db"]).matches(&die), "different keys: all");
        assert!(f(&["container=0123"]).matches(&die), "ID prefix");
        assert!(f(&["image=docker.io/library/busybox:latest"]).matches(&die));
        assert!(f(&["label=exitCode=3"]).matches(&die) && f(&["label=exitCode"]).matches(&die));
        assert!(!f(&["label=exitCode=4"]).matches(&die));
        assert!(f(&["event=health_status"]).matches(&ev("health_status: healthy", "web", "x")));
        assert!(!f(&["type=image"]).matches(&die));
    }

    #[test]
    fn bad_filters_are_refused_by_name() {
        let e = EventFilter::parse(&["colour=red".into()]).unwrap_err().to_string();
        assert!(e.contains("\"colour\""), "{e}");
        assert!(EventFilter::parse(&["event".into()]).unwrap_err().to_string().contains("KEY=VALUE"));
    }
}
