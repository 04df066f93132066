//! `push`: an image's blobs (config and layers, as the store keeps them) and its OCI
//! manifest uploaded to a registry with the same client, credentials and insecure-registry
//! rules as pull; blobs the registry already has are skipped. Progress per blob, like
//! docker's ("Pushing", "Pushed", "Layer already exists").

use super::pull::{event, registry_error, short, Credentials, PullEvent, Puller};
use super::reference::Reference;
use super::ImageError;
use oci_client::secrets::RegistryAuth;
use tokio::sync::mpsc;

impl Puller {
    /// Pushes the local image `input` names to its registry; returns the manifest digest
    /// and size.
    pub async fn push(
        &self,
        input: &str,
        creds: Option<Credentials>,
        insecure: bool,
        tx: mpsc::Sender<PullEvent>,
    ) -> Result<(String, usize), ImageError> {
        let r = Reference::parse(input)?;
        if r.digest.is_some() {
            return Err(ImageError::Pull {
                reference: input.to_string(),
                kind: super::pull::PullErrorKind::Registry,
                msg: "push a tag, not a digest".into(),
            });
        }
        // Until the last blob is sent (a removal meanwhile must not take them).
        let _busy = self.images.busy();
        let img = self.images.resolve(input)?;
        let images = std::sync::Arc::clone(&self.images);
        let name = input.to_string();
        let m = tokio::task::spawn_blocking(move || super::export::manifest_of(&images, &img, &name))
            .await
            .map_err(|e| ImageError::BadArchive(format!("push task: {e}")))??;
        let registry = Self::endpoint(&r.domain);
        let client = self.client(&registry, insecure)?;
        let oref = Self::oci_ref(&registry, &r);
        let err = |e: oci_client::errors::OciDistributionError| registry_error(&r.to_string(), &e);
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        let _ = tx.send(event("", format!("The push refers to repository [{}/{}]", r.domain, r.path), 0, 0)).await;
        client.auth(&oref, &auth, oci_client::RegistryOperation::Push).await.map_err(err)?;
        for (digest, path, size) in &m.blobs {
            let id = short(digest);
            if client.blob_exists(&oref, digest).await.map_err(err)? {
                let _ = tx.send(event(&id, "Layer already exists", *size, *size)).await;
                continue;
            }
            let _ = tx.send(event(&id, "Pushing", 0, *size)).await;
            let data = tokio::fs::read(path).await.map_err(super::io_at(path))?;
            client.push_blob(&oref, data, digest).await.map_err(err)?;
            let _ = tx.send(event(&id, "Pushed", *size, *size)).await;
        }
        let ct = http::HeaderValue::from_static("application/vnd.oci.image.manifest.v1+json");
        client.push_manifest_raw(&oref, m.bytes.clone(), ct).await.map_err(err)?;
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        let _ = tx.send(event("", format!("{tag}: digest: {} size: {}", m.digest, m.bytes.len()), 0, 0)).await;
        Ok((m.digest, m.bytes.len()))
    }
}
