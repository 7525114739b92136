//! The scanners. Each takes a segment of text and returns [`Hit`]s with byte spans into it; the
//! engine attaches the scanner id, the location and the policy's action.

pub mod denylist;
pub mod hidden;
pub mod injection;
pub mod pii;
pub mod poisoning;
pub mod secrets;

use regex::{Regex, RegexSet};

use crate::error::PolicyError;
use crate::policy::PiiType;

/// Rewrites Perl classes and word boundaries to their ASCII forms. Built-in patterns target ASCII
/// tokens (or normalized text); Unicode `\b` would make the regex crate leave its DFA for a slower
/// engine on any non-ASCII input, and Unicode `\d`/`\w` would accept digits of other scripts
/// that no validator understands.
fn ascii(pat: &str) -> String {
    // "Any character but a sentence end" spans in the rules only need to cross ASCII (the text
    // is normalized), and ASCII classes keep the automata small enough for the lazy DFA.
    let pat = pat.replace(r"[^.\n]", r"[\x20-\x2D\x2F-\x7E]").replace(r"[^\n]", r"[\x20-\x7E\t]");
    let mut out = String::with_capacity(pat.len() + 16);
    let mut chars = pat.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('d') => out.push_str("[0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('s') => out.push_str("[\\t\\n\\x0B\\x0C\\r ]"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Compiles a built-in pattern (ASCII classes and boundaries, see [`ascii`]).
pub(crate) fn compile(name: &'static str, pat: &str) -> Result<Regex, PolicyError> {
    Regex::new(&ascii(pat)).map_err(|e| PolicyError::Builtin { name, source: Box::new(e) })
}

/// Compiles a built-in pattern set.
pub(crate) fn compile_set(name: &'static str, pats: &[&str]) -> Result<RegexSet, PolicyError> {
    let pats: Vec<String> = pats.iter().map(|p| ascii(p)).collect();
    RegexSet::new(&pats).map_err(|e| PolicyError::Builtin { name, source: Box::new(e) })
}

/// A raw detection inside one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Finding type (`instruction_override`, `CREDIT_CARD`, `github_token`, …).
    pub kind: String,
    /// Score in `0..=1`.
    pub score: f32,
    /// Byte offset of the span start in the segment.
    pub start: usize,
    /// Byte offset of the span end in the segment.
    pub end: usize,
    /// Why.
    pub reason: String,
    /// For PII hits, the type (drives per-type actions).
    pub pii: Option<PiiType>,
    /// Per-hit action override (deny-list regexes carry their own action).
    pub action: Option<crate::policy::Action>,
}

impl Hit {
    pub(crate) fn new(kind: impl Into<String>, score: f32, start: usize, end: usize, reason: impl Into<String>) -> Hit {
        Hit { kind: kind.into(), score, start, end, reason: reason.into(), pii: None, action: None }
    }
}

/// Whose words a segment carries; rules addressed at "your response" mean more in third-party text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextContext {
    /// Typed by the user or the model: prompts, tool arguments, sampling requests.
    Prompt,
    /// Produced by a tool, a resource or a server: results, documents, descriptions.
    ThirdParty,
}

/// Shannon entropy in bits per character.
pub(crate) fn entropy(s: &str) -> f32 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f32;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f32 / n;
            -p * p.log2()
        })
        .sum()
}

/// Rounds a char boundary down (spans computed on bytes must not split characters).
pub(crate) fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A JSON API body for scanner tests (no secrets, no PII by construction).
#[cfg(test)]
pub(crate) fn tests_corpus_json() -> String {
    let mut s = String::from("{\"items\":[");
    for i in 0..50 {
        s.push_str(&format!(r#"{{"id":{i},"sku":"SKU-{:06}","name":"Widget deluxe","price":{{"amount":{},"currency":"EUR"}},"tags":["blue","large"],"updated_at":"2025-11-02T10:15:00Z","in_stock":true}},"#, i * 7919, 1999 + i));
    }
    s.push_str("{}],\"next\":null}");
    s
}
