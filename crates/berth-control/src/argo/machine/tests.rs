//! The strategy adapter on virtual time: which pods and analysis runs each
//! status asks for, how events map, and how Services route.

use std::time::Duration;

use berth_manifest::Object;

use super::*;

fn rollout(strategy: &str) -> RolloutSpec {
    let text = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: web}}\nspec:\n  replicas: 4\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: c, image: busybox}}]}}\n  strategy:\n{strategy}\n"
    );
    match berth_manifest::load(&text).unwrap().remove(0) {
        Object::Rollout(r) => r,
        other => panic!("{other:?}"),
    }
}

const CANARY: &str = "    canary:\n      stableService: web-stable\n      canaryService: web-canary\n      analysis: {templates: [{templateName: bg}], startingStep: 1}\n      steps:\n        - setWeight: 25\n        - analysis: {templates: [{templateName: t}]}\n        - pause: {duration: 10s}";

const BLUE_GREEN: &str = "    blueGreen:\n      activeService: web\n      previewService: web-preview\n      autoPromotionEnabled: false\n      prePromotionAnalysis: {templates: [{templateName: pre}]}";

fn at(n: u64) -> Duration {
    Duration::from_secs(1_000_000 + n)
}

fn run_names(p: &Plan) -> Vec<&str> {
    p.runs.iter().map(|r| r.name.as_str()).collect()
}

#[test]
fn a_canary_asks_for_pods_per_revision_and_its_analysis_runs_in_turn() {
    let r = rollout(CANARY);
    let s = fresh(&r.strategy, "old");
    let (s, p) = next(&r, &s, Ev::Observe { available: 0 }, at(0)).unwrap();
    assert_eq!(p.replicas, vec![("old".to_string(), 4)]);
    assert!(p.complete && p.runs.is_empty());

    let (s, _) = next(&r, &s, Ev::NewRevision("new".into()), at(1)).unwrap();
    let (s, p) = next(&r, &s, Ev::Observe { available: 0 }, at(1)).unwrap();
    assert_eq!(p.replicas, vec![("old".to_string(), 4), ("new".to_string(), 1)], "stable stays whole");
    assert!(p.runs.is_empty(), "no analysis before its step");
    let (s, p) = next(&r, &s, Ev::Observe { available: 1 }, at(2)).unwrap();
    assert_eq!(run_names(&p), vec!["step-1", "background"]);
    assert_eq!(p.runs[0].canary, "new");
    assert_eq!(p.runs[0].stable.as_deref(), Some("old"));

    // The step's analysis passes: on to the timed pause; the background
    // analysis keeps running.
    let ok = AnalysisOutcome::Successful;
    let (s, _) = next(&r, &s, Ev::Analysis { run: "step-1".into(), outcome: ok }, at(3)).unwrap();
    let (s, p) = next(&r, &s, Ev::Observe { available: 1 }, at(3)).unwrap();
    assert_eq!(run_names(&p), vec!["background"]);
    assert!(pausing(&r, &s));
    // The pause ends; all pods become the new revision, then it is stable.
    let (s, p) = next(&r, &s, Ev::Observe { available: 1 }, at(14)).unwrap();
    assert_eq!(p.replicas, vec![("old".to_string(), 4), ("new".to_string(), 4)]);
    let (s, p) = next(&r, &s, Ev::Observe { available: 4 }, at(15)).unwrap();
    assert!(p.complete);
    assert_eq!(p.replicas, vec![("new".to_string(), 4)]);
    assert_eq!(s.stable(), "new");
}

#[test]
fn a_failed_background_analysis_aborts_and_a_held_rollout_reruns_nothing() {
    let r = rollout(CANARY);
    let (s, _) = next(&r, &fresh(&r.strategy, "old"), Ev::NewRevision("new".into()), at(0)).unwrap();
    let (s, _) = next(&r, &s, Ev::Observe { available: 1 }, at(1)).unwrap();
    let inconclusive = AnalysisOutcome::Inconclusive;
    let (held_s, _) = next(&r, &s, Ev::Analysis { run: "step-1".into(), outcome: inconclusive }, at(2)).unwrap();
    let (held_s, p) = next(&r, &held_s, Ev::Observe { available: 1 }, at(2)).unwrap();
    assert!(held(&held_s));
    assert!(p.runs.is_empty(), "a person decides; no run is started again");

    let failed = AnalysisOutcome::Failed("error ratio 0.5".into());
    let (s, p) = next(&r, &s, Ev::Analysis { run: "background".into(), outcome: failed }, at(2)).unwrap();
    assert!(s.aborted().unwrap().contains("error ratio 0.5"));
    assert_eq!(p.replicas, vec![("old".to_string(), 4), ("new".to_string(), 0)]);
    let route = RolloutRoute::of(&r, &s);
    assert_eq!(route.default, OwnedRoute::Only("old".into()), "all traffic back on stable");
    // Promoting an aborted rollout is refused.
    assert_eq!(next(&r, &s, Ev::Promote { full: false }, at(3)).unwrap_err(), IllegalTransition::Aborted);
}

#[test]
fn services_route_by_the_rollout_status() {
    let r = rollout(CANARY);
    let (s, _) = next(&r, &fresh(&r.strategy, "old"), Ev::NewRevision("new".into()), at(0)).unwrap();
    let (s, _) = next(&r, &s, Ev::Observe { available: 1 }, at(1)).unwrap();
    let route = RolloutRoute::of(&r, &s);
    let selector = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let web = selector(&[("app", "web")]);
    assert_eq!(
        route.route_for("default", "web", &web),
        Some(Route::Split { stable: "old", canary: "new", weight: 25 })
    );
    assert_eq!(route.route_for("default", "web-stable", &web), Some(Route::Only("old")));
    assert_eq!(route.route_for("default", "web-canary", &web), Some(Route::Only("new")));
    assert_eq!(route.route_for("other", "web", &web), None, "another namespace");
    assert_eq!(route.route_for("default", "db", &selector(&[("app", "db")])), None);
    assert_eq!(route.route_for("default", "all", &selector(&[])), None, "an empty selector selects nothing");
}

#[test]
fn blue_green_previews_analyses_then_switches_on_promote() {
    let r = rollout(BLUE_GREEN);
    let (s, _) = next(&r, &fresh(&r.strategy, "blue"), Ev::NewRevision("green".into()), at(0)).unwrap();
    let (s, p) = next(&r, &s, Ev::Observe { available: 4 }, at(1)).unwrap();
    assert_eq!(p.replicas, vec![("blue".to_string(), 4), ("green".to_string(), 4)]);
    assert_eq!(run_names(&p), vec!["pre-promotion"]);
    assert_eq!((p.runs[0].canary.as_str(), p.runs[0].stable.as_deref()), ("green", Some("blue")));
    let route = RolloutRoute::of(&r, &s);
    let web = [("app".to_string(), "web".to_string())].into_iter().collect();
    assert_eq!(route.route_for("default", "web", &web), Some(Route::Only("blue")));
    assert_eq!(route.route_for("default", "web-preview", &web), Some(Route::Only("green")));

    let ok = AnalysisOutcome::Successful;
    let (s, _) = next(&r, &s, Ev::Analysis { run: "pre-promotion".into(), outcome: ok }, at(2)).unwrap();
    assert!(pausing(&r, &s), "no auto-promotion: waits for promote");
    let (s, _) = next(&r, &s, Ev::Promote { full: false }, at(3)).unwrap();
    let route = RolloutRoute::of(&r, &s);
    assert_eq!(route.route_for("default", "web", &web), Some(Route::Only("green")), "switched");
    let events = changes(Some(&fresh(&r.strategy, "blue")), &s, &r);
    assert!(events.iter().any(|(_, reason, _)| *reason == "SwitchActive"), "{events:?}");
}
