//! Library throughput: a realistic generated capture (keep-alive and short connections, JSON
//! bodies of mixed sizes, chunked and gzip responses, MCP/SSE, loss and reordering) held in
//! memory, run through a fresh engine per iteration. Reports capture bytes/s and exchanges/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reassembly::{Config, Engine, LinkType, Timestamp};

/// Splits a classic little-endian pcap into (timestamp, frame) pairs.
fn frames(pcap: &[u8]) -> Vec<(Timestamp, &[u8])> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let h = &pcap[at..at + 16];
        let le = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let ts = Timestamp::from_secs_micros(u64::from(le(0)), le(4));
        let len = le(8) as usize;
        at += 16;
        out.push((ts, &pcap[at..at + len]));
        at += len;
    }
    out
}

fn bench(c: &mut Criterion) {
    let cfg = trafficgen::GenConfig { target_bytes: 128 << 20, ..trafficgen::GenConfig::default() };
    let mut pcap = Vec::new();
    let summary = trafficgen::generate(&cfg, &mut pcap).expect("generate");
    let frames = frames(&pcap);
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(pcap.len() as u64));
    g.bench_function(format!("capture_{}MB_{}_exchanges", pcap.len() >> 20, summary.exchanges), |b| {
        b.iter(|| {
            let mut engine = Engine::new(Config::default());
            let mut out = Vec::new();
            let mut n = 0usize;
            for (ts, f) in &frames {
                engine.on_frame(*ts, LinkType::Ethernet, f, &mut out);
                n += out.len();
                out.clear();
            }
            engine.flush_all(&mut out);
            n + out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
