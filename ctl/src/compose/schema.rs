//! The subset of the Compose Specification that maps onto the agent, read from the
//! interpolated tree key by key: a key outside it is an error naming the key and its line
//! (a Compose key agentctl does not do is told apart from a typo).

use super::interpolate::{self, Vars};
use super::model::{Condition, Health, Resources, Service};
use super::yaml::{Error, Known, Node, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Every key of a service in the Compose Specification.
const SERVICE_KEYS: Known = Known {
    compose: &[
        "annotations",
        "attach",
        "blkio_config",
        "build",
        "cgroup",
        "cgroup_parent",
        "command",
        "configs",
        "container_name",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "credential_spec",
        "depends_on",
        "deploy",
        "develop",
        "device_cgroup_rules",
        "devices",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "driver_opts",
        "entrypoint",
        "env_file",
        "environment",
        "expose",
        "extends",
        "external_links",
        "extra_hosts",
        "gpus",
        "group_add",
        "healthcheck",
        "hostname",
        "image",
        "init",
        "ipc",
        "isolation",
        "label_file",
        "labels",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "network_mode",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "pids_limit",
        "platform",
        "ports",
        "post_start",
        "pre_stop",
        "privileged",
        "profiles",
        "provider",
        "pull_policy",
        "read_only",
        "restart",
        "runtime",
        "scale",
        "secrets",
        "security_opt",
        "shm_size",
        "stdin_open",
        "stop_grace_period",
        "stop_signal",
        "storage_opt",
        "sysctls",
        "tmpfs",
        "tty",
        "ulimits",
        "use_api_socket",
        "user",
        "userns_mode",
        "uts",
        "volumes",
        "volumes_from",
        "working_dir",
    ],
};

/// What reading a service needs besides its node: where relative paths start, and the variables.
pub struct Ctx<'a> {
    pub dir: &'a Path,
    pub vars: &'a mut Vars,
}

/// Reads one service.
pub fn service(n: &Node, cx: &mut Ctx) -> Result<Service> {
    let mut s = Service::default();
    let (mut env_files, mut environment) = (None, None);
    let mut top = Resources::default();
    let mut deploy = None;
    n.keys(
        |k, v| {
            match k {
                "image" => s.image = v.str()?,
                "command" => s.command = Some(words(v)?),
                "entrypoint" => s.entrypoint = Some(words(v)?),
                "environment" => environment = Some(v),
                "env_file" => env_files = Some(v),
                "ports" => s.ports = v.seq()?.iter().map(port).collect::<Result<_>>()?,
                "networks" => s.networks = super::networks::of_service(v)?,
                "network_mode" => {
                    let m = v.str()?;
                    let ok = matches!(m.as_str(), "host" | "none" | "bridge")
                        || m.strip_prefix("service:")
                            .or_else(|| m.strip_prefix("container:"))
                            .is_some_and(|n| !n.is_empty());
                    if !ok {
                        return Err(v.err(format!(
                            "invalid network_mode {m:?}: host, none, bridge, service:NAME or container:NAME"
                        )));
                    }
                    if let Some(dep) = m.strip_prefix("service:") {
                        // Its namespace must exist first, as compose orders it.
                        s.depends_on.entry(dep.to_string()).or_insert(Condition::Started);
                    }
                    s.network_mode = Some(m);
                }
                "volumes" => {
                    for m in v.seq()? {
                        match volume(m, cx)? {
                            crate::mounts::Mount::Volume(x) => s.volumes.push(x),
                            crate::mounts::Mount::Tmpfs(x) => s.tmpfs.push(x),
                            // A named volume: the agent makes it on first use.
                            crate::mounts::Mount::Named { volume, .. } => s.volumes.push(volume),
                        }
                    }
                }
                "tmpfs" => s.tmpfs.extend(v.strings()?),
                "restart" => s.restart = Some(restart(v)?),
                "healthcheck" => s.healthcheck = Some(healthcheck(v)?),
                "deploy" => deploy = Some(deploy_resources(v)?),
                "cpus" => top.cpus = Some(v.float()?),
                "mem_limit" => top.memory = Some(size(v)?),
                "mem_reservation" => top.memory_reservation = Some(size(v)?),
                "pids_limit" => top.pids = Some(v.int()?),
                "sysctls" => {
                    for (key, val) in v.list_or_dict('=')? {
                        let val = val.ok_or_else(|| v.err(format!("sysctl {key:?} needs a value")))?;
                        s.sysctls.insert(key, val);
                    }
                }
                "cap_add" => s.cap_add = v.string_list()?,
                "cap_drop" => s.cap_drop = v.string_list()?,
                "read_only" => s.read_only = v.bool()?,
                "user" => s.user = Some(v.str()?),
                "working_dir" => s.working_dir = Some(v.str()?),
                "hostname" => s.hostname = Some(v.str()?),
                "labels" => {
                    s.labels = v.list_or_dict('=')?.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect()
                }
                "depends_on" => {
                    let (deps, optional) = depends_on(v)?;
                    s.depends_on.extend(deps);
                    s.optional_deps = optional;
                }
                "container_name" => s.container_name = Some(v.str()?),
                "init" => s.init = v.bool()?,
                "tty" => s.tty = v.bool()?,
                "stdin_open" => s.stdin_open = v.bool()?,
                "dns" => s.dns = v.strings()?,
                "extra_hosts" => s.extra_hosts = extra_hosts(v)?,
                "stop_grace_period" => s.stop_grace_period = Some(seconds(v)?),
                "logging" => s.logging = Some(logging(v)?),
                _ => return Ok(false),
            }
            Ok(true)
        },
        &SERVICE_KEYS,
    )?;
    if s.image.is_empty() {
        return Err(n.err("a service needs an image (build is not supported)"));
    }
    s.resources = merge_resources(n, top, deploy)?;
    if let Some(f) = env_files {
        for (path, required, at) in env_file_list(f)? {
            let p = absolute(cx.dir, &path);
            let text = match std::fs::read_to_string(&p) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => return Err(at.err(format!("env file {}: {e}", p.display()))),
            };
            for (k, v) in interpolate::dotenv(&text, cx.vars).map_err(|e| at.err(format!("{}: {e}", p.display())))? {
                s.environment.insert(k, v);
            }
        }
    }
    if let Some(e) = environment {
        for (k, v) in e.list_or_dict('=')? {
            match v.or_else(|| cx.vars.get(&k).map(str::to_string)) {
                Some(v) => s.environment.insert(k, v),
                // A name without a value that is not set here is left out, as compose does.
                None => s.environment.remove(&k),
            };
        }
    }
    Ok(s)
}

/// `logging: {driver: json-file, options: {max-size: 10m}}`.
fn logging(v: &Node) -> Result<super::model::Logging> {
    let mut l = super::model::Logging::default();
    v.keys(
        |k, x| {
            match k {
                "driver" => l.driver = Some(x.str()?),
                "options" => {
                    for (key, val) in x.list_or_dict('=')? {
                        let val = val.ok_or_else(|| x.err(format!("logging option {key:?} needs a value")))?;
                        l.options.insert(key, val);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known { compose: &[] },
    )?;
    Ok(l)
}

/// `command`/`entrypoint`: a list as is, a string split like a shell would.
fn words(v: &Node) -> Result<Vec<String>> {
    match v.seq() {
        Ok(items) => items.iter().map(Node::str).collect(),
        Err(_) => {
            let line = v.str()?;
            shlex::split(&line).ok_or_else(|| v.err(format!("cannot split {line:?} into words (unbalanced quotes?)")))
        }
    }
}

/// A port in the agent's `-p` form: the short syntax is docker's; the long one is rebuilt.
fn port(v: &Node) -> Result<String> {
    if !matches!(v.v, super::yaml::Value::Map(_)) {
        return v.str();
    }
    let (mut target, mut published, mut host_ip, mut proto) = (None, None, None, None);
    v.keys(
        |k, x| {
            match k {
                "target" => target = Some(x.int()?),
                "published" => published = Some(x.str()?),
                "host_ip" => host_ip = Some(x.str()?),
                "protocol" => proto = Some(x.str()?),
                "mode" if x.str()? == "host" || x.str()? == "ingress" => {}
                "name" | "app_protocol" => {}
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known { compose: &["mode"] },
    )?;
    let target = target.ok_or_else(|| v.err("a port needs a target"))?;
    let mut out = String::new();
    if let Some(ip) = host_ip {
        out.push_str(&format!("{ip}:"));
    }
    match published {
        Some(p) => out.push_str(&format!("{p}:{target}")),
        None if out.is_empty() => out.push_str(&target.to_string()),
        None => out.push_str(&format!(":{target}")),
    }
    if let Some(p) = proto {
        out.push_str(&format!("/{p}"));
    }
    Ok(out)
}

/// A volume: a bind (short `SRC:DST[:MODE]` with SRC a path, or long `type: bind`) or a
/// tmpfs (long `type: tmpfs`); named and anonymous volumes are not supported.
fn volume(v: &Node, cx: &Ctx) -> Result<crate::mounts::Mount> {
    let mount = if matches!(v.v, super::yaml::Value::Map(_)) {
        long_volume(v, cx)?
    } else {
        let s = v.str()?;
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [src, dst] => (*src, *dst, None),
            [src, dst, mode] => (*src, *dst, Some(*mode)),
            _ => {
                return Err(v.err(format!(
                    "{s:?}: named and anonymous volumes are not supported (use SOURCE:TARGET with a host path)"
                )))
            }
        };
        if !(src.starts_with('/') || src.starts_with('.') || src.starts_with('~')) {
            return Err(
                v.err(format!("{s:?}: named volume {src:?} is not supported (bind a host path: ./{src} or /{src})"))
            );
        }
        let mut m = format!("type=bind,source={},target={dst}", absolute(cx.dir, src).display());
        for opt in mode.into_iter().flat_map(|m| m.split(',')) {
            match opt {
                "ro" => m.push_str(",readonly"),
                "rw" => {}
                p => m.push_str(&format!(",bind-propagation={p}")),
            }
        }
        m
    };
    crate::mounts::parse(&mount).map_err(|e| v.err(e))
}

/// The long syntax, as the `--mount` string it means.
fn long_volume(v: &Node, cx: &Ctx) -> Result<String> {
    let (mut kind, mut src, mut dst, mut ro, mut extra) = (String::new(), None, None, false, Vec::new());
    v.keys(
        |k, x| {
            match k {
                "type" => kind = x.str()?,
                "source" => src = Some(x.str()?),
                "target" => dst = Some(x.str()?),
                "read_only" => ro = x.bool()?,
                "consistency" => {}
                "bind" => x.keys(
                    |k, y| {
                        match k {
                            "propagation" => extra.push(format!("bind-propagation={}", y.str()?)),
                            "create_host_path" => {}
                            _ => return Ok(false),
                        }
                        Ok(true)
                    },
                    &Known { compose: &["selinux", "recursive"] },
                )?,
                "tmpfs" => x.keys(
                    |k, y| {
                        match k {
                            "size" => extra.push(format!("tmpfs-size={}", y.str()?)),
                            "mode" => extra.push(format!("tmpfs-mode={}", y.str()?)),
                            _ => return Ok(false),
                        }
                        Ok(true)
                    },
                    &Known { compose: &[] },
                )?,
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known { compose: &["volume", "image"] },
    )?;
    let dst = dst.ok_or_else(|| v.err("a volume needs a target"))?;
    let mut m = match kind.as_str() {
        "bind" => {
            let src = src.ok_or_else(|| v.err("a bind needs a source"))?;
            format!("type=bind,source={},target={dst}", absolute(cx.dir, &src).display())
        }
        "tmpfs" => format!("type=tmpfs,target={dst}"),
        t => return Err(v.err(format!("volume type {t:?} is not supported (bind or tmpfs)"))),
    };
    if ro {
        m.push_str(",readonly");
    }
    for e in extra {
        m.push_str(&format!(",{e}"));
    }
    Ok(m)
}

/// A path of the file made absolute against the project's directory (`~` is $HOME).
pub fn absolute(dir: &Path, p: &str) -> std::path::PathBuf {
    if let Some(rest) = p.strip_prefix("~/").or(if p == "~" { Some("") } else { None }) {
        return Path::new(&std::env::var("HOME").unwrap_or_else(|_| "/".into())).join(rest);
    }
    let joined = dir.join(p);
    // Lexically: `./a/../b` is `b` (the path need not exist yet).
    let mut out = std::path::PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            o => out.push(o),
        }
    }
    out
}

fn restart(v: &Node) -> Result<String> {
    let r = v.str()?;
    let ok = match r.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        None => matches!(r.as_str(), "no" | "always" | "on-failure" | "unless-stopped"),
        _ => false,
    };
    if !ok {
        return Err(v.err(format!("invalid restart policy {r:?}: no, always, on-failure[:N] or unless-stopped")));
    }
    Ok(r)
}

fn healthcheck(v: &Node) -> Result<Health> {
    let (mut test, mut disable) = (None, false);
    let (mut interval, mut timeout, mut start_period, mut retries) = (None, None, None, None);
    let mut start_interval = None;
    v.keys(
        |k, x| {
            match k {
                "test" => {
                    test = Some(match x.seq() {
                        Ok(items) => items.iter().map(Node::str).collect::<Result<Vec<_>>>()?,
                        Err(_) => vec!["CMD-SHELL".to_string(), x.str()?],
                    })
                }
                "disable" => disable = x.bool()?,
                "interval" => interval = Some(duration(x)?),
                "timeout" => timeout = Some(duration(x)?),
                "start_period" => start_period = Some(duration(x)?),
                "start_interval" => start_interval = Some(duration(x)?),
                "retries" => retries = Some(u32::try_from(x.int()?).map_err(|_| x.err("retries must be 0 or more"))?),
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known { compose: &[] },
    )?;
    let test = test.unwrap_or_default();
    if disable || test.first().map(String::as_str) == Some("NONE") {
        return Ok(Health::Disabled);
    }
    match test.first().map(String::as_str) {
        None | Some("CMD") | Some("CMD-SHELL") => {}
        Some(o) => return Err(v.err(format!("test must start with CMD, CMD-SHELL or NONE, not {o:?}"))),
    }
    if test.len() == 1 {
        return Err(v.err(format!("test {:?} has no command", test[0])));
    }
    Ok(Health::Check { test, interval, timeout, start_period, start_interval, retries })
}

/// A compose duration (`1m30s`, `500ms`), kept as written once it parses.
fn duration(v: &Node) -> Result<String> {
    let s = v.str()?;
    humantime::parse_duration(&s).map_err(|e| v.err(format!("invalid duration {s:?}: {e}")))?;
    Ok(s)
}

fn seconds(v: &Node) -> Result<u32> {
    let s = v.str()?;
    let d = humantime::parse_duration(&s).map_err(|e| v.err(format!("invalid duration {s:?}: {e}")))?;
    u32::try_from(d.as_secs()).map_err(|_| v.err(format!("{s:?} is too long")))
}

fn size(v: &Node) -> Result<i64> {
    let s = v.str()?;
    crate::commands::parse_size(&s, &v.path).map_err(|e| v.err(e.1))
}

/// `deploy:` — only `resources` (and `replicas: 1`) map onto one container.
fn deploy_resources(v: &Node) -> Result<Resources> {
    let mut r = Resources::default();
    v.keys(
        |k, x| {
            match k {
                "resources" => x.keys(
                    |k, y| {
                        match k {
                            "limits" => y.keys(
                                |k, z| {
                                    match k {
                                        "cpus" => r.cpus = Some(z.float()?),
                                        "memory" => r.memory = Some(size(z)?),
                                        "pids" => r.pids = Some(z.int()?),
                                        _ => return Ok(false),
                                    }
                                    Ok(true)
                                },
                                &Known { compose: &[] },
                            )?,
                            "reservations" => y.keys(
                                |k, z| {
                                    match k {
                                        "memory" => r.memory_reservation = Some(size(z)?),
                                        _ => return Ok(false),
                                    }
                                    Ok(true)
                                },
                                &Known { compose: &["cpus", "devices", "generic_resources"] },
                            )?,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    },
                    &Known { compose: &[] },
                )?,
                "replicas" if x.int()? == 1 => {}
                _ => return Ok(false),
            }
            Ok(true)
        },
        &Known {
            compose: &[
                "endpoint_mode",
                "labels",
                "mode",
                "placement",
                "replicas",
                "restart_policy",
                "rollback_config",
                "update_config",
            ],
        },
    )?;
    Ok(r)
}

/// Top-level limits and `deploy.resources` together; a value set in both must agree, as
/// compose requires.
fn merge_resources(n: &Node, top: Resources, deploy: Option<Resources>) -> Result<Resources> {
    let d = deploy.unwrap_or_default();
    fn one<T: PartialEq + Copy + std::fmt::Debug>(
        n: &Node,
        what: &str,
        a: Option<T>,
        b: Option<T>,
    ) -> Result<Option<T>> {
        match (a, b) {
            (Some(x), Some(y)) if x != y => {
                Err(n.err(format!("{what} and its deploy.resources value differ ({x:?}, {y:?})")))
            }
            (x, y) => Ok(x.or(y)),
        }
    }
    Ok(Resources {
        cpus: one(n, "cpus", top.cpus, d.cpus)?,
        memory: one(n, "mem_limit", top.memory, d.memory)?,
        memory_reservation: one(n, "mem_reservation", top.memory_reservation, d.memory_reservation)?,
        pids: one(n, "pids_limit", top.pids, d.pids)?,
    })
}

/// `depends_on`, and the dependencies marked `required: false` (dropped when the file has
/// no such service).
fn depends_on(v: &Node) -> Result<(BTreeMap<String, Condition>, Vec<String>)> {
    if let Ok(list) = v.seq() {
        return Ok((list.iter().map(|x| Ok((x.str()?, Condition::Started))).collect::<Result<_>>()?, Vec::new()));
    }
    let (mut out, mut optional) = (BTreeMap::new(), Vec::new());
    for (k, x) in v.map()? {
        let mut cond = Condition::Started;
        x.keys(
            |key, y| {
                match key {
                    "condition" => {
                        cond = match y.str()?.as_str() {
                            "service_started" => Condition::Started,
                            "service_healthy" => Condition::Healthy,
                            "service_completed_successfully" => Condition::CompletedSuccessfully,
                            o => return Err(y.err(format!("unknown condition {o:?}"))),
                        }
                    }
                    "required" => {
                        if !y.bool()? {
                            optional.push(k.name.clone());
                        }
                    }
                    "restart" if !y.bool()? => {}
                    _ => return Ok(false),
                }
                Ok(true)
            },
            &Known { compose: &["restart"] },
        )?;
        out.insert(k.name.clone(), cond);
    }
    Ok((out, optional))
}

fn extra_hosts(v: &Node) -> Result<Vec<String>> {
    let items = match v.seq() {
        Ok(_) => v.list_or_dict(':')?,
        Err(_) => v.list_or_dict('=')?,
    };
    items
        .into_iter()
        .map(|(h, ip)| match ip {
            Some(ip) => Ok(format!("{h}:{}", ip.trim_start_matches('=').trim())),
            None => Err(v.err(format!("extra host {h:?} needs an address"))),
        })
        .collect()
}

/// `env_file`: a path, or a list of paths and `{path, required, format}`.
fn env_file_list(v: &Node) -> Result<Vec<(String, bool, &Node)>> {
    let items: Vec<&Node> = match v.seq() {
        Ok(items) => items.iter().collect(),
        Err(_) => vec![v],
    };
    let mut out = Vec::new();
    for i in items {
        if !matches!(i.v, super::yaml::Value::Map(_)) {
            out.push((i.str()?, true, i));
            continue;
        }
        let (mut path, mut required) = (None, true);
        i.keys(
            |k, x| {
                match k {
                    "path" => path = Some(x.str()?),
                    "required" => required = x.bool()?,
                    "format" if x.str()? == "raw" => return Err(x.err("env_file format raw is not supported")),
                    "format" => {}
                    _ => return Ok(false),
                }
                Ok(true)
            },
            &Known { compose: &[] },
        )?;
        out.push((path.ok_or_else(|| i.err("an env_file entry needs a path"))?, required, i));
    }
    Ok(out)
}

/// An error for a file: the same shape as the tree's.
pub fn error(line: usize, msg: impl Into<String>) -> Error {
    Error { line, path: String::new(), msg: msg.into() }
}
