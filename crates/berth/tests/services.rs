//! System tests of declared services: Kubernetes manifests applied with
//! the real binary and daemon, pods on real runc, Services as nftables
//! VIPs, DNS through the network's server. Each daemon has its own name
//! prefix, subnets and service range (see `berthd`); traffic goes only to
//! loopback, the daemon's VIPs and the test's pods; load is bounded.

mod berthd;
mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use berthd::Berthd;
use serde_json::Value;
use support::{images, require_root};

/// Back-off short enough for tests (the defaults are 10 s to 5 min).
const CONFIG: &str = "[services]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 8\ndrain_timeout_seconds = 10\n";

fn daemon() -> Berthd {
    require_root();
    let d = Berthd::start_with_config(&format!(
        "[containers]\ncgroup_parent = \"berth-test-{}\"\n{CONFIG}",
        std::process::id()
    ));
    d.ok(&["image", "import", &images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

/// A Deployment of busybox httpd pods that answer `/` with
/// `<greeting> <pod name>`, a Service `web` in front, readiness on HTTP,
/// liveness on the file /tmp/alive and readiness also on /tmp/ready.
fn web(replicas: u32, greeting: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, labels: {{app: web}}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 3
      initContainers:
        - name: init
          image: busybox:test
          command: [sh, -c, "echo prepared by init > /w/init.txt"]
          volumeMounts: [{{name: www, mountPath: /w}}]
      containers:
        - name: httpd
          image: busybox:test
          imagePullPolicy: Never
          command: [sh, -c]
          args:
            - echo "$GREETING $POD" > /w/index.html && touch /tmp/alive /tmp/ready && exec httpd -f -p 8080 -h /w
          env:
            - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: web, key: greeting}}}}}}
            - {{name: POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
          ports: [{{containerPort: 8080, name: http}}]
          readinessProbe:
            exec: {{command: [test, -f, /tmp/ready]}}
            periodSeconds: 1
            failureThreshold: 1
          livenessProbe:
            exec: {{command: [test, -f, /tmp/alive]}}
            periodSeconds: 1
            failureThreshold: 2
          lifecycle: {{preStop: {{sleep: {{seconds: 1}}}}}}
          volumeMounts:
            - {{name: www, mountPath: /w}}
            - {{name: creds, mountPath: /etc/creds, readOnly: true}}
          envFrom: [{{secretRef: {{name: web}}, prefix: S_}}]
      volumes:
        - {{name: www, emptyDir: {{}}}}
        - {{name: creds, secret: {{secretName: web}}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web}}
stringData: {{password: hunter2}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web}}
data: {{greeting: {greeting}}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: http}}]
"#
    )
}

fn write(d: &Berthd, name: &str, text: &str) -> PathBuf {
    let path = d.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn apply(d: &Berthd, name: &str, text: &str) -> String {
    let path = write(d, name, text);
    d.ok(&["apply", "-f", &path.display().to_string()])
}

fn pods(d: &Berthd) -> Vec<Value> {
    d.json(&["get", "pods"])["items"].as_array().cloned().unwrap_or_default()
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn name(p: &Value) -> String {
    p["metadata"]["name"].as_str().unwrap_or_default().to_string()
}

fn container_id(p: &Value) -> String {
    p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("berth://")
        .to_string()
}

fn restarts(p: &Value) -> u64 {
    p["status"]["containerStatuses"][0]["restartCount"].as_u64().unwrap_or(0)
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until exactly `n` pods exist, none terminating, all ready.
fn wait_ready(d: &Berthd, n: usize) -> Vec<Value> {
    wait_for(&format!("{n} ready pods"), 60, || {
        let p = pods(d);
        (p.len() == n && p.iter().all(|p| ready(p) && p["metadata"]["deletionTimestamp"].is_null())).then_some(p)
    })
}

fn cluster_ip(d: &Berthd) -> String {
    d.json(&["get", "services", "web"])["spec"]["clusterIP"].as_str().unwrap().to_string()
}

/// HTTP GET from the host with a short timeout; None when it fails.
fn get(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl").args(["-s", "-f", "-m", "3", url]).output().unwrap();
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A client that sends one request to `ip`:80, reads the answer and keeps
/// its end of the connection open until dropped (killed by PID).
struct Holder(std::process::Child);

impl Holder {
    fn spawn(ip: &str) -> Holder {
        let script = format!(
            "exec 3<>/dev/tcp/{ip}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3 >/dev/null; exec sleep 60"
        );
        Holder(std::process::Command::new("bash").args(["-c", &script]).spawn().expect("bash runs"))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pods that answered `n` requests to the VIP.
fn answering(ip: &str, n: usize) -> BTreeSet<String> {
    (0..n).map(|_| get(&format!("http://{ip}/")).expect("the VIP answers")).collect()
}

#[test]
fn three_replicas_serve_through_the_vip_and_by_dns_name() {
    let d = daemon();
    let out = apply(&d, "web.yaml", &web(3, "hello"));
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert!(out.contains("service/web created"), "{out}");
    let p = wait_ready(&d, 3);
    let names: BTreeSet<String> = p.iter().map(name).collect();
    let ip = cluster_ip(&d);
    // Equal weights over 3 backends: 60 requests reach all of them.
    let seen = answering(&ip, 60);
    let expected: BTreeSet<String> = names.iter().map(|n| format!("hello {n}")).collect();
    assert_eq!(seen, expected);
    // By name, from a container on the default network.
    for host in ["web", "web.default", "web.default.svc", "web.default.svc.cluster.local"] {
        let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host} 80 2>&1 | tail -n 1");
        let body = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", &script]);
        assert!(body.trim().starts_with("hello web-"), "{host}: {body:?}");
    }
    // The init container ran first, on the volume the pod shares.
    assert_eq!(get(&format!("http://{ip}/init.txt")).as_deref(), Some("prepared by init"));
    // The Secret as files and as environment, never printed by `get`.
    let pod = name(&p[0]);
    let pod_ref = format!("pod/{pod}");
    assert_eq!(d.ok(&["exec", &pod_ref, "--", "cat", "/etc/creds/password"]), "hunter2");
    assert!(d.ok(&["exec", &pod_ref, "--", "env"]).contains("S_password=hunter2"));
    assert_eq!(d.ok(&["exec", &pod_ref, "--", "sh", "-c", "stat -f -c %T /etc/creds"]).trim(), "tmpfs");
    let secret = d.ok(&["get", "secret", "web", "-o", "yaml"]);
    assert!(!secret.contains("hunter2") && !secret.contains("aHVudGVyMg"), "{secret}");
    let shown = d.json(&["get", "secret", "web", "--show-secrets"]);
    assert_eq!(shown["data"]["password"], "aHVudGVyMg==");
    // Read verbs as kubectl users know them.
    let table = d.ok(&["get", "pods"]);
    assert!(table.starts_with("NAME") && table.matches("Running").count() == 3, "{table}");
    let described = d.ok(&["describe", "pod", &pod]);
    for part in ["Readiness:", "Liveness:", "Started", "Ready"] {
        assert!(described.contains(part), "{part} missing from:\n{described}");
    }
    let deployment = d.ok(&["get", "deployments"]);
    assert!(deployment.contains("3/3"), "{deployment}");
    // A headless Service's name resolves to the ready pods themselves.
    let headless = "apiVersion: v1\nkind: Service\nmetadata: {name: web-pods}\nspec: {clusterIP: None, selector: {app: web}, ports: [{port: 8080}]}\n";
    apply(&d, "headless.yaml", headless);
    let answer = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", "nslookup web-pods"]);
    for p in &p {
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert!(answer.contains(ip), "{ip} missing from:\n{answer}");
    }
    // Applying the same file again changes nothing.
    let again = apply(&d, "web.yaml", &web(3, "hello"));
    assert_eq!(again.matches("unchanged").count(), 4, "{again}");
    let after: BTreeSet<String> = pods(&d).iter().map(name).collect();
    assert_eq!(after, names);
    // The Kubernetes form scripts rely on.
    let dep = d.json(&["get", "deployment", "web"]);
    assert_eq!(dep["kind"], "Deployment");
    assert_eq!(dep["status"]["readyReplicas"], 3);
    let list = d.json(&["get", "pods", "-l", "app=web"]);
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let ep = d.json(&["get", "endpoints", "web"]);
    assert_eq!(ep["subsets"][0]["addresses"].as_array().unwrap().len(), 3);
}

#[test]
fn a_killed_container_is_restarted_and_a_deleted_pod_replaced() {
    let d = daemon();
    apply(&d, "web.yaml", &web(2, "hi"));
    let p = wait_ready(&d, 2);
    let victim = name(&p[0]);
    d.ok(&["kill", &container_id(&p[0])]);
    let back = wait_for("the killed container to run again", 30, || {
        let p = pods(&d);
        p.into_iter().find(|p| name(p) == victim && restarts(p) == 1 && ready(p))
    });
    assert_eq!(back["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"], 137);
    d.ok(&["delete", "pod", &victim]);
    let p = wait_for("a replacement pod", 30, || {
        let p = pods(&d);
        (p.len() == 2 && p.iter().all(ready) && !p.iter().any(|p| name(p) == victim)).then_some(p)
    });
    assert!(p.iter().all(|p| restarts(p) == 0));
}

#[test]
fn liveness_failure_restarts_with_backoff_and_crashes_back_off() {
    let d = daemon();
    apply(&d, "web.yaml", &web(1, "hi"));
    let p = wait_ready(&d, 1);
    d.ok(&["exec", &container_id(&p[0]), "rm", "/tmp/alive"]);
    wait_for("a liveness restart", 30, || {
        let p = pods(&d);
        (p.len() == 1 && restarts(&p[0]) >= 1 && ready(&p[0])).then_some(())
    });
    let events = d.json(&["get", "events"]);
    let reasons: Vec<String> =
        events["items"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap_or("").to_string()).collect();
    assert!(reasons.contains(&"Unhealthy".to_string()), "{reasons:?}");
    assert!(reasons.contains(&"Killing".to_string()), "{reasons:?}");

    // A container that exits at once goes into CrashLoopBackOff, with
    // growing delays, its restart count and last exit shown.
    let crash = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: crash}
spec:
  replicas: 1
  selector: {matchLabels: {app: crash}}
  template:
    metadata: {labels: {app: crash}}
    spec:
      containers:
        - {name: c, image: busybox:test, command: [sh, -c, "exit 3"]}
"#;
    apply(&d, "crash.yaml", crash);
    let start = Instant::now();
    let p = wait_for("three restarts", 60, || {
        let p = d.json(&["get", "pods", "-l", "app=crash"])["items"][0].clone();
        (restarts(&p) >= 3).then_some(p)
    });
    // 1 s + 2 s + 4 s of back-off at least.
    assert!(start.elapsed() >= Duration::from_secs(6), "{:?}", start.elapsed());
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 3, "{p}");
    let table = d.ok(&["get", "pods", "-l", "app=crash"]);
    assert!(table.contains("CrashLoopBackOff") || table.contains("Running") || table.contains("Error"), "{table}");
}

#[test]
fn an_unready_pod_leaves_the_vip_but_keeps_running() {
    let d = daemon();
    apply(&d, "web.yaml", &web(2, "hi"));
    let p = wait_ready(&d, 2);
    let ip = cluster_ip(&d);
    let (sick, healthy) = (&p[0], &p[1]);
    d.ok(&["exec", &container_id(sick), "rm", "/tmp/ready"]);
    wait_for("the pod to turn unready", 20, || {
        pods(&d).iter().any(|p| name(p) == name(sick) && !ready(p)).then_some(())
    });
    // From now on every request reaches the other pod.
    assert_eq!(answering(&ip, 30), BTreeSet::from([format!("hi {}", name(healthy))]));
    let now = pods(&d);
    let sick_now = now.iter().find(|p| name(p) == name(sick)).unwrap();
    assert!(sick_now["status"]["containerStatuses"][0]["state"]["running"].is_object(), "{sick_now}");
    assert_eq!(restarts(sick_now), 0);
    d.ok(&["exec", &container_id(sick), "touch", "/tmp/ready"]);
    wait_ready(&d, 2);
    assert_eq!(answering(&ip, 40).len(), 2);
}

#[test]
fn a_template_change_rolls_the_pods() {
    let d = daemon();
    apply(&d, "web.yaml", &web(3, "v1"));
    let old: BTreeSet<String> = wait_ready(&d, 3).iter().map(name).collect();
    let ip = cluster_ip(&d);
    // A new ConfigMap value does not change the template (as in
    // Kubernetes); a new environment value does.
    let v2 = web(3, "v1").replace("- {name: POD,", "- {name: VERSION, value: \"2\"}\n            - {name: POD,");
    let out = apply(&d, "web.yaml", &v2);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let mut ready_min = 3;
    let new = wait_for("the rollout", 90, || {
        let p = pods(&d);
        let live: Vec<&Value> = p.iter().filter(|p| p["metadata"]["deletionTimestamp"].is_null()).collect();
        ready_min = ready_min.min(live.iter().filter(|p| ready(p)).count());
        let names: BTreeSet<String> = live.iter().map(|p| name(p)).collect();
        (p.len() == 3 && p.iter().all(ready) && names.is_disjoint(&old)).then_some(names)
    });
    assert_eq!(new.len(), 3);
    assert!(ready_min >= 2, "ready pods dropped to {ready_min} during the rollout");
    assert_eq!(answering(&ip, 30).len(), 3);
}

#[test]
fn delete_after_traffic_is_quick_and_leaves_no_container_backend_name_or_network_resource() {
    let d = daemon();
    let path = write(&d, "web.yaml", &web(2, "bye"));
    d.ok(&["apply", "-f", &path.display().to_string()]);
    wait_ready(&d, 2);
    let ip = cluster_ip(&d);
    // Traffic leaves closed connections in conntrack (TIME_WAIT and the
    // like) for up to two minutes; they must not hold the pods.
    assert_eq!(answering(&ip, 20).len(), 2);
    // And clients that read their answer but keep their end open: the
    // server has closed, so conntrack holds them in CLOSE_WAIT for a
    // minute; they can carry no more requests and must not hold the pods.
    let holders: Vec<Holder> = (0..4).map(|_| Holder::spawn(&ip)).collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The Deployment first: its Service stays, so the pods drain
    // through its VIP.
    let started = std::time::Instant::now();
    d.ok(&["delete", "deployment", "web"]);
    wait_for("the pods to go", 60, || pods(&d).is_empty().then_some(()));
    // preStop (1 s) and the grace period (3 s) bound it; a drain waiting
    // for closing connections took the whole drain timeout (30 s).
    let took = started.elapsed();
    drop(holders);
    assert!(took < std::time::Duration::from_secs(5), "the pods took {took:?} to go");
    let out = d.ok(&["delete", "-f", &path.display().to_string(), "--ignore-not-found"]);
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(d.ok(&["ps", "-a", "-q"]).trim(), "");
    assert!(get(&format!("http://{ip}/")).is_none());
    let table = std::process::Command::new("nft").args(["list", "table", "ip", &d.prefix]).output().unwrap();
    let rules = String::from_utf8_lossy(&table.stdout);
    assert!(!rules.contains("svc/"), "{rules}");
    let netns: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    assert!(!netns.iter().any(|n| n.starts_with(&format!("{}-", d.prefix))), "{netns:?}");
    let net = d.json(&["network", "inspect", "berth"]);
    assert_eq!(net["containers"].as_array().map_or(0, Vec::len), 0, "{net}");
    let script = "nslookup web 2>&1; true";
    let answer = d.ok(&["run", "--rm", "busybox:test", "sh", "-c", script]);
    assert!(!answer.contains(&ip), "{answer}");
}

#[test]
fn a_daemon_killed_mid_reconcile_resumes_without_restarting_healthy_pods() {
    let mut d = daemon();
    apply(&d, "web.yaml", &web(3, "k"));
    // Killed twice while the pods are being made, at different steps.
    for pause in [250, 600] {
        std::thread::sleep(Duration::from_millis(pause));
        d.kill_9();
        d.restart();
    }
    let before = wait_ready(&d, 3);
    let ids: BTreeSet<String> = before.iter().map(container_id).collect();
    assert_eq!(ids.len(), 3);
    // Killed again in the steady state: everything is adopted as it was.
    d.kill_9();
    d.restart();
    let after = wait_ready(&d, 3);
    let ids_after: BTreeSet<String> = after.iter().map(container_id).collect();
    assert_eq!(ids_after, ids, "healthy pods were replaced");
    assert!(after.iter().all(|p| restarts(p) == 0));
    let running: BTreeSet<String> =
        d.json(&["ps"]).as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(running, ids);
    assert_eq!(answering(&cluster_ip(&d), 30).len(), 3);
}

#[test]
fn scaling_from_three_to_one_under_load_fails_no_request() {
    let d = daemon();
    apply(&d, "web.yaml", &web(3, "load"));
    wait_ready(&d, 3);
    let ip = cluster_ip(&d);
    // 200 requests per second for 30 s, a new connection each.
    let load = std::process::Command::new("hey")
        .args(["-z", "30s", "-c", "4", "-q", "50", "-t", "5", "-disable-keepalive", &format!("http://{ip}/")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run hey");
    std::thread::sleep(Duration::from_secs(5));
    let out = d.ok(&["scale", "deployment/web", "--replicas", "1"]);
    assert!(out.contains("scaled"), "{out}");
    let report = load.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(!report.contains("Error distribution"), "{report}");
    let ok: u64 = report
        .lines()
        .skip_while(|l| !l.contains("Status code distribution"))
        .find_map(|l| l.trim().strip_prefix("[200]").and_then(|r| r.split_whitespace().next()?.parse().ok()))
        .unwrap_or(0);
    assert!(ok >= 5000, "only {ok} requests succeeded:\n{report}");
    assert!(!report.lines().any(|l| l.trim().starts_with('[') && !l.trim().starts_with("[200]")), "{report}");
    wait_ready(&d, 1);
}

#[test]
fn bad_manifests_are_refused_with_the_place_and_change_nothing() {
    let d = daemon();
    let cases = [
        ("apiVersion: v1\nkind: Service\nmetadata: {name: x\n", "bad.yaml:"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "not a kind berth reads"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {matchLabels: {app: w}}\n  template:\n    metadata: {labels: {app: w}}\n    spec:\n      hostNetwork: true\n      containers: [{name: c, image: busybox:test}]\n",
            "spec.template.spec.hostNetwork is not supported by berth",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec:\n  selector: {matchLabels: {app: other}}\n  template:\n    metadata: {labels: {app: w}}\n    spec:\n      containers: [{name: c, image: busybox:test}]\n",
            "do not match spec.selector",
        ),
        (
            "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  selector: {matchLabels: {app: r}}\n  template:\n    metadata: {labels: {app: r}}\n    spec:\n      containers: [{name: c, image: busybox:test}]\n  strategy: {canary: {steps: [{setWeight: 120}, {pause: {duration: -5s}}]}}\n",
            "setWeight",
        ),
    ];
    for (text, expected) in cases {
        let path = write(&d, "bad.yaml", text);
        let (code, err) = d.fails(&["apply", "-f", &path.display().to_string()]);
        assert_ne!(code, 0);
        assert!(err.contains(expected), "{text}\n=> {err}");
    }
    assert!(pods(&d).is_empty());
    assert!(d.json(&["get", "deployments"])["items"].as_array().unwrap().is_empty());

    // A missing ConfigMap: the pod waits with Kubernetes' reason, and
    // starts once the ConfigMap exists.
    let text = web(1, "late");
    let without: String =
        text.split("---").filter(|doc| !doc.contains("kind: ConfigMap")).collect::<Vec<_>>().join("---");
    apply(&d, "web.yaml", &without);
    let p = wait_for("CreateContainerConfigError", 30, || {
        let p = pods(&d);
        p.first()
            .filter(|p| {
                p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CreateContainerConfigError"
            })
            .cloned()
    });
    let message = p["status"]["containerStatuses"][0]["state"]["waiting"]["message"].as_str().unwrap_or("");
    assert!(message.contains("configmap \"web\" not found"), "{message}");
    apply(&d, "web.yaml", &text);
    wait_ready(&d, 1);

    // An image that cannot be pulled: ErrImagePull, then ImagePullBackOff,
    // with the registry's message.
    let registry = support::Registry::start();
    let missing = registry.image_ref("nothing/here:1");
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: ghost}}\nspec:\n  selector: {{matchLabels: {{app: ghost}}}}\n  template:\n    metadata: {{labels: {{app: ghost}}}}\n    spec:\n      containers: [{{name: c, image: \"{missing}\"}}]\n"
    );
    apply(&d, "ghost.yaml", &text);
    let waiting = wait_for("ImagePullBackOff", 60, || {
        let p = d.json(&["get", "pods", "-l", "app=ghost"])["items"][0].clone();
        let w = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ImagePullBackOff").then_some(w)
    });
    assert!(waiting["message"].as_str().unwrap_or("").contains("nothing/here"), "{waiting}");
}

#[test]
fn a_node_port_service_answers_on_the_host() {
    let d = daemon();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        30000 + p % 2700
    };
    let text = web(1, "node").replace(
        "  ports: [{port: 80, targetPort: http}]",
        &format!("  type: NodePort\n  ports: [{{port: 80, targetPort: http, nodePort: {port}}}]"),
    );
    // A second container in the pod shares its network: it reaches the
    // web server on localhost.
    let text = text.replace(
        "      volumes:\n",
        "        - name: sidecar\n          image: busybox:test\n          command: [sh, -c, \"while true; do printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc 127.0.0.1 8080 > /tmp/seen; sleep 0.5; done\"]\n      volumes:\n",
    );
    // ... and a memory emptyDir is a tmpfs of its sizeLimit.
    let text = text.replace(
        "      volumes:\n",
        "          volumeMounts: [{name: scratch, mountPath: /scratch}]\n      volumes:\n        - {name: scratch, emptyDir: {medium: Memory, sizeLimit: 1Mi}}\n",
    );
    apply(&d, "web.yaml", &text);
    let p = wait_ready(&d, 1);
    let pod_ref = format!("pod/{}", name(&p[0]));
    let mounts = d.ok(&["exec", &pod_ref, "-c", "sidecar", "--", "cat", "/proc/mounts"]);
    let scratch = mounts.lines().find(|l| l.split_whitespace().nth(1) == Some("/scratch")).unwrap_or_default();
    assert!(scratch.contains(" tmpfs ") && scratch.contains("size=1024k"), "{mounts}");
    let (code, _) = d.fails(&[
        "exec",
        &pod_ref,
        "-c",
        "sidecar",
        "--",
        "sh",
        "-c",
        "dd if=/dev/zero of=/scratch/big bs=1024 count=2048",
    ]);
    assert_ne!(code, 0);
    wait_for("the sidecar to reach localhost:8080", 10, || {
        let seen = d.ok(&["exec", &pod_ref, "-c", "sidecar", "--", "sh", "-c", "cat /tmp/seen 2>/dev/null; true"]);
        seen.contains("node web-").then_some(())
    });
    let body = wait_for("the node port", 10, || get(&format!("http://127.0.0.1:{port}/")));
    assert!(body.starts_with("node web-"), "{body}");
    let svc = d.json(&["get", "service", "web"]);
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], port);
}
