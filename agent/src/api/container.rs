//! ContainerService: decode, validate, call the runtime, map errors.

use super::convert::{container_to_pb, spec_from_pb, status};
use crate::runtime::policy::needs_privilege;
use crate::runtime::ContainerSpec;
use crate::runtime::{ExecInput, ExecRequest, LogOptions, OutputChunk, Runtime};
use agent_proto::v1 as pb;
use agent_proto::v1::container_service_server::ContainerService;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

type Out<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The ContainerService implementation.
pub struct ContainerApi {
    pub rt: Arc<Runtime>,
    /// `[limits] max_followers`, shared with every service and listener.
    pub followers: Arc<super::followers::Followers>,
}

impl ContainerApi {
    fn info(&self, c: &crate::runtime::ContainerRecord) -> pb::ContainerInfo {
        let rootfs = self.rt.config().root.join("containers").join(&c.id).join("upper").display().to_string();
        container_to_pb(c, rootfs, self.rt.cgroup_path(c))
    }
}

fn output_to_attach(c: OutputChunk) -> pb::AttachResponse {
    use pb::attach_response::Msg;
    pb::AttachResponse {
        msg: Some(match c {
            OutputChunk::Stdout(d) => Msg::Stdout(d),
            OutputChunk::Stderr(d) => Msg::Stderr(d),
            OutputChunk::Exit(c) => Msg::ExitCode(c),
        }),
    }
}

fn output_to_exec(c: OutputChunk) -> pb::ExecResponse {
    use pb::exec_response::Msg;
    pb::ExecResponse {
        msg: Some(match c {
            OutputChunk::Stdout(d) => Msg::Stdout(d),
            OutputChunk::Stderr(d) => Msg::Stderr(d),
            OutputChunk::Exit(c) => Msg::ExitCode(c),
        }),
    }
}

fn exec_request(s: pb::ExecSpec) -> ExecRequest {
    let size = s.size.unwrap_or_default();
    ExecRequest {
        args: s.command,
        env: s.env,
        cwd: s.working_dir,
        user: s.user,
        tty: s.tty,
        stdin: s.stdin,
        rows: size.rows.min(u16::MAX as u32) as u16,
        cols: size.cols.min(u16::MAX as u32) as u16,
    }
}

#[tonic::async_trait]
impl ContainerService for ContainerApi {
    async fn pause(
        &self,
        req: Request<pb::PauseContainerRequest>,
    ) -> Result<Response<pb::PauseContainerResponse>, Status> {
        self.rt.pause(&req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::PauseContainerResponse {}))
    }

    async fn unpause(
        &self,
        req: Request<pb::UnpauseContainerRequest>,
    ) -> Result<Response<pb::UnpauseContainerResponse>, Status> {
        self.rt.unpause(&req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::UnpauseContainerResponse {}))
    }

    type CopyFromStream = Out<pb::CopyFromResponse>;

    async fn copy_from(&self, req: Request<pb::CopyFromRequest>) -> Result<Response<Self::CopyFromStream>, Status> {
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let r = req.into_inner();
        self.may_enter(caller.as_ref(), &r.id, "copy from")?;
        let (st, rx) = self.rt.copy_from(&r.id, &r.path, r.follow_link).await.map_err(status)?;
        use pb::copy_from_response::Msg;
        let stat =
            pb::PathStat { name: st.name, size: st.size, mode: st.mode, mtime: st.mtime, link_target: st.link_target };
        let first = tokio_stream::once(Ok(pb::CopyFromResponse { msg: Some(Msg::Stat(stat)) }));
        let rest = ReceiverStream::new(rx)
            .map(|c| c.map(|d| pb::CopyFromResponse { msg: Some(Msg::Data(d)) }).map_err(status));
        Ok(Response::new(Box::pin(first.chain(rest))))
    }

    async fn copy_to(
        &self,
        req: Request<Streaming<pb::CopyToRequest>>,
    ) -> Result<Response<pb::CopyToResponse>, Status> {
        use pb::copy_to_request::Msg;
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let mut input = req.into_inner();
        let start = match input.message().await? {
            Some(pb::CopyToRequest { msg: Some(Msg::Start(s)) }) => s,
            _ => return Err(Status::invalid_argument("the first copy message must be CopyToStart")),
        };
        self.may_enter(caller.as_ref(), &start.id, "copy into")?;
        let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
        // The archive's chunks, as they come; a broken client stream ends the archive early,
        // and the extraction reports the truncated tar.
        let feed = tokio::spawn(async move {
            while let Ok(Some(m)) = input.message().await {
                if let Some(Msg::Data(d)) = m.msg {
                    if tx.send(d).await.is_err() {
                        break;
                    }
                }
            }
        });
        let to = crate::runtime::cp::CopyTo {
            path: start.path,
            rename_from: start.rename_from,
            copy_uid_gid: start.copy_uid_gid,
        };
        let res = self.rt.copy_to(&start.id, to, rx).await;
        feed.abort();
        res.map_err(status)?;
        Ok(Response::new(pb::CopyToResponse {}))
    }

    async fn diff(&self, req: Request<pb::DiffRequest>) -> Result<Response<pb::DiffResponse>, Status> {
        let rt = Arc::clone(&self.rt);
        let id = req.into_inner().id;
        // A walk of the writable layer: off the async threads.
        let changes = tokio::task::spawn_blocking(move || rt.diff(&id))
            .await
            .map_err(|e| Status::internal(format!("diff: {e}")))?
            .map_err(status)?;
        let changes = changes.into_iter().map(|c| pb::Change { path: c.path, kind: c.kind as u32 }).collect();
        Ok(Response::new(pb::DiffResponse { changes }))
    }

    type ExportStream = Out<pb::DataChunk>;

    async fn export(&self, req: Request<pb::ExportRequest>) -> Result<Response<Self::ExportStream>, Status> {
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let id = req.into_inner().id;
        self.may_enter(caller.as_ref(), &id, "export")?;
        let rx = self.rt.export(&id).await.map_err(status)?;
        Ok(Response::new(Box::pin(
            ReceiverStream::new(rx).map(|c| c.map(|data| pb::DataChunk { data }).map_err(status)),
        )))
    }

    async fn top(&self, req: Request<pb::TopRequest>) -> Result<Response<pb::TopResponse>, Status> {
        let r = req.into_inner();
        let t = self.rt.top(&r.id, r.ps_args).await.map_err(status)?;
        let processes = t.rows.into_iter().map(|fields| pb::TopRow { fields }).collect();
        Ok(Response::new(pb::TopResponse { titles: t.titles, processes }))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneContainersRequest>,
    ) -> Result<Response<pb::PruneContainersResponse>, Status> {
        let filter = super::convert::prune_filter_from_pb(req.into_inner().filters).map_err(status)?;
        let (deleted, reclaimed_bytes) = self.rt.prune_containers(&filter).await.map_err(status)?;
        Ok(Response::new(pb::PruneContainersResponse { deleted, reclaimed_bytes }))
    }

    async fn rename(
        &self,
        req: Request<pb::RenameContainerRequest>,
    ) -> Result<Response<pb::RenameContainerResponse>, Status> {
        let r = req.into_inner();
        self.rt.rename(&r.id, &r.new_name).await.map_err(status)?;
        Ok(Response::new(pb::RenameContainerResponse {}))
    }

    async fn explain(&self, req: Request<pb::ExplainRequest>) -> Result<Response<pb::ExplainResponse>, Status> {
        let rt = std::sync::Arc::clone(&self.rt);
        let id = req.into_inner().id;
        // /proc and cgroup reads, and a thread that joins the container's namespaces.
        let x = tokio::task::spawn_blocking(move || rt.explain(&id))
            .await
            .map_err(|e| Status::internal(format!("explain: {e}")))?
            .map_err(status)?;
        Ok(Response::new(super::explain::to_pb(x)))
    }

    async fn create(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Result<Response<pb::CreateContainerResponse>, Status> {
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let spec = req.into_inner().spec.ok_or_else(|| Status::invalid_argument("spec is required"))?;
        if spec.image.is_empty() {
            return Err(Status::invalid_argument("spec.image is required"));
        }
        let spec = spec_from_pb(spec).map_err(status)?;
        if !caller.as_ref().is_some_and(|c| c.may_privileged) {
            if let Some(what) =
                needs_privilege(&spec, &self.rt.config().userns.default, self.rt.cgroups().has_device_controller())
                    .or_else(|| self.joined_privilege(&spec))
            {
                let role = caller.as_ref().map(|c| c.role.as_str()).unwrap_or("unknown");
                return Err(Status::permission_denied(format!(
                    "permission denied: role {role} may not create containers with {what} (it reaches the host \
                     as root; needs admin, or allow_privileged_operator = true in agentd's config)"
                )));
            }
        }
        let rec = self.rt.create(spec).await.map_err(status)?;
        Ok(Response::new(pb::CreateContainerResponse { id: rec.id, warnings: vec![] }))
    }

    async fn start(
        &self,
        req: Request<pb::StartContainerRequest>,
    ) -> Result<Response<pb::StartContainerResponse>, Status> {
        self.rt.start(&req.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::StartContainerResponse {}))
    }

    async fn stop(
        &self,
        req: Request<pb::StopContainerRequest>,
    ) -> Result<Response<pb::StopContainerResponse>, Status> {
        let r = req.into_inner();
        let t = r.timeout_seconds.map(|s| Duration::from_secs(s as u64));
        self.rt.stop(&r.id, t).await.map_err(status)?;
        Ok(Response::new(pb::StopContainerResponse {}))
    }

    async fn kill(
        &self,
        req: Request<pb::KillContainerRequest>,
    ) -> Result<Response<pb::KillContainerResponse>, Status> {
        let r = req.into_inner();
        self.rt.kill(&r.id, &r.signal).await.map_err(status)?;
        Ok(Response::new(pb::KillContainerResponse {}))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveContainerRequest>,
    ) -> Result<Response<pb::RemoveContainerResponse>, Status> {
        let r = req.into_inner();
        self.rt.remove_with_volumes(&r.id, r.force, r.remove_volumes).await.map_err(status)?;
        Ok(Response::new(pb::RemoveContainerResponse {}))
    }

    async fn list(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Result<Response<pb::ListContainersResponse>, Status> {
        let all = req.into_inner().all;
        // Converted in place: cloning every record first cost as much as the conversion.
        let containers = self
            .rt
            .scan(|it| {
                let mut v: Vec<&crate::runtime::ContainerRecord> =
                    it.filter(|c| all || c.state == crate::runtime::State::Running).collect();
                v.sort_by_key(|c| std::cmp::Reverse(c.created_at));
                v.into_iter().map(|c| self.info(c)).collect()
            })
            .map_err(status)?;
        Ok(Response::new(pb::ListContainersResponse { containers }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectContainerRequest>,
    ) -> Result<Response<pb::InspectContainerResponse>, Status> {
        let c = self.rt.inspect(&req.into_inner().id).map_err(status)?;
        Ok(Response::new(pb::InspectContainerResponse { container: Some(self.info(&c)) }))
    }

    async fn wait(
        &self,
        req: Request<pb::WaitContainerRequest>,
    ) -> Result<Response<pb::WaitContainerResponse>, Status> {
        let r = req.into_inner();
        match r.condition.as_str() {
            "" | "not-running" => {
                let (exit_code, error) = self.rt.wait(&r.id).await.map_err(status)?;
                Ok(Response::new(pb::WaitContainerResponse { exit_code, error }))
            }
            "healthy" => {
                self.rt.wait_healthy(&r.id, r.fail_unhealthy).await.map_err(status)?;
                Ok(Response::new(pb::WaitContainerResponse { exit_code: 0, error: String::new() }))
            }
            other => Err(Status::invalid_argument(format!(
                "wait condition {other:?}: use not-running (the default) or healthy"
            ))),
        }
    }

    type LogsStream = Out<pb::LogEntry>;

    async fn logs(&self, req: Request<pb::LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        let r = req.into_inner();
        let slot = if r.follow { Some(self.followers.admit("logs --follow")?) } else { None };
        let opts = LogOptions {
            follow: r.follow,
            since: r.since,
            tail: r.tail,
            until: r.until,
            stdout: r.stdout,
            stderr: r.stderr,
        };
        let attrs: std::collections::HashMap<String, String> = if r.details {
            self.rt.log_attrs(&r.id).map_err(status)?.into_iter().collect()
        } else {
            Default::default()
        };
        let rx = self.rt.logs(&r.id, opts).map_err(status)?;
        let s = ReceiverStream::new(rx).map(move |rec| {
            let stream = match rec.stream {
                crate::logfile::Stream::Stdout => pb::LogStream::Stdout,
                crate::logfile::Stream::Stderr => pb::LogStream::Stderr,
            };
            Ok(pb::LogEntry { stream: stream as i32, time: rec.time, data: rec.data, attrs: attrs.clone() })
        });
        Ok(Response::new(match slot {
            Some(slot) => slot.hold(s),
            None => Box::pin(s),
        }))
    }

    type AttachStream = Out<pb::AttachResponse>;

    async fn attach(&self, req: Request<Streaming<pb::AttachRequest>>) -> Result<Response<Self::AttachStream>, Status> {
        use pb::attach_request::Msg;
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let mut input = req.into_inner();
        let (id, keep_stdin) = match input.message().await? {
            Some(pb::AttachRequest { msg: Some(Msg::Start(s)) }) => (s.id, s.keep_stdin),
            _ => return Err(Status::invalid_argument("the first attach message must be AttachStart")),
        };
        self.may_enter(caller.as_ref(), &id, "attach to")?;
        let slot = self.followers.admit("attach")?;
        let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(64);
        let out = self.rt.attach(&id, Some(stdin_rx)).map_err(status)?;
        let rt = Arc::clone(&self.rt);
        tokio::spawn(async move {
            let mut closed = false;
            while let Ok(Some(m)) = input.message().await {
                let done = match m.msg {
                    Some(Msg::Stdin(d)) => stdin_tx.send(d).await.is_err(),
                    Some(Msg::CloseStdin(true)) => {
                        closed = true;
                        true
                    }
                    _ => false,
                };
                if done {
                    break;
                }
            }
            if keep_stdin && !closed && !stdin_tx.is_closed() {
                // Detached: the container's stdin stays open while it runs.
                let _ = rt.wait(&id).await;
            }
            drop(stdin_tx);
        });
        let first = tokio_stream::once(Ok(pb::AttachResponse { msg: Some(pb::attach_response::Msg::Attached(true)) }));
        let rest = ReceiverStream::new(out).map(|c| Ok(output_to_attach(c)));
        Ok(Response::new(slot.hold(first.chain(rest))))
    }

    type ExecStream = Out<pb::ExecResponse>;

    async fn exec(&self, req: Request<Streaming<pb::ExecRequest>>) -> Result<Response<Self::ExecStream>, Status> {
        use pb::exec_request::Msg;
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let mut input = req.into_inner();
        let spec = match input.message().await? {
            Some(pb::ExecRequest { msg: Some(Msg::Start(s)) }) => s,
            _ => return Err(Status::invalid_argument("the first exec message must be ExecSpec")),
        };
        let id = spec.container_id.clone();
        self.may_enter(caller.as_ref(), &id, "exec in")?;
        let io = self.rt.exec(&id, exec_request(spec)).await.map_err(status)?;
        let tx = io.input;
        tokio::spawn(async move {
            while let Ok(Some(m)) = input.message().await {
                let i = match m.msg {
                    Some(Msg::Stdin(d)) => ExecInput::Data(d),
                    Some(Msg::Resize(s)) => {
                        ExecInput::Resize(s.rows.min(u16::MAX as u32) as u16, s.cols.min(u16::MAX as u32) as u16)
                    }
                    Some(Msg::CloseStdin(true)) => ExecInput::Close,
                    _ => continue,
                };
                if tx.send(i).await.is_err() {
                    break;
                }
            }
            let _ = tx.send(ExecInput::Close).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(io.output).map(|c| Ok(output_to_exec(c))))))
    }

    async fn update_resources(
        &self,
        req: Request<pb::UpdateResourcesRequest>,
    ) -> Result<Response<pb::UpdateResourcesResponse>, Status> {
        let r = req.into_inner();
        let upd =
            super::convert::update_resources_from_pb(&r.resources.unwrap_or_default(), "update").map_err(status)?;
        let back = self.rt.update(&r.id, upd).await.map_err(status)?;
        Ok(Response::new(pb::UpdateResourcesResponse { resources: Some(super::convert::resources_to_pb(&back)) }))
    }

    type StatsStream = Out<pb::StatsResponse>;

    async fn stats(&self, req: Request<pb::StatsRequest>) -> Result<Response<Self::StatsStream>, Status> {
        let r = req.into_inner();
        let rt = Arc::clone(&self.rt);
        let sample = move |ids: &[String]| -> Result<pb::StatsResponse, Status> {
            let cpus = std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1);
            let sys = crate::runtime::system_cpu_ns();
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            let stats = rt
                .stats(ids)
                .map_err(status)?
                .into_iter()
                .map(|(c, u)| pb::ContainerStats {
                    id: c.id,
                    name: c.name,
                    time: now,
                    cpu_usage_ns: u.cpu_usage_ns,
                    system_cpu_ns: sys,
                    online_cpus: cpus,
                    throttled_periods: u.throttled_periods,
                    throttled_ns: u.throttled_ns,
                    memory_usage: u.memory_usage,
                    memory_limit: u.memory_limit,
                    memory_cache: u.memory_cache,
                    pids: u.pids,
                    pids_limit: u.pids_limit,
                    blkio_read_bytes: u.blkio_read_bytes,
                    blkio_write_bytes: u.blkio_write_bytes,
                })
                .collect();
            Ok(pb::StatsResponse { stats })
        };
        let first = sample(&r.ids)?;
        if !r.stream {
            return Ok(Response::new(Box::pin(tokio_stream::once(Ok(first)))));
        }
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut next = Ok(first);
            loop {
                if tx.send(next).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                next = sample(&r.ids);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn exec_sync(&self, req: Request<pb::ExecSyncRequest>) -> Result<Response<pb::ExecSyncResponse>, Status> {
        let caller = req.extensions().get::<crate::auth::Caller>().cloned();
        let r = req.into_inner();
        let spec = r.spec.ok_or_else(|| Status::invalid_argument("spec is required"))?;
        let id = spec.container_id.clone();
        self.may_enter(caller.as_ref(), &id, "exec in")?;
        let mut io = self.rt.exec(&id, exec_request(spec)).await.map_err(status)?;
        // No input: the command's stdin ends at once.
        drop(std::mem::replace(&mut io.input, tokio::sync::mpsc::channel(1).0));
        let mut resp = pb::ExecSyncResponse::default();
        let collect = async {
            while let Some(c) = io.output.recv().await {
                match c {
                    OutputChunk::Stdout(d) => resp.stdout.extend(d),
                    OutputChunk::Stderr(d) => resp.stderr.extend(d),
                    OutputChunk::Exit(c) => resp.exit_code = c,
                }
            }
        };
        if r.timeout_seconds > 0 {
            if tokio::time::timeout(Duration::from_secs(r.timeout_seconds as u64), collect).await.is_err() {
                // Not left running behind the caller's back, and gone when we answer.
                io.terminate().await;
                return Err(Status::deadline_exceeded(format!(
                    "exec in {id} did not finish in {} s (killed)",
                    r.timeout_seconds
                )));
            }
        } else {
            collect.await;
        }
        Ok(Response::new(resp))
    }
}

impl ContainerApi {
    /// What the caller would get from another container by joining its namespaces
    /// (`--network/--ipc/--pid container:X`): whatever X has from the host.
    fn joined_privilege(&self, spec: &ContainerSpec) -> Option<String> {
        let default = &self.rt.config().userns.default;
        for (flag, v) in [("--network", &spec.network), ("--ipc", &spec.ipc), ("--pid", &spec.pid)] {
            let Some(target) = v.strip_prefix("container:") else { continue };
            let Ok(rec) = self.rt.resolve(target) else { continue };
            if let Some(what) = needs_privilege(&rec.spec, default, self.rt.cgroups().has_device_controller()) {
                return Some(format!("{flag} {v} (that container was created with {what})"));
            }
        }
        None
    }

    /// Refuses entering (exec, attach) a container that reaches the host as root to a
    /// caller who may not create such containers: it would get the same reach.
    fn may_enter(&self, caller: Option<&crate::auth::Caller>, id: &str, verb: &str) -> Result<(), Status> {
        if caller.is_some_and(|c| c.may_privileged) {
            return Ok(());
        }
        let rec = self.rt.resolve(id).map_err(status)?;
        let default = &self.rt.config().userns.default;
        if let Some(what) = needs_privilege(&rec.spec, default, self.rt.cgroups().has_device_controller()) {
            let role = caller.map(|c| c.role.as_str()).unwrap_or("unknown");
            return Err(Status::permission_denied(format!(
                "permission denied: role {role} may not {verb} container {}: it was created with {what} (it \
                 reaches the host as root; needs admin, or allow_privileged_operator = true in agentd's config)",
                rec.name
            )));
        }
        Ok(())
    }
}
