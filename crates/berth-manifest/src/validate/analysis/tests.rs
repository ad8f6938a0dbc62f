use std::collections::BTreeMap;
use std::time::Duration;

use super::parse_duration;
use crate::expr::{Condition, Vars};
use crate::load;
use crate::model::*;

const ERROR_RATE: &str = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: error-rate}
spec:
  args:
    - name: service
    - name: prometheus
      value: http://prometheus.monitoring:9090
  metrics:
    - name: error-rate
      interval: 1m
      count: 5
      failureLimit: 1
      successCondition: result < 0.01
      failureCondition: result >= 0.05
      provider:
        prometheus:
          address: '{{args.prometheus}}'
          query: |
            sum(rate(http_requests_total{service=\"{{ args.service }}\",code=~\"5..\"}[1m]))
            /
            sum(rate(http_requests_total{service=\"{{args.service}}\"}[1m]))
";

const HTTP_SUCCESS: &str = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: http-success}
spec:
  metrics:
    - name: success
      initialDelay: 10s
      successCondition: result >= 0.99
      provider:
        berth:
          httpCheck: {path: /healthz, port: 8080}
    - name: latency
      interval: 30s
      successCondition: result <= stable * 1.2 || result < 50
      consecutiveErrorLimit: 2
      provider:
        berth:
          httpCheck: {port: 8080, measure: latencyP99Ms}
";

fn template(text: &str) -> AnalysisTemplateSpec {
    match load(text).unwrap_or_else(|e| panic!("{e}")).remove(0) {
        Object::AnalysisTemplate(t) => t,
        other => panic!("not an analysis template: {other:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(objects) => panic!("expected errors, loaded {objects:?}"),
        Err(e) => e.messages(),
    }
}

/// A template with one metric of these fields (indented six spaces).
fn metric(fields: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: t}}\nspec:\n  args: [{{name: svc}}]\n  metrics:\n    - name: m\n{fields}"
    )
}

fn one_metric(fields: &str) -> Metric {
    template(&metric(fields)).metrics.remove(0)
}

const RESTARTS: &str = "      provider: {berth: {restarts: {}}}\n";

#[test]
fn a_prometheus_template_loads() {
    let t = template(ERROR_RATE);
    assert_eq!(Object::AnalysisTemplate(t.clone()).key().to_string(), "analysistemplate/error-rate");
    assert_eq!(
        t.args,
        [
            TemplateArg { name: "service".into(), value: None },
            TemplateArg { name: "prometheus".into(), value: Some("http://prometheus.monitoring:9090".into()) },
        ]
    );
    let m = &t.metrics[0];
    assert_eq!(m.name, "error-rate");
    assert_eq!((m.interval, m.count), (Some(Duration::from_secs(60)), Some(5)));
    assert_eq!((m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit), (1, 0, 4));
    assert_eq!(m.initial_delay, Duration::ZERO);
    assert_eq!(m.success, Some(Condition::parse("result < 0.01").unwrap()));
    assert_eq!(m.failure.as_ref().map(|c| c.eval(&Vars::result(0.2))), Some(Ok(true)));
    let Provider::Prometheus { address, query } = &m.provider else { panic!("{:?}", m.provider) };
    assert_eq!(address, "{{args.prometheus}}");
    let args = t.resolve_args(&BTreeMap::from([("service".to_string(), "web".to_string())])).unwrap();
    assert_eq!(render_args(address, &args).unwrap(), "http://prometheus.monitoring:9090");
    let rendered = render_args(query, &args).unwrap();
    assert!(rendered.contains("{service=\"web\",code=~\"5..\"}[1m]"), "{rendered}");
    assert!(rendered.contains("{service=\"web\"}[1m]"), "{rendered}");
}

#[test]
fn a_berth_template_loads() {
    let t = template(HTTP_SUCCESS);
    assert!(t.args.is_empty());
    let [success, latency] = &t.metrics[..] else { panic!() };
    assert_eq!(
        success.provider,
        Provider::HttpCheck { path: "/healthz".into(), port: 8080, measure: Measure::SuccessRatio }
    );
    assert_eq!((success.interval, success.count), (None, Some(1)), "no interval: measure once");
    assert_eq!(success.initial_delay, Duration::from_secs(10));
    assert_eq!(latency.provider, Provider::HttpCheck { path: "/".into(), port: 8080, measure: Measure::LatencyP99Ms });
    assert_eq!((latency.interval, latency.count), (Some(Duration::from_secs(30)), None), "unlimited");
    assert_eq!(latency.consecutive_error_limit, 2);
    let ok = latency.success.as_ref().unwrap();
    assert_eq!(ok.eval(&Vars::result(110.0).with_stable(100.0)), Ok(true));
    assert_eq!(ok.eval(&Vars::result(130.0).with_stable(100.0)), Ok(false));
}

#[test]
fn every_berth_measure_is_read() {
    assert_eq!(one_metric(RESTARTS).provider, Provider::Restarts);
    for (name, kind) in
        [("readiness", ProbeKind::Readiness), ("liveness", ProbeKind::Liveness), ("startup", ProbeKind::Startup)]
    {
        let m =
            one_metric(&format!("      provider: {{berth: {{probe: {name}}}}}\n      successCondition: result == 1\n"));
        assert_eq!(m.provider, Provider::Probe(kind));
    }
    let m = one_metric("      provider: {berth: {restarts: {}}}\n      failureCondition: result > 0\n      count: 1\n");
    assert_eq!((m.count, m.success.is_none()), (Some(1), true));
}

#[test]
fn berth_providers_are_checked() {
    let message = |p: &str| errors(&metric(&format!("      provider: {{berth: {p}}}\n")));
    assert_eq!(
        message("{httpCheck: {path: healthz, port: 0, measure: p50}}"),
        [
            "analysistemplate/t: spec.metrics[0].provider.berth.httpCheck.path: \"healthz\" does not start with /; write an absolute path such as /healthz",
            "analysistemplate/t: spec.metrics[0].provider.berth.httpCheck.port: 0 is not a port; use a port from 1 to 65535",
            "analysistemplate/t: spec.metrics[0].provider.berth.httpCheck.measure: \"p50\" is not a measure; use successRatio or latencyP99Ms",
        ]
    );
    assert_eq!(
        message("{httpCheck: {port: 65536}}"),
        ["analysistemplate/t: spec.metrics[0].provider.berth.httpCheck.port: 65536 is not a port; use a port from 1 to 65535"]
    );
    assert_eq!(
        message("{httpCheck: {path: /}}"),
        ["analysistemplate/t: spec.metrics[0].provider.berth.httpCheck.port: is required; give the container port to send requests to"]
    );
    assert_eq!(
        message("{probe: Readiness}"),
        ["analysistemplate/t: spec.metrics[0].provider.berth.probe: \"Readiness\" is not a probe; use readiness, liveness or startup"]
    );
    assert_eq!(
        message("{probe: readiness, restarts: {}}"),
        ["analysistemplate/t: spec.metrics[0].provider.berth: names probe and restarts: a metric takes one measure; give exactly one of httpCheck, probe or restarts"]
    );
    assert_eq!(
        message("{restarts: {since: 1h}}"),
        ["analysistemplate/t: spec.metrics[0].provider.berth.restarts.since is not a field of BerthRestarts; BerthRestarts takes no fields; write {}"]
    );
}

#[test]
fn other_providers_are_refused_by_name() {
    assert_eq!(
        errors(&metric("      provider: {datadog: {query: 'avg:errors{*}'}}\n")),
        ["analysistemplate/t: spec.metrics[0].provider.datadog is not supported by berth; use prometheus or berth"]
    );
    assert_eq!(
        errors(&metric("      provider: {web: {url: 'http://x'}, job: {backoffLimit: 1}}\n")),
        [
            "analysistemplate/t: spec.metrics[0].provider.web is not supported by berth; use prometheus or berth",
            "analysistemplate/t: spec.metrics[0].provider.job is not supported by berth; use prometheus or berth",
        ]
    );
    assert_eq!(
        errors(&metric("      provider: {prometheus: {address: 'http://p:9090', query: up}, berth: {restarts: {}}}\n")),
        ["analysistemplate/t: spec.metrics[0].provider: a metric has one provider, this one names prometheus and berth; keep one"]
    );
    assert_eq!(
        errors(&metric("      provider: {}\n")),
        ["analysistemplate/t: spec.metrics[0].provider: the provider names no source; use prometheus or berth"]
    );
    assert_eq!(
        errors(&metric("")),
        ["analysistemplate/t: spec.metrics[0].provider: the metric has no provider; add provider.prometheus or provider.berth"]
    );
    assert_eq!(
        errors(&metric("      provider: {prometheus: {address: 'http://p:9090', query: up, headers: [{key: a, value: b}]}}\n")),
        ["analysistemplate/t: spec.metrics[0].provider.prometheus.headers is not supported by berth; remove it; PrometheusMetric fields berth reads: address, query"]
    );
}

#[test]
fn prometheus_needs_a_url_and_a_query_using_declared_args() {
    let message = |address: &str, query: &str| {
        errors(&metric(&format!("      provider: {{prometheus: {{address: '{address}', query: '{query}'}}}}\n")))
    };
    assert_eq!(
        message("prometheus:9090", " "),
        [
            "analysistemplate/t: spec.metrics[0].provider.prometheus.address: \"prometheus:9090\" is not an http:// or https:// URL; give Prometheus' URL, e.g. http://prometheus:9090",
            "analysistemplate/t: spec.metrics[0].provider.prometheus.query: is required; give a PromQL query giving one number",
        ]
    );
    assert_eq!(
        errors(&metric("      provider: {prometheus: {}}\n")),
        [
            "analysistemplate/t: spec.metrics[0].provider.prometheus.address: is required; give Prometheus' URL, e.g. http://prometheus:9090",
            "analysistemplate/t: spec.metrics[0].provider.prometheus.query: is required; give a PromQL query giving one number",
        ]
    );
    assert_eq!(
        message("prometheus:9090", "up"),
        ["analysistemplate/t: spec.metrics[0].provider.prometheus.address: \"prometheus:9090\" is not an http:// or https:// URL; give Prometheus' URL, e.g. http://prometheus:9090"]
    );
    assert_eq!(
        message("https:///api", "up"),
        ["analysistemplate/t: spec.metrics[0].provider.prometheus.address: \"https:///api\" names no host; give Prometheus' URL, e.g. http://prometheus:9090"]
    );
    assert_eq!(
        message("http://{{args.host}}:9090", "up{job=\"{{args.svc}}\"} + {{ args.other }}"),
        [
            "analysistemplate/t: spec.metrics[0].provider.prometheus.address: {{args.host}} names an argument the template does not declare; declare it under spec.args (name: host) or fix the name",
            "analysistemplate/t: spec.metrics[0].provider.prometheus.query: {{args.other}} names an argument the template does not declare; declare it under spec.args (name: other) or fix the name",
        ]
    );
    assert_eq!(
        message("http://p:9090", "up{job=\"{{secrets.x}}\"}"),
        ["analysistemplate/t: spec.metrics[0].provider.prometheus.query: {{secrets.x}} is not a placeholder berth knows; write {{args.NAME}}; write placeholders as {{args.NAME}}"]
    );
    assert_eq!(
        message("http://p:9090", "up{job=\"{{args.svc\"}"),
        ["analysistemplate/t: spec.metrics[0].provider.prometheus.query: a {{ is never closed with }}; write placeholders as {{args.NAME}}"]
    );
    let m = one_metric(
        "      provider: {prometheus: {address: 'https://p.example/prom', query: 'up{job=\"{{args.svc}}\"}'}}\n",
    );
    assert!(matches!(m.provider, Provider::Prometheus { .. }));
}

#[test]
fn conditions_are_parsed_at_load_time() {
    assert_eq!(
        errors(&metric(&format!("      successCondition: (result >= 0.95))\n{RESTARTS}"))),
        ["analysistemplate/t: spec.metrics[0].successCondition: unexpected ')' at column 17; write a condition over result (and stable), e.g. result >= 0.95"]
    );
    assert_eq!(
        errors(&metric(&format!("      failureCondition: result[0] > 1\n{RESTARTS}"))),
        ["analysistemplate/t: spec.metrics[0].failureCondition: unexpected '[': berth gives result as one number, so write result, not result[0] at column 7; write a condition over result (and stable), e.g. result >= 0.95"]
    );
    assert_eq!(
        errors(&metric(&format!("      successCondition: result\n{RESTARTS}"))),
        ["analysistemplate/t: spec.metrics[0].successCondition: the condition is a number, not true or false at column 1; write a condition over result (and stable), e.g. result >= 0.95"]
    );
    assert_eq!(
        errors(&metric("      successCondition: result >= stable\n      provider: {prometheus: {address: 'http://p', query: up}}\n")),
        ["analysistemplate/t: spec.metrics[0].successCondition: this provider measures only the new pods, so the condition has no stable to read; compare result with a number; berth.httpCheck gives stable"]
    );
}

#[test]
fn counts_limits_and_durations() {
    let m = one_metric(&format!("      interval: 10s\n      count: '3'\n      failureLimit: 2\n      inconclusiveLimit: 1\n      consecutiveErrorLimit: 0\n{RESTARTS}"));
    assert_eq!((m.count, m.failure_limit, m.inconclusive_limit, m.consecutive_error_limit), (Some(3), 2, 1, 0));
    assert_eq!(
        errors(&metric(&format!("      count: 3\n{RESTARTS}"))),
        ["analysistemplate/t: spec.metrics[0].count: measuring 3 times needs an interval between the measurements; add interval, or leave count out to measure once"]
    );
    assert_eq!(
        errors(&metric(&format!("      interval: 0s\n      count: 0\n{RESTARTS}"))),
        [
            "analysistemplate/t: spec.metrics[0].interval: an interval of 0 would measure without pause; give a duration such as 30s or 5m, or leave interval out to measure once",
            "analysistemplate/t: spec.metrics[0].count: must be 1 or more, got 0; set it to 1 or more",
        ]
    );
    assert_eq!(
        errors(&metric(&format!("      interval: 1m\n      count: 2\n      failureLimit: 3\n      inconclusiveLimit: -1\n{RESTARTS}"))),
        [
            "analysistemplate/t: spec.metrics[0].failureLimit: 3 is more than count (2), so the limit can never be passed; lower failureLimit below count",
            "analysistemplate/t: spec.metrics[0].inconclusiveLimit: must be 0 or more, got -1; set it to 0 or more",
        ]
    );
    assert_eq!(
        errors(&metric(&format!("      interval: 1m\n      count: '{{{{args.svc}}}}'\n      initialDelay: -1m\n{RESTARTS}"))),
        [
            "analysistemplate/t: spec.metrics[0].count: \"{{args.svc}}\" is not a whole number; write a number of 1 or more (berth does not fill arguments into this field)",
            "analysistemplate/t: spec.metrics[0].initialDelay: \"-1m\" is negative; give a duration of 0 or more, such as 30s, 5m, 1h or a number of seconds",
        ]
    );
}

#[test]
fn names_and_args_are_unique() {
    let text = "apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: t}
spec:
  args: [{name: a}, {name: a}, {name: 'x.y'}, {value: v}]
  metrics:
    - {name: m, provider: {berth: {restarts: {}}}}
    - {name: m, provider: {berth: {restarts: {}}}}
    - {provider: {berth: {restarts: {}}}}
";
    assert_eq!(
        errors(text),
        [
            "analysistemplate/t: spec.args[1].name: another argument is also named \"a\"; declare each argument once",
            "analysistemplate/t: spec.args[2].name: \"x.y\" is not an argument name; use letters, digits, - and _ (the name is written {{args.NAME}})",
            "analysistemplate/t: spec.args[3].name: the argument has no name; set name",
            "analysistemplate/t: spec.metrics[1].name: metrics[0] is also named \"m\"; give each metric its own name",
            "analysistemplate/t: spec.metrics[2].name: the metric has no name; set name",
        ]
    );
    assert_eq!(
        errors("apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec: {metrics: []}\n"),
        ["analysistemplate/t: spec.metrics: the template has no metrics; add at least one metric with a provider"]
    );
    assert_eq!(
        errors("apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\n"),
        ["analysistemplate/t: spec: the AnalysisTemplate has no spec; add spec.metrics"]
    );
    assert_eq!(
        errors("apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: t}\nspec:\n  dryRun: [{metricName: m}]\n  metrics: [{name: m, provider: {berth: {restarts: {}}}}]\n"),
        ["analysistemplate/t: spec.dryRun is not supported by berth; remove it; AnalysisTemplateSpec fields berth reads: args, metrics"]
    );
}

#[test]
fn resolving_arguments() {
    let t = template(ERROR_RATE);
    let given = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let args = t.resolve_args(&given(&[("service", "web"), ("prometheus", "http://other")])).unwrap();
    assert_eq!(args["prometheus"], "http://other", "a given value overrides the default");
    assert_eq!(
        t.resolve_args(&given(&[("extra", "1")])),
        Err(vec![ArgsError::Missing("service".into()), ArgsError::Undeclared("extra".into())])
    );
    assert_eq!(render_args("{{args.nope}}", &args), Err(ArgsError::Missing("nope".into())));
    assert_eq!(render_args("a {{args.service}} b {{args.service}}", &args).unwrap(), "a web b web");
    assert_eq!(render_args("no placeholders {x}", &args).unwrap(), "no placeholders {x}");
}

#[test]
fn durations_read_like_argos() {
    let d = |s: &str| parse_duration(s);
    assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(d("1h2m3s"), Ok(Duration::from_secs(3723)));
    assert_eq!(d("1500ms"), Ok(Duration::from_millis(1500)));
    assert_eq!(d("0s"), Ok(Duration::ZERO));
    assert_eq!(d(""), Err("\"\" is not a duration".into()));
    assert_eq!(d("s"), Err("\"s\" is not a duration".into()));
    assert_eq!(d("5d"), Err("\"5d\" is not a duration: the units are ms, s, m and h".into()));
    assert_eq!(d("99999999999999999999h"), Err("\"99999999999999999999h\" is not a duration".into()));
    assert_eq!(d("9999999999999999999h"), Err("\"9999999999999999999h\" is too long".into()));
}

#[test]
fn measurements_are_judged_as_argo_does() {
    let judge = |success: Option<&str>, failure: Option<&str>, result: f64| {
        let mut m = one_metric(RESTARTS);
        m.success = success.map(|c| Condition::parse(c).unwrap());
        m.failure = failure.map(|c| Condition::parse(c).unwrap());
        m.assess(&Vars::result(result))
    };
    let (ok, bad) = (Some("result >= 0.9"), Some("result < 0.5"));
    assert_eq!(judge(ok, bad, 0.95), Ok(Assessment::Successful));
    assert_eq!(judge(ok, bad, 0.1), Ok(Assessment::Failed));
    assert_eq!(judge(ok, bad, 0.7), Ok(Assessment::Inconclusive), "both given, neither holds");
    assert_eq!(judge(ok, None, 0.7), Ok(Assessment::Failed), "only success: not holding fails");
    assert_eq!(judge(None, bad, 0.7), Ok(Assessment::Successful), "only failure: not holding passes");
    assert_eq!(judge(None, None, 0.0), Ok(Assessment::Successful));
    assert_eq!(judge(Some("true"), Some("true"), 0.0), Ok(Assessment::Failed), "failure wins");
    assert_eq!(
        judge(Some("true"), Some("stable > 1"), 0.0),
        Err(crate::expr::EvalError::Missing(crate::expr::Var::Stable)),
        "both conditions are evaluated"
    );
}
