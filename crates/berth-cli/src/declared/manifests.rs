//! `-f` for apply and delete: which files a path means, reading them, and
//! the lines kubectl prints for what changed.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_core::api::{ChangeAction, ManifestFile, ObjectChange, MAX_MANIFEST_BYTES};

use super::kind::qualified_kind;
use crate::client::{CliError, Result};

/// Reads every `-f`: a file, a directory (its `*.yaml`, `*.yml` and
/// `*.json` files, sorted by name, not recursive) or `-` (standard input,
/// read by `stdin`). Fails on the first path that cannot be read, before
/// anything is sent.
pub fn read(paths: &[PathBuf], stdin: impl FnOnce() -> std::io::Result<String>) -> Result<Vec<ManifestFile>> {
    let mut stdin = Some(stdin);
    let mut files = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let read =
                stdin.take().ok_or_else(|| CliError::Usage("-f - (standard input) can be given only once".into()))?;
            let text = read().map_err(|e| CliError::Other(format!("cannot read standard input: {e}")))?;
            files.push(ManifestFile { name: "-".into(), text });
            continue;
        }
        let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
        let list = if meta.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| unreadable(path, e))?;
            let names = entries.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>();
            let found = manifests_among(names.map_err(|e| unreadable(path, e))?);
            if found.is_empty() {
                return Err(CliError::Other(format!(
                    "{}: no manifests in this directory (looked for *.yaml, *.yml and *.json, not in subdirectories)",
                    path.display()
                )));
            }
            found
        } else {
            vec![path.clone()]
        };
        for f in list {
            let text = read_bounded(&f).map_err(|e| unreadable(&f, e))?;
            files.push(ManifestFile { name: f.display().to_string(), text });
        }
    }
    if files.iter().map(|f| f.text.len()).sum::<usize>() > MAX_MANIFEST_BYTES {
        return Err(too_much());
    }
    Ok(files)
}

/// A file's text, read no further than the daemon would take (so `-f
/// /dev/zero` fails at once instead of filling memory).
fn read_bounded(path: &Path) -> std::io::Result<String> {
    read_at_most(std::fs::File::open(path)?)
}

/// At most [`MAX_MANIFEST_BYTES`] of `reader` as text; more is an error.
pub fn read_at_most(reader: impl Read) -> std::io::Result<String> {
    let mut text = String::new();
    reader.take(MAX_MANIFEST_BYTES as u64 + 1).read_to_string(&mut text)?;
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(std::io::Error::other(too_much().to_string()));
    }
    Ok(text)
}

fn too_much() -> CliError {
    CliError::Other(format!(
        "the manifests come to more than {} MiB; berth reads at most that much per apply or delete: split them over several",
        MAX_MANIFEST_BYTES >> 20
    ))
}

fn unreadable(path: &Path, e: std::io::Error) -> CliError {
    CliError::Other(format!("cannot read {}: {e}", path.display()))
}

/// The manifest files of a directory listing, sorted.
fn manifests_among(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.retain(|p| {
        p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "yaml" | "yml" | "json")) && !p.is_dir()
    });
    paths.sort();
    paths
}

/// `deployment.apps/web created`, `service/web unchanged (dry run)`.
pub fn applied_line(c: &ObjectChange, dry_run: bool) -> String {
    let suffix = if dry_run { " (dry run)" } else { "" };
    format!("{}/{} {}{suffix}", qualified_kind(&c.kind), c.name, c.action)
}

/// `deployment.apps "web" deleted`; for an object that was not there,
/// kubectl's NotFound message (for stderr), or nothing when told to
/// ignore it.
pub fn deleted_line(c: &ObjectChange, ignore_not_found: bool) -> Deleted {
    let kind = qualified_kind(&c.kind);
    if c.action == ChangeAction::NotFound {
        if ignore_not_found {
            return Deleted::Quiet;
        }
        return Deleted::NotFound(format!("Error from server (NotFound): {} {:?} not found", plural(&kind), c.name));
    }
    Deleted::Done(format!("{kind} {:?} {}", c.name, c.action))
}

/// `deployment.apps` → `deployments.apps`, `endpoints` stays.
fn plural(qualified: &str) -> String {
    let (kind, group) = qualified.split_once('.').map_or((qualified, ""), |(k, g)| (k, g));
    let kind = if kind.ends_with('s') { kind.to_string() } else { format!("{kind}s") };
    if group.is_empty() {
        kind
    } else {
        format!("{kind}.{group}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// For stdout.
    Done(String),
    /// For stderr; the command fails.
    NotFound(String),
    /// Nothing to say.
    Quiet,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, ns: &str, name: &str, action: &str) -> ObjectChange {
        let action = serde_json::from_value(serde_json::json!(action)).unwrap();
        ObjectChange { kind: kind.into(), namespace: ns.into(), name: name.into(), action }
    }

    #[test]
    fn reading_stops_past_the_bound() {
        let big = std::io::repeat(b'a');
        let e = read_at_most(big).unwrap_err();
        assert!(e.to_string().contains("more than 16 MiB"), "{e}");
        assert_eq!(read_at_most(&b"a: 1\n"[..]).unwrap(), "a: 1\n");
        let e = read(&[PathBuf::from("/dev/zero")], || Ok(String::new())).unwrap_err();
        assert!(e.to_string().starts_with("cannot read /dev/zero: the manifests come to more than 16 MiB"), "{e}");
    }

    #[test]
    fn apply_lines_as_kubectl() {
        assert_eq!(
            applied_line(&change("Deployment", "default", "web", "created"), false),
            "deployment.apps/web created"
        );
        assert_eq!(applied_line(&change("Service", "shop", "web", "unchanged"), false), "service/web unchanged");
        assert_eq!(
            applied_line(&change("ConfigMap", "default", "app", "configured"), false),
            "configmap/app configured"
        );
        assert_eq!(applied_line(&change("Secret", "default", "db", "created"), true), "secret/db created (dry run)");
    }

    #[test]
    fn delete_lines_as_kubectl() {
        let d = |c: &ObjectChange, ignore| deleted_line(c, ignore);
        assert_eq!(
            d(&change("Deployment", "default", "web", "deleted"), false),
            Deleted::Done("deployment.apps \"web\" deleted".into())
        );
        assert_eq!(
            d(&change("Service", "shop", "web", "deleted"), false),
            Deleted::Done("service \"web\" deleted".into())
        );
        assert_eq!(d(&change("Pod", "default", "x", "deleted"), false), Deleted::Done("pod \"x\" deleted".into()));
        assert_eq!(d(&change("Deployment", "default", "web", "not found"), true), Deleted::Quiet);
        assert_eq!(
            d(&change("Deployment", "default", "web", "not found"), false),
            Deleted::NotFound("Error from server (NotFound): deployments.apps \"web\" not found".into())
        );
        assert_eq!(
            d(&change("Endpoints", "default", "web", "not found"), false),
            Deleted::NotFound("Error from server (NotFound): endpoints \"web\" not found".into())
        );
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-cli-manifests-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nested.yaml")).unwrap();
        dir
    }

    #[test]
    fn a_directory_means_its_manifests_sorted() {
        let dir = scratch("dir");
        for (f, text) in [("b.yml", "b"), ("a.yaml", "a"), ("c.json", "{}"), ("notes.txt", "no"), ("d.YAML.bak", "no")]
        {
            std::fs::write(dir.join(f), text).unwrap();
        }
        std::fs::write(dir.join("nested.yaml").join("inner.yaml"), "no").unwrap();
        let files = read(&[dir.clone(), PathBuf::from("-")], || Ok("from stdin".into())).unwrap();
        let names: Vec<String> =
            files.iter().map(|f| f.name.trim_start_matches(&*dir.display().to_string()).to_string()).collect();
        assert_eq!(names, ["/a.yaml", "/b.yml", "/c.json", "-"]);
        assert_eq!(files[0].text, "a");
        assert_eq!(files[3].text, "from stdin");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unreadable_paths_are_named() {
        let dir = scratch("missing");
        let missing = dir.join("nope.yaml");
        let e = read(std::slice::from_ref(&missing), || Ok(String::new())).unwrap_err().to_string();
        assert!(e.starts_with(&format!("cannot read {}: ", missing.display())), "{e}");
        let empty = dir.join("nested.yaml");
        let e = read(&[empty], || Ok(String::new())).unwrap_err().to_string();
        assert!(e.contains("no manifests in this directory"), "{e}");
        let e = read(&["-".into(), "-".into()], || Ok(String::new())).unwrap_err().to_string();
        assert!(e.contains("only once"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
