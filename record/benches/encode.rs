//! Record encoding throughput: the Akto records of a generated capture (the replay benchmark's
//! mix: JSON bodies of mixed sizes, gzip, MCP/SSE), written by `AktoRecord::write_json` and, for
//! comparison, by serde_json. Reports bytes of JSON written per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reassembly::{Config, Engine, LinkType, Timestamp};
use record::{headers_json, AktoRecord};
use std::borrow::Cow;

/// The exchanges of a 32 MB generated capture.
fn exchanges() -> Vec<reassembly::HttpExchange> {
    let cfg = trafficgen::GenConfig { target_bytes: 32 << 20, ..trafficgen::GenConfig::default() };
    let mut pcap = Vec::new();
    trafficgen::generate(&cfg, &mut pcap).expect("generate");
    let mut engine = Engine::new(Config::default());
    let mut out = Vec::new();
    for (secs, micros, frame) in trafficgen::frames(&pcap) {
        engine.on_frame(Timestamp::from_secs_micros(secs, micros), LinkType::Ethernet, frame, &mut out);
    }
    engine.flush_all(&mut out);
    out
}

/// The record fields that carry text (bodies and header maps); the rest as the agent fills them.
fn to_record(ex: &reassembly::HttpExchange) -> AktoRecord<'_> {
    let headers = |h: &reassembly::Headers| headers_json(h.iter().map(|h| (h.name, h.value)), None);
    let resp = ex.response.as_ref();
    AktoRecord {
        path: Cow::Borrowed(&ex.request.target),
        request_headers: headers(&ex.request.headers).into(),
        response_headers: resp.map(|r| headers(&r.headers)).unwrap_or_default().into(),
        method: Cow::Borrowed(&ex.request.method),
        request_payload: String::from_utf8_lossy(&ex.request.body.data),
        response_payload: resp.map(|r| String::from_utf8_lossy(&r.body.data)).unwrap_or_default(),
        ip: "10.0.0.1:41234".into(),
        dest_ip: "10.0.0.2:8080".into(),
        time: "1717405200".into(),
        status_code: "200".into(),
        status: "200 OK".into(),
        ..AktoRecord::default()
    }
}

fn bench(c: &mut Criterion) {
    let exchanges = exchanges();
    let records: Vec<AktoRecord<'_>> = exchanges.iter().map(to_record).collect();
    let mut out = Vec::with_capacity(64 << 20);
    for r in &records {
        r.write_json(&mut out);
    }
    let mut g = c.benchmark_group("record");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(out.len() as u64));
    g.bench_function(format!("write_json_{}_records_{}MB", records.len(), out.len() >> 20), |b| {
        b.iter(|| {
            out.clear();
            for r in &records {
                r.write_json(&mut out);
            }
            out.len()
        })
    });
    g.bench_function("serde_json_same_records", |b| {
        b.iter(|| {
            out.clear();
            for r in &records {
                serde_json::to_writer(&mut out, r).ok();
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
