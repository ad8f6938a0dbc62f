//! What users ask for: apply, delete, scale, and rollout pause, resume,
//! restart and undo. Each checks everything first, then stores the change
//! and wakes the reconcilers.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_core::api::{
    ApplyRequest, ApplyResponse, ChangeAction, DeleteRequest, ManifestFile, ObjectChange, RolloutRequest,
};
use berth_manifest::error::MAX_PROBLEMS;
use berth_manifest::model::{ClusterIp, Kind};
use berth_manifest::{ManifestError, Object, ObjectKey};

use super::records::{self, StoredObject};
use super::{plan, resource_kind, uid, Declared, DeclaredError, Result};

impl Declared {
    // ---- apply, delete, scale ----

    /// Parses and checks every file, then stores each object that changed.
    pub async fn apply(self: &Arc<Self>, mut req: ApplyRequest) -> Result<ApplyResponse> {
        let (objects, warnings) = parse_files_off_worker(std::mem::take(&mut req.files)).await?;
        let _guard = self.lock.lock().await;
        let mut plan = Vec::new();
        let mut problems = Vec::new();
        for (object, manifest) in objects {
            let key = object.key();
            let kind = key.kind.to_string();
            let store_key = format!("{}/{}", key.namespace, key.name);
            let old = records::object(self.store.as_ref(), &kind, &store_key)?;
            let action = match &old {
                None => ChangeAction::Created,
                // As kubectl apply: the same document as last applied changes
                // nothing, also what imperative commands changed since.
                Some(o) if records::object_of(o.last_applied()).ok().as_ref() == Some(&object) => {
                    ChangeAction::Unchanged
                }
                Some(_) => ChangeAction::Configured,
            };
            if let (Some(o), ChangeAction::Configured) = (&old, action) {
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
        problems.extend(self.check_argo(&plan.iter().map(|p| &p.3).collect::<Vec<_>>())?);
        if !problems.is_empty() {
            return Err(DeclaredError::Invalid(problems.join("\n")));
        }
        let mut changes = Vec::new();
        for (key, kind, store_key, _object, manifest, old, action) in plan {
            changes.push(ObjectChange {
                kind: kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                action,
            });
            if req.dry_run || action == ChangeAction::Unchanged {
                continue;
            }
            let stored = match old {
                Some(o) => {
                    let live = carry_imperative(&o, &manifest);
                    StoredObject { generation: o.generation + 1, manifest: live, applied: Some(manifest), ..o }
                }
                None => StoredObject { uid: uid(), created: self.now(), generation: 1, manifest, applied: None },
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
            if changes.iter().any(|c| c.kind == "Service" && c.action != ChangeAction::Unchanged) {
                self.sync_services().await?;
            }
        }
        Ok(ApplyResponse { changes, warnings })
    }

    /// Deletes the objects the files name, and what they own.
    pub async fn delete(self: &Arc<Self>, mut req: DeleteRequest) -> Result<ApplyResponse> {
        let (objects, _) = parse_files_off_worker(std::mem::take(&mut req.files)).await?;
        let mut changes = Vec::new();
        for (object, _) in objects {
            let key = object.key();
            match self.delete_object(&key).await {
                Ok(c) => changes.push(c),
                Err(DeclaredError::NotFound(_)) if req.ignore_not_found => changes.push(ObjectChange {
                    kind: key.kind.to_string(),
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    action: ChangeAction::NotFound,
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(ApplyResponse { changes, warnings: Vec::new() })
    }

    /// `DELETE /v1/objects/{resource}/{namespace}/{name}`.
    pub async fn delete_named(self: &Arc<Self>, resource: &str, namespace: &str, name: &str) -> Result<ApplyResponse> {
        let kind = match resource_kind(resource) {
            Some("Pod") => {
                let key = format!("{namespace}/{name}");
                if records::pod(self.store.as_ref(), &key)?.is_none() {
                    return Err(DeclaredError::NotFound(format!("pods {name:?} not found in namespace {namespace}")));
                }
                records::mark_deleting(self.store.as_ref(), &key, &self.now())?;
                self.wake_pod(&key);
                self.wake.notify_one();
                return Ok(ApplyResponse {
                    changes: vec![ObjectChange {
                        kind: "Pod".into(),
                        namespace: namespace.into(),
                        name: name.into(),
                        action: ChangeAction::Deleted,
                    }],
                    warnings: Vec::new(),
                });
            }
            Some("Deployment") => Kind::Deployment,
            Some("Service") => Kind::Service,
            Some("ConfigMap") => Kind::ConfigMap,
            Some("Secret") => Kind::Secret,
            Some("Rollout") => Kind::Rollout,
            Some("AnalysisTemplate") => Kind::AnalysisTemplate,
            _ => {
                return Err(DeclaredError::Invalid(format!(
                    "cannot delete {resource:?}: use deployments, rollouts, services, configmaps, secrets, analysistemplates or pods"
                )))
            }
        };
        let key = ObjectKey { kind, namespace: namespace.to_string(), name: name.to_string() };
        Ok(ApplyResponse { changes: vec![self.delete_object(&key).await?], warnings: Vec::new() })
    }

    pub(super) async fn delete_object(self: &Arc<Self>, key: &ObjectKey) -> Result<ObjectChange> {
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
            Kind::Deployment | Kind::Rollout => {
                if key.kind == Kind::Rollout {
                    super::argo::state::remove(self.store.as_ref(), &store_key)?;
                }
                records::remove_deployment_state(self.store.as_ref(), &store_key)?;
                let at = self.now();
                for p in records::pods(self.store.as_ref())? {
                    if p.namespace == key.namespace && p.owner.as_deref() == Some(key.name.as_str()) {
                        records::mark_deleting(self.store.as_ref(), &p.key(), &at)?;
                        self.wake_pod(&p.key());
                    }
                }
            }
            Kind::Service => self.networks.remove_service(&store_key).await?,
            Kind::ConfigMap | Kind::Secret | Kind::AnalysisTemplate => {}
        }
        drop(_guard);
        self.wake.notify_one();
        Ok(ObjectChange {
            kind,
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            action: ChangeAction::Deleted,
        })
    }

    /// What applying these objects would break among Argo kinds: a Rollout
    /// naming an AnalysisTemplate that neither the files nor the store
    /// hold, or taking the name of a Deployment (their pods would mix).
    fn check_argo(&self, objects: &[&Object]) -> Result<Vec<String>> {
        let mut all: Vec<Object> = objects.iter().map(|o| (*o).clone()).collect();
        if all.iter().any(|o| matches!(o, Object::Rollout(_))) {
            for (_, _, t) in self.declared("AnalysisTemplate")? {
                if !all.iter().any(|o| o.key() == t.key()) {
                    all.push(t);
                }
            }
        }
        let mut problems: Vec<String> = berth_manifest::check_references(&all).iter().map(|e| e.to_string()).collect();
        let deployments = self.declared("Deployment")?;
        let rollouts = self.declared("Rollout")?;
        for o in objects {
            let clash = match o {
                Object::Rollout(_) => deployments
                    .iter()
                    .find(|(_, _, d)| d.meta().namespace == o.meta().namespace && d.meta().name == o.meta().name)
                    .map(|_| "deployment"),
                Object::Deployment(_) => rollouts
                    .iter()
                    .find(|(_, _, r)| r.meta().namespace == o.meta().namespace && r.meta().name == o.meta().name)
                    .map(|_| "rollout"),
                _ => None,
            };
            if let Some(other) = clash {
                problems.push(format!(
                    "{}: a {other} named {:?} already exists in namespace {}; pods are named after their owner, so give one of them another name",
                    o.key(),
                    o.meta().name,
                    o.meta().namespace
                ));
            }
        }
        Ok(problems)
    }

    /// `berth scale`: changes the stored Deployment's `spec.replicas`.
    pub async fn scale(
        self: &Arc<Self>,
        kind: &str,
        namespace: &str,
        name: &str,
        replicas: u32,
    ) -> Result<serde_json::Value> {
        let store_key = format!("{namespace}/{name}");
        let _guard = self.lock.lock().await;
        let mut stored = records::object(self.store.as_ref(), kind, &store_key)?.ok_or_else(|| {
            DeclaredError::NotFound(format!(
                "{} {name:?} not found in namespace {namespace}",
                kind.to_ascii_lowercase()
            ))
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
            &records::store_kind(kind),
            &store_key,
            &serde_json::to_value(&stored).expect("serialises"),
        )?;
        drop(_guard);
        self.wake.notify_one();
        let resource = if kind == "Rollout" { "rollouts" } else { "deployments" };
        self.get(resource, namespace, name, false)
    }

    // ---- rollouts ----

    /// A Deployment's revisions, oldest first.
    pub fn revisions(&self, kind: &str, namespace: &str, name: &str) -> Result<berth_core::api::RevisionList> {
        let key = format!("{namespace}/{name}");
        if records::object(self.store.as_ref(), kind, &key)?.is_none() {
            return Err(DeclaredError::NotFound(format!(
                "{} {name:?} not found in namespace {namespace}",
                kind.to_ascii_lowercase()
            )));
        }
        let state = if kind == "Rollout" {
            super::argo::state::load(self.store.as_ref(), &key)?.map(|s| s.revisions).unwrap_or_default()
        } else {
            records::deployment_state(self.store.as_ref(), &key)?.unwrap_or_default()
        };
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
        req: RolloutRequest,
    ) -> Result<serde_json::Value> {
        let key = format!("{namespace}/{name}");
        let _guard = self.lock.lock().await;
        let mut stored = records::object(self.store.as_ref(), "Deployment", &key)?.ok_or_else(|| {
            DeclaredError::NotFound(format!("deployment {name:?} not found in namespace {namespace}"))
        })?;
        let state = records::deployment_state(self.store.as_ref(), &key)?.unwrap_or_default();
        match req {
            RolloutRequest::Pause {} | RolloutRequest::Resume {} => {
                let pause = req == RolloutRequest::Pause {};
                if stored.manifest["spec"]["paused"].as_bool().unwrap_or(false) == pause {
                    return Err(DeclaredError::Conflict(format!(
                        "deployment {name:?} is already {}",
                        if pause { "paused" } else { "running (not paused)" }
                    )));
                }
                stored.manifest["spec"]["paused"] = serde_json::json!(pause);
            }
            RolloutRequest::Restart {} => {
                let template = &mut stored.manifest["spec"]["template"];
                if !template["metadata"].is_object() {
                    template["metadata"] = serde_json::json!({});
                }
                template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                    serde_json::json!(self.now());
            }
            RolloutRequest::Undo { to_revision } => {
                let current = state.current().map(|r| r.revision).unwrap_or(0);
                let target = match to_revision {
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
            RolloutRequest::Promote { .. } | RolloutRequest::Abort {} => {
                return Err(DeclaredError::Invalid(format!(
                    "a Deployment cannot {}: only Argo Rollouts have steps to promote or abort; \
                     use pause, resume, restart or undo",
                    req.action()
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
}

/// Manifests parsed at the same time. Each parse is bounded by
/// `berth_manifest::yaml::Limits` (and its tree can take a few times its
/// text in memory); this bounds how many such trees exist at once.
static PARSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// [`parse_files`] on the blocking pool: parsing untrusted YAML is CPU work
/// bounded by size, never done on an async worker. The files (and the
/// trees built from them) are dropped there too.
async fn parse_files_off_worker(files: Vec<ManifestFile>) -> Result<Parsed> {
    let _permit = PARSING.acquire().await.map_err(|_| DeclaredError::Conflict("the daemon is shutting down".into()))?;
    tokio::task::spawn_blocking(move || parse_files(&files)).await.unwrap_or_else(|e| {
        Err(DeclaredError::Invalid(format!("reading the manifests failed unexpectedly ({e}); this is a bug in berth")))
    })
}

/// Every object of every file with its document, and the warnings about
/// fields kept that change nothing on one host.
type Parsed = (Vec<(Object, serde_json::Value)>, Vec<String>);

/// Every object of every file, or every problem, each line naming the
/// file and line: `app.yaml:14: deployment/web: ...`.
fn parse_files(files: &[ManifestFile]) -> Result<Parsed> {
    if files.is_empty() {
        return Err(DeclaredError::Invalid("no manifests given; pass -f FILE, -f DIR or -f -".into()));
    }
    let mut out: Vec<(Object, serde_json::Value)> = Vec::new();
    let mut seen: BTreeMap<ObjectKey, String> = BTreeMap::new();
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    // Counted past the first MAX_PROBLEMS, not shown: the answer stays
    // small whatever the input.
    let mut more = 0;
    for f in files {
        // The name comes from the client; it prefixes every line.
        let name = berth_manifest::path::shorten(&f.name);
        let mut lines = Vec::new();
        match berth_manifest::load_documents_warned(&f.text) {
            Ok((objects, warned)) => {
                for w in warned.iter().take(MAX_PROBLEMS.saturating_sub(warnings.len())) {
                    warnings.push(match w.line {
                        0 => format!("{name}: {w}"),
                        line => format!("{name}:{line}: {w}"),
                    });
                }
                for (o, m) in objects {
                    let key = o.key();
                    if let Some(first) = seen.get(&key) {
                        lines.push(format!(
                            "{name}: {key}: declared again (first in {first}); declare each object once"
                        ));
                        continue;
                    }
                    seen.insert(key, name.to_string());
                    out.push((o, m));
                }
            }
            Err(errors) => {
                for e in errors.0 {
                    match (&e, e.line()) {
                        (ManifestError::More { count, .. }, _) => more += count,
                        (_, 0) => lines.push(format!("{name}: {e}")),
                        (_, line) => lines.push(format!("{name}:{line}: {e}")),
                    }
                }
            }
        }
        for line in lines {
            if problems.len() < MAX_PROBLEMS {
                problems.push(line);
            } else {
                more += 1;
            }
        }
    }
    if more > 0 {
        problems.push(format!("{more} more problems not shown; fix the ones above and try again"));
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
    Ok((out, warnings))
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
    pub(super) fn at<'a>(v: &'a serde_json::Value, path: &[&str]) -> Option<&'a serde_json::Value> {
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

    pub(super) fn stored(manifest: serde_json::Value, applied: Option<serde_json::Value>) -> StoredObject {
        StoredObject { uid: "u".into(), created: "t".into(), generation: 3, manifest, applied }
    }

    #[test]
    pub(super) fn apply_keeps_what_imperative_commands_set_and_the_documents_never_mention() {
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
