//! Container logs: JSON lines `{"time","stream","log"}` (the shape of
//! docker's json-file driver) with size-based rotation, and a reader.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub time: String,
    pub stream: String,
    pub log: String,
}

/// Appends lines; when the file passes `max_size`, it becomes `.1`, older
/// ones shift up, and at most `max_files` files are kept in all.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

impl LogWriter {
    /// Opens (or creates) the log, readable by its owner only: a
    /// container's output may hold anything.
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<Self> {
        let file = open_private(path)?;
        let size = file.metadata()?.len();
        Ok(Self { path: path.to_path_buf(), file, size, max_size: max_size.max(4096), max_files: max_files.max(1) })
    }

    pub fn write(&mut self, stream: &str, text: &str) -> io::Result<()> {
        let line = LogLine {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            stream: stream.to_string(),
            log: text.to_string(),
        };
        let mut bytes = serde_json::to_vec(&line).expect("log line serialises");
        bytes.push(b'\n');
        if self.size + bytes.len() as u64 > self.max_size && self.size > 0 {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.max_files > 1 {
            for i in (1..self.max_files - 1).rev() {
                let from = rotated(&self.path, i);
                if from.exists() {
                    fs::rename(&from, rotated(&self.path, i + 1))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
        } else {
            fs::remove_file(&self.path)?;
        }
        self.file = open_private(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// Appends to `path`, mode 0600 (also a file an older berth made 0644).
fn open_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Every line still on disk, oldest first (rotated files included).
pub fn read_all(path: &Path) -> io::Result<Vec<LogLine>> {
    let mut files: Vec<PathBuf> = (1..100).map(|n| rotated(path, n)).take_while(|p| p.exists()).collect();
    files.reverse();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    for f in files {
        let Ok(file) = File::open(&f) else { continue };
        for line in BufReader::new(file).lines() {
            if let Ok(l) = serde_json::from_str::<LogLine>(&line?) {
                out.push(l);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_rotates_and_reads_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&path, 4096, 3).unwrap();
        for i in 0..200 {
            w.write(if i % 2 == 0 { "stdout" } else { "stderr" }, &format!("line {i}\n")).unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "at most 3 files in all");
        let lines = read_all(&path).unwrap();
        assert_eq!(lines.last().unwrap().log, "line 199\n");
        let nums: Vec<u32> = lines.iter().map(|l| l.log.trim().trim_start_matches("line ").parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "in order, no gaps within what is kept");
        assert!(fs::metadata(&path).unwrap().len() <= 4096);
        use std::os::unix::fs::PermissionsExt;
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
    }

    #[test]
    fn a_world_readable_log_becomes_private_when_opened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctr.log");
        fs::write(&path, b"").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        LogWriter::open(&path, 4096, 3).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
