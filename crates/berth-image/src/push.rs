//! `berth push`: send a stored image's blobs and manifest to a registry.

use std::sync::Arc;

use berth_core::api::ImageSummary;
use berth_core::{Digest, ImageRef};
use futures::StreamExt;
use oci_client::errors::OciDistributionError;

use crate::config::Source;
use crate::error::{ImageError, Result};
use crate::progress::Progress;
use crate::registry::{client_for, map_err, oci_ref};
use crate::store::ImageStore;

impl ImageStore {
    /// Pushes the local image `reference` to the registry its name points
    /// at. Blobs the registry already has are not sent again.
    pub async fn push(self: &Arc<Self>, reference: &str, progress: &Progress) -> Result<ImageSummary> {
        let r = ImageRef::parse(reference)?;
        let anonymous = matches!(self.auth_for(r.registry()), Ok(oci_client::secrets::RegistryAuth::Anonymous));
        self.push_inner(reference, progress)
            .await
            .map_err(|e| crate::registry::explain_anonymous(e, anonymous, &r.familiar()))
    }

    async fn push_inner(self: &Arc<Self>, reference: &str, progress: &Progress) -> Result<ImageSummary> {
        // The name says where the image goes, so it must be a name the image
        // has: never an ID that would parse as a Docker Hub repository.
        let r = ImageRef::parse(reference)?;
        let named = match r.digest() {
            Some(d) => self.store.get_image(d)?.map(|_| d.clone()),
            None => self.store.resolve_tag(&r.to_string())?,
        };
        let Some(digest) = named else {
            return Err(ImageError::Invalid(format!(
                "{reference} is not a name of a stored image; push takes NAME[:TAG] (see 'berth images'), tag the image first with 'berth tag'"
            )));
        };
        let img = self.store.get_image(&digest)?.ok_or_else(|| ImageError::NotFound { reference: reference.into() })?;
        let src = Source {
            registry: r.registry().to_string(),
            plain_http: self.config.is_insecure(r.registry()),
            mirror: false,
        };
        let client = client_for(&src, self.config.concurrent_downloads);
        let auth = self.auth_for(&src.registry)?;
        let oref = oci_ref(&r, &src.registry);
        let shown = r.familiar();
        // oci-client authenticates lazily per operation; do it once for push.
        client
            .auth(&oref, &auth, oci_client::RegistryOperation::Push)
            .await
            .map_err(|e| map_err(&src.registry, &shown, e))?;

        let mut blobs: Vec<(Digest, u64)> = img.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
        blobs.push((img.config_digest.clone(), img.config_size));
        for (d, size) in blobs {
            let exists =
                client.blob_exists(&oref, &d.to_string()).await.map_err(|e| map_err(&src.registry, &shown, e))?;
            if exists {
                progress.blob(&d, size, size, "exists");
                continue;
            }
            let file = tokio::fs::File::from_std(self.blobs.open_read(&d)?);
            let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = Arc::clone(&sent);
            let p = progress.clone();
            let digest = d.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
                let chunk = chunk.map_err(OciDistributionError::IoError)?;
                let now =
                    counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed) + chunk.len() as u64;
                p.blob(&digest, now, size, "uploading");
                Ok(chunk)
            });
            client
                .push_blob_stream(&oref, stream, &d.to_string(), Some(size))
                .await
                .map_err(|e| map_err(&src.registry, &shown, e))?;
            progress.blob(&d, size, size, "done");
        }
        let manifest = self.blobs.read(&img.digest)?;
        let content_type = img.media_type.parse().map_err(|_| ImageError::InvalidManifest {
            what: "stored manifest".into(),
            detail: format!("media type {:?}", img.media_type),
        })?;
        client.push_manifest_raw(&oref, manifest, content_type).await.map_err(|e| map_err(&src.registry, &shown, e))?;
        let repo_digest = format!("{}@{}", r.name(), img.digest);
        // Only adds to an image that still exists (an rmi may have run meanwhile).
        self.store.add_repo_digest(&img.digest, &repo_digest)?;
        let rec = self.store.get_image(&img.digest)?.unwrap_or(img);
        self.summary(&rec)
    }
}
