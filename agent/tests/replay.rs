//! `akto-tap replay` end to end: generated captures with known ground truth, the Akto record's
//! shape as Akto's consumer parses it, and error handling for bad files.

mod support;

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_akto-tap")
}

fn tmp(name: &str) -> PathBuf {
    support::scratch_dir("replay-test").join(name)
}

fn generate(name: &str, cfg: &trafficgen::GenConfig) -> (PathBuf, trafficgen::GenSummary) {
    let path = tmp(name);
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let summary = trafficgen::generate(cfg, &mut f).expect("generate");
    drop(f);
    (path, summary)
}

fn replay(args: &[&str]) -> (Vec<Value>, String, bool) {
    let out = Command::new(bin()).arg("replay").args(args).output().expect("run akto-tap");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned(), out.status.success())
}

type Key = (String, String);

/// Compares replayed exchanges with the generator's truth, per connection and position.
fn check_against_truth(path: &Path, summary: &trafficgen::GenSummary, lossy: bool) {
    let (lines, stderr, ok) = replay(&[path.to_str().unwrap_or_default(), "--format", "exchange"]);
    assert!(ok, "{stderr}");
    let mut got: HashMap<Key, Vec<&Value>> = HashMap::new();
    for l in &lines {
        let key = (
            l["conn"]["client"].as_str().unwrap_or_default().to_string(),
            l["conn"]["server"].as_str().unwrap_or_default().to_string(),
        );
        got.entry(key).or_default().push(l);
    }
    let mut matched = 0;
    for t in &summary.truth {
        let key = (t.client.to_string(), t.server.to_string());
        let Some(ex) = got.get(&key).and_then(|v| v.get(t.index_in_connection as usize)) else {
            assert!(lossy && !t.delivered, "missing exchange {t:?}");
            continue;
        };
        if lossy && !t.delivered {
            continue;
        }
        assert_eq!(ex["request"]["method"], t.method, "{t:?}");
        assert_eq!(ex["request"]["target"], t.path.as_str(), "{t:?}");
        assert_eq!(ex["response"]["status"], t.status, "{t:?}");
        assert_eq!(ex["request"]["body_len"], t.request_body_len, "{t:?}");
        assert_eq!(ex["response"]["body_len"], t.response_body_len, "{t:?}");
        assert_eq!(ex["flags"]["gap"], false, "{t:?}");
        matched += 1;
    }
    assert_eq!(lines.len(), summary.truth.len(), "one exchange per generated exchange");
    assert!(matched > 0);
}

#[test]
fn clean_generated_capture_matches_ground_truth_exactly() {
    let cfg = trafficgen::GenConfig { target_bytes: 4 << 20, record_truth: true, ..trafficgen::GenConfig::clean() };
    let (path, summary) = generate("clean.pcap", &cfg);
    check_against_truth(&path, &summary, false);
}

#[test]
fn loss_reordering_and_duplicates_are_repaired() {
    let cfg = trafficgen::GenConfig {
        target_bytes: 4 << 20,
        record_truth: true,
        loss_probability: 0.02,
        reorder_probability: 0.02,
        duplicate_probability: 0.01,
        seed: 7,
        ..trafficgen::GenConfig::default()
    };
    let (path, summary) = generate("impaired.pcap", &cfg);
    check_against_truth(&path, &summary, false);
}

#[test]
fn real_gaps_only_affect_their_exchanges() {
    let cfg = trafficgen::GenConfig {
        target_bytes: 4 << 20,
        record_truth: true,
        gap_probability: 0.002,
        seed: 11,
        ..trafficgen::GenConfig::clean()
    };
    let (path, summary) = generate("gapped.pcap", &cfg);
    assert!(summary.segments_gapped > 0);
    let (lines, _, ok) = replay(&[path.to_str().unwrap_or_default(), "--format", "exchange"]);
    assert!(ok);
    let delivered = summary.truth.iter().filter(|t| t.delivered).count();
    let clean = lines.iter().filter(|l| l["flags"]["gap"] == false && l["response"].is_object()).count();
    // Every exchange untouched by a gap comes out whole; a gap may cost at most its own exchange
    // and the one in flight after it on the same connection.
    assert!(clean + 2 * summary.segments_gapped as usize >= delivered, "clean {clean}, delivered {delivered}");
    assert!(lines.iter().any(|l| l["flags"]["gap"] == true));
}

#[test]
fn akto_records_parse_the_way_akto_consumer_parses_them() {
    let cfg = trafficgen::GenConfig { target_bytes: 1 << 20, ..trafficgen::GenConfig::clean() };
    let (path, _) = generate("records.pcap", &cfg);
    let (lines, stderr, ok) = replay(&[path.to_str().unwrap_or_default(), "--account-id", "1234"]);
    assert!(ok, "{stderr}");
    assert!(!lines.is_empty());
    for r in &lines {
        // As Akto's consumer reads it (shape, strings, numbers, header maps, source).
        support::assert_akto_record(r);
        // The request's header map carries a lowercase host, as Akto's collectors add one.
        let rh: serde_json::Map<String, Value> =
            serde_json::from_str(r["requestHeaders"].as_str().unwrap_or_default()).expect("requestHeaders JSON");
        assert!(rh.contains_key("host"));
        assert_eq!(r["source"], "PCAP");
        assert_eq!(r["akto_account_id"], "1234");
        assert_eq!(r["type"], "HTTP/1.1");
        assert_eq!(r["is_pending"], "false");
        let status = r["status"].as_str().unwrap_or_default();
        assert!(status.starts_with(r["statusCode"].as_str().unwrap_or("?")));
        // Akto drops JSON that looks cut; a whole capture never cuts.
        if rh.get("Content-Type").and_then(Value::as_str) == Some("application/json") {
            let p = r["requestPayload"].as_str().unwrap_or_default();
            assert!(p.is_empty() || (p.starts_with('{') == p.ends_with('}')), "{p}");
        }
    }
}

#[test]
fn unreadable_files_are_named_and_the_rest_processed() {
    let cfg = trafficgen::GenConfig { target_bytes: 256 << 10, ..trafficgen::GenConfig::clean() };
    let (good, _) = generate("good.pcap", &cfg);
    let garbage = tmp("garbage.pcap");
    std::fs::write(&garbage, b"this is not a capture file at all").ok();
    let truncated = tmp("truncated.pcap");
    let bytes = std::fs::read(&good).unwrap_or_default();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2 + 7]).ok();
    let missing = tmp("does-not-exist.pcap");
    let (alone, _, _) = replay(&[good.to_str().unwrap_or_default()]);
    let (lines, stderr, ok) = replay(&[
        garbage.to_str().unwrap_or_default(),
        missing.to_str().unwrap_or_default(),
        good.to_str().unwrap_or_default(),
    ]);
    assert!(!ok, "non-zero exit when a file failed");
    assert!(stderr.contains("garbage.pcap") && stderr.contains("not a pcap"), "{stderr}");
    assert!(stderr.contains("does-not-exist.pcap"), "{stderr}");
    assert_eq!(lines.len(), alone.len(), "the good file is processed in full");
    let (part, stderr, ok) = replay(&[truncated.to_str().unwrap_or_default()]);
    assert!(!ok);
    assert!(stderr.contains("truncated.pcap") && stderr.contains("truncated"), "{stderr}");
    assert!(!part.is_empty() && part.len() < alone.len() + 1);
    // An empty file gets a clear error too.
    let empty = tmp("empty.pcap");
    std::fs::write(&empty, b"").ok();
    let (none, stderr, ok) = replay(&[empty.to_str().unwrap_or_default()]);
    assert!(!ok && none.is_empty());
    assert!(stderr.contains("empty.pcap"), "{stderr}");
}

#[test]
fn replay_is_deterministic_and_gzip_captures_read() {
    use std::io::Write;
    let cfg = trafficgen::GenConfig { target_bytes: 1 << 20, seed: 3, ..trafficgen::GenConfig::default() };
    let (path, _) = generate("det.pcap", &cfg);
    let gz = tmp("det.pcap.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&std::fs::read(&path).unwrap_or_default()).ok();
    std::fs::write(&gz, e.finish().unwrap_or_default()).ok();
    let run =
        |p: &Path| Command::new(bin()).args(["replay", "-q"]).arg(p).output().map(|o| o.stdout).unwrap_or_default();
    let a = run(&path);
    assert!(!a.is_empty());
    assert_eq!(a, run(&path));
    assert_eq!(a, run(&gz));
    // Through a pipe (no file size, no seeking): the same bytes.
    let mut child = Command::new(bin())
        .args(["replay", "-q", "/dev/stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run akto-tap");
    let bytes = std::fs::read(&path).unwrap_or_default();
    let mut stdin = child.stdin.take().expect("stdin pipe");
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let piped = child.wait_with_output().map(|o| o.stdout).unwrap_or_default();
    assert!(writer.join().is_ok_and(|r| r.is_ok()));
    assert_eq!(a, piped);
}

/// Encoding on threads (`--workers N`) writes the same bytes, in the same order, and the same
/// summary as encoding on the reassembly thread (`--workers 0`), in both formats, with
/// exchanges that have no request line (a lossy capture) among them.
#[test]
fn encoder_threads_write_the_same_output_as_inline() {
    let cfg = trafficgen::GenConfig {
        target_bytes: 6 << 20,
        seed: 11,
        loss_probability: 0.01,
        ..trafficgen::GenConfig::default()
    };
    let (path, _) = generate("workers.pcap", &cfg);
    let run = |format: &str, workers: &str| {
        let o = Command::new(bin())
            .args(["replay", "--format", format, "--workers", workers])
            .arg(&path)
            .output()
            .expect("run akto-tap");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        (o.stdout, String::from_utf8_lossy(&o.stderr).into_owned())
    };
    for format in ["akto", "exchange"] {
        let (inline, inline_summary) = run(format, "0");
        assert!(inline.len() > 1 << 20, "{format}: {} bytes", inline.len());
        for workers in ["1", "3"] {
            let (threaded, summary) = run(format, workers);
            assert!(threaded == inline, "{format}, {workers} workers: output differs from inline");
            assert_eq!(summary, inline_summary, "{format}, {workers} workers");
        }
    }
}
