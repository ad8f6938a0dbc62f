//! Rules for paths inside layer tarballs: which are safe, and what the OCI
//! whiteout names mean. Pure: the unpacker asks, this module answers.

use std::path::{Component, Path, PathBuf};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("entry {path:?} is an absolute path; layer entries must be relative to the root")]
    Absolute { path: String },
    #[error("entry {path:?} climbs out of the root with '..'")]
    Escapes { path: String },
    #[error("entry {path:?} is empty or names only the root")]
    Empty { path: String },
    #[error("entry {path:?} has a whiteout name that deletes nothing")]
    BadWhiteout { path: String },
}

/// What a layer entry means once its name is understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular entry to create at this relative path.
    Normal(PathBuf),
    /// `dir/.wh.name`: delete `dir/name` from the layers below.
    Whiteout(PathBuf),
    /// `dir/.wh..wh..opq`: hide everything below `dir` in lower layers.
    Opaque(PathBuf),
}

/// Normalises a tar entry name into a clean relative path.
///
/// Leading `./` and `/`-free forms are accepted; `.` components are dropped.
/// Absolute paths and any `..` are refused rather than clamped: a layer that
/// needs them was built wrongly or with intent to escape.
pub fn sanitize(raw: &str) -> Result<PathBuf, PathError> {
    let path = Path::new(raw);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(PathError::Absolute { path: raw.to_string() }),
            Component::ParentDir => return Err(PathError::Escapes { path: raw.to_string() }),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(PathError::Empty { path: raw.to_string() });
    }
    Ok(out)
}

/// Classifies a tar entry name (sanitising it first).
///
/// The root entry (`./`) is reported as `Ok(None)`: it carries only the
/// root's metadata, which berth does not apply.
pub fn classify(raw: &str) -> Result<Option<EntryKind>, PathError> {
    let path = match sanitize(raw) {
        Ok(p) => p,
        Err(PathError::Empty { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if file_name == OPAQUE_MARKER {
        return Ok(Some(EntryKind::Opaque(parent)));
    }
    if let Some(target) = file_name.strip_prefix(WHITEOUT_PREFIX) {
        if target.is_empty() || target == "." || target == ".." || target.starts_with(WHITEOUT_PREFIX) {
            return Err(PathError::BadWhiteout { path: raw.to_string() });
        }
        return Ok(Some(EntryKind::Whiteout(parent.join(target))));
    }
    Ok(Some(EntryKind::Normal(path)))
}

/// Checks a hardlink target: it must name an entry inside the same layer.
pub fn hardlink_target(raw: &str) -> Result<PathBuf, PathError> {
    sanitize(raw)
}

/// Whether a symlink at `link` (relative to the root) with `target` would,
/// resolved lexically from the link's directory, climb above the root.
///
/// Absolute targets are fine: inside a container they resolve against the
/// container's root, and berth never follows a layer's links on the host.
pub fn symlink_escapes(link: &Path, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth: i64 = link.parent().map_or(0, |p| p.components().count() as i64);
    for c in Path::new(target).components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_relative_forms() {
        assert_eq!(sanitize("./etc/passwd").unwrap(), PathBuf::from("etc/passwd"));
        assert_eq!(sanitize("etc//./passwd").unwrap(), PathBuf::from("etc/passwd"));
        assert_eq!(sanitize("bin/").unwrap(), PathBuf::from("bin"));
    }

    #[test]
    fn sanitize_refuses_escapes() {
        assert!(matches!(sanitize("/etc/passwd"), Err(PathError::Absolute { .. })));
        assert!(matches!(sanitize("../x"), Err(PathError::Escapes { .. })));
        assert!(matches!(sanitize("a/../../x"), Err(PathError::Escapes { .. })));
        assert!(matches!(sanitize("a/../b"), Err(PathError::Escapes { .. })));
        assert!(matches!(sanitize("./"), Err(PathError::Empty { .. })));
    }

    #[test]
    fn classify_whiteouts() {
        assert_eq!(classify("etc/.wh.motd").unwrap(), Some(EntryKind::Whiteout("etc/motd".into())));
        assert_eq!(classify(".wh.tmp").unwrap(), Some(EntryKind::Whiteout("tmp".into())));
        assert_eq!(classify("var/cache/.wh..wh..opq").unwrap(), Some(EntryKind::Opaque("var/cache".into())));
        assert_eq!(classify("./.wh..wh..opq").unwrap(), Some(EntryKind::Opaque("".into())));
        assert_eq!(classify("etc/motd").unwrap(), Some(EntryKind::Normal("etc/motd".into())));
        assert_eq!(classify("./").unwrap(), None);
        assert!(classify("etc/.wh.").is_err());
        assert!(classify("etc/.wh..wh.x").is_err());
        assert!(classify("../.wh.x").is_err());
    }

    #[test]
    fn symlink_escape_is_lexical_from_the_link_directory() {
        assert!(!symlink_escapes(Path::new("bin/sh"), "busybox"));
        assert!(!symlink_escapes(Path::new("bin/sh"), "/bin/busybox"));
        assert!(!symlink_escapes(Path::new("usr/lib/x"), "../../lib/x"));
        assert!(symlink_escapes(Path::new("usr/lib/x"), "../../../etc/shadow"));
        assert!(symlink_escapes(Path::new("x"), "../etc"));
        assert!(!symlink_escapes(Path::new("a/b/c"), "d/../../e"));
    }
}
