//! `volume create|ls|inspect|rm|prune`: named volumes of the agent's `local` driver, with
//! docker's flags and output.

use super::parse_kv;
use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use clap::Subcommand;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// Create a volume (an existing one is left as it is)
    Create {
        /// The volume's name (default: a random one)
        #[arg(long = "name")]
        name_flag: Option<String>,
        name: Option<String>,
        /// The driver: local
        #[arg(short = 'd', long = "driver", default_value = "local")]
        driver: String,
        /// A driver option: type=tmpfs, device=tmpfs, o=size=64m (o=bind with a host dir as device)
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        #[arg(long = "label")]
        label: Vec<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only names
        #[arg(short = 'q', long = "quiet")]
        quiet: bool,
        /// label=K[=V] or dangling=true|false (repeatable)
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        #[arg(long, default_value_t)]
        format: crate::cli::Format,
    },
    /// Show volumes (JSON, as docker's)
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses
    #[command(alias = "remove")]
    Rm {
        /// Not an error when the volume does not exist
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove every volume no container uses
    Prune {
        /// Do not ask for confirmation
        #[arg(short = 'f', long = "force")]
        force: bool,
        /// label=K[=V] (repeatable)
        #[arg(long = "filter")]
        filter: Vec<String>,
    },
}

/// docker's prompt: a line starting with y on stdin goes on.
pub(crate) fn confirm(warning: &str) -> bool {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && line.trim_start().to_ascii_lowercase().starts_with('y')
}

/// docker's JSON of a volume.
pub fn volume_json(v: &pb::VolumeInfo) -> Value {
    json!({
        "CreatedAt": v.created_at, "Driver": v.driver, "Labels": v.labels, "Mountpoint": v.mountpoint,
        "Name": v.name, "Options": v.options, "Scope": v.scope,
    })
}

fn matches(v: &pb::VolumeInfo, filters: &[String]) -> Res<bool> {
    for f in filters {
        let ok = match f.split_once('=') {
            Some(("label", l)) => match l.split_once('=') {
                Some((k, val)) => v.labels.get(k).is_some_and(|x| x == val),
                None => v.labels.contains_key(l),
            },
            Some(("dangling", d @ ("true" | "1" | "false" | "0"))) => {
                v.containers.is_empty() == matches!(d, "true" | "1")
            }
            Some(("name", n)) => v.name.contains(n),
            Some(("driver", d)) => v.driver == d,
            _ => {
                return Err(Exit::agent(format!(
                    "invalid filter {f:?}: use label=K[=V], dangling=true|false, name=, driver="
                )))
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `volume …`.
pub async fn run(cl: &mut Clients, cmd: VolumeCmd) -> Res<u8> {
    match cmd {
        VolumeCmd::Create { name_flag, name, driver, opt, label } => {
            let name = match (name_flag, name) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Exit::agent(format!(
                        "conflicting options: either specify --name or provide positional arg, not both ({a:?}, {b:?})"
                    )))
                }
                (a, b) => a.or(b).unwrap_or_default(),
            };
            let req = pb::CreateVolumeRequest {
                name,
                driver,
                options: parse_kv(&opt, "opt")?,
                labels: parse_kv(&label, "label")?,
            };
            println!("{}", cl.v.create(req).await?.into_inner().name);
        }
        VolumeCmd::Ls { quiet, filter, format } => {
            let mut list = cl.v.list(pb::ListVolumesRequest { size: false }).await?.into_inner().volumes;
            let mut keep = Vec::new();
            for v in list.drain(..) {
                if matches(&v, &filter)? {
                    keep.push(v);
                }
            }
            if quiet {
                keep.iter().for_each(|v| println!("{}", v.name));
            } else if format == crate::cli::Format::Json {
                keep.iter().for_each(|v| println!("{}", volume_json(v)));
            } else if let crate::cli::Format::Template(t) = format {
                let rows: Vec<_> = keep.iter().map(volume_json).collect();
                crate::template::print(t, &rows, &[("Name", "VOLUME NAME"), ("Driver", "DRIVER")])?;
            } else {
                crate::output::volumes(&keep);
            }
        }
        VolumeCmd::Inspect { names } => {
            let mut out = Vec::new();
            let mut failed = None;
            for name in names {
                match cl.v.inspect(pb::InspectVolumeRequest { name }).await {
                    Ok(v) => out.push(volume_json(&v.into_inner())),
                    Err(e) => {
                        eprintln!("Error: {}", e.message());
                        failed = Some(1);
                    }
                }
            }
            crate::output::print_json(&out)?;
            return Ok(failed.unwrap_or(0));
        }
        VolumeCmd::Rm { force, names } => {
            let mut code = 0;
            for name in names {
                match cl.v.remove(pb::RemoveVolumeRequest { name: name.clone(), force }).await {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("Error response from daemon: {}", e.message());
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
        VolumeCmd::Prune { force, filter } => {
            if !force && !confirm("WARNING! This will remove all local volumes not used by at least one container.") {
                return Ok(0);
            }
            let mut labels = Vec::new();
            for f in filter {
                match f.split_once('=') {
                    Some(("label", l)) => labels.push(l.to_string()),
                    _ => return Err(Exit::agent(format!("invalid filter {f:?}: volume prune takes label=K[=V]"))),
                }
            }
            let r = cl.v.prune(pb::PruneVolumesRequest { label_filters: labels }).await?.into_inner();
            if !r.removed.is_empty() {
                println!("Deleted Volumes:");
                r.removed.iter().for_each(|n| println!("{n}"));
                println!();
            }
            println!("Total reclaimed space: {}", crate::output::human(r.reclaimed_bytes));
        }
    }
    Ok(0)
}
