//! Probes and preStop hooks. Ports, by number or by name, must be ports the
//! container declares; they are resolved to numbers here.

use std::time::Duration;

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::container::port_number;
use super::Report;
use crate::model::{ContainerPort, Handler, HttpGet, ProbeHandler, ProbeKind, ProbeSpec, Protocol, Scheme};
use crate::path::FieldPath;

pub(super) fn probe(
    path: &FieldPath,
    p: &k8s::Probe,
    kind: ProbeKind,
    ports: &[ContainerPort],
    report: &mut Report<'_>,
) -> Option<ProbeSpec> {
    let given: Vec<&str> = [
        p.exec.as_ref().map(|_| "exec"),
        p.http_get.as_ref().map(|_| "httpGet"),
        p.tcp_socket.as_ref().map(|_| "tcpSocket"),
        p.grpc.as_ref().map(|_| "grpc"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if given.len() != 1 {
        let has = if given.is_empty() { "none".to_string() } else { given.join(" and ") };
        report.invalid(
            path,
            format!("a probe needs exactly one of exec, httpGet, tcpSocket, grpc; this one has {has}"),
            "give exactly one",
        );
        return None;
    }
    let handler = handler(path, p, ports, report);
    let mut seconds = |field: &str, value: Option<i32>, default: u32, min: u32| -> u32 {
        match value {
            None => default,
            Some(v) if i64::from(v) >= i64::from(min) => v as u32,
            Some(v) => {
                report.invalid(
                    &path.field(field),
                    format!("must be at least {min}, got {v}"),
                    format!("set it to {min} or more"),
                );
                default
            }
        }
    };
    let initial_delay = seconds("initialDelaySeconds", p.initial_delay_seconds, 0, 0);
    let period = seconds("periodSeconds", p.period_seconds, 10, 1);
    let timeout = seconds("timeoutSeconds", p.timeout_seconds, 1, 1);
    let success_threshold = seconds("successThreshold", p.success_threshold, 1, 1);
    let failure_threshold = seconds("failureThreshold", p.failure_threshold, 3, 1);
    if kind != ProbeKind::Readiness && success_threshold != 1 {
        report.invalid(
            &path.field("successThreshold"),
            format!("must be 1 for liveness and startup probes, got {success_threshold}"),
            "set it to 1 or leave it out",
        );
    }
    Some(ProbeSpec {
        kind,
        handler: handler?,
        initial_delay: Duration::from_secs(initial_delay.into()),
        period: Duration::from_secs(period.into()),
        timeout: Duration::from_secs(timeout.into()),
        success_threshold,
        failure_threshold,
    })
}

fn handler(path: &FieldPath, p: &k8s::Probe, ports: &[ContainerPort], report: &mut Report<'_>) -> Option<ProbeHandler> {
    Some(if let Some(e) = &p.exec {
        ProbeHandler::Exec { command: exec(&path.field("exec"), e, report)? }
    } else if let Some(h) = &p.http_get {
        ProbeHandler::HttpGet(http_get(&path.field("httpGet"), h, ports, report)?)
    } else if let Some(t) = &p.tcp_socket {
        ProbeHandler::TcpSocket { port: resolve_port(&path.field("tcpSocket").field("port"), &t.port, ports, report)? }
    } else {
        let g = p.grpc.as_ref()?;
        let at = path.field("grpc").field("port");
        let port = resolve_port(&at, &IntOrString::Int(g.port), ports, report)?;
        ProbeHandler::Grpc { port, service: g.service.clone().filter(|s| !s.is_empty()) }
    })
}

pub(super) fn pre_stop(
    path: &FieldPath,
    h: &k8s::LifecycleHandler,
    ports: &[ContainerPort],
    grace_seconds: u32,
    report: &mut Report<'_>,
) -> Option<Handler> {
    let given = [h.exec.is_some(), h.http_get.is_some(), h.sleep.is_some()].into_iter().filter(|g| *g).count();
    if given != 1 {
        // tcpSocket alone was reported by the field walk as unsupported.
        if !(given == 0 && h.tcp_socket.is_some()) {
            report.invalid(
                path,
                format!("preStop needs exactly one of exec, httpGet, sleep; it has {given}"),
                "give exactly one",
            );
        }
        return None;
    }
    if let Some(e) = &h.exec {
        return Some(Handler::Exec { command: exec(&path.field("exec"), e, report)? });
    }
    if let Some(g) = &h.http_get {
        return Some(Handler::HttpGet(http_get(&path.field("httpGet"), g, ports, report)?));
    }
    let seconds = h.sleep.as_ref()?.seconds;
    if seconds < 0 || seconds > i64::from(grace_seconds) {
        report.invalid(
            &path.field("sleep").field("seconds"),
            format!("must be from 0 to terminationGracePeriodSeconds ({grace_seconds}), got {seconds}"),
            "sleep for less than the grace period",
        );
        return None;
    }
    Some(Handler::Sleep(Duration::from_secs(seconds.unsigned_abs())))
}

fn exec(path: &FieldPath, e: &k8s::ExecAction, report: &mut Report<'_>) -> Option<Vec<String>> {
    let command = e.command.clone().unwrap_or_default();
    if command.is_empty() {
        report.invalid(&path.field("command"), "the command is empty", "give the program and its arguments");
        return None;
    }
    Some(command)
}

fn http_get(
    path: &FieldPath,
    h: &k8s::HTTPGetAction,
    ports: &[ContainerPort],
    report: &mut Report<'_>,
) -> Option<HttpGet> {
    let port = resolve_port(&path.field("port"), &h.port, ports, report);
    let request_path = h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_string());
    if !request_path.starts_with('/') {
        report.invalid(
            &path.field("path"),
            format!("{request_path:?} does not start with /"),
            "write it like /healthz",
        );
    }
    let scheme = match h.scheme.as_deref() {
        None | Some("HTTP") => Scheme::Http,
        Some("HTTPS") => Scheme::Https,
        Some(other) => {
            report.invalid(&path.field("scheme"), format!("{other:?} is not a scheme"), "use HTTP or HTTPS");
            Scheme::Http
        }
    };
    let mut headers = Vec::new();
    for (i, header) in h.http_headers.iter().flatten().enumerate() {
        let token = !header.name.is_empty()
            && header.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            report.invalid(
                &path.field("httpHeaders").index(i).field("name"),
                format!("{:?} is not an HTTP header name", header.name),
                "use letters, digits and -, e.g. X-Probe",
            );
        }
        headers.push((header.name.clone(), header.value.clone()));
    }
    Some(HttpGet { path: request_path, port: port?, scheme, headers })
}

/// A probe port: any valid number, or the name of a TCP port the
/// container declares.
fn resolve_port(path: &FieldPath, port: &IntOrString, ports: &[ContainerPort], report: &mut Report<'_>) -> Option<u16> {
    let tcp: Vec<&ContainerPort> = ports.iter().filter(|p| p.protocol == Protocol::Tcp).collect();
    let declared = || {
        if tcp.is_empty() {
            "the container declares no TCP ports".to_string()
        } else {
            let list: Vec<String> = tcp
                .iter()
                .map(|p| match &p.name {
                    Some(name) => format!("{name} ({})", p.port),
                    None => p.port.to_string(),
                })
                .collect();
            format!("it declares {}", list.join(", "))
        }
    };
    match port {
        IntOrString::Int(n) => {
            // As Kubernetes: `containerPort` is informational, so a number
            // needs no declaration; only a name must resolve.
            let number = port_number(path, *n, report);
            (number != 0).then_some(number)
        }
        IntOrString::String(name) => match tcp.iter().find(|p| p.name.as_deref() == Some(name)) {
            Some(p) => Some(p.port),
            None => {
                report.invalid(
                    path,
                    format!("no TCP port of the container is named {name:?} ({})", declared()),
                    "name a declared port, or use its number",
                );
                None
            }
        },
    }
}
