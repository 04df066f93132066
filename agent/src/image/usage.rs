//! What the store holds and shares: image history, disk usage, prune.

use super::{io_at, ImageError, ImageRecord, ImageStore};
use std::collections::HashMap;
use std::path::Path;

/// One step of an image's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryStep {
    pub created_by: String,
    pub created_at: i64,
    pub empty_layer: bool,
    pub diff_id: String,
    pub size: u64,
    pub shared_with: Vec<String>,
}

/// Disk usage, shared layers counted once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DiskUsage {
    pub images: u32,
    pub layers: u32,
    pub layers_bytes: u64,
    pub shared_bytes: u64,
    pub unique_bytes: u64,
    pub images_bytes_naive: u64,
    pub containers: u32,
    pub containers_bytes: u64,
    pub reclaimable_bytes: u64,
}

fn label(i: &ImageRecord) -> String {
    i.familiar_tags().first().cloned().unwrap_or_else(|| i.id.chars().skip(7).take(12).collect())
}

/// Bytes of regular files under `dir` (not following symlinks).
pub fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.len();
            }
        }
    }
    total
}

impl ImageStore {
    /// The history of an image, newest step first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryStep>, ImageError> {
        let img = self.resolve(name)?;
        let all = self.list()?;
        let shared = |diff: &str| -> Vec<String> {
            all.iter().filter(|o| o.id != img.id && o.layers.iter().any(|l| l.diff_id == diff)).map(label).collect()
        };
        let p = self.blob_path(&img.id);
        let f = std::fs::File::open(&p).map_err(io_at(&p))?;
        let cfg = oci_spec::image::ImageConfiguration::from_reader(f)
            .map_err(|e| ImageError::BadArchive(format!("image config {}: {e}", img.id)))?;
        let mut layers = img.layers.iter();
        let mut steps = Vec::new();
        for h in cfg.history().clone().unwrap_or_default() {
            let empty = h.empty_layer().unwrap_or(false);
            let (diff_id, size) = if empty {
                (String::new(), 0)
            } else {
                layers.next().map(|l| (l.diff_id.clone(), l.size)).unwrap_or_default()
            };
            let created_at = h
                .created()
                .as_ref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .and_then(|d| d.timestamp_nanos_opt())
                .unwrap_or(0);
            let shared_with = if diff_id.is_empty() { vec![] } else { shared(&diff_id) };
            steps.push(HistoryStep {
                created_by: h.created_by().clone().unwrap_or_default(),
                created_at,
                empty_layer: empty,
                diff_id,
                size,
                shared_with,
            });
        }
        // Layers the history does not describe (configs without history).
        for l in layers {
            steps.push(HistoryStep {
                created_by: String::new(),
                created_at: 0,
                empty_layer: false,
                diff_id: l.diff_id.clone(),
                size: l.size,
                shared_with: shared(&l.diff_id),
            });
        }
        steps.reverse();
        Ok(steps)
    }

    /// Disk usage; `containers` are (id, upper dir, layer diff IDs).
    pub fn disk_usage(
        &self,
        containers: &[(String, std::path::PathBuf, Vec<String>)],
    ) -> Result<DiskUsage, ImageError> {
        let images = self.list()?;
        let mut users: HashMap<String, (u64, u32)> = HashMap::new();
        for i in &images {
            for l in &i.layers {
                let e = users.entry(l.diff_id.clone()).or_insert((l.size, 0));
                e.1 += 1;
            }
        }
        let mut u = DiskUsage { images: images.len() as u32, layers: users.len() as u32, ..Default::default() };
        for (diff, (size, n)) in &users {
            u.layers_bytes += size;
            u.images_bytes_naive += size * *n as u64;
            if *n > 1 {
                u.shared_bytes += size;
            } else {
                u.unique_bytes += size;
            }
            if !containers.iter().any(|(_, _, ls)| ls.contains(diff)) {
                u.reclaimable_bytes += size;
            }
        }
        u.containers = containers.len() as u32;
        u.containers_bytes = containers.iter().map(|(_, upper, _)| du(upper)).sum();
        Ok(u)
    }

    /// Removes untagged images (with `all`: every image) no container uses that `select`
    /// accepts (the prune's filters), then unreferenced layers and blobs.
    pub fn prune(
        &self,
        in_use: &super::InUse,
        all: bool,
        select: &dyn Fn(&super::ImageRecord) -> bool,
    ) -> Result<(Vec<String>, u64), ImageError> {
        let before: u64 = du(&self.root.join("layers")) + du(&self.root.join("blobs"));
        let mut deleted = Vec::new();
        for i in self.list()? {
            if (all || i.tags.is_empty()) && !in_use.images.iter().any(|(_, iid)| iid == &i.id) && select(&i) {
                self.store.delete(crate::store::Kind::Image, &i.id)?;
                deleted.push(i.id);
            }
        }
        self.gc(in_use)?;
        // Partial downloads of interrupted pulls, kept for a resume: not for ever.
        if let Ok(rd) = std::fs::read_dir(self.root.join("downloads")) {
            for e in rd.flatten() {
                let stale = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
                if stale.is_some_and(|age| age > std::time::Duration::from_secs(3600)) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let after: u64 = du(&self.root.join("layers")) + du(&self.root.join("blobs"));
        Ok((deleted, before.saturating_sub(after)))
    }
}
