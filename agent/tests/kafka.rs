//! The Kafka pipeline against a real Kafka-protocol broker (Tansu on 127.0.0.1):
//! replay → `akto.api.logs`, the ingest API, broker outages (the spool), agent restarts with a
//! non-empty spool, and configuration errors. Each test starts its own broker; when `tansu` is
//! not installed they say "skipped" (scripts/test.sh installs it first).

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{assert_akto_record, broker_or_skip, consume, free_port, http, Agent};

const TOPIC: &str = "akto.api.logs";

fn tmpdir(name: &str) -> PathBuf {
    let dir = support::scratch_dir("kafka-test").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok();
    dir
}

fn generate(dir: &Path, target_bytes: u64) -> (PathBuf, trafficgen::GenSummary) {
    let path = dir.join("capture.pcap");
    let cfg = trafficgen::GenConfig { target_bytes, record_truth: true, ..trafficgen::GenConfig::clean() };
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let summary = trafficgen::generate(&cfg, &mut f).expect("generate");
    drop(f);
    (path, summary)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(support::bin()).args(args).output().expect("run akto-tap");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kafka_flags<'a>(broker: &'a str, spool: &'a str) -> Vec<&'a str> {
    vec!["--kafka-brokers", broker, "--spool-dir", spool, "--kafka-delivery-timeout-ms", "2000"]
}

#[test]
fn replay_produces_one_akto_record_per_exchange() {
    let Some(broker) = broker_or_skip("replay_produces_one_akto_record_per_exchange") else { return };
    broker.create_topic(TOPIC, 1);
    let dir = tmpdir("replay");
    let (capture, truth) = generate(&dir, 1 << 20);
    let cap = capture.to_str().unwrap_or_default();
    let spool = dir.join("spool");
    let addr = broker.addr();
    let mut args = vec!["replay", cap, "--account-id", "4242"];
    args.extend(kafka_flags(&addr, spool.to_str().unwrap_or_default()));
    let (ok, stdout, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stdout.is_empty(), "with Kafka on, no JSON lines unless --output is given");
    let n = truth.truth.len();
    assert!(stderr.contains(&format!("delivered {n} ")), "{stderr}");
    let got = consume(&addr, TOPIC, 1, n, Duration::from_secs(30), Duration::from_secs(2));
    assert_eq!(got.len(), n, "exactly one record per exchange");
    // The same records the JSONL sink writes (the Kafka value is the JSONL line).
    let (ok, jsonl, stderr) = run(&["replay", cap, "--account-id", "4242"]);
    assert!(ok, "{stderr}");
    let mut want: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let mut have: Vec<Value> = got.iter().map(|m| serde_json::from_slice(&m.value).expect("value is JSON")).collect();
    for (m, r) in got.iter().zip(&have) {
        assert_akto_record(r);
        assert_eq!(r["akto_account_id"], "4242");
        let client: std::net::SocketAddr = r["ip"].as_str().unwrap_or_default().parse().expect("ip is addr:port");
        assert_eq!(m.key.as_deref(), Some(client.ip().to_string().as_bytes()), "key = client IP");
    }
    let key = |v: &Value| v.to_string();
    want.sort_by_key(key);
    have.sort_by_key(key);
    assert_eq!(have, want);
}

/// With encoder threads the records reach the topic in the order of an inline replay: one
/// partition keeps the produce order, so the values consumed are the JSONL lines, in order.
#[test]
fn replay_with_encoder_threads_keeps_the_record_order() {
    let Some(broker) = broker_or_skip("replay_with_encoder_threads_keeps_the_record_order") else { return };
    broker.create_topic(TOPIC, 1);
    let dir = tmpdir("replay-workers");
    let (capture, truth) = generate(&dir, 2 << 20);
    let cap = capture.to_str().unwrap_or_default();
    let spool = dir.join("spool");
    let addr = broker.addr();
    let mut args = vec!["replay", cap, "--workers", "3"];
    args.extend(kafka_flags(&addr, spool.to_str().unwrap_or_default()));
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let n = truth.truth.len();
    assert!(stderr.contains(&format!("delivered {n} ")), "{stderr}");
    let got = consume(&addr, TOPIC, 1, n, Duration::from_secs(30), Duration::from_secs(2));
    let (ok, jsonl, stderr) = run(&["replay", cap, "--workers", "0"]);
    assert!(ok, "{stderr}");
    let want: Vec<&[u8]> = jsonl.lines().map(str::as_bytes).collect();
    let have: Vec<&[u8]> = got.iter().map(|m| m.value.as_slice()).collect();
    assert_eq!(have.len(), want.len(), "exactly one record per exchange");
    assert!(have == want, "the records on the topic are the inline replay's lines, in order");
}

fn batch(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "batchData": records })).unwrap_or_default()
}

fn record(path: &str) -> Value {
    serde_json::json!({
        "path": path, "method": "POST", "type": "HTTP/1.1",
        "requestHeaders": "{\"host\":\"api.example\",\"content-type\":\"application/json\"}",
        "responseHeaders": "{\"content-type\":\"application/json\"}",
        "requestPayload": "{\"a\":1}", "responsePayload": "{\"ok\":true}",
        "ip": "10.1.2.3:40000", "destIp": "10.9.9.9:443", "time": "1717000000",
        "statusCode": "200", "status": "200 OK", "akto_account_id": "1000000", "akto_vxlan_id": "0",
        "is_pending": "false", "source": "MIRRORING", "enabled_graph": null, "publishToGuardrails": false
    })
}

fn start_ingest(addr: &str, spool: &Path, extra: &[&str]) -> (Agent, String) {
    let mut args = vec!["ingest", "--listen", "127.0.0.1:0"];
    args.extend(kafka_flags(addr, spool.to_str().unwrap_or_default()));
    args.extend(extra);
    let mut agent = Agent::spawn(&args);
    let http_addr = agent.listening();
    (agent, http_addr)
}

#[test]
fn ingest_api_validates_authenticates_and_produces() {
    let Some(broker) = broker_or_skip("ingest_api_validates_authenticates_and_produces") else { return };
    broker.create_topic(TOPIC, 1);
    let dir = tmpdir("ingest");
    let (agent, addr) = start_ingest(
        &broker.addr(),
        &dir.join("spool"),
        &["--api-key", "s3cret", "--max-body-bytes", "65536", "--kafka-max-message-bytes", "20000"],
    );
    let key = [("X-API-KEY", "s3cret"), ("Content-Type", "application/json")];

    let (status, _) = http(&addr, "GET", "/healthCheck", &[], b"");
    assert_eq!(status, 200);
    // Authentication.
    let good = batch(&[record("/auth")]);
    assert_eq!(http(&addr, "POST", "/api/ingestData", &[], &good).0, 401);
    assert_eq!(http(&addr, "POST", "/api/ingestData", &[("X-API-KEY", "wrong")], &good).0, 401);
    // Malformed JSON and a wrong envelope: 400 with a reason.
    let (status, body) = http(&addr, "POST", "/api/ingestData", &key, b"{\"batchData\": [");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("malformed JSON"), "{body}");
    let (status, body) = http(&addr, "POST", "/api/ingestData", &key, b"{\"records\": []}");
    assert_eq!(status, 400, "{body}");
    // Body cap.
    let big = batch(&[serde_json::json!({"path": "/", "method": "GET", "requestPayload": "x".repeat(70_000)})]);
    assert_eq!(http(&addr, "POST", "/api/ingestData", &key, &big).0, 413);
    // A batch with bad records: the good ones are accepted, the bad ones named by index.
    let mut bad_type = record("/bad-type");
    bad_type["statusCode"] = serde_json::json!(200);
    let mut unknown = record("/unknown");
    unknown["surprise"] = "x".into();
    let records = [record("/ok/0"), bad_type, record("/ok/2"), unknown, serde_json::json!("nope"), record("/ok/5")];
    let (status, body) = http(&addr, "POST", "/api/ingestData", &key, &batch(&records));
    assert_eq!(status, 422, "{body}");
    let resp: Value = serde_json::from_str(&body).expect("JSON response");
    assert_eq!(resp["success"], false);
    assert_eq!(resp["acceptedIndices"], serde_json::json!([0, 2, 5]));
    let rejected: Vec<(u64, String)> = resp["rejected"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (r["index"].as_u64().unwrap_or(99), r["reason"].as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(rejected.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 3, 4]);
    assert!(rejected[0].1.contains("statusCode"), "{rejected:?}");
    assert!(rejected[1].1.contains("surprise"), "{rejected:?}");
    // An all-good batch.
    let (status, body) = http(&addr, "POST", "/api/ingestData", &key, &batch(&[record("/ok/a"), record("/ok/b")]));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"success\":true"), "{body}");
    // Larger than the Kafka message limit: payload cut to fit and flagged, not dropped.
    let mut big = record("/ok/big");
    big["responsePayload"] = "r".repeat(40_000).into();
    assert_eq!(http(&addr, "POST", "/api/ingestData", &key, &batch(&[big])).0, 200);

    let got = consume(&broker.addr(), TOPIC, 1, 6, Duration::from_secs(20), Duration::from_secs(2));
    let mut paths: Vec<String> = got
        .iter()
        .map(|m| {
            let v: Value = serde_json::from_slice(&m.value).expect("JSON");
            assert_akto_record(&v);
            assert!(v.get("publishToGuardrails").is_none());
            assert_eq!(m.key.as_deref(), Some(&b"10.1.2.3"[..]));
            v["path"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    paths.sort();
    assert_eq!(paths, vec!["/ok/0", "/ok/2", "/ok/5", "/ok/a", "/ok/b", "/ok/big"]);
    let big = got.iter().find(|m| m.value.windows(7).any(|w| w == b"/ok/big")).expect("big record");
    assert!(big.value.len() <= 20_000, "{}", big.value.len());
    let v: Value = serde_json::from_slice(&big.value).expect("JSON");
    let rh: Value = serde_json::from_str(v["responseHeaders"].as_str().unwrap_or_default()).expect("headers");
    assert_eq!(rh["x-akto-tap-truncated"], "true");
    assert!(v["responsePayload"].as_str().unwrap_or_default().len() > 10_000, "cut to fit, not emptied");
    let (ok, stderr) = agent.terminate();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("delivered 6 "), "{stderr}");
    assert!(stderr.contains("truncated 1 "), "{stderr}");
}

fn post_paths(addr: &str, prefix: &str, n: usize) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(25) {
        let recs: Vec<Value> = chunk.iter().map(|i| record(&format!("{prefix}/{i}"))).collect();
        let (status, body) = http(addr, "POST", "/api/ingestData", &[], &batch(&recs));
        assert_eq!(status, 200, "{body}");
    }
}

fn health(addr: &str) -> Value {
    serde_json::from_str(&http(addr, "GET", "/healthCheck", &[], b"").1).unwrap_or_default()
}

#[test]
fn broker_outage_during_ingest_loses_nothing() {
    let Some(mut broker) = broker_or_skip("broker_outage_during_ingest_loses_nothing") else { return };
    broker.create_topic(TOPIC, 1);
    let dir = tmpdir("outage");
    let (agent, addr) = start_ingest(&broker.addr(), &dir.join("spool"), &[]);
    post_paths(&addr, "/before", 100);
    let before = consume(&broker.addr(), TOPIC, 1, 100, Duration::from_secs(20), Duration::from_millis(500));
    assert_eq!(before.len(), 100);

    broker.stop();
    post_paths(&addr, "/during", 300);
    // The sink notices within the delivery timeout and moves everything to the spool (a bound,
    // not a timing target: generous for a loaded CI machine).
    let mut h = health(&addr);
    for _ in 0..400 {
        if h["kafka"]["spooled"].as_u64().unwrap_or(0) >= 300 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        h = health(&addr);
    }
    assert!(h["kafka"]["spooled"].as_u64().unwrap_or(0) >= 300, "{h}");
    assert_eq!(h["kafka"]["broker_down"], true, "{h}");
    // More traffic while it stays down.
    post_paths(&addr, "/later", 100);

    broker.restart();
    broker.create_topic(TOPIC, 1);
    let after = consume(&broker.addr(), TOPIC, 1, 400, Duration::from_secs(60), Duration::from_secs(3));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &after {
        let v: Value = serde_json::from_slice(&m.value).expect("JSON");
        *seen.entry(v["path"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    let duplicates: usize = seen.values().map(|c| c - 1).sum();
    eprintln!("outage: {} records after restart, {} distinct, {duplicates} duplicates", after.len(), seen.len());
    for i in 0..300 {
        assert!(seen.contains_key(&format!("/during/{i}")), "lost /during/{i}");
    }
    for i in 0..100 {
        assert!(seen.contains_key(&format!("/later/{i}")), "lost /later/{i}");
    }
    let (ok, stderr) = agent.terminate();
    assert!(ok, "{stderr}");
    assert!(stderr.contains("broker unavailable"), "{stderr}");
    assert!(stderr.contains("spool cap drops 0"), "{stderr}");
    assert!(stderr.contains("failed 0 "), "{stderr}");
}

#[test]
fn restart_with_a_non_empty_spool_resumes_delivery() {
    let Some(tansu) = support::tansu() else {
        eprintln!("restart_with_a_non_empty_spool_resumes_delivery: skipped: tansu not installed");
        return;
    };
    let dir = tmpdir("restart");
    let (capture, truth) = generate(&dir, 256 << 10);
    let cap = capture.to_str().unwrap_or_default();
    let spool = dir.join("spool");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    // No broker: everything goes to the spool and stays there at exit.
    let mut args = vec!["replay", cap, "--kafka-flush-timeout-secs", "1"];
    args.extend(kafka_flags(&addr, spool.to_str().unwrap_or_default()));
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    let n = truth.truth.len();
    assert!(stderr.contains("not reachable at start-up"), "{stderr}");
    assert!(stderr.contains("remain in the spool"), "{stderr}");
    assert!(stderr.contains("delivered 0 "), "{stderr}");
    // Broker up; the same capture again: the spooled records first, then the new ones.
    let broker = support::Broker::start_on(tansu, port);
    broker.create_topic(TOPIC, 1);
    let (ok, _, stderr) = run(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains(&format!("resuming delivery of {n} records")), "{stderr}");
    let got = consume(&addr, TOPIC, 1, 2 * n, Duration::from_secs(30), Duration::from_secs(2));
    assert_eq!(got.len(), 2 * n, "spooled + new, none lost, none duplicated");
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for m in &got {
        *counts.entry(m.value.clone()).or_default() += 1;
    }
    assert!(counts.values().all(|c| *c == 2), "each record exactly twice");
    // The first n came from the spool, in capture order: identical to the second run's order.
    let first: Vec<&[u8]> = got[..n].iter().map(|m| m.value.as_slice()).collect();
    let second: Vec<&[u8]> = got[n..].iter().map(|m| m.value.as_slice()).collect();
    assert_eq!(first, second, "spool replays in order");
}

#[test]
fn configuration_errors_are_reported_clearly() {
    let dir = tmpdir("config");
    let spool = dir.join("spool");
    let sp = spool.to_str().unwrap_or_default();
    let (capture, _) = generate(&dir, 64 << 10);
    let cap = capture.to_str().unwrap_or_default();
    let expect_err = |extra: &[&str], broker: &str, needles: &[&str]| {
        let mut args = vec!["replay", cap, "--kafka-brokers", broker, "--spool-dir", sp];
        args.extend(extra);
        let (ok, _, stderr) = run(&args);
        assert!(!ok, "{extra:?} should fail");
        for n in needles {
            assert!(stderr.contains(n), "{extra:?}: {n:?} not in {stderr}");
        }
    };
    // Checked before connecting.
    expect_err(
        &["--kafka-tls", "--kafka-tls-ca", "/nonexistent/ca.pem"],
        "127.0.0.1:1",
        &["--kafka-tls-ca", "/nonexistent/ca.pem", "not readable"],
    );
    expect_err(&["--kafka-tls-cert", "/etc/hostname"], "127.0.0.1:1", &["--kafka-tls-key"]);
    expect_err(
        &["--kafka-sasl-mechanism", "SCRAM-SHA-256"],
        "127.0.0.1:1",
        &["SASL SCRAM-SHA-256 needs a user name and a password"],
    );
    expect_err(&["--kafka-option", "security.protocol=ssl"], "127.0.0.1:1", &["security.protocol", "--kafka-tls"]);
    expect_err(&["--kafka-option", "no.such.option=1"], "127.0.0.1:1", &["no.such.option"]);

    let Some(broker) = broker_or_skip("configuration_errors_are_reported_clearly (broker part)") else { return };
    let addr = broker.addr();
    // TLS or SASL against a plaintext listener: a clear start-up error, not a silent spool.
    expect_err(&["--kafka-tls"], &addr, &["cannot connect to Kafka brokers", "TLS"]);
    expect_err(
        &["--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-username", "u", "--kafka-sasl-password", "p"],
        &addr,
        &["cannot connect to Kafka brokers", "SASL"],
    );
    // Missing topic: refused with the fix, then created through the admin API when asked.
    expect_err(&[], &addr, &["does not exist", "--kafka-create-topic"]);
    let (ok, _, stderr) = run(&["replay", cap, "--kafka-brokers", &addr, "--spool-dir", sp, "--kafka-create-topic"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("created topic akto.api.logs"), "{stderr}");
    assert!(stderr.contains("failed 0 "), "{stderr}");
}

/// Load generator for `scripts/bench-kafka.sh` (not a test): posts 100-record batches to the
/// ingest server at `INGEST_ADDR` from `BENCH_THREADS` keep-alive connections for
/// `BENCH_SECONDS`, and prints records/s.
#[test]
#[ignore = "benchmark load generator, run by scripts/bench-kafka.sh"]
fn bench_ingest_load() {
    let Ok(addr) = std::env::var("INGEST_ADDR") else {
        eprintln!("bench_ingest_load: set INGEST_ADDR");
        return;
    };
    let secs: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = std::env::var("BENCH_THREADS").ok().and_then(|s| s.parse().ok()).unwrap_or(4);
    let records: Vec<Value> = (0..100)
        .map(|i| {
            let mut r = record(&format!("/api/v1/orders/{i}?page=2"));
            r["ip"] = format!("10.1.{}.{}:40000", i % 7, i % 13).into();
            r["responsePayload"] = format!(
                "{{\"items\":[{}]}}",
                "{\"id\":1,\"name\":\"widget\",\"price\":9.99},".repeat(8).trim_end_matches(',')
            )
            .into();
            r
        })
        .collect();
    let body = batch(&records);
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut c = support::KeepAlive::connect(&addr);
                let (mut ok, mut bad) = (0u64, 0u64);
                while start.elapsed() < Duration::from_secs(secs) {
                    if c.post("/api/ingestData", &body) == 200 {
                        ok += 1;
                    } else {
                        bad += 1;
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    let (mut ok, mut bad) = (0, 0);
    for h in handles {
        let (o, b) = h.join().unwrap_or((0, 0));
        ok += o;
        bad += b;
    }
    let t = start.elapsed().as_secs_f64();
    println!(
        "BENCH ingest: {} records in {t:.1} s = {:.0} records/s ({} requests of 100 records, {bad} not 200, {} bytes per request)",
        ok * 100,
        (ok * 100) as f64 / t,
        ok,
        body.len()
    );
}

/// CPU seconds (user + system) used by this process so far.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
    // Counted by position: `tpgid` (field 8) is -1 without a controlling terminal, so
    // skipping what does not parse as unsigned would shift utime/stime by one (it did: the
    // figure was stime + cutime under the benchmark script).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime (14) is f[11], stime (15) f[12].
    let field = |i: usize| f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) as f64 / 100.0
}

/// The broker's ceiling: a minimal rdkafka producer (no sink, no spool, no accounting beyond a
/// counter) sends the records of a JSON-lines file (`BENCH_JSONL`, e.g. `akto-tap replay -o`)
/// to `KAFKA_ADDR` with the sink's settings (LZ4, `acks=all`, `linger.ms` 20, key = client IP),
/// `BENCH_PASSES` times. Prints records/s and the producer's CPU per record.
#[test]
#[ignore = "benchmark, run by scripts/bench-kafka.sh"]
fn bench_raw_producer() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let (Ok(addr), Ok(path)) = (std::env::var("KAFKA_ADDR"), std::env::var("BENCH_JSONL")) else {
        eprintln!("bench_raw_producer: set KAFKA_ADDR and BENCH_JSONL");
        return;
    };
    let passes: usize = std::env::var("BENCH_PASSES").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let compression = std::env::var("BENCH_COMPRESSION").unwrap_or_else(|_| "lz4".into());
    let text = std::fs::read_to_string(&path).expect("read BENCH_JSONL");
    let records: Vec<(String, &str)> = text
        .lines()
        .map(|l| {
            let ip = serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v["ip"].as_str().map(str::to_string))
                .unwrap_or_default();
            (ip.rsplit_once(':').map_or(ip.clone(), |(a, _)| a.to_string()), l)
        })
        .collect();
    let bytes: usize = records.iter().map(|(_, l)| l.len()).sum();
    let mut conf = rdkafka::ClientConfig::new();
    conf.set("bootstrap.servers", &addr)
        .set("compression.codec", &compression)
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("acks", "all");
    // Extra librdkafka options to explore: `BENCH_CONF=batch.size=4000000,linger.ms=5`.
    for kv in std::env::var("BENCH_CONF").unwrap_or_default().split(',').filter(|s| !s.is_empty()) {
        if let Some((k, v)) = kv.split_once('=') {
            conf.set(k, v);
        }
    }
    let producer: BaseProducer = conf.create().expect("producer");
    let (cpu0, start) = (process_cpu_secs(), std::time::Instant::now());
    let mut sent = 0usize;
    for _ in 0..passes {
        for (key, value) in &records {
            let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(TOPIC).key(key.as_str()).payload(value);
            loop {
                match producer.send(rec) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        rec = r;
                        // Queue full: let librdkafka work. A sleep, not `poll(1 ms)`, which
                        // spins through its last millisecond (see the sink's `Service::serve`)
                        // and would count as this producer's CPU.
                        std::thread::sleep(Duration::from_millis(1));
                        producer.poll(Duration::ZERO);
                    }
                }
            }
            sent += 1;
            if sent.is_multiple_of(1024) {
                producer.poll(Duration::ZERO);
            }
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
    let (t, cpu) = (start.elapsed().as_secs_f64(), process_cpu_secs() - cpu0);
    println!(
        "BENCH raw producer ({compression}): {sent} records ({:.0} B avg) in {t:.2} s = {:.0} records/s, {:.0} MB/s; producer {:.1} µs CPU/record",
        bytes as f64 / records.len().max(1) as f64,
        sent as f64 / t,
        (bytes * passes) as f64 / t / 1e6,
        cpu / sent as f64 * 1e6
    );
}

/// A TLS front for a plaintext broker: Tansu 0.6.0 accepts `--cert`/`--key` but never uses
/// them (its listener serves the raw TCP stream: `let _acceptor = …` in tansu-broker's
/// `broker.rs`), so TLS is terminated by this small Python proxy (stdlib `ssl`), which
/// requires a client certificate when given a CA for clients. Usage: `proxy.py LISTEN_PORT
/// UPSTREAM_PORT CERT KEY [CLIENT_CA]`.
const TLS_PROXY: &str = r#"
import socket, ssl, sys, threading
port, upstream, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
if len(sys.argv) > 5:
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(sys.argv[5])
def pump(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.close()
        except OSError:
            pass
def serve(raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    up = socket.create_connection(("127.0.0.1", upstream))
    threading.Thread(target=pump, args=(tls, up), daemon=True).start()
    pump(up, tls)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(64)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A throwaway CA `NAME-ca.pem` and, signed by it, `NAME.pem`/`NAME.key` for 127.0.0.1.
fn make_cert(dir: &Path, ca: &str, name: &str) {
    if !dir.join(format!("{ca}-ca.pem")).exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca} test CA"),
                "-keyout",
                &format!("{ca}-ca.key"),
                "-out",
                &format!("{ca}-ca.pem"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(dir.join(format!("{name}.ext")), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}-ca.pem"),
            "-CAkey",
            &format!("{ca}-ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// TLS with a real broker: Tansu behind a TLS terminator that requires a client certificate
/// (mutual TLS), advertised at the TLS port so every connection librdkafka makes is TLS.
/// Records are delivered with the right CA and client certificate and read back over TLS; a
/// wrong CA, a missing client certificate and plaintext to the TLS port fail at start-up with
/// messages that name the TLS options.
#[test]
fn tls_to_a_real_broker() {
    let Some(tansu) = support::tansu() else {
        eprintln!("tls_to_a_real_broker: skipped: tansu not installed");
        return;
    };
    if Command::new("openssl").arg("version").output().is_err()
        || Command::new("python3").arg("--version").output().is_err()
    {
        eprintln!("tls_to_a_real_broker: skipped: needs openssl and python3");
        return;
    }
    let dir = tmpdir("tls");
    make_cert(&dir, "test", "broker");
    make_cert(&dir, "test", "client");
    make_cert(&dir, "other", "stranger");
    let p = |f: &str| dir.join(f).to_str().unwrap_or_default().to_string();
    let (plain, tls) = (free_port(), free_port());
    let _broker = Child(
        Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{plain}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{tls}"),
                "--storage-engine",
                "memory://tansu/",
                "--silent",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tansu"),
    );
    std::fs::write(dir.join("proxy.py"), TLS_PROXY).expect("proxy script");
    let mut proxy = Child(
        Command::new("python3")
            .args([
                p("proxy.py"),
                tls.to_string(),
                plain.to_string(),
                p("broker.pem"),
                p("broker.key"),
                p("test-ca.pem"),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the TLS proxy"),
    );
    let mut ready = String::new();
    if let Some(out) = proxy.0.stdout.as_mut() {
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut ready);
    }
    assert_eq!(ready.trim(), "ready");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", plain)).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = Command::new(&tansu)
        .args(["topic", "create", TOPIC, "--partitions", "1", "--broker", &format!("tcp://127.0.0.1:{plain}")])
        .output()
        .expect("tansu topic create");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let (capture, truth) = generate(&dir, 256 << 10);
    let cap = capture.to_str().unwrap_or_default().to_string();
    let addr = format!("127.0.0.1:{tls}");
    let spool = p("spool");
    let agent = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            cap.as_str(),
            "--kafka-brokers",
            addr.as_str(),
            "--spool-dir",
            spool.as_str(),
            "--kafka-delivery-timeout-ms",
            "5000",
        ];
        args.extend(extra);
        run(&args)
    };
    let (ca, cert, key, other_ca) = (p("test-ca.pem"), p("client.pem"), p("client.key"), p("other-ca.pem"));

    // Wrong CA: the broker's certificate is not trusted.
    // Either start-up fails naming it, or — when librdkafka reports the handshake error only
    // after its start-up probe (it batches and suppresses repeats; about one run in six here) —
    // the records are kept in the spool and the error is reported as it happens. Never silent,
    // never lost.
    let (ok, _, stderr) =
        agent(&["--kafka-tls", "--kafka-tls-ca", &other_ca, "--kafka-tls-cert", &cert, "--kafka-tls-key", &key]);
    if ok {
        assert!(stderr.contains("authentication/TLS error") && stderr.contains("remain in the spool"), "{stderr}");
        std::fs::remove_dir_all(&spool).expect("clear the spool for the next case");
    } else {
        assert!(stderr.contains("cannot connect to Kafka brokers") && stderr.contains("--kafka-tls"), "{stderr}");
    }
    assert!(stderr.to_lowercase().contains("certificate"), "names the certificate problem: {stderr}");
    // No client certificate where the listener requires one. With TLS 1.3 the client's side
    // of the handshake completes before the server checks the certificate; the server then
    // drops the connection, and librdkafka reports no TLS error, only "all brokers down" — so
    // this looks like an unreachable broker: records are kept in the spool, and the message
    // names the TLS options to check.
    let (_, _, stderr) = agent(&["--kafka-tls", "--kafka-tls-ca", &ca, "--kafka-flush-timeout-secs", "1"]);
    assert!(stderr.contains("--kafka-tls"), "{stderr}");
    assert!(
        !stderr.contains("failed 0 ") || stderr.contains("delivered 0 "),
        "nothing delivered without a client certificate: {stderr}"
    );
    let _ = std::fs::remove_dir_all(&spool);
    // Plaintext to the TLS port: the listener just drops the connection, which looks like a
    // broker that is down, so records are kept in the spool — and the message says what to check.
    let (_, _, stderr) = agent(&["--kafka-flush-timeout-secs", "1"]);
    assert!(stderr.contains("not reachable") && stderr.contains("--kafka-tls"), "{stderr}");
    assert!(stderr.contains("delivered 0 "), "{stderr}");
    let _ = std::fs::remove_dir_all(&spool);

    // The right CA and client certificate: every record delivered.
    let (ok, _, stderr) =
        agent(&["--kafka-tls", "--kafka-tls-ca", &ca, "--kafka-tls-cert", &cert, "--kafka-tls-key", &key]);
    assert!(ok, "{stderr}");
    let n = truth.truth.len();
    assert!(stderr.contains(&format!("delivered {n} ")) && stderr.contains("failed 0 "), "{stderr}");
    // Read back over TLS.
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", &ca)
        .set("ssl.certificate.location", &cert)
        .set("ssl.key.location", &key)
        .set("group.id", format!("akto-tap-tls-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .create()
        .expect("TLS consumer");
    use rdkafka::consumer::Consumer;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, rdkafka::Offset::Beginning).expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while got < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let v: Value =
                serde_json::from_slice(rdkafka::Message::payload(&m).unwrap_or_default()).expect("JSON record");
            assert_akto_record(&v);
            got += 1;
        }
    }
    assert_eq!(got, n, "every record read back over TLS");
}

/// SASL with a real broker. Tansu 0.6.0 with `--authentication` speaks SCRAM-SHA-256/512
/// (rsasl built with `scram-sha-2` and `oauthbearer` only: no PLAIN), but users can only be
/// created through the broker itself (`tansu user create`, AlterUserScramCredentials), which
/// an authenticating broker refuses before authentication, and the in-memory store starts
/// empty — so no login can succeed. What is tested: the SCRAM exchange really runs, and each
/// failure stops start-up with a message naming the SASL options.
#[test]
fn sasl_against_a_real_broker() {
    let Some(tansu) = support::tansu() else {
        eprintln!("sasl_against_a_real_broker: skipped: tansu not installed");
        return;
    };
    let dir = tmpdir("sasl");
    let port = free_port();
    let _broker = Child(
        Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{port}"),
                "--storage-engine",
                "memory://tansu/",
                "--authentication",
                "--silent",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start tansu"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (capture, _) = generate(&dir, 64 << 10);
    let (cap, spool, addr) = (
        capture.to_str().unwrap_or_default().to_string(),
        dir.join("spool").to_str().unwrap_or_default().to_string(),
        format!("127.0.0.1:{port}"),
    );
    let agent = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            cap.as_str(),
            "--kafka-brokers",
            addr.as_str(),
            "--spool-dir",
            spool.as_str(),
            "--kafka-flush-timeout-secs",
            "1",
        ];
        args.extend(extra);
        run(&args)
    };
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let (ok, _, stderr) = agent(&[
            "--kafka-sasl-mechanism",
            mechanism,
            "--kafka-sasl-username",
            "alice",
            "--kafka-sasl-password",
            "s3cret",
        ]);
        assert!(!ok, "{mechanism}: an unknown user must fail: {stderr}");
        assert!(
            stderr.contains("cannot connect to Kafka brokers") && stderr.contains("SCRAM authentication failed"),
            "{mechanism}: {stderr}"
        );
        assert!(stderr.contains("unknown-user") && stderr.contains("--kafka-sasl"), "{mechanism}: {stderr}");
    }
    // A mechanism the broker does not offer.
    let (ok, _, stderr) = agent(&[
        "--kafka-sasl-mechanism",
        "PLAIN",
        "--kafka-sasl-username",
        "alice",
        "--kafka-sasl-password",
        "s3cret",
    ]);
    assert!(!ok, "{stderr}");
    assert!(stderr.contains("SASL PLAIN mechanism handshake failed") && stderr.contains("--kafka-sasl"), "{stderr}");
    // No SASL against a listener that requires it: the broker drops the connection, which
    // looks like a broker that is down (records are spooled); the message says what to check.
    let (_, _, stderr) = agent(&[]);
    assert!(stderr.contains("not reachable") && stderr.contains("--kafka-sasl-mechanism"), "{stderr}");
    assert!(stderr.contains("delivered 0 "), "{stderr}");
}
