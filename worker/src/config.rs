//! Typed configuration, read once per isolate from wrangler `vars`, secrets and bindings.
//!
//! Names follow Akto's Cloudflare workers where they exist (reference/akto.md §4):
//! `MCP`, `GUARDRAILS_MODE`, `ENABLE_MCP_GUARDRAILS`, `AKTO_GUARDRAILS_EXECUTOR`,
//! `DATA_INGESTION_URL`, `AKTO_INGESTION_WORKER` / `AKTO_INGEST_GUARDRAILS`, `THREAT_BACKEND_URL`,
//! `THREAT_BACKEND_TOKEN`, `AKTO_ACCOUNT_ID`. Defaults live in [`Config::default`] and nowhere
//! else; a value that does not parse is a [`ConfigError`] naming the variable (the worker
//! answers 500 with that message and logs it; it never guesses).

use std::fmt;

use worker::Env;

/// What the worker does besides forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward and mirror the exchange to the ingestion API; no detection.
    Mirror,
    /// Forward everything; scan requests and responses after the response, report threats.
    Async,
    /// Scan the request before forwarding and the response before returning it; block threats.
    Blocked,
}

impl Mode {
    /// Lowercase name (logs, record tag).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Mirror => "mirror",
            Mode::Async => "async",
            Mode::Blocked => "blocked",
        }
    }
}

/// Where threat reports go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreatTargets {
    /// `POST {THREAT_BACKEND_URL}/api/threat_detection/record_malicious_event`.
    pub backend: bool,
    /// Mark the ingested record (tag `guardrails` + `metadata` with the findings).
    pub ingest: bool,
}

/// Every setting of the worker.
#[derive(Debug, Clone)]
pub struct Config {
    /// `GUARDRAILS_MODE` (`async` | `blocked` | `mirror`), gated by `ENABLE_MCP_GUARDRAILS`.
    pub mode: Mode,
    /// `MCP_ORIGIN_URL`: forward to this origin (scheme://host[:port], path and query kept)
    /// instead of the `MCP` service binding.
    pub origin_url: Option<String>,
    /// `DATA_INGESTION_URL`: base URL (`/api/ingestData` appended when no path is given) or full URL.
    pub ingest_url: Option<String>,
    /// `AKTO_API_KEY` (secret): sent as `X-API-KEY` to the ingestion API.
    pub api_key: Option<String>,
    /// `AKTO_DATA_INGESTION_TOKEN` (secret): sent as `Authorization` to the ingestion API.
    pub ingest_token: Option<String>,
    /// `INGEST_TIMEOUT_MS`: how long one ingestion POST may take before it is abandoned (counted).
    pub ingest_timeout_ms: u64,
    /// `MIRROR_CONTENT_TYPES`: comma-separated substrings; an exchange is mirrored when the
    /// request or response content type contains one. `*` mirrors everything.
    pub content_types: Vec<String>,
    /// `MIRROR_STATUS_RANGES`: comma-separated `lo-hi` ranges of mirrored status codes
    /// (blocked exchanges are always mirrored).
    pub status_ranges: Vec<(u16, u16)>,
    /// `MIRROR_MAX_BODY_BYTES`: bytes of each body put in the record; longer bodies are cut and
    /// flagged with an `x-akto-tap-truncated: true` header in the record (counted).
    pub max_body_bytes: usize,
    /// `MAX_BUFFER_BYTES`: request bodies up to this size (by `Content-Length`) are read once and
    /// forwarded from memory; larger or unknown-length bodies stream through untouched and, in
    /// blocked mode, are not scanned before forwarding (fail-open, counted). Non-SSE responses
    /// in blocked mode are buffered up to this size to be scanned; larger ones stream unscanned.
    pub max_buffer_bytes: usize,
    /// `CAPTURE_MAX_MS`: longest the mirrored copy waits for a streaming body (SSE) to end; the
    /// record then holds what arrived, flagged truncated (counted).
    pub capture_max_ms: u64,
    /// `GUARDRAILS_POLICY`: guardrails policy as JSON or TOML text (default policy when unset).
    pub policy: Option<String>,
    /// `GUARDRAILS_MAX_WORK`: the in-process scan budget in scanner-bytes (overrides the policy's
    /// `limits.max_work`). workerd's clock does not advance during computation, so the scan time
    /// budget is expressed as work; when spent the rest is not scanned (fail-open, counted).
    pub max_work: Option<u64>,
    /// `GUARDRAILS_MAX_SCAN_BYTES`: bytes of a body that are scanned (overrides `limits.max_input_bytes`).
    pub max_scan_bytes: Option<usize>,
    /// `GUARDRAILS_REDACT`: in blocked mode, forward/return the redacted body for `redact`
    /// verdicts (default: report only, the traffic is not altered).
    pub redact: bool,
    /// `BLOCKED_STATUS_CODE`: HTTP status of a blocked response (Akto's doc: 200).
    pub blocked_status: u16,
    /// `BLOCKED_MESSAGE`: JSON-RPC `error.message` (policy `blocked_message` wins when set).
    pub blocked_message: String,
    /// `AKTO_GUARDRAILS_EXECUTOR_URL`: external scanner URL (`/scan` appended when no path);
    /// the `AKTO_GUARDRAILS_EXECUTOR` binding is used when present.
    pub executor_url: Option<String>,
    /// `EXECUTOR_SCANNERS`: scanner names sent to the executor, one request each (parallel).
    pub executor_scanners: Vec<String>,
    /// `EXECUTOR_TIMEOUT_MS`: time budget of the external scan; past it the traffic passes
    /// (fail-open, logged and counted).
    pub executor_timeout_ms: u64,
    /// `THREAT_BACKEND_URL`: Akto threat backend base URL.
    pub threat_backend_url: Option<String>,
    /// `THREAT_BACKEND_TOKEN` (secret): `Authorization: Bearer` for the threat backend.
    pub threat_backend_token: Option<String>,
    /// `THREAT_REPORT`: `backend`, `ingest` or `both` (default: `backend` when
    /// `THREAT_BACKEND_URL` is set, else `ingest`).
    pub threat: ThreatTargets,
    /// `AKTO_ACCOUNT_ID`.
    pub account_id: String,
    /// `AKTO_VXLAN_ID` (Akto API collection id for this worker's traffic).
    pub vxlan_id: String,
    /// `AKTO_TAGS`: JSON object of extra tags merged into the record `tag`.
    pub tags: serde_json::Map<String, serde_json::Value>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Mirror,
            origin_url: None,
            ingest_url: None,
            api_key: None,
            ingest_token: None,
            ingest_timeout_ms: 5_000,
            content_types: ["json", "xml", "x-www-form-urlencoded", "soap", "grpc", "event-stream"]
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            status_ranges: vec![(200, 399)],
            max_body_bytes: 64 << 10,
            max_buffer_bytes: 1 << 20,
            capture_max_ms: 20_000,
            policy: None,
            max_work: None,
            max_scan_bytes: None,
            redact: false,
            blocked_status: 200,
            blocked_message: "Request blocked by security policy".to_string(),
            executor_url: None,
            executor_scanners: vec!["PromptInjection".to_string()],
            executor_timeout_ms: 2_000,
            threat_backend_url: None,
            threat_backend_token: None,
            threat: ThreatTargets { backend: false, ingest: true },
            account_id: "1000000".to_string(),
            vxlan_id: "0".to_string(),
            tags: serde_json::Map::new(),
        }
    }
}

/// A variable that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.message)
    }
}

/// Source of string settings (the worker `Env`, or a map in unit tests).
pub trait Vars {
    /// The value of a var or secret, `None` when unset.
    fn get(&self, name: &str) -> Option<String>;
}

impl Vars for Env {
    fn get(&self, name: &str) -> Option<String> {
        // Secrets and plain-text vars are both strings; a JSON var (wrangler `vars` object) is
        // read back as its JSON text.
        let v = js_sys::Reflect::get(self, &wasm_bindgen::JsValue::from_str(name)).ok()?;
        if v.is_undefined() || v.is_null() {
            return None;
        }
        v.as_string().or_else(|| js_sys::JSON::stringify(&v).ok().and_then(|s| s.as_string()))
    }
}

fn bad(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { var, message: message.into() }
}

fn non_empty(v: &dyn Vars, name: &str) -> Option<String> {
    v.get(name).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

fn parse_bool(v: &dyn Vars, name: &'static str) -> Result<Option<bool>, ConfigError> {
    match non_empty(v, name).map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) => match s.as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(bad(name, format!("{s:?} is not a boolean (true/false)"))),
        },
    }
}

fn parse_num<T>(v: &dyn Vars, name: &'static str, min: T) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    match non_empty(v, name) {
        None => Ok(None),
        Some(s) => match s.parse::<T>() {
            Ok(n) if n >= min => Ok(Some(n)),
            _ => Err(bad(name, format!("{s:?} is not a whole number >= {min}"))),
        },
    }
}

fn parse_url(v: &dyn Vars, name: &'static str) -> Result<Option<String>, ConfigError> {
    match non_empty(v, name) {
        None => Ok(None),
        Some(s) if s.starts_with("http://") || s.starts_with("https://") => Ok(Some(s)),
        Some(s) => Err(bad(name, format!("{s:?} is not an http(s) URL"))),
    }
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect()
}

/// Appends `path` when `url` has no path of its own (`https://host` or `https://host/`).
pub fn with_default_path(url: &str, path: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    match after_scheme.find('/') {
        None => format!("{url}{path}"),
        Some(i) if after_scheme[i..].trim_end_matches('/').is_empty() => format!("{}{path}", url.trim_end_matches('/')),
        Some(_) => url.to_string(),
    }
}

impl Config {
    /// Reads every setting; the first bad value is the error.
    pub fn from_vars(v: &dyn Vars) -> Result<Config, ConfigError> {
        let d = Config::default();
        let enabled = parse_bool(v, "ENABLE_MCP_GUARDRAILS")?;
        let mode_var = non_empty(v, "GUARDRAILS_MODE").map(|s| s.to_ascii_lowercase());
        let mode = match (enabled, mode_var.as_deref()) {
            (Some(false), _) => Mode::Mirror,
            (_, Some("async")) => Mode::Async,
            (_, Some("blocked")) => Mode::Blocked,
            (_, Some("mirror" | "off")) => Mode::Mirror,
            (_, Some(other)) => {
                return Err(bad("GUARDRAILS_MODE", format!("{other:?}: expected async, blocked or mirror")))
            }
            (Some(true), None) => Mode::Async,
            (None, None) => Mode::Mirror,
        };
        let content_types = match non_empty(v, "MIRROR_CONTENT_TYPES") {
            None => d.content_types,
            Some(s) => list(&s),
        };
        let status_ranges = match non_empty(v, "MIRROR_STATUS_RANGES") {
            None => d.status_ranges,
            Some(s) => {
                let mut out = Vec::new();
                for part in list(&s) {
                    let (lo, hi) = part.split_once('-').unwrap_or((&part, &part));
                    match (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) {
                        (Ok(lo), Ok(hi)) if lo <= hi => out.push((lo, hi)),
                        _ => {
                            return Err(bad("MIRROR_STATUS_RANGES", format!("{part:?}: expected lo-hi, e.g. 200-399")))
                        }
                    }
                }
                out
            }
        };
        let blocked_status = parse_num::<u16>(v, "BLOCKED_STATUS_CODE", 200)?.unwrap_or(d.blocked_status);
        if blocked_status > 599 {
            return Err(bad("BLOCKED_STATUS_CODE", format!("{blocked_status} is not an HTTP status (200-599)")));
        }
        let threat_backend_url = parse_url(v, "THREAT_BACKEND_URL")?;
        let threat = match non_empty(v, "THREAT_REPORT").map(|s| s.to_ascii_lowercase()).as_deref() {
            None if threat_backend_url.is_some() => ThreatTargets { backend: true, ingest: false },
            None => d.threat,
            Some("backend" | "threat_backend") => ThreatTargets { backend: true, ingest: false },
            Some("ingest") => ThreatTargets { backend: false, ingest: true },
            Some("both") => ThreatTargets { backend: true, ingest: true },
            Some(other) => return Err(bad("THREAT_REPORT", format!("{other:?}: expected backend, ingest or both"))),
        };
        if threat.backend && threat_backend_url.is_none() {
            return Err(bad("THREAT_REPORT", "reporting to the threat backend needs THREAT_BACKEND_URL"));
        }
        let tags = match non_empty(v, "AKTO_TAGS") {
            None => d.tags,
            Some(s) => match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => return Err(bad("AKTO_TAGS", "expected a JSON object, e.g. {\"env\":\"prod\"}")),
            },
        };
        let account_id = non_empty(v, "AKTO_ACCOUNT_ID").unwrap_or(d.account_id);
        if account_id.parse::<i64>().is_err() {
            return Err(bad("AKTO_ACCOUNT_ID", format!("{account_id:?} is not a number")));
        }
        Ok(Config {
            mode,
            origin_url: parse_url(v, "MCP_ORIGIN_URL")?,
            ingest_url: parse_url(v, "DATA_INGESTION_URL")?.map(|u| with_default_path(&u, "/api/ingestData")),
            api_key: non_empty(v, "AKTO_API_KEY"),
            ingest_token: non_empty(v, "AKTO_DATA_INGESTION_TOKEN"),
            ingest_timeout_ms: parse_num(v, "INGEST_TIMEOUT_MS", 1)?.unwrap_or(d.ingest_timeout_ms),
            content_types,
            status_ranges,
            max_body_bytes: parse_num(v, "MIRROR_MAX_BODY_BYTES", 0)?.unwrap_or(d.max_body_bytes),
            max_buffer_bytes: parse_num(v, "MAX_BUFFER_BYTES", 0)?.unwrap_or(d.max_buffer_bytes),
            capture_max_ms: parse_num(v, "CAPTURE_MAX_MS", 1)?.unwrap_or(d.capture_max_ms),
            policy: non_empty(v, "GUARDRAILS_POLICY"),
            max_work: parse_num(v, "GUARDRAILS_MAX_WORK", 1)?,
            max_scan_bytes: parse_num(v, "GUARDRAILS_MAX_SCAN_BYTES", 1)?,
            redact: parse_bool(v, "GUARDRAILS_REDACT")?.unwrap_or(d.redact),
            blocked_status,
            blocked_message: non_empty(v, "BLOCKED_MESSAGE").unwrap_or(d.blocked_message),
            executor_url: parse_url(v, "AKTO_GUARDRAILS_EXECUTOR_URL")?.map(|u| with_default_path(&u, "/scan")),
            executor_scanners: match non_empty(v, "EXECUTOR_SCANNERS") {
                None => d.executor_scanners,
                Some(s) => s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
            },
            executor_timeout_ms: parse_num(v, "EXECUTOR_TIMEOUT_MS", 1)?.unwrap_or(d.executor_timeout_ms),
            threat_backend_url,
            threat_backend_token: non_empty(v, "THREAT_BACKEND_TOKEN"),
            threat,
            account_id,
            vxlan_id: non_empty(v, "AKTO_VXLAN_ID").unwrap_or(d.vxlan_id),
            tags,
        })
    }

    /// `true` when `status` is in a mirrored range.
    pub fn status_mirrored(&self, status: u16) -> bool {
        self.status_ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }

    /// `true` when either content type matches the mirror filter.
    pub fn content_type_mirrored(&self, request: &str, response: &str) -> bool {
        if self.content_types.iter().any(|c| c == "*") {
            return true;
        }
        let (rq, rs) = (request.to_ascii_lowercase(), response.to_ascii_lowercase());
        self.content_types
            .iter()
            .any(|c| (!rq.is_empty() && rq.contains(c.as_str())) || (!rs.is_empty() && rs.contains(c.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, &'static str>);
    impl Vars for Map {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|s| (*s).to_string())
        }
    }
    fn cfg(pairs: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        Config::from_vars(&Map(pairs.iter().copied().collect()))
    }

    #[test]
    fn modes() {
        let m = |p: &[(&'static str, &'static str)]| cfg(p).map(|c| c.mode);
        assert_eq!(m(&[]), Ok(Mode::Mirror));
        assert_eq!(m(&[("GUARDRAILS_MODE", "async")]), Ok(Mode::Async));
        assert_eq!(m(&[("GUARDRAILS_MODE", "Blocked")]), Ok(Mode::Blocked));
        assert_eq!(m(&[("ENABLE_MCP_GUARDRAILS", "true")]), Ok(Mode::Async));
        assert_eq!(m(&[("ENABLE_MCP_GUARDRAILS", "false"), ("GUARDRAILS_MODE", "blocked")]), Ok(Mode::Mirror));
        assert_eq!(m(&[("GUARDRAILS_MODE", "block")]).map_err(|e| e.var), Err("GUARDRAILS_MODE"));
        assert_eq!(m(&[("ENABLE_MCP_GUARDRAILS", "maybe")]).map_err(|e| e.var), Err("ENABLE_MCP_GUARDRAILS"));
    }

    #[test]
    fn numbers_urls_and_lists() {
        let c = cfg(&[
            ("BLOCKED_STATUS_CODE", "403"),
            ("MIRROR_STATUS_RANGES", "200-299, 404"),
            ("DATA_INGESTION_URL", "http://127.0.0.1:9091"),
            ("AKTO_GUARDRAILS_EXECUTOR_URL", "https://exec.example/v1/scan"),
        ])
        .unwrap_or_default();
        assert_eq!(c.blocked_status, 403);
        assert_eq!(c.status_ranges, vec![(200, 299), (404, 404)]);
        assert!(c.status_mirrored(404) && !c.status_mirrored(302));
        assert_eq!(c.ingest_url.as_deref(), Some("http://127.0.0.1:9091/api/ingestData"));
        assert_eq!(c.executor_url.as_deref(), Some("https://exec.example/v1/scan"));
        assert_eq!(cfg(&[("BLOCKED_STATUS_CODE", "99")]).map_err(|e| e.var).err(), Some("BLOCKED_STATUS_CODE"));
        assert_eq!(cfg(&[("DATA_INGESTION_URL", "ftp://x")]).map_err(|e| e.var).err(), Some("DATA_INGESTION_URL"));
        assert_eq!(cfg(&[("THREAT_REPORT", "backend")]).map_err(|e| e.var).err(), Some("THREAT_REPORT"));
        assert_eq!(cfg(&[("AKTO_TAGS", "[1]")]).map_err(|e| e.var).err(), Some("AKTO_TAGS"));
    }

    #[test]
    fn content_type_filter() {
        let c = Config::default();
        assert!(c.content_type_mirrored("application/json", ""));
        assert!(c.content_type_mirrored("", "text/event-stream"));
        assert!(!c.content_type_mirrored("", "image/png"));
        assert!(!c.content_type_mirrored("", ""));
    }

    #[test]
    fn default_path() {
        assert_eq!(with_default_path("https://a.b/", "/x"), "https://a.b/x");
        assert_eq!(with_default_path("https://a.b/y", "/x"), "https://a.b/y");
    }
}
