use super::*;

fn one(text: &str) -> Document {
    let mut docs = parse(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn routes_by_api_version_and_kind() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\nspec:\n  selector: {}\n  template: {}\n";
    let docs = parse(text).unwrap();
    assert!(matches!(docs[0].manifest, Manifest::ConfigMap(_)));
    assert!(matches!(docs[1].manifest, Manifest::Deployment(_)));
    assert_eq!(docs[1].source.index, 3, "empty documents still count");
    assert_eq!(docs[1].source.to_string(), "deployment/b");
}

#[test]
fn records_fields_kubernetes_does_not_know() {
    let d = one(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b, labls: {}}\nspec:\n  selector: {}\n  template:\n    spec:\n      containers:\n        - {name: a, imag: x}\n        - {name: b, prots: []}\n",
    );
    let unknown: Vec<String> = d.unknown_fields.iter().map(ToString::to_string).collect();
    assert_eq!(
        unknown,
        vec!["metadata.labls", "spec.template.spec.containers[0].imag", "spec.template.spec.containers[1].prots",]
    );
}

#[test]
fn type_errors_name_the_field_and_line() {
    let err =
        parse("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: http\n").unwrap_err();
    let e = &err.0[0];
    assert_eq!(e.line(), 7);
    assert_eq!(e.path().unwrap().to_string(), "spec.ports[0].port");
    assert!(
        e.to_string().starts_with("service/s: spec.ports[0].port: invalid type: string \"http\", expected i32"),
        "{e}"
    );
    let err = parse("apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: {port: 80}\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "service/s: spec.ports: invalid type: map, expected a sequence; give a value of the type Kubernetes expects here"
    );
}

#[test]
fn lists_spread_into_items() {
    let docs = parse("apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n  - {apiVersion: v1, kind: Secret, metadata: {name: b}}\n").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].source.item, Some(1));
    let err = parse("apiVersion: v1\nkind: List\nitems:\n  - {kind: Widget, apiVersion: x/v1}\n  - {apiVersion: v1, kind: List, items: []}\nextra: 1\n").unwrap_err();
    let messages = err.messages();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages.iter().any(|m| m == "document 1 (List): extra: is not a field of a List; a List holds only apiVersion, kind, metadata and items"), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains("items[1] is a List inside a List")), "{messages:?}");
    assert!(
        messages.iter().any(|m| m.starts_with("document 1 items[0] (Widget): x/v1 Widget is not a kind berth reads")),
        "{messages:?}"
    );
}

#[test]
fn one_bad_document_does_not_hide_the_others() {
    let results =
        parse_each("apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n").unwrap();
    assert!(results[0].is_err());
    assert!(results[1].is_ok());
    assert!(parse_each("a: [\n").is_err());
}

#[test]
fn routes_argo_kinds_and_tells_typos_from_unsupported_fields() {
    let docs = parse("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec:\n  strategy: {canary: {trafficRouting: {nginx: {}}, stepz: []}}\n---\napiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: a}\nspec: {metrics: [{name: m, provider: {datadog: {}, prometeus: {}}}]}\n").unwrap();
    assert!(matches!(docs[0].manifest, Manifest::Rollout(_)));
    assert!(matches!(docs[1].manifest, Manifest::AnalysisTemplate(_)));
    let unknown: Vec<String> = docs.iter().flat_map(|d| &d.unknown_fields).map(ToString::to_string).collect();
    assert_eq!(unknown, ["spec.strategy.canary.stepz", "spec.metrics[0].provider.prometeus"]);
    let err =
        parse("apiVersion: argoproj.io/v1alpha1\nkind: ClusterAnalysisTemplate\nmetadata: {name: c}\n").unwrap_err();
    assert!(
        err.to_string().starts_with(
            "clusteranalysistemplate/c: argoproj.io/v1alpha1 ClusterAnalysisTemplate is not a kind berth reads"
        ),
        "{err}"
    );
    let err = parse("apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {replicas: many}\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rollout/r: spec.replicas: invalid type: string \"many\", expected i64; give a value of the type Kubernetes expects here"
    );
}

fn secret_error(body: &str) -> String {
    let text = format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: db}}\n{body}");
    let err = parse(&text).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    err.to_string()
}

#[test]
fn secret_decode_errors_never_repeat_the_value() {
    let bad_base64 = secret_error("data:\n  password: hunter2-is-my-password\n");
    assert_eq!(
        bad_base64,
        "secret/db: data[password]: the value is not valid base64; encode it with base64, or put the plain text under stringData (Secret) or data (ConfigMap)"
    );
    // base64's own message names the offending byte and its offset.
    assert!(!bad_base64.contains("symbol"), "{bad_base64}");
    for (body, secret) in [
        ("stringData:\n  pin: 98765432\n", "98765432"),
        ("stringData:\n  on: yes\n  token: [s3cr3t-t0ken]\n", "s3cr3t"),
        ("stringData:\n  ratio: 1234.5678\n", "1234.5678"),
        ("data:\n  password: 12345678\n", "12345678"),
        ("stringData: hunter2-is-my-password\n", "hunter2"),
        ("data: [hunter2-is-my-password]\n", "hunter2"),
        ("type: {x: hunter2-is-my-password}\n", "hunter2"),
        ("immutable: hunter2-is-my-password\n", "hunter2"),
    ] {
        let e = secret_error(body);
        assert!(!e.contains(secret), "{body:?} gave {e}");
        assert!(e.starts_with("secret/db: "), "{e}");
    }
    let e = secret_error("stringData:\n  pin: 98765432\n");
    assert_eq!(
        e,
        "secret/db: stringData[pin]: invalid type: integer, expected a string; quote it: unquoted, YAML reads it as a number"
    );
    // A ConfigMap keeps the full message: its values are not secret.
    let err = parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  n: 98765432\n").unwrap_err();
    assert!(err.to_string().contains("98765432"), "{err}");
}

#[test]
fn redaction_keeps_the_kind_of_what_was_given() {
    assert_eq!(
        without_quoted_value("invalid type: string \"hunter2\", expected a boolean"),
        "invalid type: string, expected a boolean"
    );
    assert_eq!(
        without_quoted_value("invalid value: integer `5`, expected one of `a`, `b`"),
        "invalid value: integer, expected one of `a`, `b`"
    );
    assert_eq!(without_quoted_value("missing field `name`"), "missing field `name`");
}

#[test]
fn the_deepest_document_read_is_decoded_and_dropped_on_a_small_stack() {
    // 100 levels, the most the reader takes, inside a field Kubernetes does
    // not know and one it does (labels take strings): every walker after
    // the reader recurses this deep, on a 2 MiB stack as tokio's blocking
    // threads have.
    let deep = |depth: usize| "[".repeat(depth) + &"]".repeat(depth);
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d, labels: {{a: {}}}}}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: e}}\nspec:\n  unknown: {}\n",
        deep(97),
        deep(98)
    );
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let messages = crate::load(&text).unwrap_err().messages();
            assert!(
                messages.iter().any(|m| m.starts_with("deployment/d: metadata.labels[a]: invalid type")),
                "{messages:?}"
            );
            assert!(messages.iter().any(|m| m.starts_with("deployment/e: spec.unknown")), "{messages:?}");
        })
        .unwrap();
    handle.join().unwrap();
}
