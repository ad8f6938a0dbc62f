use super::*;
use berth_manifest::model::{IntOrPercent, Strategy};
use berth_manifest::Object;

fn deployment(replicas: u32, strategy: &str) -> DeploymentSpec {
    let text = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
  strategy: {strategy}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: busybox
          ports: [{{containerPort: 8080, name: http}}]
"
    );
    match berth_manifest::load(&text).unwrap().remove(0) {
        Object::Deployment(d) => d,
        other => panic!("{other:?}"),
    }
}

fn pod(name: &str, hash: &str, ready: bool) -> PodFacts {
    PodFacts {
        name: name.into(),
        hash: hash.into(),
        ready,
        terminating: false,
        created: format!("2026-01-01T00:00:0{}Z", &name[name.len() - 1..]),
    }
}

fn rolling(replicas: u32) -> DeploymentSpec {
    deployment(replicas, "{type: RollingUpdate}")
}

#[test]
fn scales_up_and_down_within_one_template() {
    let d = rolling(3);
    assert_eq!(deployment_step(&d, "h1", &[]), Step { create: 3, delete: vec![] });
    let pods = [pod("a1", "h1", true), pod("a2", "h1", false)];
    assert_eq!(deployment_step(&d, "h1", &pods), Step { create: 1, delete: vec![] });
    // Scaling down removes unready pods first, then the newest.
    let pods = [pod("a1", "h1", true), pod("a2", "h1", false), pod("a3", "h1", true), pod("a4", "h1", true)];
    let d1 = rolling(1);
    assert_eq!(deployment_step(&d1, "h1", &pods).delete, vec!["a2", "a4", "a3"]);
    // Steady state: nothing to do, and terminating pods are not counted.
    let mut pods = vec![pod("a1", "h1", true), pod("a2", "h1", true), pod("a3", "h1", true)];
    assert!(deployment_step(&d, "h1", &pods).is_empty());
    pods[2].terminating = true;
    assert_eq!(deployment_step(&d, "h1", &pods), Step { create: 1, delete: vec![] });
}

/// Kubernetes' default (25% surge, 25% unavailable) on 3 replicas replaces
/// one pod at a time and never drops below 3 ready.
#[test]
fn rolling_update_replaces_one_at_a_time_without_losing_availability() {
    let d = rolling(3);
    assert_eq!(d.strategy, Strategy::DEFAULT);
    let mut pods = vec![pod("o1", "old", true), pod("o2", "old", true), pod("o3", "old", true)];
    let mut created = 0;
    for round in 0..20 {
        let step = deployment_step(&d, "new", &pods);
        if step.is_empty() && pods.iter().all(|p| p.hash == "new" && p.ready) {
            break;
        }
        assert!(round < 19, "no progress: {pods:?}");
        // At most one pod above the count.
        assert!(pods.len() + step.create as usize <= 4, "{step:?} on {pods:?}");
        pods.retain(|p| !step.delete.contains(&p.name));
        assert!(pods.iter().filter(|p| p.ready).count() >= 3, "availability dropped: {pods:?}");
        for _ in 0..step.create {
            created += 1;
            pods.push(pod(&format!("n{created}"), "new", false));
        }
        // The new pods become ready before the next look.
        if step.delete.is_empty() {
            for p in pods.iter_mut() {
                p.ready = true;
            }
        }
    }
    assert_eq!(created, 3);
    assert_eq!(pods.len(), 3);
}

#[test]
fn rolling_update_with_unavailable_budget_removes_before_it_creates() {
    let mut d = rolling(3);
    d.strategy = Strategy::RollingUpdate { max_surge: IntOrPercent::Count(0), max_unavailable: IntOrPercent::Count(1) };
    let pods = [pod("o1", "old", true), pod("o2", "old", true), pod("o3", "old", true)];
    assert_eq!(deployment_step(&d, "new", &pods), Step { create: 0, delete: vec!["o1".into()] });
    let pods = [pod("o2", "old", true), pod("o3", "old", true)];
    assert_eq!(deployment_step(&d, "new", &pods), Step { create: 1, delete: vec![] });
    // A new pod that never becomes ready stops the rollout where it is.
    let pods = [pod("o2", "old", true), pod("o3", "old", true), pod("n1", "new", false)];
    assert!(deployment_step(&d, "new", &pods).is_empty());
}

#[test]
fn unready_old_pods_go_first_and_cost_no_availability() {
    let d = rolling(3);
    let pods = [pod("o1", "old", false), pod("o2", "old", true), pod("o3", "old", true)];
    let step = deployment_step(&d, "new", &pods);
    assert_eq!(step.delete, vec!["o1"]);
    assert_eq!(step.create, 1);
}

#[test]
fn recreate_removes_everything_old_and_waits_for_it() {
    let d = deployment(2, "{type: Recreate}");
    let mut pods = vec![pod("o1", "old", true), pod("o2", "old", true)];
    assert_eq!(deployment_step(&d, "new", &pods), Step { create: 0, delete: vec!["o1".into(), "o2".into()] });
    pods.iter_mut().for_each(|p| p.terminating = true);
    assert!(deployment_step(&d, "new", &pods).is_empty());
    assert_eq!(deployment_step(&d, "new", &[]), Step { create: 2, delete: vec![] });
}

#[test]
fn replaying_a_step_after_a_crash_is_harmless() {
    // The step was taken (pod created, old one marked) before the crash;
    // the facts show it, and the next look does not repeat it.
    let d = rolling(3);
    let pods = [pod("o1", "old", true), pod("o2", "old", true), pod("o3", "old", true), pod("n1", "new", false)];
    assert!(deployment_step(&d, "new", &pods).is_empty());
}

fn service(text: &str) -> ServiceSpec {
    match berth_manifest::load(text).unwrap().remove(0) {
        Object::Service(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn backends_are_the_ready_pods_weighted_equally() {
    let d = rolling(3);
    let svc = service(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{name: web, port: 80, targetPort: http}, {name: raw, port: 81, targetPort: 9000}]}\n",
    );
    let ep = |name: &'static str, ip: [u8; 4], ready: bool, terminating: bool| Endpoint {
        name,
        ip: Some(Ipv4Addr::from(ip)),
        ready,
        terminating,
        template: &d.template,
        hash: "h1",
    };
    let pods = [
        ep("a", [10, 0, 0, 3], true, false),
        ep("b", [10, 0, 0, 2], true, false),
        ep("c", [10, 0, 0, 4], false, false),
        ep("d", [10, 0, 0, 5], true, true),
        ep("e", [10, 0, 0, 6], true, false),
    ];
    let b = service_backends(&svc, 0, &pods, Route::All);
    let got: Vec<(String, u16, u8)> = b.iter().map(|b| (b.addr.to_string(), b.port, b.weight)).collect();
    assert_eq!(got, vec![("10.0.0.2".into(), 8080, 34), ("10.0.0.3".into(), 8080, 33), ("10.0.0.6".into(), 8080, 33)]);
    assert!(service_backends(&svc, 1, &pods, Route::All).iter().all(|b| b.port == 9000));
    assert!(service_backends(&svc, 0, &[], Route::All).is_empty());
    assert!(service_backends(&svc, 7, &pods, Route::All).is_empty());
}

#[test]
fn a_rollout_route_splits_by_revision_whatever_the_pod_counts() {
    let d = rolling(3);
    let svc = service("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n");
    let ep = |name: &'static str, ip: u8, hash: &'static str, ready: bool| Endpoint {
        name,
        ip: Some(Ipv4Addr::new(10, 0, 0, ip)),
        ready,
        terminating: false,
        template: &d.template,
        hash,
    };
    let pods = [
        ep("s1", 2, "old", true),
        ep("s2", 3, "old", true),
        ep("s3", 4, "old", true),
        ep("s4", 5, "old", true),
        ep("c1", 6, "new", true),
        ep("c2", 7, "new", false),
        ep("x1", 8, "other", true),
    ];
    let weight_of = |b: &[berth_core::net::Backend], hash_ips: &[u8]| -> u32 {
        b.iter().filter(|b| hash_ips.contains(&b.addr.octets()[3])).map(|b| u32::from(b.weight)).sum()
    };
    for w in [0u8, 1, 20, 50, 99, 100] {
        let b = service_backends(&svc, 0, &pods, Route::Split { stable: "old", canary: "new", weight: w });
        assert_eq!(weight_of(&b, &[6]), u32::from(w), "weight {w}");
        assert_eq!(weight_of(&b, &[2, 3, 4, 5]), 100 - u32::from(w), "weight {w}");
        assert!(b.iter().all(|b| ![7, 8].contains(&b.addr.octets()[3])), "unready and foreign pods stay out");
    }
    // A canary with no ready pod gets nothing, whatever its weight.
    let stable_only = service_backends(&svc, 0, &pods[..4], Route::Split { stable: "old", canary: "new", weight: 50 });
    assert_eq!(weight_of(&stable_only, &[2, 3, 4, 5]), 100);
    let only = service_backends(&svc, 0, &pods, Route::Only("new"));
    assert_eq!(only.iter().map(|b| (b.addr.octets()[3], b.weight)).collect::<Vec<_>>(), vec![(6, 100)]);
}

#[test]
fn a_named_target_port_the_pod_lacks_leaves_it_out() {
    let d = rolling(1);
    assert_eq!(target_port(&TargetPort::Name("http".into()), Protocol::Tcp, &d.template), Some(8080));
    assert_eq!(target_port(&TargetPort::Name("grpc".into()), Protocol::Tcp, &d.template), None);
    assert_eq!(target_port(&TargetPort::Name("http".into()), Protocol::Udp, &d.template), None);
}

mod containers {
    use super::super::*;
    use crate::CrashBackoff;
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    fn at(s: u64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
            + chrono::Duration::seconds(s as i64)
    }

    fn ts(s: u64) -> String {
        at(s).to_rfc3339()
    }

    fn backoff() -> CrashBackoff {
        CrashBackoff::try_new(Duration::from_secs(10), Duration::from_secs(300), Duration::from_secs(600)).unwrap()
    }

    fn exited<'a>(code: i32, started: &'a str, finished: &'a str) -> Observed<'a> {
        Observed::Exited { exit_code: code, oom_killed: false, started_at: Some(started), finished_at: finished }
    }

    #[test]
    fn a_new_container_is_created_and_a_running_one_probed() {
        let st = PodContainer::default();
        assert_eq!(container_step(&st, Observed::Missing, false, at(0), &backoff()), ContainerStep::Create);
        assert_eq!(container_step(&st, Observed::Running, false, at(0), &backoff()), ContainerStep::Probe);
        // Created but never started (the daemon died in between): start it.
        assert_eq!(
            container_step(&st, Observed::Created, false, at(0), &backoff()),
            ContainerStep::Restart { after_exit: false }
        );
    }

    /// Crash, back-off, restart, crash again: the delays double, and an
    /// exit seen again after a daemon restart is not counted twice.
    #[test]
    fn crashes_back_off_doubling_and_replays_are_harmless() {
        let mut st = PodContainer::default();
        let (s0, f0) = (ts(0), ts(1));
        let ContainerStep::BackOff { exit, delay } = container_step(&st, exited(1, &s0, &f0), false, at(1), &backoff())
        else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(10));
        assert_eq!(exit.reason, "Error");
        st.last_exit = Some(exit);
        st.backoff_ms = Some(10_000);
        st.backoff_until = Some(ts(11));
        // The same exit seen again (a replay after a crash): just wait.
        assert_eq!(
            container_step(&st, exited(1, &s0, &f0), false, at(5), &backoff()),
            ContainerStep::Wait(Duration::from_secs(6))
        );
        assert_eq!(
            container_step(&st, exited(1, &s0, &f0), false, at(11), &backoff()),
            ContainerStep::Restart { after_exit: true }
        );
        // It crashes again 2 s after the restart: 20 s.
        let (s1, f1) = (ts(11), ts(13));
        let ContainerStep::BackOff { delay, .. } = container_step(&st, exited(1, &s1, &f1), false, at(13), &backoff())
        else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(20));
        // After 10 minutes of clean running the back-off starts over.
        let (s2, f2) = (ts(100), ts(800));
        let ContainerStep::BackOff { delay, .. } = container_step(&st, exited(1, &s2, &f2), false, at(800), &backoff())
        else {
            panic!()
        };
        assert_eq!(delay, Duration::from_secs(10));
    }

    #[test]
    fn init_containers_complete_on_zero_and_retry_on_failure() {
        let mut st = PodContainer::default();
        let (s, f) = (ts(0), ts(2));
        let step = container_step(&st, exited(0, &s, &f), true, at(2), &backoff());
        let ContainerStep::Completed(exit) = step else { panic!("{step:?}") };
        assert_eq!(exit.reason, "Completed");
        st.last_exit = Some(exit);
        st.completed = true;
        assert!(matches!(container_step(&st, exited(0, &s, &f), true, at(9), &backoff()), ContainerStep::Completed(_)));
        let fresh = PodContainer::default();
        assert!(matches!(
            container_step(&fresh, exited(2, &s, &f), true, at(2), &backoff()),
            ContainerStep::BackOff { .. }
        ));
        // An app container that exits 0 is restarted too (restartPolicy Always).
        assert!(matches!(
            container_step(&fresh, exited(0, &s, &f), false, at(2), &backoff()),
            ContainerStep::BackOff { .. }
        ));
    }

    #[test]
    fn a_removed_container_is_made_again_after_its_back_off() {
        let st = PodContainer { backoff_until: Some(ts(30)), ..Default::default() };
        assert_eq!(
            container_step(&st, Observed::Missing, false, at(20), &backoff()),
            ContainerStep::Wait(Duration::from_secs(10))
        );
        assert_eq!(container_step(&st, Observed::Missing, false, at(30), &backoff()), ContainerStep::Create);
    }
}
