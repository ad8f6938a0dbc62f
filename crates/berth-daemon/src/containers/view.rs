//! How containers are shown: summaries, inspect, status lines, names.

use std::path::Path;

use berth_core::api::{ContainerCreateRequest, ContainerInspect, ContainerSummary, EffectiveSecurity};
use berth_core::container::ContainerState;
use berth_store::ContainerRecord;

pub fn ran_for(started: Option<&str>, finished: &str) -> std::time::Duration {
    match (started.and_then(berth_core::clock::parse), berth_core::clock::parse(finished)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => std::time::Duration::ZERO,
    }
}

/// "5 seconds", "3 minutes", like docker's status column.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0 => return "Less than a second".into(),
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn since(t: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> std::time::Duration {
    t.and_then(berth_core::clock::parse).and_then(|t| (now - t).to_std().ok()).unwrap_or_default()
}

pub fn status(c: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    match c.state {
        ContainerState::Created => "Created".into(),
        ContainerState::Running => format!("Up {}", human_duration(since(c.started_at.as_deref(), now))),
        ContainerState::Restarting => format!(
            "Restarting ({}) {} ago, next try in {} ms",
            c.exit_code.unwrap_or(0),
            human_duration(since(c.finished_at.as_deref(), now)),
            c.backoff_ms.unwrap_or(0)
        ),
        ContainerState::Exited => {
            format!(
                "Exited ({}) {} ago",
                c.exit_code.unwrap_or(0),
                human_duration(since(c.finished_at.as_deref(), now))
            )
        }
    }
}

fn request(c: &ContainerRecord) -> ContainerCreateRequest {
    c.request.clone()
}

pub fn summary(c: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> ContainerSummary {
    let req = request(c);
    let mut command: Vec<String> = req.entrypoint.clone().unwrap_or_default();
    command.extend(req.cmd.clone().unwrap_or_default());
    ContainerSummary {
        id: c.id.clone(),
        name: c.name.clone(),
        image: c.image.clone(),
        command: command.join(" "),
        created: c.created_at.clone(),
        state: c.state.to_string(),
        status: status(c, now),
        exit_code: c.exit_code,
        restart_count: c.restart_count,
        backoff_ms: c.backoff_ms,
    }
}

/// The effective security settings, read back from the OCI spec berth wrote.
fn security(spec: Option<&[u8]>, req: &ContainerCreateRequest) -> EffectiveSecurity {
    let Some(v) = spec.and_then(|s| serde_json::from_slice::<serde_json::Value>(s).ok()) else {
        return EffectiveSecurity::default();
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let seccomp = if v["linux"]["seccomp"].is_null() {
        "unconfined".to_string()
    } else {
        req.security
            .security_opt
            .iter()
            .find_map(|o| o.strip_prefix("seccomp=").map(str::to_string))
            .unwrap_or_else(|| "default".into())
    };
    EffectiveSecurity {
        privileged: req.security.privileged,
        capabilities: strings(&v["process"]["capabilities"]["effective"]),
        no_new_privileges: v["process"]["noNewPrivileges"].as_bool().unwrap_or(false),
        seccomp,
        read_only_rootfs: v["root"]["readonly"].as_bool().unwrap_or(false),
        masked_paths: strings(&v["linux"]["maskedPaths"]),
        readonly_paths: strings(&v["linux"]["readonlyPaths"]),
        namespaces: v["linux"]["namespaces"]
            .as_array()
            .map(|a| a.iter().filter_map(|n| n["type"].as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        user: format!("{}:{}", v["process"]["user"]["uid"], v["process"]["user"]["gid"]),
    }
}

pub fn inspect(
    c: &ContainerRecord,
    spec: Option<&[u8]>,
    rootfs: &Path,
    log: &Path,
    now: chrono::DateTime<chrono::Utc>,
) -> ContainerInspect {
    let req = request(c);
    ContainerInspect {
        summary: summary(c, now),
        image_digest: c.image_digest.to_string(),
        started_at: c.started_at.clone(),
        finished_at: c.finished_at.clone(),
        pid: c.pid,
        shim_pid: c.shim_pid.filter(|_| c.state == ContainerState::Running),
        exit_signal: c.exit_signal,
        oom_killed: c.oom_killed,
        error: c.error.clone(),
        restart_policy: req.restart.unwrap_or_default().to_string(),
        stopped_by_user: c.stopped_by_user,
        rootfs: rootfs.display().to_string(),
        log_path: log.display().to_string(),
        security: security(spec, &req),
        network: network_view(c, &req),
        request: req,
    }
}

/// The recorded attachments, or (for a container not running) the mode it
/// asked for.
fn network_view(
    c: &ContainerRecord,
    req: &berth_core::api::ContainerCreateRequest,
) -> berth_core::api::ContainerNetwork {
    let mut n = c.network.clone();
    if n.mode.is_empty() {
        n.mode = match req.networks.first().map(String::as_str) {
            Some(m @ ("none" | "host")) => m.to_string(),
            Some(m) if m.starts_with("container:") => m.to_string(),
            _ => "bridge".into(),
        };
    }
    n
}

/// `SIGTERM`, `TERM`, `15` → 15.
pub fn signal_number(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("unknown signal {s:?}; use a name like SIGTERM or KILL, or a number"))
}

/// A readable random name (`brisk_otter_3f2a`) for containers created
/// without one.
pub fn generated_name(seed: &[u8; 32]) -> String {
    const ADJ: [&str; 16] = [
        "brisk", "calm", "eager", "fond", "gentle", "keen", "lucid", "merry", "nimble", "proud", "quiet", "rapid",
        "steady", "sturdy", "tidy", "vivid",
    ];
    const NOUN: [&str; 16] = [
        "anchor", "barge", "buoy", "cutter", "dinghy", "ferry", "harbor", "jetty", "keel", "mooring", "pier", "quay",
        "rudder", "skiff", "tug", "wharf",
    ];
    format!("{}_{}_{:02x}{:02x}", ADJ[(seed[0] & 15) as usize], NOUN[(seed[1] & 15) as usize], seed[2], seed[3])
}

/// `ps` output: a title line, then rows. The last column (the command)
/// may contain spaces, so each row splits into as many fields as titles.
pub fn parse_ps(text: &str) -> berth_core::api::ContainerTop {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<String> =
        lines.next().map(|l| l.split_whitespace().map(str::to_string).collect()).unwrap_or_default();
    let n = titles.len().max(1);
    let processes = lines
        .map(|l| {
            let mut fields: Vec<String> = Vec::new();
            let mut rest = l.trim_start();
            for _ in 0..n - 1 {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                fields.push(rest[..end].to_string());
                rest = rest[end..].trim_start();
            }
            fields.push(rest.to_string());
            fields
        })
        .collect();
    berth_core::api::ContainerTop { titles, processes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_keep_commands_whole() {
        let top = parse_ps("UID   PID  CMD\nroot  1    sh -c sleep 10\nroot  7    sleep 10\n");
        assert_eq!(top.titles, vec!["UID", "PID", "CMD"]);
        assert_eq!(top.processes[0], vec!["root", "1", "sh -c sleep 10"]);
        assert_eq!(top.processes.len(), 2);
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal_number("SIGTERM").unwrap(), 15);
        assert_eq!(signal_number("kill").unwrap(), 9);
        assert_eq!(signal_number("HUP").unwrap(), 1);
        assert_eq!(signal_number("10").unwrap(), 10);
        assert!(signal_number("SIGNOPE").is_err());
        assert!(signal_number("0").is_err());
    }

    #[test]
    fn names_and_durations() {
        let n = generated_name(&[7; 32]);
        berth_core::container::validate_name(&n).unwrap();
        assert_eq!(human_duration(std::time::Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(std::time::Duration::from_secs(125)), "2 minutes");
    }
}
