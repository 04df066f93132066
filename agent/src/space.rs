//! Running out of space: which I/O errors mean "the filesystem is full", and how much is
//! left where a write failed (statvfs), so an error names the path and its free space.

use std::io;
use std::path::Path;

/// Below this much free space the agent's root counts as full (`info`, health).
pub const FULL_BELOW: u64 = 1024 * 1024;

/// True for the errors a write gets from a full filesystem or an exhausted quota.
pub fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT)) || e.kind() == io::ErrorKind::StorageFull
}

/// [`is_full`] for `e` or any error it wraps (the tar crate wraps the write's error in its own).
pub fn is_full_chain(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        if x.downcast_ref::<io::Error>().is_some_and(is_full) {
            return true;
        }
        cur = x.source().or_else(|| x.downcast_ref::<io::Error>().and_then(|i| i.get_ref()).map(|r| r as _));
    }
    false
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (or its
/// nearest existing ancestor); `None` when no ancestor can be examined.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let mut p = Some(path);
    while let Some(at) = p {
        if let Ok(st) = nix::sys::statvfs::statvfs(at) {
            return Some(st.blocks_available() * st.fragment_size());
        }
        p = at.parent();
    }
    None
}

/// `12.0 KiB free`, or `free space unknown`.
pub fn describe_free(path: &Path) -> String {
    match free_bytes(path) {
        Some(b) => format!("{} free", human(b)),
        None => "free space unknown".into(),
    }
}

/// Bytes in binary units with one decimal (`512 B`, `1.5 MiB`).
pub fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_errors_and_units() {
        assert!(is_full(&io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(is_full(&io::Error::from_raw_os_error(libc::EDQUOT)));
        assert!(!is_full(&io::Error::from_raw_os_error(libc::EIO)));
        let wrapped = io::Error::other(io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(!is_full(&wrapped) && is_full_chain(&wrapped));
        assert!(!is_full_chain(&io::Error::other("x")));
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536 * 1024), "1.5 MiB");
        let d = tempfile::tempdir().unwrap();
        assert!(free_bytes(&d.path().join("not/yet")).is_some());
    }
}
