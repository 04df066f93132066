//! ImageService: decode, validate, call the image store, map errors.

use super::convert::{image_status, image_to_pb, status};
use crate::image::archive::{self, ImportOptions};
use crate::image::pull::{Credentials, Puller};
use crate::runtime::Runtime;
use agent_proto::v1 as pb;
use agent_proto::v1::image_service_server::ImageService;
use std::io::Write;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The ImageService implementation.
pub struct ImageApi {
    pub rt: Arc<Runtime>,
    pub puller: Arc<Puller>,
}

fn credentials(a: Option<pb::RegistryAuth>) -> Option<Credentials> {
    a.filter(|a| !a.username.is_empty()).map(|a| Credentials { username: a.username, password: a.password })
}

/// Sends what the archive writer produces as stream chunks.
struct ChunkWriter(tokio::sync::mpsc::Sender<Result<pb::SaveChunk, Status>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(pb::SaveChunk { data: buf.to_vec() }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tonic::async_trait]
impl ImageService for ImageApi {
    type SaveStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SaveChunk, Status>> + Send>>;

    async fn save(&self, req: Request<pb::SaveImagesRequest>) -> Result<Response<Self::SaveStream>, Status> {
        let names = req.into_inner().images;
        if names.is_empty() {
            return Err(Status::invalid_argument("name at least one image to save"));
        }
        let images = Arc::clone(self.rt.images());
        let busy = images.busy();
        for n in &names {
            images.resolve(n).map_err(|e| image_status(&e))?;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let _busy = busy;
            let w = std::io::BufWriter::with_capacity(1 << 20, ChunkWriter(tx.clone()));
            if let Err(e) = crate::image::export::save(&images, &names, w) {
                let _ = tx.blocking_send(Err(image_status(&e)));
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn import(&self, req: Request<Streaming<pb::ImportRequest>>) -> Result<Response<pb::ImportResponse>, Status> {
        use pb::import_request::Msg;
        let mut input = req.into_inner();
        let opts = match input.message().await? {
            Some(pb::ImportRequest { msg: Some(Msg::Options(o)) }) => o,
            _ => return Err(Status::invalid_argument("the first import message must be ImportOptions")),
        };
        let images = Arc::clone(self.rt.images());
        let dir = images.temp_dir().map_err(|e| image_status(&e))?;
        let file = dir.join("archive");
        let res = async {
            let mut f =
                std::fs::File::create(&file).map_err(|e| Status::internal(format!("{}: {e}", file.display())))?;
            while let Some(m) = input.message().await? {
                if let Some(Msg::Chunk(c)) = m.msg {
                    f.write_all(&c).map_err(|e| Status::internal(format!("{}: {e}", file.display())))?;
                }
            }
            drop(f);
            let o = ImportOptions { rootfs: opts.rootfs, tags: opts.tags, cmd: opts.cmd, env: opts.env };
            let file2 = file.clone();
            let busy = images.busy();
            tokio::task::spawn_blocking(move || {
                let _busy = busy;
                archive::import(&images, &file2, &o)
            })
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        let recs = res?;
        for r in &recs {
            let tags = r.familiar_tags().join(",");
            self.rt.log_event("image", "import", &r.id, &tags, &[("image", tags.clone())]);
        }
        Ok(Response::new(pb::ImportResponse { images: recs.iter().map(image_to_pb).collect() }))
    }

    type PullStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::PullProgress, Status>> + Send>>;

    async fn pull(&self, req: Request<pb::PullRequest>) -> Result<Response<Self::PullStream>, Status> {
        let r = req.into_inner();
        // Refuse a bad reference before the stream starts, with InvalidArgument.
        crate::image::reference::Reference::parse(&r.reference)
            .map_err(|e| image_status(&crate::image::ImageError::from(e)))?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(64);
        let puller = Arc::clone(&self.puller);
        let creds = credentials(r.auth);
        let reference = r.reference.clone();
        let insecure = r.insecure;
        let rt = Arc::clone(&self.rt);
        let job = tokio::spawn(async move {
            let r = puller.pull(&reference, creds, insecure, ev_tx).await;
            if let Ok(img) = &r {
                rt.log_event("image", "pull", &img.id, &reference, &[("image", reference.clone())]);
            }
            r
        });
        // A client that goes away stops the download; what was fetched stays for a resume.
        tokio::spawn(relay(ev_rx, tx, job, "pull", |img| {
            Some(pb::PullProgress { image: Some(image_to_pb(&img)), ..Default::default() })
        }));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    type PushStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::PullProgress, Status>> + Send>>;

    async fn push(&self, req: Request<pb::PushRequest>) -> Result<Response<Self::PushStream>, Status> {
        let r = req.into_inner();
        crate::image::reference::Reference::parse(&r.reference)
            .map_err(|e| image_status(&crate::image::ImageError::from(e)))?;
        // The image must be here before the stream starts (NotFound, not a stream error).
        self.rt.images().resolve(&r.reference).map_err(|e| image_status(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(64);
        let puller = Arc::clone(&self.puller);
        let creds = credentials(r.auth);
        let (reference, insecure) = (r.reference.clone(), r.insecure);
        let rt = Arc::clone(&self.rt);
        let job = tokio::spawn(async move {
            let res = puller.push(&reference, creds, insecure, ev_tx).await;
            if res.is_ok() {
                rt.log_event("image", "push", &reference, &reference, &[("image", reference.clone())]);
            }
            res
        });
        tokio::spawn(relay(ev_rx, tx, job, "push", |_| None));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    type BuildStream = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::BuildProgress, Status>> + Send>>;

    async fn build(&self, req: Request<Streaming<pb::BuildRequest>>) -> Result<Response<Self::BuildStream>, Status> {
        use pb::build_request::Msg;
        let mut input = req.into_inner();
        let o = match input.message().await? {
            Some(pb::BuildRequest { msg: Some(Msg::Options(o)) }) => o,
            _ => return Err(Status::invalid_argument("the first build message must be BuildOptions")),
        };
        let images = Arc::clone(self.rt.images());
        let dir = images.temp_dir().map_err(|e| image_status(&e))?;
        let tar_path = dir.join("context.tar");
        let ctx = dir.join("context");
        let received = async {
            let mut f = std::fs::File::create(&tar_path)
                .map_err(|e| Status::internal(format!("{}: {e}", tar_path.display())))?;
            while let Some(m) = input.message().await? {
                if let Some(Msg::Chunk(c)) = m.msg {
                    f.write_all(&c).map_err(|e| Status::internal(format!("{}: {e}", tar_path.display())))?;
                }
            }
            drop(f);
            std::fs::create_dir_all(&ctx).map_err(|e| Status::internal(format!("{}: {e}", ctx.display())))?;
            let (t, c, d) = (tar_path.clone(), ctx.clone(), o.dockerfile.clone());
            let d = if d.is_empty() { "Dockerfile".to_string() } else { d };
            tokio::task::spawn_blocking(move || crate::runtime::build::unpack_context(&t, &c, &d))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(status)
        }
        .await;
        if let Err(e) = received {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let opts = crate::runtime::build::BuildOptions {
            tags: o.tags,
            dockerfile: o.dockerfile,
            build_args: o.build_args.into_iter().collect(),
            no_cache: o.no_cache,
            network: o.network,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::channel(256);
        let rt = Arc::clone(&self.rt);
        let job = tokio::spawn(async move {
            let r = rt.build(&ctx, opts, ev_tx).await;
            let _ = std::fs::remove_dir_all(&dir);
            r
        });
        tokio::spawn(async move {
            use crate::runtime::build::BuildEvent;
            while let Some(ev) = ev_rx.recv().await {
                let msg = match ev {
                    BuildEvent::Line(line) => pb::BuildProgress { line, ..Default::default() },
                    BuildEvent::Output(output) => pb::BuildProgress { output, ..Default::default() },
                };
                // A client that went away does not stop the build: its containers must be
                // cleaned up by the build itself, not abandoned half-way.
                let _ = tx.send(Ok(msg)).await;
            }
            let last = match job.await {
                Ok(Ok(img)) => Ok(pb::BuildProgress { image: Some(image_to_pb(&img)), ..Default::default() }),
                Ok(Err(e)) => Err(status(e)),
                Err(e) => Err(Status::internal(format!("build task: {e}"))),
            };
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn login(&self, req: Request<pb::LoginRequest>) -> Result<Response<pb::LoginResponse>, Status> {
        let r = req.into_inner();
        let registry = if r.registry.is_empty() { "docker.io".to_string() } else { r.registry };
        if registry.contains('/') || registry.contains(char::is_whitespace) {
            return Err(Status::invalid_argument(format!("invalid registry {registry:?}: use host[:port]")));
        }
        let creds =
            credentials(r.auth).ok_or_else(|| Status::invalid_argument("login needs a username and a password"))?;
        self.puller.login(&registry, &creds, r.insecure).await.map_err(|e| image_status(&e))?;
        Ok(Response::new(pb::LoginResponse { status: "Login Succeeded".into() }))
    }

    async fn commit(&self, req: Request<pb::CommitRequest>) -> Result<Response<pb::ImageInfo>, Status> {
        let r = req.into_inner();
        let img = self.rt.commit(&r.container, &r.reference).await.map_err(status)?;
        Ok(Response::new(image_to_pb(&img)))
    }

    async fn tag(&self, req: Request<pb::TagImageRequest>) -> Result<Response<pb::ImageInfo>, Status> {
        let r = req.into_inner();
        let images = Arc::clone(self.rt.images());
        let (source, target) = (r.source.clone(), r.target.clone());
        let img = tokio::task::spawn_blocking(move || images.tag(&source, &target))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))?;
        self.rt.log_event("image", "tag", &img.id, &r.target, &[("image", r.target.clone())]);
        Ok(Response::new(image_to_pb(&img)))
    }

    async fn history(
        &self,
        req: Request<pb::ImageHistoryRequest>,
    ) -> Result<Response<pb::ImageHistoryResponse>, Status> {
        let images = Arc::clone(self.rt.images());
        let name = req.into_inner().image;
        let steps = tokio::task::spawn_blocking(move || images.history(&name))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))?;
        let entries = steps
            .into_iter()
            .map(|s| pb::HistoryEntry {
                created_by: s.created_by,
                created_at: s.created_at,
                empty_layer: s.empty_layer,
                diff_id: s.diff_id,
                size: s.size,
                shared_with: s.shared_with,
            })
            .collect();
        Ok(Response::new(pb::ImageHistoryResponse { entries }))
    }

    async fn prune(&self, req: Request<pb::PruneImagesRequest>) -> Result<Response<pb::PruneImagesResponse>, Status> {
        let req = req.into_inner();
        let all = req.all;
        let filter = super::convert::prune_filter_from_pb(req.filters).map_err(status)?;
        let users = self.rt.container_images().map_err(status)?;
        let images = Arc::clone(self.rt.images());
        let select = move |i: &crate::image::ImageRecord| filter.matches_at(&i.config.labels, i.created_at);
        let (deleted, reclaimed_bytes) = tokio::task::spawn_blocking(move || images.prune(&users, all, &select))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))?;
        Ok(Response::new(pb::PruneImagesResponse { deleted, reclaimed_bytes }))
    }

    async fn disk_usage(&self, _req: Request<pb::DiskUsageRequest>) -> Result<Response<pb::DiskUsageResponse>, Status> {
        let cs = self.rt.container_layers().map_err(status)?;
        let images = Arc::clone(self.rt.images());
        let u = tokio::task::spawn_blocking(move || images.disk_usage(&cs))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))?;
        Ok(Response::new(pb::DiskUsageResponse {
            images: u.images,
            layers: u.layers,
            layers_bytes: u.layers_bytes,
            shared_bytes: u.shared_bytes,
            unique_bytes: u.unique_bytes,
            images_bytes_naive: u.images_bytes_naive,
            containers: u.containers,
            containers_bytes: u.containers_bytes,
            reclaimable_bytes: u.reclaimable_bytes,
        }))
    }

    async fn list(&self, _req: Request<pb::ListImagesRequest>) -> Result<Response<pb::ListImagesResponse>, Status> {
        let mut v = self.rt.images().list().map_err(|e| image_status(&e))?;
        v.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        Ok(Response::new(pb::ListImagesResponse { images: v.iter().map(image_to_pb).collect() }))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectImageRequest>,
    ) -> Result<Response<pb::InspectImageResponse>, Status> {
        let i = self.rt.images().resolve(&req.into_inner().image).map_err(|e| image_status(&e))?;
        Ok(Response::new(pb::InspectImageResponse { image: Some(image_to_pb(&i)) }))
    }

    async fn remove(&self, req: Request<pb::RemoveImageRequest>) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let r = req.into_inner();
        let users = self.rt.container_images().map_err(status)?;
        let images = Arc::clone(self.rt.images());
        let (untagged, deleted) = tokio::task::spawn_blocking(move || images.remove(&r.image, r.force, &users))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| image_status(&e))?;
        for t in &untagged {
            self.rt.log_event("image", "untag", t, t, &[("image", t.clone())]);
        }
        for d in &deleted {
            self.rt.log_event("image", "delete", d, d, &[("image", d.clone())]);
        }
        Ok(Response::new(pb::RemoveImageResponse { untagged, deleted }))
    }
}

/// Relays a pull's or push's progress to the client's stream, then `last` of the job's
/// result (or its error); a client that goes away aborts the job.
async fn relay<T: Send + 'static>(
    mut events: tokio::sync::mpsc::Receiver<crate::image::pull::PullEvent>,
    tx: tokio::sync::mpsc::Sender<Result<pb::PullProgress, Status>>,
    job: tokio::task::JoinHandle<Result<T, crate::image::ImageError>>,
    what: &'static str,
    last: impl FnOnce(T) -> Option<pb::PullProgress>,
) {
    while let Some(ev) = events.recv().await {
        let msg = pb::PullProgress { id: ev.id, status: ev.status, current: ev.current, total: ev.total, image: None };
        if tx.send(Ok(msg)).await.is_err() {
            job.abort();
            return;
        }
    }
    let end = match job.await {
        Ok(Ok(v)) => match last(v) {
            Some(m) => Ok(m),
            None => return,
        },
        Ok(Err(e)) => Err(image_status(&e)),
        Err(e) => Err(Status::internal(format!("{what} task: {e}"))),
    };
    let _ = tx.send(end).await;
}
