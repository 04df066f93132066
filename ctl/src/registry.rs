//! `agentctl pull/login/logout`: registry credentials kept beside the contexts file (0600)
//! and sent with each pull, like docker; progress bars per layer on a terminal.

use crate::context;
use crate::error::{Exit, Res, EXIT_AGENT};
use agent_proto::v1 as pb;
use agent_proto::v1::image_service_client::ImageServiceClient;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

#[derive(Serialize, Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Entry {
    username: String,
    password: String,
}

fn auth_path() -> std::path::PathBuf {
    let p = context::path();
    p.parent().map(|d| d.join("auth.json")).unwrap_or_else(|| "auth.json".into())
}

fn load() -> Res<AuthFile> {
    let p = auth_path();
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Exit(EXIT_AGENT, format!("{}: {e}", p.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(Exit(EXIT_AGENT, format!("{}: {e}", p.display()))),
    }
}

fn save(f: &AuthFile) -> Res {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let p = auth_path();
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("json.tmp");
    let mut out = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    out.write_all(&serde_json::to_vec_pretty(f).map_err(|e| Exit(EXIT_AGENT, e.to_string()))?)?;
    std::fs::rename(&tmp, &p)?;
    Ok(())
}

/// The registry of references without a host, and of `login`/`logout` without one.
pub const DEFAULT: &str = "docker.io";

/// The registry host of a reference, as the agent normalizes it (`busybox` → `docker.io`).
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_string(),
        _ => DEFAULT.to_string(),
    }
}

/// Stored credentials for the registry of `reference`, if any.
pub fn credentials_for(reference: &str) -> Res<Option<pb::RegistryAuth>> {
    let f = load()?;
    Ok(f.auths
        .get(&registry_of(reference))
        .map(|e| pb::RegistryAuth { username: e.username.clone(), password: e.password.clone() }))
}

/// Keeps credentials that the agent accepted.
pub fn store(registry: &str, auth: &pb::RegistryAuth) -> Res {
    let mut f = load()?;
    f.auths.insert(registry.to_string(), Entry { username: auth.username.clone(), password: auth.password.clone() });
    save(&f)
}

/// Forgets a registry's credentials.
pub fn forget(registry: &str) -> Res {
    let mut f = load()?;
    if f.auths.remove(registry).is_none() {
        return Err(Exit(EXIT_AGENT, format!("not logged in to {registry}")));
    }
    save(&f)
}

/// Pulls, showing per-layer bars on a terminal and one line per step otherwise.
pub async fn pull(
    images: &mut ImageServiceClient<Channel>,
    reference: String,
    auth: Option<pb::RegistryAuth>,
    insecure: bool,
    quiet: bool,
) -> Res<u8> {
    let img = pull_image(images, reference.clone(), auth, insecure, quiet, false).await?;
    println!("{}", img.tags.first().cloned().unwrap_or(reference));
    Ok(0)
}

/// Pulls, showing progress unless `quiet` (on stderr with `to_stderr`: `run --pull`, whose
/// stdout is the container's); the image pulled.
pub async fn pull_image(
    images: &mut ImageServiceClient<Channel>,
    reference: String,
    auth: Option<pb::RegistryAuth>,
    insecure: bool,
    quiet: bool,
    to_stderr: bool,
) -> Res<pb::ImageInfo> {
    let say = |line: &str| {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    let mut stream = images.pull(pb::PullRequest { reference: reference.clone(), auth, insecure }).await?.into_inner();
    let tty = !quiet && std::io::stderr().is_terminal();
    let multi = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template("{prefix}: {msg:<20} [{bar:30}] {bytes}/{total_bytes}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let mut bars: HashMap<String, indicatif::ProgressBar> = HashMap::new();
    let mut last_status: HashMap<String, String> = HashMap::new();
    while let Some(msg) = stream.next().await {
        let p = msg?;
        if let Some(img) = p.image {
            for b in bars.values() {
                b.finish();
            }
            return Ok(img);
        }
        if quiet {
            continue;
        }
        if p.id.is_empty() {
            if tty {
                let _ = multi.println(&p.status);
            } else {
                say(&p.status);
            }
            continue;
        }
        if tty {
            let bar = bars.entry(p.id.clone()).or_insert_with(|| {
                let b = multi.add(indicatif::ProgressBar::new(p.total));
                b.set_style(style.clone());
                b.set_prefix(p.id.clone());
                b
            });
            if p.total > 0 {
                bar.set_length(p.total);
            }
            bar.set_position(p.current);
            bar.set_message(p.status.clone());
        } else if last_status.get(&p.id) != Some(&p.status) {
            say(&format!("{}: {}", p.id, p.status));
            last_status.insert(p.id.clone(), p.status);
        }
    }
    Err(Exit(EXIT_AGENT, format!("pull {reference}: the agent ended the stream without an image")))
}

/// True when `reference` names a registry on loopback (127.0.0.0/8, localhost), which
/// docker speaks plain HTTP to without being told.
pub fn is_loopback(reference: &str) -> bool {
    let Some((host, _)) = reference.split_once('/') else { return false };
    if !(host.contains(['.', ':']) || host == "localhost") {
        return false;
    }
    let h = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    h == "localhost" || h.starts_with("127.")
}
