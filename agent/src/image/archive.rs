//! Imports image archives: OCI image layouts (skopeo/buildah `oci-archive`), `docker save`
//! archives, and plain root filesystem tars (like `docker import`).

use super::{io_at, ImageConfig, ImageError, ImageRecord, ImageStore, Layer};
use crate::image::reference::Reference;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the client asked for with an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The archive is a plain root filesystem tar.
    pub rootfs: bool,
    /// References to tag the (first) imported image with.
    pub tags: Vec<String>,
    /// Config of a rootfs import.
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadArchive(msg.into())
}

/// `sha256:<hex>` of a file's bytes.
pub fn file_digest(p: &Path) -> Result<String, ImageError> {
    let mut f = std::fs::File::open(p).map_err(io_at(p))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(io_at(p))?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// Imports the archive at `file`; the caller removes `file` afterwards.
pub fn import(store: &ImageStore, file: &Path, opts: &ImportOptions) -> Result<Vec<ImageRecord>, ImageError> {
    let tags = opts.tags.iter().map(|t| Reference::parse(t).map(|r| r.to_string())).collect::<Result<Vec<_>, _>>()?;
    if opts.rootfs {
        if tags.is_empty() {
            return Err(bad("a rootfs import needs a tag (--tag REF)"));
        }
        return Ok(vec![import_rootfs(store, file, opts, tags)?]);
    }
    let dir = store.temp_dir()?;
    let res = (|| {
        let f = std::fs::File::open(file).map_err(io_at(file))?;
        let mut ar = tar::Archive::new(super::unpack::decompress(f).map_err(io_at(file))?);
        ar.unpack(&dir).map_err(|e| bad(format!("not a readable tar archive: {e}")))?;
        if dir.join("index.json").is_file() {
            import_oci(store, &dir, tags)
        } else if dir.join("manifest.json").is_file() {
            import_docker(store, &dir, tags)
        } else {
            Err(bad("neither an OCI layout (index.json) nor a docker save archive (manifest.json); \
                 for a plain root filesystem tar use --rootfs"))
        }
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn import_rootfs(
    store: &ImageStore,
    file: &Path,
    opts: &ImportOptions,
    tags: Vec<String>,
) -> Result<ImageRecord, ImageError> {
    let blob_digest = file_digest(file)?;
    let tmp = store.temp_dir()?;
    let res = (|| {
        let fs = tmp.join("fs");
        std::fs::create_dir(&fs).map_err(io_at(&fs))?;
        let f = std::fs::File::open(file).map_err(io_at(file))?;
        let u = super::unpack::unpack_layer_limited(f, &fs, store.max_layer_size())?;
        let final_dir = store.layer_dir(&u.diff_id);
        let final_dir = final_dir.parent().unwrap_or(&final_dir).to_path_buf();
        let _ = std::fs::write(tmp.join("size"), u.size.to_string());
        if !final_dir.join("fs").is_dir() {
            std::fs::rename(&tmp, &final_dir).map_err(io_at(&final_dir))?;
        }
        Ok::<_, ImageError>(u)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    let u = res?;
    let mut env = vec![DEFAULT_PATH.to_string()];
    env.extend(opts.env.iter().cloned());
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "created": created,
        "config": { "Env": env, "Cmd": opts.cmd },
        "rootfs": { "type": "layers", "diff_ids": [u.diff_id] },
        "history": [{ "created": created, "created_by": "agentctl image import --rootfs" }],
    });
    let bytes = serde_json::to_vec(&config).map_err(|e| bad(e.to_string()))?;
    let id = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let cpath = store.blob_path(&id);
    std::fs::write(&cpath, &bytes).map_err(io_at(&cpath))?;
    // Keep the layer blob only when it is a copy we can cheaply move (same filesystem).
    let rec = ImageRecord {
        id: id.clone(),
        tags,
        digest: String::new(),
        created_at: now_nanos(),
        config: ImageConfig { env, cmd: opts.cmd.clone(), ..Default::default() },
        layers: vec![Layer { diff_id: u.diff_id, size: u.size }],
        blobs: vec![id, blob_digest],
        architecture: config["architecture"].as_str().unwrap_or("amd64").to_string(),
        os: "linux".into(),
    };
    let blob_copy = store.blob_path(&rec.blobs[1]);
    if !blob_copy.exists() {
        std::fs::copy(file, &blob_copy).map_err(io_at(&blob_copy))?;
    }
    store.save(rec)
}

/// The path of a blob inside an unpacked OCI layout.
fn layout_blob(dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let (alg, hexd) = digest.split_once(':').ok_or_else(|| bad(format!("bad digest {digest}")))?;
    if alg != "sha256" || hexd.len() != 64 || !hexd.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("unsupported digest {digest}")));
    }
    let p = dir.join("blobs").join(alg).join(hexd);
    if !p.is_file() {
        return Err(bad(format!("blob {digest} is missing from the archive")));
    }
    Ok(p)
}

fn verified(dir: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let p = layout_blob(dir, digest)?;
    let got = file_digest(&p)?;
    if got != digest {
        return Err(ImageError::DigestMismatch { digest: digest.to_string(), got });
    }
    Ok(p)
}

const INDEX_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];

pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

fn import_oci(store: &ImageStore, dir: &Path, mut tags: Vec<String>) -> Result<Vec<ImageRecord>, ImageError> {
    let index = ImageIndex::from_file(dir.join("index.json")).map_err(|e| bad(format!("index.json: {e}")))?;
    let mut out: Vec<ImageRecord> = Vec::new();
    // Manifests already imported from this archive (their blobs are moved into the store):
    // a second entry for one of them (another tag of the same image) only adds its tags.
    let mut done: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for desc in index.manifests() {
        let mut digest = desc.digest().to_string();
        let mut mt = desc.media_type().to_string();
        // A nested index (multi-platform): choose this host's platform.
        let mut depth = 0;
        while INDEX_TYPES.contains(&mt.as_str()) {
            depth += 1;
            if depth > 4 {
                return Err(bad("image indexes nested too deep"));
            }
            let p = verified(dir, &digest)?;
            let inner = ImageIndex::from_file(&p).map_err(|e| bad(format!("index {digest}: {e}")))?;
            let pick = inner
                .manifests()
                .iter()
                .find(|m| {
                    m.platform()
                        .as_ref()
                        .is_some_and(|p| p.architecture().to_string() == host_arch() && p.os().to_string() == "linux")
                })
                .ok_or_else(|| bad(format!("index {digest} has no linux/{} image", host_arch())))?;
            digest = pick.digest().to_string();
            mt = pick.media_type().to_string();
        }
        let ann = desc.annotations().clone().unwrap_or_default();
        let mut my_tags = std::mem::take(&mut tags);
        for key in ["io.containerd.image.name", "org.opencontainers.image.ref.name"] {
            if let Some(name) = ann.get(key) {
                // A bare tag ("latest") names no repository: only a full reference tags.
                if name.contains('/') || name.contains(':') {
                    if let Ok(r) = Reference::parse(name) {
                        let t = r.to_string();
                        if !my_tags.contains(&t) {
                            my_tags.push(t);
                        }
                    }
                }
            }
        }
        if let Some(&i) = done.get(&digest) {
            let mut rec = out[i].clone();
            for t in my_tags {
                if !rec.tags.contains(&t) {
                    rec.tags.push(t);
                }
            }
            out[i] = store.save(rec)?;
            continue;
        }
        let mpath = verified(dir, &digest)?;
        let manifest = ImageManifest::from_file(&mpath).map_err(|e| bad(format!("manifest {digest}: {e}")))?;
        let config_digest = manifest.config().digest().to_string();
        let cpath = verified(dir, &config_digest)?;
        let layers: Vec<(PathBuf, String)> = manifest
            .layers()
            .iter()
            .map(|l| {
                let d = l.digest().to_string();
                Ok((layout_blob(dir, &d)?, d))
            })
            .collect::<Result<_, ImageError>>()?;
        let rec = finish(store, &cpath, &config_digest, layers, true, my_tags, &digest)?;
        store.put_blob(&mpath, &digest)?;
        done.insert(digest.clone(), out.len());
        out.push(rec);
    }
    if out.is_empty() {
        return Err(bad("index.json lists no image"));
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn inside(dir: &Path, rel: &str) -> Result<PathBuf, ImageError> {
    let p = Path::new(rel);
    if p.is_absolute() || p.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
        return Err(bad(format!("path {rel:?} escapes the archive")));
    }
    let full = dir.join(p);
    if !full.is_file() {
        return Err(bad(format!("{rel} is missing from the archive")));
    }
    Ok(full)
}

fn import_docker(store: &ImageStore, dir: &Path, mut tags: Vec<String>) -> Result<Vec<ImageRecord>, ImageError> {
    let raw = std::fs::read(dir.join("manifest.json")).map_err(io_at(&dir.join("manifest.json")))?;
    let entries: Vec<DockerManifestEntry> =
        serde_json::from_slice(&raw).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let cpath = inside(dir, &e.config)?;
        let config_digest = file_digest(&cpath)?;
        let mut my_tags = std::mem::take(&mut tags);
        for t in e.repo_tags.unwrap_or_default() {
            let t = Reference::parse(&t)?.to_string();
            if !my_tags.contains(&t) {
                my_tags.push(t);
            }
        }
        let layers = e
            .layers
            .iter()
            .map(|l| {
                let p = inside(dir, l)?;
                let d = file_digest(&p)?;
                Ok((p, d))
            })
            .collect::<Result<Vec<_>, ImageError>>()?;
        out.push(finish(store, &cpath, &config_digest, layers, false, my_tags, "")?);
    }
    if out.is_empty() {
        return Err(bad("manifest.json lists no image"));
    }
    Ok(out)
}

/// Reads a config, unpacks its layers, stores blobs and the record.
pub(crate) fn finish(
    store: &ImageStore,
    cpath: &Path,
    config_digest: &str,
    layers: Vec<(PathBuf, String)>,
    verify_layers: bool,
    tags: Vec<String>,
    manifest_digest: &str,
) -> Result<ImageRecord, ImageError> {
    // A concurrent pull of the same image may have moved a shared download into the
    // store already: read it from there.
    let stored_cfg = store.blob_path(config_digest);
    let raw = std::fs::read(cpath).or_else(|_| std::fs::read(&stored_cfg)).map_err(io_at(cpath))?;
    let cfg =
        ImageConfiguration::from_reader(&raw[..]).map_err(|e| bad(format!("image config {config_digest}: {e}")))?;
    let diff_ids = cfg.rootfs().diff_ids();
    if diff_ids.len() != layers.len() {
        return Err(bad(format!(
            "image config {config_digest} lists {} layers but the manifest has {}",
            diff_ids.len(),
            layers.len()
        )));
    }
    let mut recs = Vec::new();
    let mut blobs = vec![config_digest.to_string()];
    if !manifest_digest.is_empty() {
        blobs.push(manifest_digest.to_string());
    }
    let layers: Vec<(PathBuf, String)> =
        layers.into_iter().map(|(p, d)| if p.exists() { (p, d) } else { (store.blob_path(&d), d) }).collect();
    for ((path, digest), diff_id) in layers.iter().zip(diff_ids) {
        if verify_layers {
            let got = file_digest(path)?;
            if &got != digest {
                return Err(ImageError::DigestMismatch { digest: digest.clone(), got });
            }
        }
        let size = store.ensure_layer(path, diff_id)?;
        recs.push(Layer { diff_id: diff_id.clone(), size });
        blobs.push(digest.clone());
    }
    for (path, digest) in &layers {
        store.put_blob(path, digest)?;
    }
    if cpath.exists() {
        store.put_blob(cpath, config_digest)?;
    }
    // Layers unpacked and blobs stored, no image record yet: what the start-up sweep collects.
    crate::crash::point("image.before_record");
    store.save(ImageRecord {
        id: config_digest.to_string(),
        tags,
        digest: manifest_digest.to_string(),
        created_at: created_at(&cfg),
        config: image_config(&cfg, &raw),
        layers: recs,
        blobs,
        architecture: cfg.architecture().to_string(),
        os: cfg.os().to_string(),
    })
}

/// When an image was made, from its config (now if it does not say).
pub(crate) fn created_at(cfg: &ImageConfiguration) -> i64 {
    cfg.created()
        .as_ref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .and_then(|d| d.timestamp_nanos_opt())
        .unwrap_or_else(now_nanos)
}

/// docker's `config.Healthcheck` of a raw image config (OCI's schema has no such field).
fn healthcheck(raw: &[u8]) -> Option<crate::runtime::health::HealthConfig> {
    #[derive(serde::Deserialize)]
    struct Doc {
        config: Option<Conf>,
    }
    #[derive(serde::Deserialize)]
    struct Conf {
        #[serde(rename = "Healthcheck")]
        healthcheck: Option<Check>,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(default)]
    struct Check {
        #[serde(rename = "Test")]
        test: Vec<String>,
        #[serde(rename = "Interval")]
        interval: i64,
        #[serde(rename = "Timeout")]
        timeout: i64,
        #[serde(rename = "StartPeriod")]
        start_period: i64,
        #[serde(rename = "Retries")]
        retries: u32,
        #[serde(rename = "StartInterval")]
        start_interval: i64,
    }
    let c = serde_json::from_slice::<Doc>(raw).ok()?.config?.healthcheck?;
    let h = crate::runtime::health::HealthConfig {
        test: c.test,
        interval_ns: c.interval,
        timeout_ns: c.timeout,
        start_period_ns: c.start_period,
        retries: c.retries,
        start_interval_ns: c.start_interval,
    };
    // An image's invalid check is ignored (with a note), as a container could never use it.
    match h.validate() {
        Ok(()) => Some(h),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the image's HEALTHCHECK");
            None
        }
    }
}

/// The parts of an image config the runtime uses (`raw`: the config document itself).
pub(crate) fn image_config(cfg: &ImageConfiguration, raw: &[u8]) -> ImageConfig {
    let c = cfg.config().clone().unwrap_or_default();
    ImageConfig {
        env: c.env().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        labels: c.labels().clone().unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
        stop_signal: c.stop_signal().clone().unwrap_or_default(),
        exposed_ports: c.exposed_ports().clone().unwrap_or_default(),
        healthcheck: healthcheck(raw),
        volumes: c.volumes().clone().unwrap_or_default(),
    }
}
