//! The exchange as an Akto record (`{"batchData":[record]}`), and its delivery to the ingestion API.
//!
//! The record is built by the shared `record` crate, so it is the same shape the agent's sinks
//! and `akto-tap ingest` produce and accept (DESIGN.md, "The Akto record").

use std::borrow::Cow;

use record::{headers_json, AktoRecord};
use serde_json::{json, Map, Value};

use crate::body::{text, Captured};
use crate::config::Config;
use crate::events::{emit, Event};
use crate::upstream::{is_timeout, post_json_within, Target};

/// Header added to a record's header map when that side's payload is not whole (same flag as the agent).
pub const TRUNCATED_HEADER: &str = "x-akto-tap-truncated";

/// What the worker knows about one exchange, gathered while proxying it.
#[derive(Debug, Default)]
pub struct Exchange {
    /// Request method.
    pub method: String,
    /// Request-target: path and query.
    pub path: String,
    /// Host of the request URL.
    pub host: String,
    /// Request headers (lowercase names, repeated values already joined by the runtime).
    pub request_headers: Vec<(String, String)>,
    /// Response headers.
    pub response_headers: Vec<(String, String)>,
    /// Response status.
    pub status: u16,
    /// Response status text (the canonical reason phrase when the upstream sent none).
    pub status_text: String,
    /// Request body (capped).
    pub request_body: Captured,
    /// Response body (capped).
    pub response_body: Captured,
    /// Client IP (`cf-connecting-ip`, else the first `x-forwarded-for`, else empty).
    pub ip: String,
    /// Unix seconds when the request arrived.
    pub time: u64,
    /// `HTTP/1.1`, `HTTP/2` or `HTTP/3` (from `request.cf.httpProtocol`).
    pub http_type: String,
}

impl Exchange {
    /// The value of a request header.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The value of a response header.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Guardrails outcome attached to a record (tag `guardrails` and `metadata`).
#[derive(Debug, Clone, Default)]
pub struct ThreatMark {
    /// `blocked` or `flagged`.
    pub outcome: &'static str,
    /// One-line reason.
    pub reason: String,
    /// Findings and verdict details (JSON), sent as the record's `metadata`.
    pub metadata: Value,
}

fn payload(c: &Captured, cap: usize) -> (Cow<'_, str>, bool) {
    let cut = c.bytes.len() > cap;
    let bytes = &c.bytes[..c.bytes.len().min(cap)];
    (text(bytes), cut || c.truncated)
}

/// Canonical reason phrase of a status code (RFC 9110 §15) for the `status` field.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// The record as JSON text (one element of `batchData`).
pub fn record_json(cfg: &Config, ex: &Exchange, threat: Option<&ThreatMark>) -> String {
    let (req_payload, req_cut) = payload(&ex.request_body, cfg.max_body_bytes);
    let (resp_payload, resp_cut) = payload(&ex.response_body, cfg.max_body_bytes);
    if req_cut || resp_cut {
        emit(
            Event::BodyTruncated,
            json!({"path": ex.path, "request": req_cut, "response": resp_cut, "cap": cfg.max_body_bytes}),
        );
    }
    let flag = |cut: bool| cut.then_some((TRUNCATED_HEADER, "true"));
    let request_headers = headers_json(
        ex.request_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(flag(req_cut)),
        Some(&ex.host),
    );
    let response_headers =
        headers_json(ex.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(flag(resp_cut)), None);
    let mut tag = Map::new();
    tag.insert("service".into(), Value::String("cloudflare".into()));
    tag.insert("source".into(), Value::String("akto-tap-worker".into()));
    tag.insert("mode".into(), Value::String(cfg.mode.as_str().into()));
    for (k, v) in &cfg.tags {
        tag.insert(k.clone(), v.clone());
    }
    let marked = threat.filter(|_| cfg.threat.ingest);
    if let Some(t) = marked {
        tag.insert("guardrails".into(), Value::String(t.outcome.into()));
        tag.insert("guardrails_reason".into(), Value::String(t.reason.clone()));
    }
    let status_text = if ex.status_text.is_empty() { reason_phrase(ex.status) } else { ex.status_text.as_str() };
    let status = if status_text.is_empty() { ex.status.to_string() } else { format!("{} {}", ex.status, status_text) };
    let rec = AktoRecord {
        path: Cow::Borrowed(&ex.path),
        request_headers: request_headers.into(),
        response_headers: response_headers.into(),
        method: Cow::Borrowed(&ex.method),
        request_payload: req_payload,
        response_payload: resp_payload,
        ip: Cow::Borrowed(&ex.ip),
        dest_ip: Cow::Borrowed(""),
        time: ex.time.to_string().into(),
        status_code: ex.status.to_string().into(),
        http_type: Cow::Borrowed(if ex.http_type.is_empty() { "HTTP/1.1" } else { &ex.http_type }),
        status: status.into(),
        akto_account_id: Cow::Borrowed(&cfg.account_id),
        akto_vxlan_id: Cow::Borrowed(&cfg.vxlan_id),
        is_pending: Cow::Borrowed("false"),
        source: Cow::Borrowed(record::Source::Mirroring.as_str()),
        direction: Some(Cow::Borrowed(record::Direction::Inbound.as_str())),
        enable_graph: Cow::Borrowed("false"),
        tag: Some(Value::Object(tag).to_string().into()),
        ..AktoRecord::default()
    };
    let mut out = serde_json::to_string(&rec).unwrap_or_default();
    if let Some(t) = marked {
        // Accepted (and not forwarded to Kafka) by Akto's ingestion service and `akto-tap ingest`.
        if out.ends_with('}') {
            out.pop();
            out.push_str(",\"metadata\":");
            out.push_str(&Value::String(t.metadata.to_string()).to_string());
            out.push('}');
        }
    }
    out
}

/// Whether the exchange passes the mirror filters (blocked exchanges always do).
pub fn passes_filters(cfg: &Config, ex: &Exchange, blocked: bool) -> bool {
    if blocked {
        return true;
    }
    cfg.status_mirrored(ex.status)
        && cfg.content_type_mirrored(
            ex.request_header("content-type").unwrap_or(""),
            ex.response_header("content-type").unwrap_or(""),
        )
}

/// The ingestion API.
#[derive(Debug, Clone)]
pub struct Ingest {
    /// Binding or URL.
    pub target: Target,
    /// Name for logs (binding name or URL).
    pub name: String,
}

/// Posts `{"batchData":[record]}`; every failure is logged and counted, never returned.
pub async fn post(cfg: &Config, ingest: &Ingest, record: &str, path: &str) {
    let body = format!("{{\"batchData\":[{record}]}}");
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(k) = &cfg.api_key {
        headers.push(("x-api-key", k));
    }
    if let Some(t) = &cfg.ingest_token {
        headers.push(("authorization", t));
    }
    let sent = post_json_within(
        &ingest.target,
        "https://akto-ingest/api/ingestData",
        &body,
        &headers,
        Some(cfg.ingest_timeout_ms),
    )
    .await;
    match sent {
        Ok(resp) if (200..300).contains(&resp.status()) => {
            crate::events::count(Event::Mirrored);
            // Release the response body.
            if let Some(b) = resp.body() {
                let _ = b.cancel();
            }
        }
        Ok(resp) => {
            let detail = match resp.text() {
                Ok(p) => {
                    wasm_bindgen_futures::JsFuture::from(p).await.ok().and_then(|v| v.as_string()).unwrap_or_default()
                }
                Err(_) => String::new(),
            };
            let detail: String = detail.chars().take(300).collect();
            emit(
                Event::IngestRejected,
                json!({"ingest": ingest.name, "status": resp.status(), "path": path, "detail": detail}),
            );
        }
        Err(e) if is_timeout(&e) => {
            emit(
                Event::IngestTimeout,
                json!({"ingest": ingest.name, "path": path, "timeout_ms": cfg.ingest_timeout_ms}),
            );
        }
        Err(e) => {
            emit(Event::IngestFailed, json!({"ingest": ingest.name, "path": path, "error": format!("{e:?}")}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex() -> Exchange {
        Exchange {
            method: "POST".into(),
            path: "/mcp?s=1".into(),
            host: "mcp.example.com".into(),
            request_headers: vec![("content-type".into(), "application/json".into())],
            response_headers: vec![("content-type".into(), "text/event-stream".into())],
            status: 200,
            request_body: Captured {
                bytes: br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec(),
                ..Captured::default()
            },
            response_body: Captured { bytes: vec![b'x'; 100], ..Captured::default() },
            ip: "203.0.113.9".into(),
            time: 1_700_000_000,
            ..Exchange::default()
        }
    }

    #[test]
    fn record_is_all_strings_with_flags() {
        let cfg = Config { max_body_bytes: 10, ..Config::default() };
        let v: Value = serde_json::from_str(&record_json(&cfg, &ex(), None)).unwrap_or(Value::Null);
        let obj = v.as_object().cloned().unwrap_or_default();
        assert!(obj.values().all(Value::is_string));
        assert_eq!(obj["path"], "/mcp?s=1");
        assert_eq!(obj["status"], "200 OK");
        assert_eq!(obj["source"], "MIRRORING");
        assert_eq!(obj["responsePayload"], "xxxxxxxxxx");
        let rh: Value = serde_json::from_str(obj["responseHeaders"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        assert_eq!(rh[TRUNCATED_HEADER], "true");
        let qh: Value = serde_json::from_str(obj["requestHeaders"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        assert_eq!(qh["host"], "mcp.example.com");
        assert!(!obj.contains_key("metadata"));
    }

    #[test]
    fn threat_mark_goes_to_tag_and_metadata() {
        let cfg = Config::default();
        let t = ThreatMark { outcome: "blocked", reason: "r".into(), metadata: json!({"a": 1}) };
        let v: Value = serde_json::from_str(&record_json(&cfg, &ex(), Some(&t))).unwrap_or(Value::Null);
        let tag: Value = serde_json::from_str(v["tag"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        assert_eq!(tag["guardrails"], "blocked");
        assert_eq!(v["metadata"], "{\"a\":1}");
    }

    #[test]
    fn filters() {
        let cfg = Config::default();
        let mut e = ex();
        assert!(passes_filters(&cfg, &e, false));
        e.status = 500;
        assert!(!passes_filters(&cfg, &e, false));
        assert!(passes_filters(&cfg, &e, true));
    }
}
