//! `/v1/events` and `/v1/audit`.

use axum::extract::State;

use super::error::Query;
use axum::response::Response;
use axum::Json;
use berth_core::api::{AuditRecord, ErrorBody, Event};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ndjson, receiver, ApiError, State as S};
use crate::events::EventFilter;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay recorded events from this RFC 3339 time.
    #[serde(default)]
    since: Option<String>,
    /// Stop at this RFC 3339 time instead of streaming on.
    #[serde(default)]
    until: Option<String>,
    /// Comma-separated KEY=VALUE: type, event, container, image.
    #[serde(default)]
    filter: Option<String>,
}

fn check_time(flag: &str, t: &Option<String>) -> Result<(), ApiError> {
    match t {
        Some(s) if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
            Err(ApiError::BadRequest(format!("{flag} {s:?} is not an RFC 3339 time like 2026-01-02T15:04:05Z")))
        }
        _ => Ok(()),
    }
}

/// Lifecycle events as JSON lines: recorded ones since `since`, then live
/// ones until `until` (or until the client goes).
#[utoipa::path(get, path = "/v1/events", tag = "system", params(EventsQuery),
    responses((status = 200, description = "newline-delimited Event stream", body = Event, content_type = "application/x-ndjson"), (status = 400, body = ErrorBody)))]
pub async fn events(State(d): State<S>, Query(q): Query<EventsQuery>) -> Result<Response, ApiError> {
    check_time("since", &q.since)?;
    check_time("until", &q.until)?;
    let filter = EventFilter::parse(q.filter.as_deref().unwrap_or("")).map_err(ApiError::BadRequest)?;
    // Subscribe before reading history so nothing falls between the two.
    let mut live = d.events.subscribe();
    let history = if q.since.is_some() { d.events.history(q.since.as_deref())? } else { Vec::new() };
    let until = q.until.clone();
    let events = std::sync::Arc::clone(&d.events);
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    tokio::spawn(async move {
        let past = |e: &Event| until.as_deref().is_some_and(|u| e.time.as_str() > u);
        let mut last_seq = 0;
        for e in history {
            if past(&e) {
                return;
            }
            last_seq = e.seq;
            if filter.matches(&e) && tx.send(e).await.is_err() {
                return;
            }
        }
        loop {
            let next = match &until {
                Some(u) => {
                    let u = chrono::DateTime::parse_from_rfc3339(u).map(|t| t.with_timezone(&chrono::Utc)).ok();
                    let wait = u.and_then(|u| (u - events.clock_now()).to_std().ok()).unwrap_or_default();
                    match tokio::time::timeout(wait, live.recv()).await {
                        Ok(r) => r,
                        Err(_) => return,
                    }
                }
                None => live.recv().await,
            };
            match next {
                Ok(e) if e.seq > last_seq || e.seq == 0 => {
                    if past(&e) {
                        return;
                    }
                    if filter.matches(&e) && tx.send(e).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    Ok(ndjson(receiver(rx)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only calls at or after this RFC 3339 time.
    #[serde(default)]
    since: Option<String>,
    /// The most entries to answer (default 1000, at most 100000).
    #[serde(default)]
    limit: Option<usize>,
}

/// The most audit entries one answer carries.
const AUDIT_LIMIT_MAX: usize = 100_000;

/// The audit log, newest first: every mutating API call and every read of
/// a stream or a Secret, who made it, a redacted summary of what was asked,
/// and how it ended.
#[utoipa::path(get, path = "/v1/audit", tag = "system", params(AuditQuery), responses((status = 200, body = [AuditRecord]), (status = 400, body = ErrorBody)))]
pub async fn audit(State(d): State<S>, Query(q): Query<AuditQuery>) -> Result<Json<Vec<AuditRecord>>, ApiError> {
    check_time("since", &q.since)?;
    let limit = match q.limit {
        None => 1000,
        Some(n @ 1..=AUDIT_LIMIT_MAX) => n,
        Some(n) => {
            return Err(ApiError::BadRequest(format!("limit {n} must be between 1 and {AUDIT_LIMIT_MAX}")));
        }
    };
    let events = std::sync::Arc::clone(&d.events);
    let since = q.since.clone();
    let list = tokio::task::spawn_blocking(move || events.audit_history(since.as_deref(), limit))
        .await
        .map_err(ApiError::internal("reading the audit log"))??;
    Ok(Json(list))
}
