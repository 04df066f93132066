//! The only translator between protobuf types and domain types, and from domain errors
//! to gRPC status codes.

use crate::cgroups::Resources;
use crate::image::pull::PullErrorKind;
use crate::image::{ImageError, ImageRecord};
use crate::runtime::health::HealthConfig;
use crate::runtime::{spec, ContainerRecord, ContainerSpec, RuntimeError, State};
use agent_proto::v1 as pb;
use tonic::{Code, Status};

/// gRPC metadata key carrying the exit code of a container that failed to start.
pub const EXIT_CODE_KEY: &str = "agent-exit-code";

/// Maps a runtime error to its gRPC status.
pub fn status(e: RuntimeError) -> Status {
    if let RuntimeError::StartFailed { code, .. } = &e {
        // Clients map this to docker's exit codes (126/127) even when the container is gone
        // (--rm): in the details and, for older clients, in the metadata.
        let mut st = super::details::start_failed(*code, e.to_string());
        if let Ok(v) = code.to_string().parse() {
            st.metadata_mut().insert(EXIT_CODE_KEY, v);
        }
        return st;
    }
    match e {
        RuntimeError::Insufficient(s) => return super::details::insufficient(&s),
        RuntimeError::InvalidArgument(m) => return super::details::invalid_argument(m),
        _ => {}
    }
    if let Some(st) = no_space(&e) {
        return st;
    }
    let code = match &e {
        RuntimeError::NotFound(_) | RuntimeError::PathNotFound(_) => Code::NotFound,
        RuntimeError::AlreadyExists(_) => Code::AlreadyExists,
        RuntimeError::InvalidArgument(_) => Code::InvalidArgument,
        RuntimeError::FailedPrecondition(_) | RuntimeError::StartFailed { .. } => Code::FailedPrecondition,
        RuntimeError::ResourceExhausted(_) | RuntimeError::Insufficient(_) => Code::ResourceExhausted,
        RuntimeError::Image(i) => return image_status(i),
        RuntimeError::Volume(v) => match v {
            crate::volume::VolumeError::NotFound(_) => Code::NotFound,
            crate::volume::VolumeError::InvalidArgument(_) => Code::InvalidArgument,
            crate::volume::VolumeError::InUse(_) => Code::FailedPrecondition,
            _ => Code::Internal,
        },
        RuntimeError::Cgroup(
            crate::cgroups::CgroupError::NoController(_) | crate::cgroups::CgroupError::Unsupported(_),
        ) => Code::FailedPrecondition,
        RuntimeError::Cgroup(_) | RuntimeError::Store(_) | RuntimeError::Io { .. } | RuntimeError::Internal(_) => {
            Code::Internal
        }
    };
    Status::new(code, e.to_string())
}

/// A write that failed for space: ResourceExhausted naming the path and what is left on
/// its filesystem (with `image_status`, the one place that maps ENOSPC).
fn no_space(e: &RuntimeError) -> Option<Status> {
    let (path, err) = match e {
        RuntimeError::Store(s) => return s.is_no_space().then(|| Status::resource_exhausted(e.to_string())),
        RuntimeError::Io { path, err, .. } => (path, err),
        _ => return None,
    };
    crate::space::is_full(err)
        .then(|| Status::resource_exhausted(format!("{e} ({})", crate::space::describe_free(path))))
}

/// Maps an image store error to its gRPC status.
pub fn image_status(e: &ImageError) -> Status {
    match e {
        ImageError::Store(s) if s.is_no_space() => return Status::resource_exhausted(e.to_string()),
        ImageError::Io { path, err } if crate::space::is_full(err) => {
            return Status::resource_exhausted(format!("{e} ({})", crate::space::describe_free(path)))
        }
        _ => {}
    }
    let code = match e {
        ImageError::NotFound(_) => Code::NotFound,
        ImageError::Ambiguous(_) | ImageError::Reference(_) | ImageError::BadArchive(_) | ImageError::Unpack(_) => {
            Code::InvalidArgument
        }
        ImageError::DigestMismatch { .. } => Code::DataLoss,
        ImageError::InUse { .. } => Code::FailedPrecondition,
        ImageError::Io { .. } | ImageError::Store(_) => Code::Internal,
        ImageError::Pull { kind, .. } => match kind {
            PullErrorKind::NotFound | PullErrorKind::NoPlatform => Code::NotFound,
            PullErrorKind::Unauthorized => Code::Unauthenticated,
            PullErrorKind::Unreachable => Code::Unavailable,
            PullErrorKind::Corrupt => Code::DataLoss,
            PullErrorKind::Registry => Code::Unknown,
        },
    };
    Status::new(code, e.to_string())
}

/// The domain spec of a create request: docker's strings for mounts, devices and security
/// options are parsed here, once (InvalidArgument naming the value).
pub fn spec_from_pb(s: pb::ContainerSpec) -> Result<ContainerSpec, RuntimeError> {
    let (mut volumes, mut named_volumes) = (Vec::new(), Vec::new());
    for v in &s.volumes {
        match spec::parse_volume_arg(v)? {
            spec::VolumeArg::Bind(b) => volumes.push(b),
            spec::VolumeArg::Named(n) => named_volumes.push(n),
        }
    }
    let tmpfs = s.tmpfs.iter().map(|t| spec::TmpfsMount::parse(t)).collect::<Result<_, _>>()?;
    let devices = s
        .devices
        .iter()
        .map(|d| spec::DeviceRequest::parse(d).map_err(|e| RuntimeError::InvalidArgument(e.to_string())))
        .collect::<Result<_, _>>()?;
    let security = spec::Security::parse(&s.security_opt)?;
    let restart = crate::runtime::restart::RestartPolicy::parse(&s.restart)?;
    let group_add = s.group_add.iter().map(|g| spec::group(g)).collect::<Result<_, _>>()?;
    let expose = spec::expose(&s.expose)?;
    let ulimits = s
        .ulimits
        .iter()
        .map(|u| crate::isolation::spec::Rlimit::parse(u).map_err(RuntimeError::InvalidArgument))
        .collect::<Result<_, _>>()?;
    if !s.stop_signal.is_empty() {
        crate::runtime::parse_signal(&s.stop_signal)
            .map_err(|e| RuntimeError::InvalidArgument(format!("--stop-signal: {e}")))?;
    }
    crate::runtime::check_search_and_options(&s.dns_search, &s.dns_option)?;
    if s.shm_size < 0 {
        return Err(RuntimeError::InvalidArgument(format!("invalid --shm-size {}: must be positive", s.shm_size)));
    }
    let net_opts = crate::runtime::net_opts::NetOpts::parse(
        &s.ip,
        &s.ip6,
        &s.mac_address,
        &s.uts,
        &s.storage_opt.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    )?;
    let log_config = crate::logfile::LogConfig::parse(&s.log_driver, &s.log_opts.into_iter().collect())
        .map_err(RuntimeError::InvalidArgument)?;
    if s.domainname.len() > 64 || s.domainname.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(RuntimeError::InvalidArgument(format!("invalid --domainname {:?}", s.domainname)));
    }
    let device_cgroup_rules = s
        .device_cgroup_rules
        .iter()
        .map(|r| crate::isolation::devices::DeviceRule::parse(r).map_err(RuntimeError::InvalidArgument))
        .collect::<Result<_, _>>()?;
    let cgroup_parent = if s.cgroup_parent.is_empty() {
        String::new()
    } else {
        crate::cgroups::parent::validate(&s.cgroup_parent).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?
    };
    let cgroupns = crate::runtime::CgroupNs::parse(&s.cgroupns)?;
    let resources = resources_from_pb(&s.resources.unwrap_or_default())?;
    Ok(ContainerSpec {
        name: s.name,
        image: s.image,
        command: s.command,
        entrypoint: s.entrypoint_set.then_some(s.entrypoint),
        env: s.env,
        working_dir: s.working_dir,
        user: s.user,
        hostname: s.hostname,
        tty: s.tty,
        stdin_open: s.stdin_open,
        network: s.network_mode,
        labels: s.labels.into_iter().collect(),
        auto_remove: s.auto_remove,
        init: s.init,
        resources,
        sysctls: s.sysctls.into_iter().collect(),
        group: s.group,
        ports: s.ports,
        dns: s.dns,
        dns_search: s.dns_search,
        dns_options: s.dns_option,
        add_hosts: s.add_hosts,
        publish_all: s.publish_all,
        cap_add: s.cap_add,
        cap_drop: s.cap_drop,
        volumes,
        named_volumes,
        volumes_from: s.volumes_from,
        tmpfs,
        read_only: s.read_only,
        security,
        privileged: s.privileged,
        devices,
        userns: s.userns,
        ipc: s.ipc,
        pid: s.pid,
        annotations: s.annotations.into_iter().collect(),
        log_path: String::new(),
        pause: false,
        restart,
        health: s.health.map(health_from_pb),
        group_add,
        strict_groups: false,
        domainname: s.domainname,
        stop_signal: s.stop_signal,
        stop_timeout: s.stop_timeout,
        shm_size: s.shm_size as u64,
        ulimits,
        network_aliases: s.network_aliases,
        expose,
        log_config,
        net_opts,
        device_cgroup_rules,
        cgroup_parent,
        cgroupns,
    })
}

fn health_from_pb(h: pb::HealthConfig) -> HealthConfig {
    HealthConfig {
        test: h.test,
        interval_ns: h.interval_ns,
        timeout_ns: h.timeout_ns,
        start_period_ns: h.start_period_ns,
        retries: h.retries,
        start_interval_ns: h.start_interval_ns,
    }
}

fn health_to_pb(h: &HealthConfig) -> pb::HealthConfig {
    pb::HealthConfig {
        test: h.test.clone(),
        interval_ns: h.interval_ns,
        timeout_ns: h.timeout_ns,
        start_period_ns: h.start_period_ns,
        retries: h.retries,
        start_interval_ns: h.start_interval_ns,
    }
}

fn health_state_to_pb(h: &crate::runtime::health::Health) -> pb::Health {
    pb::Health {
        status: h.status.as_str().to_string(),
        failing_streak: h.failing_streak,
        log: h
            .log
            .iter()
            .map(|p| pb::HealthProbe { start: p.start, end: p.end, exit_code: p.exit_code, output: p.output.clone() })
            .collect(),
    }
}

/// Limits from the API: zero means "not set"; `cpus` becomes a CFS quota; the per-device
/// limits are parsed (their paths stat'ed: block devices), InvalidArgument naming the value.
pub fn resources_from_pb(r: &pb::Resources) -> Result<Resources, RuntimeError> {
    use crate::cgroups::blkio::{parse, Kind};
    let devices = |list: &[String], flag: &str, kind: Kind| {
        list.iter()
            .map(|d| parse(d, flag, kind).map_err(|e| RuntimeError::InvalidArgument(e.0)))
            .collect::<Result<Vec<_>, _>>()
    };
    let n = r.device_read_bps.len()
        + r.device_write_bps.len()
        + r.device_read_iops.len()
        + r.device_write_iops.len()
        + r.blkio_weight_device.len();
    if n > 128 {
        // Before each path is stat'ed (runtime/limits.rs holds the same bound).
        return Err(RuntimeError::InvalidArgument(format!("too many per-device block I/O limits ({n}; at most 128)")));
    }
    let swappiness = match r.memory_swappiness {
        None | Some(-1) => None,
        Some(s @ 0..=100) => Some(s as u8),
        Some(s) => {
            return Err(RuntimeError::InvalidArgument(format!(
                "invalid --memory-swappiness {s}: must be between 0 and 100 (or -1 for the kernel's)"
            )))
        }
    };
    if r.cpu_rt_period < 0 || r.cpu_rt_runtime < 0 {
        return Err(RuntimeError::InvalidArgument(format!(
            "invalid --cpu-rt-period {} / --cpu-rt-runtime {}: microseconds, not negative",
            r.cpu_rt_period, r.cpu_rt_runtime
        )));
    }
    Ok(Resources {
        memory_swappiness: swappiness,
        oom_kill_disable: r.oom_kill_disable.then_some(true),
        cpu_rt_period: (r.cpu_rt_period > 0).then_some(r.cpu_rt_period as u64),
        cpu_rt_runtime: (r.cpu_rt_runtime > 0).then_some(r.cpu_rt_runtime),
        blkio_devices: crate::cgroups::blkio::BlkioDevices {
            read_bps: devices(&r.device_read_bps, "--device-read-bps", Kind::Bps)?,
            write_bps: devices(&r.device_write_bps, "--device-write-bps", Kind::Bps)?,
            read_iops: devices(&r.device_read_iops, "--device-read-iops", Kind::Iops)?,
            write_iops: devices(&r.device_write_iops, "--device-write-iops", Kind::Iops)?,
            weight: devices(&r.blkio_weight_device, "--blkio-weight-device", Kind::Weight)?,
        },
        ..basic_resources(r)
    })
}

/// The limits `update` and groups take: the create-only ones are refused, naming the flag.
pub fn update_resources_from_pb(r: &pb::Resources, what: &str) -> Result<Resources, RuntimeError> {
    let res = resources_from_pb(r)?;
    if let Some(flag) = res.create_only() {
        return Err(RuntimeError::InvalidArgument(format!("{flag} is set when a container is created, not by {what}")));
    }
    Ok(res)
}

fn basic_resources(r: &pb::Resources) -> Resources {
    let pos = |v: i64| (v > 0).then_some(v);
    let period = (r.cpu_period > 0).then_some(r.cpu_period as u64);
    let quota = if r.cpus > 0.0 {
        Some((r.cpus * period.unwrap_or(100_000) as f64).round() as i64)
    } else {
        pos(r.cpu_quota).or((r.cpu_quota == -1).then_some(-1))
    };
    Resources {
        cpu_quota: quota,
        cpu_period: period.or(quota.map(|_| 100_000)),
        cpu_shares: (r.cpu_shares > 0).then_some(r.cpu_shares),
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        memory: pos(r.memory),
        memory_reservation: pos(r.memory_reservation),
        memory_swap: if r.memory_swap == -1 { Some(-1) } else { pos(r.memory_swap) },
        pids_limit: if r.pids_limit != 0 { Some(r.pids_limit) } else { None },
        blkio_weight: (r.blkio_weight > 0).then_some(r.blkio_weight.min(u16::MAX as u32) as u16),
        oom_score_adj: (r.oom_score_adj != 0).then_some(r.oom_score_adj),
        ..Default::default()
    }
}

/// Limits as the API shows them.
pub fn resources_to_pb(r: &Resources) -> pb::Resources {
    let period = r.cpu_period.unwrap_or(100_000) as i64;
    pb::Resources {
        cpus: r.cpu_quota.filter(|q| *q > 0).map(|q| q as f64 / period as f64).unwrap_or(0.0),
        cpu_period: r.cpu_period.unwrap_or(0) as i64,
        cpu_quota: r.cpu_quota.unwrap_or(0),
        cpu_shares: r.cpu_shares.unwrap_or(0),
        cpuset_cpus: r.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: r.cpuset_mems.clone().unwrap_or_default(),
        memory: r.memory.unwrap_or(0),
        memory_reservation: r.memory_reservation.unwrap_or(0),
        memory_swap: r.memory_swap.unwrap_or(0),
        pids_limit: r.pids_limit.unwrap_or(0),
        blkio_weight: r.blkio_weight.unwrap_or(0) as u32,
        oom_score_adj: r.oom_score_adj.unwrap_or(0),
        memory_swappiness: r.memory_swappiness.map(i64::from),
        oom_kill_disable: r.oom_kill_disable.unwrap_or(false),
        cpu_rt_period: r.cpu_rt_period.unwrap_or(0) as i64,
        cpu_rt_runtime: r.cpu_rt_runtime.unwrap_or(0),
        device_read_bps: device_strings(&r.blkio_devices.read_bps),
        device_write_bps: device_strings(&r.blkio_devices.write_bps),
        device_read_iops: device_strings(&r.blkio_devices.read_iops),
        device_write_iops: device_strings(&r.blkio_devices.write_iops),
        blkio_weight_device: device_strings(&r.blkio_devices.weight),
    }
}

/// `PATH:VALUE` (a limit read back from the kernel, without its path: `MAJ:MIN:VALUE`).
fn device_strings(list: &[crate::cgroups::blkio::DeviceLimit]) -> Vec<String> {
    list.iter()
        .map(|d| {
            if d.path.is_empty() {
                format!("{}:{}:{}", d.major, d.minor, d.value)
            } else {
                format!("{}:{}", d.path, d.value)
            }
        })
        .collect()
}

pub fn spec_to_pb(s: &ContainerSpec) -> pb::ContainerSpec {
    pb::ContainerSpec {
        name: s.name.clone(),
        image: s.image.clone(),
        command: s.command.clone(),
        entrypoint: s.entrypoint.clone().unwrap_or_default(),
        entrypoint_set: s.entrypoint.is_some(),
        env: s.env.clone(),
        working_dir: s.working_dir.clone(),
        user: s.user.clone(),
        hostname: s.hostname.clone(),
        tty: s.tty,
        stdin_open: s.stdin_open,
        network_mode: s.network.clone(),
        labels: s.labels.clone().into_iter().collect(),
        auto_remove: s.auto_remove,
        init: s.init,
        resources: Some(resources_to_pb(&s.resources)),
        sysctls: s.sysctls.clone().into_iter().collect(),
        group: s.group.clone(),
        ports: s.ports.clone(),
        dns: s.dns.clone(),
        add_hosts: s.add_hosts.clone(),
        publish_all: s.publish_all,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        volumes: s
            .volumes
            .iter()
            .map(spec::volume_string)
            .chain(s.named_volumes.iter().map(spec::named_volume_string))
            .collect(),
        // Resolved at create into the volumes above.
        volumes_from: vec![],
        tmpfs: s.tmpfs.iter().map(ToString::to_string).collect(),
        read_only: s.read_only,
        security_opt: s.security.to_opts(),
        privileged: s.privileged,
        devices: s.devices.iter().map(ToString::to_string).collect(),
        userns: s.userns.clone(),
        ipc: s.ipc.clone(),
        pid: s.pid.clone(),
        restart: s.restart.to_string(),
        health: s.health.as_ref().map(health_to_pb),
        group_add: s.group_add.clone(),
        dns_search: s.dns_search.clone(),
        dns_option: s.dns_options.clone(),
        domainname: s.domainname.clone(),
        stop_signal: s.stop_signal.clone(),
        stop_timeout: s.stop_timeout,
        shm_size: s.shm_size as i64,
        ulimits: s.ulimits.iter().map(ToString::to_string).collect(),
        network_aliases: s.network_aliases.clone(),
        expose: s.expose.clone(),
        annotations: s.annotations.clone().into_iter().collect(),
        log_driver: s.log_config.driver.clone(),
        log_opts: s.log_config.effective_opts().into_iter().collect(),
        ip: s.net_opts.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        ip6: s.net_opts.ip6.map(|ip| ip.to_string()).unwrap_or_default(),
        mac_address: s.net_opts.mac.map(|m| m.to_string()).unwrap_or_default(),
        uts: if s.net_opts.uts_host { "host".into() } else { String::new() },
        storage_opt: s.net_opts.storage_size.map(|n| ("size".to_string(), n.to_string())).into_iter().collect(),
        device_cgroup_rules: s.device_cgroup_rules.iter().map(ToString::to_string).collect(),
        cgroup_parent: s.cgroup_parent.clone(),
        cgroupns: s.cgroupns.as_str().to_string(),
    }
}

/// A container record as the API shows it.
pub fn container_to_pb(c: &ContainerRecord, rootfs: String, cgroup: String) -> pb::ContainerInfo {
    let state = match c.state {
        State::Created => pb::ContainerState::Created,
        State::Running => pb::ContainerState::Running,
        State::Exited => pb::ContainerState::Exited,
        State::Removing => pb::ContainerState::Removing,
    };
    pb::ContainerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.spec.image.clone(),
        image_id: c.image_id.clone(),
        spec: Some(spec_to_pb(&c.spec)),
        state: state as i32,
        pid: if c.state == State::Running { c.pid.max(0) as u32 } else { 0 },
        exit_code: c.exit_code,
        error: c.error.clone(),
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        oom_killed: c.oom_killed,
        path: c.args.clone(),
        rootfs,
        cgroup,
        restart_count: c.restart_count,
        ip_address: c.ip.clone(),
        uid_map: c.userns.iter().flat_map(|l| id_maps(&l.map.uids)).collect(),
        gid_map: c.userns.iter().flat_map(|l| id_maps(&l.map.gids)).collect(),
        health: c.health.as_ref().map(health_state_to_pb),
        published: c
            .ports
            .iter()
            .map(|p| pb::PortBinding {
                container_port: p.container_port.into(),
                proto: p.proto.clone(),
                host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                host_port: p.host_port.into(),
            })
            .collect(),
        paused: c.paused && c.state == State::Running,
    }
}

fn id_maps(r: &[crate::isolation::userns::IdRange]) -> Vec<pb::IdMap> {
    r.iter().map(|r| pb::IdMap { container_id: r.container, host_id: r.host, size: r.size }).collect()
}

/// An image record as the API shows it.
pub fn image_to_pb(i: &ImageRecord) -> pb::ImageInfo {
    pb::ImageInfo {
        id: i.id.clone(),
        tags: i.familiar_tags(),
        digest: i.digest.clone(),
        created_at: i.created_at,
        size: i.size(),
        config: Some(pb::ImageConfig {
            env: i.config.env.clone(),
            cmd: i.config.cmd.clone(),
            entrypoint: i.config.entrypoint.clone(),
            working_dir: i.config.working_dir.clone(),
            user: i.config.user.clone(),
            labels: i.config.labels.clone().into_iter().collect(),
            stop_signal: i.config.stop_signal.clone(),
            exposed_ports: i.config.exposed_ports.clone(),
            healthcheck: i.config.healthcheck.as_ref().map(health_to_pb),
        }),
        layers: i.layers.iter().map(|l| pb::LayerInfo { diff_id: l.diff_id.clone(), size: l.size }).collect(),
        architecture: i.architecture.clone(),
        os: i.os.clone(),
    }
}

/// `--filter label=`/`label!=`/`until=` of a prune, typed.
pub fn prune_filter_from_pb(f: Option<pb::PruneFilters>) -> Result<crate::runtime::PruneFilter, RuntimeError> {
    let f = f.unwrap_or_default();
    let parse = |l: &String| -> Result<(String, Option<String>), RuntimeError> {
        match l.split_once('=') {
            Some(("", _)) => Err(RuntimeError::InvalidArgument(format!("invalid label filter {l:?}: no key"))),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None if l.is_empty() => Err(RuntimeError::InvalidArgument("an empty label filter".into())),
            None => Ok((l.clone(), None)),
        }
    };
    Ok(crate::runtime::PruneFilter {
        labels: f.labels.iter().map(parse).collect::<Result<_, _>>()?,
        not_labels: f.not_labels.iter().map(parse).collect::<Result<_, _>>()?,
        until: (f.until != 0).then_some(f.until),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_flags_are_parsed_once_naming_the_value() {
        let r = |f: fn(&mut pb::Resources)| {
            let mut p = pb::Resources::default();
            f(&mut p);
            resources_from_pb(&p)
        };
        assert_eq!(r(|p| p.memory_swappiness = Some(-1)).unwrap().memory_swappiness, None);
        assert_eq!(r(|p| p.memory_swappiness = Some(0)).unwrap().memory_swappiness, Some(0));
        let e = r(|p| p.memory_swappiness = Some(101)).unwrap_err().to_string();
        assert!(e.contains("--memory-swappiness 101"), "{e}");
        assert!(r(|p| p.cpu_rt_runtime = -5).unwrap_err().to_string().contains("--cpu-rt-runtime -5"));
        let e = r(|p| p.device_read_bps = vec!["/dev/null:1mb".into()]).unwrap_err();
        assert!(matches!(&e, RuntimeError::InvalidArgument(m) if m.contains("/dev/null is not a block device")), "{e}");
        let upd = pb::Resources { oom_kill_disable: true, ..Default::default() };
        let e = update_resources_from_pb(&upd, "update").unwrap_err().to_string();
        assert!(e.contains("--oom-kill-disable is set when a container is created, not by update"), "{e}");
        let spec = |f: fn(&mut pb::ContainerSpec)| {
            let mut s = pb::ContainerSpec::default();
            f(&mut s);
            spec_from_pb(s)
        };
        assert!(spec(|s| s.cgroupns = "shared".into()).unwrap_err().to_string().contains("--cgroupns \"shared\""));
        assert!(spec(|s| s.cgroup_parent = "a/../b".into()).unwrap_err().to_string().contains("\"a/../b\""));
        let e = spec(|s| s.device_cgroup_rules = vec!["c 1:3".into()]).unwrap_err().to_string();
        assert!(e.contains("invalid --device-cgroup-rule \"c 1:3\""), "{e}");
        let ok = spec(|s| {
            s.cgroupns = "host".into();
            s.cgroup_parent = "/mine".into();
            s.device_cgroup_rules = vec!["c 1:11 w".into()];
        })
        .unwrap();
        assert_eq!(
            (ok.cgroupns, ok.cgroup_parent.as_str(), ok.device_cgroup_rules[0].to_string()),
            (crate::runtime::CgroupNs::Host, "/mine", "c 1:11 w".into())
        );
        let back = spec_to_pb(&ok);
        assert_eq!((back.cgroupns.as_str(), back.device_cgroup_rules.len()), ("host", 1));
    }
}
