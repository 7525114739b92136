//! Content decoding (RFC 9110 §8.4): gzip, x-gzip, deflate (zlib-wrapped or raw), br, zstd.
//!
//! Each decoder is read through `take(cap + 1)`, so output never exceeds the cap however small
//! the input (decompression-bomb safe). A body cut short (cap, gap) decodes as far as it goes.

use crate::exchange::ContentCoding;
use std::io::Read;

/// Result of decoding a body.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    /// Output (or the input, when nothing could be decoded).
    pub data: Vec<u8>,
    /// Codings applied, in the order they were undone.
    pub codings: Vec<ContentCoding>,
    /// Output reached the cap.
    pub capped: bool,
    /// A coding was unknown or its stream was corrupt before producing anything.
    pub failed: bool,
    /// A stream ended early; `data` is partial.
    pub partial: bool,
}

fn coding(name: &str) -> Option<Option<ContentCoding>> {
    match name.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Some(Some(ContentCoding::Gzip)),
        "deflate" => Some(Some(ContentCoding::Deflate)),
        "br" => Some(Some(ContentCoding::Br)),
        "zstd" => Some(Some(ContentCoding::Zstd)),
        "identity" | "" => Some(None),
        _ => None,
    }
}

/// Undoes the codings listed in a `Content-Encoding` value (applied left to right, so undone
/// right to left).
pub(crate) fn decode(body: Vec<u8>, content_encoding: &str, cap: usize) -> Decoded {
    let mut list = Vec::new();
    for name in content_encoding.split(',') {
        match coding(name) {
            Some(Some(c)) => list.push(c),
            Some(None) => {}
            None => return Decoded { data: body, failed: true, ..Decoded::default() },
        }
    }
    let mut out = Decoded { data: body, ..Decoded::default() };
    for c in list.into_iter().rev() {
        if out.data.is_empty() {
            break;
        }
        match run(c, &out.data, cap) {
            Ok((data, complete)) => {
                out.capped |= data.len() > cap;
                out.data = data;
                out.data.truncate(cap);
                out.partial |= !complete;
                out.codings.push(c);
            }
            Err(()) => {
                out.failed = true;
                break;
            }
        }
    }
    out
}

/// Decodes one layer. `Ok((output, complete))`; `Err` when nothing could be decoded.
fn run(c: ContentCoding, input: &[u8], cap: usize) -> Result<(Vec<u8>, bool), ()> {
    let limit = cap as u64 + 1;
    match c {
        ContentCoding::Gzip => drain(flate2::read::MultiGzDecoder::new(input).take(limit)),
        ContentCoding::Deflate => {
            // RFC 9110 says zlib; some servers send raw deflate. The zlib header's check bits
            // tell them apart.
            let zlib = input.len() >= 2
                && input[0] & 0x0f == 8
                && (u16::from(input[0]) << 8 | u16::from(input[1])) % 31 == 0;
            if zlib {
                drain(flate2::read::ZlibDecoder::new(input).take(limit))
            } else {
                drain(flate2::read::DeflateDecoder::new(input).take(limit))
            }
        }
        ContentCoding::Br => drain(brotli_decompressor::Decompressor::new(input, 4096).take(limit)),
        ContentCoding::Zstd => match ruzstd::decoding::StreamingDecoder::new(input) {
            Ok(d) => drain(d.take(limit)),
            Err(_) => Err(()),
        },
    }
}

/// Reads until EOF or error straight into the output's spare capacity (no bounce buffer);
/// partial output counts as success when there is any.
fn drain(mut r: impl Read) -> Result<(Vec<u8>, bool), ()> {
    let mut out = Vec::new();
    match r.read_to_end(&mut out) {
        Ok(_) => Ok((out, true)),
        // `read_to_end` keeps what it read before the error.
        Err(_) if !out.is_empty() => Ok((out, false)),
        Err(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).ok();
        e.finish().unwrap_or_default()
    }

    #[test]
    fn gzip_xgzip_zlib_and_raw_deflate() {
        let text = b"hello hello hello hello".repeat(10);
        for name in ["gzip", "x-gzip", "GZIP"] {
            let d = decode(gzip(&text), name, 1 << 20);
            assert_eq!(d.data, text);
            assert_eq!(d.codings, vec![ContentCoding::Gzip]);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).ok();
        assert_eq!(decode(z.finish().unwrap_or_default(), "deflate", 1 << 20).data, text);
        let mut r = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        r.write_all(&text).ok();
        assert_eq!(decode(r.finish().unwrap_or_default(), "deflate", 1 << 20).data, text);
    }

    #[test]
    fn bomb_is_capped() {
        let bomb = gzip(&vec![0u8; 10 << 20]);
        assert!(bomb.len() < 20_000);
        let d = decode(bomb, "gzip", 64 << 10);
        assert_eq!(d.data.len(), 64 << 10);
        assert!(d.capped);
    }

    #[test]
    fn truncated_stream_decodes_partially_and_garbage_fails() {
        let text: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut g = gzip(&text);
        g.truncate(g.len() / 2);
        let d = decode(g, "gzip", 1 << 20);
        assert!(d.partial && !d.failed && !d.data.is_empty());
        assert_eq!(&text[..d.data.len()], &d.data[..]);
        let bad = decode(b"not compressed".to_vec(), "gzip", 1 << 20);
        assert!(bad.failed);
        assert_eq!(bad.data, b"not compressed");
        assert!(decode(b"x".to_vec(), "compress", 100).failed);
    }

    #[test]
    fn stacked_codings_undone_in_reverse() {
        let text = b"abcabcabc".repeat(50);
        let twice = gzip(&gzip(&text));
        let d = decode(twice, "gzip, gzip", 1 << 20);
        assert_eq!(d.data, text);
        assert_eq!(d.codings.len(), 2);
    }
}
