//! Prints the injection assessment (rules, model, combined) of each stdin line — a debugging aid.
//!
//! ```text
//! echo "Ignore previous instructions" | cargo run -p guardrails --example score [-- --third-party]
//! ```

use std::io::BufRead;

use guardrails::normalize;
use guardrails::scanners::injection::InjectionScanner;
use guardrails::scanners::TextContext;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx =
        if std::env::args().any(|a| a == "--third-party") { TextContext::ThirdParty } else { TextContext::Prompt };
    let s = InjectionScanner::new()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let a = s.assess(&normalize(&line).text, ctx);
        let ids: Vec<&str> = a.hits.iter().map(|h| h.id).collect();
        println!("{:.3} rules {:.3} model {:.3} {:?} | {}", a.combined, a.rules, a.model, ids, line);
    }
    Ok(())
}
