//! suricata-verify `test.yaml` checks on `event_type: http`, mapped onto exchange records.
//!
//! A check is `filter: {count: N, match: {field: value, …}}`; suricata-verify counts the EVE
//! records whose every `match` field equals the given value and requires exactly N of them (at
//! least one when `count` is omitted). Here the EVE http records are replaced by the exchanges
//! the binary reconstructs, with each EVE field computed from the exchange the way Suricata
//! (libhtp) would log it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::exchange::{header_joined, Exchange};

/// Match keys that describe the capture/engine rather than the exchange; they are dropped
/// from a check before it is evaluated.
pub const IGNORED_KEYS: [&str; 10] = [
    "event_type",
    "pcap_cnt",
    "flow_id",
    "tx_id",
    "app_proto",
    "pkt_src",
    "direction",
    "in_iface",
    "timestamp",
    "community_id",
];

fn is_ignored(key: &str) -> bool {
    // vlan[N]: the exchange record carries the VXLAN id but not 802.1Q tags.
    IGNORED_KEYS.contains(&key) || key.starts_with("vlan[")
}

/// True for match keys that only exist for HTTP/2 transactions.
fn is_http2_key(key: &str, value: &Value) -> bool {
    key.starts_with("http.http2.")
        || key == "http.version"
        || key.ends_with(".table_size_update")
        || (key.starts_with("http.request_headers[")
            && key.ends_with("].name")
            && value.as_str().is_some_and(|s| s.starts_with(':')))
}

/// A value computed from an exchange for one EVE field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldVal {
    Str(String),
    Num(u64),
    Ip(IpAddr),
    /// Suricata would not log the field for this exchange.
    Missing,
    /// The exchange record can't tell (e.g. on-the-wire length of a chunked body); the field
    /// is treated as satisfied and counted as a lenient comparison.
    Unknown,
}

fn str_or_missing(v: Option<String>) -> FieldVal {
    v.map_or(FieldVal::Missing, FieldVal::Str)
}

/// `http.hostname` as libhtp derives it: the authority of an absolute-form (or CONNECT
/// authority-form) target, else the Host header; user info and port removed, lower-cased, one
/// trailing dot removed. IPv6 literals keep their brackets.
pub fn hostname(ex: &Exchange) -> Option<String> {
    let req = ex.request.as_ref()?;
    let target = req.target.as_str();
    let lower = target.to_ascii_lowercase();
    let authority = if let Some(i) = lower.find("://").filter(|_| !target.starts_with('/')) {
        let rest = &target[i + 3..];
        Some(rest.split(['/', '?', '#']).next().unwrap_or("").to_string())
    } else if req.method.eq_ignore_ascii_case("CONNECT") && !target.starts_with('/') {
        Some(target.split(' ').next().unwrap_or("").to_string())
    } else {
        None
    };
    let raw = match authority.filter(|a| !a.is_empty()) {
        Some(a) => a,
        None => super::exchange::header_values(&req.headers, "host").first()?.to_string(),
    };
    let raw = raw.trim();
    let raw = raw.rsplit_once('@').map_or(raw, |(_, h)| h);
    let host = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        raw.split(':').next().unwrap_or("")
    };
    let mut host = host.to_ascii_lowercase();
    if host.ends_with('.') {
        host.pop();
    }
    Some(host)
}

/// `http.length`: libhtp's response message length, the body bytes as they crossed the wire:
/// content coding not undone, and for a chunked body the chunk framing counted too. The exchange
/// gives the decoded entity length (`body_len`), which equals it for an identity-coded,
/// non-chunked body. For a content-coded body the binary's optional `wire_len`, else the
/// Content-Length header, gives it. For a chunked body it can't be known (framing bytes are not
/// in the record): the comparison is skipped and counted as lenient.
fn wire_length(ex: &Exchange) -> FieldVal {
    // Suricata always logs the length: 0 for a transaction without a response body.
    let Some(resp) = ex.response.as_ref() else {
        return FieldVal::Num(0);
    };
    let te = header_joined(&resp.headers, "transfer-encoding").unwrap_or_default();
    if te.to_ascii_lowercase().contains("chunked") {
        return FieldVal::Unknown;
    }
    let ce = header_joined(&resp.headers, "content-encoding").unwrap_or_default();
    let coded = !ce.trim().is_empty() && !ce.trim().eq_ignore_ascii_case("identity");
    if !coded {
        return resp.body_len.map_or(FieldVal::Unknown, FieldVal::Num);
    }
    if let Some(w) = resp.wire_len {
        return FieldVal::Num(w);
    }
    match header_joined(&resp.headers, "content-length").and_then(|v| v.trim().parse().ok()) {
        Some(n) => FieldVal::Num(n),
        None => FieldVal::Unknown,
    }
}

fn indexed_header(key: &str, prefix: &str, headers: Option<&[(String, String)]>) -> Option<FieldVal> {
    let rest = key.strip_prefix(prefix)?;
    if rest == ".__len" {
        return Some(headers.map_or(FieldVal::Missing, |h| FieldVal::Num(h.len() as u64)));
    }
    let rest = rest.strip_prefix('[')?;
    let (idx, what) = rest.split_once(']')?;
    let idx: usize = idx.parse().ok()?;
    let pick = |f: fn(&(String, String)) -> &String| {
        headers.and_then(|h| h.get(idx)).map_or(FieldVal::Missing, |p| FieldVal::Str(f(p).clone()))
    };
    match what {
        ".name" => Some(pick(|p| &p.0)),
        ".value" => Some(pick(|p| &p.1)),
        _ => None,
    }
}

/// The value of one EVE http-event field for this exchange, or None when the field has no
/// counterpart in the exchange record (the check is then not mappable).
pub fn field_value(key: &str, ex: &Exchange) -> Option<FieldVal> {
    let req = ex.request.as_ref().filter(|_| !ex.has_no_request());
    let resp = ex.response.as_ref();
    let v = match key {
        "http.url" => str_or_missing(req.map(|r| r.target.clone())),
        "http.http_method" => str_or_missing(req.map(|r| r.method.clone())),
        "http.protocol" => str_or_missing(
            req.filter(|r| !r.version.is_empty() && r.version != "0.9").map(|r| format!("HTTP/{}", r.version)),
        ),
        "http.status" => resp.filter(|r| r.status != 0).map_or(FieldVal::Missing, |r| FieldVal::Num(r.status)),
        "http.hostname" => str_or_missing(hostname(ex)),
        "http.http_user_agent" => str_or_missing(req.and_then(|r| header_joined(&r.headers, "user-agent"))),
        "http.http_refer" => str_or_missing(req.and_then(|r| header_joined(&r.headers, "referer"))),
        "http.http_content_type" => str_or_missing(
            resp.and_then(|r| header_joined(&r.headers, "content-type"))
                .map(|ct| ct.split(';').next().unwrap_or("").trim().to_string()),
        ),
        "http.redirect" => str_or_missing(resp.and_then(|r| header_joined(&r.headers, "location"))),
        "http.length" => wire_length(ex),
        "src_ip" => ex.client.map_or(FieldVal::Missing, |a| FieldVal::Ip(a.ip())),
        "dest_ip" => ex.server.map_or(FieldVal::Missing, |a| FieldVal::Ip(a.ip())),
        "src_port" => ex.client.map_or(FieldVal::Missing, |a| FieldVal::Num(u64::from(a.port()))),
        "dest_port" => ex.server.map_or(FieldVal::Missing, |a| FieldVal::Num(u64::from(a.port()))),
        "proto" => FieldVal::Str("TCP".to_string()),
        _ => {
            if let Some(v) = indexed_header(key, "http.request_headers", req.map(|r| r.headers.as_slice())) {
                v
            } else {
                indexed_header(key, "http.response_headers", resp.map(|r| r.headers.as_slice()))?
            }
        }
    };
    Some(v)
}

pub fn is_mappable(key: &str) -> bool {
    field_value(key, &Exchange::default()).is_some()
}

/// Compares an expected YAML/JSON scalar with a computed value. Returns (equal, lenient).
pub fn value_matches(expected: &Value, got: &FieldVal) -> (bool, bool) {
    let exp_text = match expected {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match got {
        FieldVal::Unknown => (true, true),
        FieldVal::Missing => (false, false),
        FieldVal::Str(s) => (*s == exp_text, false),
        FieldVal::Num(n) => (exp_text.trim().parse::<u64>().ok() == Some(*n), false),
        FieldVal::Ip(ip) => (exp_text.parse::<IpAddr>().ok() == Some(*ip), false),
    }
}

/// Why a check or a whole test is not evaluated.
#[derive(Debug, Clone, PartialEq)]
pub enum Class {
    Mappable,
    Skipped(String),
}

#[derive(Debug, Clone)]
pub struct Check {
    /// Position in the test's `checks:` list (0-based).
    pub index: usize,
    pub count: Option<u64>,
    /// The match fields kept for evaluation (ignored keys removed), flattened to dotted keys.
    pub fields: Vec<(String, Value)>,
    pub class: Class,
}

impl Check {
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self.fields.iter().map(|(k, v)| format!("{k}={}", short_value(v))).collect();
        let count = self.count.map_or("≥1".to_string(), |c| format!("×{c}"));
        format!("{count} {{{}}}", fields.join(", "))
    }
}

fn short_value(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    super::exchange::truncate(&s, 60)
}

#[derive(Debug, Clone)]
pub struct TestSpec {
    /// Directory relative to the suricata-verify root, e.g. `tests/http-async`.
    pub name: String,
    pub pcap: Option<PathBuf>,
    pub args: Vec<String>,
    /// Only the http checks.
    pub checks: Vec<Check>,
    pub class: Class,
}

/// Flattens nested maps into dotted keys (`{http: {url: x}}` → `http.url`).
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn requires_old_version(req: Option<&Value>) -> bool {
    req.and_then(|r| r.as_object()).is_some_and(|o| o.contains_key("lt-version"))
}

/// Classifies one http check: HTTP/2-only, version-specific, or carrying a field the exchange
/// record can't express.
pub fn classify_check(filter: &Value, index: usize) -> Check {
    let count = filter.get("count").and_then(Value::as_u64);
    let mut all_fields = Vec::new();
    if let Some(m) = filter.get("match") {
        flatten("", m, &mut all_fields);
    }
    let mut fields = Vec::new();
    let mut class = Class::Mappable;
    if requires_old_version(filter.get("requires")) {
        class = Class::Skipped("applies to older Suricata only (lt-version)".to_string());
    }
    for (k, v) in &all_fields {
        if is_ignored(k) {
            continue;
        }
        if class == Class::Mappable {
            if is_http2_key(k, v) {
                class = Class::Skipped(format!("HTTP/2 field {k}"));
            } else if !is_mappable(k) {
                class = Class::Skipped(format!("unmappable field {k}"));
            }
        }
        fields.push((k.clone(), v.clone()));
    }
    Check { index, count, fields, class }
}

/// Tests whose traffic is HTTP/2 but which also hold HTTP/1.1 checks (the h2c `Upgrade`
/// request is an HTTP/1.1 exchange answered with 101); their HTTP/2 checks are skipped one by one.
pub const H2C_UPGRADE_TESTS: [&str; 2] = ["tests/http2-upgrade", "tests/http2-disabled"];

/// Tests whose expected output depends on configuration that is not part of the corpus.
pub const CONFIG_DEPENDENT: [(&str, &str); 1] = [(
    "tests/cond-log-http-testmyids",
    "count 0 comes from conditional EVE http logging in the test's own suricata.yaml (not in the corpus)",
)];

fn args_of(doc: &Value) -> Vec<String> {
    match doc.get("args") {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Parses a test.yaml. `dir` is the test directory (to resolve the pcap), `name` its path
/// relative to the suricata-verify root. Returns None when the test has no http check.
pub fn parse_test(name: &str, dir: &Path, yaml: &str) -> Result<Option<TestSpec>, String> {
    let doc: Value = serde_yaml::from_str(yaml).map_err(|e| format!("{name}/test.yaml: {e}"))?;
    let checks_v = doc.get("checks").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut checks = Vec::new();
    for (i, c) in checks_v.iter().enumerate() {
        let Some(filter) = c.get("filter") else {
            continue;
        };
        let is_http = filter.get("match").and_then(|m| m.get("event_type")).and_then(Value::as_str) == Some("http");
        if is_http {
            checks.push(classify_check(filter, i));
        }
    }
    if checks.is_empty() {
        return Ok(None);
    }
    let args = args_of(&doc);
    let pcap = match doc.get("pcap") {
        Some(Value::String(p)) => Some(dir.join(p)),
        Some(Value::Bool(false)) => None,
        _ => find_pcap(dir),
    };
    let joined_args = args.join(" ");
    let class = if let Some((_, why)) = CONFIG_DEPENDENT.iter().find(|(n, _)| *n == name) {
        Class::Skipped(why.to_string())
    } else if (name.contains("http2") || name.contains("doh2")) && !H2C_UPGRADE_TESTS.contains(&name) {
        Class::Skipped("HTTP/2 traffic (the exchange record covers HTTP/1.x)".to_string())
    } else if joined_args.contains("--simulate-ips") {
        Class::Skipped("IPS mode (--simulate-ips): expectations include drops of a blocking engine".to_string())
    } else if requires_old_version(doc.get("requires")) {
        Class::Skipped("applies to older Suricata only (lt-version)".to_string())
    } else {
        match &pcap {
            None => Class::Skipped("no pcap".to_string()),
            Some(p) if !p.exists() => Class::Skipped(format!("pcap {} not in corpus", p.display())),
            Some(_) => Class::Mappable,
        }
    };
    Ok(Some(TestSpec { name: name.to_string(), pcap, args, checks, class }))
}

fn find_pcap(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(".pcap") || n.ends_with(".pcapng") || n.ends_with(".pcap.gz")
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Result of evaluating one check on the exchanges of its pcap.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub matching: usize,
    pub passed: bool,
    /// Number of matching exchanges where at least one field was compared leniently.
    pub lenient: usize,
}

pub fn exchange_satisfies(check: &Check, ex: &Exchange) -> (bool, bool) {
    let mut lenient = false;
    for (k, v) in &check.fields {
        let got = field_value(k, ex).unwrap_or(FieldVal::Missing);
        let (ok, len) = value_matches(v, &got);
        if !ok {
            return (false, false);
        }
        lenient |= len;
    }
    (true, lenient)
}

pub fn evaluate(check: &Check, exchanges: &[Exchange]) -> CheckResult {
    let mut matching = 0;
    let mut lenient = 0;
    for ex in exchanges {
        let (ok, len) = exchange_satisfies(check, ex);
        if ok {
            matching += 1;
            lenient += usize::from(len);
        }
    }
    let passed = match check.count {
        Some(n) => matching as u64 == n,
        None => matching >= 1,
    };
    CheckResult { matching, passed, lenient }
}

/// For a failed check: the exchanges closest to satisfying it, with the fields they get wrong
/// (expected vs produced).
pub fn closest(check: &Check, exchanges: &[Exchange], n: usize) -> Vec<(usize, Vec<String>)> {
    let mut scored: Vec<(usize, usize, Vec<String>)> = exchanges
        .iter()
        .enumerate()
        .map(|(i, ex)| {
            let mut wrong = Vec::new();
            for (k, v) in &check.fields {
                let got = field_value(k, ex).unwrap_or(FieldVal::Missing);
                if !value_matches(v, &got).0 {
                    let shown = match got {
                        FieldVal::Str(s) => format!("{s:?}"),
                        FieldVal::Num(n) => n.to_string(),
                        FieldVal::Ip(ip) => ip.to_string(),
                        FieldVal::Missing => "absent".to_string(),
                        FieldVal::Unknown => "?".to_string(),
                    };
                    wrong.push(format!("{k}: want {} got {shown}", short_value(v)));
                }
            }
            (i, wrong.len(), wrong)
        })
        .collect();
    scored.sort_by_key(|(i, w, _)| (*w, *i));
    scored.into_iter().take(n).map(|(i, _, w)| (i, w)).collect()
}

#[cfg(test)]
mod tests {
    use super::super::exchange::parse_exchange;
    use super::*;

    fn ex(
        method: &str,
        target: &str,
        req_headers: &str,
        status: u64,
        resp_headers: &str,
        body: u64,
        decoded: &str,
    ) -> Exchange {
        let line = format!(
            r#"{{"conn":{{"client":"[fe80::20c:29ff:fef3:cf38]:58307","server":"10.0.0.2:80"}},"depth":1,"request":{{"method":"{method}","target":"{target}","version":"1.1","headers":{req_headers},"body_len":0}},"response":{{"version":"1.1","status":{status},"reason":"OK","headers":{resp_headers},"body_len":{body}}},"flags":{{"decoded_with":{decoded}}}}}"#
        );
        parse_exchange(&line, 0).expect("exchange")
    }

    const YAML: &str = r#"
requires:
  min-version: 7
args:
  - -k none
checks:
  - filter:
      count: 1
      match:
        event_type: alert
        alert.signature_id: 1
  - filter:
      count: 2
      match:
        event_type: http
  - filter:
      count: 1
      match:
        event_type: http
        tx_id: 0
        pcap_cnt: 7
        http.url: "/index.php"
        http.http_user_agent: "Mozilla/5.0"
        http.http_content_type: text/html
        http.status: 302
        src_ip: fe80:0000:0000:0000:020c:29ff:fef3:cf38
        dest_port: 80
  - filter:
      match:
        event_type: http
        http:
          hostname: example.com
  - filter:
      count: 1
      match:
        event_type: http
        http.http2.stream_id: 0
  - filter:
      count: 1
      match:
        event_type: http
        http.status_string: "2XX"
  - filter:
      requires:
        lt-version: 8.0
      count: 1
      match:
        event_type: http
        pcap_cnt: 2
"#;

    #[test]
    fn parses_and_classifies_checks() {
        let dir = Path::new("/nonexistent");
        let spec = parse_test("tests/x", dir, YAML).expect("yaml").expect("has http checks");
        assert_eq!(spec.args, vec!["-k none".to_string()]);
        assert_eq!(spec.checks.len(), 6);
        let c = &spec.checks;
        assert_eq!(c[0].index, 1);
        assert_eq!(c[0].count, Some(2));
        assert!(c[0].fields.is_empty());
        assert_eq!(c[0].class, Class::Mappable);
        assert_eq!(c[1].fields.len(), 6, "tx_id/pcap_cnt/event_type dropped: {:?}", c[1].fields);
        assert_eq!(c[1].class, Class::Mappable);
        assert_eq!(c[2].count, None);
        assert_eq!(c[2].fields, vec![("http.hostname".to_string(), Value::String("example.com".into()))]);
        assert!(matches!(&c[3].class, Class::Skipped(w) if w.contains("HTTP/2")));
        assert!(matches!(&c[4].class, Class::Skipped(w) if w.contains("http.status_string")));
        assert!(matches!(&c[5].class, Class::Skipped(w) if w.contains("lt-version")));
        // No pcap in /nonexistent.
        assert!(matches!(spec.class, Class::Skipped(_)));
    }

    #[test]
    fn test_level_skips() {
        let dir = Path::new("/nonexistent");
        let y = "checks:\n  - filter:\n      count: 1\n      match:\n        event_type: http\n";
        let h2 = parse_test("tests/http2-range", dir, y).expect("yaml").expect("spec");
        assert!(matches!(h2.class, Class::Skipped(w) if w.contains("HTTP/2")));
        let ips = parse_test("tests/x", dir, &format!("args:\n  - --simulate-ips\n{y}")).expect("yaml").expect("spec");
        assert!(matches!(ips.class, Class::Skipped(w) if w.contains("IPS")));
        let cfg = parse_test("tests/cond-log-http-testmyids", dir, y).expect("yaml").expect("spec");
        assert!(matches!(cfg.class, Class::Skipped(w) if w.contains("suricata.yaml")));
        let pc = parse_test("tests/x", dir, &format!("pcap: ../other/input.pcap\n{y}")).expect("yaml").expect("spec");
        assert_eq!(pc.pcap, Some(PathBuf::from("/nonexistent/../other/input.pcap")));
        assert!(parse_test("tests/x", dir, "checks:\n  - filter:\n      match:\n        event_type: dns\n")
            .expect("yaml")
            .is_none());
    }

    #[test]
    fn field_mapping() {
        let e = ex(
            "GET",
            "/index.php",
            r#"[["Host","Example.COM.:8080"],["User-Agent","Mozilla/5.0"],["Referer","http://r/"]]"#,
            302,
            r#"[["Content-Type","text/html; charset=UTF-8"],["Location","/index.php?page=main.php"],["Content-Length","0"]]"#,
            0,
            "[]",
        );
        assert_eq!(field_value("http.url", &e), Some(FieldVal::Str("/index.php".into())));
        assert_eq!(field_value("http.hostname", &e), Some(FieldVal::Str("example.com".into())));
        assert_eq!(field_value("http.http_content_type", &e), Some(FieldVal::Str("text/html".into())));
        assert_eq!(field_value("http.redirect", &e), Some(FieldVal::Str("/index.php?page=main.php".into())));
        assert_eq!(field_value("http.http_refer", &e), Some(FieldVal::Str("http://r/".into())));
        assert_eq!(field_value("http.protocol", &e), Some(FieldVal::Str("HTTP/1.1".into())));
        assert_eq!(field_value("http.length", &e), Some(FieldVal::Num(0)));
        assert_eq!(field_value("http.request_headers[0].name", &e), Some(FieldVal::Str("Host".into())));
        assert_eq!(field_value("http.response_headers[2].value", &e), Some(FieldVal::Str("0".into())));
        assert_eq!(field_value("http.response_headers[9].value", &e), Some(FieldVal::Missing));
        assert_eq!(field_value("http.request_headers.__len", &e), Some(FieldVal::Num(3)));
        assert_eq!(field_value("http.status_string", &e), None);
        assert_eq!(field_value("http.http2.stream_id", &e), None);
        let (ok, _) = value_matches(
            &Value::String("fe80:0000:0000:0000:020c:29ff:fef3:cf38".into()),
            &field_value("src_ip", &e).expect("src_ip"),
        );
        assert!(ok);
        assert!(value_matches(&serde_json::json!(80), &FieldVal::Num(80)).0);
        assert!(value_matches(&serde_json::json!("18070"), &FieldVal::Str("18070".into())).0);
        assert!(!value_matches(&serde_json::json!("x"), &FieldVal::Missing).0);
    }

    #[test]
    fn hostname_forms() {
        let h = |method: &str, target: &str, host: &str| {
            let hdrs = if host.is_empty() { "[]".to_string() } else { format!(r#"[["Host","{host}"]]"#) };
            hostname(&ex(method, target, &hdrs, 200, "[]", 0, "[]"))
        };
        assert_eq!(h("GET", "/", "[::1]:8000").as_deref(), Some("[::1]"));
        assert_eq!(h("GET", "http://Bro.org:80/x", "other").as_deref(), Some("bro.org"));
        assert_eq!(h("CONNECT", "qag.example.com:443", "").as_deref(), Some("qag.example.com"));
        assert_eq!(h("GET", "/", "").as_deref(), None);
        assert_eq!(h("GET", "/", "user@host:1").as_deref(), Some("host"));
    }

    #[test]
    fn wire_length_rules() {
        let chunked = ex("GET", "/", "[]", 200, r#"[["Transfer-Encoding","chunked"]]"#, 50, "[]");
        assert_eq!(field_value("http.length", &chunked), Some(FieldVal::Unknown));
        let gz =
            ex("GET", "/", "[]", 200, r#"[["Content-Encoding","gzip"],["Content-Length","30"]]"#, 50, r#"["gzip"]"#);
        assert_eq!(field_value("http.length", &gz), Some(FieldVal::Num(30)));
        let mut pending = ex("GET", "/", "[]", 200, "[]", 0, "[]");
        pending.response = None;
        assert_eq!(field_value("http.length", &pending), Some(FieldVal::Num(0)));
        let gz_no_cl = ex("GET", "/", "[]", 200, r#"[["Content-Encoding","gzip"]]"#, 50, r#"["gzip"]"#);
        assert_eq!(field_value("http.length", &gz_no_cl), Some(FieldVal::Unknown));
    }

    #[test]
    fn evaluation_counts() {
        let spec = parse_test("tests/x", Path::new("/nonexistent"), YAML).expect("yaml").expect("spec");
        let good = ex(
            "GET",
            "/index.php",
            r#"[["User-Agent","Mozilla/5.0"]]"#,
            302,
            r#"[["Content-Type","text/html"]]"#,
            0,
            "[]",
        );
        let other = ex("GET", "/etc", "[]", 200, "[]", 5, "[]");
        let exs = vec![good.clone(), other.clone()];
        let r = evaluate(&spec.checks[0], &exs);
        assert_eq!((r.matching, r.passed), (2, true));
        let r = evaluate(&spec.checks[1], &exs);
        assert_eq!((r.matching, r.passed), (1, true));
        let r = evaluate(&spec.checks[1], &[good.clone(), good.clone()]);
        assert!(!r.passed, "count 1 but two matches");
        let r = evaluate(&spec.checks[2], &exs);
        assert!(!r.passed, "no Host header, no hostname");
        let close = closest(&spec.checks[1], &[other, good], 1);
        assert_eq!(close[0].0, 1);
        assert!(close[0].1.is_empty());
    }
}
