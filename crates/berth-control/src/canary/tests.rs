use super::*;
use berth_manifest::model::{AnalysisRef, IntOrPercent};
use proptest::prelude::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spec(steps: Vec<CanaryStep>) -> CanarySpec {
    CanarySpec {
        steps,
        analysis: None,
        max_surge: IntOrPercent::Percent(25),
        max_unavailable: IntOrPercent::Percent(25),
        stable_service: None,
        canary_service: None,
    }
}

fn analysis() -> CanaryStep {
    CanaryStep::Analysis(AnalysisRef { templates: vec!["ok".into()], args: Default::default() })
}

fn observe(sp: &CanarySpec, s: &CanaryStatus, now: u64, available: u32) -> (CanaryStatus, Desired) {
    next(sp, 4, s, Event::Observe { now: secs(now), canary_available: available }).unwrap()
}

fn start(sp: &CanarySpec) -> (CanaryStatus, Desired) {
    next(sp, 4, &CanaryStatus::stable("a"), Event::NewRevision { hash: "b".into() }).unwrap()
}

#[test]
fn steps_move_weight_only_once_the_canary_pods_are_there() {
    use CanaryStep::*;
    let sp = spec(vec![SetWeight(1), Pause(None), SetWeight(20), Pause(Some(secs(10))), SetWeight(50), SetWeight(100)]);
    let (s, d) = start(&sp);
    assert_eq!((d.canary_replicas, d.weight, d.stable_replicas), (1, 0, 4));
    let (s, d) = observe(&sp, &s, 1, 0);
    assert_eq!(d.weight, 0, "no canary pod yet: no traffic");
    let (s, d) = observe(&sp, &s, 2, 1);
    assert_eq!((s.step, d.weight), (1, 1), "1 % on one pod, then the indefinite pause");
    let (s, d) = observe(&sp, &s, 100, 1);
    assert_eq!((s.step, d.weight), (1, 1));
    // Only a pause can be promoted.
    let (s, _) = next(&sp, 4, &s, Event::Promote { full: false }).unwrap();
    assert_eq!(s.step, 2);
    assert_eq!(next(&sp, 4, &s, Event::Promote { full: false }).unwrap_err(), IllegalTransition::NotPaused);
    let (s, d) = observe(&sp, &s, 101, 1);
    assert_eq!((s.step, d.weight, d.wake_at), (3, 20, Some(secs(111))));
    let (s, d) = observe(&sp, &s, 111, 1);
    // 50 % of 4 needs 2 canary pods: the weight waits at 20.
    assert_eq!((s.step, d.weight, d.canary_replicas), (4, 20, 2));
    let (s, d) = observe(&sp, &s, 112, 2);
    assert_eq!((s.step, d.weight, d.canary_replicas), (5, 50, 4));
    let (s, d) = observe(&sp, &s, 113, 3);
    assert_eq!((s.step, d.weight), (5, 50));
    let (s, d) = observe(&sp, &s, 114, 4);
    assert!(d.complete, "{s:?}");
    assert_eq!(s, CanaryStatus::stable("b"));
    assert_eq!((d.stable_replicas, d.canary_replicas, d.weight), (4, 0, 0));
}

#[test]
fn abort_sends_every_connection_back_to_stable_at_once_and_resume_retries() {
    use CanaryStep::*;
    let sp = spec(vec![SetWeight(50), Pause(None)]);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 2);
    assert_eq!(d.weight, 50);
    let (s, d) = next(&sp, 4, &s, Event::Abort { reason: "by hand".into() }).unwrap();
    assert_eq!((d.weight, d.canary_replicas, d.stable_replicas, d.complete), (0, 0, 4, false));
    assert_eq!(s.aborted.as_deref(), Some("by hand"));
    // Looking again changes nothing while aborted.
    let (s2, d) = observe(&sp, &s, 2, 2);
    assert_eq!((s2, d.weight), (s.clone(), 0));
    assert_eq!(next(&sp, 4, &s, Event::Promote { full: true }).unwrap_err(), IllegalTransition::Aborted);
    let (s, _) = next(&sp, 4, &s, Event::Resume).unwrap();
    assert_eq!((s.step, s.aborted.clone()), (0, None));
    let (_, d) = observe(&sp, &s, 3, 2);
    assert_eq!(d.weight, 50);
}

#[test]
fn step_analysis_gates_the_next_step() {
    use CanaryStep::*;
    let sp = spec(vec![SetWeight(25), analysis(), SetWeight(100)]);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 1);
    assert_eq!((d.weight, d.step_analysis), (25, Some(1)));
    // A result for another step is ignored.
    let (s, _) = next(&sp, 4, &s, Event::StepAnalysis { step: 0, outcome: AnalysisOutcome::Successful }).unwrap();
    assert_eq!(s.step, 1);
    // Inconclusive holds until a person promotes.
    let (held, d) = next(&sp, 4, &s, Event::StepAnalysis { step: 1, outcome: AnalysisOutcome::Inconclusive }).unwrap();
    assert_eq!((held.hold, d.weight), (Some(Hold::Inconclusive), 25));
    let (p, _) = next(&sp, 4, &held, Event::Promote { full: false }).unwrap();
    assert_eq!((p.step, p.hold, p.analysis_step), (2, None, None));
    // Success moves on; failure aborts.
    let (ok, _) = next(&sp, 4, &s, Event::StepAnalysis { step: 1, outcome: AnalysisOutcome::Successful }).unwrap();
    assert_eq!(ok.step, 2);
    let (bad, d) =
        next(&sp, 4, &s, Event::StepAnalysis { step: 1, outcome: AnalysisOutcome::Failed("error rate 0.3".into()) })
            .unwrap();
    assert_eq!(d.weight, 0);
    assert!(bad.aborted.as_deref().unwrap().contains("error rate 0.3"));
}

#[test]
fn a_failed_background_analysis_aborts_and_user_pause_holds() {
    use CanaryStep::*;
    let sp = spec(vec![SetWeight(20), Pause(Some(secs(60))), SetWeight(100)]);
    let (s, _) = start(&sp);
    let (s, _) = observe(&sp, &s, 1, 1);
    let (held, _) = next(&sp, 4, &s, Event::Pause).unwrap();
    // Held: the timed pause does not end.
    let (held, d) = observe(&sp, &held, 500, 1);
    assert_eq!((held.step, d.weight), (1, 20));
    let (resumed, _) = next(&sp, 4, &held, Event::Resume).unwrap();
    let (r, _) = observe(&sp, &resumed, 501, 1);
    assert_eq!(r.step, 2);
    let (bad, d) =
        next(&sp, 4, &s, Event::BackgroundAnalysis { outcome: AnalysisOutcome::Failed("p99 800 ms".into()) }).unwrap();
    assert_eq!(d.weight, 0);
    assert!(bad.aborted.is_some());
    assert_eq!(next(&sp, 4, &CanaryStatus::stable("a"), Event::Resume).unwrap_err(), IllegalTransition::NotHeld);
}

#[test]
fn canary_scale_and_full_promotion() {
    use CanaryStep::*;
    let sp = spec(vec![SetCanaryScale(CanaryScale::Replicas(3)), SetWeight(5), Pause(None), SetWeight(60)]);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 0);
    assert_eq!((d.canary_replicas, d.weight), (3, 0));
    let (s, d) = observe(&sp, &s, 2, 3);
    assert_eq!((d.canary_replicas, d.weight, s.step), (3, 5, 2));
    let (s, d) = next(&sp, 4, &s, Event::Promote { full: true }).unwrap();
    assert_eq!((s.step, d.canary_replicas), (4, 4));
    let (s, d) = observe(&sp, &s, 3, 4);
    assert!(d.complete);
    assert_eq!(s.stable, "b");
}

#[test]
fn a_new_revision_mid_canary_restarts_and_the_stable_one_ends_it() {
    use CanaryStep::*;
    let sp = spec(vec![SetWeight(50), Pause(None)]);
    let (s, _) = start(&sp);
    let (s, _) = observe(&sp, &s, 1, 2);
    let (c, d) = next(&sp, 4, &s, Event::NewRevision { hash: "c".into() }).unwrap();
    assert_eq!((c.stable.as_str(), c.canary.as_str(), c.step, d.weight), ("a", "c", 0, 0));
    let (back, d) = next(&sp, 4, &s, Event::NewRevision { hash: "a".into() }).unwrap();
    assert_eq!(back, CanaryStatus::stable("a"));
    assert!(d.complete);
    // The same revision again changes nothing.
    let (same, _) = next(&sp, 4, &s, Event::NewRevision { hash: "b".into() }).unwrap();
    assert_eq!(same, s);
}

#[test]
fn canary_replicas_round_up_and_keep_one_pod_for_any_weight() {
    assert_eq!(canary_replicas(4, 1, None), 1);
    assert_eq!(canary_replicas(4, 0, None), 0);
    assert_eq!(canary_replicas(4, 26, None), 2);
    assert_eq!(canary_replicas(10, 100, None), 10);
    assert_eq!(canary_replicas(4, 1, Some(CanaryScale::Weight(50))), 2);
    assert_eq!(canary_replicas(4, 1, Some(CanaryScale::MatchTrafficWeight)), 1);
}

proptest! {
    /// Whatever the pods do, the canary never gets a weight its available
    /// pods could not take, and the status survives a replay (the same
    /// event applied to the stored status gives the same answer).
    #[test]
    fn weight_never_outruns_available_pods(available in prop::collection::vec(0u32..5, 1..40)) {
        use CanaryStep::*;
        let sp = spec(vec![SetWeight(10), SetWeight(30), Pause(Some(secs(2))), SetWeight(60), SetWeight(100)]);
        let (mut s, _) = start(&sp);
        for (i, a) in available.iter().enumerate() {
            let before = s.weight;
            let (n, d) = observe(&sp, &s, i as u64, *a);
            let (again, d2) = observe(&sp, &s, i as u64, *a);
            prop_assert_eq!(&n, &again);
            prop_assert_eq!(&d, &d2);
            if d.weight > before && !d.complete {
                prop_assert!(*a >= canary_replicas(4, d.weight, n.scale));
            }
            s = n;
        }
    }
}
