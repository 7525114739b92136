//! Trains the injection model on the development data and writes `model/injection.bin`.
//!
//! ```text
//! cargo run -p guardrails --release --example train -- [DATASETS_DIR] [--out FILE] [--folds K]
//! ```
//! Deterministic: same data, same bytes. Before writing, it runs K-fold cross-validation (folds by
//! FNV hash of the record id) and prints held-out figures of the model alone and of rules+model.

#[path = "common/data.rs"]
mod data;
#[path = "common/train_lib.rs"]
mod train_lib;

use std::path::PathBuf;

use guardrails::model::{encode, LinearModel};
use guardrails::normalize;
use guardrails::scanners::injection::InjectionScanner;
use guardrails::scanners::TextContext;
use guardrails::Direction;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut root = data::dataset_root();
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/model/injection.bin"));
    let mut folds = 5u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a path")?),
            "--folds" => folds = args.next().ok_or("--folds needs a number")?.parse()?,
            other => root = PathBuf::from(other).parent().map(|p| p.to_path_buf()).filter(|_| other.ends_with("normalized")).unwrap_or_else(|| PathBuf::from(other)),
        }
    }
    let records = data::classification(&root)?;
    let params = train_lib::Params::default();
    eprintln!("{} records, {} positive; params {params:?}", records.len(), records.iter().filter(|r| r.positive()).count());
    let prepared = train_lib::prepare(&records, params.bits);
    let rules = InjectionScanner::new()?;
    let norms: Vec<String> = records.iter().map(|r| normalize(&r.text).text).collect();
    let rule_scores: Vec<f32> = records
        .iter()
        .zip(&norms)
        .map(|(r, n)| {
            let ctx = if r.direction == Direction::Response { TextContext::ThirdParty } else { TextContext::Prompt };
            rules.rules(n, ctx).0
        })
        .collect();

    // Cross-validation: held-out model probabilities for every record.
    let mut held_out = vec![0f32; records.len()];
    for k in 0..folds {
        let train_idx: Vec<usize> = (0..records.len()).filter(|&i| data::fold_of(&records[i].id, folds) != k).collect();
        let (bias, w) = train_lib::train(&prepared, &train_idx, params);
        let bytes = encode(params.bits, bias, &w);
        let m = LinearModel::parse(&bytes)?;
        for i in (0..records.len()).filter(|&i| data::fold_of(&records[i].id, folds) == k) {
            held_out[i] = m.score(&norms[i]).prob;
        }
        eprintln!("fold {k} done");
    }
    let (bias, w) = train_lib::train(&prepared, &(0..records.len()).collect::<Vec<_>>(), params);
    let bytes = encode(params.bits, bias, &w);
    let m = LinearModel::parse(&bytes)?;
    let in_sample: Vec<f32> = norms.iter().map(|n| m.score(n).prob).collect();

    println!("threshold sweep (combined = rules noisy-OR model), {folds}-fold held-out vs in-sample:");
    println!("{:>9} {:>12} {:>12} {:>12} {:>12}", "threshold", "TPR held", "FPR held", "TPR train", "FPR train");
    for t in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let rate = |probs: &[f32], positive: bool| {
            let sel: Vec<usize> = (0..records.len()).filter(|&i| records[i].positive() == positive).collect();
            let hit = sel.iter().filter(|&&i| 1.0 - (1.0 - rule_scores[i]) * (1.0 - probs[i]) >= t).count();
            hit as f32 / sel.len().max(1) as f32
        };
        println!("{t:>9.2} {:>12.4} {:>12.4} {:>12.4} {:>12.4}", rate(&held_out, true), rate(&held_out, false), rate(&in_sample, true), rate(&in_sample, false));
    }
    println!("\nper source at threshold {:.2} (held-out | in-sample):", guardrails::scanners::injection::DEFAULT_THRESHOLD);
    let t = guardrails::scanners::injection::DEFAULT_THRESHOLD;
    for &(src, _, _) in data::CLASSIFICATION {
        for label in ["injection", "jailbreak", "benign"] {
            let sel: Vec<usize> = (0..records.len()).filter(|&i| records[i].source == src && records[i].label == label).collect();
            if sel.is_empty() {
                continue;
            }
            let f = |probs: &[f32]| sel.iter().filter(|&&i| 1.0 - (1.0 - rule_scores[i]) * (1.0 - probs[i]) >= t).count() as f32 / sel.len() as f32;
            let rules_only = sel.iter().filter(|&&i| rule_scores[i] >= t).count() as f32 / sel.len() as f32;
            println!("  {src:<8} {label:<9} n={:<4} flagged held-out {:.3} | in-sample {:.3} | rules alone {:.3}", sel.len(), f(&held_out), f(&in_sample), rules_only);
        }
    }
    std::fs::write(&out, &bytes)?;
    println!("\nwrote {} ({} bytes, bias {bias:.4})", out.display(), bytes.len());
    Ok(())
}
