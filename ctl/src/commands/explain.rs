//! `explain CONTAINER`: how the kernel isolates a running container, in the terms of the
//! user's source document (namespaces, cgroups, UnionFS layers, the network path).

use super::Clients;
use crate::cli::Format;
use crate::error::Res;
use agent_proto::v1 as pb;
use serde_json::json;

/// `explain`.
pub async fn explain(cl: &mut Clients, container: String, format: Format) -> Res<u8> {
    let x = cl.c.explain(pb::ExplainRequest { id: container }).await?.into_inner();
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&to_json(&x))?),
        Format::Table => print!("{}", text(&x)),
        Format::Template(t) => crate::template::print(t, &[to_json(&x)], &[])?,
    }
    Ok(0)
}

fn to_json(x: &pb::ExplainResponse) -> serde_json::Value {
    let o = x.overlay.clone().unwrap_or_default();
    let n = x.network.clone().unwrap_or_default();
    let s = x.security.clone().unwrap_or_default();
    json!({
        "Id": x.id, "Name": x.name, "Pid": x.pid,
        "Namespaces": x.namespaces.iter().map(|n| json!({"Type": n.r#type, "Inode": n.inode, "SharedWith": n.shared_with})).collect::<Vec<_>>(),
        "Cgroups": x.cgroups.iter().map(|c| json!({"Controllers": c.controllers, "Path": c.path})).collect::<Vec<_>>(),
        "Limits": x.limits,
        "Overlay": {
            "Lower": o.lower.iter().map(|l| json!({"Path": l.path, "DiffID": l.diff_id, "Images": l.images})).collect::<Vec<_>>(),
            "Upper": o.upper, "Work": o.work, "MountOptions": o.mount_options,
        },
        "Network": {
            "Mode": n.mode,
            "Links": n.links.iter().map(|l| json!({
                "Network": l.network, "Bridge": l.bridge, "HostVeth": l.host_veth, "HostVethPresent": l.host_veth_present,
                "IP": l.ip, "Gateway": l.gateway, "ContainerInterfaces": l.container_interfaces,
            })).collect::<Vec<_>>(),
            "Rules": n.rules, "Ports": n.ports,
        },
        "Security": {
            "Capabilities": s.capabilities, "Bounding": s.bounding, "Seccomp": s.seccomp, "SeccompFilters": s.seccomp_filters,
            "NoNewPrivs": s.no_new_privs, "UidMap": s.uid_map, "GidMap": s.gid_map, "ReadOnlyRootfs": s.read_only_rootfs,
        },
        "Sysctls": x.sysctls,
    })
}

fn text(x: &pb::ExplainResponse) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "Container {} ({}), init PID {} on the host", x.name, &x.id[..x.id.len().min(12)], x.pid);
    let _ = writeln!(o, "\nNamespaces (clone(CLONE_NEW…); /proc/{}/ns):", x.pid);
    for n in &x.namespaces {
        let who = match n.shared_with.as_str() {
            "" => "its own".to_string(),
            "host" => "SHARED with the host".to_string(),
            c => format!("shared with {c}"),
        };
        let _ = writeln!(o, "  {:<7} {:<12} {who}", n.r#type, n.inode);
    }
    let _ = writeln!(o, "\nCgroups (/proc/{}/cgroup):", x.pid);
    for c in &x.cgroups {
        let ctrl = if c.controllers.is_empty() { "(cgroup2)" } else { &c.controllers };
        let _ = writeln!(o, "  {ctrl:<18} {}", c.path);
    }
    let _ = writeln!(o, "Limits in force:");
    if x.limits.is_empty() {
        let _ = writeln!(o, "  none");
    }
    let mut limits: Vec<_> = x.limits.iter().collect();
    limits.sort();
    for (k, v) in limits {
        let _ = writeln!(o, "  {k:<18} {v}");
    }
    if let Some(ov) = &x.overlay {
        let _ = writeln!(o, "\nRoot filesystem (overlay; image layers read-only, top first):");
        for l in &ov.lower {
            let _ = writeln!(o, "  lower {}  {}  [{}]", short(&l.diff_id), l.path, l.images.join(", "));
        }
        let _ = writeln!(o, "  upper {} (the container's writes)\n  work  {}", ov.upper, ov.work);
        if !ov.mount_options.is_empty() {
            let _ = writeln!(o, "  mounted as: {}", ov.mount_options);
        }
    }
    if let Some(n) = &x.network {
        let _ = writeln!(o, "\nNetwork ({}):", n.mode);
        for l in &n.links {
            if l.host_veth.is_empty() {
                let _ = writeln!(o, "  interfaces {}", l.container_interfaces.join(", "));
                continue;
            }
            let gone = if l.host_veth_present { "" } else { " (MISSING on the host)" };
            let _ = writeln!(
                o,
                "  {}: eth in the container [{}] <-veth-> {}{gone} on bridge {}; IP {} via gateway {}",
                l.network,
                l.container_interfaces.join(", "),
                l.host_veth,
                l.bridge,
                l.ip,
                l.gateway
            );
        }
        for p in &n.ports {
            let _ = writeln!(o, "  published {p}");
        }
        for r in &n.rules {
            let _ = writeln!(o, "  nft: {r}");
        }
    }
    if let Some(s) = &x.security {
        let _ = writeln!(o, "\nSecurity:");
        let _ = writeln!(o, "  capabilities  {}", s.capabilities.join(" "));
        let _ = writeln!(
            o,
            "  seccomp       {} ({} filters)   no_new_privs {}",
            s.seccomp, s.seccomp_filters, s.no_new_privs
        );
        let _ = writeln!(o, "  read-only /   {}", s.read_only_rootfs);
        let _ = writeln!(o, "  uid_map       {}", s.uid_map.join("; "));
        let _ = writeln!(o, "  gid_map       {}", s.gid_map.join("; "));
    }
    if !x.sysctls.is_empty() {
        let _ = writeln!(o, "\nSysctls (as the container's namespaces see them):");
        let mut v: Vec<_> = x.sysctls.iter().collect();
        v.sort();
        for (k, val) in v {
            let _ = writeln!(o, "  {k} = {val}");
        }
    }
    o
}

fn short(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}
