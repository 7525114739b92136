//! Profiling harness: scans a benchmark input N times (for `perf record` / `valgrind --tool=callgrind`,
//! whose instruction counts are stable on a shared machine).
//!
//! ```text
//! cargo build -p guardrails --release --example profile
//! valgrind --tool=callgrind target/release/examples/profile call 200
//! ```
//! Inputs: `call` (4 KB MCP tools/call), `list` (tools/list, 20 tools), `mixed` (256 KB mixed JSON).

#[path = "../benches/corpus.rs"]
mod corpus;

use guardrails::{Direction, Engine, Policy};

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "call".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let e = match Engine::new(Policy::default()) {
        Ok(e) => e,
        Err(err) => panic!("engine: {err}"),
    };
    let (body, dir) = match which.as_str() {
        "mixed" => (corpus::mixed_json(256 * 1024), Direction::Response),
        "list" => (corpus::tools_list(20), Direction::Response),
        _ => (corpus::tools_call(4096), Direction::Request),
    };
    let mut flagged = 0usize;
    for _ in 0..n {
        flagged += std::hint::black_box(e.scan_mcp(std::hint::black_box(&body), dir)).findings.len();
    }
    println!("{which}: {} bytes x {n}, {flagged} findings", body.len());
}
