//! Tables and JSON for people and scripts, shaped like docker's output.

use crate::cli::Format;
use crate::context::CtlConfig;
use crate::fields;
use crate::template;
use agent_proto::v1 as pb;
use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width};
use serde_json::{json, Value};
use std::collections::HashMap;

fn ago(nanos: i64) -> String {
    if nanos <= 0 {
        return String::new();
    }
    let secs = (chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - nanos) / 1_000_000_000;
    match secs {
        s if s < 2 => "Less than a second ago".into(),
        s if s < 60 => format!("{s} seconds ago"),
        s if s < 7200 => format!("{} minutes ago", s / 60),
        s if s < 172800 => format!("{} hours ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    }
}

fn rfc3339(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".into();
    }
    chrono::DateTime::from_timestamp_nanos(nanos).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

pub(crate) fn state_name(s: i32) -> &'static str {
    match pb::ContainerState::try_from(s).unwrap_or(pb::ContainerState::Unspecified) {
        pb::ContainerState::Created => "created",
        pb::ContainerState::Running => "running",
        pb::ContainerState::Exited => "exited",
        pb::ContainerState::Removing => "removing",
        pb::ContainerState::Unspecified => "unknown",
    }
}

fn status(c: &pb::ContainerInfo) -> String {
    match state_name(c.state) {
        "running" => {
            let up = format!("Up {}", ago(c.started_at).trim_end_matches(" ago"));
            if c.paused {
                return format!("{up} (Paused)");
            }
            match c.health.as_ref().map(|h| h.status.as_str()) {
                None | Some("") => up,
                Some("starting") => format!("{up} (health: starting)"),
                Some(s) => format!("{up} ({s})"),
            }
        }
        "exited" => format!("Exited ({}) {}", c.exit_code, ago(c.finished_at)),
        "created" => "Created".into(),
        s => s.to_string(),
    }
}

/// The first 12 characters of an ID, without its `sha256:`, as docker shows IDs.
fn short_id(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// A table like docker's plain one: the header row, no borders, each column as wide as its
/// widest cell plus three spaces and at least ten (docker's tabwriter), the last one unpadded.
fn table<R: Into<comfy_table::Row>>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String {
    let mut t = Table::new();
    t.load_style(comfy_table::presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.to_vec());
    for r in rows {
        t.add_row(r);
    }
    let last = t.column_count().saturating_sub(1);
    for (i, col) in t.column_iter_mut().enumerate() {
        if i < last {
            col.set_padding((0, 3)).set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(10)));
        } else {
            col.set_padding((0, 0));
        }
    }
    t.trim_fmt()
}

/// Prints [`table`].
fn print_table<R: Into<comfy_table::Row>>(header: &[&str], rows: impl IntoIterator<Item = R>) {
    println!("{}", table(header, rows));
}

/// Prints one indented JSON document.
pub fn print_json(v: &impl serde::Serialize) -> serde_json::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints `inspect`'s objects: one JSON array, or each through `-f TEMPLATE` (docker's).
pub fn print_inspect(items: &[Value], format: Option<&str>) -> crate::error::Res<()> {
    match format {
        None | Some("") | Some("json") => Ok(print_json(&items)?),
        Some(t) => Ok(template::print(t, items, &[])?),
    }
}

/// Prints a listing's short IDs (`-q`) or its JSON lines; false when it is a table's to print.
fn ids_or_json<T>(
    items: &[T],
    quiet: bool,
    format: Format,
    id: impl Fn(&T) -> &str,
    json: impl Fn(&T) -> Value,
) -> bool {
    if quiet {
        items.iter().for_each(|i| println!("{}", short_id(id(i))));
    } else if format == Format::Json {
        print_json_lines(items.iter().map(json));
    } else {
        return false;
    }
    true
}

/// Prints one JSON object a line.
fn print_json_lines(values: impl IntoIterator<Item = Value>) {
    for v in values {
        println!("{v}");
    }
}

/// A health check as docker's inspect shows it (durations in nanoseconds).
fn health_config_json(h: &pb::HealthConfig) -> Value {
    json!({ "Test": h.test, "Interval": h.interval_ns, "Timeout": h.timeout_ns, "StartPeriod": h.start_period_ns, "StartInterval": h.start_interval_ns, "Retries": h.retries })
}

/// A container as JSON (docker inspect's main fields).
pub fn container_json(c: &pb::ContainerInfo) -> Value {
    let spec = c.spec.clone().unwrap_or_default();
    let res = spec.resources.clone().unwrap_or_default();
    let networks = networks_json(c, &spec);
    let cg_spec = spec.clone();
    let mut v = json!({
        "Id": c.id,
        "Name": c.name,
        "Image": c.image,
        "ImageID": c.image_id,
        "Created": rfc3339(c.created_at),
        "Path": c.path.first().cloned().unwrap_or_default(),
        "Args": c.path.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": if c.paused { "paused" } else { state_name(c.state) },
            "Running": state_name(c.state) == "running",
            "Paused": c.paused,
            "Pid": c.pid,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "OOMKilled": c.oom_killed,
            "StartedAt": rfc3339(c.started_at),
            "FinishedAt": rfc3339(c.finished_at),
            "Health": c.health.as_ref().map(|h| json!({
                "Status": h.status,
                "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|p| json!({
                    "Start": rfc3339(p.start),
                    "End": rfc3339(p.end),
                    "ExitCode": p.exit_code,
                    "Output": p.output,
                })).collect::<Vec<_>>(),
            })),
        },
        "RestartCount": c.restart_count,
        "Config": {
            "Hostname": spec.hostname,
            "User": spec.user,
            "Env": spec.env,
            "Cmd": spec.command,
            "Entrypoint": if spec.entrypoint_set { Some(spec.entrypoint) } else { None },
            "WorkingDir": spec.working_dir,
            "Tty": spec.tty,
            "OpenStdin": spec.stdin_open,
            "Labels": spec.labels,
            "Healthcheck": spec.health.as_ref().map(health_config_json),
            "ExposedPorts": spec.expose.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "MacAddress": spec.mac_address,
        },
        "HostConfig": {
            "NetworkMode": if spec.network_mode.is_empty() { "none".to_string() } else { spec.network_mode },
            "AutoRemove": spec.auto_remove,
            "RestartPolicy": { "Name": spec.restart },
            "Init": spec.init,
            "Sysctls": spec.sysctls,
            "NanoCpus": (res.cpus * 1e9) as i64,
            "CpuPeriod": res.cpu_period,
            "CpuQuota": res.cpu_quota,
            "CpuShares": res.cpu_shares,
            "CpusetCpus": res.cpuset_cpus,
            "CpusetMems": res.cpuset_mems,
            "Memory": res.memory,
            "MemoryReservation": res.memory_reservation,
            "MemorySwap": res.memory_swap,
            "PidsLimit": res.pids_limit,
            "BlkioWeight": res.blkio_weight,
            "OomScoreAdj": res.oom_score_adj,
            "IpcMode": if spec.ipc.is_empty() { "private".to_string() } else { spec.ipc.clone() },
            "PidMode": spec.pid,
            "UTSMode": spec.uts,
            "StorageOpt": (!spec.storage_opt.is_empty()).then_some(&spec.storage_opt),
            "Binds": spec.volumes,
            "GroupAdd": spec.group_add,
            "Annotations": spec.annotations,
            "LogConfig": { "Type": if spec.log_driver.is_empty() { "json-file" } else { spec.log_driver.as_str() }, "Config": spec.log_opts },
            "UsernsMode": if c.uid_map.is_empty() { "host".to_string() } else if spec.userns.is_empty() { "remap".to_string() } else { spec.userns.clone() },
        },
        "IDMappings": {
            "UidMap": c.uid_map.iter().map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size)).collect::<Vec<_>>(),
            "GidMap": c.gid_map.iter().map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size)).collect::<Vec<_>>(),
        },
        "Mounts": spec.volumes.iter().map(|v| bind_json(v)).collect::<Vec<_>>(),
        "GraphDriver": { "Name": "overlay", "Data": { "UpperDir": c.rootfs } },
        "CgroupPath": c.cgroup,
        "NetworkSettings": {
            "IPAddress": c.ip_address,
            "MacAddress": spec.mac_address,
            "Ports": spec.ports,
            "Networks": networks,
        },
    });
    if let (Some(h), serde_json::Value::Object(more)) = (v["HostConfig"].as_object_mut(), cgroup_host_config(&cg_spec))
    {
        h.extend(more);
    }
    v
}

/// The HostConfig fields of the cgroup flags (`cg_flags.rs`), docker's names.
fn cgroup_host_config(spec: &pb::ContainerSpec) -> serde_json::Value {
    let res = spec.resources.clone().unwrap_or_default();
    serde_json::json!({
        "MemorySwappiness": res.memory_swappiness,
        "OomKillDisable": res.oom_kill_disable,
        "CpuRealtimePeriod": res.cpu_rt_period,
        "CpuRealtimeRuntime": res.cpu_rt_runtime,
        "BlkioWeightDevice": device_limits(&res.blkio_weight_device, "Weight"),
        "BlkioDeviceReadBps": device_limits(&res.device_read_bps, "Rate"),
        "BlkioDeviceWriteBps": device_limits(&res.device_write_bps, "Rate"),
        "BlkioDeviceReadIOps": device_limits(&res.device_read_iops, "Rate"),
        "BlkioDeviceWriteIOps": device_limits(&res.device_write_iops, "Rate"),
        "DeviceCgroupRules": spec.device_cgroup_rules,
        "CgroupParent": spec.cgroup_parent,
        "CgroupnsMode": if spec.cgroupns.is_empty() { "private".to_string() } else { spec.cgroupns.clone() },
    })
}

/// Per-device limits (the agent's `PATH:VALUE`) as docker's inspect shows them:
/// `[{"Path": …, "Rate"|"Weight": …}]`.
fn device_limits(list: &[String], key: &str) -> serde_json::Value {
    list.iter()
        .map(|d| {
            let (path, v) = d.rsplit_once(':').unwrap_or((d.as_str(), "0"));
            let mut m = serde_json::Map::new();
            m.insert("Path".into(), path.into());
            m.insert(key.into(), v.parse::<u64>().unwrap_or(0).into());
            serde_json::Value::Object(m)
        })
        .collect()
}

/// docker's NetworkSettings.Networks: the network the container was created on (none for
/// `container:X`, which has the other's), with a fixed `--ip` as its IPAMConfig.
fn networks_json(c: &pb::ContainerInfo, spec: &pb::ContainerSpec) -> Value {
    let mut m = serde_json::Map::new();
    let net = if spec.network_mode.is_empty() { "bridge" } else { spec.network_mode.as_str() };
    if !net.starts_with("container:") {
        let ipam = (!spec.ip.is_empty()).then(|| json!({ "IPv4Address": spec.ip }));
        m.insert(
            net.to_string(),
            json!({ "IPAMConfig": ipam, "IPAddress": c.ip_address, "MacAddress": spec.mac_address }),
        );
    }
    Value::Object(m)
}

/// A bind mount (the agent's `HOST:CONTAINER[:ro][,PROPAGATION]`) as docker's inspect shows it.
fn bind_json(v: &str) -> serde_json::Value {
    let mut parts = v.splitn(3, ':');
    let (src, dst, opts) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next());
    let opts: Vec<&str> = opts.map(|o| o.split(',').collect()).unwrap_or_default();
    let propagation = opts.iter().find(|o| !matches!(**o, "ro" | "rw")).copied().unwrap_or("rprivate");
    if !src.starts_with('/') {
        // A volume (`NAME:/path`), as docker shows one.
        return serde_json::json!({
            "Type": "volume", "Name": src, "Destination": dst, "Driver": "local", "RW": !opts.contains(&"ro"),
            "Propagation": "",
        });
    }
    serde_json::json!({
        "Type": "bind",
        "Source": src,
        "Destination": dst,
        "RW": !opts.contains(&"ro"),
        "Propagation": propagation,
    })
}

/// Prints `items()` through a `--format` template; false when `format` is not a template.
fn templated(
    format: Format,
    items: impl FnOnce() -> Vec<Value>,
    headers: &[(&str, &str)],
) -> Result<bool, template::Error> {
    match format {
        Format::Template(t) => template::print(t, &items(), headers).map(|()| true),
        _ => Ok(false),
    }
}

/// Prints `ps`.
pub fn containers(list: &[pb::ContainerInfo], quiet: bool, format: Format) -> Result<(), template::Error> {
    let rows = || {
        list.iter()
            .map(|c| fields::ps_row(c, status(c), ago(c.created_at), rfc3339(c.created_at), short_id(&c.id)))
            .collect()
    };
    if !quiet && templated(format, rows, fields::PS_HEADERS)? {
        return Ok(());
    }
    if !ids_or_json(list, quiet, format, |c| &c.id, container_json) {
        let row = |c: &pb::ContainerInfo| {
            let mut cmd = format!("\"{}\"", c.path.join(" "));
            if cmd.len() > 20 {
                cmd = format!("{}…\"", &cmd[..cmd.char_indices().nth(19).map(|(i, _)| i).unwrap_or(cmd.len())]);
            }
            vec![short_id(&c.id), c.image.clone(), cmd, ago(c.created_at), status(c), c.name.clone()]
        };
        print_table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], list.iter().map(row));
    }
    Ok(())
}

pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.3}GB", b / 1e9),
        n if n >= 1 << 20 => format!("{:.3}MB", b / 1e6),
        n if n >= 1 << 10 => format!("{:.3}kB", b / 1e3),
        n => format!("{n}B"),
    }
}

/// An image as JSON.
pub fn image_json(i: &pb::ImageInfo) -> Value {
    let c = i.config.clone().unwrap_or_default();
    json!({
        "Id": i.id,
        "RepoTags": i.tags,
        "RepoDigests": if i.digest.is_empty() { vec![] } else { vec![i.digest.clone()] },
        "Created": rfc3339(i.created_at),
        "Size": i.size,
        "Architecture": i.architecture,
        "Os": i.os,
        "Config": { "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint, "WorkingDir": c.working_dir, "User": c.user, "Labels": c.labels, "StopSignal": c.stop_signal, "ExposedPorts": c.exposed_ports, "Healthcheck": c.healthcheck.as_ref().map(health_config_json) },
        "RootFS": { "Type": "layers", "Layers": i.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
    })
}

/// Prints `images`: a row for each tag.
pub fn images(list: &[pb::ImageInfo], quiet: bool, format: Format) -> Result<(), template::Error> {
    let rows = || {
        list.iter()
            .flat_map(|i| {
                fields::image_rows(i, short_id(&i.id), ago(i.created_at), rfc3339(i.created_at), human(i.size))
            })
            .collect()
    };
    if !quiet && templated(format, rows, fields::IMAGE_HEADERS)? {
        return Ok(());
    }
    if !ids_or_json(list, quiet, format, |i| &i.id, image_json) {
        let rows = list.iter().flat_map(|i| {
            let tags = if i.tags.is_empty() { vec!["<none>:<none>".to_string()] } else { i.tags.clone() };
            tags.into_iter().map(move |t| {
                let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
                vec![repo.to_string(), tag.to_string(), short_id(&i.id), ago(i.created_at), human(i.size)]
            })
        });
        print_table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows);
    }
    Ok(())
}

/// Prints `info`.
pub fn info(i: &pb::InfoResponse, format: Format) -> crate::error::Res<()> {
    if format != Format::Table {
        let v = json!({
            "Instance": i.instance, "Root": i.root, "RunDir": i.run_dir,
            "Containers": i.containers, "ContainersRunning": i.containers_running, "ContainersStopped": i.containers_stopped,
            "Images": i.images, "StorageDriver": i.storage_driver, "CgroupLayout": i.cgroup_layout,
            "CgroupControllers": i.cgroup_controllers.iter().map(|c| json!({"Name": c.name, "MountPoint": c.mount_point})).collect::<Vec<_>>(),
            "NCPU": i.cpus, "MemTotal": i.memory_bytes, "KernelVersion": i.kernel, "Name": i.hostname,
            "Capacity": {"CPUs": i.capacity_cpus, "Memory": i.capacity_memory},
            "Allocatable": {"CPUs": i.allocatable_cpus, "Memory": i.allocatable_memory},
            "Allocated": {"CPUs": i.allocated_cpus, "Memory": i.allocated_memory},
            "RootFreeBytes": i.root_free_bytes, "RootFull": i.root_full, "ExitsPending": i.exits_pending,
        });
        if templated(format, || vec![v.clone()], &[])? {
            return Ok(());
        }
        return Ok(print_json(&v)?);
    }
    println!("Instance: {}\nRoot Dir: {}\nRun Dir: {}", i.instance, i.root, i.run_dir);
    println!(
        "Containers: {}\n Running: {}\n Stopped: {}\nImages: {}",
        i.containers, i.containers_running, i.containers_stopped, i.images
    );
    println!("Storage Driver: {}\nCgroup Layout: {}\nCgroup Controllers:", i.storage_driver, i.cgroup_layout);
    for c in &i.cgroup_controllers {
        println!(" {:<14}{}", c.name, c.mount_point);
    }
    println!(
        "Kernel Version: {}\nCPUs: {}\nTotal Memory: {}\nName: {}",
        i.kernel,
        i.cpus,
        human(i.memory_bytes),
        i.hostname
    );
    println!(
        "Capacity: {:.2} CPUs, {}\nAllocatable: {:.2} CPUs, {}\nAllocated: {:.2} CPUs, {}",
        i.capacity_cpus,
        human(i.capacity_memory),
        i.allocatable_cpus,
        human(i.allocatable_memory),
        i.allocated_cpus,
        human(i.allocated_memory)
    );
    println!("Root Free: {}", human(i.root_free_bytes));
    if i.root_full {
        println!("WARNING: the root {} is full ({} free)", i.root, human(i.root_free_bytes));
    }
    if i.exits_pending > 0 {
        println!("WARNING: {} container exits wait for the store to accept them", i.exits_pending);
    }
    Ok(())
}

/// Prints a `stats` sample; `prev` keeps the last (cpu, system) counters per container
/// for CPU % between samples, like docker.
pub fn stats(
    list: &[pb::ContainerStats],
    prev: &mut HashMap<String, (u64, u64)>,
    format: Format,
) -> Result<(), template::Error> {
    let mut rows = Vec::new();
    for s in list {
        let (pc, ps) = prev.get(&s.id).copied().unwrap_or((0, 0));
        let dc = s.cpu_usage_ns.saturating_sub(pc) as f64;
        let ds = s.system_cpu_ns.saturating_sub(ps) as f64;
        let cpu = if pc > 0 && ds > 0.0 { dc / ds * s.online_cpus as f64 * 100.0 } else { 0.0 };
        prev.insert(s.id.clone(), (s.cpu_usage_ns, s.system_cpu_ns));
        let mem_pct = if s.memory_limit > 0 { s.memory_usage as f64 / s.memory_limit as f64 * 100.0 } else { 0.0 };
        rows.push((s, cpu, mem_pct));
    }
    if format != Format::Table {
        let js = rows.into_iter().map(|(s, cpu, mem)| {
            json!({"ID": s.id, "Container": short_id(&s.id), "Name": s.name, "CPUPerc": cpu, "CPUNanos": s.cpu_usage_ns, "ThrottledPeriods": s.throttled_periods,
                "ThrottledNanos": s.throttled_ns, "MemUsage": s.memory_usage, "MemLimit": s.memory_limit, "MemCache": s.memory_cache,
                "MemPerc": mem, "PIDs": s.pids, "PIDsLimit": s.pids_limit, "BlockRead": s.blkio_read_bytes, "BlockWrite": s.blkio_write_bytes})
        });
        let js: Vec<Value> = js.collect();
        if !templated(format, || js.clone(), &[("ID", "CONTAINER ID"), ("PIDs", "PIDS")])? {
            print_json_lines(js);
        }
        return Ok(());
    }
    let rows = rows.into_iter().map(|(s, cpu, mem)| {
        vec![
            short_id(&s.id),
            s.name.clone(),
            format!("{cpu:.2}%"),
            format!("{} / {}", human(s.memory_usage), human(s.memory_limit)),
            format!("{mem:.2}%"),
            format!("{} / {}", human(s.blkio_read_bytes), human(s.blkio_write_bytes)),
            s.pids.to_string(),
        ]
    });
    print_table(&["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O", "PIDS"], rows);
    Ok(())
}

/// Prints one event like `docker events`.
pub fn event(e: &pb::Event, format: Format) -> Result<(), template::Error> {
    if format != Format::Table {
        let v = json!({"seq": e.seq, "time": e.time, "Type": e.r#type, "Action": e.action, "ID": e.id, "Name": e.name, "Attributes": e.attributes,
            "Actor": {"ID": e.id, "Attributes": e.attributes}, "Status": e.action, "TimeNano": e.time});
        if !templated(format, || vec![v.clone()], &[])? {
            println!("{v}");
        }
        return Ok(());
    }
    let mut attrs: Vec<String> = e.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attrs.sort();
    attrs.push(format!("name={}", e.name));
    println!("{} #{} {} {} {} ({})", rfc3339(e.time), e.seq, e.r#type, e.action, e.id, attrs.join(", "));
    Ok(())
}

/// Prints `image history`.
pub fn history(entries: &[pb::HistoryEntry], format: Format) -> Result<(), template::Error> {
    if format != Format::Table {
        let js: Vec<Value> = entries.iter().map(|e| {
            json!({"CreatedBy": e.created_by, "Created": e.created_at, "CreatedSince": ago(e.created_at), "EmptyLayer": e.empty_layer, "DiffID": e.diff_id, "Size": e.size, "SharedWith": e.shared_with})
        }).collect();
        if !templated(format, || js.clone(), &[("CreatedSince", "CREATED"), ("CreatedBy", "CREATED BY")])? {
            print_json_lines(js);
        }
        return Ok(());
    }
    let rows = entries.iter().map(|e| {
        let by: String = e.created_by.chars().take(46).collect();
        vec![ago(e.created_at), human(e.size), by, e.shared_with.join(", ")]
    });
    print_table(&["CREATED", "SIZE", "CREATED BY", "SHARED WITH"], rows);
    Ok(())
}

/// Prints `system df`.
pub fn disk_usage(u: &pb::DiskUsageResponse, vols: &[pb::VolumeInfo], format: Format) -> Result<(), template::Error> {
    let vol_bytes: u64 = vols.iter().map(|v| v.size.max(0) as u64).sum();
    let vol_unused: u64 = vols.iter().filter(|v| v.containers.is_empty()).map(|v| v.size.max(0) as u64).sum();
    if format != Format::Table {
        let v = json!({"Images": u.images, "Layers": u.layers, "LayersSize": u.layers_bytes, "SharedSize": u.shared_bytes,
            "UniqueSize": u.unique_bytes, "SizeWithoutSharing": u.images_bytes_naive, "Containers": u.containers,
            "ContainersSize": u.containers_bytes, "Reclaimable": u.reclaimable_bytes,
            "Volumes": vols.len(), "VolumesSize": vol_bytes, "VolumesReclaimable": vol_unused});
        if !templated(format, || vec![v.clone()], &[])? {
            println!("{v}");
        }
        return Ok(());
    }
    let images = vec![
        "Images".to_string(),
        u.images.to_string(),
        human(u.layers_bytes),
        human(u.shared_bytes),
        human(u.unique_bytes),
        human(u.reclaimable_bytes),
    ];
    let containers = vec!["Containers".to_string(), u.containers.to_string(), human(u.containers_bytes)];
    let volumes = vec![
        "Local Volumes".to_string(),
        vols.len().to_string(),
        human(vol_bytes),
        String::new(),
        String::new(),
        human(vol_unused),
    ];
    print_table(&["TYPE", "TOTAL", "SIZE", "SHARED", "UNIQUE", "RECLAIMABLE"], [images, containers, volumes]);
    println!("(without sharing, the images would take {})", human(u.images_bytes_naive));
    Ok(())
}

/// Prints `volume ls`.
pub fn volumes(list: &[pb::VolumeInfo]) {
    print_table(&["DRIVER", "VOLUME NAME"], list.iter().map(|v| vec![v.driver.clone(), v.name.clone()]));
}

/// Prints `group ls`.
pub fn groups(list: &[pb::GroupInfo]) {
    let rows = list.iter().map(|g| {
        let r = g.resources.clone().unwrap_or_default();
        vec![g.name.clone(), format!("{:.2}", r.cpus), r.memory.to_string(), g.members.len().to_string()]
    });
    print_table(&["NAME", "CPUS", "MEMORY", "MEMBERS"], rows);
}

/// A group as JSON.
pub fn group_json(g: &pb::GroupInfo) -> Value {
    let r = g.resources.clone().unwrap_or_default();
    json!({
        "Name": g.name, "Members": g.members, "Labels": g.labels, "CgroupPath": g.cgroup,
        "Resources": {"NanoCpus": (r.cpus * 1e9) as i64, "Memory": r.memory, "MemorySwap": r.memory_swap, "PidsLimit": r.pids_limit, "CpusetCpus": r.cpuset_cpus},
    })
}

/// Prints `network ls`.
pub fn networks(list: &[pb::NetworkInfo], quiet: bool, format: Format) -> Result<(), template::Error> {
    if quiet {
        list.iter().for_each(|n| println!("{}", n.name));
        return Ok(());
    }
    let js = || {
        list.iter()
            .map(|n| {
                let mut v = network_json(n);
                v["ID"] = json!(n.name);
                v["Driver"] = json!("bridge");
                v["Scope"] = json!("local");
                v
            })
            .collect()
    };
    if templated(format, js, &[("ID", "NETWORK ID")])? {
        return Ok(());
    }
    if format == Format::Json {
        print_json_lines(list.iter().map(network_json));
        return Ok(());
    }
    let rows = list
        .iter()
        .map(|n| vec![n.name.clone(), n.subnet.clone(), n.internal.to_string(), n.containers.len().to_string()]);
    print_table(&["NAME", "SUBNET", "INTERNAL", "CONTAINERS"], rows);
    Ok(())
}

/// A network as JSON.
pub fn network_json(n: &pb::NetworkInfo) -> Value {
    json!({
        "Name": n.name, "Subnet": n.subnet, "Gateway": n.gateway, "Internal": n.internal,
        "Bridge": n.bridge, "Labels": n.labels, "Containers": n.containers,
    })
}

/// Prints `context ls`: `default` (the local socket) first, the current one marked.
pub fn contexts(cfg: &CtlConfig) {
    let cur = cfg.current.as_deref().unwrap_or("default");
    let mark = |n: &str| if n == cur { format!("{n} *") } else { n.to_string() };
    let mut rows = vec![vec![mark("default"), "the local socket".into(), agent_proto::DEFAULT_HOST.into(), "".into()]];
    for (n, c) in &cfg.contexts {
        let tls = if c.tlscert.is_some() { "mutual" } else { "" };
        rows.push(vec![mark(n), c.description.clone(), c.host.clone(), tls.into()]);
    }
    print_table(&["NAME", "DESCRIPTION", "HOST", "TLS"], rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_look_like_dockers() {
        let t = table(
            &["NAME", "SUBNET", "INTERNAL", "CONTAINERS"],
            [
                vec!["bridge", "10.88.0.0/16", "false", "2"],
                vec!["a-rather-long-network-name", "10.89.0.0/24", "true", "0"],
            ],
        );
        assert_eq!(
            t,
            "NAME                         SUBNET         INTERNAL   CONTAINERS\n\
             bridge                       10.88.0.0/16   false      2\n\
             a-rather-long-network-name   10.89.0.0/24   true       0"
        );
        // Short columns are ten wide; a short row leaves its last cells empty; no trailing spaces.
        let t = table(&["TYPE", "TOTAL", "SIZE"], [vec!["Images", "1", "2B"], vec!["C", "0"]]);
        assert_eq!(t, "TYPE      TOTAL     SIZE\nImages    1         2B\nC         0");
        assert_eq!(table(&["CONTAINER ID", "NAMES"], Vec::<Vec<String>>::new()), "CONTAINER ID   NAMES");
    }

    #[test]
    fn ids_are_shortened_like_dockers() {
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_id("abc"), "abc");
    }
}
