//! Message framing decisions (RFC 9112 §6.3): which of Content-Length, chunked or close
//! delimits a body, and how ambiguities are resolved and flagged.

use super::body::Framing;
use crate::exchange::{Anomaly, Flags, Headers};

/// Content-Length per RFC 9112 §6.3 ¶5: a list of identical values is that value; differing
/// values or a non-number make the length unrecoverable.
fn content_length(headers: &Headers, flags: &mut Flags) -> Option<Result<u64, Anomaly>> {
    let mut value: Option<u64> = None;
    let mut count = 0;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")) {
        for part in h.value.split(',') {
            let part = part.trim();
            count += 1;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Some(Err(Anomaly::BadContentLength));
            }
            if part.len() > 1 && part.starts_with('0') {
                flags.add(Anomaly::ContentLengthLeadingZeros);
            }
            // Values past i64::MAX are rejected as overflow, as common servers and Zeek do.
            let Some(n) = part.parse::<u64>().ok().filter(|n| i64::try_from(*n).is_ok()) else {
                return Some(Err(Anomaly::BadContentLength));
            };
            match value {
                Some(v) if v != n => return Some(Err(Anomaly::BadContentLength)),
                _ => value = Some(n),
            }
        }
    }
    if count > 1 {
        flags.add(Anomaly::DuplicateContentLength);
    }
    value.map(Ok)
}

/// Transfer codings, lower-cased, in order; `None` without the header.
fn transfer_codings(headers: &Headers) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = false;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding")) {
        seen = true;
        out.extend(h.value.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()));
    }
    seen.then_some(out)
}

pub(crate) fn request_framing(headers: &Headers, flags: &mut Flags) -> Result<Framing, Anomaly> {
    let cl = content_length(headers, flags);
    if let Some(te) = transfer_codings(headers) {
        if cl.is_some() {
            flags.add(Anomaly::ContentLengthAndChunked);
        }
        // RFC 9112 §6.3 ¶4: chunked must be final in a request, else the length is unknown.
        return if te.last().map(String::as_str) == Some("chunked") && te.iter().filter(|c| *c == "chunked").count() == 1
        {
            Ok(Framing::Chunked)
        } else {
            Err(Anomaly::ChunkedNotFinal)
        };
    }
    match cl {
        Some(Ok(n)) => {
            if n == 0 && headers.find("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
                flags.add(Anomaly::ExpectContinueWithoutBody);
            }
            Ok(Framing::Length(n))
        }
        Some(Err(a)) => Err(a),
        None => Ok(Framing::Empty),
    }
}

pub(crate) fn response_framing(
    method_head: bool,
    status: u16,
    headers: &Headers,
    anomalies: &mut Vec<Anomaly>,
) -> Framing {
    // RFC 9112 §6.3 ¶1: HEAD responses, 1xx, 204 and 304 have no body.
    if method_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::Empty;
    }
    let mut flags = Flags::default();
    let cl = content_length(headers, &mut flags);
    anomalies.extend(flags.anomalies);
    if let Some(te) = transfer_codings(headers) {
        if cl.is_some() {
            anomalies.push(Anomaly::ContentLengthAndChunked);
        }
        return if te.last().map(String::as_str) == Some("chunked") {
            Framing::Chunked
        } else {
            anomalies.push(Anomaly::ChunkedNotFinal);
            Framing::Close
        };
    }
    match cl {
        Some(Ok(n)) => Framing::Length(n),
        Some(Err(a)) => {
            anomalies.push(a);
            Framing::Close
        }
        None => Framing::Close,
    }
}
