use super::*;
use berth_manifest::model::{ProbeHandler, ProbeKind};
use proptest::prelude::*;

const S: ProbeResult = ProbeResult::Success;
const F: ProbeResult = ProbeResult::Failure;
const T: ProbeResult = ProbeResult::Timeout;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spec(kind: ProbeKind, delay: u64, period: u64, success: u32, failure: u32) -> ProbeSpec {
    ProbeSpec {
        kind,
        handler: ProbeHandler::TcpSocket { port: 80 },
        initial_delay: secs(delay),
        period: secs(period),
        timeout: secs(1),
        success_threshold: success,
        failure_threshold: failure,
    }
}

/// Feeds results one period apart, starting at `start`.
fn feed(t: &mut ProbeTracker, start: u64, period: u64, results: &[ProbeResult]) -> Vec<ProbeState> {
    results.iter().enumerate().map(|(i, r)| t.observe(*r, secs(start + period * i as u64))).collect()
}

#[test]
fn failure_threshold_needs_consecutive_failures() {
    let mut t = ProbeTracker::new(spec(ProbeKind::Liveness, 0, 10, 1, 3), secs(0));
    use ProbeState::{Failure as Fl, Success as Ok, Unknown as Un};
    assert_eq!(feed(&mut t, 0, 10, &[F, F, S, F, F, T, S]), vec![Un, Un, Ok, Ok, Ok, Fl, Ok]);
    assert_eq!(t.streak(), Some((ProbeResult::Success, 1)));
}

#[test]
fn success_threshold_needs_consecutive_successes() {
    let mut t = ProbeTracker::new(spec(ProbeKind::Readiness, 0, 5, 3, 1), secs(100));
    use ProbeState::{Failure as Fl, Success as Ok, Unknown as Un};
    assert_eq!(feed(&mut t, 100, 5, &[S, S, F, S, S, S, S, T]), vec![Un, Un, Fl, Fl, Fl, Ok, Ok, Fl]);
}

#[test]
fn initial_delay_and_period_schedule_runs() {
    let mut t = ProbeTracker::new(spec(ProbeKind::Readiness, 15, 10, 1, 3), secs(100));
    assert_eq!(t.next_due(secs(100)), secs(115));
    // A result before the delay is ignored.
    assert_eq!(t.observe(S, secs(110)), ProbeState::Unknown);
    assert_eq!(t.next_due(secs(110)), secs(115));
    assert_eq!(t.observe(S, secs(115)), ProbeState::Success);
    assert_eq!(t.next_due(secs(116)), secs(125));
    // Overdue: due now.
    assert_eq!(t.next_due(secs(300)), secs(300));
}

#[test]
fn no_probes_means_started_and_ready_at_once() {
    let h = ContainerHealth::from_probes(None, None, None, secs(7));
    assert_eq!(h.health(), Health { started: true, ready: true, restart: None });
    assert_eq!(h.next_due(secs(7)), None);
}

#[test]
fn startup_probe_gates_liveness_and_readiness() {
    let mut h = ContainerHealth::from_probes(
        Some(spec(ProbeKind::Startup, 0, 2, 1, 5)),
        Some(spec(ProbeKind::Liveness, 10, 10, 1, 3)),
        Some(spec(ProbeKind::Readiness, 0, 5, 1, 3)),
        secs(0),
    );
    assert_eq!(h.due(secs(0)), vec![(ProbeKind::Startup, secs(0))]);
    // Liveness and readiness results before startup passes do not count.
    for i in 0..5 {
        h.observe(ProbeKind::Liveness, F, secs(i));
        h.observe(ProbeKind::Readiness, S, secs(i));
    }
    assert_eq!(h.health(), Health { started: false, ready: false, restart: None });
    assert_eq!(h.tracker(ProbeKind::Liveness).unwrap().streak(), None);

    h.observe(ProbeKind::Startup, F, secs(0));
    h.observe(ProbeKind::Startup, F, secs(2));
    let after = h.observe(ProbeKind::Startup, S, secs(4));
    assert_eq!(after, Health { started: true, ready: false, restart: None });
    // Now liveness (initial delay 10 s from the container start) and readiness run.
    assert_eq!(h.due(secs(4)), vec![(ProbeKind::Liveness, secs(10)), (ProbeKind::Readiness, secs(4))]);
    assert_eq!(h.next_due(secs(4)), Some((ProbeKind::Readiness, secs(4))));
    assert!(h.observe(ProbeKind::Readiness, S, secs(4)).ready);
    // Further startup results are ignored.
    assert!(h.observe(ProbeKind::Startup, F, secs(5)).ready);
    // Readiness failing three times takes the container out of service, without a restart.
    h.observe(ProbeKind::Readiness, F, secs(9));
    h.observe(ProbeKind::Readiness, F, secs(14));
    assert_eq!(h.observe(ProbeKind::Readiness, F, secs(19)), Health { started: true, ready: false, restart: None });
    assert!(h.observe(ProbeKind::Readiness, S, secs(24)).ready);
}

#[test]
fn startup_failure_asks_for_a_restart() {
    let mut h = ContainerHealth::from_probes(Some(spec(ProbeKind::Startup, 0, 1, 1, 3)), None, None, secs(0));
    h.observe(ProbeKind::Startup, T, secs(0));
    h.observe(ProbeKind::Startup, F, secs(1));
    let health = h.observe(ProbeKind::Startup, F, secs(2));
    assert_eq!(health.restart, Some(RestartCause::StartupProbeFailed));
    assert!(!health.started);
    assert!(h.due(secs(3)).is_empty());
    assert_eq!(RestartCause::StartupProbeFailed.to_string(), "Startup probe failed");
}

#[test]
fn liveness_failure_asks_for_a_restart_and_stays() {
    let mut h = ContainerHealth::from_probes(None, Some(spec(ProbeKind::Liveness, 0, 10, 1, 3)), None, secs(0));
    assert!(h.health().ready);
    h.observe(ProbeKind::Liveness, F, secs(0));
    h.observe(ProbeKind::Liveness, S, secs(10));
    h.observe(ProbeKind::Liveness, F, secs(20));
    h.observe(ProbeKind::Liveness, F, secs(30));
    assert_eq!(h.health().restart, None, "failures must be consecutive");
    let health = h.observe(ProbeKind::Liveness, T, secs(40));
    assert_eq!(health, Health { started: true, ready: false, restart: Some(RestartCause::LivenessProbeFailed) });
    assert_eq!(h.observe(ProbeKind::Liveness, S, secs(50)).restart, Some(RestartCause::LivenessProbeFailed));
}

/// The reference: the state changes to a result once the last `threshold`
/// results were all that result.
fn reference(results: &[bool], success: u32, failure: u32) -> ProbeState {
    let mut state = ProbeState::Unknown;
    for i in 0..results.len() {
        let r = results[i];
        let need = if r { success } else { failure } as usize;
        if i + 1 >= need && results[i + 1 - need..=i].iter().all(|x| *x == r) {
            state = if r { ProbeState::Success } else { ProbeState::Failure };
        }
    }
    state
}

proptest! {
    #[test]
    fn tracker_matches_the_reference(results in prop::collection::vec(any::<bool>(), 0..40), success in 1u32..5, failure in 1u32..5) {
        let mut t = ProbeTracker::new(spec(ProbeKind::Readiness, 0, 1, success, failure), secs(0));
        for (i, ok) in results.iter().enumerate() {
            let got = t.observe(if *ok { S } else { F }, secs(i as u64));
            prop_assert_eq!(got, reference(&results[..=i], success, failure));
        }
    }

    #[test]
    fn next_due_is_never_in_the_past(delay in 0u64..30, period in 1u64..30, runs in prop::collection::vec(0u64..100, 0..10), now in 0u64..500) {
        let mut t = ProbeTracker::new(spec(ProbeKind::Liveness, delay, period, 1, 3), secs(5));
        let mut at = 0;
        for gap in runs {
            at += gap;
            t.observe(S, secs(at));
        }
        let due = t.next_due(secs(now));
        prop_assert!(due >= secs(now));
        prop_assert!(due >= secs(5 + delay));
    }
}

#[test]
fn adopted_container_keeps_its_verdict_until_new_results() {
    let ready = spec(ProbeKind::Readiness, 0, 10, 1, 2);
    let startup = spec(ProbeKind::Startup, 0, 10, 1, 3);
    let h = ContainerHealth::from_probes(Some(startup.clone()), None, Some(ready.clone()), secs(0));
    assert!(!h.health().ready);
    let mut c = ContainerSpec {
        name: "web".into(),
        image: berth_core::ImageRef::parse("busybox").unwrap(),
        pull_policy: berth_manifest::model::PullPolicy::IfNotPresent,
        command: vec![],
        args: vec![],
        working_dir: None,
        env: vec![],
        env_from: vec![],
        ports: vec![],
        resources: Default::default(),
        volume_mounts: vec![],
        startup_probe: Some(startup),
        liveness_probe: None,
        readiness_probe: Some(ready),
        pre_stop: None,
        security: Default::default(),
    };
    let mut h = ContainerHealth::adopted(&c, secs(50), true, true);
    assert_eq!(h.health(), Health { started: true, ready: true, restart: None });
    assert_eq!(h.next_due(secs(50)).map(|(k, _)| k), Some(ProbeKind::Readiness));
    // One failure is below the threshold of 2: still ready.
    assert!(h.observe(ProbeKind::Readiness, F, secs(60)).ready);
    assert!(!h.observe(ProbeKind::Readiness, F, secs(70)).ready);
    // Not ready before the restart: probes decide again from scratch.
    c.startup_probe = None;
    assert!(!ContainerHealth::adopted(&c, secs(50), true, false).health().ready);
}
