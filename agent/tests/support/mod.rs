//! Test support: a real Kafka-protocol broker (Tansu) on a loopback port, an rdkafka consumer,
//! the agent as a child process, and a minimal HTTP/1.1 client.
#![allow(dead_code, reason = "each integration test binary uses a different subset")]

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_akto-tap")
}

/// The `tansu` binary, when installed (PATH or `~/.cargo/bin`).
pub fn tansu() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("tansu")];
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/tansu"));
    }
    candidates.into_iter().find(|c| Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Returns the broker, or prints why the test is skipped.
pub fn broker_or_skip(test: &str) -> Option<Broker> {
    match tansu() {
        Some(bin) => Some(Broker::start(bin)),
        None => {
            eprintln!("{test}: skipped: tansu not installed (scripts/test.sh installs it: ensure_tansu in scripts/ensure-tools.sh)");
            None
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A Tansu broker with in-memory storage on 127.0.0.1. Killed on drop.
#[derive(Debug)]
pub struct Broker {
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Broker {
    pub fn start(bin: PathBuf) -> Broker {
        Broker::start_on(bin, free_port())
    }

    pub fn start_on(bin: PathBuf, port: u16) -> Broker {
        let mut b = Broker { bin, port, child: None };
        b.spawn();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr()).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on {}", self.addr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A fresh broker on the same port (memory storage: topics must be created again).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .output()
            .expect("tansu topic create");
        assert!(out.status.success(), "topic create: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A consumed message.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Reads `topic` (all `partitions`) from the beginning until `want` messages arrived, then
/// keeps reading for `linger` to catch extras; gives up at `timeout`.
pub fn consume(
    brokers: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    timeout: Duration,
    linger: Duration,
) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("akto-tap-test-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut reached: Option<Instant> = None;
    while Instant::now() < deadline {
        if let Some(at) = reached {
            if at.elapsed() >= linger {
                break;
            }
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(Consumed {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().unwrap_or_default().to_vec(),
            });
            if out.len() >= want && reached.is_none() {
                reached = Some(Instant::now());
            }
        }
    }
    out
}

/// The agent as a child process whose stderr is collected line by line.
#[derive(Debug)]
pub struct Agent {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub stderr: Vec<String>,
}

impl Agent {
    pub fn spawn(args: &[&str]) -> Agent {
        let mut child = Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn akto-tap");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Agent { child, lines: rx, stderr: Vec::new() }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_line(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.stderr.push(l.clone());
                    if l.contains(needle) {
                        return Some(l);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// The ingest server's address, from its "listening on" line.
    pub fn listening(&mut self) -> String {
        let line = self
            .wait_line("listening on http://", Duration::from_secs(30))
            .unwrap_or_else(|| panic!("no listening line: {:?}", self.stderr));
        line.rsplit("http://").next().unwrap_or_default().trim().to_string()
    }

    /// SIGTERM, then waits; returns success and all of stderr.
    pub fn terminate(mut self) -> (bool, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().expect("wait");
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.stderr.push(l);
        }
        (status.success(), self.stderr.join("\n"))
    }
}

/// A test that panics before `terminate` must not leave the agent running: with `--tls` its
/// uprobes stay on the system libssl and tax every TLS process on the host.
impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A keep-alive HTTP/1.1 client (for the benchmark).
#[derive(Debug)]
pub struct KeepAlive {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
}

impl KeepAlive {
    pub fn connect(addr: &str) -> KeepAlive {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).ok();
        KeepAlive { r: BufReader::new(s.try_clone().expect("clone")), w: s, host: addr.to_string() }
    }

    pub fn post(&mut self, path: &str, body: &[u8]) -> u16 {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.w.write_all(head.as_bytes()).expect("write");
        self.w.write_all(body).expect("write");
        let mut line = String::new();
        self.r.read_line(&mut line).expect("status");
        let status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).expect("header");
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut buf = vec![0; len];
        self.r.read_exact(&mut buf).expect("body");
        status
    }
}

/// Checks a record the way Akto's consumer (`SampleParser.parseSampleMessage`, reference/akto.md
/// §1.2) reads it: flat object, every value a string, integers parseable, header maps that are
/// JSON objects of strings, a known `source`.
pub fn assert_akto_record(r: &serde_json::Value) {
    let obj = r.as_object().expect("record is an object");
    assert!(obj.values().all(serde_json::Value::is_string), "all values are strings: {r}");
    for k in [
        "path",
        "method",
        "requestHeaders",
        "responseHeaders",
        "requestPayload",
        "responsePayload",
        "ip",
        "destIp",
        "time",
        "statusCode",
        "type",
        "status",
        "akto_account_id",
        "akto_vxlan_id",
        "is_pending",
        "source",
    ] {
        assert!(obj.contains_key(k), "missing {k}: {r}");
    }
    let s = |k: &str| r[k].as_str().unwrap_or_default();
    assert!(s("statusCode").parse::<i32>().is_ok(), "{r}");
    assert!(s("time").parse::<i32>().is_ok(), "{r}");
    assert!(s("akto_vxlan_id").chars().all(|c| c.is_ascii_digit()), "{r}");
    for h in ["requestHeaders", "responseHeaders"] {
        let m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(s(h)).expect("header map is a JSON object");
        assert!(m.values().all(serde_json::Value::is_string), "{h}: {r}");
    }
    assert!(["PCAP", "MIRRORING"].contains(&s("source")), "{r}");
}

/// True when running as root; otherwise says why `test` is skipped (`needs`: what root is for).
pub fn root_or_skip(test: &str, needs: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped: needs root ({needs})");
    }
    root
}

/// The HTTP/TLS peer script the capture and TLS tests drive.
pub fn http_peer_script() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/capture/http_peer.py")
}

/// This test process's scratch directory, `$TMPDIR/akto-tap-<suite>-<pid>`, created on first use.
/// The last run's files stay for inspection; directories of `suite` left by earlier test
/// processes that are gone are removed first, so runs do not pile up in `/tmp`.
pub fn scratch_dir(suite: &str) -> PathBuf {
    let prefix = format!("akto-tap-{suite}-");
    let own = std::env::temp_dir().join(format!("{prefix}{}", std::process::id()));
    if !own.exists() {
        for entry in std::fs::read_dir(std::env::temp_dir()).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
            // Only `<prefix><pid>` or `<prefix><pid>-<name>` of a process that has exited.
            let pid = pid.split('-').next().unwrap_or_default();
            if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    std::fs::create_dir_all(&own).expect("scratch dir");
    own
}
