//! PII with validation, after Presidio's pattern-plus-checksum recognizers
//! (reference/guardrails.md §3.5): a regex proposes, a validator disposes.
//!
//! * credit card: issuer prefix (IIN) table, 12–19 digits, consistent separators, Luhn;
//! * IBAN: ISO 13616 country length table and mod-97 check digits;
//! * US SSN: `AAA-GG-SSSS` (or spaces), area not 000/666/9xx, group not 00, serial not 0000,
//!   well-known samples rejected; bare nine digits only right after "SSN"/"social security";
//! * e-mail: dot-atom local part, domain labels, alphabetic TLD;
//! * IPv4 (octets ≤ 255, no leading zeros, not part of a longer dotted run) and IPv6 (parsed);
//! * phone: E.164 (`+` or `00`) and NANP shapes stand alone; other national digit-group shapes
//!   need a context word (phone, mobile, fax, call, …) nearby, as Presidio's context enhancer does.
//!
//! Overlaps resolve by validation strength: card, IBAN, SSN, e-mail and IP claim their spans
//! before phone candidates are considered.

use std::net::Ipv6Addr;
use std::str::FromStr;

use regex::Regex;

use super::{compile, Hit};
use crate::error::PolicyError;
use crate::policy::PiiType;

/// The compiled PII scanner.
#[derive(Debug)]
pub struct PiiScanner {
    email: Regex,
    card: Regex,
    iban: Regex,
    ssn: Regex,
    ssn_bare: Regex,
    /// The labels `ssn_bare` requires (a literal search, far cheaper than the pattern).
    ssn_label: Regex,
    ipv4: Regex,
    ipv6: Regex,
    phone: Regex,
    phone_context: Regex,
    nanp: Regex,
    date: Regex,
    street: Regex,
}

impl PiiScanner {
    /// Compiles the patterns.
    pub fn new() -> Result<PiiScanner, PolicyError> {
        Ok(PiiScanner {
            email: compile(
                "email",
                r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b",
            )?,
            card: compile("card", r"\b\d(?:[ -]?\d){11,18}\b")?,
            iban: compile("iban", r"(?i)\b[a-z]{2}\d{2}(?: ?[a-z0-9]){11,30}\b")?,
            ssn: compile("ssn", r"\b(\d{3})([- ])(\d{2})([- ])(\d{4})\b")?,
            ssn_bare: compile("ssn bare", r"(?i)\b(?:ssn|social security(?: number| no\.?)?)\W{0,5}(\d{9})\b")?,
            ssn_label: compile("ssn label", r"(?i)ssn|social security")?,
            ipv4: compile("ipv4", r"\b(?:\d{1,3}\.){3}\d{1,3}\b")?,
            ipv6: compile("ipv6", r"(?i)(?:\b[0-9a-f]{1,4}|::)(?::[0-9a-f]{0,4}){2,8}(?:\.[0-9]{1,3}){0,3}")?,
            phone: compile("phone", r"(?:\+|\b00|\(|\b)\d[\d ().\-/]{4,22}\d(?: ?(?:x|ext\.?|#) ?\d{1,5})?\b")?,
            phone_context: compile(
                "phone context",
                r"(?i)\b(?:phone|mobile|cell|tel|telephone|fax|desk|office|call(?:ing)?|sms|whatsapp|text me|messages?|contact|reach (?:me|us)|answering|dial|ring|landline|hotline|mob)\b",
            )?,
            nanp: compile("nanp", r"^(?:\+?1[ .-]?|001[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}$")?,
            date: compile("date", r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})")?,
            street: compile(
                "street",
                r"(?i)^\W{0,3}(?:\p{L}[\p{L}'.-]*\s+){0,3}(?:st|street|str|strasse|straße|rd|road|ave|avenue|blvd|boulevard|lane|ln|drive|dr|way|court|ct|place|pl|square|sq|apt|suite|unit|gatan|gata|katu|vej|rua|calle|via|rue|weg|laan)\b",
            )?,
        })
    }

    /// Scans `text` for the enabled `types`.
    /// The IBAN pattern's match that starts at `i`, if any: `iban.find_at(text, i)` kept when
    /// it starts there, searched in a haystack that ends [`IBAN_HAYSTACK`] bytes after `i`.
    /// Over the whole text, each candidate start (two letters, two digits) made the search scan
    /// on to the next match or the end, quadratic in the candidates of a large body.
    fn iban_at<'t>(&self, text: &'t str, i: usize) -> Option<regex::Match<'t>> {
        let mut end = text.len().min(i.saturating_add(IBAN_HAYSTACK));
        while !text.is_char_boundary(end) {
            end += 1;
        }
        self.iban.find_at(&text[..end], i).filter(|m| m.start() == i)
    }

    pub fn scan(&self, text: &str, types: &[PiiType]) -> Vec<Hit> {
        let on = |t: PiiType| types.contains(&t);
        let mut hits: Vec<Hit> = Vec::new();
        if on(PiiType::Email) && memchr::memchr(b'@', text.as_bytes()).is_some() {
            for m in self.email.find_iter(text) {
                if valid_email(m.as_str()) {
                    hits.push(pii(PiiType::Email, 1.0, m.start(), m.end(), "e-mail address"));
                }
            }
        }
        let has_digits = text.bytes().any(|b| b.is_ascii_digit());
        if !has_digits {
            return hits;
        }
        // Card, SSN, IPv4 and phone matches consist of bytes of the phone alphabet only, so each
        // lies inside one maximal run of those bytes: the patterns run on the runs that hold
        // enough digits for any of them (texts are mostly letters; this skips nearly all).
        let runs = class_runs::<true>(text, is_phone_byte, |b| b.is_ascii_digit(), 4);
        if on(PiiType::CreditCard) {
            for r in runs.iter().filter(|r| r.digits >= 12) {
                let hay = run_haystack(text, r);
                let mut pos = r.start;
                while pos < r.end {
                    let Some(m) = self.card.find_at(hay, pos) else { break };
                    if let Some(why) = valid_card(m.as_str()) {
                        hits.push(pii(PiiType::CreditCard, 1.0, m.start(), m.end(), why));
                        pos = m.end();
                    } else if let Some((a, b, why)) = card_within(m.as_str()) {
                        // The pattern ran across a separator into a neighbouring number
                        // (`10.0.0.1 4111 1111 1111 1111`): the valid part between separators.
                        hits.push(pii(PiiType::CreditCard, 1.0, m.start() + a, m.start() + b, why));
                        pos = m.start() + b;
                    } else {
                        // Nothing valid in it: the next card may start inside it (a greedy match
                        // swallowed its first group), so resume at the next group.
                        pos = m.as_str().find([' ', '-']).map_or(m.end(), |k| m.start() + k + 1);
                    }
                }
            }
        }
        if on(PiiType::Iban) {
            let b = text.as_bytes();
            // Candidate starts: two letters then two digits at a word start, found from the
            // digits (rare in prose) rather than by testing every byte.
            let mut next = 2usize;
            let starts = std::iter::from_fn(|| {
                while let Some(d) = next_digit(b, next) {
                    // A later candidate's digits follow two letters, so they start two bytes
                    // or more after this digit run.
                    let mut e = d + 1;
                    while b.get(e).is_some_and(u8::is_ascii_digit) {
                        e += 1;
                    }
                    next = e + 2;
                    let i = d - 2;
                    if b.get(d + 1).is_some_and(u8::is_ascii_digit)
                        && b[i].is_ascii_alphabetic()
                        && b[i + 1].is_ascii_alphabetic()
                        && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                    {
                        return Some(i);
                    }
                }
                None
            });
            for m in starts.filter_map(|i| self.iban_at(text, i)) {
                // The pattern is greedy over trailing groups; try shorter tails until mod-97 holds.
                let s = m.as_str();
                let mut end = s.len();
                while end >= 15 {
                    let cand = s[..end].trim_end();
                    if valid_iban(cand) {
                        hits.push(pii(PiiType::Iban, 1.0, m.start(), m.start() + cand.len(), "IBAN (mod-97 valid)"));
                        break;
                    }
                    end -= 1;
                }
            }
        }
        if on(PiiType::UsSsn) {
            for c in captures_in_runs(&self.ssn, text, &runs, |r| r.digits >= 9) {
                let (Some(all), Some(a), Some(s1), Some(g), Some(s2), Some(s)) =
                    (c.get(0), c.get(1), c.get(2), c.get(3), c.get(4), c.get(5))
                else {
                    continue;
                };
                if s1.as_str() == s2.as_str()
                    && valid_ssn(a.as_str(), g.as_str(), s.as_str())
                    && !digit_neighbour(text, all.start(), all.end())
                {
                    hits.push(pii(PiiType::UsSsn, 1.0, all.start(), all.end(), "US SSN (area/group/serial valid)"));
                }
            }
            // The pattern needs nine consecutive ASCII digits, which lie inside one run: most
            // texts have none. Then the label is required: look for it before running the
            // pattern (`ſ` case-folds to `s`).
            let nine = runs.iter().any(|r| r.digits >= 9 && has_digit_run(&text.as_bytes()[r.start..r.end], 9));
            let labelled = nine && self.ssn_label.is_match(text);
            for c in self.ssn_bare.captures_iter(if labelled { text } else { "" }) {
                let Some(d) = c.get(1) else { continue };
                let v = d.as_str();
                if valid_ssn(&v[0..3], &v[3..5], &v[5..9]) {
                    hits.push(pii(PiiType::UsSsn, 0.9, d.start(), d.end(), "US SSN after an SSN label"));
                }
            }
        }
        if on(PiiType::IpAddress) {
            for m in find_in_runs(&self.ipv4, text, &runs, |r| r.digits >= 4 && r.dots >= 3) {
                if valid_ipv4(text, m.start(), m.end()) {
                    hits.push(pii(PiiType::IpAddress, 1.0, m.start(), m.end(), "IPv4 address"));
                }
            }
            if text.contains(':') {
                let hex_runs = ipv6_runs(text);
                for m in find_in_runs(&self.ipv6, text, &hex_runs, |_| true) {
                    let s = m.as_str().trim_end_matches([':', '.']);
                    if s.len() >= 6
                        && s.bytes().filter(|&b| b == b':').count() >= 2
                        && s.bytes().any(|b| b.is_ascii_hexdigit())
                        && Ipv6Addr::from_str(s).is_ok()
                        && !hex_neighbour(text, m.start(), m.start() + s.len())
                    {
                        hits.push(pii(PiiType::IpAddress, 1.0, m.start(), m.start() + s.len(), "IPv6 address"));
                    }
                }
            }
        }
        if on(PiiType::Phone) {
            let taken: Vec<(usize, usize)> = hits.iter().map(|h| (h.start, h.end)).collect();
            // A run that is exactly a date (`2025-11-02`, ISO timestamps in API JSON) cannot hold a
            // phone number: the whole date is rejected as a date, any shorter part has < 7 digits.
            let phone_runs: Vec<ByteRun> = runs
                .iter()
                .filter(|r| r.digits >= 7 && !is_date(text[r.start..r.end].trim_matches(' ')))
                .copied()
                .collect();
            for m in find_in_runs(&self.phone, text, &phone_runs, |_| true) {
                let (start, mut end) = (m.start(), m.end());
                if taken.iter().any(|&(s, e)| s <= start && start < e) {
                    continue;
                }
                // A candidate running into a stronger span (`+44 20 7946 0958 536-22-8726`, the
                // pattern is greedy across the gap) keeps the part before it.
                if let Some(cut) = taken.iter().filter(|&&(s, _)| start < s && s < end).map(|&(s, _)| s).min() {
                    end = text[..cut].trim_end_matches(|c: char| !c.is_ascii_digit()).len();
                    if end <= start {
                        continue;
                    }
                }
                if let Some((score, why)) = self.phone_score(text, start, end) {
                    hits.push(pii(PiiType::Phone, score, start, end, why));
                }
            }
        }
        hits.sort_by_key(|h| (h.start, h.end));
        hits
    }

    fn phone_score(&self, text: &str, start: usize, end: usize) -> Option<(f32, &'static str)> {
        let cand = &text[start..end];
        // Not glued to letters or other digits/dots (part of a longer token).
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '-' || c == '/' || c == '_') {
            return None;
        }
        let main = cand.split(['x', '#']).next().unwrap_or(cand);
        let main = main.split("ext").next().unwrap_or(main).trim_end();
        let digits = main.bytes().filter(u8::is_ascii_digit).count();
        if !(7..=15).contains(&digits) {
            return None;
        }
        if main.matches('(').count() != main.matches(')').count() {
            return None;
        }
        if self.date.is_match(main.trim_start_matches(['(', '+'])) {
            return None;
        }
        let separators = main.bytes().filter(|b| matches!(b, b' ' | b'-' | b'.' | b'/')).count();
        // Dotted quads and version strings belong to other recognizers.
        if main.bytes().filter(|&b| b == b'.').count() == 3 && separators == 3 && digits <= 12 && !main.contains(' ') {
            let groups: Vec<&str> = main.split('.').collect();
            if groups.iter().all(|g| g.len() <= 3) {
                return None;
            }
        }
        // SSN-shaped numbers are not phone numbers (the SSN recognizer decides about them).
        let b = main.as_bytes();
        if b.len() == 11 && b[3] == b'-' && b[6] == b'-' && digits == 9 {
            return None;
        }
        let intl_00 = main.starts_with("00") && main.as_bytes().get(2).is_some_and(|c| (b'1'..=b'9').contains(c));
        if main.starts_with('+') || intl_00 {
            if digits >= 8 {
                return Some((0.9, "phone number (international format)"));
            }
            return None;
        }
        if self.nanp.is_match(main) {
            return Some((0.85, "phone number (North American format)"));
        }
        // National formats: require a context word shortly before or after, and not be a house
        // number followed by a street name.
        let after = &text[end..super::floor_boundary(text, (end + 40).min(text.len()))];
        if self.street.is_match(after) {
            return None;
        }
        let lo = super::floor_boundary(text, start.saturating_sub(48));
        let hi = super::floor_boundary(text, (end + 16).min(text.len()));
        let ctx = self.phone_context.is_match(&text[lo..start]) || self.phone_context.is_match(&text[end..hi]);
        if ctx && (separators > 0 || digits >= 9) {
            return Some((0.7, "phone number (national format, context word nearby)"));
        }
        None
    }
}

/// A maximal run of bytes of one class, with counts that gate the patterns.
#[derive(Debug, Clone, Copy)]
struct ByteRun {
    start: usize,
    end: usize,
    digits: usize,
    dots: usize,
}

/// Bytes any card, SSN, IPv4 or phone match can contain (`+ ( ) . - / #`, space, digits and the
/// `x`/`ext` extension markers).
#[inline]
fn is_phone_byte(b: u8) -> bool {
    PHONE_BYTES[b as usize]
}

const PHONE_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_digit()
            || matches!(b, b' ' | b'(' | b')' | b'.' | b'-' | b'/' | b'+' | b'#' | b'x' | b'e' | b't');
        i += 1;
    }
    t
};

/// Exactly `YYYY-MM-DD` or `DD-MM-YYYY` (separators `-`, `/`, `.`; one- or two-digit day and month).
fn is_date(s: &str) -> bool {
    let groups: Vec<&str> = s.split(['-', '/', '.']).collect();
    let digits = |g: &str, lo: usize, hi: usize| (lo..=hi).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit());
    groups.len() == 3
        && ((digits(groups[0], 4, 4) && digits(groups[1], 1, 2) && digits(groups[2], 1, 2))
            || (digits(groups[0], 1, 2) && digits(groups[1], 1, 2) && digits(groups[2], 4, 4)))
}

/// Bytes an IPv6 match can contain.
#[inline]
fn is_ipv6_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || b == b':' || b == b'.'
}

/// Offset of the first ASCII digit in `b[from..]`, eight bytes at a time (SWAR; no `unsafe`).
#[inline(always)]
pub(crate) fn next_digit(b: &[u8], from: usize) -> Option<usize> {
    const LO: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HI: u64 = 0x8080_8080_8080_8080;
    let digits_in = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_le_bytes(w);
        let low = x & LO;
        // High bit of each byte: (x & 0x7F) ≥ b'0', (x & 0x7F) > b'9', x < 0x80. No carries
        // between bytes (0x7F + 0x50 < 0x100).
        let ge0 = low.wrapping_add(0x5050_5050_5050_5050) & HI;
        let gt9 = low.wrapping_add(0x4646_4646_4646_4646) & HI;
        ge0 & !gt9 & !x & HI
    };
    let mut from = from;
    // Digits come in clusters: the next eight bytes first.
    if let Some(c) = b.get(from..from + 8) {
        let digits = digits_in(c);
        if digits != 0 {
            return Some(from + (digits.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    // Blocks of 32 bytes without a digit are skipped by a branch-free fold the compiler
    // vectorizes (prose between numbers); the block holding one is searched eight bytes at a time.
    while let Some(block) = b.get(from..from + 32) {
        if block.iter().fold(0u8, |a, &c| a | u8::from(c.is_ascii_digit())) != 0 {
            break;
        }
        from += 32;
    }
    let rest = b.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut base = from;
    for c in chunks.by_ref() {
        let digits = digits_in(c);
        if digits != 0 {
            return Some(base + (digits.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(u8::is_ascii_digit).map(|k| base + k)
}

/// `true` when `b` holds `n` consecutive ASCII digits.
fn has_digit_run(b: &[u8], n: usize) -> bool {
    let mut k = 0;
    for c in b {
        k = if c.is_ascii_digit() { k + 1 } else { 0 };
        if k >= n {
            return true;
        }
    }
    false
}

/// Maximal runs of `class` bytes holding at least `min_seed` `seed` bytes (seeds are in the class;
/// `DIGIT_SEED` says that the seeds are the ASCII digits, found eight bytes at a time).
fn class_runs<const DIGIT_SEED: bool>(
    text: &str,
    class: impl Fn(u8) -> bool,
    seed: impl Fn(u8) -> bool,
    min_seed: usize,
) -> Vec<ByteRun> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(j) =
        if DIGIT_SEED { next_digit(b, i) } else { b[i..].iter().position(|&c| seed(c)).map(|off| i + off) }
    {
        let mut s = j;
        while s > i && class(b[s - 1]) {
            s -= 1;
        }
        let mut e = s;
        let (mut seeds, mut dots) = (0, 0);
        while e < b.len() && class(b[e]) {
            seeds += usize::from(seed(b[e]));
            dots += usize::from(b[e] == b'.');
            e += 1;
        }
        if seeds >= min_seed {
            let digits = b[s..e].iter().filter(|c| c.is_ascii_digit()).count();
            out.push(ByteRun { start: s, end: e, digits, dots });
        }
        i = e.max(j + 1);
    }
    out
}

/// Runs of IPv6 bytes around two colons at most four hex digits apart (`a:b:`, `::`): every
/// IPv6 match has such a pair, and JSON's `"key":value` colons do not, so few are expanded.
fn ipv6_runs(text: &str) -> Vec<ByteRun> {
    let b = text.as_bytes();
    let mut out: Vec<ByteRun> = Vec::new();
    let mut i = 0;
    while let Some(c) = b.get(i..).and_then(|t| memchr::memchr(b':', t)).map(|off| i + off) {
        i = c + 1;
        let pair = (1..=5)
            .map(|k| b.get(c + k))
            .take_while(|x| x.is_some_and(|&y| y == b':' || y.is_ascii_hexdigit()))
            .any(|x| x == Some(&b':'));
        if !pair || out.last().is_some_and(|r| c < r.end) {
            continue;
        }
        let mut s = c;
        while s > 0 && is_ipv6_byte(b[s - 1]) {
            s -= 1;
        }
        let mut e = c;
        while e < b.len() && is_ipv6_byte(b[e]) {
            e += 1;
        }
        out.push(ByteRun { start: s, end: e, digits: 0, dots: 0 });
        i = e;
    }
    out
}

/// The haystack a search inside `r` needs: up to the run's end plus one character, so that a
/// trailing `\b` sees the same neighbour as in the whole text.
fn run_haystack<'t>(text: &'t str, r: &ByteRun) -> &'t str {
    let next = text.get(r.end..).and_then(|t| t.chars().next()).map_or(0, char::len_utf8);
    text.get(..r.end + next).unwrap_or(text)
}

/// `re.find_iter(text)` restricted to matches inside the runs selected by `keep` (equal to the
/// full iteration when every match lies inside one run and unselected runs cannot match).
fn find_in_runs<'t>(re: &Regex, text: &'t str, runs: &[ByteRun], keep: fn(&ByteRun) -> bool) -> Vec<regex::Match<'t>> {
    let mut out = Vec::new();
    for r in runs.iter().filter(|r| keep(r)) {
        let hay = run_haystack(text, r);
        let mut pos = r.start;
        while pos < r.end {
            let Some(m) = re.find_at(hay, pos) else { break };
            out.push(m);
            pos = if m.end() > m.start() { m.end() } else { m.end() + 1 };
        }
    }
    out
}

/// [`find_in_runs`] with capture groups.
fn captures_in_runs<'t>(
    re: &Regex,
    text: &'t str,
    runs: &[ByteRun],
    keep: fn(&ByteRun) -> bool,
) -> Vec<regex::Captures<'t>> {
    let mut out = Vec::new();
    for r in runs.iter().filter(|r| keep(r)) {
        let hay = run_haystack(text, r);
        let mut pos = r.start;
        while pos < r.end {
            let Some(c) = re.captures_at(hay, pos) else { break };
            let Some(m) = c.get(0) else { break };
            pos = if m.end() > m.start() { m.end() } else { m.end() + 1 };
            out.push(c);
        }
    }
    out
}

fn pii(t: PiiType, score: f32, start: usize, end: usize, why: &str) -> Hit {
    let mut h = Hit::new(t.entity(), score, start, end, why);
    h.pii = Some(t);
    h
}

fn digit_neighbour(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    (start > 0 && (b[start - 1].is_ascii_digit() || b[start - 1] == b'-'))
        || (end < b.len()
            && (b[end].is_ascii_digit() || (b[end] == b'-' && b.get(end + 1).is_some_and(u8::is_ascii_digit))))
}

fn hex_neighbour(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    (start > 0 && b[start - 1].is_ascii_alphanumeric()) || (end < b.len() && b[end].is_ascii_alphanumeric())
}

/// Local part and domain rules beyond the regex (no leading/trailing/double dots).
pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain.len() <= 253
        && domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
}

/// Luhn checksum over the digits of `s`.
pub fn luhn(s: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0;
    for (i, d) in s.bytes().rev().filter(u8::is_ascii_digit).map(|b| (b - b'0') as u32).enumerate() {
        let v = if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
        sum += v;
        n += 1;
    }
    n > 0 && sum % 10 == 0
}

/// Card validation: separators, length per issuer, Luhn. Returns the reason when valid.
pub fn valid_card(s: &str) -> Option<&'static str> {
    let seps: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_digit()).collect();
    if let Some(&first) = seps.first() {
        if seps.iter().any(|&c| c != first) {
            return None;
        }
        // Grouped numbers use groups of 4 (or Amex 4-6-5 / Diners 4-6-4).
        let groups: Vec<usize> = s.split(first as char).map(str::len).collect();
        let ok = groups.iter().all(|&g| (3..=6).contains(&g)) && groups.len() >= 3;
        if !ok {
            return None;
        }
    }
    let d: Vec<u8> = s.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    let len = d.len();
    if !(12..=19).contains(&len) || d.iter().all(|&x| x == d[0]) {
        return None;
    }
    let p2 = (d[0] as u32) * 10 + d[1] as u32;
    let p4 = p2 * 100 + (d[2] as u32) * 10 + d[3] as u32;
    let brand = match d[0] {
        4 if matches!(len, 13 | 16 | 19) => "Visa",
        5 if (51..=55).contains(&p2) && len == 16 => "Mastercard",
        2 if (2221..=2720).contains(&p4) && len == 16 => "Mastercard",
        3 if (p2 == 34 || p2 == 37) && len == 15 => "American Express",
        3 if (p2 == 30 || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len) => "Diners Club",
        3 if p2 == 35 && (16..=19).contains(&len) => "JCB",
        2 | 1 if (p4 == 2131 || p4 == 1800) && len == 15 => "JCB",
        6 if (p4 == 6011 || p2 == 65 || (644..=649).contains(&(p4 / 10))) && (16..=19).contains(&len) => "Discover",
        5 | 6 if (p2 == 50 || (56..=69).contains(&p2)) && (12..=19).contains(&len) => "Maestro",
        6 if p2 == 62 && (16..=19).contains(&len) => "UnionPay",
        _ => return None,
    };
    if !luhn(s) {
        return None;
    }
    Some(match brand {
        "Visa" => "credit card (Visa, Luhn valid)",
        "Mastercard" => "credit card (Mastercard, Luhn valid)",
        "American Express" => "credit card (American Express, Luhn valid)",
        "Diners Club" => "credit card (Diners Club, Luhn valid)",
        "JCB" => "credit card (JCB, Luhn valid)",
        "Discover" => "credit card (Discover, Luhn valid)",
        "Maestro" => "credit card (Maestro, Luhn valid)",
        _ => "credit card (UnionPay, Luhn valid)",
    })
}

/// The longest valid card inside a candidate, cut at separators.
fn card_within(s: &str) -> Option<(usize, usize, &'static str)> {
    let seps: Vec<usize> = s.match_indices([' ', '-']).map(|(k, _)| k).collect();
    if seps.is_empty() {
        return None;
    }
    let starts: Vec<usize> = std::iter::once(0).chain(seps.iter().map(|k| k + 1)).collect();
    let ends: Vec<usize> = seps.iter().copied().chain(std::iter::once(s.len())).collect();
    // Only spans of 12–19 digits can be valid (`valid_card`), so the others are not tried: the
    // span from piece i to piece j holds j − i separators and the rest digits (the candidate is
    // digits, spaces and dashes). Trying all of them cost ~190 checks per candidate.
    let mut spans: Vec<(usize, usize)> = starts
        .iter()
        .enumerate()
        .flat_map(|(i, &a)| ends.iter().enumerate().skip(i).map(move |(j, &b)| (a, b, j - i)))
        .filter(|&(a, b, inside)| b > a && (12..=19).contains(&(b - a - inside)))
        .map(|(a, b, _)| (a, b))
        .collect();
    spans.sort_by_key(|&(a, b)| (std::cmp::Reverse(b - a), a));
    spans
        .into_iter()
        .find_map(|(a, b)| (!(a == 0 && b == s.len())).then(|| valid_card(&s[a..b])).flatten().map(|why| (a, b, why)))
}

/// Bytes from a candidate start that hold any IBAN match and the character after it (which the
/// trailing `\b` looks at): the pattern spans at most 34 characters and 30 spaces, and a
/// character is at most 4 bytes, so 166 bytes; the margin keeps this true should case folding
/// or `\d` ever admit wider characters than today's ASCII.
const IBAN_HAYSTACK: usize = 256;

/// IBAN lengths per country (ISO 13616 registry).
fn iban_length(cc: &str) -> Option<usize> {
    Some(match cc {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" | "SD" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "CR" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "LY" | "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" | "BI" | "DJ" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "SC" => 31,
        "LC" => 32,
        "RU" => 33,
        _ => return None,
    })
}

/// ISO 13616 validation: country length and mod-97 == 1. Spaces are ignored, case is folded.
pub fn valid_iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    if compact.len() < 15 || !compact.is_ascii() {
        return false;
    }
    let Some(len) = iban_length(&compact[0..2]) else { return false };
    if compact.len() != len || !compact[2..4].bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let rearranged = compact[4..].bytes().chain(compact[0..4].bytes());
    let mut rem: u32 = 0;
    for b in rearranged {
        match b {
            b'0'..=b'9' => rem = (rem * 10 + (b - b'0') as u32) % 97,
            b'A'..=b'Z' => rem = (rem * 100 + (b - b'A' + 10) as u32) % 97,
            _ => return false,
        }
    }
    rem == 1
}

/// SSA rules: area not 000, 666 or 900–999; group not 00; serial not 0000; no famous samples.
pub fn valid_ssn(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(a), Ok(g), Ok(s)) = (area.parse::<u32>(), group.parse::<u32>(), serial.parse::<u32>()) else {
        return false;
    };
    if a == 0 || a == 666 || a >= 900 || g == 0 || s == 0 {
        return false;
    }
    let all = format!("{area}{group}{serial}");
    if all.bytes().all(|b| b == all.as_bytes()[0]) {
        return false;
    }
    // Woolworth's wallet card, the 1962 advertisement and other published samples.
    !matches!(all.as_str(), "078051120" | "219099999" | "123456789" | "457555462" | "987654320")
}

fn valid_ipv4(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    // Part of a longer dotted run (OIDs, version strings like 1.2.3.4.5) or a word.
    if start > 0 && (b[start - 1] == b'.' || b[start - 1].is_ascii_alphanumeric()) {
        return false;
    }
    if end < b.len()
        && (b[end].is_ascii_alphanumeric() || (b[end] == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit)))
    {
        return false;
    }
    let s = &text[start..end];
    // "version 1.2.3.4" / "v1.2.3.4"
    let lo = super::floor_boundary(text, start.saturating_sub(10));
    let before = text[lo..start].to_ascii_lowercase();
    if before.ends_with("version ") || before.ends_with("v") || before.ends_with("ver ") {
        return false;
    }
    s.split('.').all(|o| {
        !o.is_empty()
            && o.len() <= 3
            && !(o.len() > 1 && o.starts_with('0'))
            && o.parse::<u16>().is_ok_and(|v| v <= 255)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-bytes-at-a-time digit search equals the byte loop, at every offset, next to
    /// every byte value (non-ASCII bytes around `0xB0`–`0xB9` included).
    #[test]
    fn next_digit_equals_byte_search() {
        let mut b: Vec<u8> = (0u8..=255).collect();
        b.extend_from_slice(b"abc/:;09 x\xb0\xb9\xc3\xa9 12");
        b.extend((0u8..=255).rev());
        for from in 0..=b.len() + 1 {
            let want = b.get(from..).and_then(|t| t.iter().position(u8::is_ascii_digit)).map(|k| from + k);
            assert_eq!(next_digit(&b, from), want, "from {from}");
        }
        for v in 0u8..=255 {
            for len in 0..80 {
                let mut t = vec![b'a'; len];
                t.push(v);
                let want = t.iter().position(u8::is_ascii_digit);
                assert_eq!(next_digit(&t, 0), want, "byte {v} at {len}");
            }
        }
        assert!(has_digit_run(b"ssn 123456789", 9) && !has_digit_run(b"12345678 9", 9));
    }

    proptest::proptest! {
        /// The bounded IBAN search finds what the search over the whole text found: texts of
        /// IBAN-like pieces (country letters, digits, groups, spaces, word characters and
        /// non-ASCII letters next to them) at every candidate start.
        #[test]
        fn iban_search_is_bounded_without_changing_matches(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "GB82", "de89", " ", "WEST", "1234", "5698", "7654", "32", "x", "_", "é", "\u{212a}", "-", "0", "AB12", "\n",
            ]), 0..120),
        ) {
            let text: String = parts.concat();
            let s = PiiScanner::new().expect("compile");
            for i in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
                let whole = s.iban.find_at(&text, i).filter(|m| m.start() == i).map(|m| m.range());
                proptest::prop_assert_eq!(s.iban_at(&text, i).map(|m| m.range()), whole, "at {}", i);
            }
        }
    }

    /// `card_within` as first written: every span between separators tried, longest first.
    fn card_within_by_definition(s: &str) -> Option<(usize, usize, &'static str)> {
        let seps: Vec<usize> = s.match_indices([' ', '-']).map(|(k, _)| k).collect();
        if seps.is_empty() {
            return None;
        }
        let starts: Vec<usize> = std::iter::once(0).chain(seps.iter().map(|k| k + 1)).collect();
        let ends: Vec<usize> = seps.iter().copied().chain(std::iter::once(s.len())).collect();
        let mut spans: Vec<(usize, usize)> =
            starts.iter().flat_map(|&a| ends.iter().filter(move |&&b| b > a).map(move |&b| (a, b))).collect();
        spans.sort_by_key(|&(a, b)| (std::cmp::Reverse(b - a), a));
        spans.into_iter().find_map(|(a, b)| {
            (!(a == 0 && b == s.len())).then(|| valid_card(&s[a..b])).flatten().map(|why| (a, b, why))
        })
    }

    proptest::proptest! {
        /// The same card (or none) as trying every span: candidates of digit groups from real
        /// card numbers and others, joined by spaces and dashes, doubled separators included.
        #[test]
        fn card_within_equals_its_definition(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "4111", "1111", "5500", "0000", "3782", "822463", "10005", "12", "123", "4", "0", "9999",
                "4222", "2222", "22222",
            ]), 1..9),
            seps in proptest::collection::vec(proptest::sample::select(vec![" ", "-", "--", " -"]), 8),
        ) {
            let mut s = String::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    s.push_str(seps[i - 1]);
                }
                s.push_str(p);
            }
            proptest::prop_assert_eq!(card_within(&s), card_within_by_definition(&s), "{:?}", s);
        }
    }

    /// Cards of 13 to 19 digits inside longer candidates, found as before.
    #[test]
    fn card_within_finds_cards_of_every_length() {
        for s in [
            "4222 2222 22222 1234",
            "12 4222-2222-22222",
            "4111 1111 1111 1111 42",
            "10 3782 822463 10005",
            "4111-1111-1111-1111-1 2",
        ] {
            let got = card_within(s);
            assert!(got.is_some(), "{s:?}");
            assert_eq!(got, card_within_by_definition(s), "{s:?}");
        }
    }

    fn kinds(text: &str) -> Vec<(String, String)> {
        let s = PiiScanner::new().expect("compile");
        s.scan(text, &PiiType::ALL).into_iter().map(|h| (h.kind, text[h.start..h.end].to_string())).collect()
    }

    #[test]
    fn positives() {
        let table: &[(&str, &str, &str)] = &[
            ("mail me at jane.doe+x@example.co.uk today", "EMAIL_ADDRESS", "jane.doe+x@example.co.uk"),
            ("card 4111 1111 1111 1111 exp 12/29", "CREDIT_CARD", "4111 1111 1111 1111"),
            ("amex 378282246310005", "CREDIT_CARD", "378282246310005"),
            ("pay to GB82 WEST 1234 5698 7654 32 now", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
            ("iban de89370400440532013000", "IBAN_CODE", "de89370400440532013000"),
            ("ssn 536-22-8726 on file", "US_SSN", "536-22-8726"),
            ("host 192.168.10.254 is up", "IP_ADDRESS", "192.168.10.254"),
            ("v6 2001:db8::8a2e:370:7334 ok", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
            ("call +44 20 7946 0958 please", "PHONE_NUMBER", "+44 20 7946 0958"),
            ("at (415) 555-2671 anytime", "PHONE_NUMBER", "(415) 555-2671"),
            ("Phone:\n0490 75 40 81", "PHONE_NUMBER", "0490 75 40 81"),
        ];
        for (text, kind, span) in table {
            let got = kinds(text);
            assert!(got.iter().any(|(k, s)| k == kind && s == span), "{text:?} → {got:?}");
        }
    }

    #[test]
    fn hard_negatives() {
        let table: &[&str] = &[
            "order 4111 1111 1111 1112 failed", // Luhn fails
            "id 1234567890123456",              // Luhn fails
            "GB82 WEST 1234 5698 7654 33",      // mod-97 fails
            "ssn 000-12-3456 and 666-12-3456 and 912-34-5678 and 123-00-4567",
            "released 2024-01-15, build 20240115",
            "version 1.2.3.4 and 10.0.0.256",
            "see RFC 9110 section 15.5.1",
            "user@localhost is not routable",
            "the meeting is at 12:30:45",
            "total 1234567 rows",
        ];
        for text in table {
            assert!(kinds(text).is_empty(), "{text:?} → {:?}", kinds(text));
        }
    }

    #[test]
    fn validators() {
        assert!(luhn("4539 1488 0343 6467"));
        assert!(!luhn("4539 1488 0343 6468"));
        assert!(valid_iban("GB82WEST12345698765432"));
        assert!(valid_iban("NO9386011117947"));
        assert!(!valid_iban("GB82WEST1234569876543"));
        assert!(valid_ssn("536", "22", "8726"));
        assert!(!valid_ssn("078", "05", "1120"));
    }

    #[test]
    fn card_followed_by_another_number() {
        let s = PiiScanner::new().expect("compile");
        let t = "4111 1111 1111 1111 4111 1111 1111 1111 10.0.0.1";
        let hits = s.scan(t, &[PiiType::CreditCard, PiiType::IpAddress]);
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.kind.as_str(), &t[h.start..h.end])).collect();
        assert_eq!(
            got,
            vec![
                ("CREDIT_CARD", "4111 1111 1111 1111"),
                ("CREDIT_CARD", "4111 1111 1111 1111"),
                ("IP_ADDRESS", "10.0.0.1")
            ]
        );
    }

    #[test]
    fn card_after_another_number() {
        let s = PiiScanner::new().expect("compile");
        let t = "10.0.0.1 4111 1111 1111 1111 4111 1111 1111 1111";
        let hits = s.scan(t, &[PiiType::CreditCard, PiiType::IpAddress]);
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.kind.as_str(), &t[h.start..h.end])).collect();
        assert_eq!(
            got,
            vec![
                ("IP_ADDRESS", "10.0.0.1"),
                ("CREDIT_CARD", "4111 1111 1111 1111"),
                ("CREDIT_CARD", "4111 1111 1111 1111")
            ]
        );
    }

    #[test]
    fn card_after_an_iban() {
        let s = PiiScanner::new().expect("compile");
        let t = "GB82 WEST 1234 5698 7654 32 4111 1111 1111 1111 x";
        let hits = s.scan(t, &[PiiType::CreditCard, PiiType::Iban]);
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.kind.as_str(), &t[h.start..h.end])).collect();
        assert_eq!(got, vec![("IBAN_CODE", "GB82 WEST 1234 5698 7654 32"), ("CREDIT_CARD", "4111 1111 1111 1111")]);
    }

    #[test]
    fn date_runs_hold_no_phone() {
        let s = PiiScanner::new().expect("compile");
        assert!(is_date("2025-11-02") && is_date("2/11/2025") && !is_date("2025-11-02-1") && !is_date("555-123-4567"));
        for t in ["updated 2025-11-02T10:15:00Z", "on 02/11/2025 at noon", "call 2025-11-02 555 0134"] {
            let new: Vec<(usize, usize)> = s.scan(t, &[PiiType::Phone]).iter().map(|h| (h.start, h.end)).collect();
            // Reference: the pattern over the whole text, every candidate scored.
            let old: Vec<(usize, usize)> = s
                .phone
                .find_iter(t)
                .filter(|m| s.phone_score(t, m.start(), m.end()).is_some())
                .map(|m| (m.start(), m.end()))
                .collect();
            assert_eq!(new, old, "{t:?}");
        }
    }

    #[test]
    fn phone_before_a_stronger_span() {
        let s = PiiScanner::new().expect("compile");
        let t = "+44 20 7946 0958 +44 20 7946 0958 536-22-8726";
        let hits = s.scan(t, &[PiiType::Phone, PiiType::UsSsn]);
        let got: Vec<(&str, &str)> = hits.iter().map(|h| (h.kind.as_str(), &t[h.start..h.end])).collect();
        assert_eq!(
            got,
            vec![("PHONE_NUMBER", "+44 20 7946 0958"), ("PHONE_NUMBER", "+44 20 7946 0958"), ("US_SSN", "536-22-8726")]
        );
    }
}
