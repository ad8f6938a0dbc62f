//! Small readers over Kubernetes objects held as JSON values: a missing
//! or mistyped field reads as absent, never as a panic.

use serde_json::Value;

static EMPTY: Vec<Value> = Vec::new();

/// The string at a JSON pointer (`/status/phase`).
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The array at a JSON pointer, empty when absent.
pub fn array<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer).and_then(Value::as_array).unwrap_or(&EMPTY)
}

/// The number at a JSON pointer.
pub fn int_at(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// `metadata.name`.
pub fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or_default()
}

/// `metadata.namespace`, `default` when unset.
pub fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or("default")
}

/// A string map (labels, a selector's matchLabels) as `k=v,k2=v2`, sorted
/// by key; `None` when empty or absent.
pub fn pairs(v: Option<&Value>) -> Option<String> {
    let map = v?.as_object()?;
    let mut kv: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
    kv.sort();
    (!kv.is_empty()).then(|| kv.join(","))
}

/// A label selector (`matchLabels` and `matchExpressions`) in kubectl's
/// `-l` syntax: `app=web,tier in (a,b),!legacy`. `None` when it selects
/// everything.
pub fn label_selector(selector: &Value) -> Option<String> {
    let mut parts: Vec<String> = pairs(selector.get("matchLabels")).into_iter().collect();
    for e in array(selector, "/matchExpressions") {
        let key = str_at(e, "/key").unwrap_or_default();
        let values: Vec<&str> = array(e, "/values").iter().filter_map(Value::as_str).collect();
        parts.push(match str_at(e, "/operator").unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other} ({})", values.join(",")),
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// How many keys a ConfigMap or Secret holds. A Secret served without its
/// values may carry its keys in `data` (values hidden) or only in the
/// `berth.dev/data-keys` annotation; either counts.
pub fn data_count(obj: &Value) -> usize {
    data_keys(obj).len()
}

/// The keys of `data` and `binaryData` (or, failing those, of the
/// `berth.dev/data-keys` annotation), sorted.
pub fn data_keys(obj: &Value) -> Vec<String> {
    let mut keys: Vec<String> = ["data", "binaryData", "stringData"]
        .iter()
        .filter_map(|f| obj.get(f).and_then(Value::as_object))
        .flat_map(|m| m.keys().cloned())
        .collect();
    if keys.is_empty() {
        if let Some(list) = str_at(obj, "/metadata/annotations/berth.dev~1data-keys") {
            keys = list.split(',').map(str::trim).filter(|k| !k.is_empty()).map(String::from).collect();
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// A port-like value (`80` or `"http"`) as text.
pub fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn readers_tolerate_absent_and_mistyped_fields() {
        let v = json!({"metadata": {"name": "web", "labels": {"b": "2", "a": "1"}}, "spec": {"ports": 3}});
        assert_eq!(name(&v), "web");
        assert_eq!(namespace(&v), "default");
        assert!(array(&v, "/spec/ports").is_empty());
        assert!(array(&v, "/spec/nothing").is_empty());
        assert_eq!(pairs(v.pointer("/metadata/labels")).as_deref(), Some("a=1,b=2"));
        assert_eq!(pairs(v.pointer("/metadata/annotations")), None);
    }

    #[test]
    fn selectors_in_kubectl_syntax() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "legacy", "operator": "DoesNotExist"}]});
        assert_eq!(label_selector(&s).as_deref(), Some("app=web,tier in (a,b),!legacy"));
        assert_eq!(label_selector(&json!({})), None);
    }

    #[test]
    fn data_keys_from_data_or_the_annotation() {
        assert_eq!(data_count(&json!({"data": {"a": "eA==", "b": "eQ=="}})), 2);
        assert_eq!(data_count(&json!({"data": {"a": null, "b": null}})), 2);
        let hidden = json!({"metadata": {"annotations": {"berth.dev/data-keys": "password, user"}}});
        assert_eq!(data_keys(&hidden), ["password", "user"]);
        assert_eq!(data_count(&json!({"metadata": {}})), 0);
        assert_eq!(data_count(&json!({"data": {"a": "x"}, "binaryData": {"b": "eQ=="}})), 2);
    }
}
