//! Validation of `{"batchData":[record, …]}`: the one trust boundary of the ingest API.
//!
//! A record is accepted when it is a JSON object whose fields are known (the fields of Akto's
//! `IngestDataBatch`, plus `enable_graph`/`process_name` as the collectors spell them), whose
//! forwarded values are strings (`null` = absent), with `path` and `method` present, numbers
//! that Akto parses with `Integer.parseInt` parseable, header maps that are JSON objects, a
//! `source` Akto's `Source.valueOf` knows, and non-payload fields within `max_field_bytes`.
//! Companion fields that Akto's own service accepts but does not forward (`_traces`,
//! `publishToGuardrails`, `contextSource`, `parentMcpToolNames`, `metadata`) are accepted and
//! dropped. The value produced to Kafka holds only the forwarded fields.

use serde_json::{Map, Value};

/// Fields forwarded to Kafka.
const FORWARDED: &[&str] = &[
    "path",
    "requestHeaders",
    "responseHeaders",
    "method",
    "requestPayload",
    "responsePayload",
    "ip",
    "destIp",
    "time",
    "statusCode",
    "type",
    "status",
    "akto_account_id",
    "akto_vxlan_id",
    "is_pending",
    "source",
    "direction",
    "process_id",
    "socket_id",
    "daemonset_id",
    "enabled_graph",
    "enable_graph",
    "process_name",
    "tag",
];

/// Fields accepted for compatibility and not forwarded (any JSON type).
const IGNORED: &[&str] = &["_traces", "publishToGuardrails", "contextSource", "parentMcpToolNames", "metadata"];

/// Payload fields: not limited by `max_field_bytes` (the sink cuts oversize records to fit).
const PAYLOADS: &[&str] = &["requestPayload", "responsePayload"];

/// Akto's `HttpResponseParams.Source`.
const SOURCES: &[&str] = &["HAR", "PCAP", "MIRRORING", "SDK", "OTHER", "POSTMAN", "OPEN_API", "BURP"];

/// Validation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Records per batch.
    pub max_batch_records: usize,
    /// Bytes per non-payload field.
    pub max_field_bytes: usize,
}

/// A record that passed: its Kafka key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Valid {
    /// Client IP (from `ip`), or empty.
    pub key: Vec<u8>,
    /// The forwarded fields as a JSON object.
    pub value: Vec<u8>,
}

/// Why the whole request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not JSON.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but not `{"batchData":[…]}`.
    #[error("expected an object {{\"batchData\": [record, …]}}: {0}")]
    Shape(&'static str),
    /// Too many records.
    #[error("batch of {got} records exceeds the limit of {max}")]
    TooMany { got: usize, max: usize },
}

/// Parses the envelope; each element is validated separately by [`validate_record`].
pub fn parse_batch(body: &[u8], limits: &Limits) -> Result<Vec<Value>, BatchError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| BatchError::Malformed(e.to_string()))?;
    let Value::Object(mut obj) = v else { return Err(BatchError::Shape("the body is not an object")) };
    let Some(batch) = obj.remove("batchData") else { return Err(BatchError::Shape("no batchData field")) };
    let Value::Array(records) = batch else { return Err(BatchError::Shape("batchData is not an array")) };
    if records.len() > limits.max_batch_records {
        return Err(BatchError::TooMany { got: records.len(), max: limits.max_batch_records });
    }
    Ok(records)
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name).and_then(Value::as_str)
}

/// Validates one record; `Err` is the reason, naming the field.
pub fn validate_record(record: Value, limits: &Limits) -> Result<Valid, String> {
    let Value::Object(obj) = record else { return Err("record is not a JSON object".into()) };
    let mut out = Map::new();
    for (k, v) in obj {
        if IGNORED.contains(&k.as_str()) {
            continue;
        }
        if !FORWARDED.contains(&k.as_str()) {
            return Err(format!("unknown field `{k}`"));
        }
        match v {
            Value::Null => {}
            Value::String(s) => {
                if !PAYLOADS.contains(&k.as_str()) && s.len() > limits.max_field_bytes {
                    return Err(format!(
                        "field `{k}` is {} bytes, over the limit of {}",
                        s.len(),
                        limits.max_field_bytes
                    ));
                }
                out.insert(k, Value::String(s));
            }
            other => return Err(format!("field `{k}` must be a string, found {}", type_name(&other))),
        }
    }
    for required in ["path", "method"] {
        if str_field(&out, required).is_none_or(str::is_empty) {
            return Err(format!("field `{required}` is required"));
        }
    }
    for numeric in ["statusCode", "time"] {
        if let Some(s) = str_field(&out, numeric) {
            if s.parse::<i32>().is_err() {
                return Err(format!("field `{numeric}` must be a 32-bit integer in a string, found {s:?}"));
            }
        }
    }
    for headers in ["requestHeaders", "responseHeaders"] {
        if let Some(s) = str_field(&out, headers) {
            if !s.is_empty() && serde_json::from_str::<Map<String, Value>>(s).is_err() {
                return Err(format!("field `{headers}` must be a JSON object serialized as a string"));
            }
        }
    }
    if let Some(s) = str_field(&out, "source") {
        if !SOURCES.contains(&s) {
            return Err(format!("field `source` must be one of {SOURCES:?}, found {s:?}"));
        }
    }
    let key = str_field(&out, "ip").map(|ip| crate::kafka::client_key(ip).as_bytes().to_vec()).unwrap_or_default();
    let value = serde_json::to_vec(&out).map_err(|e| e.to_string())?;
    Ok(Valid { key, value })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: Limits = Limits { max_batch_records: 3, max_field_bytes: 32 };

    macro_rules! rejects {
        ($rec:expr, $needle:expr) => {{
            let r = validate_record($rec, &L);
            assert!(matches!(&r, Err(e) if e.contains($needle)), "{:?} should mention {:?}", r, $needle);
        }};
    }

    fn ok() -> Value {
        json!({"path": "/a", "method": "GET", "ip": "10.0.0.1:5555", "statusCode": "200", "time": "1717000000",
               "requestHeaders": "{\"host\":\"x\"}", "source": "MIRRORING", "enabled_graph": null,
               "publishToGuardrails": true, "requestPayload": "p".repeat(100)})
    }

    #[test]
    fn accepts_akto_records_and_forwards_only_known_strings() {
        let v = validate_record(ok(), &L).expect("valid");
        assert_eq!(v.key, b"10.0.0.1");
        let out: Value = serde_json::from_slice(&v.value).unwrap_or_default();
        assert_eq!(out["path"], "/a");
        assert!(out.get("publishToGuardrails").is_none());
        assert!(out.get("enabled_graph").is_none(), "null = absent");
        assert!(out.as_object().is_some_and(|o| o.values().all(Value::is_string)));
    }

    #[test]
    fn rejects_with_a_reason_naming_the_field() {
        let with = |k: &str, v: Value| {
            let mut r = ok();
            r[k] = v;
            r
        };
        rejects!(with("statusCode", json!(200)), "`statusCode` must be a string");
        rejects!(with("statusCode", json!("OK")), "`statusCode` must be a 32-bit integer");
        rejects!(with("bogus", json!("x")), "unknown field `bogus`");
        rejects!(with("path", json!("")), "`path` is required");
        rejects!(with("source", json!("BLOCKED")), "`source` must be one of");
        rejects!(with("requestHeaders", json!("not json")), "`requestHeaders` must be a JSON object");
        rejects!(with("path", json!("/".repeat(33))), "over the limit of 32");
        rejects!(json!(["not", "an", "object"]), "not a JSON object");
        rejects!(json!({"path": "/a"}), "`method` is required");
    }

    #[test]
    fn envelope_errors() {
        assert!(matches!(parse_batch(b"{", &L), Err(BatchError::Malformed(_))));
        assert!(matches!(parse_batch(b"[]", &L), Err(BatchError::Shape(_))));
        assert!(matches!(parse_batch(b"{\"batch\":[]}", &L), Err(BatchError::Shape(_))));
        assert!(matches!(parse_batch(b"{\"batchData\":{}}", &L), Err(BatchError::Shape(_))));
        assert!(matches!(parse_batch(b"{\"batchData\":[1,2,3,4]}", &L), Err(BatchError::TooMany { got: 4, max: 3 })));
        assert_eq!(parse_batch(b"{\"batchData\":[1,2]}", &L).map(|v| v.len()), Ok(2));
    }
}
