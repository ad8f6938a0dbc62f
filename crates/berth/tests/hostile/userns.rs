//! User namespaces: `berth run --userns=auto` and a pod's `hostUsers:
//! false` put root of the container on an unprivileged host uid of a range
//! the daemon allocates, so a process that escapes its mounts is nobody on
//! the host. Root inside still owns its root filesystem (`/etc`, `/tmp`).

use std::time::Duration;

use crate::berthd::Berthd;
use crate::{import_busybox, pod_named, wait_for, BUSYBOX};

const RANGE_START: u64 = 1_073_741_824;

/// The container's uid map, as `inside host size`.
fn uid_map(d: &Berthd, name: &str) -> Vec<u64> {
    let out = d.ok(&["exec", name, "cat", "/proc/self/uid_map"]);
    out.split_whitespace().map(|n| n.parse().unwrap()).collect()
}

/// The effective uid and gid of host process `pid`, from the host's /proc.
fn host_ids(pid: i64) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

/// Root inside, an unprivileged range outside; the rootfs is root's own.
fn assert_confined(d: &Berthd, name: &str) -> u64 {
    assert_eq!(d.ok(&["exec", name, "id", "-u"]).trim(), "0");
    let map = uid_map(d, name);
    assert_eq!(map.len(), 3, "one mapping: {map:?}");
    assert_eq!((map[0], map[2]), (0, 65536), "{map:?}");
    let host = map[1];
    assert!(host >= RANGE_START, "root maps to a range above host accounts: {map:?}");
    d.ok(&[
        "exec",
        name,
        "sh",
        "-c",
        "echo x > /etc/written && echo y > /tmp/written && cat /etc/written /tmp/written",
    ]);
    let listing = d.ok(&["exec", name, "ls", "-lnd", "/etc", "/bin", "/etc/written"]);
    for line in listing.lines() {
        let owner: Vec<&str> = line.split_whitespace().skip(2).take(2).collect();
        assert_eq!(owner, ["0", "0"], "root owns its rootfs inside: {listing}");
    }

    let inspect = d.json(&["inspect", name]);
    let mapping = &inspect["request"]["userns_mapping"];
    assert_eq!(mapping["host_uid"].as_u64(), Some(host), "inspect shows the mapping: {inspect}");
    assert_eq!(mapping["size"].as_u64(), Some(65536));
    let pid = inspect["pid"].as_i64().expect("running container has a pid");
    assert_eq!(host_ids(pid), (host, mapping["host_gid"].as_u64().unwrap()), "the init process as seen by the host");
    host
}

#[test]
fn userns_auto_containers_run_as_unprivileged_host_ranges() {
    let mut d = crate::daemon("");
    import_busybox(&d);
    // One on the default network, one on none: `exec` enters both.
    for (name, network) in [("uns-a", "bridge"), ("uns-b", "none")] {
        d.ok(&["run", "-d", "--name", name, "--network", network, "--userns", "auto", BUSYBOX, "sleep", "300"]);
    }
    let (a, b) = (assert_confined(&d, "uns-a"), assert_confined(&d, "uns-b"));
    assert!(a.abs_diff(b) >= 65536, "two containers share ids: {a} and {b}");

    // A host container is unchanged, and a client cannot choose a range.
    d.ok(&["run", "-d", "--name", "uns-host", "--userns", "host", BUSYBOX, "sleep", "300"]);
    assert_eq!(uid_map(&d, "uns-host"), [0, 0, 4294967295]);
    let body = serde_json::json!({"image": BUSYBOX, "userns": "auto",
        "userns_mapping": {"host_uid": 0, "host_gid": 0, "size": 65536}});
    let answer = d.api_post("/v1/containers", &body);
    assert!(answer.to_string().contains("chosen by the daemon"), "{answer}");
    let (_, err) = d.fails(&["run", "--userns", "auto", "--privileged", BUSYBOX, "true"]);
    assert!(err.contains("--userns=host"), "{err}");

    // Ranges are never handed out twice, across a daemon restart too; a
    // removed container's range is free again.
    d.stop();
    d.restart();
    d.ok(&["run", "-d", "--name", "uns-c", "--network", "none", "--userns", "auto", BUSYBOX, "sleep", "300"]);
    let c = assert_confined(&d, "uns-c");
    assert!(c != a && c != b, "{c} reused while {a} and {b} are held");
    // After a reboot the snapshot is mounted again (with metacopy, without
    // a second walk): what root wrote is there and still root's.
    d.ok(&["stop", "-t", "1", "uns-b"]);
    let rootfs = d.json(&["inspect", "uns-b"])["rootfs"].as_str().unwrap().to_string();
    let status = std::process::Command::new("umount").arg(&rootfs).status().unwrap();
    assert!(status.success(), "umount {rootfs}");
    d.ok(&["start", "uns-b"]);
    assert_eq!(d.ok(&["exec", "uns-b", "cat", "/etc/written"]).trim(), "x");
    assert_eq!(assert_confined(&d, "uns-b"), b, "the same range after a restart");
    d.ok(&["rm", "-f", "uns-a"]);
    d.ok(&["run", "-d", "--name", "uns-d", "--network", "none", "--userns", "auto", BUSYBOX, "sleep", "300"]);
    assert_eq!(assert_confined(&d, "uns-d"), a.min(b).min(c), "the lowest free range");
    for name in ["uns-b", "uns-c", "uns-d", "uns-host"] {
        d.ok(&["rm", "-f", name]);
    }
    crate::assert_serving(&mut d);
}

/// On the default network: the daemon makes the container's network
/// namespace inside its user namespace, so the container runs confined,
/// sees its own interfaces in sysfs, and `exec` can enter it (runc 1.1
/// joins the user namespace first, then the network namespace).
#[test]
fn userns_auto_on_a_network_runs_confined() {
    let mut d = crate::daemon("");
    import_busybox(&d);
    let script = "id -u; cat /proc/self/uid_map; touch /etc/w && echo etc-ok; ls /sys/class/net; sleep 300";
    d.ok(&["run", "-d", "--name", "uns-net", "--userns", "auto", BUSYBOX, "sh", "-c", script]);
    let logs = wait_for("the container's output", Duration::from_secs(20), || {
        let out = d.ok(&["logs", "uns-net"]);
        out.contains("eth0").then_some(out)
    });
    let mut lines = logs.lines();
    assert_eq!(lines.next(), Some("0"), "{logs}");
    let map: Vec<u64> = lines.next().unwrap().split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!(map[0] == 0 && map[1] >= RANGE_START && map[2] == 65536, "{logs}");
    assert!(logs.contains("etc-ok"), "{logs}");
    let inspect = d.json(&["inspect", "uns-net"]);
    let pid = inspect["pid"].as_i64().unwrap();
    assert_eq!(host_ids(pid).0, map[1]);
    // exec enters the same user and network namespaces.
    assert_eq!(uid_map(&d, "uns-net"), map);
    let ip = inspect["network"]["networks"][0]["ip"].as_str().unwrap().to_string();
    let shown = d.ok(&["exec", "uns-net", "cat", "/proc/net/fib_trie"]);
    assert!(shown.contains(&format!("|-- {ip}\n")), "{shown}");
    // The user namespace is kept beside the network namespace while the
    // container runs, and removed with it.
    let user = d.run_root.join("userns");
    let held = || std::fs::read_dir(&user).map(|e| e.count()).unwrap_or(0);
    assert_eq!(held(), 1, "one user namespace file in {}", user.display());
    d.ok(&["rm", "-f", "uns-net"]);
    assert_eq!(held(), 0, "the user namespace is removed with the container");
    crate::assert_serving(&mut d);
}

/// `hostUsers: false`: the pod's init and main containers share one range;
/// root inside owns its rootfs and the emptyDir the init container filled.
#[test]
fn a_pod_with_host_users_false_runs_in_one_user_namespace() {
    let mut d = crate::daemon("");
    import_busybox(&d);
    let path = d.dir().join("userns-pod.yaml");
    std::fs::write(
        &path,
        r#"apiVersion: v1
kind: Secret
metadata: {name: unssecret}
stringData: {token: s3cret}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: unsdep}
spec:
  replicas: 1
  selector: {matchLabels: {app: unsdep}}
  template:
    metadata: {labels: {app: unsdep}}
    spec:
      hostUsers: false
      initContainers:
        - name: init
          image: busybox:test
          command: [sh, -c, "echo from-init > /data/f"]
          volumeMounts: [{name: data, mountPath: /data}]
      containers:
        - name: main
          image: busybox:test
          command: [sh, -c, "id -u; cat /proc/self/uid_map; cat /data/f; echo more >> /data/f && touch /etc/w && echo writes-ok; cat /s/token; echo; stat -c '%u %a' /s/token; sleep 300"]
          volumeMounts: [{name: data, mountPath: /data}, {name: s, mountPath: /s}]
          readinessProbe:
            exec: {command: [cat, /proc/self/uid_map]}
            periodSeconds: 1
      volumes:
        - {name: data, emptyDir: {}}
        - {name: s, secret: {secretName: unssecret, defaultMode: 0400}}
"#,
    )
    .unwrap();
    d.ok(&["apply", "-f", &path.display().to_string()]);
    wait_for("the pod to run", Duration::from_secs(60), || {
        let p = pod_named(&d, "unsdep-")?;
        let st = &p["status"]["containerStatuses"][0];
        (st["state"]["running"].is_object() && st["ready"] == true).then_some(())
    });
    let logs = wait_for("the pod's output", Duration::from_secs(20), || {
        let out = d.run(&["logs", "deploy/unsdep"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (text.contains("writes-ok") && text.lines().count() >= 6).then_some(text)
    });
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[0], "0", "{logs}");
    let map: Vec<u64> = lines[1].split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!(map[0] == 0 && map[1] >= RANGE_START && map[2] == 65536, "{logs}");
    assert_eq!(lines[2], "from-init", "{logs}");
    // A Secret only its owner may read is root's inside the pod, as with
    // Kubernetes: the files are given to the pod's range.
    assert_eq!(lines[4], "s3cret", "{logs}");
    assert_eq!(lines[5], "0 400", "{logs}");

    // From the host: every container of the pod holds the same range, and
    // the running one is that range's uid, not root.
    let (mut held, mut checked) = (Vec::new(), 0);
    for c in d.json(&["ps", "-a"]).as_array().unwrap() {
        let inspect = d.json(&["inspect", c["id"].as_str().unwrap()]);
        let Some(uid) = inspect["request"]["userns_mapping"]["host_uid"].as_u64() else { continue };
        held.push(uid);
        if let Some(pid) = inspect["pid"].as_i64().filter(|_| inspect["state"] == "running") {
            assert_eq!(host_ids(pid).0, map[1], "{inspect}");
            // exec (like the exec probe that made the pod ready) enters
            // the pod's user and network namespaces.
            assert_eq!(uid_map(&d, c["id"].as_str().unwrap()), map);
            checked += 1;
        }
    }
    assert_eq!(held, vec![map[1]; 2], "init and main share the pod's range");
    assert_eq!(checked, 1, "the main container's process was seen from the host");
    d.ok(&["delete", "-f", &path.display().to_string()]);
    crate::assert_serving(&mut d);
}
