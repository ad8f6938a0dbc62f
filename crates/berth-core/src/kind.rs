//! The object types berth serves, as Kubernetes and kubectl name them:
//! the `kind` field, the API path's plural, short names and `kind.group`
//! spellings. One definition for the CLI (which reads what users type) and
//! the daemon (which routes `/v1/objects/{resource}`).

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

    /// The plural, as the API path spells it (`/v1/objects/{resource}`).
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
    pub fn short(self) -> Option<&'static str> {
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
    pub fn parse(s: &str) -> Option<Kind> {
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
        Kind::ALL.into_iter().find(|k| {
            let singular = k.kind().to_ascii_lowercase();
            bare == k.resource() || bare == singular || Some(bare) == k.short()
        })
    }

    /// The type an API path's plural names (`deployments`).
    pub fn from_resource(resource: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.resource() == resource)
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_kind_round_trips_through_its_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::from_resource(k.resource()), Some(k));
            assert_eq!(Kind::from_kind(k.kind()), Some(k));
            assert_eq!(Kind::parse(k.resource()), Some(k));
        }
        assert_eq!(Kind::parse("pods.apps"), None);
        assert_eq!(Kind::parse("foo"), None);
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
