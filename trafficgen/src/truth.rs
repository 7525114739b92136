//! What the generator reports: counts for every capture, and optionally one record per
//! exchange that a reassembler's output can be compared with exactly.

use std::net::SocketAddr;

/// How a response body is delimited on the wire (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// No body and no length field: 204 and 304 responses.
    None,
    /// `Content-Length` (possibly 0).
    ContentLength,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// No length: the body ends when the server closes the connection.
    Close,
}

/// Ground truth for one HTTP exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeTruth {
    /// Connection number, in the order connections were opened (0-based).
    pub connection: u64,
    /// Position of the exchange on its connection (0-based).
    pub index_in_connection: u32,
    /// Client address and port.
    pub client: SocketAddr,
    /// Server address and port.
    pub server: SocketAddr,
    /// Request method.
    pub method: &'static str,
    /// Request target: path and query string.
    pub path: String,
    /// Response status code.
    pub status: u16,
    /// Request body length in bytes (requests are never chunked or compressed).
    pub request_body_len: usize,
    /// Response body length after removing chunked framing and content coding.
    pub response_body_len: usize,
    /// Response body framing.
    pub response_framing: Framing,
    /// The response carried `Content-Encoding: gzip`.
    pub gzip: bool,
    /// Media type of the response without parameters, empty when there is no body.
    pub response_content_type: &'static str,
    /// JSON-RPC method for MCP exchanges (`initialize`, `tools/list`, `tools/call`, ...).
    pub mcp_method: Option<&'static str>,
    /// The request was sent pipelined, before the previous response arrived.
    pub pipelined: bool,
    /// Every byte of the request and of the response is in the capture (no forever-gap
    /// touched it). A reassembler may still lose later exchanges on a connection that had a
    /// gap, if it cannot find the next message boundary.
    pub delivered: bool,
}

/// What [`generate`](crate::generate) wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenSummary {
    /// TCP connections opened (each with a full handshake and a FIN or RST close).
    pub connections: u64,
    /// HTTP exchanges (request and response) written.
    pub exchanges: u64,
    /// Exchanges whose bytes are all in the capture (see [`ExchangeTruth::delivered`]).
    pub exchanges_delivered: u64,
    /// pcap records written.
    pub packets: u64,
    /// Bytes written, global header included.
    pub bytes_written: u64,
    /// Data segments whose first copy was lost and that appear later as a retransmission.
    pub segments_retransmitted: u64,
    /// Pairs of adjacent data segments swapped.
    pub segments_reordered: u64,
    /// Duplicate copies of data segments written.
    pub segments_duplicated: u64,
    /// Data segments missing from the capture for ever.
    pub segments_gapped: u64,
    /// One entry per exchange in the order exchanges were generated (which is not capture
    /// order when connections interleave); empty unless `GenConfig::record_truth`.
    pub truth: Vec<ExchangeTruth>,
}
