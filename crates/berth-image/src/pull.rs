//! `berth pull`: fetch an image from its registry (mirrors first), verify
//! every byte against its digest, unpack it and record it.

use std::io::Write;
use std::sync::Arc;

use berth_core::api::{BlobProgress, ImageSummary, ProgressEvent};
use berth_core::{Digest, ImageRef, Platform};
use futures::StreamExt;

use crate::config::Source;
use crate::error::{classify_io, ImageError, Result};
use crate::fetch::{Bounds, RegistryClient, MAX_CONFIG_BYTES};
use crate::manifest::{self, Desc, Parsed};
use crate::progress::{Progress, Throttle};
use crate::registry::worth_falling_back;
use crate::store::{ImageStore, NewImage, PinGuard};

impl ImageStore {
    /// Pulls `reference` for `platform` (the host's by default). On error
    /// the store is as it was: new blobs are removed, nothing is recorded.
    pub async fn pull(
        self: &Arc<Self>,
        reference: &str,
        platform: Option<&str>,
        progress: &Progress,
    ) -> Result<ImageSummary> {
        let r = ImageRef::parse(reference)?;
        let platform = match platform {
            Some(p) => Platform::parse(p).map_err(|e| ImageError::Invalid(e.to_string()))?,
            None => Platform::host(),
        };
        let sources = self.config.sources(r.registry());
        // One deadline for the whole pull, across mirrors.
        let bounds = Bounds {
            request: std::time::Duration::from_secs(self.config.registry_timeout_secs),
            deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(self.config.pull_timeout_secs),
        };
        // One operation across all sources: what a failed attempt created is
        // rolled back when the pull as a whole fails.
        let mut op = self.pin();
        let mut result =
            Err(ImageError::Unreachable { registry: r.registry().into(), detail: "no source to try".into() });
        for src in &sources {
            progress.send(ProgressEvent::Source { registry: src.registry.clone(), mirror: src.mirror });
            let anonymous = self.is_anonymous(&src.registry);
            result = self
                .pull_from(&r, src, &platform, progress, &mut op, bounds)
                .await
                .map_err(|e| crate::registry::explain_anonymous(e, anonymous, &r.familiar()));
            match &result {
                Ok(_) => break,
                Err(e) if src.mirror && worth_falling_back(e) => {
                    progress.warn(format!("mirror {} failed: {e}; trying the next source", src.registry));
                }
                Err(_) => break,
            }
        }
        result
    }

    async fn pull_from(
        self: &Arc<Self>,
        r: &ImageRef,
        src: &Source,
        platform: &Platform,
        progress: &Progress,
        pins: &mut PinGuard,
        bounds: Bounds,
    ) -> Result<ImageSummary> {
        let creds = self.credentials.get(&src.registry)?;
        let client = RegistryClient::new(src, r.repository(), creds, bounds)?;
        let shown = r.familiar();
        let accept = berth_core::media::MANIFEST_ACCEPT.join(", ");
        let by_tag_or_digest = match (r.digest(), r.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => berth_core::reference::DEFAULT_TAG.to_string(),
        };
        let fetch_manifest = |reference: String| {
            let client = &client;
            let accept = &accept;
            let shown = &shown;
            async move {
                // Name what the user asked for, not the registry's path.
                client.manifest(&reference, accept).await.map_err(|e| match e {
                    ImageError::ManifestUnknown { registry, .. } => {
                        ImageError::ManifestUnknown { reference: shown.clone(), registry }
                    }
                    other => other,
                })
            }
        };
        let top = fetch_manifest(by_tag_or_digest).await?;
        let top_digest = Digest::of(&top);
        if let Some(want) = r.digest() {
            if *want != top_digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("manifest of {shown}"),
                    expected: want.to_string(),
                    actual: top_digest.to_string(),
                });
            }
        }
        let (manifest_bytes, manifest, index_digest) = match manifest::parse(&top, None)? {
            Parsed::Manifest(m) => (top, m, None),
            Parsed::Index { entries, .. } => {
                let candidates: Vec<_> = entries
                    .iter()
                    .filter(|e| e.media_type.is_manifest())
                    .map(|e| {
                        let (os, arch, v) = e.platform.clone().unwrap_or_default();
                        (e.desc.clone(), os, arch, v)
                    })
                    .collect();
                let chosen: Desc =
                    platform.choose(&candidates).cloned().ok_or_else(|| ImageError::NoMatchingPlatform {
                        reference: shown.clone(),
                        platform: platform.to_string(),
                        available: candidates
                            .iter()
                            .map(|(_, os, a, v)| {
                                format!("{os}/{a}{}", v.as_ref().map(|v| format!("/{v}")).unwrap_or_default())
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                self.put_blob(Some(&top_digest), &top, pins)?;
                let bytes = fetch_manifest(chosen.digest.to_string()).await?;
                let actual = Digest::of(&bytes);
                if actual != chosen.digest {
                    return Err(ImageError::DigestMismatch {
                        what: format!("platform manifest of {shown}"),
                        expected: chosen.digest.to_string(),
                        actual: actual.to_string(),
                    });
                }
                match manifest::parse(&bytes, Some(&chosen.media_type))? {
                    Parsed::Manifest(m) => (bytes, m, Some(top_digest.clone())),
                    Parsed::Index { .. } => {
                        return Err(ImageError::InvalidManifest {
                            what: "image index".into(),
                            detail: "nested indexes are not supported".into(),
                        })
                    }
                }
            }
        };
        let manifest_digest = Digest::of(&manifest_bytes);
        progress.send(ProgressEvent::Resolved {
            reference: r.to_string(),
            digest: manifest_digest.to_string(),
            blobs: manifest
                .layers
                .iter()
                .map(|l| BlobProgress {
                    digest: l.digest.to_string(),
                    current: 0,
                    total: l.size,
                    state: "waiting".into(),
                })
                .collect(),
        });

        // Declared sizes are checked before anything is fetched: a layer
        // may not claim more than an unpacked layer may hold.
        let max_blob = self.unpack_limits().stream_limit();
        for l in &manifest.layers {
            if l.size > max_blob {
                return Err(ImageError::InvalidManifest {
                    what: format!("manifest of {shown}"),
                    detail: format!(
                        "layer {} declares {} bytes, over the {max_blob} bytes berth accepts (raise images.max_layer_bytes if the image is trusted)",
                        l.digest, l.size
                    ),
                });
            }
        }

        // Config: small, fetched whole and verified; a huge one is refused unread.
        if manifest.config.size > MAX_CONFIG_BYTES {
            return Err(ImageError::InvalidManifest {
                what: format!("config of {shown}"),
                detail: format!("{} bytes is larger than the {MAX_CONFIG_BYTES} berth accepts", manifest.config.size),
            });
        }
        let config_bytes = client.small_blob(&manifest.config.digest.to_string(), manifest.config.size).await?;
        if config_bytes.len() as u64 != manifest.config.size {
            return Err(ImageError::SizeMismatch {
                digest: manifest.config.digest.to_string(),
                expected: manifest.config.size,
                actual: config_bytes.len() as u64,
            });
        }
        let actual = Digest::of(&config_bytes);
        if actual != manifest.config.digest {
            return Err(ImageError::DigestMismatch {
                what: format!("config of {shown} from {}", src.registry),
                expected: manifest.config.digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let config = manifest::parse_config(&config_bytes)?;
        if config.diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::InvalidManifest {
                what: format!("image {shown}"),
                detail: format!(
                    "{} layers but {} diff_ids in the config",
                    manifest.layers.len(),
                    config.diff_ids.len()
                ),
            });
        }

        // Layers: downloaded concurrently, skipping blobs already here, and
        // each unpacked (on the blocking pool) as soon as it is verified, so
        // unpacking overlaps the downloads still running.
        for (l, diff_id) in manifest.layers.iter().zip(&config.diff_ids) {
            pins.pin(&l.digest);
            pins.pin(diff_id);
        }
        let downloads = futures::stream::iter(
            manifest.layers.iter().cloned().zip(config.diff_ids.iter().cloned()).map(|(layer, diff_id)| {
                let client = &client;
                async move {
                    let written = self.fetch_layer(client, &layer, progress).await;
                    let unpacked = match &written {
                        Ok(_) => {
                            progress.blob(&layer.digest, layer.size, layer.size, "unpacking");
                            let this = Arc::clone(self);
                            let (l, d) = (layer.clone(), diff_id.clone());
                            tokio::task::spawn_blocking(move || this.unpack_one(&l, &d)).await.unwrap_or_else(|e| {
                                Err(ImageError::Io {
                                    path: "unpack task".into(),
                                    source: std::io::Error::other(e.to_string()),
                                })
                            })
                        }
                        Err(_) => Ok(false),
                    };
                    (written, unpacked, diff_id)
                }
            }),
        )
        .buffer_unordered(self.config.concurrent_downloads);
        let results: Vec<_> = downloads.collect().await;
        let mut first_err = None;
        for (written_blob, unpacked, diff_id) in results {
            match written_blob {
                Ok(Some(d)) => pins.created_blob(&d),
                Ok(None) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            match unpacked {
                Ok(true) => pins.created_layer(&diff_id),
                Ok(false) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }

        let mut tags = Vec::new();
        if r.tag().is_some() {
            tags.push(ImageRef::parse_name_only(&format!("{}:{}", r.name(), r.tag().unwrap_or_default()))?.to_string());
        }
        let repo_digest = format!("{}@{}", r.name(), index_digest.as_ref().unwrap_or(&manifest_digest));
        let new = NewImage {
            manifest_bytes,
            manifest: manifest.clone(),
            config_bytes,
            index_digest,
            source: "pull",
            tags,
            repo_digests: vec![repo_digest],
        };
        let summary = self.commit_blocking(new, pins).await?;
        for l in &manifest.layers {
            progress.blob(&l.digest, l.size, l.size, "done");
        }
        Ok(summary)
    }

    /// Runs [`ImageStore::commit`] on the blocking pool (unpacking is disk
    /// work) and summarises the result.
    pub(crate) async fn commit_blocking(self: &Arc<Self>, new: NewImage, op: &mut PinGuard) -> Result<ImageSummary> {
        let this = Arc::clone(self);
        // The operation moves to the blocking task and comes back with it.
        let mut taken = std::mem::replace(op, self.pin());
        let (result, taken) = tokio::task::spawn_blocking(move || {
            let result = this.commit(new, &mut taken).and_then(|rec| this.summary(&rec));
            (result, taken)
        })
        .await
        .map_err(|e| ImageError::Io { path: "unpack task".into(), source: std::io::Error::other(e.to_string()) })?;
        *op = taken;
        result
    }

    /// Downloads one layer into the blob store. Returns its digest when it
    /// was newly written, `None` when it was already present.
    async fn fetch_layer(&self, client: &RegistryClient, layer: &Desc, progress: &Progress) -> Result<Option<Digest>> {
        if self.blobs.size(&layer.digest) == Some(layer.size) {
            progress.blob(&layer.digest, layer.size, layer.size, "exists");
            return Ok(None);
        }
        let mut transfer = client.blob(&layer.digest.to_string()).await?;
        let mut w = self.blobs.writer(Some(&layer.digest), Some(layer.size))?;
        let mut throttle = Throttle::new();
        progress.blob(&layer.digest, 0, layer.size, "downloading");
        while let Some(chunk) = transfer.next().await? {
            // Never write past what the descriptor declares.
            let after = w.written() + chunk.len() as u64;
            if after > layer.size {
                return Err(ImageError::SizeMismatch {
                    digest: layer.digest.to_string(),
                    expected: layer.size,
                    actual: after,
                });
            }
            // Writes go to the page cache in small chunks; blocking here is
            // cheaper than a hop to the blocking pool per chunk.
            w.write_all(&chunk).map_err(|e| classify_io(self.blobs.tmp_dir(), e))?;
            if throttle.due(w.written()) {
                progress.blob(&layer.digest, w.written(), layer.size, "downloading");
            }
        }
        let d = w.commit()?;
        progress.blob(&layer.digest, layer.size, layer.size, "verified");
        Ok(Some(d))
    }
}
