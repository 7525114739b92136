//! Plain heads in one pass: the head's end, its lines and its fields found together, for the
//! heads that need none of the general path's leniency.
//!
//! The general path ([`super::head`]) looks at a head five times: a substring search for its
//! end, a scan of its line endings (folds, bare LFs), httparse, a UTF-8 check, and the copy.
//! Nearly every head on the wire is plain: ASCII, every line ended by CRLF, no fold, single
//! spaces in the start line, `name: value` fields with token names. For those, one scan of
//! 32-byte blocks (AVX2; 16-byte SSE2 blocks without it) finds every line end, the head's end
//! and any byte that is not plain, and the lines are then split where the scan left them, the
//! field names measured 16 bytes at a time (SSSE3; four bytes without it). Anything else — an incomplete head, a byte
//! outside printable ASCII and HTAB, a bare CR or LF, a fold, a field without a colon, a name
//! that is not a token, a start line httparse would need its leniency for, more fields than
//! the general path's first attempt holds — returns `None` and takes the general path, whose
//! results are the reference: the tests compare both on hostile and generated heads.
//!
//! Written here rather than taken from a library because httparse, the best-kept one, is the
//! general path itself: it checks byte by byte where this checks a block at a time, and it
//! leaves the end search, the line-ending scan and the UTF-8 check to the caller. Measured on
//! the replay benchmark: see the README's replay section.

use super::head::{RequestHead, ResponseHead, SMALL_HEADERS};
use crate::exchange::{Headers, Version};

/// Lines of a head handled here (start line and fields); longer heads take the general path.
const MAX_LINES: usize = 64;

/// httparse's `tchar` (RFC 9110 §5.6.2): methods and field names.
const TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        c += 1;
    }
    t
};

/// Where the lines of a plain head end.
#[derive(Debug, PartialEq)]
struct Lines {
    /// Offset of the CR of each line, start line first; the blank line is not one of them.
    ends: [u32; MAX_LINES],
    count: usize,
    /// Offset just past the blank line.
    end: usize,
}

impl Lines {
    /// Line `i` without its CRLF.
    fn line<'a>(&self, head: &'a [u8], i: usize) -> (usize, &'a [u8]) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize + 2 };
        (start, &head[start..self.ends[i] as usize])
    }
}

/// Per block of 16 or 32 bytes: bit `j` set when byte `j` is LF, CR, or not plain (a control
/// byte other than HTAB, CR and LF; DEL; or not ASCII).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Masks {
    lf: u64,
    cr: u64,
    bad: u64,
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn classify(block: &[u8; 16]) -> Masks {
    // SAFETY: the function needs SSE2, which this build enables everywhere (the cfg above: it is
    // part of the x86-64 baseline); it takes no pointers.
    #[allow(unsafe_code)]
    unsafe {
        classify_sse2(block)
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn classify_sse2(block: &[u8; 16]) -> Masks {
    use std::arch::x86_64::{
        _mm_andnot_si128, _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    let [lo, hi] = [&block[..8], &block[8..]].map(|h| i64::from_le_bytes(h.try_into().unwrap_or_default()));
    let v = _mm_set_epi64x(hi, lo);
    let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
    let (lf, cr, tab) = (eq(b'\n'), eq(b'\r'), eq(b'\t'));
    // Unsigned `v <= 0x1f`: max(v, 0x1f) == 0x1f.
    let control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
    let control = _mm_andnot_si128(_mm_or_si128(_mm_or_si128(lf, cr), tab), control);
    // Bytes of 0x80 and up have their top bit set, which `movemask` takes as it is.
    let bad = _mm_or_si128(_mm_or_si128(control, eq(0x7f)), v);
    let mask = |m| u64::from(_mm_movemask_epi8(m) as u16);
    Masks { lf: mask(lf), cr: mask(cr), bad: mask(bad) }
}

/// [`classify_sse2`] for 32 bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn classify_avx2(block: &[u8; 32]) -> Masks {
    use std::arch::x86_64::{
        _mm256_andnot_si256, _mm256_cmpeq_epi8, _mm256_max_epu8, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8, _mm256_set_epi64x,
    };
    let [a, b, c, d] = [0, 8, 16, 24].map(|i| i64::from_le_bytes(block[i..i + 8].try_into().unwrap_or_default()));
    let v = _mm256_set_epi64x(d, c, b, a);
    let eq = |c: u8| _mm256_cmpeq_epi8(v, _mm256_set1_epi8(c as i8));
    let (lf, cr, tab) = (eq(b'\n'), eq(b'\r'), eq(b'\t'));
    let control = _mm256_cmpeq_epi8(_mm256_max_epu8(v, _mm256_set1_epi8(0x1f)), _mm256_set1_epi8(0x1f));
    let control = _mm256_andnot_si256(_mm256_or_si256(_mm256_or_si256(lf, cr), tab), control);
    let bad = _mm256_or_si256(_mm256_or_si256(control, eq(0x7f)), v);
    let mask = |m| u64::from(_mm256_movemask_epi8(m) as u32);
    Masks { lf: mask(lf), cr: mask(cr), bad: mask(bad) }
}

/// The portable form (other targets).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn classify(block: &[u8; 16]) -> Masks {
    classify_portable(block)
}

/// The definition, byte by byte: the form for targets without SSE2, and the tests' reference.
#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
fn classify_portable(block: &[u8; 16]) -> Masks {
    let mut m = Masks { lf: 0, cr: 0, bad: 0 };
    for (j, &b) in block.iter().enumerate() {
        m.lf |= u64::from(b == b'\n') << j;
        m.cr |= u64::from(b == b'\r') << j;
        m.bad |= u64::from((b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) || b >= 0x7f) << j;
    }
    m
}

/// Finds the lines of the plain head at the start of `buf`; `false` when there is no end in
/// `buf` or the head is not plain. 32 bytes a step with AVX2 (half the instructions of 16).
fn scan(buf: &[u8], lines: &mut Lines) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, all the function is compiled for.
        #[allow(unsafe_code)]
        return unsafe { scan_avx2(buf, lines) };
    }
    scan_blocks(buf, lines, classify)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(buf: &[u8], lines: &mut Lines) -> bool {
    scan_blocks(buf, lines, |block| classify_avx2(block))
}

/// [`scan`] with blocks of `W` bytes.
#[inline(always)]
fn scan_blocks<const W: usize>(buf: &[u8], lines: &mut Lines, classify: impl Fn(&[u8; W]) -> Masks) -> bool {
    let full = u64::MAX >> (64 - W);
    // A CR at the last byte of the block before, whose LF must start this one.
    let mut carry = 0u64;
    let mut base = 0;
    while base < buf.len() {
        let m = match buf.get(base..base + W) {
            Some(block) => classify(block.try_into().unwrap_or(&[0; W])),
            None => {
                // The last bytes, padded with plain ones.
                let mut block = [b'a'; W];
                block[..buf.len() - base].copy_from_slice(&buf[base..]);
                classify(&block)
            }
        };
        // Bytes where an LF is not right after a CR, or a CR not right before an LF (bare CRs
        // and LFs), and bytes that are not plain: only those before the end count.
        let wrong = ((m.lf ^ ((m.cr << 1) | carry)) & full) | m.bad;
        carry = m.cr >> (W - 1);
        let mut lf = m.lf;
        while lf != 0 {
            let at = base + lf.trailing_zeros() as usize;
            lf &= lf - 1;
            if at == 0 || lines.count == MAX_LINES {
                return false;
            }
            lines.ends[lines.count] = (at - 1) as u32;
            lines.count += 1;
            match buf.get(at + 1) {
                Some(b'\r') => {
                    // The blank line: its CRLF checked here, the bytes before it in the masks.
                    let before = u64::MAX >> (63 - (at - base));
                    if buf.get(at + 2) != Some(&b'\n') || wrong & before != 0 {
                        return false;
                    }
                    lines.end = at + 3;
                    return true;
                }
                // Bare LF, a fold, or more bytes needed.
                Some(b'\n' | b' ' | b'\t') | None => return false,
                Some(_) => {}
            }
        }
        if wrong != 0 || base + W > u32::MAX as usize {
            return false;
        }
        base += W;
    }
    false
}

/// The field lines of a plain head, as [`Headers`] over the whole head, and the head as text;
/// `None` when a line is not `token ":" value` or there are more fields than the general path's
/// first attempt takes. Names are measured 16 bytes at a time with SSSE3 (runtime detected).
fn fields<'a>(head: &'a [u8], lines: &Lines, max_headers: usize) -> Option<(Headers, &'a str)> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU has SSSE3, all the function is compiled for.
        #[allow(unsafe_code)]
        return unsafe { fields_ssse3(head, lines, max_headers) };
    }
    fields_with(head, lines, max_headers, token_len)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn fields_ssse3<'a>(head: &'a [u8], lines: &Lines, max_headers: usize) -> Option<(Headers, &'a str)> {
    fields_with(head, lines, max_headers, |head, start| token_len_ssse3(head, start))
}

/// [`fields`], names measured by `token_len`.
#[inline(always)]
fn fields_with<'a>(
    head: &'a [u8],
    lines: &Lines,
    max_headers: usize,
    token_len: impl Fn(&[u8], usize) -> usize,
) -> Option<(Headers, &'a str)> {
    if lines.count - 1 > max_headers.max(SMALL_HEADERS) {
        return None;
    }
    let mut spans = Vec::with_capacity(lines.count - 1);
    for i in 1..lines.count {
        let (start, line) = lines.line(head, i);
        // The name ends at the line's CR at the latest (not a token byte).
        let colon = token_len(head, start);
        if colon == 0 || line.get(colon) != Some(&b':') {
            return None;
        }
        let value = &line[colon + 1..];
        let lead = value.len() - value.trim_ascii_start().len();
        let trimmed = value.trim_ascii().len();
        // Offsets within the head, which the scan keeps under 4 GiB.
        let (name_end, value_start) = (start + colon, start + colon + 1 + lead);
        spans.push([start, name_end, value_start, value_start + trimmed].map(|o| o as u32));
    }
    // Plain means ASCII, so the head is UTF-8 (checked again, with SIMD; the spans are checked
    // by `from_head_spans`).
    let text = simdutf8::basic::from_utf8(head).ok()?;
    Some((Headers::from_head_spans(text, spans)?, text))
}

/// Length of the run of token bytes at `buf[start..]`: four bytes a step while all four are
/// token bytes (a byte at a time cost twice the instructions).
fn token_len(buf: &[u8], start: usize) -> usize {
    let s = buf.get(start..).unwrap_or_default();
    let mut quads = s.chunks_exact(4);
    let whole = quads.by_ref().take_while(|q| q.iter().all(|&b| TOKEN[b as usize])).count() * 4;
    whole + s[whole..].iter().position(|&b| !TOKEN[b as usize]).unwrap_or(s.len() - whole)
}

/// Per low nibble, a bit for each high nibble 2..=7 whose byte with that low nibble is a token
/// byte ([`TOKEN`]: there are none outside 0x21..=0x7e).
const TOKEN_LO: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut lo = 0;
    while lo < 16 {
        let mut hi = 2;
        while hi < 8 {
            if TOKEN[hi << 4 | lo] {
                t[lo] |= 1 << (hi - 2);
            }
            hi += 1;
        }
        lo += 1;
    }
    t
};

/// Per high nibble, its bit in [`TOKEN_LO`] (none for 0, 1 and 8 up).
const TOKEN_HI: [u8; 16] = [0, 0, 1, 2, 4, 8, 16, 32, 0, 0, 0, 0, 0, 0, 0, 0];

/// [`token_len`] 16 bytes a step: each byte's two nibbles looked up in [`TOKEN_LO`] and
/// [`TOKEN_HI`] with one shuffle each, a token byte where the two share a bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn token_len_ssse3(buf: &[u8], start: usize) -> usize {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set1_epi8, _mm_set_epi64x, _mm_setzero_si128,
        _mm_shuffle_epi8, _mm_srli_epi16,
    };
    let table = |t: &[u8; 16]| {
        let [lo, hi] = [&t[..8], &t[8..]].map(|h| i64::from_le_bytes(h.try_into().unwrap_or_default()));
        _mm_set_epi64x(hi, lo)
    };
    let (lo_table, hi_table, nibble) = (table(&TOKEN_LO), table(&TOKEN_HI), _mm_set1_epi8(0x0f));
    let mut at = start;
    loop {
        // Past the end: zeros, which are not token bytes.
        let mut block = [0u8; 16];
        match buf.get(at..at + 16) {
            Some(b) => block.copy_from_slice(b),
            None => {
                let rest = buf.get(at..).unwrap_or_default();
                block[..rest.len()].copy_from_slice(rest);
            }
        }
        let v = table(&block);
        let lo = _mm_shuffle_epi8(lo_table, _mm_and_si128(v, nibble));
        let hi = _mm_shuffle_epi8(hi_table, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
        let other = _mm_cmpeq_epi8(_mm_and_si128(lo, hi), _mm_setzero_si128());
        let first_other = (_mm_movemask_epi8(other) as u32 | 1 << 16).trailing_zeros() as usize;
        if first_other < 16 {
            return at + first_other - start;
        }
        at += 16;
    }
}

/// `HTTP/1.0` or `HTTP/1.1`, exactly (httparse takes no other).
fn version(v: &[u8]) -> Option<Version> {
    match v {
        b"HTTP/1.1" => Some(Version::Http11),
        b"HTTP/1.0" => Some(Version::Http10),
        _ => None,
    }
}

/// The request head at the start of `buf` and its length, when the head is plain.
pub(crate) fn request(buf: &[u8], max_headers: usize) -> Option<(RequestHead, usize)> {
    let mut lines = Lines { ends: [0; MAX_LINES], count: 0, end: 0 };
    if !scan(buf, &mut lines) {
        return None;
    }
    let head = &buf[..lines.end];
    let (_, line) = lines.line(head, 0);
    // `METHOD SP target SP HTTP/1.x`, single spaces; the target as httparse takes it (no
    // control byte or space: the scan left only HTAB to exclude).
    let sp = token_len(line, 0);
    if sp == 0 || line.get(sp) != Some(&b' ') {
        return None;
    }
    let rest = &line[sp + 1..];
    let target_len = memchr::memchr2(b' ', b'\t', rest)?;
    if target_len == 0 || rest[target_len] != b' ' {
        return None;
    }
    let version = version(&rest[target_len + 1..])?;
    let (headers, text) = fields(head, &lines, max_headers)?;
    let method = &text[..sp];
    let target = &text[sp + 1..sp + 1 + target_len];
    Some((
        RequestHead { method: method.to_owned(), target: target.to_owned(), version, headers, anomalies: Vec::new() },
        lines.end,
    ))
}

/// The response head at the start of `buf` and its length, when the head is plain.
pub(crate) fn response(buf: &[u8], max_headers: usize) -> Option<(ResponseHead, usize)> {
    let mut lines = Lines { ends: [0; MAX_LINES], count: 0, end: 0 };
    if !scan(buf, &mut lines) {
        return None;
    }
    let head = &buf[..lines.end];
    let (_, line) = lines.line(head, 0);
    // `HTTP/1.x SP 3DIGIT`, then nothing or `SP reason` (a reason that starts with a space is
    // httparse's leniency, taken by the general path).
    let version = version(line.get(..8)?)?;
    let [b' ', d0 @ b'0'..=b'9', d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', rest @ ..] = &line[8..] else {
        return None;
    };
    let reason = match rest {
        [] => &[][..],
        [b' ', reason @ ..] if reason.first() != Some(&b' ') => reason,
        _ => return None,
    };
    let status = [d0, d1, d2].iter().fold(0u16, |n, &&d| n * 10 + u16::from(d - b'0'));
    let (headers, text) = fields(head, &lines, max_headers)?;
    let reason = &text[line.len() - reason.len()..line.len()];
    Some((ResponseHead { version, status, reason: reason.to_owned(), headers, anomalies: Vec::new() }, lines.end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::{find_end_with_endings, parse_request, parse_response};
    use proptest::prelude::*;

    /// The general path: the reference.
    fn general_request(buf: &[u8], max: usize) -> Option<(RequestHead, usize)> {
        let (end, endings) = find_end_with_endings(buf, 0)?;
        Some((parse_request(&buf[..end], max, endings)?, end))
    }

    fn general_response(buf: &[u8], max: usize) -> Option<(ResponseHead, usize)> {
        let (end, endings) = find_end_with_endings(buf, 0)?;
        Some((parse_response(&buf[..end], max, endings)?, end))
    }

    /// Every block width finds the same lines (the 16-byte scan is the one of CPUs without AVX2).
    fn scan_checked(buf: &[u8]) -> Option<Lines> {
        let mut lines = Lines { ends: [0; MAX_LINES], count: 0, end: 0 };
        let found = scan(buf, &mut lines);
        let mut narrow = Lines { ends: [0; MAX_LINES], count: 0, end: 0 };
        let narrow_found = scan_blocks(buf, &mut narrow, classify);
        assert_eq!(found, narrow_found);
        if found {
            assert_eq!(lines, narrow);
        }
        found.then_some(lines)
    }

    /// Parsed here, and the same as the general path.
    fn plain_request(buf: &[u8], max: usize) -> RequestHead {
        let got =
            request(buf, max).unwrap_or_else(|| panic!("not taken as plain: {:?}", buf.escape_ascii().to_string()));
        assert_eq!(Some(&got), general_request(buf, max).as_ref());
        got.0
    }

    fn plain_response(buf: &[u8], max: usize) -> ResponseHead {
        let got =
            response(buf, max).unwrap_or_else(|| panic!("not taken as plain: {:?}", buf.escape_ascii().to_string()));
        assert_eq!(Some(&got), general_response(buf, max).as_ref());
        got.0
    }

    #[test]
    fn plain_heads_parse_as_the_general_path_does() {
        let h = plain_request(b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Ows: \t v \t\r\n\r\nbody", 256);
        assert_eq!((h.method.as_str(), h.target.as_str(), h.version), ("GET", "/a?b=c", Version::Http11));
        let fields: Vec<_> = h.headers.iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(fields, [("Host", "x"), ("X-Empty", ""), ("X-Ows", "v")]);
        // Status lines: with a reason, an empty one after the space, none at all; HTTP/1.0.
        for (line, reason) in
            [("HTTP/1.1 200 OK", "OK"), ("HTTP/1.1 404 ", ""), ("HTTP/1.0 204", ""), ("HTTP/1.1 599 a\tb ", "a\tb ")]
        {
            let r = plain_response(format!("{line}\r\nServer: s\r\n\r\n").as_bytes(), 256);
            assert_eq!(r.reason, reason);
        }
        // No fields at all; a head that ends exactly where the buffer does; block boundaries on
        // every byte of the final CRLF.
        plain_request(b"GET / HTTP/1.0\r\n\r\n", 256);
        for pad in 0..40 {
            let head = format!("GET /{} HTTP/1.1\r\nA: b\r\n\r\n", "x".repeat(pad));
            plain_request(head.as_bytes(), 256);
        }
        // As many fields as the general path's first attempt holds, and the configured most.
        for (n, max) in [(SMALL_HEADERS, 8), (60, 60), (63, 256)] {
            let head = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(n));
            assert_eq!(plain_request(head.as_bytes(), max).headers.len(), n);
        }
    }

    #[test]
    fn nibble_tables_hold_the_token_bytes() {
        for b in 0..=255u8 {
            let by_nibbles = TOKEN_LO[usize::from(b & 15)] & TOKEN_HI[usize::from(b >> 4)] != 0;
            assert_eq!(by_nibbles, TOKEN[usize::from(b)], "{b:#04x}");
        }
    }

    #[test]
    fn everything_else_takes_the_general_path() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: x\r\n",            // no end yet
            b"GET / HTTP/1.1\r\nHost: x\r\n\r",          // the last LF not here yet
            b"GET / HTTP/1.1\nHost: x\r\n\r\n",          // bare LF
            b"GET / HTTP/1.1\r\nHost: x\n\n",            // bare LF end
            b"GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n",  // fold
            b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",     // bare CR
            b"GET / HTTP/1.1\r\nHost: x\r\n\rX\r\n",     // CR then not LF at the end
            b"GET / HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", // not ASCII
            b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",   // control byte
            b"GET / HTTP/1.1\r\nHost: a\x7fb\r\n\r\n",   // DEL
            b"GET  / HTTP/1.1\r\n\r\n",                  // double space
            b"GET /\tx HTTP/1.1\r\n\r\n",                // HTAB in the target
            b"GET / HTTP/1.1 \r\n\r\n",                  // space after the version
            b"GET / HTTP/2.0\r\n\r\n",                   // not 1.x
            b"GET / http/1.1\r\n\r\n",                   // lower case
            b"GET /\r\n\r\n",                            // no version
            b"G(T / HTTP/1.1\r\n\r\n",                   // method not a token
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",       // field without a colon
            b"GET / HTTP/1.1\r\nName : v\r\n\r\n",       // space before the colon
            b"GET / HTTP/1.1\r\n: v\r\n\r\n",            // empty name
            b"\r\n\r\n",                                 // empty start line
        ];
        for case in cases {
            assert!(request(case, 256).is_none(), "{:?}", case.escape_ascii().to_string());
        }
        let cases: &[&[u8]] = &[
            b"HTTP/1.1  200 OK\r\n\r\n", // double space
            b"HTTP/1.1 200  OK\r\n\r\n", // reason after two spaces
            b"HTTP/1.1 20 OK\r\n\r\n",   // two digits
            b"HTTP/1.1 2000\r\n\r\n",    // four
            b"HTTP/1.1 200OK\r\n\r\n",   // no space
            b"HTTP/2 200\r\n\r\n",       // version
            b"HTTP/1.1 200 OK\r\nA\r\n\r\n",
        ];
        for case in cases {
            assert!(response(case, 256).is_none(), "{:?}", case.escape_ascii().to_string());
        }
        // More fields than both the first attempt and the configured most.
        let head = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(SMALL_HEADERS + 1));
        assert!(request(head.as_bytes(), 8).is_none());
        let head = format!("GET / HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(MAX_LINES));
        assert!(request(head.as_bytes(), 1000).is_none());
    }

    /// Heads built from the grammar this module takes, from pieces that are not plain too.
    fn head(response: bool) -> impl Strategy<Value = Vec<u8>> {
        let token = "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}";
        let value = "[ \t!-~]{0,40}";
        let start = if response {
            ("HTTP/1\\.[01] [0-9]{3}( ([\t!-~][ \t!-~]{0,11})?)?").boxed()
        } else {
            (token, "[!-~]{1,30}", "HTTP/1\\.[01]").prop_map(|(m, t, v)| format!("{m} {t} {v}")).boxed()
        };
        let fields = proptest::collection::vec((token, value), 0..20);
        (start, fields, proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(start, fields, body)| {
            let mut h = start.into_bytes();
            h.extend_from_slice(b"\r\n");
            for (n, v) in fields {
                h.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            h.extend_from_slice(&body);
            h
        })
    }

    /// What can break a head: line ends, whitespace, the colon, control and non-ASCII bytes.
    fn hostile_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            Just(b'\r'),
            Just(b'\n'),
            Just(b' '),
            Just(b'\t'),
            Just(b':'),
            Just(0u8),
            Just(0x7f),
            Just(0x80),
            Just(0xc3),
            Just(b'a')
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn token_runs_are_measured_alike(
            buf in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'Z'), Just(b'-'), Just(b'~'), hostile_byte(), any::<u8>()], 0..80),
            start in any::<proptest::sample::Index>(),
        ) {
            let start = start.index(buf.len() + 1);
            let want = buf[start..].iter().take_while(|&&b| TOKEN[b as usize]).count();
            prop_assert_eq!(token_len(&buf, start), want);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("ssse3") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has SSSE3.
                let got = unsafe { token_len_ssse3(&buf, start) };
                prop_assert_eq!(got, want);
            }
        }

        #[test]
        fn block_classifiers_agree_with_the_definition(block in proptest::collection::vec(prop_oneof![hostile_byte(), any::<u8>()], 32)) {
            let halves: [&[u8; 16]; 2] = [block[..16].try_into().unwrap(), block[16..].try_into().unwrap()];
            let [lo, hi] = halves.map(classify_portable);
            prop_assert_eq!(classify(halves[0]), lo);
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                #[allow(unsafe_code)]
                // SAFETY: the CPU has AVX2.
                let wide = unsafe { classify_avx2(block[..].try_into().unwrap()) };
                let join = |a: u64, b: u64| a | b << 16;
                prop_assert_eq!(wide, Masks { lf: join(lo.lf, hi.lf), cr: join(lo.cr, hi.cr), bad: join(lo.bad, hi.bad) });
            }
        }

        #[test]
        fn generated_plain_heads_are_parsed_here(req in head(false), resp in head(true)) {
            prop_assert!(scan_checked(&req).is_some() && scan_checked(&resp).is_some());
            prop_assert!(request(&req, 256).is_some());
            prop_assert_eq!(request(&req, 256), general_request(&req, 256));
            prop_assert!(response(&resp, 256).is_some());
            prop_assert_eq!(response(&resp, 256), general_response(&resp, 256));
        }

        /// Changed at a few places, cut anywhere: whatever is parsed here is what the general path
        /// gives.
        #[test]
        fn broken_heads_are_left_alone_or_parsed_alike(
            req in head(false),
            resp in head(true),
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), hostile_byte(), any::<bool>()), 1..4),
            cut in any::<proptest::sample::Index>(),
        ) {
            for (mut buf, is_response) in [(req, false), (resp, true)] {
                for (at, byte, insert) in &edits {
                    let i = at.index(buf.len());
                    if *insert { buf.insert(i, *byte) } else { buf[i] = *byte }
                }
                for buf in [&buf[..], &buf[..cut.index(buf.len() + 1)]] {
                    scan_checked(buf);
                    if is_response {
                        if let Some(got) = response(buf, 256) {
                            prop_assert_eq!(Some(got), general_response(buf, 256));
                        }
                    } else if let Some(got) = request(buf, 256) {
                        prop_assert_eq!(Some(got), general_request(buf, 256));
                    }
                }
            }
        }
    }
}
