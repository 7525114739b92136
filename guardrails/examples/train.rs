//! Trains the two injection models on the development data and writes
//! `model/injection_prompt.bin` and `model/injection_third_party.bin`.
//!
//! ```text
//! cargo run -p guardrails --release --example train -- [DATASETS_DIR] [--out-dir DIR] [--folds K]
//! ```
//! Deterministic: same data, same bytes. Before writing, it runs K-fold cross-validation (folds by
//! FNV hash of the record id) and prints held-out and in-sample figures of rules+model.
//!
//! Training sets:
//! * prompt model: every record except BIPIA's injection payloads (they are ordinary requests
//!   when a user types them; BIPIA's benign contexts stay as negatives);
//! * third-party model: every record except the BIPIA payloads that are plain user tasks
//!   ("What is the capital of Brazil?"), which are injections only by where they appear and
//!   would teach the model that questions are attacks. They stay in the evaluation.

#[path = "common/data.rs"]
#[allow(dead_code)]
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
    let mut out_dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/model"));
    let mut folds = 5u32;
    let mut dump = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out-dir" => out_dir = PathBuf::from(args.next().ok_or("--out-dir needs a path")?),
            "--folds" => folds = args.next().ok_or("--folds needs a number")?.parse()?,
            "--dump" => dump = true,
            other => {
                let p = PathBuf::from(other);
                root = if p.ends_with("normalized") { p.parent().map(PathBuf::from).unwrap_or(p) } else { p };
            }
        }
    }
    let records = data::classification(&root)?;
    let params = train_lib::Params::default();
    eprintln!(
        "{} records, {} positive; params {params:?}",
        records.len(),
        records.iter().filter(|r| r.positive()).count()
    );
    let prepared = train_lib::prepare(&records, params.bits);
    // Only the rules are used here: build the scanner around an all-zero model so that training
    // does not depend on the embedded weights (which may be stale after a feature change).
    let zero: &'static [u8] = Box::leak(encode(params.bits, 0.0, &vec![0.0; 1usize << params.bits]).into_boxed_slice());
    let zero = LinearModel::parse(zero)?;
    let rules = InjectionScanner::with_models(zero, zero)?;
    let norms: Vec<String> = records.iter().map(|r| normalize(&r.text).text).collect();
    let ctx_of = |r: &data::Record| {
        if r.direction == Direction::Response {
            TextContext::ThirdParty
        } else {
            TextContext::Prompt
        }
    };
    let rule_scores: Vec<f32> = records.iter().zip(&norms).map(|(r, n)| rules.rules(n, ctx_of(r)).0).collect();
    let in_prompt_set = |r: &data::Record| !(r.source == "BIPIA" && r.positive());
    let in_third_set = |r: &data::Record| !data::context_only(r);

    let model_probs = |train_idx: &[usize],
                       score_idx: &[usize],
                       probs: &mut Vec<f32>|
     -> Result<(Vec<u8>, Vec<u8>), Box<dyn std::error::Error>> {
        let p_idx: Vec<usize> = train_idx.iter().copied().filter(|&i| in_prompt_set(&records[i])).collect();
        let t_idx: Vec<usize> = train_idx.iter().copied().filter(|&i| in_third_set(&records[i])).collect();
        let (pb, pw) = train_lib::train(&prepared, &p_idx, params);
        let (tb, tw) = train_lib::train(&prepared, &t_idx, params);
        let pbytes = encode(params.bits, pb, &pw);
        let tbytes = encode(params.bits, tb, &tw);
        let pm = LinearModel::parse(&pbytes)?;
        let tm = LinearModel::parse(&tbytes)?;
        for &i in score_idx {
            let m = if ctx_of(&records[i]) == TextContext::ThirdParty { &tm } else { &pm };
            probs[i] = m.score(&norms[i]).prob;
        }
        Ok((pbytes, tbytes))
    };

    let all: Vec<usize> = (0..records.len()).collect();
    let mut held_out = vec![0f32; records.len()];
    for k in 0..folds {
        let train_idx: Vec<usize> =
            all.iter().copied().filter(|&i| data::fold_of(&records[i].id, folds) != k).collect();
        let test_idx: Vec<usize> = all.iter().copied().filter(|&i| data::fold_of(&records[i].id, folds) == k).collect();
        model_probs(&train_idx, &test_idx, &mut held_out)?;
        eprintln!("fold {k} done");
    }
    let mut in_sample = vec![0f32; records.len()];
    let (pbytes, tbytes) = model_probs(&all, &all, &mut in_sample)?;

    let combined = |probs: &[f32], i: usize| 1.0 - (1.0 - rule_scores[i]) * (1.0 - probs[i]);
    println!("threshold sweep (combined = rules noisy-OR model), {folds}-fold held-out vs in-sample:");
    println!("{:>9} {:>12} {:>12} {:>12} {:>12}", "threshold", "TPR held", "FPR held", "TPR train", "FPR train");
    for t in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
        let rate = |probs: &[f32], positive: bool| {
            let sel: Vec<usize> = all.iter().copied().filter(|&i| records[i].positive() == positive).collect();
            sel.iter().filter(|&&i| combined(probs, i) >= t).count() as f32 / sel.len().max(1) as f32
        };
        println!(
            "{t:>9.2} {:>12.4} {:>12.4} {:>12.4} {:>12.4}",
            rate(&held_out, true),
            rate(&held_out, false),
            rate(&in_sample, true),
            rate(&in_sample, false)
        );
    }
    let t = guardrails::scanners::injection::DEFAULT_THRESHOLD;
    println!("\nper source at threshold {t:.2}: flagged fraction held-out | in-sample | rules alone");
    for &(src, _, _) in data::CLASSIFICATION {
        for label in ["injection", "jailbreak", "benign"] {
            let sel: Vec<usize> =
                all.iter().copied().filter(|&i| records[i].source == src && records[i].label == label).collect();
            if sel.is_empty() {
                continue;
            }
            let f = |probs: &[f32]| sel.iter().filter(|&&i| combined(probs, i) >= t).count() as f32 / sel.len() as f32;
            let r = sel.iter().filter(|&&i| rule_scores[i] >= t).count() as f32 / sel.len() as f32;
            println!("  {src:<8} {label:<9} n={:<4} {:.3} | {:.3} | {:.3}", sel.len(), f(&held_out), f(&in_sample), r);
        }
    }
    if dump {
        println!("\nheld-out errors at threshold {t:.2} (combined, rules, model):");
        for (i, r) in records.iter().enumerate() {
            let c = combined(&held_out, i);
            if (c >= t) != r.positive() {
                let text: String = r.text.chars().take(110).collect();
                println!(
                    "  {} {:<9} {c:.2} {:.2} {:.2} {}",
                    if r.positive() { "FN" } else { "FP" },
                    r.source,
                    rule_scores[i],
                    held_out[i],
                    text.replace('\n', " ")
                );
            }
        }
    }
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("injection_prompt.bin"), &pbytes)?;
    std::fs::write(out_dir.join("injection_third_party.bin"), &tbytes)?;
    println!("\nwrote {}/injection_{{prompt,third_party}}.bin ({} bytes each)", out_dir.display(), pbytes.len());
    Ok(())
}
