//! `berth rollout`: follow a deployment's or an Argo Rollout's rollout
//! (`status`), list its revisions (`history`), and `pause`, `resume`,
//! `restart` or `undo` it; `promote` and `abort` an Argo Rollout.
//!
//! The decisions are pure and tested on hand-written objects: where a
//! rollout stands ([`status`]), how history prints ([`history`]), which
//! deployment the arguments name ([`target`]). This file holds the async
//! edges: the requests and the watch loop.

mod history;
mod status;

use std::future::Future;
use std::time::Duration;

use berth_core::api::{RevisionList, RolloutRequest};
use serde_json::Value;

use super::commands::object_path;
use super::kind::Kind;
use crate::args::{
    DataOutput, Output, RolloutCommand, RolloutHistoryArgs, RolloutPromoteArgs, RolloutStatusArgs, RolloutTarget,
    RolloutUndoArgs,
};
use crate::client::{CliError, Client, Result};
use crate::output::{print_lines, structured};
use status::Status;

/// How often `status --watch` looks again.
const POLL: Duration = Duration::from_millis(500);

/// `berth rollout ...`.
pub async fn rollout(client: &Client, cmd: RolloutCommand) -> Result<()> {
    match cmd {
        RolloutCommand::Status(a) => watch_status(client, a).await,
        RolloutCommand::History(a) => show_history(client, a).await,
        RolloutCommand::Pause(t) => act(client, &t, RolloutRequest::Pause {}, "paused").await,
        RolloutCommand::Resume(t) => act(client, &t, RolloutRequest::Resume {}, "resumed").await,
        RolloutCommand::Restart(t) => act(client, &t, RolloutRequest::Restart {}, "restarted").await,
        RolloutCommand::Undo(RolloutUndoArgs { target, to_revision }) => {
            // As kubectl: --to-revision=0 means the previous revision.
            act(client, &target, RolloutRequest::Undo { to_revision: to_revision.filter(|n| *n != 0) }, "rolled back")
                .await
        }
        RolloutCommand::Promote(RolloutPromoteArgs { target, full }) => {
            argo_only(&target, "promote")?;
            act(client, &target, RolloutRequest::Promote { full }, if full { "fully promoted" } else { "promoted" })
                .await
        }
        RolloutCommand::Abort(t) => {
            argo_only(&t, "abort")?;
            act(client, &t, RolloutRequest::Abort {}, "aborted").await
        }
    }
}

/// `promote` and `abort` are steps of Argo Rollouts; a Deployment has none.
fn argo_only(t: &RolloutTarget, verb: &str) -> Result<()> {
    match target(&t.target)? {
        (Kind::Rollout, _) => Ok(()),
        (_, name) => Err(CliError::Usage(format!(
            "deployments have no steps to {verb}; {verb} works on Argo Rollouts (rollout/NAME), not deploy/{name}"
        ))),
    }
}

/// The deployment or Argo Rollout named by `deploy/NAME`, `rollout/NAME`
/// or `KIND NAME`. Only those two types have rollouts, so any other type
/// is a usage error.
pub fn target(args: &[String]) -> Result<(Kind, String)> {
    let (kind, name) = match args {
        [one] => match one.split_once('/') {
            Some((kind, name)) => (kind, name),
            None => {
                return Err(CliError::Usage(format!(
                    "name the object: 'deploy/{one}' or 'rollout/{one}' (or 'deploy {one}')"
                )))
            }
        },
        [kind, name] if !kind.contains('/') && !name.contains('/') => (kind.as_str(), name.as_str()),
        _ => {
            return Err(CliError::Usage(format!(
                "give one deployment or rollout as deploy/NAME, rollout/NAME or KIND NAME, not {:?}",
                args.join(" ")
            )))
        }
    };
    if kind.is_empty() || name.is_empty() || name.contains('/') {
        return Err(CliError::Usage(format!(
            "{:?} is not deploy/NAME or rollout/NAME, e.g. deploy/web",
            args.join(" ")
        )));
    }
    match Kind::parse(kind) {
        Some(k @ (Kind::Deployment | Kind::Rollout)) => Ok((k, name.to_string())),
        _ => Err(CliError::Usage(format!(
            "{kind:?} has no rollouts: only deployments (deploy/NAME) and Argo Rollouts (rollout/NAME) do"
        ))),
    }
}

fn object_of(t: &RolloutTarget, kind: Kind, name: &str) -> String {
    object_path(kind, &t.namespace.namespace, name)
}

/// `rollout status`: once, or until done, failed or timed out.
async fn watch_status(client: &Client, a: RolloutStatusArgs) -> Result<()> {
    let (kind, name) = target(&a.target.target)?;
    let path = object_of(&a.target, kind, &name);
    if !a.watch {
        let deploy: Value = client.get(&path).await?;
        return match status::of(&deploy) {
            Status::Failed(m) => Err(CliError::Other(m)),
            // As kubectl: a rollout still under way is not an error.
            s => {
                print_lines(&[s.message()]);
                Ok(())
            }
        };
    }
    let watch = follow(|| client.get::<Value>(&path), |line| print_lines(&[line]), POLL);
    match a.timeout.filter(|t| !t.is_zero()) {
        None => watch.await,
        Some(limit) => match tokio::time::timeout(limit, watch).await {
            Ok(done) => done,
            Err(_) => {
                eprintln!("error: timed out waiting for the condition");
                Err(CliError::Silent)
            }
        },
    }
}

/// Fetches the deployment every `poll` until its rollout is done (`Ok`) or
/// failed (`Err` with the reason), handing each message to `say` when it
/// differs from the one before: a paused rollout is said once, not at
/// every poll.
async fn follow<F, Fut>(mut fetch: F, mut say: impl FnMut(&str), poll: Duration) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let mut last: Option<String> = None;
    loop {
        let s = status::of(&fetch().await?);
        if let Status::Failed(m) = s {
            return Err(CliError::Other(m));
        }
        if last.as_deref() != Some(s.message()) {
            say(s.message());
            last = Some(s.message().to_string());
        }
        if matches!(s, Status::Done(_)) {
            return Ok(());
        }
        tokio::time::sleep(poll).await;
    }
}

/// `rollout history`: the list, or one revision's template.
async fn show_history(client: &Client, a: RolloutHistoryArgs) -> Result<()> {
    let (kind, name) = target(&a.target.target)?;
    let list: RevisionList = client.get(&format!("{}/revisions", object_of(&a.target, kind, &name))).await?;
    let format = a.output.map(|o| match o {
        DataOutput::Json => Output::Json,
        DataOutput::Yaml => Output::Yaml,
    });
    // As kubectl: --revision=0 means every revision.
    match (a.revision.filter(|n| *n != 0), format) {
        (None, Some(format)) => {
            structured(&list, format)?;
        }
        (None, None) => print_lines(&history::table(&name, &list)),
        (Some(n), Some(format)) => {
            structured(history::find(&name, &list, n)?, format)?;
        }
        (Some(n), None) => {
            let text = history::revision(&name, history::find(&name, &list, n)?);
            print_lines(&[text.trim_end()]);
        }
    }
    Ok(())
}

/// `rollout pause|resume|restart|undo|promote|abort`: one request, one
/// line.
async fn act(client: &Client, t: &RolloutTarget, request: RolloutRequest, done: &str) -> Result<()> {
    let (kind, name) = target(&t.target)?;
    let path = format!("{}/rollout", object_of(t, kind, &name));
    let _: Value = client.post(&path, &request).await?;
    print_lines(&[format!("{}/{name} {done}", kind.qualified())]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use serde_json::json;

    use super::*;

    fn deploy(generation: i64, observed: i64, updated: i64, available: i64, paused: bool) -> Value {
        json!({"metadata": {"name": "web", "generation": generation},
               "spec": {"replicas": 2, "paused": paused},
               "status": {"observedGeneration": observed, "replicas": 2, "updatedReplicas": updated,
                          "availableReplicas": available}})
    }

    /// Runs `follow` over these answers, one per poll; returns what it
    /// said and how it ended.
    async fn follow_over(answers: Vec<Result<Value>>) -> (Vec<String>, Result<()>, usize) {
        let answers = std::sync::Mutex::new(VecDeque::from(answers));
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let mut said = Vec::new();
        let fetch = || {
            polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let next = answers.lock().unwrap().pop_front().expect("follow polled past the last answer");
            async move { next }
        };
        let end = follow(fetch, |l| said.push(l.to_string()), Duration::from_millis(1)).await;
        (said, end, polls.into_inner())
    }

    #[tokio::test]
    async fn following_says_each_change_once_until_done() {
        let (said, end, polls) = follow_over(vec![
            Ok(deploy(2, 1, 0, 0, false)),
            Ok(deploy(2, 2, 1, 0, false)),
            Ok(deploy(2, 2, 1, 0, false)),
            Ok(deploy(2, 2, 2, 1, false)),
            Ok(deploy(2, 2, 2, 2, false)),
        ])
        .await;
        assert!(end.is_ok());
        assert_eq!(polls, 5);
        assert_eq!(
            said,
            [
                "Waiting for deployment spec update to be observed...",
                "Waiting for deployment \"web\" rollout to finish: 1 out of 2 new replicas have been updated...",
                "Waiting for deployment \"web\" rollout to finish: 1 of 2 updated replicas are available...",
                "deployment \"web\" successfully rolled out",
            ]
        );
    }

    #[tokio::test]
    async fn a_paused_rollout_is_said_once_and_waited_for() {
        let (said, end, _) = follow_over(vec![
            Ok(deploy(3, 3, 1, 1, true)),
            Ok(deploy(3, 3, 1, 1, true)),
            Ok(deploy(3, 3, 1, 1, true)),
            Ok(deploy(4, 4, 2, 2, false)),
        ])
        .await;
        assert!(end.is_ok());
        assert_eq!(said, ["deployment \"web\" is paused", "deployment \"web\" successfully rolled out"]);
    }

    #[tokio::test]
    async fn following_stops_at_a_failure_or_an_error() {
        let mut failed = deploy(2, 2, 1, 1, false);
        failed["status"]["conditions"] =
            json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        let (said, end, polls) = follow_over(vec![Ok(deploy(2, 2, 1, 1, false)), Ok(failed)]).await;
        assert_eq!(said.len(), 1);
        assert_eq!(polls, 2);
        let e = end.unwrap_err();
        assert_eq!((e.exit_code(), e.to_string()), (1, "deployment \"web\" exceeded its progress deadline".into()));

        let gone = CliError::Other("deployments.apps \"web\" not found".into());
        let (said, end, _) = follow_over(vec![Err(gone)]).await;
        assert!(said.is_empty());
        assert_eq!(end.unwrap_err().to_string(), "deployments.apps \"web\" not found");
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn targets_name_one_deployment() {
        for ok in [
            &["deploy/web"][..],
            &["deployment/web"],
            &["deployments/web"],
            &["deployments.apps/web"],
            &["Deployment/web"],
            &["deploy", "web"],
            &["deployment", "web"],
            &["deployments", "web"],
        ] {
            assert_eq!(target(&args(ok)).unwrap(), (Kind::Deployment, "web".to_string()), "{ok:?}");
        }
        for ok in [&["rollout/web"][..], &["ro/web"], &["rollouts.argoproj.io/web"], &["rollout", "web"]] {
            assert_eq!(target(&args(ok)).unwrap(), (Kind::Rollout, "web".to_string()), "{ok:?}");
        }
    }

    #[test]
    fn other_types_have_no_rollouts() {
        for bad in [&["pod/web"][..], &["svc", "web"], &["statefulset/web"], &["daemonset", "web"]] {
            let e = target(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            let text = e.to_string();
            assert!(
                text.contains("only deployments (deploy/NAME) and Argo Rollouts (rollout/NAME) do"),
                "{bad:?}: {text}"
            );
            assert!(!text.contains('\n'), "one line: {text}");
        }
    }

    #[test]
    fn malformed_targets() {
        let e = target(&args(&["web"])).unwrap_err();
        assert_eq!(e.to_string(), "name the object: 'deploy/web' or 'rollout/web' (or 'deploy web')");
        for bad in [&["deploy/"][..], &["deploy/a/b"], &["/web"]] {
            assert_eq!(
                target(&args(bad)).unwrap_err().to_string(),
                format!("{:?} is not deploy/NAME or rollout/NAME, e.g. deploy/web", bad[0])
            );
        }
        for bad in [&["deploy/web", "other"][..], &["deploy", "a/b"], &[]] {
            let e = target(&args(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
            assert!(
                e.to_string().starts_with("give one deployment or rollout as deploy/NAME, rollout/NAME or KIND NAME"),
                "{e}"
            );
        }
    }
}
