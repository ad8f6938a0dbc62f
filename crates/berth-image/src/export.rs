//! `berth image export`: write a stored image as an OCI archive (a tar of
//! an OCI image layout), which `import` reads back with the same digests.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_core::api::ExportResponse;
use berth_core::{Digest, ImageRef};

use crate::error::{io_err, ImageError, Result};
use crate::store::ImageStore;

impl ImageStore {
    pub async fn export(self: &Arc<Self>, reference: String, path: String) -> Result<ExportResponse> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || this.export_blocking(&reference, Path::new(&path)))
            .await
            .map_err(|e| ImageError::Io { path: "export task".into(), source: io::Error::other(e.to_string()) })?
    }

    fn export_blocking(&self, reference: &str, path: &Path) -> Result<ExportResponse> {
        if !path.is_absolute() {
            return Err(ImageError::Invalid(format!("export path {} must be absolute", path.display())));
        }
        if path.exists() {
            return Err(ImageError::Exists { what: "a file", path: path.display().to_string() });
        }
        let img = self.resolve(reference)?;
        let name = match ImageRef::parse(reference) {
            Ok(r) if r.digest().is_none() && self.store.resolve_tag(&r.to_string())?.is_some() => Some(r.to_string()),
            _ => self.store.list_tags()?.into_iter().find(|(_, d)| *d == img.digest).map(|(t, _)| t),
        };
        let mut descriptor = serde_json::json!({
            "mediaType": img.media_type,
            "digest": img.digest.to_string(),
            "size": img.manifest_size,
        });
        if let Some(n) = &name {
            descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": n});
        }
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": berth_core::media::OCI_INDEX,
            "manifests": [descriptor],
        }))
        .expect("index serialises");
        let mut blobs: Vec<Digest> = vec![img.digest.clone(), img.config_digest.clone()];
        for l in &img.layers {
            if !blobs.contains(&l.digest) {
                blobs.push(l.digest.clone());
            }
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let tmp = tempfile::Builder::new().prefix(".berth-export-").tempfile_in(parent).map_err(io_err(parent))?;
        {
            let mut b = tar::Builder::new(BufWriter::new(tmp.as_file()));
            let add = |b: &mut tar::Builder<BufWriter<&File>>,
                       name: &str,
                       size: u64,
                       data: &mut dyn io::Read,
                       dir: bool|
             -> io::Result<()> {
                let mut h = tar::Header::new_ustar();
                h.set_size(size);
                h.set_mode(if dir { 0o755 } else { 0o644 });
                h.set_mtime(0);
                h.set_entry_type(if dir { tar::EntryType::Directory } else { tar::EntryType::Regular });
                h.set_cksum();
                b.append_data(&mut h, name, data)
            };
            let w = |e: io::Error| io_err(path)(e);
            add(&mut b, "oci-layout", 30, &mut &br#"{"imageLayoutVersion":"1.0.0"}"#[..], false).map_err(w)?;
            add(&mut b, "index.json", index.len() as u64, &mut &index[..], false).map_err(w)?;
            add(&mut b, "blobs/", 0, &mut io::empty(), true).map_err(w)?;
            add(&mut b, "blobs/sha256/", 0, &mut io::empty(), true).map_err(w)?;
            for d in &blobs {
                let mut f = self.blobs.open_read(d)?;
                let size = f.metadata().map_err(io_err(&self.blobs.path(d)))?.len();
                add(&mut b, &format!("blobs/sha256/{}", d.hex()), size, &mut f, false).map_err(w)?;
            }
            let mut inner = b.into_inner().map_err(w)?;
            inner.flush().map_err(w)?;
        }
        tmp.as_file().sync_all().map_err(io_err(path))?;
        let bytes = tmp.as_file().metadata().map_err(io_err(path))?.len();
        // persist_noclobber: never overwrite a file that appeared meanwhile.
        tmp.persist_noclobber(path).map_err(|e| io_err(path)(e.error))?;
        Ok(ExportResponse { path: PathBuf::from(path).display().to_string(), digest: img.digest.to_string(), bytes })
    }
}
