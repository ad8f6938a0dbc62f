//! Secrets against everyone who may read what berth keeps or shows: a
//! Secret's value reaches the container (as environment and as files on a
//! read-only tmpfs) and nothing else — not `inspect`, `get -o yaml`, the
//! audit log, the daemon's log or any file under the state root. A restart
//! reads the Secret again; a Secret gone keeps the container from starting
//! (`CreateContainerConfigError`). And the audit log tells what was asked
//! and how it ended.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::berthd::Berthd;
use crate::{apply, assert_serving, daemon, support, wait_for};

/// Values no image, test or log would hold by chance.
const VALUE: &str = "s3cr3t-4f9b2c7e-v1";
const ROTATED: &str = "s3cr3t-81d0e6aa-v2";

/// Short crash back-off, so restarts come within seconds.
const CONFIG: &str = "[services]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\n";

fn with_image(config: &str) -> Berthd {
    let d = daemon(config);
    d.ok(&["image", "import", &support::images().join("single").display().to_string(), "--tag", "busybox:test"]);
    d
}

fn secret(value: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: vault-db}}\nstringData: {{password: {value}}}\n")
}

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: vault}
spec:
  replicas: 1
  selector: {matchLabels: {app: vault}}
  template:
    metadata: {labels: {app: vault}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
        - name: app
          image: busybox:test
          imagePullPolicy: Never
          command: [sh, -c, "exec sleep 3600"]
          env:
            - {name: PASS, valueFrom: {secretKeyRef: {name: vault-db, key: password}}}
            - {name: DSN, value: "pg://app:$(PASS)@db"}
          volumeMounts:
            - {name: creds, mountPath: /etc/creds}
      volumes:
        - {name: creds, secret: {secretName: vault-db}}
"#;

fn the_pod(d: &Berthd) -> Value {
    d.json(&["get", "pods", "-l", "app=vault"])["items"][0].clone()
}

/// The pod's container, once it runs: (pod name, container id).
fn running(d: &Berthd) -> (String, String) {
    wait_for("the pod's container to run", Duration::from_secs(60), || {
        let p = the_pod(d);
        let st = &p["status"]["containerStatuses"][0];
        st["state"]["running"].is_object().then(|| {
            let id = st["containerID"].as_str().unwrap_or_default().trim_start_matches("berth://").to_string();
            (p["metadata"]["name"].as_str().unwrap().to_string(), id)
        })
    })
}

/// Every regular file under `dir` (not following symlinks).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = fs::symlink_metadata(e.path()) else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// The files under the state root holding `needle`.
fn holding(root: &Path, needle: &str) -> Vec<PathBuf> {
    let files = files_under(root);
    assert!(files.iter().any(|f| f.ends_with("state.db")), "the store is under {}", root.display());
    files
        .into_iter()
        .filter(|f| fs::read(f).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())))
        .collect()
}

fn audit(d: &Berthd) -> Vec<Value> {
    d.json(&["system", "audit", "--limit", "100000"]).as_array().cloned().unwrap()
}

#[test]
fn a_secret_reaches_the_container_and_nothing_else() {
    let mut d = with_image(CONFIG);
    apply(&d, "secret.yaml", &secret(VALUE));
    apply(&d, "vault.yaml", DEPLOYMENT);
    let (pod, id) = running(&d);
    let pod_ref = format!("pod/{pod}");

    // The container has it, as environment (expanded too) and as a file.
    let env = d.ok(&["exec", &pod_ref, "--", "env"]);
    assert!(env.contains(&format!("PASS={VALUE}")) && env.contains(&format!("DSN=pg://app:{VALUE}@db")), "{env}");
    assert_eq!(d.ok(&["exec", &pod_ref, "--", "cat", "/etc/creds/password"]), VALUE);
    // The Secret volume is read-only although the mount does not say so.
    let out = d.run(&["exec", &pod_ref, "--", "sh", "-c", "echo x > /etc/creds/new"]);
    assert!(!out.status.success(), "a file was written into the Secret volume");
    let out = d.run(&["exec", &pod_ref, "--", "sh", "-c", "echo x > /etc/creds/password"]);
    assert!(!out.status.success(), "the Secret's file was overwritten");
    assert_eq!(d.ok(&["exec", &pod_ref, "--", "cat", "/etc/creds/password"]), VALUE);

    // What berth shows has the reference, not the value.
    let inspect = d.ok(&["inspect", &id]);
    assert!(!inspect.contains(VALUE), "inspect shows the value:\n{inspect}");
    assert!(inspect.contains("PASS=<secret default/vault-db password>"), "{inspect}");
    assert!(inspect.contains("DSN=pg://app:<secret default/vault-db password>@db"), "{inspect}");
    for args in [
        &["ps", "-a", "-o", "json"][..],
        &["get", "pod", &pod, "-o", "yaml"],
        &["get", "secret", "vault-db", "-o", "yaml"],
        &["describe", "pod", &pod],
        &["events", "--since", "10m", "--until", "0s", "-o", "json"],
    ] {
        let out = d.ok(args);
        assert!(!out.contains(VALUE), "berth {args:?} shows the value:\n{out}");
    }
    // Asked for, it is shown, and the reading is audited.
    let shown = d.ok(&["get", "secret", "vault-db", "--show-secrets", "-o", "yaml"]);
    assert!(shown.contains("czNjcjN0LTRmOWIyYzdlLXYx"), "{shown}");
    let log = audit(&d);
    assert!(
        log.iter().any(|a| {
            let s = a["summary"].as_str().unwrap();
            (s.starts_with("get secret default/vault-db") || s.starts_with("list secrets namespace=default"))
                && s.ends_with("show_secrets=true")
        }),
        "no audit of the secret read: {log:#?}"
    );
    assert!(
        log.iter().any(|a| a["summary"].as_str().unwrap().contains("secret/default/vault-db(created)")),
        "no audit of the apply: {log:#?}"
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(VALUE) && !text.contains("czNjcjN0LTRm"), "the audit log holds the value");

    // No file under the state root holds it (the store and its WAL
    // included, logs too) but the bundle's config.json, which the runtime
    // reads at start and at every exec: that one is the owner's alone.
    let config_json = d.root.join("containers").join(&id).join("config.json");
    assert_eq!(holding(&d.root, VALUE), vec![config_json.clone()]);
    let mode = fs::metadata(&config_json).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", config_json.display());
    assert!(!d.log().contains(VALUE), "the daemon's log holds the value");

    // A restart reads the Secret as it is then.
    apply(&d, "secret.yaml", &secret(ROTATED));
    d.ok(&["kill", &id]);
    wait_for("the container to restart with the new value", Duration::from_secs(60), || {
        let out = d.run(&["exec", &pod_ref, "--", "env"]);
        String::from_utf8_lossy(&out.stdout).contains(&format!("PASS={ROTATED}")).then_some(())
    });
    assert_eq!(holding(&d.root, ROTATED), vec![config_json.clone()]);
    assert_eq!(holding(&d.root, VALUE), Vec::<PathBuf>::new());

    // And across a daemon restart, nothing is read back in the clear.
    d.stop();
    d.restart();
    assert_eq!(holding(&d.root, ROTATED), vec![config_json.clone()]);
    let shown = d.ok(&["get", "secret", "vault-db", "--show-secrets", "-o", "json"]);
    assert!(shown.contains("czNjcjN0LTgxZDBlNmFhLXYy"), "{shown}");

    // Gone, the Secret keeps the container from starting again.
    d.ok(&["delete", "secret", "vault-db"]);
    let (_, id) = running(&d);
    d.ok(&["kill", &id]);
    let reason = wait_for("CreateContainerConfigError", Duration::from_secs(60), || {
        let p = the_pod(&d);
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (waiting["reason"] == "CreateContainerConfigError").then(|| waiting["message"].to_string())
    });
    assert!(reason.contains("vault-db"), "{reason}");
    let table = d.ok(&["get", "pods"]);
    assert!(table.contains("CreateContainerConfigError"), "{table}");
    assert_serving(&mut d);
}

#[test]
fn the_audit_log_says_what_was_asked_and_how_it_ended() {
    let mut d = with_image("[audit]\nmax_entries = 50\n");
    // A stream that never starts is a failure.
    let (_, err) = d.fails(&["logs", "-f", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    // A privileged run with the host's root mounted: both in the summary.
    d.ok(&["run", "--rm", "--privileged", "-v", "/:/host", "-e", "TOKEN=hidden-value-1", "busybox:test", "true"]);
    // A stream that fails after its 200: a pull from nowhere.
    d.fails(&["pull", "127.0.0.1:1/nothing/here:1"]);
    // An exec's exit code.
    d.ok(&["run", "-d", "--name", "audited", "busybox:test", "sleep", "30"]);
    let out = d.run(&["exec", "audited", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    d.ok(&["rm", "-f", "audited"]);

    let log = audit(&d);
    let find = |what: &str, f: &dyn Fn(&Value) -> bool| -> Value {
        log.iter().find(|a| f(a)).cloned().unwrap_or_else(|| panic!("no audit entry for {what} in {log:#?}"))
    };
    let logs = find("logs -f nosuch", &|a| a["path"] == "/v1/containers/nosuch/logs");
    assert_eq!((logs["ok"].as_bool(), logs["status"].as_u64()), (Some(false), Some(404)), "{logs}");
    assert_eq!(logs["summary"], "logs container=nosuch follow=true");
    assert!(logs["error"].as_str().unwrap().contains("nosuch"), "{logs}");

    let run = find("the privileged run", &|a| a["summary"].as_str().unwrap().contains("privileged=true"));
    let summary = run["summary"].as_str().unwrap();
    assert!(summary.contains("privileged=true") && summary.contains("volumes=[/:/host]"), "{summary}");
    assert!(summary.contains("env=[TOKEN]") && !summary.contains("hidden-value-1"), "{summary}");
    assert_eq!(run["ok"], true);

    let pull = find("the failed pull", &|a| a["path"] == "/v1/images/pull");
    assert_eq!(pull["ok"], false, "{pull}");
    assert!(pull["summary"].as_str().unwrap().contains("127.0.0.1:1/nothing/here:1"), "{pull}");

    let exec = find("the exec", &|a| a["path"].as_str().unwrap().ends_with("/exec"));
    assert_eq!(exec["summary"], "exec container=audited cmd=[sh,-c,\"exit 3\"] exit_code=3", "{exec}");

    // Newest first.
    let times: Vec<&str> = log.iter().map(|a| a["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(!serde_json::to_string(&log).unwrap().contains("hidden-value-1"));

    // Retention: past max_entries the oldest go (at start, then hourly).
    for n in 0..60 {
        d.run(&["rm", &format!("nosuch-{n}")]);
    }
    assert!(audit(&d).len() > 50);
    d.stop();
    d.restart();
    let kept = audit(&d);
    assert_eq!(kept.len(), 50, "{kept:#?}");
    assert_eq!(kept[0]["summary"], "remove container=nosuch-59");
    assert_serving(&mut d);
}
