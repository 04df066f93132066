//! CRI messages ↔ domain types: the only part of the CRI service that sees both (the
//! domain never sees a CRI message).

use super::CriConfig;
use crate::api::convert::status;
use crate::cgroups::stats::Usage;
use crate::cgroups::Resources;
use crate::image::pull::Credentials;
use crate::image::ImageRecord;
use crate::runtime::sandbox::{self, CriMeta, SandboxSpec};
use crate::runtime::spec as runtime_spec;
use crate::runtime::{ContainerRecord, ContainerSpec, State};
use agent_proto::cri as pb;
use std::collections::{BTreeMap, HashMap};
use tonic::Status;

fn to_btree(m: HashMap<String, String>) -> BTreeMap<String, String> {
    m.into_iter().collect()
}

fn to_hash(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A record's labels and the caller's own annotations, as the CRI shows them.
fn tags(r: &ContainerRecord) -> (HashMap<String, String>, HashMap<String, String>) {
    (to_hash(&r.spec.labels), to_hash(&sandbox::user_annotations(r)))
}

pub(super) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn u64v(value: u64) -> Option<pb::UInt64Value> {
    Some(pb::UInt64Value { value })
}

pub(super) fn sandbox_state(r: &ContainerRecord) -> i32 {
    if r.state == State::Running {
        pb::PodSandboxState::SandboxReady as i32
    } else {
        pb::PodSandboxState::SandboxNotready as i32
    }
}

pub(super) fn container_state(r: &ContainerRecord) -> i32 {
    (match r.state {
        State::Created => pb::ContainerState::ContainerCreated,
        State::Running => pb::ContainerState::ContainerRunning,
        State::Exited => pb::ContainerState::ContainerExited,
        State::Removing => pb::ContainerState::ContainerUnknown,
    }) as i32
}

fn sandbox_meta(r: &ContainerRecord) -> pb::PodSandboxMetadata {
    let m = sandbox::meta(r).unwrap_or_default();
    pb::PodSandboxMetadata { name: m.name, uid: m.uid, namespace: m.namespace, attempt: m.attempt }
}

fn container_meta(r: &ContainerRecord) -> pb::ContainerMetadata {
    let m = sandbox::meta(r).unwrap_or_default();
    pb::ContainerMetadata { name: m.name, attempt: m.attempt }
}

fn image_spec(r: &ContainerRecord) -> pb::ImageSpec {
    let image = r.spec.annotations.get(sandbox::IMAGE).cloned().unwrap_or_else(|| r.spec.image.clone());
    pb::ImageSpec { image, ..Default::default() }
}

fn mounts(r: &ContainerRecord) -> Vec<pb::Mount> {
    use crate::isolation::spec::Propagation as P;
    r.spec
        .volumes
        .iter()
        .map(|v| pb::Mount {
            container_path: v.container.clone(),
            host_path: v.host.display().to_string(),
            readonly: v.read_only,
            propagation: match v.propagation {
                P::Rprivate | P::Private => pb::MountPropagation::PropagationPrivate,
                P::Rslave | P::Slave => pb::MountPropagation::PropagationHostToContainer,
                P::Rshared | P::Shared => pb::MountPropagation::PropagationBidirectional,
            } as i32,
            ..Default::default()
        })
        .collect()
}

/// A CRI mount's propagation (rprivate, rslave, rshared as containerd maps them).
fn propagation(m: &pb::Mount) -> Result<crate::isolation::spec::Propagation, Status> {
    use crate::isolation::spec::Propagation as P;
    match pb::MountPropagation::try_from(m.propagation) {
        Ok(pb::MountPropagation::PropagationPrivate) => Ok(P::Rprivate),
        Ok(pb::MountPropagation::PropagationHostToContainer) => Ok(P::Rslave),
        Ok(pb::MountPropagation::PropagationBidirectional) => Ok(P::Rshared),
        Err(_) => Err(Status::invalid_argument(format!(
            "mount {:?}: unknown propagation {}",
            m.container_path, m.propagation
        ))),
    }
}

/// The seccomp profile of a container: the `seccomp` field, else the deprecated
/// `seccomp_profile_path`. Unset means unconfined in this CRI version (as containerd);
/// a Localhost profile is read from the node's file now.
fn seccomp(profile: Option<&pb::SecurityProfile>, path: &str) -> Result<runtime_spec::Seccomp, Status> {
    use pb::security_profile::ProfileType;
    use runtime_spec::Seccomp;
    let file = |p: &str| Seccomp::from_file(p).map_err(status);
    if let Some(p) = profile {
        return match ProfileType::try_from(p.profile_type) {
            Ok(ProfileType::RuntimeDefault) => Ok(Seccomp::Default),
            Ok(ProfileType::Unconfined) => Ok(Seccomp::Unconfined),
            Ok(ProfileType::Localhost) if p.localhost_ref.is_empty() => {
                Err(Status::invalid_argument("seccomp: a Localhost profile needs localhost_ref (an absolute path)"))
            }
            Ok(ProfileType::Localhost) => file(&p.localhost_ref),
            Err(_) => Err(Status::invalid_argument(format!("seccomp: unknown profile type {}", p.profile_type))),
        };
    }
    match path {
        "" | "unconfined" => Ok(Seccomp::Unconfined),
        "runtime/default" | "docker/default" => Ok(Seccomp::Default),
        p => match p.strip_prefix("localhost/") {
            Some(f) => file(f),
            None => Err(Status::invalid_argument(format!(
                "unsupported seccomp_profile_path {p:?}: use unconfined, runtime/default or localhost/<absolute path>"
            ))),
        },
    }
}

/// The security context's group, path and privilege fields onto `spec`.
fn security_context(sc: &pb::LinuxContainerSecurityContext, spec: &mut ContainerSpec) -> Result<(), Status> {
    spec.group_add = sc
        .supplemental_groups
        .iter()
        .map(|g| {
            u32::try_from(*g)
                .map(|g| g.to_string())
                .map_err(|_| Status::invalid_argument(format!("supplemental group {g} is not a group ID")))
        })
        .collect::<Result<_, _>>()?;
    spec.strict_groups = sc.supplemental_groups_policy == pb::SupplementalGroupsPolicy::Strict as i32;
    // Given lists replace the defaults; an empty one (proto3 cannot tell it from "unset")
    // keeps them, and a privileged container has none either way, as in containerd.
    let paths = |p: &[String], what| -> Result<Option<Vec<String>>, Status> {
        if p.is_empty() {
            return Ok(None);
        }
        runtime_spec::container_paths(p, what).map(Some).map_err(status)
    };
    spec.security.masked_paths = paths(&sc.masked_paths, "masked path")?;
    spec.security.readonly_paths = paths(&sc.readonly_paths, "read-only path")?;
    spec.security.no_new_privileges = sc.no_new_privs;
    spec.security.new_privileges = !sc.no_new_privs;
    // The deprecated field still counts when `seccomp` is unset (kubelets before 1.25 send it).
    #[allow(deprecated)]
    let path = &sc.seccomp_profile_path;
    spec.security.seccomp = seccomp(sc.seccomp.as_ref(), path)?;
    Ok(())
}

/// Which of (network, IPC, PID) are the node's (`NamespaceMode::NODE`).
fn node_namespaces(ns: Option<&pb::NamespaceOption>) -> (bool, bool, bool) {
    let node = |m: i32| m == pb::NamespaceMode::Node as i32;
    ns.map_or((false, false, false), |n| (node(n.network), node(n.ipc), node(n.pid)))
}

/// The domain spec of a RunPodSandbox config.
pub(super) fn sandbox_spec(cfg: pb::PodSandboxConfig, cri: &CriConfig) -> SandboxSpec {
    let m = cfg.metadata.unwrap_or_default();
    let ns = cfg.linux.as_ref().and_then(|l| l.security_context.as_ref()).and_then(|s| s.namespace_options.as_ref());
    let (host_network, host_ipc, host_pid) = node_namespaces(ns);
    let ports = cfg
        .port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let proto = if p.protocol == pb::Protocol::Udp as i32 { "udp" } else { "tcp" };
            let ip = if p.host_ip.is_empty() { String::new() } else { format!("{}:", p.host_ip) };
            format!("{ip}{}:{}/{proto}", p.host_port, p.container_port)
        })
        .collect();
    let dns = cfg.dns_config.clone().unwrap_or_default();
    SandboxSpec {
        meta: CriMeta { name: m.name, namespace: m.namespace, uid: m.uid, attempt: m.attempt },
        hostname: cfg.hostname,
        labels: to_btree(cfg.labels),
        annotations: to_btree(cfg.annotations),
        log_directory: cfg.log_directory,
        host_network,
        host_ipc,
        host_pid,
        dns_servers: dns.servers,
        dns_searches: dns.searches,
        dns_options: dns.options,
        sysctls: cfg.linux.as_ref().map(|l| to_btree(l.sysctls.clone())).unwrap_or_default(),
        ports,
        pause_image: cri.pause_image.clone(),
        pause_command: cri.pause_command.clone(),
    }
}

/// Limits of a container: zero means "not set".
pub(super) fn resources(r: &pb::LinuxContainerResources) -> Resources {
    Resources {
        cpu_period: (r.cpu_period > 0).then_some(r.cpu_period as u64),
        cpu_quota: (r.cpu_quota > 0).then_some(r.cpu_quota),
        cpu_shares: (r.cpu_shares > 0).then_some(r.cpu_shares as u64),
        memory: (r.memory_limit_in_bytes > 0).then_some(r.memory_limit_in_bytes),
        memory_swap: (r.memory_swap_limit_in_bytes > 0).then_some(r.memory_swap_limit_in_bytes),
        // Positive only: lowering it needs CAP_SYS_RESOURCE, which hosts may withhold.
        oom_score_adj: (r.oom_score_adj > 0).then_some(r.oom_score_adj.min(1000) as i32),
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        ..Default::default()
    }
}

/// What CreateContainer asks for: the container's identity in its pod, whether it shares
/// the pod's PID namespace (shareProcessNamespace), and its domain spec (before the
/// sandbox completes it).
pub(super) fn container_request(cfg: &pb::ContainerConfig) -> Result<(CriMeta, bool, ContainerSpec), Status> {
    let m = cfg.metadata.clone().unwrap_or_default();
    if m.name.is_empty() {
        return Err(Status::invalid_argument("config.metadata.name is required"));
    }
    let share_pid = cfg
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .is_some_and(|n| n.pid == pb::NamespaceMode::Pod as i32);
    let meta = CriMeta { name: m.name, attempt: m.attempt, ..Default::default() };
    Ok((meta, share_pid, container_spec(cfg)?))
}

fn container_spec(cfg: &pb::ContainerConfig) -> Result<ContainerSpec, Status> {
    let image = cfg.image.as_ref().map(|i| i.image.clone()).unwrap_or_default();
    if image.is_empty() {
        return Err(Status::invalid_argument("config.image.image is required"));
    }
    let mut spec = ContainerSpec {
        image,
        entrypoint: (!cfg.command.is_empty()).then(|| cfg.command.clone()),
        command: cfg.args.clone(),
        env: cfg.envs.iter().map(|kv| format!("{}={}", kv.key, kv.value)).collect(),
        working_dir: cfg.working_dir.clone(),
        labels: to_btree(cfg.labels.clone()),
        annotations: to_btree(cfg.annotations.clone()),
        tty: cfg.tty,
        stdin_open: cfg.stdin,
        ..Default::default()
    };
    for m in &cfg.mounts {
        if m.host_path.is_empty() || m.container_path.is_empty() {
            return Err(Status::invalid_argument(format!(
                "mount {:?} → {:?}: both paths are required (image volumes are not supported)",
                m.host_path, m.container_path
            )));
        }
        // Typed here, from the CRI's own fields: no docker strings in between.
        let p = propagation(m)?;
        spec.volumes.push(runtime_spec::volume(&m.host_path, &m.container_path, m.readonly, p).map_err(status)?);
    }
    spec.devices = cfg
        .devices
        .iter()
        .map(|d| {
            let perms = if d.permissions.is_empty() { "rwm" } else { d.permissions.as_str() };
            runtime_spec::DeviceRequest::new(&d.host_path, &d.container_path, perms)
                .map_err(|e| Status::invalid_argument(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    if let Some(linux) = &cfg.linux {
        if let Some(r) = &linux.resources {
            spec.resources = resources(r);
        }
        if let Some(sc) = &linux.security_context {
            spec.privileged = sc.privileged;
            spec.read_only = sc.readonly_rootfs;
            if let Some(c) = &sc.capabilities {
                spec.cap_add = c.add_capabilities.clone();
                spec.cap_drop = c.drop_capabilities.clone();
            }
            spec.user = run_as(sc.run_as_user.as_ref(), sc.run_as_group.as_ref(), &sc.run_as_username)?;
            // Privileged pods and pods in the node's namespaces need the host's IDs,
            // whatever the agent's default user namespace mode.
            let (net, ipc, pid) = node_namespaces(sc.namespace_options.as_ref());
            if sc.privileged || net || ipc || pid {
                spec.userns = "host".into();
            }
        }
    }
    // Without a security context, its defaults: no seccomp filter, no no_new_privs.
    let unset = pb::LinuxContainerSecurityContext::default();
    security_context(cfg.linux.as_ref().and_then(|l| l.security_context.as_ref()).unwrap_or(&unset), &mut spec)?;
    Ok(spec)
}

pub(super) fn to_container(r: &ContainerRecord) -> pb::Container {
    let (labels, annotations) = tags(r);
    pb::Container {
        id: r.id.clone(),
        pod_sandbox_id: sandbox::sandbox_of(r).unwrap_or_default().to_string(),
        metadata: Some(container_meta(r)),
        image: Some(image_spec(r)),
        image_ref: r.image_id.clone(),
        state: container_state(r),
        created_at: r.created_at,
        labels,
        annotations,
        image_id: r.image_id.clone(),
    }
}

pub(super) fn to_sandbox(r: &ContainerRecord) -> pb::PodSandbox {
    let (labels, annotations) = tags(r);
    pb::PodSandbox {
        id: r.id.clone(),
        metadata: Some(sandbox_meta(r)),
        state: sandbox_state(r),
        created_at: r.created_at,
        labels,
        annotations,
        runtime_handler: String::new(),
    }
}

pub(super) fn sandbox_status(r: &ContainerRecord) -> pb::PodSandboxStatus {
    let (labels, annotations) = tags(r);
    let mode =
        |node: bool, otherwise: pb::NamespaceMode| (if node { pb::NamespaceMode::Node } else { otherwise }) as i32;
    pb::PodSandboxStatus {
        id: r.id.clone(),
        metadata: Some(sandbox_meta(r)),
        state: sandbox_state(r),
        created_at: r.created_at,
        network: Some(pb::PodSandboxNetworkStatus { ip: r.ip.clone(), additional_ips: vec![] }),
        linux: Some(pb::LinuxPodSandboxStatus {
            namespaces: Some(pb::Namespace {
                options: Some(pb::NamespaceOption {
                    network: mode(r.network == crate::isolation::spec::NetMode::Host, pb::NamespaceMode::Pod),
                    pid: mode(r.spec.pid == "host", pb::NamespaceMode::Container),
                    ipc: mode(r.spec.ipc == "host", pb::NamespaceMode::Pod),
                    ..Default::default()
                }),
            }),
        }),
        labels,
        annotations,
        runtime_handler: String::new(),
    }
}

pub(super) fn container_status(r: &ContainerRecord) -> pb::ContainerStatus {
    let (labels, annotations) = tags(r);
    let reason = match r.state {
        State::Exited if r.oom_killed => "OOMKilled",
        State::Exited if r.exit_code == 0 => "Completed",
        State::Exited => "Error",
        _ => "",
    };
    pb::ContainerStatus {
        id: r.id.clone(),
        metadata: Some(container_meta(r)),
        state: container_state(r),
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        exit_code: r.exit_code,
        image: Some(image_spec(r)),
        image_ref: r.image_id.clone(),
        reason: reason.into(),
        message: r.error.clone(),
        labels,
        annotations,
        mounts: mounts(r),
        log_path: r.spec.log_path.clone(),
        image_id: r.image_id.clone(),
        ..Default::default()
    }
}

/// CPU and memory of one usage sample, as kubelet reads them (working set = usage minus
/// page cache, as cAdvisor counts it).
fn usage_of(u: &Usage, ts: i64) -> (pb::CpuUsage, pb::MemoryUsage) {
    let ws = u.memory_usage.saturating_sub(u.memory_cache);
    (
        pb::CpuUsage { timestamp: ts, usage_core_nano_seconds: u64v(u.cpu_usage_ns), usage_nano_cores: None },
        pb::MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(ws),
            available_bytes: (u.memory_limit > 0).then(|| u.memory_limit.saturating_sub(ws)).and_then(u64v),
            usage_bytes: u64v(u.memory_usage),
            ..Default::default()
        },
    )
}

pub(super) fn container_stats(r: &ContainerRecord, u: &Usage, ts: i64) -> pb::ContainerStats {
    let (cpu, memory) = usage_of(u, ts);
    let (labels, annotations) = tags(r);
    let attributes =
        pb::ContainerAttributes { id: r.id.clone(), metadata: Some(container_meta(r)), labels, annotations };
    pb::ContainerStats {
        attributes: Some(attributes),
        cpu: Some(cpu),
        memory: Some(memory),
        writable_layer: None,
        swap: None,
    }
}

/// A sandbox's stats: its total, and each of its containers.
pub(super) fn sandbox_stats(
    sb: &ContainerRecord,
    total: &Usage,
    members: &[(ContainerRecord, Usage)],
    ts: i64,
) -> pb::PodSandboxStats {
    let (cpu, memory) = usage_of(total, ts);
    let linux = pb::LinuxPodSandboxStats {
        cpu: Some(cpu),
        memory: Some(memory),
        network: None,
        process: Some(pb::ProcessUsage { timestamp: ts, process_count: u64v(total.pids) }),
        containers: members.iter().map(|(r, u)| container_stats(r, u, ts)).collect(),
    };
    let (labels, annotations) = tags(sb);
    let attributes =
        pb::PodSandboxAttributes { id: sb.id.clone(), metadata: Some(sandbox_meta(sb)), labels, annotations };
    pb::PodSandboxStats { attributes: Some(attributes), linux: Some(linux), windows: None }
}

/// The CRI event of one of our lifecycle actions.
pub(super) fn event_type(action: &str) -> Option<pb::ContainerEventType> {
    Some(match action {
        "create" => pb::ContainerEventType::ContainerCreatedEvent,
        "start" => pb::ContainerEventType::ContainerStartedEvent,
        "die" => pb::ContainerEventType::ContainerStoppedEvent,
        "destroy" => pb::ContainerEventType::ContainerDeletedEvent,
        _ => return None,
    })
}

/// The user a CRI container runs as; the CRI requires an error for a group without a user.
fn run_as(user: Option<&pb::Int64Value>, group: Option<&pb::Int64Value>, name: &str) -> Result<String, Status> {
    Ok(match (user, group, name) {
        (Some(u), Some(g), _) => format!("{}:{}", u.value, g.value),
        (Some(u), None, _) => u.value.to_string(),
        (None, Some(_), "") => {
            return Err(Status::invalid_argument("run_as_group needs run_as_user or run_as_username"))
        }
        (None, Some(g), name) => format!("{name}:{}", g.value),
        (None, None, name) => name.to_string(),
    })
}

pub(super) fn to_image(i: &ImageRecord) -> pb::Image {
    // The image's `User` is `user[:group]`: a numeric user is the UID, a name the username.
    let user = i.config.user.split(':').next().unwrap_or_default();
    let uid = user.parse::<i64>().ok();
    pb::Image {
        id: i.id.clone(),
        repo_tags: i.tags.clone(),
        repo_digests: if i.digest.is_empty() {
            vec![]
        } else {
            i.tags
                .iter()
                .filter_map(|t| t.rsplit_once(':').map(|(repo, _)| format!("{repo}@{}", i.digest)))
                .take(1)
                .collect()
        },
        size: i.size(),
        uid: uid.map(|value| pb::Int64Value { value }),
        username: if uid.is_none() { user.to_string() } else { String::new() },
        spec: Some(pb::ImageSpec { image: i.id.clone(), ..Default::default() }),
        pinned: false,
    }
}

/// Credentials of a PullImage: username/password, or `auth` (base64 `user:password`).
pub(super) fn credentials(a: Option<pb::AuthConfig>) -> Result<Option<Credentials>, Status> {
    let Some(a) = a else { return Ok(None) };
    if !a.username.is_empty() {
        return Ok(Some(Credentials { username: a.username, password: a.password }));
    }
    if a.auth.is_empty() {
        return Ok(None);
    }
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.auth.trim())
        .map_err(|_| Status::invalid_argument("auth.auth is not base64 of user:password"))?;
    let text = String::from_utf8(raw).map_err(|_| Status::invalid_argument("auth.auth is not UTF-8"))?;
    let (u, p) = text.split_once(':').ok_or_else(|| Status::invalid_argument("auth.auth is not user:password"))?;
    Ok(Some(Credentials { username: u.into(), password: p.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_image_users_as_the_cri_says() {
        let v = |value| pb::Int64Value { value };
        assert_eq!(run_as(Some(&v(1000)), Some(&v(50)), "").unwrap(), "1000:50");
        assert_eq!(run_as(Some(&v(1000)), None, "").unwrap(), "1000");
        assert_eq!(run_as(None, Some(&v(50)), "www").unwrap(), "www:50");
        assert_eq!(run_as(None, None, "www").unwrap(), "www");
        let e = run_as(None, Some(&v(50)), "").unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let img = |user: &str| ImageRecord {
            id: "sha256:x".into(),
            tags: vec![],
            digest: String::new(),
            created_at: 0,
            config: crate::image::ImageConfig { user: user.into(), ..Default::default() },
            layers: vec![],
            blobs: vec![],
            architecture: String::new(),
            os: String::new(),
        };
        let i = to_image(&img("www-data:1004"));
        assert_eq!((i.uid, i.username.as_str()), (None, "www-data"));
        let i = to_image(&img("1004:1004"));
        assert_eq!((i.uid.map(|u| u.value), i.username.as_str()), (Some(1004), ""));
    }

    #[test]
    fn sandbox_ports_and_namespaces() {
        let port = |host_port, protocol, host_ip: &str| pb::PortMapping {
            protocol,
            container_port: 80,
            host_port,
            host_ip: host_ip.into(),
        };
        let cfg = pb::PodSandboxConfig {
            port_mappings: vec![
                port(8080, pb::Protocol::Tcp as i32, ""),
                port(0, pb::Protocol::Tcp as i32, ""),
                port(5353, pb::Protocol::Udp as i32, "127.0.0.1"),
            ],
            linux: Some(pb::LinuxPodSandboxConfig {
                security_context: Some(pb::LinuxSandboxSecurityContext {
                    namespace_options: Some(pb::NamespaceOption {
                        ipc: pb::NamespaceMode::Node as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = sandbox_spec(cfg, &CriConfig::default());
        assert_eq!(s.ports, ["8080:80/tcp", "127.0.0.1:5353:80/udp"]);
        assert_eq!((s.host_network, s.host_ipc, s.host_pid), (false, true, false));
    }

    fn ctr(sc: Option<pb::LinuxContainerSecurityContext>, mounts: Vec<pb::Mount>) -> Result<ContainerSpec, Status> {
        container_spec(&pb::ContainerConfig {
            image: Some(pb::ImageSpec { image: "busybox".into(), ..Default::default() }),
            mounts,
            linux: Some(pb::LinuxContainerConfig { security_context: sc, ..Default::default() }),
            ..Default::default()
        })
    }

    #[test]
    #[allow(deprecated)]
    fn security_contexts_as_the_cri_describes_them() {
        use runtime_spec::Seccomp;
        // Nothing set: no seccomp filter, no no_new_privs, the default paths.
        let s = ctr(None, vec![]).unwrap();
        assert_eq!(s.security.seccomp, Seccomp::Unconfined);
        assert!(!s.no_new_privs() && s.group_add.is_empty() && !s.strict_groups);
        assert_eq!(s.masked_paths(), crate::isolation::mounts::MASKED_PATHS);
        let sc = |f: &dyn Fn(&mut pb::LinuxContainerSecurityContext)| {
            let mut c = pb::LinuxContainerSecurityContext::default();
            f(&mut c);
            ctr(Some(c), vec![])
        };
        let s = sc(&|c| {
            c.no_new_privs = true;
            c.supplemental_groups = vec![4000, 0];
            c.supplemental_groups_policy = pb::SupplementalGroupsPolicy::Strict as i32;
            c.masked_paths = vec!["/proc/x".into()];
            c.readonly_paths = vec!["/proc/y/".into()];
        })
        .unwrap();
        assert!(s.no_new_privs() && s.strict_groups);
        assert_eq!(s.group_add, ["4000", "0"]);
        assert_eq!((s.masked_paths(), s.readonly_paths()), (vec!["/proc/x".to_string()], vec!["/proc/y".to_string()]));
        let p = sc(&|c| {
            c.privileged = true;
            c.masked_paths = vec!["/proc/x".into()];
        })
        .unwrap();
        assert!(p.masked_paths().is_empty() && p.readonly_paths().is_empty(), "privileged: nothing masked");
        let code = |r: Result<ContainerSpec, Status>| r.unwrap_err().code();
        assert_eq!(code(sc(&|c| c.supplemental_groups = vec![-1])), tonic::Code::InvalidArgument);
        assert_eq!(code(sc(&|c| c.masked_paths = vec!["proc".into()])), tonic::Code::InvalidArgument);
        // Seccomp: the profile field wins over the deprecated path.
        let prof = |t: pb::security_profile::ProfileType, r: &str| {
            Some(pb::SecurityProfile { profile_type: t as i32, localhost_ref: r.into() })
        };
        use pb::security_profile::ProfileType as T;
        let s = sc(&|c| {
            c.seccomp = prof(T::RuntimeDefault, "");
            c.seccomp_profile_path = "unconfined".into();
        });
        assert_eq!(s.unwrap().security.seccomp, Seccomp::Default);
        assert_eq!(sc(&|c| c.seccomp = prof(T::Unconfined, "")).unwrap().security.seccomp, Seccomp::Unconfined);
        let e = sc(&|c| c.seccomp = prof(T::Localhost, "/no/such/profile.json")).unwrap_err();
        assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains("/no/such/profile.json"), "{e:?}");
        assert_eq!(code(sc(&|c| c.seccomp = prof(T::Localhost, ""))), tonic::Code::InvalidArgument);
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.json");
        std::fs::write(&f, r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let f = f.display().to_string();
        let s = sc(&|c| c.seccomp = prof(T::Localhost, &f)).unwrap();
        assert!(matches!(&s.security.seccomp, Seccomp::File { path, .. } if path.display().to_string() == f));
        for (path, want) in
            [("", Seccomp::Unconfined), ("unconfined", Seccomp::Unconfined), ("runtime/default", Seccomp::Default)]
        {
            assert_eq!(sc(&|c| c.seccomp_profile_path = path.into()).unwrap().security.seccomp, want, "{path}");
        }
        assert_eq!(
            sc(&|c| c.seccomp_profile_path = "docker/default".into()).unwrap().security.seccomp,
            Seccomp::Default
        );
        let s = sc(&|c| c.seccomp_profile_path = format!("localhost/{f}")).unwrap();
        assert!(matches!(s.security.seccomp, Seccomp::File { .. }));
        let e = sc(&|c| c.seccomp_profile_path = f.clone()).unwrap_err();
        assert!(e.code() == tonic::Code::InvalidArgument && e.message().contains(&f), "{e:?}");
    }

    #[test]
    fn mount_propagation_both_ways() {
        use crate::isolation::spec::Propagation;
        let m = |p: pb::MountPropagation| pb::Mount {
            container_path: "/data".into(),
            host_path: "/srv".into(),
            propagation: p as i32,
            ..Default::default()
        };
        let s = ctr(
            None,
            vec![
                m(pb::MountPropagation::PropagationPrivate),
                m(pb::MountPropagation::PropagationHostToContainer),
                m(pb::MountPropagation::PropagationBidirectional),
            ],
        )
        .unwrap();
        let got: Vec<Propagation> = s.volumes.iter().map(|v| v.propagation).collect();
        assert_eq!(got, [Propagation::Rprivate, Propagation::Rslave, Propagation::Rshared]);
        let mut bad = m(pb::MountPropagation::PropagationPrivate);
        bad.propagation = 7;
        assert_eq!(ctr(None, vec![bad]).unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn limits_zero_means_unset() {
        let r = resources(&pb::LinuxContainerResources {
            cpu_quota: 50_000,
            memory_limit_in_bytes: 64 << 20,
            oom_score_adj: 2000,
            cpuset_cpus: "0".into(),
            ..Default::default()
        });
        assert_eq!((r.cpu_quota, r.cpu_period, r.memory), (Some(50_000), None, Some(64 << 20)));
        assert_eq!((r.oom_score_adj, r.cpuset_cpus.as_deref(), r.cpuset_mems), (Some(1000), Some("0"), None));
    }
}
