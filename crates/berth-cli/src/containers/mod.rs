//! Container commands: run, create, start, stop, kill, restart, rm, ps,
//! logs, inspect, wait.

use std::io::Write;

use berth_core::api::{
    ContainerCreateRequest, ContainerInspect, ContainerSummary, ImageInspect, LogEntry, ResourceLimits,
    SecurityOptions, WaitResponse,
};

use crate::args::{CreateArgs, LogsArgs, Output, PsArgs, RunArgs, StopArgs};
use crate::client::{segment, CliError, Client, Result};
use crate::output::{ago, structured, table};

mod observe;
pub use observe::{audit, events, stats, top};

/// `512m`, `1g`, `1048576` → bytes.
pub fn parse_bytes(flag: &str, s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (&lower[..lower.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&lower[..lower.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as i64)
        .ok_or_else(|| CliError::Other(format!("{flag} {s:?} is not a size; use e.g. 512m, 1g or a number of bytes")))
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Other(format!("cannot read --env-file {}: {e}", f.display())))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if !line.contains('=') {
                // Docker passes a bare name through from the CLI's environment.
                match std::env::var(line) {
                    Ok(v) => out.push(format!("{line}={v}")),
                    Err(_) => {
                        return Err(CliError::Other(format!(
                            "{}:{}: {line:?} is neither KEY=VALUE nor a variable set here",
                            f.display(),
                            n + 1
                        )))
                    }
                }
            } else {
                out.push(line.to_string());
            }
        }
    }
    Ok(out)
}

fn request(a: &CreateArgs, auto_remove: bool) -> Result<ContainerCreateRequest> {
    let mut env = read_env_files(&a.env_file)?;
    for e in &a.env {
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        } else {
            return Err(CliError::Other(format!(
                "-e {e:?}: give KEY=VALUE, or the name of a variable set in your shell"
            )));
        }
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let volumes = a
        .volumes
        .iter()
        .map(|v| {
            // Relative host paths are the user's, so resolve them here.
            match v.split_once(':') {
                Some((host, rest)) if !host.starts_with('/') && (host.starts_with('.') || host.contains('/')) => {
                    let abs = std::env::current_dir().map(|d| d.join(host)).unwrap_or_else(|_| host.into());
                    format!("{}:{rest}", abs.display())
                }
                _ => v.clone(),
            }
        })
        .collect();
    Ok(ContainerCreateRequest {
        image: a.image.clone(),
        name: a.name.clone(),
        networks: a.networks.clone(),
        publish: a.publish.clone(),
        publish_all: a.publish_all,
        network_aliases: a.network_aliases.clone(),
        cmd: (!a.command.is_empty()).then(|| a.command.clone()),
        entrypoint: a.entrypoint.as_ref().map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] }),
        env,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        volumes,
        tmpfs: a.tmpfs.clone(),
        labels,
        limits: ResourceLimits {
            memory: a.memory.as_deref().map(|m| parse_bytes("--memory", m)).transpose()?.map(|m| m.max(0) as u64),
            memory_swap: a.memory_swap.as_deref().map(|m| parse_bytes("--memory-swap", m)).transpose()?,
            cpus: a.cpus,
            cpu_shares: a.cpu_shares,
            pids_limit: a.pids_limit,
        },
        security: SecurityOptions {
            privileged: a.privileged,
            read_only: a.read_only,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
        },
        restart: Some(a.restart),
        auto_remove,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        secret_env: Vec::new(),
        userns: a.userns.clone(),
        userns_mapping: None,
    })
}

pub async fn rename(client: &Client, container: &str, name: &str) -> Result<()> {
    let path = format!("/v1/containers/{}/rename", segment(container));
    let req = berth_core::api::ContainerRenameRequest { name: name.to_string() };
    let _: ContainerInspect = client.post(&path, &req).await?;
    Ok(())
}

pub async fn create(client: &Client, a: CreateArgs) -> Result<()> {
    let req = request(&a, a.rm)?;
    let c: ContainerInspect = client.post("/v1/containers", &req).await?;
    println!("{}", c.summary.id);
    Ok(())
}

pub async fn run(client: &Client, a: RunArgs) -> Result<i32> {
    // In the foreground, --rm is carried out here after the output is read;
    // detached, the daemon removes the container when it exits.
    let req = request(&a.create, a.create.rm && a.detach)?;
    let c: ContainerInspect = client.post("/v1/containers", &req).await?;
    let id = c.summary.id.clone();
    let started: Result<ContainerInspect> =
        client.post(&format!("/v1/containers/{id}/start"), &serde_json::json!({})).await;
    if let Err(e) = started {
        if a.create.rm {
            let _ = client.delete_empty(&format!("/v1/containers/{id}?force=true")).await;
        }
        // Like docker: a command that cannot be started is exit code 127.
        if let CliError::Api { body, .. } = &e {
            if body.kind == "start_failed" {
                eprintln!("berth: {}", body.error);
                return Ok(127);
            }
        }
        return Err(e);
    }
    if a.detach {
        println!("{id}");
        return Ok(0);
    }
    stream_logs(client, &id, "follow=true", false).await?;
    let w: WaitResponse = client.post(&format!("/v1/containers/{id}/wait"), &serde_json::json!({})).await?;
    if a.create.rm {
        client.delete_empty(&format!("/v1/containers/{id}?force=true")).await?;
    }
    if let Some(e) = w.error {
        eprintln!("berth: {e}");
    }
    Ok(w.exit_code)
}

async fn stream_logs(client: &Client, id: &str, query: &str, timestamps: bool) -> Result<()> {
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    client
        .get_stream(&format!("/v1/containers/{}/logs?{query}", segment(id)), |e: LogEntry| {
            let text = if timestamps { format!("{} {}", e.time, e.log) } else { e.log };
            if e.stream == "stderr" {
                let _ = stderr.write_all(text.as_bytes());
                let _ = stderr.flush();
            } else {
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
        })
        .await
}

/// Runs `each` for every name; like docker, tries all and reports each
/// failure once.
pub(crate) async fn for_each<F, Fut>(names: &[String], mut each: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for n in names {
        match each(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e @ CliError::Unreachable(_)) => return Err(e),
            Err(e) if names.len() == 1 => return Err(e),
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

pub async fn start(client: &Client, names: Vec<String>) -> Result<()> {
    for_each(&names, |n| async move {
        client
            .post::<_, ContainerInspect>(&format!("/v1/containers/{}/start", segment(&n)), &serde_json::json!({}))
            .await
            .map(|_| ())
    })
    .await
}

pub async fn stop(client: &Client, a: StopArgs) -> Result<()> {
    let q = a.timeout.map(|t| format!("?timeout={t}")).unwrap_or_default();
    for_each(&a.containers, |n| {
        let q = q.clone();
        async move {
            client
                .post::<_, ContainerInspect>(&format!("/v1/containers/{}/stop{q}", segment(&n)), &serde_json::json!({}))
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn restart(client: &Client, a: StopArgs) -> Result<()> {
    let q = a.timeout.map(|t| format!("?timeout={t}")).unwrap_or_default();
    for_each(&a.containers, |n| {
        let q = q.clone();
        async move {
            // A stopped container is simply started.
            let stopped: Result<ContainerInspect> =
                client.post(&format!("/v1/containers/{}/stop{q}", segment(&n)), &serde_json::json!({})).await;
            match stopped {
                Err(CliError::Api { status, .. }) if status == hyper::StatusCode::CONFLICT => {}
                other => {
                    other?;
                }
            }
            client
                .post::<_, ContainerInspect>(&format!("/v1/containers/{}/start", segment(&n)), &serde_json::json!({}))
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn kill(client: &Client, signal: String, names: Vec<String>) -> Result<()> {
    for_each(&names, |n| {
        let signal = signal.clone();
        async move {
            client
                .post_empty(
                    &format!("/v1/containers/{}/kill?signal={}", segment(&n), segment(&signal)),
                    &serde_json::json!({}),
                )
                .await
        }
    })
    .await
}

pub async fn remove(client: &Client, force: bool, names: Vec<String>) -> Result<()> {
    for_each(
        &names,
        |n| async move { client.delete_empty(&format!("/v1/containers/{}?force={force}", segment(&n))).await },
    )
    .await
}

pub async fn wait(client: &Client, names: Vec<String>) -> Result<i32> {
    let mut last = 0;
    for n in names {
        let w: WaitResponse =
            client.post(&format!("/v1/containers/{}/wait", segment(&n)), &serde_json::json!({})).await?;
        println!("{}", w.exit_code);
        last = w.exit_code;
    }
    Ok(last)
}

pub async fn ps(client: &Client, a: PsArgs) -> Result<()> {
    let list: Vec<ContainerSummary> = client.get(&format!("/v1/containers?all={}", a.all)).await?;
    if a.quiet {
        for c in &list {
            println!("{}", &c.id[..12]);
        }
        return Ok(());
    }
    if structured(&list, a.output)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            let mut cmd = c.command.clone();
            if cmd.chars().count() > 30 {
                cmd = cmd.chars().take(29).collect::<String>() + "…";
            }
            let mut row = vec![
                c.id[..12].to_string(),
                c.image.clone(),
                format!("\"{cmd}\""),
                ago(Some(&c.created)),
                c.status.clone(),
            ];
            if a.output == Output::Wide {
                row.push(c.restart_count.to_string());
                row.push(c.backoff_ms.map(|b| format!("{b}ms")).unwrap_or_else(|| "-".into()));
            }
            row.push(c.name.clone());
            row
        })
        .collect();
    if a.output == Output::Wide {
        table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "RESTARTS", "BACKOFF", "NAMES"], &rows);
    } else {
        table(&["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES"], &rows);
    }
    Ok(())
}

/// `10s`, `5m`, `2h` ago, or an RFC 3339 time, as RFC 3339.
fn since_arg(s: &str) -> Result<String> {
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(s.to_string());
    }
    let (num, unit) = s.split_at(s.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len());
    let n: i64 = num.parse().map_err(|_| {
        CliError::Other(format!("--since {s:?}: use a time like 2026-01-02T15:04:05Z or a duration like 10s, 5m, 2h"))
    })?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(CliError::Other(format!("--since {s:?}: the unit must be s, m, h or d"))),
    };
    Ok((chrono::Utc::now() - chrono::Duration::seconds(secs)).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

pub async fn logs(client: &Client, a: LogsArgs) -> Result<()> {
    let mut q = vec![format!("follow={}", a.follow)];
    if let Some(n) = a.tail {
        q.push(format!("tail={n}"));
    }
    if let Some(s) = &a.since {
        q.push(format!("since={}", segment(&since_arg(s)?)));
    }
    stream_logs(client, &a.container, &q.join("&"), a.timestamps).await
}

pub async fn inspect(client: &Client, name: &str, output: Output) -> Result<()> {
    let fmt = if output == Output::Yaml { Output::Yaml } else { Output::Json };
    match client.get::<ContainerInspect>(&format!("/v1/containers/{}", segment(name))).await {
        Ok(c) => {
            structured(&c, fmt)?;
            Ok(())
        }
        Err(CliError::Api { status, .. }) if status == hyper::StatusCode::NOT_FOUND => {
            let i: ImageInspect = client.get(&format!("/v1/images/{}", segment(name))).await.map_err(|e| match e {
                CliError::Api { status, .. } if status == hyper::StatusCode::NOT_FOUND => {
                    CliError::Other(format!("no such container or image: {name}"))
                }
                other => other,
            })?;
            structured(&i, fmt)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

pub async fn exec(client: &Client, a: crate::args::ExecArgs) -> Result<i32> {
    use base64::Engine as _;
    use berth_core::api::{ExecEvent, ExecRequest};
    use std::io::Read;
    if a.tty {
        return crate::tty::exec(client, a).await;
    }
    let stdin = if a.interactive {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::Other(format!("cannot read standard input: {e}")))?;
        Some(base64::engine::general_purpose::STANDARD.encode(buf))
    } else {
        None
    };
    let req = ExecRequest { cmd: a.command, env: a.env, workdir: a.workdir, user: a.user, stdin };
    let mut result: Option<std::result::Result<i32, String>> = None;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    client
        .post_stream(&format!("/v1/containers/{}/exec", segment(&a.container)), &req, |e: ExecEvent| match e {
            ExecEvent::Output { stream, data } => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap_or_default();
                if stream == "stderr" {
                    let _ = err.write_all(&bytes);
                    let _ = err.flush();
                } else {
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
            }
            ExecEvent::Exit { exit_code } => result = Some(Ok(exit_code)),
            ExecEvent::Error { error } => result = Some(Err(error)),
        })
        .await?;
    match result {
        Some(Ok(code)) => Ok(code),
        Some(Err(e)) => Err(CliError::Other(e)),
        None => Err(CliError::Unreachable("the daemon ended the exec stream without an exit code".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("-m", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("-m", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-m", "1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("-m", "4096").unwrap(), 4096);
        assert_eq!(parse_bytes("-m", "64kb").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("--memory-swap", "-1").unwrap(), -1);
        assert!(parse_bytes("-m", "lots").is_err());
    }

    #[test]
    fn since_forms() {
        assert!(since_arg("10s").is_ok() && since_arg("5m").is_ok() && since_arg("2026-01-02T15:04:05Z").is_ok());
        assert!(since_arg("5y").is_err() && since_arg("soon").is_err());
    }
}
