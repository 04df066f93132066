//! `agentctl build`: sends the context directory as a tar (the agent applies .dockerignore)
//! and prints the steps and RUN output as they come.

use crate::error::{Exit, Res, EXIT_AGENT};
use agent_proto::v1 as pb;
use agent_proto::v1::image_service_client::ImageServiceClient;
use std::io::Write;
use std::path::PathBuf;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Name of a Dockerfile that lives outside the context, inside the tar we send.
const OUTSIDE_DOCKERFILE: &str = ".agentctl-Dockerfile";
const CHUNK: usize = 1 << 20;

/// What `agentctl build` was given.
pub struct Args {
    pub tags: Vec<String>,
    pub file: Option<PathBuf>,
    pub build_args: Vec<String>,
    pub no_cache: bool,
    pub network: String,
    pub quiet: bool,
    pub context: PathBuf,
}

fn context_tar(a: &Args) -> Res<(Vec<u8>, String)> {
    let ctx = std::fs::canonicalize(&a.context)
        .map_err(|e| Exit(EXIT_AGENT, format!("build context {}: {e}", a.context.display())))?;
    if !ctx.is_dir() {
        return Err(Exit(EXIT_AGENT, format!("build context {} is not a directory", ctx.display())));
    }
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir_all(".", &ctx).map_err(|e| Exit(EXIT_AGENT, format!("read build context {}: {e}", ctx.display())))?;
    let mut dockerfile = "Dockerfile".to_string();
    if let Some(f) = &a.file {
        let abs = std::fs::canonicalize(f).map_err(|e| Exit(EXIT_AGENT, format!("Dockerfile {}: {e}", f.display())))?;
        match abs.strip_prefix(&ctx) {
            Ok(rel) => dockerfile = rel.to_string_lossy().into_owned(),
            Err(_) => {
                let data = std::fs::read(&abs)?;
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, OUTSIDE_DOCKERFILE, &data[..])?;
                dockerfile = OUTSIDE_DOCKERFILE.to_string();
            }
        }
    }
    Ok((b.into_inner()?, dockerfile))
}

/// Runs the build; returns 0 when the image was made.
pub async fn build(images: &mut ImageServiceClient<Channel>, a: Args) -> Res<u8> {
    let mut build_args = std::collections::HashMap::new();
    for ba in &a.build_args {
        match ba.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(ba) {
                Ok(v) => build_args.insert(ba.clone(), v),
                Err(_) => continue,
            },
        };
    }
    let (tar, dockerfile) = context_tar(&a)?;
    let opts = pb::BuildOptions {
        tags: a.tags.clone(),
        dockerfile,
        build_args,
        no_cache: a.no_cache,
        network: a.network.clone(),
    };
    let mut msgs = vec![pb::BuildRequest { msg: Some(pb::build_request::Msg::Options(opts)) }];
    for c in tar.chunks(CHUNK) {
        msgs.push(pb::BuildRequest { msg: Some(pb::build_request::Msg::Chunk(c.to_vec())) });
    }
    let mut stream = images.build(tokio_stream::iter(msgs)).await?.into_inner();
    let mut out = std::io::stdout();
    while let Some(m) = stream.next().await {
        let p = m?;
        if let Some(img) = p.image {
            if a.quiet {
                println!("{}", img.id);
            }
            return Ok(0);
        }
        if a.quiet {
            continue;
        }
        if !p.line.is_empty() {
            println!("{}", p.line);
        }
        if !p.output.is_empty() {
            let _ = out.write_all(&p.output);
            let _ = out.flush();
        }
    }
    Err(Exit(EXIT_AGENT, "build: the agent ended the stream without an image".into()))
}
