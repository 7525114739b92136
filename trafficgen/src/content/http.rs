//! HTTP/1.1 message syntax (RFC 9112): start lines, header fields, and the three body framings
//! (Content-Length, chunked with optional extensions and trailers, close-delimited).

use super::json::{push_hex, push_u64};
use crate::rng::Rng;

/// One direction's bytes for the current flight, plus the offsets where the sender flushed
/// (end of headers, end of a chunk or event, end of a message): a segment may end there.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub data: Vec<u8>,
    pub breaks: Vec<u32>,
}

impl Stream {
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.breaks.clear();
    }

    pub(crate) fn mark_break(&mut self) {
        self.breaks.push(self.data.len() as u32);
    }
}

/// Writes `Name: value\r\n`, with the name in lower case when `lower` (some clients, e.g.
/// Node's undici, send lower-case names on HTTP/1.1; field names are case-insensitive).
pub(crate) fn header(buf: &mut Vec<u8>, lower: bool, name: &str, value: &[u8]) {
    if lower {
        buf.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        buf.extend_from_slice(name.as_bytes());
    }
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Writes `Name: <decimal>\r\n`.
pub(crate) fn header_num(buf: &mut Vec<u8>, lower: bool, name: &str, value: u64) {
    if lower {
        buf.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        buf.extend_from_slice(name.as_bytes());
    }
    buf.extend_from_slice(b": ");
    push_u64(buf, value);
    buf.extend_from_slice(b"\r\n");
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

/// `HTTP/1.1 200 OK\r\n`
pub(crate) fn status_line(buf: &mut Vec<u8>, status: u16) {
    buf.extend_from_slice(b"HTTP/1.1 ");
    push_u64(buf, u64::from(status));
    buf.push(b' ');
    buf.extend_from_slice(reason(status).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// `Date: Mon, 03 Jun 2024 09:00:00 GMT\r\n` (IMF-fixdate, RFC 9110 §5.6.7).
pub(crate) fn date_header(buf: &mut Vec<u8>, unix_secs: u64) {
    const DAYS: [&[u8]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    buf.extend_from_slice(b"Date: ");
    buf.extend_from_slice(DAYS[(days % 7) as usize]);
    buf.extend_from_slice(b", ");
    push2(buf, d as u64);
    buf.push(b' ');
    buf.extend_from_slice(MONTHS[(m - 1) as usize]);
    buf.push(b' ');
    push_u64(buf, y as u64);
    buf.push(b' ');
    push2(buf, secs / 3600);
    buf.push(b':');
    push2(buf, secs / 60 % 60);
    buf.push(b':');
    push2(buf, secs % 60);
    buf.extend_from_slice(b" GMT\r\n");
}

fn push2(buf: &mut Vec<u8>, n: u64) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// How a chunked body is cut into chunks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ChunkPlan<'a> {
    /// Fixed-size chunks, as a server flushing a fixed buffer does (4 or 8 KiB).
    Fixed(usize),
    /// Random sizes, skewed small, as an application flushing as it goes.
    Random,
    /// Exactly these sizes (one per SSE event).
    Exact(&'a [usize]),
}

/// Writes `body` with `Transfer-Encoding: chunked` framing (RFC 9112 §7.1): the chunks, the
/// last chunk, optional trailer fields, and the final CRLF. A flush point is marked after each
/// chunk. `ext` adds a chunk extension to some chunks; `trailer` adds one trailer field.
pub(crate) fn write_chunked(s: &mut Stream, rng: &mut Rng, body: &[u8], plan: ChunkPlan<'_>, ext: bool, trailer: bool) {
    let upper = rng.percent(20);
    let mut pos = 0;
    let mut exact = 0;
    while pos < body.len() {
        let left = body.len() - pos;
        let n = match plan {
            ChunkPlan::Fixed(n) => n.min(left),
            ChunkPlan::Random => (rng.skewed(1, 12_000) as usize).min(left),
            ChunkPlan::Exact(sizes) => {
                let n = sizes.get(exact).copied().unwrap_or(left).clamp(1, left);
                exact += 1;
                n
            }
        };
        push_hex(&mut s.data, n as u64, upper);
        if ext && rng.percent(50) {
            s.data.extend_from_slice(if rng.percent(50) { b";ieof" } else { b";name=\"part\"" });
        }
        s.data.extend_from_slice(b"\r\n");
        s.data.extend_from_slice(&body[pos..pos + n]);
        s.data.extend_from_slice(b"\r\n");
        s.mark_break();
        pos += n;
    }
    s.data.extend_from_slice(b"0\r\n");
    if trailer {
        s.data.extend_from_slice(b"X-Checksum: sha256=");
        for _ in 0..16 {
            s.data.push(*rng.pick(super::json::HEX));
        }
        s.data.extend_from_slice(b"\r\n");
    }
    s.data.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let mut b = Vec::new();
        date_header(&mut b, 1_717_405_200);
        assert_eq!(b, b"Date: Mon, 03 Jun 2024 09:00:00 GMT\r\n");
        b.clear();
        date_header(&mut b, 951_782_400); // leap day
        assert_eq!(b, b"Date: Tue, 29 Feb 2000 00:00:00 GMT\r\n");
    }

    #[test]
    fn chunked_framing_round_trips() {
        let mut rng = Rng::new(3);
        let body: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        for plan in [ChunkPlan::Fixed(4096), ChunkPlan::Random, ChunkPlan::Exact(&[5, 7])] {
            let mut s = Stream::default();
            write_chunked(&mut s, &mut rng, &body, plan, true, true);
            assert_eq!(dechunk(&s.data), body);
        }
    }

    /// Minimal de-chunker for the test: size line (extension ignored), data, CRLF; then
    /// trailers up to the empty line.
    fn dechunk(mut d: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let eol = d.windows(2).position(|w| w == b"\r\n").expect("size line");
            let line = std::str::from_utf8(&d[..eol]).expect("ascii");
            let size = usize::from_str_radix(line.split(';').next().expect("size"), 16).expect("hex");
            d = &d[eol + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&d[..size]);
            assert_eq!(&d[size..size + 2], b"\r\n");
            d = &d[size + 2..];
        }
        assert!(d.ends_with(b"\r\n"));
        out
    }
}
