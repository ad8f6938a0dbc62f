//! Resource types as kubectl names them, and the `KIND NAME...` /
//! `KIND/NAME...` argument forms.

use crate::client::{CliError, Result};

/// A resource type the daemon serves under `/v1/objects/{resource}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    Deployment,
    Service,
    Endpoints,
    ConfigMap,
    Secret,
    Event,
    /// Argo Rollouts' `Rollout`.
    Rollout,
    /// Argo Rollouts' `AnalysisTemplate`.
    AnalysisTemplate,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Pod,
        Kind::Deployment,
        Kind::Service,
        Kind::Endpoints,
        Kind::ConfigMap,
        Kind::Secret,
        Kind::Event,
        Kind::Rollout,
        Kind::AnalysisTemplate,
    ];

    /// The plural, as the API path spells it (one of
    /// `berth_core::api::OBJECT_RESOURCES`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::Service => "services",
            Kind::Endpoints => "endpoints",
            Kind::ConfigMap => "configmaps",
            Kind::Secret => "secrets",
            Kind::Event => "events",
            Kind::Rollout => "rollouts",
            Kind::AnalysisTemplate => "analysistemplates",
        }
    }

    /// The object's `kind` field.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::Endpoints => "Endpoints",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Event => "Event",
            Kind::Rollout => "Rollout",
            Kind::AnalysisTemplate => "AnalysisTemplate",
        }
    }

    /// How kubectl names the type in its messages: lower-case singular,
    /// with the API group unless it is the core group
    /// (`deployment.apps/web created`, `service/web created`).
    pub fn qualified(self) -> &'static str {
        match self {
            Kind::Pod => "pod",
            Kind::Deployment => "deployment.apps",
            Kind::Service => "service",
            Kind::Endpoints => "endpoints",
            Kind::ConfigMap => "configmap",
            Kind::Secret => "secret",
            Kind::Event => "event",
            Kind::Rollout => "rollout.argoproj.io",
            Kind::AnalysisTemplate => "analysistemplate.argoproj.io",
        }
    }

    /// The plural with its group, as kubectl's "not found" messages say it.
    pub fn plural_qualified(self) -> &'static str {
        match self {
            Kind::Deployment => "deployments.apps",
            Kind::Rollout => "rollouts.argoproj.io",
            Kind::AnalysisTemplate => "analysistemplates.argoproj.io",
            other => other.resource(),
        }
    }

    /// The short name kubectl accepts, if there is one.
    fn short(self) -> Option<&'static str> {
        match self {
            Kind::Pod => Some("po"),
            Kind::Deployment => Some("deploy"),
            Kind::Service => Some("svc"),
            Kind::Endpoints => Some("ep"),
            Kind::ConfigMap => Some("cm"),
            Kind::Secret => None,
            Kind::Event => Some("ev"),
            Kind::Rollout => Some("ro"),
            Kind::AnalysisTemplate => None,
        }
    }

    /// Reads a type as typed on the command line: plural, singular, short
    /// name or `kind.group`, any case.
    pub fn parse(s: &str) -> Result<Kind> {
        let lower = s.to_ascii_lowercase();
        let bare = lower
            .strip_suffix(".apps")
            .filter(|_| lower.starts_with("deploy"))
            .or_else(|| {
                lower
                    .strip_suffix(".argoproj.io")
                    .filter(|b| b.starts_with("rollout") || b.starts_with("analysistemplate"))
            })
            .unwrap_or(&lower);
        Kind::ALL
            .into_iter()
            .find(|k| {
                let singular = k.kind().to_ascii_lowercase();
                bare == k.resource() || bare == singular || Some(bare) == k.short()
            })
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "the server doesn't have a resource type {s:?}; berth serves {}",
                    Kind::valid_list()
                ))
            })
    }

    /// Maps an object's `kind` field back (`Deployment` → Deployment).
    pub fn from_kind(kind: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.kind() == kind)
    }

    /// `pods (po), deployments (deploy), ...` for error messages.
    pub fn valid_list() -> String {
        Kind::ALL
            .iter()
            .map(|k| match k.short() {
                Some(short) => format!("{} ({short})", k.resource()),
                None => k.resource().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// kubectl's name for any `kind` the daemon reports, including kinds this
/// CLI has no `get` for (`NetworkPolicy` → `networkpolicy.networking.k8s.io`).
pub fn qualified_kind(kind: &str) -> String {
    if let Some(k) = Kind::from_kind(kind) {
        return k.qualified().to_string();
    }
    let lower = kind.to_ascii_lowercase();
    match kind {
        "ReplicaSet" | "StatefulSet" | "DaemonSet" => format!("{lower}.apps"),
        "NetworkPolicy" => format!("{lower}.networking.k8s.io"),
        "GlobalNetworkPolicy" => format!("{lower}.projectcalico.org"),
        _ => lower,
    }
}

/// What the positional arguments of get, describe, delete and scale name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every object of these types (`get pods`, `get deploy,svc`).
    All(Vec<Kind>),
    /// These objects (`get pod a b`, `get pod/a deploy/b`).
    Named(Vec<(Kind, String)>),
}

/// Reads `KIND[,KIND...] [NAME...]` or `KIND/NAME...`.
pub fn parse_selection(args: &[String]) -> Result<Selection> {
    let Some(first) = args.first() else {
        return Err(CliError::Usage(format!("name a resource type, e.g. 'pods'; berth serves {}", Kind::valid_list())));
    };
    if first.contains('/') {
        let named = args.iter().map(|a| parse_slash(a)).collect::<Result<Vec<_>>>()?;
        return Ok(Selection::Named(named));
    }
    let kinds = first.split(',').filter(|k| !k.is_empty()).map(Kind::parse).collect::<Result<Vec<_>>>()?;
    let names = &args[1..];
    if names.is_empty() {
        return Ok(Selection::All(kinds));
    }
    if let Some(bad) = names.iter().find(|n| n.contains('/')) {
        return Err(CliError::Usage(format!(
            "{bad:?}: give either KIND NAME... or KIND/NAME..., not both (e.g. '{} {}')",
            first,
            bad.rsplit('/').next().unwrap_or_default()
        )));
    }
    let [kind] = kinds[..] else {
        return Err(CliError::Usage(format!(
            "names need exactly one resource type, not {first:?}; for several types write KIND/NAME..."
        )));
    };
    Ok(Selection::Named(names.iter().map(|n| (kind, n.clone())).collect()))
}

/// `deploy/web` → (Deployment, "web").
pub fn parse_slash(arg: &str) -> Result<(Kind, String)> {
    match arg.split_once('/') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((Kind::parse(kind)?, name.to_string()))
        }
        _ => Err(CliError::Usage(format!("{arg:?} is not KIND/NAME, e.g. deploy/web or pod/web-5d8f7-abcde"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aliases_as_kubectl_spells_them() {
        for (typed, kind) in [
            ("po", Kind::Pod),
            ("pod", Kind::Pod),
            ("pods", Kind::Pod),
            ("Pods", Kind::Pod),
            ("deploy", Kind::Deployment),
            ("deployment", Kind::Deployment),
            ("deployments", Kind::Deployment),
            ("deployments.apps", Kind::Deployment),
            ("svc", Kind::Service),
            ("service", Kind::Service),
            ("services", Kind::Service),
            ("ep", Kind::Endpoints),
            ("endpoints", Kind::Endpoints),
            ("cm", Kind::ConfigMap),
            ("configmap", Kind::ConfigMap),
            ("configmaps", Kind::ConfigMap),
            ("secret", Kind::Secret),
            ("secrets", Kind::Secret),
            ("ev", Kind::Event),
            ("event", Kind::Event),
            ("events", Kind::Event),
            ("ro", Kind::Rollout),
            ("rollout", Kind::Rollout),
            ("rollouts", Kind::Rollout),
            ("rollouts.argoproj.io", Kind::Rollout),
            ("analysistemplate", Kind::AnalysisTemplate),
            ("AnalysisTemplates", Kind::AnalysisTemplate),
        ] {
            assert_eq!(Kind::parse(typed).unwrap(), kind, "{typed}");
        }
    }

    #[test]
    fn unknown_kind_is_a_usage_error_listing_the_valid_ones() {
        let e = Kind::parse("foo").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "the server doesn't have a resource type \"foo\"; berth serves pods (po), deployments (deploy), \
             services (svc), endpoints (ep), configmaps (cm), secrets, events (ev), rollouts (ro), analysistemplates"
        );
        assert!(Kind::parse("pods.apps").is_err());
    }

    #[test]
    fn every_kind_is_a_resource_the_daemon_serves() {
        for k in Kind::ALL {
            assert!(berth_core::api::OBJECT_RESOURCES.contains(&k.resource()), "{k:?}");
            assert_eq!(Kind::from_kind(k.kind()), Some(k));
        }
    }

    #[test]
    fn selections() {
        assert_eq!(parse_selection(&args(&["pods"])).unwrap(), Selection::All(vec![Kind::Pod]));
        assert_eq!(
            parse_selection(&args(&["deploy,svc"])).unwrap(),
            Selection::All(vec![Kind::Deployment, Kind::Service])
        );
        assert_eq!(
            parse_selection(&args(&["po", "a", "b"])).unwrap(),
            Selection::Named(vec![(Kind::Pod, "a".into()), (Kind::Pod, "b".into())])
        );
        assert_eq!(
            parse_selection(&args(&["pod/a", "deploy/web"])).unwrap(),
            Selection::Named(vec![(Kind::Pod, "a".into()), (Kind::Deployment, "web".into())])
        );
    }

    #[test]
    fn malformed_selections() {
        assert!(parse_selection(&[]).unwrap_err().to_string().contains("name a resource type"));
        assert!(parse_selection(&args(&["pod/a", "b"])).unwrap_err().to_string().contains("not KIND/NAME"));
        assert!(parse_selection(&args(&["pod/"])).is_err());
        assert!(parse_selection(&args(&["/a"])).is_err());
        assert!(parse_selection(&args(&["pod", "svc/a"])).unwrap_err().to_string().contains("not both"));
        assert!(parse_selection(&args(&["pod,svc", "a"])).unwrap_err().to_string().contains("exactly one"));
        assert!(parse_selection(&args(&["foo/a"])).unwrap_err().to_string().contains("resource type \"foo\""));
    }

    #[test]
    fn qualified_names_of_reported_kinds() {
        assert_eq!(qualified_kind("Deployment"), "deployment.apps");
        assert_eq!(qualified_kind("Service"), "service");
        assert_eq!(qualified_kind("ConfigMap"), "configmap");
        assert_eq!(qualified_kind("NetworkPolicy"), "networkpolicy.networking.k8s.io");
        assert_eq!(qualified_kind("Widget"), "widget");
    }
}
