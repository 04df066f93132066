//! The daemon: opens the state, re-adopts containers, serves the API until SIGTERM/SIGINT.

use crate::auth::audit::AuditLog;
use crate::auth::layer::AuthState;
use crate::auth::tls::ReloadableTls;
use crate::cgroups::{CgroupHost, Cgroups};
use crate::config::Config;
use crate::image::pull::Puller;
use crate::image::ImageStore;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::Store;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Takes an exclusive lock on `<root>/agentd.lock` so two agents never share a root.
fn lock_root(cfg: &Config) -> anyhow::Result<std::fs::File> {
    let p = cfg.root.join("agentd.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .with_context(|| format!("open {}", p.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        anyhow::bail!("another agentd already uses --root {} (lock {} is held)", cfg.root.display(), p.display());
    }
    Ok(f)
}

/// Runs the daemon.
pub async fn run(cfg: Config) -> anyhow::Result<()> {
    for d in [&cfg.root, &cfg.run_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    // Root only: image layers hold device nodes and set-id files as the images ship them,
    // which no other host user may reach. (Containers never resolve these paths: their
    // roots are mounted by the init or handed over by the shim.)
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg.root, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", cfg.root.display()))?;
    }
    let _lock = lock_root(&cfg)?;
    let store = Arc::new(Store::open(&cfg.root.join("meta.redb")).context("open metadata store")?);
    let images = Arc::new(ImageStore::open(&cfg.root, Arc::clone(&store)).context("open image store")?);
    if let Some(max) = cfg.images.max_layer_size {
        images.set_max_layer_size(max);
    }
    // Checked once, so an operator learns at start-up what to install, not at the first run.
    let path = std::env::var("PATH").unwrap_or_default();
    for p in crate::network::missing_programs(&path) {
        tracing::warn!("{}; until it is installed, that fails", crate::network::missing_program(p));
    }
    let host = CgroupHost::detect().context("detect cgroups")?;
    tracing::info!(layout = %host.layout, "cgroups");
    let shim = crate::shim::program::program();
    shim.check().map_err(anyhow::Error::msg)?;
    tracing::info!(program = %shim.path.display(), origin = shim.origin, "container shims");
    let cgroups = Cgroups::new(host, &cfg.instance);
    let rt = Runtime::open(
        RuntimeConfig {
            instance: cfg.instance.clone(),
            root: cfg.root.clone(),
            run_dir: cfg.run_dir.clone(),
            capacity: cfg.capacity.clone(),
            sysctl: cfg.sysctl.clone(),
            network: cfg.network.clone(),
            userns: cfg.userns.clone(),
            cni: cfg.cri.cni(&cfg.root),
            logs: cfg.logs.clone(),
        },
        store,
        images,
        crate::runtime::host::Host::real(cgroups.clone()),
    )
    .await
    .context("open runtime")?;

    let puller = Arc::new(Puller::new(Arc::clone(rt.images()), cfg.registry.clone()));
    let audit = AuditLog::open(&cfg.audit_log)?;
    let auth = AuthState::new(cfg.roles.clone(), Some(audit), cfg.allow_privileged_operator);
    let socket_gid = match &cfg.socket_group {
        None => None,
        Some(g) => match nix::unistd::Group::from_name(g) {
            Ok(Some(gr)) => Some(gr.gid),
            Ok(None) => anyhow::bail!("--socket-group {g:?}: no such group"),
            Err(e) => anyhow::bail!("--socket-group {g:?}: {e}"),
        },
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let stream_tls = cfg.cri.stream_tls().map_err(|e| anyhow::anyhow!(e))?;
    let streams = crate::api::cri::stream::StreamServer::start(
        &cfg.cri.stream_listen,
        stream_tls,
        Arc::clone(&rt),
        stop_rx.clone(),
    )
    .await?;
    // One budget of connections and followers for every listener.
    let connections = crate::transport::limits::Connections::new(cfg.limits.max_connections);
    let clients = crate::api::followers::Clients {
        limits: cfg.limits.clone(),
        followers: crate::api::followers::Followers::new(cfg.limits.max_followers),
    };
    tracing::info!(limits = ?cfg.limits, "client limits");
    let mut servers = Vec::new();
    let mut metrics_task = None;
    let metrics = match &cfg.metrics {
        None => None,
        Some(listen) => {
            let collector = crate::metrics::collect::RuntimeCollector(Arc::clone(&rt));
            let held = crate::metrics::collect::ClientsCollector {
                connections: connections.clone(),
                followers: Arc::clone(&clients.followers),
            };
            let m = crate::metrics::Metrics::new(vec![Box::new(collector), Box::new(held)]);
            m.count_events(rt.live_events());
            let (_, task) = crate::metrics::serve::serve(listen, Arc::clone(&m), stop_rx.clone()).await?;
            metrics_task = Some(task);
            Some(m)
        }
    };
    let mut sockets: Vec<PathBuf> = Vec::new();
    let mut tls_configs: Vec<Arc<ReloadableTls>> = Vec::new();
    for l in &cfg.listen {
        let router = crate::api::router(
            Arc::clone(&rt),
            Arc::clone(&auth),
            Arc::clone(&puller),
            cfg.cri.clone(),
            Arc::clone(&streams),
            metrics.clone(),
            &clients,
        )
        .await?;
        let mut stop = stop_rx.clone();
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Some(path) = l.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            let ul = crate::transport::bind_unix(&path, socket_gid)?;
            sockets.push(path.clone());
            tracing::info!(socket = %path.display(), "serving");
            let incoming =
                connections.limit(crate::transport::unix_incoming(ul, cfg.limits.max_header_list_size as usize));
            servers.push(tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown)));
        } else if let Some(addr) = l.strip_prefix("tcp://") {
            let tl = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listen on {addr}"))?;
            if let Some(files) = &cfg.tls {
                let tls = ReloadableTls::new(files.clone())?;
                tls_configs.push(Arc::clone(&tls));
                tracing::info!(listen = %l, "serving with mutual TLS");
                let incoming = connections.limit(tls.incoming(tl));
                servers.push(tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown)));
            } else {
                // Config::resolve refuses this unless --insecure-tcp was given.
                tracing::warn!(listen = %l, "INSECURE: serving the API over plain TCP without authentication");
                let incoming = connections.limit(tokio_stream::wrappers::TcpListenerStream::new(tl));
                servers.push(tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown)));
            }
        }
    }
    tracing::info!(instance = %cfg.instance, root = %cfg.root.display(), "agentd ready");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                for t in &tls_configs {
                    match t.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; keeping the old certificates"),
                    }
                }
            }
        }
    }
    tracing::info!("shutting down; running containers keep running");
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s).await;
    }
    if let Some(t) = metrics_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), t).await;
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    if rt.counts().map(|(_, running, _)| running == 0).unwrap_or(false) {
        cgroups.remove_parent();
    }
    rt.teardown_network_if_idle();
    Ok(())
}
