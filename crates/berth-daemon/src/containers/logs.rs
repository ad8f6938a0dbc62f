//! Reading and following a container's log.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use berth_core::api::LogEntry;
use berth_shim::logfile::{read_all, LogLine};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Keep streaming new output until the container stops.
    #[serde(default)]
    pub follow: bool,
    /// Only the last N lines.
    #[serde(default)]
    pub tail: Option<usize>,
    /// Only lines at or after this RFC 3339 time.
    #[serde(default)]
    pub since: Option<String>,
}

fn entry(l: LogLine) -> LogEntry {
    LogEntry { time: l.time, stream: l.stream, log: l.log }
}

/// What is on disk now, filtered; plus where to continue following.
pub fn snapshot(path: &Path, q: &LogQuery) -> Result<(Vec<LogEntry>, u64), String> {
    let since = match &q.since {
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map_err(|_| format!("--since {s:?} is not an RFC 3339 time like 2026-01-02T15:04:05Z"))?,
        ),
        None => None,
    };
    let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut lines: Vec<LogEntry> = read_all(path)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| match (&since, chrono::DateTime::parse_from_rfc3339(&l.time)) {
            (Some(s), Ok(t)) => t >= *s,
            _ => true,
        })
        .map(entry)
        .collect();
    if let Some(n) = q.tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    Ok((lines, offset))
}

/// Follows a log file from `offset`, surviving rotation.
pub struct Follower {
    path: PathBuf,
    offset: u64,
}

impl Follower {
    pub fn new(path: &Path, offset: u64) -> Self {
        Self { path: path.to_path_buf(), offset }
    }

    /// New complete lines since the last call.
    pub fn poll(&mut self) -> Vec<LogEntry> {
        let Ok(mut f) = File::open(&self.path) else { return Vec::new() };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            // Rotated: the current file is new.
            self.offset = 0;
        }
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut reader = BufReader::new(f);
        let mut line = String::new();
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            if let Ok(l) = serde_json::from_str::<LogLine>(&line) {
                out.push(entry(l));
            }
            line.clear();
        }
        out
    }
}
