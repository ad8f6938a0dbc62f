//! `/v1/networks/...` and `/v1/vips/...`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::api::{
    ContainerInspect, ErrorBody, NetworkConnectRequest, NetworkCreateRequest, NetworkInspect, VipBackendsRequest,
    VipCreateRequest, VipInspect,
};

use super::error::JsonBody;
use super::{ApiError, State as S};

/// Networks, by name.
#[utoipa::path(get, path = "/v1/networks", tag = "networks", responses((status = 200, body = [NetworkInspect])))]
pub async fn list(State(d): State<S>) -> Result<Json<Vec<NetworkInspect>>, ApiError> {
    Ok(Json(d.networks.list()?))
}

/// Creates a bridge network; its subnet comes from the pool unless given.
#[utoipa::path(post, path = "/v1/networks", tag = "networks", request_body = NetworkCreateRequest,
    responses((status = 201, body = NetworkInspect), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(State(d): State<S>, JsonBody(req): JsonBody<NetworkCreateRequest>) -> Result<Response, ApiError> {
    let n = d.networks.create(req).await?;
    Ok((StatusCode::CREATED, Json(d.networks.inspect(&n.name)?)).into_response())
}

/// One network with its containers.
#[utoipa::path(get, path = "/v1/networks/{name}", tag = "networks", params(("name" = String, Path, description = "network name")),
    responses((status = 200, body = NetworkInspect), (status = 404, body = ErrorBody)))]
pub async fn inspect(State(d): State<S>, Path(name): Path<String>) -> Result<Json<NetworkInspect>, ApiError> {
    Ok(Json(d.networks.inspect(&name)?))
}

/// Removes a network no container uses.
#[utoipa::path(delete, path = "/v1/networks/{name}", tag = "networks", params(("name" = String, Path, description = "network name")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(State(d): State<S>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    d.networks.remove(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// VIPs, by name.
#[utoipa::path(get, path = "/v1/vips", tag = "networks", responses((status = 200, body = [VipInspect])))]
pub async fn list_vips(State(d): State<S>) -> Result<Json<Vec<VipInspect>>, ApiError> {
    Ok(Json(d.networks.list_vips()?))
}

/// Creates a VIP with no backends (connections are refused until some are set).
#[utoipa::path(post, path = "/v1/vips", tag = "networks", request_body = VipCreateRequest,
    responses((status = 201, body = VipInspect), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_vip(State(d): State<S>, JsonBody(req): JsonBody<VipCreateRequest>) -> Result<Response, ApiError> {
    let v = d.networks.create_vip(req).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// A VIP with its backends' weights and connection counts (from conntrack).
#[utoipa::path(get, path = "/v1/vips/{name}", tag = "networks", params(("name" = String, Path, description = "VIP name")),
    responses((status = 200, body = VipInspect), (status = 404, body = ErrorBody)))]
pub async fn show_vip(State(d): State<S>, Path(name): Path<String>) -> Result<Json<VipInspect>, ApiError> {
    Ok(Json(d.networks.show_vip(&name).await?))
}

/// Removes a VIP.
#[utoipa::path(delete, path = "/v1/vips/{name}", tag = "networks", params(("name" = String, Path, description = "VIP name")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody)))]
pub async fn remove_vip(State(d): State<S>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    d.networks.remove_vip(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the VIP's weighted backends in one atomic rule change.
#[utoipa::path(put, path = "/v1/vips/{name}/backends", tag = "networks", params(("name" = String, Path, description = "VIP name")),
    request_body = VipBackendsRequest,
    responses((status = 200, body = VipInspect), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_backends(
    State(d): State<S>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<VipBackendsRequest>,
) -> Result<Json<VipInspect>, ApiError> {
    Ok(Json(d.networks.set_vip_backends(&name, req).await?))
}

/// Connects a running container to the network (one more interface).
#[utoipa::path(post, path = "/v1/networks/{name}/connect", tag = "networks", params(("name" = String, Path, description = "network name")),
    request_body = NetworkConnectRequest,
    responses((status = 200, body = ContainerInspect), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn connect(
    State(d): State<S>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<NetworkConnectRequest>,
) -> Result<Json<ContainerInspect>, ApiError> {
    let c = d.containers.connect(&req.container, &name, &req.aliases).await?;
    Ok(Json(d.containers.inspect(&c.id)?))
}

/// Takes a running container off the network.
#[utoipa::path(post, path = "/v1/networks/{name}/disconnect", tag = "networks", params(("name" = String, Path, description = "network name")),
    request_body = NetworkConnectRequest,
    responses((status = 200, body = ContainerInspect), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn disconnect(
    State(d): State<S>,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<NetworkConnectRequest>,
) -> Result<Json<ContainerInspect>, ApiError> {
    let c = d.containers.disconnect(&req.container, &name).await?;
    Ok(Json(d.containers.inspect(&c.id)?))
}
