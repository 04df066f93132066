//! `Explain`: the runtime's explanation of a container as the API's message.

use crate::runtime::explain::Explanation;
use agent_proto::v1 as pb;

/// The explanation as the API shows it.
pub fn to_pb(x: Explanation) -> pb::ExplainResponse {
    pb::ExplainResponse {
        id: x.id,
        name: x.name,
        pid: x.pid.max(0) as u32,
        namespaces: x
            .namespaces
            .into_iter()
            .map(|n| pb::NamespaceInfo { r#type: n.kind, inode: n.inode, shared_with: n.shared_with })
            .collect(),
        cgroups: x.cgroups.into_iter().map(|(controllers, path)| pb::CgroupInfo { controllers, path }).collect(),
        limits: x.limits.into_iter().collect(),
        overlay: Some(pb::OverlayInfo {
            lower: x
                .overlay
                .lower
                .into_iter()
                .map(|(path, diff_id, images)| pb::OverlayLower { path, diff_id, images })
                .collect(),
            upper: x.overlay.upper,
            work: x.overlay.work,
            mount_options: x.overlay.mount_options,
        }),
        network: Some(pb::NetworkPath {
            mode: x.network.mode,
            links: x
                .network
                .links
                .into_iter()
                .map(|l| pb::NetworkLink {
                    network: l.network,
                    bridge: l.bridge,
                    host_veth: l.host_veth,
                    host_veth_present: l.host_veth_present,
                    ip: l.ip,
                    gateway: l.gateway,
                    container_interfaces: l.container_interfaces,
                })
                .collect(),
            rules: x.network.rules,
            ports: x.network.ports,
        }),
        security: Some(pb::SecurityInfo {
            capabilities: x.security.capabilities,
            bounding: x.security.bounding,
            seccomp: x.security.seccomp,
            seccomp_filters: x.security.seccomp_filters,
            no_new_privs: x.security.no_new_privs,
            uid_map: x.security.uid_map,
            gid_map: x.security.gid_map,
            read_only_rootfs: x.security.read_only_rootfs,
        }),
        sysctls: x.sysctls.into_iter().collect(),
    }
}
