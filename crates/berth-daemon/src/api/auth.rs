//! `/v1/auth/login`, `/v1/auth/logout`.

use axum::extract::State;
use axum::http::StatusCode;
use berth_core::api::{ErrorBody, LoginRequest, LogoutRequest};

use super::error::JsonBody;
use super::{ApiError, State as S};

/// Checks credentials against the registry and saves them (mode 0600).
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 204, description = "credentials accepted and saved"), (status = 403, body = ErrorBody), (status = 502, body = ErrorBody)))]
pub async fn login(State(d): State<S>, JsonBody(req): JsonBody<LoginRequest>) -> Result<StatusCode, ApiError> {
    d.images.login(&req.registry, &req.username, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets saved credentials.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = LogoutRequest,
    responses((status = 204, description = "credentials removed"), (status = 404, body = ErrorBody)))]
pub async fn logout(State(d): State<S>, JsonBody(req): JsonBody<LogoutRequest>) -> Result<StatusCode, ApiError> {
    if d.images.logout(&req.registry)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no saved credentials for {}", req.registry)))
    }
}
