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

/// Compiles a built-in pattern.
pub(crate) fn compile(name: &'static str, pat: &str) -> Result<Regex, PolicyError> {
    Regex::new(pat).map_err(|e| PolicyError::Builtin { name, source: Box::new(e) })
}

/// Compiles a built-in pattern set.
pub(crate) fn compile_set(name: &'static str, pats: &[&str]) -> Result<RegexSet, PolicyError> {
    RegexSet::new(pats).map_err(|e| PolicyError::Builtin { name, source: Box::new(e) })
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
    counts.iter().filter(|&&c| c > 0).map(|&c| {
        let p = c as f32 / n;
        -p * p.log2()
    }).sum()
}

/// Rounds a char boundary down (spans computed on bytes must not split characters).
pub(crate) fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
