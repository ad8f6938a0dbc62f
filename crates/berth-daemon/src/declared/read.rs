//! Reading declared state in its Kubernetes form.

use std::collections::BTreeMap;

use berth_manifest::model::DEFAULT_NAMESPACE;
use berth_manifest::{Object, Selector};

use super::records::{self, PodRecord, StoredObject};
use super::{kube, resource_kind, Declared, DeclaredError, ListQuery, Result};

impl Declared {
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

    pub(super) fn list_items(&self, resource: &str, q: &ListQuery) -> Result<Vec<serde_json::Value>> {
        let kind = resource_kind(resource).ok_or_else(|| {
            DeclaredError::Invalid(format!(
                "the server doesn't have a resource type {resource:?}; use one of {}",
                berth_core::kind::Kind::ALL.map(berth_core::kind::Kind::resource).join(", ")
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
            "Event" => kube::events(&self.events.history(None)?, |ns| in_scope(ns), q.involved.as_deref()),
            "Endpoints" => {
                let pods = records::pods(self.store.as_ref())?;
                let routes = self.rollout_routes()?;
                self.declared("Service")?
                    .into_iter()
                    .filter(|(_, _, o)| in_scope(&o.meta().namespace))
                    .filter_map(|(_, stored, o)| match o {
                        Object::Service(s) => {
                            // A rollout's Service lists the revision(s) it sends to, as
                            // Argo's pinned selectors make Kubernetes list them.
                            let route = super::reconcile::service_route(&routes, &s);
                            Some(kube::endpoints(&s, &stored, &pods, &route))
                        }
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
                            kube::deployment(d, &stored, &pods, state.as_ref(), self.clock.now())
                        }
                        Object::Service(s) => {
                            let net = self.networks.service(&format!("{}/{}", s.meta.namespace, s.meta.name));
                            kube::service(&stored, net.ok().flatten().as_ref())
                        }
                        Object::Secret(_) => kube::secret(&stored, q.show_secrets),
                        Object::Rollout(r) => {
                            let key = format!("{}/{}", r.meta.namespace, r.meta.name);
                            let mut state = super::argo::state::load(self.store.as_ref(), &key).ok().flatten();
                            // Report the split traffic has, not one decided
                            // a moment ago and not in the kernel yet.
                            if let (Some(s), Ok(Some(routed))) =
                                (state.as_mut(), super::argo::state::routed(self.store.as_ref(), &key))
                            {
                                s.strategy = Some(routed);
                            }
                            super::argo::kube_rollout(r, &stored, &pods, state.as_ref(), self.clock.now())
                        }
                        Object::ConfigMap(_) | Object::AnalysisTemplate(_) => kube::stored(&stored),
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
    pub(super) fn declared(&self, kind: &str) -> Result<Vec<(String, StoredObject, Object)>> {
        let objects = records::objects(self.store.as_ref(), kind)?;
        let mut parsed = self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        parsed.retain(|(k, key), _| k != kind || objects.iter().any(|(o, _)| o == key));
        objects
            .into_iter()
            .map(|(k, stored)| {
                let slot = (kind.to_string(), k.clone());
                let o = match parsed.get(&slot) {
                    Some((uid, generation, o)) if *uid == stored.uid && *generation == stored.generation => o.clone(),
                    _ => {
                        let o = stored.object()?;
                        parsed.insert(slot, (stored.uid.clone(), stored.generation, o.clone()));
                        o
                    }
                };
                Ok((k, stored, o))
            })
            .collect()
    }

    pub(super) fn container_views(&self, p: &PodRecord) -> BTreeMap<String, berth_store::ContainerRecord> {
        p.containers
            .iter()
            .filter_map(|(name, c)| {
                let id = c.id.as_ref()?;
                Some((name.clone(), self.store.get_container(id).ok().flatten()?))
            })
            .collect()
    }
}
