//! One place where every error becomes an HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_core::api::ErrorBody;
use berth_image::ImageError;

#[derive(Debug)]
pub enum ApiError {
    Image(ImageError),
    Container(crate::containers::ContainerError),
    Network(crate::networks::NetworkError),
    Declared(crate::declared::DeclaredError),
    /// The store could not be read or written.
    Store(berth_store::StoreError),
    BadRequest(String),
    NotFound(String),
    /// Something that should not fail did (a worker task panicked): what
    /// the daemon was doing, and the cause.
    Internal {
        what: &'static str,
        source: crate::networks::BoxError,
    },
    NotFoundRoute,
    /// The route exists, but not for this method.
    MethodNotAllowed(axum::http::Method),
}

impl ApiError {
    pub fn not_found_route() -> Self {
        Self::NotFoundRoute
    }

    /// For `map_err`: an unexpected failure while doing `what`.
    pub fn internal<E: Into<crate::networks::BoxError>>(what: &'static str) -> impl FnOnce(E) -> Self {
        move |e| Self::Internal { what, source: e.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Image(e) => image_status(e),
            Self::Container(e) => container_status(e),
            Self::Network(e) => network_status(e),
            Self::Declared(e) => declared_status(e),
            Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFoundRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    pub fn body(&self) -> ErrorBody {
        match self {
            Self::Image(e) => ErrorBody { error: e.to_string(), kind: e.kind().to_string() },
            Self::Container(e) => ErrorBody { error: e.to_string(), kind: container_kind(e).to_string() },
            Self::Network(e) => ErrorBody { error: e.to_string(), kind: network_kind(e).to_string() },
            Self::Declared(e) => ErrorBody { error: e.to_string(), kind: declared_kind(e).to_string() },
            Self::Store(e) => ErrorBody { error: e.to_string(), kind: "internal".into() },
            Self::BadRequest(m) => ErrorBody { error: m.clone(), kind: "invalid".into() },
            Self::NotFound(m) => ErrorBody { error: m.clone(), kind: "not_found".into() },
            Self::Internal { what, source } => {
                ErrorBody { error: format!("{what} failed unexpectedly: {source}"), kind: "internal".into() }
            }
            Self::NotFoundRoute => {
                ErrorBody { error: "no such API route; see /v1/openapi.json".into(), kind: "not_found".into() }
            }
            Self::MethodNotAllowed(m) => ErrorBody {
                error: format!("{m} is not allowed on this route; see /v1/openapi.json for its methods"),
                kind: "invalid".into(),
            },
        }
    }
}

/// Exhaustive on purpose: a new error variant must decide its status here.
fn image_status(e: &ImageError) -> StatusCode {
    match e {
        ImageError::Reference(_)
        | ImageError::MediaType(_)
        | ImageError::InvalidManifest { .. }
        | ImageError::Import { .. }
        | ImageError::Invalid(_)
        | ImageError::Config(_) => StatusCode::BAD_REQUEST,
        ImageError::NotFound { .. } | ImageError::ManifestUnknown { .. } | ImageError::NoMatchingPlatform { .. } => {
            StatusCode::NOT_FOUND
        }
        ImageError::Ambiguous { .. } | ImageError::Exists { .. } | ImageError::InUse { .. } => StatusCode::CONFLICT,
        ImageError::AuthRequired { .. } | ImageError::Unauthorized { .. } | ImageError::InsecureNotAllowed { .. } => {
            StatusCode::FORBIDDEN
        }
        ImageError::Unreachable { .. } | ImageError::Registry { .. } => StatusCode::BAD_GATEWAY,
        ImageError::DigestMismatch { .. } | ImageError::SizeMismatch { .. } | ImageError::Unpack { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ImageError::NoSpace { .. } => StatusCode::INSUFFICIENT_STORAGE,
        ImageError::BlobMissing { .. } | ImageError::Io { .. } | ImageError::Store(_) | ImageError::Snapshot(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn container_status(e: &crate::containers::ContainerError) -> StatusCode {
    use crate::containers::ContainerError as E;
    match e {
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Ambiguous(_) | E::Conflict(_) => StatusCode::CONFLICT,
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::Image(i) => image_status(i),
        E::Network(n) => network_status(n),
        E::StartFailed { .. } | E::Store(_) | E::Runtime(_) | E::Io { .. } | E::PartlyRemoved { .. } => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

fn container_kind(e: &crate::containers::ContainerError) -> &'static str {
    use crate::containers::ContainerError as E;
    match e {
        E::NotFound(_) => "not_found",
        E::Ambiguous(_) | E::Conflict(_) => "conflict",
        E::Invalid(_) => "invalid",
        E::Image(i) => i.kind(),
        E::Network(n) => network_kind(n),
        E::StartFailed { .. } => "start_failed",
        E::Store(_) | E::Runtime(_) | E::Io { .. } | E::PartlyRemoved { .. } => "internal",
    }
}

fn network_status(e: &crate::networks::NetworkError) -> StatusCode {
    use crate::networks::NetworkError as E;
    match e {
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::Conflict(_) => StatusCode::CONFLICT,
        E::NotFound(_) | E::VipNotFound(_) => StatusCode::NOT_FOUND,
        E::Kernel { .. } | E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn network_kind(e: &crate::networks::NetworkError) -> &'static str {
    use crate::networks::NetworkError as E;
    match e {
        E::Invalid(_) => "invalid",
        E::Conflict(_) => "conflict",
        E::NotFound(_) | E::VipNotFound(_) => "not_found",
        E::Kernel { .. } | E::Store(_) => "internal",
    }
}

fn declared_status(e: &crate::declared::DeclaredError) -> StatusCode {
    use crate::declared::DeclaredError as E;
    match e {
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::NotFound(_) => StatusCode::NOT_FOUND,
        E::Conflict(_) => StatusCode::CONFLICT,
        E::Network(n) => network_status(n),
        E::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn declared_kind(e: &crate::declared::DeclaredError) -> &'static str {
    use crate::declared::DeclaredError as E;
    match e {
        E::Invalid(_) => "invalid",
        E::NotFound(_) => "not_found",
        E::Conflict(_) => "conflict",
        E::Network(n) => network_kind(n),
        E::Store(_) => "internal",
    }
}

impl From<crate::declared::DeclaredError> for ApiError {
    fn from(e: crate::declared::DeclaredError) -> Self {
        Self::Declared(e)
    }
}

impl From<crate::networks::NetworkError> for ApiError {
    fn from(e: crate::networks::NetworkError) -> Self {
        Self::Network(e)
    }
}

impl From<crate::containers::ContainerError> for ApiError {
    fn from(e: crate::containers::ContainerError) -> Self {
        Self::Container(e)
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<ImageError> for ApiError {
    fn from(e: ImageError) -> Self {
        Self::Image(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self.body().error, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}

/// Request bodies: parse errors become one-line 400s naming the field.
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            axum::body::Bytes::from_request(req, state).await.map_err(|e| ApiError::BadRequest(e.body_text()))?;
        decode(&bytes).map(JsonBody)
    }
}

/// A JSON body, or a one-line 400 that names the field at fault
/// (`invalid request body: limits.memory: invalid type: ...`).
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::BadRequest(format!("invalid request body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid request body: {path}: {inner}"))
        }
    })?;
    // Trailing bytes after the value.
    de.end().map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}")))?;
    Ok(value)
}

/// Query strings: a bad one is a one-line 400 in the API's error form
/// (axum's own answer would be plain text).
pub struct Query<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}
