use super::*;
use crate::load;

const WEB: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 80, name: http}]
          readinessProbe: {httpGet: {port: http}}
";

/// The same template written differently: other field order, flow style,
/// quoting, defaults spelled out.
const WEB_REWRITTEN: &str = "kind: Deployment
apiVersion: apps/v1
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  template:
    spec:
      terminationGracePeriodSeconds: 30
      restartPolicy: Always
      containers:
        - readinessProbe:
            periodSeconds: 10
            httpGet: {path: /, port: 80, scheme: HTTP}
            failureThreshold: 3
          ports:
            - {protocol: TCP, name: 'http', containerPort: 80}
          image: \"nginx:1.27\"
          name: web
    metadata:
      labels: {\"app\": web}
  selector:
    matchLabels: {app: web}
";

fn deployment(text: &str) -> DeploymentSpec {
    match load(text).unwrap_or_else(|e| panic!("{e}")).remove(0) {
        Object::Deployment(d) => d,
        other => panic!("not a deployment: {other:?}"),
    }
}

#[test]
fn defaults_are_applied() {
    let d = deployment(WEB);
    assert_eq!(d.meta.namespace, "default");
    assert_eq!(d.replicas, 1);
    assert_eq!(d.strategy, Strategy::DEFAULT);
    assert_eq!(d.progress_deadline.as_secs(), 600);
    assert_eq!(d.revision_history_limit, 10);
    assert_eq!(d.template.termination_grace_period.as_secs(), 30);
    let c = &d.template.containers[0];
    assert_eq!(c.pull_policy, PullPolicy::IfNotPresent);
    let probe = c.readiness_probe.as_ref().unwrap();
    assert_eq!(
        (probe.period.as_secs(), probe.timeout.as_secs(), probe.success_threshold, probe.failure_threshold),
        (10, 1, 1, 3)
    );
    assert_eq!(
        probe.handler,
        ProbeHandler::HttpGet(HttpGet { path: "/".into(), port: 80, scheme: Scheme::Http, headers: vec![] }),
        "the named port resolves to its number"
    );
    assert_eq!(Object::Deployment(d).key().to_string(), "deployment/web");
}

#[test]
fn template_hash_ignores_spelling_but_not_meaning() {
    let a = deployment(WEB).template.hash();
    let b = deployment(WEB_REWRITTEN).template.hash();
    assert_eq!(a, b);
    assert_eq!(a.as_str().len(), 10);
    assert!(a.as_str().bytes().all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)));
    let changed = deployment(&WEB.replace("nginx:1.27", "nginx:1.28")).template.hash();
    assert_ne!(a, changed);
    // Replicas and strategy are not part of the template.
    let scaled = deployment(&WEB.replace("spec:\n  selector", "spec:\n  replicas: 5\n  selector")).template.hash();
    assert_eq!(a, scaled);
}

#[test]
fn pull_policy_follows_the_tag() {
    let policy = |image: &str| deployment(&WEB.replace("nginx:1.27", image)).template.containers[0].pull_policy;
    assert_eq!(policy("nginx"), PullPolicy::Always);
    assert_eq!(policy("nginx:latest"), PullPolicy::Always);
    assert_eq!(policy("nginx:1.27"), PullPolicy::IfNotPresent);
    assert_eq!(
        policy("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        PullPolicy::IfNotPresent
    );
}

#[test]
fn rolling_update_resolves_like_kubernetes() {
    let s = Strategy::DEFAULT;
    assert_eq!(s.resolve(4), Some((1, 1)));
    assert_eq!(s.resolve(10), Some((3, 2)), "surge rounds up, unavailable down");
    assert_eq!(s.resolve(1), Some((1, 0)));
    assert_eq!(s.resolve(0), Some((0, 1)), "never both zero");
    let fixed =
        Strategy::RollingUpdate { max_surge: IntOrPercent::Count(0), max_unavailable: IntOrPercent::Percent(50) };
    assert_eq!(fixed.resolve(3), Some((0, 1)));
    assert_eq!(Strategy::Recreate.resolve(3), None);
}

#[test]
fn secrets_never_print_their_values() {
    let objects = load("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: shop}\ndata: {a: aHVudGVyMg==}\nstringData: {b: topsecret}\n").unwrap();
    let Object::Secret(s) = &objects[0] else { panic!() };
    let shown = format!("{s:?} {s:#?}");
    assert!(!shown.contains("hunter2") && !shown.contains("topsecret"), "{shown}");
    assert!(shown.contains("<redacted, 7 bytes>"), "{shown}");
    assert_eq!(s.data["a"].expose(), b"hunter2");
    assert_eq!(s.data["b"].expose(), b"topsecret");
    assert_eq!(objects[0].key().to_string(), "secret/shop/s");
}

#[test]
fn string_data_wins_over_data() {
    let objects =
        load("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {a: b2xk}\nstringData: {a: new}\n").unwrap();
    let Object::Secret(s) = &objects[0] else { panic!() };
    assert_eq!(s.data["a"].expose(), b"new");
}
