use super::*;
use berth_manifest::Object;

fn deployment(replicas: u32, annotations: &str) -> DeploymentSpec {
    let text = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, annotations: {{{annotations}}}}}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 60
  revisionHistoryLimit: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: busybox}}]
"
    );
    match berth_manifest::load(&text).unwrap().remove(0) {
        Object::Deployment(d) => d,
        other => panic!("{other:?}"),
    }
}

fn t(s: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc) + chrono::Duration::seconds(s)
}

fn pod(hash: &str, available: bool) -> PodProgress {
    PodProgress { hash: hash.into(), available, terminating: false, crash_looping: false }
}

fn record(state: &mut DeploymentState, hash: &str, at: i64) -> bool {
    let cause = Some(format!("cause {at}"));
    record_revision(state, hash, &serde_json::json!({"h": hash}), cause, vec![], &t(at).to_rfc3339(), 2)
}

#[test]
fn revisions_are_numbered_and_a_rollback_target_moves_to_the_end() {
    let mut s = DeploymentState::default();
    assert!(record(&mut s, "a", 0));
    assert!(!record(&mut s, "a", 1));
    record(&mut s, "b", 2);
    record(&mut s, "c", 3);
    let nums: Vec<(u64, &str)> = s.revisions.iter().map(|r| (r.revision, r.hash.as_str())).collect();
    assert_eq!(nums, vec![(1, "a"), (2, "b"), (3, "c")]);
    // Back to "a": it becomes revision 4 (and keeps its creation time).
    record(&mut s, "a", 4);
    let nums: Vec<(u64, &str)> = s.revisions.iter().map(|r| (r.revision, r.hash.as_str())).collect();
    assert_eq!(nums, vec![(2, "b"), (3, "c"), (4, "a")]);
    assert_eq!(s.current().unwrap().created, t(0).to_rfc3339());
    assert_eq!(s.current().unwrap().change_cause.as_deref(), Some("cause 0"));
    // History limit 2: the current one and two older ones.
    record(&mut s, "d", 5);
    assert_eq!(s.revisions.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![3, 4, 5]);
}

#[test]
fn the_stable_revision_is_never_pruned() {
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    s.stable = Some("a".into());
    for (i, h) in ["b", "c", "d", "e"].iter().enumerate() {
        record(&mut s, h, i as i64 + 1);
    }
    assert!(s.by_hash("a").is_some());
    assert_eq!(s.revisions.len(), 3);
}

#[test]
fn completion_marks_the_revision_stable() {
    let d = deployment(2, "");
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    assert_eq!(judge(&mut s, &d, "a", &[pod("a", true), pod("a", false)], t(5)), Verdict::Progressing);
    assert_eq!(judge(&mut s, &d, "a", &[pod("a", true), pod("a", true)], t(6)), Verdict::Complete);
    assert_eq!(s.stable.as_deref(), Some("a"));
}

#[test]
fn a_missed_deadline_rolls_back_to_the_stable_revision() {
    let d = deployment(2, "");
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    judge(&mut s, &d, "a", &[pod("a", true), pod("a", true)], t(1));
    record(&mut s, "b", 10);
    let pods = [pod("a", true), pod("a", true), pod("b", false)];
    assert_eq!(judge(&mut s, &d, "b", &pods, t(69)), Verdict::Progressing);
    // One new pod available is progress: the clock starts again.
    let pods = [pod("a", true), pod("b", true), pod("b", false)];
    assert_eq!(judge(&mut s, &d, "b", &pods, t(65)), Verdict::Progressing);
    assert_eq!(judge(&mut s, &d, "b", &pods, t(120)), Verdict::Progressing);
    match judge(&mut s, &d, "b", &pods, t(126)) {
        Verdict::RollBack { to, reason } => {
            assert_eq!(to.hash, "a");
            assert!(reason.contains("progressDeadlineSeconds"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn crash_looping_new_pods_roll_back_at_once() {
    let d = deployment(2, "");
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    judge(&mut s, &d, "a", &[pod("a", true), pod("a", true)], t(1));
    record(&mut s, "b", 10);
    let mut bad = pod("b", false);
    bad.crash_looping = true;
    let verdict = judge(&mut s, &d, "b", &[pod("a", true), pod("a", true), bad], t(15));
    assert!(matches!(verdict, Verdict::RollBack { ref to, .. } if to.hash == "a"), "{verdict:?}");
}

#[test]
fn without_auto_rollback_or_a_stable_revision_the_deadline_is_only_reported() {
    let d = deployment(1, "berth.dev/auto-rollback: \"false\"");
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    judge(&mut s, &d, "a", &[pod("a", true)], t(1));
    record(&mut s, "b", 10);
    assert_eq!(judge(&mut s, &d, "b", &[pod("a", true), pod("b", false)], t(100)), Verdict::DeadlineExceeded);
    assert!(s.deadline_exceeded);
    // The very first revision has nothing to go back to.
    let d = deployment(1, "");
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    assert_eq!(judge(&mut s, &d, "a", &[pod("a", false)], t(100)), Verdict::DeadlineExceeded);
}

#[test]
fn a_paused_rollout_misses_no_deadline() {
    let mut d = deployment(1, "");
    d.paused = true;
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    judge(&mut s, &d, "a", &[pod("a", true)], t(1));
    record(&mut s, "b", 10);
    assert_eq!(judge(&mut s, &d, "b", &[pod("a", true)], t(500)), Verdict::Progressing);
}

#[test]
fn a_rollback_is_reported_until_another_template_rolls_out() {
    let mut s = DeploymentState::default();
    record(&mut s, "a", 0);
    record(&mut s, "b", 1);
    s.rolled_back =
        Some(RolledBack { from: "b".into(), to: "a".into(), to_revision: 1, reason: "x".into(), at: "t".into() });
    record(&mut s, "a", 2);
    assert!(s.rolled_back.is_some());
    record(&mut s, "c", 3);
    assert!(s.rolled_back.is_none());
}

#[test]
fn availability_waits_for_min_ready_seconds() {
    let since = t(0).to_rfc3339();
    assert!(!available(false, Some(&since), Duration::ZERO, t(10)));
    assert!(available(true, None, Duration::ZERO, t(10)));
    assert!(!available(true, Some(&since), Duration::from_secs(5), t(4)));
    assert!(available(true, Some(&since), Duration::from_secs(5), t(5)));
}
