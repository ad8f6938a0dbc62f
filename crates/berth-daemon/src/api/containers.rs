//! `/v1/containers/...`.

use axum::extract::{Path, State};

use super::error::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::api::{ContainerCreateRequest, ContainerInspect, ContainerSummary, ErrorBody, LogEntry, WaitResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::JsonBody;
use super::{ndjson, receiver, ApiError, State as S};
use crate::containers::LogQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Include containers that are not running.
    #[serde(default)]
    all: bool,
}

/// Containers, newest first.
#[utoipa::path(get, path = "/v1/containers", tag = "containers", params(ListQuery), responses((status = 200, body = [ContainerSummary])))]
pub async fn list(State(d): State<S>, Query(q): Query<ListQuery>) -> Result<Json<Vec<ContainerSummary>>, ApiError> {
    Ok(Json(d.containers.list(q.all)?))
}

/// Creates a container (not started).
#[utoipa::path(post, path = "/v1/containers", tag = "containers", request_body = ContainerCreateRequest,
    responses((status = 201, body = ContainerInspect), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(State(d): State<S>, JsonBody(req): JsonBody<ContainerCreateRequest>) -> Result<Response, ApiError> {
    let c = d.containers.create(req).await?;
    Ok((StatusCode::CREATED, Json(d.containers.inspect(&c.id)?)).into_response())
}

/// One container by ID, name or unique ID prefix.
#[utoipa::path(get, path = "/v1/containers/{id}", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    responses((status = 200, body = ContainerInspect), (status = 404, body = ErrorBody)))]
pub async fn inspect(State(d): State<S>, Path(id): Path<String>) -> Result<Json<ContainerInspect>, ApiError> {
    Ok(Json(d.containers.inspect(&id)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Kill a running container first.
    #[serde(default)]
    force: bool,
}

/// Removes a container, its root filesystem, bundle and log.
#[utoipa::path(delete, path = "/v1/containers/{id}", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix"), RemoveQuery),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(d): State<S>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Result<StatusCode, ApiError> {
    d.containers.remove(&id, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a container; answers once its process runs.
#[utoipa::path(post, path = "/v1/containers/{id}/start", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    responses((status = 200, body = ContainerInspect), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 500, body = ErrorBody)))]
pub async fn start(State(d): State<S>, Path(id): Path<String>) -> Result<Json<ContainerInspect>, ApiError> {
    let c = d.containers.start(&id).await?;
    Ok(Json(d.containers.inspect(&c.id)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StopQuery {
    /// Seconds to wait after the stop signal before SIGKILL.
    #[serde(default)]
    timeout: Option<u32>,
}

/// Stop signal, grace period, then SIGKILL.
#[utoipa::path(post, path = "/v1/containers/{id}/stop", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix"), StopQuery),
    responses((status = 200, body = ContainerInspect), (status = 404, body = ErrorBody)))]
pub async fn stop(
    State(d): State<S>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> Result<Json<ContainerInspect>, ApiError> {
    let c = d.containers.stop(&id, q.timeout).await?;
    Ok(Json(d.containers.inspect(&c.id)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct KillQuery {
    /// Signal name or number (default SIGKILL).
    #[serde(default)]
    signal: Option<String>,
}

/// Sends a signal to the container's process.
#[utoipa::path(post, path = "/v1/containers/{id}/kill", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix"), KillQuery),
    responses((status = 204, description = "signal sent"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn kill(
    State(d): State<S>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> Result<StatusCode, ApiError> {
    d.containers.kill(&id, q.signal.as_deref().unwrap_or("SIGKILL")).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Waits until the container stops; answers with its exit code.
#[utoipa::path(post, path = "/v1/containers/{id}/wait", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    responses((status = 200, body = WaitResponse), (status = 404, body = ErrorBody)))]
pub async fn wait(State(d): State<S>, Path(id): Path<String>) -> Result<Json<WaitResponse>, ApiError> {
    Ok(Json(d.containers.wait(&id).await?))
}

/// The container's output as JSON lines of `LogEntry`; with `follow`, the
/// stream stays open until the container stops.
#[utoipa::path(get, path = "/v1/containers/{id}/logs", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix"), LogQuery),
    responses((status = 200, description = "newline-delimited LogEntry stream", body = LogEntry, content_type = "application/x-ndjson"), (status = 404, body = ErrorBody)))]
pub async fn logs(State(d): State<S>, Path(id): Path<String>, Query(q): Query<LogQuery>) -> Result<Response, ApiError> {
    let (c, path) = d.containers.log_file(&id)?;
    let (lines, offset) = crate::containers::logs::snapshot(&path, &q).map_err(ApiError::BadRequest)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<LogEntry>(256);
    let containers = d.containers.clone();
    tokio::spawn(async move {
        for l in lines {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if !q.follow {
            return;
        }
        let mut follower = crate::containers::logs::Follower::new(&path, offset);
        loop {
            let changed = containers.state_changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let running = containers.is_running(&c.id);
            for l in follower.poll() {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            if !running {
                return;
            }
            // New output is noticed within 10 ms; the end of the container
            // at once.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(10), changed).await;
        }
    });
    Ok(ndjson(receiver(rx)))
}

/// Runs a command on a pseudo-terminal (`exec -it`). The request must ask
/// for `Connection: Upgrade` and `Upgrade: berth-exec`; the answer is `101
/// Switching Protocols`, after which both sides exchange frames (see
/// `berth_core::frames`): stdin and resizes in, output and the exit code out.
#[utoipa::path(post, path = "/v1/containers/{id}/exec/tty", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    request_body = berth_core::api::ExecTtyRequest,
    responses((status = 101, description = "switched to the berth-exec frame protocol"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn exec_tty(
    State(d): State<S>,
    Path(id): Path<String>,
    upgrade: super::tty::Upgrade,
    JsonBody(req): JsonBody<berth_core::api::ExecTtyRequest>,
) -> Result<Response, ApiError> {
    let session = d.containers.exec_tty(&id, req).await?;
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.0.await else {
            // The client went away before the switch; the process goes too.
            return;
        };
        let (container, cmd) = (session.container.clone(), session.cmd.clone());
        let code = super::tty::pump(hyper_util::rt::TokioIo::new(upgraded), session).await;
        containers.exec_ended(&container, &cmd, code);
    });
    Ok(super::tty::switching_protocols())
}

/// Renames a container (names are unique); DNS answers follow at once.
#[utoipa::path(post, path = "/v1/containers/{id}/rename", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    request_body = berth_core::api::ContainerRenameRequest,
    responses((status = 200, body = ContainerInspect), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn rename(
    State(d): State<S>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<berth_core::api::ContainerRenameRequest>,
) -> Result<Json<ContainerInspect>, ApiError> {
    let c = d.containers.rename(&id, &req.name).await?;
    Ok(Json(d.containers.inspect(&c.id)?))
}

/// Resource use from the container's cgroup (cumulative counters).
#[utoipa::path(get, path = "/v1/containers/{id}/stats", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    responses((status = 200, body = berth_core::api::ContainerStats), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn stats(
    State(d): State<S>,
    Path(id): Path<String>,
) -> Result<Json<berth_core::api::ContainerStats>, ApiError> {
    Ok(Json(d.containers.stats(&id)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TopQuery {
    /// `ps` options (default `-ef`).
    #[serde(default)]
    ps_args: Option<String>,
}

/// The container's processes.
#[utoipa::path(get, path = "/v1/containers/{id}/top", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix"), TopQuery),
    responses((status = 200, body = berth_core::api::ContainerTop), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn top(
    State(d): State<S>,
    Path(id): Path<String>,
    Query(q): Query<TopQuery>,
) -> Result<Json<berth_core::api::ContainerTop>, ApiError> {
    let containers = d.containers.clone();
    let args = q.ps_args.unwrap_or_else(|| "-ef".into());
    let top = tokio::task::spawn_blocking(move || containers.top(&id, &args))
        .await
        .map_err(ApiError::internal("listing the container's processes"))??;
    Ok(Json(top))
}

/// Runs a command in a running container. Answers with JSON lines of
/// `ExecEvent`: output as it comes, then the exit code.
#[utoipa::path(post, path = "/v1/containers/{id}/exec", tag = "containers", params(("id" = String, Path, description = "ID, name or ID prefix")),
    request_body = berth_core::api::ExecRequest,
    responses((status = 200, description = "newline-delimited ExecEvent stream", body = berth_core::api::ExecEvent, content_type = "application/x-ndjson"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn exec(
    State(d): State<S>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<berth_core::api::ExecRequest>,
) -> Result<Response, ApiError> {
    use berth_core::api::ExecEvent;
    // Refuse at once (with a status) what cannot run at all.
    d.containers.inspect(&id)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<ExecEvent>(64);
    let containers = d.containers.clone();
    tokio::spawn(async move {
        let last = match containers.exec(&id, req, tx.clone()).await {
            Ok(code) => ExecEvent::Exit { exit_code: code },
            Err(e) => ExecEvent::Error { error: e.to_string() },
        };
        let _ = tx.send(last).await;
    });
    Ok(ndjson(receiver(rx)))
}
