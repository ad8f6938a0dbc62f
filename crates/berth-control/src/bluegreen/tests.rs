use super::*;
use berth_manifest::model::AnalysisRef;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn spec(auto: bool, delay: Option<u64>, pre: bool, post: bool) -> BlueGreenSpec {
    let a = || AnalysisRef { templates: vec!["t".into()], args: Default::default() };
    BlueGreenSpec {
        active_service: "web".into(),
        preview_service: Some("web-preview".into()),
        auto_promotion_enabled: auto,
        auto_promotion_delay: delay.map(secs),
        scale_down_delay: secs(30),
        pre_promotion_analysis: pre.then(a),
        post_promotion_analysis: post.then(a),
    }
}

fn ev(sp: &BlueGreenSpec, s: &BlueGreenStatus, e: Event) -> (BlueGreenStatus, Desired) {
    next(sp, 2, s, e).unwrap()
}

fn observe(sp: &BlueGreenSpec, s: &BlueGreenStatus, now: u64, available: u32) -> (BlueGreenStatus, Desired) {
    ev(sp, s, Event::Observe { now: secs(now), preview_available: available })
}

fn start(sp: &BlueGreenSpec) -> (BlueGreenStatus, Desired) {
    ev(sp, &BlueGreenStatus::stable("blue"), Event::NewRevision { hash: "green".into() })
}

fn pods(d: &Desired) -> Vec<(&str, u32)> {
    d.replicas.iter().map(|(h, n)| (h.as_str(), *n)).collect()
}

#[test]
fn green_comes_up_beside_blue_then_one_switch_then_blue_scales_down() {
    let sp = spec(true, None, false, false);
    let (s, d) = start(&sp);
    assert_eq!((d.active.as_str(), d.preview.as_str()), ("blue", "green"));
    assert_eq!(pods(&d), vec![("blue", 2), ("green", 2)]);
    let (s, d) = observe(&sp, &s, 1, 1);
    assert_eq!(d.active, "blue", "not every green pod is ready");
    let (s, d) = observe(&sp, &s, 2, 2);
    assert_eq!(d.active, "green", "switched in one step");
    assert_eq!(pods(&d), vec![("green", 2), ("blue", 2)]);
    assert_eq!(d.wake_at, Some(secs(32)));
    let (s, d) = observe(&sp, &s, 31, 2);
    assert_eq!(pods(&d).len(), 2, "blue runs through the scale-down delay");
    let (s, d) = observe(&sp, &s, 32, 2);
    assert!(d.complete);
    assert_eq!(s, BlueGreenStatus::stable("green"));
    assert_eq!(pods(&d), vec![("green", 2)]);
}

#[test]
fn without_auto_promotion_it_waits_for_promote() {
    let sp = spec(false, None, false, false);
    let (s, _) = start(&sp);
    assert_eq!(
        next(&sp, 2, &s, Event::Promote { now: secs(0), full: false }).unwrap_err(),
        IllegalTransition::NotPaused
    );
    let (s, d) = observe(&sp, &s, 5, 2);
    assert_eq!(d.active, "blue");
    let (s, d) = ev(&sp, &s, Event::Promote { now: secs(6), full: false });
    assert_eq!(d.active, "green");
    assert_eq!(s.switched_from, Some(("blue".into(), secs(6))));
}

#[test]
fn auto_promotion_waits_its_delay() {
    let sp = spec(true, Some(20), false, false);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 10, 2);
    assert_eq!((d.active.as_str(), d.wake_at), ("blue", Some(secs(30))));
    let (_, d) = observe(&sp, &s, 30, 2);
    assert_eq!(d.active, "green");
}

#[test]
fn pre_promotion_analysis_gates_the_switch_and_failure_drops_green() {
    let sp = spec(true, None, true, false);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 2);
    assert_eq!((d.active.as_str(), d.analysis), ("blue", Some(Phase::PrePromotion)));
    let ok = Event::Analysis { phase: Phase::PrePromotion, outcome: AnalysisOutcome::Successful, now: secs(2) };
    let (_, d) = ev(&sp, &s, ok);
    assert_eq!(d.active, "green");
    let bad =
        Event::Analysis { phase: Phase::PrePromotion, outcome: AnalysisOutcome::Failed("500s".into()), now: secs(2) };
    let (aborted, d) = ev(&sp, &s, bad);
    assert_eq!(d.active, "blue");
    assert_eq!(pods(&d), vec![("blue", 2), ("green", 0)]);
    assert!(aborted.aborted.as_deref().unwrap().contains("pre-promotion"));
    // Resume tries again.
    let (again, d) = ev(&sp, &aborted, Event::Resume);
    assert_eq!(pods(&d), vec![("blue", 2), ("green", 2)]);
    assert!(again.aborted.is_none());
}

#[test]
fn a_failed_post_promotion_analysis_switches_straight_back_to_blue() {
    let sp = spec(true, None, false, true);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 2);
    assert_eq!((d.active.as_str(), d.analysis), ("green", Some(Phase::PostPromotion)));
    // Blue is kept while the analysis runs, even past the delay.
    let (s, d) = observe(&sp, &s, 100, 2);
    assert_eq!(pods(&d), vec![("green", 2), ("blue", 2)]);
    let bad =
        Event::Analysis { phase: Phase::PostPromotion, outcome: AnalysisOutcome::Failed("p99".into()), now: secs(101) };
    let (back, d) = ev(&sp, &s, bad);
    assert_eq!(d.active, "blue");
    assert_eq!(pods(&d), vec![("blue", 2), ("green", 0)]);
    assert!(back.aborted.is_some());
    let ok = Event::Analysis { phase: Phase::PostPromotion, outcome: AnalysisOutcome::Successful, now: secs(101) };
    let (done, d) = ev(&sp, &s, ok);
    assert!(d.complete, "{done:?}");
}

#[test]
fn pause_holds_and_bad_events_are_refused() {
    let sp = spec(true, None, false, false);
    let stable = BlueGreenStatus::stable("blue");
    assert_eq!(next(&sp, 2, &stable, Event::Pause).unwrap_err(), IllegalTransition::NothingToRollOut);
    assert_eq!(
        next(&sp, 2, &stable, Event::Promote { now: secs(0), full: false }).unwrap_err(),
        IllegalTransition::NothingToRollOut
    );
    let (s, _) = start(&sp);
    let (held, _) = ev(&sp, &s, Event::Pause);
    let (held, d) = observe(&sp, &held, 5, 2);
    assert_eq!(d.active, "blue");
    let (p, d) = ev(&sp, &held, Event::Promote { now: secs(6), full: false });
    assert_eq!(d.active, "green");
    assert!(p.hold.is_none());
    // Going back to the active template ends the rollout.
    let (back, d) = ev(&sp, &s, Event::NewRevision { hash: "blue".into() });
    assert_eq!(back, stable);
    assert!(d.complete);
}

#[test]
fn a_plain_promote_waits_for_a_running_pre_promotion_analysis_and_full_skips_it() {
    let sp = spec(false, None, true, false);
    let (s, _) = start(&sp);
    let (s, d) = observe(&sp, &s, 1, 2);
    assert_eq!((d.active.as_str(), d.analysis), ("blue", Some(Phase::PrePromotion)));

    let (waiting, d) = ev(&sp, &s, Event::Promote { now: secs(2), full: false });
    assert_eq!((d.active.as_str(), d.analysis), ("blue", Some(Phase::PrePromotion)), "the analysis still gates");
    let (waiting, d) = observe(&sp, &waiting, 3, 2);
    assert_eq!(d.active, "blue");
    let ok = Event::Analysis { phase: Phase::PrePromotion, outcome: AnalysisOutcome::Successful, now: secs(4) };
    let (switched, d) = ev(&sp, &waiting, ok);
    assert_eq!(d.active, "green", "promoted, and the analysis passed: switched at once");
    assert!(!switched.promoted);
    let bad =
        Event::Analysis { phase: Phase::PrePromotion, outcome: AnalysisOutcome::Failed("5xx".into()), now: secs(4) };
    let (aborted, d) = ev(&sp, &waiting, bad);
    assert_eq!(d.active, "blue", "a promote never overrides a failed analysis");
    assert!(aborted.aborted.is_some());

    let (_, d) = ev(&sp, &s, Event::Promote { now: secs(2), full: true });
    assert_eq!((d.active.as_str(), d.analysis), ("green", None), "--full skips the analysis");

    // Without a promote, a passed analysis still waits for one.
    let ok = Event::Analysis { phase: Phase::PrePromotion, outcome: AnalysisOutcome::Successful, now: secs(4) };
    let (passed, d) = ev(&sp, &s, ok);
    assert_eq!((d.active.as_str(), passed.pre_passed), ("blue", true));
}
