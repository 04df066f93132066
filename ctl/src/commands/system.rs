//! System verbs: system df, events, version, info.

use crate::cli::Format;
use crate::client::Clients;
use crate::error::Res;
use crate::output;
use agent_proto::v1 as pb;
use tokio_stream::StreamExt;

/// `system df`.
pub async fn df(cl: &mut Clients, format: Format) -> Res<u8> {
    let vols = cl.v.list(pb::ListVolumesRequest { size: true }).await?.into_inner().volumes;
    output::disk_usage(&cl.i.disk_usage(pb::DiskUsageRequest {}).await?.into_inner(), &vols, format)?;
    Ok(0)
}

/// `events`: from `since` on, until interrupted unless `no_follow`.
pub async fn events(cl: &mut Clients, since: u64, filter: Vec<String>, no_follow: bool, format: Format) -> Res<u8> {
    // docker takes one filter per flag; `type=container,event=die` in one is accepted too.
    let filters = filter.iter().flat_map(|f| f.split(',')).filter(|f| !f.is_empty()).map(str::to_string).collect();
    let mut s = cl.s.events(pb::EventsRequest { since, follow: !no_follow, filters }).await?.into_inner();
    while let Some(e) = s.next().await {
        output::event(&e?, format)?;
    }
    Ok(0)
}

/// `version`: ours and the agent's.
pub async fn version(cl: &mut Clients, format: Option<String>) -> Res<u8> {
    let v = cl.s.version(pb::VersionRequest {}).await?.into_inner();
    if let Some(f) = format.filter(|f| !f.is_empty()) {
        let j = serde_json::json!({
            "Client": {"Version": env!("CARGO_PKG_VERSION")},
            "Server": {"Version": v.version, "ApiVersion": v.api_version, "Os": v.os, "Arch": v.arch, "KernelVersion": v.kernel},
        });
        if f == "json" {
            println!("{j}");
        } else {
            crate::template::print(&f, &[j], &[])?;
        }
        return Ok(0);
    }
    println!(
        "Client:\n Version:\t{}\n\nServer:\n Version:\t{}\n API version:\t{}\n OS/Arch:\t{}/{}\n Kernel:\t{}",
        env!("CARGO_PKG_VERSION"),
        v.version,
        v.api_version,
        v.os,
        v.arch,
        v.kernel
    );
    Ok(0)
}

/// `info`.
pub async fn info(cl: &mut Clients, format: Format) -> Res<u8> {
    output::info(&cl.s.info(pb::InfoRequest {}).await?.into_inner(), format)?;
    Ok(0)
}
