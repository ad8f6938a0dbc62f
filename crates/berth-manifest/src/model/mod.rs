//! Berth's own desired-state types, what the reconcilers work from. They
//! hold only what berth supports, with every default applied and every
//! reference resolved that can be resolved inside one object; they are
//! built only by the validators, so a value that exists is valid.

mod analysis;
mod config;
mod pod;
mod rollout;
mod workload;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use analysis::{
    is_arg_name, placeholders, render_args, AnalysisTemplateSpec, ArgsError, Assessment, Measure, Metric, Placeholder,
    Provider, TemplateArg,
};
pub use config::{ConfigMapSpec, SecretSpec, SecretType, SecretValue};
pub use pod::{
    ContainerPort, ContainerSpec, EnvFrom, EnvSource, EnvVar, Handler, HttpGet, KeyRef, KeyToPath, Medium,
    NonRootError, ObjectRef, PodField, PodTemplate, ProbeHandler, ProbeKind, ProbeSpec, ProjectedKeys, Protocol,
    PullPolicy, Resources, Scheme, SecurityContext, TemplateHash, Volume, VolumeMount, VolumeSource,
};
pub use rollout::{
    AnalysisRef, BackgroundAnalysis, BlueGreenSpec, CanaryScale, CanarySpec, CanaryStep, RolloutSpec, RolloutStrategy,
};
pub use workload::{
    ClusterIp, DeploymentSpec, IntOrPercent, ServicePort, ServiceSpec, ServiceType, Strategy, TargetPort,
};

use crate::selector::Labels;

/// The namespace of objects that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Deployment,
    Service,
    ConfigMap,
    Secret,
    Rollout,
    AnalysisTemplate,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Deployment => "Deployment",
            Kind::Service => "Service",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Rollout => "Rollout",
            Kind::AnalysisTemplate => "AnalysisTemplate",
        })
    }
}

/// Identifies one declared object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectKey {
    /// `deployment/web` in namespace `default`, else `deployment/shop/web`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.to_string().to_ascii_lowercase();
        if self.namespace == DEFAULT_NAMESPACE {
            write!(f, "{kind}/{}", self.name)
        } else {
            write!(f, "{kind}/{}/{}", self.namespace, self.name)
        }
    }
}

/// One validated, normalised object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Deployment(DeploymentSpec),
    Service(ServiceSpec),
    ConfigMap(ConfigMapSpec),
    Secret(SecretSpec),
    Rollout(RolloutSpec),
    AnalysisTemplate(AnalysisTemplateSpec),
}

impl Object {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Deployment(d) => &d.meta,
            Object::Service(s) => &s.meta,
            Object::ConfigMap(c) => &c.meta,
            Object::Secret(s) => &s.meta,
            Object::Rollout(r) => &r.meta,
            Object::AnalysisTemplate(a) => &a.meta,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Object::Deployment(_) => Kind::Deployment,
            Object::Service(_) => Kind::Service,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::Secret(_) => Kind::Secret,
            Object::Rollout(_) => Kind::Rollout,
            Object::AnalysisTemplate(_) => Kind::AnalysisTemplate,
        }
    }

    pub fn key(&self) -> ObjectKey {
        let meta = self.meta();
        ObjectKey { kind: self.kind(), namespace: meta.namespace.clone(), name: meta.name.clone() }
    }
}

#[cfg(test)]
mod tests;
