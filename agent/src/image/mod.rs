//! The image store: blobs by digest, layers unpacked once per diff ID and shared by every
//! image and container that uses them, and image records (config + layer list + tags).

pub mod archive;
mod busy;
pub mod commit;
pub mod export;
pub mod pull;
pub mod push;
pub mod reference;
pub mod unpack;
pub mod usage;
pub use busy::{Busy, InUseSource};

use crate::store::{Kind, Store, StoreError};
use reference::{Reference, ReferenceError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The parts of an image config that the runtime uses.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    pub user: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: String,
    pub exposed_ports: Vec<String>,
    /// `HEALTHCHECK` (docker's `Healthcheck` in the image config).
    #[serde(default)]
    pub healthcheck: Option<crate::runtime::health::HealthConfig>,
    /// `VOLUME` paths: each gets an anonymous volume unless the container mounts something there.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// One layer of an image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Layer {
    pub diff_id: String,
    pub size: u64,
}

/// An image as the store keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// `sha256:<hex>` of the config blob.
    pub id: String,
    /// Fully qualified references (`docker.io/library/busybox:latest`).
    pub tags: Vec<String>,
    pub digest: String,
    pub created_at: i64,
    pub config: ImageConfig,
    /// Bottom layer first.
    pub layers: Vec<Layer>,
    /// Blob digests this image keeps alive (config, manifest, compressed layers).
    pub blobs: Vec<String>,
    pub architecture: String,
    pub os: String,
}

impl ImageRecord {
    /// Total unpacked size.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Tags in the familiar short form.
    pub fn familiar_tags(&self) -> Vec<String> {
        self.tags.iter().map(|t| Reference::parse(t).map(|r| r.familiar()).unwrap_or_else(|_| t.clone())).collect()
    }
}

/// Errors of the image store.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("no such image: {0}")]
    NotFound(String),
    #[error("image reference {0:?} matches more than one image")]
    Ambiguous(String),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("invalid image archive: {0}")]
    BadArchive(String),
    #[error("layer {digest} does not match its digest: got {got}")]
    DigestMismatch { digest: String, got: String },
    #[error("image {image} is used by container {container}; stop and remove it first, or force")]
    InUse { image: String, container: String },
    #[error(transparent)]
    Unpack(#[from] unpack::UnpackError),
    #[error("image store i/o at {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("pull {reference}: {msg}")]
    Pull { reference: String, kind: pull::PullErrorKind, msg: String },
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |err| ImageError::Io { path: path.to_path_buf(), err }
}

/// The image store under `<root>`: `blobs/sha256/<hex>`, `layers/<hex>/fs`, `tmp/`.
pub struct ImageStore {
    root: PathBuf,
    store: Arc<Store>,
    max_layer: std::sync::atomic::AtomicU64,
    gate: busy::Gate,
}

impl ImageStore {
    /// Opens the store, creating its directories.
    pub fn open(root: &Path, store: Arc<Store>) -> Result<ImageStore, ImageError> {
        for d in ["blobs/sha256", "layers", "tmp"] {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(io_at(&p))?;
        }
        // Leftovers of imports, pulls, commits and builds interrupted by a crash: layers half
        // unpacked, tars half written (a layer only leaves `tmp/` by one rename, complete).
        let tmp = root.join("tmp");
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let p = e.path();
                match std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p)) {
                    Ok(()) => tracing::warn!(path = %p.display(), "start-up sweep: removed an unfinished layer"),
                    Err(err) => {
                        tracing::warn!(path = %p.display(), error = %err, "start-up sweep: cannot remove an unfinished layer")
                    }
                }
            }
        }
        Ok(ImageStore {
            root: root.to_path_buf(),
            store,
            max_layer: std::sync::atomic::AtomicU64::new(unpack::DEFAULT_MAX_LAYER),
            gate: busy::Gate::default(),
        })
    }

    /// The bound on a layer's uncompressed size.
    pub fn max_layer_size(&self) -> u64 {
        self.max_layer.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bounds every layer's uncompressed size from now on (`[images] max_layer_size`).
    pub fn set_max_layer_size(&self, bytes: u64) {
        self.max_layer.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// A fresh private directory for an import in progress, on the same filesystem as the store.
    pub fn temp_dir(&self) -> Result<PathBuf, ImageError> {
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| ImageError::BadArchive(e.to_string()))?;
        let p = self.root.join("tmp").join(hex::encode(b));
        std::fs::create_dir_all(&p).map_err(io_at(&p))?;
        Ok(p)
    }

    /// Where pulls keep blobs being downloaded (`<hex>.partial`, resumed by the next pull)
    /// and downloaded ones until the image is stored.
    pub fn downloads_dir(&self) -> Result<PathBuf, ImageError> {
        let p = self.root.join("downloads");
        std::fs::create_dir_all(&p).map_err(io_at(&p))?;
        Ok(p)
    }

    /// A stored blob whose content is the layer `diff_id`, if that layer is unpacked here.
    pub fn blob_for_diff_id(&self, diff_id: &str) -> Option<String> {
        if !self.layer_dir(diff_id).is_dir() {
            return None;
        }
        self.list().ok()?.into_iter().find_map(|img| {
            let n = img.layers.len();
            let first = img.blobs.len().checked_sub(n)?;
            let j = img.layers.iter().position(|l| l.diff_id == diff_id)?;
            let d = img.blobs.get(first + j)?.clone();
            self.blob_path(&d).is_file().then_some(d)
        })
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    /// The unpacked directory of a layer (the overlay lowerdir).
    pub fn layer_dir(&self, diff_id: &str) -> PathBuf {
        self.root.join("layers").join(diff_id.trim_start_matches("sha256:")).join("fs")
    }

    /// Unpacks a layer blob unless that diff ID is already present; returns its size.
    pub fn ensure_layer(&self, blob: &Path, diff_id: &str) -> Result<u64, ImageError> {
        let hexid = diff_id.trim_start_matches("sha256:");
        let final_dir = self.root.join("layers").join(hexid);
        if final_dir.join("fs").is_dir() {
            return Ok(read_size(&final_dir));
        }
        let tmp = self.temp_dir()?;
        let fs = tmp.join("fs");
        std::fs::create_dir(&fs).map_err(io_at(&fs))?;
        let f = std::fs::File::open(blob).map_err(io_at(blob))?;
        let res = unpack::unpack_layer_limited(f, &fs, self.max_layer_size());
        let u = match res {
            Ok(u) => u,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                // A full disk is the store's condition, not the layer's fault: named as the
                // layer being made, so the API answers ResourceExhausted with the free space.
                return Err(match e {
                    unpack::UnpackError::Io(ref err) | unpack::UnpackError::Entry { ref err, .. }
                        if crate::space::is_full_chain(err) =>
                    {
                        ImageError::Io {
                            path: final_dir.clone(),
                            err: std::io::Error::new(std::io::ErrorKind::StorageFull, e.to_string()),
                        }
                    }
                    e => e.into(),
                });
            }
        };
        if u.diff_id != diff_id {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ImageError::DigestMismatch { digest: diff_id.to_string(), got: u.diff_id });
        }
        let _ = std::fs::write(tmp.join("size"), u.size.to_string());
        if let Err(e) = std::fs::rename(&tmp, &final_dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another import unpacked the same layer meanwhile.
            if !final_dir.join("fs").is_dir() {
                return Err(io_at(&final_dir)(e));
            }
        }
        Ok(u.size)
    }

    /// Moves a verified file into the blob store under its digest.
    pub fn put_blob(&self, from: &Path, digest: &str) -> Result<(), ImageError> {
        let to = self.blob_path(digest);
        if to.exists() {
            return Ok(());
        }
        std::fs::rename(from, &to).map_err(io_at(&to))
    }

    /// Saves a new image record, moving its tags away from any image that had them.
    pub fn save(&self, mut rec: ImageRecord) -> Result<ImageRecord, ImageError> {
        if let Some(old) = self.store.get::<ImageRecord>(Kind::Image, &rec.id)? {
            for t in old.tags {
                if !rec.tags.contains(&t) {
                    rec.tags.push(t);
                }
            }
        }
        for mut other in self.list()? {
            if other.id == rec.id {
                continue;
            }
            let before = other.tags.len();
            other.tags.retain(|t| !rec.tags.contains(t));
            if other.tags.len() != before {
                self.store.put(Kind::Image, &other.id, &other)?;
            }
        }
        self.store.put(Kind::Image, &rec.id, &rec)?;
        Ok(rec)
    }

    /// Adds `target` (a reference, normalised: `web` is `docker.io/library/web:latest`) to
    /// the image `source` names; an image that had it loses it.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, ImageError> {
        let tag = Reference::parse(target)?;
        if tag.digest.is_some() {
            let why = "a tag cannot be a digest reference";
            return Err(ImageError::Reference(reference::ReferenceError { input: target.to_string(), why }));
        }
        let mut rec = self.resolve(source)?;
        let t = tag.to_string();
        if !rec.tags.contains(&t) {
            rec.tags.push(t);
        }
        self.save(rec)
    }

    /// Every image.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.store.all(Kind::Image)?)
    }

    /// Finds an image by reference, full ID, or unique ID prefix (at least 4 hex).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let images = self.list()?;
        let hexpart = name.strip_prefix("sha256:").unwrap_or(name);
        if hexpart.len() >= 4 && hexpart.bytes().all(|b| b.is_ascii_hexdigit()) {
            let m: Vec<_> = images.iter().filter(|i| i.id.trim_start_matches("sha256:").starts_with(hexpart)).collect();
            match m.len() {
                1 => return Ok(m[0].clone()),
                0 => {}
                _ => return Err(ImageError::Ambiguous(name.to_string())),
            }
        }
        let r = Reference::parse(name)?;
        let full = r.to_string();
        if let Some(d) = &r.digest {
            if let Some(i) = images.iter().find(|i| &i.digest == d) {
                return Ok(i.clone());
            }
        }
        images.into_iter().find(|i| i.tags.contains(&full)).ok_or_else(|| ImageError::NotFound(name.to_string()))
    }

    /// Removes a tag, or the image when named by ID or its last tag. `in_use` lists the
    /// containers (id, image id) whose layers must stay. Returns (untagged, deleted).
    pub fn remove(&self, name: &str, force: bool, in_use: &InUse) -> Result<(Vec<String>, Vec<String>), ImageError> {
        let mut img = self.resolve(name)?;
        let mut untagged = Vec::new();
        let by_tag = Reference::parse(name).ok().map(|r| r.to_string()).filter(|t| img.tags.contains(t));
        if let Some(tag) = &by_tag {
            if img.tags.len() > 1 {
                img.tags.retain(|t| t != tag);
                self.store.put(Kind::Image, &img.id, &img)?;
                return Ok((vec![familiar(tag)], vec![]));
            }
        }
        if let Some((cid, _)) = in_use.images.iter().find(|(_, iid)| iid == &img.id) {
            if !force {
                return Err(ImageError::InUse { image: name.to_string(), container: cid[..12].to_string() });
            }
        }
        untagged.extend(img.tags.iter().map(|t| familiar(t)));
        self.store.delete(Kind::Image, &img.id)?;
        self.gc(in_use)?;
        Ok((untagged, vec![img.id]))
    }

    /// The collection itself ([`ImageStore::gc`] decides when it may run).
    fn collect(&self, in_use: &InUse) -> Result<Vec<PathBuf>, ImageError> {
        let images = self.list()?;
        let mut keep_layers = HashSet::new();
        let mut keep_blobs = HashSet::new();
        for i in &images {
            keep_layers.extend(i.layers.iter().map(|l| l.diff_id.trim_start_matches("sha256:").to_string()));
            keep_blobs.extend(i.blobs.iter().map(|b| b.trim_start_matches("sha256:").to_string()));
        }
        // Containers keep the layers of their image even after a forced rmi.
        keep_layers.extend(in_use.layers.iter().map(|l| l.trim_start_matches("sha256:").to_string()));
        let mut removed = Vec::new();
        for (dir, keep) in [("layers", &keep_layers), ("blobs/sha256", &keep_blobs)] {
            let p = self.root.join(dir);
            for e in std::fs::read_dir(&p).map_err(io_at(&p))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let path = e.path();
                    let r = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                    r.map_err(io_at(&path))?;
                    removed.push(path);
                }
            }
        }
        Ok(removed)
    }
}

impl ImageStore {
    /// The built-in image of pod sandboxes' infra process: one empty layer (kept in the
    /// store like any layer, so `--userns` idmaps or shifts it the same way), no config; the
    /// process itself is agentd's own pause (`LaunchSpec::pause`). Not listed among images.
    pub fn builtin_pause(&self) -> Result<ImageRecord, ImageError> {
        static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = MAKING.lock().unwrap_or_else(|p| p.into_inner());
        let tmp = self.temp_dir()?;
        let empty = tmp.join("empty");
        let layer = std::fs::create_dir(&empty).map_err(io_at(&empty)).and_then(|_| self.layer_from_dir(&empty, None));
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            tracing::warn!(dir = %tmp.display(), error = %e, "removing a temporary directory");
        }
        Ok(ImageRecord {
            id: String::new(),
            tags: vec![],
            digest: String::new(),
            created_at: 0,
            config: ImageConfig { cmd: vec!["pause".into()], ..Default::default() },
            layers: vec![layer?],
            blobs: vec![],
            architecture: String::new(),
            os: "linux".into(),
        })
    }
}

/// What containers hold of the image store: the image each was created from (container
/// ID, image ID) and the layers their roots stack, kept even after a forced rmi. The runtime
/// gathers it; the image store never reads container records.
#[derive(Clone, Debug, Default)]
pub struct InUse {
    pub images: Vec<(String, String)>,
    pub layers: HashSet<String>,
}

fn familiar(t: &str) -> String {
    Reference::parse(t).map(|r| r.familiar()).unwrap_or_else(|_| t.to_string())
}

fn read_size(layer: &Path) -> u64 {
    std::fs::read_to_string(layer.join("size")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
}
