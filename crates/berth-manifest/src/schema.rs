//! The supported subset: an allow-list of fields per Kubernetes type.
//!
//! This table is the single source of truth for what berth reads. A field
//! that is not listed is refused: as "not a field of T" when Kubernetes does
//! not know it either (a typo), as "not supported by berth" when it does.
//! A field whose value is null, `[]` or a mapping of such values (`{}`)
//! declares nothing and is accepted anywhere (so `creationTimestamp: null` and `status: {}` from
//! `kubectl create --dry-run -o yaml` pass). The table below is generated
//! from [`markdown_table`]; a test keeps the two identical.
//!
//! Values of supported fields are checked further by the validators (for
//! example `restartPolicy` may only be `Always`); the notes column says so.
#![doc = include_str!("../SUPPORTED.md")]

use crate::path::{FieldPath, Segment};

mod argo;

pub use argo::*;

/// The fields berth reads of one Kubernetes type.
#[derive(Debug)]
pub struct TypeSchema {
    pub name: &'static str,
    pub fields: &'static [FieldSpec],
}

#[derive(Debug)]
pub struct FieldSpec {
    pub name: &'static str,
    pub shape: Shape,
    pub note: &'static str,
}

/// What a supported field holds, as far as the field walk cares.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A scalar or a list of scalars.
    Value,
    /// A map with free-form keys (labels, data).
    Map,
    Object(&'static TypeSchema),
    List(&'static TypeSchema),
    /// Accepted and kept in the stored object, but it changes nothing on
    /// one host (scheduling, service-account identity): `apply` says so
    /// in a warning, as kubectl prints an API server's warnings.
    Ignored,
}

impl TypeSchema {
    pub fn field(&self, name: &str) -> Option<&'static FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_names(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.name).collect()
    }
}

const fn value(name: &'static str, note: &'static str) -> FieldSpec {
    FieldSpec { name, shape: Shape::Value, note }
}
const fn map(name: &'static str, note: &'static str) -> FieldSpec {
    FieldSpec { name, shape: Shape::Map, note }
}
const fn object(name: &'static str, t: &'static TypeSchema, note: &'static str) -> FieldSpec {
    FieldSpec { name, shape: Shape::Object(t), note }
}
const fn list(name: &'static str, t: &'static TypeSchema, note: &'static str) -> FieldSpec {
    FieldSpec { name, shape: Shape::List(t), note }
}
const fn ignored(name: &'static str, note: &'static str) -> FieldSpec {
    FieldSpec { name, shape: Shape::Ignored, note }
}

const API_VERSION: FieldSpec = value("apiVersion", "");
const KIND: FieldSpec = value("kind", "");

pub static OBJECT_META: TypeSchema = TypeSchema {
    name: "ObjectMeta",
    fields: &[
        value("name", "required; DNS-1123 subdomain (DNS-1035 label for a Service)"),
        value("namespace", "default `default`; DNS-1123 label"),
        map("labels", "keys and values checked as Kubernetes does"),
        map("annotations", "keys checked as Kubernetes does; 256 KiB in all"),
    ],
};

pub static TEMPLATE_META: TypeSchema = TypeSchema {
    name: "ObjectMeta",
    fields: &[map("labels", "required; must match spec.selector"), map("annotations", "part of the template hash")],
};

pub static DEPLOYMENT: TypeSchema = TypeSchema {
    name: "Deployment",
    fields: &[API_VERSION, KIND, object("metadata", &OBJECT_META, ""), object("spec", &DEPLOYMENT_SPEC, "required")],
};

pub static DEPLOYMENT_SPEC: TypeSchema = TypeSchema {
    name: "DeploymentSpec",
    fields: &[
        value("replicas", "default 1; 0 or more"),
        object("selector", &LABEL_SELECTOR, "required, non-empty; must match the template labels"),
        object("template", &POD_TEMPLATE_SPEC, "required"),
        object("strategy", &DEPLOYMENT_STRATEGY, "default RollingUpdate 25%/25%"),
        value("minReadySeconds", "default 0"),
        value("progressDeadlineSeconds", "default 600; more than minReadySeconds"),
        value("revisionHistoryLimit", "default 10"),
        value("paused", "default false"),
    ],
};

pub static LABEL_SELECTOR: TypeSchema = TypeSchema {
    name: "LabelSelector",
    fields: &[map("matchLabels", ""), list("matchExpressions", &LABEL_SELECTOR_REQUIREMENT, "")],
};

pub static LABEL_SELECTOR_REQUIREMENT: TypeSchema = TypeSchema {
    name: "LabelSelectorRequirement",
    fields: &[
        value("key", "a label key"),
        value("operator", "In, NotIn, Exists, DoesNotExist"),
        value("values", "non-empty for In and NotIn, empty otherwise"),
    ],
};

pub static DEPLOYMENT_STRATEGY: TypeSchema = TypeSchema {
    name: "DeploymentStrategy",
    fields: &[
        value("type", "RollingUpdate (default) or Recreate"),
        object("rollingUpdate", &ROLLING_UPDATE, "only with type RollingUpdate"),
    ],
};

pub static ROLLING_UPDATE: TypeSchema = TypeSchema {
    name: "RollingUpdateDeployment",
    fields: &[
        value("maxSurge", "count or percentage, default 25%"),
        value("maxUnavailable", "count or percentage up to 100%, default 25%; not 0 when maxSurge is 0"),
    ],
};

pub static POD_TEMPLATE_SPEC: TypeSchema = TypeSchema {
    name: "PodTemplateSpec",
    fields: &[object("metadata", &TEMPLATE_META, ""), object("spec", &POD_SPEC, "required")],
};

pub static POD_SPEC: TypeSchema = TypeSchema {
    name: "PodSpec",
    fields: &[
        list("containers", &CONTAINER, "at least one; they share one network namespace"),
        list("initContainers", &CONTAINER, "run in order to completion first; no probes or lifecycle"),
        list("volumes", &VOLUME, ""),
        value("terminationGracePeriodSeconds", "default 30"),
        value("restartPolicy", "Always only (the Deployment rule)"),
        value("hostname", "DNS-1123 label; default the pod name"),
        value(
            "hostUsers",
            "false: a user namespace, root inside an unprivileged host id range (one per pod); default true, the host's ids",
        ),
        ignored("serviceAccountName", "no API server to authenticate to; recorded for network policy"),
        ignored("serviceAccount", "deprecated spelling of serviceAccountName"),
        ignored("automountServiceAccountToken", "no API server token is mounted"),
        ignored("nodeSelector", "one host: every pod runs on it"),
        ignored("nodeName", "one host: every pod runs on it"),
        ignored("affinity", "one host: node and pod (anti-)affinity place nothing"),
        ignored("tolerations", "one host: no taints to tolerate"),
        ignored("topologySpreadConstraints", "one host: nothing to spread over"),
        ignored("priorityClassName", "no scheduler queue or preemption"),
        ignored("priority", "no scheduler queue or preemption"),
        ignored("preemptionPolicy", "no scheduler queue or preemption"),
        ignored("schedulerName", "no scheduler"),
    ],
};

pub static CONTAINER: TypeSchema = TypeSchema {
    name: "Container",
    fields: &[
        value("name", "required; DNS-1123 label, unique in the pod"),
        value("image", "required; `[REGISTRY/]NAME[:TAG][@DIGEST]`"),
        value(
            "imagePullPolicy",
            "Always, IfNotPresent, Never; default Always for :latest or no tag, else IfNotPresent",
        ),
        value("command", ""),
        value("args", ""),
        value("workingDir", "absolute path"),
        list("env", &ENV_VAR, ""),
        list("envFrom", &ENV_FROM_SOURCE, ""),
        list("ports", &CONTAINER_PORT, ""),
        object("resources", &RESOURCES, ""),
        list("volumeMounts", &VOLUME_MOUNT, ""),
        object("startupProbe", &PROBE, "gates the other two probes"),
        object("livenessProbe", &PROBE, "successThreshold must be 1"),
        object("readinessProbe", &PROBE, ""),
        object("lifecycle", &LIFECYCLE, ""),
        object("securityContext", &SECURITY_CONTEXT, ""),
    ],
};

pub static ENV_VAR: TypeSchema = TypeSchema {
    name: "EnvVar",
    fields: &[
        value("name", "letters, digits, `_`, `-`, `.`; not starting with a digit"),
        value("value", "not with valueFrom"),
        object("valueFrom", &ENV_VAR_SOURCE, "exactly one source"),
    ],
};

pub static ENV_VAR_SOURCE: TypeSchema = TypeSchema {
    name: "EnvVarSource",
    fields: &[
        object("configMapKeyRef", &KEY_SELECTOR_CM, ""),
        object("secretKeyRef", &KEY_SELECTOR_SECRET, ""),
        object("fieldRef", &OBJECT_FIELD_SELECTOR, "metadata.name, metadata.namespace, status.podIP"),
    ],
};

pub static KEY_SELECTOR_CM: TypeSchema = TypeSchema {
    name: "ConfigMapKeySelector",
    fields: &[value("name", "required"), value("key", "required"), value("optional", "default false")],
};

pub static KEY_SELECTOR_SECRET: TypeSchema = TypeSchema {
    name: "SecretKeySelector",
    fields: &[value("name", "required"), value("key", "required"), value("optional", "default false")],
};

pub static OBJECT_FIELD_SELECTOR: TypeSchema = TypeSchema {
    name: "ObjectFieldSelector",
    fields: &[value("fieldPath", "metadata.name, metadata.namespace or status.podIP"), value("apiVersion", "v1")],
};

pub static ENV_FROM_SOURCE: TypeSchema = TypeSchema {
    name: "EnvFromSource",
    fields: &[
        object("configMapRef", &CM_ENV_SOURCE, "exactly one of configMapRef, secretRef"),
        object("secretRef", &SECRET_ENV_SOURCE, ""),
        value("prefix", "prepended to every key"),
    ],
};

pub static CM_ENV_SOURCE: TypeSchema =
    TypeSchema { name: "ConfigMapEnvSource", fields: &[value("name", "required"), value("optional", "default false")] };

pub static SECRET_ENV_SOURCE: TypeSchema =
    TypeSchema { name: "SecretEnvSource", fields: &[value("name", "required"), value("optional", "default false")] };

pub static CONTAINER_PORT: TypeSchema = TypeSchema {
    name: "ContainerPort",
    fields: &[
        value("containerPort", "1-65535"),
        value("name", "IANA service name, unique in the container"),
        value("protocol", "TCP (default) or UDP"),
    ],
};

pub static RESOURCES: TypeSchema = TypeSchema {
    name: "ResourceRequirements",
    fields: &[map("limits", "cpu and memory quantities"), map("requests", "cpu and memory; not above the limits")],
};

pub static VOLUME_MOUNT: TypeSchema = TypeSchema {
    name: "VolumeMount",
    fields: &[
        value("name", "a volume of the pod"),
        value("mountPath", "absolute, unique in the container"),
        value("readOnly", "default false"),
        value("subPath", "relative, no `..`"),
    ],
};

pub static PROBE: TypeSchema = TypeSchema {
    name: "Probe",
    fields: &[
        object("exec", &EXEC_ACTION, "exactly one of exec, httpGet, tcpSocket, grpc"),
        object("httpGet", &HTTP_GET_ACTION, ""),
        object("tcpSocket", &TCP_SOCKET_ACTION, ""),
        object("grpc", &GRPC_ACTION, ""),
        value("initialDelaySeconds", "default 0"),
        value("periodSeconds", "default 10, at least 1"),
        value("timeoutSeconds", "default 1, at least 1"),
        value("successThreshold", "default 1, at least 1"),
        value("failureThreshold", "default 3, at least 1"),
    ],
};

pub static EXEC_ACTION: TypeSchema = TypeSchema { name: "ExecAction", fields: &[value("command", "required")] };

pub static HTTP_GET_ACTION: TypeSchema = TypeSchema {
    name: "HTTPGetAction",
    fields: &[
        value("path", "default /"),
        value("port", "a port number (declared or not, as in Kubernetes) or the name of a declared containerPort"),
        value("scheme", "HTTP (default) or HTTPS"),
        list("httpHeaders", &HTTP_HEADER, ""),
    ],
};

pub static HTTP_HEADER: TypeSchema =
    TypeSchema { name: "HTTPHeader", fields: &[value("name", "an HTTP token"), value("value", "")] };

pub static TCP_SOCKET_ACTION: TypeSchema = TypeSchema {
    name: "TCPSocketAction",
    fields: &[value(
        "port",
        "a port number (declared or not, as in Kubernetes) or the name of a declared containerPort",
    )],
};

pub static GRPC_ACTION: TypeSchema = TypeSchema {
    name: "GRPCAction",
    fields: &[
        value("port", "a port number (declared or not, as in Kubernetes)"),
        value("service", "gRPC health service name"),
    ],
};

pub static LIFECYCLE: TypeSchema = TypeSchema {
    name: "Lifecycle",
    fields: &[object("preStop", &LIFECYCLE_HANDLER, "exactly one of exec, httpGet, sleep")],
};

pub static LIFECYCLE_HANDLER: TypeSchema = TypeSchema {
    name: "LifecycleHandler",
    fields: &[
        object("exec", &EXEC_ACTION, ""),
        object("httpGet", &HTTP_GET_ACTION, ""),
        object("sleep", &SLEEP_ACTION, ""),
    ],
};

pub static SLEEP_ACTION: TypeSchema =
    TypeSchema { name: "SleepAction", fields: &[value("seconds", "0 or more, within the grace period")] };

pub static SECURITY_CONTEXT: TypeSchema = TypeSchema {
    name: "SecurityContext",
    fields: &[
        value("runAsUser", "0 or more"),
        value("runAsGroup", "0 or more"),
        value("runAsNonRoot", "refuses runAsUser 0, and (as kubelet) an image whose user is root, empty or a name"),
        value("readOnlyRootFilesystem", ""),
        value("privileged", ""),
        value("allowPrivilegeEscalation", "not false with privileged"),
        object("capabilities", &CAPABILITIES, ""),
    ],
};

pub static CAPABILITIES: TypeSchema = TypeSchema {
    name: "Capabilities",
    fields: &[value("add", "e.g. NET_BIND_SERVICE or CAP_NET_BIND_SERVICE"), value("drop", "e.g. ALL")],
};

pub static VOLUME: TypeSchema = TypeSchema {
    name: "Volume",
    fields: &[
        value("name", "DNS-1123 label, unique in the pod"),
        object("configMap", &CONFIG_MAP_VOLUME, "exactly one of configMap, secret, emptyDir"),
        object("secret", &SECRET_VOLUME, ""),
        object("emptyDir", &EMPTY_DIR, ""),
    ],
};

pub static CONFIG_MAP_VOLUME: TypeSchema = TypeSchema {
    name: "ConfigMapVolumeSource",
    fields: &[
        value("name", "required"),
        list("items", &KEY_TO_PATH, "default every key"),
        value("defaultMode", "0-0777, default 0644"),
        value("optional", "default false"),
    ],
};

pub static SECRET_VOLUME: TypeSchema = TypeSchema {
    name: "SecretVolumeSource",
    fields: &[
        value("secretName", "required"),
        list("items", &KEY_TO_PATH, "default every key"),
        value("defaultMode", "0-0777, default 0644"),
        value("optional", "default false"),
    ],
};

pub static KEY_TO_PATH: TypeSchema = TypeSchema {
    name: "KeyToPath",
    fields: &[value("key", "required"), value("path", "relative, no `..`"), value("mode", "0-0777")],
};

pub static EMPTY_DIR: TypeSchema = TypeSchema {
    name: "EmptyDirVolumeSource",
    fields: &[value("medium", "\"\" (disk) or Memory"), value("sizeLimit", "a quantity of bytes")],
};

pub static SERVICE: TypeSchema = TypeSchema {
    name: "Service",
    fields: &[API_VERSION, KIND, object("metadata", &OBJECT_META, ""), object("spec", &SERVICE_SPEC, "required")],
};

pub static SERVICE_SPEC: TypeSchema = TypeSchema {
    name: "ServiceSpec",
    fields: &[
        value("type", "ClusterIP (default, a VIP) or NodePort (a port published on the host)"),
        map("selector", "required; pods whose labels match"),
        list("ports", &SERVICE_PORT, "at least one unless headless"),
        value("clusterIP", "empty (allocated), an IPv4 address in berth's range, or None (headless)"),
    ],
};

pub static SERVICE_PORT: TypeSchema = TypeSchema {
    name: "ServicePort",
    fields: &[
        value("name", "DNS-1123 label; required when there are several ports"),
        value("port", "1-65535"),
        value("targetPort", "number or container port name, default port"),
        value("protocol", "TCP (default) or UDP"),
        value("nodePort", "NodePort only; default allocated by berth"),
    ],
};

pub static CONFIG_MAP: TypeSchema = TypeSchema {
    name: "ConfigMap",
    fields: &[
        API_VERSION,
        KIND,
        object("metadata", &OBJECT_META, ""),
        map("data", "keys: letters, digits, `-`, `_`, `.`"),
        map("binaryData", "base64; keys not also in data"),
        value("immutable", "default false"),
    ],
};

pub static SECRET: TypeSchema = TypeSchema {
    name: "Secret",
    fields: &[
        API_VERSION,
        KIND,
        object("metadata", &OBJECT_META, ""),
        value("type", "Opaque (default) or kubernetes.io/tls (needs tls.crt and tls.key)"),
        map("data", "base64 values"),
        map("stringData", "plain values, win over data"),
        value("immutable", "default false"),
    ],
};

/// The top-level types, in the order the table lists them.
pub static ROOTS: [&TypeSchema; 6] = [&DEPLOYMENT, &SERVICE, &CONFIG_MAP, &SECRET, &ROLLOUT, &ANALYSIS_TEMPLATE];

/// Rewrites map steps of a serde path (which cannot tell a field from a map
/// key) into [`Segment::Key`] where the schema says the value is a map.
pub fn refine(root: &'static TypeSchema, path: &FieldPath) -> FieldPath {
    let mut out = FieldPath::root();
    let mut current = Some(root);
    let mut in_map = false;
    for segment in path.segments() {
        match segment {
            Segment::Field(name) if in_map => {
                out = out.key(name);
                in_map = false;
                current = None;
            }
            Segment::Field(name) => {
                out = out.field(name);
                let spec = current.and_then(|t| t.field(name));
                current = match spec.map(|s| s.shape) {
                    Some(Shape::Object(t) | Shape::List(t)) => Some(t),
                    _ => None,
                };
                in_map = matches!(spec.map(|s| s.shape), Some(Shape::Map));
            }
            other => out = out.with(other.clone()),
        }
    }
    out
}

/// The supported-field table in Markdown: every type reachable from
/// [`ROOTS`], each once, breadth first.
pub fn markdown_table() -> String {
    let mut out = String::from("| Type | Field | Notes |\n| --- | --- | --- |\n");
    let mut queue: Vec<&'static TypeSchema> = ROOTS.to_vec();
    let mut seen: Vec<*const TypeSchema> = Vec::new();
    let mut i = 0;
    while i < queue.len() {
        let t = queue[i];
        i += 1;
        if seen.contains(&(t as *const _)) {
            continue;
        }
        seen.push(t as *const _);
        if t.fields.is_empty() {
            out.push_str(&format!("| {} | (no fields) | write `{{}}` |\n", t.name));
        }
        for f in t.fields {
            let shape = match f.shape {
                Shape::Object(child) => {
                    queue.push(child);
                    format!(" ({})", child.name)
                }
                Shape::List(child) => {
                    queue.push(child);
                    format!(" (list of {})", child.name)
                }
                Shape::Map => " (map)".to_string(),
                Shape::Value => String::new(),
                Shape::Ignored => " (accepted, no effect on one host: `apply` warns)".to_string(),
            };
            let title = if std::ptr::eq(t, &TEMPLATE_META) { "ObjectMeta (pod template)" } else { t.name };
            out.push_str(&format!("| {title} | `{}`{shape} | {} |\n", f.name, f.note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../SUPPORTED.md");

    #[test]
    fn documented_table_matches_the_allow_list() {
        let table = markdown_table();
        if std::env::var_os("BERTH_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/SUPPORTED.md");
            let doc = format!("{}{}", DOC.split("| Type |").next().unwrap_or(""), table);
            std::fs::write(path, doc).unwrap();
            return;
        }
        assert!(
            DOC.ends_with(&table),
            "SUPPORTED.md is out of date with src/schema.rs; regenerate it with BERTH_BLESS=1 cargo test -p berth-manifest"
        );
    }

    fn unknown_fields_of<T: serde::de::DeserializeOwned>(json: serde_json::Value) -> Vec<String> {
        let mut unknown = Vec::new();
        let decoded: Result<T, _> = serde_ignored::deserialize(json, |p| unknown.push(p.to_string()));
        if let Err(e) = decoded {
            return vec![format!("does not decode: {e}")];
        }
        unknown
    }

    /// Every allow-listed field must be a field of the Kubernetes type, or
    /// berth would accept it and then never see it.
    #[test]
    fn every_allowed_field_is_a_kubernetes_field() {
        use k8s_openapi::api::apps::v1 as apps;
        use k8s_openapi::api::core::v1 as core;
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

        use crate::argo;
        type Check = fn(serde_json::Value) -> Vec<String>;
        /// `apiVersion` and `kind` of top-level types, which must be right to decode.
        type Resource = Option<(&'static str, &'static str)>;
        let table: Vec<(&TypeSchema, Check, Resource)> = vec![
            (&OBJECT_META, unknown_fields_of::<meta::ObjectMeta>, None),
            (&TEMPLATE_META, unknown_fields_of::<meta::ObjectMeta>, None),
            (&DEPLOYMENT, unknown_fields_of::<apps::Deployment>, Some(("apps/v1", "Deployment"))),
            (&DEPLOYMENT_SPEC, unknown_fields_of::<apps::DeploymentSpec>, None),
            (&LABEL_SELECTOR, unknown_fields_of::<meta::LabelSelector>, None),
            (&LABEL_SELECTOR_REQUIREMENT, unknown_fields_of::<meta::LabelSelectorRequirement>, None),
            (&DEPLOYMENT_STRATEGY, unknown_fields_of::<apps::DeploymentStrategy>, None),
            (&ROLLING_UPDATE, unknown_fields_of::<apps::RollingUpdateDeployment>, None),
            (&POD_TEMPLATE_SPEC, unknown_fields_of::<core::PodTemplateSpec>, None),
            (&POD_SPEC, unknown_fields_of::<core::PodSpec>, None),
            (&CONTAINER, unknown_fields_of::<core::Container>, None),
            (&ENV_VAR, unknown_fields_of::<core::EnvVar>, None),
            (&ENV_VAR_SOURCE, unknown_fields_of::<core::EnvVarSource>, None),
            (&KEY_SELECTOR_CM, unknown_fields_of::<core::ConfigMapKeySelector>, None),
            (&KEY_SELECTOR_SECRET, unknown_fields_of::<core::SecretKeySelector>, None),
            (&OBJECT_FIELD_SELECTOR, unknown_fields_of::<core::ObjectFieldSelector>, None),
            (&ENV_FROM_SOURCE, unknown_fields_of::<core::EnvFromSource>, None),
            (&CM_ENV_SOURCE, unknown_fields_of::<core::ConfigMapEnvSource>, None),
            (&SECRET_ENV_SOURCE, unknown_fields_of::<core::SecretEnvSource>, None),
            (&CONTAINER_PORT, unknown_fields_of::<core::ContainerPort>, None),
            (&RESOURCES, unknown_fields_of::<core::ResourceRequirements>, None),
            (&VOLUME_MOUNT, unknown_fields_of::<core::VolumeMount>, None),
            (&PROBE, unknown_fields_of::<core::Probe>, None),
            (&EXEC_ACTION, unknown_fields_of::<core::ExecAction>, None),
            (&HTTP_GET_ACTION, unknown_fields_of::<core::HTTPGetAction>, None),
            (&HTTP_HEADER, unknown_fields_of::<core::HTTPHeader>, None),
            (&TCP_SOCKET_ACTION, unknown_fields_of::<core::TCPSocketAction>, None),
            (&GRPC_ACTION, unknown_fields_of::<core::GRPCAction>, None),
            (&LIFECYCLE, unknown_fields_of::<core::Lifecycle>, None),
            (&LIFECYCLE_HANDLER, unknown_fields_of::<core::LifecycleHandler>, None),
            (&SLEEP_ACTION, unknown_fields_of::<core::SleepAction>, None),
            (&SECURITY_CONTEXT, unknown_fields_of::<core::SecurityContext>, None),
            (&CAPABILITIES, unknown_fields_of::<core::Capabilities>, None),
            (&VOLUME, unknown_fields_of::<core::Volume>, None),
            (&CONFIG_MAP_VOLUME, unknown_fields_of::<core::ConfigMapVolumeSource>, None),
            (&SECRET_VOLUME, unknown_fields_of::<core::SecretVolumeSource>, None),
            (&KEY_TO_PATH, unknown_fields_of::<core::KeyToPath>, None),
            (&EMPTY_DIR, unknown_fields_of::<core::EmptyDirVolumeSource>, None),
            (&SERVICE, unknown_fields_of::<core::Service>, Some(("v1", "Service"))),
            (&SERVICE_SPEC, unknown_fields_of::<core::ServiceSpec>, None),
            (&SERVICE_PORT, unknown_fields_of::<core::ServicePort>, None),
            (&CONFIG_MAP, unknown_fields_of::<core::ConfigMap>, Some(("v1", "ConfigMap"))),
            (&SECRET, unknown_fields_of::<core::Secret>, Some(("v1", "Secret"))),
            (&ROLLOUT, unknown_fields_of::<argo::Rollout>, Some(("argoproj.io/v1alpha1", "Rollout"))),
            (&ROLLOUT_SPEC, unknown_fields_of::<argo::RolloutSpec>, None),
            (&ROLLOUT_STRATEGY, unknown_fields_of::<argo::RolloutStrategy>, None),
            (&CANARY_STRATEGY, unknown_fields_of::<argo::CanaryStrategy>, None),
            (&CANARY_STEP, unknown_fields_of::<argo::CanaryStep>, None),
            (&ROLLOUT_PAUSE, unknown_fields_of::<argo::RolloutPause>, None),
            (&SET_CANARY_SCALE, unknown_fields_of::<argo::SetCanaryScale>, None),
            (&ROLLOUT_ANALYSIS, unknown_fields_of::<argo::RolloutAnalysis>, None),
            (&ROLLOUT_ANALYSIS_BACKGROUND, unknown_fields_of::<argo::BackgroundAnalysis>, None),
            (&ANALYSIS_TEMPLATE_REF, unknown_fields_of::<argo::AnalysisTemplateRef>, None),
            (&ANALYSIS_RUN_ARGUMENT, unknown_fields_of::<argo::AnalysisRunArgument>, None),
            (&BLUE_GREEN_STRATEGY, unknown_fields_of::<argo::BlueGreenStrategy>, None),
            (
                &ANALYSIS_TEMPLATE,
                unknown_fields_of::<argo::AnalysisTemplate>,
                Some(("argoproj.io/v1alpha1", "AnalysisTemplate")),
            ),
            (&ANALYSIS_TEMPLATE_SPEC, unknown_fields_of::<argo::AnalysisTemplateSpec>, None),
            (&ARGUMENT, unknown_fields_of::<argo::Argument>, None),
            (&METRIC, unknown_fields_of::<argo::Metric>, None),
            (&METRIC_PROVIDER, unknown_fields_of::<argo::MetricProvider>, None),
            (&PROMETHEUS_METRIC, unknown_fields_of::<argo::PrometheusMetric>, None),
            (&BERTH_METRIC, unknown_fields_of::<argo::BerthMetric>, None),
            (&BERTH_HTTP_CHECK, unknown_fields_of::<argo::BerthHttpCheck>, None),
            (&BERTH_RESTARTS, unknown_fields_of::<argo::BerthRestarts>, None),
        ];
        for (schema, check, kind) in &table {
            let mut object = serde_json::Map::new();
            for f in schema.fields {
                object.insert(f.name.to_string(), serde_json::Value::Null);
            }
            if let Some((api_version, kind)) = kind {
                object.insert("apiVersion".into(), (*api_version).into());
                object.insert("kind".into(), (*kind).into());
            }
            let unknown = check(serde_json::Value::Object(object));
            assert!(unknown.is_empty(), "{}: {unknown:?}", schema.name);
        }
        // The table covers every type the allow-list reaches.
        let table_md = markdown_table();
        let documented: std::collections::BTreeSet<&str> = table_md
            .lines()
            .skip(2)
            .filter_map(|l| l.split(" | ").next())
            .map(|t| t.trim_start_matches("| "))
            .collect();
        assert_eq!(documented.len(), table.len(), "{documented:?}");
    }

    #[test]
    fn refine_marks_map_keys() {
        let p = FieldPath::of(&["metadata", "labels", "app"]);
        assert_eq!(refine(&DEPLOYMENT, &p).to_string(), "metadata.labels[app]");
        let p = FieldPath::of(&["spec", "template", "spec", "containers"])
            .index(0)
            .field("resources")
            .field("limits")
            .field("cpu");
        assert_eq!(refine(&DEPLOYMENT, &p).to_string(), "spec.template.spec.containers[0].resources.limits[cpu]");
    }
}
