//! Async guardrails on live MCP traffic: a real MCP-over-HTTP server and client (Python,
//! agent/tests/guardrails/mcp_peer.py) on loopback, captured by `akto-tap capture --backend ebpf
//! --guardrails async`, with threats reported to a real Kafka-protocol broker (Tansu) on the
//! guardrail-events topic and to a fake Akto threat backend served by this test.
//!
//! The same MCP conversation over TLS (Python's ssl on both ends) is captured through the OpenSSL
//! uprobes (`--tls on`) and reported the same way.
//!
//! Needs root (eBPF). Without root, or without `tansu` for the Kafka test, a test says "skipped".

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GUARD_TOPIC: &str = "akto.threat_detection.guardrail_events";

fn root_or_skip(test: &str) -> bool {
    support::root_or_skip(test, "eBPF")
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guardrails/mcp_peer.py")
}

fn tmp(name: &str) -> PathBuf {
    support::scratch_dir("guardrails").join(name)
}

/// The MCP server. Killed on drop.
struct McpServer {
    child: Child,
    port: u16,
    tls: bool,
}

impl McpServer {
    fn start() -> McpServer {
        McpServer::spawn(None)
    }

    /// Over TLS with a fresh self-signed certificate (openssl CLI).
    fn start_tls() -> McpServer {
        let (cert, key) = (tmp("mcp-cert.pem"), tmp("mcp-key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
        McpServer::spawn(Some((&cert, &key)))
    }

    fn spawn(tls: Option<(&Path, &Path)>) -> McpServer {
        let port = support::free_port();
        let mut cmd = Command::new("python3");
        if let Some((cert, key)) = tls {
            cmd.env("PEER_TLS_CERT", cert).env("PEER_TLS_KEY", key);
        }
        let mut child = cmd
            .arg(peer_script())
            .args(["serve", "127.0.0.1", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 MCP server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("server output");
        assert_eq!(line.trim(), "ready", "MCP server did not start");
        McpServer { child, port, tls: tls.is_some() }
    }

    /// Runs the client; returns the exchanges it completed.
    fn client(&self, args: &[&str]) -> Vec<Value> {
        let out = Command::new("python3")
            .env("PEER_TLS", if self.tls { "1" } else { "0" })
            .arg(peer_script())
            .args(["client", "127.0.0.1", &self.port.to_string()])
            .args(args)
            .output()
            .expect("python3 MCP client");
        assert!(out.status.success(), "MCP client failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("client line")).collect()
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the fake threat backend received.
#[derive(Debug, Clone)]
struct Posted {
    path: String,
    authorization: String,
    body: Value,
    status: u16,
}

/// Akto's threat backend, faked: answers `503` to the first `fail_first` requests (the reporter
/// must retry), `200 {}` afterwards, and keeps every request.
struct FakeBackend {
    port: u16,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl FakeBackend {
    fn start(fail_first: usize) -> FakeBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let posted = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(AtomicUsize::new(0));
        let p = Arc::clone(&posted);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (p, seen) = (Arc::clone(&p), Arc::clone(&seen));
                std::thread::spawn(move || serve_backend(conn, &p, &seen, fail_first));
            }
        });
        FakeBackend { port, posted }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn posted(&self) -> Vec<Posted> {
        self.posted.lock().expect("lock").clone()
    }
}

fn serve_backend(conn: TcpStream, posted: &Mutex<Vec<Posted>>, seen: &AtomicUsize, fail_first: usize) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut conn = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
        let (mut len, mut authorization) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => authorization = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = if seen.fetch_add(1, Ordering::SeqCst) < fail_first { 503 } else { 200 };
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        posted.lock().expect("lock").push(Posted { path, authorization, body, status });
        let reply = if status == 200 { "HTTP/1.1 200 OK" } else { "HTTP/1.1 503 Service Unavailable" };
        if write!(conn, "{reply}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}").is_err() {
            return;
        }
    }
}

/// `capture` on lo with the guardrails on; waits until it is attached.
fn start_agent(name: &str, mcp_port: u16, extra: &[&str]) -> (support::Agent, PathBuf, PathBuf) {
    let output = tmp(&format!("{name}.jsonl"));
    let stats = tmp(&format!("{name}.stats.json"));
    let port = mcp_port.to_string();
    let mut args = vec!["capture", "--backend", "ebpf", "-i", "lo", "--ports", &port, "--guardrails", "async"];
    let (o, s) = (output.to_string_lossy().to_string(), stats.to_string_lossy().to_string());
    args.extend(["--output", &o, "--stats-json", &s]);
    args.extend(extra);
    let mut agent = support::Agent::spawn(&args);
    if agent.wait_line("ebpf attached to lo", Duration::from_secs(30)).is_none() {
        let (_, log) = agent.terminate();
        panic!("the agent did not attach to lo:\n{log}");
    }
    (agent, output, stats)
}

fn records(output: &Path) -> Vec<Value> {
    std::fs::read_to_string(output)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("record line"))
        .collect()
}

/// Every exchange the client completed is in the output exactly once, bodies unchanged.
fn assert_records_unchanged(rows: &[Value], records: &[Value], tag: &str, log: &str) {
    let key = |path: &Value, req: &Value, resp: &Value| {
        (
            path.as_str().unwrap_or_default().to_string(),
            req.as_str().unwrap_or_default().to_string(),
            resp.as_str().unwrap_or_default().to_string(),
        )
    };
    let mut want: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in rows {
        *want.entry(key(&r["path"], &r["req"], &r["resp"])).or_insert(0) += 1;
    }
    let mut got: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for r in records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag))) {
        *got.entry(key(&r["path"], &r["requestPayload"], &r["responsePayload"])).or_insert(0) += 1;
    }
    let missing: Vec<_> = want.iter().filter(|(k, n)| got.get(*k) != Some(n)).map(|(k, _)| (&k.0, &k.1)).collect();
    let extra: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(n)).map(|(k, n)| (&k.0, n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "records: missing {missing:?}, unexpected {extra:?}\nagent:\n{log}"
    );
}

fn case_of(path: &str) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// The client's exchange of a case and JSON-RPC method (the `nth` one).
fn row<'a>(rows: &'a [Value], case: &str, rpc: &str, nth: usize) -> &'a Value {
    rows.iter()
        .filter(|r| r["case"] == case && r["rpc"] == rpc)
        .nth(nth)
        .unwrap_or_else(|| panic!("no {case} {rpc} #{nth}"))
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok()))
}

#[test]
fn mcp_threats_reach_kafka_and_the_threat_backend_exactly_once() {
    if !root_or_skip("mcp_threats_reach_kafka_and_the_threat_backend_exactly_once") {
        return;
    }
    let Some(broker) = support::broker_or_skip("mcp_threats_reach_kafka_and_the_threat_backend_exactly_once") else {
        return;
    };
    broker.create_topic("akto.api.logs", 1);
    broker.create_topic(GUARD_TOPIC, 1);
    let server = McpServer::start();
    let backend = FakeBackend::start(1);
    let (addr, url, spool) = (broker.addr(), backend.url(), tmp("spool-live").to_string_lossy().to_string());
    let metrics_port = support::free_port().to_string();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let (agent, output, stats) = start_agent(
        "live",
        server.port,
        &[
            "--kafka-brokers",
            &addr,
            "--spool-dir",
            &spool,
            "--threat-backend-url",
            &url,
            "--threat-backend-token",
            "tok-123",
            "--guard-log",
            "--metrics-listen",
            &metrics_addr,
        ],
    );
    let tag = "gl1";
    let rows = server.client(&[tag]);
    assert_eq!(rows.len(), 28, "the client completed {} exchanges", rows.len());

    // Metrics while running: the scanners count threats by category.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = support::http(&metrics_addr, "GET", "/metrics", &[], b"").1;
        if metric(&text, "akto_tap_guard_threats_total{category=\"pii\"}") == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for (name, want) in [
        ("akto_tap_guard_threats_total{category=\"prompt_injection\"}", 1.0),
        ("akto_tap_guard_threats_total{category=\"tool_poisoning\"}", 2.0),
        ("akto_tap_guard_threats_total{category=\"secrets\"}", 1.0),
        ("akto_tap_guard_threats_total{category=\"pii\"}", 1.0),
        ("akto_tap_guard_rug_pulls_total", 1.0),
        ("akto_tap_guard_dropped_total{cause=\"queue_full\"}", 0.0),
    ] {
        assert_eq!(metric(&text, name), Some(want), "{name}\n{text}");
    }

    std::thread::sleep(Duration::from_millis(500));
    let (ok, log) = agent.terminate();
    assert!(ok, "agent failed:\n{log}");

    // The records flow to the normal output unchanged.
    assert_records_unchanged(&rows, &records(&output), tag, &log);

    // Expected threats: case → (category, direction, the original payload).
    let expected: BTreeMap<&str, (&str, &str, &Value)> = [
        ("inject", ("prompt_injection", "request", &row(&rows, "inject", "tools/call", 0)["req"])),
        ("poisoned", ("tool_poisoning", "response", &row(&rows, "poisoned", "tools/list", 0)["resp"])),
        ("secret", ("secrets", "response", &row(&rows, "secret", "tools/call", 0)["resp"])),
        ("rug", ("tool_poisoning", "response", &row(&rows, "rug", "tools/list", 2)["resp"])),
        ("sse", ("pii", "response", &row(&rows, "sse", "tools/call", 1)["resp"])),
    ]
    .into_iter()
    .collect();

    // (a) Kafka: one guardrail event per malicious case, none for benign traffic.
    let events: Vec<Value> =
        support::consume(&addr, GUARD_TOPIC, 1, expected.len(), Duration::from_secs(30), Duration::from_secs(3))
            .iter()
            .map(|m| serde_json::from_slice(&m.value).expect("event json"))
            .filter(|e: &Value| e["endpoint"]["path"].as_str().is_some_and(|p| p.contains(tag)))
            .collect();
    let mut by_case: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_case.entry(case_of(e["endpoint"]["path"].as_str().unwrap_or_default())).or_default().push(e);
    }
    assert_eq!(
        by_case.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "{events:#?}"
    );
    for (case, (category, direction, payload)) in &expected {
        let got = &by_case[*case];
        assert_eq!(got.len(), 1, "{case}: reported {} times: {got:#?}", got.len());
        let e = got[0];
        assert_eq!(e["category"], *category, "{case}: {e:#}");
        assert_eq!(e["direction"], *direction, "{case}");
        assert_eq!(&e["payload"], *payload, "{case}: original payload");
        assert_eq!(e["server"], format!("127.0.0.1:{}", server.port));
        assert!(e["client"].as_str().is_some_and(|c| c.starts_with("127.0.0.1:")));
        let findings = e["verdict"]["findings"].as_array().expect("findings");
        assert!(
            findings.iter().any(|f| f["scanner"] == *category
                && f["score"].as_f64().is_some()
                && f["reason"].is_string()
                && f["end"].as_u64() > f["start"].as_u64()),
            "{case}: {e:#}"
        );
        assert!(e["workload"].is_object());
    }
    assert_eq!(by_case["rug"][0]["subCategory"], "rug_pull");
    assert_eq!(by_case["poisoned"][0]["endpoint"]["tool"], "add");
    assert_eq!(by_case["sse"][0]["verdict"]["format"], "sse");

    // (b) The threat backend: the first POST was answered 503 and retried; then each case
    // arrived exactly once, with the token, Akto's fields and the original exchange.
    let posted = backend.posted();
    assert_eq!(posted.iter().filter(|p| p.status == 503).count(), 1);
    let accepted: Vec<&Posted> = posted.iter().filter(|p| p.status == 200).collect();
    let mut by_case: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for p in &accepted {
        assert_eq!(p.path, "/api/threat_detection/record_malicious_event");
        assert_eq!(p.authorization, "Bearer tok-123");
        let m = &p.body["maliciousEvent"];
        by_case.entry(case_of(m["latestApiEndpoint"].as_str().unwrap_or_default())).or_default().push(m);
    }
    assert_eq!(
        by_case.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>(),
        "{posted:#?}"
    );
    for (case, (category, direction, payload)) in &expected {
        let got = &by_case[*case];
        assert_eq!(got.len(), 1, "{case}: posted {} times", got.len());
        let m = got[0];
        assert_eq!(m["category"], *category, "{case}");
        assert_eq!(m["actor"], "127.0.0.1");
        assert_eq!(m["latestApiMethod"], "POST");
        assert_eq!(m["eventType"], "EVENT_TYPE_SINGLE");
        let api: Value = serde_json::from_str(m["latestApiPayload"].as_str().expect("latestApiPayload string"))
            .expect("record json");
        let side = if *direction == "request" { "requestPayload" } else { "responsePayload" };
        assert_eq!(&api[side], *payload, "{case}: original payload in latestApiPayload");
        assert_eq!(api["guardrailsDirection"], *direction);
        assert!(api["guardrailsVerdict"]["findings"].as_array().is_some_and(|f| !f.is_empty()));
    }

    // The summary counts the same.
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("stats json");
    let g = &stats["guardrails"];
    assert_eq!(g["threats"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum::<u64>()), Some(5), "{g:#}");
    assert_eq!(g["delivered"]["kafka"], 5, "{g:#}");
    assert_eq!(g["delivered"]["threat_backend"], 5, "{g:#}");
    assert_eq!(g["rug_pulls"], 1);
    assert_eq!(g["dropped"].as_object().map(|o| o.values().filter_map(Value::as_u64).sum::<u64>()), Some(0));
    assert!(g["failed"].as_object().is_some_and(|o| o.is_empty()), "{g:#}");
    assert_eq!(log.matches("guardrails threat").count(), 5, "--guard-log: one warning per threat\n{log}");
}

#[test]
fn a_full_guard_queue_drops_and_counts_without_touching_the_capture() {
    if !root_or_skip("a_full_guard_queue_drops_and_counts_without_touching_the_capture") {
        return;
    }
    let server = McpServer::start();
    let backend = FakeBackend::start(0);
    let url = backend.url();
    let (agent, output, stats) =
        start_agent("burst", server.port, &["--threat-backend-url", &url, "--guard-queue", "1"]);
    let tag = "gb1";
    let rows = server.client(&[tag, "burst", "400"]);
    assert_eq!(rows.len(), 400);
    std::thread::sleep(Duration::from_millis(500));
    let (ok, log) = agent.terminate();
    assert!(ok, "agent failed:\n{log}");
    assert_records_unchanged(&rows, &records(&output), tag, &log);
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("stats json");
    let g = &stats["guardrails"];
    let dropped = g["dropped"]["queue_full"].as_u64().unwrap_or(0);
    assert!(dropped > 0, "a queue of 1 under a burst must overflow: {g:#}");
    assert_eq!(g["offered"], 400, "{g:#}");
    assert_eq!(g["exchanges_scanned"].as_u64().unwrap_or(0) + dropped, 400, "every offer is scanned or counted: {g:#}");
    assert_eq!(stats["pipeline"]["queue_full_packets"], 0, "the capture itself dropped nothing");
    assert!(backend.posted().is_empty(), "benign burst: no threat");
}

#[test]
fn mcp_over_tls_threats_reach_the_threat_backend_exactly_once() {
    if !root_or_skip("mcp_over_tls_threats_reach_the_threat_backend_exactly_once") {
        return;
    }
    let server = McpServer::start_tls();
    let backend = FakeBackend::start(0);
    let url = backend.url();
    let (agent, output, stats) = start_agent("tls", server.port, &["--tls", "on", "--threat-backend-url", &url]);
    let tag = "gtls";
    let rows = server.client(&[tag]);
    assert_eq!(rows.len(), 28, "the client completed {} exchanges", rows.len());
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(20);
    while backend.posted().len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, log) = agent.terminate();
    assert!(ok, "agent failed:\n{log}");
    // The plaintext reached the records unchanged (the packet capture saw only ciphertext).
    assert_records_unchanged(&rows, &records(&output), tag, &log);
    let mut by_case: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in backend.posted().into_iter().filter(|p| p.status == 200) {
        let m = p.body["maliciousEvent"].clone();
        by_case.entry(case_of(m["latestApiEndpoint"].as_str().unwrap_or_default())).or_default().push(m);
    }
    let want: BTreeMap<&str, &str> = [
        ("inject", "prompt_injection"),
        ("poisoned", "tool_poisoning"),
        ("rug", "tool_poisoning"),
        ("secret", "secrets"),
        ("sse", "pii"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        by_case.keys().map(String::as_str).collect::<Vec<_>>(),
        want.keys().copied().collect::<Vec<_>>(),
        "{by_case:#?}"
    );
    for (case, category) in &want {
        assert_eq!(by_case[*case].len(), 1, "{case} reported {} times", by_case[*case].len());
        assert_eq!(by_case[*case][0]["category"], *category, "{case}");
    }
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats")).expect("stats json");
    assert!(stats["tls"]["bytes"].as_u64().is_some_and(|b| b > 0), "{}", stats["tls"]);
    assert_eq!(stats["guardrails"]["rug_pulls"], 1);
}
