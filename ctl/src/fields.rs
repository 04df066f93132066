//! The fields docker's `--format` templates see in each listing, where they differ from the
//! JSON we print: `ps` rows (`.ID` short, `.Names`, `.Status`, `.RunningFor`…) and `images`
//! rows (`.Repository`, `.Tag`…), with docker's column titles for `table` templates.

use agent_proto::v1 as pb;
use serde_json::{json, Value};

/// docker's titles for `ps` fields.
pub const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Networks", "NETWORKS"),
    ("Mounts", "MOUNTS"),
    ("Size", "SIZE"),
];

/// docker's titles for `images` fields.
pub const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
];

/// A `ps` row as docker's template sees it. `status`, `ago`, `created` are the table's own
/// renderings (output.rs), so the template and the table print the same text.
pub fn ps_row(c: &pb::ContainerInfo, status: String, ago: String, created: String, short_id: String) -> Value {
    let spec = c.spec.clone().unwrap_or_default();
    let mut labels: Vec<String> = spec.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    let ports: Vec<String> = c
        .published
        .iter()
        .map(|p| format!("{}:{}->{}/{}", p.host_ip, p.host_port, p.container_port, p.proto))
        .collect();
    let network = if spec.network_mode.is_empty() { "bridge".to_string() } else { spec.network_mode.clone() };
    let mounts: Vec<String> =
        spec.volumes.iter().map(|v| v.split(':').next().unwrap_or_default().to_string()).collect();
    json!({
        "ID": short_id,
        "Image": c.image,
        "Command": format!("\"{}\"", c.path.join(" ")),
        "CreatedAt": created,
        "RunningFor": ago,
        "Ports": ports.join(", "),
        "State": crate::output::state_name(c.state),
        "Status": status,
        "Names": c.name,
        "Labels": labels.join(","),
        "Networks": network,
        "Mounts": mounts.join(","),
        "Size": "",
    })
}

/// The `images` rows of one image (one per tag, like the table).
pub fn image_rows(i: &pb::ImageInfo, short_id: String, ago: String, created: String, size: String) -> Vec<Value> {
    let tags = if i.tags.is_empty() { vec!["<none>:<none>".to_string()] } else { i.tags.clone() };
    tags.into_iter()
        .map(|t| {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            json!({
                "ID": short_id, "Repository": repo, "Tag": tag,
                "Digest": if i.digest.is_empty() { "<none>".to_string() } else { i.digest.clone() },
                "CreatedSince": ago, "CreatedAt": created, "Size": size,
            })
        })
        .collect()
}
