//! Limits and switches of the engine. Every cap here has a counter in [`crate::Stats`].

use serde::{Deserialize, Serialize};

/// Engine configuration. Defaults are in one place: the `Default` impls below.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// TCP flow table and stream reassembly limits.
    pub tcp: TcpConfig,
    /// HTTP parsing and body limits.
    pub http: HttpConfig,
    /// IPv4 defragmentation limits.
    pub defrag: DefragConfig,
}

/// TCP limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpConfig {
    /// Maximum concurrent flows; beyond it the least recently active flows are evicted.
    pub max_flows: usize,
    /// Maximum out-of-order bytes buffered per flow (both directions).
    pub max_flow_buffered_bytes: usize,
    /// Maximum out-of-order bytes buffered across all flows.
    pub max_total_buffered_bytes: usize,
    /// Maximum holes (disjoint buffered ranges) per direction.
    pub max_holes: usize,
    /// A flow with no packet for this long (capture time) is flushed and removed.
    pub idle_timeout_secs: u64,
    /// A closed flow (FIN both ways or RST) lingers this long for late packets.
    pub close_linger_secs: u64,
    /// How far ahead of the next expected byte a segment may start and still be buffered.
    pub max_window_bytes: u32,
    /// Bytes buffered per direction while the roles of a flow without SYN are still unknown.
    pub max_sniff_bytes: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            max_flows: 262_144,
            max_flow_buffered_bytes: 4 << 20,
            max_total_buffered_bytes: 512 << 20,
            max_holes: 16,
            idle_timeout_secs: 120,
            close_linger_secs: 5,
            max_window_bytes: 1 << 30,
            max_sniff_bytes: 16 << 10,
        }
    }
}

/// HTTP limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Maximum size of a request or response head (start line + fields).
    pub max_head_bytes: usize,
    /// Maximum number of header fields in one head.
    pub max_headers: usize,
    /// Body bytes kept per message (after de-chunking, before content decoding); the rest is
    /// counted and the body flagged truncated.
    pub max_body_bytes: usize,
    /// Output cap for content decoding (gzip, deflate, br, zstd): decompression-bomb guard.
    pub max_decoded_body_bytes: usize,
    /// Body bytes (before decoding) held at once by all unfinished exchanges of the engine; past
    /// it, body bytes are counted and not kept, and the exchange is flagged truncated.
    pub max_total_body_bytes: usize,
    /// Requests awaiting a response on one connection (pipelining depth).
    pub max_pending_requests: usize,
    /// Decode `Content-Encoding` of bodies.
    pub decode_content: bool,
    /// Split `text/event-stream` bodies into events.
    pub split_sse: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_head_bytes: 64 << 10,
            max_headers: 256,
            max_body_bytes: 1 << 20,
            max_decoded_body_bytes: 4 << 20,
            max_total_body_bytes: 256 << 20,
            max_pending_requests: 256,
            decode_content: true,
            split_sse: true,
        }
    }
}

/// IPv4 defragmentation limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefragConfig {
    /// Datagrams being reassembled at once.
    pub max_datagrams: usize,
    /// Bytes held across all datagrams being reassembled.
    pub max_total_bytes: usize,
    /// A datagram not completed within this time (capture time) is dropped.
    pub timeout_secs: u64,
}

impl Default for DefragConfig {
    fn default() -> Self {
        DefragConfig { max_datagrams: 1024, max_total_bytes: 8 << 20, timeout_secs: 30 }
    }
}
