//! The rest of docker's `run`/`create` flags: DNS search and options, domain name, stop
//! signal and timeout, /dev/shm size, ulimits (sent in the spec), and the client-side ones:
//! `--cidfile`, `--platform`, `--pull`, `-q`.

use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use clap::{Args, ValueEnum};

/// `--pull`: when `run`/`create` pulls the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull before creating, always
    Always,
    /// Pull when the agent does not have the image
    Missing,
    /// Never pull (the default here: a node runs what it was given)
    #[default]
    Never,
}

#[derive(Args, Clone, Default)]
pub struct RunFlags {
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub dns_search: Vec<String>,
    /// Set DNS options (ndots:2, edns0)
    #[arg(long = "dns-option", value_name = "OPTION")]
    pub dns_option: Vec<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Signal to stop the container (default: the image's, else SIGTERM)
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<u32>,
    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size")]
    pub shm_size: Option<String>,
    /// Ulimit options (NAME=SOFT[:HARD], e.g. nofile=1024:2048)
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add network-scoped alias for the container (peers on its networks resolve it by it)
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Expose a port or a range of ports (-P publishes them)
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add an annotation to the container (KEY=VALUE)
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Set platform if server is multi-platform capable (linux/amd64 only)
    #[arg(long)]
    pub platform: Option<String>,
    /// Pull image before running
    #[arg(long, value_enum, default_value_t)]
    pub pull: PullPolicy,
    /// Suppress the pull output
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

impl RunFlags {
    /// Puts the flags the agent applies into `spec`.
    pub fn apply(&self, spec: &mut pb::ContainerSpec) -> Res<()> {
        spec.dns_search = self.dns_search.clone();
        spec.dns_option = self.dns_option.clone();
        spec.domainname = self.domainname.clone().unwrap_or_default();
        spec.stop_signal = self.stop_signal.clone().unwrap_or_default();
        spec.stop_timeout = self.stop_timeout;
        spec.shm_size = match &self.shm_size {
            Some(s) => match super::commands::parse_size(s, "--shm-size")? {
                n if n > 0 => n,
                _ => return Err(Exit::agent(format!("invalid --shm-size {s:?}: must be more than 0"))),
            },
            None => 0,
        };
        spec.ulimits = self.ulimit.clone();
        spec.network_aliases = self.network_alias.clone();
        spec.expose = self.expose.clone();
        spec.annotations = super::commands::parse_kv(&self.annotation, "annotation")?;
        Ok(())
    }

    /// What has to happen before the create: the platform checked, the cidfile not there
    /// yet (docker refuses to overwrite one), the image pulled per `--pull`.
    pub async fn before_create(&self, cl: &mut Clients, image: &str) -> Res<()> {
        if let Some(p) = &self.platform {
            let p = p.to_ascii_lowercase();
            if !matches!(p.as_str(), "linux" | "linux/amd64" | "amd64" | "linux/x86_64") {
                return Err(Exit::agent(format!("--platform {p:?}: this node runs linux/amd64 images only")));
            }
        }
        if let Some(f) = &self.cidfile {
            if std::path::Path::new(f).exists() {
                return Err(Exit::agent(format!(
                    "Container ID file found, make sure the other container isn't running or delete {f}"
                )));
            }
        }
        let pull = match self.pull {
            PullPolicy::Never => false,
            PullPolicy::Always => true,
            PullPolicy::Missing => match cl.i.inspect(pb::InspectImageRequest { image: image.to_string() }).await {
                Ok(_) => false,
                Err(s) if s.code() == tonic::Code::NotFound => true,
                Err(s) => return Err(s.into()),
            },
        };
        if pull {
            let auth = crate::registry::credentials_for(image)?;
            // Like docker, registries on loopback (127.0.0.0/8, localhost) are spoken to over plain HTTP.
            let insecure = crate::registry::is_loopback(image);
            let img =
                crate::registry::pull_image(&mut cl.i, image.to_string(), auth, insecure, self.quiet, true).await?;
            if !self.quiet {
                eprintln!("{}", img.tags.first().map(String::as_str).unwrap_or(image));
            }
        }
        Ok(())
    }

    /// Writes the new container's ID to `--cidfile`.
    pub fn after_create(&self, id: &str) -> Res<()> {
        if let Some(f) = &self.cidfile {
            std::fs::write(f, id)
                .map_err(|e| Exit::agent(format!("failed to write the container ID to the file {f}: {e}")))?;
        }
        Ok(())
    }
}
