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
    pub request_headers: HeadersField<'a>,
    #[serde(rename = "responseHeaders")]
    #[serde(borrow)]
    pub response_headers: HeadersField<'a>,
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

/// A header-map field's value as [`AktoRecord::write_json_with`] writes it: the map's JSON text
/// as a JSON string literal.
pub trait HeaderMapJson {
    /// Appends the string literal (with its quotes) to `out`.
    fn write_json_string(&self, out: &mut Vec<u8>);
    /// Bytes of the JSON text before escaping, about (for sizing the record's buffer).
    fn len_hint(&self) -> usize;
}

impl AktoRecord<'_> {
    /// Appends the record's JSON (the `akto.api.logs` message) to `out`.
    ///
    /// The same bytes as `serde_json::to_writer(out, self)`, with strings escaped by the
    /// block-mask escaper of `escape.rs` (bodies embedded as JSON strings are escape-dense).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, &self.request_headers, &self.response_headers);
    }

    /// [`AktoRecord::write_json`] with the header maps given apart: the record's own
    /// `request_headers` and `response_headers` are not used. A producer that holds its fields
    /// in its own form ([`HeaderFields`]) writes them straight into the record this way.
    pub fn write_json_with(
        &self,
        out: &mut Vec<u8>,
        request_headers: &dyn HeaderMapJson,
        response_headers: &dyn HeaderMapJson,
    ) {
        // Written field by field with the keys as literals (serde would escape every key of
        // every record); the order and the omitted optional fields are those of the derived
        // `Serialize`, which the tests compare byte for byte.
        let required: [(&[u8], &str); 13] = [
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
        let values = required.iter().map(|(_, v)| v.len()).sum::<usize>()
            + self.path.len()
            + request_headers.len_hint()
            + response_headers.len_hint();
        // Room for every value escaped at two bytes a byte (bodies and header maps are
        // escape-dense): the escaper then never grows the buffer mid-record, which copied
        // everything written so far.
        out.reserve(2 * values + 640);
        out.extend_from_slice(b"{\"path\":");
        push_json_str(out, &self.path);
        out.extend_from_slice(b",\"requestHeaders\":");
        request_headers.write_json_string(out);
        out.extend_from_slice(b",\"responseHeaders\":");
        response_headers.write_json_string(out);
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

/// A header-map field of [`AktoRecord`] (`requestHeaders`, `responseHeaders`): the JSON text of
/// an object, a string on the wire.
#[derive(Debug, Clone)]
pub enum HeadersField<'a> {
    /// The JSON text, as received (the ingest API) or built.
    Text(Cow<'a, str>),
    /// A map not serialized yet: [`AktoRecord::write_json`] writes it straight into the record.
    Map(HeaderMap<'a>),
}

impl HeadersField<'_> {
    /// The JSON text.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            HeadersField::Text(t) => Cow::Borrowed(t),
            HeadersField::Map(m) => Cow::Owned(m.to_json()),
        }
    }
}

impl HeaderMapJson for HeadersField<'_> {
    /// Bytes of the JSON text, before escaping (exact for text, close for a map).
    fn len_hint(&self) -> usize {
        match self {
            HeadersField::Text(t) => t.len(),
            HeadersField::Map(m) => m.text_len(),
        }
    }

    /// The JSON text as a JSON string literal.
    fn write_json_string(&self, out: &mut Vec<u8>) {
        match self {
            HeadersField::Text(t) => push_json_str(out, t),
            HeadersField::Map(m) => m.write_json_string(out),
        }
    }
}

impl Default for HeadersField<'_> {
    fn default() -> Self {
        HeadersField::Text(Cow::Borrowed(""))
    }
}

/// Equal when the texts are, whichever way each is held.
impl PartialEq for HeadersField<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for HeadersField<'_> {}

impl From<String> for HeadersField<'_> {
    fn from(text: String) -> Self {
        HeadersField::Text(Cow::Owned(text))
    }
}

impl<'a> From<&'a str> for HeadersField<'a> {
    fn from(text: &'a str) -> Self {
        HeadersField::Text(Cow::Borrowed(text))
    }
}

impl<'a> From<Cow<'a, str>> for HeadersField<'a> {
    fn from(text: Cow<'a, str>) -> Self {
        HeadersField::Text(text)
    }
}

impl<'a> From<HeaderMap<'a>> for HeadersField<'a> {
    fn from(map: HeaderMap<'a>) -> Self {
        HeadersField::Map(map)
    }
}

impl Serialize for HeadersField<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

/// A string, borrowed from the input when it has no escapes (as `#[serde(borrow)]` does for
/// `Cow<str>`).
impl<'de: 'a, 'a> Deserialize<'de> for HeadersField<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> serde::de::Visitor<'de> for Text {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        deserializer.deserialize_str(Text).map(HeadersField::Text)
    }
}

/// Builds the header-map string of a record: a JSON object with one value per name (see
/// [`HeaderMap`]).
pub fn headers_json<'a, I>(headers: I, host: Option<&'a str>) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    HeaderMap::new(headers, host).to_json()
}

/// A record's header map: a JSON object with one value per name, serialized *into* a string
/// field of the record.
///
/// Repeated headers are joined with `", "` (RFC 9110 §5.3 list semantics) instead of Go's
/// last-value-wins, so nothing is lost; the original-case name of the first occurrence is kept.
/// When `host` is given, a lowercase `host` key carries it, as Akto's collectors add one.
///
/// Kept as fields until the record is written, so that [`AktoRecord::write_json`] writes the
/// map's JSON text escaped straight into the record: building the text first and escaping it
/// again (every quote of it) cost a string per map and a second pass over it.
#[derive(Debug, Clone, Default)]
pub struct HeaderMap<'a> {
    /// Names and values, merged; borrowed unless a repeated name joined values (rare).
    entries: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> HeaderMap<'a> {
    /// The map of `headers` (in order), with `host` as described on the type.
    pub fn new<I>(headers: I, host: Option<&'a str>) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut map = HeaderMap { entries: Vec::with_capacity(16) };
        for (name, value) in headers {
            map.add(name, Cow::Borrowed(value));
        }
        match host {
            Some(h) => map.with_host(h),
            None => map,
        }
    }

    /// Adds a field: a new name at the end, a repeated one joined to the first.
    pub fn add(&mut self, name: &'a str, value: Cow<'a, str>) {
        match self.entries.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some((_, v)) => {
                let v = v.to_mut();
                v.push_str(", ");
                v.push_str(&value);
            }
            None => self.entries.push((name, value)),
        }
    }

    /// Sets the lowercase `host` key: the exact key `host` is given this value where it is,
    /// or the key is added at the end (an original `Host` stays as it was sent).
    pub fn with_host(mut self, host: impl Into<Cow<'a, str>>) -> Self {
        let host = host.into();
        match self.entries.iter_mut().find(|(n, _)| *n == "host") {
            Some((_, v)) => *v = host,
            None => self.entries.push(("host", host)),
        }
        self
    }

    /// Bytes of the JSON text, before any escape (for sizing buffers).
    fn text_len(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 2
    }

    /// The JSON text of the map.
    pub fn to_json(&self) -> String {
        let mut buf = Vec::with_capacity(self.text_len() + 16);
        buf.push(b'{');
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_entry::<false>(&mut buf, k, v);
        }
        buf.push(b'}');
        // JSON escaping writes valid UTF-8.
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Appends the JSON text of the map as a JSON string literal: the same bytes as
    /// `push_json_str(out, &self.to_json())`, without the text in between.
    fn write_json_string(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"{");
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_entry::<true>(out, k, v);
        }
        out.extend_from_slice(b"}\"");
    }
}

/// Appends the map entry `"name":"value"` of a header map's JSON text: as it is, or with
/// `IN_STRING` escaped inside the string literal that carries the text in a record.
#[inline]
fn write_entry<const IN_STRING: bool>(out: &mut Vec<u8>, name: &str, value: &str) {
    // Names and values are short and nearly always need no escape: a byte check and straight
    // copies cost a third of calls into the general escaper. Plain text escapes to itself, so
    // only the entry's own quotes need escaping inside a string.
    if plain(name.as_bytes()) & plain(value.as_bytes()) {
        let (quote, colon): (&[u8], &[u8]) = if IN_STRING { (b"\\\"", b"\\\":\\\"") } else { (b"\"", b"\":\"") };
        out.reserve(name.len() + value.len() + 2 * quote.len() + colon.len());
        out.extend_from_slice(quote);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(colon);
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(quote);
    } else if IN_STRING {
        // Escaped twice: as JSON text, then that text inside the string (rare). JSON escaping
        // writes valid UTF-8, so the check cannot fail.
        let mut text = Vec::with_capacity(2 * (name.len() + value.len()) + 8);
        push_json_str(&mut text, name);
        text.push(b':');
        push_json_str(&mut text, value);
        escape::push_json_str_contents(out, std::str::from_utf8(&text).unwrap_or_default());
    } else {
        push_json_str(out, name);
        out.push(b':');
        push_json_str(out, value);
    }
}

/// Header fields in wire order, not merged: a header-map field written straight from a
/// producer's own fields (the same bytes as [`HeaderMap::new`]`(fields, host)` in a record).
///
/// Names nearly never repeat in a message, so the map is not built: the fields are written from
/// the iterator as they come, and each name is looked up in a 256-bit set of short signatures of
/// the names before it (compared in full only when its signature's bit is set). When a name
/// does repeat, what was written of the map is taken back and the map is built, to join the
/// values. Building the map cost two allocations and a search of it per field on every record
/// of the replay.
#[derive(Debug, Clone)]
pub struct HeaderFields<'a, I> {
    fields: I,
    host: Option<&'a str>,
    len_hint: usize,
}

impl<'a, I> HeaderFields<'a, I>
where
    I: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    /// `fields` in order; `host` as [`HeaderMap::new`] takes it; `len_hint`: the bytes of the
    /// names and values, about (for sizing buffers only).
    pub fn new(fields: I, host: Option<&'a str>, len_hint: usize) -> Self {
        HeaderFields { fields, host, len_hint }
    }

    /// Writes the map without joining values; `false` (with `out` as it was) when a name
    /// repeats.
    fn write_distinct(&self, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        // Bit of a name in the set: its length and first and last bytes with the ASCII case
        // bit set, mixed. Different bits are different names.
        let bit = |n: &str| {
            let b = n.as_bytes();
            let (first, last) = (b.first().map_or(0, |c| c | 0x20), b.last().map_or(0, |c| c | 0x20));
            let mixed = (b.len() as u32).wrapping_mul(0x9e37_79b9) ^ u32::from(first) << 8 ^ u32::from(last);
            (mixed.wrapping_mul(0x85eb_ca6b) >> 24) as usize
        };
        let mut seen = [0u64; 4];
        out.extend_from_slice(b"\"{");
        // `with_host`: the key spelled exactly `host` takes the given value; without one, the
        // key is added at the end.
        let mut host_written = self.host.is_none();
        for (i, (name, value)) in self.fields.clone().enumerate() {
            let b = bit(name);
            let (word, mask) = (b / 64, 1u64 << (b % 64));
            if seen[word] & mask != 0 && self.fields.clone().take(i).any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                out.truncate(start);
                return false;
            }
            seen[word] |= mask;
            if i > 0 {
                out.push(b',');
            }
            let value = match self.host {
                Some(h) if name == "host" => {
                    host_written = true;
                    h
                }
                _ => value,
            };
            write_entry::<true>(out, name, value);
        }
        if let (false, Some(h)) = (host_written, self.host) {
            if out.len() > start + 2 {
                out.push(b',');
            }
            write_entry::<true>(out, "host", h);
        }
        out.extend_from_slice(b"}\"");
        true
    }
}

impl<'a, I> HeaderMapJson for HeaderFields<'a, I>
where
    I: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    fn write_json_string(&self, out: &mut Vec<u8>) {
        if !self.write_distinct(out) {
            HeaderMap::new(self.fields.clone(), self.host).write_json_string(out);
        }
    }

    fn len_hint(&self) -> usize {
        self.len_hint
    }
}

/// Formats `addr:port` the way Akto's collectors do (`[v6]:port` for IPv6): the same text as
/// `SocketAddr`'s `Display` (tested), written directly (the formatter's padding machinery cost
/// ~1,800 instructions per address, twice per record).
pub fn socket_addr_string(addr: std::net::IpAddr, port: u16) -> String {
    let mut s = String::with_capacity(48);
    push_socket_addr(&mut s, addr, port);
    s
}

/// Appends the text of [`socket_addr_string`] to `s`.
pub fn push_socket_addr(s: &mut String, addr: std::net::IpAddr, port: u16) {
    match addr {
        std::net::IpAddr::V4(a) => push_ipv4(s, a),
        std::net::IpAddr::V6(a) => {
            s.push('[');
            push_ipv6(s, a);
            s.push(']');
        }
    }
    s.push(':');
    s.push_str(itoa::Buffer::new().format(port));
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
        // Every byte at every position of strings up to three words long (the word loop) and
        // up to four blocks and a bit (the block loop and its overlapping last block), among
        // plain bytes.
        for len in 1..=70 {
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
    fn header_map_written_into_a_record_is_its_text_as_a_string() {
        let cases: [&[(&str, &str)]; 5] = [
            &[],
            &[("Host", "a"), ("host", "b"), ("X", "")],
            &[("X-Q", "a\"b\\c\n\u{1}"), ("", "é😀\u{7f}")],
            &[("na\"me", "v"), ("Y", "\u{1f}\\\"")],
            &[("Accept", "a"), ("ACCEPT", "b\"")],
        ];
        for fields in cases {
            for host in [None, Some("h\"ost"), Some("plain")] {
                let map = HeaderMap::new(fields.iter().copied(), host);
                let mut direct = Vec::new();
                HeadersField::Map(map.clone()).write_json_string(&mut direct);
                let mut reference = Vec::new();
                push_json_str(&mut reference, &map.to_json());
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&reference),
                    "{fields:?} {host:?}"
                );
                // And the text is the JSON object serde reads back.
                let v: serde_json::Value = serde_json::from_str(&map.to_json()).unwrap_or_default();
                assert!(v.is_object(), "{fields:?}");
            }
        }
    }

    #[test]
    fn header_fields_take_the_map_back_when_a_name_repeats() {
        let cases: [&[(&str, &str)]; 7] = [
            &[],
            &[("host", "a")],
            &[("Host", "a"), ("X", "1")],
            &[("X", "1"), ("host", "old"), ("Y", "2")],
            &[("Accept", "a"), ("X", "1"), ("ACCEPT", "b")],
            &[("host", "a"), ("HOST", "b")],
            &[("hoxt", "1"), ("host", "2"), ("HOXT", "3")],
        ];
        for fields in cases {
            for host in [None, Some("h.example"), Some("")] {
                let mut want = b"{".to_vec();
                HeaderMap::new(fields.iter().copied(), host).write_json_string(&mut want);
                let mut got = b"{".to_vec();
                HeaderFields::new(fields.iter().copied(), host, 0).write_json_string(&mut got);
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{fields:?} {host:?}");
            }
        }
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
                path: a.clone().into(),
                // A map written straight into the record, with names that need escapes too
                // (leaked: names are borrowed, and the record is `'static` here).
                request_headers: {
                    let mut map = HeaderMap::new([("Host", "h")], None);
                    map.add("X", Cow::Owned(b.clone()));
                    map.add(Box::leak(c.clone().into_boxed_str()), Cow::Owned(d.clone()));
                    map.add("x", Cow::Owned(a.clone()));
                    map.with_host(e.clone()).into()
                },
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

    /// Names drawn from a few that share length and first and last letters (`Host`, `hoST`,
    /// `hxxt`, ...: the same bit in [`HeaderFields`]' set, some equal ignoring case, some not),
    /// with values that need escapes or not.
    fn any_fields() -> impl proptest::strategy::Strategy<Value = Vec<(String, String)>> {
        use proptest::prelude::*;
        let name = prop_oneof![
            "[hH][oO][sS][tT]",
            "h[a-z]{2}t",
            "[aA]ccept(-[eE]ncoding)?",
            "x-akto-tap-(truncated|anomalies)",
            "[a-zA-Z-]{0,12}",
            "[\"\\\x00-\x1fa-z]{1,6}",
        ];
        let value = prop_oneof!["[ -~]{0,40}", "[\"\\\x00-\x1f a-z{}é😀]{0,20}", "[a-z]{0,90}"];
        proptest::collection::vec((name, value), 0..24)
    }

    proptest::proptest! {
        #[test]
        fn header_fields_write_the_bytes_of_the_map(
            fields in any_fields(),
            host in proptest::option::of(proptest::prop_oneof!["[a-z.]{0,20}", "[\"\\\x00-\x1fa-z]{1,8}"]),
        ) {
            let pairs = || fields.iter().map(|(n, v)| (n.as_str(), v.as_str()));
            let host = host.as_deref();
            let mut want = b"kept".to_vec();
            HeaderMap::new(pairs(), host).write_json_string(&mut want);
            let mut got = b"kept".to_vec();
            HeaderFields::new(pairs(), host, 0).write_json_string(&mut got);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
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
