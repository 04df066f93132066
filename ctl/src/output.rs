//! Tables and JSON for people and scripts, shaped like docker's output.

use agent_proto::v1 as pb;
use serde_json::{json, Value};

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

fn state_name(s: i32) -> &'static str {
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
        "running" => format!("Up {}", ago(c.started_at).trim_end_matches(" ago")),
        "exited" => format!("Exited ({}) {}", c.exit_code, ago(c.finished_at)),
        "created" => "Created".into(),
        s => s.to_string(),
    }
}

fn check_format(format: &str) -> anyhow::Result<()> {
    match format {
        "table" | "json" => Ok(()),
        f => anyhow::bail!("invalid --format {f:?}: use table or json"),
    }
}

/// A container as JSON (docker inspect's main fields).
pub fn container_json(c: &pb::ContainerInfo) -> Value {
    let spec = c.spec.clone().unwrap_or_default();
    let res = spec.resources.clone().unwrap_or_default();
    json!({
        "Id": c.id,
        "Name": c.name,
        "Image": c.image,
        "ImageID": c.image_id,
        "Created": rfc3339(c.created_at),
        "Path": c.path.first().cloned().unwrap_or_default(),
        "Args": c.path.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state_name(c.state),
            "Running": state_name(c.state) == "running",
            "Pid": c.pid,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "OOMKilled": c.oom_killed,
            "StartedAt": rfc3339(c.started_at),
            "FinishedAt": rfc3339(c.finished_at),
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
        },
        "HostConfig": {
            "NetworkMode": if spec.network_mode.is_empty() { "none".to_string() } else { spec.network_mode },
            "AutoRemove": spec.auto_remove,
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
            "UsernsMode": if c.uid_map.is_empty() { "host".to_string() } else if spec.userns.is_empty() { "remap".to_string() } else { spec.userns.clone() },
        },
        "IDMappings": {
            "UidMap": c.uid_map.iter().map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size)).collect::<Vec<_>>(),
            "GidMap": c.gid_map.iter().map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size)).collect::<Vec<_>>(),
        },
        "GraphDriver": { "Name": "overlay", "Data": { "UpperDir": c.rootfs } },
        "CgroupPath": c.cgroup,
        "NetworkSettings": { "IPAddress": c.ip_address, "Ports": spec.ports },
    })
}

/// Prints `ps`.
pub fn containers(list: &[pb::ContainerInfo], quiet: bool, format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    if quiet {
        for c in list {
            println!("{}", &c.id[..12.min(c.id.len())]);
        }
        return Ok(());
    }
    if format == "json" {
        for c in list {
            println!("{}", container_json(c));
        }
        return Ok(());
    }
    println!("{:<14}{:<24}{:<24}{:<24}{:<28}NAMES", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS");
    for c in list {
        let mut cmd = format!("\"{}\"", c.path.join(" "));
        if cmd.len() > 20 {
            cmd = format!("{}…\"", &cmd[..cmd.char_indices().nth(19).map(|(i, _)| i).unwrap_or(cmd.len())]);
        }
        println!(
            "{:<14}{:<24}{:<24}{:<24}{:<28}{}",
            &c.id[..12.min(c.id.len())],
            c.image,
            cmd,
            ago(c.created_at),
            status(c),
            c.name
        );
    }
    Ok(())
}

fn human(bytes: u64) -> String {
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
        "Config": { "Env": c.env, "Cmd": c.cmd, "Entrypoint": c.entrypoint, "WorkingDir": c.working_dir, "User": c.user, "Labels": c.labels, "StopSignal": c.stop_signal, "ExposedPorts": c.exposed_ports },
        "RootFS": { "Type": "layers", "Layers": i.layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
    })
}

/// Prints `images`.
pub fn images(list: &[pb::ImageInfo], quiet: bool, format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    let short = |id: &str| id.trim_start_matches("sha256:").chars().take(12).collect::<String>();
    if quiet {
        for i in list {
            println!("{}", short(&i.id));
        }
        return Ok(());
    }
    if format == "json" {
        for i in list {
            println!("{}", image_json(i));
        }
        return Ok(());
    }
    println!("{:<40}{:<16}{:<16}{:<24}SIZE", "REPOSITORY", "TAG", "IMAGE ID", "CREATED");
    for i in list {
        let tags = if i.tags.is_empty() { vec!["<none>:<none>".to_string()] } else { i.tags.clone() };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            println!("{:<40}{:<16}{:<16}{:<24}{}", repo, tag, short(&i.id), ago(i.created_at), human(i.size));
        }
    }
    Ok(())
}

/// Prints `info`.
pub fn info(i: &pb::InfoResponse, format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    if format == "json" {
        let v = json!({
            "Instance": i.instance, "Root": i.root, "RunDir": i.run_dir,
            "Containers": i.containers, "ContainersRunning": i.containers_running, "ContainersStopped": i.containers_stopped,
            "Images": i.images, "StorageDriver": i.storage_driver, "CgroupLayout": i.cgroup_layout,
            "CgroupControllers": i.cgroup_controllers.iter().map(|c| json!({"Name": c.name, "MountPoint": c.mount_point})).collect::<Vec<_>>(),
            "NCPU": i.cpus, "MemTotal": i.memory_bytes, "KernelVersion": i.kernel, "Name": i.hostname,
            "Capacity": {"CPUs": i.capacity_cpus, "Memory": i.capacity_memory},
            "Allocatable": {"CPUs": i.allocatable_cpus, "Memory": i.allocatable_memory},
            "Allocated": {"CPUs": i.allocated_cpus, "Memory": i.allocated_memory},
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
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
    Ok(())
}

/// Prints a `stats` sample; `prev` keeps the last (cpu, system) counters per container
/// for CPU % between samples, like docker.
pub fn stats(
    list: &[pb::ContainerStats],
    prev: &mut std::collections::HashMap<String, (u64, u64)>,
    format: &str,
) -> anyhow::Result<()> {
    check_format(format)?;
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
    if format == "json" {
        for (s, cpu, mem) in rows {
            println!(
                "{}",
                json!({"ID": s.id, "Name": s.name, "CPUPerc": cpu, "CPUNanos": s.cpu_usage_ns, "ThrottledPeriods": s.throttled_periods,
                    "ThrottledNanos": s.throttled_ns, "MemUsage": s.memory_usage, "MemLimit": s.memory_limit, "MemCache": s.memory_cache,
                    "MemPerc": mem, "PIDs": s.pids, "PIDsLimit": s.pids_limit, "BlockRead": s.blkio_read_bytes, "BlockWrite": s.blkio_write_bytes})
            );
        }
        return Ok(());
    }
    println!(
        "{:<14}{:<20}{:<9}{:<26}{:<8}{:<22}PIDS",
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "BLOCK I/O"
    );
    for (s, cpu, mem) in rows {
        println!(
            "{:<14}{:<20}{:<9}{:<26}{:<8}{:<22}{}",
            &s.id[..12.min(s.id.len())],
            s.name,
            format!("{cpu:.2}%"),
            format!("{} / {}", human(s.memory_usage), human(s.memory_limit)),
            format!("{mem:.2}%"),
            format!("{} / {}", human(s.blkio_read_bytes), human(s.blkio_write_bytes)),
            s.pids
        );
    }
    Ok(())
}

/// Prints one event like `docker events`.
pub fn event(e: &pb::Event, format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    if format == "json" {
        println!(
            "{}",
            json!({"seq": e.seq, "time": e.time, "Type": e.r#type, "Action": e.action, "ID": e.id, "Name": e.name, "Attributes": e.attributes})
        );
        return Ok(());
    }
    let mut attrs: Vec<String> = e.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    attrs.sort();
    attrs.push(format!("name={}", e.name));
    println!("{} #{} {} {} {} ({})", rfc3339(e.time), e.seq, e.r#type, e.action, e.id, attrs.join(", "));
    Ok(())
}

/// Prints `image history`.
pub fn history(entries: &[pb::HistoryEntry], format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    if format == "json" {
        for e in entries {
            println!(
                "{}",
                json!({"CreatedBy": e.created_by, "Created": e.created_at, "EmptyLayer": e.empty_layer, "DiffID": e.diff_id, "Size": e.size, "SharedWith": e.shared_with})
            );
        }
        return Ok(());
    }
    println!("{:<24}{:<12}{:<48}SHARED WITH", "CREATED", "SIZE", "CREATED BY");
    for e in entries {
        let by: String = e.created_by.chars().take(46).collect();
        println!("{:<24}{:<12}{:<48}{}", ago(e.created_at), human(e.size), by, e.shared_with.join(", "));
    }
    Ok(())
}

/// Prints `system df`.
pub fn disk_usage(u: &pb::DiskUsageResponse, format: &str) -> anyhow::Result<()> {
    check_format(format)?;
    if format == "json" {
        println!(
            "{}",
            json!({"Images": u.images, "Layers": u.layers, "LayersSize": u.layers_bytes, "SharedSize": u.shared_bytes,
            "UniqueSize": u.unique_bytes, "SizeWithoutSharing": u.images_bytes_naive, "Containers": u.containers,
            "ContainersSize": u.containers_bytes, "Reclaimable": u.reclaimable_bytes})
        );
        return Ok(());
    }
    println!("{:<14}{:<8}{:<14}{:<14}{:<14}RECLAIMABLE", "TYPE", "TOTAL", "SIZE", "SHARED", "UNIQUE");
    println!(
        "{:<14}{:<8}{:<14}{:<14}{:<14}{}",
        "Images",
        u.images,
        human(u.layers_bytes),
        human(u.shared_bytes),
        human(u.unique_bytes),
        human(u.reclaimable_bytes)
    );
    println!("{:<14}{:<8}{}", "Containers", u.containers, human(u.containers_bytes));
    println!("(without sharing, the images would take {})", human(u.images_bytes_naive));
    Ok(())
}

/// Prints rows as left-aligned columns, three spaces apart (the first row is the header).
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..cols).map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}
