use super::*;
use proptest::prelude::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn kubernetes_delays_double_to_the_cap() {
    let b = CrashBackoff::default();
    let mut delays = Vec::new();
    let mut previous = None;
    for _ in 0..8 {
        let d = b.next_delay(previous, secs(1));
        delays.push(d.as_secs());
        previous = Some(d);
    }
    assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300, 300]);
}

#[test]
fn a_long_clean_run_resets_the_delay() {
    let b = CrashBackoff::KUBERNETES;
    assert_eq!(b.next_delay(Some(secs(300)), secs(599)), secs(300));
    assert_eq!(b.next_delay(Some(secs(300)), secs(600)), secs(10));
    assert_eq!(b.next_delay(Some(secs(40)), secs(3600)), secs(10));
}

#[test]
fn configurable_and_validated() {
    let b = CrashBackoff::try_new(secs(1), secs(4), secs(30)).unwrap();
    assert_eq!(b.next_delay(Some(secs(1)), secs(0)), secs(2));
    assert_eq!(b.next_delay(Some(secs(4)), secs(0)), secs(4));
    assert_eq!(b.next_delay(Some(secs(4)), secs(30)), secs(1));
    assert_eq!(CrashBackoff::try_new(Duration::ZERO, secs(1), secs(1)), Err(BackoffError::ZeroInitial));
    assert!(matches!(CrashBackoff::try_new(secs(5), secs(1), secs(1)), Err(BackoffError::MaxBelowInitial { .. })));
    assert_eq!(CrashBackoff::try_new(secs(1), secs(1), Duration::ZERO), Err(BackoffError::ZeroReset));
}

fn started(t: &mut RestartTracker, at: u64) {
    assert_eq!(t.apply(RestartEvent::Started { at: secs(at) }), Ok(Decision::None));
}

fn crash(t: &mut RestartTracker, at: u64, code: i32) -> Decision {
    let reason = if code == 0 { ExitReason::Completed } else { ExitReason::Error };
    t.apply(RestartEvent::Exited { at: secs(at), exit_code: code, reason }).unwrap()
}

#[test]
fn crash_loop_shows_state_count_and_last_exit() {
    let mut t = RestartTracker::new(CrashBackoff::KUBERNETES, RestartRule::Always);
    assert_eq!(t.summary(), "ContainerCreating, restarts 0");
    assert!(t.may_start(secs(0)));
    started(&mut t, 0);
    assert_eq!(t.summary(), "Running, restarts 0");
    assert_eq!(crash(&mut t, 2, 1), Decision::RestartAt(secs(12)));
    assert_eq!(t.state(), ContainerState::Waiting { reason: WaitingReason::CrashLoopBackOff, until: Some(secs(12)) });
    assert_eq!(t.summary(), "CrashLoopBackOff (back-off 10s), restarts 0, last exit: Error (code 1)");
    assert!(!t.may_start(secs(11)));
    assert_eq!(
        t.apply(RestartEvent::Started { at: secs(11) }),
        Err(IllegalTransition::StartedDuringBackoff { at: secs(11), until: secs(12) })
    );
    started(&mut t, 12);
    assert_eq!(t.restart_count(), 1);
    assert_eq!(crash(&mut t, 13, 137), Decision::RestartAt(secs(33)));
    started(&mut t, 33);
    assert_eq!(crash(&mut t, 34, 0), Decision::RestartAt(secs(74)), "Always restarts clean exits too");
    assert_eq!(t.current_delay(), Some(secs(40)));
    assert_eq!(t.summary(), "CrashLoopBackOff (back-off 40s), restarts 2, last exit: Completed (code 0)");
    started(&mut t, 80);
    assert_eq!(t.current_delay(), None);
    // Ten clean minutes reset the back-off.
    assert_eq!(crash(&mut t, 80 + 600, 1), Decision::RestartAt(secs(690)));
    assert_eq!(t.last_termination().unwrap().started_at, secs(80));
}

#[test]
fn init_containers_finish_on_success() {
    let mut t = RestartTracker::new(CrashBackoff::KUBERNETES, RestartRule::OnFailure);
    started(&mut t, 0);
    assert_eq!(crash(&mut t, 1, 3), Decision::RestartAt(secs(11)));
    started(&mut t, 11);
    assert_eq!(crash(&mut t, 15, 0), Decision::Done);
    assert!(matches!(t.state(), ContainerState::Terminated(Termination { exit_code: 0, .. })));
    assert_eq!(t.apply(RestartEvent::Started { at: secs(20) }), Err(IllegalTransition::Completed));
    assert_eq!(t.summary(), "Terminated: Completed, restarts 1, last exit: Completed (code 0)");
}

#[test]
fn illegal_transitions_change_nothing() {
    let mut t = RestartTracker::new(CrashBackoff::KUBERNETES, RestartRule::Always);
    let before = t.clone();
    assert_eq!(
        t.apply(RestartEvent::Exited { at: secs(1), exit_code: 1, reason: ExitReason::Error }),
        Err(IllegalTransition::NotRunning)
    );
    assert_eq!(t, before);
    started(&mut t, 5);
    assert_eq!(t.apply(RestartEvent::Started { at: secs(6) }), Err(IllegalTransition::AlreadyRunning));
    assert_eq!(
        t.apply(RestartEvent::Exited { at: secs(4), exit_code: 1, reason: ExitReason::OomKilled }),
        Err(IllegalTransition::ExitBeforeStart { at: secs(4), since: secs(5) })
    );
    assert_eq!(ExitReason::OomKilled.to_string(), "OOMKilled");
}

proptest! {
    /// Whatever the run times, delays stay within [initial, max], double
    /// at most, and restart at the initial delay after a long run.
    #[test]
    fn delays_stay_in_bounds(runs in prop::collection::vec(0u64..1200, 1..30)) {
        let b = CrashBackoff::KUBERNETES;
        let mut t = RestartTracker::new(b, RestartRule::Always);
        let mut now = 0;
        let mut previous: Option<Duration> = None;
        for ran in runs {
            t.apply(RestartEvent::Started { at: secs(now) }).unwrap();
            now += ran;
            let Decision::RestartAt(at) = t.apply(RestartEvent::Exited { at: secs(now), exit_code: 1, reason: ExitReason::Error }).unwrap() else {
                panic!("Always must restart");
            };
            let delay = at - secs(now);
            prop_assert!(delay >= b.initial() && delay <= b.max());
            if let Some(p) = previous {
                prop_assert!(delay <= p * 2);
            }
            if ran >= 600 || previous.is_none() {
                prop_assert_eq!(delay, b.initial());
            }
            previous = Some(delay);
            now = at.as_secs();
        }
    }
}

#[test]
fn container_backoff_doubles_caps_and_resets() {
    let b = CrashBackoff::CONTAINER;
    let short = Duration::from_millis(50);
    let mut d = b.next_delay(None, short);
    assert_eq!(d, Duration::from_millis(100));
    let mut seen = vec![d];
    for _ in 0..12 {
        d = b.next_delay(Some(d), short);
        seen.push(d);
    }
    assert_eq!(seen[1], Duration::from_millis(200));
    assert_eq!(*seen.last().unwrap(), Duration::from_secs(60));
    assert_eq!(b.next_delay(Some(Duration::from_secs(60)), Duration::from_secs(10)), Duration::from_millis(100));
}

#[test]
fn a_cap_below_the_initial_delay_is_raised_to_it() {
    let b = CrashBackoff::CONTAINER.capped_at(Duration::ZERO);
    assert_eq!(b.max(), Duration::from_millis(100));
    assert_eq!(CrashBackoff::CONTAINER.capped_at(Duration::from_secs(5)).max(), Duration::from_secs(5));
}
