//! Development-data loading shared by `examples/train.rs`, `examples/eval.rs` and `tests/eval.rs`.
//! (I/O lives here, outside the pure library.)

use std::path::{Path, PathBuf};

use guardrails::Direction;
use serde_json::Value;

/// The dataset root: `$AKTO_TAP_DATASETS`, else `../../shared/datasets` from the crate.
pub fn dataset_root() -> PathBuf {
    match std::env::var_os("AKTO_TAP_DATASETS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets")),
    }
}

/// The classification sources and the direction each is defined in: BIPIA payloads and contexts
/// are third-party content (tool results, documents), the rest are user prompts.
pub const CLASSIFICATION: &[(&str, &str, Direction)] = &[
    ("BIPIA", "BIPIA.jsonl", Direction::Response),
    ("GPTFuzz", "GPTFuzz.jsonl", Direction::Request),
    ("Giskard", "Giskard-prompt-injections.jsonl", Direction::Request),
    ("garak", "NVIDIA-garak.jsonl", Direction::Request),
    ("XSTest", "exaggerated-safety.jsonl", Direction::Request),
];

/// One labelled text.
#[derive(Debug, Clone)]
pub struct Record {
    pub source: &'static str,
    pub id: String,
    pub text: String,
    /// `injection`, `jailbreak`, `benign`, `secret`.
    pub label: String,
    pub direction: Direction,
    pub meta: Value,
    pub spans: Vec<(usize, usize, String)>,
}

impl Record {
    pub fn positive(&self) -> bool {
        self.label == "injection" || self.label == "jailbreak"
    }
}

fn read_jsonl(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

fn record(source: &'static str, direction: Direction, v: &Value) -> Record {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let spans = v
        .get("spans")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|sp| {
                    Some((
                        sp.get("start")?.as_u64()? as usize,
                        sp.get("end")?.as_u64()? as usize,
                        sp.get("type")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        source,
        id: s("id"),
        text: s("text"),
        label: s("label"),
        direction,
        meta: v.get("meta").cloned().unwrap_or(Value::Null),
        spans,
    }
}

/// Classification records of every source.
pub fn classification(root: &Path) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for &(source, file, dir) in CLASSIFICATION {
        for v in read_jsonl(&root.join("normalized").join(file))? {
            out.push(record(source, dir, &v));
        }
    }
    Ok(out)
}

/// Presidio PII records.
pub fn pii(root: &Path) -> Result<Vec<Record>, String> {
    Ok(read_jsonl(&root.join("normalized/presidio-research.jsonl"))?
        .iter()
        .map(|v| record("presidio", Direction::Request, v))
        .collect())
}

/// detect-secrets line records.
pub fn secrets(root: &Path) -> Result<Vec<Record>, String> {
    Ok(read_jsonl(&root.join("normalized/detect-secrets.jsonl"))?
        .iter()
        .map(|v| record("detect-secrets", Direction::Request, v))
        .collect())
}

/// FNV-1a of the id: the deterministic fold assignment for cross-validation.
pub fn fold_of(id: &str, k: u32) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in id.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h % k
}

/// BIPIA payload categories that are ordinary user tasks: injections only by where they appear.
pub const CONTEXT_ONLY_CATEGORIES: &[&str] = &[
    "Task Automation",
    "Business Intelligence",
    "Conversational Agent",
    "Research Assistance",
    "Sentiment Analysis",
    "Information Retrieval",
    "Content Creation",
    "Learning and Tutoring",
    "Programming Help",
];

/// `true` for BIPIA payloads that are plain user tasks (see [`CONTEXT_ONLY_CATEGORIES`]; for
/// "Language Translation", the requests that do not address "your" answer).
pub fn context_only(r: &Record) -> bool {
    if r.source != "BIPIA" || !r.positive() {
        return false;
    }
    let cat = r.meta.get("attack_category").and_then(Value::as_str).unwrap_or("");
    CONTEXT_ONLY_CATEGORIES.contains(&cat) || (cat == "Language Translation" && !r.text.to_lowercase().contains("your"))
}
