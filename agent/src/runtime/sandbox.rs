//! Pod sandboxes, for the Kubernetes CRI: a sandbox is an infra container (the "pause"
//! process) that holds the pod's network namespace; the pod's containers join it
//! (`container:<infra>`), take its hostname, and write their logs where kubelet reads
//! them. Everything CRI-specific is kept in annotations of our own records
//! (`io.agentd.cri.*`), so no second store of pods can drift from the containers.

use super::{ContainerRecord, ContainerSpec, Event, Result, Runtime, RuntimeError, State};
use crate::cgroups::stats::Usage;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Annotation: `sandbox` or `container`.
pub const KIND: &str = "io.agentd.cri.kind";
/// Annotation of a member: its sandbox's (infra container's) ID.
pub const SANDBOX: &str = "io.agentd.cri.sandbox";
/// Annotation: the CRI metadata (name, namespace, uid, attempt) as JSON.
pub const META: &str = "io.agentd.cri.metadata";
/// Annotation of a sandbox: kubelet's log directory for its containers.
pub const LOG_DIR: &str = "io.agentd.cri.log-directory";
/// Annotation of a member: the image as kubelet named it.
pub const IMAGE: &str = "io.agentd.cri.image";
/// Prefix of our own annotations (hidden from CRI callers).
pub const PREFIX: &str = "io.agentd.cri.";
/// First part of every CRI record's name (Docker-shim style: `k8s_…`).
const NAME_HEAD: &str = "k8s";

/// A CRI object's identity as kubelet gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriMeta {
    pub name: String,
    /// Empty for containers.
    pub namespace: String,
    /// Empty for containers.
    pub uid: String,
    pub attempt: u32,
}

/// What RunPodSandbox asks for.
#[derive(Clone, Debug, Default)]
pub struct SandboxSpec {
    pub meta: CriMeta,
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub log_directory: String,
    /// The node's network namespace (`NamespaceMode::NODE`).
    pub host_network: bool,
    /// The node's IPC / PID namespace.
    pub host_ipc: bool,
    pub host_pid: bool,
    pub dns_servers: Vec<String>,
    pub dns_searches: Vec<String>,
    pub dns_options: Vec<String>,
    /// `linux.sysctls`: set in the sandbox's namespaces, which the pod's containers share.
    pub sysctls: BTreeMap<String, String>,
    /// `[hostIP:]hostPort:containerPort/proto` (none with `host_network`: the node's ports
    /// are the pod's already).
    pub ports: Vec<String>,
    /// The image and command of the infra process.
    pub pause_image: String,
    pub pause_command: Vec<String>,
}

/// The CRI metadata of a record, if it is a CRI object.
pub fn meta(rec: &ContainerRecord) -> Option<CriMeta> {
    serde_json::from_str(rec.spec.annotations.get(META)?).ok()
}

/// Whether a record is a sandbox (`sandbox`) or a CRI container (`container`).
pub fn kind(rec: &ContainerRecord) -> Option<&str> {
    rec.spec.annotations.get(KIND).map(String::as_str)
}

/// The sandbox (infra container) ID of a CRI container.
pub fn sandbox_of(rec: &ContainerRecord) -> Option<&str> {
    rec.spec.annotations.get(SANDBOX).map(String::as_str)
}

/// The caller's own annotations (ours removed).
pub fn user_annotations(rec: &ContainerRecord) -> BTreeMap<String, String> {
    rec.spec.annotations.iter().filter(|(k, _)| !k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A name for a record of our store: Docker-shim style, unique per attempt, valid as ours.
/// Longer than our 128 characters, it keeps its head and a hash of the whole (the tail
/// holds the uid and attempt, which must stay distinct).
fn record_name(parts: &[&str]) -> String {
    use sha2::Digest;
    let raw = parts.join("_");
    let clean: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect();
    if clean.len() <= 128 {
        return clean;
    }
    let hash = hex::encode(sha2::Sha256::digest(raw.as_bytes()));
    format!("{}_{}", &clean[..111], &hash[..16])
}

fn not_found_ok(r: Result<()>) -> Result<()> {
    match r {
        Err(RuntimeError::NotFound(_)) => Ok(()),
        other => other,
    }
}

impl Runtime {
    /// CRI records of `kind` (`sandbox` or `container`).
    pub fn cri_records(&self, of: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self.list()?.into_iter().filter(|c| kind(c) == Some(of)).collect())
    }

    /// A sandbox by ID (or unique prefix).
    pub fn sandbox(&self, id: &str) -> Result<ContainerRecord> {
        let rec = self.resolve(id)?;
        if kind(&rec) != Some("sandbox") {
            return Err(RuntimeError::NotFound(format!("pod sandbox {id}")));
        }
        Ok(rec)
    }

    /// A CRI container by ID (or unique prefix).
    pub fn cri_container(&self, id: &str) -> Result<ContainerRecord> {
        let rec = self.resolve(id)?;
        if kind(&rec) != Some("container") {
            return Err(RuntimeError::NotFound(rec.id));
        }
        Ok(rec)
    }

    /// The containers of a sandbox.
    pub fn sandbox_members(&self, id: &str) -> Result<Vec<ContainerRecord>> {
        Ok(self.cri_records("container")?.into_iter().filter(|c| sandbox_of(c) == Some(id)).collect())
    }

    /// A sandbox's usage: the sum over its infra process and its containers, and each
    /// container's own sample.
    pub fn sandbox_usage(&self, sb: &ContainerRecord) -> Result<(Usage, Vec<(ContainerRecord, Usage)>)> {
        let mut ids = vec![sb.id.clone()];
        ids.extend(self.sandbox_members(&sb.id)?.into_iter().map(|m| m.id));
        let samples = self.stats(&ids)?;
        let mut total = Usage::default();
        for (_, u) in &samples {
            total.cpu_usage_ns += u.cpu_usage_ns;
            total.memory_usage += u.memory_usage;
            total.memory_cache += u.memory_cache;
            total.pids += u.pids;
        }
        // The first sample is the infra process's.
        Ok((total, samples.into_iter().skip(1).collect()))
    }

    /// Whether an event is about a CRI object (a sandbox or a CRI container). A removed
    /// record is gone from the store: then its name tells.
    pub fn is_cri_event(&self, ev: &Event) -> bool {
        match self.resolve(&ev.id) {
            Ok(r) => kind(&r).is_some(),
            Err(_) => ev.name.strip_prefix(NAME_HEAD).is_some_and(|rest| rest.starts_with('_')),
        }
    }

    /// Creates and starts a sandbox; on failure nothing of it stays.
    pub async fn run_sandbox(self: &Arc<Self>, s: SandboxSpec) -> Result<ContainerRecord> {
        if s.meta.name.is_empty() || s.meta.namespace.is_empty() || s.meta.uid.is_empty() {
            return Err(RuntimeError::InvalidArgument("sandbox metadata needs name, namespace and uid".into()));
        }
        // No pause image configured: agentd's own pause on the built-in empty root.
        let builtin = s.pause_image.is_empty();
        if !builtin && self.images.resolve(&s.pause_image).is_err() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "the pause image {} is not here: import it, or leave [cri] pause_image unset for the built-in pause",
                s.pause_image
            )));
        }
        let pod_net = self.pod_net_for(&s)?;
        let cni = matches!(pod_net, super::pod_net::PodNet::Cni(_));
        let attempt = s.meta.attempt.to_string();
        let mut annotations = s.annotations.clone();
        annotations.insert(KIND.into(), "sandbox".into());
        annotations
            .insert(META.into(), serde_json::to_string(&s.meta).map_err(|e| RuntimeError::Internal(e.to_string()))?);
        annotations.insert(LOG_DIR.into(), s.log_directory.clone());
        let spec = ContainerSpec {
            name: record_name(&[NAME_HEAD, "POD", &s.meta.name, &s.meta.namespace, &s.meta.uid, &attempt]),
            image: s.pause_image.clone(),
            command: if builtin { vec!["pause".into()] } else { s.pause_command.clone() },
            entrypoint: Some(vec![]),
            pause: builtin,
            hostname: s.hostname.clone(),
            // With CNI, a namespace with only loopback that the plugins wire once it runs.
            network: if s.host_network {
                "host".into()
            } else if cni {
                "none".into()
            } else {
                String::new()
            },
            ipc: if s.host_ipc { "host".into() } else { String::new() },
            pid: if s.host_pid { "host".into() } else { String::new() },
            labels: s.labels.clone(),
            annotations,
            // With the node's network a port is the node's already (the API server fills
            // hostPort = containerPort for such pods): nothing to publish. With CNI, the
            // portmap plugin publishes them.
            ports: if s.host_network || cni { vec![] } else { s.ports.clone() },
            dns: s.dns_servers.clone(),
            dns_search: s.dns_searches.clone(),
            dns_options: s.dns_options.clone(),
            sysctls: s.sysctls.clone(),
            // An image's pause command is PID 1: a tiny init lets it die on SIGTERM (the
            // built-in pause handles it itself).
            init: !builtin,
            // A pod in the node's namespaces keeps the host's IDs (it could not join them
            // from a user namespace of its own), whatever the agent's default.
            userns: if s.host_network || s.host_ipc || s.host_pid { "host".into() } else { String::new() },
            ..Default::default()
        };
        let rec = self.create(spec).await?;
        if let Err(e) = self.start(&rec.id).await {
            let _ = self.remove(&rec.id, true).await;
            return Err(e);
        }
        if let super::pod_net::PodNet::Cni(c) = pod_net {
            let added = match self.resolve(&rec.id) {
                Ok(started) => self.pod_net_up(c, &started, &s).await,
                Err(e) => Err(e),
            };
            if let Err(e) = added {
                if let Err(r) = self.remove(&rec.id, true).await {
                    tracing::warn!(sandbox = %rec.id, error = %r, "removing a sandbox whose CNI ADD failed");
                }
                return Err(e);
            }
        }
        self.resolve(&rec.id)
    }

    /// Completes a CRI container's spec for sandbox `sandbox_id`: its network and IPC
    /// namespaces (and the PID one with `share_pid`: shareProcessNamespace), hostname,
    /// name, log path, and our annotations.
    pub fn member_spec(
        &self,
        sandbox_id: &str,
        meta: CriMeta,
        log_path: &str,
        share_pid: bool,
        mut spec: ContainerSpec,
    ) -> Result<ContainerSpec> {
        let sb = self.sandbox(sandbox_id)?;
        let sm = self::meta(&sb).unwrap_or_default();
        spec.network = if sb.network == crate::isolation::spec::NetMode::Host {
            "host".into()
        } else {
            format!("container:{}", sb.id)
        };
        spec.hostname = sb.hostname.clone();
        // The pod's DNS config is every member's, not only the infra container's.
        spec.dns = sb.spec.dns.clone();
        spec.dns_search = sb.spec.dns_search.clone();
        spec.dns_options = sb.spec.dns_options.clone();
        // A pod shares IPC (and /dev/shm); not across user namespaces, which cannot join it.
        if sb.userns.is_none() {
            spec.ipc = if sb.spec.ipc == "host" { "host".into() } else { format!("container:{}", sb.id) };
            if share_pid || sb.spec.pid == "host" {
                spec.pid = if sb.spec.pid == "host" { "host".into() } else { format!("container:{}", sb.id) };
            }
        }
        spec.name = record_name(&[NAME_HEAD, &meta.name, &sm.name, &sm.namespace, &sm.uid, &meta.attempt.to_string()]);
        let dir = sb.spec.annotations.get(LOG_DIR).cloned().unwrap_or_default();
        if !log_path.is_empty() && !dir.is_empty() {
            spec.log_path = std::path::Path::new(&dir).join(log_path).display().to_string();
        }
        spec.annotations.insert(IMAGE.into(), spec.image.clone());
        spec.annotations.insert(KIND.into(), "container".into());
        spec.annotations.insert(SANDBOX.into(), sb.id.clone());
        spec.annotations
            .insert(META.into(), serde_json::to_string(&meta).map_err(|e| RuntimeError::Internal(e.to_string()))?);
        Ok(spec)
    }

    /// Stops every container of a sandbox, then its infra process. Idempotent.
    pub async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let sb = match self.sandbox(id) {
            Ok(s) => s,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for m in self.sandbox_members(&sb.id)? {
            if m.state == State::Running {
                not_found_ok(self.stop(&m.id, Duration::ZERO).await)?;
            }
        }
        // The plugins' DEL while the namespace still exists (the bridge plugin removes
        // its veth there).
        self.pod_net_down(&sb).await?;
        if sb.state == State::Running {
            not_found_ok(self.stop(&sb.id, Duration::from_secs(2)).await)?;
        }
        Ok(())
    }

    /// Removes a sandbox and its containers. Idempotent.
    pub async fn remove_sandbox(&self, id: &str) -> Result<()> {
        let sb = match self.sandbox(id) {
            Ok(s) => s,
            Err(RuntimeError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        for m in self.sandbox_members(&sb.id)? {
            not_found_ok(self.remove(&m.id, true).await)?;
        }
        // Removed without a stop first (or a DEL that failed then): DEL now.
        self.pod_net_down(&sb).await?;
        not_found_ok(self.remove(&sb.id, true).await)
    }

    /// Asks a container's shim to re-open its CRI log (after kubelet rotated it).
    pub fn reopen_log(&self, name: &str) -> Result<()> {
        let rec = self.resolve(name)?;
        if rec.spec.log_path.is_empty() {
            return Err(RuntimeError::FailedPrecondition(format!("container {} has no CRI log to reopen", rec.name)));
        }
        if rec.state != State::Running || !crate::isolation::alive(rec.shim_pid, rec.shim_start) {
            return Err(RuntimeError::FailedPrecondition(format!("container {} is not running", rec.name)));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(rec.shim_pid), nix::sys::signal::Signal::SIGHUP)
            .map_err(|e| RuntimeError::Internal(format!("signal the shim of {}: {e}", rec.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_valid_and_distinct() {
        let a = record_name(&["k8s", "POD", "web", "default", "0a1b-2c", "0"]);
        assert_eq!(a, "k8s_POD_web_default_0a1b-2c_0");
        assert!(super::super::names::valid_name(&a));
        assert_eq!(record_name(&["k8s", "a b/c"]), "k8s_a-b-c");
        let long = "x".repeat(150);
        let (a1, a2) = (record_name(&["k8s", &long, "uid", "1"]), record_name(&["k8s", &long, "uid", "2"]));
        assert_ne!(a1, a2, "attempts stay distinct when truncated");
        assert_eq!(a1.len(), 128);
        assert!(super::super::names::valid_name(&a1));
    }
}
