//! `/v1/apply`, `/v1/delete` and `/v1/objects/...`: declared state in its
//! Kubernetes form.

use axum::extract::{Path, State};

use super::error::Query;
use axum::Json;
use berth_core::api::{
    ApplyRequest, ApplyResponse, DeleteRequest, ErrorBody, ManifestFile, ScaleRequest, MAX_MANIFEST_BYTES,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::JsonBody;
use super::{ApiError, State as S};

/// Checks every file, then creates or updates each object. Idempotent.
#[utoipa::path(post, path = "/v1/apply", tag = "declared", request_body = ApplyRequest,
    responses((status = 200, body = ApplyResponse), (status = 400, body = ErrorBody)))]
pub async fn apply(
    State(d): State<S>,
    note: Option<axum::Extension<super::audit::AuditNote>>,
    ManifestBody(req): ManifestBody<ApplyRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let dry_run = req.dry_run;
    let done = d.declared.apply(req).await?;
    if let Some(note) = note {
        note.set(super::audit::objects_summary("apply", dry_run, &done.changes));
    }
    Ok(Json(done))
}

/// Deletes the objects the files name and everything they own.
#[utoipa::path(post, path = "/v1/delete", tag = "declared", request_body = DeleteRequest,
    responses((status = 200, body = ApplyResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(d): State<S>,
    note: Option<axum::Extension<super::audit::AuditNote>>,
    ManifestBody(req): ManifestBody<DeleteRequest>,
) -> Result<Json<ApplyResponse>, ApiError> {
    let done = d.declared.delete(req).await?;
    if let Some(note) = note {
        note.set(super::audit::objects_summary("delete", false, &done.changes));
    }
    Ok(Json(done))
}

/// A request carrying manifest files: its body read up to a bound
/// (`MAX_MANIFEST_BYTES` of text, twice that of JSON for escaping), then
/// decoded on the blocking pool, so neither a large nor a slow-to-decode
/// body holds an async worker.
pub struct ManifestBody<T>(pub T);

/// The files of a manifest request.
pub trait CarriesManifests {
    fn files(&self) -> &[ManifestFile];
}

impl CarriesManifests for ApplyRequest {
    fn files(&self) -> &[ManifestFile] {
        &self.files
    }
}

impl CarriesManifests for DeleteRequest {
    fn files(&self) -> &[ManifestFile] {
        &self.files
    }
}

fn too_large() -> ApiError {
    ApiError::BadRequest(format!(
        "the manifests come to more than {} MiB; berth reads at most that much per apply or delete: split them over several",
        MAX_MANIFEST_BYTES >> 20
    ))
}

impl<S2, T> axum::extract::FromRequest<S2> for ManifestBody<T>
where
    T: serde::de::DeserializeOwned + CarriesManifests + Send + 'static,
    S2: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _: &S2) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::to_bytes(req.into_body(), 2 * MAX_MANIFEST_BYTES).await.map_err(|e| {
            // A body past the bound and one that broke off read alike to
            // axum; tell them apart by the error's source.
            if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) {
                too_large()
            } else {
                ApiError::BadRequest(format!("reading the request body: {e}"))
            }
        })?;
        let req = tokio::task::spawn_blocking(move || super::error::decode::<T>(&bytes))
            .await
            .map_err(ApiError::internal("decoding the request"))??;
        if req.files().iter().map(|f| f.text.len()).sum::<usize>() > MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        Ok(ManifestBody(req))
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Namespace (default `default`).
    namespace: Option<String>,
    /// Every namespace.
    #[serde(default)]
    all_namespaces: bool,
    /// kubectl `-l` syntax.
    selector: Option<String>,
    /// Secrets: include the values (base64).
    #[serde(default)]
    show_secrets: bool,
    /// Events: only those about `Kind/name`.
    involved: Option<String>,
}

/// Objects of one resource type as a Kubernetes `List`.
#[utoipa::path(get, path = "/v1/objects/{resource}", tag = "declared",
    params(("resource" = String, Path, description = "pods, deployments, services, endpoints, configmaps, secrets or events"), ListParams),
    responses((status = 200, description = "a v1 List", body = Object), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(d): State<S>,
    Path(resource): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let q = crate::declared::ListQuery {
        namespace: p.namespace,
        all_namespaces: p.all_namespaces,
        selector: p.selector,
        show_secrets: p.show_secrets,
        involved: p.involved,
    };
    Ok(Json(d.declared.list(&resource, &q)?))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    #[serde(default)]
    show_secrets: bool,
}

/// One object in its Kubernetes form.
#[utoipa::path(get, path = "/v1/objects/{resource}/{namespace}/{name}", tag = "declared",
    params(("resource" = String, Path, description = "resource type"), ("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name"), GetParams),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(d): State<S>,
    Path((resource, namespace, name)): Path<(String, String, String)>,
    Query(p): Query<GetParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(d.declared.get(&resource, &namespace, &name, p.show_secrets)?))
}

/// Deletes one object (a pod of a Deployment is replaced).
#[utoipa::path(delete, path = "/v1/objects/{resource}/{namespace}/{name}", tag = "declared",
    params(("resource" = String, Path, description = "resource type"), ("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = ApplyResponse), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(d): State<S>,
    Path((resource, namespace, name)): Path<(String, String, String)>,
) -> Result<Json<ApplyResponse>, ApiError> {
    Ok(Json(d.declared.delete_named(&resource, &namespace, &name).await?))
}

/// Sets a Deployment's replica count.
#[utoipa::path(post, path = "/v1/objects/deployments/{namespace}/{name}/scale", tag = "declared", request_body = ScaleRequest,
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn scale(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(req): JsonBody<ScaleRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(d.declared.scale("Deployment", &namespace, &name, req.replicas).await?))
}

/// A Deployment's revisions, oldest first.
#[utoipa::path(get, path = "/v1/objects/deployments/{namespace}/{name}/revisions", tag = "declared",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = berth_core::api::RevisionList), (status = 404, body = ErrorBody)))]
pub async fn revisions(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<berth_core::api::RevisionList>, ApiError> {
    Ok(Json(d.declared.revisions("Deployment", &namespace, &name)?))
}

/// Pauses, resumes, restarts or undoes a Deployment's rollout.
#[utoipa::path(post, path = "/v1/objects/deployments/{namespace}/{name}/rollout", tag = "declared", request_body = berth_core::api::RolloutRequest,
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollout(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(req): JsonBody<berth_core::api::RolloutRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(d.declared.rollout(&namespace, &name, req).await?))
}

/// An Argo Rollout's revisions, oldest first.
#[utoipa::path(get, path = "/v1/objects/rollouts/{namespace}/{name}/revisions", tag = "declared",
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = berth_core::api::RevisionList), (status = 404, body = ErrorBody)))]
pub async fn rollout_revisions(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
) -> Result<Json<berth_core::api::RevisionList>, ApiError> {
    Ok(Json(d.declared.revisions("Rollout", &namespace, &name)?))
}

/// Pauses, resumes, promotes (`full`: past every remaining step), aborts,
/// restarts or undoes an Argo Rollout. A blue-green promote has switched the
/// active Service when this returns, unless a pre-promotion analysis is
/// still running: the switch then follows its success (`full` skips it).
#[utoipa::path(post, path = "/v1/objects/rollouts/{namespace}/{name}/rollout", tag = "declared", request_body = berth_core::api::RolloutRequest,
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rollout_action(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(req): JsonBody<berth_core::api::RolloutRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(d.declared.rollout_argo(&namespace, &name, req).await?))
}

/// Sets an Argo Rollout's replica count.
#[utoipa::path(post, path = "/v1/objects/rollouts/{namespace}/{name}/scale", tag = "declared", request_body = ScaleRequest,
    params(("namespace" = String, Path, description = "namespace"), ("name" = String, Path, description = "name")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn rollout_scale(
    State(d): State<S>,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(req): JsonBody<ScaleRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(d.declared.scale("Rollout", &namespace, &name, req.replicas).await?))
}
