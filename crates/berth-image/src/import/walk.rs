//! Packing a root filesystem directory into a tar stream without ever
//! following a symlink: each directory is opened relative to its parent's
//! descriptor with `O_DIRECTORY | O_NOFOLLOW`, each file relative to its
//! directory with `O_NOFOLLOW`, and headers come from the opened
//! descriptor. A symlink in the tree is packed as a symlink; one swapped in
//! for a directory or file during the walk makes that open fail (the
//! import stops with an error) instead of reaching the host path behind it.
//!
//! Only the root named by the caller is opened by path (following symlinks
//! there is what the caller asked for).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, readlinkat, AtFlags, OFlag, AT_FDCWD};
use nix::sys::stat::{fstatat, Mode, SFlag};

/// Deeper trees are refused: no root filesystem needs them, and each level
/// holds a descriptor and a stack frame.
pub(crate) const MAX_DEPTH: usize = 256;

/// Appends everything below `root` (not `root` itself), sorted by name at
/// each level so the same tree gives the same stream.
pub(crate) fn append_tree<W: Write>(b: &mut tar::Builder<W>, root: &Path) -> io::Result<()> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = openat(AT_FDCWD, root, flags, Mode::empty()).map_err(|e| context(root, e.into()))?;
    append_dir(b, dir.as_fd(), Path::new(""), 0)
}

fn context(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn changed(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!("{}: {what} changed while it was packed; retry once the tree is quiet", path.display()))
}

/// The names in an open directory, sorted. Listed through its
/// `/proc/self/fd` entry: that is a magic link to the open directory
/// itself, not a path looked up again, so a swap cannot redirect it.
fn names(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<Vec<OsString>> {
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let mut out = Vec::new();
    for item in fs::read_dir(&by_fd).map_err(|e| context(rel, e))? {
        out.push(item.map_err(|e| context(rel, e))?.file_name());
    }
    out.sort();
    Ok(out)
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, dir: BorrowedFd<'_>, rel: &Path, depth: usize) -> io::Result<()> {
    if depth >= MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{}: the tree is more than {MAX_DEPTH} directories deep, which berth does not pack",
            rel.display()
        )));
    }
    for name in names(dir, rel)? {
        let child: PathBuf = rel.join(&name);
        let name = name.as_os_str();
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(|e| context(&child, e.into()))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let mut header = tar::Header::new_gnu();
        if kind == SFlag::S_IFDIR {
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(dir, name, flags, Mode::empty()).map_err(|_| changed(&child, "directory"))?;
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| context(&child, e))?;
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            header.set_size(0);
            b.append_data(&mut header, &child, io::empty())?;
            append_dir(b, file.as_fd(), &child, depth + 1)?;
        } else if kind == SFlag::S_IFREG {
            // O_NONBLOCK: a FIFO swapped in must not block the open.
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
            let fd = openat(dir, name, flags, Mode::empty()).map_err(|_| changed(&child, "file"))?;
            let file = File::from(fd);
            let meta = file.metadata().map_err(|e| context(&child, e))?;
            if !meta.is_file() {
                return Err(changed(&child, "file"));
            }
            header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
            header.set_size(meta.len());
            let data = Exact { inner: file, left: meta.len(), path: &child };
            b.append_data(&mut header, &child, data)?;
        } else if kind == SFlag::S_IFLNK {
            let target = readlinkat(dir, name).map_err(|_| changed(&child, "symlink"))?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(st.st_mode);
            header.set_uid(st.st_uid.into());
            header.set_gid(st.st_gid.into());
            header.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
            header.set_size(0);
            b.append_link(&mut header, &child, &target)?;
        }
        // Sockets, devices and FIFOs do not belong in an image built from a tree.
    }
    Ok(())
}

/// Yields exactly `left` bytes of a file, failing if it shrank, so a header
/// never promises more data than the stream holds.
struct Exact<'p> {
    inner: File,
    left: u64,
    path: &'p Path,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(changed(self.path, "file"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarstream::{HeaderLimits, TarReader};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn pack(root: &Path) -> io::Result<Vec<u8>> {
        let mut b = tar::Builder::new(Vec::new());
        append_tree(&mut b, root)?;
        b.into_inner()
    }

    /// Every member as (name, type, data or link target).
    fn members(stream: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut r = TarReader::new(stream, HeaderLimits::DEFAULT);
        let mut out = Vec::new();
        while let Some(mut e) = r.next_entry().unwrap() {
            let name = String::from_utf8_lossy(e.path_bytes()).into_owned();
            let kind = e.entry_type();
            let mut data = e.link_name_bytes().map(<[u8]>::to_vec).unwrap_or_default();
            e.read_to_end(&mut data).unwrap();
            out.push((name, kind, data));
        }
        out
    }

    #[test]
    fn symlinks_are_packed_as_symlinks_and_specials_skipped() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"host secret").unwrap();
        let tree = tempfile::tempdir().unwrap();
        fs::create_dir(tree.path().join("etc")).unwrap();
        fs::write(tree.path().join("etc/hostname"), b"box").unwrap();
        symlink(outside.path(), tree.path().join("hostdir")).unwrap();
        symlink(outside.path().join("secret"), tree.path().join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(&tree.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let got = members(&pack(tree.path()).unwrap());
        let names: Vec<_> = got.iter().map(|(n, k, _)| (n.as_str(), *k)).collect();
        assert_eq!(
            names,
            [
                ("etc", tar::EntryType::Directory),
                ("etc/hostname", tar::EntryType::Regular),
                ("etc/passwd", tar::EntryType::Symlink),
                ("hostdir", tar::EntryType::Symlink),
            ]
        );
        assert_eq!(got[1].2, b"box");
        assert_eq!(got[2].2, outside.path().join("secret").as_os_str().as_bytes());
        assert!(got.iter().all(|(_, _, d)| d != b"host secret"));
    }

    #[test]
    fn the_same_tree_packs_to_the_same_bytes() {
        let tree = tempfile::tempdir().unwrap();
        for n in ["b", "a", "c"] {
            fs::create_dir(tree.path().join(n)).unwrap();
            fs::write(tree.path().join(n).join("f"), n).unwrap();
        }
        assert_eq!(pack(tree.path()).unwrap(), pack(tree.path()).unwrap());
    }

    #[test]
    fn trees_past_the_depth_limit_are_refused() {
        let tree = tempfile::tempdir().unwrap();
        let mut p = tree.path().to_path_buf();
        for _ in 0..=MAX_DEPTH {
            p.push("d");
        }
        fs::create_dir_all(&p).unwrap();
        let e = pack(tree.path()).unwrap_err();
        assert!(e.to_string().contains("directories deep"), "{e}");
    }

    /// A directory swapped for a symlink to a host directory while packs run:
    /// no pack ever contains what lies behind the symlink.
    #[test]
    fn a_symlink_swapped_in_during_the_walk_is_never_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"host secret").unwrap();
        let tree = tempfile::tempdir().unwrap();
        let d = tree.path().join("d");
        let parked = tree.path().join("parked");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("secret"), b"own file").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, d, parked, outside) = (stop.clone(), d.clone(), parked.clone(), outside.path().to_path_buf());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    fs::rename(&d, &parked).unwrap();
                    symlink(&outside, &d).unwrap();
                    std::thread::yield_now();
                    fs::remove_file(&d).unwrap();
                    fs::rename(&parked, &d).unwrap();
                }
            })
        };
        let (mut packed, mut refused) = (0, 0);
        for _ in 0..400 {
            match pack(tree.path()) {
                Ok(stream) => {
                    packed += 1;
                    let got = members(&stream);
                    assert!(got.iter().all(|(_, _, data)| data != b"host secret"), "followed a symlink: {got:?}");
                }
                Err(_) => refused += 1,
            }
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(packed + refused == 400 && packed > 0, "packed {packed}, refused {refused}");
    }
}
