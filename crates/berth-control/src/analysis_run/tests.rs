use super::*;
use berth_manifest::model::Assessment::{Failed as F, Inconclusive as I, Successful as S};
use berth_manifest::Object;

fn metrics(yaml_metrics: &str) -> Vec<Metric> {
    let text = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  metrics:\n{yaml_metrics}"
    );
    match berth_manifest::load(&text).unwrap().remove(0) {
        Object::AnalysisTemplate(t) => t.metrics,
        other => panic!("{other:?}"),
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const EVERY_10S_6_TIMES: &str = "    - name: ok\n      interval: 10s\n      count: 6\n      failureLimit: 1\n      successCondition: result >= 0.99\n      provider: {berth: {httpCheck: {port: 80}}}\n";

#[test]
fn measurements_follow_initial_delay_and_interval_up_to_count() {
    let m = metrics(&EVERY_10S_6_TIMES.replace("      interval", "      initialDelay: 5s\n      interval"));
    let mut run = AnalysisRun::start(&m, secs(100));
    assert!(run.due(&m, secs(104)).is_empty());
    assert_eq!(run.wake_at(&m), Some(secs(105)));
    assert_eq!(run.due(&m, secs(105)), vec![0]);
    let mut t = 105;
    for i in 0..6 {
        assert_eq!(run.due(&m, secs(t)), vec![0], "measurement {i}");
        let phase = run.record(&m, 0, Measurement::Assessed(S), secs(t));
        assert_eq!(phase, if i == 5 { RunPhase::Successful } else { RunPhase::Running });
        t += 10;
    }
    assert!(run.due(&m, secs(t + 100)).is_empty());
}

#[test]
fn failures_above_the_limit_fail_the_run() {
    let m = metrics(EVERY_10S_6_TIMES);
    let mut run = AnalysisRun::start(&m, secs(0));
    assert_eq!(run.record(&m, 0, Measurement::Assessed(F), secs(0)), RunPhase::Running, "limit 1 allows one");
    assert_eq!(run.record(&m, 0, Measurement::Assessed(S), secs(10)), RunPhase::Running);
    let phase = run.record(&m, 0, Measurement::Assessed(F), secs(20));
    assert!(matches!(&phase, RunPhase::Failed(why) if why.contains("2 failed")), "{phase:?}");
    // Nothing changes a concluded metric.
    assert_eq!(run.record(&m, 0, Measurement::Assessed(S), secs(30)), phase);
}

#[test]
fn errors_count_toward_the_consecutive_limit_never_as_success() {
    let m = metrics(
        "    - name: prom\n      interval: 1s\n      count: 10\n      consecutiveErrorLimit: 2\n      successCondition: result < 1\n      provider: {prometheus: {address: 'http://127.0.0.1:9', query: up}}\n",
    );
    let mut run = AnalysisRun::start(&m, secs(0));
    let err = || Measurement::Error("connection refused".into());
    assert_eq!(run.record(&m, 0, err(), secs(0)), RunPhase::Running);
    assert_eq!(run.record(&m, 0, err(), secs(1)), RunPhase::Running);
    // A success in between resets the streak.
    assert_eq!(run.record(&m, 0, Measurement::Assessed(S), secs(2)), RunPhase::Running);
    assert_eq!(run.metrics[0].successful, 1);
    run.record(&m, 0, err(), secs(3));
    run.record(&m, 0, err(), secs(4));
    let phase = run.record(&m, 0, err(), secs(5));
    assert!(
        matches!(&phase, RunPhase::Failed(why) if why.contains("3 consecutive errors") && why.contains("refused")),
        "{phase:?}"
    );
    assert_eq!(run.metrics[0].measured, 1, "errors are not measurements");
}

#[test]
fn inconclusive_above_its_limit_and_several_metrics() {
    let two = format!(
        "{EVERY_10S_6_TIMES}    - name: restarts\n      failureCondition: result > 0\n      provider: {{berth: {{restarts: {{}}}}}}\n"
    );
    let m = metrics(&two);
    let mut run = AnalysisRun::start(&m, secs(0));
    assert_eq!(run.due(&m, secs(0)), vec![0, 1]);
    assert_eq!(run.record(&m, 1, Measurement::Assessed(S), secs(0)), RunPhase::Running, "metric 0 still runs");
    assert!(!run.due(&m, secs(1000)).contains(&1), "measured once, done");
    let phase = run.record(&m, 0, Measurement::Assessed(I), secs(0));
    assert!(matches!(phase, RunPhase::Inconclusive(_)), "{phase:?}");
}

#[test]
fn an_open_ended_metric_runs_until_stopped() {
    let m = metrics("    - name: bg\n      interval: 5s\n      successCondition: result >= 0.9\n      provider: {berth: {probe: readiness}}\n");
    let mut run = AnalysisRun::start(&m, secs(0));
    for t in 0..20 {
        assert_eq!(run.record(&m, 0, Measurement::Assessed(S), secs(t * 5)), RunPhase::Running);
    }
    assert_eq!(run.stop(), RunPhase::Successful);
}
