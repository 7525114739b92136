//! The HTTP server (axum): routes, authentication, the response of each outcome.
//!
//! Responses (JSON):
//! * all records accepted → `200 {"success":true,"accepted":N,"acceptedIndices":[…],"rejected":[]}`
//! * some rejected → `422` with the same shape, `success:false`, and `rejected:[{"index":i,"reason":…}]`
//!   (the accepted ones were produced)
//! * malformed JSON / wrong envelope → `400 {"success":false,"error":…}`; too many records → `413`
//! * missing or wrong `X-API-KEY` → `401`; body over the cap → `413` (axum's body limit)
//! * the sink's queue stayed full → `503`, listing the indices that were not handed over
//!
//! Accepted means handed to the Kafka sink, which delivers it or keeps it in its spool.

use super::config::IngestConfig;
use super::validate::{self, BatchError};
use crate::kafka::sink::SinkStats;
use crate::kafka::{Outgoing, RecordSender};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Request counters of the API.
#[derive(Debug, Default)]
pub struct ApiStats {
    requests: AtomicU64,
    unauthorized: AtomicU64,
    bad_requests: AtomicU64,
    records_accepted: AtomicU64,
    records_rejected: AtomicU64,
    records_unavailable: AtomicU64,
}

impl ApiStats {
    /// Adds the API's counters to a scrape.
    pub fn add_metrics(&self, m: &mut crate::metrics::MetricSet) {
        m.counter("ingest_requests_total", "Requests to POST /api/ingestData.", &[], self.requests.load(Relaxed));
        let help = "Requests refused before their records were read, by reason.";
        m.counter(
            "ingest_refused_requests_total",
            help,
            &[("reason", "unauthorized")],
            self.unauthorized.load(Relaxed),
        );
        m.counter("ingest_refused_requests_total", help, &[("reason", "bad_request")], self.bad_requests.load(Relaxed));
        let help = "Records received, by outcome (accepted = handed to the Kafka sink).";
        m.counter("ingest_records_total", help, &[("outcome", "accepted")], self.records_accepted.load(Relaxed));
        m.counter("ingest_records_total", help, &[("outcome", "rejected")], self.records_rejected.load(Relaxed));
        m.counter("ingest_records_total", help, &[("outcome", "unavailable")], self.records_unavailable.load(Relaxed));
    }
}

#[derive(Debug, Clone)]
struct AppState {
    sender: RecordSender,
    sink: Arc<SinkStats>,
    api: Arc<ApiStats>,
    cfg: Arc<IngestConfig>,
}

#[derive(Debug, Serialize)]
struct Rejected {
    index: usize,
    reason: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    success: bool,
    accepted: usize,
    accepted_indices: Vec<usize>,
    rejected: Vec<Rejected>,
}

/// The one place errors become responses.
#[derive(Debug)]
enum ApiError {
    Unauthorized,
    Batch(BatchError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg) = match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "missing or invalid X-API-KEY".to_string()),
            ApiError::Batch(e @ BatchError::TooMany { .. }) => (StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
            ApiError::Batch(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        };
        (status, Json(serde_json::json!({"success": false, "error": msg}))).into_response()
    }
}

/// Constant-time comparison (length leaks, content does not).
fn key_matches(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn ingest(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    st.api.requests.fetch_add(1, Relaxed);
    if let Some(key) = &st.cfg.api_key {
        let given = headers.get("x-api-key").map(|v| v.as_bytes()).unwrap_or_default();
        if !key_matches(given, key.as_bytes()) {
            st.api.unauthorized.fetch_add(1, Relaxed);
            return Err(ApiError::Unauthorized);
        }
    }
    let records = validate::parse_batch(&body, &st.cfg.limits).map_err(|e| {
        st.api.bad_requests.fetch_add(1, Relaxed);
        ApiError::Batch(e)
    })?;
    let mut accepted = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    let mut unavailable = false;
    for (index, record) in records.into_iter().enumerate() {
        if unavailable {
            rejected.push(Rejected { index, reason: "not accepted: the Kafka sink is not taking records".into() });
            continue;
        }
        match validate::validate_record(record, &st.cfg.limits) {
            Ok(v) => {
                match st.sender.send_timeout(Outgoing { key: v.key, value: v.value }, st.cfg.handoff_timeout).await {
                    Ok(()) => accepted.push(index),
                    Err(_) => {
                        unavailable = true;
                        rejected.push(Rejected {
                            index,
                            reason: "not accepted: the Kafka sink is not taking records".into(),
                        });
                    }
                }
            }
            Err(reason) => rejected.push(Rejected { index, reason }),
        }
    }
    st.api.records_accepted.fetch_add(accepted.len() as u64, Relaxed);
    let status = if unavailable {
        st.api.records_unavailable.fetch_add(rejected.len() as u64, Relaxed);
        StatusCode::SERVICE_UNAVAILABLE
    } else if rejected.is_empty() {
        StatusCode::OK
    } else {
        st.api.records_rejected.fetch_add(rejected.len() as u64, Relaxed);
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let body =
        BatchResponse { success: rejected.is_empty(), accepted: accepted.len(), accepted_indices: accepted, rejected };
    Ok((status, Json(body)).into_response())
}

async fn health(State(st): State<AppState>) -> Response {
    let k = st.sink.snapshot();
    let a = &st.api;
    Json(serde_json::json!({
        "status": "ok",
        "api": {
            "requests": a.requests.load(Relaxed),
            "unauthorized": a.unauthorized.load(Relaxed),
            "badRequests": a.bad_requests.load(Relaxed),
            "recordsAccepted": a.records_accepted.load(Relaxed),
            "recordsRejected": a.records_rejected.load(Relaxed),
            "recordsUnavailable": a.records_unavailable.load(Relaxed),
        },
        "kafka": k,
    }))
    .into_response()
}

/// The router.
pub fn router(cfg: Arc<IngestConfig>, sender: RecordSender, sink: Arc<SinkStats>, api: Arc<ApiStats>) -> Router {
    let limit = cfg.max_body_bytes;
    let state = AppState { sender, sink, api, cfg };
    Router::new()
        .route("/api/ingestData", post(ingest))
        .route("/healthCheck", get(health))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_comparison() {
        assert!(super::key_matches(b"secret", b"secret"));
        assert!(!super::key_matches(b"secreT", b"secret"));
        assert!(!super::key_matches(b"", b"secret"));
    }
}
