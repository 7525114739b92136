//! Configurable deny-lists (Akto's `banSubstrings`, `regex` and `banTopics` filter rules).
//!
//! Substrings and topic phrases are normalized like the text (homoglyphs, leetspeak, case,
//! invisible characters) so `p@$$w0rd` in the text matches a `password` entry; regexes run on the
//! raw text, case-insensitively. Topics are lexical: a topic matches when one of its phrases
//! occurs or when `min_keywords` distinct keywords occur in the same segment.

use regex::Regex;

use super::Hit;
use crate::error::PolicyError;
use crate::normalize::{normalize, Normalized};
use crate::policy::{Action, DenyPolicy};

#[derive(Debug)]
struct Topic {
    name: String,
    phrases: Option<Regex>,
    keywords: Vec<Regex>,
    min_keywords: usize,
}

/// The compiled deny-lists.
#[derive(Debug)]
pub struct DenyScanner {
    substrings: Option<Regex>,
    regexes: Vec<(Regex, Option<Action>, String)>,
    topics: Vec<Topic>,
}

fn alternation(items: &[String], whole_words: bool) -> Option<String> {
    let parts: Vec<String> = items
        .iter()
        .map(|s| normalize(s).text.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(|s| regex::escape(&s))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let alt = parts.join("|");
    Some(if whole_words { format!(r"(?:^|\b|\W)(?:{alt})(?:\b|\W|$)") } else { format!("(?:{alt})") })
}

impl DenyScanner {
    /// Compiles the configured lists.
    pub fn new(p: &DenyPolicy) -> Result<DenyScanner, PolicyError> {
        let builtin = |name: &'static str, pat: &str| {
            Regex::new(pat).map_err(|e| PolicyError::Builtin { name, source: Box::new(e) })
        };
        let substrings = match alternation(&p.substrings, p.whole_words) {
            Some(pat) => Some(builtin("deny substrings", &pat)?),
            None => None,
        };
        let mut regexes = Vec::new();
        for (index, r) in p.regexes.iter().enumerate() {
            let re = regex::RegexBuilder::new(&r.pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|source| PolicyError::Regex { index, pattern: r.pattern.clone(), source })?;
            regexes.push((re, r.action, r.pattern.clone()));
        }
        let mut topics = Vec::new();
        for t in &p.topics {
            let phrases = match alternation(&t.phrases, true) {
                Some(pat) => Some(builtin("topic phrases", &pat)?),
                None => None,
            };
            let mut keywords = Vec::new();
            for k in &t.keywords {
                let n = normalize(k).text.trim().to_string();
                if !n.is_empty() {
                    keywords.push(builtin("topic keyword", &format!(r"\b{}\b", regex::escape(&n)))?);
                }
            }
            topics.push(Topic { name: t.name.clone(), phrases, keywords, min_keywords: t.min_keywords.max(1) });
        }
        Ok(DenyScanner { substrings, regexes, topics })
    }

    /// `true` when nothing is configured (the engine skips the scanner).
    pub fn is_empty(&self) -> bool {
        self.substrings.is_none() && self.regexes.is_empty() && self.topics.is_empty()
    }

    /// Scans one segment (`norm` = `normalize(text)`).
    pub fn scan(&self, text: &str, norm: &Normalized) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(re) = &self.substrings {
            for m in re.find_iter(&norm.text) {
                let inner = m.as_str();
                // Trim the boundary characters the alternation consumed.
                let lead = inner.len() - inner.trim_start_matches(|c: char| !c.is_alphanumeric()).len();
                let trail = inner.len() - inner.trim_end_matches(|c: char| !c.is_alphanumeric()).len();
                let (s, e) = norm.original_span(m.start() + lead, m.end() - trail, text);
                hits.push(Hit::new("substring", 1.0, s, e, format!("deny-listed substring {:?}", inner.trim())));
            }
        }
        for (re, action, pat) in &self.regexes {
            for m in re.find_iter(text) {
                if m.start() == m.end() {
                    continue;
                }
                let mut h = Hit::new("regex", 1.0, m.start(), m.end(), format!("matches deny-list pattern {pat:?}"));
                h.action = *action;
                hits.push(h);
            }
        }
        for t in &self.topics {
            if let Some(m) = t.phrases.as_ref().and_then(|re| re.find(&norm.text)) {
                let (s, e) = norm.original_span(m.start(), m.end(), text);
                hits.push(Hit::new(
                    format!("topic:{}", t.name),
                    1.0,
                    s,
                    e,
                    format!("phrase of denied topic {:?}", t.name),
                ));
                continue;
            }
            if t.keywords.is_empty() {
                continue;
            }
            let found: Vec<regex::Match<'_>> = t.keywords.iter().filter_map(|k| k.find(&norm.text)).collect();
            if found.len() >= t.min_keywords {
                let ns = found.iter().map(|m| m.start()).min().unwrap_or(0);
                let ne = found.iter().map(|m| m.end()).max().unwrap_or(0);
                let (s, e) = norm.original_span(ns, ne, text);
                let score = (found.len() as f32 / t.keywords.len() as f32).clamp(0.5, 1.0);
                hits.push(Hit::new(
                    format!("topic:{}", t.name),
                    score,
                    s,
                    e,
                    format!("{} keywords of denied topic {:?}", found.len(), t.name),
                ));
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{DenyRegex, DenyTopic};

    #[test]
    fn table() {
        let p = DenyPolicy {
            substrings: vec!["password".into(), "project falcon".into()],
            regexes: vec![DenyRegex { pattern: r"acct-\d{6}".into(), action: Some(Action::Redact) }],
            topics: vec![DenyTopic {
                name: "crypto".into(),
                phrases: vec!["buy bitcoin".into()],
                keywords: vec!["wallet".into(), "seed phrase".into(), "ledger".into()],
                min_keywords: 2,
            }],
            ..DenyPolicy::default()
        };
        let s = DenyScanner::new(&p).expect("compile");
        let run = |t: &str| {
            let n = normalize(t);
            s.scan(t, &n).into_iter().map(|h| (h.kind, t[h.start..h.end].to_string())).collect::<Vec<_>>()
        };
        assert_eq!(run("my P@$$w0rd is"), vec![("substring".to_string(), "P@$$w0rd".to_string())]);
        assert_eq!(run("Project  FALCON launch")[0].1, "Project  FALCON");
        assert!(run("passwords are fine").is_empty(), "whole words only");
        assert_eq!(run("ref ACCT-123456")[0], ("regex".to_string(), "ACCT-123456".to_string()));
        assert_eq!(run("Should I buy Bitcoin?")[0].0, "topic:crypto");
        assert_eq!(run("write the seed phrase into the wallet")[0].0, "topic:crypto");
        assert!(run("my wallet is brown").is_empty());
        assert!(matches!(
            DenyScanner::new(&DenyPolicy {
                regexes: vec![DenyRegex { pattern: "(".into(), action: None }],
                ..DenyPolicy::default()
            }),
            Err(PolicyError::Regex { index: 0, .. })
        ));
    }
}
