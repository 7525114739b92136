//! Criterion benchmarks: a 4 KB MCP `tools/call` with every scanner enabled, a `tools/list`
//! response, throughput on mixed JSON, and hostile texts (one short piece repeated, each aimed
//! at a scanner's candidate search) at two sizes, whose times must grow linearly with the size.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use guardrails::{Direction, Engine, Policy};
use std::hint::black_box;

#[path = "corpus.rs"]
mod corpus;

fn engine() -> Engine {
    match Engine::new(Policy::default()) {
        Ok(e) => e,
        Err(e) => panic!("engine: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let e = engine();
    let call = corpus::tools_call(4096);
    assert!((4000..=4200).contains(&call.len()), "tools/call is {} bytes", call.len());
    let mut g = c.benchmark_group("mcp");
    g.throughput(Throughput::Bytes(call.len() as u64));
    g.bench_function("tools_call_4k_all_scanners", |b| {
        b.iter(|| black_box(e.scan_mcp(black_box(&call), Direction::Request)))
    });
    let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": (0..20).map(|i| serde_json::json!({
        "name": format!("tool_{i}"), "description": "Reads a file from the workspace and returns its contents as text.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "description": "Relative path of the file."}}, "required": ["path"]}
    })).collect::<Vec<_>>()}}).to_string();
    g.throughput(Throughput::Bytes(list.len() as u64));
    g.bench_function("tools_list_20_tools", |b| {
        b.iter(|| black_box(e.scan_mcp(black_box(&list), Direction::Response)))
    });
    g.finish();

    let mut g = c.benchmark_group("throughput");
    for size in [16 * 1024, 256 * 1024] {
        let body = corpus::mixed_json(size);
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("mixed_json", size), &body, |b, body| {
            b.iter(|| black_box(e.scan_mcp(black_box(body), Direction::Response)))
        });
    }
    g.finish();

    // Each of these once grew with the square of the size: 200 KB of `ab12-` took 6.7 s of CPU
    // (every IBAN candidate searched to the end of the text), `password: ` and private key
    // headers without an end most of a second at 256–400 KB.
    let mut g = c.benchmark_group("hostile");
    for (name, piece) in [
        ("iban_candidates", "ab12-"),
        ("ssn_pieces", "123-45-"),
        ("card_pieces", "4111-"),
        ("emails_without_domain", "a@b."),
        ("assignments", "password: "),
        ("private_key_headers", "-----BEGIN PRIVATE KEY-----"),
        ("injection_openers", "ignore previous "),
    ] {
        for size in [64 * 1024, 256 * 1024] {
            let text = piece.repeat(size / piece.len());
            g.throughput(Throughput::Bytes(text.len() as u64));
            g.bench_with_input(BenchmarkId::new(name, size), &text, |b, text| {
                b.iter(|| black_box(e.scan_text(black_box(text), Direction::Response)))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
