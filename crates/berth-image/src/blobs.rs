//! Content-addressed blob files.
//!
//! A blob is written to `tmp/` in the same filesystem while it is hashed, and
//! renamed to `blobs/sha256/<hex>` only after its digest (and size, when
//! known) matched. A crash or error before the rename leaves only a file in
//! `tmp/`, which [`BlobStore::open`] clears; so a name under `blobs/` always
//! holds exactly the bytes its digest says.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_core::digest::Hasher;
use berth_core::Digest;
use sha2::Digest as _;

use crate::error::{classify_io, io_err, ImageError, Result};

pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
}

impl BlobStore {
    /// Opens the blob directories under `root`, creating them, and removes
    /// temporary files left by an interrupted write. Idempotent.
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("blobs").join("sha256");
        let tmp = root.join("tmp");
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
        Ok(Self { dir, tmp })
    }

    pub fn path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.hex())
    }

    /// The directory for scratch files that must share the blobs' filesystem.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.path(d)).ok().map(|m| m.len())
    }

    /// Starts writing a blob that must turn out to have digest `expected`
    /// (and `size` bytes, when given).
    pub fn writer(&self, expected: Option<&Digest>, size: Option<u64>) -> Result<BlobWriter> {
        let file = tempfile::Builder::new().prefix("blob-").tempfile_in(&self.tmp).map_err(io_err(&self.tmp))?;
        Ok(BlobWriter {
            file: Some(file),
            hasher: Hasher::new(),
            written: 0,
            expected: expected.cloned(),
            size,
            dir: self.dir.clone(),
        })
    }

    /// Stores `data`, verifying it against `expected` when given. Returns
    /// the digest and whether the blob is new.
    pub fn put(&self, expected: Option<&Digest>, data: &[u8]) -> Result<(Digest, bool)> {
        let actual = Digest::of(data);
        if let Some(e) = expected {
            if *e != actual {
                return Err(ImageError::DigestMismatch {
                    what: "blob".into(),
                    expected: e.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        if self.contains(&actual) {
            return Ok((actual, false));
        }
        let mut w = self.writer(Some(&actual), Some(data.len() as u64))?;
        w.write_all(data).map_err(io_err(&self.tmp))?;
        w.commit()?;
        Ok((actual, true))
    }

    /// Reads a whole (small) blob and checks it still matches its name, so
    /// on-disk corruption is reported rather than parsed.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.path(d);
        let data = fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing { digest: d.to_string() },
            _ => ImageError::Io { path: path.display().to_string(), source: e },
        })?;
        let actual = Digest::of(&data);
        if actual != *d {
            return Err(ImageError::DigestMismatch {
                what: format!("stored blob {}", path.display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(data)
    }

    pub fn open_read(&self, d: &Digest) -> Result<File> {
        let path = self.path(d);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ImageError::BlobMissing { digest: d.to_string() },
            _ => ImageError::Io { path: path.display().to_string(), source: e },
        })
    }

    /// Removes a blob; a missing blob is not an error.
    pub fn remove(&self, d: &Digest) -> Result<()> {
        let path = self.path(d);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImageError::Io { path: path.display().to_string(), source: e }),
        }
    }

    /// Every blob on disk with its size. Files whose names are not digests
    /// are ignored (they are not ours).
    pub fn list(&self) -> Result<Vec<(Digest, u64)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            let Ok(d) = Digest::from_hex(&name) else { continue };
            let len = entry.metadata().map_err(io_err(&entry.path()))?.len();
            out.push((d, len));
        }
        out.sort();
        Ok(out)
    }
}

/// A blob being written. Dropping it without [`BlobWriter::commit`] removes
/// the temporary file, so an interrupted transfer leaves nothing behind.
pub struct BlobWriter {
    file: Option<tempfile::NamedTempFile>,
    hasher: Hasher,
    written: u64,
    expected: Option<Digest>,
    size: Option<u64>,
    dir: PathBuf,
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies, syncs and renames the blob into place. Returns its digest.
    pub fn commit(self) -> Result<Digest> {
        self.commit_with(|_| true).map(|(d, _)| d)
    }

    /// Like [`BlobWriter::commit`]; `is_new` is asked, once the digest is
    /// known and before the rename, whether the blob is new. Returns the
    /// digest and that answer.
    pub fn commit_with(mut self, is_new: impl FnOnce(&Digest) -> bool) -> Result<(Digest, bool)> {
        let file = self.file.take().expect("commit runs once");
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(size) = self.size {
            if size != self.written {
                return Err(ImageError::SizeMismatch {
                    digest: actual.to_string(),
                    expected: size,
                    actual: self.written,
                });
            }
        }
        if let Some(expected) = &self.expected {
            if *expected != actual {
                return Err(ImageError::DigestMismatch {
                    what: "blob".into(),
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        let new = is_new(&actual);
        file.as_file().sync_all().map_err(io_err(file.path()))?;
        let target = self.dir.join(actual.hex());
        file.persist(&target).map_err(|e| classify_io(&target, e.error))?;
        // The rename must survive a crash too.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok((actual, new))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("not committed").write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        if let Some(size) = self.size {
            if self.written > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("blob is larger than the {size} bytes its descriptor declares"),
                ));
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("not committed").flush()
    }
}

/// Copies `r` into a new blob, verifying it.
pub fn copy_into(store: &BlobStore, mut r: impl Read, expected: Option<&Digest>, size: Option<u64>) -> Result<Digest> {
    let mut w = store.writer(expected, size)?;
    io::copy(&mut r, &mut w).map_err(io_err(store.tmp_dir()))?;
    w.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_verifies_and_dedups() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let (d, new) = s.put(None, b"hello").unwrap();
        assert!(new);
        assert_eq!(s.read(&d).unwrap(), b"hello");
        assert!(!s.put(Some(&d), b"hello").unwrap().1);
        let wrong = Digest::of(b"other");
        assert!(matches!(s.put(Some(&wrong), b"hello"), Err(ImageError::DigestMismatch { .. })));
        assert!(!s.contains(&wrong));
        assert_eq!(s.list().unwrap(), vec![(d, 5)]);
    }

    #[test]
    fn a_dropped_or_failed_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        let d = Digest::of(b"abcdef");
        {
            let mut w = s.writer(Some(&d), Some(6)).unwrap();
            w.write_all(b"abc").unwrap();
        }
        let mut w = s.writer(Some(&d), Some(6)).unwrap();
        w.write_all(b"abcxyz").unwrap();
        assert!(w.commit().is_err());
        let mut w = s.writer(Some(&d), Some(6)).unwrap();
        w.write_all(b"abc").unwrap();
        assert!(matches!(w.commit(), Err(ImageError::SizeMismatch { .. })));
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn open_clears_leftover_temporaries_and_read_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        fs::write(s.tmp_dir().join("blob-partial"), b"x").unwrap();
        let (d, _) = s.put(None, b"data").unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
        fs::write(s.path(&d), b"tampered").unwrap();
        assert!(matches!(s.read(&d), Err(ImageError::DigestMismatch { .. })));
    }
}
