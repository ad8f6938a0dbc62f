use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    age::parse("2026-03-01T12:00:00Z").unwrap()
}

fn events() -> Vec<Value> {
    vec![
        json!({"kind": "Event", "involvedObject": {"kind": "Pod", "name": "web-5d8f7-abcde"},
               "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container web",
               "count": 3, "firstTimestamp": "2026-03-01T11:50:00Z", "lastTimestamp": "2026-03-01T11:58:00Z",
               "source": {"component": "berth"}}),
        json!({"kind": "Event", "involvedObject": {"kind": "Pod", "name": "web-5d8f7-abcde"},
               "type": "Normal", "reason": "Pulled", "message": "Container image \"nginx:1.27\" already present",
               "count": 1, "firstTimestamp": "2026-03-01T11:49:00Z", "lastTimestamp": "2026-03-01T11:49:00Z"}),
    ]
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-5d8f7-abcde", "namespace": "default", "creationTimestamp": "2026-03-01T11:48:00Z",
                     "labels": {"app": "web", "pod-template-hash": "5d8f7"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "controller": true}]},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "busybox", "command": ["sh", "-c", "echo migrated"]}],
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "envFrom": [{"configMapRef": {"name": "app"}}],
                "resources": {"limits": {"memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5, "failureThreshold": 1},
                "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "initialDelaySeconds": 2},
                "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]
            }],
            "volumes": [{"name": "cache", "emptyDir": {}}]
        },
        "status": {
            "phase": "Running", "podIP": "10.88.0.5", "hostIP": "192.168.1.10", "startTime": "2026-03-01T11:48:00Z",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "False"}],
            "initContainerStatuses": [{"name": "migrate", "ready": true, "restartCount": 0,
                "containerID": format!("berth://{}", "f".repeat(64)),
                "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                         "startedAt": "2026-03-01T11:48:01Z", "finishedAt": "2026-03-01T11:48:02Z"}}}],
            "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3,
                "containerID": format!("berth://{}", "a".repeat(64)),
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                             "startedAt": "2026-03-01T11:57:00Z", "finishedAt": "2026-03-01T11:58:00Z"}}}]
        }
    })
}

#[test]
fn pod_with_containers_probes_environment_and_events() {
    let text = render(Kind::Pod, &pod(), &Related { events: Some(Ok(events())), endpoints: None }, now());
    for want in [
        "Name:           web-5d8f7-abcde\n",
        "Namespace:      default\n",
        "Node:           192.168.1.10\n",
        "Start Time:     Sun, 01 Mar 2026 11:48:00 +0000\n",
        "Labels:         app=web\n                pod-template-hash=5d8f7\n",
        "Annotations:    <none>\n",
        "Status:         Running\n",
        "IP:             10.88.0.5\n",
        "Controlled By:  Deployment/web\n",
        "Init Containers:\n  migrate:\n",
        "    Command:        sh\n                    -c\n                    echo migrated\n",
        "    State:          Terminated\n      Reason:       Completed\n      Exit Code:    0\n",
        "Containers:\n  web:\n",
        &format!("    Container ID:   berth://{}\n", "a".repeat(64)),
        "    Image:          nginx:1.27\n",
        "    Port:           80/TCP\n",
        "    State:          Waiting\n      Reason:       CrashLoopBackOff\n",
        "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n",
        "    Ready:          False\n",
        "    Restart Count:  3\n",
        "    Limits:\n      memory:       128Mi\n",
        "    Liveness:       http-get http://:80/ delay=0s timeout=1s period=10s #success=1 #failure=3\n",
        "    Readiness:      tcp-socket :http delay=0s timeout=1s period=5s #success=1 #failure=1\n",
        "    Startup:        exec [cat /tmp/ready] delay=2s timeout=1s period=10s #success=1 #failure=3\n",
        "    Environment Variables from:\n      app:          ConfigMap  Optional: false\n",
        "      MODE:         prod\n",
        "      PASSWORD:     <set to the key 'password' in secret 'db'>  Optional: false\n",
        "      POD:          (v1:metadata.name)\n",
        "    Mounts:         /cache from cache (rw)\n",
        "Conditions:\n  Type          Status\n  ----          ------\n  Initialized   True\n  Ready         False\n",
        "Volumes:\n  cache:\n    Type:  EmptyDir",
        "Events:\n  Type      Reason    Age                From    Message\n",
        "  Normal    Pulled    11m                berth   Container image \"nginx:1.27\" already present\n",
        "  Warning   BackOff   2m (x3 over 10m)   berth   Back-off restarting failed container web\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn a_terminating_pod_and_no_events() {
    let mut p = pod();
    p["metadata"]["deletionTimestamp"] = json!("2026-03-01T11:59:30Z");
    p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let text = render(Kind::Pod, &p, &Related { events: Some(Ok(vec![])), endpoints: None }, now());
    assert!(
        text.contains("Status:                    Terminating (since Sun, 01 Mar 2026 11:59:30 +0000)\n"),
        "{text}"
    );
    assert!(text.contains("Termination Grace Period:  30s\n"), "{text}");
    assert!(text.ends_with("Events:  <none>\n"), "{text}");
    let text = render(Kind::Pod, &p, &Related { events: Some(Err("timeout".into())), endpoints: None }, now());
    assert!(text.ends_with("Events:  <cannot list them: timeout>\n"), "{text}");
}

#[test]
fn deployment_summary() {
    let dep = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "creationTimestamp": "2026-03-01T10:00:00Z",
                     "labels": {"app": "web"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "core"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                                       "ports": [{"containerPort": 80}, {"containerPort": 443}]}]}}},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1,
                   "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
    });
    let text = render(Kind::Deployment, &dep, &Related { events: Some(Ok(vec![])), endpoints: None }, now());
    for want in [
        "Name:                   web\n",
        "Namespace:              shop\n",
        "CreationTimestamp:      Sun, 01 Mar 2026 10:00:00 +0000\n",
        "Annotations:            team: core\n",
        "Selector:               app=web\n",
        "Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable\n",
        "StrategyType:           RollingUpdate\n",
        "RollingUpdateStrategy:  0 max unavailable, 1 max surge\n",
        "Pod Template:\n  Labels:  app=web\n  Containers:\n   web:\n",
        "     Image:        nginx:1.27\n     Ports:        80/TCP, 443/TCP\n",
        "     Environment:  <none>\n",
        "     Mounts:       <none>\n  Volumes:  <none>\nConditions:\n",
        "  Type          Status   Reason\n",
        "  Available     False    MinimumReplicasUnavailable\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("last-applied"), "{text}");
    assert!(!text.contains("Container ID"), "a template has no status: {text}");
}

#[test]
fn service_with_its_endpoints_per_port() {
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080},
                           {"name": "metrics", "port": 9090, "protocol": "TCP"}]}
    });
    let eps = json!({"subsets": [{"addresses": [{"ip": "10.88.0.5"}, {"ip": "10.88.0.6"}],
                                  "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]}]});
    let text = render(Kind::Service, &svc, &Related { events: Some(Ok(vec![])), endpoints: Some(eps) }, now());
    for want in [
        "Selector:          app=web\n",
        "Type:              NodePort\n",
        "IP:                10.96.0.10\n",
        "Port:              http  80/TCP\nTargetPort:        8080/TCP\nNodePort:          http  30080/TCP\n\
         Endpoints:         10.88.0.5:8080,10.88.0.6:8080\n",
        "Port:              metrics  9090/TCP\nTargetPort:        9090/TCP\nEndpoints:         10.88.0.5:9090,10.88.0.6:9090\n",
        "Session Affinity:  None\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let text = render(Kind::Service, &svc, &Related::default(), now());
    assert!(text.contains("Endpoints:         <none>\n"), "{text}");
}

#[test]
fn configmap_shows_values() {
    let cm = json!({"kind": "ConfigMap", "metadata": {"name": "app", "namespace": "default"},
                    "data": {"LOG_LEVEL": "debug", "app.conf": "listen 80;\nroot /srv;\n"}});
    let text = render(Kind::ConfigMap, &cm, &Related::default(), now());
    assert!(
        text.contains("Data\n====\nLOG_LEVEL:\n----\ndebug\n\napp.conf:\n----\nlisten 80;\nroot /srv;\n\n"),
        "{text}"
    );
}

#[test]
fn secret_shows_sizes_never_values() {
    let s = json!({"kind": "Secret", "type": "Opaque", "metadata": {"name": "db", "namespace": "default"},
                   "data": {"password": "czNjcjN0IQ==", "user": "YXBw"}});
    let text = render(Kind::Secret, &s, &Related::default(), now());
    assert!(text.contains("Type:  Opaque\n"), "{text}");
    assert!(text.contains("Data\n====\npassword:  7 bytes\nuser:      3 bytes\n"), "{text}");
    assert!(!text.contains("czNjcjN0IQ") && !text.contains("s3cr3t"), "{text}");
    let hidden =
        json!({"kind": "Secret", "metadata": {"name": "db", "annotations": {"berth.dev/data-keys": "password"}}});
    let text = render(Kind::Secret, &hidden, &Related::default(), now());
    assert!(text.contains("password:  <hidden>\n"), "{text}");
    assert!(text.contains("Annotations:  berth.dev/data-keys: password\n"), "{text}");
}

#[test]
fn probe_summaries() {
    use super::pod::probe;
    assert_eq!(
        probe(
            &json!({"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTPS", "host": "10.0.0.1"}, "timeoutSeconds": 3})
        ),
        "http-get https://10.0.0.1:8080/healthz delay=0s timeout=3s period=10s #success=1 #failure=3"
    );
    assert_eq!(
        probe(&json!({"grpc": {"port": 9090}})),
        "grpc <pod>:9090 <service> delay=0s timeout=1s period=10s #success=1 #failure=3"
    );
}

#[test]
fn describe_rollout_shows_the_step_weights_and_analysis() {
    let ro = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-03-01T11:50:00Z"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"canary": {"steps": [{"setWeight": 20}, {"analysis": {}}]}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "busybox"}]}}},
        "status": {"phase": "Degraded", "abort": true, "message": "rollout aborted: analysis of step 1 failed",
                   "currentStepIndex": 1, "replicas": 2, "availableReplicas": 2,
                   "canary": {"weights": {"canary": {"podTemplateHash": "new", "weight": 0},
                                          "stable": {"podTemplateHash": "old", "weight": 100}}},
                   "analysisRuns": [{"name": "step-1", "revision": "new", "phase": "Failed", "message": "metric ok: 1 failed",
                                     "metrics": [{"name": "ok", "phase": "Failed", "measured": 1, "failed": 1, "lastValue": "0"}]}]}
    });
    let text = render(Kind::Rollout, &ro, &Related::default(), now());
    for want in [
        "Status:",
        "Degraded: rollout aborted: analysis of step 1 failed",
        "Strategy:",
        "Canary",
        "1/2",
        "100% (revision old)",
        "0% (revision new)",
        "step-1:",
        "Failed (revision new)",
        "metric ok: 1 failed",
        "Pod Template:",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    let last = text.lines().find(|l| l.trim_start().starts_with("ok ")).unwrap_or_default();
    assert!(last.contains("Failed") && last.trim_end().ends_with('0'), "{text}");
}
