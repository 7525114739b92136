//! Runs the evaluation over the development data and fails under the committed bars.
//! Skipped (with a message) when the datasets are not present.

#[path = "../examples/common/data.rs"]
#[allow(dead_code)]
mod data;
#[path = "../examples/common/eval_lib.rs"]
mod eval_lib;

#[test]
fn quality_bars_on_development_data() {
    let root = data::dataset_root();
    if !root.join("normalized").is_dir() {
        println!("skipped: ../shared/datasets not found ({})", root.display());
        return;
    }
    let report = match eval_lib::run(&root) {
        Ok(r) => r,
        Err(e) => panic!("evaluation could not run: {e}"),
    };
    report.print();
    let failures = report.failures();
    assert!(failures.is_empty(), "quality bars not met: {failures:#?}");
}
