//! Zeek `http.log` baselines: parsing (TSV with `#fields`, `zeek-cut -m` output, JSON lines) and
//! matching baseline rows to reconstructed exchanges.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::exchange::{truncate, Exchange};

/// One cell of a Zeek log row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The log has no such column (e.g. a `zeek-cut` baseline that kept other columns).
    Absent,
    /// `-`: the column exists but the value was never set.
    Unset,
    /// `(empty)`: an empty string/container.
    Empty,
    /// The value, with Zeek's `\xHH` escapes decoded back to bytes.
    Value(Vec<u8>),
}

impl Field {
    pub fn as_text(&self) -> Option<String> {
        match self {
            Field::Value(v) => Some(String::from_utf8_lossy(v).into_owned()),
            Field::Empty => Some(String::new()),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Field::Value(v) => std::str::from_utf8(v).ok()?.trim().parse().ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ZeekRow {
    /// 1-based line number in the baseline file.
    pub line: usize,
    pub values: BTreeMap<String, Field>,
    /// JSON rows omit unset fields, so a missing key there means Unset, not Absent.
    pub missing_is_unset: bool,
}

impl ZeekRow {
    pub fn get(&self, col: &str) -> Field {
        match self.values.get(col) {
            Some(f) => f.clone(),
            None if self.missing_is_unset => Field::Unset,
            None => Field::Absent,
        }
    }

    /// `method uri -> status (req N, resp M)` for listings.
    pub fn describe(&self) -> String {
        let show = |f: Field| match f {
            Field::Absent => "·".to_string(),
            Field::Unset => "-".to_string(),
            Field::Empty => "\"\"".to_string(),
            Field::Value(v) => truncate(&String::from_utf8_lossy(&v), 70),
        };
        format!(
            "{} {} -> {} (req {}, resp {}, depth {})",
            show(self.get("method")),
            show(self.get("uri")),
            show(self.get("status_code")),
            show(self.get("request_body_len")),
            show(self.get("response_body_len")),
            show(self.get("trans_depth")),
        )
    }

    /// A row that records neither a request nor a response: every one of method, URI, status
    /// and version that the log has is unset and no body byte was seen. Zeek writes such rows for
    /// a transaction it opened but never saw data for (e.g. the phantom second transaction after
    /// an HTTP/0.9 reply that ends with the connection); there is no exchange to match them.
    pub fn is_empty_row(&self) -> bool {
        let cols = ["method", "uri", "status_code", "version"];
        let present: Vec<Field> = cols.iter().map(|c| self.get(c)).filter(|f| *f != Field::Absent).collect();
        !present.is_empty()
            && present.iter().all(|f| *f == Field::Unset)
            && ["request_body_len", "response_body_len"].iter().all(|c| self.get(c).as_u64().unwrap_or(0) == 0)
    }

    /// True when the row has at least one column the suite compares.
    pub fn has_comparable_column(&self) -> bool {
        COMPARED.iter().any(|c| self.get(c) != Field::Absent)
    }
}

/// Columns that take part in matching or body comparison.
pub const COMPARED: [&str; 5] = ["method", "uri", "status_code", "request_body_len", "response_body_len"];

#[derive(Debug, Clone)]
pub struct ZeekLog {
    pub format: &'static str,
    pub columns: Vec<String>,
    pub rows: Vec<ZeekRow>,
}

/// Decodes Zeek's log escaping: `\xHH` becomes the byte HH and `\\` a backslash; anything else
/// is kept as is.
pub fn zeek_unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(byte) = hex {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == b'\\' {
            out.push(b'\\');
            i += 2;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn cell(raw: &str, unset: &str, empty: &str) -> Field {
    if raw == unset {
        Field::Unset
    } else if raw == empty {
        Field::Empty
    } else {
        Field::Value(zeek_unescape(raw))
    }
}

fn json_cell(v: &Value) -> Field {
    match v {
        Value::Null => Field::Unset,
        Value::String(s) if s.is_empty() => Field::Empty,
        Value::String(s) => Field::Value(zeek_unescape(s)),
        Value::Number(n) => Field::Value(n.to_string().into_bytes()),
        Value::Bool(b) => Field::Value(if *b { b"T".to_vec() } else { b"F".to_vec() }),
        Value::Array(a) if a.is_empty() => Field::Empty,
        Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            Field::Value(zeek_unescape(&parts.join(",")))
        }
        Value::Object(_) => Field::Value(v.to_string().into_bytes()),
    }
}

/// Parses a Zeek log baseline in any of the three shapes found in the corpus:
/// * full ASCII log: `#separator`, `#unset_field`, `#fields` header lines, then TSV rows;
/// * `zeek-cut -m` output (`*.cut` and some plain `http.log` baselines): the first non-`#` line
///   holds the column names, tab-separated;
/// * JSON lines (`LogAscii::use_json=T`).
///
/// The `### BTest baseline data …` line that btest prepends is ignored.
pub fn parse_log(text: &str) -> Result<ZeekLog, String> {
    let mut sep = "\t".to_string();
    let mut unset = "-".to_string();
    let mut empty = "(empty)".to_string();
    let mut columns: Option<Vec<String>> = None;
    let mut header_from_fields = false;
    let mut rows = Vec::new();
    let mut format: Option<&'static str> = None;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            if rest.starts_with("##") {
                continue;
            }
            let (key, val) = rest.split_once(['\t', ' ']).unwrap_or((rest, ""));
            match key {
                "separator" => {
                    let v = zeek_unescape(val.trim());
                    sep = String::from_utf8_lossy(&v).into_owned();
                }
                "unset_field" => unset = val.to_string(),
                "empty_field" => empty = val.to_string(),
                "fields" => {
                    columns = Some(val.split(sep.as_str()).map(str::to_string).collect());
                    header_from_fields = true;
                    format = Some("tsv");
                }
                _ => {}
            }
            continue;
        }
        if format.is_none() && line.trim_start().starts_with('{') {
            format = Some("json");
        }
        if format == Some("json") {
            // btest masks timestamps as a bare XXXXXXXXXX.XXXXXX, which is not JSON.
            let line = line.replace("XXXXXXXXXX.XXXXXX", "0");
            let v: Value = serde_json::from_str(&line).map_err(|e| format!("line {lineno}: bad JSON row: {e}"))?;
            let obj = v.as_object().ok_or_else(|| format!("line {lineno}: JSON row is not an object"))?;
            let values = obj.iter().map(|(k, v)| (k.clone(), json_cell(v))).collect();
            rows.push(ZeekRow { line: lineno, values, missing_is_unset: true });
            continue;
        }
        let Some(cols) = &columns else {
            // zeek-cut -m: the first data-looking line names the columns.
            let names: Vec<String> = line.split('\t').map(str::to_string).collect();
            let plausible =
                names.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.".contains(c)));
            if !plausible {
                return Err(format!("line {lineno}: no #fields header and first line is not a column list"));
            }
            columns = Some(names);
            format = Some("cut");
            continue;
        };
        let cells: Vec<&str> = line.split(sep.as_str()).collect();
        if cells.len() != cols.len() {
            return Err(format!(
                "line {lineno}: {} cells for {} columns{}",
                cells.len(),
                cols.len(),
                if header_from_fields { "" } else { " (cut format)" }
            ));
        }
        let values = cols.iter().cloned().zip(cells.iter().map(|c| cell(c, &unset, &empty))).collect();
        rows.push(ZeekRow { line: lineno, values, missing_is_unset: false });
    }
    let format = format.ok_or_else(|| "empty log (no header, no rows)".to_string())?;
    let columns = match format {
        "json" => {
            let mut set: Vec<String> = Vec::new();
            for r in &rows {
                for k in r.values.keys() {
                    if !set.contains(k) {
                        set.push(k.clone());
                    }
                }
            }
            set
        }
        _ => columns.unwrap_or_default(),
    };
    Ok(ZeekLog { format, columns, rows })
}

/// Zeek's `unescape_URI` (src/analyzer/protocol/http/HTTP.cc): the `uri` column of http.log is the
/// request-target with `%XX` decoded. `%` at the end, or with a single character after it, is
/// kept as is; `%%` drops the first `%`; `%uXXXX` gives one byte for `%u00XX` and two otherwise;
/// any other `%` sequence is kept.
pub fn zeek_unescape_uri(uri: &[u8]) -> Vec<u8> {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let mut out = Vec::with_capacity(uri.len());
    let mut i = 0;
    while i < uri.len() {
        if uri[i] != b'%' {
            out.push(uri[i]);
            i += 1;
            continue;
        }
        let rest = &uri[i + 1..];
        match rest {
            [] => {
                out.push(b'%');
                i += 1;
            }
            [c] => {
                out.extend_from_slice(&[b'%', *c]);
                i += 2;
            }
            [b'%', ..] => i += 1, // ignore the first '%'
            [a, b, ..] if hex(*a).is_some() && hex(*b).is_some() => {
                out.push((hex(*a).unwrap_or(0) << 4) | hex(*b).unwrap_or(0));
                i += 3;
            }
            [b'u', a, b, c, d, ..] if [a, b, c, d].iter().all(|x| hex(**x).is_some()) => {
                let hi = (hex(*a).unwrap_or(0) << 4) | hex(*b).unwrap_or(0);
                let lo = (hex(*c).unwrap_or(0) << 4) | hex(*d).unwrap_or(0);
                if hi != 0 {
                    out.push(hi);
                }
                out.push(lo);
                i += 6;
            }
            [c, ..] => {
                out.extend_from_slice(&[b'%', *c]);
                i += 2;
            }
        }
    }
    out
}

/// Compares Zeek's `uri` (percent-decoded, non-printable bytes escaped in the log) with the
/// request-target the binary printed (as sent). The target is percent-decoded the way Zeek does
/// before comparing; bytes that are not UTF-8 may come out of the binary replaced (U+FFFD) or
/// `\xHH`-escaped, so those renderings are accepted too.
pub fn uri_eq(zeek: &[u8], target: &str) -> bool {
    let candidates = [target.as_bytes().to_vec(), zeek_unescape(target)];
    candidates.iter().any(|t| {
        let decoded = zeek_unescape_uri(t);
        decoded == zeek || *t == zeek || String::from_utf8_lossy(zeek) == String::from_utf8_lossy(&decoded)
    })
}

fn method_eq(zeek: &[u8], method: &str) -> bool {
    // Zeek upper-cases lower-case request keywords (`get / http/1.1` is logged as GET).
    String::from_utf8_lossy(zeek).eq_ignore_ascii_case(method)
}

/// For a row whose method is unset (a response Zeek saw without a request it could parse, e.g.
/// `OPTIONSHTTP/1.1`): an exchange without a request, or whose request line yielded no target,
/// stands for the same transaction.
fn unparsed_request(ex: &Exchange) -> bool {
    ex.has_no_request() || ex.target().is_empty()
}

/// Whether the exchange agrees with the row on method, URI and status, each compared only when
/// the row has a value for it. A row with the method column present but unset only matches an
/// exchange without a parsed request line (see `unparsed_request`).
pub fn key_matches(row: &ZeekRow, ex: &Exchange) -> bool {
    match row.get("method") {
        Field::Absent => {}
        Field::Unset | Field::Empty => {
            if !unparsed_request(ex) {
                return false;
            }
        }
        Field::Value(m) => {
            if !method_eq(&m, ex.method()) {
                return false;
            }
        }
    }
    match row.get("uri") {
        Field::Absent | Field::Unset => {}
        Field::Empty => {
            if !ex.target().is_empty() {
                return false;
            }
        }
        Field::Value(u) => {
            if !uri_eq(&u, ex.target()) {
                return false;
            }
        }
    }
    match row.get("status_code").as_u64() {
        None => true,
        Some(s) => ex.status() == Some(s),
    }
}

/// (column, expected, produced) for each body length the row states. A missing request or
/// response counts as a zero-length body, as Zeek logs it.
pub fn body_lengths(row: &ZeekRow, ex: Option<&Exchange>) -> Vec<(&'static str, u64, Option<u64>)> {
    let mut out = Vec::new();
    if let Some(exp) = row.get("request_body_len").as_u64() {
        let got = ex.map(|e| e.request.as_ref().map_or(Some(0), |r| r.body_len));
        out.push(("request_body_len", exp, got.flatten()));
    }
    if let Some(exp) = row.get("response_body_len").as_u64() {
        let got = ex.map(|e| e.response.as_ref().map_or(Some(0), |r| r.body_len));
        out.push(("response_body_len", exp, got.flatten()));
    }
    out
}

fn bodies_equal(row: &ZeekRow, ex: &Exchange) -> usize {
    body_lengths(row, Some(ex)).iter().filter(|(_, e, g)| Some(*e) == *g).count()
}

/// How well the exchange's connection and depth agree with the row (used only to choose among
/// several exchanges that match on method/URI/status).
fn affinity(row: &ZeekRow, ex: &Exchange) -> usize {
    let mut score = 0;
    let ip = |col: &str| row.get(col).as_text().and_then(|t| t.parse::<IpAddr>().ok());
    let port = |col: &str| row.get(col).as_u64();
    if let Some(c) = ex.client {
        score +=
            usize::from(ip("id.orig_h") == Some(c.ip())) + usize::from(port("id.orig_p") == Some(u64::from(c.port())));
    }
    if let Some(s) = ex.server {
        score +=
            usize::from(ip("id.resp_h") == Some(s.ip())) + usize::from(port("id.resp_p") == Some(u64::from(s.port())));
    }
    if let (Some(d), Some(e)) = (row.get("trans_depth").as_u64(), ex.depth) {
        score += usize::from(d == e);
    }
    score
}

#[derive(Debug, Clone)]
pub struct RowOutcome {
    pub row: ZeekRow,
    /// Index into the exchanges of the trace.
    pub matched: Option<usize>,
    /// (column, expected, produced) — produced is None when unmatched.
    pub bodies: Vec<(&'static str, u64, Option<u64>)>,
    /// Some(true/false) when the row has trans_depth and was matched.
    pub depth_equal: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct MatchResult {
    pub rows: Vec<RowOutcome>,
    /// Exchanges that no row claimed.
    pub extras: Vec<usize>,
}

/// Assigns rows to exchanges. Pass 1 takes, for each row in order, the first unclaimed exchange
/// that agrees on the key *and* on every stated body length (so that a looser match can't steal
/// the exact one from a later row); pass 2 gives the remaining rows any unclaimed exchange that
/// agrees on the key. Among equal candidates the one on the same connection and depth wins, then
/// the earliest.
pub fn match_rows(rows: &[ZeekRow], exchanges: &[Exchange]) -> MatchResult {
    let mut claimed = vec![false; exchanges.len()];
    let mut assign: Vec<Option<usize>> = vec![None; rows.len()];
    for exact in [true, false] {
        for (ri, row) in rows.iter().enumerate() {
            if assign[ri].is_some() {
                continue;
            }
            let want_bodies = body_lengths(row, None).len();
            let mut best: Option<(usize, usize)> = None;
            for (ei, ex) in exchanges.iter().enumerate() {
                if claimed[ei] || !key_matches(row, ex) {
                    continue;
                }
                let beq = bodies_equal(row, ex);
                if exact && beq != want_bodies {
                    continue;
                }
                let score = beq * 10 + affinity(row, ex);
                if best.is_none_or(|(_, s)| score > s) {
                    best = Some((ei, score));
                }
            }
            if let Some((ei, _)) = best {
                claimed[ei] = true;
                assign[ri] = Some(ei);
            }
        }
    }
    let rows_out = rows
        .iter()
        .zip(&assign)
        .map(|(row, m)| {
            let ex = m.map(|i| &exchanges[i]);
            RowOutcome {
                row: row.clone(),
                matched: *m,
                bodies: body_lengths(row, ex),
                depth_equal: match (row.get("trans_depth").as_u64(), ex) {
                    (Some(d), Some(e)) => Some(e.depth == Some(d)),
                    _ => None,
                },
            }
        })
        .collect();
    let extras = (0..exchanges.len()).filter(|i| !claimed[*i]).collect();
    MatchResult { rows: rows_out, extras }
}

/// For an unmatched row: the exchange that agrees on most of method/URI/status, with the fields
/// that differ.
pub fn best_candidate(row: &ZeekRow, exchanges: &[Exchange]) -> Option<(usize, Vec<&'static str>)> {
    let mut best: Option<(usize, usize, Vec<&'static str>)> = None;
    for (i, ex) in exchanges.iter().enumerate() {
        let mut differ = Vec::new();
        let m = match row.get("method") {
            Field::Value(m) => method_eq(&m, ex.method()),
            Field::Unset | Field::Empty => unparsed_request(ex),
            Field::Absent => true,
        };
        if !m {
            differ.push("method");
        }
        let u = match row.get("uri") {
            Field::Value(u) => uri_eq(&u, ex.target()),
            Field::Empty => ex.target().is_empty(),
            _ => true,
        };
        if !u {
            differ.push("uri");
        }
        if let Some(s) = row.get("status_code").as_u64() {
            if ex.status() != Some(s) {
                differ.push("status");
            }
        }
        let score = 3 - differ.len() + affinity(row, ex);
        if best.as_ref().is_none_or(|(_, s, _)| score > *s) {
            best = Some((i, score, differ));
        }
    }
    best.map(|(i, _, d)| (i, d))
}

/// Two baselines of the same trace describe the same rows when they have the same number of rows
/// and every compared column that both carry agrees (a `zeek-cut` baseline that kept fewer
/// columns is compatible with the full log it was cut from).
pub fn same_rows(a: &[ZeekRow], b: &[ZeekRow]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            COMPARED.iter().chain(["trans_depth"].iter()).all(|c| {
                let (fx, fy) = (x.get(c), y.get(c));
                fx == Field::Absent || fy == Field::Absent || fx == fy
            })
        })
}

#[cfg(test)]
mod tests {
    use super::super::exchange::{parse_exchange, Exchange};
    use super::*;

    const TSV: &str = "### BTest baseline data generated by btest-diff. Do not edit.\n\
#separator \\x09\n\
#set_separator\t,\n\
#empty_field\t(empty)\n\
#unset_field\t-\n\
#path\thttp\n\
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\tversion\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\ttags\n\
#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tcount\tcount\tcount\tstring\tset[enum]\n\
XXXXXXXXXX.XXXXXX\tC1\t10.0.0.1\t5555\t10.0.0.2\t80\t1\tGET\tx\t/a\\xfcb c\t1.1\t0\t4705\t200\tOK\t(empty)\n\
XXXXXXXXXX.XXXXXX\tC1\t10.0.0.1\t5555\t10.0.0.2\t80\t2\t-\t-\t-\t1.1\t0\t19\t200\tOK\t(empty)\n\
#close XXXX\n";

    fn ex(line: &str) -> Exchange {
        parse_exchange(line, 0).expect("exchange")
    }

    fn exchange(method: &str, target: &str, status: Option<u64>, req: u64, resp: u64, depth: u64) -> Exchange {
        let response = match status {
            Some(s) => format!(r#"{{"version":"1.1","status":{s},"reason":"","headers":[],"body_len":{resp}}}"#),
            None => "null".to_string(),
        };
        let request = if method.is_empty() {
            "null".to_string()
        } else {
            format!(
                r#"{{"method":{},"target":{},"version":"1.1","headers":[],"body_len":{req}}}"#,
                serde_json::Value::String(method.into()),
                serde_json::Value::String(target.into())
            )
        };
        ex(&format!(
            r#"{{"conn":{{"client":"10.0.0.1:5555","server":"10.0.0.2:80","vxlan_id":0}},"depth":{depth},"request":{request},"response":{response},"flags":{{}}}}"#
        ))
    }

    #[test]
    fn unescape() {
        assert_eq!(zeek_unescape("a\\xfcb"), b"a\xfcb".to_vec());
        assert_eq!(zeek_unescape("\\x09"), b"\t".to_vec());
        assert_eq!(zeek_unescape("a\\\\b"), b"a\\b".to_vec());
        assert_eq!(zeek_unescape("\\xZZ\\x4"), b"\\xZZ\\x4".to_vec());
        assert_eq!(zeek_unescape("/%5"), b"/%5".to_vec());
    }

    #[test]
    fn parses_full_tsv() {
        let log = parse_log(TSV).expect("parse");
        assert_eq!(log.format, "tsv");
        assert_eq!(log.rows.len(), 2);
        let r = &log.rows[0];
        assert_eq!(r.line, 9);
        assert_eq!(r.get("method"), Field::Value(b"GET".to_vec()));
        assert_eq!(r.get("uri"), Field::Value(b"/a\xfcb c".to_vec()));
        assert_eq!(r.get("response_body_len").as_u64(), Some(4705));
        assert_eq!(r.get("tags"), Field::Empty);
        assert_eq!(r.get("info_code"), Field::Absent);
        assert_eq!(log.rows[1].get("method"), Field::Unset);
    }

    #[test]
    fn parses_cut_format() {
        let text =
            "### BTest baseline data\nuid\tstatus_code\tmethod\turi\nC1\t200\tHEAD\t/_ping\nC1\t101\tPOST\t/v1/x\n";
        let log = parse_log(text).expect("parse");
        assert_eq!(log.format, "cut");
        assert_eq!(log.columns, vec!["uid", "status_code", "method", "uri"]);
        assert_eq!(log.rows.len(), 2);
        assert_eq!(log.rows[1].get("status_code").as_u64(), Some(101));
        assert_eq!(log.rows[1].get("request_body_len"), Field::Absent);
    }

    #[test]
    fn parses_json_lines() {
        let text = "### BTest\n{\"ts\":XXXXXXXXXX.XXXXXX,\"uid\":\"C1\",\"trans_depth\":1,\"method\":\"GET\",\"uri\":\"/x\",\"status_code\":200,\"tags\":[]}\n";
        let log = parse_log(text).expect("parse");
        assert_eq!(log.format, "json");
        let r = &log.rows[0];
        assert_eq!(r.get("status_code").as_u64(), Some(200));
        assert_eq!(r.get("tags"), Field::Empty);
        // JSON omits unset fields.
        assert_eq!(r.get("response_body_len"), Field::Unset);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_log("/response-headers?x=1|Content-Type\n").is_err());
        assert!(parse_log("").is_err());
        let bad = "#fields\ta\tb\n1\t2\t3\n";
        assert!(parse_log(bad).is_err());
    }

    #[test]
    fn uri_comparison() {
        assert!(uri_eq(b"/x?y=1", "/x?y=1"));
        assert!(uri_eq(b"/a\xfcb", "/a\u{fffd}b"));
        assert!(uri_eq(b"/a\xfcb", "/a\\xfcb"));
        assert!(!uri_eq(b"/a", "/b"));
        // Zeek logs the percent-decoded URI.
        assert!(uri_eq(b"/a b/r\xfchma", "/a%20b/r%FChma"));
        assert!(uri_eq(b"/?id=1'+OR+'1'='1", "/?id=1%27+OR+%271%27%3D%271"));
        assert!(uri_eq(b"/a%20b", "/a%2520b"));
        assert!(!uri_eq(b"/a b", "/a%2520b"));
    }

    #[test]
    fn zeek_uri_unescaping() {
        assert_eq!(zeek_unescape_uri(b"/%"), b"/%".to_vec());
        assert_eq!(zeek_unescape_uri(b"/%5"), b"/%5".to_vec());
        assert_eq!(zeek_unescape_uri(b"/%41%4a"), b"/AJ".to_vec());
        assert_eq!(zeek_unescape_uri(b"/%%41"), b"/A".to_vec());
        assert_eq!(zeek_unescape_uri(b"/%u0041%u4142"), b"/AAB".to_vec());
        assert_eq!(zeek_unescape_uri(b"/%zz"), b"/%zz".to_vec());
        assert_eq!(zeek_unescape_uri(b"/plain+path"), b"/plain+path".to_vec());
    }

    #[test]
    fn key_matching_rules() {
        let log = parse_log(TSV).expect("parse");
        let get = exchange("GET", "/a\u{fffd}b c", Some(200), 0, 4705, 1);
        assert!(key_matches(&log.rows[0], &get));
        let lower = exchange("get", "/a\u{fffd}b c", Some(200), 0, 4705, 1);
        assert!(key_matches(&log.rows[0], &lower));
        let wrong_status = exchange("GET", "/a\u{fffd}b c", Some(404), 0, 4705, 1);
        assert!(!key_matches(&log.rows[0], &wrong_status));
        let no_resp = exchange("GET", "/a\u{fffd}b c", None, 0, 0, 1);
        assert!(!key_matches(&log.rows[0], &no_resp));
        // Row without method only matches an exchange without a parsed request line.
        assert!(!key_matches(&log.rows[1], &get));
        let resp_only = exchange("", "", Some(200), 0, 19, 2);
        assert!(key_matches(&log.rows[1], &resp_only));
        let garbage_line = exchange("OPTIONSHTTP/1.1", "", Some(200), 0, 19, 1);
        assert!(key_matches(&log.rows[1], &garbage_line));
        assert_eq!(
            body_lengths(&log.rows[1], Some(&resp_only)),
            vec![("request_body_len", 0, Some(0)), ("response_body_len", 19, Some(19))]
        );
    }

    #[test]
    fn greedy_matching_prefers_exact_bodies_and_reports_extras() {
        let text = "uid\tmethod\turi\tstatus_code\tresponse_body_len\n\
C1\tGET\t/r\t206\t10\n\
C1\tGET\t/r\t206\t20\n";
        let log = parse_log(text).expect("parse");
        let exs = vec![
            exchange("GET", "/r", Some(206), 0, 20, 1),
            exchange("GET", "/r", Some(206), 0, 10, 1),
            exchange("GET", "/other", Some(200), 0, 1, 2),
        ];
        let m = match_rows(&log.rows, &exs);
        assert_eq!(m.rows[0].matched, Some(1));
        assert_eq!(m.rows[1].matched, Some(0));
        assert!(m.rows.iter().all(|r| r.bodies.iter().all(|(_, e, g)| Some(*e) == *g)));
        assert_eq!(m.extras, vec![2]);

        // A key-only match still counts as matched, with the body length reported unequal.
        let exs = vec![exchange("GET", "/r", Some(206), 0, 11, 1)];
        let m = match_rows(&log.rows, &exs);
        assert_eq!(m.rows.iter().filter(|r| r.matched.is_some()).count(), 1);
        assert_eq!(m.rows[0].bodies, vec![("response_body_len", 10, Some(11))]);
        assert_eq!(m.rows[1].matched, None);
        assert_eq!(m.rows[1].bodies, vec![("response_body_len", 20, None)]);
        let (cand, differ) = best_candidate(&log.rows[1], &exs).expect("candidate");
        assert_eq!(cand, 0);
        assert!(differ.is_empty());
    }

    #[test]
    fn empty_rows() {
        let log = parse_log(
            "method\turi\tversion\tstatus_code\trequest_body_len\tresponse_body_len\n\
GET\t/x\t0.9\t0\t0\t51\n\
-\t-\t-\t-\t0\t0\n\
-\t-\t1.1\t200\t0\t19\n\
-\t-\t-\t-\t0\t5\n",
        )
        .expect("parse");
        let empty: Vec<bool> = log.rows.iter().map(ZeekRow::is_empty_row).collect();
        assert_eq!(empty, vec![false, true, false, false]);
        let cut = parse_log("uid\tstatus_code\nC1\t206\n").expect("parse");
        assert!(!cut.rows[0].is_empty_row());
        let only_bodies = parse_log("uid\tresponse_body_len\nC1\t0\n").expect("parse");
        assert!(!only_bodies.rows[0].is_empty_row(), "no key column at all: not judged empty");
    }

    #[test]
    fn baseline_dedup() {
        let full = parse_log(TSV).expect("parse").rows;
        let cut = parse_log("method\turi\tstatus_code\nGET\t/a\\xfcb c\t200\n-\t-\t200\n").expect("cut").rows;
        assert!(same_rows(&full, &cut));
        let other = parse_log("method\turi\nGET\t/zzz\n-\t-\n").expect("cut").rows;
        assert!(!same_rows(&full, &other));
        assert!(!same_rows(&full, &cut[..1]));
    }
}
