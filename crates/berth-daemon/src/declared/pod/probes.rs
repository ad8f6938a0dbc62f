//! A pod's probes: startup, liveness and readiness, run on the pod
//! worker's clock, and what their results change.

use super::*;

impl Worker {
    /// Runs the container's due probes and acts on their verdict.
    pub(super) async fn probe(&mut self, pod: &mut PodRecord, c: &ContainerSpec, id: &str) -> Duration {
        let now_v = self.clock();
        let st = pod.container(&c.name).clone();
        let inst = self.instances.entry(c.name.clone()).or_insert_with(|| Instance {
            // Found running: adopted with the verdict it had.
            id: id.to_string(),
            health: ContainerHealth::adopted(c, now_v, st.started, st.ready),
        });
        if inst.id != id {
            inst.id = id.to_string();
            inst.health = ContainerHealth::new(c, now_v);
        }
        let ip = pod.ip.as_deref().and_then(|i| i.parse().ok());
        let due: Vec<ProbeKind> =
            inst.health.due(now_v).into_iter().filter(|(_, at)| *at <= now_v).map(|(k, _)| k).collect();
        for kind in due {
            let Some(tracker) = inst.health.tracker(kind) else { continue };
            let spec = tracker.spec().clone();
            let target = crate::probes::Target { container: id, ip };
            let (result, detail) =
                crate::probes::run(&self.d.containers, self.d.probes.as_ref(), &spec.handler, &target, spec.timeout)
                    .await;
            let at = self.origin.elapsed();
            let health = inst.health.observe(kind, result, at);
            if kind == ProbeKind::Readiness {
                let mut counts = self.d.probe_counts.lock().unwrap_or_else(|p| p.into_inner());
                let c = counts.entry(pod.key()).or_default();
                c.0 += u64::from(result == ProbeResult::Success);
                c.1 += 1;
            }
            if result != ProbeResult::Success {
                let name = match kind {
                    ProbeKind::Startup => "Startup",
                    ProbeKind::Liveness => "Liveness",
                    ProbeKind::Readiness => "Readiness",
                };
                self.d.event(
                    "pod",
                    &pod.namespace,
                    &pod.name,
                    true,
                    "Unhealthy",
                    format!("{name} probe failed: {detail}"),
                );
            }
            if let Some(cause) = health.restart {
                self.d.event(
                    "pod",
                    &pod.namespace,
                    &pod.name,
                    false,
                    "Killing",
                    format!("Container {} {}, will be restarted", c.name, cause.to_string().to_lowercase()),
                );
                let s = pod.container(&c.name);
                s.ready = false;
                s.started = false;
                let _ = records::put_pod(self.d.store.as_ref(), pod);
                let grace = pod.template.termination_grace_period.as_secs() as u32;
                let containers = Arc::clone(&self.d.containers);
                let id = id.to_string();
                let _ = containers.stop(&id, Some(grace)).await;
                return Duration::ZERO;
            }
        }
        let health = inst.health.health();
        let s = pod.container(&c.name);
        s.started = health.started;
        s.ready = health.ready;
        s.waiting = None;
        let t = self.origin.elapsed();
        let next = inst.health.next_due(t).map(|(_, at)| at.saturating_sub(t));
        next.unwrap_or(Duration::from_secs(5)).max(Duration::from_millis(20))
    }
}
