//! Host id ranges for user-namespaced containers (`--userns=auto`,
//! Kubernetes' `hostUsers: false`).
//!
//! The daemon owns a pool of host uids and gids (`[containers]
//! userns_range`, else the `berth` user's `/etc/subuid` and `/etc/subgid`
//! entries, else [`DEFAULT_RANGE`]) cut into blocks of [`BLOCK`] ids. A
//! container gets the lowest block no container record holds; the choice is
//! written into its request (`userns_mapping`), so the store's records are
//! the only truth and a restarted daemon never hands a block out twice.
//! The caller serialises allocation and the write of the record.

use berth_core::api::IdMapping;
use berth_image::snapshot::IdShift;
use berth_store::ContainerRecord;

/// Ids per container: uid and gid 0 to 65535 inside, as Kubernetes and
/// podman's `auto` give.
pub const BLOCK: u32 = 65536;

/// The pool when neither the configuration nor `/etc/subuid` names one:
/// 2^30 ids from 2^30 (16,384 containers), far above the ids of host
/// accounts.
pub const DEFAULT_RANGE: &str = "1073741824:1073741824";

/// The user whose subordinate ids the daemon takes by default.
pub const SUBID_USER: &str = "berth";

/// Where blocks come from: uids from `uid_start`, gids from `gid_start`,
/// `blocks` blocks of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernsPool {
    pub uid_start: u32,
    pub gid_start: u32,
    pub blocks: u32,
}

/// `START:COUNT` (both uids and gids), validated.
pub fn parse_range(text: &str) -> Result<UsernsPool, String> {
    let bad = |why: &str| format!("containers.userns_range {text:?} {why}; give START:COUNT, e.g. {DEFAULT_RANGE:?}");
    let (start, count) = text.split_once(':').ok_or_else(|| bad("has no ':'"))?;
    let start: u32 = start.trim().parse().map_err(|_| bad("has a START that is not a number below 2^32"))?;
    let count: u32 = count.trim().parse().map_err(|_| bad("has a COUNT that is not a number below 2^32"))?;
    pool(start, start, count).map_err(|why| bad(&why))
}

fn pool(uid_start: u32, gid_start: u32, count: u32) -> Result<UsernsPool, String> {
    if count < BLOCK || !count.is_multiple_of(BLOCK) {
        return Err(format!("has a COUNT that is not a non-zero multiple of {BLOCK}"));
    }
    for start in [uid_start, gid_start] {
        // Ids below BLOCK in a snapshot are the ones still to be shifted
        // (berth_image::snapshot::IdShift); a range there would be
        // ambiguous, and would hold host accounts.
        if start < BLOCK {
            return Err(format!("starts below {BLOCK}, where host accounts live"));
        }
        // (uid_t)-1 means "no change" to chown: the range ends before it.
        if u64::from(start) + u64::from(count) > u64::from(u32::MAX) {
            return Err("ends past the largest uid, 4294967294".to_string());
        }
    }
    Ok(UsernsPool { uid_start, gid_start, blocks: count / BLOCK })
}

/// The `user`'s entry in `/etc/subuid` and `/etc/subgid` (`NAME:START:COUNT`
/// lines), cut to whole blocks; `Ok(None)` when either file lacks one.
pub fn from_subids(subuid: &str, subgid: &str, user: &str) -> Result<Option<UsernsPool>, String> {
    let entry = |text: &str| {
        text.lines().find_map(|l| {
            let mut parts = l.trim().splitn(3, ':');
            (parts.next()? == user).then_some(())?;
            Some((parts.next()?.parse::<u32>().ok()?, parts.next()?.parse::<u32>().ok()?))
        })
    };
    let (Some((uid_start, uids)), Some((gid_start, gids))) = (entry(subuid), entry(subgid)) else {
        return Ok(None);
    };
    let count = uids.min(gids) / BLOCK * BLOCK;
    pool(uid_start, gid_start, count)
        .map(Some)
        .map_err(|why| format!("the subordinate ids of {user:?} in /etc/subuid and /etc/subgid: the range {why}"))
}

/// The pool the daemon uses: the configured range, else the `berth` user's
/// subordinate ids, else [`DEFAULT_RANGE`].
pub fn resolve_pool(
    configured: Option<&str>,
    subuid: Option<&str>,
    subgid: Option<&str>,
) -> Result<UsernsPool, String> {
    if let Some(text) = configured {
        return parse_range(text);
    }
    if let (Some(u), Some(g)) = (subuid, subgid) {
        if let Some(pool) = from_subids(u, g, SUBID_USER)? {
            return Ok(pool);
        }
    }
    parse_range(DEFAULT_RANGE)
}

/// The lowest block of `pool` that overlaps none of `used` (uids or gids);
/// `None` when all are taken.
pub fn allocate(pool: &UsernsPool, used: &[IdMapping]) -> Option<IdMapping> {
    let overlaps = |a: u32, b: u32, size: u32| {
        u64::from(a) < u64::from(b) + u64::from(size) && u64::from(b) < u64::from(a) + u64::from(BLOCK)
    };
    (0..pool.blocks).map(|i| (pool.uid_start + i * BLOCK, pool.gid_start + i * BLOCK)).find_map(|(uid, gid)| {
        let free = used.iter().all(|m| !overlaps(uid, m.host_uid, m.size) && !overlaps(gid, m.host_gid, m.size));
        free.then_some(IdMapping { host_uid: uid, host_gid: gid, size: BLOCK })
    })
}

/// A range a stored container holds, and the networks it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub networks: Vec<String>,
    pub mapping: IdMapping,
}

/// What `c` holds, if it is in a user namespace.
pub fn held(c: &ContainerRecord) -> Option<Held> {
    let networks = c.request.networks.clone();
    Some(Held { networks, mapping: mapping_of(c)? })
}

/// The range for a new `auto` container: the one its pod's other
/// containers hold (they share the pod's network namespace, `pod:UID`, and
/// its volumes, as Kubernetes gives a pod one range), else the lowest free
/// block. `None`: the pool is exhausted.
pub fn choose(pool: &UsernsPool, held: &[Held], networks: &[String]) -> Option<IdMapping> {
    let pod = networks.iter().find(|n| n.starts_with("pod:"));
    if let Some(h) = held.iter().find(|h| pod.is_some_and(|p| h.networks.contains(p))) {
        return Some(h.mapping);
    }
    let used: Vec<IdMapping> = held.iter().map(|h| h.mapping).collect();
    allocate(pool, &used)
}

/// Gives root of the namespace the writable volume directories the daemon
/// made (a pod's emptyDirs: sources under one of `roots`) that host root
/// still owns; a user's own bind mounts are left as they are. Idempotent.
pub fn own_volumes(volumes: &[String], m: IdMapping, roots: &[&std::path::Path]) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for source in volumes_to_own(volumes, roots) {
        let meta = std::fs::symlink_metadata(source)?;
        if meta.is_dir() && meta.uid() == 0 {
            std::os::unix::fs::lchown(source, Some(m.host_uid), Some(m.host_gid))?;
        }
    }
    Ok(())
}

/// The sources of `HOST:CONTAINER[:MODE]` volumes that are writable and
/// lie under one of the daemon's `roots` (what the daemon made): only
/// those may be given to a user namespace; a user's own bind mounts never
/// are.
fn volumes_to_own<'a>(volumes: &'a [String], roots: &[&std::path::Path]) -> Vec<&'a std::path::Path> {
    volumes
        .iter()
        .filter_map(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            let (source, writable) = match parts.as_slice() {
                [s, _] => (*s, true),
                [s, _, mode] => (*s, *mode != "ro"),
                _ => return None,
            };
            let source = std::path::Path::new(source);
            (writable && roots.iter().any(|r| source.starts_with(r))).then_some(source)
        })
        .collect()
}

/// The mapping a stored container holds, if any.
pub fn mapping_of(c: &ContainerRecord) -> Option<IdMapping> {
    c.request.userns_mapping
}

/// How the container's snapshot is owned on the host.
pub fn shift(m: Option<IdMapping>) -> Option<IdShift> {
    m.map(|m| IdShift { uid: m.host_uid, gid: m.host_gid, size: m.size })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(uid: u32, gid: u32) -> IdMapping {
        IdMapping { host_uid: uid, host_gid: gid, size: BLOCK }
    }

    #[test]
    fn ranges_parse_and_are_checked() {
        let p = parse_range("1073741824:1073741824").unwrap();
        assert_eq!(p, UsernsPool { uid_start: 1 << 30, gid_start: 1 << 30, blocks: 16384 });
        assert_eq!(parse_range(" 100000 : 131072 ").unwrap().blocks, 2);
        for (bad, why) in [
            ("100000", "no ':'"),
            ("x:65536", "START"),
            ("100000:-1", "COUNT"),
            ("100000:0", "multiple"),
            ("100000:65537", "multiple"),
            ("0:65536", "below 65536"),
            ("65535:65536", "below 65536"),
            ("4294901760:65536", "largest uid"),
            ("4294967295:65536", "largest uid"),
        ] {
            let e = parse_range(bad).unwrap_err();
            assert!(e.contains(why) && e.contains("containers.userns_range"), "{bad}: {e}");
        }
        assert!(parse_range("4294836224:65536").is_ok(), "the last whole block below (uid_t)-1");
    }

    #[test]
    fn the_berth_users_subordinate_ids_are_the_default() {
        let subuid = "alice:100000:65536\nberth:200000:200000\n";
        let subgid = "berth:300000:131072\n";
        let p = resolve_pool(None, Some(subuid), Some(subgid)).unwrap();
        assert_eq!(p, UsernsPool { uid_start: 200000, gid_start: 300000, blocks: 2 }, "cut to whole blocks of both");
        // Configured wins; no entry or no files: the documented default.
        assert_eq!(resolve_pool(Some("500000:65536"), Some(subuid), Some(subgid)).unwrap().uid_start, 500000);
        let default = parse_range(DEFAULT_RANGE).unwrap();
        assert_eq!(resolve_pool(None, Some("alice:100000:65536"), Some(subgid)).unwrap(), default);
        assert_eq!(resolve_pool(None, None, None).unwrap(), default);
        let e = resolve_pool(None, Some("berth:100000:1000"), Some("berth:100000:1000")).unwrap_err();
        assert!(e.contains("/etc/subuid") && e.contains("multiple"), "{e}");
    }

    #[test]
    fn allocation_takes_the_lowest_free_block_and_never_a_used_one() {
        let pool = UsernsPool { uid_start: 100000, gid_start: 900000, blocks: 3 };
        assert_eq!(allocate(&pool, &[]), Some(m(100000, 900000)));
        let first = allocate(&pool, &[]).unwrap();
        let second = allocate(&pool, &[first]).unwrap();
        assert_eq!(second, m(165536, 965536));
        let third = allocate(&pool, &[first, second]).unwrap();
        assert_eq!(allocate(&pool, &[first, second, third]), None, "pool exhausted");
        // A freed block is reused; a record from another pool that
        // overlaps (uids or gids alone) keeps the block taken.
        assert_eq!(allocate(&pool, &[second, third]), Some(first));
        assert_eq!(allocate(&pool, &[m(100000 - 65535, 1)]), Some(m(165536, 965536)));
        assert_eq!(allocate(&pool, &[m(1, 900000 - 65536)]), Some(m(100000, 900000)), "ends right before the block");
    }

    #[test]
    fn mappings_are_read_back_from_records() {
        let req = berth_core::api::ContainerCreateRequest {
            userns: Some("auto".into()),
            userns_mapping: Some(m(100000, 200000)),
            ..Default::default()
        };
        let value = serde_json::to_value(&req).unwrap();
        assert_eq!(value.get("userns_mapping").and_then(mapping_of_value), Some(m(100000, 200000)));
        assert_eq!(shift(Some(m(7 * BLOCK, 8 * BLOCK))), Some(IdShift { uid: 7 * BLOCK, gid: 8 * BLOCK, size: BLOCK }));
    }

    fn held(networks: &[&str], mapping: IdMapping) -> Held {
        Held { networks: networks.iter().map(|n| n.to_string()).collect(), mapping }
    }

    #[test]
    fn a_pods_containers_share_one_range() {
        let pool = UsernsPool { uid_start: 100000, gid_start: 100000, blocks: 4 };
        let pod_a = ["pod:a".to_string()];
        let records = vec![held(&["bridge"], m(100000, 100000)), held(&["pod:a"], m(231072, 231072))];
        assert_eq!(choose(&pool, &records, &pod_a), Some(m(231072, 231072)), "the pod's range");
        assert_eq!(choose(&pool, &records, &["pod:b".to_string()]), Some(m(165536, 165536)), "a new pod: a free one");
        assert_eq!(choose(&pool, &records, &[]), Some(m(165536, 165536)));
        assert_eq!(choose(&pool, &records[..1], &pod_a), Some(m(165536, 165536)), "no member holds one yet");
    }

    #[test]
    fn only_writable_volumes_the_daemon_made_are_given_to_root_inside() {
        let state = std::path::Path::new("/var/lib/berth/state");
        let volumes = [
            "/var/lib/berth/state/pods/u/volumes/scratch:/scratch:rw".to_string(),
            "/var/lib/berth/state/pods/u/volumes/cache:/cache".to_string(),
            "/var/lib/berth/state/pods/u/volumes/frozen:/frozen:ro".to_string(),
            "/home/me/src:/src".to_string(),
            "/var/lib/berth/statefile:/x".to_string(),
            "malformed".to_string(),
        ];
        let owned: Vec<String> = volumes_to_own(&volumes, &[state]).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(owned, ["/var/lib/berth/state/pods/u/volumes/scratch", "/var/lib/berth/state/pods/u/volumes/cache"]);
    }

    fn mapping_of_value(v: &serde_json::Value) -> Option<IdMapping> {
        serde_json::from_value(v.clone()).ok()
    }
}
