//! `/v1/images/...`.

use axum::extract::{Path, State};

use super::error::Query;
use axum::response::Response;
use axum::Json;
use berth_core::api::{
    ErrorBody, ExportRequest, ExportResponse, ImageInspect, ImageSummary, ImportRequest, ImportResponse, ProgressEvent,
    PruneResponse, PullRequest, PushRequest, RemoveImageResponse, TagRequest,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::JsonBody;
use super::{ndjson_stream, ApiError, State as S};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, berth_image::ImageError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal("an image store task"))?.map_err(ApiError::from)
}

/// Stored images, newest first.
#[utoipa::path(get, path = "/v1/images", tag = "images", responses((status = 200, body = [ImageSummary])))]
pub async fn list(State(d): State<S>) -> Result<Json<Vec<ImageSummary>>, ApiError> {
    let images = d.images.clone();
    Ok(Json(blocking(move || images.list()).await?))
}

/// One image by tag, digest, ID or unique ID prefix (URL-encode `/`).
#[utoipa::path(get, path = "/v1/images/{name}", tag = "images", params(("name" = String, Path, description = "tag, name@digest, ID or ID prefix")),
    responses((status = 200, body = ImageInspect), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn inspect(State(d): State<S>, Path(name): Path<String>) -> Result<Json<ImageInspect>, ApiError> {
    let images = d.images.clone();
    Ok(Json(blocking(move || images.inspect(&name)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Remove even if containers use the image.
    #[serde(default)]
    force: bool,
}

/// Untags, or removes the image and the blobs nothing else needs.
#[utoipa::path(delete, path = "/v1/images/{name}", tag = "images", params(("name" = String, Path, description = "tag, name@digest, ID or ID prefix"), RemoveQuery),
    responses((status = 200, body = RemoveImageResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(d): State<S>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<Json<RemoveImageResponse>, ApiError> {
    let images = d.images.clone();
    let shown = name.clone();
    let removed = blocking(move || images.remove(&name, q.force)).await?;
    for id in &removed.deleted {
        d.events.emit("image", "delete", id, &shown, &[]);
    }
    for t in &removed.untagged {
        d.events.emit("image", "untag", t, t, &[]);
    }
    Ok(Json(removed))
}

/// Pulls an image. Answers with JSON lines of `ProgressEvent`, ending in
/// exactly one `done` or `error` event.
#[utoipa::path(post, path = "/v1/images/pull", tag = "images", request_body = PullRequest,
    responses((status = 200, description = "newline-delimited ProgressEvent stream", body = ProgressEvent, content_type = "application/x-ndjson"), (status = 400, body = ErrorBody)))]
pub async fn pull(State(d): State<S>, JsonBody(req): JsonBody<PullRequest>) -> Result<Response, ApiError> {
    // Reject a malformed reference before starting a stream.
    berth_core::ImageRef::parse(&req.reference).map_err(berth_image::ImageError::from)?;
    let images = d.images.clone();
    let events = d.events.clone();
    Ok(ndjson_stream(move |progress| {
        Box::pin(async move {
            match images.pull(&req.reference, req.platform.as_deref(), &progress).await {
                Ok(image) => {
                    events.emit("image", "pull", &image.id, &req.reference, &[("digest", image.digest.clone())]);
                    ProgressEvent::Done { image }
                }
                Err(e) => {
                    tracing::warn!(reference = %req.reference, error = %e, "pull failed");
                    ProgressEvent::Error { error: e.to_string(), kind: e.kind().to_string() }
                }
            }
        })
    }))
}

/// Pushes a stored image to the registry its name points at. Answers with
/// JSON lines of `ProgressEvent`.
#[utoipa::path(post, path = "/v1/images/push", tag = "images", request_body = PushRequest,
    responses((status = 200, description = "newline-delimited ProgressEvent stream", body = ProgressEvent, content_type = "application/x-ndjson"), (status = 404, body = ErrorBody)))]
pub async fn push(State(d): State<S>, JsonBody(req): JsonBody<PushRequest>) -> Result<Response, ApiError> {
    let images = d.images.clone();
    let name = req.reference.clone();
    blocking({
        let images = images.clone();
        move || images.resolve(&name).map(|_| ())
    })
    .await?;
    Ok(ndjson_stream(move |progress| {
        Box::pin(async move {
            match images.push(&req.reference, &progress).await {
                Ok(image) => ProgressEvent::Done { image },
                Err(e) => ProgressEvent::Error { error: e.to_string(), kind: e.kind().to_string() },
            }
        })
    }))
}

/// Imports an OCI layout, OCI archive, docker-save tar or root filesystem
/// from a path on the daemon's host.
#[utoipa::path(post, path = "/v1/images/import", tag = "images", request_body = ImportRequest,
    responses((status = 200, body = ImportResponse), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(d): State<S>,
    JsonBody(req): JsonBody<ImportRequest>,
) -> Result<Json<ImportResponse>, ApiError> {
    let r = d.images.import(req).await?;
    for i in &r.images {
        let name = i.repo_tags.first().cloned().unwrap_or_default();
        d.events.emit("image", "import", &i.id, &name, &[("format", r.format.clone())]);
    }
    Ok(Json(r))
}

/// Writes an image as an OCI archive to a path on the daemon's host.
#[utoipa::path(post, path = "/v1/images/export", tag = "images", request_body = ExportRequest,
    responses((status = 200, body = ExportResponse), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn export(
    State(d): State<S>,
    JsonBody(req): JsonBody<ExportRequest>,
) -> Result<Json<ExportResponse>, ApiError> {
    Ok(Json(d.images.export(req.reference, req.path).await?))
}

/// Gives an image another name.
#[utoipa::path(post, path = "/v1/images/tag", tag = "images", request_body = TagRequest,
    responses((status = 200, body = ImageSummary), (status = 404, body = ErrorBody)))]
pub async fn tag(State(d): State<S>, JsonBody(req): JsonBody<TagRequest>) -> Result<Json<ImageSummary>, ApiError> {
    let images = d.images.clone();
    Ok(Json(blocking(move || images.tag(&req.source, &req.target)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PruneQuery {
    /// Remove every unused image, not only untagged ones.
    #[serde(default)]
    all: bool,
}

/// Removes untagged (or, with `all`, unused) images and unreferenced blobs and layers.
#[utoipa::path(post, path = "/v1/images/prune", tag = "images", params(PruneQuery), responses((status = 200, body = PruneResponse)))]
pub async fn prune(State(d): State<S>, Query(q): Query<PruneQuery>) -> Result<Json<PruneResponse>, ApiError> {
    let images = d.images.clone();
    Ok(Json(blocking(move || images.prune(q.all)).await?))
}
