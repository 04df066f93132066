//! Image verbs: images, rmi, image import|busybox|ls|inspect|history|prune|rm, pull, login,
//! logout, save (build is in crate::build).

use super::each;
use crate::cli::{Format, ImageCmd};
use crate::client::Clients;
use crate::error::{Exit, Res};
use crate::{busybox, output, registry};
use agent_proto::v1 as pb;
use std::io::{IsTerminal, Read, Write};
use tokio_stream::StreamExt;

/// `image …`.
pub async fn run(cl: &mut Clients, cmd: ImageCmd) -> Res<u8> {
    match cmd {
        ImageCmd::Ls { quiet, format } => ls(cl, quiet, format).await,
        ImageCmd::Rm { force, images } => rm(cl, force, images).await,
        ImageCmd::Inspect { images, format } => {
            let mut out = Vec::new();
            for image in images {
                let img = cl.i.inspect(pb::InspectImageRequest { image }).await?.into_inner().image;
                out.push(output::image_json(&img.unwrap_or_default()));
            }
            output::print_inspect(&out, format.as_deref())?;
            Ok(0)
        }
        ImageCmd::Import { rootfs, tag, cmd, file } => {
            let data = if file == "-" {
                let mut v = Vec::new();
                std::io::stdin().read_to_end(&mut v)?;
                v
            } else {
                std::fs::read(&file).map_err(|e| Exit::agent(format!("open {file}: {e}")))?
            };
            let cmd = cmd.map(|c| vec!["/bin/sh".to_string(), "-c".to_string(), c]).unwrap_or_default();
            import(cl, data, pb::ImportOptions { rootfs, tags: tag, cmd, env: vec![] }).await
        }
        ImageCmd::Busybox { busybox, tag } => {
            let data = busybox::rootfs_tar(std::path::Path::new(&busybox))?;
            import(cl, data, pb::ImportOptions { rootfs: true, tags: vec![tag], cmd: vec!["sh".into()], env: vec![] })
                .await
        }
        ImageCmd::Tag { source, target } => {
            cl.i.tag(pb::TagImageRequest { source, target }).await?;
            Ok(0)
        }
        ImageCmd::History { image, format } => {
            let h = cl.i.history(pb::ImageHistoryRequest { image }).await?.into_inner();
            output::history(&h.entries, format)?;
            Ok(0)
        }
        ImageCmd::Prune { all, prune } => super::prune::images(cl, all, prune).await,
    }
}

/// `images`, `image ls`.
pub async fn ls(cl: &mut Clients, quiet: bool, format: Format) -> Res<u8> {
    let list = cl.i.list(pb::ListImagesRequest {}).await?.into_inner().images;
    output::images(&list, quiet, format)?;
    Ok(0)
}

/// `rmi`, `image rm`: prints what was untagged and deleted.
pub async fn rm(cl: &mut Clients, force: bool, images: Vec<String>) -> Res<u8> {
    let remove = |mut c: pb::image_service_client::ImageServiceClient<tonic::transport::Channel>, image| async move {
        c.remove(pb::RemoveImageRequest { image, force }).await
    };
    let show = |_: &str, r: tonic::Response<pb::RemoveImageResponse>| {
        let r = r.into_inner();
        for u in r.untagged {
            println!("Untagged: {u}");
        }
        for d in r.deleted {
            println!("Deleted: {d}");
        }
    };
    each(&cl.i, images, 1, remove, show).await
}

async fn import(cl: &mut Clients, data: Vec<u8>, opts: pb::ImportOptions) -> Res<u8> {
    use pb::import_request::Msg;
    let mut msgs = vec![pb::ImportRequest { msg: Some(Msg::Options(opts)) }];
    for chunk in data.chunks(1 << 20) {
        msgs.push(pb::ImportRequest { msg: Some(Msg::Chunk(chunk.to_vec())) });
    }
    let r = cl.i.import(tokio_stream::iter(msgs)).await?.into_inner();
    for img in r.images {
        if img.tags.is_empty() {
            println!("Loaded image ID: {}", img.id);
        }
        for t in img.tags {
            println!("Loaded image: {t}");
        }
    }
    Ok(0)
}

/// `pull`, with the credentials kept for the registry.
pub async fn pull(cl: &mut Clients, insecure: bool, quiet: bool, reference: String) -> Res<u8> {
    let auth = registry::credentials_for(&reference)?;
    let insecure = insecure || registry::is_loopback(&reference);
    registry::pull(&mut cl.i, reference, auth, insecure, quiet).await
}

/// `push`: the agent uploads the image; its progress printed like docker's.
pub async fn push(cl: &mut Clients, insecure: bool, quiet: bool, reference: String) -> Res<u8> {
    let auth = registry::credentials_for(&reference)?;
    let insecure = insecure || registry::is_loopback(&reference);
    let req = pb::PushRequest { reference: reference.clone(), auth, insecure };
    let mut s = cl.i.push(req).await?.into_inner();
    let mut last = String::new();
    while let Some(p) = s.next().await {
        let p = p?;
        last = p.status.clone();
        if !quiet {
            if p.id.is_empty() {
                println!("{}", p.status);
            } else if p.status != "Pushing" {
                println!("{}: {}", p.id, p.status);
            }
        }
    }
    if quiet {
        println!("{reference}");
    }
    if !last.contains("digest: ") {
        return Err(Exit::agent(format!(
            "push {reference}: the agent ended the stream before the manifest was pushed"
        )));
    }
    Ok(0)
}

/// `login`: the agent checks the credentials; they are kept here when it accepts them.
pub async fn login(
    cl: &mut Clients,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
    insecure: bool,
    registry: Option<String>,
) -> Res<u8> {
    let reg = registry.unwrap_or_else(|| registry::DEFAULT.into());
    let username = username.ok_or_else(|| Exit::agent("login needs --username"))?;
    let password = match (password, password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin().read_to_string(&mut p)?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        _ => return Err(Exit::agent("login needs exactly one of --password and --password-stdin")),
    };
    let auth = pb::RegistryAuth { username, password };
    let r = cl.i.login(pb::LoginRequest { registry: reg.clone(), auth: Some(auth.clone()), insecure }).await?;
    registry::store(&reg, &auth)?;
    println!("{}", r.into_inner().status);
    Ok(0)
}

/// `logout`: forgets the credentials (no agent needed).
pub fn logout(registry: Option<String>) -> Res<u8> {
    let reg = registry.unwrap_or_else(|| registry::DEFAULT.into());
    registry::forget(&reg)?;
    println!("Removing login credentials for {reg}");
    Ok(0)
}

/// `save`: an OCI archive to `output` or to stdout (never to a terminal).
pub async fn save(cl: &mut Clients, output: Option<String>, images: Vec<String>) -> Res<u8> {
    let mut s = cl.i.save(pb::SaveImagesRequest { images }).await?.into_inner();
    let mut out: Box<dyn Write> = match &output {
        Some(p) => Box::new(std::fs::File::create(p).map_err(|e| Exit::agent(format!("create {p}: {e}")))?),
        None if std::io::stdout().is_terminal() => {
            return Err(Exit::agent("refusing to write an archive to a terminal: use -o FILE"));
        }
        None => Box::new(std::io::stdout()),
    };
    while let Some(c) = s.next().await {
        out.write_all(&c?.data)?;
    }
    out.flush()?;
    Ok(0)
}
