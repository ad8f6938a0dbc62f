//! One worker per pod: makes its sandbox and volumes, runs the init
//! containers to completion and then the containers, probes them,
//! restarts them with back-off, and when the pod must go, drains it and
//! stops it gracefully. Each step is persisted in the pod's record before
//! the next, and a container is found again by its fixed name, so a worker
//! restarted after a crash carries on instead of starting over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_control::{ContainerHealth, ProbeResult};
use berth_core::container::ContainerState;
use berth_manifest::model::{ContainerSpec, Handler, ProbeHandler, ProbeKind, PullPolicy, VolumeSource};
use tokio::time::Instant;

use super::plan;
use super::records::{self, PodRecord};
use super::spec::{self, ConfigSources, PodIdentity};
use super::Declared;

mod probes;
mod volumes;

/// A running container instance and its probes.
struct Instance {
    id: String,
    health: ContainerHealth,
}

pub struct Worker {
    d: Arc<Declared>,
    key: String,
    wake: Arc<tokio::sync::Notify>,
    origin: Instant,
    instances: HashMap<String, Instance>,
    last_usage_check: Option<Instant>,
}

/// The data of Secret `namespace/name` as it is now (`None`: there is no
/// such Secret), for a container starting with values from it.
pub(crate) fn secret_data(
    store: &dyn berth_store::Store,
    namespace: &str,
    name: &str,
) -> Result<Option<std::collections::BTreeMap<String, Vec<u8>>>, berth_store::StoreError> {
    let Some(stored) = records::object(store, "Secret", &format!("{namespace}/{name}"))? else { return Ok(None) };
    match stored.object()? {
        berth_manifest::Object::Secret(s) => {
            Ok(Some(s.data.iter().map(|(k, v)| (k.clone(), v.expose().to_vec())).collect()))
        }
        _ => Ok(None),
    }
}

/// How long until an RFC 3339 time (zero when past).
fn until(s: &str, now: chrono::DateTime<chrono::Utc>) -> Duration {
    berth_core::clock::parse(s).and_then(|t| (t - now).to_std().ok()).unwrap_or_default()
}

impl Worker {
    pub fn new(d: Arc<Declared>, key: String, wake: Arc<tokio::sync::Notify>) -> Self {
        Self { d, key, wake, origin: Instant::now(), instances: HashMap::new(), last_usage_check: None }
    }

    fn clock(&self) -> Duration {
        self.origin.elapsed()
    }

    pub async fn run(mut self) {
        loop {
            let pod = match records::pod(self.d.store.as_ref(), &self.key) {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(pod = %self.key, error = %e, "cannot read the pod");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if pod.deleting.is_some() {
                self.terminate(pod).await;
                break;
            }
            let d = Arc::clone(&self.d);
            let changed = d.containers.state_changed();
            let next = self.step(pod).await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = changed => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
        self.d.workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
        self.d.wake.notify_one();
    }

    fn event(&self, pod: &PodRecord, warning: bool, reason: &str, message: String) {
        self.d.event("pod", &pod.namespace, &pod.name, warning, reason, message);
    }

    /// Why a container cannot start yet; the event is emitted when the
    /// reason or message changes, not on every retry.
    fn waiting(&self, pod: &mut PodRecord, container: &str, reason: &str, message: String) {
        let new = Some((reason.to_string(), message.clone()));
        let st = pod.container(container);
        if st.waiting != new {
            st.waiting = new;
            self.event(pod, true, "Failed", format!("Error: {message}"));
        }
    }

    /// Takes the pod one step further; returns when to look again.
    async fn step(&mut self, mut pod: PodRecord) -> Duration {
        let before = pod.clone();
        let next = self.advance(&mut pod).await;
        let ready =
            pod.template.init_containers.iter().all(|c| pod.containers.get(&c.name).is_some_and(|s| s.completed))
                && pod.template.containers.iter().all(|c| pod.containers.get(&c.name).is_some_and(|s| s.ready));
        if ready != pod.ready {
            pod.ready = ready;
            pod.ready_since = Some(self.d.now());
        }
        if pod != before {
            if let Err(e) = records::put_pod(self.d.store.as_ref(), &pod) {
                tracing::warn!(pod = %self.key, error = %e, "cannot record the pod's state");
            }
            if pod.ready != before.ready {
                // The Deployment's next step may wait on this pod.
                self.d.wake.notify_one();
                if let Err(e) = self.d.sync_services().await {
                    tracing::warn!(pod = %self.key, error = %e, "updating the pod's services failed");
                }
            }
        }
        next
    }

    async fn advance(&mut self, pod: &mut PodRecord) -> Duration {
        let dir_disk = self.d.disk.join(&pod.uid);
        let dir_memory = self.d.memory.join(&pod.uid);
        if pod.ip.is_none() || self.d.networks.sandbox(&pod.uid).ok().flatten().is_none() {
            let hostname = pod.template.hostname.clone().unwrap_or_else(|| pod.name.clone());
            let search = vec![
                format!("{}.svc.cluster.local", pod.namespace),
                "svc.cluster.local".to_string(),
                "cluster.local".to_string(),
            ];
            // A pod without host users gets its user namespace range first:
            // the sandbox's network namespace is owned by that namespace.
            let userns = match pod.template.host_users {
                true => None,
                false => match self.d.containers.pod_userns(&pod.uid).await {
                    Ok(reserved) => Some(reserved),
                    Err(e) => {
                        self.event(pod, true, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                        return Duration::from_secs(5);
                    }
                },
            };
            let mapping = userns.as_ref().map(|(m, _)| *m);
            let made = self
                .d
                .networks
                .ensure_sandbox(&pod.uid, &pod.key(), &hostname, &search, &dir_memory.join("etc"), mapping)
                .await;
            drop(userns);
            match made {
                Ok(s) => pod.ip = Some(s.ip.to_string()),
                Err(e) => {
                    self.event(pod, true, "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
                    return Duration::from_secs(5);
                }
            }
        }
        let sources = match self.sources(&pod.namespace) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(pod = %self.key, error = %e, "cannot read ConfigMaps and Secrets");
                return Duration::from_secs(2);
            }
        };
        let owner = self.d.networks.sandbox(&pod.uid).ok().flatten().and_then(|s| s.mapping);
        if let Err(e) = self.volumes(pod, &sources, &dir_disk.join("volumes"), &dir_memory.join("volumes"), owner) {
            for c in pod.template.all_containers().map(|c| c.name.clone()).collect::<Vec<_>>() {
                if pod.container(&c).id.is_none() {
                    self.waiting(pod, &c, "CreateContainerConfigError", e.to_string());
                }
            }
            return Duration::from_secs(2);
        }
        if self.last_usage_check.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            self.last_usage_check = Some(Instant::now());
            if let Some(msg) = self.over_size_limit(pod, &dir_disk.join("volumes")) {
                // As the kubelet does: the pod is evicted and its Deployment
                // makes another.
                self.event(pod, true, "Evicted", msg);
                let _ = records::mark_deleting(self.d.store.as_ref(), &self.key, &self.d.now());
                return Duration::ZERO;
            }
        }
        if pod.started.is_none() {
            pod.started = Some(self.d.now());
        }
        for c in pod.template.init_containers.clone() {
            if pod.containers.get(&c.name).is_some_and(|s| s.completed) {
                continue;
            }
            return self.container(pod, &c, true, &sources).await;
        }
        let mut next = Duration::from_secs(5);
        for c in pod.template.containers.clone() {
            next = next.min(self.container(pod, &c, false, &sources).await);
        }
        next
    }

    fn container_name(pod: &PodRecord, c: &ContainerSpec) -> String {
        let name = if pod.namespace == "default" {
            format!("{}_{}", pod.name, c.name)
        } else {
            format!("{}_{}_{}", pod.namespace, pod.name, c.name)
        };
        if name.len() <= 128 {
            name
        } else {
            format!("{}_{}", pod.uid, c.name)
        }
    }

    /// Takes one container a step further ([`plan::container_step`]
    /// decides); returns when to look again.
    async fn container(
        &mut self,
        pod: &mut PodRecord,
        c: &ContainerSpec,
        init: bool,
        sources: &ConfigSources,
    ) -> Duration {
        let st = pod.container(&c.name).clone();
        let record = st.id.as_ref().and_then(|id| self.d.store.get_container(id).ok().flatten());
        let observed = match &record {
            None => plan::Observed::Missing,
            Some(r) if r.state == ContainerState::Running => plan::Observed::Running,
            Some(r) => match &r.finished_at {
                None => plan::Observed::Created,
                Some(finished_at) => plan::Observed::Exited {
                    exit_code: r.exit_code.unwrap_or(255),
                    oom_killed: r.oom_killed,
                    started_at: r.started_at.as_deref(),
                    finished_at,
                },
            },
        };
        match plan::container_step(&st, observed, init, self.d.clock.now(), &self.d.settings.backoff) {
            plan::ContainerStep::Create => self.create(pod, c, sources).await,
            plan::ContainerStep::Probe => {
                let id = record.map(|r| r.id).unwrap_or_default();
                self.probe(pod, c, &id).await
            }
            plan::ContainerStep::Completed(exit) => {
                self.instances.remove(&c.name);
                let s = pod.container(&c.name);
                s.last_exit = Some(exit);
                s.completed = true;
                s.waiting = None;
                s.ready = false;
                Duration::ZERO
            }
            plan::ContainerStep::BackOff { exit, delay } => {
                self.instances.remove(&c.name);
                let pod_name = pod.name.clone();
                let (code, reason) = (exit.exit_code, exit.reason.clone());
                let s = pod.container(&c.name);
                s.last_exit = Some(exit);
                s.ready = false;
                s.started = false;
                s.backoff_ms = Some(delay.as_millis() as u64);
                let until = self.d.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
                s.backoff_until = Some(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                s.waiting = Some((
                    "CrashLoopBackOff".into(),
                    format!("back-off {}s restarting failed container={} pod={pod_name}", delay.as_secs(), c.name),
                ));
                self.event(
                    pod,
                    true,
                    "BackOff",
                    format!(
                        "Back-off {}s restarting failed container {} (exit code {code}, {reason})",
                        delay.as_secs(),
                        c.name
                    ),
                );
                // A crash-looping new revision is the Deployment's business.
                self.d.wake.notify_one();
                delay
            }
            plan::ContainerStep::Wait(d) => d,
            plan::ContainerStep::Restart { after_exit } => {
                let Some(rec) = record else { return Duration::ZERO };
                // As the kubelet does at every start: the Secrets and
                // ConfigMaps it needs must be there (their values are read
                // again as it starts).
                let ip = pod.ip.clone().unwrap_or_default();
                let hostname = pod.template.hostname.clone().unwrap_or_else(|| pod.name.clone());
                let identity = PodIdentity {
                    namespace: &pod.namespace,
                    name: &pod.name,
                    ip: &ip,
                    hostname: &hostname,
                    uid: &pod.uid,
                };
                if let Err(e) = spec::environment(c, &identity, sources) {
                    self.waiting(pod, &c.name, "CreateContainerConfigError", e.to_string());
                    return Duration::from_secs(2);
                }
                let s = pod.container(&c.name);
                if after_exit {
                    s.restarts += 1;
                }
                s.waiting = None;
                let restarts = s.restarts;
                match self.d.containers.start(&rec.id).await {
                    Ok(started) => {
                        self.event(pod, false, "Started", format!("Started container {} (restart {restarts})", c.name));
                        self.track(c, &started.id);
                        if init {
                            Duration::from_millis(100)
                        } else {
                            Duration::ZERO
                        }
                    }
                    Err(e) => {
                        self.event(pod, true, "Failed", format!("Error: {e}"));
                        Duration::from_millis(200)
                    }
                }
            }
        }
    }

    fn track(&mut self, c: &ContainerSpec, id: &str) {
        let health = ContainerHealth::new(c, self.clock());
        self.instances.insert(c.name.clone(), Instance { id: id.to_string(), health });
    }

    /// Pulls the image if needed, creates the container and starts it.
    async fn create(&mut self, pod: &mut PodRecord, c: &ContainerSpec, sources: &ConfigSources) -> Duration {
        let waiting_until =
            pod.container(&c.name).backoff_until.as_deref().map(|t| until(t, self.d.clock.now())).unwrap_or_default();
        if !waiting_until.is_zero() {
            return waiting_until;
        }
        let image = c.image.to_string();
        let present = self.d.images.resolve(&image).is_ok();
        let pull = match c.pull_policy {
            PullPolicy::Always => true,
            PullPolicy::IfNotPresent => !present,
            PullPolicy::Never => false,
        };
        if !present && c.pull_policy == PullPolicy::Never {
            let msg = format!("Container image {image:?} is not present with pull policy of Never");
            pod.container(&c.name).waiting = Some(("ErrImageNeverPull".into(), msg.clone()));
            self.event(pod, true, "ErrImageNeverPull", msg);
            return Duration::from_secs(10);
        }
        if pull {
            self.event(pod, false, "Pulling", format!("Pulling image {image:?}"));
            match self.d.images.pull(&image, None, &berth_image::progress::Progress::none()).await {
                Ok(_) => self.event(pod, false, "Pulled", format!("Successfully pulled image {image:?}")),
                Err(e) => {
                    let s = pod.container(&c.name);
                    let first = !matches!(&s.waiting, Some((r, _)) if r == "ErrImagePull" || r == "ImagePullBackOff");
                    let delay =
                        self.d.settings.backoff.next_delay(s.backoff_ms.map(Duration::from_millis), Duration::ZERO);
                    s.backoff_ms = Some(delay.as_millis() as u64);
                    let until = self.d.clock.now() + chrono::Duration::from_std(delay).unwrap_or_default();
                    s.backoff_until = Some(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
                    let reason = if first { "ErrImagePull" } else { "ImagePullBackOff" };
                    s.waiting = Some((reason.into(), e.to_string()));
                    self.event(pod, true, "Failed", format!("Failed to pull image {image:?}: {e}"));
                    return delay;
                }
            }
        } else {
            self.event(pod, false, "Pulled", format!("Container image {image:?} already present on machine"));
        }
        let ip = pod.ip.clone().unwrap_or_default();
        let hostname = pod.template.hostname.clone().unwrap_or_else(|| pod.name.clone());
        let identity =
            PodIdentity { namespace: &pod.namespace, name: &pod.name, ip: &ip, hostname: &hostname, uid: &pod.uid };
        let env = spec::environment(c, &identity, sources);
        let name = Self::container_name(pod, c);
        let disk = self.d.disk.join(&pod.uid).join("volumes");
        let memory = self.d.memory.join(&pod.uid).join("volumes");
        // Under the pod's tmpfs directory, so the pod's teardown unmounts them.
        let subpaths = self.d.memory.join(&pod.uid).join("subpaths").join(&c.name);
        let req = env.and_then(|environment| {
            let mut labels = std::collections::BTreeMap::new();
            labels.insert("io.kubernetes.pod.namespace".to_string(), pod.namespace.clone());
            labels.insert("io.kubernetes.pod.name".to_string(), pod.name.clone());
            labels.insert("io.kubernetes.container.name".to_string(), c.name.clone());
            spec::container_request(spec::RequestInput {
                pod: &identity,
                template: &pod.template,
                container: c,
                env: environment.env,
                name: name.clone(),
                disk: &disk,
                memory: &memory,
                subpaths: &subpaths,
                labels,
            })
            .map(|req| berth_core::api::ContainerCreateRequest { secret_env: environment.secret_env, ..req })
        });
        let req = match (req, spec::subpath_binds(&pod.template, c, &disk, &memory, &subpaths)) {
            (Ok(req), Ok(binds)) if binds.is_empty() => Ok(req),
            (Ok(req), Ok(binds)) => {
                let container = c.name.clone();
                tokio::task::spawn_blocking(move || super::subpath::prepare(&container, &binds))
                    .await
                    .unwrap_or_else(|e| Err(spec::ConfigError(format!("preparing subPath mounts: {e}"))))
                    .map(|()| req)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.waiting(pod, &c.name, "CreateContainerConfigError", e.to_string());
                return Duration::from_secs(2);
            }
        };
        if c.security.run_as_non_root {
            let image_user = self.d.images.inspect(&image).ok().and_then(|i| i.config.user).unwrap_or_default();
            if let Err(e) = c.security.verify_run_as_non_root(&image_user) {
                self.waiting(pod, &c.name, "CreateContainerConfigError", e.to_string());
                return Duration::from_secs(10);
            }
        }
        // A container of that name left by a crash before it was recorded.
        if let Ok(old) = self.d.containers.resolve(&name) {
            let _ = self.d.containers.remove(&old.id, true).await;
        }
        let created = match self.d.containers.create(req).await {
            Ok(c) => c,
            Err(e) => {
                pod.container(&c.name).waiting = Some(("CreateContainerError".into(), e.to_string()));
                self.event(pod, true, "Failed", format!("Error: {e}"));
                return Duration::from_secs(2);
            }
        };
        let s = pod.container(&c.name);
        s.id = Some(created.id.clone());
        s.waiting = Some(("ContainerCreating".into(), String::new()));
        // Recorded before it starts, so a crash now finds it again.
        let _ = records::put_pod(self.d.store.as_ref(), pod);
        self.event(pod, false, "Created", format!("Created container {}", c.name));
        match self.d.containers.start(&created.id).await {
            Ok(_) => {
                pod.container(&c.name).waiting = None;
                self.event(pod, false, "Started", format!("Started container {}", c.name));
                self.track(c, &created.id);
                Duration::ZERO
            }
            Err(e) => {
                self.event(pod, true, "Failed", format!("Error: {e}"));
                Duration::from_millis(100)
            }
        }
    }

    /// Graceful termination: out of every Service (the rules confirmed in
    /// the kernel), connections drained, `preStop`, the stop signal, the
    /// grace period, SIGKILL, then everything of the pod removed.
    async fn terminate(&mut self, pod: PodRecord) {
        let started = Instant::now();
        let grace = pod.template.termination_grace_period;
        if let Err(e) = self.d.sync_services().await {
            tracing::warn!(pod = %self.key, error = %e, "taking the pod out of its services failed");
        }
        if let Some(ip) = pod.ip.as_deref().and_then(|i| i.parse().ok()) {
            let deadline = started + self.d.settings.drain_timeout;
            loop {
                match self.d.networks.active_connections(ip).await {
                    Ok(0) => break,
                    Ok(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                    Ok(n) => {
                        self.event(
                            &pod,
                            true,
                            "DrainTimeout",
                            format!("{n} connection(s) still open after the drain timeout"),
                        );
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(pod = %self.key, error = %e, "cannot count the pod's connections");
                        break;
                    }
                }
            }
        }
        let running: Vec<(ContainerSpec, String)> = pod
            .template
            .containers
            .iter()
            .filter_map(|c| {
                let id = pod.containers.get(&c.name)?.id.clone()?;
                self.d.containers.is_running(&id).then(|| (c.clone(), id))
            })
            .collect();
        // preStop hooks run side by side, within the grace period.
        let hooks = running.iter().filter_map(|(c, id)| c.pre_stop.clone().map(|h| (h, id.clone())));
        let ip = pod.ip.as_deref().and_then(|i| i.parse().ok());
        let futures: Vec<_> = hooks
            .map(|(h, id)| {
                let (containers, probes) = (Arc::clone(&self.d.containers), Arc::clone(&self.d.probes));
                async move {
                    match h {
                        Handler::Sleep(d) => tokio::time::sleep(d).await,
                        Handler::Exec { command } => {
                            let handler = ProbeHandler::Exec { command };
                            let target = crate::probes::Target { container: &id, ip };
                            crate::probes::run(&containers, probes.as_ref(), &handler, &target, grace).await;
                        }
                        Handler::HttpGet(g) => {
                            let handler = ProbeHandler::HttpGet(g);
                            let target = crate::probes::Target { container: &id, ip };
                            crate::probes::run(&containers, probes.as_ref(), &handler, &target, grace).await;
                        }
                    }
                }
            })
            .collect();
        let _ = tokio::time::timeout(grace, futures::future::join_all(futures)).await;
        let left = grace.saturating_sub(started.elapsed()).as_secs() as u32;
        let stops: Vec<_> = running
            .iter()
            .map(|(c, id)| {
                self.event(&pod, false, "Killing", format!("Stopping container {}", c.name));
                let containers = Arc::clone(&self.d.containers);
                let id = id.clone();
                async move {
                    let _ = containers.stop(&id, Some(left)).await;
                }
            })
            .collect();
        futures::future::join_all(stops).await;
        let mut clean = true;
        for st in pod.containers.values() {
            if let Some(id) = &st.id {
                match self.d.containers.remove(id, true).await {
                    Ok(_) | Err(crate::containers::ContainerError::NotFound(_)) => {}
                    Err(e) => {
                        clean = false;
                        tracing::warn!(pod = %self.key, error = %e, "removing a container of the pod failed");
                    }
                }
            }
        }
        if let Err(e) = self.d.networks.remove_sandbox(&pod.uid).await {
            clean = false;
            tracing::warn!(pod = %self.key, error = %e, "removing the pod's sandbox failed");
        }
        let _ = std::fs::remove_dir_all(self.d.disk.join(&pod.uid));
        for (m, e) in self.d.mounts.detach_under(&self.d.memory.join(&pod.uid)) {
            tracing::warn!(pod = %self.key, mount = %m.display(), error = %e, "cannot unmount a pod volume");
        }
        let _ = std::fs::remove_dir_all(self.d.memory.join(&pod.uid));
        if clean {
            if let Err(e) = records::remove_pod(self.d.store.as_ref(), &self.key) {
                tracing::warn!(pod = %self.key, error = %e, "forgetting the pod failed");
            }
            self.d.probe_counts.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
        } else {
            // The next worker tries again.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}
