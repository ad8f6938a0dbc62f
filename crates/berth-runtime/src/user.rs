//! `--user` resolution against the image's `/etc/passwd` and `/etc/group`,
//! with runc's (libcontainer `GetExecUser`) rules: the caller passes the
//! files' contents, this module only parses them.

use crate::SpecError;

/// Highest uid/gid runc accepts (it keeps ids in an `int32`).
const MAX_ID: u32 = i32::MAX as u32;

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, sorted, without `gid`.
    pub additional_gids: Vec<u32>,
    /// The home directory from `/etc/passwd`, when the user is listed there.
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok()
}

/// Lines that do not parse are skipped, as libc does.
fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0].is_empty() {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: parse_id(f[2])?,
            gid: parse_id(f[3])?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(group: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    group.lines().filter_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || f[0].is_empty() {
            return None;
        }
        let members =
            f.get(3).map(|m| m.split(',').map(str::trim).filter(|m| !m.is_empty()).collect()).unwrap_or_default();
        Some(GroupEntry { name: f[0], gid: parse_id(f[2])?, members })
    })
}

fn check_range(user: &str, id: u32) -> Result<u32, SpecError> {
    if id > MAX_ID {
        return Err(SpecError::InvalidUser { user: user.to_string(), reason: format!("id {id} is above {MAX_ID}") });
    }
    Ok(id)
}

/// Resolves `name`, `uid`, `name:group`, `uid:gid` (and mixes). An empty or
/// absent spec means root (0:0).
///
/// A numeric uid works without any file; its gid comes from the passwd entry
/// with that uid, else 0. A name must be in `passwd`. Supplementary groups
/// are the groups listing the user's name, and only when no group was given
/// explicitly (as runc does).
pub fn resolve_user(spec: Option<&str>, passwd: Option<&str>, group: Option<&str>) -> Result<ResolvedUser, SpecError> {
    let spec = spec.unwrap_or("").trim();
    if spec.is_empty() {
        let home = passwd.and_then(|p| passwd_entries(p).find(|e| e.uid == 0).map(|e| e.home.to_string()));
        return Ok(ResolvedUser { uid: 0, gid: 0, additional_gids: Vec::new(), home });
    }
    let invalid = |reason: &str| SpecError::InvalidUser { user: spec.to_string(), reason: reason.to_string() };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user_part.is_empty() {
        return Err(invalid("the user part is empty"));
    }
    if group_part.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(invalid("the group part is empty or has a second ':'"));
    }

    // All digits means an id (out of range is an error, not a name).
    let numeric = |part: &str| -> Result<Option<u32>, SpecError> {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        match parse_id(part) {
            Some(id) => check_range(spec, id).map(Some),
            None => Err(invalid("the id is out of range")),
        }
    };
    let user_id = numeric(user_part)?;
    let entry = match user_id {
        Some(uid) => passwd.and_then(|p| passwd_entries(p).find(|e| e.uid == uid)),
        None => Some(
            passwd
                .and_then(|p| passwd_entries(p).find(|e| e.name == user_part))
                .ok_or_else(|| SpecError::UnknownUser { name: user_part.to_string() })?,
        ),
    };
    let uid = check_range(spec, user_id.unwrap_or_else(|| entry.as_ref().map_or(0, |e| e.uid)))?;
    let mut gid = check_range(spec, entry.as_ref().map_or(0, |e| e.gid))?;
    let home = entry.as_ref().map(|e| e.home.to_string());
    let mut additional_gids = Vec::new();

    match group_part {
        Some(g) => {
            gid = match numeric(g)? {
                Some(n) => n,
                None => group
                    .and_then(|gr| group_entries(gr).find(|e| e.name == g))
                    .map(|e| e.gid)
                    .ok_or_else(|| SpecError::UnknownGroup { name: g.to_string() })?,
            };
            gid = check_range(spec, gid)?;
        }
        None => {
            if let (Some(e), Some(gr)) = (&entry, group) {
                for g in group_entries(gr) {
                    if g.members.contains(&e.name) && g.gid != gid && g.gid <= MAX_ID {
                        additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser { uid, gid, additional_gids, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        broken line\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        web:x:33:33::/var/www:\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        www:x:33:app\n\
        app:x:1000:\n\
        audio:x:29:app,web\n\
        video:x:44: web , app \n";

    fn r(spec: &str) -> Result<ResolvedUser, SpecError> {
        resolve_user(Some(spec), Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn default_is_root() {
        let u = resolve_user(None, None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len(), u.home), (0, 0, 0, None));
        let u = resolve_user(Some(""), Some(PASSWD), Some(GROUP)).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_deref()), (0, 0, Some("/root")));
    }

    #[test]
    fn names_resolve_with_supplementary_groups() {
        let u = r("app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![29, 33, 44]);
        assert_eq!(u.home.as_deref(), Some("/home/app"));
        let u = r("web").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.clone()), (33, 33, vec![29, 44]));
    }

    #[test]
    fn numeric_ids_work_without_files() {
        let u = resolve_user(Some("1234"), None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home), (1234, 0, None));
        let u = resolve_user(Some("1234:5678"), None, None).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 5678));
    }

    #[test]
    fn numeric_uid_takes_gid_and_groups_from_passwd() {
        let u = r("1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1000));
        assert_eq!(u.additional_gids, vec![29, 33, 44]);
        let u = r("4242").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (4242, 0, 0));
    }

    #[test]
    fn explicit_group_replaces_primary_and_drops_supplementary() {
        let u = r("app:audio").unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids.len()), (1000, 29, 0));
        let u = r("app:7").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 7));
        let u = r("1000:www").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 33));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(r("nobody"), Err(SpecError::UnknownUser { name }) if name == "nobody"));
        assert!(matches!(r("app:nogroup"), Err(SpecError::UnknownGroup { name }) if name == "nogroup"));
        assert!(matches!(resolve_user(Some("app"), None, None), Err(SpecError::UnknownUser { .. })));
        assert!(matches!(resolve_user(Some("0:wheel"), Some(PASSWD), None), Err(SpecError::UnknownGroup { .. })));
        let e = r("nobody").unwrap_err().to_string();
        assert!(e.contains("nobody") && e.contains("/etc/passwd"), "{e}");
    }

    #[test]
    fn malformed_specs_are_errors() {
        for bad in [":0", "app:", "a:b:c", "99999999999", "0:4294967295", "2147483648"] {
            assert!(matches!(r(bad), Err(SpecError::InvalidUser { .. })), "{bad}");
        }
    }
}
