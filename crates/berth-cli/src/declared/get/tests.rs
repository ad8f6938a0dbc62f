use serde_json::json;

use super::*;
use crate::output::format_table;

fn now() -> DateTime<Utc> {
    age::parse("2026-03-01T12:00:00Z").unwrap()
}

fn render(kind: Kind, items: &[Value], layout: Layout) -> Vec<String> {
    let t = table(kind, items, layout, now());
    format_table(&t.header, &t.rows)
}

fn web_pod(name: &str, ns: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-03-01T11:57:30Z",
                     "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": true}]},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
        "status": {"phase": "Running", "podIP": "10.88.0.5", "hostIP": "192.168.1.10",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": true, "restartCount": 2,
                                          "containerID": format!("berth://{}", "c".repeat(64)),
                                          "state": {"running": {"startedAt": "2026-03-01T11:58:00Z"}},
                                          "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled",
                                                                       "finishedAt": "2026-03-01T11:57:59Z"}}}]}
    })
}

#[test]
fn pods_table() {
    let lines = render(Kind::Pod, &[web_pod("web-5d8f7-abcde", "default")], Layout::default());
    assert_eq!(
        lines,
        [
            "NAME              READY   STATUS    RESTARTS       AGE",
            "web-5d8f7-abcde   1/1     Running   2 (2m1s ago)   2m30s",
        ]
    );
}

#[test]
fn pods_wide_across_namespaces() {
    let layout = Layout { wide: true, namespaces: true, kind_prefix: false };
    let lines = render(Kind::Pod, &[web_pod("web-1", "shop")], layout);
    assert_eq!(lines[0], "NAMESPACE   NAME    READY   STATUS    RESTARTS       AGE     IP          NODE");
    assert_eq!(lines[1], "shop        web-1   1/1     Running   2 (2m1s ago)   2m30s   10.88.0.5   192.168.1.10");
}

#[test]
fn several_types_prefix_names() {
    let layout = Layout { kind_prefix: true, ..Layout::default() };
    let t = table(Kind::Pod, &[web_pod("web-1", "default")], layout, now());
    assert_eq!(t.rows[0][0], "pod/web-1");
    let dep = json!({"metadata": {"name": "web"}, "spec": {"replicas": 1}});
    assert_eq!(table(Kind::Deployment, &[dep], layout, now()).rows[0][0], "deployment.apps/web");
}

#[test]
fn deployments_table() {
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-02-27T12:00:00Z"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "front"}},
                 "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"},
                                                      {"name": "log", "image": "busybox"}]}}},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1}
    });
    let t = table(Kind::Deployment, std::slice::from_ref(&dep), Layout::default(), now());
    assert_eq!(t.rows, [["web", "2/3", "3", "2", "2d"]]);
    let t = table(Kind::Deployment, &[dep], Layout { wide: true, ..Layout::default() }, now());
    assert_eq!(t.header[5..], ["CONTAINERS", "IMAGES", "SELECTOR"]);
    assert_eq!(t.rows[0][5..], ["web,log", "nginx:1.27,busybox", "app=web,tier=front"]);
}

#[test]
fn a_new_deployment_without_status() {
    let dep =
        json!({"metadata": {"name": "web", "creationTimestamp": "2026-03-01T11:59:59Z"}, "spec": {"replicas": 2}});
    assert_eq!(table(Kind::Deployment, &[dep], Layout::default(), now()).rows, [["web", "0/2", "0", "0", "1s"]]);
}

#[test]
fn service_ports_and_columns() {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "creationTimestamp": "2026-03-01T09:00:00Z"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                           {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP", "nodePort": 30443},
                           {"name": "dns", "port": 53, "protocol": "UDP"}]}
    });
    assert_eq!(service_ports(&svc), "80/TCP,443:30443/TCP,53/UDP");
    let t = table(Kind::Service, &[svc], Layout { wide: true, ..Layout::default() }, now());
    assert_eq!(t.rows, [["web", "NodePort", "10.96.0.10", "<none>", "80/TCP,443:30443/TCP,53/UDP", "3h", "app=web"]]);
    assert_eq!(service_ports(&json!({"spec": {}})), "<none>");
    let lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
    assert_eq!(external_ip(&lb), "<pending>");
    assert_eq!(service_ports(&lb), "80/TCP");
}

fn endpoints_of(ips: &[&str], ports: Value) -> Value {
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    json!({"metadata": {"name": "web", "creationTimestamp": "2026-03-01T11:00:00Z"},
           "subsets": [{"addresses": addresses, "notReadyAddresses": [{"ip": "10.0.0.99"}], "ports": ports}]})
}

#[test]
fn endpoints_listing_and_truncation() {
    let two = endpoints_of(&["10.0.0.5", "10.0.0.6"], json!([{"name": "http", "port": 80, "protocol": "TCP"}]));
    assert_eq!(endpoints(&two, None), "10.0.0.5:80,10.0.0.6:80");
    let five = endpoints_of(
        &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"],
        json!([{"name": "http", "port": 80}]),
    );
    assert_eq!(endpoints(&five, None), "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...");
    assert_eq!(endpoints(&json!({"metadata": {"name": "web"}}), None), "<none>");
    assert_eq!(
        endpoints(&json!({"subsets": [{"addresses": [{"ip": "fd00::5"}], "ports": [{"port": 80}]}]}), None),
        "[fd00::5]:80"
    );
    let t = table(Kind::Endpoints, &[two], Layout::default(), now());
    assert_eq!(t.rows, [["web", "10.0.0.5:80,10.0.0.6:80", "60m"]]);
}

#[test]
fn endpoints_of_one_named_port() {
    let ep = endpoints_of(&["10.0.0.5"], json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]));
    assert_eq!(endpoints(&ep, None), "10.0.0.5:80,10.0.0.5:9090");
    assert_eq!(endpoints(&ep, Some("metrics")), "10.0.0.5:9090");
    assert_eq!(endpoints(&ep, Some("grpc")), "<none>");
}

#[test]
fn configmaps_and_secrets_count_keys() {
    let cm =
        json!({"metadata": {"name": "app", "creationTimestamp": "2026-03-01T11:59:15Z"}, "data": {"a": "1", "b": "2"}});
    assert_eq!(table(Kind::ConfigMap, &[cm], Layout::default(), now()).rows, [["app", "2", "45s"]]);
    let hidden = json!({"metadata": {"name": "db", "creationTimestamp": "2026-03-01T11:00:00Z",
                                     "annotations": {"berth.dev/data-keys": "password,user"}},
                        "type": "Opaque"});
    let shown = json!({"metadata": {"name": "tls", "creationTimestamp": "2026-03-01T11:00:00Z"},
                       "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eQ==", "ca.crt": "eg=="}});
    let t = table(Kind::Secret, &[hidden, shown], Layout::default(), now());
    assert_eq!(t.rows, [["db", "Opaque", "2", "60m"], ["tls", "kubernetes.io/tls", "3", "60m"]]);
}

#[test]
fn events_sorted_by_last_seen() {
    let ev = |reason: &str, last: &str, kind: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": format!("{name}.1"), "namespace": "default"},
               "involvedObject": {"kind": kind, "name": name, "namespace": "default"},
               "reason": reason, "message": format!("{reason} happened\n"), "type": "Normal", "count": 2,
               "firstTimestamp": "2026-03-01T11:00:00Z", "lastTimestamp": last})
    };
    let items = [
        ev("Started", "2026-03-01T11:59:00Z", "Pod", "web-abc"),
        ev("ScalingReplicaSet", "2026-03-01T11:50:00Z", "Deployment", "web"),
    ];
    let lines = render(Kind::Event, &items, Layout::default());
    assert_eq!(
        lines,
        [
            "LAST SEEN   TYPE     REASON              OBJECT           MESSAGE",
            "10m         Normal   ScalingReplicaSet   deployment/web   ScalingReplicaSet happened",
            "60s         Normal   Started             pod/web-abc      Started happened",
        ]
    );
    let t = table(Kind::Event, &items, Layout { wide: true, ..Layout::default() }, now());
    assert_eq!(t.rows[0][5..], ["60m", "2"]);
}

#[test]
fn names_and_lists() {
    assert_eq!(name_line(Kind::Pod, &web_pod("web-abc", "default")), "pod/web-abc");
    assert_eq!(name_line(Kind::Deployment, &json!({"metadata": {"name": "web"}})), "deployment.apps/web");
    let l = list(vec![json!({"kind": "Pod"})]);
    assert_eq!(l["kind"], "List");
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
}

fn canary_rollout() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-03-01T11:50:00Z"},
        "spec": {"replicas": 4, "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]}}},
        "status": {"phase": "Paused", "currentStepIndex": 1, "replicas": 5, "updatedReplicas": 1, "availableReplicas": 5,
                   "canary": {"weights": {"canary": {"podTemplateHash": "new", "weight": 20},
                                          "stable": {"podTemplateHash": "old", "weight": 80}}}}
    })
}

#[test]
fn rollouts_table_with_argo_columns_and_where_each_stands() {
    let blue_green = json!({
        "kind": "Rollout",
        "metadata": {"name": "api", "namespace": "default", "creationTimestamp": "2026-03-01T11:00:00Z"},
        "spec": {"replicas": 2, "strategy": {"blueGreen": {"activeService": "api"}}},
        "status": {"phase": "Healthy", "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                   "blueGreen": {"activeSelector": "abc", "previewSelector": "abc"}}
    });
    let lines = render(Kind::Rollout, &[canary_rollout(), blue_green.clone()], Layout::default());
    assert_eq!(
        lines,
        [
            "NAME   DESIRED   CURRENT   UP-TO-DATE   AVAILABLE   AGE",
            "web    4         5         1            5           10m",
            "api    2         2         2            2           60m",
        ]
    );
    let wide = render(Kind::Rollout, &[canary_rollout(), blue_green], Layout { wide: true, ..Layout::default() });
    assert!(wide[1].ends_with("Canary      Paused    1/3    20           -"), "{}", wide[1]);
    assert!(wide[2].ends_with("BlueGreen   Healthy   -      -            abc"), "{}", wide[2]);
    // A rollout with no status yet still renders.
    let bare = json!({"kind": "Rollout", "metadata": {"name": "new"}, "spec": {"strategy": {"canary": {}}}});
    assert_eq!(render(Kind::Rollout, &[bare], Layout { wide: true, ..Layout::default() }).len(), 2);
}

#[test]
fn analysis_templates_table() {
    let t = json!({"kind": "AnalysisTemplate", "metadata": {"name": "success", "creationTimestamp": "2026-03-01T11:59:00Z"},
                   "spec": {"metrics": [{"name": "a", "provider": {"berth": {}}}, {"name": "b", "provider": {"prometheus": {}}}]}});
    let lines = render(Kind::AnalysisTemplate, &[t], Layout { wide: true, ..Layout::default() });
    assert_eq!(lines, ["NAME      METRICS   AGE   PROVIDERS", "success   2         60s   berth,prometheus"]);
}
