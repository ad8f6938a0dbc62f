//! Watching containers: `stats`, `top`, `events` and `system audit`.

use super::*;

pub(super) async fn sample(
    client: &Client,
    names: &[String],
) -> Result<Vec<(String, berth_core::api::ContainerStats)>> {
    let mut out = Vec::new();
    for n in names {
        let s: berth_core::api::ContainerStats = client.get(&format!("/v1/containers/{}/stats", segment(n))).await?;
        out.push((n.clone(), s));
    }
    Ok(out)
}

pub(super) fn cpu_percent(a: &berth_core::api::ContainerStats, b: &berth_core::api::ContainerStats) -> Option<f64> {
    let (ca, cb) = (a.cpu_usage_ns?, b.cpu_usage_ns?);
    let ta = chrono::DateTime::parse_from_rfc3339(&a.time).ok()?;
    let tb = chrono::DateTime::parse_from_rfc3339(&b.time).ok()?;
    let wall = (tb - ta).num_nanoseconds()? as f64;
    (wall > 0.0).then(|| cb.saturating_sub(ca) as f64 / wall * 100.0)
}

pub async fn stats(client: &Client, no_stream: bool, output: Output, mut names: Vec<String>) -> Result<()> {
    use berth_core::size::human;
    if names.is_empty() {
        let list: Vec<ContainerSummary> = client.get("/v1/containers").await?;
        names = list.into_iter().map(|c| c.name).collect();
    }
    let mut prev = sample(client, &names).await?;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(if no_stream { 500 } else { 1000 })).await;
        let now = sample(client, &names).await?;
        if output == Output::Json {
            let v: Vec<serde_json::Value> = now
                .iter()
                .zip(&prev)
                .map(|((n, s), (_, p))| serde_json::json!({"name": n, "cpu_percent": cpu_percent(p, s), "stats": s}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else {
            let rows: Vec<Vec<String>> = now
                .iter()
                .zip(&prev)
                .map(|((n, s), (_, p))| {
                    let opt = |v: Option<u64>| v.map(human).unwrap_or_else(|| "--".into());
                    vec![
                        n.clone(),
                        cpu_percent(p, s).map(|c| format!("{c:.2}%")).unwrap_or_else(|| "--".into()),
                        format!(
                            "{} / {}",
                            opt(s.memory_usage),
                            s.memory_limit.map(human).unwrap_or_else(|| "unlimited".into())
                        ),
                        format!(
                            "{} / {}",
                            s.pids.map(|p| p.to_string()).unwrap_or_else(|| "--".into()),
                            s.pids_limit.map(|p| p.to_string()).unwrap_or_else(|| "max".into())
                        ),
                        format!("{} / {}", opt(s.block_read), opt(s.block_write)),
                    ]
                })
                .collect();
            if !no_stream {
                // Clear the screen between samples, as docker stats does.
                print!("\x1b[2J\x1b[H");
            }
            table(&["NAME", "CPU %", "MEM USAGE / LIMIT", "PIDS", "BLOCK I/O"], &rows);
        }
        if no_stream {
            return Ok(());
        }
        prev = now;
    }
}

pub async fn top(client: &Client, name: &str, ps_args: Vec<String>) -> Result<()> {
    let mut path = format!("/v1/containers/{}/top", segment(name));
    if !ps_args.is_empty() {
        path.push_str(&format!("?ps_args={}", segment(&ps_args.join(" "))));
    }
    let t: berth_core::api::ContainerTop = client.get(&path).await?;
    let titles: Vec<&str> = t.titles.iter().map(String::as_str).collect();
    if !titles.is_empty() {
        table(&titles, &t.processes);
    }
    Ok(())
}

/// A time given as RFC 3339 or a duration ago, or (for --until) from now.
pub(super) fn time_arg(flag: &str, s: &str, future: bool) -> Result<String> {
    if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        return Ok(s.to_string());
    }
    let past = since_arg(s).map_err(|_| {
        CliError::Other(format!("{flag} {s:?}: use a time like 2026-01-02T15:04:05Z or a duration like 10s, 5m, 2h"))
    })?;
    if !future {
        return Ok(past);
    }
    let t = chrono::DateTime::parse_from_rfc3339(&past).map_err(|e| CliError::Other(e.to_string()))?;
    let ahead = chrono::Utc::now() + (chrono::Utc::now() - t.with_timezone(&chrono::Utc));
    Ok(ahead.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

pub async fn events(
    client: &Client,
    since: Option<String>,
    until: Option<String>,
    filter: Vec<String>,
    output: Output,
) -> Result<()> {
    let mut q = Vec::new();
    if let Some(s) = since {
        q.push(format!("since={}", segment(&time_arg("--since", &s, false)?)));
    }
    if let Some(u) = until {
        q.push(format!("until={}", segment(&time_arg("--until", &u, true)?)));
    }
    if !filter.is_empty() {
        q.push(format!("filter={}", segment(&filter.join(","))));
    }
    client
        .get_stream(&format!("/v1/events?{}", q.join("&")), |e: berth_core::api::Event| {
            if output == Output::Json {
                println!("{}", serde_json::to_string(&e).unwrap_or_default());
            } else {
                let attrs: Vec<String> = e.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{} {} {} {} ({}name={})",
                    e.time,
                    e.kind,
                    e.action,
                    e.id,
                    if attrs.is_empty() { String::new() } else { attrs.join(", ") + ", " },
                    e.name
                );
            }
        })
        .await
}

pub async fn audit(client: &Client, since: Option<String>, limit: usize, output: Output) -> Result<()> {
    let mut q = format!("?limit={limit}");
    if let Some(s) = since {
        q.push_str(&format!("&since={}", segment(&time_arg("--since", &s, false)?)));
    }
    let list: Vec<berth_core::api::AuditRecord> = client.get(&format!("/v1/audit{q}")).await?;
    if structured(&list, output)? {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.time.clone(),
                a.uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into()),
                a.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                a.status.to_string(),
                match (&a.error, a.ok) {
                    (_, true) => "ok".to_string(),
                    (Some(e), false) => format!("failed: {e}"),
                    (None, false) => "failed".to_string(),
                },
                if a.summary.is_empty() { format!("{} {}", a.method, a.path) } else { a.summary.clone() },
            ]
        })
        .collect();
    table(&["TIME", "UID", "PID", "STATUS", "OUTCOME", "REQUEST"], &rows);
    Ok(())
}
