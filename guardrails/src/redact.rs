//! Span redaction.

use crate::verdict::{Finding, ScannerId};

fn token(f: &Finding) -> String {
    match f.scanner {
        ScannerId::Pii => format!("[REDACTED_{}]", f.kind),
        ScannerId::Secrets => "[REDACTED_SECRET]".to_string(),
        // Invisible characters are simply removed.
        ScannerId::HiddenText => String::new(),
        ScannerId::PromptInjection => "[REDACTED_INJECTION]".to_string(),
        ScannerId::ToolPoisoning | ScannerId::DenyList => "[REDACTED]".to_string(),
    }
}

/// Replaces the byte spans of `findings` in `text`. Overlapping spans merge (the merged span gets
/// the first finding's token, or `[REDACTED]` when tokens differ). Spans are clamped to char
/// boundaries outward, so no partial character survives.
pub(crate) fn apply(text: &str, findings: &[&Finding]) -> String {
    let mut spans: Vec<(usize, usize, String)> = findings
        .iter()
        .filter(|f| f.start < f.end)
        .map(|f| {
            let mut s = f.start.min(text.len());
            while s > 0 && !text.is_char_boundary(s) {
                s -= 1;
            }
            let mut e = f.end.min(text.len());
            while e < text.len() && !text.is_char_boundary(e) {
                e += 1;
            }
            (s, e, token(f))
        })
        .collect();
    spans.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut merged: Vec<(usize, usize, String)> = Vec::with_capacity(spans.len());
    for (s, e, t) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => {
                last.1 = last.1.max(e);
                if last.2 != t && !t.is_empty() {
                    last.2 = if last.2.is_empty() { t } else { "[REDACTED]".to_string() };
                }
            }
            _ => merged.push((s, e, t)),
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (s, e, t) in merged {
        out.push_str(&text[pos..s]);
        out.push_str(&t);
        pos = e;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Action;

    fn f(scanner: ScannerId, kind: &str, start: usize, end: usize) -> Finding {
        Finding {
            scanner,
            score: 1.0,
            start,
            end,
            kind: kind.into(),
            reason: String::new(),
            location: None,
            action: Action::Redact,
        }
    }

    #[test]
    fn merges_and_replaces() {
        let text = "mail a@b.co and key sk_live_x now";
        let a = f(ScannerId::Pii, "EMAIL_ADDRESS", 5, 11);
        let b = f(ScannerId::Secrets, "stripe", 20, 29);
        assert_eq!(apply(text, &[&b, &a]), "mail [REDACTED_EMAIL_ADDRESS] and key [REDACTED_SECRET] now");
        let c = f(ScannerId::Pii, "X", 0, 8);
        assert_eq!(apply(text, &[&a, &c]), "[REDACTED] and key sk_live_x now");
        let z = "a\u{200B}b";
        assert_eq!(apply(z, &[&f(ScannerId::HiddenText, "zero_width", 1, 4)]), "ab");
    }
}
