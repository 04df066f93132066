//! Pulls images from OCI Distribution / Docker Registry v2 servers with oci-client: manifest
//! lists resolved to this host's platform, every blob verified against its digest by us,
//! layers already in the store not downloaded again, interrupted downloads resumed with an
//! HTTP range, mirrors tried before the origin, and progress reported per layer.
//!
//! A new oci-client `Client` is made for every pull: it caches credentials per registry
//! (first one wins), and one caller's credentials must never serve another's pull.

use super::archive::finish;
use super::reference::Reference;
use super::{io_at, ImageError, ImageRecord, ImageStore};
use futures::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Manifest media types we accept, indexes first (registry 2.8 answers 404 for an OCI index
/// unless its type is accepted).
const ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Layers downloaded at the same time.
const PARALLEL_LAYERS: usize = 3;
/// Largest manifest or config accepted (both are small JSON documents).
const MAX_DOCUMENT: u64 = 4 << 20;

/// `[registry]` in agentd's config.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) spoken to over plain HTTP.
    #[serde(default)]
    pub insecure: Vec<String>,
    /// Registry → mirrors (`host[:port]`) tried in order before it: `"docker.io" = ["m:5000"]`.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Vec<String>>,
}

/// Credentials for one registry.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// One progress report: `id` is a layer's short digest (empty for the image as a whole).
#[derive(Debug, Clone, PartialEq)]
pub struct PullEvent {
    pub id: String,
    pub status: String,
    pub current: u64,
    pub total: u64,
}

pub(super) fn event(id: &str, status: impl Into<String>, current: u64, total: u64) -> PullEvent {
    PullEvent { id: id.to_string(), status: status.into(), current, total }
}

pub(super) fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Pulls images into the store.
pub struct Puller {
    pub(super) images: Arc<ImageStore>,
    cfg: RegistryConfig,
    /// One download per blob at a time, across concurrent pulls.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

pub(super) fn registry_error(reference: &str, e: &OciDistributionError) -> ImageError {
    use oci_client::errors::OciErrorCode;
    let kind = match e {
        OciDistributionError::UnauthorizedError { .. } => PullErrorKind::Unauthorized,
        OciDistributionError::RegistryError { envelope, .. } => {
            if envelope.errors.iter().any(|x| {
                matches!(x.code, OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::BlobUnknown)
            }) {
                PullErrorKind::NotFound
            } else if envelope
                .errors
                .iter()
                .any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                PullErrorKind::Unauthorized
            } else {
                PullErrorKind::Registry
            }
        }
        OciDistributionError::ImageManifestNotFoundError(_) => PullErrorKind::NotFound,
        OciDistributionError::ServerError { code: 404, .. } => PullErrorKind::NotFound,
        OciDistributionError::ServerError { code: 401 | 403, .. } => PullErrorKind::Unauthorized,
        OciDistributionError::DigestError(_) => PullErrorKind::Corrupt,
        OciDistributionError::RequestError(_) => PullErrorKind::Unreachable,
        _ => PullErrorKind::Registry,
    };
    let msg = agent_proto::with_causes(e.to_string(), std::error::Error::source(e));
    ImageError::Pull { reference: reference.to_string(), kind, msg }
}

/// What went wrong talking to a registry, for the gRPC code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullErrorKind {
    /// No such repository, tag, manifest or blob.
    NotFound,
    /// Credentials missing or refused.
    Unauthorized,
    /// The registry could not be reached.
    Unreachable,
    /// A blob or manifest did not match its digest.
    Corrupt,
    /// The image has no variant for this host.
    NoPlatform,
    /// Anything else the registry answered.
    Registry,
}

impl Puller {
    /// A puller for `images` with the agent's registry settings.
    pub fn new(images: Arc<ImageStore>, cfg: RegistryConfig) -> Puller {
        Puller { images, cfg, locks: Mutex::new(HashMap::new()) }
    }

    pub(super) fn client(&self, registry: &str, insecure: bool) -> Result<Client, ImageError> {
        // reqwest's rustls needs a process-wide crypto provider; ring is the one we build.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let mut plain = self.cfg.insecure.clone();
        if insecure {
            plain.push(registry.to_string());
        }
        let cfg = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        Client::try_from(cfg).map_err(|e| registry_error(registry, &e))
    }

    pub(super) fn oci_ref(registry: &str, r: &Reference) -> oci_client::Reference {
        match (&r.digest, &r.tag) {
            (Some(d), _) => oci_client::Reference::with_digest(registry.to_string(), r.path.clone(), d.clone()),
            (None, Some(t)) => oci_client::Reference::with_tag(registry.to_string(), r.path.clone(), t.clone()),
            (None, None) => oci_client::Reference::with_tag(registry.to_string(), r.path.clone(), "latest".into()),
        }
    }

    /// The registry to talk to for a domain: Docker Hub's API lives at index.docker.io.
    pub(super) fn endpoint(domain: &str) -> String {
        if domain == "docker.io" {
            "index.docker.io".to_string()
        } else {
            domain.to_string()
        }
    }

    /// Checks credentials against `registry` the way `docker login` does.
    pub async fn login(&self, registry: &str, creds: &Credentials, insecure: bool) -> Result<(), ImageError> {
        let host = Self::endpoint(registry);
        let client = self.client(&host, insecure)?;
        let auth = RegistryAuth::Basic(creds.username.clone(), creds.password.clone());
        // A token registry checks the credentials when it issues the token; a registry with
        // plain basic auth answers /v2/ itself.
        let probe = oci_client::Reference::with_tag(host.clone(), "library/login-probe".into(), "latest".into());
        let token = client
            .auth(&probe, &auth, oci_client::RegistryOperation::Pull)
            .await
            .map_err(|e| registry_error(registry, &e))?;
        if token.is_some() {
            return Ok(());
        }
        let plain = insecure || self.cfg.insecure.iter().any(|h| h == &host);
        let url = format!("{}://{host}/v2/", if plain { "http" } else { "https" });
        let resp = reqwest::Client::new()
            .get(&url)
            .basic_auth(&creds.username, Some(&creds.password))
            .timeout(Duration::from_secs(15))
            .send()
            .await
            .map_err(|e| ImageError::Pull {
                reference: registry.to_string(),
                kind: PullErrorKind::Unreachable,
                msg: format!("{url}: {e}"),
            })?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 | 403 => Err(ImageError::Pull {
                reference: registry.to_string(),
                kind: PullErrorKind::Unauthorized,
                msg: format!("login to {registry} refused for user {:?}: wrong username or password", creds.username),
            }),
            c => Err(ImageError::Pull {
                reference: registry.to_string(),
                kind: PullErrorKind::Registry,
                msg: format!("{url} answered HTTP {c}"),
            }),
        }
    }

    /// Pulls `input` (`busybox`, `host:5000/app:1`, `repo@sha256:…`), trying the configured
    /// mirrors of its registry first, and reports progress on `tx`.
    pub async fn pull(
        &self,
        input: &str,
        creds: Option<Credentials>,
        insecure: bool,
        tx: mpsc::Sender<PullEvent>,
    ) -> Result<ImageRecord, ImageError> {
        let r = Reference::parse(input)?;
        // From the first layer found in the store to the image's record.
        let _busy = self.images.busy();
        let mut sources: Vec<(String, bool)> =
            self.cfg.mirrors.get(&r.domain).into_iter().flatten().map(|m| (m.clone(), true)).collect();
        sources.push((Self::endpoint(&r.domain), false));
        let mut last = None;
        for (registry, mirror) in sources {
            // Credentials are for the registry they were given for, not for its mirrors.
            let auth = match (&creds, mirror) {
                (Some(c), false) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
                _ => RegistryAuth::Anonymous,
            };
            match self.pull_from(&registry, &r, auth, insecure, &tx).await {
                Ok(rec) => return Ok(rec),
                Err(e) if mirror => {
                    tracing::warn!(mirror = %registry, reference = %r, error = %e, "mirror failed; trying the next source");
                    let _ = tx.send(event("", format!("mirror {registry} failed: {e}"), 0, 0)).await;
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ImageError::NotFound(input.to_string())))
    }

    async fn pull_from(
        &self,
        registry: &str,
        r: &Reference,
        auth: RegistryAuth,
        insecure: bool,
        tx: &mpsc::Sender<PullEvent>,
    ) -> Result<ImageRecord, ImageError> {
        let name = r.to_string();
        let client = self.client(registry, insecure)?;
        let oref = Self::oci_ref(registry, r);
        let err = |e: OciDistributionError| registry_error(&name, &e);
        let _ = tx.send(event("", format!("Pulling from {}", r.path), 0, 0)).await;
        let (mut raw, mut digest) = client.pull_manifest_raw(&oref, &auth, ACCEPT).await.map_err(err)?;
        // An index (multi-platform image): choose linux/<this arch>, at most two levels deep.
        for _ in 0..2 {
            let v: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| bad_doc(&name, "manifest", e))?;
            if v.get("manifests").is_none() {
                break;
            }
            let index = oci_spec::image::ImageIndex::from_reader(&raw[..]).map_err(|e| bad_doc(&name, "index", e))?;
            let arch = super::archive::host_arch();
            let pick = index
                .manifests()
                .iter()
                .find(|m| {
                    m.platform()
                        .as_ref()
                        .is_some_and(|p| p.architecture().to_string() == arch && p.os().to_string() == "linux")
                })
                .ok_or_else(|| ImageError::Pull {
                    reference: name.clone(),
                    kind: PullErrorKind::NoPlatform,
                    msg: format!("the image index {digest} has no linux/{arch} image"),
                })?;
            let (m, d) = client
                .pull_manifest_raw(&oref.clone_with_digest(pick.digest().to_string()), &auth, ACCEPT)
                .await
                .map_err(err)?;
            raw = m;
            digest = d;
        }
        let manifest =
            oci_spec::image::ImageManifest::from_reader(&raw[..]).map_err(|e| bad_doc(&name, "manifest", e))?;
        let _ = tx.send(event("", format!("Digest: {digest}"), 0, 0)).await;
        let downloads = self.images.downloads_dir()?;

        let cdesc = manifest.config();
        if cdesc.size() > MAX_DOCUMENT {
            return Err(bad_doc(&name, "config", format!("{} bytes is too large", cdesc.size())));
        }
        let config_digest = cdesc.digest().to_string();
        let cpath = self.fetch(&client, &oref, &config_digest, cdesc.size(), None).await?;

        let layers = manifest.layers().clone();
        let diff_ids = oci_spec::image::ImageConfiguration::from_file(&cpath)
            .map_err(|e| bad_doc(&name, "image config", e))?
            .rootfs()
            .diff_ids()
            .clone();
        if diff_ids.len() != layers.len() {
            return Err(bad_doc(
                &name,
                "image",
                format!("its config lists {} layers but the manifest {}", diff_ids.len(), layers.len()),
            ));
        }
        let (client, oref) = (&client, &oref);
        let mut fetches = Vec::new();
        for (l, diff_id) in layers.iter().zip(diff_ids) {
            let (d, size) = (l.digest().to_string(), l.size());
            fetches.push(async move {
                let id = short(&d);
                // The same layer, compressed differently (a registry recompresses on push),
                // is already unpacked: use it and the blob we have for it.
                if let Some(local) = self.images.blob_for_diff_id(&diff_id) {
                    let _ = tx.send(event(&id, "Already exists", size, size)).await;
                    return Ok::<_, ImageError>((self.images.blob_path(&local), local));
                }
                let path = self.fetch(client, oref, &d, size, Some((tx, &id))).await?;
                Ok::<_, ImageError>((path, d))
            });
        }
        let results: Vec<Result<(PathBuf, String), ImageError>> =
            futures::stream::iter(fetches).buffered(PARALLEL_LAYERS).collect().await;
        let mut blobs = Vec::new();
        for res in results {
            blobs.push(res?);
        }
        crate::crash::point("pull.after_download");
        let mpath = downloads.join(digest.trim_start_matches("sha256:"));
        std::fs::write(&mpath, &raw).map_err(io_at(&mpath))?;

        for (_, d) in &blobs {
            let _ = tx.send(event(&short(d), "Extracting", 0, 0)).await;
        }
        let tags = match &r.tag {
            Some(t) if r.digest.is_none() => vec![format!("{}/{}:{t}", r.domain, r.path)],
            _ => vec![],
        };
        let images = Arc::clone(&self.images);
        let mdigest = digest.clone();
        let cp = cpath.clone();
        let rec = tokio::task::spawn_blocking(move || {
            let rec = finish(&images, &cp, &config_digest, blobs, false, tags, &mdigest)?;
            images.put_blob(&mpath, &mdigest)?;
            Ok::<_, ImageError>(rec)
        })
        .await
        .map_err(|e| ImageError::BadArchive(format!("pull task: {e}")))??;
        for l in &layers {
            let _ = tx.send(event(&short(l.digest().as_ref()), "Pull complete", 0, 0)).await;
        }
        let _ = tx.send(event("", format!("Status: Downloaded newer image for {}", r.familiar()), 0, 0)).await;
        Ok(rec)
    }

    fn lock_for(&self, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = match self.locks.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        // Forget locks nobody holds, so the map does not grow with every blob ever pulled.
        m.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(m.entry(digest.to_string()).or_default())
    }

    /// A verified local copy of blob `digest`: the store's own if it has it, else a file in
    /// `downloads/` (resumed from a partial one left by an earlier attempt).
    async fn fetch(
        &self,
        client: &Client,
        oref: &oci_client::Reference,
        digest: &str,
        size: u64,
        progress: Option<(&mpsc::Sender<PullEvent>, &str)>,
    ) -> Result<PathBuf, ImageError> {
        let send = |ev: PullEvent| async move {
            if let Some((tx, _)) = progress {
                let _ = tx.send(ev).await;
            }
        };
        let id = progress.map(|(_, id)| id.to_string()).unwrap_or_default();
        let (alg, hexd) = digest.split_once(':').unwrap_or(("", ""));
        if alg != "sha256" || hexd.len() != 64 || !hexd.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad_doc(&oref.whole(), "manifest", format!("unsupported digest {digest:?}")));
        }
        let stored = self.images.blob_path(digest);
        if stored.is_file() {
            send(event(&id, "Already exists", size, size)).await;
            return Ok(stored);
        }
        let lock = self.lock_for(digest);
        let _held = lock.lock().await;
        // A concurrent pull may have stored it meanwhile.
        if stored.is_file() {
            send(event(&id, "Already exists", size, size)).await;
            return Ok(stored);
        }
        let downloads = self.images.downloads_dir()?;
        let done = downloads.join(hexd);
        if done.is_file() {
            send(event(&id, "Download complete", size, size)).await;
            return Ok(done);
        }
        let partial = downloads.join(format!("{hexd}.partial"));
        let res = self.download(client, oref, digest, size, &partial, &id, progress.map(|(tx, _)| tx)).await;
        match res {
            Ok(()) => {
                std::fs::rename(&partial, &done).map_err(io_at(&done))?;
                send(event(&id, "Download complete", size, size)).await;
                Ok(done)
            }
            Err(e) => {
                // Corrupt data must not be resumed from; a broken connection may be. A download
                // the disk had no room for gives its room back (it would only fail again).
                let full = matches!(&e, ImageError::Io { err, .. } if crate::space::is_full(err));
                if full || matches!(&e, ImageError::DigestMismatch { .. }) {
                    let _ = std::fs::remove_file(&partial);
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn download(
        &self,
        client: &Client,
        oref: &oci_client::Reference,
        digest: &str,
        size: u64,
        partial: &Path,
        id: &str,
        tx: Option<&mpsc::Sender<PullEvent>>,
    ) -> Result<(), ImageError> {
        let name = oref.whole();
        let err = |e: OciDistributionError| registry_error(&name, &e);
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(partial)
            .await
            .map_err(io_at(partial))?;
        let mut off = f.metadata().await.map_err(io_at(partial))?.len();
        if off > size {
            f.set_len(0).await.map_err(io_at(partial))?;
            off = 0;
        }
        let mut h = Sha256::new();
        if off > 0 {
            let mut existing = std::fs::File::open(partial).map_err(io_at(partial))?;
            let mut limited = std::io::Read::take(&mut existing, off);
            std::io::copy(&mut limited, &mut h).map_err(io_at(partial))?;
        }
        if let Some(tx) = tx {
            let status = if off > 0 { format!("Resuming at {off} bytes") } else { "Downloading".to_string() };
            let _ = tx.send(event(id, status, off, size)).await;
        }
        if off < size {
            // A range at or past the end makes registry 2.8 send a broken 416: only ask for
            // bytes that exist.
            let mut stream = if off == 0 {
                client.pull_blob_stream(oref, digest).await.map_err(err)?
            } else {
                match client.pull_blob_stream_partial(oref, digest, off, None).await.map_err(err)? {
                    BlobResponse::Partial(s) => s,
                    BlobResponse::Full(s) => {
                        f.set_len(0).await.map_err(io_at(partial))?;
                        off = 0;
                        h = Sha256::new();
                        s
                    }
                }
            };
            f.seek(std::io::SeekFrom::Start(off)).await.map_err(io_at(partial))?;
            let mut got = off;
            let mut last = Instant::now();
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    // oci-client's own check fails at the end of the stream; ours below names
                    // both digests, so let it speak.
                    Err(e) if e.get_ref().is_some_and(|i| i.to_string().contains("igest")) => break,
                    Err(e) => return Err(io_at(partial)(e)),
                };
                got += chunk.len() as u64;
                if got > size {
                    return Err(ImageError::DigestMismatch {
                        digest: digest.to_string(),
                        got: format!("more than the {size} bytes announced"),
                    });
                }
                h.update(&chunk);
                f.write_all(&chunk).await.map_err(io_at(partial))?;
                if let Some(tx) = tx {
                    if last.elapsed() > Duration::from_millis(100) {
                        last = Instant::now();
                        let _ = tx.try_send(event(id, "Downloading", got, size));
                    }
                }
            }
            f.flush().await.map_err(io_at(partial))?;
        }
        f.sync_all().await.map_err(io_at(partial))?;
        let got = format!("sha256:{}", hex::encode(h.finalize()));
        if got != digest {
            return Err(ImageError::DigestMismatch { digest: digest.to_string(), got });
        }
        if let Some(tx) = tx {
            let _ = tx.send(event(id, "Verifying Checksum", size, size)).await;
        }
        Ok(())
    }
}

fn bad_doc(name: &str, what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Pull { reference: name.to_string(), kind: PullErrorKind::Registry, msg: format!("invalid {what}: {e}") }
}
