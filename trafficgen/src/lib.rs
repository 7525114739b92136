//! Deterministic generator of a large, realistic HTTP capture, for demos, benchmarks and as
//! ground truth in tests of the reassembler.
//!
//! # What is generated
//!
//! A classic pcap file (little endian, magic `0xa1b2c3d4`, microsecond timestamps,
//! `LINKTYPE_ETHERNET`, snaplen 262144) of HTTP/1.1 API traffic between a set of client hosts
//! and servers, seen from a capture point next to the servers:
//!
//! - **TCP** (RFC 9293): three-way handshake with MSS / window-scale / SACK-permitted options,
//!   consistent sequence and acknowledgement numbers (random ISNs, so some flows wrap),
//!   payloads of at most `mss` bytes, delayed ACKs, FIN closes from either side and a few
//!   RSTs. IPv4 and TCP checksums are real. A fraction of flows is IPv6, and a fraction carries
//!   an 802.1Q tag. Connections overlap in time and their packets interleave.
//! - **Impairments**, per data segment and each optional: loss (the first copy is missing and
//!   the retransmission arrives after 1–3 later segments, behind duplicate ACKs), reordering of
//!   adjacent segments, duplicates, and gaps (bytes missing from the capture for ever).
//! - **HTTP/1.1** (RFC 9112): GETs with query strings and POST/PUT/PATCH/DELETE with JSON
//!   bodies from tens of bytes to 200 KB (skewed small), realistic headers (Host, User-Agent,
//!   Accept, Authorization: Bearer, Cookie, ...), statuses 200/201/204/301/304/400/404/500,
//!   bodies framed by Content-Length, chunked (varying chunk sizes, some chunk extensions and
//!   trailers) or connection close, some `Content-Encoding: gzip` (also combined with chunked),
//!   keep-alive and one-shot connections, and a few pipelined bursts of 2–3 requests.
//! - **MCP** (streamable HTTP transport): `POST /mcp` sessions with JSON-RPC 2.0 `initialize`,
//!   `notifications/initialized`, `tools/list` and `tools/call`, answered by `application/json`
//!   or by `text/event-stream` `event: message` events.
//!
//! [`generate`] returns a [`GenSummary`] with counts and, when
//! [`GenConfig::record_truth`] is set, one [`ExchangeTruth`] per exchange (method, path,
//! status, body lengths after de-chunking and decompression, delivery) to compare a
//! reassembler's output with.
//!
//! ```
//! use trafficgen::{generate, GenConfig};
//!
//! let cfg = GenConfig { seed: 7, target_bytes: 256 * 1024, record_truth: true, ..GenConfig::default() };
//! let mut pcap = Vec::new();
//! let summary = generate(&cfg, &mut pcap)?;
//! assert_eq!(summary.bytes_written, pcap.len() as u64);
//! assert_eq!(summary.truth.len() as u64, summary.exchanges);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Determinism
//!
//! The output is a pure function of the [`GenConfig`]: no clock, no OS randomness, no hash-map
//! iteration, no floating point per draw. The same config gives the same bytes on every run
//! and every platform, for a given version of this crate and of the gzip encoder (flate2's
//! default miniz_oxide backend at a fixed level, pinned by `Cargo.lock`; the header carries
//! mtime 0 and OS 255). Randomness comes from an embedded SplitMix64 rather than `rand`,
//! whose value stability is not promised across versions.
//!
//! # Bounds
//!
//! Packets are streamed to the writer in pieces of about 256 KiB; memory is the open
//! connections' current exchanges (at most a few MB) plus a pool of ~2 MB of precomputed large
//! bodies (gzipped once, on first use). The truth list, when asked for, grows by about 200
//! bytes per exchange. Nothing in this crate panics on any [`GenConfig`] that passes
//! [`GenConfig::validate`], which [`generate`] calls first.

#![forbid(unsafe_code)]

mod config;
mod content;
mod gen;
mod rng;
mod tcp;
mod truth;
mod wire;

use std::io;

pub use config::GenConfig;
pub use truth::{ExchangeTruth, Framing, GenSummary};

/// Writes a capture described by `config` to `out` and returns what it contains.
///
/// `out` receives the bytes in pieces of about 256 KiB; wrap a file in a `BufWriter` or not,
/// either is efficient. Fails with `InvalidInput` when the config does not validate, or with
/// the writer's error.
pub fn generate<W: io::Write>(config: &GenConfig, out: &mut W) -> io::Result<GenSummary> {
    gen::run(config, out)
}

/// The packets of a capture [`generate`] wrote (classic little-endian pcap, microseconds), as
/// `(seconds, microseconds, frame)`: for benchmarks that feed an engine from memory. Stops at
/// the first record that does not fit in `pcap`.
pub fn frames(pcap: &[u8]) -> impl Iterator<Item = (u64, u32, &[u8])> {
    let mut at = 24;
    std::iter::from_fn(move || {
        let h = pcap.get(at..at + 16)?;
        let le = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let frame = pcap.get(at + 16..at + 16 + le(8) as usize)?;
        at += 16 + frame.len();
        Some((u64::from(le(0)), le(4), frame))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn frames_splits_every_record_and_stops_at_a_cut() {
        let cfg = crate::GenConfig { target_bytes: 64 << 10, ..crate::GenConfig::default() };
        let mut pcap = Vec::new();
        let summary = crate::generate(&cfg, &mut pcap).expect("generate");
        let all: Vec<_> = crate::frames(&pcap).collect();
        assert_eq!(all.len() as u64, summary.packets);
        let bytes: usize = all.iter().map(|(_, _, f)| 16 + f.len()).sum();
        assert_eq!(24 + bytes, pcap.len());
        assert!(all.windows(2).all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1)), "in time order");
        // A record cut short is not returned, and nothing after it.
        let cut = &pcap[..pcap.len() - 1];
        assert_eq!(crate::frames(cut).count(), all.len() - 1);
    }
}
