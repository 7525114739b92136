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
    if which == "parts" {
        parts(n);
        return;
    }
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

/// Times each scanner alone on the mixed JSON and the 4 KB call body (wall clock, best of `n`).
fn parts(n: usize) {
    use guardrails::scanners::{injection::InjectionScanner, pii::PiiScanner, secrets::SecretsScanner, TextContext};
    use std::time::Instant;
    let inj = InjectionScanner::new().expect("inj");
    let pii = PiiScanner::new().expect("pii");
    let sec = SecretsScanner::new().expect("sec");
    let pol = Policy::default();
    for (name, body) in [("mixed", corpus::mixed_json(256 * 1024)), ("call", corpus::tools_call(4096))] {
        let norm = guardrails::normalize(&body);
        let time = |f: &dyn Fn() -> usize| {
            let mut best = f64::MAX;
            for _ in 0..n {
                let t = Instant::now();
                std::hint::black_box(f());
                best = best.min(t.elapsed().as_secs_f64());
            }
            best * 1e6
        };
        println!("{name} ({} bytes), microseconds (best of {n}):", body.len());
        println!("  normalize      {:>9.1}", time(&|| guardrails::normalize(&body).text.len()));
        println!("  model          {:>9.1}", time(&|| inj.model_score(&norm.text, TextContext::ThirdParty).start));
        println!("  inj rules      {:>9.1}", time(&|| inj.rules(&norm.text, TextContext::ThirdParty).1.len()));
        println!(
            "  inj scan(all)  {:>9.1}",
            time(&|| {
                let mut b = u64::MAX;
                inj.scan(&body, &norm, TextContext::ThirdParty, 0.5, true, &mut b).0.len()
            })
        );
        println!("  pii            {:>9.1}", time(&|| pii.scan(&body, &pol.pii.types).len()));
        println!("  secrets        {:>9.1}", time(&|| sec.scan(&body, None, &pol.secrets).len()));
        println!("  hidden         {:>9.1}", time(&|| guardrails::scanners::hidden::scan(&body, true).len()));
        let e = Engine::new(Policy::default()).expect("engine");
        println!("  engine total   {:>9.1}", time(&|| e.scan_mcp(&body, Direction::Response).findings.len()));
    }
}
