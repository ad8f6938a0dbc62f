//! Declared services: Kubernetes Deployments, Services, ConfigMaps and
//! Secrets applied with `berth apply`, kept so by reconcilers.
//!
//! Design: the store holds what was declared (each object's document) and
//! every pod (its template, containers and last known health). Three loops
//! work from it, each taking the next idempotent step and persisting it
//! before acting, so a daemon killed at any point resumes where it was:
//! - the Deployment reconciler ([`plan::deployment_step`]) creates pod
//!   records and marks pods for deletion;
//! - one worker per pod ([`pod`]) makes its sandbox, runs init containers
//!   then containers, probes them, restarts them with back-off, and drains
//!   and stops the pod when it must go;
//! - the Service reconciler programs each Service's VIPs with its ready
//!   pods ([`plan::service_backends`]) and its DNS names.
//!
//! After a restart, running containers are adopted with the health they
//! had; nothing healthy is restarted.

mod kube;
mod plan;
mod pod;
mod records;
mod rollout;
mod spec;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_core::api::{ApplyRequest, ApplyResponse, DeleteRequest, ManifestFile, ObjectChange};
use berth_manifest::model::{ClusterIp, Kind, ServiceType, DEFAULT_NAMESPACE};
use berth_manifest::{CrashBackoff, Object, ObjectKey, Selector};
use berth_store::{Store, StoreError};

use crate::networks::{ServiceNet, ServicePortNet};
use records::{PodRecord, StoredObject};

#[derive(Debug, thiserror::Error)]
pub enum DeclaredError {
    /// Manifests that cannot be applied; one line per problem.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Network(#[from] crate::networks::NetworkError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Result<T, E = DeclaredError> = std::result::Result<T, E>;

/// `[services]` settings.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    pub backoff: CrashBackoff,
    /// Longest wait for a leaving pod's connections to close.
    pub drain_timeout: Duration,
}

pub struct Declared {
    store: Arc<dyn Store>,
    containers: Arc<crate::containers::Containers>,
    networks: Arc<crate::networks::Networks>,
    images: Arc<berth_image::ImageStore>,
    events: Arc<crate::events::Events>,
    settings: ServiceSettings,
    /// Pod directories: on disk (emptyDirs), in memory (secrets, configs).
    disk: PathBuf,
    memory: PathBuf,
    /// Serialises apply, delete, scale and the Deployment reconciler.
    lock: tokio::sync::Mutex<()>,
    services_lock: tokio::sync::Mutex<()>,
    wake: tokio::sync::Notify,
    workers: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

fn uid() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `kind` as `berth get` and the API spell it.
fn resource_kind(resource: &str) -> Option<&'static str> {
    Some(match resource {
        "deployments" => "Deployment",
        "services" => "Service",
        "configmaps" => "ConfigMap",
        "secrets" => "Secret",
        "pods" => "Pod",
        "endpoints" => "Endpoints",
        "events" => "Event",
        _ => return None,
    })
}

/// What `get`/`list` are asked for.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    pub show_secrets: bool,
    /// Events only: `Kind/name` of the object they are about.
    pub involved: Option<String>,
}

impl Declared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        containers: Arc<crate::containers::Containers>,
        networks: Arc<crate::networks::Networks>,
        images: Arc<berth_image::ImageStore>,
        events: Arc<crate::events::Events>,
        root: &std::path::Path,
        run_root: &std::path::Path,
        settings: ServiceSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            containers,
            networks,
            images,
            events,
            settings,
            disk: root.join("pods"),
            memory: run_root.join("pods"),
            lock: tokio::sync::Mutex::new(()),
            services_lock: tokio::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
            workers: Mutex::new(HashMap::new()),
        })
    }

    /// Starts the reconcilers: adopts every stored pod, then keeps
    /// Deployments and Services as declared.
    pub fn start(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = this.reconcile().await {
                    tracing::warn!(error = %e, "reconciling declared state failed");
                }
                tokio::select! {
                    _ = this.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    fn event(&self, kind: &str, namespace: &str, name: &str, warning: bool, reason: &str, message: String) {
        self.events.emit(
            kind,
            reason,
            &format!("{namespace}/{name}"),
            name,
            &[
                ("namespace", namespace.to_string()),
                ("type", if warning { "Warning" } else { "Normal" }.to_string()),
                ("message", message),
            ],
        );
    }

    // ---- apply, delete, scale ----

    /// Parses and checks every file, then stores each object that changed.
    pub async fn apply(self: &Arc<Self>, req: ApplyRequest) -> Result<ApplyResponse> {
        let objects = parse_files(&req.files)?;
        let _guard = self.lock.lock().await;
        let mut plan = Vec::new();
        let mut problems = Vec::new();
        for (object, manifest) in objects {
            let key = object.key();
            let kind = key.kind.to_string();
            let store_key = format!("{}/{}", key.namespace, key.name);
            let old = records::object(self.store.as_ref(), &kind, &store_key)?;
            let action = match &old {
                None => "created",
                // As kubectl apply: the same document as last applied changes
                // nothing, also what imperative commands changed since.
                Some(o) if records::object_of(o.last_applied()).ok().as_ref() == Some(&object) => "unchanged",
                Some(_) => "configured",
            };
            if let (Some(o), "configured") = (&old, action) {
                if let Err(e) = check_update(o, &object) {
                    problems.push(format!("{key}: {e}"));
                }
            }
            if let Object::Service(s) = &object {
                if let ClusterIp::Fixed(ip) = s.cluster_ip {
                    let current = self.networks.service(&store_key)?.and_then(|n| n.ip);
                    if current != Some(ip) {
                        if let Err(e) = self.networks.service_ip(&store_key, Some(ip)) {
                            problems.push(format!("{key}: spec.clusterIP: {e}"));
                        }
                    }
                }
            }
            if let Object::Service(s) = &object {
                let others = self.networks.services()?;
                for p in s.ports.iter().filter_map(|p| p.node_port.map(|n| (n, plan::net_protocol(p.protocol)))) {
                    let user = others.iter().find(|o| {
                        o.owner != store_key && o.ports.iter().any(|q| q.node_port == Some(p.0) && q.protocol == p.1)
                    });
                    if let Some(o) = user {
                        problems.push(format!(
                            "{key}: spec.ports: nodePort {} is already used by service {}; choose another or leave it out",
                            p.0, o.owner
                        ));
                    }
                }
            }
            plan.push((key, kind, store_key, object, manifest, old, action));
        }
        if !problems.is_empty() {
            return Err(DeclaredError::Invalid(problems.join("\n")));
        }
        let mut changes = Vec::new();
        for (key, kind, store_key, _object, manifest, old, action) in plan {
            changes.push(ObjectChange {
                kind: kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                action: action.to_string(),
            });
            if req.dry_run || action == "unchanged" {
                continue;
            }
            let stored = match old {
                Some(o) => {
                    let live = carry_imperative(&o, &manifest);
                    StoredObject { generation: o.generation + 1, manifest: live, applied: Some(manifest), ..o }
                }
                None => StoredObject { uid: uid(), created: now(), generation: 1, manifest, applied: None },
            };
            self.store.put_object(
                &records::store_kind(&kind),
                &store_key,
                &serde_json::to_value(&stored).expect("serialises"),
            )?;
        }
        drop(_guard);
        if !req.dry_run {
            self.wake.notify_one();
            if changes.iter().any(|c| c.kind == "Service" && c.action != "unchanged") {
                self.sync_services().await?;
            }
        }
        Ok(ApplyResponse { changes })
    }

    /// Deletes the objects the files name, and what they own.
    pub async fn delete(self: &Arc<Self>, req: DeleteRequest) -> Result<ApplyResponse> {
        let objects = parse_files(&req.files)?;
        let mut changes = Vec::new();
        for (object, _) in objects {
            let key = object.key();
            match self.delete_object(&key).await {
                Ok(c) => changes.push(c),
                Err(DeclaredError::NotFound(_)) if req.ignore_not_found => changes.push(ObjectChange {
                    kind: key.kind.to_string(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    action: "not found".into(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(ApplyResponse { changes })
    }

    /// `DELETE /v1/objects/{resource}/{namespace}/{name}`.
    pub async fn delete_named(self: &Arc<Self>, resource: &str, namespace: &str, name: &str) -> Result<ApplyResponse> {
        let kind = match resource_kind(resource) {
            Some("Pod") => {
                let key = format!("{namespace}/{name}");
                if records::pod(self.store.as_ref(), &key)?.is_none() {
                    return Err(DeclaredError::NotFound(format!("pods {name:?} not found in namespace {namespace}")));
                }
                records::mark_deleting(self.store.as_ref(), &key, &now())?;
                self.wake_pod(&key);
                self.wake.notify_one();
                return Ok(ApplyResponse {
                    changes: vec![ObjectChange {
                        kind: "Pod".into(),
                        namespace: namespace.into(),
                        name: name.into(),
                        action: "deleted".into(),
                    }],
                });
            }
            Some("Deployment") => Kind::Deployment,
            Some("Service") => Kind::Service,
            Some("ConfigMap") => Kind::ConfigMap,
            Some("Secret") => Kind::Secret,
            _ => {
                return Err(DeclaredError::Invalid(format!(
                    "cannot delete {resource:?}: use deployments, services, configmaps, secrets or pods"
                )))
            }
        };
        let key = ObjectKey { kind, namespace: namespace.to_string(), name: name.to_string() };
        Ok(ApplyResponse { changes: vec![self.delete_object(&key).await?] })
    }

    async fn delete_object(self: &Arc<Self>, key: &ObjectKey) -> Result<ObjectChange> {
        let kind = key.kind.to_string();
        let store_key = format!("{}/{}", key.namespace, key.name);
        let _guard = self.lock.lock().await;
        if !self.store.delete_object(&records::store_kind(&kind), &store_key)? {
            return Err(DeclaredError::NotFound(format!(
                "{} {:?} not found in namespace {}",
                kind.to_ascii_lowercase(),
                key.name,
                key.namespace
            )));
        }
        match key.kind {
            Kind::Deployment => {
                records::remove_deployment_state(self.store.as_ref(), &store_key)?;
                let at = now();
                for p in records::pods(self.store.as_ref())? {
                    if p.namespace == key.namespace && p.owner.as_deref() == Some(key.name.as_str()) {
                        records::mark_deleting(self.store.as_ref(), &p.key(), &at)?;
                        self.wake_pod(&p.key());
                    }
                }
            }
            Kind::Service => self.networks.remove_service(&store_key).await?,
            Kind::ConfigMap | Kind::Secret => {}
        }
        drop(_guard);
        self.wake.notify_one();
        Ok(ObjectChange { kind, namespace: key.namespace.clone(), name: key.name.clone(), action: "deleted".into() })
    }

    /// `berth scale`: changes the stored Deployment's `spec.replicas`.
    pub async fn scale(self: &Arc<Self>, namespace: &str, name: &str, replicas: u32) -> Result<serde_json::Value> {
        let store_key = format!("{namespace}/{name}");
        let _guard = self.lock.lock().await;
        let mut stored = records::object(self.store.as_ref(), "Deployment", &store_key)?.ok_or_else(|| {
            DeclaredError::NotFound(format!("deployment {name:?} not found in namespace {namespace}"))
        })?;
        if replicas > 1000 {
            return Err(DeclaredError::Invalid(format!(
                "--replicas {replicas} is more than berth runs on one host (1000)"
            )));
        }
        stored.manifest["spec"]["replicas"] = serde_json::json!(replicas);
        stored.object()?;
        stored.generation += 1;
        self.store.put_object(
            &records::store_kind("Deployment"),
            &store_key,
            &serde_json::to_value(&stored).expect("serialises"),
        )?;
        drop(_guard);
        self.wake.notify_one();
        self.get("deployments", namespace, name, false)
    }

    // ---- rollouts ----

    /// A Deployment's revisions, oldest first.
    pub fn revisions(&self, namespace: &str, name: &str) -> Result<berth_core::api::RevisionList> {
        let key = format!("{namespace}/{name}");
        if records::object(self.store.as_ref(), "Deployment", &key)?.is_none() {
            return Err(DeclaredError::NotFound(format!("deployment {name:?} not found in namespace {namespace}")));
        }
        let state = records::deployment_state(self.store.as_ref(), &key)?.unwrap_or_default();
        let current = state.current().map(|r| r.revision);
        Ok(berth_core::api::RevisionList {
            revisions: state
                .revisions
                .iter()
                .map(|r| berth_core::api::RevisionView {
                    revision: r.revision,
                    hash: r.hash.clone(),
                    change_cause: r.change_cause.clone(),
                    created: r.created.clone(),
                    images: r.images.clone(),
                    current: Some(r.revision) == current,
                    template: r.template.clone(),
                })
                .collect(),
        })
    }

    /// `berth rollout pause|resume|restart|undo`: each a change of the
    /// stored Deployment, as kubectl makes them.
    pub async fn rollout(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        req: berth_core::api::RolloutRequest,
    ) -> Result<serde_json::Value> {
        let key = format!("{namespace}/{name}");
        let _guard = self.lock.lock().await;
        let mut stored = records::object(self.store.as_ref(), "Deployment", &key)?.ok_or_else(|| {
            DeclaredError::NotFound(format!("deployment {name:?} not found in namespace {namespace}"))
        })?;
        let state = records::deployment_state(self.store.as_ref(), &key)?.unwrap_or_default();
        match req.action.as_str() {
            "pause" | "resume" => {
                let pause = req.action == "pause";
                if stored.manifest["spec"]["paused"].as_bool().unwrap_or(false) == pause {
                    return Err(DeclaredError::Conflict(format!(
                        "deployment {name:?} is already {}",
                        if pause { "paused" } else { "running (not paused)" }
                    )));
                }
                stored.manifest["spec"]["paused"] = serde_json::json!(pause);
            }
            "restart" => {
                let template = &mut stored.manifest["spec"]["template"];
                if !template["metadata"].is_object() {
                    template["metadata"] = serde_json::json!({});
                }
                template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = serde_json::json!(now());
            }
            "undo" => {
                let current = state.current().map(|r| r.revision).unwrap_or(0);
                let target = match req.to_revision {
                    Some(0) | None => state.revisions.iter().rev().find(|r| r.revision != current),
                    Some(n) => Some(state.revision(n).ok_or_else(|| {
                        DeclaredError::NotFound(format!(
                            "unable to find the specified revision {n}; see 'berth rollout history deployment/{name}'"
                        ))
                    })?),
                }
                .ok_or_else(|| {
                    DeclaredError::Conflict(format!("deployment {name:?} has no previous revision to roll back to"))
                })?;
                if target.revision == current {
                    return Err(DeclaredError::Conflict(format!(
                        "deployment {name:?} already runs revision {current}; nothing to undo"
                    )));
                }
                stored.manifest["spec"]["template"] = target.template.clone();
            }
            other => {
                return Err(DeclaredError::Invalid(format!(
                    "rollout action {other:?} is not one of pause, resume, restart, undo"
                )))
            }
        }
        stored.object()?;
        stored.generation += 1;
        self.store.put_object(
            &records::store_kind("Deployment"),
            &key,
            &serde_json::to_value(&stored).expect("serialises"),
        )?;
        drop(_guard);
        self.wake.notify_one();
        self.get("deployments", namespace, name, false)
    }

    // ---- reading ----

    pub fn get(&self, resource: &str, namespace: &str, name: &str, show_secrets: bool) -> Result<serde_json::Value> {
        let q = ListQuery { namespace: Some(namespace.to_string()), show_secrets, ..Default::default() };
        self.list_items(resource, &q)?
            .into_iter()
            .find(|o| o["metadata"]["name"] == name)
            .ok_or_else(|| DeclaredError::NotFound(format!("{resource} {name:?} not found in namespace {namespace}")))
    }

    pub fn list(&self, resource: &str, q: &ListQuery) -> Result<serde_json::Value> {
        Ok(serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": self.list_items(resource, q)?,
        }))
    }

    fn list_items(&self, resource: &str, q: &ListQuery) -> Result<Vec<serde_json::Value>> {
        let kind = resource_kind(resource).ok_or_else(|| {
            DeclaredError::Invalid(format!(
                "the server doesn't have a resource type {resource:?}; use one of {}",
                berth_core::api::OBJECT_RESOURCES.join(", ")
            ))
        })?;
        let selector = match &q.selector {
            Some(s) if !s.is_empty() => {
                Some(Selector::parse(s).map_err(|e| DeclaredError::Invalid(format!("selector {s:?}: {e}")))?)
            }
            _ => None,
        };
        let ns = q.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let in_scope = |namespace: &str| q.all_namespaces || namespace == ns;
        let mut items: Vec<serde_json::Value> = match kind {
            "Pod" => records::pods(self.store.as_ref())?
                .iter()
                .filter(|p| in_scope(&p.namespace))
                .map(|p| kube::pod(p, &self.container_views(p)))
                .collect(),
            "Event" => kube::events(&self.events.history(None), |ns| in_scope(ns), q.involved.as_deref()),
            "Endpoints" => {
                let pods = records::pods(self.store.as_ref())?;
                self.declared("Service")?
                    .into_iter()
                    .filter(|(_, _, o)| in_scope(&o.meta().namespace))
                    .filter_map(|(_, stored, o)| match o {
                        Object::Service(s) => Some(kube::endpoints(&s, &stored, &pods)),
                        _ => None,
                    })
                    .collect()
            }
            _ => {
                let pods = records::pods(self.store.as_ref())?;
                self.declared(kind)?
                    .into_iter()
                    .filter(|(_, _, o)| in_scope(&o.meta().namespace))
                    .map(|(_, stored, o)| match &o {
                        Object::Deployment(d) => {
                            let key = format!("{}/{}", d.meta.namespace, d.meta.name);
                            let state = records::deployment_state(self.store.as_ref(), &key).ok().flatten();
                            kube::deployment(d, &stored, &pods, state.as_ref())
                        }
                        Object::Service(s) => {
                            let net = self.networks.service(&format!("{}/{}", s.meta.namespace, s.meta.name));
                            kube::service(&stored, net.ok().flatten().as_ref())
                        }
                        Object::Secret(_) => kube::secret(&stored, q.show_secrets),
                        Object::ConfigMap(_) => kube::stored(&stored),
                    })
                    .collect()
            }
        };
        if let Some(sel) = selector {
            items.retain(|o| {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(o["metadata"]["labels"].clone()).unwrap_or_default();
                sel.matches(&labels)
            });
        }
        items.sort_by(|a, b| {
            let key = |o: &serde_json::Value| {
                (
                    o["metadata"]["namespace"].as_str().unwrap_or("").to_string(),
                    o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            };
            if kind == "Event" {
                return std::cmp::Ordering::Equal;
            }
            key(a).cmp(&key(b))
        });
        Ok(items)
    }

    /// Every stored object of `kind`, validated.
    fn declared(&self, kind: &str) -> Result<Vec<(String, StoredObject, Object)>> {
        records::objects(self.store.as_ref(), kind)?
            .into_iter()
            .map(|(k, stored)| {
                let o = stored.object()?;
                Ok((k, stored, o))
            })
            .collect()
    }

    fn container_views(&self, p: &PodRecord) -> BTreeMap<String, berth_store::ContainerRecord> {
        p.containers
            .iter()
            .filter_map(|(name, c)| {
                let id = c.id.as_ref()?;
                Some((name.clone(), self.store.get_container(id).ok().flatten()?))
            })
            .collect()
    }

    // ---- reconcilers ----

    fn wake_pod(&self, key: &str) {
        if let Some(w) = self.workers.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            w.notify_one();
        }
    }

    /// One pass of the Deployment reconciler, then workers for every pod
    /// and the Services.
    async fn reconcile(self: &Arc<Self>) -> Result<()> {
        {
            let _guard = self.lock.lock().await;
            let deployments = self.declared("Deployment")?;
            let pods = records::pods(self.store.as_ref())?;
            for (_, stored, o) in &deployments {
                let Object::Deployment(d) = o else { continue };
                self.reconcile_deployment(d, stored, &pods)?;
            }
            // Pods whose Deployment is gone go too.
            for p in &pods {
                let Some(owner) = &p.owner else { continue };
                let exists =
                    deployments.iter().any(|(_, _, o)| o.meta().namespace == p.namespace && o.meta().name == *owner);
                if !exists && p.deleting.is_none() {
                    records::mark_deleting(self.store.as_ref(), &p.key(), &now())?;
                }
            }
        }
        for p in records::pods(self.store.as_ref())? {
            let key = p.key();
            let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            match workers.get(&key) {
                Some(w) if p.deleting.is_some() => w.notify_one(),
                Some(_) => {}
                None => {
                    let wake = Arc::new(tokio::sync::Notify::new());
                    workers.insert(key.clone(), Arc::clone(&wake));
                    tokio::spawn(pod::Worker::new(Arc::clone(self), key, wake).run());
                }
            }
        }
        self.sync_services().await
    }

    fn reconcile_deployment(
        &self,
        d: &berth_manifest::model::DeploymentSpec,
        stored: &StoredObject,
        pods: &[PodRecord],
    ) -> Result<()> {
        let hash = d.template.hash().to_string();
        let key = format!("{}/{}", d.meta.namespace, d.meta.name);
        let mine: Vec<&PodRecord> = pods
            .iter()
            .filter(|p| p.namespace == d.meta.namespace && p.owner.as_deref() == Some(d.meta.name.as_str()))
            .collect();
        let clock = chrono::Utc::now();
        let available = |p: &PodRecord| rollout::available(p.ready, p.ready_since.as_deref(), d.min_ready, clock);
        let facts: Vec<plan::PodFacts> = mine
            .iter()
            .map(|p| plan::PodFacts {
                name: p.name.clone(),
                hash: p.hash.clone(),
                ready: available(p),
                terminating: p.deleting.is_some(),
                created: p.created.clone(),
            })
            .collect();

        // Revisions and the verdict on the current one.
        let mut state = records::deployment_state(self.store.as_ref(), &key)?.unwrap_or_default();
        let before = state.clone();
        let images = d.template.containers.iter().map(|c| c.image.to_string()).collect();
        let cause = d.meta.annotations.get(rollout::CHANGE_CAUSE).cloned();
        let at = now();
        rollout::record_revision(
            &mut state,
            &hash,
            &stored.manifest["spec"]["template"],
            cause,
            images,
            &at,
            d.revision_history_limit,
        );
        let progress: Vec<rollout::PodProgress> = mine
            .iter()
            .map(|p| rollout::PodProgress {
                hash: p.hash.clone(),
                available: available(p),
                terminating: p.deleting.is_some(),
                crash_looping: p
                    .containers
                    .values()
                    .any(|c| c.restarts >= 2 && c.waiting.as_ref().is_some_and(|(r, _)| r == "CrashLoopBackOff")),
            })
            .collect();
        let verdict = rollout::judge(&mut state, d, &hash, &progress, clock);
        state.observed_generation = stored.generation;
        if let rollout::Verdict::RollBack { to, reason } = &verdict {
            let from = state.current().map(|r| r.revision).unwrap_or_default();
            state.rolled_back = Some(rollout::RolledBack {
                from: hash.clone(),
                to: to.hash.clone(),
                to_revision: to.revision,
                reason: reason.clone(),
                at: at.clone(),
            });
            let mut changed = stored.clone();
            changed.manifest["spec"]["template"] = to.template.clone();
            changed.generation += 1;
            changed.object()?;
            self.store.put_object(
                &records::store_kind("Deployment"),
                &key,
                &serde_json::to_value(&changed).expect("serialises"),
            )?;
            records::put_deployment_state(self.store.as_ref(), &key, &state)?;
            self.event(
                "deployment",
                &d.meta.namespace,
                &d.meta.name,
                true,
                "RolledBack",
                format!("Rolled back from revision {from} to revision {}: {reason}", to.revision),
            );
            self.wake.notify_one();
            return Ok(());
        }
        if verdict == rollout::Verdict::DeadlineExceeded && !before.deadline_exceeded {
            self.event(
                "deployment",
                &d.meta.namespace,
                &d.meta.name,
                true,
                "ProgressDeadlineExceeded",
                format!(
                    "Revision {} made no progress within its deadline",
                    state.current().map(|r| r.revision).unwrap_or(0)
                ),
            );
        }
        if state != before {
            records::put_deployment_state(self.store.as_ref(), &key, &state)?;
        }
        if d.paused {
            return Ok(());
        }
        let step = plan::deployment_step(d, &hash, &facts);
        if step.is_empty() {
            return Ok(());
        }
        for name in &step.delete {
            records::mark_deleting(self.store.as_ref(), &format!("{}/{name}", d.meta.namespace), &at)?;
            self.event(
                "deployment",
                &d.meta.namespace,
                &d.meta.name,
                false,
                "SuccessfulDelete",
                format!("Deleted pod: {name}"),
            );
        }
        for _ in 0..step.create {
            let name = format!("{}-{}-{}", d.meta.name, hash, random_suffix(5));
            let mut labels = d.template.labels.clone();
            labels.insert("pod-template-hash".into(), hash.clone());
            let manifest =
                records::object(self.store.as_ref(), "Deployment", &format!("{}/{}", d.meta.namespace, d.meta.name))?
                    .map(|o| o.manifest["spec"]["template"]["spec"].clone())
                    .unwrap_or_default();
            let p = PodRecord {
                uid: uid(),
                namespace: d.meta.namespace.clone(),
                name: name.clone(),
                owner: Some(d.meta.name.clone()),
                hash: hash.clone(),
                labels,
                template: d.template.clone(),
                spec: manifest,
                created: now(),
                deleting: None,
                ip: None,
                started: None,
                containers: d
                    .template
                    .all_containers()
                    .map(|c| {
                        (
                            c.name.clone(),
                            records::PodContainer {
                                waiting: Some(("ContainerCreating".into(), String::new())),
                                ..Default::default()
                            },
                        )
                    })
                    .collect(),
                ready: false,
                ready_since: None,
            };
            records::put_pod(self.store.as_ref(), &p)?;
            self.event(
                "deployment",
                &d.meta.namespace,
                &d.meta.name,
                false,
                "SuccessfulCreate",
                format!("Created pod: {name}"),
            );
            self.event(
                "pod",
                &p.namespace,
                &name,
                false,
                "Scheduled",
                format!("Successfully assigned {}/{name} to this host", p.namespace),
            );
        }
        Ok(())
    }

    /// Programs every Service's VIPs with its ready pods, and removes what
    /// belongs to Services no longer declared. When it returns, the rules
    /// are in the kernel.
    pub async fn sync_services(&self) -> Result<()> {
        let _guard = self.services_lock.lock().await;
        let services = self.declared("Service")?;
        let pods = records::pods(self.store.as_ref())?;
        let mut owners = Vec::new();
        for (_, _, o) in &services {
            let Object::Service(s) = o else { continue };
            let owner = format!("{}/{}", s.meta.namespace, s.meta.name);
            let matched: Vec<&PodRecord> = pods
                .iter()
                .filter(|p| {
                    p.namespace == s.meta.namespace && s.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
                })
                .filter(|_| !s.selector.is_empty())
                .collect();
            let endpoints: Vec<plan::Endpoint<'_>> = matched
                .iter()
                .map(|p| plan::Endpoint {
                    name: &p.name,
                    ip: p.ip.as_deref().and_then(|i| i.parse().ok()),
                    ready: p.ready,
                    terminating: p.deleting.is_some(),
                    template: &p.template,
                })
                .collect();
            let ip = match s.cluster_ip {
                ClusterIp::Headless => None,
                ClusterIp::Auto => Some(self.networks.service_ip(&owner, None)?),
                ClusterIp::Fixed(ip) => Some(self.networks.service_ip(&owner, Some(ip))?),
            };
            let existing = self.networks.service(&owner)?;
            let mut ports = Vec::new();
            for (i, p) in s.ports.iter().enumerate() {
                let protocol = plan::net_protocol(p.protocol);
                let node_port = match s.service_type {
                    ServiceType::ClusterIp => None,
                    ServiceType::NodePort => {
                        let kept = existing
                            .as_ref()
                            .and_then(|e| e.ports.iter().find(|q| q.port == p.port && q.protocol == protocol))
                            .and_then(|q| q.node_port);
                        Some(match p.node_port.or(kept) {
                            Some(n) => n,
                            None => self.free_node_port(&owner, protocol, &ports)?,
                        })
                    }
                };
                ports.push(ServicePortNet {
                    port: p.port,
                    protocol,
                    backends: plan::service_backends(s, i, &endpoints),
                    node_port,
                });
            }
            let mut ready_ips: Vec<std::net::Ipv4Addr> =
                endpoints.iter().filter(|e| e.ready && !e.terminating).filter_map(|e| e.ip).collect();
            ready_ips.sort();
            let net = ServiceNet {
                owner: owner.clone(),
                names: dns_names(&s.meta.namespace, &s.meta.name),
                ip,
                ports,
                endpoints: ready_ips,
            };
            self.networks.set_service(net).await?;
            owners.push(owner);
        }
        for stale in self.networks.services()? {
            if !owners.contains(&stale.owner) {
                self.networks.remove_service(&stale.owner).await?;
            }
        }
        Ok(())
    }
}

impl Declared {
    /// A node port in Kubernetes' range (30000-32767) that no other Service
    /// uses and nothing on the host listens on.
    fn free_node_port(&self, owner: &str, protocol: berth_core::net::Protocol, mine: &[ServicePortNet]) -> Result<u16> {
        let taken: Vec<u16> = self
            .networks
            .services()?
            .iter()
            .filter(|s| s.owner != owner)
            .flat_map(|s| s.ports.iter().filter_map(|p| p.node_port))
            .chain(mine.iter().filter_map(|p| p.node_port))
            .collect();
        (30000..=32767u16)
            .find(|p| {
                !taken.contains(p)
                    && match protocol {
                        berth_core::net::Protocol::Tcp => std::net::TcpListener::bind(("0.0.0.0", *p)).is_ok(),
                        berth_core::net::Protocol::Udp => std::net::UdpSocket::bind(("0.0.0.0", *p)).is_ok(),
                    }
            })
            .ok_or_else(|| DeclaredError::Conflict("no free node port left in 30000-32767".into()))
    }
}

/// A Service's DNS names: `NAME.NS.svc.cluster.local`, `NAME.NS.svc`,
/// `NAME.NS`, and plain `NAME` in the default namespace (pods of other
/// namespaces find theirs through their search domains).
fn dns_names(namespace: &str, name: &str) -> Vec<String> {
    let mut names = vec![
        format!("{name}.{namespace}.svc.cluster.local"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}"),
    ];
    if namespace == DEFAULT_NAMESPACE {
        names.push(name.to_string());
    }
    names
}

/// Every object of every file, or every problem, each line naming the
/// file and line: `app.yaml:14: deployment/web: ...`.
fn parse_files(files: &[ManifestFile]) -> Result<Vec<(Object, serde_json::Value)>> {
    if files.is_empty() {
        return Err(DeclaredError::Invalid("no manifests given; pass -f FILE, -f DIR or -f -".into()));
    }
    let mut out: Vec<(Object, serde_json::Value)> = Vec::new();
    let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for f in files {
        match berth_manifest::load_documents(&f.text) {
            Ok(objects) => {
                for (o, m) in objects {
                    let key = o.key();
                    if let Some(first) = seen.get(&key) {
                        problems.push(format!(
                            "{}: {key}: declared again (first in {first}); declare each object once",
                            f.name
                        ));
                        continue;
                    }
                    seen.insert(key, f.name.clone());
                    out.push((o, m));
                }
            }
            Err(errors) => {
                for e in errors.0 {
                    problems.push(format!("{}:{}: {e}", f.name, e.line()));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(DeclaredError::Invalid(problems.join("\n")));
    }
    if out.is_empty() {
        return Err(DeclaredError::Invalid(format!(
            "no objects found in {}; berth reads {}",
            files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
            berth_manifest::parse::SUPPORTED_KINDS
        )));
    }
    Ok(out)
}

/// The live document after applying `doc`: fields that imperative commands
/// set (`scale`, `rollout pause`, `rollout restart`) and that neither `doc`
/// nor the last applied document mention are kept, as kubectl's three-way
/// merge keeps them.
fn carry_imperative(old: &StoredObject, doc: &serde_json::Value) -> serde_json::Value {
    const FIELDS: &[&[&str]] = &[
        &["spec", "replicas"],
        &["spec", "paused"],
        &["spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt"],
    ];
    fn at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
        path.iter().try_fold(v, |v, k| v.get(*k)).filter(|v| !v.is_null())
    }
    let mut out = doc.clone();
    for path in FIELDS {
        if at(doc, path).is_some() || at(old.last_applied(), path).is_some() {
            continue;
        }
        if let Some(v) = at(&old.manifest, path) {
            let mut cursor = &mut out;
            for k in &path[..path.len() - 1] {
                if !cursor.get(*k).is_some_and(|c| c.is_object()) {
                    cursor[*k] = serde_json::json!({});
                }
                cursor = &mut cursor[*k];
            }
            cursor[path[path.len() - 1]] = v.clone();
        }
    }
    out
}

/// Changes Kubernetes refuses on update.
fn check_update(old: &StoredObject, new: &Object) -> std::result::Result<(), String> {
    let Ok(old) = old.object() else { return Ok(()) };
    match (&old, new) {
        (Object::ConfigMap(a), Object::ConfigMap(b))
            if a.immutable && (a.data != b.data || a.binary_data != b.binary_data || !b.immutable) =>
        {
            Err("the ConfigMap is immutable (immutable: true); delete and re-create it to change it".into())
        }
        (Object::Secret(a), Object::Secret(b)) if a.immutable && (a.data != b.data || !b.immutable) => {
            Err("the Secret is immutable (immutable: true); delete and re-create it to change it".into())
        }
        (Object::Deployment(a), Object::Deployment(b)) if a.selector != b.selector => {
            Err("spec.selector is immutable; delete the Deployment and apply it again to change the selector".into())
        }
        (Object::Service(a), Object::Service(b)) => match (a.cluster_ip, b.cluster_ip) {
            (ClusterIp::Headless, ClusterIp::Headless) | (_, ClusterIp::Auto) => Ok(()),
            (x, y) if x != y && !matches!(x, ClusterIp::Auto) => {
                Err("spec.clusterIP is immutable; delete the Service and apply it again to change it".into())
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(manifest: serde_json::Value, applied: Option<serde_json::Value>) -> StoredObject {
        StoredObject { uid: "u".into(), created: "t".into(), generation: 3, manifest, applied }
    }

    #[test]
    fn apply_keeps_what_imperative_commands_set_and_the_documents_never_mention() {
        let applied = json!({"spec": {"template": {"spec": {}}}});
        let live = json!({"spec": {"replicas": 5, "paused": true, "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "x"}}, "spec": {}}}});
        let old = stored(live, Some(applied));
        let doc = json!({"spec": {"template": {"spec": {"new": 1}}}});
        let out = carry_imperative(&old, &doc);
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(out["spec"]["paused"], true);
        assert_eq!(out["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"], "x");
        assert_eq!(out["spec"]["template"]["spec"]["new"], 1);
        // A field the new document sets wins; one the last applied document
        // set and the new one dropped goes.
        let doc = json!({"spec": {"replicas": 2, "template": {"spec": {}}}});
        assert_eq!(carry_imperative(&old, &doc)["spec"]["replicas"], 2);
        let old = stored(json!({"spec": {"replicas": 5}}), Some(json!({"spec": {"replicas": 5}})));
        assert!(carry_imperative(&old, &json!({"spec": {}}))["spec"].get("replicas").is_none());
    }
}
