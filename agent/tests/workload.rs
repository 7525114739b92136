//! Workload attribution end to end: `akto-tap capture -i lo --backend pcap` watching a Python
//! HTTP server, with a fake Kubernetes API server (a test thread) that lists a pod whose IP is
//! 127.0.0.1. Records must carry the server's `process_id`/`process_name` and the pod tags; without
//! `--k8s-api` (and outside a cluster) the records carry the process and no pod tags.
//!
//! Needs root (capture on `lo`); without it each test says "skipped" and passes.
//! The attributor's own tests against procfs and the fake API server are in
//! `agent/src/workload/tests_live.rs` (the agent is a binary crate).

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn root_or_skip(test: &str) -> bool {
    support::root_or_skip(test, "live capture")
}

fn tmp(name: &str) -> PathBuf {
    support::scratch_dir("workload").join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

const PODS: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[
  {"metadata":{"name":"web-0","namespace":"shop","uid":"7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d","labels":{"app":"web","tier":"front"}},
   "spec":{"nodeName":"n1"},"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}}]}"#;

/// Answers `GET /api/v1/pods?fieldSelector=spec.nodeName=n1` with `Bearer t0ken`, else 401/400.
fn fake_api() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let _ = serve(s);
        }
    });
    addr
}

fn serve(mut s: TcpStream) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let target = head.split_whitespace().nth(1).unwrap_or_default().replace("%3d", "=");
    let (status, body) = if !head.contains("\r\nauthorization: bearer t0ken\r\n") {
        ("401 Unauthorized", "{}")
    } else if !target.starts_with("/api/v1/pods?") || !target.contains("fieldselector=spec.nodename=n1") {
        ("400 Bad Request", "{}")
    } else {
        ("200 OK", PODS)
    };
    write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_server(port: u16) -> Proc {
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "python http.server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Proc(child)
}

/// `GET /metrics` of the agent.
fn metrics(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("metrics connect");
    write!(s, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// Runs the agent (metrics on `metrics_port`) while three GETs are made; returns the records
/// with `tag` in the path, the agent's log and its metrics before it stopped.
fn capture(name: &str, port: u16, extra: &[&str], ready: &[&str], tag: &str) -> (Vec<Value>, String, String) {
    let metrics_port = free_port();
    let output = tmp(&format!("{name}.jsonl"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_akto-tap"))
        .args(["capture", "-i", "lo", "--backend", "pcap", "--ports", &port.to_string(), "--quiet"])
        .args(extra)
        .arg("--output")
        .arg(&output)
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("AKTO_TAP_NODE_NAME")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("akto-tap");
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    let err = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("lock");
            l.push_str(&line);
            l.push('\n');
        }
    });
    let agent = Proc(child);
    let end = Instant::now() + Duration::from_secs(20);
    while !ready.iter().all(|r| log.lock().expect("lock").contains(r)) {
        assert!(Instant::now() < end, "agent never said {ready:?}:\n{}", log.lock().expect("lock"));
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(s, "GET /{tag}-{i} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").expect("send");
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
    }
    std::thread::sleep(Duration::from_millis(700));
    let metrics = metrics(metrics_port);
    let pid = nix::unistd::Pid::from_raw(agent.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let mut agent = agent;
    let status = agent.0.wait().expect("wait");
    let log = log.lock().expect("lock").clone();
    assert!(status.success(), "agent failed: {status}\n{log}");
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let records = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("record"))
        .filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag)))
        .collect();
    (records, log, metrics)
}

#[test]
fn records_carry_the_server_process_and_its_pod() {
    if !root_or_skip("records_carry_the_server_process_and_its_pod") {
        return;
    }
    let api = fake_api();
    let token = tmp("token");
    std::fs::write(&token, "t0ken\n").expect("token");
    let port = free_port();
    let server = http_server(port);
    let (records, log, metrics) = capture(
        "k8s",
        port,
        &[
            "--k8s-api",
            &format!("http://{api}"),
            "--node-name",
            "n1",
            "--k8s-token-file",
            token.to_str().expect("utf-8"),
            "--k8s-refresh-secs",
            "1",
        ],
        &["pcap attached to lo", "pods of this node listed"],
        "wl-k8s",
    );
    assert_eq!(records.len(), 3, "{records:?}\n{log}");
    for r in &records {
        assert_eq!(r["process_id"].as_str(), Some(server.0.id().to_string().as_str()), "{r}");
        assert!(r["process_name"].as_str().is_some_and(|n| n.starts_with("python")), "{r}");
        let tag: Value = serde_json::from_str(r["tag"].as_str().expect("tag")).expect("tag json");
        assert_eq!(tag["namespace"], "shop", "{tag}");
        assert_eq!(tag["pod"], "web-0");
        assert_eq!(tag["node"], "n1");
        assert_eq!(tag["label.app"], "web");
        assert_eq!(tag["label.tier"], "front");
    }
    for line in [
        "akto_tap_workload_k8s_up 1",
        "akto_tap_workload_pods 1",
        "akto_tap_workload_lookups_total{result=\"process\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "no {line:?} in\n{metrics}");
    }
}

#[test]
fn outside_kubernetes_records_carry_the_process_only() {
    if !root_or_skip("outside_kubernetes_records_carry_the_process_only") {
        return;
    }
    let port = free_port();
    let server = http_server(port);
    let (records, log, metrics) = capture("plain", port, &[], &["pcap attached to lo"], "wl-plain");
    assert_eq!(records.len(), 3, "{records:?}\n{log}");
    assert!(!log.contains("pods"), "nothing Kubernetes is attempted: {log}");
    for r in &records {
        assert_eq!(r["process_id"].as_str(), Some(server.0.id().to_string().as_str()), "{r}");
        assert!(r.get("tag").is_none_or(Value::is_null), "{r}");
    }
    assert!(
        metrics.contains("akto_tap_workload_k8s_refreshes_total 0") && metrics.contains("akto_tap_workload_pods 0"),
        "{metrics}"
    );
}
