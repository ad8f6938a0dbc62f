//! Paths a container or an image controls: a subPath through a symlink
//! planted in a volume, an image whose `/etc/passwd` points at host files,
//! a running container that swaps its `/etc/passwd` for a FIFO or a huge
//! file. None of them may reach a host file or hold a daemon worker.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::berthd::Berthd;
use crate::support::images;
use crate::{apply, import_busybox, pod_named, wait_for, BUSYBOX};

/// The reproduction from the issue: an init container leaves `esc -> /` in
/// an emptyDir and the main container mounts `subPath: esc` at /host. The
/// container must never start; the pod says why.
#[test]
fn a_subpath_symlinked_out_of_its_volume_never_reaches_the_host() {
    let mut d = crate::daemon("[services]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 4\n");
    import_busybox(&d);
    let marker = d.dir().join("host-marker");
    std::fs::write(&marker, "host file").unwrap();
    apply(
        &d,
        "escape.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: escape}
spec:
  selector: {matchLabels: {app: escape}}
  template:
    metadata: {labels: {app: escape}}
    spec:
      terminationGracePeriodSeconds: 1
      initContainers:
        - name: plant
          image: busybox:test
          command: [sh, -c, "ln -s / /data/esc && mkdir -p /data/real && echo inside > /data/real/f && ln -s real /data/rel"]
          volumeMounts: [{name: data, mountPath: /data}]
      containers:
        - name: main
          image: busybox:test
          command: [sh, -c, "ls /host; sleep 300"]
          volumeMounts:
            - {name: data, mountPath: /host, subPath: esc}
      volumes:
        - {name: data, emptyDir: {}}
"#,
    );
    let why = wait_for("the escape pod to be refused", Duration::from_secs(60), || {
        let p = pod_named(&d, "escape-")?;
        let waiting = &p["status"]["containerStatuses"][0]["state"]["waiting"];
        (waiting["reason"] == "CreateContainerConfigError")
            .then(|| waiting["message"].as_str().unwrap_or("").to_string())
    });
    assert!(why.contains("subPath \"esc\"") && why.contains("leads out of the volume"), "{why}");
    let p = pod_named(&d, "escape-").unwrap();
    assert!(p["status"]["containerStatuses"][0]["state"]["running"].is_null(), "{p}");
    // Nothing of the pod's was mounted over anything of the host's.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.lines().any(|l| l.split_whitespace().nth(3) == Some("/")
            && l.split_whitespace().nth(4).is_some_and(|m| m.contains("subpaths"))),
        "a subPath bind of the host's root"
    );
    crate::assert_serving(&mut d);

    // The same volume through a relative symlink that stays inside works.
    apply(
        &d,
        "inside.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: inside}
spec:
  selector: {matchLabels: {app: inside}}
  template:
    metadata: {labels: {app: inside}}
    spec:
      terminationGracePeriodSeconds: 1
      initContainers:
        - name: plant
          image: busybox:test
          command: [sh, -c, "mkdir -p /data/real && echo inside > /data/real/f && ln -s real /data/rel"]
          volumeMounts: [{name: data, mountPath: /data}]
      containers:
        - name: main
          image: busybox:test
          command: [sh, -c, "cat /in/f; sleep 300"]
          volumeMounts:
            - {name: data, mountPath: /in, subPath: rel, readOnly: true}
      volumes:
        - {name: data, emptyDir: {}}
"#,
    );
    wait_for("the inside pod to run", Duration::from_secs(60), || {
        let p = pod_named(&d, "inside-")?;
        p["status"]["containerStatuses"][0]["state"]["running"].is_object().then_some(())
    });
    let logs = wait_for("the inside pod's output", Duration::from_secs(20), || {
        let out = d.run(&["logs", "deploy/inside"]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.contains("inside").then_some(text)
    });
    assert_eq!(logs.trim(), "inside");
}

/// A root filesystem whose `/etc/passwd` is a symlink to `target`.
fn rootfs_with_passwd_link(d: &Berthd, name: &str, target: &Path) -> PathBuf {
    let dir = d.dir().join(name);
    let status = Command::new("cp").arg("-a").arg(images().join("rootfs")).arg(&dir).status().unwrap();
    assert!(status.success());
    let passwd = dir.join("etc/passwd");
    let _ = std::fs::remove_file(&passwd);
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::os::unix::fs::symlink(target, &passwd).unwrap();
    dir
}

/// Runs `berth ARGS` with a time bound: a daemon worker held by a FIFO
/// would otherwise hang the test instead of failing it.
fn run_bounded(d: &Berthd, args: &[&str], secs: u64) -> std::process::Output {
    let mut all = vec![format!("{secs}"), crate::berthd::BERTH.to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = Command::new("timeout").args(&all).env("BERTH_SOCKET", &d.socket).output().unwrap();
    assert_ne!(out.status.code(), Some(124), "berth {args:?} hung for {secs} s:\n{}", d.log());
    out
}

#[test]
fn an_image_passwd_pointing_at_host_files_reads_only_the_image() {
    let mut d = crate::daemon("");
    let leak = d.dir().join("host-passwd");
    std::fs::write(&leak, "leak:x:0:0:leak:/HOSTLEAK:/bin/sh\n").unwrap();
    let fifo = d.dir().join("host-fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let tree = rootfs_with_passwd_link(&d, "to-file", &leak);
    d.ok(&["image", "import", &tree.display().to_string(), "--tag", "hostile:passwd-file"]);
    let out = run_bounded(&d, &["run", "--rm", "hostile:passwd-file", "sh", "-c", "echo HOME=$HOME"], 60);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && !text.contains("HOSTLEAK"), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let out = run_bounded(&d, &["run", "--rm", "-u", "leak", "hostile:passwd-file", "true"], 60);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("leak") && err.contains("/etc/passwd"), "{err}");

    // A host FIFO's path names nothing inside the image: the container runs.
    let tree = rootfs_with_passwd_link(&d, "to-fifo", &fifo);
    d.ok(&["image", "import", &tree.display().to_string(), "--tag", "hostile:passwd-fifo"]);
    let out = run_bounded(&d, &["run", "--rm", "hostile:passwd-fifo", "true"], 60);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // /dev/zero names the container's own device: the daemon never opens
    // it (not a regular file); runc, inside the container, gives up on it.
    let tree = rootfs_with_passwd_link(&d, "to-zero", Path::new("/dev/zero"));
    d.ok(&["image", "import", &tree.display().to_string(), "--tag", "hostile:passwd-zero"]);
    run_bounded(&d, &["run", "--rm", "hostile:passwd-zero", "true"], 60);
    crate::assert_serving(&mut d);
    assert!(d.peak_rss() < crate::DAEMON_MEMORY / 2, "peak RSS {}", d.peak_rss());
}

#[test]
fn a_container_swapping_its_passwd_cannot_hold_or_flood_the_daemon() {
    let mut d = crate::daemon("");
    import_busybox(&d);
    d.ok(&["run", "-d", "--name", "swap", BUSYBOX, "sleep", "300"]);
    // A symlink out of the root names the container's own file.
    d.ok(&["exec", "swap", "sh", "-c", "rm /etc/passwd && ln -s /proc/1/environ /etc/passwd"]);
    run_bounded(&d, &["exec", "-u", "nobody", "swap", "true"], 30);
    // A huge file (64 MiB of valid lines, so runc still gets in): refused,
    // never read whole.
    d.ok(&[
        "exec",
        "swap",
        "sh",
        "-c",
        "yes root:x:0:0::/root:/bin/sh | head -c 67108864 > /etc/passwd.big && mv /etc/passwd.big /etc/passwd",
    ]);
    let out = run_bounded(&d, &["exec", "-u", "nobody", "swap", "true"], 30);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("larger than"), "{err}");
    // A FIFO: opening it for reading would block a daemon worker forever.
    // (runc itself, inside the container, would block on it too: after
    // this the container cannot be entered, which is its own doing.)
    d.ok(&["exec", "swap", "sh", "-c", "rm /etc/passwd && mkfifo /etc/passwd"]);
    let out = run_bounded(&d, &["exec", "-u", "nobody", "swap", "true"], 30);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("FIFO"), "{err}");
    d.ok(&["rm", "-f", "swap"]);
    crate::assert_serving(&mut d);
    assert!(d.peak_rss() < crate::DAEMON_MEMORY / 2, "peak RSS {}", d.peak_rss());
}
