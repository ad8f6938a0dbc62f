use crate::load;
use crate::model::*;

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(objects) => panic!("expected errors, loaded {objects:?}"),
        Err(e) => e.messages(),
    }
}

fn pod(containers: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n{containers}"
    )
}

fn only_deployment(text: &str) -> DeploymentSpec {
    match load(text).unwrap_or_else(|e| panic!("{e}")).remove(0) {
        Object::Deployment(d) => d,
        other => panic!("{other:?}"),
    }
}

#[test]
fn service_defaults() {
    let objects = load(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    )
    .unwrap();
    let Object::Service(s) = &objects[0] else { panic!() };
    assert_eq!(s.service_type, ServiceType::ClusterIp);
    assert_eq!(s.cluster_ip, ClusterIp::Auto);
    assert_eq!(
        s.ports,
        vec![ServicePort {
            name: None,
            port: 80,
            target_port: TargetPort::Number(80),
            protocol: Protocol::Tcp,
            node_port: None
        }]
    );
}

#[test]
fn headless_and_fixed_cluster_ips() {
    let objects = load(
        "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: None, selector: {app: db}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {clusterIP: 10.96.0.10, selector: {app: web}, type: NodePort, ports: [{port: 80, targetPort: http}]}\n",
    )
    .unwrap();
    let Object::Service(db) = &objects[0] else { panic!() };
    assert_eq!(db.cluster_ip, ClusterIp::Headless);
    let Object::Service(web) = &objects[1] else { panic!() };
    assert_eq!(web.cluster_ip, ClusterIp::Fixed("10.96.0.10".parse().unwrap()));
    assert_eq!(web.ports[0].target_port, TargetPort::Name("http".into()));
    assert_eq!(web.ports[0].node_port, None, "berth picks one");
}

#[test]
fn probes_resolve_named_ports_against_their_own_container() {
    let text = pod("      containers:
        - name: a
          image: x:1
          ports: [{name: http, containerPort: 8080}]
        - name: b
          image: x:1
          ports: [{name: dns, containerPort: 53, protocol: UDP}]
          readinessProbe: {tcpSocket: {port: http}}
          livenessProbe: {tcpSocket: {port: dns}}
");
    assert_eq!(
        errors(&text),
        vec![
            "deployment/web: spec.template.spec.containers[1].readinessProbe.tcpSocket.port: no TCP port of the container is named \"http\" (the container declares no TCP ports); name a declared port, or use its number",
            "deployment/web: spec.template.spec.containers[1].livenessProbe.tcpSocket.port: no TCP port of the container is named \"dns\" (the container declares no TCP ports); name a declared port, or use its number",
        ]
    );
}

#[test]
fn volumes_env_and_mounts_normalise() {
    let d = only_deployment(&pod("      containers:
        - name: a
          image: x:1
          env:
            - {name: EMPTY}
            - {name: IP, valueFrom: {fieldRef: {fieldPath: status.podIP, apiVersion: v1}}}
          envFrom:
            - {configMapRef: {name: settings, optional: true}, prefix: CFG_}
          volumeMounts:
            - {name: scratch, mountPath: /tmp, subPath: a/b}
          resources: {limits: {cpu: 2, memory: 1Gi}}
      volumes:
        - name: scratch
"));
    let c = &d.template.containers[0];
    assert_eq!(c.env[0], EnvVar { name: "EMPTY".into(), source: EnvSource::Value(String::new()) });
    assert_eq!(c.env[1].source, EnvSource::Field(PodField::PodIp));
    assert_eq!(
        c.env_from,
        vec![EnvFrom {
            source: ObjectRef::ConfigMap { name: "settings".into(), optional: true },
            prefix: "CFG_".into()
        }]
    );
    assert_eq!(c.volume_mounts[0].sub_path.as_deref(), Some("a/b"));
    assert_eq!(
        d.template.volumes,
        vec![Volume {
            name: "scratch".into(),
            source: VolumeSource::EmptyDir { medium: Medium::Disk, size_limit_bytes: None }
        }],
        "a volume without a source is an emptyDir, as in Kubernetes"
    );
    assert_eq!(
        c.resources,
        Resources {
            cpu_request_millis: Some(2000),
            cpu_limit_millis: Some(2000),
            memory_request_bytes: Some(1 << 30),
            memory_limit_bytes: Some(1 << 30),
        },
        "a limit without a request requests the limit"
    );
}

#[test]
fn capabilities_get_the_cap_prefix() {
    let d = only_deployment(&pod("      containers:
        - name: a
          image: x:1
          securityContext: {capabilities: {add: [NET_ADMIN, CAP_SYS_TIME], drop: [ALL]}, runAsUser: 1000, runAsGroup: 1000}
"));
    let s = &d.template.containers[0].security;
    assert_eq!(s.capabilities_add, vec!["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
    assert_eq!(s.capabilities_drop, vec!["ALL"]);
    assert_eq!((s.run_as_user, s.run_as_group), (Some(1000), Some(1000)));
}

#[test]
fn empty_values_of_unsupported_fields_declare_nothing() {
    load(&pod("      nodeSelector: {}\n      tolerations: []\n      affinity: {nodeAffinity: {}}\n      dnsConfig: null\n      containers: [{name: a, image: 'x:1', stdin: null}]\n")).unwrap();
    assert_eq!(
        errors(&pod("      containers: [{name: a, image: 'x:1', tty: false}]\n")),
        vec!["deployment/web: spec.template.spec.containers[0].tty is not supported by berth; remove it; Container fields berth reads: name, image, imagePullPolicy, command, args, workingDir, env, envFrom, ports, resources, volumeMounts, startupProbe, livenessProbe, readinessProbe, lifecycle, securityContext"]
    );
}

#[test]
fn same_name_in_another_namespace_or_kind_is_fine() {
    let objects = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: other}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n").unwrap();
    assert_eq!(objects.len(), 3);
}

#[test]
fn missing_spec_and_names() {
    assert_eq!(
        errors("apiVersion: apps/v1\nkind: Deployment\nmetadata: {labels: {app: x}}\n"),
        vec![
            "document 1 (Deployment): spec: the Deployment has no spec; add a spec with selector and template",
            "document 1 (Deployment): metadata.name: the object has no name; set metadata.name",
        ]
    );
    assert_eq!(
        errors(&pod("      containers: [{image: 'x:1'}]\n")),
        vec!["deployment/web: spec.template.spec.containers[0].name: the name is empty; rename the container"]
    );
    assert_eq!(
        errors(&pod("      containers: []\n")),
        vec![
            "deployment/web: spec.template.spec.containers: the pod has no containers; declare at least one container"
        ]
    );
}

#[test]
fn errors_know_their_lines() {
    let e = load(&pod(
        "      containers:\n        - name: a\n          image: x:1\n          ports: [{containerPort: 0}]\n",
    ))
    .unwrap_err();
    assert_eq!(e.0[0].line(), 12);
}

#[test]
fn problems_are_capped_per_document_and_per_input() {
    // 300 documents that are not objects: 100 shown, the rest counted.
    let text = "--- a\n".repeat(300);
    let errors = crate::load(&text).unwrap_err();
    assert_eq!(errors.0.len(), 101);
    assert_eq!(errors.0[100].to_string(), "200 more problems not shown; fix the ones above and try again");
    // One ConfigMap with 250 bad keys.
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n");
    for i in 0..250 {
        text.push_str(&format!("  \"bad key {i}\": v\n"));
    }
    let errors = crate::load(&text).unwrap_err();
    assert_eq!(errors.0.len(), 101, "{errors}");
    assert_eq!(errors.0[100].to_string(), "configmap/c: 150 more problems not shown; fix the ones above and try again");
}

#[test]
fn long_names_and_keys_are_shortened_in_messages() {
    let name = "n".repeat(10_000);
    let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{\"{name} x\": v}}\n");
    let errors = crate::load(&text).unwrap_err();
    for e in errors.iter() {
        assert!(e.to_string().len() < 600, "{e}");
    }
}

#[test]
fn host_users_false_asks_for_a_user_namespace_and_true_changes_no_hash() {
    let containers = "      containers: [{name: app, image: busybox}]\n";
    let plain = only_deployment(&pod(containers));
    assert!(plain.template.host_users, "absent: the host's ids, as Kubernetes");
    let with = |v: &str| only_deployment(&pod(&format!("      hostUsers: {v}\n{containers}")));
    let (yes, no) = (with("true"), with("false"));
    assert!(yes.template.host_users && !no.template.host_users);
    assert_eq!(yes.template.hash(), plain.template.hash(), "spelled-out default");
    assert_ne!(no.template.hash(), plain.template.hash(), "a change of what runs");
    let e = errors(&pod(&format!("      hostUsers: maybe\n{containers}")));
    assert!(e.iter().any(|m| m.contains("hostUsers")), "{e:?}");
}

#[test]
fn fields_without_effect_on_one_host_are_kept_with_a_warning() {
    let text = pod(
        "      serviceAccountName: web\n      nodeSelector: {disk: ssd}\n      tolerations: [{key: k, operator: Exists}]\n      \
         priorityClassName: high\n      affinity: {}\n      containers:\n        - name: web\n          image: x:1\n          \
         readinessProbe: {tcpSocket: {port: 80}}\n",
    );
    let (objects, warnings) = crate::load_documents_warned(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(objects.len(), 1);
    let shown: Vec<String> = warnings.iter().map(|w| format!("{} {w}", w.line)).collect();
    assert_eq!(
        shown,
        [
            "9 deployment/web: spec.template.spec.serviceAccountName has no effect on one host (no API server to \
             authenticate to; recorded for network policy); kept as written",
            "10 deployment/web: spec.template.spec.nodeSelector has no effect on one host (one host: every pod runs \
             on it); kept as written",
            "11 deployment/web: spec.template.spec.tolerations has no effect on one host (one host: no taints to \
             tolerate); kept as written",
            "12 deployment/web: spec.template.spec.priorityClassName has no effect on one host (no scheduler queue \
             or preemption); kept as written",
        ],
        "an empty value (affinity: {{}}) declares nothing and is not warned about"
    );
    // The document keeps them, for get -o yaml.
    assert_eq!(objects[0].1["spec"]["template"]["spec"]["nodeSelector"]["disk"], "ssd");
    // A numeric probe port needs no containerPort, as in Kubernetes.
    let Object::Deployment(d) = &objects[0].0 else { panic!() };
    assert!(d.template.containers[0].readiness_probe.is_some());
}
