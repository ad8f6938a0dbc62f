//! `berth image import`: OCI layouts, OCI archives, `docker save` tars and
//! plain root filesystems (directory or tar) into the store. Every blob is
//! verified against the digest its manifest gives before it is stored.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::api::{ImportRequest, ImportResponse};
use berth_core::digest::Hasher;
use berth_core::layerpath::sanitize;
use berth_core::media::{self, sniff_compression};
use berth_core::{Compression, Digest, ImageRef, MediaType, Platform};
use sha2::Digest as _;

use crate::blobs::copy_into;
use crate::error::{classify_io, io_err, ImageError, Result};
use crate::manifest::{self, Desc, Parsed};
use crate::store::{ImageStore, NewImage, PinGuard};
use crate::tarstream::{FrameError, HeaderLimits, TarReader};
use crate::unpack::decompressor;

mod walk;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OciLayout,
    OciArchive,
    DockerArchive,
    RootfsDir,
    RootfsTar,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::OciLayout => "oci-layout",
            Self::OciArchive => "oci-archive",
            Self::DockerArchive => "docker-archive",
            Self::RootfsDir => "rootfs-dir",
            Self::RootfsTar => "rootfs-tar",
        }
    }
}

/// Manifests and configs are small; a larger one is refused unread.
pub(crate) const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

fn import_err(path: &Path, why: impl Into<String>) -> ImageError {
    ImageError::Import { path: path.display().to_string(), why: why.into() }
}

/// Decides what `path` holds by looking at it, never by its name.
pub fn detect(path: &Path) -> Result<Format> {
    let meta = fs::metadata(path).map_err(|e| import_err(path, format!("{e}")))?;
    if meta.is_dir() {
        return Ok(if path.join("oci-layout").is_file() { Format::OciLayout } else { Format::RootfsDir });
    }
    let mut head = [0u8; 8];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io_err(path))?;
    let compression = sniff_compression(&head[..n]);
    let file = File::open(path).map_err(io_err(path))?;
    let mut archive = TarReader::new(decompressor(BufReader::new(file), compression), HeaderLimits::DEFAULT);
    let mut format = Format::RootfsTar;
    let mut seen = 0;
    let refused = |e: FrameError| match e {
        FrameError::TooLarge { .. } | FrameError::Sparse { .. } => {
            import_err(path, format!("{e}; the archive is malformed or hostile — do not use it"))
        }
        FrameError::Read { .. } | FrameError::Corrupt { .. } => {
            import_err(path, format!("not a tar archive or directory: {e}"))
        }
    };
    while let Some(entry) = archive.next_entry().map_err(refused)? {
        let name = String::from_utf8_lossy(entry.path_bytes());
        let name = name.trim_start_matches("./");
        if name == "oci-layout" {
            format = Format::OciArchive;
            break;
        }
        if name == "manifest.json" {
            format = Format::DockerArchive;
            break;
        }
        // Layout markers sit near the top; a rootfs needs no full scan.
        seen += 1;
        if seen > 4096 {
            break;
        }
    }
    Ok(format)
}

impl ImageStore {
    pub async fn import(self: &Arc<Self>, req: ImportRequest) -> Result<ImportResponse> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.import_blocking(&req))
            .await
            .map_err(|e| ImageError::Io { path: "import task".into(), source: io::Error::other(e.to_string()) })?
    }

    fn import_blocking(self: &Arc<Self>, req: &ImportRequest) -> Result<ImportResponse> {
        let path = PathBuf::from(&req.path);
        if !path.is_absolute() {
            return Err(import_err(&path, "give an absolute path (the daemon resolves it, not your shell)"));
        }
        let tag = req.tag.as_deref().map(ImageRef::parse).transpose()?;
        if let Some(t) = &tag {
            if t.digest().is_some() {
                return Err(import_err(&path, "--tag takes NAME[:TAG], not a digest"));
            }
        }
        let format = detect(&path)?;
        let has_config_overrides = req.config_cmd.is_some()
            || req.config_entrypoint.is_some()
            || !req.config_env.is_empty()
            || req.config_workdir.is_some();
        if has_config_overrides && !matches!(format, Format::RootfsDir | Format::RootfsTar) {
            return Err(import_err(
                &path,
                format!("--config-* options apply to root filesystem imports; this is an {}", format.name()),
            ));
        }
        // Everything written below belongs to this operation and is rolled
        // back unless the images are recorded.
        let mut op = self.pin();
        let images = match format {
            Format::OciLayout => self.import_layout(&path, tag.as_ref(), &mut op),
            Format::OciArchive | Format::DockerArchive => {
                let scratch = tempfile::Builder::new()
                    .prefix("import-")
                    .tempdir_in(self.blobs.tmp_dir())
                    .map_err(io_err(self.blobs.tmp_dir()))?;
                extract_archive(&path, scratch.path(), self.config.max_layer_bytes, self.config.max_layer_entries)?;
                if format == Format::OciArchive {
                    self.import_layout(scratch.path(), tag.as_ref(), &mut op)
                } else {
                    self.import_docker(scratch.path(), tag.as_ref(), &mut op)
                }
            }
            Format::RootfsDir | Format::RootfsTar => {
                let Some(tag) = tag.as_ref() else {
                    return Err(import_err(&path, "a root filesystem has no name of its own; give --tag NAME[:TAG]"));
                };
                self.import_rootfs(&path, format, tag, req, &mut op).map(|n| vec![n])
            }
        }?;
        // Prepare every image first, then record them all in one transaction:
        // an archive imports whole or not at all.
        let prepared = images.into_iter().map(|n| self.prepare(n, &mut op)).collect::<Result<Vec<_>>>()?;
        let records = self.record(prepared, &mut op)?;
        let images = records.iter().map(|r| self.summary(r)).collect::<Result<Vec<_>>>()?;
        Ok(ImportResponse { format: format.name().to_string(), images })
    }

    /// Copies a blob file into the store, verifying digest and size.
    fn take_blob(&self, file: &Path, desc: &Desc, op: &mut PinGuard) -> Result<()> {
        op.pin(&desc.digest);
        if self.blobs.size(&desc.digest) == Some(desc.size) {
            return Ok(());
        }
        let len = fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        if len != desc.size {
            return Err(ImageError::SizeMismatch { digest: desc.digest.to_string(), expected: desc.size, actual: len });
        }
        let f = File::open(file)
            .map_err(|_| import_err(file, format!("blob {} is missing from the archive", desc.digest)))?;
        let d =
            copy_into(&self.blobs, BufReader::new(f), Some(&desc.digest), Some(desc.size)).map_err(|e| match e {
                ImageError::DigestMismatch { expected, actual, .. } => {
                    ImageError::DigestMismatch { what: format!("blob {}", file.display()), expected, actual }
                }
                other => other,
            })?;
        op.created_blob(&d);
        Ok(())
    }

    fn import_layout(self: &Arc<Self>, dir: &Path, tag: Option<&ImageRef>, op: &mut PinGuard) -> Result<Vec<NewImage>> {
        let index_path = dir.join("index.json");
        let index =
            read_document(&index_path).map_err(|e| e.or(dir, "index.json is missing; not an OCI image layout"))?;
        let Parsed::Index { entries, .. } = manifest::parse(&index, Some(media::OCI_INDEX))? else {
            return Err(import_err(&index_path, "index.json is not an image index"));
        };
        if entries.is_empty() {
            return Err(import_err(dir, "the layout's index.json lists no images"));
        }
        if tag.is_some() && entries.len() > 1 {
            return Err(import_err(dir, format!("the layout holds {} images; --tag needs exactly one", entries.len())));
        }
        let blob_path = |d: &Digest| dir.join("blobs").join("sha256").join(d.hex());
        let read_blob = |desc: &Desc| -> Result<Vec<u8>> {
            let p = blob_path(&desc.digest);
            let len = fs::metadata(&p).map_err(|_| import_err(dir, format!("blob {} is missing", desc.digest)))?.len();
            if len != desc.size || len > MAX_DOCUMENT_BYTES {
                return Err(ImageError::SizeMismatch {
                    digest: desc.digest.to_string(),
                    expected: desc.size,
                    actual: len,
                });
            }
            let data = fs::read(&p).map_err(|_| import_err(dir, format!("blob {} is missing", desc.digest)))?;
            let actual = Digest::of(&data);
            if actual != desc.digest {
                return Err(ImageError::DigestMismatch {
                    what: format!("blob {}", p.display()),
                    expected: desc.digest.to_string(),
                    actual: actual.to_string(),
                });
            }
            Ok(data)
        };
        let mut out = Vec::new();
        for entry in entries {
            let mut bytes = read_blob(&entry.desc)?;
            let mut index_digest = None;
            if entry.media_type.is_index() {
                let Parsed::Index { entries: inner, .. } = manifest::parse(&bytes, Some(&entry.desc.media_type))?
                else {
                    return Err(import_err(dir, "an index entry is not an index"));
                };
                let host = Platform::host();
                let candidates: Vec<_> = inner
                    .iter()
                    .filter(|e| e.media_type.is_manifest())
                    .map(|e| {
                        let (os, a, v) = e.platform.clone().unwrap_or_default();
                        (e.desc.clone(), os, a, v)
                    })
                    .collect();
                let chosen = host.choose(&candidates).cloned().ok_or_else(|| ImageError::NoMatchingPlatform {
                    reference: dir.display().to_string(),
                    platform: host.to_string(),
                    available: candidates.iter().map(|(_, o, a, _)| format!("{o}/{a}")).collect::<Vec<_>>().join(", "),
                })?;
                self.take_blob(&blob_path(&entry.desc.digest), &entry.desc, op)?;
                index_digest = Some(entry.desc.digest.clone());
                bytes = read_blob(&chosen)?;
            }
            let Parsed::Manifest(m) = manifest::parse(&bytes, None)? else {
                return Err(import_err(dir, "nested indexes are not supported"));
            };
            let config_bytes = read_blob(&m.config)?;
            for l in &m.layers {
                self.take_blob(&blob_path(&l.digest), l, op)?;
            }
            let name = match (tag, &entry.ref_name) {
                (Some(t), _) => Some(t.clone()),
                (None, Some(n)) => Some(name_from_annotation(n)?),
                (None, None) => None,
            };
            let repo_digests = match &name {
                Some(n) => vec![format!("{}@{}", n.name(), index_digest.as_ref().unwrap_or(&Digest::of(&bytes)))],
                None => vec![],
            };
            let new = NewImage {
                manifest_bytes: bytes,
                manifest: m,
                config_bytes,
                index_digest,
                source: "import",
                tags: name.iter().map(|n| n.to_string()).collect(),
                repo_digests,
            };
            out.push(new);
        }
        Ok(out)
    }

    fn import_docker(self: &Arc<Self>, dir: &Path, tag: Option<&ImageRef>, op: &mut PinGuard) -> Result<Vec<NewImage>> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let mpath = dir.join("manifest.json");
        let entries: Vec<Entry> =
            serde_json::from_slice(&read_document(&mpath).map_err(|e| e.or(dir, "manifest.json is missing"))?)
                .map_err(|e| import_err(&mpath, format!("manifest.json is not a docker-save manifest: {e}")))?;
        if entries.is_empty() {
            return Err(import_err(dir, "manifest.json lists no images"));
        }
        if tag.is_some() && entries.len() > 1 {
            return Err(import_err(
                dir,
                format!("the archive holds {} images; --tag needs exactly one", entries.len()),
            ));
        }
        let inside = |rel: &str| -> Result<PathBuf> {
            let clean = sanitize(rel).map_err(|e| import_err(dir, e.to_string()))?;
            Ok(dir.join(clean))
        };
        let mut out = Vec::new();
        for e in entries {
            let config_bytes = read_document(&inside(&e.config)?)
                .map_err(|err| err.or(dir, format!("config {} is missing", e.config)))?;
            let config = manifest::parse_config(&config_bytes)?;
            if config.diff_ids.len() != e.layers.len() {
                return Err(import_err(
                    dir,
                    format!("{} layers but {} diff_ids in {}", e.layers.len(), config.diff_ids.len(), e.config),
                ));
            }
            let mut layers = Vec::new();
            for (rel, diff_id) in e.layers.iter().zip(&config.diff_ids) {
                let file = inside(rel)?;
                let (desc, _) = self.store_layer_file(&file, Some(diff_id), op)?;
                layers.push(desc);
            }
            let names: Vec<ImageRef> = match tag {
                Some(t) => vec![t.clone()],
                None => e
                    .repo_tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| ImageRef::parse(t))
                    .collect::<std::result::Result<_, _>>()?,
            };
            out.push(self.build_image(config_bytes, layers, &names, "import")?);
        }
        Ok(out)
    }

    /// Stores a layer tar file as a blob, as it is (compressed or not), and
    /// checks the uncompressed stream's digest against `diff_id` if given.
    /// Returns the descriptor, the diff_id and whether the blob is new.
    fn store_layer_file(&self, file: &Path, diff_id: Option<&Digest>, op: &mut PinGuard) -> Result<(Desc, Digest)> {
        let mut head = [0u8; 8];
        let n = File::open(file)
            .and_then(|mut f| f.read(&mut head))
            .map_err(|_| import_err(file, "layer file is missing"))?;
        let compression = sniff_compression(&head[..n]);
        let hash = |r: &mut dyn Read| -> Result<Digest> {
            let mut h = Hasher::new();
            io::copy(r, &mut HashWriter(&mut h))
                .map_err(|e| import_err(file, format!("layer is not readable: {e}")))?;
            Ok(Digest::from_hasher(h))
        };
        let open = || File::open(file).map(BufReader::new).map_err(io_err(file));
        let actual_diff = hash(&mut decompressor(open()?, compression))?;
        if let Some(want) = diff_id {
            if *want != actual_diff {
                return Err(ImageError::DigestMismatch {
                    what: format!("layer {}", file.display()),
                    expected: want.to_string(),
                    actual: actual_diff.to_string(),
                });
            }
        }
        let digest = if compression == Compression::None { actual_diff.clone() } else { hash(&mut open()?)? };
        let size = fs::metadata(file).map_err(io_err(file))?.len();
        op.pin(&digest);
        if self.blobs.size(&digest) != Some(size) {
            copy_into(&self.blobs, open()?, Some(&digest), Some(size))?;
            op.created_blob(&digest);
        }
        let media_type = MediaType::OciLayer(compression).as_str().to_string();
        Ok((Desc { media_type, digest, size }, actual_diff))
    }

    /// Stores `config_bytes` and builds an OCI manifest over it and
    /// `layers` (already stored), ready to commit under `names`.
    fn build_image(
        self: &Arc<Self>,
        config_bytes: Vec<u8>,
        layers: Vec<Desc>,
        names: &[ImageRef],
        source: &'static str,
    ) -> Result<NewImage> {
        let config_digest = Digest::of(&config_bytes);
        let descriptor = |media_type: &str, d: &Digest, size: u64| -> Result<oci_spec::image::Descriptor> {
            let digest: oci_spec::image::Digest =
                d.to_string().parse().map_err(|e| ImageError::Config(format!("{e}")))?;
            Ok(oci_spec::image::Descriptor::new(oci_spec::image::MediaType::from(media_type), size, digest))
        };
        let mut oci_layers = Vec::new();
        for l in &layers {
            oci_layers.push(descriptor(&l.media_type, &l.digest, l.size)?);
        }
        let manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(oci_spec::image::MediaType::ImageManifest)
            .config(descriptor(media::OCI_CONFIG, &config_digest, config_bytes.len() as u64)?)
            .layers(oci_layers)
            .build()
            .map_err(|e| ImageError::InvalidManifest { what: "new manifest".into(), detail: e.to_string() })?;
        let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest_digest = Digest::of(&manifest_bytes);
        let parsed = manifest::Manifest {
            media_type: MediaType::OciManifest,
            config: Desc {
                media_type: media::OCI_CONFIG.into(),
                digest: config_digest,
                size: config_bytes.len() as u64,
            },
            layers,
        };
        let new = NewImage {
            manifest_bytes,
            manifest: parsed,
            config_bytes,
            index_digest: None,
            source,
            tags: names.iter().map(|n| n.to_string()).collect(),
            repo_digests: names.iter().map(|n| format!("{}@{manifest_digest}", n.name())).collect(),
        };
        Ok(new)
    }

    fn import_rootfs(
        self: &Arc<Self>,
        path: &Path,
        format: Format,
        tag: &ImageRef,
        req: &ImportRequest,
        op: &mut PinGuard,
    ) -> Result<NewImage> {
        let (desc, diff_id) = match format {
            Format::RootfsDir => self.pack_dir(path, op)?,
            _ => self.store_layer_file(path, None, op)?,
        };
        let host = Platform::host();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut env = req.config_env.clone();
        for e in &env {
            if !e.contains('=') || e.starts_with('=') {
                return Err(import_err(path, format!("--config-env {e:?} must be KEY=VALUE")));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        }
        if let Some(w) = &req.config_workdir {
            if !w.starts_with('/') {
                return Err(import_err(path, format!("--config-workdir {w:?} must be an absolute path")));
            }
        }
        let mut cfg = serde_json::Map::new();
        cfg.insert("Env".into(), serde_json::json!(env));
        match (&req.config_entrypoint, &req.config_cmd) {
            (None, None) => {
                cfg.insert("Cmd".into(), serde_json::json!(["/bin/sh"]));
            }
            (ep, cmd) => {
                if let Some(ep) = ep {
                    cfg.insert("Entrypoint".into(), serde_json::json!(ep));
                }
                if let Some(cmd) = cmd {
                    cfg.insert("Cmd".into(), serde_json::json!(cmd));
                }
            }
        }
        if let Some(w) = &req.config_workdir {
            cfg.insert("WorkingDir".into(), serde_json::json!(w));
        }
        let mut config = serde_json::json!({
            "created": now,
            "architecture": host.architecture,
            "os": host.os,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": format!("berth image import ({})", format.name())}],
        });
        if let Some(v) = &host.variant {
            config["variant"] = serde_json::json!(v);
        }
        let config_bytes = serde_json::to_vec(&config).expect("config serialises");
        self.build_image(config_bytes, vec![desc], std::slice::from_ref(tag), "import")
    }

    /// Packs a directory into a gzip layer blob in one pass, hashing the
    /// tar stream (diff_id) and the compressed blob (digest) as it goes.
    /// Entries are sorted so that the same tree gives the same digests.
    fn pack_dir(&self, dir: &Path, op: &mut PinGuard) -> Result<(Desc, Digest)> {
        let blob = self.blobs.writer(None, None)?;
        let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
        let mut tee = TarHasher { inner: gz, hasher: Hasher::new() };
        {
            let mut builder = tar::Builder::new(&mut tee);
            let packing = |e: io::Error| match e.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EDQUOT) => classify_io(self.blobs.tmp_dir(), e),
                _ => import_err(dir, format!("cannot pack the directory: {e}")),
            };
            walk::append_tree(&mut builder, dir).map_err(packing)?;
            builder.finish().map_err(packing)?;
        }
        let diff_id = Digest::from_hasher(tee.hasher);
        let blob = tee.inner.finish().map_err(|e| classify_io(self.blobs.tmp_dir(), e))?;
        let size = blob.written();
        let digest = self.commit_blob(blob, op)?;
        Ok((Desc { media_type: media::OCI_LAYER_GZIP.into(), digest, size }, diff_id))
    }
}

struct HashWriter<'a>(&'a mut Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes the tar stream on its way into the compressor.
struct TarHasher<W: Write> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for TarHasher<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Why a document could not be read.
enum DocError {
    Missing,
    TooLarge(ImageError),
}

impl DocError {
    /// The error to report, `missing` when the file is not there.
    fn or(self, dir: &Path, missing: impl Into<String>) -> ImageError {
        match self {
            DocError::Missing => import_err(dir, missing),
            DocError::TooLarge(e) => e,
        }
    }
}

/// Reads a JSON document of an archive (index.json, manifest.json, a
/// config), refusing one past [`MAX_DOCUMENT_BYTES`] before reading it:
/// a gzip'd archive can hold a gigabyte of spaces in a megabyte.
fn read_document(path: &Path) -> std::result::Result<Vec<u8>, DocError> {
    let file = File::open(path).map_err(|_| DocError::Missing)?;
    let mut data = Vec::new();
    file.take(MAX_DOCUMENT_BYTES + 1).read_to_end(&mut data).map_err(|_| DocError::Missing)?;
    if data.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(DocError::TooLarge(import_err(
            path,
            format!("it is larger than the {MAX_DOCUMENT_BYTES} bytes berth reads for an image document; the archive is malformed or hostile"),
        )));
    }
    Ok(data)
}

/// An OCI layout's `org.opencontainers.image.ref.name`: a full reference is
/// kept; a bare tag or name becomes `localhost/NAME` (as podman does), so it
/// never pretends to come from Docker Hub.
fn name_from_annotation(n: &str) -> Result<ImageRef> {
    let full = n.contains('/') || n.contains(':');
    if full {
        if let Ok(r) = ImageRef::parse(n) {
            return Ok(r);
        }
    }
    Ok(ImageRef::parse(&format!("localhost/{n}"))?)
}

/// Resolves `link` relative to the directory of `at` without touching the
/// filesystem; `None` when it climbs above the archive root.
fn resolve_link(at: &Path, link: &str) -> Option<std::path::PathBuf> {
    if link.starts_with('/') {
        return None;
    }
    let mut parts: Vec<std::ffi::OsString> =
        at.parent().map(|p| p.iter().map(|c| c.to_os_string()).collect()).unwrap_or_default();
    for c in Path::new(link).components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n.to_os_string()),
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Extracts an OCI or docker archive into `dest`: only regular files and
/// directories at safe paths, within `max_bytes` and `max_entries`. Symlinks
/// (which `docker save` writes for repeated layers) become copies of their
/// targets inside the archive, once everything else is out.
fn extract_archive(path: &Path, dest: &Path, max_bytes: u64, max_entries: u64) -> Result<()> {
    let mut head = [0u8; 8];
    let n = File::open(path).and_then(|mut f| f.read(&mut head)).map_err(io_err(path))?;
    let file = File::open(path).map_err(io_err(path))?;
    let reader = decompressor(BufReader::new(file), sniff_compression(&head[..n]));
    let mut archive = TarReader::new(reader, HeaderLimits::DEFAULT);
    let (mut bytes, mut entries) = (0u64, 0u64);
    let mut links = Vec::new();
    let too_large = || {
        import_err(
            path,
            format!("the archive holds more than {max_bytes} bytes or {max_entries} entries (images.max_layer_bytes / max_layer_entries)"),
        )
    };
    while let Some(mut entry) = archive.next_entry().map_err(|e| import_err(path, e.to_string()))? {
        entries += 1;
        if entries > max_entries {
            return Err(too_large());
        }
        let raw = String::from_utf8_lossy(entry.path_bytes()).to_string();
        let rel = match sanitize(&raw) {
            Ok(r) => r,
            Err(berth_core::layerpath::PathError::Empty { .. }) => continue,
            Err(e) => return Err(import_err(path, e.to_string())),
        };
        let target = dest.join(&rel);
        match entry.entry_type() {
            tar::EntryType::XGlobalHeader => {}
            tar::EntryType::Directory => fs::create_dir_all(&target).map_err(io_err(&target))?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                bytes = bytes.saturating_add(entry.size());
                if bytes > max_bytes {
                    return Err(too_large());
                }
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                let mut out = File::create(&target).map_err(io_err(&target))?;
                io::copy(&mut (&mut entry).take(max_bytes), &mut out).map_err(|e| classify_io(&target, e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(l).into_owned()).unwrap_or_default();
                let resolved = resolve_link(&rel, &link)
                    .ok_or_else(|| import_err(path, format!("symlink {raw} -> {link} points outside the archive")))?;
                links.push((target, dest.join(resolved), raw));
            }
            other => {
                return Err(import_err(
                    path,
                    format!("entry {raw} has type {other:?}, which an image archive never needs"),
                ))
            }
        }
    }
    for (target, src, raw) in links {
        // Only links to regular files are followed, and never a link to a link.
        let meta = fs::symlink_metadata(&src);
        if !meta.as_ref().is_ok_and(|m| m.is_file()) {
            return Err(import_err(path, format!("symlink {raw} points at nothing the archive holds")));
        }
        bytes = bytes.saturating_add(meta.map(|m| m.len()).unwrap_or(0));
        if bytes > max_bytes {
            return Err(too_large());
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::copy(&src, &target).map_err(|e| classify_io(&target, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_links_resolve_inside_the_archive_only() {
        let at = Path::new("abc/layer.tar");
        assert_eq!(resolve_link(at, "../def/layer.tar"), Some("def/layer.tar".into()));
        assert_eq!(resolve_link(at, "./layer2.tar"), Some("abc/layer2.tar".into()));
        assert_eq!(resolve_link(at, "../../etc/passwd"), None);
        assert_eq!(resolve_link(at, "/etc/passwd"), None);
    }

    #[test]
    fn documents_past_the_cap_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("index.json");
        fs::write(&big, vec![b' '; MAX_DOCUMENT_BYTES as usize + 1]).unwrap();
        let e = read_document(&big).err().unwrap().or(dir.path(), "missing");
        assert!(e.to_string().contains("larger than the 4194304 bytes"), "{e}");
        let e = read_document(&dir.path().join("nope")).err().unwrap().or(dir.path(), "index.json is missing");
        assert!(e.to_string().contains("index.json is missing"), "{e}");
        fs::write(&big, b"{}").unwrap();
        assert_eq!(read_document(&big).ok().unwrap(), b"{}");
    }

    #[test]
    fn bare_annotation_names_are_local() {
        assert_eq!(name_from_annotation("single").unwrap().to_string(), "localhost/single:latest");
        assert_eq!(name_from_annotation("1.0").unwrap().to_string(), "localhost/1.0:latest");
        assert_eq!(
            name_from_annotation("registry.example.org/app:2").unwrap().to_string(),
            "registry.example.org/app:2"
        );
    }
}
