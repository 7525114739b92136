//! Packet-to-HTTP-exchange reconstruction, as a pure library.
//!
//! ```text
//! bytes + link type ──decode──▶ Packet (IP/TCP view, VNI) ──Engine──▶ flow table ──▶ per-direction
//! assembler (ranges, bounded holes) ──in-order bytes──▶ HTTP/1.x connection (plain heads in one
//! SIMD pass, the rest via httparse; bodies framed by Content-Length / chunked / close)
//! ──▶ HttpExchange
//! ```
//!
//! * **No I/O, no clock, no threads.** Time arrives with every packet ([`Timestamp`]); idle expiry
//!   is driven by packet timestamps, so a replay produces the same output on every run.
//! * **Zero-copy where it is cheap.** Decoding borrows the packet ([`decode::Packet`]); only
//!   defragmented IPv4 datagrams and out-of-order TCP data are copied.
//! * **Bounded.** Every buffer has a cap from [`Config`]: flows, out-of-order bytes per flow and in
//!   total, holes per direction, pending requests per connection, head size, body size,
//!   decompressed size, defragmentation buffers. What a cap costs is counted in [`Stats`].
//! * **Never panics on input.** Malformed packets and hostile HTTP are counted and skipped; the
//!   fuzz targets under `fuzz/` exercise every entry point.
//!
//! * **Safe Rust**, but for one FFI call into libdeflate (whole-member gzip inflation,
//!   `http/content.rs`) and the `set_len` over the bytes it wrote, the unchecked slicing of a
//!   head's fields by offsets checked when they were stored (`exchange.rs`), and calls into
//!   functions compiled for SIMD extensions once the CPU is known to have them (`http/head.rs`,
//!   `http/onepass.rs`), each allowed there alone.
//!
//! RFC 9293 (TCP) and RFC 9112 (HTTP/1.1 message framing) are cited where decisions are made.
#![deny(unsafe_code)]

pub mod config;
pub mod decode;
pub mod engine;
pub mod exchange;
pub mod http;
pub mod stats;
pub mod tcp;
#[cfg(test)]
mod testutil;
mod time;

pub use config::Config;
pub use decode::{LinkType, Packet};
pub use engine::Engine;
pub use exchange::{
    Anomaly, Body, ContentCoding, Flags, Header, Headers, HttpExchange, Request, Response, SseEvent, Version,
};
pub use stats::Stats;
pub use time::Timestamp;
