//! The Akto traffic record: one message on `akto.api.logs` per HTTP exchange.
//!
//! Akto's consumer (`SampleParser.parseSampleMessage`) expects a flat JSON object whose values are
//! **all strings**; numbers are parsed from strings on its side. Header maps are JSON objects
//! serialized *into* a string. This crate is the single definition of that shape, shared by every
//! producer in the project (packet capture, replay, the ingest API and the edge worker), so every
//! sink shows the same thing.
//!
//! Pure: no I/O, no clock. Builds for `wasm32-unknown-unknown`.
#![deny(unsafe_code)]

mod escape;

use escape::{plain, push_json_str};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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
/// Optional fields are omitted when unknown (Akto's pcap collector omits them too). Values are
/// `Cow` so a producer can borrow bodies and paths from the exchange instead of copying them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AktoRecord<'a> {
    #[serde(borrow)]
    pub path: Cow<'a, str>,
    #[serde(rename = "requestHeaders")]
    #[serde(borrow)]
    pub request_headers: Cow<'a, str>,
    #[serde(rename = "responseHeaders")]
    #[serde(borrow)]
    pub response_headers: Cow<'a, str>,
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(rename = "requestPayload")]
    #[serde(borrow)]
    pub request_payload: Cow<'a, str>,
    #[serde(rename = "responsePayload")]
    #[serde(borrow)]
    pub response_payload: Cow<'a, str>,
    #[serde(borrow)]
    pub ip: Cow<'a, str>,
    #[serde(rename = "destIp")]
    #[serde(borrow)]
    pub dest_ip: Cow<'a, str>,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(rename = "statusCode")]
    #[serde(borrow)]
    pub status_code: Cow<'a, str>,
    #[serde(rename = "type")]
    #[serde(borrow)]
    pub http_type: Cow<'a, str>,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    #[serde(borrow)]
    pub akto_account_id: Cow<'a, str>,
    #[serde(borrow)]
    pub akto_vxlan_id: Cow<'a, str>,
    #[serde(borrow)]
    pub is_pending: Cow<'a, str>,
    #[serde(borrow)]
    pub source: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub direction: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub process_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub socket_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub process_name: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub daemonset_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub enable_graph: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[serde(borrow)]
    pub tag: Option<Cow<'a, str>>,
}

impl AktoRecord<'_> {
    /// Appends the record's JSON (the `akto.api.logs` message) to `out`.
    ///
    /// The same bytes as `serde_json::to_writer(out, self)`, with strings escaped by the
    /// block-mask escaper of `escape.rs` (bodies embedded as JSON strings are escape-dense).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Written field by field with the keys as literals (serde would escape every key of
        // every record); the order and the omitted optional fields are those of the derived
        // `Serialize`, which the tests compare byte for byte.
        let required: [(&[u8], &str); 16] = [
            (b"{\"path\":", &self.path),
            (b",\"requestHeaders\":", &self.request_headers),
            (b",\"responseHeaders\":", &self.response_headers),
            (b",\"method\":", &self.method),
            (b",\"requestPayload\":", &self.request_payload),
            (b",\"responsePayload\":", &self.response_payload),
            (b",\"ip\":", &self.ip),
            (b",\"destIp\":", &self.dest_ip),
            (b",\"time\":", &self.time),
            (b",\"statusCode\":", &self.status_code),
            (b",\"type\":", &self.http_type),
            (b",\"status\":", &self.status),
            (b",\"akto_account_id\":", &self.akto_account_id),
            (b",\"akto_vxlan_id\":", &self.akto_vxlan_id),
            (b",\"is_pending\":", &self.is_pending),
            (b",\"source\":", &self.source),
        ];
        let optional: [(&[u8], &Option<Cow<'_, str>>); 5] = [
            (b",\"direction\":", &self.direction),
            (b",\"process_id\":", &self.process_id),
            (b",\"socket_id\":", &self.socket_id),
            (b",\"process_name\":", &self.process_name),
            (b",\"daemonset_id\":", &self.daemonset_id),
        ];
        let values = required.iter().map(|(_, v)| v.len()).sum::<usize>();
        // Room for every value escaped at two bytes a byte (bodies and header maps are
        // escape-dense): the escaper then never grows the buffer mid-record, which copied
        // everything written so far.
        out.reserve(2 * values + 640);
        for (key, value) in required {
            out.extend_from_slice(key);
            push_json_str(out, value);
        }
        for (key, value) in optional {
            if let Some(value) = value {
                out.extend_from_slice(key);
                push_json_str(out, value);
            }
        }
        out.extend_from_slice(b",\"enable_graph\":");
        push_json_str(out, &self.enable_graph);
        if let Some(tag) = &self.tag {
            out.extend_from_slice(b",\"tag\":");
            push_json_str(out, tag);
        }
        out.push(b'}');
    }
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
    // Borrowed names and values; a value is copied only when a repeated name is joined (rare).
    let mut out: Vec<(&'a str, Cow<'a, str>)> = Vec::with_capacity(16);
    for (name, value) in headers {
        match out.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                let v = v.to_mut();
                v.push_str(", ");
                v.push_str(value);
            }
            None => out.push((name, Cow::Borrowed(value))),
        }
    }
    let host_at = host.map(|h| match out.iter().position(|(n, _)| *n == "host") {
        // The exact lowercase key; an original `Host` stays as it was sent.
        Some(i) => (i, h),
        None => (out.len(), h),
    });
    // Each piece escaped straight into one buffer (no string per piece).
    let mut buf = Vec::with_capacity(out.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 16);
    buf.push(b'{');
    let mut first = true;
    // Names and values are short and nearly always need no escape: a byte check and straight
    // copies here cost a third of two calls into the general escaper.
    let mut entry = |buf: &mut Vec<u8>, k: &str, v: &str| {
        if !std::mem::take(&mut first) {
            buf.push(b',');
        }
        if plain(k.as_bytes()) & plain(v.as_bytes()) {
            buf.reserve(k.len() + v.len() + 5);
            buf.push(b'"');
            buf.extend_from_slice(k.as_bytes());
            buf.extend_from_slice(b"\":\"");
            buf.extend_from_slice(v.as_bytes());
            buf.push(b'"');
        } else {
            push_json_str(buf, k);
            buf.push(b':');
            push_json_str(buf, v);
        }
    };
    for (i, (k, v)) in out.iter().enumerate() {
        match host_at {
            Some((at, h)) if at == i => entry(&mut buf, k, h),
            _ => entry(&mut buf, k, v),
        }
    }
    if let Some((at, h)) = host_at {
        if at == out.len() {
            entry(&mut buf, "host", h);
        }
    }
    buf.push(b'}');
    // JSON escaping writes valid UTF-8.
    String::from_utf8(buf).unwrap_or_default()
}

/// Formats `addr:port` the way Akto's collectors do (`[v6]:port` for IPv6): the same text as
/// `SocketAddr`'s `Display` (tested), written directly (the formatter's padding machinery cost
/// ~1,800 instructions per address, twice per record).
pub fn socket_addr_string(addr: std::net::IpAddr, port: u16) -> String {
    let mut s = String::with_capacity(48);
    match addr {
        std::net::IpAddr::V4(a) => push_ipv4(&mut s, a),
        std::net::IpAddr::V6(a) => {
            s.push('[');
            push_ipv6(&mut s, a);
            s.push(']');
        }
    }
    s.push(':');
    s.push_str(itoa::Buffer::new().format(port));
    s
}

/// An address as `IpAddr`'s `Display` writes it (the Kafka key: the client IP).
pub fn ip_string(addr: std::net::IpAddr) -> String {
    let mut s = String::with_capacity(40);
    match addr {
        std::net::IpAddr::V4(a) => push_ipv4(&mut s, a),
        std::net::IpAddr::V6(a) => push_ipv6(&mut s, a),
    }
    s
}

fn push_ipv4(s: &mut String, a: std::net::Ipv4Addr) {
    let mut digits = itoa::Buffer::new();
    for (i, octet) in a.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(digits.format(octet));
    }
}

/// RFC 5952 text as `Ipv6Addr`'s `Display` writes it: `::ffff:a.b.c.d` for IPv4-mapped
/// addresses, else lowercase hex groups with the longest run (the first of equals) of two or
/// more zero groups written as `::`.
fn push_ipv6(s: &mut String, a: std::net::Ipv6Addr) {
    if let Some(v4) = a.to_ipv4_mapped() {
        s.push_str("::ffff:");
        return push_ipv4(s, v4);
    }
    let groups = a.segments();
    let (mut best, mut best_len, mut run, mut run_len) = (0, 0, 0, 0);
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            if run_len == 0 {
                run = i;
            }
            run_len += 1;
            if run_len > best_len {
                (best, best_len) = (run, run_len);
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |s: &mut String, list: &[u16]| {
        for (i, g) in list.iter().enumerate() {
            if i > 0 {
                s.push(':');
            }
            // Lowercase hex without leading zeros.
            let width = (16 - g.leading_zeros().min(12) as usize).div_ceil(4);
            for shift in (0..width).rev() {
                s.push(char::from(b"0123456789abcdef"[usize::from(g >> (4 * shift) & 0xf)]));
            }
        }
    };
    if best_len > 1 {
        hex(s, &groups[..best]);
        s.push_str("::");
        hex(s, &groups[best + best_len..]);
    } else {
        hex(s, &groups);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_join_repeats_and_add_lowercase_host() {
        let s =
            headers_json([("Host", "a.example"), ("Accept", "a"), ("accept", "b"), ("X-Y", "z")], Some("a.example"));
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
        let text = serde_json::to_string(&r).unwrap_or_default();
        let back: AktoRecord<'_> = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, r);
        let v: serde_json::Value = serde_json::to_value(&r).unwrap_or_default();
        let obj = v.as_object().cloned().unwrap_or_default();
        assert!(obj.values().all(|x| x.is_string()));
        assert!(!obj.contains_key("process_id"));
        assert_eq!(obj["type"], "");
        assert_eq!(obj["statusCode"], "200");
    }

    #[test]
    fn plain_is_exactly_no_escape_needed() {
        // Every byte at every position of strings up to three words long, among plain bytes.
        for len in 1..=24 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = b;
                    let needs = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(plain(&text), !needs, "byte {b:#x} at {at} of {len}");
                }
            }
        }
        assert!(plain(b""));
        assert!(plain("é😀\u{7f}/".as_bytes()));
    }

    #[test]
    fn header_map_escapes_like_serde() {
        let s = headers_json([("X-Q", "a\"b\\c\n\u{1}")], None);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
        assert_eq!(v["X-Q"], "a\"b\\c\n\u{1}");
    }

    fn any_record() -> impl proptest::strategy::Strategy<Value = AktoRecord<'static>> {
        use proptest::prelude::*;
        // Every byte class the escaper treats differently: controls, quote, backslash, DEL,
        // multi-byte UTF-8 (incl. U+2028), long runs.
        let text = prop_oneof!["[\\x00-\\x7f]{0,40}", "[\"\\\\\\x00-\\x1f a-z{}:,é\u{2028}😀]{0,300}", ".{0,200}",];
        let maybe = || proptest::option::of(text.clone());
        (
            (text.clone(), text.clone(), text.clone(), text.clone(), text.clone()),
            (maybe(), maybe(), maybe(), maybe(), maybe(), maybe()),
        )
            .prop_map(|((a, b, c, d, e), (f, g, h, i, j, k))| AktoRecord {
                path: a.into(),
                request_headers: headers_json([("X", b.as_str()), ("Host", "h")], Some(&e)).into(),
                response_headers: headers_json([("Y", e.as_str())], None).into(),
                method: "POST".into(),
                request_payload: c.into(),
                response_payload: d.into(),
                ip: "10.0.0.1:1".into(),
                time: "1".into(),
                akto_vxlan_id: e.into(),
                direction: f.map(Into::into),
                process_id: g.map(Into::into),
                socket_id: h.map(Into::into),
                process_name: i.map(Into::into),
                daemonset_id: j.map(Into::into),
                tag: k.map(Into::into),
                ..AktoRecord::default()
            })
    }

    proptest::proptest! {
        #[test]
        fn write_json_is_byte_identical_to_serde_json(r in any_record()) {
            let mut ours = b"prefix".to_vec();
            r.write_json(&mut ours);
            let ours = ours.split_off(6);
            let reference = serde_json::to_vec(&r).unwrap_or_default();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&reference));
            let back: AktoRecord<'_> = serde_json::from_slice(&ours).unwrap_or_default();
            proptest::prop_assert_eq!(back, r);
        }
    }

    proptest::proptest! {
        #[test]
        fn socket_addr_text_is_std_display(
            groups in proptest::array::uniform8(proptest::prop_oneof![3 => proptest::strategy::Just(0u16), 1 => 1u16..16, 2 => proptest::num::u16::ANY]),
            v4 in proptest::num::u32::ANY,
            port in proptest::num::u16::ANY,
            mapped in proptest::bool::ANY,
        ) {
            let v6 = if mapped { std::net::Ipv4Addr::from(v4).to_ipv6_mapped() } else { std::net::Ipv6Addr::from(groups) };
            for ip in [std::net::IpAddr::V6(v6), std::net::IpAddr::V4(v4.into())] {
                proptest::prop_assert_eq!(socket_addr_string(ip, port), std::net::SocketAddr::new(ip, port).to_string());
                proptest::prop_assert_eq!(ip_string(ip), ip.to_string());
            }
        }
    }

    #[test]
    fn socket_addr_formats_v4_and_v6() {
        assert_eq!(
            socket_addr_string("10.0.0.1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), 80),
            "10.0.0.1:80"
        );
        assert_eq!(
            socket_addr_string("::1".parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()), 443),
            "[::1]:443"
        );
    }
}
