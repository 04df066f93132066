//! agentd's configuration: command-line flags over an optional TOML file over defaults.

use clap::Parser;
use serde::Deserialize;
use std::path::PathBuf;

/// Command-line flags of `agentd`.
#[derive(Parser, Debug, Default)]
#[command(name = "agentd", version, about = "node-agent daemon: runs containers for remote schedulers over gRPC")]
pub struct Flags {
    /// Persistent state (metadata, images, containers) [default: /var/lib/agentd]
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Sockets and runtime files [default: /run/agentd]
    #[arg(long = "run-dir")]
    pub run_dir: Option<PathBuf>,
    /// Prefix of every host object this agent creates [default: agentd]
    #[arg(long)]
    pub instance: Option<String>,
    /// Where to serve the API (repeatable): unix:///path or tcp://ADDR:PORT [default: unix://<run-dir>/agentd.sock]
    #[arg(long)]
    pub listen: Vec<String>,
    /// A TOML file with the same keys (root, run_dir, instance, listen, log_format); flags win.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log format: text or json
    #[arg(long = "log-format")]
    pub log_format: Option<String>,
    /// Allow plain (unauthenticated) TCP listeners: for tests on loopback only.
    #[arg(long = "insecure-tcp")]
    pub insecure_tcp: bool,
    /// PEM certificate (chain) a tcp:// listener presents; reloaded on SIGHUP.
    #[arg(long = "tls-cert")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long = "tls-key")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s): a tcp:// client must present a certificate signed by one.
    #[arg(long = "tls-client-ca")]
    pub tls_client_ca: Option<PathBuf>,
    /// Audit log of mutating and refused calls (JSON lines) [default: <root>/audit.log]
    #[arg(long = "audit-log")]
    pub audit_log: Option<PathBuf>,
    /// Group owning the unix sockets (mode 0660) [default: root]
    #[arg(long = "socket-group")]
    pub socket_group: Option<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics: ADDR:PORT, or a port alone for
    /// loopback; off loopback only with the --tls-* files (mutual TLS) or --insecure-tcp.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Check the configuration (flags and --config file), print it, and exit.
    #[arg(long = "check-config")]
    pub check_config: bool,
}

/// The config file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub run_dir: Option<PathBuf>,
    pub instance: Option<String>,
    #[serde(default)]
    pub listen: Vec<String>,
    pub log_format: Option<String>,
    #[serde(default)]
    pub insecure_tcp: bool,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_client_ca: Option<PathBuf>,
    pub audit_log: Option<PathBuf>,
    pub socket_group: Option<String>,
    /// Where to serve Prometheus metrics (like --metrics-listen).
    pub metrics_listen: Option<String>,
    /// Client certificate subject → role: `"CN=scheduler" = "admin"`, `"OU=ops" = "operator"`.
    #[serde(default)]
    pub roles: crate::auth::RoleMap,
    /// Operators may create `--privileged` containers (by default only admins).
    #[serde(default)]
    pub allow_privileged_operator: bool,
    /// Registries: `insecure` (plain HTTP hosts), `mirrors` (registry → mirror hosts).
    #[serde(default)]
    pub registry: crate::image::pull::RegistryConfig,
    /// Images: `max_layer_size` (bytes, uncompressed; default 32 GiB).
    #[serde(default)]
    pub images: ImagesConfig,
    /// The capacity ledger: reserved_cpus, reserved_memory (bytes), overcommit,
    /// default_cpus, default_memory (bytes; what a container without limits reserves, 0).
    #[serde(default)]
    pub capacity: crate::runtime::CapacityConfig,
    /// Extra sysctls: `allow` (namespaced keys or prefixes*), `host_global` (per-key opt-in).
    #[serde(default)]
    pub sysctl: crate::isolation::sysctl::SysctlPolicy,
    /// The default bridge network: bridge_subnet.
    #[serde(default)]
    pub network: crate::runtime::NetConfig,
    /// `--userns`: user, subuid, subgid, default (host|remap|auto), size, layers.
    #[serde(default)]
    pub userns: crate::isolation::userns::UsernsConfig,
    /// The Kubernetes CRI: pause_image, pause_command, stream_listen, cni_conf_dir, cni_bin_dir.
    #[serde(default)]
    pub cri: crate::api::cri::CriConfig,
    /// Containers' logs: driver (json-file|local|none), max_size ("10m" or bytes), max_file,
    /// compress — what a container that gives no `--log-driver`/`--log-opt` gets.
    #[serde(default)]
    pub logs: crate::logfile::LogDefaults,
    /// What clients may hold: connections, streams, header lists, windows, pings, reset
    /// guards, message sizes, followers (`transport/limits.rs`).
    #[serde(default)]
    pub limits: crate::transport::limits::Limits,
}

/// `[images]` in the config file.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// Largest uncompressed layer accepted (a decompression bomb stops there).
    pub max_layer_size: Option<u64>,
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub root: PathBuf,
    pub run_dir: PathBuf,
    pub instance: String,
    pub listen: Vec<String>,
    pub json_logs: bool,
    pub insecure_tcp: bool,
    /// TLS of the tcp:// listeners; required for them unless `insecure_tcp`.
    pub tls: Option<crate::auth::tls::TlsFiles>,
    /// Certificate subject → role.
    pub roles: crate::auth::RoleMap,
    pub allow_privileged_operator: bool,
    pub audit_log: PathBuf,
    pub socket_group: Option<String>,
    /// The `/metrics` endpoint, when asked for.
    pub metrics: Option<crate::metrics::serve::MetricsListen>,
    pub registry: crate::image::pull::RegistryConfig,
    pub images: ImagesConfig,
    pub capacity: crate::runtime::CapacityConfig,
    pub sysctl: crate::isolation::sysctl::SysctlPolicy,
    pub network: crate::runtime::NetConfig,
    pub userns: crate::isolation::userns::UsernsConfig,
    pub cri: crate::api::cri::CriConfig,
    pub logs: crate::logfile::LogDefaults,
    pub limits: crate::transport::limits::Limits,
}

impl Config {
    /// Merges flags over the file (if any) over defaults, and validates.
    pub fn resolve(flags: Flags) -> anyhow::Result<Config> {
        let file = match &flags.config {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("config file {}: {e}", p.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        Config::merge(flags, file)
    }

    /// The configuration a config file's text gives without flags (what the fuzzer feeds).
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let file = toml::from_str::<FileConfig>(text).map_err(|e| anyhow::anyhow!("config: {e}"))?;
        Config::merge(Flags::default(), file)
    }

    fn merge(flags: Flags, file: FileConfig) -> anyhow::Result<Config> {
        let root = flags.root.or(file.root).unwrap_or_else(|| "/var/lib/agentd".into());
        let run_dir = flags.run_dir.or(file.run_dir).unwrap_or_else(|| "/run/agentd".into());
        let instance = flags.instance.or(file.instance).unwrap_or_else(|| "agentd".into());
        if instance.is_empty()
            || instance.len() > 32
            || !instance.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            anyhow::bail!("invalid instance name {instance:?}: 1-32 of [A-Za-z0-9_-]");
        }
        let mut listen = if flags.listen.is_empty() { file.listen } else { flags.listen };
        if listen.is_empty() {
            listen.push(format!("unix://{}", run_dir.join("agentd.sock").display()));
        }
        for l in &listen {
            if !(l.starts_with("unix://") || l.starts_with("tcp://")) {
                anyhow::bail!("invalid --listen {l:?}: use unix:///path or tcp://ADDR:PORT");
            }
        }
        let fmt = flags.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        let json_logs = match fmt.as_str() {
            "text" => false,
            "json" => true,
            other => anyhow::bail!("invalid --log-format {other:?}: use text or json"),
        };
        for (what, p) in [("--root", &root), ("--run-dir", &run_dir)] {
            if !p.is_absolute() {
                anyhow::bail!("{what} must be an absolute path, not {}", p.display());
            }
        }
        file.capacity.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        file.roles.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        file.userns.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        crate::network::check_pools(&file.network.default_address_pools)
            .map_err(|e| anyhow::anyhow!("config: [network] default_address_pools: {e}"))?;
        if !file.network.bridge_subnet.is_empty() {
            crate::network::Subnet::parse(&file.network.bridge_subnet)
                .map_err(|e| anyhow::anyhow!("config: [network] bridge_subnet: {e}"))?;
        }
        file.cri.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        file.logs.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        file.limits.validate().map_err(|e| anyhow::anyhow!("config: {e}"))?;
        let insecure_tcp = flags.insecure_tcp || file.insecure_tcp;
        let tls = match (
            flags.tls_cert.or(file.tls_cert),
            flags.tls_key.or(file.tls_key),
            flags.tls_client_ca.or(file.tls_client_ca),
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(client_ca)) => Some(crate::auth::tls::TlsFiles { cert, key, client_ca }),
            (cert, key, ca) => {
                let missing: Vec<&str> =
                    [("--tls-cert", cert.is_none()), ("--tls-key", key.is_none()), ("--tls-client-ca", ca.is_none())]
                        .iter()
                        .filter(|(_, m)| *m)
                        .map(|(n, _)| *n)
                        .collect();
                anyhow::bail!(
                    "TLS needs --tls-cert, --tls-key and --tls-client-ca together; missing {}",
                    missing.join(", ")
                )
            }
        };
        if let Some(l) = listen.iter().find(|l| l.starts_with("tcp://")) {
            if tls.is_none() && !insecure_tcp {
                anyhow::bail!(
                    "refusing TCP listener {l} without TLS: give --tls-cert, --tls-key and --tls-client-ca \
                     (`agentctl certs init` makes them), or --insecure-tcp for tests on loopback"
                );
            }
        }
        let metrics = match flags.metrics_listen.or(file.metrics_listen) {
            None => None,
            Some(a) => {
                let addr = crate::metrics::serve::parse_addr(&a).map_err(|e| anyhow::anyhow!(e))?;
                Some(crate::metrics::serve::plan(addr, tls.as_ref(), insecure_tcp).map_err(|e| anyhow::anyhow!(e))?)
            }
        };
        let audit_log = flags.audit_log.or(file.audit_log).unwrap_or_else(|| root.join("audit.log"));
        Ok(Config {
            root,
            run_dir,
            instance,
            listen,
            json_logs,
            insecure_tcp,
            tls,
            roles: file.roles,
            allow_privileged_operator: file.allow_privileged_operator,
            audit_log,
            socket_group: flags.socket_group.or(file.socket_group),
            metrics,
            registry: file.registry,
            images: file.images,
            capacity: file.capacity,
            sysctl: file.sysctl,
            network: file.network,
            userns: file.userns,
            cri: file.cri,
            logs: file.logs,
            limits: file.limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn flags_override_file_over_defaults() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c.toml");
        std::fs::write(&f, "root = \"/srv/a\"\ninstance = \"filei\"\nlog_format = \"json\"\n").unwrap();
        let c =
            Config::resolve(Flags { config: Some(f.clone()), instance: Some("flagi".into()), ..Default::default() })
                .unwrap();
        assert_eq!(c.root, PathBuf::from("/srv/a"));
        assert_eq!(c.instance, "flagi");
        assert!(c.json_logs);
        assert_eq!(c.listen, vec!["unix:///run/agentd/agentd.sock"]);
        std::fs::write(&f, "bogus = 1\n").unwrap();
        let e = Config::resolve(Flags { config: Some(f), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        assert!(Config::resolve(Flags { instance: Some("bad name".into()), ..Default::default() }).is_err());
        assert!(Config::resolve(Flags { log_format: Some("xml".into()), ..Default::default() }).is_err());
        let tcp = || vec!["tcp://127.0.0.1:7443".to_string()];
        let e = Config::resolve(Flags { listen: tcp(), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("without TLS"), "{e}");
        let e =
            Config::resolve(Flags { listen: tcp(), tls_cert: Some("/c".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().contains("missing --tls-key, --tls-client-ca"), "{e}");
        assert!(Config::resolve(Flags { listen: tcp(), insecure_tcp: true, ..Default::default() }).is_ok());
    }

    #[test]
    fn cni_dirs_come_together_and_absolute() {
        let e = Config::from_toml("[cri]\ncni_conf_dir = \"/etc/cni/net.d\"\n").unwrap_err();
        assert!(e.to_string().contains("cni_conf_dir needs cni_bin_dir"), "{e}");
        let e = Config::from_toml("[cri]\ncni_conf_dir = \"/c\"\ncni_bin_dir = \"/usr/lib/cni:lib\"\n").unwrap_err();
        assert!(e.to_string().contains("cni_bin_dir must be absolute, not \"lib\""), "{e}");
        let c = Config::from_toml("[cri]\ncni_conf_dir = \"/c\"\ncni_bin_dir = \"/a:/b\"\n").unwrap();
        let cni = c.cri.cni(&c.root).unwrap();
        assert_eq!(cni.bin_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(cni.cache_dir, PathBuf::from("/var/lib/agentd/cni/results"));
        assert!(Config::from_toml("").unwrap().cri.cni(Path::new("/r")).is_none());
    }

    #[test]
    fn stream_tls_files_come_together_absolute_and_loadable() {
        let e = Config::from_toml("[cri]\nstream_tls_cert = \"/c.pem\"\n").unwrap_err();
        assert!(e.to_string().contains("stream_tls_cert needs stream_tls_key"), "{e}");
        let e = Config::from_toml("[cri]\nstream_tls_key = \"/k.pem\"\n").unwrap_err();
        assert!(e.to_string().contains("stream_tls_key needs stream_tls_cert"), "{e}");
        let e = Config::from_toml("[cri]\nstream_tls_cert = \"c.pem\"\nstream_tls_key = \"/k\"\n").unwrap_err();
        assert!(e.to_string().contains("stream_tls_cert must be an absolute path, not \"c.pem\""), "{e}");
        let e = Config::from_toml("[cri]\nstream_tls_cert = \"/nonexistent/c.pem\"\nstream_tls_key = \"/k\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        assert!(Config::from_toml("").unwrap().cri.stream_tls().unwrap().is_none());
    }

    #[test]
    fn logs_section_gives_default_limits() {
        let c = Config::from_toml("[logs]\nmax_size = \"10m\"\nmax_file = 3\n").unwrap();
        let r = crate::logfile::LogConfig::default().resolved(&c.logs).rotation().unwrap();
        assert_eq!((r.max_size, r.max_file), (10_000_000, 3));
        assert!(Config::from_toml("[logs]\nmax_size = 4096\n").is_ok());
        let e = Config::from_toml("[logs]\nmax_file = 0\n").unwrap_err();
        assert!(e.to_string().contains("max-file=0"), "{e}");
        let e = Config::from_toml("[logs]\ndriver = \"syslog\"\n").unwrap_err();
        assert!(e.to_string().contains("'syslog'"), "{e}");
    }

    #[test]
    fn metrics_listen_is_loopback_or_tls() {
        let m = |a: &str| Flags { metrics_listen: Some(a.into()), ..Default::default() };
        let c = Config::resolve(m("9323")).unwrap();
        assert_eq!(c.metrics.unwrap().addr, "127.0.0.1:9323".parse().unwrap());
        let e = Config::resolve(m("0.0.0.0:9323")).unwrap_err();
        assert!(e.to_string().contains("mutual TLS"), "{e}");
        let e = Config::resolve(m("nine")).unwrap_err();
        assert!(e.to_string().contains("\"nine\""), "{e}");
        assert!(Config::from_toml("metrics_listen = \"127.0.0.1:0\"\n").unwrap().metrics.is_some());
    }

    #[test]
    fn limits_default_and_are_checked() {
        let c = Config::from_toml("[limits]\nmax_followers = 5\n").unwrap();
        assert_eq!(c.limits.max_followers, 5);
        assert_eq!(c.limits.max_concurrent_streams, 1024, "the others keep their defaults");
        let e = Config::from_toml("[limits]\nmax_connections = 0\n").unwrap_err();
        assert!(e.to_string().contains("max_connections must be at least 1"), "{e}");
        let e = Config::from_toml("[limits]\nmax_streams = 1\n").unwrap_err();
        assert!(e.to_string().contains("max_streams"), "{e}");
    }
}
