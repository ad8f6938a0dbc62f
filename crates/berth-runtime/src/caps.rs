//! Capability sets: Docker's default set, `--cap-add`/`--cap-drop`, and the
//! conversion to the OCI spec's capability type.

use berth_core::api::SecurityOptions;
use oci_spec::runtime::{Capabilities, Capability};

use crate::SpecError;

/// The capabilities a container gets unless told otherwise: Docker's default
/// set minus `AUDIT_WRITE`, `MKNOD` and `NET_RAW` (none of which ordinary
/// programs need; `ping` works through ICMP sockets).
pub const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Every capability Linux knows (up to `CAP_CHECKPOINT_RESTORE`, 40), in
/// kernel order. `ALL` and `--privileged` mean exactly these.
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What a user wrote in `cap_add`/`cap_drop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapName {
    All,
    One(&'static str),
}

/// Accepts `net_admin`, `NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN` and `ALL`.
fn parse_cap(field: &'static str, name: &str) -> Result<CapName, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(CapName::All);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL_CAPS
        .iter()
        .find(|c| &c[4..] == bare)
        .map(|c| CapName::One(c))
        .ok_or_else(|| SpecError::UnknownCapability { field, name: name.to_string() })
}

/// The capability set a non-privileged container runs with, as `CAP_*` names
/// in kernel order.
///
/// Follows Docker's rules: `cap_add: [ALL]` gives every capability except the
/// ones named in `cap_drop`; otherwise `cap_drop: [ALL]` starts from nothing,
/// else from [`DEFAULT_CAPS`] minus `cap_drop`; then `cap_add` is added (so
/// naming a capability in both keeps it). Unknown names are errors, also
/// when `privileged` makes the lists moot, so typos never go unnoticed.
pub fn effective_caps(sec: &SecurityOptions) -> Result<Vec<String>, SpecError> {
    let adds = sec.cap_add.iter().map(|n| parse_cap("cap_add", n)).collect::<Result<Vec<_>, _>>()?;
    let drops = sec.cap_drop.iter().map(|n| parse_cap("cap_drop", n)).collect::<Result<Vec<_>, _>>()?;
    let named = |list: &[CapName], cap: &'static str| list.contains(&CapName::One(cap));
    let keep: Vec<&str> = if adds.contains(&CapName::All) {
        ALL_CAPS.iter().copied().filter(|c| !named(&drops, c)).collect()
    } else {
        let base: &[&'static str] = if drops.contains(&CapName::All) { &[] } else { &DEFAULT_CAPS };
        ALL_CAPS.iter().copied().filter(|c| (base.contains(c) && !named(&drops, c)) || named(&adds, c)).collect()
    };
    Ok(keep.into_iter().map(str::to_string).collect())
}

/// The capabilities named individually (not `ALL`) in `cap_add`, for
/// checking them against what the host can grant.
pub(crate) fn explicit_adds(sec: &SecurityOptions) -> Result<Vec<&'static str>, SpecError> {
    let mut out = Vec::new();
    for n in &sec.cap_add {
        if let CapName::One(c) = parse_cap("cap_add", n)? {
            out.push(c);
        }
    }
    Ok(out)
}

/// The `CAP_*` names of a capability bitmask such as `CapBnd` in
/// `/proc/self/status` (bit n is capability n); bits past the known
/// capabilities are ignored.
pub fn caps_from_mask(mask: u64) -> Vec<String> {
    ALL_CAPS.iter().enumerate().filter(|(i, _)| mask & (1u64 << i) != 0).map(|(_, c)| c.to_string()).collect()
}

/// The OCI set for `CAP_*` names. Names come from [`ALL_CAPS`], which the
/// OCI type knows in full, so none are dropped.
pub(crate) fn to_oci(caps: &[String]) -> Result<Capabilities, SpecError> {
    caps.iter()
        .map(|c| {
            serde_json::from_value::<Capability>(serde_json::Value::String(c.clone()))
                .map_err(|e| SpecError::Internal { reason: format!("capability {c}: {e}") })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(add: &[&str], drop: &[&str]) -> SecurityOptions {
        SecurityOptions {
            cap_add: add.iter().map(|s| s.to_string()).collect(),
            cap_drop: drop.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn sorted(v: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    fn caps(add: &[&str], drop: &[&str]) -> Vec<String> {
        let mut v = effective_caps(&sec(add, drop)).unwrap();
        v.sort();
        v
    }

    #[test]
    fn default_set_is_exactly_the_eleven() {
        assert_eq!(caps(&[], &[]), sorted(&DEFAULT_CAPS));
        for c in DEFAULT_CAPS {
            assert!(ALL_CAPS.contains(&c), "{c}");
        }
    }

    #[test]
    fn drop_and_add_accept_any_spelling() {
        let v = caps(&["net_admin", "CAP_SYS_PTRACE"], &["cap_chown", "Kill"]);
        assert!(v.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(v.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!v.contains(&"CAP_CHOWN".to_string()));
        assert!(!v.contains(&"CAP_KILL".to_string()));
        assert_eq!(v.len(), 11);
    }

    #[test]
    fn drop_all_then_add() {
        assert_eq!(caps(&[], &["ALL"]), Vec::<String>::new());
        assert_eq!(caps(&["NET_BIND_SERVICE"], &["all"]), vec!["CAP_NET_BIND_SERVICE".to_string()]);
    }

    #[test]
    fn add_all_minus_drops() {
        let v = caps(&["ALL"], &[]);
        assert_eq!(v.len(), ALL_CAPS.len());
        let v = caps(&["ALL"], &["SYS_ADMIN"]);
        assert_eq!(v.len(), ALL_CAPS.len() - 1);
        assert!(!v.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn add_and_drop_same_cap_keeps_it() {
        assert!(caps(&["NET_ADMIN"], &["NET_ADMIN"]).contains(&"CAP_NET_ADMIN".to_string()));
    }

    #[test]
    fn unknown_names_are_errors_naming_the_cap() {
        let e = effective_caps(&sec(&["NET_ADMINN"], &[])).unwrap_err();
        assert!(matches!(&e, SpecError::UnknownCapability { field: "cap_add", name } if name == "NET_ADMINN"));
        assert!(e.to_string().contains("NET_ADMINN"), "{e}");
        let e = effective_caps(&sec(&[], &["CAP_"])).unwrap_err();
        assert!(matches!(e, SpecError::UnknownCapability { field: "cap_drop", .. }));
    }

    #[test]
    fn result_is_in_kernel_order_without_duplicates() {
        let v = effective_caps(&sec(&["SYS_ADMIN", "sys_admin", "CAP_SYS_ADMIN"], &[])).unwrap();
        assert_eq!(v.iter().filter(|c| *c == "CAP_SYS_ADMIN").count(), 1);
        let pos: Vec<usize> = v.iter().map(|c| ALL_CAPS.iter().position(|a| a == c).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn masks_map_to_names() {
        assert_eq!(caps_from_mask(0), Vec::<String>::new());
        assert_eq!(caps_from_mask(0b1), vec!["CAP_CHOWN".to_string()]);
        assert_eq!(caps_from_mask(1 << 21), vec!["CAP_SYS_ADMIN".to_string()]);
        assert_eq!(caps_from_mask(u64::MAX).len(), ALL_CAPS.len());
        // A sandbox whose bounding set lacks CAP_SYS_RESOURCE (bit 24).
        let v = caps_from_mask(0x1ff_feff_ffff);
        assert_eq!(v.len(), ALL_CAPS.len() - 1);
        assert!(!v.contains(&"CAP_SYS_RESOURCE".to_string()));
    }

    #[test]
    fn every_known_cap_converts_to_oci() {
        let all: Vec<String> = ALL_CAPS.iter().map(|s| s.to_string()).collect();
        assert_eq!(to_oci(&all).unwrap().len(), ALL_CAPS.len());
    }
}
