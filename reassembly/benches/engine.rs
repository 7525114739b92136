//! Library throughput: a realistic generated capture (keep-alive and short connections, JSON
//! bodies of mixed sizes, chunked and gzip responses, MCP/SSE, loss and reordering) held in
//! memory, run through a fresh engine per iteration. Reports capture bytes/s and exchanges/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use reassembly::{Config, Engine, LinkType, Timestamp};

fn bench(c: &mut Criterion) {
    let cfg = trafficgen::GenConfig { target_bytes: 128 << 20, ..trafficgen::GenConfig::default() };
    let mut pcap = Vec::new();
    let summary = trafficgen::generate(&cfg, &mut pcap).expect("generate");
    let frames: Vec<(Timestamp, &[u8])> = trafficgen::frames(&pcap)
        .map(|(secs, micros, frame)| (Timestamp::from_secs_micros(secs, micros), frame))
        .collect();
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
