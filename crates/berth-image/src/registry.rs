//! Registries: saved credentials, how refusals read to a user, the token
//! challenge parser, and the credential check behind `berth login`. The
//! requests of pull and push go through the bounded client in `fetch`.

use std::time::Duration;

use berth_core::ImageRef;

use crate::error::{ImageError, Result};
use crate::store::ImageStore;

impl ImageStore {
    /// Whether no credentials are saved for `registry` (then a refusal
    /// means "log in", not "wrong password").
    pub(crate) fn is_anonymous(&self, registry: &str) -> bool {
        matches!(self.credentials.get(registry), Ok(None))
    }

    /// Checks credentials against the registry and saves them (0600).
    /// Nothing is saved when the registry refuses them.
    pub async fn login(&self, registry: &str, user: &str, password: &str) -> Result<()> {
        let probe = ImageRef::parse(&format!("{registry}/probe"))
            .map_err(|_| ImageError::Invalid(format!("invalid registry address {registry:?}; give host[:port]")))?;
        let registry = probe.registry().to_string();
        if user.is_empty() || password.is_empty() {
            return Err(ImageError::Invalid("username and password must not be empty".into()));
        }
        let scheme = if self.config.is_insecure(&registry) { "http" } else { "https" };
        let host = if registry == "docker.io" { "registry-1.docker.io" } else { &registry };
        check_login(scheme, host, &registry, user, password).await?;
        self.credentials.set(&registry, user, password)
    }

    pub fn logout(&self, registry: &str) -> Result<bool> {
        self.credentials.remove(registry)
    }
}

async fn check_login(scheme: &str, host: &str, registry: &str, user: &str, password: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| ImageError::Registry { registry: registry.into(), detail: e.to_string() })?;
    let unreachable = |e: reqwest::Error| ImageError::Unreachable { registry: registry.into(), detail: root_cause(&e) };
    let url = format!("{scheme}://{host}/v2/");
    let resp = http.get(&url).basic_auth(user, Some(password)).send().await.map_err(unreachable)?;
    if resp.status().is_success() {
        return Ok(());
    }
    let refused = |detail: String| ImageError::Unauthorized {
        registry: registry.into(),
        user: format!(" for user {user:?}"),
        detail,
    };
    if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
        return Err(ImageError::Registry {
            registry: registry.into(),
            detail: format!("GET {url} answered {}", resp.status()),
        });
    }
    // A token server: ask it for a token with the credentials.
    let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let Some(params) = bearer_params(&challenge) else {
        return Err(refused("wrong username or password".into()));
    };
    let field = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let realm = field("realm").ok_or_else(|| refused("the registry's token challenge names no realm".into()))?;
    let mut req = http.get(&realm).basic_auth(user, Some(password)).query(&[("account", user)]);
    if let Some(service) = field("service") {
        req = req.query(&[("service", service)]);
    }
    let token = req.send().await.map_err(unreachable)?;
    if !token.status().is_success() {
        return Err(refused(format!("the token server answered {}", token.status())));
    }
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        token: Option<String>,
        access_token: Option<String>,
    }
    // The client's 30 s timeout bounds the time; this bounds the bytes.
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    let body = crate::fetch::read_capped(token, crate::fetch::MAX_TOKEN_BYTES, until).await.map_err(|e| {
        ImageError::Registry {
            registry: registry.into(),
            detail: format!("cannot read the token server's answer: {e}"),
        }
    })?;
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| ImageError::Registry {
        registry: registry.into(),
        detail: format!("the token server's answer is not a token: {e}"),
    })?;
    if answer.token.or(answer.access_token).is_some_and(|t| !t.is_empty()) {
        Ok(())
    } else {
        Err(refused("the token server answered without a token".into()))
    }
}

/// Parses `Bearer realm="…",service="…"` (scheme case-insensitive, values
/// quoted or not, commas inside quotes kept) into key/value pairs.
pub(crate) fn bearer_params(challenge: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect::<String>().trim().to_string();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value.trim().to_string()));
    }
    Some(out)
}

/// Turns "denied" into "credentials needed" when none were given.
pub(crate) fn explain_anonymous(e: ImageError, anonymous: bool, reference: &str) -> ImageError {
    match e {
        ImageError::Unauthorized { registry, .. } if anonymous => {
            ImageError::AuthRequired { registry, reference: reference.to_string() }
        }
        other => other,
    }
}

/// The innermost cause of an error, which is what a user can act on
/// ("Connection refused", "dns error: ...").
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether a pull that failed at a mirror should go on to the next source.
pub(crate) fn worth_falling_back(e: &ImageError) -> bool {
    !matches!(
        e,
        ImageError::NoSpace { .. }
            | ImageError::Io { .. }
            | ImageError::Store(_)
            | ImageError::Reference(_)
            | ImageError::Config(_)
            | ImageError::Invalid(_)
    )
}

#[cfg(test)]
mod tests {
    use super::bearer_params;

    #[test]
    fn parses_bearer_challenges() {
        let p = bearer_params(
            r#"bearer realm="https://auth.example.org/token",service="reg",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(p[0], ("realm".into(), "https://auth.example.org/token".into()));
        assert_eq!(p[1], ("service".into(), "reg".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a/b:pull,push".into()));
        let p = bearer_params("Bearer realm=http://127.0.0.1:1/t, service=x").unwrap();
        assert_eq!(p, vec![("realm".into(), "http://127.0.0.1:1/t".into()), ("service".into(), "x".into())]);
        assert!(bearer_params(r#"Basic realm="x""#).is_none());
    }
}
