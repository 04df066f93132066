//! `container prune`, `network prune`, `image prune` and `system prune`, as docker prints them: what was
//! deleted under "Deleted Containers:" (…Networks, …Volumes, …Images) and the space
//! reclaimed. Docker's filters: `until=` (a time or a duration back from now), `label=K`,
//! `label=K=V`, `label!=K`, `label!=K=V`.

use crate::client::Clients;
use crate::error::{Exit, Res};
use agent_proto::v1 as pb;
use clap::Args;

#[derive(Args, Clone, Default)]
pub struct PruneOpts {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long = "force")]
    pub force: bool,
    /// Provide filter values (until=24h, label=K[=V], label!=K[=V])
    #[arg(long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Args, Clone, Default)]
pub struct SystemPruneOpts {
    #[command(flatten)]
    pub prune: PruneOpts,
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Prune volumes
    #[arg(long)]
    pub volumes: bool,
}

/// `--filter`s as the API's.
pub fn filters(given: &[String]) -> Res<pb::PruneFilters> {
    let mut f = pb::PruneFilters::default();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    for g in given {
        if let Some(l) = g.strip_prefix("label!=") {
            f.not_labels.push(l.to_string());
        } else if let Some(l) = g.strip_prefix("label=") {
            f.labels.push(l.to_string());
        } else if let Some(t) = g.strip_prefix("until=") {
            f.until = crate::flags::time("until", t, now)?;
        } else {
            return Err(Exit::agent(format!("invalid filter {g:?}: use until=, label= or label!=")));
        }
    }
    Ok(f)
}

fn confirm(o: &PruneOpts, warning: &str) -> bool {
    o.force || super::volume::confirm(warning)
}

fn section(title: &str, names: &[String]) {
    if !names.is_empty() {
        println!("{title}");
        names.iter().for_each(|n| println!("{n}"));
        println!();
    }
}

/// `container prune`.
pub async fn containers(cl: &mut Clients, o: PruneOpts) -> Res<u8> {
    let filters = Some(filters(&o.filter)?);
    if !confirm(&o, "WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let r = cl.c.prune(pb::PruneContainersRequest { filters }).await?.into_inner();
    section("Deleted Containers:", &r.deleted);
    println!("Total reclaimed space: {}", crate::output::human(r.reclaimed_bytes));
    Ok(0)
}

/// `network prune`.
pub async fn networks(cl: &mut Clients, o: PruneOpts) -> Res<u8> {
    let filters = Some(filters(&o.filter)?);
    if !confirm(&o, "WARNING! This will remove all custom networks not used by at least one container.") {
        return Ok(0);
    }
    let r = cl.n.prune(pb::PruneNetworksRequest { filters }).await?.into_inner();
    section("Deleted Networks:", &r.deleted);
    Ok(0)
}

/// `image prune [-a]`: docker's warning unless `-f`, then what was deleted.
pub async fn images(cl: &mut Clients, all: bool, o: PruneOpts) -> Res<u8> {
    let filters = Some(filters(&o.filter)?);
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(&o, warning) {
        return Ok(0);
    }
    let r = cl.i.prune(pb::PruneImagesRequest { all, filters }).await?.into_inner();
    let deleted: Vec<String> = r.deleted.iter().map(|d| format!("deleted: {d}")).collect();
    section("Deleted Images:", &deleted);
    println!("Total reclaimed space: {}", crate::output::human(r.reclaimed_bytes));
    Ok(0)
}

/// `system prune [-a] [--volumes]`: stopped containers, then unused networks, (volumes),
/// then dangling (with `-a`: unused) images and the layers nothing uses any more.
pub async fn system(cl: &mut Clients, o: SystemPruneOpts) -> Res<u8> {
    let f = filters(&o.prune.filter)?;
    if o.volumes && (f.until != 0 || !f.not_labels.is_empty()) {
        return Err(Exit::agent("system prune --volumes: volumes are filtered by label= only"));
    }
    let mut warning =
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n"
            .to_string();
    if o.volumes {
        warning.push_str("  - all volumes not used by at least one container\n");
    }
    warning.push_str(if o.all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - all dangling build cache\n"
    });
    if !confirm(&o.prune, warning.trim_end()) {
        return Ok(0);
    }
    let c = cl.c.prune(pb::PruneContainersRequest { filters: Some(f.clone()) }).await?.into_inner();
    section("Deleted Containers:", &c.deleted);
    let n = cl.n.prune(pb::PruneNetworksRequest { filters: Some(f.clone()) }).await?.into_inner();
    section("Deleted Networks:", &n.deleted);
    let mut reclaimed = c.reclaimed_bytes;
    if o.volumes {
        let v = cl.v.prune(pb::PruneVolumesRequest { label_filters: f.labels.clone() }).await?.into_inner();
        section("Deleted Volumes:", &v.removed);
        reclaimed += v.reclaimed_bytes;
    }
    let i = cl.i.prune(pb::PruneImagesRequest { all: o.all, filters: Some(f) }).await?.into_inner();
    let deleted: Vec<String> = i.deleted.iter().map(|d| format!("deleted: {d}")).collect();
    section("Deleted Images:", &deleted);
    reclaimed += i.reclaimed_bytes;
    println!("Total reclaimed space: {}", crate::output::human(reclaimed));
    Ok(0)
}
