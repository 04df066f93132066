//! Who may call what: the caller's identity (client certificate, unix peer), its role,
//! the role each gRPC method needs, the TLS listener and the audit log.
//!
//! The whole policy is applied in one tower layer ([`layer::AuthLayer`]) in front of every
//! service, so a new RPC cannot forget its check: a method missing from the tables below
//! needs `admin`.

pub mod audit;
pub mod layer;
pub mod tls;

use serde::Deserialize;
use std::collections::BTreeMap;

/// What a caller may do. Ordered: a higher role may do everything a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only: list, inspect, logs, stats, events, info.
    Viewer,
    /// Containers and images.
    Operator,
    /// Everything, including the agent's own configuration (networks, quota groups).
    Admin,
}

impl Role {
    /// The role's name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Methods a viewer may call: they change nothing.
const VIEWER_METHODS: &[&str] = &[
    "/agent.v1.ContainerService/List",
    "/agent.v1.ContainerService/Inspect",
    "/agent.v1.ContainerService/Wait",
    "/agent.v1.ContainerService/Logs",
    "/agent.v1.ContainerService/Stats",
    "/agent.v1.ContainerService/Explain",
    "/agent.v1.ContainerService/Diff",
    "/agent.v1.ContainerService/Top",
    "/agent.v1.ImageService/List",
    "/agent.v1.ImageService/Inspect",
    "/agent.v1.ImageService/History",
    "/agent.v1.ImageService/DiskUsage",
    "/agent.v1.GroupService/List",
    "/agent.v1.GroupService/Inspect",
    "/agent.v1.NetworkService/List",
    "/agent.v1.NetworkService/Inspect",
    "/agent.v1.VolumeService/List",
    "/agent.v1.VolumeService/Inspect",
    "/agent.v1.SystemService/Version",
    "/agent.v1.SystemService/Info",
    "/agent.v1.SystemService/Events",
];

/// Methods an operator may call besides the viewer's: containers and images.
const OPERATOR_METHODS: &[&str] = &[
    "/agent.v1.ContainerService/Create",
    "/agent.v1.ContainerService/Start",
    "/agent.v1.ContainerService/Stop",
    "/agent.v1.ContainerService/Kill",
    "/agent.v1.ContainerService/Remove",
    "/agent.v1.ContainerService/Attach",
    "/agent.v1.ContainerService/Exec",
    "/agent.v1.ContainerService/ExecSync",
    "/agent.v1.ContainerService/UpdateResources",
    "/agent.v1.ContainerService/Rename",
    "/agent.v1.ContainerService/Pause",
    "/agent.v1.ContainerService/Unpause",
    "/agent.v1.ContainerService/CopyFrom",
    "/agent.v1.ContainerService/CopyTo",
    "/agent.v1.ContainerService/Export",
    "/agent.v1.ImageService/Import",
    "/agent.v1.ImageService/Pull",
    "/agent.v1.ImageService/Login",
    "/agent.v1.ImageService/Build",
    "/agent.v1.ImageService/Remove",
    "/agent.v1.ImageService/Save",
    "/agent.v1.ImageService/Prune",
    "/agent.v1.ImageService/Commit",
    "/agent.v1.ImageService/Tag",
    "/agent.v1.ImageService/Push",
    "/agent.v1.NetworkService/ConnectContainer",
    "/agent.v1.NetworkService/DisconnectContainer",
    "/agent.v1.VolumeService/Create",
    "/agent.v1.VolumeService/Remove",
    "/agent.v1.VolumeService/Prune",
    "/agent.v1.ContainerService/Prune",
    "/agent.v1.NetworkService/Prune",
];

/// The role a gRPC method (`/package.Service/Method`) needs. Health checks and reflection are
/// read-only; any method not listed needs `admin`.
pub fn required_role(path: &str) -> Role {
    if VIEWER_METHODS.contains(&path)
        || path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.")
    {
        Role::Viewer
    } else if OPERATOR_METHODS.contains(&path) {
        Role::Operator
    } else {
        Role::Admin
    }
}

/// CRI methods that change nothing. The whole CRI is kubelet's and needs `admin` (it runs
/// privileged pods with host mounts), but kubelet polls these every few seconds: they are
/// kept out of the audit log.
const CRI_READS: &[&str] = &[
    "Version",
    "Status",
    "RuntimeConfig",
    "ListPodSandbox",
    "PodSandboxStatus",
    "ListContainers",
    "ContainerStatus",
    "ContainerStats",
    "ListContainerStats",
    "PodSandboxStats",
    "ListPodSandboxStats",
    "ListMetricDescriptors",
    "ListPodSandboxMetrics",
    "ListImages",
    "ImageStatus",
    "ImageFsInfo",
];

/// Whether a method changes something, and so goes to the audit log.
pub fn is_mutating(path: &str) -> bool {
    let cri_read = ["/runtime.v1.RuntimeService/", "/runtime.v1.ImageService/"]
        .iter()
        .any(|svc| path.strip_prefix(svc).is_some_and(|m| CRI_READS.contains(&m)));
    !cri_read && required_role(path) > Role::Viewer
}

/// Who is calling, as far as the transport can tell.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Subject common name of the client certificate.
    pub cn: Option<String>,
    /// Subject organizational units.
    pub ou: Vec<String>,
    /// DNS, IP and URI subject alternative names.
    pub san: Vec<String>,
    /// Peer of a unix socket (`uid=0`) or a plain TCP address, when there is no certificate.
    pub peer: Option<String>,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(cn) = &self.cn {
            write!(f, "CN={cn}")?;
            for ou in &self.ou {
                write!(f, ",OU={ou}")?;
            }
            Ok(())
        } else if let Some(p) = &self.peer {
            f.write_str(p)
        } else {
            f.write_str("unknown")
        }
    }
}

/// The caller of a request, put into the request's extensions by the auth layer so a handler
/// can refine the check (e.g. `--privileged`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub identity: Identity,
    /// With which role.
    pub role: Role,
    /// Whether it may create `--privileged` containers (admin; operator if configured).
    pub may_privileged: bool,
}

/// How certificate subjects map to roles: `[roles]` in the config, keys `CN=name`, `OU=unit`
/// or `SAN=name`, values `admin`, `operator` or `viewer`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct RoleMap(pub BTreeMap<String, String>);

impl RoleMap {
    /// Checks every key and value, naming the first bad one.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in &self.0 {
            let ok_key = ["CN=", "OU=", "SAN="].iter().any(|p| k.strip_prefix(p).is_some_and(|r| !r.is_empty()));
            if !ok_key {
                return Err(format!("roles: invalid subject {k:?}: use CN=name, OU=unit or SAN=name"));
            }
            if Role::parse(v).is_none() {
                return Err(format!("roles: invalid role {v:?} for {k:?}: use admin, operator or viewer"));
            }
        }
        Ok(())
    }

    /// The role of a certificate holder. The most specific entry wins: CN, then a SAN, then
    /// an OU. Without a matching entry, an OU named like a role (`OU=operator`, as
    /// `agentctl certs init` issues them) gives that role; otherwise there is none.
    pub fn role_of(&self, id: &Identity) -> Option<Role> {
        let get = |k: String| self.0.get(&k).and_then(|v| Role::parse(v));
        if let Some(r) = id.cn.as_ref().and_then(|cn| get(format!("CN={cn}"))) {
            return Some(r);
        }
        if let Some(r) = id.san.iter().find_map(|s| get(format!("SAN={s}"))) {
            return Some(r);
        }
        if let Some(r) = id.ou.iter().find_map(|o| get(format!("OU={o}"))) {
            return Some(r);
        }
        id.ou.iter().filter_map(|o| Role::parse(o)).max()
    }
}

/// Reads the subject of a DER client certificate.
pub fn identity_of_cert(der: &[u8]) -> Option<Identity> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().next().and_then(|a| a.as_str().ok()).map(str::to_string);
    let ou = subject.iter_organizational_unit().filter_map(|a| a.as_str().ok()).map(str::to_string).collect();
    let mut san = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => san.push(d.to_string()),
                GeneralName::URI(u) => san.push(u.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => san.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        san.push(std::net::Ipv6Addr::from(a).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Some(Identity { cn, ou, san, peer: None })
}

#[cfg(test)]
mod tests {
    #[test]
    fn cri_needs_admin_and_audits_only_changes() {
        assert_eq!(required_role("/runtime.v1.RuntimeService/ListContainers"), Role::Admin);
        assert_eq!(required_role("/runtime.v1.ImageService/PullImage"), Role::Admin);
        assert!(!is_mutating("/runtime.v1.RuntimeService/ListContainers"));
        assert!(!is_mutating("/runtime.v1.ImageService/ImageStatus"));
        assert!(is_mutating("/runtime.v1.RuntimeService/RunPodSandbox"));
        assert!(is_mutating("/runtime.v1.ImageService/RemoveImage"));
        assert!(is_mutating("/runtime.v1.RuntimeService/ListContainersX"));
    }

    use super::*;

    #[test]
    fn methods_need_the_right_role() {
        assert_eq!(required_role("/agent.v1.ContainerService/List"), Role::Viewer);
        assert_eq!(required_role("/grpc.health.v1.Health/Check"), Role::Viewer);
        assert_eq!(required_role("/agent.v1.ContainerService/Create"), Role::Operator);
        assert_eq!(required_role("/agent.v1.NetworkService/Create"), Role::Admin);
        assert_eq!(required_role("/agent.v1.GroupService/Remove"), Role::Admin);
        assert_eq!(required_role("/agent.v1.Unknown/Thing"), Role::Admin);
        assert!(is_mutating("/agent.v1.ImageService/Remove"));
        assert!(!is_mutating("/agent.v1.SystemService/Events"));
    }

    #[test]
    fn roles_map_most_specific_first() {
        let mut m = BTreeMap::new();
        m.insert("CN=sched".to_string(), "admin".to_string());
        m.insert("OU=ops".to_string(), "viewer".to_string());
        m.insert("SAN=node1.example".to_string(), "operator".to_string());
        let map = RoleMap(m);
        map.validate().unwrap();
        let id = |cn: &str, ou: &[&str], san: &[&str]| Identity {
            cn: Some(cn.into()),
            ou: ou.iter().map(|s| s.to_string()).collect(),
            san: san.iter().map(|s| s.to_string()).collect(),
            peer: None,
        };
        assert_eq!(map.role_of(&id("sched", &["ops"], &[])), Some(Role::Admin));
        assert_eq!(map.role_of(&id("x", &["ops"], &["node1.example"])), Some(Role::Operator));
        assert_eq!(map.role_of(&id("x", &["ops"], &[])), Some(Role::Viewer));
        assert_eq!(map.role_of(&id("x", &["operator"], &[])), Some(Role::Operator));
        assert_eq!(map.role_of(&id("x", &["other"], &[])), None);
        assert!(RoleMap([("CN=".to_string(), "admin".to_string())].into()).validate().is_err());
        assert!(RoleMap([("CN=a".to_string(), "root".to_string())].into()).validate().is_err());
        assert!(RoleMap([("UID=a".to_string(), "admin".to_string())].into()).validate().is_err());
    }
}
