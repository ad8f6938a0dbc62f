//! Containers: image, ports, environment, resources, mounts, security.

use std::collections::BTreeMap;

use berth_core::ImageRef;
use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

use super::pod::{bytes, reference_name};
use super::probe::{pre_stop, probe};
use super::Report;
use crate::error::ManifestError;
use crate::model::{
    ContainerPort, ContainerSpec, EnvFrom, EnvSource, EnvVar, KeyRef, ObjectRef, PodField, ProbeKind, Protocol,
    PullPolicy, Resources, SecurityContext, Volume, VolumeMount,
};
use crate::names;
use crate::path::FieldPath;
use crate::quantity::Quantity;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Init,
    Main,
}

pub(super) fn container(
    path: &FieldPath,
    c: &k8s::Container,
    role: Role,
    volumes: &[Volume],
    grace_seconds: u32,
    report: &mut Report<'_>,
) -> Option<ContainerSpec> {
    if let Err(why) = names::dns1123_label(&c.name) {
        report.invalid(&path.field("name"), why, "rename the container");
    }
    let image = match c.image.as_deref() {
        None | Some("") => {
            report.invalid(&path.field("image"), "the container has no image", "name an image, e.g. nginx:1.27");
            None
        }
        Some(text) => match ImageRef::parse(text) {
            Ok(image) => Some(image),
            Err(e) => {
                report.invalid(&path.field("image"), e.to_string(), "fix the image reference");
                None
            }
        },
    };
    let pull_policy = match (c.image_pull_policy.as_deref(), &image) {
        (Some("Always"), _) => PullPolicy::Always,
        (Some("IfNotPresent"), _) => PullPolicy::IfNotPresent,
        (Some("Never"), _) => PullPolicy::Never,
        (Some(other), _) => {
            report.invalid(
                &path.field("imagePullPolicy"),
                format!("{other:?} is not a pull policy"),
                "use Always, IfNotPresent or Never",
            );
            PullPolicy::IfNotPresent
        }
        // Kubernetes: Always for :latest (or no tag), IfNotPresent otherwise.
        (None, Some(image)) if image.digest().is_none() && image.tag() == Some("latest") => PullPolicy::Always,
        (None, _) => PullPolicy::IfNotPresent,
    };
    if let Some(dir) = c.working_dir.as_deref().filter(|d| !d.starts_with('/')) {
        report.invalid(&path.field("workingDir"), format!("{dir:?} is not an absolute path"), "start it with /");
    }
    let ports = ports(&path.field("ports"), c.ports.as_deref().unwrap_or_default(), report);
    let env = env(&path.field("env"), c.env.as_deref().unwrap_or_default(), report);
    let env_from = env_from(&path.field("envFrom"), c.env_from.as_deref().unwrap_or_default(), report);
    let resources = resources(&path.field("resources"), c.resources.as_ref(), report);
    let volume_mounts =
        mounts(&path.field("volumeMounts"), c.volume_mounts.as_deref().unwrap_or_default(), volumes, report);

    if role == Role::Init {
        let forbidden = [
            ("startupProbe", c.startup_probe.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("lifecycle", c.lifecycle.is_some()),
        ];
        for (field, given) in forbidden {
            if given {
                report.invalid(
                    &path.field(field),
                    "init containers run to completion, so they take no probes or lifecycle hooks",
                    "remove it, or make this a regular container",
                );
            }
        }
    }
    let probe_of = |field: &str, p: Option<&k8s::Probe>, kind, report: &mut Report<'_>| {
        p.filter(|_| role == Role::Main).and_then(|p| probe(&path.field(field), p, kind, &ports, report))
    };
    let startup_probe = probe_of("startupProbe", c.startup_probe.as_ref(), ProbeKind::Startup, report);
    let liveness_probe = probe_of("livenessProbe", c.liveness_probe.as_ref(), ProbeKind::Liveness, report);
    let readiness_probe = probe_of("readinessProbe", c.readiness_probe.as_ref(), ProbeKind::Readiness, report);
    let pre_stop = match c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) {
        Some(h) if role == Role::Main => {
            pre_stop(&path.field("lifecycle").field("preStop"), h, &ports, grace_seconds, report)
        }
        _ => None,
    };
    let security = security(&path.field("securityContext"), c.security_context.as_ref(), report);
    Some(ContainerSpec {
        name: c.name.clone(),
        image: image?,
        pull_policy,
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone(),
        env,
        env_from,
        ports,
        resources,
        volume_mounts,
        startup_probe,
        liveness_probe,
        readiness_probe,
        pre_stop,
        security,
    })
}

fn ports(path: &FieldPath, list: &[k8s::ContainerPort], report: &mut Report<'_>) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = path.index(i);
        let port = port_number(&at.field("containerPort"), p.container_port, report);
        let protocol = protocol(&at.field("protocol"), p.protocol.as_deref(), report);
        if let Some(name) = &p.name {
            if let Err(why) = names::iana_svc_name(name) {
                report.invalid(&at.field("name"), why, "rename the port");
            }
            if out.iter().any(|q| q.name.as_ref() == Some(name)) {
                report.invalid(
                    &at.field("name"),
                    format!("another port is also named {name:?}"),
                    "give each port its own name",
                );
            }
        }
        if port != 0 && out.iter().any(|q| q.port == port && q.protocol == protocol) {
            report.invalid(
                &at.field("containerPort"),
                format!("port {port} is declared twice"),
                "declare each port once",
            );
        }
        out.push(ContainerPort { name: p.name.clone(), port, protocol });
    }
    out
}

pub(super) fn port_number(path: &FieldPath, n: i32, report: &mut Report<'_>) -> u16 {
    match u16::try_from(n) {
        Ok(port) if port > 0 => port,
        _ => {
            report.invalid(path, format!("{n} is not a port number"), "use a port from 1 to 65535");
            0
        }
    }
}

pub(super) fn protocol(path: &FieldPath, p: Option<&str>, report: &mut Report<'_>) -> Protocol {
    match p {
        None | Some("TCP") => Protocol::Tcp,
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => {
            report.push(ManifestError::Unsupported {
                doc: report.source.clone(),
                line: report.line(path),
                path: path.clone(),
                hint: "berth forwards TCP and UDP only".into(),
            });
            Protocol::Tcp
        }
        Some(other) => {
            report.invalid(path, format!("{other:?} is not a protocol"), "use TCP or UDP");
            Protocol::Tcp
        }
    }
}

fn env(path: &FieldPath, list: &[k8s::EnvVar], report: &mut Report<'_>) -> Vec<EnvVar> {
    let mut out = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let at = path.index(i);
        if let Err(why) = names::env_var_name(&e.name) {
            report.invalid(&at.field("name"), why, "rename the variable");
        }
        let source = match (&e.value, &e.value_from) {
            (Some(_), Some(_)) => {
                report.invalid(&at, "both value and valueFrom are given", "keep one of them");
                continue;
            }
            (value, None) => EnvSource::Value(value.clone().unwrap_or_default()),
            (None, Some(from)) => match value_from(&at.field("valueFrom"), from, report) {
                Some(source) => source,
                None => continue,
            },
        };
        out.push(EnvVar { name: e.name.clone(), source });
    }
    out
}

fn value_from(path: &FieldPath, from: &k8s::EnvVarSource, report: &mut Report<'_>) -> Option<EnvSource> {
    let given = [from.config_map_key_ref.is_some(), from.secret_key_ref.is_some(), from.field_ref.is_some()];
    let unsupported = from.resource_field_ref.is_some() || from.file_key_ref.is_some();
    match given.iter().filter(|g| **g).count() {
        // An unsupported source was already reported by the field walk.
        0 if unsupported => return None,
        1 => {}
        n => {
            report.invalid(
                path,
                format!("valueFrom needs exactly one of configMapKeyRef, secretKeyRef, fieldRef; it has {n}"),
                "give exactly one source",
            );
            return None;
        }
    }
    let key_ref =
        |at: FieldPath, name: &str, key: &str, optional: Option<bool>, kind: &str, report: &mut Report<'_>| {
            reference_name(&at.field("name"), Some(name), kind, report);
            if let Err(why) = names::config_key(key) {
                report.invalid(&at.field("key"), why, format!("name a key of the {kind}"));
            }
            KeyRef { name: name.to_string(), key: key.to_string(), optional: optional.unwrap_or(false) }
        };
    if let Some(r) = &from.config_map_key_ref {
        return Some(EnvSource::ConfigMapKey(key_ref(
            path.field("configMapKeyRef"),
            &r.name,
            &r.key,
            r.optional,
            "ConfigMap",
            report,
        )));
    }
    if let Some(r) = &from.secret_key_ref {
        return Some(EnvSource::SecretKey(key_ref(
            path.field("secretKeyRef"),
            &r.name,
            &r.key,
            r.optional,
            "Secret",
            report,
        )));
    }
    let f = from.field_ref.as_ref()?;
    let at = path.field("fieldRef");
    if let Some(v) = f.api_version.as_deref().filter(|v| *v != "v1") {
        report.invalid(&at.field("apiVersion"), format!("{v:?} is not v1"), "use v1 or leave it out");
    }
    let field = match f.field_path.as_str() {
        "metadata.name" => PodField::Name,
        "metadata.namespace" => PodField::Namespace,
        "status.podIP" => PodField::PodIp,
        other => {
            report.invalid(
                &at.field("fieldPath"),
                format!("berth cannot provide {other:?}"),
                "use metadata.name, metadata.namespace or status.podIP",
            );
            return None;
        }
    };
    Some(EnvSource::Field(field))
}

fn env_from(path: &FieldPath, list: &[k8s::EnvFromSource], report: &mut Report<'_>) -> Vec<EnvFrom> {
    let mut out = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let at = path.index(i);
        let prefix = e.prefix.clone().unwrap_or_default();
        if !prefix.is_empty() {
            if let Err(why) = names::env_var_name(&prefix) {
                report.invalid(&at.field("prefix"), why, "use a prefix that starts a valid variable name, e.g. APP_");
            }
        }
        let source = match (&e.config_map_ref, &e.secret_ref) {
            (Some(cm), None) => {
                reference_name(&at.field("configMapRef").field("name"), Some(&cm.name), "ConfigMap", report);
                ObjectRef::ConfigMap { name: cm.name.clone(), optional: cm.optional.unwrap_or(false) }
            }
            (None, Some(s)) => {
                reference_name(&at.field("secretRef").field("name"), Some(&s.name), "Secret", report);
                ObjectRef::Secret { name: s.name.clone(), optional: s.optional.unwrap_or(false) }
            }
            _ => {
                report.invalid(&at, "envFrom needs exactly one of configMapRef and secretRef", "give exactly one");
                continue;
            }
        };
        out.push(EnvFrom { source, prefix });
    }
    out
}

fn resources(path: &FieldPath, r: Option<&k8s::ResourceRequirements>, report: &mut Report<'_>) -> Resources {
    let Some(r) = r else {
        return Resources::default();
    };
    let read = |field: &str, map: Option<&BTreeMap<String, K8sQuantity>>, report: &mut Report<'_>| {
        let mut cpu = None;
        let mut memory = None;
        for (name, q) in map.into_iter().flatten() {
            let at = path.field(field).key(name);
            match name.as_str() {
                "cpu" => match Quantity::parse(&q.0) {
                    Ok(v) if !v.is_negative() => cpu = u64::try_from(v.millis()).ok(),
                    Ok(_) => report.invalid(&at, format!("{} is negative", q.0), "give 0 or more CPUs"),
                    Err(e) => report.invalid(
                        &at,
                        e.to_string(),
                        "write CPUs as a number or in millicores, e.g. 2, 0.5 or 500m",
                    ),
                },
                "memory" => memory = bytes(&at, &q.0, report),
                _ => report.push(ManifestError::Unsupported {
                    doc: report.source.clone(),
                    line: report.line(&at),
                    path: at.clone(),
                    hint: "berth limits cpu and memory only; remove it".into(),
                }),
            }
        }
        (cpu, memory)
    };
    let (cpu_limit, memory_limit) = read("limits", r.limits.as_ref(), report);
    let (cpu_request, memory_request) = read("requests", r.requests.as_ref(), report);
    let over = |request: Option<u64>, limit: Option<u64>| matches!((request, limit), (Some(r), Some(l)) if r > l);
    if over(cpu_request, cpu_limit) {
        report.invalid(
            &path.field("requests").key("cpu"),
            "the request is above the limit",
            "request at most the cpu limit",
        );
    }
    if over(memory_request, memory_limit) {
        report.invalid(
            &path.field("requests").key("memory"),
            "the request is above the limit",
            "request at most the memory limit",
        );
    }
    // Kubernetes: a limit without a request requests the limit.
    Resources {
        cpu_request_millis: cpu_request.or(cpu_limit),
        cpu_limit_millis: cpu_limit,
        memory_request_bytes: memory_request.or(memory_limit),
        memory_limit_bytes: memory_limit,
    }
}

fn mounts(
    path: &FieldPath,
    list: &[k8s::VolumeMount],
    volumes: &[Volume],
    report: &mut Report<'_>,
) -> Vec<VolumeMount> {
    let mut out: Vec<VolumeMount> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let at = path.index(i);
        if !volumes.iter().any(|v| v.name == m.name) {
            let declared: Vec<&str> = volumes.iter().map(|v| v.name.as_str()).collect();
            let fix = if declared.is_empty() {
                "declare it under spec.template.spec.volumes".to_string()
            } else {
                format!("declare it under spec.template.spec.volumes or mount one of: {}", declared.join(", "))
            };
            report.invalid(&at.field("name"), format!("no volume of the pod is named {:?}", m.name), fix);
        }
        if !m.mount_path.starts_with('/') {
            report.invalid(
                &at.field("mountPath"),
                format!("{:?} is not an absolute path", m.mount_path),
                "start it with /",
            );
        } else if out.iter().any(|o| o.mount_path == m.mount_path) {
            report.invalid(
                &at.field("mountPath"),
                format!("{:?} is mounted twice", m.mount_path),
                "mount one volume per path",
            );
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            if let Err(why) = names::relative_path(sub) {
                report.invalid(&at.field("subPath"), why, "give a path inside the volume");
            }
        }
        out.push(VolumeMount {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.unwrap_or(false),
            sub_path: m.sub_path.clone().filter(|s| !s.is_empty()),
        });
    }
    out
}

fn security(path: &FieldPath, s: Option<&k8s::SecurityContext>, report: &mut Report<'_>) -> SecurityContext {
    let Some(s) = s else {
        return SecurityContext::default();
    };
    let id = |field: &str, v: Option<i64>, report: &mut Report<'_>| {
        v.and_then(|v| match u32::try_from(v) {
            Ok(id) => Some(id),
            Err(_) => {
                report.invalid(&path.field(field), format!("{v} is not a user or group id"), "use 0 to 4294967295");
                None
            }
        })
    };
    let run_as_user = id("runAsUser", s.run_as_user, report);
    let run_as_group = id("runAsGroup", s.run_as_group, report);
    let run_as_non_root = s.run_as_non_root.unwrap_or(false);
    if run_as_non_root && run_as_user == Some(0) {
        report.invalid(
            &path.field("runAsUser"),
            "runAsNonRoot is true but runAsUser is 0 (root)",
            "run as another user or drop runAsNonRoot",
        );
    }
    let privileged = s.privileged.unwrap_or(false);
    if privileged && s.allow_privilege_escalation == Some(false) {
        report.invalid(
            &path.field("allowPrivilegeEscalation"),
            "a privileged container always can escalate privileges",
            "drop privileged or allowPrivilegeEscalation: false",
        );
    }
    let caps = |field: &str, list: Option<&Vec<String>>, report: &mut Report<'_>| {
        let mut out = Vec::new();
        for (i, name) in list.into_iter().flatten().enumerate() {
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            let valid =
                !bare.is_empty() && bare.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                report.invalid(
                    &path.field("capabilities").field(field).index(i),
                    format!("{name:?} is not a capability name"),
                    "write it in capitals, e.g. NET_BIND_SERVICE or ALL",
                );
            } else if bare == "ALL" {
                out.push("ALL".to_string());
            } else {
                out.push(format!("CAP_{bare}"));
            }
        }
        out
    };
    let capabilities = s.capabilities.as_ref();
    SecurityContext {
        run_as_user,
        run_as_group,
        run_as_non_root,
        read_only_root_filesystem: s.read_only_root_filesystem.unwrap_or(false),
        privileged,
        allow_privilege_escalation: s.allow_privilege_escalation,
        capabilities_add: caps("add", capabilities.and_then(|c| c.add.as_ref()), report),
        capabilities_drop: caps("drop", capabilities.and_then(|c| c.drop.as_ref()), report),
    }
}
