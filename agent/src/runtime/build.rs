//! `build`: a Dockerfile turned into an image by our own runtime. Every RUN runs in a
//! container of the image so far and its writable layer becomes the step's layer; COPY and
//! ADD stage files from the context into a layer directly; the other instructions change
//! only the config. A cache keyed by (parent state, instruction, hashed inputs) makes an
//! unchanged rebuild reuse every layer and give the same image ID.
//!
//! The Dockerfile is parsed by `crate::build::dockerfile`; here are the steps. Beside this file: `state.rs` (the
//! image so far), `cache.rs` (cache entries and keys), `context.rs` (the unpacked context and the paths in it),
//! `copy.rs` (COPY/ADD staging).

mod cache;
mod context;
mod copy;
mod state;

pub use context::unpack_context;

use super::{ContainerSpec, Result, Runtime, RuntimeError};
use crate::build::dockerfile::{self, Instruction};
use crate::build::path::clean_rel;
use crate::image::{ImageRecord, ImageStore};
use cache::CacheEntry;
use state::State;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the client asked for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// References to tag the result with.
    pub tags: Vec<String>,
    /// The Dockerfile's path inside the context (default `Dockerfile`).
    pub dockerfile: String,
    pub build_args: BTreeMap<String, String>,
    /// Ignore the cache.
    pub no_cache: bool,
    /// Network of RUN containers (default `bridge`, like docker).
    pub network: String,
}

/// Progress of a build: a line of the builder's own, or output of a RUN.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    Line(String),
    Output(Vec<u8>),
}

fn failed(line: usize, msg: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::FailedPrecondition(format!("build failed at Dockerfile line {line}: {msg}"))
}

fn invalid(line: usize, msg: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidArgument(format!("Dockerfile line {line}: {msg}"))
}

impl Runtime {
    /// Saves the state as an (untagged) image so a container can run on it.
    async fn save_state(&self, st: &mut State, temps: &mut Vec<String>, tags: Vec<String>) -> Result<ImageRecord> {
        let images = Arc::clone(&self.images);
        let (cfg, layers, blobs) = (st.cfg.clone(), st.layers.clone(), st.blobs.clone());
        let rec = tokio::task::spawn_blocking(move || images.save_config(&cfg, layers, blobs, tags))
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))??;
        st.saved = Some(rec.id.clone());
        if !temps.contains(&rec.id) {
            temps.push(rec.id.clone());
        }
        Ok(rec)
    }

    /// Builds the image described by the Dockerfile in `ctx` (an unpacked context).
    pub async fn build(
        self: &Arc<Self>,
        ctx: &Path,
        opts: BuildOptions,
        tx: mpsc::Sender<BuildEvent>,
    ) -> Result<ImageRecord> {
        let say = |s: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(BuildEvent::Line(s)).await;
            }
        };
        let (df_name, text) = context::read_dockerfile(ctx, &opts.dockerfile)?;
        let parsed = dockerfile::parse(&text, &opts.build_args)
            .map_err(|e| RuntimeError::InvalidArgument(format!("Dockerfile {df_name}: {e}")))?;
        for a in &parsed.unused_args {
            say(format!("[Warning] One or more build-args [{a}] were not consumed")).await;
        }
        for t in &opts.tags {
            crate::image::reference::Reference::parse(t).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        }
        let n = parsed.instructions.len();
        // The steps' layers are no image's until the last step saves one.
        let _busy = self.images.busy();
        let mut st = State::scratch();
        let mut temps: Vec<String> = Vec::new();
        let res = async {
            for (i, ins) in parsed.instructions.iter().enumerate() {
                say(format!("Step {}/{n} : {}", i + 1, ins.text())).await;
                self.step(ctx, ins, &opts, &mut st, &mut temps, &tx).await?;
            }
            let tags = opts
                .tags
                .iter()
                .filter_map(|t| crate::image::reference::Reference::parse(t).ok().map(|r| r.to_string()))
                .collect();
            self.save_state(&mut st, &mut temps, tags).await
        }
        .await;
        // Intermediate images go; their layers stay if the result (or the cache) uses them.
        let keep = res.as_ref().map(|r| r.id.clone()).unwrap_or_default();
        let users = self.container_images().unwrap_or_default();
        for t in temps.iter().filter(|t| **t != keep) {
            let _ = self.images.remove(t, false, &users);
        }
        let rec = res?;
        say(format!("Successfully built {}", &rec.id.trim_start_matches("sha256:")[..12])).await;
        for t in rec.familiar_tags() {
            say(format!("Successfully tagged {t}")).await;
        }
        Ok(rec)
    }

    async fn step(
        self: &Arc<Self>,
        ctx: &Path,
        ins: &Instruction,
        opts: &BuildOptions,
        st: &mut State,
        temps: &mut Vec<String>,
        tx: &mpsc::Sender<BuildEvent>,
    ) -> Result<()> {
        let say = |s: &str| {
            let _ = tx.try_send(BuildEvent::Line(s.to_string()));
        };
        let text = ins.text().to_string();
        let created = st.last_created();
        match ins {
            Instruction::From { image, line, .. } => {
                if image == "scratch" {
                    *st = State::scratch();
                } else {
                    let img = self
                        .images
                        .resolve(image)
                        .map_err(|e| failed(*line, format!("FROM {image}: {e} (pull or import it first)")))?;
                    let cfg = self.images.config_json(&img)?;
                    *st = State {
                        layers: img.layers.clone(),
                        blobs: ImageStore::layer_blobs(&img),
                        cfg,
                        saved: Some(img.id.clone()),
                        cmd_set: false,
                    };
                    say(&format!(" ---> {}", &img.id.trim_start_matches("sha256:")[..12]));
                }
                return Ok(());
            }
            Instruction::Arg { .. } => return Ok(()),
            Instruction::Ignored { keyword, .. } => {
                say(&format!(" ---> [Warning] {keyword} is not supported by this builder; skipped"));
                return Ok(());
            }
            Instruction::Env { vars, .. } => {
                for (k, v) in vars {
                    st.set_env(k, v);
                }
            }
            Instruction::Label { labels, .. } => {
                for (k, v) in labels {
                    st.insert_in("Labels", k, v.clone().into());
                }
            }
            Instruction::Workdir { path, .. } => {
                let p = if path.starts_with('/') { path.clone() } else { format!("{}/{path}", st.workdir()) };
                let clean = format!("/{}", clean_rel(&p).unwrap_or_default().display());
                st.conf().insert("WorkingDir".into(), clean.into());
            }
            Instruction::User { user, .. } => {
                st.conf().insert("User".into(), user.clone().into());
            }
            Instruction::Expose { ports, .. } => {
                for p in ports {
                    for port in p.ports() {
                        st.insert_in("ExposedPorts", &format!("{port}/{}", p.protocol.as_str()), serde_json::json!({}));
                    }
                }
            }
            Instruction::Volume { paths, .. } => {
                for p in paths {
                    st.insert_in("Volumes", p, serde_json::json!({}));
                }
            }
            Instruction::Cmd { argv, .. } => {
                st.conf().insert("Cmd".into(), argv.clone().into());
                st.cmd_set = true;
            }
            Instruction::Entrypoint { argv, .. } => {
                st.conf().insert("Entrypoint".into(), argv.clone().into());
                // Like docker: a CMD inherited from the base makes no sense with a new entrypoint.
                if !st.cmd_set {
                    st.conf().insert("Cmd".into(), serde_json::Value::Null);
                }
            }
            Instruction::Shell { argv, .. } => {
                st.conf().insert("Shell".into(), argv.clone().into());
            }
            Instruction::StopSignal { signal, .. } => {
                st.conf().insert("StopSignal".into(), signal.clone().into());
            }
            Instruction::Healthcheck {
                test,
                interval_ns,
                timeout_ns,
                start_period_ns,
                start_interval_ns,
                retries,
                ..
            } => {
                // docker's image config field; zero values are left out as docker does.
                let mut h = serde_json::Map::new();
                h.insert("Test".into(), test.clone().into());
                for (k, v) in [
                    ("Interval", *interval_ns),
                    ("Timeout", *timeout_ns),
                    ("StartPeriod", *start_period_ns),
                    ("StartInterval", *start_interval_ns),
                ] {
                    if v != 0 {
                        h.insert(k.into(), v.into());
                    }
                }
                if *retries != 0 {
                    h.insert("Retries".into(), (*retries).into());
                }
                st.conf().insert("Healthcheck".into(), h.into());
            }
            Instruction::Run { argv, build_args, line, .. } => {
                let key = cache::run_key(st, &text, build_args, &opts.network);
                if let Some(e) = (!opts.no_cache).then(|| self.cache_get(&key)).flatten() {
                    say(" ---> CACHED");
                    st.add_layer(&e, &text);
                    return Ok(());
                }
                let e = self.run_step(st, temps, argv, build_args, *line, opts, tx).await?;
                self.cache_put(&key, &e);
                st.add_layer(&e, &text);
                say(&format!(" ---> {}", &e.diff_id.trim_start_matches("sha256:")[..12]));
                return Ok(());
            }
            Instruction::Copy { srcs, dest, chown, chmod, line, .. }
            | Instruction::Add { srcs, dest, chown, chmod, line, .. } => {
                let add = matches!(ins, Instruction::Add { .. });
                let e = self.copy_step(ctx, st, srcs, dest, chown, *chmod, *line, add, &text, opts.no_cache).await?;
                say(if e.1 { " ---> CACHED" } else { " ---> layer" });
                st.add_layer(&e.0, &text);
                return Ok(());
            }
        }
        // Config-only instructions: a history entry, no layer.
        st.history(&text, &created, true);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        self: &Arc<Self>,
        st: &mut State,
        temps: &mut Vec<String>,
        argv: &[String],
        build_args: &[(String, String)],
        line: usize,
        opts: &BuildOptions,
        tx: &mpsc::Sender<BuildEvent>,
    ) -> Result<CacheEntry> {
        let base = match &st.saved {
            Some(id) => id.clone(),
            None => self.save_state(st, temps, vec![]).await?.id,
        };
        let args: Vec<String> = build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let env = super::env::fill(&st.env(), &args);
        let mut name = [0u8; 6];
        getrandom::fill(&mut name).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let spec = ContainerSpec {
            name: format!("build-{}", hex::encode(name)),
            image: base,
            command: argv.to_vec(),
            entrypoint: Some(vec![]),
            env,
            working_dir: st.workdir(),
            user: st.get("User").as_str().unwrap_or_default().to_string(),
            network: if opts.network.is_empty() { "bridge".into() } else { opts.network.clone() },
            labels: [("agentd.build".to_string(), "1".to_string())].into(),
            ..Default::default()
        };
        let rec = self.create(spec).await.map_err(|e| failed(line, e))?;
        let id = rec.id.clone();
        // Under the agent's default --userns, the layer records the IDs the RUN saw.
        let map = rec.userns.map(|l| l.map);
        let outcome = async {
            self.start(&id).await.map_err(|e| failed(line, e))?;
            let mut logs = self.logs(
                &id,
                super::logs::LogOptions { follow: true, since: 0, tail: 0, until: 0, stdout: true, stderr: true },
            )?;
            while let Some(r) = logs.recv().await {
                let _ = tx.send(BuildEvent::Output(r.data)).await;
            }
            let (code, _) = self.wait(&id).await?;
            if code != 0 {
                return Err(failed(line, format!("the command {argv:?} returned a non-zero code: {code}")));
            }
            let upper = self.container_dir(&id).join("upper");
            let images = Arc::clone(&self.images);
            let layer = tokio::task::spawn_blocking(move || images.layer_from_dir(&upper, map.as_ref()))
                .await
                .map_err(|e| RuntimeError::Internal(e.to_string()))??;
            Ok(CacheEntry::made_now(layer))
        }
        .await;
        let _ = self.remove(&id, true).await;
        outcome
    }
}
