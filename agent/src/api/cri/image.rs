//! ImageService: ListImages, ImageStatus, PullImage, RemoveImage, ImageFsInfo.

use super::convert::{credentials, now_ns, to_image};
use super::CriImages;
use crate::api::convert::{image_status, status};
use crate::image::ImageError;
use agent_proto::cri as pb;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The image a request names (`ImageSpec.image`), required.
fn named(spec: Option<pb::ImageSpec>) -> Result<String, Status> {
    match spec.map(|i| i.image) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(Status::invalid_argument("image.image is required")),
    }
}

#[tonic::async_trait]
impl pb::image_service_server::ImageService for CriImages {
    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        let want = req.into_inner().filter.and_then(|f| f.image).map(|i| i.image).unwrap_or_default();
        let images = if want.is_empty() {
            self.rt.images().list().map_err(|e| image_status(&e))?
        } else {
            self.rt.images().resolve(&want).into_iter().collect()
        };
        Ok(Response::new(pb::ListImagesResponse { images: images.iter().map(to_image).collect() }))
    }

    async fn image_status(
        &self,
        req: Request<pb::ImageStatusRequest>,
    ) -> Result<Response<pb::ImageStatusResponse>, Status> {
        let name = named(req.into_inner().image)?;
        // A missing image is not an error here: kubelet asks before it pulls.
        let image = self.rt.images().resolve(&name).ok().map(|i| to_image(&i));
        Ok(Response::new(pb::ImageStatusResponse { image, info: HashMap::new() }))
    }

    async fn pull_image(&self, req: Request<pb::PullImageRequest>) -> Result<Response<pb::PullImageResponse>, Status> {
        let r = req.into_inner();
        let name = named(r.image)?;
        let creds = credentials(r.auth)?;
        // Nobody follows a CRI pull's progress.
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let img = self.puller.pull(&name, creds, false, tx).await.map_err(|e| image_status(&e))?;
        Ok(Response::new(pb::PullImageResponse { image_ref: img.id }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        let name = req.into_inner().image.map(|i| i.image).unwrap_or_default();
        let users = self.rt.container_images().map_err(status)?;
        let images = Arc::clone(self.rt.images());
        let res = tokio::task::spawn_blocking(move || images.remove(&name, false, &users))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        // Idempotent: an image already gone is removed.
        match res {
            Ok(_) | Err(ImageError::NotFound(_)) => Ok(Response::new(pb::RemoveImageResponse {})),
            Err(e) => Err(image_status(&e)),
        }
    }

    async fn image_fs_info(
        &self,
        _: Request<pb::ImageFsInfoRequest>,
    ) -> Result<Response<pb::ImageFsInfoResponse>, Status> {
        let layers = self.rt.config().root.join("layers");
        let dir = layers.clone();
        let used = tokio::task::spawn_blocking(move || crate::image::usage::du(&dir)).await.unwrap_or(0);
        let fs = pb::FilesystemUsage {
            timestamp: now_ns(),
            fs_id: Some(pb::FilesystemIdentifier { mountpoint: layers.display().to_string() }),
            used_bytes: Some(pb::UInt64Value { value: used }),
            inodes_used: None,
        };
        Ok(Response::new(pb::ImageFsInfoResponse { image_filesystems: vec![fs], container_filesystems: vec![] }))
    }
}
