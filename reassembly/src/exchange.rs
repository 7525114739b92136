//! The output of the engine: one [`HttpExchange`] per request.

use crate::Timestamp;
use std::net::SocketAddr;

/// HTTP version of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Version {
    /// HTTP/0.9: request line without version, response without status line.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Version {
    /// `"0.9"`, `"1.0"`, `"1.1"`.
    pub fn number(self) -> &'static str {
        match self {
            Version::Http09 => "0.9",
            Version::Http10 => "1.0",
            Version::Http11 => "1.1",
        }
    }
    /// `"HTTP/1.1"` etc., the spelling of Akto's `type` field.
    pub fn protocol(self) -> &'static str {
        match self {
            Version::Http09 => "HTTP/0.9",
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// One header field, in wire order. Values that are not UTF-8 are converted lossily.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name as sent.
    pub name: String,
    /// Field value, surrounding whitespace removed.
    pub value: String,
}

/// A content coding the engine decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContentCoding {
    /// gzip / x-gzip.
    Gzip,
    /// deflate (zlib-wrapped or raw).
    Deflate,
    /// Brotli.
    Br,
    /// Zstandard.
    Zstd,
}

/// One server-sent event of a `text/event-stream` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` field, empty when absent (the type is then `message`).
    pub event: String,
    /// `data:` lines joined with `\n`.
    pub data: String,
    /// `id:` field, when present.
    pub id: Option<String>,
}

/// A message body after de-chunking and content decoding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    /// The body as the application sees it, at most the configured caps.
    pub data: Vec<u8>,
    /// Bytes of the body on the wire after de-chunking, before content decoding (counted even
    /// past the cap).
    pub wire_len: u64,
    /// Length of the entity after content decoding; equals `wire_len` when not encoded.
    /// When `truncated`, this is a lower bound.
    pub decoded_len: u64,
    /// `data` is not the whole body (a cap was hit or bytes were lost).
    pub truncated: bool,
    /// Events when the body is `text/event-stream`.
    pub sse: Option<Vec<SseEvent>>,
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Capture time of the request's first byte.
    pub ts: Timestamp,
    /// Method as sent (case preserved).
    pub method: String,
    /// Request-target as sent, including the query string.
    pub target: String,
    /// Version.
    pub version: Version,
    /// Header fields in wire order (trailers of a chunked body appended).
    pub headers: Vec<Header>,
    /// Body.
    pub body: Body,
}

/// A final response (1xx interim responses are listed in `interim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Capture time of the response's first byte.
    pub ts: Timestamp,
    /// Version (`Http09` when the server sent no status line).
    pub version: Version,
    /// Status code (0 for HTTP/0.9).
    pub status: u16,
    /// Reason phrase as sent.
    pub reason: String,
    /// Header fields in wire order (trailers appended).
    pub headers: Vec<Header>,
    /// Body.
    pub body: Body,
    /// Status codes of interim (1xx) responses that preceded this one, in order.
    pub interim: Vec<u16>,
}

/// Something unusual about an exchange, mostly RFC 9112 ambiguities and how they were resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomaly {
    /// Both Transfer-Encoding and Content-Length: Transfer-Encoding wins (RFC 9112 §6.3 ¶3).
    ContentLengthAndChunked,
    /// Content-Length repeated with the same value.
    DuplicateContentLength,
    /// Content-Length values that disagree, or a value that is not a number: the length is
    /// unrecoverable (RFC 9112 §6.3 ¶5).
    BadContentLength,
    /// Content-Length with leading zeros (valid, but a known smuggling vector).
    ContentLengthLeadingZeros,
    /// A chunk size line that is not hex or overflows.
    BadChunkSize,
    /// Transfer-Encoding whose final coding is not `chunked`.
    ChunkedNotFinal,
    /// A header field continued with obsolete line folding; unfolded with SP (RFC 9112 §5.2).
    ObsoleteLineFolding,
    /// `Expect: 100-continue` on a request with `Content-Length: 0`.
    ExpectContinueWithoutBody,
    /// Start line or header block that could not be parsed strictly; parsed leniently.
    MalformedHead,
    /// Head larger than the head cap.
    HeadTooLarge,
    /// Lines ended by a bare LF.
    BareLf,
    /// A server answered with something that is not an HTTP/1.x status line.
    NonHttpResponse,
    /// Request or response without a version (HTTP/0.9).
    Http09,
    /// A content coding that is unknown or failed to decode; the body is kept as received.
    UndecodableContent,
    /// Decompressed output reached the cap.
    DecompressionCapped,
    /// The body ended before its declared length (connection closed or gap).
    IncompleteBody,
    /// A request-target that is empty.
    MissingUri,
    /// A response with no request to pair with (the capture missed the client's side, or the
    /// server answered more than was asked).
    ResponseWithoutRequest,
}

/// Flags of an exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// No response was seen.
    pub pending: bool,
    /// Bytes of the request or response were lost in capture (a TCP gap).
    pub gap: bool,
    /// A body was cut at a cap or by a gap.
    pub truncated: bool,
    /// Content codings decoded (request and response).
    pub decoded_with: Vec<ContentCoding>,
    /// Anomalies, each at most once.
    pub anomalies: Vec<Anomaly>,
    /// The connection switched protocols (101) or became a tunnel (CONNECT) after this exchange.
    pub upgraded: bool,
}

impl Flags {
    /// Records an anomaly once.
    pub fn add(&mut self, a: Anomaly) {
        if !self.anomalies.contains(&a) {
            self.anomalies.push(a);
        }
    }
}

/// The connection an exchange belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The side that sent the request.
    pub client: SocketAddr,
    /// The side that answered.
    pub server: SocketAddr,
    /// VXLAN network identifier, 0 when not tunnelled.
    pub vni: u32,
}

/// One request and, when seen, its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpExchange {
    /// Connection.
    pub conn: ConnInfo,
    /// 1-based index of this request within its connection.
    pub depth: u32,
    /// The request.
    pub request: Request,
    /// The final response, when seen.
    pub response: Option<Response>,
    /// Flags.
    pub flags: Flags,
}

impl HttpExchange {
    /// Value of the first header named `name` (case-insensitive) of the request.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        find_header(&self.request.headers, name)
    }
}

/// Value of the first header named `name` (case-insensitive).
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}
