//! The one-line, redacted summary of each audited request: what was
//! asked (`--privileged`, `-v /:/host`, the exec command, the objects an
//! apply changed), never a secret's value.

use super::*;

/// A value as it appears in a summary: bare when unambiguous, else quoted.
pub(super) fn word(s: &str) -> String {
    if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "\"[],=".contains(c)) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    format!("[{}]", items.into_iter().map(word).collect::<Vec<_>>().join(","))
}

/// `key=value` pairs, in order, of the fields that are present and not
/// empty, false or null.
pub(super) struct Fields(String);

impl Fields {
    fn new(verb: &str) -> Self {
        Fields(verb.to_string())
    }

    fn raw(&mut self, key: &str, value: String) -> &mut Self {
        let _ = write!(self.0, " {key}={value}");
        self
    }

    fn text(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) if !s.is_empty() => self.raw(key, word(s)),
            _ => self,
        }
    }

    /// A JSON field: strings bare or quoted, arrays of strings as lists,
    /// numbers and `true` as they are.
    fn json(&mut self, key: &str, v: &Value) -> &mut Self {
        match v {
            Value::String(s) => self.text(key, Some(s)),
            Value::Bool(true) => self.raw(key, "true".into()),
            Value::Number(n) => self.raw(key, n.to_string()),
            Value::Array(a) if !a.is_empty() => self.raw(key, list(a.iter().map(|x| x.as_str().unwrap_or("?")))),
            _ => self,
        }
    }

    /// Environment entries, names only.
    fn env_names(&mut self, key: &str, v: &Value) -> &mut Self {
        let names: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(|e| e.split_once('=').map_or(e, |(k, _)| k)).collect())
            .unwrap_or_default();
        if names.is_empty() {
            self
        } else {
            self.raw(key, list(names))
        }
    }

    fn done(self) -> String {
        self.0
    }
}

/// A redacted one-line summary of a call.
pub fn summary(method: &Method, path: &str, query: &BTreeMap<String, String>, body: Option<&Value>) -> String {
    let null = Value::Null;
    let b = |k: &str| body.and_then(|b| b.get(k)).unwrap_or(&null);
    let q = |k: &str| query.get(k).map(String::as_str);
    let segs = segments(path);
    let mut f;
    match (method.as_str(), segs.as_slice()) {
        ("POST", ["containers"]) => {
            f = Fields::new("create container");
            f.json("image", b("image")).json("name", b("name"));
            let sec = b("security");
            for key in ["privileged", "cap_add", "cap_drop", "security_opt", "read_only"] {
                f.json(key, sec.get(key).unwrap_or(&null));
            }
            for key in ["volumes", "tmpfs", "networks", "publish", "publish_all", "user", "entrypoint", "cmd"] {
                f.json(key, b(key));
            }
            f.env_names("env", b("env")).json("restart", b("restart")).json("auto_remove", b("auto_remove"));
            let secret_env: Vec<&str> = b("secret_env")
                .as_array()
                .map(|a| a.iter().filter_map(|r| r.get("env").and_then(Value::as_str)).collect())
                .unwrap_or_default();
            if !secret_env.is_empty() {
                f.raw("secret_env", list(secret_env));
            }
        }
        ("POST", ["containers", id, "exec", rest @ ..]) => {
            f = Fields::new("exec");
            f.text("container", Some(id)).json("cmd", b("cmd")).json("user", b("user")).json("workdir", b("workdir"));
            f.env_names("env", b("env"));
            if rest == ["tty"] {
                f.raw("tty", "true".into());
            }
            if b("stdin").is_string() {
                f.raw("stdin", "true".into());
            }
        }
        ("POST", ["containers", id, "rename"]) => {
            f = Fields::new("rename");
            f.text("container", Some(id)).json("to", b("name"));
        }
        ("POST", ["containers", id, verb]) => {
            f = Fields::new(verb);
            f.text("container", Some(id)).text("signal", q("signal")).text("timeout", q("timeout"));
        }
        ("DELETE", ["containers", id]) => {
            f = Fields::new("remove");
            f.text("container", Some(id)).text("force", q("force").filter(|v| *v == "true"));
        }
        ("GET", ["containers", id, "logs"]) => {
            f = Fields::new("logs");
            f.text("container", Some(id)).text("follow", q("follow").filter(|v| *v == "true"));
        }
        ("GET", ["events"]) => {
            f = Fields::new("events");
            f.text("since", q("since")).text("until", q("until")).text("filter", q("filter"));
        }
        ("GET", ["objects", "secrets"]) => {
            f = Fields::new("list secrets");
            f.text("namespace", q("namespace").or(Some("default")).filter(|_| q("all_namespaces") != Some("true")));
            f.text("all_namespaces", q("all_namespaces").filter(|v| *v == "true")).text("selector", q("selector"));
            f.raw("show_secrets", (q("show_secrets") == Some("true")).to_string());
        }
        ("GET", ["objects", "secrets", ns, name]) => {
            f = Fields::new(&format!("get secret {}/{}", word(ns), word(name)));
            f.raw("show_secrets", (q("show_secrets") == Some("true")).to_string());
        }
        ("DELETE", ["objects", resource, ns, name]) => {
            f = Fields::new(&format!("delete {} {}/{}", word(resource), word(ns), word(name)));
        }
        ("POST", ["objects", resource, ns, name, "scale"]) => {
            f = Fields::new(&format!("scale {}/{}/{}", word(resource), word(ns), word(name)));
            f.json("replicas", b("replicas"));
        }
        ("POST", ["objects", resource, ns, name, "rollout"]) => {
            f = Fields::new(&format!("rollout {}/{}/{}", word(resource), word(ns), word(name)));
            f.json("action", b("action")).json("to_revision", b("to_revision")).json("full", b("full"));
        }
        ("POST", ["apply"]) => f = Fields::new("apply"),
        ("POST", ["delete"]) => f = Fields::new("delete"),
        ("POST", ["images", verb @ ("pull" | "push")]) => {
            f = Fields::new(verb);
            f.json("reference", b("reference")).json("platform", b("platform"));
        }
        ("POST", ["images", "import"]) => {
            f = Fields::new("import image");
            f.json("path", b("path")).json("tag", b("tag"));
        }
        ("POST", ["images", "export"]) => {
            f = Fields::new("export image");
            f.json("reference", b("reference")).json("path", b("path"));
        }
        ("POST", ["images", "tag"]) => {
            f = Fields::new("tag image");
            f.json("source", b("source")).json("target", b("target"));
        }
        ("POST", ["images", "prune"]) => {
            f = Fields::new("prune images");
            f.text("all", q("all").filter(|v| *v == "true"));
        }
        ("DELETE", ["images", name]) => {
            f = Fields::new("remove image");
            f.text("image", Some(name)).text("force", q("force").filter(|v| *v == "true"));
        }
        ("POST", ["auth", verb @ ("login" | "logout")]) => {
            // Never the password.
            f = Fields::new(verb);
            f.json("registry", b("registry")).json("username", b("username"));
        }
        ("POST", ["networks"]) => {
            f = Fields::new("create network");
            for key in ["name", "subnet", "gateway", "internal", "mtu"] {
                f.json(key, b(key));
            }
        }
        ("POST", ["networks", name, verb @ ("connect" | "disconnect")]) => {
            f = Fields::new(verb);
            f.text("network", Some(name)).json("container", b("container")).json("aliases", b("aliases"));
        }
        ("DELETE", ["networks", name]) => {
            f = Fields::new("remove network");
            f.text("network", Some(name));
        }
        ("POST", ["vips"]) => {
            f = Fields::new("create vip");
            for key in ["name", "port", "ip", "protocol"] {
                f.json(key, b(key));
            }
        }
        ("PUT", ["vips", name, "backends"]) => {
            f = Fields::new("set vip backends");
            f.text("vip", Some(name)).json("backends", b("backends"));
        }
        ("DELETE", ["vips", name]) => {
            f = Fields::new("remove vip");
            f.text("vip", Some(name));
        }
        _ => f = Fields::new(&format!("{} {}", method.as_str().to_lowercase(), word(path))),
    }
    f.done()
}

/// The summary of an apply or delete, from what it did: `apply
/// objects=[deployment/default/web(created),secret/default/db(unchanged)]`.
pub fn objects_summary(verb: &str, dry_run: bool, changes: &[berth_core::api::ObjectChange]) -> String {
    let objects: Vec<String> = changes
        .iter()
        .map(|c| format!("{}/{}/{}({})", c.kind.to_lowercase(), c.namespace, c.name, c.action))
        .map(|o| {
            if o.chars().any(|c| (c.is_whitespace() && c != ' ') || "\"[],=".contains(c)) {
                format!("{o:?}")
            } else {
                o.replace(' ', "_")
            }
        })
        .collect();
    let mut s = verb.to_string();
    if dry_run {
        s.push_str(" dry_run=true");
    }
    let _ = write!(s, " objects=[{}]", objects.join(","));
    s
}
