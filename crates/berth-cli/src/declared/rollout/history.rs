//! `berth rollout history`: the revision list and one revision's pod
//! template, laid out as kubectl's. Pure: the daemon's revision list in,
//! lines out.

use berth_core::api::{RevisionList, RevisionView};
use serde_json::{json, Value};

use crate::client::{CliError, Result};
use crate::declared::describe::pod_template;
use crate::declared::kind::Kind;

/// kubectl keeps a revision's change cause under this annotation.
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";

/// `deployment.apps/web`.
fn qualified(deploy: &str) -> String {
    format!("{}/{deploy}", Kind::Deployment.qualified())
}

/// The list: `deployment.apps/web`, then `REVISION  CHANGE-CAUSE` and a
/// row per revision, by number.
pub fn table(deploy: &str, list: &RevisionList) -> Vec<String> {
    if list.revisions.is_empty() {
        return vec![qualified(deploy), "No rollout history found.".into()];
    }
    let mut revisions: Vec<&RevisionView> = list.revisions.iter().collect();
    revisions.sort_by_key(|r| r.revision);
    const HEADER: &str = "REVISION";
    let width = revisions.iter().map(|r| r.revision.to_string().len()).max().unwrap_or(0).max(HEADER.len());
    // Two spaces between columns, as kubectl's tabwriter pads.
    let row = |rev: &str, cause: &str| format!("{rev:<width$}  {cause}");
    let mut lines = vec![qualified(deploy), row(HEADER, "CHANGE-CAUSE")];
    lines.extend(revisions.iter().map(|r| {
        let cause = r.change_cause.as_deref().map(str::trim).filter(|c| !c.is_empty()).unwrap_or("<none>");
        row(&r.revision.to_string(), cause)
    }));
    lines
}

/// The revision numbered `n`, or the error kubectl gives, pointing at the
/// list.
pub fn find<'a>(deploy: &str, list: &'a RevisionList, n: u64) -> Result<&'a RevisionView> {
    list.revisions.iter().find(|r| r.revision == n).ok_or_else(|| {
        CliError::Other(format!(
            "unable to find the specified revision {n}; see 'berth rollout history deployment/{deploy}'"
        ))
    })
}

/// One revision: `deployment.apps/web with revision #2`, then its pod
/// template as `describe` shows one. As kubectl, the template carries the
/// revision's `pod-template-hash` label and its change cause.
pub fn revision(deploy: &str, rev: &RevisionView) -> String {
    let mut template = rev.template.clone();
    if !template.is_object() {
        template = json!({});
    }
    let meta = template.as_object_mut().expect("an object").entry("metadata").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        if !rev.hash.is_empty() {
            insert(meta, "labels", "pod-template-hash", &rev.hash);
        }
        if let Some(cause) = rev.change_cause.as_deref().filter(|c| !c.trim().is_empty()) {
            insert(meta, "annotations", CHANGE_CAUSE, cause);
        }
    }
    format!("{} with revision #{}\n{}", qualified(deploy), rev.revision, pod_template(&template))
}

/// Sets `map[field][key] = value`, making the map when absent.
fn insert(meta: &mut serde_json::Map<String, Value>, field: &str, key: &str, value: &str) {
    let map = meta.entry(field).or_insert_with(|| json!({}));
    if !map.is_object() {
        *map = json!({});
    }
    map[key] = json!(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(n: u64, cause: Option<&str>, current: bool, template: Value) -> RevisionView {
        RevisionView {
            revision: n,
            hash: format!("hash{n}"),
            change_cause: cause.map(String::from),
            created: "2026-03-01T10:00:00Z".into(),
            images: vec![],
            current,
            template,
        }
    }

    fn history() -> RevisionList {
        RevisionList {
            revisions: vec![
                rev(1, None, false, json!({})),
                rev(2, Some("berth apply -f web.yaml"), false, json!({})),
                rev(10, Some("  "), true, json!({})),
            ],
        }
    }

    #[test]
    fn the_table_lists_revisions_with_their_causes() {
        assert_eq!(
            table("web", &history()),
            [
                "deployment.apps/web",
                "REVISION  CHANGE-CAUSE",
                "1         <none>",
                "2         berth apply -f web.yaml",
                "10        <none>",
            ]
        );
    }

    #[test]
    fn the_table_is_ordered_by_revision_and_widens_for_long_numbers() {
        let list = RevisionList {
            revisions: vec![rev(123456789, Some("new"), true, json!({})), rev(3, Some("old"), false, json!({}))],
        };
        assert_eq!(
            table("web", &list),
            ["deployment.apps/web", "REVISION   CHANGE-CAUSE", "3          old", "123456789  new"]
        );
    }

    #[test]
    fn no_history() {
        assert_eq!(table("web", &RevisionList::default()), ["deployment.apps/web", "No rollout history found."]);
    }

    #[test]
    fn an_unknown_revision_points_at_the_list() {
        let e = find("web", &history(), 7).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "unable to find the specified revision 7; see 'berth rollout history deployment/web'"
        );
        assert_eq!(find("web", &history(), 2).unwrap().revision, 2);
    }

    #[test]
    fn one_revision_shows_its_pod_template() {
        let template = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}],
                "command": ["nginx"], "args": ["-g", "daemon off;"],
                "env": [{"name": "MODE", "value": "prod"},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}]}
        });
        let text = revision("web", &rev(2, Some("berth apply -f web.yaml"), false, template));
        assert_eq!(
            text,
            "deployment.apps/web with revision #2\n\
             Pod Template:\n\
             \x20 Labels:       app=web\n\
             \x20               pod-template-hash=hash2\n\
             \x20 Annotations:  kubernetes.io/change-cause: berth apply -f web.yaml\n\
             \x20 Containers:\n\
             \x20  web:\n\
             \x20    Image:       nginx:1.27\n\
             \x20    Port:        80/TCP\n\
             \x20    Command:     nginx\n\
             \x20    Args:        -g\n\
             \x20                 daemon off;\n\
             \x20    Environment:\n\
             \x20      MODE:      prod\n\
             \x20      PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false\n\
             \x20    Mounts:      <none>\n\
             \x20 Volumes:  <none>\n"
        );
    }

    #[test]
    fn a_bare_template_still_renders() {
        let text = revision("web", &rev(1, None, true, Value::Null));
        assert_eq!(
            text,
            "deployment.apps/web with revision #1\nPod Template:\n  Labels:  pod-template-hash=hash1\n  \
             Containers:\n  Volumes:  <none>\n"
        );
    }
}
