//! A Compose project as `apply` wants it: services and networks with every value resolved
//! (variables substituted, relative paths made absolute, env files read), so that two reads
//! of the same intent give equal values, and equal values the same config hash.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The label keys compose puts on what it creates (kept so `docker compose ls`-minded
/// tools and people recognise them).
pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_WORKDIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub name: String,
    /// The directory relative paths are resolved against (the file's).
    pub dir: String,
    /// The file (absolute), or `-`.
    pub file: String,
    /// By name, in name order.
    pub services: BTreeMap<String, Service>,
    /// By the key in the file (`default` included when a service uses it).
    pub networks: BTreeMap<String, Network>,
}

/// A service's `logging:`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Logging {
    pub driver: Option<String>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Service {
    pub image: String,
    /// `None`: the image's.
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// env_file values, then `environment` over them.
    pub environment: BTreeMap<String, String>,
    /// In the agent's `-p` form: `[ip:]host:container[/proto]`, or `container[/proto]`.
    pub ports: Vec<String>,
    /// Keys of top-level networks, in the order the container joins them.
    pub networks: Vec<String>,
    /// `network_mode`: host, none, bridge, `service:NAME` or `container:NAME` (then no networks).
    pub network_mode: Option<String>,
    /// Bind mounts in `-v` form (absolute host paths).
    pub volumes: Vec<String>,
    /// In `--tmpfs` form.
    pub tmpfs: Vec<String>,
    pub restart: Option<String>,
    pub healthcheck: Option<Health>,
    pub resources: Resources,
    pub sysctls: BTreeMap<String, String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub read_only: bool,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub container_name: Option<String>,
    pub init: bool,
    pub tty: bool,
    pub stdin_open: bool,
    pub dns: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// `logging: {driver, options}` as `--log-driver`/`--log-opt` (left out of the hash when
    /// absent, so services without it keep their hash).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    /// Not part of the container's config: the order of starts (left out of the hash, as
    /// compose leaves it out).
    #[serde(skip)]
    pub depends_on: BTreeMap<String, Condition>,
    /// Dependencies marked `required: false`.
    #[serde(skip)]
    pub optional_deps: Vec<String>,
    /// Seconds `down` and recreate give it to stop (compose's stop_grace_period).
    #[serde(skip)]
    pub stop_grace_period: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Resources {
    pub cpus: Option<f64>,
    /// Bytes.
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub pids: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Health {
    /// `disable: true` or `test: ["NONE"]`.
    Disabled,
    Check {
        /// `["CMD", ...]` or `["CMD-SHELL", line]`; empty: the image's test.
        test: Vec<String>,
        interval: Option<String>,
        timeout: Option<String>,
        start_period: Option<String>,
        start_interval: Option<String>,
        retries: Option<u32>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// The agent's network: `<project>_<key>`, or `name:` / the external one as written.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub subnet: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl Project {
    /// compose v2's container name: `<project>-<service>-1`, unless `container_name`.
    pub fn container_name(&self, service: &str) -> String {
        match self.services.get(service).and_then(|s| s.container_name.clone()) {
            Some(n) => n,
            None => format!("{}-{service}-1", self.name),
        }
    }

    /// The services in an order that starts each after what it depends on (ties by name);
    /// an error names a cycle or a dependency that is not a service.
    pub fn start_order(&self) -> Result<Vec<String>, String> {
        for (name, s) in &self.services {
            if let Some(d) = s.depends_on.keys().find(|d| !self.services.contains_key(*d)) {
                return Err(format!("service {name:?} depends on undefined service {d:?}"));
            }
        }
        let mut done: Vec<String> = Vec::new();
        while done.len() < self.services.len() {
            let next =
                self.services.iter().find(|(n, s)| !done.contains(n) && s.depends_on.keys().all(|d| done.contains(d)));
            match next {
                Some((n, _)) => done.push(n.clone()),
                None => {
                    let left: Vec<&str> =
                        self.services.keys().filter(|n| !done.contains(n)).map(String::as_str).collect();
                    return Err(format!("dependency cycle between services {}", left.join(", ")));
                }
            }
        }
        Ok(done)
    }
}

impl Service {
    /// The hash of what the container is made of, as its config-hash label holds it:
    /// sha256 of the normalised service (maps sorted; depends_on and stop_grace_period out).
    pub fn config_hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(deps: &[(&str, &[&str])]) -> Project {
        let mut services = BTreeMap::new();
        for (n, ds) in deps {
            let s = Service {
                image: "img".into(),
                depends_on: ds.iter().map(|d| (d.to_string(), Condition::Started)).collect(),
                ..Default::default()
            };
            services.insert(n.to_string(), s);
        }
        Project { name: "p".into(), dir: "/d".into(), file: "-".into(), services, networks: BTreeMap::new() }
    }

    #[test]
    fn start_order_follows_dependencies() {
        let p = project(&[("web", &["api"]), ("api", &["db", "cache"]), ("db", &[]), ("cache", &[])]);
        assert_eq!(p.start_order().unwrap(), ["cache", "db", "api", "web"]);
        let e = project(&[("a", &["b"]), ("b", &["a"]), ("c", &[])]).start_order().unwrap_err();
        assert!(e.contains("cycle") && e.ends_with("services a, b"), "{e}");
        let e = project(&[("a", &["nope"])]).start_order().unwrap_err();
        assert!(e.contains("\"nope\""), "{e}");
        assert_eq!(p.container_name("web"), "p-web-1");
    }

    #[test]
    fn hash_follows_the_config_not_the_order() {
        let mut a = Service { image: "busybox".into(), ..Default::default() };
        a.environment.insert("A".into(), "1".into());
        a.environment.insert("B".into(), "2".into());
        let mut b = Service { image: "busybox".into(), ..Default::default() };
        b.environment.insert("B".into(), "2".into());
        b.environment.insert("A".into(), "1".into());
        assert_eq!(a.config_hash(), b.config_hash());
        assert_eq!(a.config_hash().len(), 64);
        b.depends_on.insert("db".into(), Condition::Healthy);
        b.stop_grace_period = Some(3);
        assert_eq!(a.config_hash(), b.config_hash(), "start order is not config");
        b.environment.insert("A".into(), "2".into());
        assert_ne!(a.config_hash(), b.config_hash());
        let c = Service { image: "busybox:1".into(), ..a.clone() };
        assert_ne!(a.config_hash(), c.config_hash());
    }
}
