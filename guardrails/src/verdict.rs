//! Findings and verdicts.

use serde::{Deserialize, Serialize};

use crate::mcp::{Location, ToolSnapshot};
use crate::policy::Action;

/// Stable scanner ids (they appear in findings, logs and threat reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScannerId {
    /// Prompt injection and jailbreak.
    PromptInjection,
    /// Invisible or control characters.
    HiddenText,
    /// Hidden instructions in tool definitions, and rug pulls.
    ToolPoisoning,
    /// Personal data.
    Pii,
    /// Credentials.
    Secrets,
    /// Configured deny-lists.
    DenyList,
}

impl ScannerId {
    /// The id as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ScannerId::PromptInjection => "prompt_injection",
            ScannerId::HiddenText => "hidden_text",
            ScannerId::ToolPoisoning => "tool_poisoning",
            ScannerId::Pii => "pii",
            ScannerId::Secrets => "secrets",
            ScannerId::DenyList => "deny_list",
        }
    }
}

/// One detection. `start..end` are **byte** offsets into the scanned segment's text (the whole
/// body for plain text, the decoded JSON string at `location` for MCP); see
/// [`Finding::char_span`] for character offsets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Which scanner.
    pub scanner: ScannerId,
    /// Score in `0..=1` (1 for validated matches such as a Luhn-valid card).
    pub score: f32,
    /// Byte offset of the first matched byte.
    pub start: usize,
    /// Byte offset one past the last matched byte.
    pub end: usize,
    /// Finding type, e.g. `instruction_override`, `CREDIT_CARD`, `aws_access_key`, `rug_pull`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable reason.
    pub reason: String,
    /// Where in an MCP message the text was found (absent for plain text).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location: Option<Location>,
    /// The action the policy attaches to this finding.
    pub action: Action,
}

impl Finding {
    /// Character (Unicode scalar) offsets of this finding in `text`, the segment it was found in.
    pub fn char_span(&self, text: &str) -> (usize, usize) {
        (char_offset(text, self.start), char_offset(text, self.end))
    }
}

/// Converts a byte offset to a character offset: the number of characters that start before
/// `byte` (an offset inside a character counts that character).
///
/// `chars().count()` of the prefix: std counts a slice's characters a word at a time, where
/// walking `char_indices` decoded each one (with `guard scan` rendering two offsets per finding
/// of a 200 KB body with hundreds of findings, that walk was three quarters of the scan's time).
pub fn char_offset(text: &str, byte: usize) -> usize {
    let mut end = byte.min(text.len());
    // On to the end of the character `end` falls in (at most three steps).
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[..end].chars().count()
}

/// [`char_offset`] of many byte offsets of one text, in one pass over it: counting each from the
/// start was quadratic in a body's findings (hundreds in a large body of records with emails).
#[derive(Debug, Clone)]
pub struct CharOffsets {
    /// Byte offsets, ascending, with their character offsets.
    table: Vec<(usize, usize)>,
}

impl CharOffsets {
    /// The character offsets of `bytes` (any order, repeats allowed) in `text`.
    pub fn new(text: &str, mut bytes: Vec<usize>) -> Self {
        bytes.sort_unstable();
        bytes.dedup();
        let (mut at, mut chars) = (0, 0);
        let table = bytes
            .into_iter()
            .map(|byte| {
                // As `char_offset`: on to the end of the character `byte` falls in. Ascending
                // offsets give ascending ends, so each stretch of the text is counted once.
                let mut end = byte.min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                chars += text[at..end].chars().count();
                at = end;
                (byte, chars)
            })
            .collect();
        CharOffsets { table }
    }

    /// The character offset of `byte`, when it was one of the offsets given.
    pub fn get(&self, byte: usize) -> Option<usize> {
        self.table.binary_search_by_key(&byte, |&(b, _)| b).ok().map(|i| self.table[i].1)
    }
}

/// The outcome for a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictAction {
    /// Let the body through unchanged.
    Allow,
    /// Replace the body with [`Verdict::redacted`].
    Redact,
    /// Refuse the body.
    Block,
}

/// Which cap was hit (the engine failed open for the unscanned part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitHit {
    /// The body exceeded `limits.max_input_bytes`; only the prefix was scanned.
    InputTruncated,
    /// `limits.max_work` was spent; later segments or scanners were skipped.
    WorkBudgetExhausted,
    /// More segments than `limits.max_segments`.
    SegmentsTruncated,
    /// More JSON-RPC messages than `limits.max_messages`.
    MessagesTruncated,
    /// Nesting deeper than `limits.max_depth` was not followed.
    DepthTruncated,
}

/// How the body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyFormat {
    /// Scanned as plain text.
    Text,
    /// JSON that is not JSON-RPC: scanned as plain text.
    Json,
    /// One JSON-RPC message or a batch.
    JsonRpc,
    /// A `text/event-stream` body of JSON-RPC `data:` events.
    Sse,
}

/// Everything the engine concluded about one body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Allow, redact or block.
    pub action: VerdictAction,
    /// Every finding, in scan order, including `report`-only ones.
    pub findings: Vec<Finding>,
    /// The redacted body when `action` is `redact` (same format as the input).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub redacted: Option<String>,
    /// Caps that were hit; non-empty means part of the body was not scanned (failed open).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub limits: Vec<LimitHit>,
    /// How the body was read.
    pub format: BodyFormat,
    /// JSON-RPC methods seen (requests and notifications), in order.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub methods: Vec<String>,
    /// The tool listing found in a `tools/list` result, to pin for rug-pull checks.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tools: Option<ToolSnapshot>,
}

impl Verdict {
    /// `true` when the body must be refused.
    pub fn is_blocked(&self) -> bool {
        self.action == VerdictAction::Block
    }

    /// A one-line reason naming the blocking findings (for JSON-RPC error `data.reason`).
    pub fn reason(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for f in self.findings.iter().filter(|f| f.action == Action::Block) {
            let s = format!("{}:{} (score {:.2})", f.scanner.as_str(), f.kind, f.score);
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
        if parts.is_empty() {
            return String::new();
        }
        format!("Blocked by scanner: {}", parts.join(", "))
    }

    pub(crate) fn decide(findings: &[Finding]) -> VerdictAction {
        let top = findings.iter().map(|f| f.action).max();
        match top {
            Some(Action::Block) => VerdictAction::Block,
            Some(Action::Redact) => VerdictAction::Redact,
            _ => VerdictAction::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{char_offset, CharOffsets};
    use proptest::prelude::*;

    /// The definition: characters that start before `byte`.
    fn naive(text: &str, byte: usize) -> usize {
        text.char_indices().take_while(|(i, _)| *i < byte.min(text.len())).count()
    }

    #[test]
    fn offsets_inside_a_character_count_it() {
        let text = "aé€😀b";
        let want = [0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5];
        for (byte, want) in want.into_iter().enumerate() {
            assert_eq!(char_offset(text, byte), want, "byte {byte}");
        }
        assert_eq!(char_offset("", 3), 0);
    }

    proptest! {
        #[test]
        fn equals_the_definition(text in "\\PC{0,64}", byte in 0usize..300) {
            prop_assert_eq!(char_offset(&text, byte), naive(&text, byte));
        }

        #[test]
        fn many_at_once_equal_one_at_a_time(text in "\\PC{0,64}", bytes in proptest::collection::vec(0usize..300, 0..12)) {
            let table = CharOffsets::new(&text, bytes.clone());
            for &b in &bytes {
                prop_assert_eq!(table.get(b), Some(naive(&text, b)), "byte {}", b);
            }
            prop_assert_eq!(table.get(301), None);
        }
    }
}
