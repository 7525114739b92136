//! The Akto traffic record: one message on `akto.api.logs` per HTTP exchange.
//!
//! Akto's consumer (`SampleParser.parseSampleMessage`) expects a flat JSON object whose values are
//! **all strings**; numbers are parsed from strings on its side. Header maps are JSON objects
//! serialized *into* a string. This crate is the single definition of that shape, shared by every
//! producer in the project (packet capture, replay, the ingest API and the edge worker), so every
//! sink shows the same thing.
//!
//! Pure: no I/O, no clock. Builds for `wasm32-unknown-unknown`.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// Akto's `HttpResponseParams.Source` values that this project emits.
///
/// Akto's consumer calls `Source.valueOf`, so only values of that enum may appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Live traffic (packet capture, eBPF, the edge worker).
    Mirroring,
    /// Traffic read back from a capture file.
    Pcap,
}

impl Source {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mirroring => "MIRRORING",
            Source::Pcap => "PCAP",
        }
    }
}

/// Which side of the exchange is local to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Inbound: a request to a local server (`"1"`).
    Inbound,
    /// Outbound: a request from a local client (`"2"`).
    Outbound,
}

impl Direction {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "1",
            Direction::Outbound => "2",
        }
    }
}

/// One Akto record. Field names are the wire names; every value is a string.
///
/// Optional fields are omitted when unknown (Akto's pcap collector omits them too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AktoRecord {
    pub path: String,
    #[serde(rename = "requestHeaders")]
    pub request_headers: String,
    #[serde(rename = "responseHeaders")]
    pub response_headers: String,
    pub method: String,
    #[serde(rename = "requestPayload")]
    pub request_payload: String,
    #[serde(rename = "responsePayload")]
    pub response_payload: String,
    pub ip: String,
    #[serde(rename = "destIp")]
    pub dest_ip: String,
    pub time: String,
    #[serde(rename = "statusCode")]
    pub status_code: String,
    #[serde(rename = "type")]
    pub http_type: String,
    pub status: String,
    pub akto_account_id: String,
    pub akto_vxlan_id: String,
    pub is_pending: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub socket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub process_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub daemonset_id: Option<String>,
    pub enable_graph: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tag: Option<String>,
}

/// Builds the header-map string of a record: a JSON object with one value per name.
///
/// Repeated headers are joined with `", "` (RFC 9110 §5.3 list semantics) instead of Go's
/// last-value-wins, so nothing is lost; the original-case name of the first occurrence is kept.
/// When `host` is given, a lowercase `host` key carries it, as Akto's collectors add one.
pub fn headers_json<'a, I>(headers: I, host: Option<&str>) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            None => out.push((name.to_string(), value.to_string())),
        }
    }
    if let Some(host) = host {
        // The exact lowercase key; an original `Host` stays as it was sent.
        match out.iter_mut().find(|(n, _)| n == "host") {
            Some((_, v)) => *v = host.to_string(),
            None => out.push(("host".to_string(), host.to_string())),
        }
    }
    let map: serde_json::Map<String, serde_json::Value> =
        out.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    serde_json::Value::Object(map).to_string()
}

/// Formats `addr:port` the way Akto's collectors do (`[v6]:port` for IPv6).
pub fn socket_addr_string(addr: std::net::IpAddr, port: u16) -> String {
    std::net::SocketAddr::new(addr, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_join_repeats_and_add_lowercase_host() {
        let s = headers_json(
            [("Host", "a.example"), ("Accept", "a"), ("accept", "b"), ("X-Y", "z")],
            Some("a.example"),
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(v["Accept"], "a, b");
        assert_eq!(v["host"], "a.example");
        assert_eq!(v["Host"], "a.example");
        assert_eq!(v["X-Y"], "z");
    }

    #[test]
    fn record_serializes_all_values_as_strings_and_omits_unknowns() {
        let r = AktoRecord {
            path: "/a?b=1".into(),
            method: "GET".into(),
            status_code: "200".into(),
            enable_graph: "false".into(),
            ..AktoRecord::default()
        };
        let v: serde_json::Value = serde_json::to_value(&r).unwrap_or_default();
        let obj = v.as_object().cloned().unwrap_or_default();
        assert!(obj.values().all(|x| x.is_string()));
        assert!(!obj.contains_key("process_id"));
        assert_eq!(obj["type"], "");
        assert_eq!(obj["statusCode"], "200");
    }

    #[test]
    fn socket_addr_formats_v4_and_v6() {
        assert_eq!(socket_addr_string("10.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), 80), "10.0.0.1:80");
        assert_eq!(socket_addr_string("::1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), 443), "[::1]:443");
    }
}
