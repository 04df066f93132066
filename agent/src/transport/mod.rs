//! The listeners the API is served on. The unix socket (local, role admin) is bound here and
//! its connections go through [`authority::AuthorityFix`], so the clients that send the socket
//! path as `:authority` are served; `tcp://` with mutual TLS lives in `auth/tls.rs` and keeps
//! h2's strict checks.

pub mod authority;
pub mod limits;
pub mod outcome;

use anyhow::Context;
use futures::{Stream, TryStreamExt};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Binds the unix socket at `path` (mode 0660, group `gid`). Bound beside and renamed into
/// place with its mode and group already set: a client can never reach the socket while it
/// is still 0755 root:root. Refuses a path another agent is listening on.
pub fn bind_unix(path: &Path, gid: Option<nix::unistd::Gid>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another agent is listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("remove the stale socket {}", path.display()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    if let Err(e) = std::fs::remove_file(&tmp) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(e).with_context(|| format!("remove {}", tmp.display()));
        }
    }
    let ul = tokio::net::UnixListener::bind(&tmp).with_context(|| format!("listen on {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", tmp.display()))?;
    if let Some(gid) = gid {
        nix::unistd::chown(&tmp, None, Some(gid)).with_context(|| format!("chown {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    Ok(ul)
}

/// The connections of a unix listener, each with its `:authority` made acceptable to h2
/// (header lists bounded by `max_header_list` bytes).
pub fn unix_incoming(
    ul: tokio::net::UnixListener,
    max_header_list: usize,
) -> impl Stream<Item = std::io::Result<authority::AuthorityFix<tokio::net::UnixStream>>> {
    tokio_stream::wrappers::UnixListenerStream::new(ul)
        .map_ok(move |s| authority::AuthorityFix::new(s, max_header_list))
}
