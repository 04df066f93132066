//! `--sysctl key=value`: only parameters that the container's own namespaces isolate.
//! Anything else (most of `kernel.*`, `vm.*`) would change the whole host: refused.

/// Why a sysctl was refused, or could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("invalid sysctl name {0:?}")]
    Name(String),
    #[error("invalid value for sysctl {key}: {value:?}")]
    Value { key: String, value: String },
    #[error(
        "sysctl {0} is not allowed with --network host: the container shares the host's network namespace, so it \
         would change the host"
    )]
    HostNetwork(String),
    #[error(
        "sysctl {0} is not namespaced: setting it in a container would change the whole host; set it on the host \
         instead (allowed: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, kernel.domainname, and net.* with the \
         container's own network)"
    )]
    NotNamespaced(String),
    #[error("sysctl {key}={value}: write {path}: {source}")]
    Write { key: String, value: String, path: String, source: std::io::Error },
}

/// IPC-namespaced kernel parameters (System V IPC limits).
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The operator's additions to the allowlist (config file `[sysctl]`).
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SysctlPolicy {
    /// More namespaced keys, exact or ending in `*` (`net.ipv4.*`).
    pub allow: Vec<String>,
    /// Keys that are NOT namespaced but allowed anyway, one by one: setting them changes
    /// the host, and the agent logs a warning each time.
    pub host_global: Vec<String>,
}

impl SysctlPolicy {
    fn allows(&self, k: &str) -> bool {
        self.allow.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => k.starts_with(prefix),
            None => p == k,
        })
    }
}

/// Checks `key=value` for a container; `own_netns` is false with `--network host`.
/// Returns the key in dotted form (slash form `net/core/somaxconn` is accepted).
pub fn validate(key: &str, value: &str, own_netns: bool) -> Result<String, SysctlError> {
    validate_with(key, value, own_netns, &SysctlPolicy::default())
}

/// [`validate`] with the operator's policy.
/// Whether `key` (normalized) lives in the IPC namespace.
pub fn ipc_namespaced(key: &str) -> bool {
    IPC.contains(&key) || key.starts_with("fs.mqueue.")
}

pub fn validate_with(key: &str, value: &str, own_netns: bool, policy: &SysctlPolicy) -> Result<String, SysctlError> {
    let k = key.trim().replace('/', ".");
    if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) || k.contains("..") {
        return Err(SysctlError::Name(key.into()));
    }
    if value.contains('\n') || value.contains('\0') || value.len() > 4096 {
        return Err(SysctlError::Value { key: k, value: value.into() });
    }
    if IPC.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        return Ok(k);
    }
    if k == "kernel.domainname" {
        return Ok(k);
    }
    if policy.host_global.iter().any(|g| g == &k) {
        tracing::warn!(sysctl = %k, value, "host-global sysctl allowed by the config: this changes the whole host");
        return Ok(k);
    }
    // kernel.*, vm.* and fs.* beyond the list above are host-wide: a pattern never
    // admits them, only a per-key host_global opt-in does.
    let global_tree = ["kernel.", "vm.", "fs."].iter().any(|p| k.starts_with(p));
    if policy.allows(&k) && !global_tree && !k.starts_with("net.") {
        return Ok(k);
    }
    if let Some(rest) = k.strip_prefix("net.") {
        if rest.is_empty() {
            return Err(SysctlError::Name(key.into()));
        }
        if !own_netns {
            return Err(SysctlError::HostNetwork(k));
        }
        return Ok(k);
    }
    Err(SysctlError::NotNamespaced(k))
}

/// Writes the sysctls under `/proc/sys` of the current (container's) namespaces.
pub fn apply(sysctls: &[(String, String)]) -> Result<(), SysctlError> {
    for (k, v) in sysctls {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v).map_err(|source| SysctlError::Write {
            key: k.clone(),
            value: v.clone(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist() {
        assert_eq!(validate("net/core/somaxconn", "1024", true).unwrap(), "net.core.somaxconn");
        assert!(validate("net.core.somaxconn", "1024", false).unwrap_err().to_string().contains("--network host"));
        assert!(validate("kernel.shmmax", "1", false).is_ok());
        assert!(validate("fs.mqueue.msg_max", "20", true).is_ok());
        let e = validate("kernel.pid_max", "100000", true).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("kernel.pid_max is not namespaced"), "{e}");
        assert!(e.contains("whole host"));
        assert!(validate("vm.swappiness", "1", true).is_err());
        assert!(validate("net.../x", "1", true).is_err());
        assert!(validate("net.core.x", "1\n2", true).is_err());
    }

    #[test]
    fn operator_policy() {
        let p = SysctlPolicy { allow: vec!["kernel.ns_*".into()], host_global: vec!["kernel.pid_max".into()] };
        assert!(validate_with("kernel.pid_max", "1", true, &p).is_ok());
        assert!(validate_with("vm.swappiness", "1", true, &p).is_err());
        // A pattern never admits a host-wide key: only a per-key host_global opt-in does.
        let p = SysctlPolicy { allow: vec!["kernel.*".into(), "user.max_*".into()], ..Default::default() };
        assert!(validate_with("kernel.pid_max", "1", true, &p).is_err());
        assert!(validate_with("kernel.sem", "1", true, &p).is_ok());
        assert!(validate_with("user.max_user_namespaces", "1", true, &p).is_ok());
    }
}
