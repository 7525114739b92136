//! The threat report: one per scanned body with findings.
//!
//! Two shapes of the same facts:
//! * the **guardrail event** (Kafka value, `--guard-log`): the verdict as the `guardrails` crate
//!   states it (scanner ids, scores, reasons, byte spans, MCP locations), the original payload
//!   (capped), endpoint, addresses, times and the workload fields;
//! * Akto's **`maliciousEvent`** (reference/akto.md §4.3), POSTed to the threat backend. Its
//!   fields are those Akto's own guardrails worker sends; the verdict and the workload travel
//!   inside `latestApiPayload` (an opaque JSON string to the backend: the Akto record of the
//!   exchange plus `guardrailsVerdict`), so no unknown field reaches the backend's schema.

use crate::output::{to_record_with, RecordOptions};
use guardrails::{Action, Direction, Finding, Verdict, VerdictAction};
use reassembly::HttpExchange;
use serde_json::{json, Value};

/// What the scanner hands to the reporters.
#[derive(Debug, Clone)]
pub struct ThreatEvent {
    /// The guardrail event (Kafka value).
    pub event: Value,
    /// Akto's `{"maliciousEvent": {...}}` body.
    pub malicious: Value,
    /// Category: the scanner of the deciding finding.
    pub category: &'static str,
    /// Kafka key: the client IP.
    pub key: Vec<u8>,
}

/// The finding that decides the report's category: strongest action, then highest score.
fn deciding(findings: &[Finding]) -> Option<&Finding> {
    findings.iter().max_by(|a, b| a.action.cmp(&b.action).then(a.score.total_cmp(&b.score)))
}

fn severity(v: &Verdict) -> &'static str {
    match v.action {
        VerdictAction::Block => "CRITICAL",
        VerdictAction::Redact => "HIGH",
        VerdictAction::Allow if v.findings.iter().any(|f| f.action == Action::Report) => "MEDIUM",
        VerdictAction::Allow => "LOW",
    }
}

/// Cuts `s` to at most `cap` bytes at a character boundary; `true` when cut.
fn capped(s: &str, cap: usize) -> (&str, bool) {
    if s.len() <= cap {
        return (s, false);
    }
    let mut end = cap;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

fn verdict_json(v: &Verdict) -> Value {
    json!({
        "action": v.action,
        "findings": v.findings,
        "limits": v.limits,
        "format": v.format,
        "methods": v.methods,
    })
}

/// Inputs of one report.
#[derive(Debug)]
pub struct Scanned<'a> {
    /// The exchange.
    pub ex: &'a HttpExchange,
    /// Which body.
    pub direction: Direction,
    /// That body as scanned (lossy UTF-8 of the captured bytes).
    pub body: &'a str,
    /// The verdict (with at least one finding).
    pub verdict: &'a Verdict,
    /// The JSON-RPC method of the request (for responses: of the request answered).
    pub method: Option<&'a str>,
    /// The pinned-server key when the body was a `tools/list` result.
    pub server_key: &'a str,
    /// Detection time, unix seconds.
    pub detected_at: u64,
}

/// Builds both shapes. `record` supplies the account, daemonset and payload cap.
pub fn build(s: &Scanned<'_>, record: &RecordOptions) -> ThreatEvent {
    let ex = s.ex;
    let top = deciding(&s.verdict.findings);
    let category = top.map_or("unknown", |f| f.scanner.as_str());
    let sub = top.map_or("", |f| f.kind.as_str());
    let (payload, cut) = capped(s.body, record.max_payload_bytes);
    let direction = match s.direction {
        Direction::Request => "request",
        Direction::Response => "response",
    };
    let seen = match (s.direction, &ex.response) {
        (Direction::Response, Some(r)) => r.ts,
        _ => ex.request.ts,
    };
    let host = ex.request_header("host").unwrap_or_default();
    let path = ex.request.target.split('?').next().unwrap_or_default();
    let tool = s.verdict.findings.iter().find_map(|f| f.location.as_ref().and_then(|l| l.tool.clone()));
    // Off the capture path: the scanner thread looks the workload up itself.
    let w = record.workload.lookup(ex.conn.client, ex.conn.server);
    let pod = w.as_ref().and_then(|w| w.pod.as_deref());
    let workload = json!({
        "process_id": w.as_ref().and_then(|w| w.pid),
        "process_name": w.as_ref().and_then(|w| w.process_name.as_deref()),
        "pod_namespace": pod.map(|p| p.namespace.as_str()),
        "pod_name": pod.map(|p| p.name.as_str()),
        "pod_labels": pod.map(|p| &p.labels),
        "node": pod.and_then(|p| p.node.as_deref()),
        "daemonset_id": record.daemonset_id,
    });
    let event = json!({
        "event": "guardrails_threat",
        "category": category,
        "subCategory": sub,
        "severity": severity(s.verdict),
        "detectedAt": s.detected_at,
        "time": seen.secs(),
        "timeMicros": seen.0,
        "direction": direction,
        "endpoint": {
            "method": ex.request.method,
            "path": ex.request.target,
            "host": host,
            "server": s.server_key,
            "mcpMethod": s.method,
            "tool": tool,
        },
        "client": ex.conn.client.to_string(),
        "server": ex.conn.server.to_string(),
        "akto_account_id": record.account_id,
        "akto_vxlan_id": ex.conn.vni.to_string(),
        "verdict": verdict_json(s.verdict),
        "payload": payload,
        "payloadTruncated": cut,
        "payloadBytes": s.body.len(),
        "workload": workload,
    });
    let mut api = serde_json::to_value(to_record_with(ex, record, w.as_ref())).unwrap_or_else(|_| json!({}));
    if let Value::Object(o) = &mut api {
        o.insert("guardrailsVerdict".into(), verdict_json(s.verdict));
        o.insert("guardrailsDirection".into(), direction.into());
    }
    let actor = ex.conn.client.ip().to_string();
    let malicious = json!({
        "maliciousEvent": {
            "actor": actor,
            // Akto's id for MCP guardrail policies; the scanner is the category.
            "filterId": "MCPGuardrails",
            "detectedAt": s.detected_at.to_string(),
            "latestApiIp": actor,
            "latestApiEndpoint": path,
            "latestApiMethod": ex.request.method,
            // What Akto's guardrails worker sends here (reference/akto.md §4.3).
            "latestApiCollectionId": s.detected_at,
            "latestApiPayload": api.to_string(),
            "eventType": "EVENT_TYPE_SINGLE",
            "category": category,
            "subCategory": sub,
            "severity": severity(s.verdict),
            "type": "Rule-Based",
            "metadata": {"countryCode": ""},
        }
    });
    ThreatEvent { event, malicious, category, key: actor.into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_respects_characters() {
        assert_eq!(capped("héllo", 2), ("h", true));
        assert_eq!(capped("héllo", 3), ("hé", true));
        assert_eq!(capped("abc", 3), ("abc", false));
    }
}
