//! Argo Rollouts run by berth: the Rollout reconciler, its analysis runs,
//! and how Services in front of a rollout route by revision.
//!
//! Design: each pass reads the rollout's persisted state, feeds the pure
//! strategy machine ([`berth_control::canary`] or
//! [`berth_control::bluegreen`]) what happened (a new template, finished
//! analysis runs, the pods it can see), persists the answer, and only then
//! acts: pods per revision, analysis runs started or stopped, measurements
//! spawned. The Service reconciler reads the same state to program each
//! VIP's split in one atomic rule change. A daemon killed at any moment
//! finds the state as it was written and programs the same split again.
//!
//! Measurements run in tasks of their own (an HTTP check or a Prometheus
//! query must not hold up other reconcilers); their outcomes are handed
//! back through memory and counted at the next pass. One lost to a crash
//! is simply taken again.

mod measure;
pub(super) mod state;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_control::analysis_run::RunPhase;
use berth_control::canary::AnalysisOutcome;
use berth_core::api::RolloutRequest;
use berth_manifest::model::{AnalysisRef, AnalysisTemplateSpec, Metric, Provider, RolloutSpec};
use berth_manifest::Object;

use super::records::{self, PodRecord, StoredObject};
use super::{revisions, Declared, DeclaredError, Result};
use berth_control::argo::{machine, RolloutState, RunRecord, StrategyStatus, FINISHED_KEPT};
use machine::{Ev, Plan, WantedRun};
pub(super) use measure::Taken;
pub(super) use view::rollout as kube_rollout;

/// A measurement taken, waiting to be counted.
pub(super) struct Measured {
    pub rollout: String,
    pub run: String,
    pub started_at: Duration,
    pub metric: usize,
    pub taken: Taken,
}

/// The event kind berth's event log uses for rollouts.
const EVENT_KIND: &str = "rollout";

impl Declared {
    /// Time since the Unix epoch on the daemon's clock: the rollout
    /// machines' virtual time, which survives a daemon restart.
    fn epoch_now(&self) -> Duration {
        (self.clock.now() - chrono::DateTime::UNIX_EPOCH).to_std().unwrap_or_default()
    }

    /// One pass over one Rollout. Called under the declared lock.
    pub(super) fn reconcile_rollout(
        self: &Arc<Self>,
        r: &RolloutSpec,
        stored: &StoredObject,
        pods: &[PodRecord],
        templates: &[AnalysisTemplateSpec],
    ) -> Result<bool> {
        let key = format!("{}/{}", r.meta.namespace, r.meta.name);
        let hash = r.template.hash().to_string();
        let now_v = self.epoch_now();
        let clock = self.clock.now();
        let mine: Vec<&PodRecord> = pods
            .iter()
            .filter(|p| p.namespace == r.meta.namespace && p.owner.as_deref() == Some(r.meta.name.as_str()))
            .collect();
        let available_of = |h: &str| -> u32 {
            mine.iter()
                .filter(|p| p.hash == h && p.deleting.is_none())
                .filter(|p| revisions::available(p.ready, p.ready_since.as_deref(), r.min_ready, clock))
                .count() as u32
        };

        let mut state = state::load(self.store.as_ref(), &key)?.unwrap_or_default();
        let before = state.clone();
        let at = self.now();
        let images = r.template.containers.iter().map(|c| c.image.to_string()).collect();
        let cause = r.meta.annotations.get(revisions::CHANGE_CAUSE).cloned();
        revisions::record_revision(
            &mut state.revisions,
            &hash,
            &stored.manifest["spec"]["template"],
            cause,
            images,
            &at,
            r.revision_history_limit,
        );
        state.observed_generation = stored.generation;

        // The first template serves at once (there is nothing to protect);
        // a changed strategy keeps what serves.
        let mut status = match state.strategy.take() {
            Some(s) if machine::same_strategy(&r.strategy, &s) => s,
            Some(s) => machine::fresh(&r.strategy, s.stable()),
            None => machine::fresh(&r.strategy, &hash),
        };
        let mut happened: Vec<Ev> = Vec::new();
        if status.target() != hash {
            happened.push(Ev::NewRevision(hash.clone()));
        }

        // Measurements taken since the last pass.
        let taken: Vec<Measured> = {
            let mut all = self.measured.lock().unwrap_or_else(|p| p.into_inner());
            let (mine, rest): (Vec<_>, Vec<_>) = all.drain(..).partition(|m| m.rollout == key);
            *all = rest;
            mine
        };
        for m in taken {
            let Some(run) = state.runs.get_mut(&m.run) else { continue };
            if run.run.started_at != m.started_at || run.outcome.is_some() || m.metric >= run.metrics.len() {
                continue;
            }
            if let berth_control::analysis_run::Measurement::Error(why) = &m.taken.measurement {
                tracing::info!(rollout = %key, run = %m.run, metric = %run.metrics[m.metric].name, error = %why, "measurement failed");
            }
            run.run.record(&run.metrics, m.metric, m.taken.measurement, now_v);
            run.last_values[m.metric] = m.taken.value;
            run.baselines[m.metric] = Some(m.taken.counter);
        }
        // Finished runs are the machine's business now.
        let names: Vec<String> = state.runs.keys().cloned().collect();
        for name in names {
            let run = state.runs.get_mut(&name).expect("listed");
            if run.outcome.is_none() {
                let phase = run.run.phase();
                if phase != RunPhase::Running {
                    run.outcome = Some(phase);
                }
            }
            let Some(outcome) = run.outcome.clone() else { continue };
            let outcome = match outcome {
                RunPhase::Successful => AnalysisOutcome::Successful,
                RunPhase::Failed(why) => AnalysisOutcome::Failed(why),
                RunPhase::Inconclusive(_) | RunPhase::Running => AnalysisOutcome::Inconclusive,
            };
            let done = state.runs.remove(&name).expect("listed");
            self.finish_run(&mut state, done, &r.meta.namespace, &r.meta.name);
            happened.push(Ev::Analysis { run: name, outcome });
        }
        if r.paused && status.target() != status.stable() && !machine::held(&status) {
            happened.push(Ev::Pause);
        }
        for ev in happened {
            if let Ok((s, _)) = machine::next(r, &status, ev, now_v) {
                status = s;
            }
        }
        let target = status.target().to_string();
        let available = available_of(&target);
        let (mut status_now, mut plan) =
            machine::next(r, &status, Ev::Observe { available }, now_v).expect("observing is always legal");
        // No progress (no step, no newly available pod) within
        // progressDeadlineSeconds while not waiting for a person: aborted,
        // as berth rolls a stuck Deployment back, unless turned off.
        let mark = format!("{}|{available}", serde_json::to_string(&status_now).unwrap_or_default());
        if state.progress_mark.as_deref() != Some(mark.as_str()) {
            state.progress_mark = Some(mark);
            state.progress_at = Some(now_v);
        }
        // A pause, a hold or a blocking analysis is waiting, not stalling;
        // the deadline counts again from when it ends (the status changes).
        let waiting = machine::held(&status_now) || machine::pausing(r, &status_now) || machine::analysing(&status_now);
        let auto = r.meta.annotations.get(revisions::AUTO_ROLLBACK).is_none_or(|v| v != "false");
        let stalled = !waiting
            && status_now.target() != status_now.stable()
            && status_now.aborted().is_none()
            && state.progress_at.is_some_and(|at| now_v.saturating_sub(at) > r.progress_deadline);
        if stalled && auto {
            let why = format!(
                "revision {target} made no progress within progressDeadlineSeconds ({} s)",
                r.progress_deadline.as_secs()
            );
            if let Ok((s, _)) = machine::next(r, &status_now, Ev::Abort(why), now_v) {
                (status_now, plan) =
                    machine::next(r, &s, Ev::Observe { available }, now_v).expect("observing is always legal");
            }
        }
        let old_status = before.strategy.clone();
        status = status_now;

        // Analysis runs: start the wanted ones, stop the others.
        let wanted: Vec<&WantedRun> = plan.runs.iter().collect();
        let stale: Vec<String> = state.runs.keys().filter(|n| !wanted.iter().any(|w| &w.name == *n)).cloned().collect();
        for name in stale {
            let mut run = state.runs.remove(&name).expect("listed");
            let phase = run.run.stop();
            run.outcome = Some(phase);
            self.finish_run(&mut state, run, &r.meta.namespace, &r.meta.name);
        }
        for w in wanted {
            if state.runs.contains_key(&w.name) {
                continue;
            }
            let run = self.start_run(r, w, templates, &mine, now_v);
            self.event(
                EVENT_KIND,
                &r.meta.namespace,
                &r.meta.name,
                false,
                "AnalysisRunStarted",
                format!("Analysis run {} started for revision {}", w.name, w.canary),
            );
            state.runs.insert(w.name.clone(), run);
        }
        if machine::held(&status) || machine::pausing(r, &status) {
            state.paused_since.get_or_insert_with(|| at.clone());
        } else {
            state.paused_since = None;
        }
        self.status_events(r, old_status.as_ref(), &status);
        let rerouted = state::routed(self.store.as_ref(), &key)?.as_ref() != Some(&status);
        state.strategy = Some(status);
        if state != before {
            state::save(self.store.as_ref(), &key, &state)?;
        }

        self.scale_revisions(r, stored, &mine, &plan)?;
        self.spawn_measurements(&key, &state, &mine);
        Ok(rerouted)
    }

    fn finish_run(&self, state: &mut RolloutState, run: RunRecord, namespace: &str, name: &str) {
        let (reason, warning, message) = match &run.outcome {
            Some(RunPhase::Successful) => ("AnalysisRunSuccessful", false, "successful".to_string()),
            Some(RunPhase::Failed(why)) => ("AnalysisRunFailed", true, format!("failed: {why}")),
            Some(RunPhase::Inconclusive(why)) => ("AnalysisRunInconclusive", true, format!("inconclusive: {why}")),
            Some(RunPhase::Running) | None => ("AnalysisRunStopped", false, "stopped".to_string()),
        };
        self.event(EVENT_KIND, namespace, name, warning, reason, format!("Analysis run {} {message}", run.name));
        state.finished.push(run);
        let extra = state.finished.len().saturating_sub(FINISHED_KEPT);
        state.finished.drain(..extra);
    }

    /// A new analysis run from the templates `w` names, with its arguments
    /// rendered; one that cannot be made fails at once with the reason.
    fn start_run(
        &self,
        r: &RolloutSpec,
        w: &WantedRun,
        templates: &[AnalysisTemplateSpec],
        mine: &[&PodRecord],
        now_v: Duration,
    ) -> RunRecord {
        match metrics_of(&w.analysis, templates, &r.meta.namespace) {
            Ok(mut metrics) => {
                // A figure counted over an interval (restarts, probe
                // results) has nothing to count at the start: its first
                // measurement comes one interval in.
                for m in &mut metrics {
                    if matches!(m.provider, Provider::Restarts | Provider::Probe(_)) && m.initial_delay.is_zero() {
                        m.initial_delay = m.interval.unwrap_or(Duration::from_secs(1));
                    }
                }
                let mut run = RunRecord::new(w.name.clone(), w.canary.clone(), w.stable.clone(), metrics, now_v);
                for (i, m) in run.metrics.iter().enumerate() {
                    run.baselines[i] = Some(self.counter(&m.provider, &w.canary, mine));
                }
                run
            }
            Err(why) => RunRecord::failed_to_start(w.name.clone(), w.canary.clone(), why, now_v),
        }
    }

    /// The counter a built-in metric reads: restarts, or readiness probe
    /// (successes, attempts), summed over the revision's live pods.
    fn counter(&self, provider: &Provider, hash: &str, mine: &[&PodRecord]) -> (u64, u64) {
        let pods = mine.iter().filter(|p| p.hash == hash && p.deleting.is_none());
        match provider {
            Provider::Restarts => (pods.flat_map(|p| p.containers.values()).map(|c| u64::from(c.restarts)).sum(), 0),
            Provider::Probe(_) => {
                let counts = self.probe_counts.lock().unwrap_or_else(|p| p.into_inner());
                pods.filter_map(|p| counts.get(&p.key())).fold((0, 0), |(a, b), (ok, all)| (a + ok, b + all))
            }
            Provider::HttpCheck { .. } | Provider::Prometheus { .. } => (0, 0),
        }
    }

    /// Starts a task for every measurement that is due and not under way.
    fn spawn_measurements(self: &Arc<Self>, key: &str, state: &RolloutState, mine: &[&PodRecord]) {
        let now_v = self.epoch_now();
        let ready_ips = |hash: &str| -> Vec<std::net::Ipv4Addr> {
            mine.iter()
                .filter(|p| p.hash == hash && p.ready && p.deleting.is_none())
                .filter_map(|p| p.ip.as_deref()?.parse().ok())
                .collect()
        };
        for run in state.runs.values().filter(|r| r.outcome.is_none()) {
            for i in run.run.due(&run.metrics, now_v) {
                let id = format!("{key}|{}|{}|{i}", run.name, run.run.started_at.as_millis());
                if !self.measuring.lock().unwrap_or_else(|p| p.into_inner()).insert(id.clone()) {
                    continue;
                }
                let metric = run.metrics[i].clone();
                let subjects = measure::Subjects {
                    canary: ready_ips(&run.canary),
                    stable: run.stable.as_deref().map(ready_ips).unwrap_or_default(),
                    counter: self.counter(&metric.provider, &run.canary, mine),
                    revision: run.canary.clone(),
                };
                let baseline = run.baselines[i].unwrap_or_default();
                let this = Arc::clone(self);
                let (rollout, name, started_at) = (key.to_string(), run.name.clone(), run.run.started_at);
                tokio::spawn(async move {
                    let taken = measure::take(&metric, subjects, baseline).await;
                    this.measured.lock().unwrap_or_else(|p| p.into_inner()).push(Measured {
                        rollout,
                        run: name,
                        started_at,
                        metric: i,
                        taken,
                    });
                    this.measuring.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    this.wake.notify_one();
                });
            }
        }
    }

    /// Pods per revision as the plan says: missing ones created, extra
    /// ones (unready first, then the newest) and those of other revisions
    /// marked for deletion.
    fn scale_revisions(&self, r: &RolloutSpec, stored: &StoredObject, mine: &[&PodRecord], plan: &Plan) -> Result<()> {
        let at = self.now();
        let hash = r.template.hash().to_string();
        let mut wanted: BTreeMap<&str, u32> = BTreeMap::new();
        for (h, n) in &plan.replicas {
            let e = wanted.entry(h.as_str()).or_default();
            *e = (*e).max(*n);
        }
        for p in mine.iter().filter(|p| p.deleting.is_none() && !wanted.contains_key(p.hash.as_str())) {
            self.delete_pod(&p.key(), EVENT_KIND, &r.meta.namespace, &r.meta.name, &at)?;
        }
        for (h, n) in wanted {
            let mut live: Vec<&&PodRecord> = mine.iter().filter(|p| p.hash == h && p.deleting.is_none()).collect();
            let have = live.len() as u32;
            if have > n {
                live.sort_by(|a, b| a.ready.cmp(&b.ready).then(b.created.cmp(&a.created)));
                for p in live.iter().take((have - n) as usize) {
                    self.delete_pod(&p.key(), EVENT_KIND, &r.meta.namespace, &r.meta.name, &at)?;
                }
            }
            if have < n {
                // A revision's template: the current one, or one kept in
                // the history (the stable revision during a canary).
                let state = state::load(self.store.as_ref(), &format!("{}/{}", r.meta.namespace, r.meta.name))?;
                let template_json = if h == hash {
                    Some(stored.manifest["spec"]["template"].clone())
                } else {
                    state.as_ref().and_then(|s| s.revisions.by_hash(h)).map(|rev| rev.template.clone())
                };
                let Some(template_json) = template_json else {
                    tracing::warn!(rollout = %r.meta.name, revision = %h, "the revision's template is no longer known");
                    continue;
                };
                let mut manifest = stored.manifest.clone();
                manifest["spec"]["template"] = template_json.clone();
                let Object::Rollout(old) = records::object_of(&manifest)? else { unreachable!("a Rollout's document") };
                let template = old.template;
                for _ in have..n {
                    self.create_pod(&r.meta.namespace, &r.meta.name, EVENT_KIND, &template, &template_json["spec"], h)?;
                }
            }
        }
        Ok(())
    }

    /// Events for what changed in a rollout's status.
    fn status_events(&self, r: &RolloutSpec, old: Option<&StrategyStatus>, new: &StrategyStatus) {
        let (ns, name) = (&r.meta.namespace, &r.meta.name);
        for (warning, reason, message) in machine::changes(old, new, r) {
            self.event(EVENT_KIND, ns, name, warning, reason, message);
        }
    }

    /// `berth rollout pause|resume|promote|abort|restart|undo` on an Argo
    /// Rollout. A change of the strategy's status is persisted and the
    /// Services reprogrammed before this returns (a blue-green promote is
    /// the switch itself).
    pub async fn rollout_argo(
        self: &Arc<Self>,
        namespace: &str,
        name: &str,
        req: RolloutRequest,
    ) -> Result<serde_json::Value> {
        let key = format!("{namespace}/{name}");
        let guard = self.lock.lock().await;
        let mut stored = records::object(self.store.as_ref(), "Rollout", &key)?
            .ok_or_else(|| DeclaredError::NotFound(format!("rollout {name:?} not found in namespace {namespace}")))?;
        let Object::Rollout(r) = stored.object()? else { unreachable!("stored as a Rollout") };
        let mut state = state::load(self.store.as_ref(), &key)?.unwrap_or_default();
        let event = match req {
            RolloutRequest::Pause {} => Some(Ev::Pause),
            RolloutRequest::Resume {} => Some(Ev::Resume),
            RolloutRequest::Promote { full } => Some(Ev::Promote { full }),
            RolloutRequest::Abort {} => Some(Ev::Abort("aborted by the user".into())),
            RolloutRequest::Restart {} | RolloutRequest::Undo { .. } => None,
        };
        if let Some(ev) = event {
            let Some(status) = state.strategy.clone() else {
                return Err(DeclaredError::Conflict(format!(
                    "rollout {name:?} has not started yet; wait for its first pods"
                )));
            };
            let (status, _) = machine::next(&r, &status, ev, self.epoch_now())
                .map_err(|e| DeclaredError::Conflict(format!("rollout {name:?}: {e}")))?;
            self.status_events(&r, state.strategy.as_ref(), &status);
            state.strategy = Some(status);
            state::save(self.store.as_ref(), &key, &state)?;
        } else {
            let template = &mut stored.manifest["spec"]["template"];
            if let RolloutRequest::Undo { to_revision } = req {
                let revs = &state.revisions;
                let current = revs.current().map(|r| r.revision).unwrap_or(0);
                let target = match to_revision {
                    Some(0) | None => revs.revisions.iter().rev().find(|r| r.revision != current),
                    Some(n) => Some(revs.revision(n).ok_or_else(|| {
                        DeclaredError::NotFound(format!(
                            "unable to find the specified revision {n}; see 'berth rollout history rollout/{name}'"
                        ))
                    })?),
                }
                .ok_or_else(|| {
                    DeclaredError::Conflict(format!("rollout {name:?} has no previous revision to roll back to"))
                })?;
                if target.revision == current {
                    return Err(DeclaredError::Conflict(format!(
                        "rollout {name:?} already runs revision {current}; nothing to undo"
                    )));
                }
                *template = target.template.clone();
            } else {
                if !template["metadata"].is_object() {
                    template["metadata"] = serde_json::json!({});
                }
                template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
                    serde_json::json!(self.now());
            }
            stored.object()?;
            stored.generation += 1;
            self.store.put_object(
                &records::store_kind("Rollout"),
                &key,
                &serde_json::to_value(&stored).expect("serialises"),
            )?;
        }
        drop(guard);
        self.sync_services().await?;
        self.wake.notify_one();
        self.get("rollouts", namespace, name, false)
    }

    /// How Services in front of rollouts route, by the rollouts' states;
    /// with each rollout's key and the status the routes come from.
    pub(super) fn rollout_routes(&self) -> Result<Vec<(String, StrategyStatus, machine::RolloutRoute)>> {
        let mut out = Vec::new();
        for (key, _, o) in self.declared("Rollout")? {
            let Object::Rollout(r) = o else { continue };
            let Some(status) = state::load(self.store.as_ref(), &key)?.and_then(|s| s.strategy) else { continue };
            let route = machine::RolloutRoute::of(&r, &status);
            out.push((key, status, route));
        }
        Ok(out)
    }
}

/// A run's metrics: every metric of every template it names, with the
/// run's arguments rendered into the provider's text.
fn metrics_of(
    a: &AnalysisRef,
    templates: &[AnalysisTemplateSpec],
    namespace: &str,
) -> std::result::Result<Vec<Metric>, String> {
    let mut out = Vec::new();
    for name in &a.templates {
        let t = templates
            .iter()
            .find(|t| &t.meta.name == name && t.meta.namespace == namespace)
            .ok_or_else(|| format!("AnalysisTemplate {name:?} is not in namespace {namespace}; apply it"))?;
        let args = t.resolve_args(&a.args).map_err(|errors| {
            let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            format!("AnalysisTemplate {name:?}: {}", list.join("; "))
        })?;
        for m in &t.metrics {
            let mut m = m.clone();
            let render = |s: &str| {
                berth_manifest::model::render_args(s, &args).map_err(|e| format!("AnalysisTemplate {name:?}: {e}"))
            };
            m.provider = match m.provider {
                Provider::Prometheus { address, query } => {
                    Provider::Prometheus { address: render(&address)?, query: render(&query)? }
                }
                Provider::HttpCheck { path, port, measure } => {
                    Provider::HttpCheck { path: render(&path)?, port, measure }
                }
                other => other,
            };
            out.push(m);
        }
    }
    Ok(out)
}
