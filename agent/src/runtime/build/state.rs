//! The image a build is making: its layers and its config document so far.

use super::cache::CacheEntry;
use crate::image::Layer;
use sha2::{Digest, Sha256};

/// The image being built: its layers and config document so far.
pub(super) struct State {
    pub(super) layers: Vec<Layer>,
    pub(super) blobs: Vec<String>,
    pub(super) cfg: serde_json::Value,
    /// An image record holding exactly this state, if one was saved.
    pub(super) saved: Option<String>,
    pub(super) cmd_set: bool,
}

impl State {
    pub(super) fn scratch() -> State {
        let cfg = serde_json::json!({
            "architecture": crate::image::archive::host_arch(), "os": "linux", "config": {},
            "rootfs": { "type": "layers", "diff_ids": [] }, "history": [],
        });
        State { layers: vec![], blobs: vec![], cfg, saved: None, cmd_set: false }
    }

    /// Identifies the state for the cache: its layers and its runtime config.
    pub(super) fn key(&self) -> String {
        let mut h = Sha256::new();
        for l in &self.layers {
            h.update(l.diff_id.as_bytes());
            h.update(b"\n");
        }
        h.update(self.cfg["config"].to_string().as_bytes());
        hex::encode(h.finalize())
    }

    pub(super) fn conf(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        if !self.cfg["config"].is_object() {
            self.cfg["config"] = serde_json::json!({});
        }
        match self.cfg["config"].as_object_mut() {
            Some(m) => m,
            None => unreachable!("config was just made an object"),
        }
    }

    pub(super) fn get(&self, key: &str) -> &serde_json::Value {
        &self.cfg["config"][key]
    }

    pub(super) fn last_created(&self) -> String {
        self.cfg["created"].as_str().unwrap_or("1970-01-01T00:00:00Z").to_string()
    }

    pub(super) fn history(&mut self, created_by: &str, created: &str, empty: bool) {
        let mut step = serde_json::json!({ "created": created, "created_by": created_by });
        if empty {
            step["empty_layer"] = true.into();
        }
        match self.cfg["history"].as_array_mut() {
            Some(h) => h.push(step),
            None => self.cfg["history"] = serde_json::json!([step]),
        }
        self.cfg["created"] = created.into();
        self.saved = None;
    }

    pub(super) fn add_layer(&mut self, e: &CacheEntry, created_by: &str) {
        self.layers.push(Layer { diff_id: e.diff_id.clone(), size: e.size });
        self.blobs.push(e.blob.clone());
        if let Some(ids) = self.cfg["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(e.diff_id.clone().into());
        } else {
            self.cfg["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": [e.diff_id] });
        }
        self.history(created_by, &e.created, false);
    }

    pub(super) fn env(&self) -> Vec<String> {
        self.get("Env")
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    pub(super) fn set_env(&mut self, k: &str, v: &str) {
        let env = crate::runtime::env::merge(&self.env(), &[format!("{k}={v}")]);
        self.conf().insert("Env".into(), env.into());
    }

    pub(super) fn insert_in(&mut self, key: &str, k: &str, v: serde_json::Value) {
        let m = self.conf().entry(key.to_string()).or_insert_with(|| serde_json::json!({}));
        if !m.is_object() {
            *m = serde_json::json!({});
        }
        if let Some(o) = m.as_object_mut() {
            o.insert(k.to_string(), v);
        }
    }

    pub(super) fn workdir(&self) -> String {
        self.get("WorkingDir").as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string()
    }
}
