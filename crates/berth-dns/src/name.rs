//! The one spelling of a DNS name that the records table and the server
//! compare: lower case, no trailing dot, labels of letters, digits, `-` and
//! `_`.

use hickory_proto::rr::Name;
use thiserror::Error;

/// Longest name in presentation form without the trailing dot (RFC 1035:
/// 255 octets on the wire, which is 253 characters written out).
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035).
const MAX_LABEL: usize = 63;

/// Why a name was refused. The caller wraps it with the name and the place
/// it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("it is empty")]
    Empty,
    #[error("it is {len} characters long; the limit is {MAX_NAME}")]
    TooLong { len: usize },
    #[error("it has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel,
    #[error("its label {label:?} is {len} characters long; the limit is {MAX_LABEL}")]
    LabelTooLong { label: String, len: usize },
    #[error("it contains {ch:?}; only letters, digits, '-' and '_' may appear in a label")]
    BadChar { ch: char },
}

/// Checks `name` and returns its canonical spelling. One trailing dot is
/// accepted (`web.` and `web` are the same name), case is folded.
pub fn normalize(name: &str) -> Result<String, NameError> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err(NameError::Empty);
    }
    if trimmed.len() > MAX_NAME {
        return Err(NameError::TooLong { len: trimmed.len() });
    }
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LabelTooLong { label: label.to_string(), len: label.len() });
        }
        if let Some(ch) = label.chars().find(|c| !is_label_char(*c)) {
            return Err(NameError::BadChar { ch });
        }
    }
    Ok(trimmed.to_ascii_lowercase())
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The canonical spelling of a name from the wire, or `None` when it
/// cannot be one of ours (a label with a dot or other byte that
/// [`normalize`] refuses). The root name gives `Some("")`.
pub fn key_of(name: &Name) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if label.is_empty() || !label.iter().all(|b| is_label_char(char::from(*b))) {
            return None;
        }
        if i > 0 {
            key.push('.');
        }
        key.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    Some(key)
}

/// True when `key` (canonical) is `zone` or lies under it.
pub fn in_zone(key: &str, zone: &str) -> bool {
    key == zone || key.strip_suffix(zone).is_some_and(|head| head.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_and_one_trailing_dot() {
        assert_eq!(normalize("Web.Prod.").unwrap(), "web.prod");
        assert_eq!(normalize("db_1").unwrap(), "db_1");
    }

    #[test]
    fn refuses_what_dns_cannot_carry() {
        assert_eq!(normalize(""), Err(NameError::Empty));
        assert_eq!(normalize("."), Err(NameError::Empty));
        assert_eq!(normalize("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(normalize("web.."), Err(NameError::EmptyLabel));
        assert_eq!(normalize("we b"), Err(NameError::BadChar { ch: ' ' }));
        assert_eq!(normalize("wéb"), Err(NameError::BadChar { ch: 'é' }));
        let long = "a".repeat(64);
        assert!(matches!(normalize(&long), Err(NameError::LabelTooLong { len: 64, .. })));
        let many = ["a"; 128].join(".");
        assert_eq!(normalize(&many), Err(NameError::TooLong { len: 255 }));
    }

    #[test]
    fn wire_names_map_to_keys() {
        let name = Name::from_ascii("Web.PROD.svc.").unwrap();
        assert_eq!(key_of(&name).as_deref(), Some("web.prod.svc"));
        assert_eq!(key_of(&Name::root()).as_deref(), Some(""));
        // A label that itself contains a dot is never one of ours.
        let odd = Name::from_labels(vec![b"a.b".to_vec(), b"c".to_vec()]).unwrap();
        assert_eq!(key_of(&odd), None);
    }

    #[test]
    fn zone_membership_is_by_whole_labels() {
        assert!(in_zone("cluster.local", "cluster.local"));
        assert!(in_zone("web.prod.svc.cluster.local", "cluster.local"));
        assert!(!in_zone("mycluster.local", "cluster.local"));
        assert!(!in_zone("local", "cluster.local"));
    }
}
