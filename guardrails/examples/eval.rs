//! Runs the evaluation over the development data and exits non-zero under the committed bars.
//!
//! ```text
//! cargo run -p guardrails --release --example eval [-- DATASETS_DIR]
//! ```
//! `DATASETS_DIR` defaults to `$AKTO_TAP_DATASETS` or `../shared/datasets` beside the repository.
//! The injection figures use the shipped weights, which were trained on these records; the
//! held-out (cross-validated) figures are printed by `examples/train.rs`.

#[path = "common/data.rs"]
#[allow(dead_code)]
mod data;
#[path = "common/eval_lib.rs"]
mod eval_lib;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(data::dataset_root);
    let root = if root.ends_with("normalized") { root.parent().map(PathBuf::from).unwrap_or(root) } else { root };
    let report = match eval_lib::run(&root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("eval: {e}");
            return ExitCode::from(2);
        }
    };
    report.print();
    let failures = report.failures();
    if failures.is_empty() {
        println!("\nPASS: every committed bar met");
        ExitCode::SUCCESS
    } else {
        println!("\nFAIL:");
        for f in &failures {
            println!("  {f}");
        }
        ExitCode::FAILURE
    }
}
