//! The build cache: a step's layer kept under a key of (parent state, instruction, hashed inputs) in the store's
//! `build_cache` table, so an unchanged rebuild reuses every layer and gives the same image ID. An entry whose layer
//! or blob was pruned is a miss.

use super::state::State;
use crate::image::Layer;
use crate::runtime::Runtime;
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A cached layer step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CacheEntry {
    pub(super) diff_id: String,
    pub(super) size: u64,
    pub(super) blob: String,
    pub(super) created: String,
}

impl CacheEntry {
    /// The entry of a layer made just now.
    pub(super) fn made_now(layer: Layer) -> CacheEntry {
        let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        CacheEntry { blob: layer.diff_id.clone(), diff_id: layer.diff_id, size: layer.size, created }
    }
}

/// Key of a RUN step: the state it runs on, the instruction, the build args it sees, its network.
pub(super) fn run_key(st: &State, text: &str, build_args: &[(String, String)], network: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{}\nRUN\n{text}\n{build_args:?}\n{network}", st.key()).as_bytes());
    hex::encode(h.finalize())
}

/// Key of a COPY/ADD step: the state it applies to, the instruction, the hash of what it staged.
pub(super) fn copy_key(state_key: &str, text: &str, inputs: &str) -> String {
    let mut h = Sha256::new();
    h.update(format!("{state_key}\n{text}\n{inputs}").as_bytes());
    hex::encode(h.finalize())
}

/// Hash of a staged tree: paths, types, modes, owners, contents, link targets.
pub(super) fn tree_hash(root: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = p.symlink_metadata()?;
            let rel = p.strip_prefix(root).unwrap_or(&p);
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}\0{}\0{}\0", m.mode(), m.uid(), m.gid()).as_bytes());
            if m.file_type().is_symlink() {
                h.update(std::fs::read_link(&p)?.as_os_str().as_encoded_bytes());
            } else if m.is_file() {
                let mut f = std::fs::File::open(&p)?;
                std::io::copy(&mut f, &mut h)?;
            } else if m.is_dir() {
                stack.push(p);
            }
            h.update(b"\n");
        }
    }
    Ok(hex::encode(h.finalize()))
}

impl Runtime {
    pub(super) fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        let e: CacheEntry = self.store.get(Kind::BuildCache, key).ok().flatten()?;
        // Layers can be removed by rmi/prune: then the entry is stale.
        (self.images.layer_dir(&e.diff_id).is_dir() && self.images.blob_path(&e.blob).is_file()).then_some(e)
    }

    /// Records a step's layer; a cache that cannot be written only costs the next build time.
    pub(super) fn cache_put(&self, key: &str, e: &CacheEntry) {
        let _ = self.store.put(Kind::BuildCache, key, e);
    }
}
