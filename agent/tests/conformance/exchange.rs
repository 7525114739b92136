//! The `--format exchange` record as the suite reads it, and the runner that produces it.
//!
//! Parsing is deliberately tolerant: a missing field reads as "absent" instead of failing the
//! whole file, so one schema slip in the binary shows up as mismatches in the score table rather
//! than as a panic that hides every other result.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One HTTP exchange (one request and the response to it, if any). Every field of the contract
/// is read even where no comparison uses it yet, so the summaries show it.
#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Position in the binary's output for this file (0-based).
    pub index: usize,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub vxlan_id: u64,
    pub depth: Option<u64>,
    pub request: Option<Request>,
    pub response: Option<Response>,
    pub pending: bool,
    pub gap: bool,
    pub decoded_with: Vec<String>,
    pub anomalies: Vec<String>,
}

#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body_len: Option<u64>,
    pub body_truncated: bool,
}

#[allow(dead_code)]
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub version: String,
    pub status: u64,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body_len: Option<u64>,
    /// Optional `wire_len` (body bytes after de-chunking, before content decoding), read when
    /// the binary provides it.
    pub wire_len: Option<u64>,
    pub body_truncated: bool,
    pub interim: Vec<u64>,
}

/// Values of every header called `name` (ASCII case-insensitive), in wire order.
pub fn header_values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
}

/// Repeated headers joined with ", " (how libhtp and most loggers present them).
pub fn header_joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let v = header_values(headers, name);
    if v.is_empty() {
        None
    } else {
        Some(v.join(", "))
    }
}

impl Exchange {
    /// The request method, or "" when the exchange has no request (response-only).
    pub fn method(&self) -> &str {
        self.request.as_ref().map_or("", |r| r.method.as_str())
    }

    pub fn target(&self) -> &str {
        self.request.as_ref().map_or("", |r| r.target.as_str())
    }

    /// True when the exchange carries no parsed request line (a response without a request).
    pub fn has_no_request(&self) -> bool {
        self.request.as_ref().is_none_or(|r| r.method.is_empty() && r.target.is_empty())
    }

    pub fn status(&self) -> Option<u64> {
        self.response.as_ref().map(|r| r.status)
    }

    /// Short human-readable form for failure listings.
    pub fn summary(&self) -> String {
        let conn = match (self.client, self.server) {
            (Some(c), Some(s)) => format!("{c}->{s}"),
            _ => "?->?".to_string(),
        };
        let req = match &self.request {
            Some(r) => format!(
                "{} {} {} req_body={}",
                show(&r.method),
                show(&truncate(&r.target, 70)),
                show(&r.version),
                r.body_len.map_or("-".to_string(), |n| n.to_string())
            ),
            None => "(no request)".to_string(),
        };
        let resp = match &self.response {
            Some(r) => format!("{} resp_body={}", r.status, r.body_len.map_or("-".to_string(), |n| n.to_string())),
            None => "(no response)".to_string(),
        };
        let mut flags = Vec::new();
        if self.pending {
            flags.push("pending".to_string());
        }
        if self.gap {
            flags.push("gap".to_string());
        }
        if !self.decoded_with.is_empty() {
            flags.push(format!("decoded={}", self.decoded_with.join("+")));
        }
        if !self.anomalies.is_empty() {
            flags.push(format!("anomalies={}", self.anomalies.join(",")));
        }
        let depth = self.depth.map_or("-".to_string(), |d| d.to_string());
        let flags = if flags.is_empty() { String::new() } else { format!(" [{}]", flags.join(" ")) };
        format!("#{} {conn} depth={depth}: {req} -> {resp}{flags}", self.index)
    }
}

fn show(s: &str) -> String {
    if s.is_empty() {
        "\"\"".to_string()
    } else {
        s.to_string()
    }
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

/// Parses a socket address as the binary prints it: `1.2.3.4:80`, `[::1]:80`, or a bare
/// `::1:80`-style fallback (last colon separates the port).
pub fn parse_sockaddr(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    let port: u16 = port.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

fn as_str(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true))) || matches!(v, Some(Value::String(s)) if s == "true")
}

fn as_str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(|x| as_str(Some(x))).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn headers(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match v {
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::Array(pair) if pair.len() >= 2 => {
                        out.push((as_str(pair.first()), as_str(pair.get(1))));
                    }
                    Value::Object(o) => {
                        out.push((as_str(o.get("name")), as_str(o.get("value"))));
                    }
                    _ => {}
                }
            }
        }
        Some(Value::Object(o)) => {
            for (k, v) in o {
                out.push((k.clone(), as_str(Some(v))));
            }
        }
        _ => {}
    }
    out
}

/// Parses one output line. Returns an error string for lines that are not a JSON object.
pub fn parse_exchange(line: &str, index: usize) -> Result<Exchange, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let obj = v.as_object().ok_or_else(|| "not a JSON object".to_string())?;
    let conn = obj.get("conn");
    let client = parse_sockaddr(&as_str(conn.and_then(|c| c.get("client"))));
    let server = parse_sockaddr(&as_str(conn.and_then(|c| c.get("server"))));
    let vxlan_id = as_u64(conn.and_then(|c| c.get("vxlan_id"))).unwrap_or(0);
    let request = match obj.get("request") {
        Some(r @ Value::Object(_)) => Some(Request {
            method: as_str(r.get("method")),
            target: as_str(r.get("target")),
            version: as_str(r.get("version")),
            headers: headers(r.get("headers")),
            body_len: as_u64(r.get("body_len")),
            body_truncated: as_bool(r.get("body_truncated")),
        }),
        _ => None,
    };
    let response = match obj.get("response") {
        Some(r @ Value::Object(_)) => Some(Response {
            version: as_str(r.get("version")),
            status: as_u64(r.get("status")).unwrap_or(0),
            reason: as_str(r.get("reason")),
            headers: headers(r.get("headers")),
            body_len: as_u64(r.get("body_len")),
            wire_len: as_u64(r.get("wire_len")),
            body_truncated: as_bool(r.get("body_truncated")),
            interim: match r.get("interim") {
                Some(Value::Array(a)) => a.iter().filter_map(|x| as_u64(Some(x))).collect(),
                _ => Vec::new(),
            },
        }),
        _ => None,
    };
    let flags = obj.get("flags");
    Ok(Exchange {
        index,
        client,
        server,
        vxlan_id,
        depth: as_u64(obj.get("depth")),
        request,
        response,
        pending: as_bool(flags.and_then(|f| f.get("pending"))),
        gap: as_bool(flags.and_then(|f| f.get("gap"))),
        decoded_with: as_str_list(flags.and_then(|f| f.get("decoded_with"))),
        anomalies: as_str_list(flags.and_then(|f| f.get("anomalies"))),
    })
}

/// What one run of the binary over one capture produced.
#[derive(Debug, Clone, Default)]
pub struct ReplayOutput {
    pub file: PathBuf,
    pub exchanges: Vec<Exchange>,
    /// Lines that could not be parsed, with their 1-based line number.
    pub bad_lines: Vec<(usize, String)>,
    pub exit_ok: bool,
    pub timed_out: bool,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ReplayOutput {
    /// A one-line problem description, or None when the run was clean.
    pub fn problem(&self) -> Option<String> {
        let mut p = Vec::new();
        if self.timed_out {
            p.push("timed out".to_string());
        } else if !self.exit_ok {
            p.push("exit status non-zero".to_string());
        }
        if !self.bad_lines.is_empty() {
            p.push(format!(
                "{} unparsable line(s), first: line {}: {}",
                self.bad_lines.len(),
                self.bad_lines[0].0,
                self.bad_lines[0].1
            ));
        }
        if p.is_empty() {
            None
        } else {
            let err = self.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            Some(format!("{} (stderr: {})", p.join("; "), truncate(err.trim(), 160)))
        }
    }
}

pub fn parse_output(file: &Path, stdout: &str) -> ReplayOutput {
    let mut out = ReplayOutput { file: file.to_path_buf(), ..Default::default() };
    for (i, line) in stdout.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_exchange(line, out.exchanges.len()) {
            Ok(ex) => out.exchanges.push(ex),
            Err(e) => out.bad_lines.push((i + 1, format!("{e}: {}", truncate(line, 80)))),
        }
    }
    out
}

/// Runs `bin replay FILE --format exchange --output -` with a timeout.
pub fn replay_one(bin: &Path, file: &Path, timeout: Duration) -> ReplayOutput {
    let start = Instant::now();
    let child = Command::new(bin)
        .arg("replay")
        .arg(file)
        .args(["--format", "exchange", "--output", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return ReplayOutput {
                file: file.to_path_buf(),
                stderr: format!("cannot start {}: {e}", bin.display()),
                ..Default::default()
            }
        }
    };
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = stdout_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(p) = stderr_pipe.as_mut() {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    });
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {
                if start.elapsed() > timeout {
                    let _ = child.kill();
                    timed_out = true;
                    break child.wait().ok();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break None,
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let mut out = parse_output(file, &String::from_utf8_lossy(&stdout));
    out.exit_ok = status.is_some_and(|s| s.success());
    out.timed_out = timed_out;
    out.stderr = String::from_utf8_lossy(&stderr).into_owned();
    out.elapsed = start.elapsed();
    out
}

/// Runs the binary over every file with a small pool of worker threads. Results come back in the
/// order of `files`.
pub fn replay_all(bin: &Path, files: &[PathBuf], threads: usize, timeout: Duration) -> Vec<ReplayOutput> {
    let queue: Arc<Mutex<Vec<(usize, PathBuf)>>> =
        Arc::new(Mutex::new(files.iter().cloned().enumerate().rev().collect()));
    let results: Arc<Mutex<Vec<Option<ReplayOutput>>>> = Arc::new(Mutex::new(vec![None; files.len()]));
    let mut handles = Vec::new();
    for _ in 0..threads.max(1) {
        let queue = Arc::clone(&queue);
        let results = Arc::clone(&results);
        let bin = bin.to_path_buf();
        handles.push(std::thread::spawn(move || loop {
            let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
            let Some((i, file)) = next else { break };
            let out = replay_one(&bin, &file, timeout);
            if let Ok(mut r) = results.lock() {
                r[i] = Some(out);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    let results = Arc::try_unwrap(results).map(|m| m.into_inner().unwrap_or_default()).unwrap_or_default();
    results
        .into_iter()
        .zip(files)
        .map(|(r, f)| {
            r.unwrap_or_else(|| ReplayOutput {
                file: f.clone(),
                stderr: "worker thread died".to_string(),
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"conn":{"client":"10.0.0.1:5555","server":"10.0.0.2:80","vxlan_id":0},"depth":1,"request":{"ts":1234.567890,"method":"GET","target":"/x?y=1","version":"1.1","headers":[["Host","x"],["User-Agent","curl"]],"body_len":0,"body_truncated":false},"response":{"ts":1234.6,"version":"1.1","status":200,"reason":"OK","headers":[["Content-Type","text/html"]],"body_len":4705,"body_truncated":false,"interim":[100]},"flags":{"pending":false,"gap":false,"decoded_with":["gzip"],"anomalies":["content_length_and_chunked"]}}"#;

    #[test]
    fn parses_contract_example() {
        let ex = parse_exchange(LINE, 3).expect("parse");
        assert_eq!(ex.index, 3);
        assert_eq!(ex.client, Some("10.0.0.1:5555".parse().expect("addr")));
        assert_eq!(ex.server, Some("10.0.0.2:80".parse().expect("addr")));
        assert_eq!(ex.depth, Some(1));
        assert_eq!(ex.method(), "GET");
        assert_eq!(ex.target(), "/x?y=1");
        let req = ex.request.as_ref().expect("request");
        assert_eq!(req.headers[1], ("User-Agent".to_string(), "curl".to_string()));
        assert_eq!(req.body_len, Some(0));
        let resp = ex.response.as_ref().expect("response");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body_len, Some(4705));
        assert_eq!(resp.interim, vec![100]);
        assert_eq!(ex.decoded_with, vec!["gzip".to_string()]);
        assert_eq!(ex.anomalies, vec!["content_length_and_chunked".to_string()]);
        assert!(!ex.has_no_request());
    }

    #[test]
    fn null_response_and_ipv6() {
        let line = r#"{"conn":{"client":"[fe80::20c:29ff:fef3:cf38]:58307","server":"[::1]:80"},"depth":2,"request":{"method":"GET","target":"/","version":"1.1","headers":[],"body_len":0},"response":null,"flags":{"pending":true}}"#;
        let ex = parse_exchange(line, 0).expect("parse");
        assert!(ex.response.is_none());
        assert!(ex.pending);
        assert_eq!(ex.client.map(|c| c.port()), Some(58307));
        assert_eq!(ex.server.map(|s| s.ip()), Some("::1".parse().expect("ip")));
        assert_eq!(ex.status(), None);
    }

    #[test]
    fn output_with_garbage_line() {
        let text = format!("{LINE}\nnot json\n\n{LINE}\n");
        let out = parse_output(Path::new("x.pcap"), &text);
        assert_eq!(out.exchanges.len(), 2);
        assert_eq!(out.exchanges[1].index, 1);
        assert_eq!(out.bad_lines.len(), 1);
        assert_eq!(out.bad_lines[0].0, 2);
    }

    #[test]
    fn header_helpers() {
        let h = vec![
            ("Accept".to_string(), "a".to_string()),
            ("accept".to_string(), "b".to_string()),
            ("Host".to_string(), "x".to_string()),
        ];
        assert_eq!(header_values(&h, "ACCEPT"), vec!["a", "b"]);
        assert_eq!(header_joined(&h, "accept").as_deref(), Some("a, b"));
        assert_eq!(header_joined(&h, "cookie"), None);
    }

    #[test]
    fn sockaddr_forms() {
        assert!(parse_sockaddr("1.2.3.4:80").is_some());
        assert!(parse_sockaddr("[::1]:80").is_some());
        assert_eq!(parse_sockaddr("::1:80").map(|a| a.port()), Some(80));
        assert!(parse_sockaddr("nonsense").is_none());
    }
}
