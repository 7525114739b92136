//! What travels inside the TCP streams: HTTP/1.1 requests and responses of a JSON API, and MCP
//! (JSON-RPC 2.0 over streamable HTTP) sessions. A connection asks for one exchange at a time
//! and gets the request appended to its client stream and the response to its server stream.

mod api;
pub(crate) mod http;
pub(crate) mod json;
mod mcp;
pub(crate) mod vocab;

use crate::rng::Rng;
use crate::truth::Framing;
use http::{header, header_num, write_chunked, ChunkPlan, Stream};
use json::{push_random, push_u64, BodyPool, B64URL, HEX};

pub(crate) use mcp::McpSession;

/// Client and server identity of one connection, fixed when it opens.
#[derive(Debug)]
pub(crate) struct Peers {
    /// `Host` header value.
    pub host: Vec<u8>,
    pub user_agent: &'static str,
    /// Bearer token, when the client authenticates.
    pub token: Option<Vec<u8>>,
    pub cookie: Option<Vec<u8>>,
    pub accept_gzip: bool,
    /// Send header names in lower case.
    pub lower: bool,
    pub server_software: &'static str,
    /// Set for an MCP session.
    pub mcp: Option<McpSession>,
}

impl Peers {
    pub(crate) fn new(
        rng: &mut Rng,
        host: Vec<u8>,
        user_agent: &'static str,
        server_software: &'static str,
        mcp: bool,
    ) -> Peers {
        let token = rng.percent(85).then(|| {
            // A JWT-shaped token: fixed header, random payload and signature.
            let mut t = b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.".to_vec();
            push_random(&mut t, rng, B64URL, 48);
            t.push(b'.');
            push_random(&mut t, rng, B64URL, 43);
            t
        });
        let cookie = rng.percent(30).then(|| {
            let mut c = b"session=".to_vec();
            push_random(&mut c, rng, HEX, 32);
            c.extend_from_slice(b"; _ga=GA1.2.");
            push_u64(&mut c, rng.range(100_000_000, 999_999_999));
            c.extend_from_slice(b"; theme=dark");
            c
        });
        Peers {
            host,
            user_agent,
            token,
            cookie,
            accept_gzip: rng.percent(75),
            lower: rng.percent(8),
            server_software,
            mcp: mcp.then(|| McpSession::new(rng)),
        }
    }
}

/// Who closes the connection after an exchange, and how it is announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// The connection stays open, or the client closes it without saying so.
    No,
    /// The request carries `Connection: close`; the server closes after the response.
    Request,
    /// The response carries `Connection: close`; the server closes after it.
    Response,
}

/// Per-exchange instructions from the connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExchangeCtx {
    pub close: Close,
    /// Only safe, bodiless methods (the request is part of a pipelined burst).
    pub safe_only: bool,
    /// Unix seconds for the `Date` header.
    pub now_secs: u64,
}

/// What was written for one exchange (the connection adds addresses and delivery).
#[derive(Debug, Clone)]
pub(crate) struct Written {
    pub method: &'static str,
    /// Offsets of the request target inside the client stream.
    pub path: (usize, usize),
    pub status: u16,
    pub request_body_len: usize,
    pub response_body_len: usize,
    pub framing: Framing,
    pub gzip: bool,
    pub content_type: &'static str,
    pub mcp_method: Option<&'static str>,
}

/// Shared state of the content generator: the body pool and scratch buffers.
#[derive(Debug)]
pub(crate) struct Content {
    pool: BodyPool,
    /// Request body being built.
    req_body: Vec<u8>,
    /// Response body being built.
    resp_body: Vec<u8>,
    /// Extra response header lines.
    extra: Vec<u8>,
    /// Request target being built.
    path: Vec<u8>,
    /// SSE event sizes, for one chunk per event.
    events: Vec<usize>,
}

impl Content {
    pub(crate) fn new(seed: u64) -> Content {
        Content {
            pool: BodyPool::new(seed),
            req_body: Vec::with_capacity(4096),
            resp_body: Vec::with_capacity(4096),
            extra: Vec::with_capacity(256),
            path: Vec::with_capacity(128),
            events: Vec::new(),
        }
    }

    /// Appends one request to `c2s` and its response to `s2c`.
    pub(crate) fn exchange(
        &mut self,
        rng: &mut Rng,
        peers: &mut Peers,
        ctx: ExchangeCtx,
        c2s: &mut Stream,
        s2c: &mut Stream,
    ) -> Written {
        // The session is taken out for the exchange so that it can change while the rest of
        // `peers` is read.
        if let Some(mut session) = peers.mcp.take() {
            let w = mcp::exchange(self, rng, peers, &mut session, ctx, c2s, s2c);
            peers.mcp = Some(session);
            w
        } else {
            api::exchange(self, rng, peers, ctx, c2s, s2c)
        }
    }
}

/// Where a response body comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BodySrc {
    None,
    /// `Content::resp_body`.
    Fresh,
    /// A pooled body, plain or gzip-encoded.
    Pool {
        idx: usize,
        gzip: bool,
    },
}

/// One response to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Response {
    pub status: u16,
    /// Full `Content-Type` value; also selects `content_type` in the truth.
    pub content_type: &'static str,
    pub body: BodySrc,
    pub framing: Framing,
    /// When chunked: one chunk per entry of `Content::events` (SSE) instead of a fixed or
    /// random plan.
    pub exact_chunks: bool,
}

/// The per-request choices of [`write_request`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpec<'a> {
    pub method: &'a str,
    /// `Accept` header value.
    pub accept: &'a [u8],
    /// Send `Content::req_body` with `Content-Type` and `Content-Length`.
    pub with_body: bool,
    /// Send `Connection: close`.
    pub close: bool,
}

/// Writes `Content::path` as a request line and the common request headers, then
/// `Content::extra` (pre-formatted extra header lines), then the body in `Content::req_body`
/// if `with_body`. Returns the offsets of the request target.
pub(crate) fn write_request(
    c: &Content,
    rng: &mut Rng,
    peers: &Peers,
    spec: RequestSpec<'_>,
    s: &mut Stream,
) -> (usize, usize) {
    let RequestSpec { method, accept, with_body, close } = spec;
    let lower = peers.lower;
    let d = &mut s.data;
    d.extend_from_slice(method.as_bytes());
    d.push(b' ');
    let start = d.len();
    d.extend_from_slice(&c.path);
    let end = d.len();
    d.extend_from_slice(b" HTTP/1.1\r\n");
    header(d, lower, "Host", &peers.host);
    header(d, lower, "User-Agent", peers.user_agent.as_bytes());
    header(d, lower, "Accept", accept);
    if peers.accept_gzip {
        header(d, lower, "Accept-Encoding", b"gzip, deflate, br");
    }
    if let Some(t) = &peers.token {
        if lower {
            d.extend_from_slice(b"authorization: Bearer ");
        } else {
            d.extend_from_slice(b"Authorization: Bearer ");
        }
        d.extend_from_slice(t);
        d.extend_from_slice(b"\r\n");
    }
    if let Some(ck) = &peers.cookie {
        header(d, lower, "Cookie", ck);
    }
    if rng.percent(40) {
        d.extend_from_slice(if lower { b"x-request-id: " } else { b"X-Request-Id: " });
        json::push_uuid(d, rng);
        d.extend_from_slice(b"\r\n");
    }
    d.extend_from_slice(&c.extra);
    if with_body {
        header(d, lower, "Content-Type", b"application/json");
        header_num(d, lower, "Content-Length", c.req_body.len() as u64);
    }
    if close {
        header(d, lower, "Connection", b"close");
    }
    d.extend_from_slice(b"\r\n");
    if with_body && !c.req_body.is_empty() {
        // Clients often write headers and body separately.
        s.mark_break();
        s.data.extend_from_slice(&c.req_body);
    }
    s.mark_break();
    (start, end)
}

/// Writes a response: status line, common headers, framing headers, `Content::extra`, the
/// body with its framing. Returns the decoded body length.
pub(crate) fn write_response(
    c: &mut Content,
    rng: &mut Rng,
    peers: &Peers,
    ctx: ExchangeCtx,
    r: Response,
    s: &mut Stream,
) -> usize {
    let Content { pool, resp_body, extra, events, .. } = c;
    let (body, decoded): (&[u8], usize) = match r.body {
        BodySrc::None => (&[], 0),
        BodySrc::Fresh => (resp_body.as_slice(), resp_body.len()),
        BodySrc::Pool { idx, gzip: false } => (pool.plain(idx), pool.plain(idx).len()),
        BodySrc::Pool { idx, gzip: true } => {
            let n = pool.plain(idx).len();
            (pool.gzip(idx), n)
        }
    };
    let gzip = matches!(r.body, BodySrc::Pool { gzip: true, .. });
    let ext = r.framing == Framing::Chunked && rng.percent(10);
    let trailer = r.framing == Framing::Chunked && rng.percent(8);
    // Servers mostly send canonical names; a few frameworks lower-case them.
    let lower = peers.lower && rng.percent(50);

    let d = &mut s.data;
    http::status_line(d, r.status);
    http::date_header(d, ctx.now_secs);
    header(d, lower, "Server", peers.server_software.as_bytes());
    if !body.is_empty() && !r.content_type.is_empty() {
        header(d, lower, "Content-Type", r.content_type.as_bytes());
    }
    if gzip {
        header(d, lower, "Content-Encoding", b"gzip");
        header(d, lower, "Vary", b"Accept-Encoding");
    }
    match r.framing {
        Framing::ContentLength => header_num(d, lower, "Content-Length", body.len() as u64),
        Framing::Chunked => header(d, lower, "Transfer-Encoding", b"chunked"),
        Framing::None | Framing::Close => {}
    }
    d.extend_from_slice(extra);
    match ctx.close {
        Close::Request | Close::Response => header(d, lower, "Connection", b"close"),
        Close::No if rng.percent(20) => header(d, lower, "Connection", b"keep-alive"),
        Close::No => {}
    }
    if trailer {
        header(d, lower, "Trailer", b"X-Checksum");
    }
    d.extend_from_slice(b"\r\n");
    match r.framing {
        Framing::None => {}
        Framing::ContentLength | Framing::Close => {
            if !body.is_empty() {
                if rng.percent(30) {
                    s.mark_break();
                }
                s.data.extend_from_slice(body);
            }
        }
        Framing::Chunked => {
            if rng.percent(50) {
                s.mark_break();
            }
            let plan = if r.exact_chunks {
                ChunkPlan::Exact(events)
            } else if rng.percent(50) {
                ChunkPlan::Fixed(if rng.percent(50) { 4096 } else { 8192 })
            } else {
                ChunkPlan::Random
            };
            write_chunked(s, rng, body, plan, ext, trailer);
        }
    }
    s.mark_break();
    decoded
}
