//! `save`: images as an OCI image layout archive (what `skopeo copy oci-archive:` and
//! `docker load` read): `oci-layout`, `index.json` naming each tag, and the blobs.

use super::{io_at, ImageError, ImageStore};
use crate::image::reference::Reference;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

fn is_gzip(p: &Path) -> bool {
    let mut b = [0u8; 2];
    std::fs::File::open(p).and_then(|mut f| f.read_exact(&mut b)).is_ok() && b == [0x1f, 0x8b]
}

fn append_file<W: Write>(ar: &mut tar::Builder<W>, name: &str, path: &Path) -> Result<(), ImageError> {
    let mut f = std::fs::File::open(path).map_err(io_at(path))?;
    let len = f.metadata().map_err(io_at(path))?.len();
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    ar.append_data(&mut h, name, &mut f).map_err(io_at(path))
}

fn append_bytes<W: Write>(ar: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<(), ImageError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    ar.append_data(&mut h, name, data).map_err(|err| ImageError::Io { path: name.into(), err })
}

/// An image's OCI manifest and the blobs it names (config first, then the layers).
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    /// (digest, file, size)
    pub blobs: Vec<(String, std::path::PathBuf, u64)>,
}

/// The OCI manifest of `img` (which `name` named), built from the blobs the store keeps.
pub fn manifest_of(store: &ImageStore, img: &super::ImageRecord, name: &str) -> Result<Manifest, ImageError> {
    let n = img.layers.len();
    if img.blobs.len() < n + 1 {
        return Err(ImageError::BadArchive(format!("image {name} does not keep its layer blobs; it cannot be saved")));
    }
    let blob = |digest: &str| -> Result<(String, std::path::PathBuf, u64), ImageError> {
        let p = store.blob_path(digest);
        let size = std::fs::metadata(&p).map_err(io_at(&p))?.len();
        Ok((digest.to_string(), p, size))
    };
    let mut blobs = vec![blob(&img.id)?];
    let mut layers = Vec::new();
    for d in &img.blobs[img.blobs.len() - n..] {
        let b = blob(d)?;
        let mt = if is_gzip(&b.1) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        layers.push(serde_json::json!({ "mediaType": mt, "digest": d, "size": b.2 }));
        blobs.push(b);
    }
    let bytes = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": img.id, "size": blobs[0].2 },
        "layers": layers,
    }))
    .map_err(|e| ImageError::BadArchive(e.to_string()))?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    Ok(Manifest { bytes, digest, blobs })
}

/// Writes the named images as an OCI layout tar to `out`.
pub fn save<W: Write>(store: &ImageStore, names: &[String], out: W) -> Result<(), ImageError> {
    let mut ar = tar::Builder::new(out);
    append_bytes(&mut ar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut written = std::collections::HashSet::new();
    let mut index = Vec::new();
    for name in names {
        let img = store.resolve(name)?;
        let m = manifest_of(store, &img, name)?;
        for (digest, path, _) in &m.blobs {
            if written.insert(digest.clone()) {
                append_file(&mut ar, &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")), path)?;
            }
        }
        let (mdigest, manifest) = (m.digest, m.bytes);
        if written.insert(mdigest.clone()) {
            append_bytes(&mut ar, &format!("blobs/sha256/{}", mdigest.trim_start_matches("sha256:")), &manifest)?;
        }
        let tags: Vec<String> = if img.tags.is_empty() { vec![String::new()] } else { img.tags.clone() };
        for t in tags {
            let mut ann = serde_json::Map::new();
            if let Ok(r) = Reference::parse(&t) {
                ann.insert("io.containerd.image.name".into(), r.to_string().into());
                ann.insert("org.opencontainers.image.ref.name".into(), r.tag.clone().unwrap_or_default().into());
            }
            index.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest, "size": manifest.len(), "annotations": ann,
            }));
        }
    }
    let idx = serde_json::to_vec(&serde_json::json!({ "schemaVersion": 2, "manifests": index }))
        .map_err(|e| ImageError::BadArchive(e.to_string()))?;
    append_bytes(&mut ar, "index.json", &idx)?;
    ar.into_inner()
        .map_err(|err| ImageError::Io { path: "archive".into(), err })?
        .flush()
        .map_err(|err| ImageError::Io { path: "archive".into(), err })?;
    Ok(())
}
