//! akto-tap edge worker: a Cloudflare Worker (workers-rs, wasm32) in front of an MCP server.
//!
//! Every request is forwarded to the `MCP` service binding (or `MCP_ORIGIN_URL`) and the
//! response comes back unchanged and streaming. Around that:
//!
//! * **mirror** — after the response, in `ctx.wait_until`, the exchange is posted as an Akto
//!   record (`{"batchData":[record]}`) to the ingestion API (binding or URL), filtered by content
//!   type and status like Akto's workers, bodies capped with truncation flagged;
//! * **async** (`GUARDRAILS_MODE=async`) — the same, and the MCP request and response (SSE
//!   events included) are scanned by the `guardrails` engine after the response; threats are
//!   reported (threat backend and/or the ingested record) with the original payloads;
//! * **blocked** (`GUARDRAILS_MODE=blocked`) — the request is scanned before it is forwarded and
//!   the response before it is returned (SSE event by event); a blocked message becomes the
//!   JSON-RPC error of DESIGN.md with the request's `id`.
//!
//! **Bounded.** Request bodies are buffered only up to `MAX_BUFFER_BYTES` (by `Content-Length`);
//! mirrored copies are tee branches read up to a cap and a deadline, then cancelled; scans are
//! capped by the guardrails work budget. Each cap is a variable and each hit is counted and logged
//! (`events`).
//!
//! **Fail-open.** A slow or failing ingestion, executor or threat backend, an invalid policy or a
//! spent scan budget never changes what the client gets. **No panics** on the request path:
//! configuration and bindings are resolved with errors that become a JSON error response and a
//! log line (`proxy::handle`).

pub mod body;
pub mod config;
pub mod events;
pub mod guard;
pub mod mirror;
pub mod proxy;
pub mod report;
pub mod upstream;

use worker::{event, Context, Env};

/// The `fetch` handler.
#[event(fetch)]
pub async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> worker::Result<web_sys::Response> {
    Ok(proxy::handle(req, env, ctx).await)
}
