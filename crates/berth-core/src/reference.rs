//! Image references (`[registry/]repository[:tag][@digest]`), parsed by the
//! grammar of the distribution project and normalised the way docker does:
//! no registry means `docker.io`, and a one-part docker.io name gets
//! `library/`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A fully normalised image reference.
///
/// Invariant: `registry` and `repository` are never empty; at least one of
/// `tag` and `digest` is set after [`ImageRef::parse`] (a bare name gets
/// `latest`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid image reference {input:?}: {why}; expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST], e.g. 'registry.example.org/team/app:1.2'")]
    Invalid { input: String, why: String },
}

fn invalid(input: &str, why: impl Into<String>) -> ReferenceError {
    ReferenceError::Invalid { input: input.to_string(), why: why.into() }
}

impl ImageRef {
    /// Parses and normalises a reference; a bare name gets the tag `latest`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let mut r = Self::parse_name_only(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// Parses a reference without adding a default tag (for `rmi NAME@sha…`
    /// and repository listings).
    pub fn parse_name_only(input: &str) -> Result<Self, ReferenceError> {
        if input.is_empty() {
            return Err(invalid(input, "it is empty"));
        }
        if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(input, "it contains whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = Digest::parse(d).map_err(|e| invalid(input, e.to_string()))?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is whatever follows the last ':' that comes after the last '/'.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&rest[..at], Some(&rest[at + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(|why| invalid(input, why))?;
        }
        if name.is_empty() {
            return Err(invalid(input, "the name is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(invalid(input, format!("the name is longer than {MAX_NAME_LEN} characters")));
        }
        let (registry, path) = split_registry(name);
        if let Some(registry) = registry {
            validate_registry(registry).map_err(|why| invalid(input, why))?;
        }
        validate_path(path).map_err(|why| invalid(input, why))?;
        let registry = match registry {
            None | Some("index.docker.io") | Some("registry-1.docker.io") => DEFAULT_REGISTRY,
            Some(r) => r,
        };
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        Ok(Self { registry: registry.to_string(), repository, tag: tag.map(str::to_string), digest })
    }

    /// Builds a reference from parts that are already valid (used when
    /// rewriting a reference onto a mirror).
    pub fn with_registry(&self, registry: &str) -> Result<Self, ReferenceError> {
        validate_registry(registry).map_err(|why| invalid(registry, why))?;
        Ok(Self { registry: registry.to_string(), ..self.clone() })
    }

    /// The same repository pinned to `digest` (tag kept for display).
    pub fn pinned(&self, digest: Digest) -> Self {
        Self { digest: Some(digest), ..self.clone() }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the key under which tags live.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form docker prints: `busybox:latest` rather than
    /// `docker.io/library/busybox:latest`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            self.name()
        }
    }

    /// Whether the registry host is a loopback address, where plain HTTP is
    /// allowed without configuration (as docker does).
    pub fn is_loopback_registry(&self) -> bool {
        is_loopback_host(&self.registry)
    }
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        registry.split(':').next().unwrap_or("")
    };
    if host == "localhost" {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

fn split_registry(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if tag.is_empty() || tag.len() > MAX_TAG_LEN || !first_ok || !rest_ok {
        return Err(format!(
            "tag {tag:?} is invalid: a tag is 1 to {MAX_TAG_LEN} of [A-Za-z0-9_.-] and starts with a letter, digit or '_'"
        ));
    }
    Ok(())
}

fn validate_registry(registry: &str) -> Result<(), String> {
    let bad = || format!("registry {registry:?} is not a valid host[:port]");
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (None, after.strip_prefix(':'))
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(registry), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port {
        if port.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        if !valid_component(component) {
            return Err(format!(
                "name component {component:?} is invalid: use lowercase letters, digits and single separators ('.', '_', '__', '-')"
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({self})")
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ImageRef {
    type Error = ReferenceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ImageRef> for String {
    fn from(r: ImageRef) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
            ("team/app", "docker.io/team/app:latest", "team/app:latest"),
            ("index.docker.io/library/x:1", "docker.io/library/x:1", "x:1"),
            ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
            ("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1"),
            ("[::1]:5000/app:x", "[::1]:5000/app:x", "[::1]:5000/app:x"),
            (
                "reg.example.org/app__x/y-z.q:T_1.0-rc",
                "reg.example.org/app__x/y-z.q:T_1.0-rc",
                "reg.example.org/app__x/y-z.q:T_1.0-rc",
            ),
        ];
        for (input, full, familiar) in cases {
            let r = ImageRef::parse(input).unwrap();
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r, "round trip of {input}");
        }
    }

    #[test]
    fn digest_references_get_no_default_tag() {
        let r = ImageRef::parse(&format!("alpine@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        let r = ImageRef::parse(&format!("127.0.0.1:5000/alpine:3@{D}")).unwrap();
        assert_eq!(r.tag(), Some("3"));
        assert_eq!(r.registry(), "127.0.0.1:5000");
    }

    #[test]
    fn rejects_malformed_references_with_a_reason() {
        for bad in [
            "",
            "UPPER",
            "a b",
            "app:",
            ":tag",
            "app:-x",
            "app::x",
            "a//b",
            "a/",
            "/a",
            "app@sha256:123",
            "app@md5:00",
            "reg.example.org:port/app",
            "a..b",
            "a_-b",
            "-a",
            "a-",
            "reg.-x.org/a",
            "app:tag/with/slash",
        ] {
            let err = ImageRef::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("invalid image reference"), "{bad}: {err}");
        }
        let long_tag = format!("app:{}", "a".repeat(129));
        assert!(ImageRef::parse(&long_tag).is_err());
        let long_name = "a/".repeat(128) + "a";
        assert!(ImageRef::parse(&long_name).is_err());
    }

    #[test]
    fn uppercase_first_part_is_a_registry() {
        // docker treats a first component with uppercase as a host.
        let r = ImageRef::parse("Registry/app").unwrap();
        assert_eq!(r.registry(), "Registry");
    }

    #[test]
    fn loopback_detection() {
        for yes in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.9.9.9", "[::1]:80"] {
            assert!(is_loopback_host(yes), "{yes}");
        }
        for no in ["docker.io", "10.0.0.1:5000", "localhost.example.org", "[::2]:1", "128.0.0.1"] {
            assert!(!is_loopback_host(no), "{no}");
        }
    }

    #[test]
    fn mirror_rewrite_keeps_repository_and_tag() {
        let r = ImageRef::parse("example.org/team/app:2").unwrap();
        let m = r.with_registry("127.0.0.1:5001").unwrap();
        assert_eq!(m.to_string(), "127.0.0.1:5001/team/app:2");
        assert!(r.with_registry("bad host").is_err());
    }

    proptest! {
        #[test]
        fn valid_generated_references_round_trip(
            reg in proptest::option::of("[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}(:[1-9][0-9]{0,3})?"),
            // Without a registry, a first component with a dot would be read as a host.
            path in "[a-z0-9]{1,6}((_|__|-{1,2})[a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,6}((\\.|_)[a-z0-9]{1,3})?){0,2}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        ) {
            let mut s = String::new();
            if let Some(r) = &reg { s.push_str(r); s.push('/'); }
            s.push_str(&path);
            if let Some(t) = &tag { s.push(':'); s.push_str(t); }
            let parsed = ImageRef::parse(&s).unwrap();
            prop_assert_eq!(ImageRef::parse(&parsed.to_string()).unwrap(), parsed.clone());
            prop_assert_eq!(parsed.tag().unwrap(), tag.as_deref().unwrap_or("latest"));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = ImageRef::parse(&s);
        }
    }
}
