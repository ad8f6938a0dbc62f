//! The reconcilers: Deployments (pods created and removed a step at a
//! time, revisions, automatic rollback) and Services (VIPs over ready pods,
//! DNS names).

use std::sync::Arc;

use berth_manifest::model::{ClusterIp, ServiceType, DEFAULT_NAMESPACE};
use berth_manifest::Object;

use super::records::{self, PodRecord, StoredObject};
use super::{plan, pod, random_suffix, revisions, uid, Declared, DeclaredError, Result};
use crate::networks::{ServiceNet, ServicePortNet};

impl Declared {
    // ---- reconcilers ----

    pub(super) fn wake_pod(&self, key: &str) {
        if let Some(w) = self.workers.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
            w.notify_one();
        }
    }

    /// One pass of the Deployment reconciler, then workers for every pod
    /// and the Services.
    pub(super) async fn reconcile(self: &Arc<Self>) -> Result<()> {
        {
            let _guard = self.lock.lock().await;
            let deployments = self.declared("Deployment")?;
            let rollouts = self.declared("Rollout")?;
            let templates: Vec<_> = self
                .declared("AnalysisTemplate")?
                .into_iter()
                .filter_map(|(_, _, o)| match o {
                    Object::AnalysisTemplate(t) => Some(t),
                    _ => None,
                })
                .collect();
            let pods = records::pods(self.store.as_ref())?;
            for (_, stored, o) in &deployments {
                let Object::Deployment(d) = o else { continue };
                self.reconcile_deployment(d, stored, &pods)?;
            }
            let mut rerouted = false;
            for (_, stored, o) in &rollouts {
                let Object::Rollout(r) = o else { continue };
                match self.reconcile_rollout(r, stored, &pods, &templates) {
                    Ok(changed) => rerouted |= changed,
                    Err(e) => tracing::warn!(rollout = %r.meta.name, error = %e, "reconciling the rollout failed"),
                }
            }
            // A rollout's new split goes to the kernel before anything else.
            if rerouted {
                self.sync_services().await?;
            }
            // Pods whose Deployment or Rollout is gone go too.
            for p in &pods {
                let Some(owner) = &p.owner else { continue };
                let exists = deployments
                    .iter()
                    .chain(rollouts.iter())
                    .any(|(_, _, o)| o.meta().namespace == p.namespace && o.meta().name == *owner);
                if !exists && p.deleting.is_none() {
                    records::mark_deleting(self.store.as_ref(), &p.key(), &self.now())?;
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

    pub(super) fn reconcile_deployment(
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
        let clock = self.clock.now();
        let available = |p: &PodRecord| revisions::available(p.ready, p.ready_since.as_deref(), d.min_ready, clock);
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
        let cause = d.meta.annotations.get(revisions::CHANGE_CAUSE).cloned();
        let at = self.now();
        revisions::record_revision(
            &mut state,
            &hash,
            &stored.manifest["spec"]["template"],
            cause,
            images,
            &at,
            d.revision_history_limit,
        );
        let progress: Vec<revisions::PodProgress> = mine
            .iter()
            .map(|p| revisions::PodProgress {
                hash: p.hash.clone(),
                available: available(p),
                terminating: p.deleting.is_some(),
                crash_looping: p
                    .containers
                    .values()
                    .any(|c| c.restarts >= 2 && c.waiting.as_ref().is_some_and(|(r, _)| r == "CrashLoopBackOff")),
            })
            .collect();
        let verdict = revisions::judge(&mut state, d, &hash, &progress, clock);
        state.observed_generation = stored.generation;
        if let revisions::Verdict::RollBack { to, reason } = &verdict {
            let from = state.current().map(|r| r.revision).unwrap_or_default();
            state.rolled_back = Some(revisions::RolledBack {
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
        if verdict == revisions::Verdict::DeadlineExceeded && !before.deadline_exceeded {
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
            self.delete_pod(
                &format!("{}/{name}", d.meta.namespace),
                "deployment",
                &d.meta.namespace,
                &d.meta.name,
                &at,
            )?;
        }
        for _ in 0..step.create {
            self.create_pod(
                &d.meta.namespace,
                &d.meta.name,
                "deployment",
                &d.template,
                &stored.manifest["spec"]["template"]["spec"],
                &hash,
            )?;
        }
        Ok(())
    }

    /// Marks a pod of an owner for deletion (its worker drains and stops
    /// it). Idempotent.
    pub(super) fn delete_pod(&self, key: &str, owner_kind: &str, namespace: &str, owner: &str, at: &str) -> Result<()> {
        records::mark_deleting(self.store.as_ref(), key, at)?;
        let name = key.rsplit('/').next().unwrap_or(key);
        self.event(owner_kind, namespace, owner, false, "SuccessfulDelete", format!("Deleted pod: {name}"));
        self.wake_pod(key);
        Ok(())
    }

    /// Records a new pod of `owner` made from `template` (whose hash is
    /// `hash`); its worker starts at the next pass.
    pub(super) fn create_pod(
        &self,
        namespace: &str,
        owner: &str,
        owner_kind: &str,
        template: &berth_manifest::model::PodTemplate,
        spec: &serde_json::Value,
        hash: &str,
    ) -> Result<()> {
        {
            let name = format!("{owner}-{hash}-{}", random_suffix(5));
            let mut labels = template.labels.clone();
            labels.insert("pod-template-hash".into(), hash.to_string());
            let p = PodRecord {
                uid: uid(),
                namespace: namespace.to_string(),
                name: name.clone(),
                owner: Some(owner.to_string()),
                hash: hash.to_string(),
                labels,
                template: template.clone(),
                spec: spec.clone(),
                created: self.now(),
                deleting: None,
                ip: None,
                started: None,
                containers: template
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
            self.event(owner_kind, namespace, owner, false, "SuccessfulCreate", format!("Created pod: {name}"));
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
        let routes = self.rollout_routes()?;
        let mut owners = Vec::new();
        let mut nets = Vec::new();
        for (_, _, o) in &services {
            let Object::Service(s) = o else { continue };
            let owner = format!("{}/{}", s.meta.namespace, s.meta.name);
            let route = service_route(&routes, s);
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
                    hash: &p.hash,
                })
                .collect();
            let ip = match s.cluster_ip {
                ClusterIp::Headless => None,
                ClusterIp::Auto => Some(self.networks.service_ip_besides(&owner, None, &nets)?),
                ClusterIp::Fixed(ip) => Some(self.networks.service_ip_besides(&owner, Some(ip), &nets)?),
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
                            None => {
                                // Ports chosen in this pass are not stored yet.
                                let pending: Vec<ServicePortNet> = nets
                                    .iter()
                                    .flat_map(|n: &ServiceNet| n.ports.clone())
                                    .chain(ports.clone())
                                    .collect();
                                self.free_node_port(&owner, protocol, &pending)?
                            }
                        })
                    }
                };
                ports.push(ServicePortNet {
                    port: p.port,
                    protocol,
                    backends: plan::service_backends(s, i, &endpoints, route),
                    node_port,
                });
            }
            let mut ready_ips: Vec<std::net::Ipv4Addr> = endpoints
                .iter()
                .filter(|e| e.ready && !e.terminating && route.admits(e.hash))
                .filter_map(|e| e.ip)
                .collect();
            ready_ips.sort();
            let net = ServiceNet {
                owner: owner.clone(),
                names: dns_names(&s.meta.namespace, &s.meta.name),
                ip,
                ports,
                endpoints: ready_ips,
            };
            nets.push(net);
            owners.push(owner);
        }
        // Every changed VIP in one atomic rule change.
        self.networks.set_services(nets).await?;
        for (key, status, _) in &routes {
            super::argo::state::set_routed(self.store.as_ref(), key, status)?;
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
    pub(super) fn free_node_port(
        &self,
        owner: &str,
        protocol: berth_core::net::Protocol,
        mine: &[ServicePortNet],
    ) -> Result<u16> {
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

/// Which revisions Service `s` sends to: a rollout's route when a rollout
/// stands behind it, else every selected pod.
pub(super) fn service_route<'a>(
    routes: &'a [(String, berth_control::argo::StrategyStatus, berth_control::argo::machine::RolloutRoute)],
    s: &berth_manifest::model::ServiceSpec,
) -> plan::Route<'a> {
    routes
        .iter()
        .find_map(|(_, _, r)| r.route_for(&s.meta.namespace, &s.meta.name, &s.selector))
        .unwrap_or(plan::Route::All)
}
