use std::collections::BTreeMap;
use std::time::Duration;

use crate::load;
use crate::model::*;

const CANARY: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web, namespace: shop}
spec:
  replicas: 5
  revisionHistoryLimit: 3
  minReadySeconds: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 80, name: http}]
          readinessProbe: {httpGet: {port: http}}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      maxSurge: 1
      maxUnavailable: 0
      analysis:
        templates: [{templateName: error-rate}]
        startingStep: 2
        args: [{name: service, value: web-canary}]
      steps:
        - setWeight: 1
        - pause: {duration: 30s}
        - setWeight: 20
        - pause: {duration: 5m}
        - analysis:
            templates: [{templateName: http-success}]
        - setWeight: 50
        - setCanaryScale: {replicas: 2}
        - pause: {}
        - setWeight: 100
";

const BLUE_GREEN: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: 'api:2'}]
  strategy:
    blueGreen:
      activeService: api
      previewService: api-preview
      autoPromotionSeconds: 60
      scaleDownDelaySeconds: 120
      prePromotionAnalysis:
        templates: [{templateName: http-success}, {templateName: error-rate}]
        args: [{name: service, value: api-preview}]
      postPromotionAnalysis:
        templates: [{templateName: error-rate}]
        args: [{name: service, value: api}]
";

/// A Rollout of one container with `strategy` (indented four spaces).
fn with_strategy(strategy: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      containers: [{{name: web, image: 'nginx:1.27'}}]\n  strategy:\n{strategy}"
    )
}

/// A canary Rollout with these steps (indented six spaces).
fn with_steps(steps: &str) -> String {
    with_strategy(&format!("    canary:\n      steps:\n{steps}"))
}

fn rollout(text: &str) -> RolloutSpec {
    match load(text).unwrap_or_else(|e| panic!("{e}")).remove(0) {
        Object::Rollout(r) => r,
        other => panic!("not a rollout: {other:?}"),
    }
}

fn canary(text: &str) -> CanarySpec {
    match rollout(text).strategy {
        RolloutStrategy::Canary(c) => c,
        other => panic!("not a canary: {other:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(objects) => panic!("expected errors, loaded {objects:?}"),
        Err(e) => e.messages(),
    }
}

fn analysis(templates: &[&str], args: &[(&str, &str)]) -> AnalysisRef {
    AnalysisRef {
        templates: templates.iter().map(ToString::to_string).collect(),
        args: args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[test]
fn a_realistic_canary_loads() {
    let r = rollout(CANARY);
    assert_eq!(Object::Rollout(r.clone()).key().to_string(), "rollout/shop/web");
    assert_eq!((r.replicas, r.revision_history_limit, r.paused), (5, 3, false));
    assert_eq!(r.min_ready, Duration::from_secs(5));
    assert_eq!(r.progress_deadline, Duration::from_secs(600));
    assert_eq!(r.template.containers[0].name, "web");
    let RolloutStrategy::Canary(c) = r.strategy else { panic!() };
    assert_eq!(
        c.steps,
        vec![
            CanaryStep::SetWeight(1),
            CanaryStep::Pause(Some(Duration::from_secs(30))),
            CanaryStep::SetWeight(20),
            CanaryStep::Pause(Some(Duration::from_secs(300))),
            CanaryStep::Analysis(analysis(&["http-success"], &[])),
            CanaryStep::SetWeight(50),
            CanaryStep::SetCanaryScale(CanaryScale::Replicas(2)),
            CanaryStep::Pause(None),
            CanaryStep::SetWeight(100),
        ]
    );
    assert_eq!(
        c.analysis,
        Some(BackgroundAnalysis {
            analysis: analysis(&["error-rate"], &[("service", "web-canary")]),
            starting_step: 2
        })
    );
    assert_eq!((c.max_surge, c.max_unavailable), (IntOrPercent::Count(1), IntOrPercent::Count(0)));
    assert_eq!(c.stable_service.as_deref(), Some("web-stable"));
    assert_eq!(c.canary_service.as_deref(), Some("web-canary"));
}

#[test]
fn a_realistic_blue_green_loads() {
    let r = rollout(BLUE_GREEN);
    assert_eq!(r.replicas, 1);
    let RolloutStrategy::BlueGreen(b) = &r.strategy else { panic!() };
    assert_eq!(
        b,
        &BlueGreenSpec {
            active_service: "api".into(),
            preview_service: Some("api-preview".into()),
            auto_promotion_enabled: true,
            auto_promotion_delay: Some(Duration::from_secs(60)),
            scale_down_delay: Duration::from_secs(120),
            pre_promotion_analysis: Some(analysis(&["http-success", "error-rate"], &[("service", "api-preview")])),
            post_promotion_analysis: Some(analysis(&["error-rate"], &[("service", "api")])),
        }
    );
    let paths: Vec<String> = r.analysis_refs().iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        paths,
        ["spec.strategy.blueGreen.prePromotionAnalysis", "spec.strategy.blueGreen.postPromotionAnalysis"]
    );
}

#[test]
fn defaults_follow_argo() {
    let r = rollout(&with_strategy("    canary: {}\n"));
    assert_eq!((r.replicas, r.revision_history_limit, r.paused), (1, 10, false));
    assert_eq!((r.min_ready, r.progress_deadline), (Duration::ZERO, Duration::from_secs(600)));
    assert_eq!(
        r.strategy,
        RolloutStrategy::Canary(CanarySpec {
            steps: vec![],
            analysis: None,
            max_surge: IntOrPercent::Percent(25),
            max_unavailable: IntOrPercent::Percent(25),
            stable_service: None,
            canary_service: None,
        })
    );
    let r = rollout(&with_strategy("    blueGreen: {activeService: web}\n"));
    assert_eq!(
        r.strategy,
        RolloutStrategy::BlueGreen(BlueGreenSpec {
            active_service: "web".into(),
            preview_service: None,
            auto_promotion_enabled: true,
            auto_promotion_delay: None,
            scale_down_delay: Duration::from_secs(30),
            pre_promotion_analysis: None,
            post_promotion_analysis: None,
        })
    );
    let r = rollout(&with_strategy("    blueGreen: {activeService: web, autoPromotionEnabled: false}\n"));
    let RolloutStrategy::BlueGreen(b) = r.strategy else { panic!() };
    assert!(!b.auto_promotion_enabled);
}

#[test]
fn the_template_hashes_as_a_deployments_does() {
    let deployment = CANARY
        .replace("argoproj.io/v1alpha1", "apps/v1")
        .replace("kind: Rollout", "kind: Deployment")
        .split("  strategy:")
        .next()
        .unwrap()
        .to_string();
    let Object::Deployment(d) = load(&deployment).unwrap().remove(0) else { panic!() };
    let r = rollout(CANARY);
    assert_eq!(r.template, d.template);
    assert_eq!(r.template.hash(), d.template.hash());
    assert_eq!(r.selector, d.selector);
}

#[test]
fn every_step_shape_is_read() {
    let c = canary(&with_steps(
        "        - setWeight: 100
        - pause: {duration: 45}
        - pause: {duration: 1h30m}
        - pause: {duration: 0s}
        - pause: {duration: 250ms}
        - setCanaryScale: {weight: 25}
        - setCanaryScale: {matchTrafficWeight: true}
        - setCanaryScale: {replicas: 0}
        - analysis: {templates: [{templateName: a}, {templateName: b}], args: [{name: x, value: '1'}, {name: z, value: ''}]}
",
    ));
    assert_eq!(
        c.steps,
        vec![
            CanaryStep::SetWeight(100),
            CanaryStep::Pause(Some(Duration::from_secs(45))),
            CanaryStep::Pause(Some(Duration::from_secs(5400))),
            CanaryStep::Pause(Some(Duration::ZERO)),
            CanaryStep::Pause(Some(Duration::from_millis(250))),
            CanaryStep::SetCanaryScale(CanaryScale::Weight(25)),
            CanaryStep::SetCanaryScale(CanaryScale::MatchTrafficWeight),
            CanaryStep::SetCanaryScale(CanaryScale::Replicas(0)),
            CanaryStep::Analysis(AnalysisRef {
                templates: vec!["a".into(), "b".into()],
                args: BTreeMap::from([("x".into(), "1".into()), ("z".into(), String::new())]),
            }),
        ]
    );
}

#[test]
fn set_weight_is_a_percentage_of_at_least_one() {
    assert_eq!(
        errors(&with_steps("        - setWeight: 0\n        - setWeight: 50\n        - setWeight: 20\n        - setWeight: 101\n")),
        [
            "rollout/web: spec.strategy.canary.steps[0].setWeight: must be 1 to 100, got 0; give the percentage of pods to run the new template",
            "rollout/web: spec.strategy.canary.steps[3].setWeight: must be 1 to 100, got 101; give the percentage of pods to run the new template",
        ],
        "going down (50 then 20) is allowed, as in Argo"
    );
}

#[test]
fn a_step_does_exactly_one_thing() {
    assert_eq!(
        errors(&with_steps("        - {setWeight: 20, pause: {}}\n        - {}\n")),
        [
            "rollout/web: spec.strategy.canary.steps[0]: a step does one thing, this one names setWeight and pause; split it into one step per action",
            "rollout/web: spec.strategy.canary.steps[1]: the step does nothing; give one of setWeight, pause, setCanaryScale or analysis",
        ]
    );
}

#[test]
fn pause_durations_are_never_negative() {
    let message = |d: &str| errors(&with_steps(&format!("        - pause: {{duration: {d}}}\n")));
    let fix = "give a duration of 0 or more, such as 30s, 5m, 1h or a number of seconds";
    assert_eq!(
        message("-30s"),
        [format!("rollout/web: spec.strategy.canary.steps[0].pause.duration: \"-30s\" is negative; {fix}")]
    );
    assert_eq!(
        message("-5"),
        [format!("rollout/web: spec.strategy.canary.steps[0].pause.duration: -5 is negative; {fix}")]
    );
    assert_eq!(
        message("30x"),
        [format!(
            "rollout/web: spec.strategy.canary.steps[0].pause.duration: \"30x\" is not a duration: the units are ms, s, m and h; {fix}"
        )]
    );
    assert_eq!(
        message("'30'"),
        [format!(
            "rollout/web: spec.strategy.canary.steps[0].pause.duration: \"30\" has no unit (write 30s, or 30 unquoted for seconds); {fix}"
        )]
    );
    assert_eq!(
        message("1.5h"),
        [format!("rollout/web: spec.strategy.canary.steps[0].pause.duration: \"1.5h\" is not a duration; {fix}")]
    );
}

#[test]
fn set_canary_scale_takes_one_of_its_forms() {
    let message = |s: &str| errors(&with_steps(&format!("        - setCanaryScale: {s}\n")));
    assert_eq!(
        message("{replicas: 2, weight: 20}"),
        ["rollout/web: spec.strategy.canary.steps[0].setCanaryScale: give exactly one of replicas, weight or matchTrafficWeight; write e.g. setCanaryScale: {replicas: 2}"]
    );
    assert_eq!(
        message("{weight: 150}"),
        ["rollout/web: spec.strategy.canary.steps[0].setCanaryScale.weight: must be 0 to 100, got 150; give a percentage of spec.replicas"]
    );
    assert_eq!(
        message("{replicas: -1}"),
        ["rollout/web: spec.strategy.canary.steps[0].setCanaryScale.replicas: must be 0 or more, got -1; set it to 0 or more"]
    );
    assert_eq!(
        message("{matchTrafficWeight: false}"),
        ["rollout/web: spec.strategy.canary.steps[0].setCanaryScale.matchTrafficWeight: false does nothing; set it to true to follow setWeight again, or give replicas or weight"]
    );
}

#[test]
fn analysis_references_are_checked_in_shape() {
    assert_eq!(
        errors(&with_steps(
            "        - analysis: {}
        - analysis:
            templates: [{templateName: a}, {templateName: a}, {templateName: Not_A_Name}, {}]
            args: [{name: x}, {name: p, value: '1'}, {name: p, value: '2'}, {value: '3'}, {name: 'a b', value: c}]
"
        )),
        [
            "rollout/web: spec.strategy.canary.steps[0].analysis.templates: the analysis names no template; add templates: [{templateName: NAME}]",
            "rollout/web: spec.strategy.canary.steps[1].analysis.templates[1].templateName: \"a\" is named twice; name each template once",
            "rollout/web: spec.strategy.canary.steps[1].analysis.templates[2].templateName: \"Not_A_Name\" is not a DNS-1123 subdomain: use lower case letters, digits, '-' and '.', starting and ending with a letter or digit (e.g. \"web\" or \"web.example\"); name an AnalysisTemplate of the Rollout's namespace",
            "rollout/web: spec.strategy.canary.steps[1].analysis.templates[3].templateName: is required; name an AnalysisTemplate of the Rollout's namespace",
            "rollout/web: spec.strategy.canary.steps[1].analysis.args[0].value: argument \"x\" has no value; set value",
            "rollout/web: spec.strategy.canary.steps[1].analysis.args[2].name: argument \"p\" is given twice; give each argument once",
            "rollout/web: spec.strategy.canary.steps[1].analysis.args[3].name: the argument has no name; set name",
            "rollout/web: spec.strategy.canary.steps[1].analysis.args[4].name: \"a b\" is not an argument name; use letters, digits, - and _ (the name is written {{args.NAME}})",
        ]
    );
}

#[test]
fn background_analysis_starts_at_a_step() {
    let text = |n: i32| {
        with_strategy(&format!(
            "    canary:\n      analysis: {{templates: [{{templateName: a}}], startingStep: {n}}}\n      steps: [{{setWeight: 50}}, {{pause: {{}}}}]\n"
        ))
    };
    let c = canary(&text(1));
    assert_eq!(c.analysis.map(|a| a.starting_step), Some(1));
    assert_eq!(
        errors(&text(2)),
        ["rollout/web: spec.strategy.canary.analysis.startingStep: 2 is not the index of a step (2 steps); use a step index from 0 to 1"]
    );
    assert_eq!(
        errors(&text(-1)),
        ["rollout/web: spec.strategy.canary.analysis.startingStep: -1 is not the index of a step (2 steps); use a step index from 0 to 1"]
    );
    let c = canary(&with_strategy("    canary:\n      analysis: {templates: [{templateName: a}]}\n"));
    assert_eq!(c.analysis.map(|a| a.starting_step), Some(0));
}

#[test]
fn canary_services_and_limits() {
    assert_eq!(
        errors(&with_strategy("    canary: {stableService: web, canaryService: web, maxSurge: 0, maxUnavailable: 0}\n")),
        [
            "rollout/web: spec.strategy.canary.maxUnavailable: maxUnavailable and maxSurge are both 0, so no pod could ever be replaced; allow at least one of them",
            "rollout/web: spec.strategy.canary.canaryService: is the same Service as stableService; use two Services: one for the stable pods, one for the canary pods",
        ]
    );
    assert_eq!(
        errors(&with_strategy("    canary: {stableService: Web, maxUnavailable: 150%}\n")),
        [
            "rollout/web: spec.strategy.canary.maxUnavailable: 150% is more than 100%; use at most 100%",
            "rollout/web: spec.strategy.canary.stableService: \"Web\" is not a DNS-1123 label: use lower case letters, digits and '-', starting and ending with a letter or digit (e.g. \"web\" or \"web-1\"); name a Service of the Rollout's namespace",
        ]
    );
}

#[test]
fn blue_green_needs_an_active_service() {
    assert_eq!(
        errors(&with_strategy("    blueGreen: {previewService: web}\n")),
        ["rollout/web: spec.strategy.blueGreen.activeService: is required; name the Service that carries production traffic"]
    );
    assert_eq!(
        errors(&with_strategy(
            "    blueGreen: {activeService: web, previewService: web, autoPromotionEnabled: false, autoPromotionSeconds: 30, scaleDownDelaySeconds: -1}\n"
        )),
        [
            "rollout/web: spec.strategy.blueGreen.previewService: is the same Service as activeService; use two Services, or leave previewService out",
            "rollout/web: spec.strategy.blueGreen.autoPromotionSeconds: has no effect with autoPromotionEnabled: false (the rollout waits to be promoted); remove autoPromotionSeconds, or autoPromotionEnabled: false",
            "rollout/web: spec.strategy.blueGreen.scaleDownDelaySeconds: must be 0 or more, got -1; set it to 0 or more",
        ]
    );
    assert_eq!(
        errors(&with_strategy("    blueGreen: {activeService: web, prePromotionAnalysis: {args: [{name: x, value: z}]}}\n")),
        ["rollout/web: spec.strategy.blueGreen.prePromotionAnalysis.templates: the analysis names no template; add templates: [{templateName: NAME}]"]
    );
}

#[test]
fn exactly_one_strategy() {
    assert_eq!(
        errors(&with_strategy("    canary: {}\n    blueGreen: {activeService: web}\n")),
        ["rollout/web: spec.strategy: a Rollout has one strategy, this one names canary and blueGreen; keep one"]
    );
    assert_eq!(
        errors(&with_strategy("    {}\n")),
        ["rollout/web: spec.strategy: the Rollout has no strategy; add strategy.canary (with steps) or strategy.blueGreen (with activeService)"]
    );
}

#[test]
fn unsupported_argo_fields_are_refused_by_name() {
    assert_eq!(
        errors(&with_strategy("    canary:\n      trafficRouting: {nginx: {stableIngress: web}}\n")),
        ["rollout/web: spec.strategy.canary.trafficRouting is not supported by berth; remove it; berth splits traffic by the number of canary and stable pods, behind canaryService and stableService"]
    );
    assert_eq!(
        errors(&with_steps("        - experiment: {duration: 1h}\n        - setWeight: 10\n")),
        ["rollout/web: spec.strategy.canary.steps[0].experiment is not supported by berth; remove it; CanaryStep fields berth reads: setWeight, pause, setCanaryScale, analysis"]
    );
    assert_eq!(
        errors(&with_steps("        - analysis: {templates: [{templateName: a}], args: [{name: h, valueFrom: {podTemplateHashValue: Stable}}]}\n")),
        ["rollout/web: spec.strategy.canary.steps[0].analysis.args[0].valueFrom is not supported by berth; remove it; AnalysisRunArgument fields berth reads: name, value"]
    );
    assert_eq!(
        errors(&with_steps("        - setWieght: 10\n")),
        ["rollout/web: spec.strategy.canary.steps[0].setWieght is not a field of CanaryStep; did you mean setWeight?"]
    );
    let workload_ref = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}\n  strategy: {canary: {}}\n";
    assert_eq!(
        errors(workload_ref),
        [
            "rollout/web: spec.template: the Rollout has no pod template; add spec.template (berth does not read workloadRef)",
            "rollout/web: spec.workloadRef is not supported by berth; remove it and write the pod template under spec.template",
        ]
    );
}

#[test]
fn the_deployment_checks_apply() {
    let text = with_strategy("    canary: {}\n").replace("labels: {app: web}", "labels: {app: api}");
    assert_eq!(
        errors(&text),
        ["rollout/web: spec.template.metadata.labels: the template labels (app=api) do not match spec.selector (app=web); make the template labels satisfy the selector"]
    );
    assert_eq!(
        errors("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\nspec: {strategy: {canary: {}}}\n"),
        [
            "rollout/web: spec.selector: the Rollout has no selector; add a selector matching the template labels, e.g. matchLabels: {app: web}",
            "rollout/web: spec.template: the Rollout has no pod template; add spec.template (berth does not read workloadRef)",
        ]
    );
    assert_eq!(
        errors("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: web}\n"),
        ["rollout/web: spec: the Rollout has no spec; add a spec with selector, template and strategy"]
    );
}

#[test]
fn only_argos_api_version() {
    let text = with_strategy("    canary: {}\n").replace("argoproj.io/v1alpha1", "argoproj.io/v1beta1");
    assert_eq!(
        errors(&text),
        ["rollout/web: Rollout in apiVersion argoproj.io/v1beta1 (use apiVersion argoproj.io/v1alpha1) is not a kind berth reads; berth reads apps/v1 Deployment, v1 Service, v1 ConfigMap, v1 Secret, argoproj.io/v1alpha1 Rollout and argoproj.io/v1alpha1 AnalysisTemplate (also inside a v1 List)"]
    );
}
