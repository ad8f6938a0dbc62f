//! [`ImageStore`]: the facade the daemon uses. It ties the blob files, the
//! records in the [`Store`] and the unpacked layer directories together.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_core::api::{
    DiskUsage, ImageDiskUsage, ImageInspect, ImageSummary, LayerInfo, PruneResponse, RemoveImageResponse,
};
use berth_core::{Digest, ImageRef, MediaType};
use berth_store::{ImageRecord, LayerRecord, LayerRef, Store};

use crate::auth::Credentials;
use crate::blobs::BlobStore;
use crate::config::ImageConfig;
use crate::error::{io_err, ImageError, Result};
use crate::manifest;
use crate::unpack::{unpack_layer, UnpackLimits};

/// Who uses an image (containers, later); `rmi` and `prune` ask before
/// removing one.
pub trait ImageUsers: Send + Sync {
    /// Names of the users of the image with this manifest digest.
    fn users_of(&self, image: &Digest) -> Vec<String>;
}

/// No users: the state before containers exist, and in tests.
pub struct NoUsers;

impl ImageUsers for NoUsers {
    fn users_of(&self, _: &Digest) -> Vec<String> {
        Vec::new()
    }
}

pub struct ImageStore {
    pub(crate) root: PathBuf,
    pub(crate) blobs: BlobStore,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: ImageConfig,
    pub(crate) credentials: Credentials,
    layers_dir: PathBuf,
    users: Arc<dyn ImageUsers>,
    /// Blobs and layers an operation in flight has written but not yet
    /// recorded; garbage collection leaves them alone.
    pinned: Mutex<crate::operation::Pins>,
    /// Serialises record changes with garbage collection.
    gc_lock: Mutex<()>,
    /// How container root filesystems are mounted.
    pub(crate) mounts: Arc<dyn crate::mounts::Mounts>,
}

/// What an image to be committed consists of; blobs for the layers must
/// already be in the blob store.
pub(crate) struct NewImage {
    pub manifest_bytes: Vec<u8>,
    pub manifest: manifest::Manifest,
    pub config_bytes: Vec<u8>,
    pub index_digest: Option<Digest>,
    pub source: &'static str,
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

pub(crate) use crate::operation::Operation as PinGuard;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl ImageStore {
    /// Opens the image store under `root` (e.g. `/var/lib/berth/images`).
    /// Clears what an interrupted operation left: temporary blobs and
    /// half-unpacked layer directories. Idempotent.
    pub fn open(root: &Path, store: Arc<dyn Store>, config: ImageConfig, users: Arc<dyn ImageUsers>) -> Result<Self> {
        config.validate().map_err(ImageError::Config)?;
        fs::create_dir_all(root).map_err(io_err(root))?;
        let blobs = BlobStore::open(root)?;
        let layers_dir = root.join("layers");
        fs::create_dir_all(&layers_dir).map_err(io_err(&layers_dir))?;
        let this = Self {
            root: root.to_path_buf(),
            blobs,
            store,
            config,
            credentials: Credentials::new(&root.join("auth.json")),
            layers_dir,
            users,
            pinned: Mutex::new(Default::default()),
            gc_lock: Mutex::new(()),
            mounts: Arc::new(crate::mounts::KernelMounts),
        };
        this.recover()?;
        Ok(this)
    }

    /// Mounts container root filesystems through `mounts` (the kernel's
    /// overlayfs unless told otherwise; a fake in tests without root).
    pub fn with_mounts(mut self, mounts: Arc<dyn crate::mounts::Mounts>) -> Self {
        self.mounts = mounts;
        self
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Starts an operation that pins what it uses and rolls back what it
    /// created unless it succeeds.
    pub(crate) fn pin(self: &Arc<Self>) -> PinGuard {
        PinGuard::new(Arc::clone(self))
    }

    pub(crate) fn pins(&self) -> std::sync::MutexGuard<'_, crate::operation::Pins> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn gc_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.gc_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits a blob writer while garbage collection is held off, and pins
    /// the result, so the new blob is never visible unpinned.
    pub(crate) fn commit_blob(&self, w: crate::blobs::BlobWriter, op: &mut PinGuard) -> Result<Digest> {
        let _gc = self.gc_guard();
        let d = w.commit_with(|d| !self.blobs.contains(d))?;
        op.pin(&d.0);
        if d.1 {
            op.created_blob(&d.0);
        }
        Ok(d.0)
    }

    /// Stores small data as a blob, pinned (see [`ImageStore::commit_blob`]).
    pub(crate) fn put_blob(&self, expected: Option<&Digest>, data: &[u8], op: &mut PinGuard) -> Result<Digest> {
        let _gc = self.gc_guard();
        let (d, new) = self.blobs.put(expected, data)?;
        op.pin(&d);
        if new {
            op.created_blob(&d);
        }
        Ok(d)
    }

    /// Removes layer directories that no record vouches for (an unpack cut
    /// short by a crash) and records whose directory vanished.
    fn recover(&self) -> Result<()> {
        let known: HashSet<String> =
            self.store.list_layers()?.into_iter().map(|l| l.diff_id.hex().to_string()).collect();
        for entry in fs::read_dir(&self.layers_dir).map_err(io_err(&self.layers_dir))? {
            let entry = entry.map_err(io_err(&self.layers_dir))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if !known.contains(&name) {
                remove_tree(&entry.path())?;
            }
        }
        for l in self.store.list_layers()? {
            if !self.layer_dir(&l.diff_id).is_dir() {
                self.store.delete_layer(&l.diff_id)?;
            }
        }
        Ok(())
    }

    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir.join(diff_id.hex())
    }

    // ---- lookup -------------------------------------------------------

    /// Finds an image by tag (`app:1`), `name@digest`, full digest or ID,
    /// or a unique prefix of its ID or manifest digest (as docker does).
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let not_found = || ImageError::NotFound { reference: name.to_string() };
        let hex_like = name.len() <= 71
            && name.trim_start_matches("sha256:").bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if let Some(hex) = name.strip_prefix("sha256:").filter(|h| hex_like && h.len() >= 4) {
            return self.resolve_prefix(hex, name)?.ok_or_else(not_found);
        }
        if let Ok(r) = ImageRef::parse(name) {
            if let Some(d) = r.digest() {
                let by_manifest = self.store.get_image(d)?;
                let found = match by_manifest {
                    Some(img) => Some(img),
                    None => self.store.list_images()?.into_iter().find(|i| i.index_digest.as_ref() == Some(d)),
                };
                return found.ok_or_else(not_found);
            }
            if let Some(d) = self.store.resolve_tag(&r.to_string())? {
                return self.store.get_image(&d)?.ok_or_else(not_found);
            }
        }
        if hex_like && name.len() >= 4 {
            if let Some(img) = self.resolve_prefix(name, name)? {
                return Ok(img);
            }
        }
        match ImageRef::parse(name) {
            Ok(_) => Err(not_found()),
            Err(e) => Err(e.into()),
        }
    }

    fn resolve_prefix(&self, hex: &str, name: &str) -> Result<Option<ImageRecord>> {
        let matches: Vec<ImageRecord> = self
            .store
            .list_images()?
            .into_iter()
            .filter(|i| i.config_digest.hex().starts_with(hex) || i.digest.hex().starts_with(hex))
            .collect();
        let ids: BTreeSet<&Digest> = matches.iter().map(|i| &i.digest).collect();
        match ids.len() {
            0 => Ok(None),
            1 => Ok(matches.into_iter().next()),
            count => Err(ImageError::Ambiguous { prefix: name.to_string(), count }),
        }
    }

    fn tags_by_image(&self) -> Result<BTreeMap<Digest, Vec<String>>> {
        let mut out: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
        for (tag, d) in self.store.list_tags()? {
            out.entry(d).or_default().push(tag);
        }
        Ok(out)
    }

    fn unpacked_sizes(&self) -> Result<BTreeMap<Digest, u64>> {
        Ok(self.store.list_layers()?.into_iter().map(|l| (l.diff_id, l.unpacked_size)).collect())
    }

    fn summarise(
        &self,
        img: &ImageRecord,
        tags: &BTreeMap<Digest, Vec<String>>,
        sizes: &BTreeMap<Digest, u64>,
    ) -> ImageSummary {
        let mut repo_digests = img.repo_digests.clone();
        repo_digests.sort();
        ImageSummary {
            id: img.config_digest.to_string(),
            digest: img.digest.to_string(),
            repo_tags: tags.get(&img.digest).cloned().unwrap_or_default(),
            repo_digests,
            created: img.created.clone(),
            size: img.layers.iter().map(|l| sizes.get(&l.diff_id).copied().unwrap_or(0)).sum(),
            compressed_size: img.compressed_size(),
            layer_count: img.layers.len(),
            platform: img.platform(),
        }
    }

    pub fn summary(&self, img: &ImageRecord) -> Result<ImageSummary> {
        Ok(self.summarise(img, &self.tags_by_image()?, &self.unpacked_sizes()?))
    }

    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let tags = self.tags_by_image()?;
        let sizes = self.unpacked_sizes()?;
        Ok(self.store.list_images()?.iter().map(|i| self.summarise(i, &tags, &sizes)).collect())
    }

    pub fn inspect(&self, name: &str) -> Result<ImageInspect> {
        let img = self.resolve(name)?;
        let config = manifest::parse_config(&self.blobs.read(&img.config_digest)?)?;
        let sizes = self.unpacked_sizes()?;
        Ok(ImageInspect {
            summary: self.summary(&img)?,
            media_type: img.media_type.clone(),
            os: img.os.clone(),
            architecture: img.architecture.clone(),
            variant: img.variant.clone(),
            config: config.run,
            layers: img
                .layers
                .iter()
                .map(|l| LayerInfo {
                    digest: l.digest.to_string(),
                    diff_id: l.diff_id.to_string(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    unpacked_size: sizes.get(&l.diff_id).copied(),
                })
                .collect(),
            source: img.source.clone(),
        })
    }

    /// The unpacked layer directories of an image, bottom layer first, as an
    /// overlay's lower directories.
    pub fn layer_dirs(&self, img: &ImageRecord) -> Result<Vec<PathBuf>> {
        img.layers
            .iter()
            .map(|l| {
                let dir = self.layer_dir(&l.diff_id);
                if dir.is_dir() {
                    Ok(dir)
                } else {
                    Err(ImageError::BlobMissing { digest: l.diff_id.to_string() })
                }
            })
            .collect()
    }

    // ---- changes ------------------------------------------------------

    /// Unpacks every layer of `m` that is not unpacked yet, checking each
    /// against its diff_id. Blocking; run it off the async executor.
    pub(crate) fn unpack_layers(&self, m: &manifest::Manifest, diff_ids: &[Digest], pins: &mut PinGuard) -> Result<()> {
        if diff_ids.len() != m.layers.len() {
            return Err(ImageError::InvalidManifest {
                what: "image".into(),
                detail: format!(
                    "the manifest lists {} layers but the config has {} diff_ids",
                    m.layers.len(),
                    diff_ids.len()
                ),
            });
        }
        for (layer, diff_id) in m.layers.iter().zip(diff_ids) {
            pins.pin(diff_id);
            if self.unpack_one(layer, diff_id)? {
                pins.created_layer(diff_id);
            }
        }
        Ok(())
    }

    /// The limits every layer is unpacked under.
    pub(crate) fn unpack_limits(&self) -> UnpackLimits {
        UnpackLimits {
            max_bytes: self.config.max_layer_bytes,
            max_entries: self.config.max_layer_entries,
            allow_devices: self.config.allow_device_nodes,
        }
    }

    /// Unpacks one layer unless it is unpacked already, checking it against
    /// its diff_id. Returns whether this call created the directory (the
    /// caller then owns its cleanup if the operation fails). Blocking. Safe to
    /// run concurrently for the same layer: the loser of the race discards
    /// its copy.
    pub(crate) fn unpack_one(&self, layer: &manifest::Desc, diff_id: &Digest) -> Result<bool> {
        if self.store.get_layer(diff_id)?.is_some() && self.layer_dir(diff_id).is_dir() {
            return Ok(false);
        }
        let limits = self.unpack_limits();
        let compression = MediaType::parse(&layer.media_type)?.layer_compression()?;
        let tmp = tempfile::Builder::new()
            .prefix(".unpack-")
            .tempdir_in(&self.layers_dir)
            .map_err(io_err(&self.layers_dir))?;
        let blob = self.blobs.open_read(&layer.digest)?;
        let stats = unpack_layer(std::io::BufReader::with_capacity(1 << 20, blob), compression, tmp.path(), &limits)
            .map_err(|source| match source {
                crate::unpack::UnpackError::Io { ref source, ref path, .. }
                    if source.raw_os_error() == Some(libc::ENOSPC) =>
                {
                    ImageError::NoSpace { path: path.display().to_string() }
                }
                source => ImageError::Unpack { layer: layer.digest.to_string(), source },
            })?;
        if stats.diff_id != *diff_id {
            return Err(ImageError::DigestMismatch {
                what: format!("uncompressed layer {}", layer.digest),
                expected: diff_id.to_string(),
                actual: stats.diff_id.to_string(),
            });
        }
        // The files must be on disk before a record vouches for them.
        let dir = fs::File::open(tmp.path()).map_err(io_err(tmp.path()))?;
        nix::unistd::syncfs(&dir).map_err(|e| io_err(tmp.path())(e.into()))?;
        let target = self.layer_dir(diff_id);
        let tmp_path = tmp.keep();
        if let Err(e) = fs::rename(&tmp_path, &target) {
            remove_tree(&tmp_path)?;
            if target.is_dir() {
                // Another operation unpacked the same layer meanwhile.
                return Ok(false);
            }
            return Err(io_err(&target)(e));
        }
        if let Ok(d) = fs::File::open(&self.layers_dir) {
            let _ = d.sync_all();
        }
        if let Err(e) = self.store.put_layer(&LayerRecord {
            diff_id: diff_id.clone(),
            unpacked_size: stats.bytes,
            entries: stats.entries,
            unpacked_at: now(),
        }) {
            let _ = remove_tree(&target);
            return Err(e.into());
        }
        Ok(true)
    }

    /// Stores manifest and config blobs and unpacks the layers of a new
    /// image, returning its record (not yet stored). Blocking.
    pub(crate) fn prepare(&self, new: NewImage, op: &mut PinGuard) -> Result<(ImageRecord, Vec<String>)> {
        let manifest_digest = self.put_blob(None, &new.manifest_bytes, op)?;
        let config_digest = self.put_blob(Some(&new.manifest.config.digest), &new.config_bytes, op)?;
        let config = manifest::parse_config(&new.config_bytes)?;
        for l in &new.manifest.layers {
            op.pin(&l.digest);
            if !self.blobs.contains(&l.digest) {
                return Err(ImageError::BlobMissing { digest: l.digest.to_string() });
            }
        }
        self.unpack_layers(&new.manifest, &config.diff_ids, op)?;
        let record = ImageRecord {
            digest: manifest_digest,
            media_type: new.manifest.media_type.as_str().to_string(),
            manifest_size: new.manifest_bytes.len() as u64,
            config_digest,
            config_size: new.config_bytes.len() as u64,
            index_digest: new.index_digest,
            os: config.os,
            architecture: config.architecture,
            variant: config.variant,
            created: config.created,
            source: new.source.to_string(),
            repo_digests: new.repo_digests,
            layers: new
                .manifest
                .layers
                .iter()
                .zip(&config.diff_ids)
                .map(|(l, diff_id)| LayerRef {
                    digest: l.digest.clone(),
                    diff_id: diff_id.clone(),
                    media_type: l.media_type.clone(),
                    size: l.size,
                })
                .collect(),
            added_at: now(),
        };
        Ok((record, new.tags))
    }

    /// Records prepared images and their tags in one transaction; then the
    /// operation succeeds. Repo digests already known are kept.
    pub(crate) fn record(
        &self,
        images: Vec<(ImageRecord, Vec<String>)>,
        op: &mut PinGuard,
    ) -> Result<Vec<ImageRecord>> {
        let _gc = self.gc_guard();
        let mut merged = Vec::with_capacity(images.len());
        for (mut record, tags) in images {
            if let Some(old) = self.store.get_image(&record.digest)? {
                for rd in old.repo_digests {
                    if !record.repo_digests.contains(&rd) {
                        record.repo_digests.push(rd);
                    }
                }
            }
            merged.push((record, tags));
        }
        self.store.put_images(&merged)?;
        op.succeed();
        Ok(merged.into_iter().map(|(r, _)| r).collect())
    }

    /// [`ImageStore::prepare`] and [`ImageStore::record`] for one image.
    pub(crate) fn commit(&self, new: NewImage, op: &mut PinGuard) -> Result<ImageRecord> {
        let prepared = self.prepare(new, op)?;
        Ok(self.record(vec![prepared], op)?.remove(0))
    }

    /// Gives an image another tag.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageSummary> {
        let img = self.resolve(source)?;
        let target = ImageRef::parse(target)?;
        if target.digest().is_some() {
            return Err(ImageError::Invalid(format!("cannot tag with a digest reference {target}; give NAME[:TAG]")));
        }
        self.store.set_tag(&target.to_string(), &img.digest)?;
        self.summary(&img)
    }

    /// `rmi`: untags `name` if it is one of several tags, otherwise removes
    /// the image (refusing while it is in use unless `force`) and collects
    /// the blobs and layers nothing else needs.
    pub fn remove(&self, name: &str, force: bool) -> Result<RemoveImageResponse> {
        let img = self.resolve(name)?;
        let tags: Vec<String> =
            self.store.list_tags()?.into_iter().filter(|(_, d)| *d == img.digest).map(|(t, _)| t).collect();
        let as_tag = ImageRef::parse(name).ok().map(|r| r.to_string()).filter(|t| tags.contains(t));
        let mut out = RemoveImageResponse::default();
        if let Some(tag) = &as_tag {
            if tags.len() > 1 {
                self.store.remove_tag(tag)?;
                out.untagged.push(tag.clone());
                return Ok(out);
            }
        }
        let users = self.users.users_of(&img.digest);
        if !users.is_empty() && !force {
            return Err(ImageError::InUse { reference: name.to_string(), users: users.join(", ") });
        }
        if !users.is_empty() {
            // Forced, but containers still stand on its layers: the names go,
            // the image stays (untagged) until the last user is removed and
            // a prune collects it, as docker does.
            for t in &tags {
                self.store.remove_tag(t)?;
            }
            out.untagged = tags;
            return Ok(out);
        }
        {
            let _gc = self.gc_guard();
            self.store.delete_image(&img.digest)?;
        }
        out.untagged = tags;
        out.deleted.push(img.config_digest.to_string());
        self.collect_garbage()?;
        Ok(out)
    }

    /// `image prune`: removes untagged images (all unused ones with `all`),
    /// then every blob and layer no image needs, and scratch leftovers.
    pub fn prune(&self, all: bool) -> Result<PruneResponse> {
        let tags = self.tags_by_image()?;
        let mut out = PruneResponse::default();
        for img in self.store.list_images()? {
            let tagged = tags.contains_key(&img.digest);
            if (tagged && !all) || !self.users.users_of(&img.digest).is_empty() {
                continue;
            }
            let _gc = self.gc_guard();
            self.store.delete_image(&img.digest)?;
            out.deleted_images.push(img.config_digest.to_string());
        }
        let (blobs, layers, bytes) = self.collect_garbage()?;
        out.deleted_blobs = blobs;
        out.deleted_layers = layers;
        out.reclaimed_bytes = bytes;
        Ok(out)
    }

    /// Deletes blobs and unpacked layers that no image references and no
    /// operation in flight has pinned. Returns (blobs, layers, bytes).
    fn collect_garbage(&self) -> Result<(usize, usize, u64)> {
        let _gc = self.gc_guard();
        let pinned: HashSet<Digest> = self.pins().keys().cloned().collect();
        let (blobs_used, layers_used) = self.references()?;
        let (mut nblobs, mut nlayers, mut bytes) = (0, 0, 0);
        for (d, size) in self.blobs.list()? {
            if !blobs_used.contains(&d) && !pinned.contains(&d) {
                self.blobs.remove(&d)?;
                nblobs += 1;
                bytes += size;
            }
        }
        for l in self.store.list_layers()? {
            if !layers_used.contains(&l.diff_id) && !pinned.contains(&l.diff_id) {
                self.store.delete_layer(&l.diff_id)?;
                remove_tree(&self.layer_dir(&l.diff_id))?;
                nlayers += 1;
                bytes += l.unpacked_size;
            }
        }
        Ok((nblobs, nlayers, bytes))
    }

    pub(crate) fn references(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        for img in self.store.list_images()? {
            blobs.insert(img.digest.clone());
            blobs.insert(img.config_digest.clone());
            if let Some(i) = &img.index_digest {
                blobs.insert(i.clone());
            }
            for l in &img.layers {
                blobs.insert(l.digest.clone());
                layers.insert(l.diff_id.clone());
            }
        }
        Ok((blobs, layers))
    }

    /// `system df`: per image, what it weighs and what it shares.
    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.store.list_images()?;
        let tags = self.tags_by_image()?;
        let sizes = self.unpacked_sizes()?;
        let mut layer_users: BTreeMap<&Digest, usize> = BTreeMap::new();
        for img in &images {
            let distinct: BTreeSet<&Digest> = img.layers.iter().map(|l| &l.diff_id).collect();
            for d in distinct {
                *layer_users.entry(d).or_default() += 1;
            }
        }
        let mut out = DiskUsage { image_count: images.len(), ..Default::default() };
        for img in &images {
            let mut row = ImageDiskUsage {
                id: img.config_digest.to_string(),
                repo_tags: tags.get(&img.digest).cloned().unwrap_or_default(),
                compressed: img.compressed_size(),
                layers: img.layers.len(),
                containers: self.users.users_of(&img.digest).len(),
                ..Default::default()
            };
            let mut seen = BTreeSet::new();
            for l in &img.layers {
                if !seen.insert(&l.diff_id) {
                    continue;
                }
                let size = sizes.get(&l.diff_id).copied().unwrap_or(0);
                row.unpacked += size;
                if layer_users.get(&l.diff_id).copied().unwrap_or(0) > 1 {
                    row.shared += size;
                } else {
                    row.unique += size;
                }
            }
            out.total_compressed += row.compressed;
            out.total_unpacked += row.unpacked;
            out.images.push(row);
        }
        let (blobs_used, layers_used) = self.references()?;
        for (d, size) in self.blobs.list()? {
            out.blobs_on_disk += size;
            if !blobs_used.contains(&d) {
                out.reclaimable += size;
            }
        }
        for (d, size) in &sizes {
            out.layers_on_disk += size;
            if !layers_used.contains(d) {
                out.reclaimable += size;
            }
        }
        let used_blob_bytes = out.blobs_on_disk.saturating_sub(out.reclaimable.min(out.blobs_on_disk));
        out.shared_savings =
            (out.total_compressed + out.total_unpacked).saturating_sub(used_blob_bytes + out.layers_on_disk);
        Ok(out)
    }
}

/// Removes a directory tree that may hold overlay whiteouts and read-only
/// directories. A missing tree is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
        Ok(_) => {}
    }
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            // A layer may contain directories without write permission.
            make_writable(path);
            fs::remove_dir_all(path).map_err(io_err(path))
        }
    }
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(path) {
        if meta.is_dir() {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
            if let Ok(entries) = fs::read_dir(path) {
                for e in entries.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

/// Tests that mount a root filesystem (they need root) are in
/// `tests/privileged.rs`.
#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::api::ImportRequest;
    use berth_store::FakeStore;

    struct FixedUsers(Vec<String>);

    impl ImageUsers for FixedUsers {
        fn users_of(&self, _: &Digest) -> Vec<String> {
            self.0.clone()
        }
    }

    async fn store_with_image(users: Vec<String>) -> (tempfile::TempDir, Arc<ImageStore>) {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/hello"), b"hello\n").unwrap();
        let store = ImageStore::open(
            &dir.path().join("images"),
            Arc::new(FakeStore::new()),
            ImageConfig::default(),
            Arc::new(FixedUsers(users)),
        )
        .unwrap();
        let store = Arc::new(store);
        store
            .import(ImportRequest {
                path: rootfs.display().to_string(),
                tag: Some("example.org/app:1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn rmi_refuses_an_image_in_use_unless_forced() {
        let (_dir, store) = store_with_image(vec!["web-1".into()]).await;
        let err = store.remove("example.org/app:1", false).unwrap_err();
        assert!(matches!(err, ImageError::InUse { .. }));
        assert!(err.to_string().contains("web-1") && err.to_string().contains("-f"), "{err}");
        assert_eq!(store.list().unwrap().len(), 1, "a refused rmi changes nothing");
        assert_eq!(store.prune(true).unwrap().deleted_images.len(), 0, "prune keeps images in use");
        let forced = store.remove("example.org/app:1", true).unwrap();
        assert_eq!(forced.untagged, vec!["example.org/app:1".to_string()]);
        assert!(forced.deleted.is_empty(), "layers under a container are kept");
        assert_eq!(store.list().unwrap().len(), 1, "the image stays, untagged");
        assert!(!store.blobs.list().unwrap().is_empty());
    }

    #[tokio::test]
    async fn resolve_by_tag_id_prefix_and_digest() {
        let (_dir, store) = store_with_image(vec![]).await;
        let img = store.resolve("example.org/app:1").unwrap();
        assert_eq!(store.resolve(&img.config_digest.to_string()).unwrap().digest, img.digest);
        assert_eq!(store.resolve(&img.config_digest.hex()[..8]).unwrap().digest, img.digest);
        assert_eq!(store.resolve(&format!("example.org/app@{}", img.digest)).unwrap().digest, img.digest);
        assert!(matches!(store.resolve("example.org/app:2"), Err(ImageError::NotFound { .. })));
        assert!(matches!(store.resolve("Bad Name"), Err(ImageError::Reference(_))));
        let layers = store.layer_dirs(&img).unwrap();
        assert_eq!(fs::read(layers[0].join("etc/hello")).unwrap(), b"hello\n");
    }
}
