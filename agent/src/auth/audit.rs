//! The audit log: one JSON line per mutating or refused call (time, peer, role, method,
//! target, result), appended to a 0600 file.

use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One line of the audit log.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// RFC 3339, UTC, milliseconds.
    pub time: String,
    /// The caller: `CN=…,OU=…`, `uid=0` on the unix socket, or a TCP address.
    pub peer: &'a str,
    /// The caller's role, if it has one.
    pub role: Option<&'a str>,
    /// `/agent.v1.Service/Method`.
    pub method: &'a str,
    /// The request's identifying fields (`id`, `name`, `image`, …), when they could be read.
    pub target: serde_json::Map<String, serde_json::Value>,
    /// The gRPC status code name: `OK`, `PermissionDenied`, `NotFound`, …
    pub result: &'a str,
    /// The error message, if any.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub message: &'a str,
}

/// An append-only audit file.
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl AuditLog {
    /// Opens (creating with mode 0600) the file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<AuditLog> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| anyhow::anyhow!("create {}: {e}", parent.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| anyhow::anyhow!("open audit log {}: {e}", path.display()))?;
        Ok(AuditLog { path: path.to_path_buf(), file: Mutex::new(file) })
    }

    /// Appends one record as a single write, so concurrent lines never interleave.
    pub fn write(&self, rec: &Record<'_>) {
        let mut line = match serde_json::to_vec(rec) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "audit record not serializable");
                return;
            }
        };
        line.push(b'\n');
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        if let Err(e) = f.write_all(&line) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the audit log");
        }
    }
}

/// The current time as the audit log writes it.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
