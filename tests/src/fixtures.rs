//! Image fixtures built on the spot: layer tars (with whiteouts, hard links, hostile
//! entries) and OCI image archives, as skopeo and buildah write them.

use sha2::{Digest, Sha256};

/// One entry of a layer.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    HardLink(&'a str, &'a str),
    /// A raw name written into the header unchecked (for hostile layers).
    RawFile(&'a str, &'a [u8]),
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

/// An uncompressed layer tar.
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            Entry::File(p, d) => {
                let mut h = header(tar::EntryType::Regular, d.len() as u64, 0o644);
                b.append_data(&mut h, p, *d).expect("tar file");
            }
            Entry::Dir(p) => {
                let mut h = header(tar::EntryType::Directory, 0, 0o755);
                b.append_data(&mut h, p, std::io::empty()).expect("tar dir");
            }
            Entry::HardLink(p, target) => {
                let mut h = header(tar::EntryType::Link, 0, 0o644);
                b.append_link(&mut h, p, target).expect("tar link");
            }
            Entry::RawFile(p, d) => {
                let mut h = header(tar::EntryType::Regular, d.len() as u64, 0o644);
                let name = p.as_bytes();
                h.as_old_mut().name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                let data = b.get_mut();
                data.extend_from_slice(h.as_bytes());
                data.extend_from_slice(d);
                let pad = (512 - d.len() % 512) % 512;
                data.extend(std::iter::repeat_n(0u8, pad));
            }
        }
    }
    b.into_inner().expect("tar")
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(data).expect("gzip");
    g.finish().expect("gzip")
}

/// `sha256:<hex>`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A layer as stored in an archive: (blob bytes, media type, diff ID).
pub struct Blob {
    pub bytes: Vec<u8>,
    pub gzip: bool,
    pub diff_id: String,
}

impl Blob {
    pub fn plain(tar: Vec<u8>) -> Blob {
        Blob { diff_id: digest(&tar), bytes: tar, gzip: false }
    }
    pub fn gz(tar: Vec<u8>) -> Blob {
        Blob { diff_id: digest(&tar), bytes: gzip(&tar), gzip: true }
    }
}

/// The blobs of one image for `arch` (config, layers, manifest last) and the manifest's
/// descriptor. `corrupt` flips a byte of the last layer after its digest was computed.
fn image_blobs(
    layers: &[Blob],
    cmd: &[&str],
    arch: &str,
    corrupt: bool,
) -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
    });
    let config = serde_json::to_vec(&config).expect("json");
    let mut blobs: Vec<(String, Vec<u8>)> = vec![(digest(&config), config.clone())];
    let mut descs = Vec::new();
    for l in layers {
        let d = digest(&l.bytes);
        let mt = if l.gzip {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        descs.push(serde_json::json!({ "mediaType": mt, "digest": d, "size": l.bytes.len() }));
        blobs.push((d, l.bytes.clone()));
    }
    if corrupt {
        if let Some(last) = blobs.last_mut() {
            let n = last.1.len();
            last.1[n / 2] ^= 0xff;
        }
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len() },
        "layers": descs,
    }))
    .expect("json");
    let desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(&manifest), "size": manifest.len(),
        "platform": { "architecture": arch, "os": "linux" },
    });
    blobs.push((digest(&manifest), manifest));
    (blobs, desc)
}

/// An OCI layout tar: `index.json` naming `top` (annotated with `ref_name`), and the blobs.
fn layout(mut top: serde_json::Value, ref_name: &str, blobs: &[(String, Vec<u8>)]) -> Vec<u8> {
    top["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": ref_name });
    let index = serde_json::to_vec(&serde_json::json!({ "schemaVersion": 2, "manifests": [top] })).expect("json");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |p: &str, d: &[u8]| {
        let mut h = header(tar::EntryType::Regular, d.len() as u64, 0o644);
        b.append_data(&mut h, p, d).expect("tar");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for (d, bytes) in blobs {
        add(&format!("blobs/sha256/{}", d.trim_start_matches("sha256:")), bytes);
    }
    b.into_inner().expect("tar")
}

/// An OCI image archive (`oci-archive`) of one image; `ref_name` goes in the index
/// annotation `org.opencontainers.image.ref.name`. `corrupt` flips a byte of the last
/// layer after its digest was computed.
pub fn oci_archive(layers: &[Blob], cmd: &[&str], ref_name: &str, corrupt: bool) -> Vec<u8> {
    let (blobs, desc) = image_blobs(layers, cmd, "amd64", corrupt);
    layout(desc, ref_name, &blobs)
}

/// An OCI archive of a multi-platform image: an image index with one image per
/// `(architecture, layers)`.
pub fn oci_archive_multiarch(images: &[(&str, Vec<Blob>)], cmd: &[&str], ref_name: &str) -> Vec<u8> {
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    for (arch, layers) in images {
        let (b, desc) = image_blobs(layers, cmd, arch, false);
        blobs.extend(b);
        manifests.push(desc);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))
    .expect("json");
    let top = serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(&index), "size": index.len(),
    });
    blobs.push((digest(&index), index));
    layout(top, ref_name, &blobs)
}
