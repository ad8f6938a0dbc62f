//! `/v1/version`, `/v1/system/df`.

use axum::extract::State;
use axum::Json;
use berth_core::api::{DiskUsage, ErrorBody, VersionInfo};

use super::{ApiError, State as S};

/// Daemon version and paths.
#[utoipa::path(get, path = "/v1/version", tag = "system", responses((status = 200, body = VersionInfo)))]
pub async fn version(State(d): State<S>) -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        api_version: berth_core::api::API_VERSION.to_string(),
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        root: d.root.display().to_string(),
        run_root: d.run_root.display().to_string(),
    })
}

/// Disk usage of images, with what sharing saves.
#[utoipa::path(get, path = "/v1/system/df", tag = "system", responses((status = 200, body = DiskUsage), (status = 500, body = ErrorBody)))]
pub async fn disk_usage(State(d): State<S>) -> Result<Json<DiskUsage>, ApiError> {
    let images = d.images.clone();
    let usage = tokio::task::spawn_blocking(move || images.disk_usage())
        .await
        .map_err(ApiError::internal("measuring disk usage"))??;
    Ok(Json(usage))
}

/// Prometheus text exposition: per-container CPU, memory, pids, block I/O
/// and restarts, and the daemon's own figures.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")))]
pub async fn metrics(State(d): State<S>) -> Result<impl axum::response::IntoResponse, ApiError> {
    let containers = d.containers.clone();
    let images = d.images.clone();
    let text = tokio::task::spawn_blocking(move || crate::metrics::render(&containers, &images))
        .await
        .map_err(ApiError::internal("rendering metrics"))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}
