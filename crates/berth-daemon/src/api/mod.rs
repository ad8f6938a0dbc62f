//! The REST API: routes, the OpenAPI document and error mapping.

mod audit;
mod auth;
mod containers;
mod declared;
mod error;
mod events;
mod images;
mod networks;
mod system;
mod tty;

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use berth_core::api::ProgressEvent;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Daemon;
pub use error::ApiError;

pub type State = Arc<Daemon>;

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth API", description = "Berth's daemon API, served on a unix socket. Errors are `ErrorBody` with an HTTP status that matches their kind."),
    tags((name = "images", description = "Image store"), (name = "system", description = "Daemon and host"), (name = "auth", description = "Registry credentials"), (name = "containers", description = "Containers"), (name = "networks", description = "Networks and service VIPs"), (name = "declared", description = "Declared services: Kubernetes manifests"))
)]
struct ApiDoc;

/// The API router and its OpenAPI document, built from the same route list
/// so the document cannot drift from what is served.
pub fn router(daemon: State) -> (axum::Router, utoipa::openapi::OpenApi) {
    let daemon_for_audit = Arc::clone(&daemon);
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(system::version))
        .routes(routes!(system::disk_usage))
        .routes(routes!(system::metrics))
        .routes(routes!(images::list))
        .routes(routes!(images::inspect, images::remove))
        .routes(routes!(images::pull))
        .routes(routes!(images::push))
        .routes(routes!(images::import))
        .routes(routes!(images::export))
        .routes(routes!(images::tag))
        .routes(routes!(images::prune))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(containers::list, containers::create))
        .routes(routes!(containers::inspect, containers::remove))
        .routes(routes!(containers::start))
        .routes(routes!(containers::stop))
        .routes(routes!(containers::kill))
        .routes(routes!(containers::wait))
        .routes(routes!(containers::logs))
        .routes(routes!(containers::stats))
        .routes(routes!(containers::top))
        .routes(routes!(containers::exec))
        .routes(routes!(containers::exec_tty))
        .routes(routes!(containers::rename))
        .routes(routes!(networks::list, networks::create))
        .routes(routes!(networks::inspect, networks::remove))
        .routes(routes!(networks::connect))
        .routes(routes!(networks::disconnect))
        .routes(routes!(networks::list_vips, networks::create_vip))
        .routes(routes!(networks::show_vip, networks::remove_vip))
        .routes(routes!(networks::set_backends))
        .routes(routes!(declared::apply))
        .routes(routes!(declared::delete))
        .routes(routes!(declared::list))
        .routes(routes!(declared::get, declared::remove))
        .routes(routes!(declared::scale))
        .routes(routes!(declared::revisions))
        .routes(routes!(declared::rollout))
        .routes(routes!(declared::rollout_revisions))
        .routes(routes!(declared::rollout_action))
        .routes(routes!(declared::rollout_scale))
        .routes(routes!(events::events))
        .routes(routes!(events::audit))
        .with_state(daemon)
        .split_for_parts();
    let json = serde_json::to_vec_pretty(&doc).expect("OpenAPI document serialises");
    let router = router
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .fallback(|| async { ApiError::not_found_route() })
        .method_not_allowed_fallback(|method: axum::http::Method| async move { ApiError::MethodNotAllowed(method) })
        .layer(axum::middleware::from_fn_with_state(daemon_for_audit, audit::middleware));
    (router, doc)
}

/// The `/metrics` handler, for the optional TCP listener.
pub use system::metrics as metrics_handler;

/// The caller of a request, from the unix socket's peer credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::UnixListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Peer { uid: Some(c.uid()), pid: c.pid() },
            Err(_) => Peer::default(),
        }
    }
}

/// Streams progress events as JSON lines. The operation runs in its own
/// task, so it completes even if the client disconnects.
pub(crate) fn ndjson_stream<F>(work: F) -> Response
where
    F: FnOnce(berth_image::Progress) -> futures::future::BoxFuture<'static, ProgressEvent> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<ProgressEvent>();
    let progress = berth_image::Progress::new(tx.clone());
    tokio::spawn(async move {
        let last = work(progress).await;
        let _ = tx.send(last);
    });
    ndjson(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) }))
}

/// Answers with one JSON line per item, as the items come.
pub(crate) fn ndjson<T, S>(items: S) -> Response
where
    T: serde::Serialize,
    S: futures::Stream<Item = T> + Send + 'static,
{
    use futures::StreamExt;
    let lines = items.map(|item| {
        let mut line = serde_json::to_vec(&item).expect("API values serialise");
        line.push(b'\n');
        Ok::<_, Infallible>(bytes::Bytes::from(line))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(lines)).into_response()
}

/// A bounded channel's receiving end as a stream.
pub(crate) fn receiver<T: Send + 'static>(rx: tokio::sync::mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) })
}

#[cfg(test)]
mod tests;
