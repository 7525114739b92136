//! Request and response heads: locating the end of a head in a stream, and parsing it with
//! httparse, falling back to a lenient parser for what real traffic contains but httparse
//! rejects (lower-case versions, missing reason phrases, stray bytes), flagged as anomalies.

use super::body::split_field;
use crate::exchange::{Anomaly, Headers, Version};
use std::mem::MaybeUninit;

/// Methods accepted when looking for the start of a request in the middle of a stream. Any
/// token is accepted as a method on a stream that is in sync.
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "CONNECT",
    "TRACE",
    "QUERY",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
    "PURGE",
    "TRACK",
];

/// Header slots tried on the stack before the configured maximum.
pub(crate) const SMALL_HEADERS: usize = 48;

/// Where a head ends: the index just past the blank line (`\n\r\n` or `\n\n`), searching
/// from `from`.
pub(crate) fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    find_end_with_endings(buf, from).map(|(end, _)| end)
}

/// Line-ending facts of a head: whether some `\n` is followed by SP or HTAB (a possible
/// obs-fold), and whether some `\n` has no `\r` before it (a bare LF).
pub(crate) type LineEndings = (bool, bool);

/// [`find_end`], and the [`LineEndings`] of `buf[..end]` when they were taken to find it.
///
/// Substring searches (SIMD, prebuilt finders) rather than a `memchr` per line: a head has ~15
/// lines, and each call's set-up cost more than its scan. The first `\n\r\n` ends the head
/// unless a `\n\n` comes before it, which needs a bare LF before it: the line-ending scan of
/// the head up to there (which parsing the head needs anyway, and is given) says whether to
/// search for one. Before, every head was searched twice.
pub(crate) fn find_end_with_endings(buf: &[u8], from: usize) -> Option<(usize, Option<LineEndings>)> {
    use std::sync::LazyLock;
    static CRLF: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new(b"\n\r\n"));
    static LF: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));
    let rest = buf.get(from..)?;
    let Some(crlf) = CRLF.find(rest).map(|at| at + 3) else {
        return LF.find(rest).map(|at| (from + at + 2, None));
    };
    let endings = line_endings(&buf[..from + crlf]);
    if !endings.1 {
        // No bare LF before the CRLF end: no `\n\n` either (its second `\n` would be one).
        return Some((from + crlf, Some(endings)));
    }
    // A `\n\n` inside `rest[..crlf]` ends before the CRLF end (they never tie: both start
    // with the same `\n`), so it is the end when there is one.
    match LF.find(&rest[..crlf]) {
        Some(at) => Some((from + at + 2, None)),
        None => Some((from + crlf, Some(endings))),
    }
}

/// Line-ending facts of a head, in one pass over byte pairs that LLVM vectorizes (a fold
/// without early exit): whether some `\n` is followed by SP or HTAB (a possible obs-fold,
/// confirmed by [`unfold`]), and whether some `\n` has no `\r` before it (a bare LF).
fn line_endings(head: &[u8]) -> (bool, bool) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, all the function is compiled for.
        #[allow(unsafe_code)]
        return unsafe { line_endings_avx2(head) };
    }
    line_endings_of(head)
}

/// [`line_endings`] compiled for AVX2: the same fold, 32 byte pairs a step instead of 16 (the
/// build's baseline is SSE2; about half the instructions on a head).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn line_endings_avx2(head: &[u8]) -> (bool, bool) {
    line_endings_of(head)
}

#[inline(always)]
fn line_endings_of(head: &[u8]) -> (bool, bool) {
    let Some(tail) = head.get(1..) else {
        return (false, head.first() == Some(&b'\n'));
    };
    head.iter().zip(tail).fold((false, head[0] == b'\n'), |(fold, bare), (&x, &y)| {
        (fold | ((x == b'\n') & ((y == b' ') | (y == b'\t'))), bare | ((y == b'\n') & (x != b'\r')))
    })
}

/// The head with obs-folds replaced (when it has any) and whether it has a bare LF; `known`:
/// the head's [`LineEndings`] when they were taken already.
fn normalize(raw: &[u8], known: Option<LineEndings>) -> (Option<Vec<u8>>, bool) {
    let (maybe_fold, bare) = known.unwrap_or_else(|| line_endings(raw));
    match maybe_fold.then(|| unfold(raw)).flatten() {
        Some(unfolded) => {
            let bare = line_endings(&unfolded).1;
            (Some(unfolded), bare)
        }
        None => (None, bare),
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether `buf` can be the start of a request line: a method token then a space. `None` when
/// more bytes are needed to tell.
pub fn looks_like_request(buf: &[u8], known_only: bool) -> Option<bool> {
    let tok = buf.iter().take_while(|b| is_tchar(**b)).count();
    if tok == buf.len() {
        return if tok > 32 { Some(false) } else { None };
    }
    if tok == 0 || !matches!(buf[tok], b' ' | b'\t') {
        return Some(false);
    }
    if known_only {
        let m = &buf[..tok];
        return Some(KNOWN_METHODS.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(m)));
    }
    Some(true)
}

/// Whether `buf` can be the start of a status line (`HTTP/`, any case). `None` when too short.
pub fn looks_like_response(buf: &[u8]) -> Option<bool> {
    let n = buf.len().min(5);
    if !buf[..n].eq_ignore_ascii_case(&b"HTTP/"[..n]) {
        return Some(false);
    }
    (n == 5).then_some(true)
}

/// Offset of the first line start in `buf` (0 or after a `\n`) where `pred` says a message
/// starts, with the candidate line complete or at least 16 bytes long.
pub(crate) fn find_resync(buf: &[u8], pred: impl Fn(&[u8]) -> Option<bool>) -> Result<usize, usize> {
    let mut start = 0;
    loop {
        let line = &buf[start..];
        match pred(line) {
            Some(true) => return Ok(start),
            None => return Err(start), // keep from here: may become a start
            Some(false) => {}
        }
        match memchr::memchr(b'\n', line) {
            Some(nl) => start += nl + 1,
            None => return Err(buf.len()),
        }
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq)]
pub(crate) struct RequestHead {
    pub method: String,
    pub target: String,
    pub version: Version,
    pub headers: Headers,
    pub anomalies: Vec<Anomaly>,
}

/// A parsed response head.
#[derive(Debug, PartialEq)]
pub(crate) struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub anomalies: Vec<Anomaly>,
}

/// If the head uses obsolete line folding, returns it unfolded (RFC 9112 §5.2: replace each
/// obs-fold with SP).
fn unfold(head: &[u8]) -> Option<Vec<u8>> {
    let folded = memchr::memchr_iter(b'\n', head).any(|i| {
        matches!(head.get(i + 1), Some(b' ' | b'\t')) && !matches!(head.get(i + 2), None | Some(b'\r' | b'\n'))
    });
    if !folded {
        return None;
    }
    let mut out = Vec::with_capacity(head.len());
    let mut i = 0;
    while i < head.len() {
        let b = head[i];
        let fold = if b == b'\r' && head.get(i + 1) == Some(&b'\n') { 2 } else { usize::from(b == b'\n') };
        if fold > 0 && i > 0 && matches!(head.get(i + fold), Some(b' ' | b'\t')) {
            // The fold and the whitespace around it become one SP.
            while out.last().is_some_and(|c| matches!(c, b' ' | b'\t')) {
                out.pop();
            }
            out.push(b' ');
            i += fold;
            while matches!(head.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

fn version_of(minor: u8) -> Version {
    if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    }
}

fn lossy(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// Owned fields of a parsed head. Values are validated as UTF-8 once for the whole head (one
/// call instead of one per value, which cost more than copying them) and sliced from it.
fn convert(head: &[u8], headers: &[httparse::Header<'_>]) -> Headers {
    // One SIMD check of the whole head (std's is a word at a time); the head is then kept
    // whole and each field found in it by offsets (httparse's slices point into `head`).
    if let Ok(text) = simdutf8::basic::from_utf8(head) {
        let base = head.as_ptr() as usize;
        let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base);
        let spans = headers.iter().map(|h| {
            let value = h.value.trim_ascii();
            let (n, v) = (at(h.name.as_bytes()), at(value));
            [n, n.wrapping_add(h.name.len()), v, v.wrapping_add(value.len())]
        });
        // `from_head` checks every span (a wrong offset would wrap far out of bounds).
        if let Some(fields) = Headers::from_head(text, spans) {
            return fields;
        }
    }
    // Not UTF-8 (rare): the fields one by one, values converted lossily.
    let bytes = headers.iter().map(|h| h.name.len() + h.value.len()).sum();
    let mut out = Headers::with_capacity(headers.len(), bytes);
    for h in headers {
        out.push(h.name, &String::from_utf8_lossy(h.value.trim_ascii()));
    }
    out
}

/// Splits a start line into at most three whitespace-separated parts (the third keeps its spaces).
fn split3(line: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let line = line.trim_ascii();
    let mut it = line.splitn(2, |b| b.is_ascii_whitespace());
    let a = it.next().unwrap_or_default();
    let rest = it.next().unwrap_or_default().trim_ascii_start();
    let mut it = rest.splitn(2, |b| b.is_ascii_whitespace());
    let b = it.next().unwrap_or_default();
    let c = it.next().unwrap_or_default().trim_ascii();
    (a, b, c)
}

/// Parses `HTTP/x.y` leniently (any case).
fn parse_version(v: &[u8]) -> Option<Version> {
    if v.len() < 6 || !v[..5].eq_ignore_ascii_case(b"HTTP/") {
        return None;
    }
    match &v[5..] {
        b"1.1" => Some(Version::Http11),
        b"1.0" => Some(Version::Http10),
        b"0.9" => Some(Version::Http09),
        // Other versions (2.0 sent as text, 1.2, ...) are framed as HTTP/1.1.
        _ => Some(Version::Http11),
    }
}

/// The lenient header block parser: `name: value` lines, others skipped.
fn lenient_fields(block: &[u8], max_headers: usize) -> Headers {
    let mut out = Headers::new();
    let fields = block
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .filter_map(split_field)
        .take(max_headers);
    for (name, value) in fields {
        out.push(&name, &value);
    }
    out
}

fn first_line(head: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b'\n', head) {
        Some(i) => (&head[..i], &head[i + 1..]),
        None => (head, &[]),
    }
}

/// If the first line of `buf` is an HTTP/0.9 request line (`METHOD target`, no version), the
/// length of that line including its terminator.
pub(crate) fn http09_request_line(buf: &[u8]) -> Option<usize> {
    let nl = memchr::memchr(b'\n', buf)?;
    let (m, t, v) = split3(&buf[..nl]);
    let known = KNOWN_METHODS.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(m));
    (known && v.is_empty() && !t.is_empty() && parse_version(t).is_none()).then_some(nl + 1)
}

/// Parses a complete request head (ending with its blank line).
pub(crate) fn parse_request(raw: &[u8], max_headers: usize, endings: Option<LineEndings>) -> Option<RequestHead> {
    let mut anomalies = Vec::new();
    let (unfolded, bare_lf) = normalize(raw, endings);
    if unfolded.is_some() {
        anomalies.push(Anomaly::ObsoleteLineFolding);
    }
    let head = unfolded.as_deref().unwrap_or(raw);
    if bare_lf {
        anomalies.push(Anomaly::BareLf);
    }
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_request_line_delimiters(true);
    cfg.ignore_invalid_headers_in_requests(true);
    // Most heads fit the stack array; the configured maximum is tried only when they do not.
    // Left uninitialized: httparse writes the fields it returns (initializing the array cost
    // ~1.5 KB of stores per head).
    let mut small = [MaybeUninit::<httparse::Header<'_>>::uninit(); SMALL_HEADERS];
    let mut large;
    let mut storage: &mut [MaybeUninit<httparse::Header<'_>>] = &mut small;
    for attempt in 0..2 {
        let mut req = httparse::Request::new(&mut []);
        match cfg.parse_request_with_uninit_headers(&mut req, head, storage) {
            Ok(httparse::Status::Complete(_)) => {
                let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
                    return None;
                };
                return Some(RequestHead {
                    method: method.to_string(),
                    target: path.to_string(),
                    version: version_of(minor),
                    headers: convert(head, req.headers),
                    anomalies,
                });
            }
            Err(httparse::Error::TooManyHeaders) if attempt == 0 && max_headers > SMALL_HEADERS => {
                large = vec![MaybeUninit::uninit(); max_headers];
                storage = &mut large;
            }
            _ => break,
        }
    }
    // Lenient: `METHOD target VERSION` with any case and spacing; fields line by line.
    let (line, block) = first_line(head);
    let line = line.trim_ascii();
    let (m, t, _) = split3(line);
    if m.is_empty() || !m.iter().all(|b| is_tchar(*b)) {
        return None;
    }
    let known = KNOWN_METHODS.iter().any(|k| k.as_bytes().eq_ignore_ascii_case(m));
    // The version is the last word; the target is everything between method and version
    // (targets with spaces occur in the wild: `CONNECT host:25 / HTTP/1.0`).
    let rest = line[m.len()..].trim_ascii();
    let (last_start, last) = match rest.iter().rposition(|b| b.is_ascii_whitespace()) {
        Some(i) => (i + 1, &rest[i + 1..]),
        None => (0, rest),
    };
    let (target, version) = match parse_version(last) {
        Some(v) => (rest[..last_start].trim_ascii(), v),
        // No version: HTTP/0.9, only with a method that exists (Zeek rejects `T /x`).
        None if known && !t.is_empty() => (rest, Version::Http09),
        None => return None,
    };
    if !known && target.is_empty() {
        return None;
    }
    anomalies.push(Anomaly::MalformedHead);
    if target.is_empty() {
        anomalies.push(Anomaly::MissingUri);
    }
    Some(RequestHead {
        method: lossy(m).to_ascii_uppercase(),
        target: lossy(target.trim_ascii()),
        version,
        headers: lenient_fields(block, max_headers),
        anomalies,
    })
}

/// Parses a complete response head.
pub(crate) fn parse_response(raw: &[u8], max_headers: usize, endings: Option<LineEndings>) -> Option<ResponseHead> {
    let mut anomalies = Vec::new();
    // (A bare LF is flagged in requests only.)
    let (unfolded, _) = normalize(raw, endings);
    if unfolded.is_some() {
        anomalies.push(Anomaly::ObsoleteLineFolding);
    }
    let head = unfolded.as_deref().unwrap_or(raw);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_responses(true);
    let mut small = [MaybeUninit::<httparse::Header<'_>>::uninit(); SMALL_HEADERS];
    let mut large;
    let mut storage: &mut [MaybeUninit<httparse::Header<'_>>] = &mut small;
    for attempt in 0..2 {
        let mut resp = httparse::Response::new(&mut []);
        match cfg.parse_response_with_uninit_headers(&mut resp, head, storage) {
            Ok(httparse::Status::Complete(_)) => {
                if let (Some(code), Some(minor)) = (resp.code, resp.version) {
                    return Some(ResponseHead {
                        version: version_of(minor),
                        status: code,
                        reason: resp.reason.unwrap_or_default().to_string(),
                        headers: convert(head, resp.headers),
                        anomalies,
                    });
                }
                break;
            }
            Err(httparse::Error::TooManyHeaders) if attempt == 0 && max_headers > SMALL_HEADERS => {
                large = vec![MaybeUninit::uninit(); max_headers];
                storage = &mut large;
            }
            _ => break,
        }
    }
    let (line, block) = first_line(head);
    let (v, code, reason) = split3(line);
    let version = parse_version(v)?;
    let digits: &[u8] = &code[..code.iter().take_while(|b| b.is_ascii_digit()).count()];
    let status = std::str::from_utf8(digits).ok()?.parse::<u16>().ok()?;
    anomalies.push(Anomaly::MalformedHead);
    Some(ResponseHead {
        version,
        status,
        reason: lossy(reason),
        headers: lenient_fields(block, max_headers),
        anomalies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-line definitions the vectorized scans replace.
    fn find_end_by_lines(buf: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        while let Some(nl) = memchr::memchr(b'\n', &buf[i..]) {
            let at = i + nl;
            match buf.get(at + 1) {
                Some(b'\n') => return Some(at + 2),
                Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
                Some(_) => i = at + 1,
                None => return None,
            }
        }
        None
    }

    fn bare_lf_by_lines(head: &[u8]) -> bool {
        memchr::memchr_iter(b'\n', head).any(|i| i == 0 || head[i - 1] != b'\r')
    }

    proptest::proptest! {
        #[test]
        fn scans_agree_with_the_line_by_line_definitions(
            buf in proptest::collection::vec(proptest::sample::select(b"\r\n \ta:".to_vec()), 0..200),
            from in 0usize..200,
        ) {
            let from = from.min(buf.len());
            proptest::prop_assert_eq!(find_end(&buf, from), find_end_by_lines(&buf, from));
            // The line endings given with an end are those of the head up to it.
            if let Some((end, Some(endings))) = find_end_with_endings(&buf, from) {
                proptest::prop_assert_eq!(endings, line_endings(&buf[..end]));
            }
            let (unfolded, bare) = normalize(&buf, None);
            proptest::prop_assert_eq!(&unfolded, &unfold(&buf));
            proptest::prop_assert_eq!(bare, bare_lf_by_lines(unfolded.as_deref().unwrap_or(&buf)));
            // The build's baseline and the AVX2 build of the scan (where the CPU has it) agree.
            proptest::prop_assert_eq!(line_endings_of(&buf), line_endings(&buf));
        }
    }

    macro_rules! req {
        ($raw:expr, |$r:ident| $body:block) => {{
            let $r = parse_request($raw, 64, None).expect("parses");
            $body
        }};
    }

    #[test]
    fn end_of_head_with_crlf_lf_and_mixed() {
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nxx", 0), Some(24));
        assert_eq!(find_end(b"GET / HTTP/1.1\nA: b\n\nxx", 0), Some(21));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nA: b\n\r\n", 0), Some(23));
        assert_eq!(find_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
        assert_eq!(find_end(b"\n\n", 0), Some(2));
        assert_eq!(find_end(b"\n\r\n", 1), None);
        assert_eq!(find_end(b"A\r\n\r\n", 9), None);
    }

    #[test]
    fn strict_and_lenient_requests() {
        req!(b"GET /a?b HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", |r| {
            assert_eq!((r.method.as_str(), r.target.as_str(), r.version), ("GET", "/a?b", Version::Http11));
            assert_eq!(r.headers.len(), 2);
            assert!(r.anomalies.is_empty());
        });
        req!(b"get /index.html http/1.1\r\nHost: x\r\n\r\n", |r| {
            assert_eq!((r.method.as_str(), r.version), ("GET", Version::Http11));
            assert!(r.anomalies.contains(&Anomaly::MalformedHead));
        });
        req!(b"GET HTTP/1.1\r\nHost: x\r\n\r\n", |r| {
            assert_eq!(r.target, "");
            assert!(r.anomalies.contains(&Anomaly::MissingUri));
        });
        req!(b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", |r| {
            assert!(r.anomalies.contains(&Anomaly::ObsoleteLineFolding));
            assert_eq!(r.headers.get(0).map(|h| h.value), Some("chunked"));
        });
        assert!(parse_request(b"\x16\x03\x01\x02\x00\r\n\r\n", 64, None).is_none());
    }

    #[test]
    fn responses_strict_lenient_and_garbage() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 64, None).expect("parses");
        assert_eq!((r.status, r.reason.as_str(), r.version), (200, "OK", Version::Http11));
        let r = parse_response(b"http/1.0 404\r\nX: y\r\n\r\n", 64, None).expect("parses");
        assert_eq!((r.status, r.version), (404, Version::Http10));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", 64, None).is_none());
    }

    /// Heads around the stack array's size and the configured maximum: every field of a head
    /// up to the maximum comes back in order (the stack array, then the configured one);
    /// past it, the lenient parser keeps the first `max` and flags the head.
    #[test]
    fn heads_with_many_fields() {
        for n in [0, 1, SMALL_HEADERS - 1, SMALL_HEADERS, SMALL_HEADERS + 1, 100, 101, 150] {
            let fields: String = (0..n).map(|i| format!("X-F{i}: v{i}\r\n")).collect();
            let req = format!("GET / HTTP/1.1\r\n{fields}\r\n");
            let resp = format!("HTTP/1.1 200 OK\r\n{fields}\r\n");
            for max in [64, 100] {
                let want: Vec<(String, String)> =
                    (0..n.min(max)).map(|i| (format!("X-F{i}"), format!("v{i}"))).collect();
                let r = parse_request(req.as_bytes(), max, None).expect("parses");
                let s = parse_response(resp.as_bytes(), max, None).expect("parses");
                for (headers, anomalies) in [(&r.headers, &r.anomalies), (&s.headers, &s.anomalies)] {
                    let got: Vec<(String, String)> =
                        headers.iter().map(|h| (h.name.to_string(), h.value.to_string())).collect();
                    assert_eq!(got, want, "{n} fields, max {max}");
                    assert_eq!(anomalies.contains(&Anomaly::MalformedHead), n > max, "{n} fields, max {max}");
                }
            }
        }
    }

    #[test]
    fn message_start_detection() {
        assert_eq!(looks_like_request(b"GET /", false), Some(true));
        assert_eq!(looks_like_request(b"GE", false), None);
        assert_eq!(looks_like_request(b"\x16\x03", false), Some(false));
        assert_eq!(looks_like_request(b"FOO /", true), Some(false));
        assert_eq!(looks_like_response(b"HTT"), None);
        assert_eq!(looks_like_response(b"http/1.1 200"), Some(true));
        assert_eq!(find_resync(b"garbage\r\nmore\nPOST / HTTP/1.1\r\n", |l| { looks_like_request(l, true) }), Ok(14));
        assert_eq!(http09_request_line(b"GET /x\r\n"), Some(8));
        assert_eq!(http09_request_line(b"GET /x HTTP/1.0\r\n"), None);
    }
}
