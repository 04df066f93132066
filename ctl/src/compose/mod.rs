//! `apply`, `diff` and `down`: a Compose file (the Compose Specification, the subset that
//! maps onto the agent) reconciled client-side over the agent's API. One file per concern:
//! `yaml` (the tree with lines), `interpolate` (`${VAR}`, `.env`), `schema` (a service's
//! keys), `networks`, `file` (the project), `model`, `spec` (a service as `run` flags),
//! `plan`, `apply`, `diff`, `progress`.

mod apply;
mod diff;
mod file;
mod interpolate;
mod model;
mod networks;
mod plan;
mod progress;
mod schema;
mod spec;
mod yaml;

use crate::cli::ConnOpts;
use crate::error::{Exit, Res};
use clap::Args;

/// Which file, and which project.
#[derive(Args, Clone)]
pub struct FileArgs {
    /// The Compose file (`-`: stdin) [default: compose.yaml, compose.yml, docker-compose.yaml
    /// or docker-compose.yml here]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Project name [default: COMPOSE_PROJECT_NAME, the file's `name:`, or its directory's name]
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
}

/// `apply` and `diff`.
#[derive(Args, Clone)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub f: FileArgs,
    /// Also remove the project's containers whose services the file no longer lists
    #[arg(long)]
    pub prune: bool,
}

/// `diff`: docker's `diff CONTAINER` (the writable layer's changes), or with a Compose file
/// (`-f`, or no container named) what apply would do.
#[derive(Args, Clone)]
pub struct DiffArgs {
    #[command(flatten)]
    pub apply: ApplyArgs,
    /// A container: show the changes to its filesystem (A/C/D), like docker diff
    #[arg(conflicts_with_all = ["file", "project_name", "prune"])]
    pub container: Option<String>,
}

/// `down`.
#[derive(Args, Clone)]
pub struct DownArgs {
    #[command(flatten)]
    pub f: FileArgs,
    /// Seconds each container gets to stop [default: its stop_grace_period, else 10]
    #[arg(short = 't', long = "timeout")]
    pub timeout: Option<u32>,
}

/// The three verbs.
pub enum Verb {
    Apply { prune: bool },
    Diff { prune: bool },
    Down { timeout: Option<u32> },
}

/// Reads the file (before connecting: a bad file touches nothing), then runs the verb.
pub async fn run(conn: &ConnOpts, f: FileArgs, verb: Verb) -> Res<u8> {
    let path = match f.file {
        Some(p) => p,
        None => ["compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"]
            .into_iter()
            .find(|n| std::path::Path::new(n).exists())
            .map(str::to_string)
            .ok_or_else(|| Exit::agent("no configuration file provided: not found (use -f FILE)"))?,
    };
    let p = file::read(&path, f.project_name.as_deref()).map_err(Exit::agent)?;
    let mut cl = crate::client::connect(conn).await?;
    match verb {
        Verb::Apply { prune } => {
            let images = apply::image_ids(&mut cl, &p, true).await?;
            let o = apply::observe(&mut cl, &p).await?;
            let plan = apply::plan_for(&p, &o, &images, prune)?;
            apply::apply(&mut cl, &p, &plan).await
        }
        Verb::Diff { prune } => {
            let images = apply::image_ids(&mut cl, &p, false).await?;
            let o = apply::observe(&mut cl, &p).await?;
            let plan = apply::plan_for(&p, &o, &images, prune)?;
            diff::print(&p, &plan, &o)
        }
        Verb::Down { timeout } => apply::down(&mut cl, &p, timeout).await,
    }
}
