//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz) and for the seed-corpus unit
//! test: each takes arbitrary bytes and must return without panicking, whatever they are.

use std::collections::BTreeMap;

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Image references (`busybox`, `host:5000/a/b:t@sha256:…`).
pub fn reference(data: &[u8]) {
    if let Some(s) = text(data) {
        if let Ok(r) = crate::image::reference::Reference::parse(s) {
            // What parses must print and parse back to itself.
            let again = crate::image::reference::Reference::parse(&r.to_string());
            assert_eq!(again.as_ref().ok(), Some(&r), "round trip of {s:?}");
            let _ = r.familiar();
        }
    }
}

/// `-p` port specs.
pub fn port_spec(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = crate::network::ports::parse(s);
    }
}

/// `--sysctl key=value`, in a container with and without its own network namespace.
pub fn sysctl(data: &[u8]) {
    if let Some((k, v)) = text(data).and_then(|s| s.split_once('=')) {
        let _ = crate::isolation::sysctl::validate(k, v, true);
        let _ = crate::isolation::sysctl::validate(k, v, false);
    }
}

/// Dockerfiles and `.dockerignore` files.
pub fn dockerfile(data: &[u8]) {
    if let Some(s) = text(data) {
        let mut args = BTreeMap::new();
        args.insert("A".to_string(), "x".to_string());
        let _ = crate::build::dockerfile::parse(s, &args);
        if let Ok(m) = crate::build::dockerfile::IgnoreMatcher::new(s) {
            let _ = m.is_excluded("a/b/c.txt");
        }
    }
}

/// agentd's TOML config.
pub fn config(data: &[u8]) {
    if let Some(s) = text(data) {
        let _ = crate::config::Config::from_toml(s);
    }
}

/// Image layers: unpacked into a fresh directory, which is removed afterwards. Whatever
/// the tar says, nothing may land outside that directory.
pub fn unpack(data: &[u8]) {
    let Ok(base) = tempfile_dir() else { return };
    let dest = base.join("layer");
    if std::fs::create_dir(&dest).is_ok() {
        let _ = crate::image::unpack::unpack_layer(data, &dest);
        let outside: Vec<_> =
            std::fs::read_dir(&base).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(outside.len() == 1, "the layer wrote beside its root: {outside:?}");
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// What a SPDY/3.1 client sends the streaming server: frames are decoded until the input
/// runs out or is refused; what decodes must encode and decode back to itself.
pub fn spdy(data: &[u8]) {
    use crate::api::cri::stream::spdy::Codec;
    let mut buf = bytes::BytesMut::from(data);
    let mut rx = Codec::new();
    let (mut tx, mut back) = (Codec::new(), Codec::new());
    while let Ok(Some(f)) = rx.decode(&mut buf) {
        let mut w = Vec::new();
        if tx.encode(&f, &mut w).is_ok() {
            let mut wb = bytes::BytesMut::from(&w[..]);
            assert_eq!(back.decode(&mut wb).ok().flatten().as_ref(), Some(&f), "round trip");
        }
    }
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(e.to_string()))?;
    let p = std::env::temp_dir().join(format!("agent-fuzz-{}", hex::encode(b)));
    std::fs::create_dir(&p)?;
    Ok(p)
}

/// A fuzz target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every fuzz target by name, for the seed-corpus test.
pub const TARGETS: &[(&str, Target)] = &[
    ("reference", reference),
    ("port_spec", port_spec),
    ("sysctl", sysctl),
    ("dockerfile", dockerfile),
    ("config", config),
    ("unpack", unpack),
    ("spdy", spdy),
];

#[cfg(test)]
mod tests {
    /// The checked-in seeds pass through every target (the quick, stable-Rust half of
    /// fuzzing; `scripts/fuzz.sh` runs the real fuzzer on them).
    #[test]
    fn seed_corpus_passes_every_target() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let mut n = 0;
        for (name, f) in super::TARGETS {
            let dir = root.join(name);
            let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()));
            for e in rd.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                f(&data);
                n += 1;
            }
        }
        assert!(n >= 12, "seed corpus too small: {n}");
    }
}
