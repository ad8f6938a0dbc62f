//! Environment values from Secrets: the container's request keeps
//! `NAME=<secret NAMESPACE/NAME KEY>` and where the value lives
//! ([`SecretEnvRef`]); the value is read from the Secret each time the
//! container starts and written into the bundle's `config.json` (0600),
//! which the runtime reads at start and at every `exec` (for the
//! process's environment). So a restart sees the Secret as it is then,
//! and the value is never in the store, the request or what berth shows;
//! `config.json` is the one file under the state root that holds it.

use std::collections::BTreeMap;
use std::path::Path;

use berth_core::api::SecretEnvRef;

use super::{ContainerError, Containers, Result};

/// Why a secret variable has no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretEnvError {
    #[error("secret {namespace}/{secret} (for ${env}) not found; apply it, or mark the reference optional")]
    MissingSecret { env: String, namespace: String, secret: String },
    #[error("couldn't find key {key} in Secret {namespace}/{secret} (for ${env})")]
    MissingKey { env: String, namespace: String, secret: String, key: String },
    #[error("reading Secret {namespace}/{secret}: {detail}")]
    Read { namespace: String, secret: String, detail: String },
}

/// What the Secret holds for one reference: its data, or nothing when
/// the Secret does not exist.
pub type SecretData = Option<BTreeMap<String, Vec<u8>>>;

/// The final `NAME=value` of every secret variable (`None`: left out, an
/// optional reference whose Secret or key is missing). Pure: `lookup`
/// gives a Secret's data by namespace and name.
pub fn resolve(
    env: &[String],
    refs: &[SecretEnvRef],
    mut lookup: impl FnMut(&str, &str) -> Result<SecretData, String>,
) -> Result<BTreeMap<String, Option<String>>, SecretEnvError> {
    let mut out = BTreeMap::new();
    let mut cache: BTreeMap<(String, String), SecretData> = BTreeMap::new();
    for r in refs {
        let entry = out.entry(r.env.clone()).or_insert_with(|| {
            env.iter().rev().find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == r.env).cloned()
        });
        let Some(current) = entry.as_mut() else { continue };
        let key = (r.namespace.clone(), r.secret.clone());
        if !cache.contains_key(&key) {
            let data = lookup(&r.namespace, &r.secret).map_err(|detail| SecretEnvError::Read {
                namespace: r.namespace.clone(),
                secret: r.secret.clone(),
                detail,
            })?;
            cache.insert(key.clone(), data);
        }
        let value = match &cache[&key] {
            Some(data) => data.get(&r.key).map(|v| String::from_utf8_lossy(v).into_owned()),
            None if r.optional => None,
            None => {
                return Err(SecretEnvError::MissingSecret {
                    env: r.env.clone(),
                    namespace: r.namespace.clone(),
                    secret: r.secret.clone(),
                })
            }
        };
        match value {
            Some(v) => *current = current.replace(&r.placeholder(), &v),
            None if r.optional => *entry = None,
            None => {
                return Err(SecretEnvError::MissingKey {
                    env: r.env.clone(),
                    namespace: r.namespace.clone(),
                    secret: r.secret.clone(),
                    key: r.key.clone(),
                })
            }
        }
    }
    Ok(out)
}

/// Sets the secret variables in an OCI spec's `process.env`: each named
/// one is replaced (or removed when `None`, or added when absent), others
/// stay as they are.
pub fn patch_spec_env(spec: &mut serde_json::Value, vars: &BTreeMap<String, Option<String>>) {
    let Some(list) = spec.pointer_mut("/process/env").and_then(|v| v.as_array_mut()) else { return };
    let mut seen = std::collections::BTreeSet::new();
    list.retain_mut(|e| {
        let Some(text) = e.as_str() else { return true };
        let name = text.split_once('=').map_or(text, |(k, _)| k).to_string();
        match vars.get(&name) {
            None => true,
            Some(None) => false,
            Some(Some(new)) => {
                *e = serde_json::Value::String(new.clone());
                seen.insert(name);
                true
            }
        }
    });
    for (name, v) in vars {
        if let (Some(v), false) = (v, seen.contains(name)) {
            list.push(serde_json::Value::String(v.clone()));
        }
    }
}

/// Writes `data` to `path` through a temporary file, readable by the
/// owner only from the first byte.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let tmp = path.with_extension("secret.tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Containers {
    fn rewrite_spec_env(&self, id: &str, vars: &BTreeMap<String, Option<String>>) -> Result<()> {
        let path = self.bundle(id).join("config.json");
        let what = format!("rewriting the environment in {}", path.display());
        let mut spec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).map_err(ContainerError::io(what.clone()))?)
                .map_err(ContainerError::io(what.clone()))?;
        patch_spec_env(&mut spec, vars);
        let json = serde_json::to_vec_pretty(&spec).map_err(ContainerError::io(what.clone()))?;
        write_private(&path, &json).map_err(ContainerError::io(what))
    }

    /// Before the runtime reads the bundle: the Secrets' values go into
    /// `config.json`. Fails (and nothing starts) when a Secret or key that
    /// is not optional is gone.
    pub(super) fn reveal_secret_env(&self, c: &berth_store::ContainerRecord) -> Result<()> {
        let req = &c.request;
        if req.secret_env.is_empty() {
            return Ok(());
        }
        let store = self.store.as_ref();
        let vars = resolve(&req.env, &req.secret_env, |namespace, name| {
            crate::declared::secret_data(store, namespace, name).map_err(|e| e.to_string())
        })
        .map_err(|e| ContainerError::Invalid(format!("container {}: {e}", c.name)))?;
        self.rewrite_spec_env(&c.id, &vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(env: &str, secret: &str, key: &str, optional: bool) -> SecretEnvRef {
        SecretEnvRef { env: env.into(), namespace: "default".into(), secret: secret.into(), key: key.into(), optional }
    }

    fn data() -> BTreeMap<String, Vec<u8>> {
        [("password".to_string(), b"hunter2".to_vec()), ("user".to_string(), b"app".to_vec())].into()
    }

    #[test]
    fn placeholders_become_the_values_the_secret_has_now() {
        let env = vec![
            "PLAIN=x".to_string(),
            "PASS=<secret default/db password>".to_string(),
            "URL=postgres://<secret default/db user>:<secret default/db password>@db".to_string(),
        ];
        let refs =
            vec![r("PASS", "db", "password", false), r("URL", "db", "user", false), r("URL", "db", "password", false)];
        let mut lookups = 0;
        let vars = resolve(&env, &refs, |_, name| {
            lookups += 1;
            Ok((name == "db").then(data))
        })
        .unwrap();
        assert_eq!(lookups, 1, "one read per Secret");
        assert_eq!(vars["PASS"].as_deref(), Some("PASS=hunter2"));
        assert_eq!(vars["URL"].as_deref(), Some("URL=postgres://app:hunter2@db"));
        assert!(!vars.contains_key("PLAIN"));
    }

    #[test]
    fn a_missing_secret_or_key_fails_unless_optional() {
        let env = vec!["A=<secret default/gone k>".to_string(), "B=<secret default/db nokey>".to_string()];
        let gone = resolve(&env, &[r("A", "gone", "k", false)], |_, n| Ok((n == "db").then(data))).unwrap_err();
        assert_eq!(
            gone.to_string(),
            "secret default/gone (for $A) not found; apply it, or mark the reference optional"
        );
        let nokey = resolve(&env, &[r("B", "db", "nokey", false)], |_, n| Ok((n == "db").then(data))).unwrap_err();
        assert!(matches!(nokey, SecretEnvError::MissingKey { .. }), "{nokey}");
        let vars =
            resolve(&env, &[r("A", "gone", "k", true), r("B", "db", "nokey", true)], |_, n| Ok((n == "db").then(data)))
                .unwrap();
        assert_eq!(vars, [("A".to_string(), None), ("B".to_string(), None)].into());
        let read = resolve(&env, &[r("A", "gone", "k", true)], |_, _| Err("disk on fire".into())).unwrap_err();
        assert!(read.to_string().contains("disk on fire"));
    }

    #[test]
    fn the_spec_env_is_patched_by_name() {
        let mut spec = serde_json::json!({"process": {"env": ["PATH=/bin", "PASS=<secret default/db password>", "GONE=<secret default/x y>"]}});
        let vars = [("PASS".to_string(), Some("PASS=hunter2".to_string())), ("GONE".to_string(), None)].into();
        patch_spec_env(&mut spec, &vars);
        assert_eq!(spec["process"]["env"], serde_json::json!(["PATH=/bin", "PASS=hunter2"]));
        // A variable left out at one start comes back when its Secret does.
        let vars = [("GONE".to_string(), Some("GONE=back".to_string()))].into();
        patch_spec_env(&mut spec, &vars);
        assert_eq!(spec["process"]["env"], serde_json::json!(["PATH=/bin", "PASS=hunter2", "GONE=back"]));
    }
}
