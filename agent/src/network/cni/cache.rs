//! What an ADD returned, kept on disk (like libcni's cache under /var/lib/cni): the
//! configuration, arguments and result that DEL and CHECK need, also after an agent
//! restart or a change of the config dir. One file per attachment,
//! `<dir>/<container id>-<ifname>.json`, written atomically.

use super::CniError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One attachment's cache entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `cniCacheV1`, as libcni writes.
    pub kind: String,
    pub container_id: String,
    pub if_name: String,
    pub network_name: String,
    /// The conflist of the ADD.
    pub config: Value,
    /// `CNI_ARGS` of the ADD.
    pub cni_args: String,
    /// The runtimeConfig offered to plugins with the capability (portMappings).
    pub capability_args: Value,
    /// The network namespace of the ADD.
    pub netns: String,
    /// The final result (the last plugin's); null while the ADD runs (an agent killed then
    /// still DELs with the config, as the spec allows without prevResult).
    pub result: Value,
}

fn path(dir: &Path, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(format!("{container_id}-{ifname}.json"))
}

pub fn write(dir: &Path, e: &Entry) -> Result<(), CniError> {
    let io = |what: &str, p: &Path, err: std::io::Error| CniError::Cache(format!("{what} {}: {err}", p.display()));
    std::fs::create_dir_all(dir).map_err(|err| io("creating", dir, err))?;
    let p = path(dir, &e.container_id, &e.if_name);
    let tmp = p.with_extension("tmp");
    let text =
        serde_json::to_vec_pretty(e).map_err(|err| CniError::Cache(format!("encoding {}: {err}", p.display())))?;
    std::fs::write(&tmp, text).map_err(|err| io("writing", &tmp, err))?;
    std::fs::rename(&tmp, &p).map_err(|err| {
        let _ = std::fs::remove_file(&tmp);
        io("renaming", &p, err)
    })
}

/// The entry of an attachment; `None` when there is none (never added, or deleted).
pub fn read(dir: &Path, container_id: &str, ifname: &str) -> Result<Option<Entry>, CniError> {
    let p = path(dir, container_id, ifname);
    let text = match std::fs::read(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CniError::Cache(format!("reading {}: {e}", p.display()))),
    };
    serde_json::from_slice(&text).map(Some).map_err(|e| CniError::Cache(format!("{}: {e}", p.display())))
}

pub fn remove(dir: &Path, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let p = path(dir, container_id, ifname);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(CniError::Cache(format!("removing {}: {e}", p.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_removal() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("results");
        assert_eq!(read(&dir, "c1", "eth0").unwrap(), None);
        let e = Entry {
            kind: "cniCacheV1".into(),
            container_id: "c1".into(),
            if_name: "eth0".into(),
            network_name: "n".into(),
            config: serde_json::json!({"name": "n"}),
            cni_args: "A=B".into(),
            capability_args: serde_json::json!({}),
            netns: "/proc/1/ns/net".into(),
            result: serde_json::json!({"ips": []}),
        };
        write(&dir, &e).unwrap();
        assert_eq!(read(&dir, "c1", "eth0").unwrap(), Some(e));
        remove(&dir, "c1", "eth0").unwrap();
        remove(&dir, "c1", "eth0").unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
