//! Registry credentials saved by `berth login`: a JSON file under the
//! state root, mode 0600, in the `auths` shape docker and podman use.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{io_err, ImageError, Result};

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuthEntry {
    /// base64 of `user:password`.
    auth: String,
}

pub struct Credentials {
    path: PathBuf,
    /// Serialises load-modify-save so concurrent logins never lose one.
    lock: std::sync::Mutex<()>,
}

impl Credentials {
    pub fn new(path: &Path) -> Self {
        Self { path: path.to_path_buf(), lock: std::sync::Mutex::new(()) }
    }

    fn load(&self) -> Result<AuthFile> {
        match fs::read(&self.path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| {
                ImageError::Config(format!(
                    "credentials file {} is not valid JSON ({e}); remove it and log in again",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// Replaces the file atomically (a unique temporary file, renamed), never
    /// readable by anyone but root, and durable once this returns.
    fn save(&self, file: &AuthFile) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        let data = serde_json::to_vec_pretty(file).expect("auth file serialises");
        let mut tmp = tempfile::Builder::new()
            .prefix(".auth-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(dir)
            .map_err(io_err(dir))?;
        tmp.write_all(&data).map_err(io_err(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io_err(tmp.path()))?;
        tmp.persist(&self.path).map_err(|e| io_err(&self.path)(e.error))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// `(user, password)` saved for `registry`.
    pub fn get(&self, registry: &str) -> Result<Option<(String, String)>> {
        let file = self.load()?;
        let Some(entry) = file.auths.get(registry) else { return Ok(None) };
        let raw = base64::engine::general_purpose::STANDARD.decode(&entry.auth).map_err(|_| {
            ImageError::Config(format!(
                "credentials for {registry} in {} are corrupt; log in again",
                self.path.display()
            ))
        })?;
        let text = String::from_utf8(raw)
            .map_err(|_| ImageError::Config(format!("credentials for {registry} are not UTF-8; log in again")))?;
        let (u, p) = text
            .split_once(':')
            .ok_or_else(|| ImageError::Config(format!("credentials for {registry} lack a ':'; log in again")))?;
        Ok(Some((u.to_string(), p.to_string())))
    }

    pub fn set(&self, registry: &str, user: &str, password: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.load()?;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        file.auths.insert(registry.to_string(), AuthEntry { auth });
        self.save(&file)
    }

    /// Returns whether credentials were saved.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = self.load()?;
        let had = file.auths.remove(registry).is_some();
        if had {
            self.save(&file)?;
        }
        Ok(had)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_0600_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let c = Credentials::new(&dir.path().join("auth.json"));
        assert_eq!(c.get("r:5000").unwrap(), None);
        c.set("r:5000", "alice", "s3:cr3t").unwrap();
        assert_eq!(c.get("r:5000").unwrap(), Some(("alice".into(), "s3:cr3t".into())));
        let mode = fs::metadata(dir.path().join("auth.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(c.remove("r:5000").unwrap());
        assert!(!c.remove("r:5000").unwrap());
    }
}
