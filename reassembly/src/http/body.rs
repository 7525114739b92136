//! Message body framing (RFC 9112 §6 and §7.1): Content-Length, chunked, or until close.
//!
//! The reader is a stream parser: it consumes what it can of each input and answers
//! [`Step::NeedMore`], [`Step::Done`] or [`Step::Error`]. Every line it buffers (chunk-size
//! lines, trailers) has a cap, so an endless partial line turns into an error.

use crate::exchange::{Anomaly, Headers};
use std::borrow::Cow;

/// Longest chunk-size line (size + extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted.
const MAX_TRAILER_BYTES: usize = 16 << 10;

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the sender closes the connection.
    Close,
}

#[derive(Debug)]
enum Chunk {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// Inside chunk data.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd(Vec<u8>),
    /// Reading trailer fields after the last chunk.
    Trailers(Vec<u8>),
}

#[derive(Debug)]
enum Mode {
    Length(u64),
    Chunked(Chunk),
    Close,
    Done,
}

/// Outcome of feeding bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The body needs more bytes.
    NeedMore,
    /// The body is complete; bytes after the consumed count belong to the next message.
    Done,
    /// Framing is broken; the body ends here, the stream needs to resynchronize.
    Error(Anomaly),
}

/// The de-chunked body bytes, kept up to a cap.
#[derive(Debug, Default)]
pub(crate) struct BodyAcc {
    pub data: Vec<u8>,
    /// De-chunked bytes seen, including those past the cap and those lost in gaps.
    pub wire_len: u64,
    /// Bytes not kept (cap or gap).
    pub missing: u64,
    pub cap: usize,
}

impl BodyAcc {
    pub(crate) fn new(cap: usize) -> Self {
        BodyAcc { cap, ..BodyAcc::default() }
    }

    /// Sizes the buffer once for a body of known length (bounded by the cap), so a large body
    /// is not copied again and again as it grows.
    pub(crate) fn expect(&mut self, len: u64) {
        self.data.reserve(len.min(self.cap as u64).min(1 << 20) as usize);
    }

    /// Makes room for `len` more bytes of a body that arrives in pieces of announced length
    /// (chunks), within the cap: one growth per chunk at most, instead of one per packet.
    pub(crate) fn expect_more(&mut self, len: u64) {
        let room = self.cap.saturating_sub(self.data.len());
        self.data.reserve(len.min(room as u64).min(1 << 20) as usize);
    }

    fn push(&mut self, bytes: &[u8]) -> u64 {
        self.wire_len += bytes.len() as u64;
        let room = self.cap.saturating_sub(self.data.len());
        let keep = room.min(bytes.len());
        // Once a gap happened, later bytes would be stitched onto a hole: count, don't keep.
        if self.missing == 0 || keep == 0 {
            self.data.extend_from_slice(&bytes[..keep]);
            let over = (bytes.len() - keep) as u64;
            self.missing += over;
            over
        } else {
            self.missing += bytes.len() as u64;
            0
        }
    }

    pub(crate) fn gap(&mut self, n: u64) {
        self.wire_len += n;
        self.missing += n;
    }
}

/// Body reader state.
#[derive(Debug)]
pub(crate) struct BodyReader {
    mode: Mode,
    /// Bytes past the body cap (for the counter).
    pub over_cap: u64,
}

impl BodyReader {
    pub(crate) fn new(framing: Framing) -> Self {
        let mode = match framing {
            Framing::Empty | Framing::Length(0) => Mode::Done,
            Framing::Length(n) => Mode::Length(n),
            Framing::Chunked => Mode::Chunked(Chunk::Size(Vec::new())),
            Framing::Close => Mode::Close,
        };
        BodyReader { mode, over_cap: 0 }
    }

    /// Whether the body is complete without further input.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.mode, Mode::Done)
    }

    /// Feeds bytes; returns how many were consumed and the step.
    pub(crate) fn feed(&mut self, input: &[u8], acc: &mut BodyAcc, trailers: &mut Headers) -> (usize, Step) {
        let mut pos = 0;
        loop {
            match &mut self.mode {
                Mode::Done => return (pos, Step::Done),
                Mode::Length(rem) => {
                    let n = (*rem).min((input.len() - pos) as u64) as usize;
                    self.over_cap += acc.push(&input[pos..pos + n]);
                    pos += n;
                    *rem -= n as u64;
                    if *rem == 0 {
                        self.mode = Mode::Done;
                        continue;
                    }
                    return (pos, Step::NeedMore);
                }
                Mode::Close => {
                    self.over_cap += acc.push(&input[pos..]);
                    return (input.len(), Step::NeedMore);
                }
                Mode::Chunked(c) => {
                    if pos == input.len() {
                        return (pos, Step::NeedMore);
                    }
                    let cap = if matches!(c, Chunk::Trailers(_)) { MAX_TRAILER_BYTES } else { MAX_CHUNK_LINE };
                    match c {
                        Chunk::Data(rem) => {
                            let n = (*rem).min((input.len() - pos) as u64) as usize;
                            self.over_cap += acc.push(&input[pos..pos + n]);
                            pos += n;
                            *rem -= n as u64;
                            if *rem == 0 {
                                *c = Chunk::DataEnd(Vec::new());
                            }
                        }
                        Chunk::Size(line) | Chunk::DataEnd(line) | Chunk::Trailers(line) => {
                            let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                                line.extend_from_slice(&input[pos..]);
                                if line.len() > cap {
                                    self.mode = Mode::Done;
                                    return (input.len(), Step::Error(Anomaly::BadChunkSize));
                                }
                                return (input.len(), Step::NeedMore);
                            };
                            // A line within this input is parsed where it is; only one that
                            // started in an earlier input was collected (an allocation per
                            // chunk otherwise).
                            let collected;
                            let text: &[u8] = if line.is_empty() {
                                &input[pos..pos + nl]
                            } else {
                                line.extend_from_slice(&input[pos..pos + nl]);
                                collected = std::mem::take(line);
                                &collected
                            };
                            pos += nl + 1;
                            let text = text.strip_suffix(b"\r").unwrap_or(text);
                            match c {
                                Chunk::Size(_) => match parse_chunk_size(text) {
                                    Some(0) => *c = Chunk::Trailers(Vec::new()),
                                    Some(n) => {
                                        acc.expect_more(n);
                                        *c = Chunk::Data(n);
                                    }
                                    None => {
                                        self.mode = Mode::Done;
                                        return (pos, Step::Error(Anomaly::BadChunkSize));
                                    }
                                },
                                Chunk::DataEnd(_) => {
                                    if text.is_empty() {
                                        *c = Chunk::Size(Vec::new());
                                    } else if let Some(n) = parse_chunk_size(text) {
                                        // A missing CRLF after the data, tolerated: this line
                                        // is already the next chunk size.
                                        *c = if n == 0 { Chunk::Trailers(Vec::new()) } else { Chunk::Data(n) };
                                    } else {
                                        self.mode = Mode::Done;
                                        return (pos, Step::Error(Anomaly::BadChunkSize));
                                    }
                                }
                                Chunk::Trailers(_) => {
                                    if text.is_empty() {
                                        self.mode = Mode::Done;
                                        return (pos, Step::Done);
                                    }
                                    if let Some((name, value)) = split_field(text) {
                                        trailers.push(&name, &value);
                                    }
                                    *c = Chunk::Trailers(Vec::new());
                                }
                                Chunk::Data(_) => {}
                            }
                        }
                    }
                }
            }
        }
    }

    /// `n` bytes of the stream were lost. Returns how many of them belonged to this body, or
    /// `None` when the framing cannot continue (the body ends; the stream must resynchronize).
    pub(crate) fn gap(&mut self, n: u64, acc: &mut BodyAcc) -> Option<u64> {
        match &mut self.mode {
            Mode::Length(rem) => {
                let take = n.min(*rem);
                acc.gap(take);
                *rem -= take;
                if *rem == 0 {
                    self.mode = Mode::Done;
                }
                (take == n).then_some(take)
            }
            Mode::Close => {
                acc.gap(n);
                Some(n)
            }
            Mode::Chunked(Chunk::Data(rem)) if n < *rem => {
                acc.gap(n);
                *rem -= n;
                Some(n)
            }
            _ => {
                self.mode = Mode::Done;
                None
            }
        }
    }

    /// The stream ended. True when the body is complete (close-delimited or already done).
    pub(crate) fn end(&mut self) -> bool {
        let complete = matches!(self.mode, Mode::Done | Mode::Close);
        self.mode = Mode::Done;
        complete
    }
}

/// Parses a chunk-size line: hex digits, optional whitespace and `;ext`. `None` when not hex or
/// larger than `u64`.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.trim_ascii_start();
    let end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
    if end == 0 {
        return None;
    }
    let rest = line[end..].trim_ascii_start();
    if !(rest.is_empty() || rest[0] == b';') {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &line[..end] {
        let d = (b as char).to_digit(16)?;
        v = v.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// Splits `name: value`.
pub(crate) fn split_field(line: &[u8]) -> Option<(Cow<'_, str>, Cow<'_, str>)> {
    let colon = memchr::memchr(b':', line)?;
    let name = line[..colon].trim_ascii();
    if name.is_empty() {
        return None;
    }
    Some((String::from_utf8_lossy(name), String::from_utf8_lossy(line[colon + 1..].trim_ascii())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(framing: Framing, parts: &[&[u8]]) -> (Vec<u8>, Step, usize, Headers) {
        let mut r = BodyReader::new(framing);
        let mut acc = BodyAcc::new(1 << 20);
        let mut tr = Headers::new();
        let mut last = (0, Step::NeedMore);
        for p in parts {
            last = r.feed(p, &mut acc, &mut tr);
            if last.1 != Step::NeedMore {
                break;
            }
        }
        (acc.data, last.1, last.0, tr)
    }

    #[test]
    fn chunked_with_extensions_trailers_and_split_input() {
        let (d, s, used, tr) = read_all(
            Framing::Chunked,
            &[b"5;name=val\r\nhel", b"lo\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n", b"\r\nGET /next"],
        );
        assert_eq!(d, b"hello world");
        assert_eq!(s, Step::Done);
        assert_eq!(used, 2);
        assert_eq!(tr, [("X-Sum", "1")].into_iter().collect::<Headers>());
    }

    #[test]
    fn chunked_body_split_anywhere_reads_the_same() {
        // Lines split inside their CRLF, inside the size, inside an extension or a trailer take
        // the collecting path; whole lines are parsed in place.
        let msg: &[u8] = b"5;ext=\"a\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nX-B: 2\r\n\r\n";
        let body = [&b"hello"[..], b"abcdefghijklmnopqrstuvwxyz"].concat();
        for i in 0..=msg.len() {
            for j in i..=msg.len() {
                let mut r = BodyReader::new(Framing::Chunked);
                let mut acc = BodyAcc::new(1 << 20);
                let mut tr = Headers::new();
                let mut consumed = 0;
                let mut step = Step::NeedMore;
                for part in [&msg[..i], &msg[i..j], &msg[j..]] {
                    let (used, s) = r.feed(part, &mut acc, &mut tr);
                    consumed += used;
                    step = s;
                    if s != Step::NeedMore {
                        break;
                    }
                }
                assert_eq!((step, consumed), (Step::Done, msg.len()), "cut at {i}, {j}");
                assert_eq!(acc.data, body, "cut at {i}, {j}");
                assert_eq!(tr, [("X-Sum", "1"), ("X-B", "2")].into_iter().collect::<Headers>(), "cut at {i}, {j}");
            }
        }
    }

    #[test]
    fn chunk_size_overflow_and_garbage_are_errors() {
        for bad in [&b"10000000000000000\r\n"[..], b"zz\r\n", b"-1\r\n", b"\r\n"] {
            let (_, s, _, _) = read_all(Framing::Chunked, &[bad]);
            assert_eq!(s, Step::Error(Anomaly::BadChunkSize), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn endless_chunk_line_is_capped() {
        let long = vec![b'1'; MAX_CHUNK_LINE + 10];
        let (_, s, _, _) = read_all(Framing::Chunked, &[&long]);
        assert_eq!(s, Step::Error(Anomaly::BadChunkSize));
    }

    #[test]
    fn length_framing_stops_at_length() {
        let (d, s, used, _) = read_all(Framing::Length(3), &[b"abcdef"]);
        assert_eq!((d.as_slice(), s, used), (&b"abc"[..], Step::Done, 3));
    }

    #[test]
    fn cap_keeps_prefix_and_counts_rest() {
        let mut r = BodyReader::new(Framing::Length(10));
        let mut acc = BodyAcc::new(4);
        let _ = r.feed(b"0123456789", &mut acc, &mut Headers::new());
        assert_eq!(acc.data, b"0123");
        assert_eq!((acc.wire_len, acc.missing, r.over_cap), (10, 6, 6));
    }

    #[test]
    fn gap_inside_length_body_is_absorbed_and_beyond_breaks() {
        let mut r = BodyReader::new(Framing::Length(10));
        let mut acc = BodyAcc::new(100);
        assert_eq!(r.gap(4, &mut acc), Some(4));
        assert_eq!(r.gap(10, &mut acc), None);
        assert!(r.is_done());
        assert_eq!(acc.wire_len, 10);
    }
}
