//! Hidden text: characters that a person does not see but a model reads.
//!
//! * Unicode tag characters U+E0000–U+E007F ("ASCII smuggling"): always flagged, and the hidden
//!   ASCII is decoded into the reason (LlamaFirewall's HiddenASCII scanner does the same).
//! * Variation selectors U+E0100–U+E01EF and runs of U+FE00–U+FE0F: byte smuggling in emoji.
//! * Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): "Trojan Source".
//! * Zero-width characters (U+200B–U+200D, U+2060–U+2064, U+FEFF inside text, U+180E): one alone
//!   scores low (they occur in pasted text); runs and many scattered ones score high
//!   (zero-width binary encodings). A ZWJ between emoji and a ZWNJ between letters of scripts
//!   that use it (Arabic, Persian, Indic) are legitimate and ignored.
//! * Private-use characters score low. ANSI/VT escape sequences (CSI, OSC incl. hyperlinks)
//!   score high: in tool output they can hide or rewrite what a terminal user sees.
//!
//! Redaction strips the characters.

use super::Hit;

/// Scans `text`; `ansi` enables the escape-sequence check.
pub fn scan(text: &str, ansi: bool) -> Vec<Hit> {
    let mut hits = Vec::new();
    // Fast path: pure ASCII without ESC has nothing to find.
    // (`memchr` searches with SIMD; `str::contains` goes byte-wise through `core`'s fallback.)
    if text.is_ascii() && !(ansi && memchr::memchr(0x1b, text.as_bytes()).is_some()) {
        return hits;
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut zero_width_total = 0usize;
    let mut zw_hits: Vec<Hit> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        let cp = c as u32;
        if (0xE0000..=0xE007F).contains(&cp) {
            let mut j = i;
            let mut decoded = String::new();
            while j < chars.len() && (0xE0000..=0xE007F).contains(&(chars[j].1 as u32)) {
                let t = chars[j].1 as u32;
                if (0xE0020..=0xE007E).contains(&t) {
                    if let Some(a) = char::from_u32(t - 0xE0000) {
                        decoded.push(a);
                    }
                }
                j += 1;
            }
            let end = end_of(&chars, j, text);
            let mut shown: String = decoded.chars().take(80).collect();
            if decoded.chars().count() > 80 {
                shown.push('…');
            }
            hits.push(Hit::new(
                "unicode_tags",
                1.0,
                pos,
                end,
                format!("{} Unicode tag characters hiding {:?}", j - i, shown),
            ));
            i = j;
            continue;
        }
        if (0xE0100..=0xE01EF).contains(&cp) || (0xFE00..=0xFE0F).contains(&cp) {
            let mut j = i;
            while j < chars.len() && {
                let x = chars[j].1 as u32;
                (0xE0100..=0xE01EF).contains(&x) || (0xFE00..=0xFE0F).contains(&x)
            } {
                j += 1;
            }
            let supplement = chars[i..j].iter().any(|(_, x)| (0xE0100..=0xE01EF).contains(&(*x as u32)));
            if supplement || j - i >= 2 {
                let end = end_of(&chars, j, text);
                hits.push(Hit::new(
                    "variation_selectors",
                    0.9,
                    pos,
                    end,
                    format!("{} variation selectors (data smuggled in emoji)", j - i),
                ));
            }
            i = j;
            continue;
        }
        if matches!(cp, 0x202A..=0x202E | 0x2066..=0x2069) {
            let mut j = i;
            while j < chars.len() && matches!(chars[j].1 as u32, 0x202A..=0x202E | 0x2066..=0x2069) {
                j += 1;
            }
            hits.push(Hit::new(
                "bidi_control",
                0.9,
                pos,
                end_of(&chars, j, text),
                "bidirectional override/isolate characters",
            ));
            i = j;
            continue;
        }
        if is_zero_width(c) && !(cp == 0xFEFF && i == 0) {
            let mut j = i;
            while j < chars.len() && is_zero_width(chars[j].1) {
                j += 1;
            }
            let prev = i.checked_sub(1).map(|k| chars[k].1);
            let next = chars.get(j).map(|x| x.1);
            let legit = j - i == 1
                && ((c == '\u{200D}' && (prev.is_some_and(is_emoji_like) || next.is_some_and(is_emoji_like)))
                    || (c == '\u{200C}' && prev.is_some_and(joins_script) && next.is_some_and(joins_script)));
            if !legit {
                zero_width_total += j - i;
                let score = if j - i >= 2 { 0.9 } else { 0.4 };
                zw_hits.push(Hit::new(
                    "zero_width",
                    score,
                    pos,
                    end_of(&chars, j, text),
                    format!("{} zero-width character(s)", j - i),
                ));
            }
            i = j;
            continue;
        }
        if (0xE000..=0xF8FF).contains(&cp) || (0xF0000..=0x10FFFD).contains(&cp) {
            hits.push(Hit::new("private_use", 0.3, pos, pos + c.len_utf8(), "private-use character"));
            i += 1;
            continue;
        }
        if ansi && c == '\u{1b}' {
            let end = ansi_end(text, pos);
            hits.push(Hit::new("ansi_escape", 0.8, pos, end, "ANSI/VT escape sequence"));
            // Skip the characters covered by the sequence.
            while i < chars.len() && chars[i].0 < end {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    // Many scattered zero-width characters are an encoding, not typos.
    if zero_width_total >= 4 {
        for h in &mut zw_hits {
            h.score = h.score.max(0.9);
        }
    }
    hits.extend(zw_hits);
    hits.sort_by_key(|h| h.start);
    hits
}

fn end_of(chars: &[(usize, char)], j: usize, text: &str) -> usize {
    chars.get(j).map_or(text.len(), |x| x.0)
}

fn is_zero_width(c: char) -> bool {
    matches!(
        c,
        '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}'
            ..='\u{2064}' | '\u{FEFF}' | '\u{180E}' | '\u{034F}' | '\u{00AD}'
    )
}

fn is_emoji_like(c: char) -> bool {
    let cp = c as u32;
    (0x1F000..=0x1FAFF).contains(&cp)
        || (0x2600..=0x27BF).contains(&cp)
        || cp == 0xFE0F
        || (0x1F3FB..=0x1F3FF).contains(&cp)
}

fn joins_script(c: char) -> bool {
    let cp = c as u32;
    // Arabic, Syriac, Thaana, N'Ko, Devanagari … Malayalam, Sinhala.
    (0x0600..=0x07FF).contains(&cp)
        || (0x0900..=0x0DFF).contains(&cp)
        || (0xFB50..=0xFDFF).contains(&cp)
        || (0xFE70..=0xFEFF).contains(&cp)
}

/// End of an escape sequence starting at `pos` (ESC): CSI `ESC [ … final`, OSC `ESC ] … BEL|ST`,
/// or a two-byte escape.
fn ansi_end(text: &str, pos: usize) -> usize {
    let b = text.as_bytes();
    let n = b.len();
    match b.get(pos + 1) {
        Some(b'[') => {
            let mut k = pos + 2;
            while k < n && (0x20..=0x3F).contains(&b[k]) {
                k += 1;
            }
            if k < n && (0x40..=0x7E).contains(&b[k]) {
                k + 1
            } else {
                k
            }
        }
        Some(b']') | Some(b'P') | Some(b'_') | Some(b'^') => {
            let mut k = pos + 2;
            while k < n {
                if b[k] == 0x07 {
                    return k + 1;
                }
                if b[k] == 0x1b && b.get(k + 1) == Some(&b'\\') {
                    return k + 2;
                }
                k += 1;
            }
            n
        }
        Some(c) if c.is_ascii() => pos + 2,
        _ => pos + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(String, f32)> {
        scan(text, true).into_iter().map(|h| (h.kind, h.score)).collect()
    }

    #[test]
    fn table() {
        let tags: String = "ignore all".chars().map(|c| char::from_u32(c as u32 + 0xE0000).unwrap_or(c)).collect();
        let tagged = format!("hello{tags}world");
        let h = scan(&tagged, true);
        assert_eq!(h.len(), 1);
        assert!(h[0].reason.contains("ignore all"));
        assert_eq!(&tagged[h[0].start..h[0].end], tags);

        assert_eq!(kinds("a\u{202E}txt.exe")[0].0, "bidi_control");
        assert_eq!(kinds("x\u{200B}\u{200C}\u{200B}y")[0], ("zero_width".to_string(), 0.9));
        assert_eq!(kinds("x\u{200B}y")[0].1, 0.4);
        assert_eq!(kinds("\u{1b}[31mred\u{1b}[0m").len(), 2);
        assert_eq!(kinds("\u{1b}]8;;http://evil\u{7}link\u{1b}]8;;\u{7}")[0].0, "ansi_escape");
        assert_eq!(kinds("😀\u{E0101}\u{E0102}")[0].0, "variation_selectors");
        // Legitimate uses.
        assert!(kinds("family 👨\u{200D}👩\u{200D}👧").is_empty());
        assert!(kinds("\u{FEFF}BOM at start").is_empty());
        assert!(kinds("می\u{200C}خواهم").is_empty());
        assert!(kinds("❤\u{FE0F} ok").is_empty());
        assert!(kinds("plain ascii text").is_empty());
        assert!(scan("\u{1b}[31m", false).is_empty());
    }
}
