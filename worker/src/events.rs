//! Telemetry as typed events: each one is counted (per isolate) and logged as one JSON line.
//!
//! Workers have no metrics endpoint of their own; the count in every line lets `wrangler tail`
//! (or Workers Logs) show how often a cap, a timeout or a fail-open happened in this isolate.

use std::cell::RefCell;

use serde_json::{json, Value};

/// Every event the worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// A setting does not parse (every request answers 500).
    ConfigInvalid,
    /// The `MCP` binding (or `MCP_ORIGIN_URL`) is missing (every request answers 502).
    McpBindingMissing,
    /// The MCP server could not be reached (answered 502).
    UpstreamFailed,
    /// No ingestion binding or URL: exchanges are not mirrored.
    IngestNotConfigured,
    /// The ingestion API answered non-2xx.
    IngestRejected,
    /// The ingestion API did not answer within `INGEST_TIMEOUT_MS`.
    IngestTimeout,
    /// The ingestion request failed (network, binding error).
    IngestFailed,
    /// An exchange was mirrored (2xx from the ingestion API).
    Mirrored,
    /// An exchange was not mirrored because of the content-type or status filter.
    MirrorFiltered,
    /// A body was longer than `MIRROR_MAX_BODY_BYTES`; the record holds the prefix.
    BodyTruncated,
    /// A streaming body did not end within `CAPTURE_MAX_MS`; the record holds what arrived.
    CaptureTimeout,
    /// A body was too large (or of unknown length) to scan before forwarding: passed unscanned.
    ScanSkippedTooLarge,
    /// The in-process scan hit a guardrails cap (work budget, input size, …): the rest passed unscanned.
    ScanLimit,
    /// The guardrails policy could not be built: scanning is off (fail-open).
    PolicyInvalid,
    /// A threat was found (async: reported; blocked: reported and refused).
    ThreatDetected,
    /// A request or response was blocked.
    Blocked,
    /// A request or response was redacted (blocked mode, `GUARDRAILS_REDACT=true`).
    Redacted,
    /// The external scanner exceeded `EXECUTOR_TIMEOUT_MS`: the traffic passed (fail-open).
    ExecutorTimeout,
    /// The external scanner failed or answered garbage: the traffic passed (fail-open).
    ExecutorFailed,
    /// A threat report could not be delivered.
    ThreatReportFailed,
    /// A threat report was delivered.
    ThreatReported,
    /// A tool definition changed since the pinned `tools/list` (rug pull).
    ToolsChanged,
}

impl Event {
    /// The event name in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::ConfigInvalid => "config_invalid",
            Event::McpBindingMissing => "mcp_binding_missing",
            Event::UpstreamFailed => "upstream_failed",
            Event::IngestNotConfigured => "ingest_not_configured",
            Event::IngestRejected => "ingest_rejected",
            Event::IngestTimeout => "ingest_timeout",
            Event::IngestFailed => "ingest_failed",
            Event::Mirrored => "mirrored",
            Event::MirrorFiltered => "mirror_filtered",
            Event::BodyTruncated => "body_truncated",
            Event::CaptureTimeout => "capture_timeout",
            Event::ScanSkippedTooLarge => "scan_skipped_too_large",
            Event::ScanLimit => "scan_limit",
            Event::PolicyInvalid => "policy_invalid",
            Event::ThreatDetected => "threat_detected",
            Event::Blocked => "blocked",
            Event::Redacted => "redacted",
            Event::ExecutorTimeout => "executor_timeout",
            Event::ExecutorFailed => "executor_failed",
            Event::ThreatReportFailed => "threat_report_failed",
            Event::ThreatReported => "threat_reported",
            Event::ToolsChanged => "tools_changed",
        }
    }

    fn level(self) -> &'static str {
        match self {
            Event::ConfigInvalid | Event::McpBindingMissing | Event::PolicyInvalid => "error",
            Event::Mirrored | Event::MirrorFiltered => "debug",
            Event::ThreatReported => "info",
            _ => "warn",
        }
    }

    /// Events logged on every occurrence; `debug` events are only counted (they happen per request).
    fn logged(self) -> bool {
        self.level() != "debug"
    }
}

thread_local! {
    static COUNTS: RefCell<Vec<(Event, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Counts `event` and returns the new count for this isolate.
pub fn count(event: Event) -> u64 {
    COUNTS.with(|c| {
        let mut c = c.borrow_mut();
        match c.iter_mut().find(|(e, _)| *e == event) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                c.push((event, 1));
                1
            }
        }
    })
}

/// The current count of `event` in this isolate.
pub fn get(event: Event) -> u64 {
    COUNTS.with(|c| c.borrow().iter().find(|(e, _)| *e == event).map_or(0, |(_, n)| *n))
}

/// Counts and logs `event` with structured fields (`fields` must be a JSON object).
pub fn emit(event: Event, fields: Value) {
    let n = count(event);
    if !event.logged() {
        return;
    }
    let mut line = json!({"level": event.level(), "event": event.as_str(), "count": n});
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    log_line(&line.to_string());
}

#[cfg(target_arch = "wasm32")]
fn log_line(s: &str) {
    worker::console_log!("akto-tap-worker {s}");
}

#[cfg(not(target_arch = "wasm32"))]
fn log_line(s: &str) {
    eprintln!("akto-tap-worker {s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_event() {
        let before = get(Event::IngestTimeout);
        emit(Event::IngestTimeout, json!({"ms": 5}));
        emit(Event::IngestTimeout, json!({}));
        assert_eq!(get(Event::IngestTimeout), before + 2);
        assert_eq!(get(Event::ToolsChanged), 0);
    }
}
