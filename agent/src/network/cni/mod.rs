//! A CNI client (the container runtime's side of the CNI spec 1.0.0): pods get their
//! network from standard plugins (bridge, host-local, portmap, loopback…) when
//! `[cri] cni_conf_dir` / `cni_bin_dir` are set.
//!
//! - `config.rs`: the first configuration of the config dir (lexical order), conflist or
//!   single plugin, and where each plugin's executable is;
//! - `exec.rs`: one plugin call (`CNI_*` variables, the config on stdin, result or error
//!   object on stdout, a timeout);
//! - `result.rs`: the pod's addresses in a result;
//! - `cache.rs`: what an ADD returned, on disk, so DEL and CHECK work after a restart.
//!
//! ADD runs the list's plugins in order, each with the previous one's result as
//! `prevResult` and, for plugins declaring the `portMappings` capability, the pod's ports
//! in `runtimeConfig`; a failure DELs what was added and names the plugin. DEL runs them in
//! reverse with the cached result; CHECK in order (CNI 0.4.0 on, unless `disableCheck`).
//!
//! Why not a crate: `rust-cni` 0.1 (a young single-author port of libcni) brings
//! env_logger, typetag and a second JSON crate, and keeps its cache under
//! /var/lib/cni/cache; `cni-plugin` is for writing plugins, not for calling them. What a
//! runtime needs is these few hundred lines over serde_json and tokio::process.

pub mod cache;
pub mod config;
pub mod exec;
pub mod result;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::PathBuf;

/// Errors of the CNI client.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// No usable configuration or plugin: the network is not ready.
    #[error("CNI network not ready: {0}")]
    NotReady(String),
    #[error("CNI config {0}")]
    Config(String),
    #[error("CNI plugin {plugin} failed on {command}: {msg}")]
    Plugin { plugin: String, command: String, msg: String },
    #[error("CNI cache: {0}")]
    Cache(String),
}

/// A port the pod publishes (`runtimeConfig.portMappings`, for the portmap plugin).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// The pod to attach.
#[derive(Clone, Debug, Default)]
pub struct Attach {
    pub container_id: String,
    /// Path of its network namespace.
    pub netns: String,
    /// `CNI_ARGS` pairs (kubelet's runtimes pass K8S_POD_NAMESPACE, K8S_POD_NAME…).
    pub args: Vec<(String, String)>,
    pub port_mappings: Vec<PortMapping>,
}

/// The interface every pod gets.
pub const IFNAME: &str = "eth0";

/// The client: where configurations, plugins and the cache are.
#[derive(Clone, Debug)]
pub struct Cni {
    pub conf_dir: PathBuf,
    /// `CNI_PATH`: the plugin directories, searched in order.
    pub bin_dirs: Vec<PathBuf>,
    pub cache_dir: PathBuf,
}

impl Cni {
    /// `bin_dir` may list several directories separated by `:`.
    pub fn new(conf_dir: &str, bin_dir: &str, cache_dir: PathBuf) -> Cni {
        Cni {
            conf_dir: conf_dir.into(),
            bin_dirs: bin_dir.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect(),
            cache_dir,
        }
    }

    /// The network that ADD would use, with every plugin present; otherwise what is missing.
    pub fn ready(&self) -> Result<config::NetList, CniError> {
        let list = config::load(&self.conf_dir)?;
        let missing = config::missing_plugins(&list, &self.bin_dirs);
        if !missing.is_empty() {
            let dirs: Vec<String> = self.bin_dirs.iter().map(|d| d.display().to_string()).collect();
            return Err(CniError::NotReady(format!(
                "network {} ({}) needs CNI plugin(s) {} not found in {}",
                list.name,
                list.file.display(),
                missing.join(", "),
                dirs.join(":")
            )));
        }
        Ok(list)
    }

    /// Attaches a pod: ADD through the list, the result cached. On failure the plugins are
    /// DELeted again and nothing is cached.
    pub async fn add(&self, a: &Attach) -> Result<Value, CniError> {
        let list = self.ready()?;
        let args = cni_args(&a.args);
        let caps = serde_json::json!({ "portMappings": a.port_mappings });
        let mut entry = cache::Entry {
            kind: "cniCacheV1".into(),
            container_id: a.container_id.clone(),
            if_name: IFNAME.into(),
            network_name: list.name.clone(),
            config: list.to_value(),
            cni_args: args.clone(),
            capability_args: caps.clone(),
            netns: a.netns.clone(),
            result: Value::Null,
        };
        // Cached before the first plugin runs (with no result yet): an agent killed in the
        // middle of the ADD still finds what to DEL after its restart.
        cache::write(&self.cache_dir, &entry)?;
        let mut prev = Value::Null;
        for p in &list.plugins {
            match self.call(&list, p, "ADD", a, &args, &caps, &prev).await {
                Ok(r) => prev = r,
                Err(e) => {
                    // libcni's contract: a failed ADD is undone with a DEL of the whole list.
                    return Err(self.undo(&list, a, &args, &caps, &prev, e).await);
                }
            }
        }
        entry.result = prev.clone();
        if let Err(e) = cache::write(&self.cache_dir, &entry) {
            return Err(self.undo(&list, a, &args, &caps, &prev, e).await);
        }
        Ok(prev)
    }

    /// Undoes a failed ADD (`why`): DEL of the whole list, and the cache entry goes (the
    /// sandbox goes too, so nothing would DEL it later). A DEL that fails as well is told
    /// in the error: what the plugins kept is theirs to report.
    #[allow(clippy::too_many_arguments)]
    async fn undo(
        &self,
        list: &config::NetList,
        a: &Attach,
        args: &str,
        caps: &Value,
        prev: &Value,
        why: CniError,
    ) -> CniError {
        let del = self.run_del(list, a, args, caps, prev).await;
        if let Err(e) = cache::remove(&self.cache_dir, &a.container_id, IFNAME) {
            tracing::warn!(container = %a.container_id, error = %e, "removing the cache entry of a failed CNI ADD");
        }
        match (why, del) {
            (why, Ok(())) => why,
            (CniError::Plugin { plugin, command, msg }, Err(d)) => {
                CniError::Plugin { plugin, command, msg: format!("{msg}; undoing it, {d}") }
            }
            (why, Err(d)) => {
                tracing::warn!(container = %a.container_id, error = %d, "undoing a failed CNI ADD");
                why
            }
        }
    }

    /// Detaches a pod with what its ADD cached (nothing cached: nothing to do). `netns` is
    /// the namespace if it still exists, else empty. The cache goes only once DEL succeeded.
    pub async fn del(&self, container_id: &str, netns: &str) -> Result<(), CniError> {
        let Some(e) = cache::read(&self.cache_dir, container_id, IFNAME)? else { return Ok(()) };
        let list = config::NetList::from_value(&e.config)?;
        let a = Attach { container_id: container_id.into(), netns: netns.into(), ..Default::default() };
        self.run_del(&list, &a, &e.cni_args, &e.capability_args, &e.result).await?;
        cache::remove(&self.cache_dir, container_id, IFNAME)
    }

    /// CHECK of an attachment: `Ok(false)` when there is nothing to check (not attached, or
    /// the version or config does not allow CHECK).
    pub async fn check(&self, container_id: &str, netns: &str) -> Result<bool, CniError> {
        let Some(e) = cache::read(&self.cache_dir, container_id, IFNAME)? else { return Ok(false) };
        let list = config::NetList::from_value(&e.config)?;
        // No result yet: an ADD in flight, or cut short by a crash.
        if !list.can_check() || e.result.is_null() {
            return Ok(false);
        }
        let a = Attach { container_id: container_id.into(), netns: netns.into(), ..Default::default() };
        for p in &list.plugins {
            self.call(&list, p, "CHECK", &a, &e.cni_args, &e.capability_args, &e.result).await?;
        }
        Ok(true)
    }

    /// The pod's addresses as its ADD reported them (empty when not attached).
    pub fn pod_ips(&self, container_id: &str) -> Result<Vec<IpAddr>, CniError> {
        Ok(cache::read(&self.cache_dir, container_id, IFNAME)?.map(|e| result::pod_ips(&e.result)).unwrap_or_default())
    }

    /// Whether a pod has a cached attachment.
    pub fn attached(&self, container_id: &str) -> Result<bool, CniError> {
        Ok(cache::read(&self.cache_dir, container_id, IFNAME)?.is_some())
    }

    async fn run_del(
        &self,
        list: &config::NetList,
        a: &Attach,
        args: &str,
        caps: &Value,
        prev: &Value,
    ) -> Result<(), CniError> {
        // Every plugin gets its DEL even when one fails (each frees its own part); the
        // first failure is reported.
        let mut first = None;
        for p in list.plugins.iter().rev() {
            if let Err(e) = self.call(list, p, "DEL", a, args, caps, prev).await {
                tracing::warn!(container = %a.container_id, error = %e, "CNI DEL");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        list: &config::NetList,
        plugin: &Map<String, Value>,
        command: &str,
        a: &Attach,
        args: &str,
        caps: &Value,
        prev: &Value,
    ) -> Result<Value, CniError> {
        let ty = config::plugin_type(plugin);
        let exe = config::find_plugin(&self.bin_dirs, ty).ok_or_else(|| CniError::Plugin {
            plugin: ty.into(),
            command: command.into(),
            msg: format!(
                "not found in {}",
                self.bin_dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":")
            ),
        })?;
        let conf = plugin_config(list, plugin, caps, prev);
        let call = exec::Call {
            command,
            container_id: &a.container_id,
            netns: &a.netns,
            ifname: IFNAME,
            args,
            path: &self.bin_dirs,
        };
        let out = exec::invoke(&exe, ty, &call, &conf).await?;
        // ADD must answer with a result; DEL and CHECK answer nothing.
        if command == "ADD" && !out.is_object() {
            return Err(CniError::Plugin {
                plugin: ty.into(),
                command: command.into(),
                msg: "ADD returned no result".into(),
            });
        }
        Ok(out)
    }
}

/// What one plugin reads on stdin (libcni's buildOneConfig): its own object, the list's
/// `name` and `cniVersion`, the previous result, and the runtime's values for the
/// capabilities it declares.
fn plugin_config(list: &config::NetList, plugin: &Map<String, Value>, caps: &Value, prev: &Value) -> Value {
    let mut c = plugin.clone();
    c.insert("name".into(), Value::String(list.name.clone()));
    c.insert("cniVersion".into(), Value::String(list.cni_version.clone()));
    if !prev.is_null() {
        c.insert("prevResult".into(), prev.clone());
    }
    let declared = plugin.get("capabilities").and_then(Value::as_object);
    let mut rc = Map::new();
    if let (Some(declared), Some(caps)) = (declared, caps.as_object()) {
        for (k, v) in caps {
            if declared.get(k).and_then(Value::as_bool) == Some(true) {
                rc.insert(k.clone(), v.clone());
            }
        }
    }
    if !rc.is_empty() {
        c.insert("runtimeConfig".into(), Value::Object(rc));
    }
    Value::Object(c)
}

/// `CNI_ARGS`: `IgnoreUnknown=1;K=V;…` (plugins refuse unknown keys without it).
fn cni_args(pairs: &[(String, String)]) -> String {
    let mut out = vec!["IgnoreUnknown=1".to_string()];
    out.extend(pairs.iter().map(|(k, v)| format!("{k}={v}")));
    out.join(";")
}

#[cfg(test)]
mod tests;
