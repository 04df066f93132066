//! `build`: a Dockerfile turned into an image by our own runtime. Every RUN runs in a
//! container of the image so far and its writable layer becomes the step's layer; COPY and
//! ADD stage files from the context into a layer directly; the other instructions change
//! only the config. A cache keyed by (parent state, instruction, hashed inputs) makes an
//! unchanged rebuild reuse every layer and give the same image ID.

use super::{ContainerSpec, Result, Runtime, RuntimeError};
use crate::build::dockerfile::{self, Instruction};
use crate::image::{ImageRecord, ImageStore, Layer};
use crate::store::Kind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
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

/// A cached layer step.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    diff_id: String,
    size: u64,
    blob: String,
    created: String,
}

/// The image being built: its layers and config document so far.
struct State {
    layers: Vec<Layer>,
    blobs: Vec<String>,
    cfg: serde_json::Value,
    /// An image record holding exactly this state, if one was saved.
    saved: Option<String>,
    cmd_set: bool,
}

impl State {
    fn scratch() -> State {
        let cfg = serde_json::json!({
            "architecture": crate::image::archive::host_arch(), "os": "linux", "config": {},
            "rootfs": { "type": "layers", "diff_ids": [] }, "history": [],
        });
        State { layers: vec![], blobs: vec![], cfg, saved: None, cmd_set: false }
    }

    /// Identifies the state for the cache: its layers and its runtime config.
    fn key(&self) -> String {
        let mut h = Sha256::new();
        for l in &self.layers {
            h.update(l.diff_id.as_bytes());
            h.update(b"\n");
        }
        h.update(self.cfg["config"].to_string().as_bytes());
        hex::encode(h.finalize())
    }

    fn conf(&mut self) -> &mut serde_json::Map<String, serde_json::Value> {
        if !self.cfg["config"].is_object() {
            self.cfg["config"] = serde_json::json!({});
        }
        match self.cfg["config"].as_object_mut() {
            Some(m) => m,
            None => unreachable!("config was just made an object"),
        }
    }

    fn get(&self, key: &str) -> &serde_json::Value {
        &self.cfg["config"][key]
    }

    fn last_created(&self) -> String {
        self.cfg["created"].as_str().unwrap_or("1970-01-01T00:00:00Z").to_string()
    }

    fn history(&mut self, created_by: &str, created: &str, empty: bool) {
        let mut step = serde_json::json!({ "created": created, "created_by": created_by });
        if empty {
            step["empty_layer"] = true.into();
        }
        match self.cfg["history"].as_array_mut() {
            Some(h) => h.push(step),
            None => self.cfg["history"] = serde_json::json!([step]),
        }
        self.cfg["created"] = created.into();
        self.saved = None;
    }

    fn add_layer(&mut self, e: &CacheEntry, created_by: &str) {
        self.layers.push(Layer { diff_id: e.diff_id.clone(), size: e.size });
        self.blobs.push(e.blob.clone());
        if let Some(ids) = self.cfg["rootfs"]["diff_ids"].as_array_mut() {
            ids.push(e.diff_id.clone().into());
        } else {
            self.cfg["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": [e.diff_id] });
        }
        self.history(created_by, &e.created, false);
    }

    fn env(&self) -> Vec<String> {
        self.get("Env")
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    fn set_env(&mut self, k: &str, v: &str) {
        let mut env = self.env();
        let prefix = format!("{k}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{k}={v}"));
        self.conf().insert("Env".into(), env.into());
    }

    fn insert_in(&mut self, key: &str, k: &str, v: serde_json::Value) {
        let m = self.conf().entry(key.to_string()).or_insert_with(|| serde_json::json!({}));
        if !m.is_object() {
            *m = serde_json::json!({});
        }
        if let Some(o) = m.as_object_mut() {
            o.insert(k.to_string(), v);
        }
    }

    fn workdir(&self) -> String {
        self.get("WorkingDir").as_str().filter(|w| !w.is_empty()).unwrap_or("/").to_string()
    }
}

fn failed(line: usize, msg: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::FailedPrecondition(format!("build failed at Dockerfile line {line}: {msg}"))
}

fn invalid(line: usize, msg: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::InvalidArgument(format!("Dockerfile line {line}: {msg}"))
}

/// `a/../b` → `b`, refusing paths that climb out; `/x` and `x` mean the same (context-relative).
fn clean_rel(p: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir if !out.pop() => return None,
            _ => {}
        }
    }
    Some(out)
}

/// `*` and `?` in one path component.
fn wild_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n, mut star, mut mark) = (0, 0, None, 0);
    while n < name.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some(p);
            mark = n;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            n = mark;
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

/// Fails unless `p`'s parent directory, with every symlink resolved, is inside `ctx` (the
/// last component itself is copied as it is, a symlink as a symlink).
fn inside_context(ctx: &Path, p: &Path, src: &str, line: usize) -> Result<()> {
    let root = ctx.canonicalize().map_err(|e| failed(line, format!("build context: {e}")))?;
    // The context itself (`COPY . /x`) is checked as it is; anything else by its parent.
    let parent = if p.components().eq(ctx.components()) { p } else { p.parent().unwrap_or(p) };
    let real = parent.canonicalize().map_err(|e| failed(line, format!("{src:?}: {e}")))?;
    if !real.starts_with(&root) {
        return Err(invalid(line, format!("source {src:?} is outside the build context (through a symlink)")));
    }
    Ok(())
}

/// The context paths a COPY source names (a glob in its last component is expanded).
fn sources(ctx: &Path, src: &str, line: usize) -> Result<Vec<PathBuf>> {
    let rel = clean_rel(src).ok_or_else(|| invalid(line, format!("source {src:?} is outside the build context")))?;
    inside_context(ctx, &ctx.join(&rel), src, line)?;
    let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.contains(['*', '?']) {
        let parent = ctx.join(rel.parent().unwrap_or(Path::new("")));
        let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| wild_match(name.as_bytes(), e.file_name().as_encoded_bytes()))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        if found.is_empty() {
            return Err(failed(line, format!("no source files were specified: {src:?} matches nothing")));
        }
        return Ok(found);
    }
    let p = ctx.join(&rel);
    if p.symlink_metadata().is_err() {
        return Err(failed(line, format!("{src:?} not found in the build context (or excluded by .dockerignore)")));
    }
    Ok(vec![p])
}

/// Makes `dir` (inside `stage`) a real directory, component by component: a symlink an
/// earlier source put on the way is replaced, never followed (it could point at the host).
fn stage_dir(stage: &Path, dir: &Path) -> std::io::Result<()> {
    let rel = dir.strip_prefix(stage).map_err(|_| std::io::Error::other("path outside the staging directory"))?;
    let mut cur = stage.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match cur.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&cur)?;
                std::fs::create_dir(&cur)?;
            }
            Err(_) => std::fs::create_dir(&cur)?,
        }
    }
    Ok(())
}

/// Copies `src` (file, symlink or directory tree) to `dst` inside `stage`, owned by
/// `owner`, with `chmod`. Nothing is ever written through a symlink.
fn copy_tree(
    stage: &Path,
    src: &Path,
    dst: &Path,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> std::io::Result<()> {
    let m = src.symlink_metadata()?;
    if let Some(parent) = dst.parent() {
        stage_dir(stage, parent)?;
    }
    if dst.symlink_metadata().is_ok_and(|d| !d.is_dir() || !m.is_dir()) {
        if dst.symlink_metadata().is_ok_and(|d| d.is_dir()) {
            std::fs::remove_dir_all(dst)?;
        } else {
            std::fs::remove_file(dst)?;
        }
    }
    let ft = m.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(src)?;
        let _ = std::fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst)?;
    } else if ft.is_dir() {
        stage_dir(stage, dst)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(chmod.unwrap_or(m.mode() & 0o7777)))?;
        let mut entries: Vec<_> = std::fs::read_dir(src)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(stage, &e.path(), &dst.join(e.file_name()), owner, chmod)?;
        }
    } else if ft.is_file() {
        std::fs::copy(src, dst)?;
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(chmod.unwrap_or(m.mode() & 0o7777)))?;
    } else {
        // Devices, fifos, sockets: not something a build context carries.
        return Ok(());
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    std::os::unix::fs::lchown(dst, Some(uid), Some(gid))?;
    Ok(())
}

/// Hash of a staged tree: paths, types, modes, owners, contents, link targets.
fn tree_hash(root: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = p.symlink_metadata()?;
            let rel = p.strip_prefix(root).unwrap_or(&p);
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update(format!("\0{:o}\0{}\0{}\0", m.mode(), m.uid(), m.gid()).as_bytes());
            if m.file_type().is_symlink() {
                h.update(std::fs::read_link(&p)?.as_os_str().as_encoded_bytes());
            } else if m.is_file() {
                let mut f = std::fs::File::open(&p)?;
                std::io::copy(&mut f, &mut h)?;
            } else if m.is_dir() {
                stack.push(p);
            }
            h.update(b"\n");
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// A reader that fails once more than `left` bytes were asked of it: an `ADD`ed archive
/// is bounded like an image layer (`[images] max_layer_size`).
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: std::io::Read> std::io::Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(std::io::Error::other("the archive is larger than images.max_layer_size uncompressed"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn is_archive(p: &Path) -> bool {
    let n = p.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".tar.zst"].iter().any(|s| n.ends_with(s))
}

/// `--chown` as numeric IDs (names would need the image's /etc/passwd; root is known).
fn owner(chown: &Option<String>, line: usize) -> Result<Option<(u32, u32)>> {
    let Some(c) = chown else { return Ok(None) };
    let (u, g) = c.split_once(':').unwrap_or((c, c));
    let id = |s: &str| -> Result<u32> {
        if s == "root" {
            return Ok(0);
        }
        s.parse().map_err(|_| invalid(line, format!("--chown={c}: use numeric uid[:gid] (or root)")))
    };
    Ok(Some((id(u)?, id(g)?)))
}

/// Extracts a build context tar into `dir`, leaving out what `.dockerignore` excludes
/// (the Dockerfile and `.dockerignore` themselves always stay).
pub fn unpack_context(tar_path: &Path, dir: &Path, dockerfile: &str) -> Result<()> {
    let io = |e: std::io::Error| RuntimeError::InvalidArgument(format!("build context: {e}"));
    // Read .dockerignore first (a tar is read once, so scan twice).
    let mut ignore = None;
    {
        let f = std::fs::File::open(tar_path).map_err(io)?;
        let mut ar = tar::Archive::new(f);
        for e in ar.entries().map_err(io)? {
            let mut e = e.map_err(io)?;
            if e.path().map_err(io)?.as_os_str() == ".dockerignore" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).map_err(io)?;
                ignore = Some(
                    dockerfile::IgnoreMatcher::new(&s)
                        .map_err(|e| RuntimeError::InvalidArgument(format!(".dockerignore: {e}")))?,
                );
                break;
            }
        }
    }
    let f = std::fs::File::open(tar_path).map_err(io)?;
    let mut ar = tar::Archive::new(f);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for e in ar.entries().map_err(io)? {
        let mut e = e.map_err(io)?;
        let path = e.path().map_err(io)?.into_owned();
        let rel = path.to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
        if rel.is_empty() {
            continue;
        }
        let keep = rel == dockerfile || rel == ".dockerignore" || ignore.as_ref().is_none_or(|m| !m.is_excluded(&rel));
        if keep {
            // unpack_in refuses entries that would land outside `dir` (`..`, through symlinks).
            e.unpack_in(dir).map_err(io)?;
        }
    }
    Ok(())
}

impl Runtime {
    fn cache_get(&self, key: &str) -> Option<CacheEntry> {
        let e: CacheEntry = self.store.get(Kind::BuildCache, key).ok().flatten()?;
        // Layers can be removed by rmi/prune: then the entry is stale.
        (self.images.layer_dir(&e.diff_id).is_dir() && self.images.blob_path(&e.blob).is_file()).then_some(e)
    }

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
        let df_name = if opts.dockerfile.is_empty() { "Dockerfile".to_string() } else { opts.dockerfile.clone() };
        let df_rel = clean_rel(&df_name)
            .ok_or_else(|| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} is outside the context")))?;
        let df_path = ctx.join(&df_rel);
        inside_context(ctx, &df_path, &df_name, 0)?;
        if df_path.symlink_metadata().map(|m| !m.is_file()).unwrap_or(true) {
            return Err(RuntimeError::InvalidArgument(format!(
                "Dockerfile {df_name:?} is not a regular file in the build context"
            )));
        }
        let text = std::fs::read(&df_path)
            .map_err(|e| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} in the build context: {e}")))?;
        let text = String::from_utf8(text)
            .map_err(|_| RuntimeError::InvalidArgument(format!("Dockerfile {df_name:?} is not UTF-8")))?;
        let parsed = dockerfile::parse(&text, &opts.build_args)
            .map_err(|e| RuntimeError::InvalidArgument(format!("Dockerfile {df_name}: {e}")))?;
        for a in &parsed.unused_args {
            say(format!("[Warning] One or more build-args [{a}] were not consumed")).await;
        }
        for t in &opts.tags {
            crate::image::reference::Reference::parse(t).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        }
        let n = parsed.instructions.len();
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
            Instruction::Run { argv, build_args, line, .. } => {
                let mut h = Sha256::new();
                h.update(format!("{}\nRUN\n{text}\n{build_args:?}\n{}", st.key(), opts.network).as_bytes());
                let key = hex::encode(h.finalize());
                if let Some(e) = (!opts.no_cache).then(|| self.cache_get(&key)).flatten() {
                    say(" ---> CACHED");
                    st.add_layer(&e, &text);
                    return Ok(());
                }
                let e = self.run_step(st, temps, argv, build_args, *line, opts, tx).await?;
                let _ = self.store.put(Kind::BuildCache, &key, &e);
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
        let mut env = st.env();
        for (k, v) in build_args {
            if !env.iter().any(|e| e.starts_with(&format!("{k}="))) {
                env.push(format!("{k}={v}"));
            }
        }
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
            let mut logs = self
                .logs(&id, super::logs::LogOptions { follow: true, since: 0, tail: 0, stdout: true, stderr: true })?;
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
            let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            Ok(CacheEntry { blob: layer.diff_id.clone(), diff_id: layer.diff_id, size: layer.size, created })
        }
        .await;
        let _ = self.remove(&id, true).await;
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_step(
        &self,
        ctx: &Path,
        st: &State,
        srcs: &[String],
        dest: &str,
        chown: &Option<String>,
        chmod: Option<u32>,
        line: usize,
        add: bool,
        text: &str,
        no_cache: bool,
    ) -> Result<(CacheEntry, bool)> {
        let owner = owner(chown, line)?;
        let dest_abs = if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", st.workdir()) };
        let dest_rel = clean_rel(&dest_abs).unwrap_or_default();
        let mut files = Vec::new();
        for s in srcs {
            if s.contains("://") {
                return Err(invalid(
                    line,
                    format!("{s:?}: sources from URLs are not supported; download into the context"),
                ));
            }
            files.extend(sources(ctx, s, line)?);
        }
        let to_dir = dest.ends_with('/') || files.len() > 1;
        let images = Arc::clone(&self.images);
        let stage_root = images.temp_dir()?;
        let stage = stage_root.join("rootfs");
        let state_key = st.key();
        let max_bytes = self.images.max_layer_size();
        let text = text.to_string();
        let res = tokio::task::spawn_blocking(move || -> Result<String> {
            let io = |e: std::io::Error| failed(line, e);
            std::fs::create_dir_all(&stage).map_err(io)?;
            let target = stage.join(&dest_rel);
            for f in &files {
                let m = f.symlink_metadata().map_err(io)?;
                if m.is_dir() {
                    copy_tree(&stage, f, &target, owner, chmod).map_err(io)?;
                } else if add && m.is_file() && is_archive(f) {
                    stage_dir(&stage, &target).map_err(io)?;
                    let r = std::fs::File::open(f).map_err(io)?;
                    let r = Bounded { inner: crate::image::unpack::decompress(r).map_err(io)?, left: max_bytes };
                    let mut ar = tar::Archive::new(r);
                    ar.set_preserve_permissions(true);
                    for e in ar.entries().map_err(io)? {
                        e.map_err(io)?.unpack_in(&target).map_err(io)?;
                    }
                } else {
                    let name = f.file_name().map(PathBuf::from).unwrap_or_default();
                    let into_dir = to_dir || target.symlink_metadata().is_ok_and(|m| m.is_dir());
                    let to = if into_dir { target.join(name) } else { target.clone() };
                    copy_tree(&stage, f, &to, owner, chmod).map_err(io)?;
                }
            }
            let inputs = tree_hash(&stage).map_err(io)?;
            let mut h = Sha256::new();
            h.update(format!("{state_key}\n{text}\n{inputs}").as_bytes());
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let out = match res {
            Ok(key) => {
                if let Some(e) = (!no_cache).then(|| self.cache_get(&key)).flatten() {
                    Ok((e, true))
                } else {
                    let images = Arc::clone(&self.images);
                    let stage = stage_root.join("rootfs");
                    let layer = tokio::task::spawn_blocking(move || images.layer_from_dir(&stage, None))
                        .await
                        .map_err(|e| RuntimeError::Internal(e.to_string()))??;
                    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                    let e =
                        CacheEntry { blob: layer.diff_id.clone(), diff_id: layer.diff_id, size: layer.size, created };
                    let _ = self.store.put(Kind::BuildCache, &key, &e);
                    Ok((e, false))
                }
            }
            Err(e) => Err(e),
        };
        let _ = std::fs::remove_dir_all(&stage_root);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reader_stops_at_the_limit() {
        use std::io::Read;
        let mut ok = Bounded { inner: &b"12345"[..], left: 5 };
        let mut out = Vec::new();
        assert!(ok.read_to_end(&mut out).is_ok());
        let mut over = Bounded { inner: &b"123456"[..], left: 5 };
        let e = over.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("max_layer_size"), "{e}");
    }

    #[test]
    fn paths_and_globs() {
        assert_eq!(clean_rel("/a/./b/../c"), Some(PathBuf::from("a/c")));
        assert_eq!(clean_rel("../x"), None);
        assert_eq!(clean_rel("a/../../x"), None);
        assert!(wild_match(b"*.txt", b"a.txt"));
        assert!(wild_match(b"a?c*", b"abcdef"));
        assert!(!wild_match(b"*.txt", b"a.tx"));
        assert!(is_archive(Path::new("x/y.tar.gz")));
        assert!(!is_archive(Path::new("x/y.gz")));
        assert_eq!(owner(&Some("1000:1000".into()), 1).unwrap(), Some((1000, 1000)));
        assert_eq!(owner(&Some("root".into()), 1).unwrap(), Some((0, 0)));
        assert!(owner(&Some("bob".into()), 1).is_err());
    }
}
