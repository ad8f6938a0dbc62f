//! From a pod template's container to the container request berth runs:
//! environment resolved from ConfigMaps, Secrets and the downward API,
//! volumes as bind mounts of the pod's directories, limits, security.
//! Pure: the ConfigMaps and Secrets are passed in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_core::api::{ContainerCreateRequest, ResourceLimits, SecretEnvRef, SecurityOptions};
use berth_core::container::RestartPolicy;
use berth_manifest::model::{
    ConfigMapSpec, ContainerSpec, EnvSource, KeyRef, ObjectRef, PodField, PodTemplate, SecretSpec, VolumeSource,
};

/// The ConfigMaps and Secrets of the pod's namespace.
#[derive(Default)]
pub struct ConfigSources {
    pub config_maps: BTreeMap<String, ConfigMapSpec>,
    pub secrets: BTreeMap<String, SecretSpec>,
}

/// Why a container cannot be made yet (Kubernetes'
/// `CreateContainerConfigError`): the pod waits and tries again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigSources {
    fn key(&self, r: &KeyRef, secret: bool) -> Result<Option<String>, ConfigError> {
        let what = if secret { "secret" } else { "configmap" };
        let value = if secret {
            match self.secrets.get(&r.name) {
                None => None,
                Some(s) => match s.data.get(&r.key) {
                    Some(v) => Some(String::from_utf8_lossy(v.expose()).into_owned()),
                    None if r.optional => return Ok(None),
                    None => {
                        return Err(ConfigError(format!("couldn't find key {} in Secret {}", r.key, r.name)));
                    }
                },
            }
        } else {
            match self.config_maps.get(&r.name) {
                None => None,
                Some(c) => match c.data.get(&r.key) {
                    Some(v) => Some(v.clone()),
                    None if r.optional => return Ok(None),
                    None => {
                        return Err(ConfigError(format!("couldn't find key {} in ConfigMap {}", r.key, r.name)));
                    }
                },
            }
        };
        match value {
            Some(v) => Ok(Some(v)),
            None if r.optional => Ok(None),
            None => Err(ConfigError(format!("{what} {:?} not found", r.name))),
        }
    }
}

/// What the pod knows about itself, for the downward API.
pub struct PodIdentity<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub ip: &'a str,
    pub hostname: &'a str,
    pub uid: &'a str,
}

/// A container's environment: `NAME=value` in Kubernetes' order, where a
/// value from a Secret is its placeholder (`<secret NS/NAME KEY>`, see
/// [`SecretEnvRef`]), and where each placeholder's value comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub env: Vec<String>,
    pub secret_env: Vec<SecretEnvRef>,
}

/// The environment of a container, in Kubernetes' order: `envFrom`
/// sources first, then `env`, later ones winning. Secret values are left
/// as placeholders (the daemon reads them when the container starts), but
/// a Secret or key that must exist and does not is an error now, as in
/// Kubernetes.
pub fn environment(c: &ContainerSpec, pod: &PodIdentity<'_>, src: &ConfigSources) -> Result<Environment, ConfigError> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut secrets: Vec<SecretEnvRef> = Vec::new();
    let mut reference = |name: &str, key: &str, optional: bool| -> String {
        let r = SecretEnvRef {
            env: String::new(),
            namespace: pod.namespace.to_string(),
            secret: name.to_string(),
            key: key.to_string(),
            optional,
        };
        let placeholder = r.placeholder();
        // One reference per key: required if any use of it is.
        match secrets.iter_mut().find(|s| (&s.secret, &s.key) == (&r.secret, &r.key)) {
            Some(known) => known.optional &= optional,
            None => secrets.push(r),
        }
        placeholder
    };
    fn set(env: &mut Vec<(String, String)>, k: String, v: String) {
        env.retain(|(n, _)| *n != k);
        env.push((k, v));
    }
    for from in &c.env_from {
        match &from.source {
            ObjectRef::ConfigMap { name, optional } => match src.config_maps.get(name) {
                Some(cm) => cm.data.iter().for_each(|(k, v)| set(&mut env, format!("{}{k}", from.prefix), v.clone())),
                None if *optional => {}
                None => return Err(ConfigError(format!("configmap {name:?} not found"))),
            },
            // Each key as it is now; a key removed later is left out.
            ObjectRef::Secret { name, optional } => match src.secrets.get(name) {
                Some(s) => s.data.keys().for_each(|k| {
                    let placeholder = reference(name, k, true);
                    set(&mut env, format!("{}{k}", from.prefix), placeholder)
                }),
                None if *optional => {}
                None => return Err(ConfigError(format!("secret {name:?} not found"))),
            },
        }
    }
    for e in &c.env {
        let value = match &e.source {
            EnvSource::Value(v) => Some(expand(v, &env)),
            EnvSource::ConfigMapKey(r) => src.key(r, false)?,
            EnvSource::SecretKey(r) => src.key(r, true)?.map(|_| reference(&r.name, &r.key, r.optional)),
            EnvSource::Field(PodField::Name) => Some(pod.name.to_string()),
            EnvSource::Field(PodField::Namespace) => Some(pod.namespace.to_string()),
            EnvSource::Field(PodField::PodIp) => Some(pod.ip.to_string()),
        };
        if let Some(v) = value {
            set(&mut env, e.name.clone(), v);
        }
    }
    let mut secret_env = Vec::new();
    for (k, v) in &env {
        for r in &secrets {
            if v.contains(&r.placeholder()) {
                secret_env.push(SecretEnvRef { env: k.clone(), ..r.clone() });
            }
        }
    }
    Ok(Environment { env: env.into_iter().map(|(k, v)| format!("{k}={v}")).collect(), secret_env })
}

/// Kubernetes' `$(VAR)` expansion of earlier variables; `$$` escapes, and
/// a reference to an unknown variable stays as written.
fn expand(value: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => out.push_str(&format!("$({name})")),
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Where the pod keeps each volume on the host: emptyDirs on disk under
/// the state root; memory emptyDirs, ConfigMaps and Secrets under the run
/// root (tmpfs), so secret values never reach a disk.
pub fn volume_dir(template: &PodTemplate, name: &str, disk: &Path, memory: &Path) -> Option<PathBuf> {
    let v = template.volumes.iter().find(|v| v.name == name)?;
    Some(match &v.source {
        VolumeSource::EmptyDir { medium: berth_manifest::model::Medium::Disk, .. } => disk.join(name),
        _ => memory.join(name),
    })
}

/// The container request for one container of a pod.
pub struct RequestInput<'a> {
    pub pod: &'a PodIdentity<'a>,
    pub template: &'a PodTemplate,
    pub container: &'a ContainerSpec,
    pub env: Vec<String>,
    /// The berth container's name.
    pub name: String,
    /// Volume directories: on disk, and in memory.
    pub disk: &'a Path,
    pub memory: &'a Path,
    /// Where this container's subPath mounts are bound first (see
    /// [`subpath_binds`]).
    pub subpaths: &'a Path,
    pub labels: BTreeMap<String, String>,
}

/// A volume mount with a `subPath`. Handing `VOLUME/SUBPATH` to the
/// runtime would let the runtime follow a symlink the pod planted there
/// out to the host (`ln -s / esc`, `subPath: esc`), so the daemon opens the
/// subPath inside the volume itself and binds what it opened on `target`,
/// a mount point of its own; the runtime binds `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPathBind {
    /// The volumeMount's volume name.
    pub volume: String,
    /// The volume's directory on the host.
    pub volume_dir: PathBuf,
    /// Relative to the volume; validated as text by the manifest reader
    /// (no `..`, not absolute), and resolved beneath the volume.
    pub sub_path: String,
    pub target: PathBuf,
}

/// The subPath binds of a container, in the order of its volumeMounts;
/// `subpaths` is the container's directory of bind targets.
pub fn subpath_binds(
    template: &PodTemplate,
    container: &ContainerSpec,
    disk: &Path,
    memory: &Path,
    subpaths: &Path,
) -> Result<Vec<SubPathBind>, ConfigError> {
    let mut out = Vec::new();
    for (index, m) in container.volume_mounts.iter().enumerate() {
        let Some(sub) = &m.sub_path else { continue };
        let volume_dir = volume_dir(template, &m.name, disk, memory)
            .ok_or_else(|| ConfigError(format!("volume {:?} is not declared in the pod", m.name)))?;
        out.push(SubPathBind {
            volume: m.name.clone(),
            volume_dir,
            sub_path: sub.clone(),
            target: subpaths.join(index.to_string()),
        });
    }
    Ok(out)
}

pub fn container_request(i: RequestInput<'_>) -> Result<ContainerCreateRequest, ConfigError> {
    let c = i.container;
    let mut volumes = Vec::new();
    for (index, m) in c.volume_mounts.iter().enumerate() {
        let dir = volume_dir(i.template, &m.name, i.disk, i.memory)
            .ok_or_else(|| ConfigError(format!("volume {:?} is not declared in the pod", m.name)))?;
        // Never VOLUME/SUBPATH: the bind target the daemon prepared.
        let source = match &m.sub_path {
            Some(_) => i.subpaths.join(index.to_string()),
            None => dir,
        };
        let mode = if m.read_only || is_projected(i.template, &m.name) { "ro" } else { "rw" };
        volumes.push(format!("{}:{}:{mode}", source.display(), m.mount_path));
    }
    let user = match (c.security.run_as_user, c.security.run_as_group) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => Some(format!("0:{g}")),
        (None, None) => None,
    };
    let strip = |caps: &[String]| -> Vec<String> {
        caps.iter().map(|c| c.strip_prefix("CAP_").unwrap_or(c).to_string()).collect()
    };
    Ok(ContainerCreateRequest {
        image: c.image.to_string(),
        name: Some(i.name),
        networks: vec![format!("pod:{}", i.pod.uid)],
        entrypoint: (!c.command.is_empty()).then(|| c.command.clone()),
        cmd: (!c.args.is_empty()).then(|| c.args.clone()),
        env: i.env,
        workdir: c.working_dir.clone(),
        user,
        hostname: Some(i.pod.hostname.to_string()),
        volumes,
        labels: i.labels,
        limits: ResourceLimits {
            memory: c.resources.memory_limit_bytes,
            cpus: c.resources.cpu_limit_millis.map(|m| m as f64 / 1000.0),
            ..Default::default()
        },
        security: SecurityOptions {
            privileged: c.security.privileged,
            read_only: c.security.read_only_root_filesystem,
            cap_add: strip(&c.security.capabilities_add),
            cap_drop: strip(&c.security.capabilities_drop),
            security_opt: Vec::new(),
        },
        restart: Some(RestartPolicy::No),
        stop_timeout: Some(i.template.termination_grace_period.as_secs().min(u64::from(u32::MAX)) as u32),
        // The daemon gives all containers of the pod (they share its
        // network namespace) one host range.
        userns: (!i.template.host_users).then(|| "auto".to_string()),
        ..Default::default()
    })
}

/// ConfigMap and Secret volumes are always mounted read-only, as
/// Kubernetes does, whatever the mount's `readOnly` says: a container must
/// not change what the next container of the pod (or a restart) reads.
fn is_projected(template: &PodTemplate, volume: &str) -> bool {
    template
        .volumes
        .iter()
        .any(|v| v.name == volume && matches!(v.source, VolumeSource::ConfigMap(_) | VolumeSource::Secret(_)))
}

/// The files of a ConfigMap or Secret volume: relative path, bytes, mode.
pub fn projected_files(source: &VolumeSource, src: &ConfigSources) -> Result<Vec<(String, Vec<u8>, u32)>, ConfigError> {
    let (keys, data): (_, BTreeMap<String, Vec<u8>>) = match source {
        VolumeSource::ConfigMap(k) => match src.config_maps.get(&k.name) {
            Some(cm) => (
                k,
                cm.data
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
                    .chain(cm.binary_data.iter().map(|(n, v)| (n.clone(), v.clone())))
                    .collect(),
            ),
            None if k.optional => return Ok(Vec::new()),
            None => return Err(ConfigError(format!("configmap {:?} not found", k.name))),
        },
        VolumeSource::Secret(k) => match src.secrets.get(&k.name) {
            Some(s) => (k, s.data.iter().map(|(n, v)| (n.clone(), v.expose().to_vec())).collect()),
            None if k.optional => return Ok(Vec::new()),
            None => return Err(ConfigError(format!("secret {:?} not found", k.name))),
        },
        VolumeSource::EmptyDir { .. } => return Ok(Vec::new()),
    };
    if keys.items.is_empty() {
        return Ok(data.into_iter().map(|(k, v)| (k, v, keys.default_mode)).collect());
    }
    let mut out = Vec::new();
    for item in &keys.items {
        match data.get(&item.key) {
            Some(v) => out.push((item.path.clone(), v.clone(), item.mode.unwrap_or(keys.default_mode))),
            None if keys.optional => {}
            None => {
                return Err(ConfigError(format!("couldn't find key {} in {:?}", item.key, keys.name)));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &env), "x1y");
        assert_eq!(expand("$$(A)", &env), "$(A)");
        assert_eq!(expand("$(B)", &env), "$(B)");
        assert_eq!(expand("cost $5", &env), "cost $5");
        assert_eq!(expand("$(A", &env), "$(A");
    }

    fn load(text: &str) -> Vec<berth_manifest::Object> {
        berth_manifest::load(text).unwrap()
    }

    #[test]
    fn environment_resolves_sources_in_kubernetes_order() {
        let objs = load(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {MODE: prod, LEVEL: info}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: busybox\n          envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}]\n          env:\n            - {name: CFG_MODE, value: override}\n            - {name: PASS, valueFrom: {secretKeyRef: {name: db, key: password}}}\n            - {name: ME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}\n            - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}\n            - {name: URL, value: 'http://$(IP):80'}\n            - {name: OPT, valueFrom: {configMapKeyRef: {name: nope, key: x, optional: true}}}\n",
        );
        let mut src = ConfigSources::default();
        let mut deployment = None;
        for o in objs {
            match o {
                berth_manifest::Object::ConfigMap(c) => {
                    src.config_maps.insert(c.meta.name.clone(), c);
                }
                berth_manifest::Object::Secret(s) => {
                    src.secrets.insert(s.meta.name.clone(), s);
                }
                berth_manifest::Object::Deployment(d) => deployment = Some(d),
                _ => {}
            }
        }
        let d = deployment.unwrap();
        let pod = PodIdentity { namespace: "default", name: "web-1", ip: "10.0.0.9", hostname: "web-1", uid: "u" };
        let env = environment(&d.template.containers[0], &pod, &src).unwrap();
        assert_eq!(
            env.env,
            vec![
                "CFG_LEVEL=info",
                "CFG_MODE=override",
                "PASS=<secret default/db password>",
                "ME=web-1",
                "IP=10.0.0.9",
                "URL=http://10.0.0.9:80"
            ]
        );
        let db = SecretEnvRef {
            env: "PASS".into(),
            namespace: "default".into(),
            secret: "db".into(),
            key: "password".into(),
            optional: false,
        };
        assert_eq!(env.secret_env, vec![db]);
        assert!(!format!("{env:?}").contains("hunter2"), "no value in {env:?}");
        src.secrets.clear();
        let err = environment(&d.template.containers[0], &pod, &src).unwrap_err();
        assert_eq!(err.to_string(), "secret \"db\" not found");
    }

    #[test]
    fn secret_values_stay_placeholders_even_when_expanded_or_imported_whole() {
        let objs = load(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData: {user: app, password: hunter2}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: busybox\n          envFrom: [{secretRef: {name: db}, prefix: DB_}]\n          env:\n            - {name: PASS, valueFrom: {secretKeyRef: {name: db, key: password}}}\n            - {name: URL, value: 'pg://$(DB_user):$(PASS)@db'}\n            - {name: OPT, valueFrom: {secretKeyRef: {name: nope, key: x, optional: true}}}\n",
        );
        let mut src = ConfigSources::default();
        let mut deployment = None;
        for o in objs {
            match o {
                berth_manifest::Object::Secret(s) => {
                    src.secrets.insert(s.meta.name.clone(), s);
                }
                berth_manifest::Object::Deployment(d) => deployment = Some(d),
                _ => {}
            }
        }
        let d = deployment.unwrap();
        let pod = PodIdentity { namespace: "shop", name: "web-1", ip: "10.0.0.9", hostname: "web-1", uid: "u" };
        let env = environment(&d.template.containers[0], &pod, &src).unwrap();
        assert!(!format!("{env:?}").contains("hunter2"), "{env:?}");
        assert_eq!(
            env.env,
            vec![
                "DB_password=<secret shop/db password>",
                "DB_user=<secret shop/db user>",
                "PASS=<secret shop/db password>",
                "URL=pg://<secret shop/db user>:<secret shop/db password>@db",
            ]
        );
        let refs: Vec<(&str, &str, bool)> =
            env.secret_env.iter().map(|r| (r.env.as_str(), r.key.as_str(), r.optional)).collect();
        assert_eq!(
            refs,
            vec![
                ("DB_password", "password", false),
                ("DB_user", "user", true),
                ("PASS", "password", false),
                ("URL", "password", false),
                ("URL", "user", true),
            ]
        );
    }

    #[test]
    fn configmap_and_secret_volumes_are_always_read_only() {
        let objs = load(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: busybox\n          volumeMounts:\n            - {name: cfg, mountPath: /cfg}\n            - {name: sec, mountPath: /sec, readOnly: false}\n            - {name: scratch, mountPath: /scratch}\n            - {name: frozen, mountPath: /frozen, readOnly: true}\n      volumes:\n        - {name: cfg, configMap: {name: cfg}}\n        - {name: sec, secret: {secretName: db}}\n        - {name: scratch, emptyDir: {}}\n        - {name: frozen, emptyDir: {}}\n",
        );
        let Some(berth_manifest::Object::Deployment(d)) = objs.into_iter().next() else { panic!("a deployment") };
        let pod = PodIdentity { namespace: "default", name: "web-1", ip: "10.0.0.9", hostname: "web-1", uid: "u" };
        let req = container_request(RequestInput {
            pod: &pod,
            template: &d.template,
            container: &d.template.containers[0],
            env: Vec::new(),
            name: "web".into(),
            disk: Path::new("/d"),
            memory: Path::new("/m"),
            subpaths: Path::new("/s"),
            labels: BTreeMap::new(),
        })
        .unwrap();
        assert_eq!(
            req.volumes,
            vec!["/m/cfg:/cfg:ro", "/m/sec:/sec:ro", "/d/scratch:/scratch:rw", "/d/frozen:/frozen:ro"]
        );
    }

    #[test]
    fn host_users_false_asks_for_a_user_namespace() {
        for (host_users, want) in [("true", None), ("false", Some("auto"))] {
            let objs = load(&format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      hostUsers: {host_users}\n      containers: [{{name: web, image: busybox}}]\n"
            ));
            let Some(berth_manifest::Object::Deployment(d)) = objs.into_iter().next() else { panic!("a deployment") };
            let pod = PodIdentity { namespace: "default", name: "web-1", ip: "10.0.0.9", hostname: "web-1", uid: "u" };
            let req = container_request(RequestInput {
                pod: &pod,
                template: &d.template,
                container: &d.template.containers[0],
                env: Vec::new(),
                name: "web".into(),
                disk: Path::new("/d"),
                memory: Path::new("/m"),
                subpaths: Path::new("/s"),
                labels: BTreeMap::new(),
            })
            .unwrap();
            assert_eq!(req.userns.as_deref(), want, "hostUsers: {host_users}");
            assert_eq!(req.userns_mapping, None, "the daemon chooses the range");
        }
    }
}
