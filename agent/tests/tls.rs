//! TLS plaintext capture against the real kernel: OpenSSL uprobes on real clients and servers
//! over loopback — Python's `ssl` (http_peer.py with TLS: keep-alive, pipelining, concurrency,
//! bodies over 64 KiB), curl, and `openssl s_server -WWW` — every exchange captured exactly once
//! with the right bodies, although both ends are traced and the packet capture sees the
//! encrypted copy of every connection. Also: nothing from encrypted traffic with `--tls off`, a
//! libssl file that only a process started after the agent maps is found and probed, `openssl
//! s_client`/`s_server` (sockets given through `SSL_set_bio`, found in the `SSL`'s BIO), a
//! connection established before the agent started, and IPv6.
//!
//! These need root (uprobes). Without it each test says "skipped" and passes.

mod support;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root_or_skip(test: &str) -> bool {
    support::root_or_skip(test, "uprobes")
}

fn port() -> u16 {
    support::free_port()
}

fn dir(name: &str) -> PathBuf {
    let d = support::scratch_dir("tls").join(name);
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

/// A self-signed certificate and key (openssl CLI), shared by the tests of this process.
fn cert() -> (PathBuf, PathBuf) {
    static ONCE: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| {
        let d = dir("cert");
        let (c, k) = (d.join("cert.pem"), d.join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
            .arg("-keyout")
            .arg(&k)
            .arg("-out")
            .arg(&c)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
        (c, k)
    })
    .clone()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openssl s_server` on `addr` (as `-accept` takes it) with the test certificate: `-WWW` from
/// `www` when given, otherwise answering with what is written to its stdin. Returns once it
/// accepts connections.
fn s_server(addr: &str, www: Option<&Path>, extra: &[&str]) -> Proc {
    let (c, k) = cert();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-quiet"]).args(extra).args(["-accept", addr]);
    cmd.arg("-cert").arg(&c).arg("-key").arg(&k).stdout(Stdio::null()).stderr(Stdio::null());
    match www {
        Some(dir) => cmd.arg("-WWW").current_dir(dir).stdin(Stdio::null()),
        None => cmd.stdin(Stdio::piped()),
    };
    let server = Proc(cmd.spawn().expect("openssl s_server"));
    let up = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < up, "s_server did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// http_peer.py's server over TLS; `env` adds variables (e.g. LD_LIBRARY_PATH).
fn python_server(port: u16, env: &[(&str, &Path)]) -> Proc {
    let (c, k) = cert();
    let mut child = Command::new("python3")
        .arg(support::http_peer_script())
        .args(["serve", "127.0.0.1", &port.to_string()])
        .env("PEER_TLS_CERT", &c)
        .env("PEER_TLS_KEY", &k)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("server output");
    assert_eq!(line.trim(), "ready", "server did not start");
    Proc(child)
}

fn python_client(port: u16, scenario: &str, tag: &str, env: &[(&str, &Path)]) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(support::http_peer_script())
        .args(["client", "127.0.0.1", &port.to_string(), scenario, tag])
        .env("PEER_TLS", "1")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .expect("python3 client");
    assert!(out.status.success(), "client failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("client line")).collect()
}

/// `akto-tap capture` on `lo` with TLS capture (tests/support's agent), its output and stats files.
struct Agent {
    inner: support::Agent,
    output: PathBuf,
    stats: PathBuf,
}

impl Agent {
    fn start(name: &str, args: &[&str]) -> Agent {
        let d = dir(name);
        let (output, stats) = (d.join("records.jsonl"), d.join("stats.json"));
        let (o, s) = (output.to_string_lossy().into_owned(), stats.to_string_lossy().into_owned());
        let mut all =
            vec!["capture", "--interface", "lo", "--tls-rescan-secs", "0.5", "--output", &o, "--stats-json", &s];
        all.extend(args);
        Agent { inner: support::Agent::spawn(&all), output, stats }
    }

    /// Waits for a log line (lines are consumed in order: wait for them in the order they come).
    fn wait_for(&mut self, needle: &str, within: Duration) {
        if self.inner.wait_line(needle, within).is_none() {
            panic!("agent never said {needle:?}; it said:\n{}", self.inner.stderr.join("\n"));
        }
    }

    fn stop(self) -> (Vec<Value>, Value, String) {
        std::thread::sleep(Duration::from_millis(500));
        let (ok, log) = self.inner.terminate();
        assert!(ok, "agent failed:\n{log}");
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let records = text.lines().map(|l| serde_json::from_str(l).expect("record line")).collect();
        let stats =
            serde_json::from_str(&std::fs::read_to_string(&self.stats).expect("stats file")).expect("stats json");
        (records, stats, log)
    }
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|b| format!("{b:02x}")).collect()
}

type Key = (String, String, String, String, String);

/// What the clients completed, as (method, path, status, request sha, response sha) → count.
fn expected_keys(exchanges: &[Value]) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for e in exchanges {
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        *m.entry((s("method"), s("path"), e["status"].to_string(), s("req_sha"), s("resp_sha"))).or_insert(0) += 1;
    }
    m
}

fn captured_keys(records: &[Value], tag: &str) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for r in records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.contains(tag))) {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let k = (
            s("method"),
            s("path"),
            s("statusCode"),
            sha(s("requestPayload").as_bytes()),
            sha(s("responsePayload").as_bytes()),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn assert_exactly_once(expected: &BTreeMap<Key, usize>, records: &[Value], tag: &str, log: &str) {
    let got = captured_keys(records, tag);
    let missing: Vec<_> = expected.iter().filter(|(k, n)| got.get(*k) != Some(n)).map(|(k, _)| &k.1).collect();
    let extra: Vec<_> = got.iter().filter(|(k, n)| expected.get(*k) != Some(n)).map(|(k, n)| (&k.1, n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} expected, {} captured; missing or wrong: {missing:?}; unexpected or duplicated: {extra:?}\nagent:\n{log}",
        expected.values().sum::<usize>(),
        got.values().sum::<usize>()
    );
}

fn tls_stat(stats: &Value, name: &str) -> u64 {
    stats["tls"][name].as_u64().unwrap_or_else(|| panic!("no tls.{name} in {stats}"))
}

#[test]
fn python_https_peers_every_exchange_once() {
    if !root_or_skip("python_https_peers") {
        return;
    }
    let p = port();
    let _server = python_server(p, &[]);
    // eBPF packet capture on lo sees the encrypted copy of each connection as well.
    let mut agent = Agent::start("python", &["--backend", "ebpf", "--tls", "on"]);
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    agent.wait_for("ebpf attached to lo", Duration::from_secs(20));
    let done = python_client(p, "all", "pytls", &[]);
    assert!(done.len() >= 80, "client completed only {} exchanges", done.len());
    let (records, stats, log) = agent.stop();
    assert_exactly_once(&expected_keys(&done), &records, "pytls", &log);
    let ours: Vec<&Value> =
        records.iter().filter(|r| r["path"].as_str().is_some_and(|x| x.contains("pytls"))).collect();
    assert!(ours.iter().all(|r| r["destIp"] == format!("127.0.0.1:{p}").as_str()), "server end is the listener");
    assert!(ours.iter().all(|r| r["source"] == "MIRRORING"));
    // The process is known from the uprobes (workload attribution): one of the two python ends.
    for r in &ours {
        assert!(r["process_id"].as_str().is_some_and(|p| p.parse::<u32>().is_ok()), "{r}");
        assert!(r["process_name"].as_str().is_some_and(|n| n.starts_with("python")), "{r}");
    }
    // Both ends were traced: the second end's plaintext was recognized and dropped.
    assert!(tls_stat(&stats, "peer_duplicate_bytes") > 0);
    assert_eq!(tls_stat(&stats, "unresolved_events"), 0, "{}", stats["tls"]);
    assert_eq!(stats["tls"]["kernel"]["ring_full_events"], 0);
    assert!(stats["tls"]["kernel"]["sock_by_fd"].as_u64().is_some_and(|n| n > 0), "{}", stats["tls"]);
}

#[test]
fn curl_and_openssl_s_server() {
    if !root_or_skip("curl_and_openssl_s_server") {
        return;
    }
    let www = dir("www");
    let files: Vec<(String, Vec<u8>)> = [("small.json", 40usize), ("mid.txt", 5_000), ("large.bin", 300_000)]
        .iter()
        .map(|(name, n)| {
            (name.to_string(), (0..*n).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789\n"[i % 37]).collect())
        })
        .collect();
    for (name, body) in &files {
        std::fs::write(www.join(name), body).expect("write file");
    }
    let p = port();
    let mut agent = Agent::start("curl", &["--backend", "pcap", "--tls", "on", "--ports", &p.to_string()]);
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    // Started after the agent: covered because its libssl file is probed for every process.
    let server = s_server(&format!("127.0.0.1:{p}"), Some(&www), &[]);
    // One curl, three URLs (s_server -WWW answers HTTP/1.0 and closes: one connection each).
    let urls: Vec<String> = files.iter().map(|(n, _)| format!("https://127.0.0.1:{p}/{n}")).collect();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-k", "--fail"]);
    for u in &urls {
        cmd.arg(u).args(["-o", "/dev/null"]);
    }
    let out = cmd.output().expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    drop(server);
    let (records, stats, log) = agent.stop();
    let mut want = BTreeMap::new();
    for (name, body) in &files {
        want.insert(("GET".to_string(), format!("/{name}"), "200".to_string(), sha(b""), sha(body)), 1usize);
    }
    let ours: Vec<Value> =
        records.iter().filter(|r| r["destIp"] == format!("127.0.0.1:{p}").as_str()).cloned().collect();
    assert_exactly_once(&want, &ours, "/", &log);
    assert!(tls_stat(&stats, "closes") >= 3, "{}", stats["tls"]);
}

#[test]
fn curl_keep_alive_and_large_upload_to_python() {
    if !root_or_skip("curl_keep_alive") {
        return;
    }
    let p = port();
    let _server = python_server(p, &[]);
    let mut agent = Agent::start("curlka", &["--backend", "ebpf", "--tls", "on"]);
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    let upload = dir("curlka").join("upload.json");
    let body: Vec<u8> = format!("{{\"data\":\"{}\"}}", "x".repeat(200_000)).into_bytes();
    std::fs::write(&upload, &body).expect("write upload");
    let base = format!("https://127.0.0.1:{p}");
    // curl reuses one connection for the URLs of one invocation (keep-alive).
    let out = Command::new("curl")
        .args(["-sS", "-k", "--fail", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null"])
        .arg(format!("{base}/small/curlka-1"))
        .arg(format!("{base}/big/curlka-2?n=150000"))
        .arg(format!("{base}/small/curlka-3"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("curl")
        .args(["-sS", "-k", "--fail", "-o", "/dev/null", "-H", "Content-Type: application/json", "--data-binary"])
        .arg(format!("@{}", upload.display()))
        .arg(format!("{base}/echo/curlka-4"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let (records, stats, log) = agent.stop();
    let ours: Vec<&Value> =
        records.iter().filter(|r| r["path"].as_str().is_some_and(|x| x.contains("curlka"))).collect();
    let paths: Vec<&str> = ours.iter().filter_map(|r| r["path"].as_str()).collect();
    assert_eq!(paths.len(), 4, "{paths:?}\n{log}");
    let big = ours.iter().find(|r| r["path"].as_str().is_some_and(|x| x.starts_with("/big/"))).expect("big");
    assert_eq!(big["responsePayload"].as_str().map(str::len), Some(150_000));
    let echo = ours.iter().find(|r| r["path"].as_str().is_some_and(|x| x.starts_with("/echo/"))).expect("echo");
    assert_eq!(echo["requestPayload"].as_str().map(str::as_bytes), Some(&body[..]));
    assert_eq!(echo["responsePayload"].as_str().map(str::as_bytes), Some(&body[..]));
    // The three GETs shared one connection: one client port.
    let ports: std::collections::BTreeSet<&str> =
        ours.iter().filter(|r| r["method"] == "GET").filter_map(|r| r["ip"].as_str()).collect();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert!(tls_stat(&stats, "handshakes") >= 2);
}

#[test]
fn tls_off_reports_nothing_from_encrypted_packets() {
    if !root_or_skip("tls_off") {
        return;
    }
    let p = port();
    let _server = python_server(p, &[]);
    let mut agent = Agent::start("off", &["--backend", "ebpf", "--tls", "off", "--ports", &p.to_string()]);
    agent.wait_for("ebpf attached to lo", Duration::from_secs(20));
    let done = python_client(p, "keepalive", "offtls", &[]);
    assert_eq!(done.len(), 20);
    let (records, stats, log) = agent.stop();
    assert!(records.is_empty(), "encrypted traffic produced records: {records:?}\n{log}");
    assert!(stats["tls"].is_null());
    assert!(stats["kernel"]["packets"].as_u64().unwrap_or(0) > 0, "the packets were captured, just not HTTP");
}

#[test]
fn a_libssl_only_a_later_process_maps_is_found_and_probed() {
    if !root_or_skip("later_libssl") {
        return;
    }
    // A copy of the system libssl is another file (inode): no uprobe covers it until a scan
    // finds a process mapping it.
    let system =
        ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
            .expect("libssl.so.3 on this machine");
    let libdir = dir("libcopy");
    let copy = libdir.join("libssl.so.3");
    std::fs::copy(system, &copy).expect("copy libssl");
    let env = [("LD_LIBRARY_PATH", libdir.as_path())];
    let mut agent = Agent::start("later", &["--backend", "pcap", "--tls", "on"]);
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    let p = port();
    let _server = python_server(p, &env);
    agent.wait_for(&format!("TLS probes attached to {}", copy.display()), Duration::from_secs(10));
    let done = python_client(p, "keepalive", "latertls", &env);
    let (records, stats, log) = agent.stop();
    assert_exactly_once(&expected_keys(&done), &records, "latertls", &log);
    assert!(tls_stat(&stats, "libs") >= 2, "the system libssl at start-up, the copy later: {}", stats["tls"]);
}

/// `openssl s_client` ↔ `openssl s_server` (its default mode, which calls `SSL_read`/`SSL_write`):
/// both give OpenSSL their socket through `BIO_new_socket` + `SSL_set_bio`, never `SSL_set_fd`.
/// The kernel finds the fd in the `SSL`'s BIO (layout of this libssl version) and walks to the
/// socket: no connection needs the socket-call fallback.
#[test]
fn s_client_and_s_server_sockets_from_the_ssl_bio() {
    if !root_or_skip("s_client_and_s_server") {
        return;
    }
    use std::io::{Read, Write};
    let p = port();
    // Without the socket-call fallback: the BIO path alone must resolve both ends.
    let mut agent = Agent::start(
        "sbio",
        &["--backend", "pcap", "--tls", "on", "--tls-socket-calls", "false", "--ports", &p.to_string()],
    );
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    let mut server = s_server(&format!("127.0.0.1:{p}"), None, &[]);
    let mut client = Proc(
        Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &format!("127.0.0.1:{p}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client"),
    );
    let req = b"POST /bio/exchange HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    client.0.stdin.as_mut().expect("stdin").write_all(req).expect("request");
    // s_server sends what its stdin gives: the response, once the request is in.
    std::thread::sleep(Duration::from_millis(1500));
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nbio-answer!";
    server.0.stdin.as_mut().expect("stdin").write_all(resp).expect("response");
    let mut out = client.0.stdout.take().expect("stdout");
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"bio-answer!") {
        let n = out.read(&mut buf).expect("s_client output");
        assert!(n > 0, "s_client ended early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    drop(client);
    drop(server);
    let (records, stats, log) = agent.stop();
    let mut want = BTreeMap::new();
    want.insert(
        ("POST".to_string(), "/bio/exchange".to_string(), "200".to_string(), sha(b"hello"), sha(b"bio-answer!")),
        1usize,
    );
    let ours: Vec<Value> =
        records.iter().filter(|r| r["destIp"] == format!("127.0.0.1:{p}").as_str()).cloned().collect();
    assert_exactly_once(&want, &ours, "/bio", &log);
    // Counters are host-wide (other TLS traffic may run meanwhile): at least these two ends.
    assert!(
        stats["tls"]["kernel"]["sock_by_fd"].as_u64().is_some_and(|n| n >= 2),
        "both ends from the BIO: {}",
        stats["tls"]
    );
}

/// A keep-alive connection established (and used) before the agent started: its later exchanges
/// are captured exactly once (the first one after the start at most once, see below). Neither end's `SSL_set_fd` was seen: the kernel reads the fd from
/// the `SSL`'s socket BIO and walks to the socket.
#[test]
fn a_connection_older_than_the_agent_is_captured() {
    if !root_or_skip("a_connection_older_than_the_agent") {
        return;
    }
    use std::io::Write;
    let p = port();
    let _server = python_server(p, &[]);
    let mut client = Proc(
        Command::new("python3")
            .arg(support::http_peer_script())
            .args(["client", "127.0.0.1", &p.to_string(), "paused", "old"])
            .env("PEER_TLS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 client"),
    );
    let mut lines = BufReader::new(client.0.stdout.take().expect("stdout")).lines();
    let mut done = Vec::new();
    for line in lines.by_ref() {
        let v: Value = serde_json::from_str(&line.expect("client output")).expect("client line");
        if v["paused"] == 1 {
            break;
        }
        done.push(v);
    }
    assert_eq!(done.len(), 2, "requests before the agent");
    // Without the socket-call fallback: the BIO path alone must resolve the connection.
    let mut agent = Agent::start(
        "older",
        &["--backend", "pcap", "--tls", "on", "--tls-socket-calls", "false", "--ports", &p.to_string()],
    );
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    client.0.stdin.as_mut().expect("stdin").write_all(b"go\n").expect("resume");
    let after: Vec<Value> =
        lines.map(|l| serde_json::from_str(&l.expect("client output")).expect("client line")).collect();
    assert_eq!(after.len(), 10, "requests after the agent started");
    let _ = client.0.wait();
    let (records, stats, log) = agent.stop();
    // Every exchange after the start exactly once, the first one too: the server read that
    // request in an `SSL_read` it entered before the probes existed (no plaintext from that
    // call), so when the server's end reaches the agent first, its events wait for the client
    // end, which has the request and takes the connection (`peer_takeovers`).
    eprintln!("older: tls {}", stats["tls"]);
    assert_exactly_once(&expected_keys(&after), &records, "old-post", &log);
    assert!(captured_keys(&records, "old-pre").is_empty(), "exchanges before the agent are not invented");
    assert!(stats["tls"]["kernel"]["sock_by_fd"].as_u64().is_some_and(|n| n >= 1), "{}", stats["tls"]);
}

/// IPv6: the addresses are read from `sock_common`'s v6 fields, for a socket found through the
/// fd (Python: `SSL_set_fd`) and one found from the socket call (curl's own BIO).
#[test]
fn ipv6_connections_from_curl_and_python() {
    if !root_or_skip("ipv6_connections") {
        return;
    }
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("ipv6_connections: skipped: no IPv6 loopback");
        return;
    }
    let www = dir("www6");
    for by in ["curl", "python"] {
        std::fs::write(www.join(format!("six-{by}.txt")), b"over ipv6\n").expect("write file");
    }
    let p = port();
    let mut agent = Agent::start("ipv6", &["--backend", "pcap", "--tls", "on", "--ports", &p.to_string()]);
    agent.wait_for("TLS plaintext capture on", Duration::from_secs(20));
    let _server = s_server(&format!("[::1]:{p}"), Some(&www), &["-6"]);
    let out = Command::new("curl")
        .args(["-sS", "-k", "-g", "--fail"])
        .arg(format!("https://[::1]:{p}/six-curl.txt"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let script = format!(
        "import socket, ssl\nctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         s = ctx.wrap_socket(socket.create_connection(('::1', {p})))\n\
         s.sendall(b'GET /six-python.txt HTTP/1.0\\r\\nHost: a\\r\\n\\r\\n')\n\
         data = b''\nwhile True:\n    b = s.recv(4096)\n    if not b: break\n    data += b\nassert data.endswith(b'over ipv6\\n'), data\n"
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let (records, stats, log) = agent.stop();
    let mut want = BTreeMap::new();
    for by in ["curl", "python"] {
        want.insert(
            ("GET".to_string(), format!("/six-{by}.txt"), "200".to_string(), sha(b""), sha(b"over ipv6\n")),
            1usize,
        );
    }
    let ours: Vec<Value> = records.iter().filter(|r| r["destIp"] == format!("[::1]:{p}").as_str()).cloned().collect();
    assert_exactly_once(&want, &ours, "/six-", &log);
    assert_eq!(stats["tls"]["resolved_by_procfs"], 0, "{}", stats["tls"]);
}
