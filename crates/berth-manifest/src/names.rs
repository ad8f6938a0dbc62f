//! Name rules as Kubernetes' apimachinery validation applies them. Each check
//! returns `Err(reason)` with a sentence a person can act on.

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const IANA_SVC_NAME_MAX: usize = 15;
const CONFIG_KEY_MAX: usize = 253;
const EMPTY: &str = "the name is empty";

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn too_long(what: &str, max: usize, len: usize) -> String {
    format!("{what} must be at most {max} characters, this one has {len}")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(EMPTY.to_string());
    }
    if s.len() > DNS1123_LABEL_MAX {
        return Err(too_long("a DNS-1123 label", DNS1123_LABEL_MAX, s.len()));
    }
    let ok = !s.is_empty()
        && s.chars().all(|c| lower_alnum(c) || c == '-')
        && s.starts_with(lower_alnum)
        && s.ends_with(lower_alnum);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 label: use lower case letters, digits and '-', starting and ending with a letter or digit (e.g. \"web\" or \"web-1\")"
        ))
    }
}

/// Dot-separated DNS-1123 labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(EMPTY.to_string());
    }
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(too_long("a DNS-1123 subdomain", DNS1123_SUBDOMAIN_MAX, s.len()));
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| lower_alnum(c) || c == '-')
                && part.starts_with(lower_alnum)
                && part.ends_with(lower_alnum)
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1123 subdomain: use lower case letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. \"web\" or \"web.example\")"
        ))
    }
}

/// A DNS-1035 label (what Service names are): a DNS-1123 label that starts
/// with a letter.
pub fn dns1035_label(s: &str) -> Result<(), String> {
    dns1123_label(s)?;
    if s.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS-1035 label: it must start with a lower case letter (e.g. \"web\" or \"api-v2\")"
        ))
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn name_part(s: &str, what: &str) -> Result<(), String> {
    if s.len() > QUALIFIED_NAME_MAX {
        return Err(too_long(what, QUALIFIED_NAME_MAX, s.len()));
    }
    let ok = !s.is_empty()
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(alnum)
        && s.ends_with(alnum);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid {what}: use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
        ))
    }
}

/// A qualified name, `[prefix/]name`: the prefix a DNS-1123 subdomain, the
/// name as a label value but not empty. Label keys and annotation keys are these.
pub fn qualified_name(s: &str) -> Result<(), String> {
    match s.split_once('/') {
        None => name_part(s, "name"),
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err(format!("{s:?} has an empty prefix before '/'; drop the '/' or name a DNS subdomain"));
            }
            dns1123_subdomain(prefix).map_err(|e| format!("the prefix of {s:?} is wrong: {e}"))?;
            if name.contains('/') {
                return Err(format!("{s:?} has more than one '/'; a key is [prefix/]name"));
            }
            name_part(name, "name")
        }
    }
}

/// A label value: empty, or `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > LABEL_VALUE_MAX {
        return Err(too_long("a label value", LABEL_VALUE_MAX, s.len()));
    }
    name_part(s, "label value")
}

/// An IANA service name, what container port names are: at most 15 lower
/// case letters, digits and '-', at least one letter, no '-' at either end
/// or twice in a row.
pub fn iana_svc_name(s: &str) -> Result<(), String> {
    if s.len() > IANA_SVC_NAME_MAX {
        return Err(too_long("a port name", IANA_SVC_NAME_MAX, s.len()));
    }
    let ok = !s.is_empty()
        && s.chars().all(|c| lower_alnum(c) || c == '-')
        && s.chars().any(|c| c.is_ascii_lowercase())
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid port name: use at most 15 lower case letters, digits and '-', with at least one letter (e.g. \"http\" or \"metrics\")"
        ))
    }
}

/// An environment variable name: `[-._a-zA-Z][-._a-zA-Z0-9]*` (the rule
/// every Kubernetes version accepts).
pub fn env_var_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid environment variable name: use letters, digits, '_', '-' and '.', not starting with a digit (e.g. \"LOG_LEVEL\")"
        ))
    }
}

/// A ConfigMap or Secret key: `[-._a-zA-Z0-9]+`, not `.` or `..`, at most
/// 253 characters.
pub fn config_key(s: &str) -> Result<(), String> {
    if s.len() > CONFIG_KEY_MAX {
        return Err(too_long("a key", CONFIG_KEY_MAX, s.len()));
    }
    let ok = !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a valid key: use letters, digits, '-', '_' and '.' (e.g. \"app.properties\"), and not \".\" or \"..\""
        ))
    }
}

/// A relative path inside a volume: not absolute, no `..` step.
pub fn relative_path(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("the path is empty".to_string());
    }
    if s.starts_with('/') {
        return Err(format!("{s:?} must be relative, not start with '/'"));
    }
    if s.split('/').any(|part| part == "..") {
        return Err(format!("{s:?} must not contain '..'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels_and_subdomains() {
        for ok in ["a", "web", "web-1", "0abc", &"a".repeat(63)] {
            assert!(dns1123_label(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Web", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
        for ok in ["a", "a.b", "web-1.example.com"] {
            assert!(dns1123_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a..b", ".a", "a.", "A.b", "a.-b"] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
        assert!(dns1123_subdomain(&["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".")).is_ok());
        assert!(dns1123_subdomain(&["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".")).is_err());
        assert!(dns1035_label("web").is_ok());
        assert!(dns1035_label("1web").unwrap_err().contains("start with a lower case letter"));
    }

    #[test]
    fn label_keys_and_values() {
        for ok in ["app", "app.kubernetes.io/name", "A_b-c.d", "x/y", "example.com/Name_1"] {
            assert!(qualified_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "/a", "a/", "-a", "a-", "Ex.com/a", "a/b/c", "a b", &"a".repeat(64), &format!("x/{}", "a".repeat(64))]
        {
            assert!(qualified_name(bad).is_err(), "{bad}");
        }
        for ok in ["", "v1", "1.2.3", "A-b_c", &"a".repeat(63)] {
            assert!(label_value(ok).is_ok(), "{ok}");
        }
        for bad in ["-a", "a-", "a b", "a/b", &"a".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_env_and_key_names() {
        for ok in ["http", "h2c", "metrics-1", "a"] {
            assert!(iana_svc_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "8080", "-http", "http-", "ht--tp", "HTTP", "averyveryverylong"] {
            assert!(iana_svc_name(bad).is_err(), "{bad}");
        }
        for ok in ["A", "LOG_LEVEL", "my.var", "_x", "a-b"] {
            assert!(env_var_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A=B", "A B"] {
            assert!(env_var_name(bad).is_err(), "{bad}");
        }
        for ok in ["a", "app.properties", "tls.crt", "_x-1"] {
            assert!(config_key(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(config_key(bad).is_err(), "{bad}");
        }
        assert!(relative_path("conf/app.yaml").is_ok());
        assert!(relative_path("/etc").is_err());
        assert!(relative_path("a/../b").is_err());
    }
}
