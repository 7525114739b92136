//! Turning exchanges into output lines: the Akto record, or the full exchange for debugging and
//! conformance work.

pub mod jsonl;

use crate::workload::Workload;
use reassembly::exchange::ConnInfo;
use reassembly::HttpExchange;
use record::{AktoRecord, Direction, HeaderFields, HeaderMap, HeadersField, Source};
use std::borrow::Cow;
use std::net::IpAddr;

/// Output line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Akto's `akto.api.logs` record (DESIGN.md).
    Akto,
    /// Every field the engine reconstructed: connection, depth, headers in order, body
    /// lengths, interim statuses, flags and anomalies.
    Exchange,
    /// No lines: only the summary (a quick look at a capture, or measuring the engine).
    None,
}

/// What a record needs beyond the exchange.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// `akto_account_id`.
    pub account_id: String,
    /// `source`.
    pub source: Source,
    /// Bytes of each payload put in a record; longer payloads are cut and flagged.
    pub max_payload_bytes: usize,
    /// Addresses that are local to the observer (for `direction`); empty = unknown.
    pub local_addrs: Vec<IpAddr>,
    /// `daemonset_id`.
    pub daemonset_id: Option<String>,
    /// Extra tags merged into `tag`.
    pub tags: Vec<(String, String)>,
    /// `enable_graph`.
    pub enable_graph: bool,
    /// Who exchanges belong to (`process_id`, `process_name`, pod tags); disabled for replay
    /// and ingest. Live sinks look it up per exchange and pass it to [`to_record_with`].
    pub workload: crate::workload::Attributor,
}

impl Default for RecordOptions {
    fn default() -> Self {
        RecordOptions {
            account_id: "1000000".into(),
            source: Source::Pcap,
            max_payload_bytes: 1 << 20,
            local_addrs: Vec::new(),
            daemonset_id: None,
            tags: Vec::new(),
            enable_graph: false,
            workload: crate::workload::Attributor::disabled(),
        }
    }
}

/// Header injected into `requestHeaders`/`responseHeaders` when that side's payload is not whole
/// (cap or capture loss). Akto's own collectors flag sampled records the same way, with an
/// injected `x-akto-*` header, so the flag reaches the dashboard without a schema change.
pub const TRUNCATED_HEADER: &str = "x-akto-tap-truncated";
/// Header listing the framing anomalies of an exchange (comma-separated).
pub const ANOMALIES_HEADER: &str = "x-akto-tap-anomalies";

/// A payload as text: borrowed when it is valid UTF-8 (the common case, checked at SIMD speed
/// by simdutf8; std's check measured 3x its cost on bodies), converted lossily otherwise. A cut
/// in the middle of a UTF-8 sequence is backed off.
fn payload(data: &[u8], cap: usize) -> (Cow<'_, str>, bool) {
    let cut = data.len() > cap;
    let data = &data[..data.len().min(cap)];
    if let Ok(s) = simdutf8::basic::from_utf8(data) {
        return (Cow::Borrowed(s), cut);
    }
    // Not valid UTF-8: std's check says where it stops.
    match std::str::from_utf8(data) {
        Ok(s) => (Cow::Borrowed(s), cut),
        Err(e) if cut && e.error_len().is_none() => {
            (Cow::Borrowed(std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default()), cut)
        }
        Err(_) => (String::from_utf8_lossy(data), cut),
    }
}

fn direction(conn: &ConnInfo, local: &[IpAddr]) -> Option<Direction> {
    if local.contains(&conn.server.ip()) {
        Some(Direction::Inbound)
    } else if local.contains(&conn.client.ip()) {
        Some(Direction::Outbound)
    } else {
        None
    }
}

/// The `tag` value: the configured tags, then the workload's (`namespace`, `pod`, `node`,
/// `label.<key>`); a configured tag wins over a workload tag of the same name.
fn tag_json(configured: &[(String, String)], workload: Option<&Workload>) -> Option<String> {
    let mut map: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for (k, v) in workload.map(Workload::tags).unwrap_or_default().into_iter().chain(configured.iter().cloned()) {
        map.insert(k, serde_json::Value::String(v));
    }
    (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string())
}

/// Builds the Akto record of an exchange with its workload (`process_id`, `process_name`,
/// pod fields in `tag`).
pub fn to_record_with<'a>(
    ex: &'a HttpExchange,
    opts: &'a RecordOptions,
    workload: Option<&Workload>,
) -> AktoRecord<'a> {
    let mut texts = String::new();
    let spans = format_texts(ex, &mut texts);
    let texts = spans.map(|r| Cow::Owned(texts[r].to_owned()));
    let (mut record, maps) = build(ex, opts, workload, texts);
    let mut request = HeaderMap::new(request_fields(ex, maps.request_truncated, None), None);
    if let Some(a) = maps.anomalies {
        request.add(ANOMALIES_HEADER, Cow::Owned(a));
    }
    record.request_headers = match maps.host {
        Some(h) => request.with_host(h),
        None => request,
    }
    .into();
    record.response_headers = match &ex.response {
        Some(r) => HeaderMap::new(response_fields(r, maps.response_truncated), None).into(),
        None => NO_RESPONSE_HEADERS.into(),
    };
    record
}

/// Appends the Akto record of an exchange to `out`: the bytes of
/// `to_record_with(ex, opts, workload).write_json(out)`, with the record's short texts (addresses,
/// time, status) formatted into `scratch`, which the caller keeps from record to record, instead
/// of a string each (five allocations a record), and the header maps written straight from the
/// exchange's fields ([`record::HeaderFields`]) instead of built.
pub fn write_record(
    ex: &HttpExchange,
    opts: &RecordOptions,
    workload: Option<&Workload>,
    scratch: &mut String,
    out: &mut Vec<u8>,
) {
    let spans = format_texts(ex, scratch);
    let texts: &str = scratch;
    let (record, maps) = build(ex, opts, workload, spans.map(|r| Cow::Borrowed(&texts[r])));
    // Sizes for the record's buffer: names and values, and each entry's quotes, colon and comma.
    let hint = |h: &reassembly::Headers| h.text_len() + 6 * h.len() + 64;
    let request = HeaderFields::new(
        request_fields(ex, maps.request_truncated, maps.anomalies.as_deref()),
        maps.host,
        hint(&ex.request.headers),
    );
    match &ex.response {
        Some(r) => {
            let response = HeaderFields::new(response_fields(r, maps.response_truncated), None, hint(&r.headers));
            record.write_json_with(out, &request, &response);
        }
        None => record.write_json_with(out, &request, &HeadersField::from(NO_RESPONSE_HEADERS)),
    }
}

/// `responseHeaders` of an exchange without a response.
const NO_RESPONSE_HEADERS: &str = "{}";

/// Where the short texts lie in the text [`format_texts`] writes.
type TextSpans = [std::ops::Range<usize>; 5];

/// Writes the record's texts that the exchange does not hold as text into `buf` (cleared first),
/// back to back: `ip`, `destIp`, `time`, then the status line, whose first word is `statusCode`.
fn format_texts(ex: &HttpExchange, buf: &mut String) -> TextSpans {
    buf.clear();
    record::push_socket_addr(buf, ex.conn.client.ip(), ex.conn.client.port());
    let ip = 0..buf.len();
    record::push_socket_addr(buf, ex.conn.server.ip(), ex.conn.server.port());
    let dest = ip.end..buf.len();
    buf.push_str(itoa::Buffer::new().format(ex.request.ts.secs()));
    let time = dest.end..buf.len();
    let (code, status) = match &ex.response {
        Some(r) => {
            buf.push_str(itoa::Buffer::new().format(r.status));
            let code = time.end..buf.len();
            if !r.reason.is_empty() {
                buf.push(' ');
                buf.push_str(&r.reason);
            }
            (code, time.end..buf.len())
        }
        // No response: code 0 and no status line.
        None => {
            buf.push('0');
            (time.end..buf.len(), buf.len()..buf.len())
        }
    };
    [ip, dest, time, code, status]
}

/// What a record's header maps are made of besides the messages' fields.
struct MapParts<'a> {
    /// The request's payload is not whole: [`TRUNCATED_HEADER`] in `requestHeaders`.
    request_truncated: bool,
    /// [`ANOMALIES_HEADER`]'s value, when the exchange has anomalies.
    anomalies: Option<String>,
    /// The request's `Host`, as the lowercase `host` key.
    host: Option<&'a str>,
    /// The response's payload is not whole.
    response_truncated: bool,
}

/// `requestHeaders`' fields before merging: the request's, then the flags.
fn request_fields<'a>(
    ex: &'a HttpExchange,
    truncated: bool,
    anomalies: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
    ex.request
        .headers
        .iter()
        .map(|h| (h.name, h.value))
        .chain(truncated.then_some((TRUNCATED_HEADER, "true")))
        .chain(anomalies.map(|a| (ANOMALIES_HEADER, a)))
}

/// `responseHeaders`' fields before merging.
fn response_fields(r: &reassembly::Response, truncated: bool) -> impl Iterator<Item = (&str, &str)> + Clone {
    r.headers.iter().map(|h| (h.name, h.value)).chain(truncated.then_some((TRUNCATED_HEADER, "true")))
}

/// The record of an exchange but for its header maps (left empty), given its short texts (see
/// [`format_texts`]), and what the maps are made of.
fn build<'a>(
    ex: &'a HttpExchange,
    opts: &'a RecordOptions,
    workload: Option<&Workload>,
    [ip, dest_ip, time, status_code, status]: [Cow<'a, str>; 5],
) -> (AktoRecord<'a>, MapParts<'a>) {
    let (req_payload, req_cut) = payload(&ex.request.body.data, opts.max_payload_bytes);
    let anomalies = if ex.flags.anomalies.is_empty() {
        None
    } else {
        let names: Vec<String> = ex
            .flags
            .anomalies
            .iter()
            .filter_map(|a| serde_json::to_value(a).ok().and_then(|v| v.as_str().map(str::to_string)))
            .collect();
        (!names.is_empty()).then(|| names.join(","))
    };
    let (resp_payload, resp_truncated) = match &ex.response {
        Some(r) => {
            let (p, cut) = payload(&r.body.data, opts.max_payload_bytes);
            (p, cut || r.body.truncated)
        }
        None => (Cow::Borrowed(""), false),
    };
    let maps = MapParts {
        request_truncated: req_cut || ex.request.body.truncated,
        anomalies,
        host: ex.request_header("host"),
        response_truncated: resp_truncated,
    };
    let tag = tag_json(&opts.tags, workload);
    let record = AktoRecord {
        path: Cow::Borrowed(&ex.request.target),
        request_headers: HeadersField::default(),
        response_headers: HeadersField::default(),
        method: Cow::Borrowed(&ex.request.method),
        request_payload: req_payload,
        response_payload: resp_payload,
        ip,
        dest_ip,
        time,
        status_code,
        http_type: ex.request.version.protocol().into(),
        status,
        akto_account_id: Cow::Borrowed(&opts.account_id),
        // Not tunnelled nearly always: no string to build.
        akto_vxlan_id: if ex.conn.vni == 0 {
            "0".into()
        } else {
            itoa::Buffer::new().format(ex.conn.vni).to_owned().into()
        },
        is_pending: if ex.flags.pending { "true" } else { "false" }.into(),
        source: opts.source.as_str().into(),
        direction: direction(&ex.conn, &opts.local_addrs).map(|d| d.as_str().into()),
        process_id: workload.and_then(|w| w.pid).map(|p| Cow::Owned(p.to_string())),
        socket_id: None,
        process_name: workload.and_then(|w| w.process_name.clone()).map(Cow::Owned),
        daemonset_id: opts.daemonset_id.as_deref().map(Cow::Borrowed),
        enable_graph: if opts.enable_graph { "true" } else { "false" }.into(),
        tag: tag.map(Cow::Owned),
    };
    (record, maps)
}

fn headers_value(h: &reassembly::Headers) -> serde_json::Value {
    serde_json::Value::Array(h.iter().map(|h| serde_json::json!([h.name, h.value])).collect())
}

/// The full exchange as JSON (the `exchange` output format).
pub fn to_exchange_json(ex: &HttpExchange) -> serde_json::Value {
    let r = &ex.request;
    let response = ex.response.as_ref().map(|p| {
        serde_json::json!({
            "ts": p.ts.as_secs_f64(),
            "version": p.version.number(),
            "status": p.status,
            "reason": p.reason,
            "headers": headers_value(&p.headers),
            "body_len": p.body.decoded_len,
            "wire_len": p.body.wire_len,
            "body_truncated": p.body.truncated,
            "interim": p.interim,
            "sse_events": p.body.sse.as_ref().map(|e| e.len()),
        })
    });
    serde_json::json!({
        "conn": {"client": ex.conn.client.to_string(), "server": ex.conn.server.to_string(), "vxlan_id": ex.conn.vni},
        "depth": ex.depth,
        "request": {
            "ts": r.ts.as_secs_f64(),
            "method": r.method,
            "target": r.target,
            "version": r.version.number(),
            "headers": headers_value(&r.headers),
            "body_len": r.body.decoded_len,
            "wire_len": r.body.wire_len,
            "body_truncated": r.body.truncated,
        },
        "response": response,
        "flags": {
            "pending": ex.flags.pending,
            "gap": ex.flags.gap,
            "truncated": ex.flags.truncated,
            "upgraded": ex.flags.upgraded,
            "decoded_with": ex.flags.decoded_with,
            "anomalies": ex.flags.anomalies,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::ex_full;
    use crate::workload::PodMeta;
    use reassembly::Timestamp;
    use std::sync::Arc;

    /// `write_record` writes the bytes of `to_record_with(..).write_json`, whatever the
    /// exchange: IPv4 and IPv6, with and without a response, with an empty and a long reason, a
    /// truncated payload, and one scratch buffer carried from record to record.
    #[test]
    fn write_record_equals_the_record() {
        let mut cases = vec![
            ex_full("GET", "/a?b=1", Some("shop.example"), "10.0.0.1:40000", "10.0.0.2:8080"),
            ex_full("POST", "/", None, "[fd00::1]:5", "[2001:db8::7]:443"),
            ex_full("PUT", "/x", Some("h"), "[::ffff:10.0.0.9]:1", "192.168.1.1:65535"),
        ];
        let mut no_response = ex_full("GET", "/pending", Some("h"), "1.2.3.4:1", "5.6.7.8:80");
        no_response.response = None;
        no_response.request.ts = Timestamp(1_717_405_200_000_000);
        cases.push(no_response);
        let mut odd = ex_full("GET", "/odd", Some("h"), "1.2.3.4:1", "5.6.7.8:80");
        if let Some(r) = odd.response.as_mut() {
            r.status = 599;
            r.reason = "Ünusual \"reason\" ".repeat(40);
        }
        odd.conn.vni = 77;
        cases.push(odd);
        let mut bare = ex_full("GET", "/bare", Some("h"), "1.2.3.4:1", "5.6.7.8:80");
        if let Some(r) = bare.response.as_mut() {
            r.status = 204;
            r.reason.clear();
        }
        cases.push(bare);
        // Header maps: a repeated name (joined), a lowercase `host`, a field that needs escapes,
        // anomalies, a truncated response, and a request that sends the tool's own flag.
        let mut fields = ex_full("POST", "/m", None, "1.2.3.4:1", "5.6.7.8:80");
        fields.request.headers =
            [("host", "a.example"), ("Accept", "x"), ("X-Q", "a\"b\tc"), ("accept", "y")].into_iter().collect();
        fields.flags.anomalies = vec![reassembly::Anomaly::DuplicateContentLength, reassembly::Anomaly::BadChunkSize];
        if let Some(r) = fields.response.as_mut() {
            r.headers = [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("Content-Type", "application/json")]
                .into_iter()
                .collect();
            r.body.truncated = true;
        }
        cases.push(fields);
        let mut flagged = ex_full("GET", "/f", Some("Host.Example"), "1.2.3.4:1", "5.6.7.8:80");
        flagged.request.headers.push(TRUNCATED_HEADER, "sent");
        flagged.request.body.truncated = true;
        flagged.flags.anomalies = vec![reassembly::Anomaly::BadChunkSize];
        cases.push(flagged);
        let opts = RecordOptions { max_payload_bytes: 4, ..RecordOptions::default() };
        let mut scratch = String::new();
        for ex in &cases {
            for opts in [&RecordOptions::default(), &opts] {
                let mut want = Vec::new();
                to_record_with(ex, opts, None).write_json(&mut want);
                let mut got = b"kept".to_vec();
                write_record(ex, opts, None, &mut scratch, &mut got);
                assert_eq!(
                    String::from_utf8_lossy(&got[4..]),
                    String::from_utf8_lossy(&want),
                    "{} {}",
                    ex.request.method,
                    ex.request.target
                );
            }
        }
        // The texts are those `SocketAddr` and the status line give.
        let v: serde_json::Value = serde_json::from_slice(&{
            let mut out = Vec::new();
            write_record(&cases[1], &RecordOptions::default(), None, &mut scratch, &mut out);
            out
        })
        .expect("json");
        assert_eq!((v["ip"].as_str(), v["destIp"].as_str()), (Some("[fd00::1]:5"), Some("[2001:db8::7]:443")));
        assert_eq!((v["statusCode"].as_str(), v["status"].as_str()), (Some("200"), Some("200 OK")));
        let mut out = Vec::new();
        write_record(&cases[3], &RecordOptions::default(), None, &mut scratch, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!((v["statusCode"].as_str(), v["status"].as_str()), (Some("0"), Some("")));
        assert_eq!(v["time"].as_str(), Some("1717405200"));
    }

    #[test]
    fn workload_tags_merge_with_configured_tags() {
        assert_eq!(tag_json(&[], None), None);
        let bare = Workload { pid: Some(7), process_name: Some("python3".into()), pod: None };
        assert_eq!(tag_json(&[], Some(&bare)), None, "a process alone adds no tag");
        let pod = PodMeta {
            namespace: "shop".into(),
            name: "web-0".into(),
            uid: "u".into(),
            labels: [("app".to_string(), "web".to_string())].into(),
            node: Some("n1".into()),
        };
        let w = Workload { pod: Some(Arc::new(pod)), ..bare };
        let configured = vec![("env".to_string(), "prod".to_string()), ("node".to_string(), "pinned".to_string())];
        let tag: serde_json::Value =
            serde_json::from_str(&tag_json(&configured, Some(&w)).expect("tag")).expect("json");
        assert_eq!(
            tag,
            serde_json::json!({"namespace": "shop", "pod": "web-0", "node": "pinned", "label.app": "web", "env": "prod"}),
            "a configured tag wins over the workload's"
        );
    }
}
