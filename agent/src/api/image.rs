//! ImageService: decode, validate, call the image store, map errors.

use super::convert::{image_status, image_to_pb, status};
use crate::image::archive::{self, ImportOptions};
use crate::runtime::Runtime;
use agent_proto::v1 as pb;
use agent_proto::v1::image_service_server::ImageService;
use std::io::Write;
use std::sync::Arc;
use tonic::{Request, Response, Status, Streaming};

/// The ImageService implementation.
pub struct ImageApi {
    pub rt: Arc<Runtime>,
}

#[tonic::async_trait]
impl ImageService for ImageApi {
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
            tokio::task::spawn_blocking(move || archive::import(&images, &file2, &o))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| image_status(&e))
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        let recs = res?;
        Ok(Response::new(pb::ImportResponse { images: recs.iter().map(image_to_pb).collect() }))
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
        Ok(Response::new(pb::RemoveImageResponse { untagged, deleted }))
    }
}
