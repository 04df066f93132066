//! Create and start (stop/kill/wait: `stop.rs`, remove: `remove.rs`, exits and
//! re-adoption after an agent restart: `monitor.rs`).

use super::names;
use super::{ContainerRecord, ContainerSpec, Phase, Result, Runtime, RuntimeError, State};
use crate::isolation::spec::{BindFile, LaunchSpec, NetMode, NsShare};
use crate::snapshot::RootfsSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) fn now() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

pub(super) fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |err| RuntimeError::Io { what, path: path.to_path_buf(), err }
}

impl Runtime {
    /// Validates a spec and creates the container (not started).
    pub async fn create(&self, mut spec: ContainerSpec) -> Result<ContainerRecord> {
        let bad = |m: String| Err(RuntimeError::InvalidArgument(m));
        if !spec.name.is_empty() && !names::valid_name(spec.name.trim_start_matches('/')) {
            return bad(format!(
                "invalid container name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, 2-128 characters",
                spec.name
            ));
        }
        if !spec.hostname.is_empty() && !names::valid_hostname(&spec.hostname) {
            return bad(format!("invalid hostname {:?}: letters, digits, '-' and '.', at most 64", spec.hostname));
        }
        if let Some(a) = spec.network_aliases.iter().find(|a| !names::valid_hostname(a)) {
            return bad(format!("invalid --network-alias {a:?}: letters, digits, '-' and '.', at most 64"));
        }
        super::env::check(&spec.env)?;
        super::limits::check(&spec)?;
        if spec.command.iter().chain(spec.entrypoint.iter().flatten()).any(|a| a.contains('\0')) {
            return bad("the command contains a NUL byte".into());
        }
        spec.ipc = self.parse_share(&spec.ipc, "--ipc")?;
        spec.pid = self.parse_share(&spec.pid, "--pid")?;
        let (network, mode_name) = self.parse_network(&spec.network)?;
        spec.network = mode_name;
        self.check_net_opts(&spec, network)?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        spec.resources.validate(cpus).map_err(|e| RuntimeError::InvalidArgument(e.0))?;
        self.cgroups.check_supported(&spec.resources)?;
        let mut sysctls = std::collections::BTreeMap::new();
        for (k, v) in &spec.sysctls {
            let k = crate::isolation::sysctl::validate_with(k, v, network.own_namespace(), &self.cfg.sysctl)
                .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
            if spec.ipc == "host" && crate::isolation::sysctl::ipc_namespaced(&k) {
                return bad(format!("sysctl {k} is not allowed with --ipc host: it would change the host's value"));
            }
            sysctls.insert(k, v.clone());
        }
        spec.sysctls = sysctls;
        // Until the record holds the image's layers (or the built-in pause layer, which no
        // image holds), a collection of unused layers must not take them.
        let _busy = self.images.busy();
        let image = if spec.pause && spec.image.is_empty() {
            self.images.builtin_pause()?
        } else {
            self.images.resolve(&spec.image)?
        };
        let entrypoint = spec.entrypoint.clone().unwrap_or_else(|| image.config.entrypoint.clone());
        let cmd = if !spec.command.is_empty() {
            spec.command.clone()
        } else if spec.entrypoint.is_some() {
            vec![]
        } else {
            image.config.cmd.clone()
        };
        let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
        if args.is_empty() {
            return bad(format!("no command specified: image {} has no Cmd or Entrypoint", spec.image));
        }
        let _g = self.create_lock.lock().await;
        super::dns::check_dns_and_hosts(&spec.dns, &spec.add_hosts)?;
        super::dns::check_search_and_options(&spec.dns_search, &spec.dns_options)?;
        crate::isolation::process::resolve_caps(&spec.cap_add, &spec.cap_drop)
            .map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        // Parsed where the request came in; here what only the host can answer.
        for v in &spec.volumes {
            super::volumes::check_source(v)?;
        }
        for d in &spec.devices {
            d.resolve().map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        }
        if let Some(profile) = spec.security.seccomp.profile() {
            crate::isolation::seccomp_profile::compile(profile, &self.capabilities(&spec)?).map_err(|e| {
                RuntimeError::InvalidArgument(match &spec.security.seccomp {
                    super::spec::Seccomp::File { path, .. } => format!("{}: {e}", path.display()),
                    _ => e.to_string(),
                })
            })?;
        }
        let userns = self.lease_userns(&spec)?;
        if let (Some(_), Some(v)) = (&userns, spec.volumes.iter().find(|v| v.propagation.receives())) {
            return Err(RuntimeError::InvalidArgument(format!(
                "volume {:?}: mount propagation needs the host's user namespace (--userns=host)",
                super::spec::volume_string(v)
            )));
        }
        if userns.is_some() && !(spec.ipc.is_empty() && spec.pid.is_empty() && !spec.net_opts.uts_host) {
            let uts = if spec.net_opts.uts_host { "host" } else { "" };
            return Err(RuntimeError::InvalidArgument(format!(
                "--ipc {:?} / --pid {:?} / --uts {uts:?} cannot be combined with a user namespace (--userns=host shares them)",
                spec.ipc, spec.pid
            )));
        }
        let mut ports = self.parse_ports(&spec.ports, network)?;
        if spec.publish_all {
            if network != NetMode::Bridge {
                return Err(RuntimeError::InvalidArgument("-P needs the bridge network".into()));
            }
            let mut exposed = image.config.exposed_ports.clone();
            exposed.extend(spec.expose.iter().filter(|e| !image.config.exposed_ports.contains(e)).cloned());
            ports.extend(super::net::publish_all(&exposed)?);
        }
        if !spec.cgroup_parent.is_empty() && !spec.group.is_empty() {
            return bad(format!(
                "--cgroup-parent {:?} and --group {:?} cannot be combined: a group's members live in the group's cgroup",
                spec.cgroup_parent, spec.group
            ));
        }
        if !spec.device_cgroup_rules.is_empty() && !self.cgroups.has_device_controller() {
            return Err(RuntimeError::FailedPrecondition(format!(
                "--device-cgroup-rule {:?}: this host has no device cgroup to add it to (no v1 devices controller, and its kernel takes no v2 device programs)",
                spec.device_cgroup_rules[0].to_string()
            )));
        }
        // A parent missing now is made by this container; one that another container of ours
        // made (or below one) is shared with it: whichever of them goes last removes it.
        let cgroup_parent_made = if spec.cgroup_parent.is_empty() {
            None
        } else {
            let p = &spec.cgroup_parent;
            let shared: Vec<String> = self.scan(|it| it.filter_map(|r| r.cgroup_parent_made.clone()).collect())?;
            let shared = shared.into_iter();
            // The topmost of them, so the chain removed covers every made one.
            self.cgroups
                .first_missing(p)
                .into_iter()
                .chain(shared.filter(|m| p == m || p.starts_with(&format!("{m}/"))))
                .min_by_key(String::len)
        };
        if !spec.group.is_empty() {
            self.group(&spec.group)?;
        } else {
            // Members are bounded by (and accounted in) their group's reservation.
            self.admit(&spec.resources, None)?;
        }
        let id = names::new_id().map_err(RuntimeError::Internal)?;
        let name = if spec.name.is_empty() {
            let mut n = names::generate();
            while self.scan(|mut it| Iterator::any(&mut it, |c| c.name == n))? {
                n = format!("{}_{}", names::generate(), &id[..4]);
            }
            n
        } else {
            let n = spec.name.trim_start_matches('/').to_string();
            if let Some(other) = self.scan(|mut it| Iterator::find(&mut it, |c| c.name == n).map(|c| c.id.clone()))? {
                return Err(RuntimeError::AlreadyExists(format!(
                    "the container name {n:?} is already in use by container {}; remove or rename that container",
                    &other[..12.min(other.len())]
                )));
            }
            n
        };
        let hostname = match spec.hostname.as_str() {
            _ if spec.net_opts.uts_host => super::net_opts::host_hostname()?,
            "" => id[..12].to_string(),
            h => h.to_string(),
        };
        let mut env = super::env::merge(&image.config.env, &[format!("HOSTNAME={hostname}")]);
        if spec.tty {
            env = super::env::merge(&env, &["TERM=xterm".to_string()]);
        }
        env = super::env::merge(&env, &spec.env);
        if let Some(h) = &spec.health {
            h.validate()?;
        }
        spec.health = super::health::HealthConfig::effective(spec.health.as_ref(), image.config.healthcheck.as_ref());
        spec.log_config = std::mem::take(&mut spec.log_config).resolved(&self.cfg.logs);
        self.add_volumes_from(&mut spec)?;
        super::named_volumes::add_image_volumes(&mut spec, &image.config.volumes);
        let rec = ContainerRecord {
            id: id.clone(),
            name,
            image_id: image.id.clone(),
            layers: image.layers.iter().map(|l| l.diff_id.clone()).collect(),
            args,
            env,
            cwd: if spec.working_dir.is_empty() { image.config.working_dir.clone() } else { spec.working_dir.clone() },
            user: if spec.user.is_empty() { image.config.user.clone() } else { spec.user.clone() },
            hostname,
            network,
            stop_signal: if spec.stop_signal.is_empty() {
                image.config.stop_signal.clone()
            } else {
                spec.stop_signal.clone()
            },
            spec,
            state: State::Created,
            pid: 0,
            pid_start: 0,
            shim_pid: 0,
            shim_start: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            created_at: now(),
            started_at: 0,
            finished_at: 0,
            log_offset: 0,
            restart_count: 0,
            stopped_by_user: false,
            rapid_restarts: 0,
            health: None,
            ip: String::new(),
            ports,
            extra_networks: vec![],
            userns,
            paused: false,
            remove_volumes: false,
            cgroup_parent_made,
        };
        let mut rec = rec;
        let mut undo = super::undo::Undo::new("create");
        // Volumes are made on first use; named ones stay, as docker's, should the create fail
        // later, anonymous ones go with it.
        let anonymous = self.make_volumes(&mut rec)?;
        undo.push("make anonymous volumes", move || {
            anonymous.iter().try_for_each(|n| self.volumes.remove(n).map_err(|e| e.to_string()))
        });
        if network == NetMode::Bridge {
            rec.ip = match rec.spec.net_opts.ip {
                Some(ip) => self.lease_fixed(&rec.spec.network, ip, &rec.id)?.to_string(),
                None => self.lease(&rec.spec.network, &rec.id)?.to_string(),
            };
            let leased = rec.clone();
            undo.push("lease an address", move || self.release(&leased).map_err(|e| e.to_string()));
        }
        crate::crash::point("create.after_lease");
        let dir = self.container_dir(&id);
        fail::fail_point!("create.dir", |_| Err(RuntimeError::Internal("fail point create.dir".into())));
        let made = self.prepare_dir(&rec, &dir);
        let d = dir.clone();
        undo.push("make the container directory", move || match std::fs::remove_dir_all(&d) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("remove {}: {e}", d.display())),
            _ => Ok(()),
        });
        made?;
        crate::crash::point("create.after_dir");
        fail::fail_point!("create.record", |_| Err(RuntimeError::Internal("fail point create.record".into())));
        self.save_and_log(&rec, "create", &[], false)?;
        crate::crash::point("create.after_record");
        undo.commit();
        let _ = self.live(&id);
        Ok(rec)
    }

    pub(super) fn rootfs_spec(&self, rec: &ContainerRecord) -> RootfsSpec {
        let layers: Vec<_> = rec.layers.iter().map(|d| self.images.layer_dir(d)).collect();
        let mut r = RootfsSpec::for_container(&self.container_dir(&rec.id), &layers);
        // Image layers may carry device nodes: without a device cgroup to refuse them,
        // they must not open at all.
        r.nodev = !self.cgroups.has_device_controller();
        r
    }

    /// What the shim gets to start `rec` with `devices`; fails (naming the value) when a
    /// host path it binds has gone, or a stored option no longer passes.
    fn launch_spec(&self, rec: &ContainerRecord, devices: &[crate::isolation::devices::Device]) -> Result<LaunchSpec> {
        let dir = self.container_dir(&rec.id);
        Ok(LaunchSpec {
            id: rec.id.clone(),
            args: rec.args.clone(),
            env: rec.env.clone(),
            cwd: rec.cwd.clone(),
            user: rec.user.clone(),
            hostname: rec.hostname.clone(),
            domainname: rec.spec.domainname.clone(),
            shm_size: rec.spec.shm_size,
            rlimits: rec.spec.ulimits.clone(),
            tty: rec.spec.tty,
            stdin: rec.spec.stdin_open,
            network: rec.network,
            rootfs: self.rootfs_spec(rec),
            binds: ["hostname", "hosts", "resolv.conf"]
                .iter()
                .map(|f| BindFile { host: dir.join(f), container: format!("/etc/{f}") })
                .collect(),
            cgroup_dirs: self.cgroups.dirs(&rec.cg()),
            log: super::logs::log_base(&dir, &rec.spec.log_config),
            log_rotation: super::logs::log_rotation(&rec.spec.log_config),
            exit_file: crate::shim::protocol::exit_path(&dir),
            stdin_fifo: rec.spec.stdin_open.then(|| dir.join("stdin")),
            resize_fifo: rec.spec.tty.then(|| crate::shim::protocol::resize_path(&dir)),
            init: rec.spec.init,
            sysctls: rec.spec.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            oom_score_adj: rec.spec.resources.oom_score_adj,
            bridge: None,
            capabilities: self.capabilities(&rec.spec)?,
            volumes: self.volume_binds(rec)?,
            tmpfs: super::volumes::tmpfs_at_start(rec),
            read_only: rec.spec.read_only,
            seccomp_unconfined: rec.spec.seccomp_unconfined(),
            seccomp_programs: self.seccomp_programs(&rec.spec)?,
            extra_bridges: vec![],
            privileged: rec.spec.privileged,
            devices: devices.iter().map(|d| (d.host.clone(), d.container.clone())).collect(),
            userns: rec.userns.as_ref().map(|l| l.map.clone()),
            ipc: Default::default(),
            pid_ns: Default::default(),
            uts: if rec.spec.net_opts.uts_host { NsShare::Host } else { NsShare::Private },
            cgroupns_host: rec.spec.cgroupns == super::CgroupNs::Host,
            shim_cgroup_dirs: self.cgroups.dirs(&rec.shim_cg()),
            cri_log: (!rec.spec.log_path.is_empty()).then(|| PathBuf::from(&rec.spec.log_path)),
            pause: rec.spec.pause,
            no_new_privs: rec.spec.no_new_privs(),
            groups: rec.spec.group_add.clone(),
            image_groups: !rec.spec.strict_groups,
            masked_paths: rec.spec.masked_paths(),
            readonly_paths: rec.spec.readonly_paths(),
        })
    }

    /// Normalizes an `--ipc`/`--pid` value: `""` (private; also docker's `private` and
    /// `shareable`), `host`, or `container:<full id>`.
    fn parse_share(&self, v: &str, flag: &str) -> Result<String> {
        match v {
            "" | "private" | "shareable" => Ok(String::new()),
            "host" => Ok("host".into()),
            v => match v.strip_prefix("container:") {
                Some(t) if !t.is_empty() => Ok(format!("container:{}", self.resolve(t)?.id)),
                _ => Err(RuntimeError::InvalidArgument(format!(
                    "invalid {flag} {v:?}: use private, host or container:<name|id>"
                ))),
            },
        }
    }

    /// What an `--ipc`/`--pid` value means at start: the other container must be running.
    fn share_target(&self, v: &str, what: &str) -> Result<crate::isolation::spec::NsShare> {
        use crate::isolation::spec::NsShare;
        if v == "host" {
            return Ok(NsShare::Host);
        }
        let Some(target) = v.strip_prefix("container:") else { return Ok(NsShare::Private) };
        let t = self.load(target).map_err(|_| {
            RuntimeError::FailedPrecondition(format!(
                "the container {target} whose {what} namespace this one joins no longer exists"
            ))
        })?;
        if t.state != State::Running {
            return Err(RuntimeError::FailedPrecondition(format!(
                "cannot join the {what} namespace of container {}: it is not running",
                t.name
            )));
        }
        Ok(NsShare::Join(t.pid))
    }

    /// The ID range a new container gets for its `--userns` mode (`None`: the host's IDs).
    /// Called under the create lock, so two `auto` containers never take one slot.
    fn lease_userns(&self, spec: &ContainerSpec) -> Result<Option<super::UsernsLease>> {
        use crate::isolation::userns::{MapError, Mode};
        let cfg = &self.cfg.userns;
        let mode = cfg.mode(&spec.userns).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        if mode == Mode::Host {
            return Ok(None);
        }
        if spec.privileged {
            return Err(RuntimeError::InvalidArgument(format!(
                "--privileged cannot be combined with --userns={}: a privileged container needs the host's IDs \
                 (--userns=host)",
                if spec.userns.is_empty() { &cfg.default } else { &spec.userns }
            )));
        }
        let slot = if mode == Mode::Remap {
            0
        } else {
            let used: std::collections::HashSet<u32> =
                self.scan(|it| it.filter_map(|c| c.userns.as_ref().map(|l| l.slot)).collect())?;
            (1..).find(|s| !used.contains(s)).unwrap_or(u32::MAX)
        };
        match cfg.mapping(slot) {
            Ok(map) => Ok(Some(super::UsernsLease { slot, map })),
            Err(MapError::NoRange(m)) => Err(RuntimeError::FailedPrecondition(m)),
            Err(MapError::Exhausted(m)) => Err(RuntimeError::ResourceExhausted(m)),
        }
    }

    /// The rootfs of a `--userns` container: idmapped layers where the kernel can (probed
    /// once), else shifted copies of the layers (made once per mapping, shared).
    async fn userns_rootfs(&self, rec: &ContainerRecord, rootfs: &mut RootfsSpec) -> Result<()> {
        let Some(lease) = &rec.userns else { return Ok(()) };
        let how = self.cfg.userns.layers.as_str();
        if how != "copy" {
            let scratch = self.cfg.root.join("tmp").join("idmap-probe");
            let probe = self
                .idmap_probe
                .get_or_init(|| async move {
                    tokio::task::spawn_blocking(move || {
                        crate::snapshot::idmap::probe(&scratch).map_err(|e| e.to_string())
                    })
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()))
                })
                .await;
            match probe {
                Ok(()) => {
                    rootfs.idmapped = true;
                    return Ok(());
                }
                Err(e) if how == "idmap" => {
                    return Err(RuntimeError::FailedPrecondition(format!(
                        "[userns] layers = \"idmap\", but this kernel cannot idmap the overlay's layers: {e}"
                    )))
                }
                Err(e) => tracing::info!("idmapped layers unavailable ({e}); --userns uses shifted copies"),
            }
        }
        let root = self.cfg.root.clone();
        let map = lease.map.clone();
        let layers: Vec<(PathBuf, String)> = rec
            .layers
            .iter()
            .map(|d| (self.images.layer_dir(d), d.trim_start_matches("sha256:").to_string()))
            .collect();
        let lower = tokio::task::spawn_blocking(move || {
            layers
                .iter()
                .rev()
                .map(|(dir, hex)| {
                    crate::snapshot::shift::shifted_layer(&root, &map, dir, hex).map_err(|e| e.to_string())
                })
                .collect::<std::result::Result<Vec<PathBuf>, String>>()
        })
        .await
        .map_err(|e| RuntimeError::Internal(e.to_string()))?
        .map_err(RuntimeError::Internal)?;
        rootfs.lower = lower;
        Ok(())
    }

    /// The compiled custom seccomp profile of a container, if it has one (checked at create:
    /// a stored one that no longer compiles is an error, never a silently dropped profile).
    pub(super) fn seccomp_programs(
        &self,
        spec: &ContainerSpec,
    ) -> Result<Option<Vec<crate::isolation::seccomp_profile::Program>>> {
        let Some(json) = spec.seccomp_profile() else { return Ok(None) };
        crate::isolation::seccomp_profile::compile(json, &self.capabilities(spec)?).map(Some).map_err(|e| {
            RuntimeError::FailedPrecondition(format!("the container's seccomp profile no longer compiles: {e}"))
        })
    }

    /// The capabilities a container gets: all when privileged; else docker's default with
    /// --cap-add/--cap-drop, minus MKNOD where no device cgroup stops it from opening the
    /// nodes it makes (cgroup v2 without a BPF device program) unless asked for explicitly.
    pub(super) fn capabilities(&self, spec: &ContainerSpec) -> Result<Vec<String>> {
        use crate::isolation::process::resolve_caps;
        if spec.privileged {
            return resolve_caps(&["ALL".to_string()], &[]).map_err(|e| RuntimeError::Internal(e.to_string()));
        }
        let mut caps =
            resolve_caps(&spec.cap_add, &spec.cap_drop).map_err(|e| RuntimeError::InvalidArgument(e.to_string()))?;
        let asked = spec.cap_add.iter().any(|c| {
            let c = c.to_ascii_uppercase();
            c == "MKNOD" || c == "CAP_MKNOD" || c == "ALL"
        });
        if !self.cgroups.has_device_controller() && !asked {
            caps.retain(|c| c != "CAP_MKNOD");
        }
        Ok(caps)
    }

    /// Removes a cgroup of `rec` (`cg`) during a start's clean-up: a failure is logged
    /// (the next start or the removal tries again), never silently dropped.
    fn remove_cgroup_logged(&self, rec: &ContainerRecord, cg: &str) {
        if let Err(e) = self.cgroups.remove(cg) {
            tracing::warn!(container = %rec.id, cgroup = cg, error = %e, "removing a cgroup");
        }
    }

    /// Starts a created or exited container.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<ContainerRecord> {
        let rec = self.resolve(name)?;
        let live = self.live(&rec.id);
        let _op = live.op.lock().await;
        // An exit the store has not taken yet goes in first (its `die` event included).
        self.flush_pending(&rec.id)?;
        let mut rec = self.load(&rec.id)?;
        match rec.state {
            State::Running => return Ok(rec),
            State::Removing => {
                return Err(RuntimeError::FailedPrecondition(format!("container {} is being removed", rec.name)))
            }
            _ => {}
        }
        let dir = self.container_dir(&rec.id);
        let devices = super::volumes::devices_at_start(&rec)?;
        let mut spec = self.launch_spec(&rec, &devices)?;
        self.userns_rootfs(&rec, &mut spec.rootfs).await?;
        spec.network = self.join_target(&rec)?;
        spec.ipc = self.share_target(&rec.spec.ipc, "IPC")?;
        spec.pid_ns = self.share_target(&rec.spec.pid, "PID")?;
        spec.bridge = self.bridge_attach(&rec)?;
        for (i, (net, ip)) in rec.extra_networks.iter().enumerate() {
            spec.extra_bridges.push(self.extra_attach(&rec, net, ip, i + 1)?);
        }
        // From here each step that changes the host registers how to take it back.
        let mut undo = super::undo::Undo::new("start");
        // Its /etc/hosts knows the running peers before its command runs; they learn of it
        // once it runs (`peers.rs`).
        self.write_own_hosts(&rec);
        let starting = self.mark_starting(&rec.id);
        // A stale exit status would be read as this run's.
        match std::fs::remove_file(&spec.exit_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", &spec.exit_file)(e)),
            _ => {}
        }
        for fifo in spec.stdin_fifo.iter().chain(spec.resize_fifo.iter()) {
            if !fifo.exists() {
                nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                    .map_err(|e| RuntimeError::Io { what: "mkfifo", path: fifo.clone(), err: e.into() })?;
            }
        }
        let launch = crate::shim::spec_path(&dir);
        let bytes = serde_json::to_vec(&spec).map_err(|e| RuntimeError::Internal(e.to_string()))?;
        std::fs::write(&launch, bytes).map_err(io("write", &launch))?;
        let t0 = std::time::Instant::now();
        if let Some(made) = rec.cgroup_parent_made.clone() {
            // Pushed first, so it runs after the container's cgroup has gone.
            let parent = rec.spec.cgroup_parent.clone();
            undo.push("create the cgroup parent", move || {
                self.cgroups.remove_parent_chain(&parent, &made);
                Ok(())
            });
        }
        for cg in [rec.cg(), rec.shim_cg()] {
            self.remove_cgroup_logged(&rec, &cg);
            self.cgroups.create(&cg)?;
            undo.push("create a cgroup", move || self.cgroups.remove(&cg).map_err(|e| e.to_string()));
        }
        let devices = (!rec.spec.privileged).then(|| {
            let mut rules: Vec<String> =
                crate::isolation::devices::DEFAULT_ALLOW.iter().map(|r| r.to_string()).collect();
            rules.extend(devices.iter().map(|d| d.rule()));
            rules.extend(rec.spec.device_cgroup_rules.iter().map(ToString::to_string));
            rules
        });
        self.cgroups.apply(&rec.cg(), &rec.spec.resources)?;
        self.cgroups.restrict_devices(&rec.cg(), devices.as_deref())?;
        let t_cgroup = t0.elapsed();
        crate::crash::point("start.after_cgroup");
        let log_offset = std::fs::metadata(&spec.log).map(|m| m.len()).unwrap_or(0);
        // The firewall (masquerade, its published ports) is reconciled while the shim starts
        // it (`nft` takes ~15 ms when the table changes; nothing when it does not), after
        // every step that could fail before, and is in place before start returns.
        let mut firewall = None;
        if rec.network == NetMode::Bridge {
            let me = Arc::clone(self);
            let r = rec.clone();
            firewall = Some(tokio::task::spawn_blocking(move || me.reconcile_firewall_with(Some(&r))));
            undo.push("publish to the firewall", || {
                // After `starting` is dropped (below, before the stack runs): without it.
                self.reconcile_firewall().map_err(|e| e.to_string())
            });
        }
        let report = self.host.launcher.launch(&dir).await;
        crate::crash::point("start.after_shim");
        tracing::debug!(container = %rec.id, cgroup = ?t_cgroup, shim = ?(t0.elapsed() - t_cgroup), "start timings");
        let fw_error = match firewall {
            Some(t) => match t.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            },
            None => None,
        };
        let mut report = match report {
            Ok(r) => r,
            Err(e) => {
                drop(starting);
                undo.rollback();
                return Err(e);
            }
        };
        if let (Some(e), None) = (&fw_error, &report.error) {
            // It runs, but its ports could not be published: it must not stay up half-wired.
            self.cgroups.kill_all(&rec.cg());
            let what = if rec.ports.is_empty() { "bridge network firewall" } else { "publishing ports / firewall" };
            report.error = Some(format!("{what}: {e}"));
            report.exit_code = 125;
        }
        rec.restart_count += u32::from(rec.started_at != 0);
        rec.stopped_by_user = false;
        rec.started_at = now();
        rec.log_offset = log_offset;
        rec.oom_killed = false;
        if let Some(msg) = report.error {
            drop(starting);
            if rec.network == NetMode::Bridge {
                // Perhaps the bridge went away behind our back: check it again next time.
                self.forget_network_setup();
            }
            undo.rollback();
            rec.state = State::Exited;
            rec.exit_code = report.exit_code;
            rec.error = msg.clone();
            rec.finished_at = now();
            rec.pid = 0;
            self.save_and_log(&rec, "die", &[("exitCode", rec.exit_code.to_string()), ("error", msg.clone())], false)?;
            live.phase.send_replace(Phase::Exited { code: rec.exit_code });
            if rec.spec.auto_remove {
                drop(_op);
                if let Err(e) = self.remove(&rec.id, true).await {
                    self.remove_later(&rec.id, &e);
                }
            }
            return Err(RuntimeError::StartFailed { code: report.exit_code, msg });
        }
        rec.state = State::Running;
        rec.paused = false;
        rec.error.clear();
        rec.exit_code = 0;
        rec.pid = report.pid;
        rec.pid_start = report.pid_start;
        rec.shim_pid = report.shim_pid;
        rec.shim_start = report.shim_start;
        rec.health = rec.spec.health.is_some().then(super::health::Health::default);
        if let Err(e) = self.save_and_log(&rec, "start", &[("pid", rec.pid.to_string())], false) {
            // Unrecorded, it must not run: it would be nobody's.
            self.cgroups.kill_all(&rec.cg());
            drop(starting);
            undo.rollback();
            tracing::warn!(container = %rec.id, error = %e, "could not record a start; the container was killed");
            return Err(e);
        }
        crate::crash::point("start.after_record");
        undo.commit();
        drop(starting);
        live.phase.send_replace(Phase::Running { log_offset });
        self.monitor(&rec);
        if rec.network == NetMode::Bridge {
            self.refresh_hosts(&rec.spec.network);
        }
        Ok(rec)
    }

    /// Commits a container's writable layer as a new image tagged `reference`.
    pub async fn commit(&self, name: &str, reference: &str) -> Result<crate::image::ImageRecord> {
        let rec = self.resolve(name)?;
        let upper = self.container_dir(&rec.id).join("upper");
        let images = Arc::clone(&self.images);
        let _busy = images.busy();
        let (image_id, reference, short) = (rec.image_id.clone(), reference.to_string(), rec.name.clone());
        let map = rec.userns.map(|l| l.map);
        let r = tokio::task::spawn_blocking(move || images.commit(&image_id, &upper, &reference, &short, map.as_ref()))
            .await
            .map_err(|e| RuntimeError::Internal(e.to_string()))??;
        Ok(r)
    }

    /// (container id, writable layer dir, image layers) of every container, for disk usage.
    pub fn container_layers(&self) -> Result<Vec<(String, std::path::PathBuf, Vec<String>)>> {
        Ok(self
            .list()?
            .into_iter()
            .map(|c| (c.id.clone(), self.container_dir(&c.id).join("upper"), c.layers))
            .collect())
    }

    /// What the containers hold of the image store, for its GC.
    pub fn container_images(&self) -> Result<crate::image::InUse> {
        self.scan(|it| {
            let mut u = crate::image::InUse::default();
            for c in it {
                u.layers.extend(c.layers.iter().cloned());
                u.images.push((c.id.clone(), c.image_id.clone()));
            }
            u
        })
    }
}
