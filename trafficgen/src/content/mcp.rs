//! MCP sessions over the streamable HTTP transport (MCP spec 2025-06-18, "Transports"): every
//! message is a `POST /mcp` with one JSON-RPC 2.0 body; the server answers with
//! `application/json` or with a `text/event-stream` of `event: message` events. A session is
//! `initialize`, `notifications/initialized` (202, no body), `tools/list`, then `tools/call`s.

use super::json::{push_u64, push_uuid};
use super::vocab::{CITIES, DOC_QUERIES, FILE_PATHS, MCP_CLIENTS, MCP_TOOLS};
use super::{
    write_request, write_response, BodySrc, Close, Content, ExchangeCtx, Peers, RequestSpec, Response, Written,
};
use crate::content::http::Stream;
use crate::rng::Rng;
use crate::truth::Framing;

const PROTOCOL_VERSION: &str = "2025-06-18";

/// Where an MCP session is.
#[derive(Debug)]
pub(crate) struct McpSession {
    step: u32,
    next_id: u64,
    session_id: Vec<u8>,
    client: usize,
    /// Percentage of responses this server sends as an event stream.
    sse_percent: u64,
}

impl McpSession {
    pub(crate) fn new(rng: &mut Rng) -> McpSession {
        let mut session_id = Vec::with_capacity(36);
        push_uuid(&mut session_id, rng);
        McpSession {
            step: 0,
            next_id: rng.range(0, 1),
            session_id,
            client: rng.below(MCP_CLIENTS.len() as u64) as usize,
            sse_percent: *rng.pick(&[0, 50, 100]),
        }
    }
}

fn jsonrpc_request(b: &mut Vec<u8>, id: u64, method: &str) {
    b.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    push_u64(b, id);
    b.extend_from_slice(b",\"method\":\"");
    b.extend_from_slice(method.as_bytes());
    b.extend_from_slice(b"\",\"params\":");
}

fn tool_call_params(b: &mut Vec<u8>, rng: &mut Rng, tool: &str) {
    b.extend_from_slice(b"{\"name\":\"");
    b.extend_from_slice(tool.as_bytes());
    b.extend_from_slice(b"\",\"arguments\":");
    match tool {
        "get_weather" => {
            b.extend_from_slice(b"{\"city\":\"");
            b.extend_from_slice(rng.pick(CITIES).as_bytes());
            b.extend_from_slice(b"\",\"units\":\"metric\"}");
        }
        "search_docs" => {
            b.extend_from_slice(b"{\"query\":\"");
            b.extend_from_slice(rng.pick(DOC_QUERIES).as_bytes());
            b.extend_from_slice(b"\",\"top_k\":");
            push_u64(b, rng.range(3, 10));
            b.push(b'}');
        }
        "query_database" => {
            b.extend_from_slice(
                b"{\"sql\":\"SELECT id, email, created_at FROM users WHERE created_at > '2024-01-01' LIMIT ",
            );
            push_u64(b, rng.range(10, 100));
            b.extend_from_slice(b"\"}");
        }
        "read_file" => {
            b.extend_from_slice(b"{\"path\":\"");
            b.extend_from_slice(rng.pick(FILE_PATHS).as_bytes());
            b.extend_from_slice(b"\"}");
        }
        "send_email" => {
            b.extend_from_slice(b"{\"to\":\"ops@example.com\",\"subject\":\"Weekly report\",\"body\":\"Orders up ");
            push_u64(b, rng.range(1, 40));
            b.extend_from_slice(b"% week over week.\"}");
        }
        _ => {
            b.extend_from_slice(b"{\"title\":\"Checkout fails for order ");
            push_u64(b, rng.range(10_000, 9_999_999));
            b.extend_from_slice(b"\",\"priority\":\"high\"}");
        }
    }
    b.push(b'}');
}

fn tools_list_result(b: &mut Vec<u8>) {
    b.extend_from_slice(b"{\"tools\":[");
    for (i, t) in MCP_TOOLS.iter().enumerate() {
        if i > 0 {
            b.push(b',');
        }
        b.extend_from_slice(b"{\"name\":\"");
        b.extend_from_slice(t.as_bytes());
        b.extend_from_slice(
            b"\",\"description\":\"Tool exposed by the acme MCP server.\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"input\":{\"type\":\"string\"}},\"required\":[\"input\"]}}",
        );
    }
    b.extend_from_slice(b"]}");
}

pub(super) fn exchange(
    c: &mut Content,
    rng: &mut Rng,
    peers: &Peers,
    session: &mut McpSession,
    ctx: ExchangeCtx,
    c2s: &mut Stream,
    s2c: &mut Stream,
) -> Written {
    let step = session.step;
    session.step += 1;
    let id = session.next_id;
    let (client_name, client_version) = MCP_CLIENTS[session.client];
    let sse = rng.percent(session.sse_percent);

    c.req_body.clear();
    c.resp_body.clear();
    c.events.clear();
    let method: &'static str;
    match step {
        0 => {
            method = "initialize";
            jsonrpc_request(&mut c.req_body, id, method);
            c.req_body.extend_from_slice(b"{\"protocolVersion\":\"");
            c.req_body.extend_from_slice(PROTOCOL_VERSION.as_bytes());
            c.req_body.extend_from_slice(
                b"\",\"capabilities\":{\"roots\":{\"listChanged\":true},\"sampling\":{}},\"clientInfo\":{\"name\":\"",
            );
            c.req_body.extend_from_slice(client_name.as_bytes());
            c.req_body.extend_from_slice(b"\",\"version\":\"");
            c.req_body.extend_from_slice(client_version.as_bytes());
            c.req_body.extend_from_slice(b"\"}}}");
        }
        1 => {
            method = "notifications/initialized";
            c.req_body.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
        }
        2 => {
            method = "tools/list";
            jsonrpc_request(&mut c.req_body, id, method);
            c.req_body.extend_from_slice(b"{}}");
        }
        _ => {
            method = "tools/call";
            jsonrpc_request(&mut c.req_body, id, method);
            let tool = *rng.pick(MCP_TOOLS);
            tool_call_params(&mut c.req_body, rng, tool);
            c.req_body.push(b'}');
        }
    }
    if step != 1 {
        session.next_id += 1;
    }

    c.path.clear();
    c.path.extend_from_slice(b"/mcp");
    c.extra.clear();
    if step > 0 {
        c.extra.extend_from_slice(b"Mcp-Session-Id: ");
        c.extra.extend_from_slice(&session.session_id);
        c.extra.extend_from_slice(b"\r\nMCP-Protocol-Version: ");
        c.extra.extend_from_slice(PROTOCOL_VERSION.as_bytes());
        c.extra.extend_from_slice(b"\r\n");
    }
    let accept = b"application/json, text/event-stream";
    let spec = RequestSpec { method: "POST", accept, with_body: true, close: ctx.close == Close::Request };
    let path = write_request(c, rng, peers, spec, c2s);
    let request_body_len = c.req_body.len();

    // The response: a JSON-RPC message, as JSON or as SSE events.
    c.extra.clear();
    if step == 0 {
        c.extra.extend_from_slice(b"Mcp-Session-Id: ");
        c.extra.extend_from_slice(&session.session_id);
        c.extra.extend_from_slice(b"\r\n");
    }
    if step == 1 {
        let r = Response {
            status: 202,
            content_type: "",
            body: BodySrc::Fresh,
            framing: Framing::ContentLength,
            exact_chunks: false,
        };
        let n = write_response(c, rng, peers, ctx, r, s2c);
        return written(method, path, 202, request_body_len, n, Framing::ContentLength, "");
    }

    let mut msg = Vec::with_capacity(512);
    if sse && step >= 3 && rng.percent(40) {
        // Progress notifications before the result.
        for k in 1..=rng.range(1, 3) {
            msg.clear();
            msg.extend_from_slice(
                b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":",
            );
            push_u64(&mut msg, id);
            msg.extend_from_slice(b",\"progress\":");
            push_u64(&mut msg, k);
            msg.extend_from_slice(b",\"total\":4}}");
            push_event(c, rng, &msg);
        }
    }
    msg.clear();
    msg.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    push_u64(&mut msg, id);
    match step {
        0 => {
            msg.extend_from_slice(b",\"result\":{\"protocolVersion\":\"");
            msg.extend_from_slice(PROTOCOL_VERSION.as_bytes());
            msg.extend_from_slice(
                b"\",\"capabilities\":{\"tools\":{\"listChanged\":true},\"logging\":{}},\"serverInfo\":{\"name\":\"acme-mcp\",\"version\":\"1.4.0\"}}}",
            );
        }
        2 => {
            msg.extend_from_slice(b",\"result\":");
            tools_list_result(&mut msg);
            msg.push(b'}');
        }
        _ if rng.percent(5) => {
            msg.extend_from_slice(
                b",\"error\":{\"code\":-32602,\"message\":\"Invalid params: missing required argument\"}}",
            );
        }
        _ => {
            msg.extend_from_slice(b",\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"");
            for _ in 0..rng.skewed(1, 40) {
                msg.extend_from_slice(b"Result line with data ");
                push_u64(&mut msg, rng.below(100_000));
                msg.extend_from_slice(b". ");
            }
            msg.extend_from_slice(b"\"}],\"isError\":false}}");
        }
    }
    let (content_type, framing, short_type) = if sse {
        push_event(c, rng, &msg);
        c.extra.extend_from_slice(b"Cache-Control: no-cache\r\n");
        let framing = if rng.percent(75) { Framing::Chunked } else { Framing::ContentLength };
        ("text/event-stream", framing, "text/event-stream")
    } else {
        c.resp_body.extend_from_slice(&msg);
        let framing = if rng.percent(85) { Framing::ContentLength } else { Framing::Chunked };
        ("application/json", framing, "application/json")
    };
    let r = Response { status: 200, content_type, body: BodySrc::Fresh, framing, exact_chunks: sse };
    let n = write_response(c, rng, peers, ctx, r, s2c);
    written(method, path, 200, request_body_len, n, framing, short_type)
}

/// Appends one SSE event (`event: message`, optional `id:`, one `data:` line) to the response
/// body and records its size for one-chunk-per-event framing.
fn push_event(c: &mut Content, rng: &mut Rng, data: &[u8]) {
    let start = c.resp_body.len();
    c.resp_body.extend_from_slice(b"event: message\n");
    if rng.percent(30) {
        c.resp_body.extend_from_slice(b"id: ");
        push_u64(&mut c.resp_body, rng.below(1 << 40));
        c.resp_body.push(b'\n');
    }
    c.resp_body.extend_from_slice(b"data: ");
    c.resp_body.extend_from_slice(data);
    c.resp_body.extend_from_slice(b"\n\n");
    c.events.push(c.resp_body.len() - start);
}

fn written(
    method: &'static str,
    path: (usize, usize),
    status: u16,
    request_body_len: usize,
    response_body_len: usize,
    framing: Framing,
    content_type: &'static str,
) -> Written {
    Written {
        method: "POST",
        path,
        status,
        request_body_len,
        response_body_len,
        framing,
        gzip: false,
        content_type: if response_body_len == 0 { "" } else { content_type },
        mcp_method: Some(method),
    }
}
