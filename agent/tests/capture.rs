//! Live capture against the real kernel: real HTTP servers and clients (agent/tests/capture/
//! http_peer.py) on `lo` and across a veth pair into a network namespace the test creates,
//! captured by both backends; every exchange must arrive exactly once with the right bodies.
//! Also: interfaces that appear after start-up, no stale TC programs after SIGTERM or SIGKILL,
//! a load run with zero missed exchanges, and overload drops that are counted.
//!
//! These need root (eBPF, namespaces). Without it each test says "skipped" and passes.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_akto-tap")
}

fn root_or_skip(test: &str) -> bool {
    support::root_or_skip(test, "eBPF, network namespaces")
}

/// Ports and subnets unique to each test in this process.
fn unique() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn tmp(name: &str) -> PathBuf {
    support::scratch_dir("capture").join(name)
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A network namespace joined to this one by a veth pair: `host_if` (here, `.1`) and the
/// namespace side (`.2`). Removed on drop.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
    ns_ip: String,
}

impl Netns {
    fn create(tag: &str) -> Netns {
        let n = unique();
        let id = std::process::id() % 10_000;
        let name = format!("akto-tap-{id}-{tag}{n}");
        let host_if = format!("at{id}{n}h");
        let ns_if = format!("at{id}{n}n");
        // In u32: `id * 7` overflows u16 for process ids whose last four digits exceed 9362.
        let subnet = format!("10.213.{}", (id * 7 + u32::from(n)) % 250 + 1);
        let (host_ip, ns_ip) = (format!("{subnet}.1"), format!("{subnet}.2"));
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if]);
        sh(&["ip", "link", "set", &ns_if, "netns", &name]);
        sh(&["ip", "addr", "add", &format!("{host_ip}/24"), "dev", &host_if]);
        sh(&["ip", "link", "set", &host_if, "up"]);
        sh(&["ip", "netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if]);
        sh(&["ip", "netns", "exec", &name, "ip", "link", "set", &ns_if, "up"]);
        sh(&["ip", "netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Netns { name, host_if, host_ip, ns_ip }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).output();
    }
}

/// The HTTP server, optionally inside a namespace. Killed on drop.
struct Server {
    child: Child,
}

impl Server {
    fn start(netns: Option<&str>, host: &str, port: u16) -> Server {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3"]);
                c
            }
            None => Command::new("python3"),
        };
        let mut child = cmd
            .arg(support::http_peer_script())
            .args(["serve", host, &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("server output");
        assert_eq!(line.trim(), "ready", "server did not start");
        Server { child }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client scenario; returns the exchanges it completed.
fn client(host: &str, port: u16, scenario: &str, tag: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(support::http_peer_script())
        .args(["client", host, &port.to_string(), scenario, tag])
        .output()
        .expect("python3 client");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("client line")).collect()
}

/// The agent running `capture`, its stderr collected.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    output: PathBuf,
    stats: PathBuf,
}

impl Agent {
    fn start(name: &str, args: &[&str]) -> Agent {
        let output = tmp(&format!("{name}.jsonl"));
        let stats = tmp(&format!("{name}.stats.json"));
        let mut child = Command::new(bin())
            .arg("capture")
            .args(args)
            .arg("--output")
            .arg(&output)
            .arg("--stats-json")
            .arg(&stats)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("akto-tap");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        });
        Agent { child, stderr, output, stats }
    }

    fn log(&self) -> String {
        self.stderr.lock().expect("lock").join("\n")
    }

    fn wait_for(&self, needle: &str, within: Duration) {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("agent never said {needle:?}; it said:\n{}", self.log());
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("kill");
    }

    /// SIGTERM, wait, and return (records, stats).
    fn stop(mut self) -> (Vec<Value>, Value) {
        // Let the last packets reach the ring buffer and the shards.
        std::thread::sleep(Duration::from_millis(500));
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "agent failed: {status}\n{}", self.log());
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let records = text.lines().map(|l| serde_json::from_str(l).expect("record line")).collect();
        let stats =
            serde_json::from_str(&std::fs::read_to_string(&self.stats).expect("stats file")).expect("stats json");
        (records, stats)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

type Key = (String, String, String, String, String);

fn expected_keys(exchanges: &[Value]) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for e in exchanges {
        let k = (
            e["method"].as_str().unwrap_or_default().to_string(),
            e["path"].as_str().unwrap_or_default().to_string(),
            e["status"].to_string(),
            e["req_sha"].as_str().unwrap_or_default().to_string(),
            e["resp_sha"].as_str().unwrap_or_default().to_string(),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn captured_keys(records: &[Value], tag: &str) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for r in records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag))) {
        let k = (
            r["method"].as_str().unwrap_or_default().to_string(),
            r["path"].as_str().unwrap_or_default().to_string(),
            r["statusCode"].as_str().unwrap_or_default().to_string(),
            sha(r["requestPayload"].as_str().unwrap_or_default()),
            sha(r["responsePayload"].as_str().unwrap_or_default()),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// Every exchange the client completed was captured exactly once, with the right bodies.
fn assert_exactly_once(expected: &[Value], records: &[Value], tag: &str, log: &str) {
    let want = expected_keys(expected);
    let got = captured_keys(records, tag);
    let missing: Vec<_> = want.iter().filter(|(k, n)| got.get(*k) != Some(n)).map(|(k, _)| &k.1).collect();
    let extra: Vec<_> = got.iter().filter(|(k, n)| want.get(*k) != Some(n)).map(|(k, n)| (&k.1, n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected, {} captured; missing or wrong: {missing:?}; unexpected or duplicated: {extra:?}\nagent:\n{log}",
        want.values().sum::<usize>(),
        got.values().sum::<usize>()
    );
}

fn counter(stats: &Value, section: &str, name: &str) -> u64 {
    stats[section][name].as_u64().unwrap_or_else(|| stats["kernel"][section][name].as_u64().unwrap_or(0))
}

fn run_scenarios_on_lo(backend: &str, tag: &str) {
    let p = port();
    let _server = Server::start(None, "127.0.0.1", p);
    let agent = Agent::start(tag, &["--backend", backend, "--interface", "lo", "--ports", &p.to_string()]);
    agent.wait_for(&format!("{backend} attached to lo"), Duration::from_secs(20));
    let expected = client("127.0.0.1", p, "all", tag);
    assert!(expected.len() >= 80, "client completed only {} exchanges", expected.len());
    let log = agent.log();
    let (records, stats) = agent.stop();
    assert_exactly_once(&expected, &records, tag, &log);
    assert_eq!(stats["backend"], backend);
    assert_eq!(counter(&stats, "pipeline", "queue_full_packets"), 0);
    for r in records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag))) {
        assert_eq!(r["source"], "MIRRORING");
        assert_eq!(r["direction"], "1", "server on a local address: inbound");
    }
}

#[test]
fn ebpf_on_lo_captures_every_exchange_once() {
    if root_or_skip("ebpf_on_lo") {
        run_scenarios_on_lo("ebpf", "ebpflo");
    }
}

#[test]
fn pcap_on_lo_captures_every_exchange_once() {
    if root_or_skip("pcap_on_lo") {
        run_scenarios_on_lo("pcap", "pcaplo");
    }
}

fn run_scenarios_on_veth(backend: &str, tag: &str) {
    let ns = Netns::create(tag);
    let p = 8080;
    let _server = Server::start(Some(&ns.name), &ns.ns_ip, p);
    let agent = Agent::start(tag, &["--backend", backend, "--interface", &ns.host_if, "--ports", "8080"]);
    agent.wait_for(&format!("{backend} attached to {}", ns.host_if), Duration::from_secs(20));
    let expected = client(&ns.ns_ip, p, "all", tag);
    let log = agent.log();
    let (records, stats) = agent.stop();
    assert_exactly_once(&expected, &records, tag, &log);
    assert_eq!(stats["interfaces"][0], ns.host_if.as_str());
    let ours: Vec<&Value> = records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag))).collect();
    assert!(ours.iter().all(|r| r["ip"].as_str().is_some_and(|ip| ip.starts_with(&format!("{}:", ns.host_ip)))));
    assert!(ours.iter().all(|r| r["destIp"] == format!("{}:8080", ns.ns_ip).as_str()));
    // The client is this host, the server is across the veth: outbound.
    assert!(ours.iter().all(|r| r["direction"] == "2"));
}

#[test]
fn ebpf_on_veth_between_namespaces() {
    if root_or_skip("ebpf_on_veth") {
        run_scenarios_on_veth("ebpf", "ev");
    }
}

#[test]
fn pcap_on_veth_between_namespaces() {
    if root_or_skip("pcap_on_veth") {
        run_scenarios_on_veth("pcap", "pv");
    }
}

/// Programs attached to an interface's TCX hooks (names), asked of the kernel.
fn tc_programs(iface: &str) -> Vec<String> {
    use aya::programs::tc::{SchedClassifier, TcAttachType};
    let mut names = Vec::new();
    for hook in [TcAttachType::Ingress, TcAttachType::Egress] {
        if let Ok((_, progs)) = SchedClassifier::query_tcx(iface, hook) {
            names.extend(
                progs.iter().filter_map(|p| p.name_as_str().map(str::to_string)).filter(|n| n.starts_with("tap_")),
            );
        }
    }
    names.sort();
    names
}

#[test]
fn interface_added_after_start_is_attached_and_detached_when_gone() {
    if !root_or_skip("interface_added_after_start") {
        return;
    }
    let agent = Agent::start("late", &["--backend", "ebpf", "--interface", "any", "--ports", "8080"]);
    std::thread::sleep(Duration::from_millis(500));
    let ns = Netns::create("late");
    agent.wait_for(&format!("ebpf attached to {}", ns.host_if), Duration::from_secs(10));
    let _server = Server::start(Some(&ns.name), &ns.ns_ip, 8080);
    let expected = client(&ns.ns_ip, 8080, "keepalive", "late");
    let host_if = ns.host_if.clone();
    drop(ns);
    agent.wait_for(&format!("detached from {host_if}"), Duration::from_secs(10));
    let log = agent.log();
    let (records, _) = agent.stop();
    assert_exactly_once(&expected, &records, "late", &log);
}

#[test]
fn no_stale_tc_programs_after_sigterm_or_sigkill() {
    if !root_or_skip("no_stale_tc_programs") {
        return;
    }
    let ns = Netns::create("stale");
    for sig in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
        let mut agent = Agent::start(&format!("stale-{sig}"), &["--backend", "ebpf", "--interface", &ns.host_if]);
        agent.wait_for(&format!("ebpf attached to {}", ns.host_if), Duration::from_secs(20));
        assert_eq!(tc_programs(&ns.host_if), ["tap_egress", "tap_ingress"], "attached on both hooks");
        agent.signal(sig);
        let _ = agent.child.wait();
        let end = Instant::now() + Duration::from_secs(5);
        while !tc_programs(&ns.host_if).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(tc_programs(&ns.host_if).is_empty(), "programs left after {sig}: {:?}", tc_programs(&ns.host_if));
    }
}

#[test]
fn load_has_zero_missed_exchanges_at_a_moderate_rate() {
    if !root_or_skip("load_moderate") {
        return;
    }
    let p = port();
    let _server = Server::start(None, "127.0.0.1", p);
    let agent = Agent::start("load", &["--backend", "ebpf", "--interface", "lo", "--ports", &p.to_string()]);
    agent.wait_for("ebpf attached to lo", Duration::from_secs(20));
    // 8 workers x 8 requests x 40 rounds = 2560 exchanges over many keep-alive connections.
    let mut expected = Vec::new();
    for round in 0..40 {
        expected.extend(client("127.0.0.1", p, "concurrent", &format!("load-r{round}-")));
    }
    assert_eq!(expected.len(), 2560);
    let log = agent.log();
    let (records, stats) = agent.stop();
    assert_exactly_once(&expected, &records, "load-r", &log);
    assert_eq!(stats["kernel"]["drops"]["ring_full"], 0);
    assert_eq!(counter(&stats, "pipeline", "queue_full_packets"), 0);
}

#[test]
fn overload_drops_are_counted_not_silent() {
    if !root_or_skip("overload") {
        return;
    }
    let p = port();
    let _server = Server::start(None, "127.0.0.1", p);
    // One worker with a one-batch queue writing to a pipe nobody reads for a while: the worker
    // blocks, its queue fills, and the capture thread must drop and count.
    let stats_path = tmp("overload.stats.json");
    let mut agent = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} capture --backend ebpf --interface lo --ports {p} --workers 1 --queue-batches 1 --stats-json {} | (sleep 4; cat > /dev/null)",
            bin(),
            stats_path.display()
        ))
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent");
    std::thread::sleep(Duration::from_secs(1));
    let mut expected = 0;
    for round in 0..6 {
        expected += client("127.0.0.1", p, "large", &format!("ovl{round}")).len();
    }
    std::thread::sleep(Duration::from_secs(4));
    // SIGTERM to the agent only (not the shell around it), then wait for the pipeline to end.
    let pids = Command::new("pgrep")
        .args(["-f", &format!("^{} capture --backend ebpf --interface lo --ports {p} ", bin())])
        .output()
        .expect("pgrep");
    let pids = String::from_utf8_lossy(&pids.stdout).to_string();
    assert!(!pids.trim().is_empty(), "agent not running");
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
    let _ = agent.wait();
    let stats: Value = serde_json::from_str(&std::fs::read_to_string(&stats_path).expect("stats")).expect("json");
    let dropped = stats["pipeline"]["queue_full_packets"].as_u64().unwrap_or(0);
    let exchanges = stats["pipeline"]["exchanges"].as_u64().unwrap_or(0);
    assert!(dropped > 0, "no drop counted under overload: {stats}");
    // What was lost shows: exchanges with gaps, or fewer complete exchanges than requests.
    let gaps = stats["engine"]["gaps"].as_u64().unwrap_or(0);
    assert!(gaps > 0 || exchanges < expected as u64, "drops counted but every exchange whole? {stats}");
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("write");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.trim().parse().ok()))
}

/// A config file drives the capture (flags still win), metrics are scraped from the running
/// agent, and the logs are JSON when asked.
#[test]
fn config_file_metrics_scrape_and_json_logs() {
    if !root_or_skip("metrics_scrape") {
        return;
    }
    let p = port();
    let mport = port();
    let _server = Server::start(None, "127.0.0.1", p);
    let cfg = tmp("metrics.toml");
    std::fs::write(
        &cfg,
        format!(
            "[capture]\ninterfaces = [\"lo\"]\nbackend = \"pcap\"\nports = [{p}]\n\n[record]\naccount_id = \"4242\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n\n[log]\nformat = \"json\"\n"
        ),
    )
    .expect("config");
    // `--backend ebpf` on the command line beats the file's `pcap`.
    let agent = Agent::start("metrics", &["--config", cfg.to_str().expect("path"), "--backend", "ebpf"]);
    agent.wait_for("ebpf attached to lo", Duration::from_secs(20));
    let expected = client("127.0.0.1", p, "keepalive", "mtr");
    // Exchanges are counted as they complete; the connection closed, so all 20 are in.
    let end = Instant::now() + Duration::from_secs(10);
    let mut body = String::new();
    while Instant::now() < end {
        body = http_get(mport, "/metrics").1;
        if metric(&body, "akto_tap_exchanges_total").unwrap_or(0.0) >= expected.len() as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(metric(&body, "akto_tap_exchanges_total"), Some(expected.len() as f64), "{body}");
    assert_eq!(metric(&body, "akto_tap_up{backend=\"ebpf\"}"), Some(1.0));
    assert_eq!(metric(&body, "akto_tap_interfaces_attached"), Some(1.0));
    assert_eq!(metric(&body, "akto_tap_drops_total{stage=\"kernel\",cause=\"ring_full\"}"), Some(0.0));
    assert_eq!(metric(&body, "akto_tap_drops_total{stage=\"queue\",cause=\"queue_full\"}"), Some(0.0));
    assert!(metric(&body, "akto_tap_kernel_packets_total").unwrap_or(0.0) > 0.0);
    assert!(metric(&body, "akto_tap_engine_flows_created_total").unwrap_or(0.0) >= 1.0);
    assert!(body.contains("# TYPE akto_tap_queue_depth gauge"));
    assert_eq!(http_get(mport, "/healthz").0, 200);
    assert_eq!(http_get(mport, "/readyz").0, 200);
    assert_eq!(http_get(mport, "/nope").0, 404);
    let log = agent.log();
    let (records, _) = agent.stop();
    assert_exactly_once(&expected, &records, "mtr", &log);
    assert!(records.iter().all(|r| r["akto_account_id"] == "4242"), "the file's [record] applies");
    let json_lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!json_lines.is_empty() && json_lines.len() == log.lines().count(), "every log line is JSON:\n{log}");
    assert!(json_lines
        .iter()
        .any(|j| j["message"].as_str().is_some_and(|m| m.contains("attached to lo")) && j["level"] == "INFO"));
}

#[test]
fn a_bad_config_file_stops_the_agent_with_its_line() {
    let cfg = tmp("bad.toml");
    std::fs::write(&cfg, "[capture]\ninterfaces = [\"lo\"]\nbackedn = \"pcap\"\n").expect("config");
    let out = Command::new(bin()).args(["capture", "--config"]).arg(&cfg).output().expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3: unknown key `backedn` in [capture]"), "{err}");
}
