//! Conformance suite: `akto-tap replay` over the public captures in `../shared/corpus`, compared
//! with what peer tools expect from the same captures (see `shared/corpus/INDEX.md`):
//!
//! * **Zeek** — every `http.log` baseline row that belongs to one trace (manifest and the few
//!   documented exceptions in `conformance/manifest.rs`). A row matches an exchange when method,
//!   URI (percent-decoded, as Zeek logs it) and status agree, each compared only when the row
//!   states it; for matched rows `request_body_len` / `response_body_len` are then compared.
//!   Exchanges of those traces that match no row are *extras* and count against the score:
//!   `score = matched / (rows + extras)`.
//! * **Suricata** — every suricata-verify check on `event_type: http` whose fields map onto the
//!   exchange record (`conformance/suricata.rs` says how each EVE field is computed). A check with
//!   `count: N` passes when exactly N exchanges satisfy it, one without when at least one does.
//!   Checks with fields the record can't express, HTTP/2 checks and engine-mode tests are listed as
//!   skipped with the reason.
//!
//! The binary is run once per capture (`replay FILE --format exchange --output -`), two at a time.
//! The score table goes to stdout (`cargo test --profile ci -p akto-tap --test conformance --
//! --nocapture`); when a threshold is missed the summary is in the failure message. Set
//! `AKTO_TAP_CONFORMANCE_REPORT=path` to also write the full report to a file. The corpus
//! location can be overridden with `AKTO_TAP_CORPUS`; without a corpus the test passes with a
//! "skipped" line.
//!
//! The thresholds below are floors: raise them as the reassembler improves, never lower them to
//! make a regression pass.

#[path = "conformance/exchange.rs"]
mod exchange;
#[path = "conformance/manifest.rs"]
mod manifest;
#[path = "conformance/suricata.rs"]
mod suricata;
#[path = "conformance/zeek.rs"]
mod zeek;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use exchange::{replay_all, Exchange, ReplayOutput};
use suricata::{Class, TestSpec};

/// Minimum Zeek score, percent: matched rows / (rows + extra exchanges).
const ZEEK_ROWS_MIN_PCT: f64 = 97.5;
/// Minimum share of the body lengths stated by matched Zeek rows that the replay reproduces,
/// percent.
const ZEEK_BODY_MIN_PCT: f64 = 98.5;
/// Minimum share of mappable Suricata http checks that pass, percent.
const SURICATA_MIN_PCT: f64 = 96.5;

/// Worker threads running the binary (the reference machine has 2 cores).
const THREADS: usize = 2;
/// A capture that takes longer than this is reported as timed out.
const PER_FILE_TIMEOUT: Duration = Duration::from_secs(120);
/// Cap on listed extras per trace in the report.
const MAX_EXTRAS_LISTED: usize = 8;

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("AKTO_TAP_CORPUS") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus")),
    };
    dir.join("INDEX.md").exists().then_some(dir)
}

/// `None` when the binary has the replay command with `--format`; otherwise why not.
fn replay_unavailable(bin: &Path) -> Option<String> {
    match Command::new(bin).args(["replay", "--help"]).output() {
        Ok(o) if o.status.success() => {
            let help = String::from_utf8_lossy(&o.stdout);
            if help.contains("--format") {
                None
            } else {
                Some("`akto-tap replay --help` does not mention --format".to_string())
            }
        }
        Ok(_) => Some("`akto-tap replay --help` failed".to_string()),
        Err(e) => Some(format!("cannot run {}: {e}", bin.display())),
    }
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

fn rel(path: &Path, base: &Path) -> String {
    path.strip_prefix(base).unwrap_or(path).display().to_string()
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

// ---------------------------------------------------------------------------------------------
// Zeek

/// Per-baseline counts.
#[derive(Debug, Default, Clone, Copy)]
struct EntryStats {
    matched: usize,
    bodies: usize,
    bodies_equal: usize,
    extras: usize,
}

#[derive(Debug)]
enum EntryState {
    Scored(EntryStats),
    /// Same rows as the baseline scored for the trace.
    Duplicate(String),
    Error(String),
}

#[derive(Debug)]
struct ZeekEntry {
    baseline: String,
    trace: String,
    rows: usize,
    /// Line numbers of rows that record neither request nor response (not scored).
    empty_rows: Vec<usize>,
    state: EntryState,
}

#[derive(Debug, Default)]
struct ZeekTotals {
    rows: usize,
    matched: usize,
    extras: usize,
    bodies: usize,
    bodies_equal: usize,
    /// Body lengths stated by rows that matched no exchange (not in the body score).
    bodies_unmatched: usize,
    depths: usize,
    depths_equal: usize,
}

fn body_artefact(baseline: &str, line: usize, col: &str, got: Option<u64>) -> Option<&'static str> {
    manifest::ZEEK_BODY_ARTEFACTS
        .iter()
        .find(|(b, l, c, v, _)| *b == baseline && *l == line && *c == col && got == Some(*v))
        .map(|(_, _, _, _, why)| *why)
}

fn unlogged(trace: &str, ex: &Exchange) -> Option<&'static str> {
    let client = ex.client?;
    manifest::ZEEK_UNLOGGED
        .iter()
        .find(|(t, c, _)| *t == trace && exchange::parse_sockaddr(c) == Some(client))
        .map(|(_, _, why)| *why)
}

fn evaluate_zeek(corpus: &Path, outputs: &BTreeMap<PathBuf, ReplayOutput>) -> (Vec<ZeekEntry>, ZeekTotals, String) {
    let base = corpus.join("zeek/testing/btest/Baseline");
    let traces = corpus.join("zeek/testing/btest/Traces");
    let mut entries = Vec::new();
    let mut totals = ZeekTotals::default();
    // Rows already scored per trace, to skip duplicate baselines.
    let mut scored_rows: BTreeMap<&str, Vec<(String, Vec<zeek::ZeekRow>)>> = BTreeMap::new();
    let mut extras_counted: BTreeSet<&str> = BTreeSet::new();
    let mut details = String::new();
    let mut mism = String::new();
    let mut body_mism = String::new();
    let mut artefacts = String::new();
    let mut extras_txt = String::new();
    let mut accepted_txt = String::new();
    for (baseline, trace) in manifest::ZEEK {
        let bpath = base.join(baseline);
        let tpath = canonical(&traces.join(trace));
        let mut entry = ZeekEntry {
            baseline: baseline.to_string(),
            trace: trace.to_string(),
            rows: 0,
            empty_rows: Vec::new(),
            state: EntryState::Error(String::new()),
        };
        let text = match std::fs::read(&bpath) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => {
                entry.state = EntryState::Error(format!("baseline unreadable: {e}"));
                entries.push(entry);
                continue;
            }
        };
        let log = match zeek::parse_log(&text) {
            Ok(l) => l,
            Err(e) => {
                entry.state = EntryState::Error(format!("baseline unparsable: {e}"));
                entries.push(entry);
                continue;
            }
        };
        let (empty, rows): (Vec<zeek::ZeekRow>, Vec<zeek::ZeekRow>) =
            log.rows.into_iter().filter(|r| r.has_comparable_column()).partition(zeek::ZeekRow::is_empty_row);
        entry.rows = rows.len();
        entry.empty_rows = empty.iter().map(|r| r.line).collect();
        let Some(out) = outputs.get(&tpath) else {
            entry.state = EntryState::Error("trace missing from corpus".to_string());
            entries.push(entry);
            continue;
        };
        let seen = scored_rows.entry(trace).or_default();
        if let Some((first, _)) = seen.iter().find(|(_, r)| zeek::same_rows(r, &rows)) {
            entry.state = EntryState::Duplicate(first.clone());
            entries.push(entry);
            continue;
        }
        seen.push((baseline.to_string(), rows.clone()));
        let exs = &out.exchanges;
        let m = zeek::match_rows(&rows, exs);
        let mut st = EntryStats::default();
        for r in &m.rows {
            if r.matched.is_some() {
                st.matched += 1;
                if let Some(eq) = r.depth_equal {
                    totals.depths += 1;
                    totals.depths_equal += usize::from(eq);
                }
            } else {
                let cand = match zeek::best_candidate(&r.row, exs) {
                    Some((ci, differ)) => format!(
                        "closest {} (differs: {})",
                        exs[ci].summary(),
                        if differ.is_empty() { "nothing; taken by another row".to_string() } else { differ.join(",") }
                    ),
                    None => "no exchanges produced".to_string(),
                };
                let _ = writeln!(mism, "  {trace} [{baseline}:{}] want {}\n      {cand}", r.row.line, r.row.describe());
            }
            for (col, want, got) in &r.bodies {
                if let Some(why) = body_artefact(baseline, r.row.line, col, *got) {
                    let _ = writeln!(
                        artefacts,
                        "  {trace} [{baseline}:{}] {col}: Zeek {want}, replay {} — {why}",
                        r.row.line,
                        got.unwrap_or(0)
                    );
                    continue;
                }
                // Body lengths are scored on matched rows; an unmatched row already counts
                // against the row score.
                if r.matched.is_none() {
                    totals.bodies_unmatched += 1;
                    continue;
                }
                st.bodies += 1;
                if Some(*want) == *got {
                    st.bodies_equal += 1;
                } else if let Some(ei) = r.matched {
                    let _ = writeln!(
                        body_mism,
                        "  {trace} [{baseline}:{}] {col}: want {want} got {} — {}",
                        r.row.line,
                        got.map_or("-".to_string(), |g| g.to_string()),
                        exs[ei].summary()
                    );
                }
            }
        }
        // Extras belong to the trace, not to a baseline: count them once.
        if extras_counted.insert(trace) {
            let mut listed = 0;
            for ei in &m.extras {
                if let Some(why) = unlogged(trace, &exs[*ei]) {
                    let _ = writeln!(accepted_txt, "  {trace}: {} — {why}", exs[*ei].summary());
                    continue;
                }
                st.extras += 1;
                if listed < MAX_EXTRAS_LISTED {
                    let _ = writeln!(extras_txt, "  {trace}: {}", exs[*ei].summary());
                } else if listed == MAX_EXTRAS_LISTED {
                    let _ = writeln!(extras_txt, "  {trace}: … and more");
                }
                listed += 1;
            }
        }
        totals.rows += rows.len();
        totals.matched += st.matched;
        totals.bodies += st.bodies;
        totals.bodies_equal += st.bodies_equal;
        totals.extras += st.extras;
        entry.state = EntryState::Scored(st);
        entries.push(entry);
    }
    if !mism.is_empty() {
        let _ = writeln!(details, "\nZeek rows not matched (expected row; closest exchange produced):\n{mism}");
    }
    if !body_mism.is_empty() {
        let _ = writeln!(details, "\nZeek body lengths that differ (matched rows):\n{body_mism}");
    }
    if !artefacts.is_empty() {
        let _ = writeln!(
            details,
            "\nZeek body lengths not scored (Zeek artefact, replay has the verified length):\n{artefacts}"
        );
    }
    if !extras_txt.is_empty() {
        let _ = writeln!(details, "\nExtra exchanges (no Zeek row claims them):\n{extras_txt}");
    }
    if !accepted_txt.is_empty() {
        let _ = writeln!(details, "\nExchanges Zeek does not log, not counted as extras:\n{accepted_txt}");
    }
    (entries, totals, details)
}

fn zeek_table(entries: &[ZeekEntry], outputs: &BTreeMap<PathBuf, ReplayOutput>, corpus: &Path) -> String {
    let traces = corpus.join("zeek/testing/btest/Traces");
    let mut t = String::new();
    let mut problem_shown: BTreeSet<&str> = BTreeSet::new();
    let _ = writeln!(t, "== Zeek http.log baselines ==");
    let _ = writeln!(
        t,
        "{:<52} {:<58} {:>4} {:>5} {:>7} {:>6} {:>5}",
        "trace", "baseline", "rows", "match", "body=", "extras", "exch"
    );
    for e in entries {
        let out = outputs.get(&canonical(&traces.join(&e.trace)));
        let nex = out.map_or(0, |o| o.exchanges.len());
        let short = exchange::truncate(e.baseline.trim_start_matches("scripts."), 58);
        let line = match &e.state {
            EntryState::Scored(st) => {
                let clean = st.matched == e.rows && st.bodies_equal == st.bodies && st.extras == 0;
                format!(
                    "{:<52} {:<58} {:>4} {:>5} {:>7} {:>6} {:>5}{}",
                    e.trace,
                    short,
                    e.rows,
                    st.matched,
                    format!("{}/{}", st.bodies_equal, st.bodies),
                    st.extras,
                    nex,
                    if clean { "" } else { "  ✗" }
                )
            }
            EntryState::Duplicate(of) => format!(
                "{:<52} {:<58} {:>4}   (same rows as {})",
                e.trace,
                short,
                e.rows,
                of.trim_start_matches("scripts.")
            ),
            EntryState::Error(why) => {
                format!("{:<52} {:<58} {:>4}   ERROR: {why}", e.trace, short, e.rows)
            }
        };
        let _ = writeln!(t, "{line}");
        if !e.empty_rows.is_empty() && !matches!(e.state, EntryState::Duplicate(_)) {
            let _ = writeln!(
                t,
                "{:<52}   not scored: empty row(s) at line {} (no request, no response: Zeek artifact)",
                "",
                e.empty_rows.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
            );
        }
        if let Some(p) = out.and_then(|o| o.problem()) {
            if problem_shown.insert(e.trace.as_str()) {
                let _ = writeln!(t, "{:<52}   replay: {p}", "");
            }
        }
    }
    for (b, why) in manifest::ZEEK_EXCLUDED {
        let _ = writeln!(t, "  excluded {b}: {why}");
    }
    t
}

// ---------------------------------------------------------------------------------------------
// Suricata

fn find_tests(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "test.yaml") {
                out.push(dir.clone());
            }
        }
    }
    out.sort();
    out
}

fn load_suricata(corpus: &Path) -> (Vec<TestSpec>, Vec<String>) {
    let root = corpus.join("suricata-verify");
    let mut specs = Vec::new();
    let mut errors = Vec::new();
    for dir in find_tests(&root.join("tests")) {
        let name = rel(&dir, &root);
        let yaml = match std::fs::read_to_string(dir.join("test.yaml")) {
            Ok(y) => y,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        match suricata::parse_test(&name, &dir, &yaml) {
            Ok(Some(s)) => specs.push(s),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (specs, errors)
}

#[derive(Debug, Default)]
struct SuriTotals {
    checks: usize,
    mappable: usize,
    passed: usize,
    lenient: usize,
}

fn evaluate_suricata(
    specs: &[TestSpec],
    outputs: &BTreeMap<PathBuf, ReplayOutput>,
    corpus: &Path,
) -> (String, SuriTotals, String) {
    let mut totals = SuriTotals::default();
    let mut table = String::new();
    let mut failed = String::new();
    let mut skipped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let _ = writeln!(table, "== suricata-verify http checks ==");
    let _ = writeln!(table, "{:<58} {:>6} {:>8} {:>6} {:>5}", "test", "checks", "mappable", "passed", "exch");
    for spec in specs {
        totals.checks += spec.checks.len();
        if let Class::Skipped(why) = &spec.class {
            skipped.entry(format!("whole test: {why}")).or_default().push(format!(
                "{} ({} checks)",
                spec.name,
                spec.checks.len()
            ));
            continue;
        }
        let Some(out) = spec.pcap.as_ref().and_then(|p| outputs.get(&canonical(p))) else {
            continue;
        };
        let exs: &[Exchange] = &out.exchanges;
        let (mut mappable, mut passed) = (0, 0);
        for check in &spec.checks {
            if let Class::Skipped(why) = &check.class {
                skipped.entry(why.clone()).or_default().push(format!("{} #{}", spec.name, check.index));
                continue;
            }
            mappable += 1;
            let r = suricata::evaluate(check, exs);
            totals.lenient += r.lenient;
            if r.passed {
                passed += 1;
                continue;
            }
            let _ = writeln!(
                failed,
                "  {} #{} {}: {} exchange(s) match",
                spec.name,
                check.index,
                check.describe(),
                r.matching
            );
            if check.fields.is_empty() || exs.is_empty() {
                let _ = writeln!(failed, "      ({} exchanges produced)", exs.len());
            } else {
                for (ei, wrong) in suricata::closest(check, exs, 2) {
                    let _ = writeln!(
                        failed,
                        "      closest {} — {}",
                        exs[ei].summary(),
                        if wrong.is_empty() { "all fields agree".to_string() } else { wrong.join("; ") }
                    );
                }
            }
        }
        totals.mappable += mappable;
        totals.passed += passed;
        let flag = if passed == mappable { "" } else { "  ✗" };
        let _ = writeln!(
            table,
            "{:<58} {:>6} {:>8} {:>6} {:>5}{flag}",
            spec.name,
            spec.checks.len(),
            mappable,
            passed,
            exs.len()
        );
        if let Some(p) = out.problem() {
            let _ = writeln!(table, "{:<58}   replay {}: {p}", "", rel(&out.file, corpus));
        }
    }
    let mut details = String::new();
    if !failed.is_empty() {
        let _ = writeln!(details, "\nSuricata checks failed:\n{failed}");
    }
    let _ = writeln!(details, "\nSuricata checks skipped, by reason:");
    for (why, list) in &skipped {
        let _ = writeln!(details, "  {why}: {}", list.join(", "));
    }
    (table, totals, details)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn conformance() {
    let Some(corpus) = corpus_dir() else {
        println!("conformance: skipped (../shared/corpus not found)");
        return;
    };
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_akto-tap"));
    if let Some(why) = replay_unavailable(&bin) {
        panic!("conformance: the binary cannot run `replay --format exchange`: {why}");
    }

    // Inputs.
    let traces = corpus.join("zeek/testing/btest/Traces");
    let (specs, yaml_errors) = load_suricata(&corpus);
    let mut files: BTreeSet<PathBuf> = BTreeSet::new();
    for (_, trace) in manifest::ZEEK {
        let p = traces.join(trace);
        if p.exists() {
            files.insert(canonical(&p));
        }
    }
    for s in &specs {
        if s.class == Class::Mappable {
            if let Some(p) = &s.pcap {
                files.insert(canonical(p));
            }
        }
    }
    let files: Vec<PathBuf> = files.into_iter().collect();

    // Run.
    let start = Instant::now();
    let outputs: BTreeMap<PathBuf, ReplayOutput> =
        files.iter().cloned().zip(replay_all(&bin, &files, THREADS, PER_FILE_TIMEOUT)).collect();
    let elapsed = start.elapsed();

    // Compare.
    let (zentries, z, zdetails) = evaluate_zeek(&corpus, &outputs);
    let (stable, s, sdetails) = evaluate_suricata(&specs, &outputs, &corpus);

    let mut report = String::new();
    let _ = writeln!(report, "conformance: {} captures replayed in {:.1}s", files.len(), elapsed.as_secs_f64());
    let slow: Vec<String> = outputs
        .values()
        .filter(|o| o.elapsed > Duration::from_secs(5))
        .map(|o| format!("{} {:.1}s", rel(&o.file, &corpus), o.elapsed.as_secs_f64()))
        .collect();
    if !slow.is_empty() {
        let _ = writeln!(report, "slow captures: {}", slow.join(", "));
    }
    report.push_str(&zeek_table(&zentries, &outputs, &corpus));
    report.push_str(&zdetails);
    report.push('\n');
    report.push_str(&stable);
    report.push_str(&sdetails);
    for e in &yaml_errors {
        let _ = writeln!(report, "  test.yaml error: {e}");
    }

    let zscore = pct(z.matched, z.rows + z.extras);
    let zbody = pct(z.bodies_equal, z.bodies);
    let spct = pct(s.passed, s.mappable);
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "zeek rows matched: {}/{} ({:.1}%), extras: {} -> score {}/{} ({:.1}%, min {ZEEK_ROWS_MIN_PCT}%)",
        z.matched,
        z.rows,
        pct(z.matched, z.rows),
        z.extras,
        z.matched,
        z.rows + z.extras,
        zscore
    );
    let _ = writeln!(
        summary,
        "zeek body lengths equal: {}/{} on matched rows ({:.1}%, min {ZEEK_BODY_MIN_PCT}%); {} more stated by unmatched rows",
        z.bodies_equal, z.bodies, zbody, z.bodies_unmatched
    );
    let _ = writeln!(
        summary,
        "zeek trans_depth equal (informational): {}/{} ({:.1}%)",
        z.depths_equal,
        z.depths,
        pct(z.depths_equal, z.depths)
    );
    let _ = writeln!(
        summary,
        "suricata mappable checks passed: {}/{} ({:.1}%, min {SURICATA_MIN_PCT}%); {} of {} http checks skipped; {} lenient http.length comparisons",
        s.passed,
        s.mappable,
        spct,
        s.checks - s.mappable,
        s.checks,
        s.lenient
    );
    let _ = writeln!(report, "\n{summary}");

    println!("{report}");
    if let Some(path) = std::env::var_os("AKTO_TAP_CONFORMANCE_REPORT") {
        if let Err(e) = std::fs::write(&path, &report) {
            eprintln!("conformance: cannot write report to {}: {e}", PathBuf::from(path).display());
        }
    }

    let mut failures = Vec::new();
    if zscore < ZEEK_ROWS_MIN_PCT {
        failures.push(format!("Zeek score {zscore:.1}% < {ZEEK_ROWS_MIN_PCT}%"));
    }
    if zbody < ZEEK_BODY_MIN_PCT {
        failures.push(format!("Zeek body lengths {zbody:.1}% < {ZEEK_BODY_MIN_PCT}%"));
    }
    if spct < SURICATA_MIN_PCT {
        failures.push(format!("Suricata checks {spct:.1}% < {SURICATA_MIN_PCT}%"));
    }
    if !yaml_errors.is_empty() {
        failures.push(format!("{} test.yaml file(s) could not be read", yaml_errors.len()));
    }
    assert!(failures.is_empty(), "conformance below thresholds: {}\n{summary}", failures.join("; "));
}

/// The corpus-dependent inputs parse: every manifest baseline exists and parses with rows, every
/// manifest trace exists, and the suricata-verify test.yaml files load. Runs without the binary.
#[test]
fn corpus_inputs_parse() {
    let Some(corpus) = corpus_dir() else {
        println!("conformance: skipped (../shared/corpus not found)");
        return;
    };
    let base = corpus.join("zeek/testing/btest/Baseline");
    let traces = corpus.join("zeek/testing/btest/Traces");
    let mut problems = Vec::new();
    let mut rows = 0;
    for (baseline, trace) in manifest::ZEEK {
        if !traces.join(trace).exists() {
            problems.push(format!("trace {trace} missing"));
        }
        match std::fs::read(base.join(baseline)) {
            Ok(t) => match zeek::parse_log(&String::from_utf8_lossy(&t)) {
                Ok(log) if log.rows.is_empty() => problems.push(format!("{baseline}: no rows")),
                Ok(log) => {
                    rows += log.rows.len();
                    if !log.rows.iter().all(zeek::ZeekRow::has_comparable_column) {
                        problems.push(format!("{baseline}: rows without comparable columns"));
                    }
                }
                Err(e) => problems.push(format!("{baseline}: {e}")),
            },
            Err(e) => problems.push(format!("{baseline}: {e}")),
        }
    }
    // Every http.log-like baseline in the corpus is either in the manifest or excluded with a reason.
    if let Ok(rd) = std::fs::read_dir(&base) {
        for d in rd.flatten() {
            let Ok(files) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let is_http_log = name.starts_with("http") && (name.contains(".log") || name.ends_with(".cut"));
                if !is_http_log {
                    continue;
                }
                let key = format!("{}/{name}", d.file_name().to_string_lossy());
                let known = manifest::ZEEK.iter().any(|(b, _)| *b == key)
                    || manifest::ZEEK_EXCLUDED.iter().any(|(b, _)| *b == key);
                if !known {
                    problems.push(format!("baseline {key} neither in the manifest nor excluded"));
                }
            }
        }
    }
    let (specs, errors) = load_suricata(&corpus);
    problems.extend(errors);
    let checks: usize = specs.iter().map(|s| s.checks.len()).sum();
    println!(
        "conformance inputs: {} Zeek baselines ({rows} rows), {} suricata tests with {checks} http checks",
        manifest::ZEEK.len(),
        specs.len()
    );
    assert!(problems.is_empty(), "corpus inputs:\n{}", problems.join("\n"));
}
