//! The async edges of the declared verbs: call the daemon, hand the
//! objects to the pure renderers, print.

use berth_core::api::{ApplyRequest, ApplyResponse, DeleteRequest, ErrorBody, ScaleRequest};
use chrono::{DateTime, Utc};
use hyper::StatusCode;
use serde_json::Value;

use super::describe::Related;
use super::get::Layout;
use super::kind::{parse_selection, Kind, Selection};
use super::manifests::{self, Deleted};
use super::resolve::{self, Target};
use super::value::name;
use crate::args::{ApplyArgs, DeleteArgs, DescribeArgs, ExecArgs, GetArgs, LogsArgs, ObjectOutput, Output, ScaleArgs};
use crate::client::{segment, CliError, Client, Result};
use crate::output::{format_table, print_lines, structured};

/// What a list request asks for, as query parameters of
/// `GET /v1/objects/{resource}`.
#[derive(Debug, Clone, Default)]
struct ListQuery<'a> {
    /// `None`: every namespace.
    namespace: Option<&'a str>,
    selector: Option<&'a str>,
    show_secrets: bool,
    /// Events only: `Pod/web-abc`.
    involved: Option<&'a str>,
}

fn list_path(kind: Kind, q: &ListQuery) -> String {
    let mut params = vec![match q.namespace {
        Some(ns) => format!("namespace={}", segment(ns)),
        None => "all_namespaces=true".to_string(),
    }];
    if let Some(s) = q.selector {
        params.push(format!("selector={}", segment(s)));
    }
    if q.show_secrets {
        params.push("show_secrets=true".into());
    }
    if let Some(i) = q.involved {
        params.push(format!("involved={}", segment(i)));
    }
    format!("/v1/objects/{}?{}", kind.resource(), params.join("&"))
}

pub(super) fn object_path(kind: Kind, namespace: &str, name: &str) -> String {
    format!("/v1/objects/{}/{}/{}", kind.resource(), segment(namespace), segment(name))
}

async fn list(client: &Client, kind: Kind, q: &ListQuery<'_>) -> Result<Vec<Value>> {
    let list: Value = client.get(&list_path(kind, q)).await?;
    Ok(list.get("items").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// One object. A secret's values come only with lists, so with
/// `show_secrets` it is picked from the namespace's list.
async fn fetch(client: &Client, kind: Kind, namespace: &str, obj: &str, show_secrets: bool) -> Result<Value> {
    if kind == Kind::Secret && show_secrets {
        let q = ListQuery { namespace: Some(namespace), show_secrets: true, ..ListQuery::default() };
        return list(client, kind, &q).await?.into_iter().find(|s| name(s) == obj).ok_or_else(|| not_found(kind, obj));
    }
    client.get(&object_path(kind, namespace, obj)).await
}

/// The daemon's answer for a missing object, for misses the CLI finds.
fn not_found(kind: Kind, obj: &str) -> CliError {
    let error = format!("{} {obj:?} not found in this namespace", kind.plural_qualified());
    CliError::Api { status: StatusCode::NOT_FOUND, body: ErrorBody { error, kind: "not_found".into() } }
}

fn is_not_found(e: &CliError) -> bool {
    matches!(e, CliError::Api { status, .. } if *status == StatusCode::NOT_FOUND)
}

fn read_stdin() -> std::io::Result<String> {
    manifests::read_at_most(std::io::stdin())
}

/// `berth apply -f ...`.
pub async fn apply(client: &Client, a: ApplyArgs) -> Result<()> {
    let files = manifests::read(&a.files, read_stdin)?;
    let dry_run = a.dry_run.as_deref().is_some_and(|mode| mode != "none");
    let resp: ApplyResponse = client.post("/v1/apply", &ApplyRequest { files, dry_run }).await?;
    // As kubectl prints an API server's warnings: on stderr, before the
    // result.
    for w in &resp.warnings {
        eprintln!("Warning: {w}");
    }
    let lines: Vec<String> = resp.changes.iter().map(|c| manifests::applied_line(c, dry_run)).collect();
    print_lines(&lines);
    Ok(())
}

/// `berth delete -f ...` or `berth delete TYPE NAME...`.
pub async fn delete(client: &Client, a: DeleteArgs) -> Result<()> {
    let ns = a.namespace.namespace.as_str();
    if !a.files.is_empty() {
        let files = manifests::read(&a.files, read_stdin)?;
        let req = DeleteRequest { files, ignore_not_found: a.ignore_not_found };
        let resp: ApplyResponse = client.post("/v1/delete", &req).await?;
        return report_deleted(&resp, a.ignore_not_found);
    }
    let named = match (parse_selection(&a.targets)?, a.selector.as_deref()) {
        (Selection::Named(_), Some(_)) => {
            return Err(CliError::Usage("give names or -l SELECTOR, not both".into()));
        }
        (Selection::Named(named), None) => named,
        (Selection::All(kinds), Some(selector)) => {
            let mut named = Vec::new();
            for kind in kinds {
                let q = ListQuery { namespace: Some(ns), selector: Some(selector), ..ListQuery::default() };
                named.extend(list(client, kind, &q).await?.iter().map(|o| (kind, name(o).to_string())));
            }
            if named.is_empty() {
                eprintln!("No resources found");
                return Ok(());
            }
            named
        }
        (Selection::All(_), None) => {
            return Err(CliError::Usage(
                "name what to delete: TYPE NAME..., TYPE/NAME..., TYPE -l SELECTOR, or -f FILE".into(),
            ));
        }
    };
    let mut failed = false;
    for (kind, obj) in named {
        match client.delete::<ApplyResponse>(&object_path(kind, ns, &obj)).await {
            Ok(resp) => failed |= report_deleted(&resp, a.ignore_not_found).is_err(),
            Err(e) if is_not_found(&e) => {
                if !a.ignore_not_found {
                    eprintln!("Error from server (NotFound): {} {obj:?} not found", kind.plural_qualified());
                    failed = true;
                }
            }
            Err(e @ CliError::Unreachable(_)) => return Err(e),
            Err(e) => {
                eprintln!("berth: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Silent)
    } else {
        Ok(())
    }
}

fn report_deleted(resp: &ApplyResponse, ignore_not_found: bool) -> Result<()> {
    let mut failed = false;
    for c in &resp.changes {
        match manifests::deleted_line(c, ignore_not_found) {
            Deleted::Done(line) => print_lines(&[line]),
            Deleted::NotFound(line) => {
                eprintln!("{line}");
                failed = true;
            }
            Deleted::Quiet => {}
        }
    }
    if failed {
        Err(CliError::Silent)
    } else {
        Ok(())
    }
}

/// `berth get ...`.
pub async fn get(client: &Client, a: GetArgs) -> Result<()> {
    let now = Utc::now();
    let ns = a.namespace.namespace.as_str();
    let scope = (!a.all_namespaces).then_some(ns);
    let selection = parse_selection(&a.targets)?;
    let mut groups: Vec<(Kind, Vec<Value>)> = Vec::new();
    let mut failed = false;
    let asked = match &selection {
        Selection::Named(n) if n.len() == 1 => Asked::One,
        Selection::Named(_) => Asked::Named,
        Selection::All(_) => Asked::Listing,
    };
    let kinds = match selection {
        Selection::All(kinds) => {
            for &kind in &kinds {
                let q = ListQuery {
                    namespace: scope,
                    selector: a.selector.as_deref(),
                    show_secrets: a.show_secrets,
                    involved: None,
                };
                groups.push((kind, list(client, kind, &q).await?));
            }
            kinds.len()
        }
        Selection::Named(named) => {
            if a.selector.is_some() {
                return Err(CliError::Usage(
                    "-l selects among all objects of a type: give names or -l, not both".into(),
                ));
            }
            if a.all_namespaces {
                return Err(CliError::Usage(
                    "an object is fetched by name in one namespace: use -n NS instead of -A".into(),
                ));
            }
            for (kind, obj) in &named {
                match fetch(client, *kind, ns, obj, a.show_secrets).await {
                    // One table per type, in the order the types came.
                    Ok(v) => match groups.iter_mut().find(|(k, _)| k == kind) {
                        Some((_, items)) => items.push(v),
                        None => groups.push((*kind, vec![v])),
                    },
                    Err(e @ CliError::Unreachable(_)) => return Err(e),
                    Err(e) if asked == Asked::One => return Err(e),
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = true;
                    }
                }
            }
            let mut distinct: Vec<Kind> = Vec::new();
            for (k, _) in &named {
                if !distinct.contains(k) {
                    distinct.push(*k);
                }
            }
            distinct.len()
        }
    };
    print_objects(&groups, &a, asked, kinds > 1, now)?;
    if failed {
        Err(CliError::Silent)
    } else {
        Ok(())
    }
}

/// How `get` was asked: for one named object, for several, or for
/// everything of some types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    One,
    Named,
    Listing,
}

fn print_objects(
    groups: &[(Kind, Vec<Value>)],
    a: &GetArgs,
    asked: Asked,
    several_kinds: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    let empty = groups.iter().all(|(_, items)| items.is_empty());
    let say_none = || {
        if asked == Asked::Listing && empty {
            if a.all_namespaces {
                eprintln!("No resources found");
            } else {
                eprintln!("No resources found in {} namespace.", a.namespace.namespace);
            }
        }
    };
    match a.output {
        Some(ObjectOutput::Json | ObjectOutput::Yaml) => {
            let fmt = if a.output == Some(ObjectOutput::Json) { Output::Json } else { Output::Yaml };
            let mut items: Vec<Value> = groups.iter().flat_map(|(_, items)| items.iter().cloned()).collect();
            let value = if asked == Asked::One && items.len() == 1 { items.remove(0) } else { super::get::list(items) };
            structured(&value, fmt)?;
        }
        Some(ObjectOutput::Name) => {
            let lines: Vec<String> =
                groups.iter().flat_map(|(k, items)| items.iter().map(|o| super::get::name_line(*k, o))).collect();
            print_lines(&lines);
            say_none();
        }
        None | Some(ObjectOutput::Wide) => {
            let layout = Layout {
                wide: a.output == Some(ObjectOutput::Wide),
                namespaces: a.all_namespaces,
                kind_prefix: several_kinds,
            };
            let mut first = true;
            for (kind, items) in groups.iter().filter(|(_, items)| !items.is_empty()) {
                if !first {
                    print_lines(&[""]);
                }
                first = false;
                let t = super::get::table(*kind, items, layout, now);
                print_lines(&format_table(&t.header, &t.rows));
            }
            say_none();
        }
    }
    Ok(())
}

/// `berth describe ...`.
pub async fn describe(client: &Client, a: DescribeArgs) -> Result<()> {
    let now = Utc::now();
    let ns = a.namespace.namespace.as_str();
    let mut objects: Vec<(Kind, Value)> = Vec::new();
    let mut failed = false;
    match parse_selection(&a.targets)? {
        Selection::All(kinds) => {
            for kind in kinds {
                let q = ListQuery { namespace: Some(ns), show_secrets: kind == Kind::Secret, ..ListQuery::default() };
                objects.extend(list(client, kind, &q).await?.into_iter().map(|o| (kind, o)));
            }
            if objects.is_empty() {
                eprintln!("No resources found in {ns} namespace.");
            }
        }
        Selection::Named(named) => {
            for (kind, wanted) in named {
                match fetch(client, kind, ns, &wanted, kind == Kind::Secret).await {
                    Ok(v) => objects.push((kind, v)),
                    Err(e) if is_not_found(&e) => {
                        // As kubectl: no exact match shows those whose names start with it.
                        let q = ListQuery {
                            namespace: Some(ns),
                            show_secrets: kind == Kind::Secret,
                            ..ListQuery::default()
                        };
                        let prefixed: Vec<Value> = list(client, kind, &q)
                            .await?
                            .into_iter()
                            .filter(|o| name(o).starts_with(&wanted))
                            .collect();
                        if prefixed.is_empty() {
                            eprintln!("berth: {}", not_found(kind, &wanted));
                            failed = true;
                        }
                        objects.extend(prefixed.into_iter().map(|o| (kind, o)));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for (i, (kind, obj)) in objects.iter().enumerate() {
        let related = related(client, *kind, obj).await?;
        let text = super::describe::render(*kind, obj, &related, now);
        let sep = if i + 1 < objects.len() { "\n" } else { "" };
        print_lines(&[format!("{}{sep}", text.trim_end())]);
    }
    if failed {
        Err(CliError::Silent)
    } else {
        Ok(())
    }
}

/// The events about an object, and a service's endpoints.
async fn related(client: &Client, kind: Kind, obj: &Value) -> Result<Related> {
    let ns = super::value::namespace(obj);
    let mut related = Related::default();
    if kind != Kind::Event {
        let involved = format!("{}/{}", kind.kind(), name(obj));
        let q = ListQuery { namespace: Some(ns), involved: Some(&involved), ..ListQuery::default() };
        related.events = Some(match list(client, Kind::Event, &q).await {
            Ok(events) => Ok(events),
            Err(e @ CliError::Unreachable(_)) => return Err(e),
            Err(e) => Err(e.to_string()),
        });
    }
    if kind == Kind::Service {
        related.endpoints = match client.get::<Value>(&object_path(Kind::Endpoints, ns, name(obj))).await {
            Ok(ep) => Some(ep),
            Err(e @ CliError::Unreachable(_)) => return Err(e),
            Err(_) => None,
        };
    }
    Ok(related)
}

/// `berth scale deploy/NAME --replicas N` (or `rollout/NAME`).
pub async fn scale(client: &Client, a: ScaleArgs) -> Result<()> {
    let ns = a.namespace.namespace.as_str();
    let Selection::Named(named) = parse_selection(&a.targets)? else {
        return Err(CliError::Usage("name the deployment: berth scale deploy/NAME --replicas N".into()));
    };
    if let Some((kind, _)) = named.iter().find(|(k, _)| !matches!(k, Kind::Deployment | Kind::Rollout)) {
        return Err(CliError::Usage(format!(
            "berth scales deployments (deploy/NAME) and rollouts (rollout/NAME), not {}",
            kind.resource()
        )));
    }
    for (kind, obj) in named {
        let path = format!("{}/scale", object_path(kind, ns, &obj));
        let _: Value = client.post(&path, &ScaleRequest { replicas: a.replicas }).await?;
        print_lines(&[format!("{}/{obj} scaled", kind.qualified())]);
    }
    Ok(())
}

/// `berth logs`: a container as before, or one of a pod's or a
/// deployment's.
pub async fn logs(client: &Client, mut a: LogsArgs) -> Result<()> {
    if let Some(id) =
        container_of(client, &a.container, a.namespace.as_deref(), a.in_container.as_deref(), "--namespace").await?
    {
        a.container = id;
    }
    crate::containers::logs(client, a).await
}

/// `berth exec`: likewise.
pub async fn exec(client: &Client, mut a: ExecArgs) -> Result<i32> {
    if let Some(id) =
        container_of(client, &a.container, a.namespace.as_deref(), a.in_container.as_deref(), "-n").await?
    {
        a.container = id;
    }
    crate::containers::exec(client, a).await
}

/// The container id `pod/NAME` or `deploy/NAME` stands for; `None` for a
/// plain container name, which is used as it is.
async fn container_of(
    client: &Client,
    arg: &str,
    namespace: Option<&str>,
    wanted: Option<&str>,
    ns_flag: &str,
) -> Result<Option<String>> {
    let ns = namespace.unwrap_or("default");
    let pod = match resolve::parse_target(arg)? {
        Target::Container(_) => {
            if namespace.is_some() || wanted.is_some() {
                let flag = if wanted.is_some() { "-c" } else { ns_flag };
                return Err(CliError::Usage(format!(
                    "{flag} applies to pod/NAME and deploy/NAME; {arg:?} is a container, so drop {flag}"
                )));
            }
            return Ok(None);
        }
        Target::Pod(pod) => client.get::<Value>(&object_path(Kind::Pod, ns, &pod)).await?,
        Target::Deployment(owner) => pod_of(client, Kind::Deployment, ns, &owner).await?,
        Target::Rollout(owner) => pod_of(client, Kind::Rollout, ns, &owner).await?,
        Target::Service(owner) => pod_of(client, Kind::Service, ns, &owner).await?,
    };
    let picked = resolve::pick_container(&pod, wanted)?;
    if let Some(note) = picked.note {
        eprintln!("{note}");
    }
    Ok(Some(picked.id))
}

async fn pod_of(client: &Client, kind: Kind, ns: &str, owner: &str) -> Result<Value> {
    let obj: Value = client.get(&object_path(kind, ns, owner)).await?;
    let selector = resolve::pod_selector(kind, &obj)?;
    let q = ListQuery { namespace: Some(ns), selector: Some(&selector), ..ListQuery::default() };
    let pods = list(client, Kind::Pod, &q).await?;
    let (pod, note) = resolve::pick_pod(&format!("{}/{owner}", kind.qualified()), &pods)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    Ok(pod.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_paths_carry_the_documented_query_parameters() {
        let q = ListQuery { namespace: Some("default"), ..ListQuery::default() };
        assert_eq!(list_path(Kind::Pod, &q), "/v1/objects/pods?namespace=default");
        let q =
            ListQuery { namespace: None, selector: Some("app=web,tier in (a,b)"), show_secrets: true, involved: None };
        assert_eq!(
            list_path(Kind::Secret, &q),
            "/v1/objects/secrets?all_namespaces=true&selector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&show_secrets=true"
        );
        let q = ListQuery { namespace: Some("shop"), involved: Some("Pod/web-abc"), ..ListQuery::default() };
        assert_eq!(list_path(Kind::Event, &q), "/v1/objects/events?namespace=shop&involved=Pod%2Fweb-abc");
    }

    #[test]
    fn object_paths() {
        assert_eq!(object_path(Kind::Deployment, "default", "web"), "/v1/objects/deployments/default/web");
        assert_eq!(object_path(Kind::ConfigMap, "shop", "app.conf"), "/v1/objects/configmaps/shop/app.conf");
    }
}
