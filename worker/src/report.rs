//! Threat reports to Akto's threat backend (reference/akto.md §4.3):
//! `POST {THREAT_BACKEND_URL}/api/threat_detection/record_malicious_event` with
//! `{"maliciousEvent":{…}}`, carrying the original (pre-block, pre-redaction) payloads.

use futures_util::future::{select, Either};
use serde_json::{json, Value};

use crate::config::{with_default_path, Config};
use crate::events::{emit, Event};
use crate::mirror::Exchange;
use crate::upstream::{post_json, Target};

/// The `maliciousEvent` body.
pub fn malicious_event(cfg: &Config, ex: &Exchange, filter_id: &str, blocked: bool, summary: &Value) -> String {
    let payload = json!({
        "method": ex.method,
        "requestPayload": String::from_utf8_lossy(&ex.request_body.bytes),
        "responsePayload": String::from_utf8_lossy(&ex.response_body.bytes),
        "ip": ex.ip,
        "destIp": "",
        "source": "OTHER",
        "type": if ex.http_type.is_empty() { "HTTP/1.1" } else { ex.http_type.as_str() },
        "akto_vxlan_id": cfg.vxlan_id,
        "path": ex.path,
        "requestHeaders": record::headers_json(ex.request_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), Some(&ex.host)),
        "responseHeaders": record::headers_json(ex.response_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), None),
        "time": ex.time.to_string(),
        "akto_account_id": cfg.account_id,
        "statusCode": ex.status.to_string(),
        "status": ex.status.to_string(),
    });
    json!({"maliciousEvent": {
        "actor": ex.ip,
        "filterId": filter_id,
        "detectedAt": ex.time,
        "latestApiIp": ex.ip,
        "latestApiEndpoint": ex.path,
        "latestApiMethod": ex.method,
        "latestApiCollectionId": cfg.vxlan_id.parse::<i64>().unwrap_or(0),
        "latestApiPayload": payload.to_string(),
        "eventType": "EVENT_TYPE_SINGLE",
        "category": filter_id,
        "subCategory": filter_id,
        "severity": if blocked { "CRITICAL" } else { "HIGH" },
        "type": "Rule-Based",
        "metadata": {"blocked": blocked, "source": "akto-tap-worker", "mode": cfg.mode.as_str(), "verdict": summary},
    }})
    .to_string()
}

/// Sends one report; failures are logged and counted.
pub async fn send(cfg: &Config, body: &str, path: &str) {
    let Some(base) = &cfg.threat_backend_url else { return };
    let url = with_default_path(base, "/api/threat_detection/record_malicious_event");
    let auth = cfg.threat_backend_token.as_ref().map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
    let target = Target::Url(url.clone());
    let send = Box::pin(post_json(&target, &url, body, &headers));
    let timeout = worker::Delay::from(std::time::Duration::from_millis(cfg.ingest_timeout_ms));
    let outcome = select(send, timeout).await;
    match outcome {
        Either::Left((Ok(r), _)) if (200..300).contains(&r.status()) => {
            emit(Event::ThreatReported, json!({"path": path}))
        }
        Either::Left((Ok(r), _)) => emit(Event::ThreatReportFailed, json!({"path": path, "status": r.status()})),
        Either::Left((Err(e), _)) => emit(Event::ThreatReportFailed, json!({"path": path, "error": format!("{e:?}")})),
        Either::Right(((), _)) => emit(
            Event::ThreatReportFailed,
            json!({"path": path, "error": "timeout", "timeout_ms": cfg.ingest_timeout_ms}),
        ),
    }
}
