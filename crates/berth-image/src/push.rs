//! `berth push`: send a stored image's blobs and manifest to a registry,
//! through the same bounded client as a pull (`fetch`).

use std::sync::Arc;

use berth_core::api::ImageSummary;
use berth_core::{Digest, ImageRef};

use crate::config::Source;
use crate::error::{ImageError, Result};
use crate::fetch::{Bounds, RegistryClient};
use crate::progress::Progress;
use crate::store::ImageStore;

impl ImageStore {
    /// Pushes the local image `reference` to the registry its name points
    /// at. Blobs the registry already has are not sent again.
    pub async fn push(self: &Arc<Self>, reference: &str, progress: &Progress) -> Result<ImageSummary> {
        let r = ImageRef::parse(reference)?;
        let anonymous = self.is_anonymous(r.registry());
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
        let bounds = Bounds {
            request: std::time::Duration::from_secs(self.config.registry_timeout_secs),
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(self.config.pull_timeout_secs),
        };
        let creds = self.credentials.get(&src.registry)?;
        let client = RegistryClient::new(&src, r.repository(), creds, bounds)?;

        let mut blobs: Vec<(Digest, u64)> = img.layers.iter().map(|l| (l.digest.clone(), l.size)).collect();
        blobs.push((img.config_digest.clone(), img.config_size));
        for (d, size) in blobs {
            if client.blob_exists(&d.to_string()).await? {
                progress.blob(&d, size, size, "exists");
                continue;
            }
            let file = tokio::fs::File::from_std(self.blobs.open_read(&d)?);
            let (p, digest) = (progress.clone(), d.clone());
            client.upload_blob(&d.to_string(), size, file, move |now| p.blob(&digest, now, size, "uploading")).await?;
            progress.blob(&d, size, size, "done");
        }
        let manifest = self.blobs.read(&img.digest)?;
        let reference = match (r.tag(), r.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => d.to_string(),
            (None, None) => berth_core::reference::DEFAULT_TAG.to_string(),
        };
        client.put_manifest(&reference, &img.media_type, manifest.into()).await?;
        let repo_digest = format!("{}@{}", r.name(), img.digest);
        // Only adds to an image that still exists (an rmi may have run meanwhile).
        self.store.add_repo_digest(&img.digest, &repo_digest)?;
        let rec = self.store.get_image(&img.digest)?.unwrap_or(img);
        self.summary(&rec)
    }
}
