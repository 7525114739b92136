//! The request path: forward to the MCP server, scan in blocked mode, and hand the exchange to
//! the after-response task (mirroring, async scanning, threat reports) in `ctx.wait_until`.
//!
//! Transparency: the upstream `Response` object is returned as is whenever the body is not
//! rewritten (mirror and async modes, WebSocket upgrades, blocked mode when nothing is blocked
//! or redacted); the copy for mirroring is a tee branch read with a cap and a deadline, so a
//! slow or failing ingestion never touches the client's stream. SSE responses are scanned event
//! by event in blocked mode and flow through as each event completes.
//!
//! Latency: in mirror and async modes the request path only forwards and clones (no body read,
//! no header copy, no JSON); the exchange is built, scanned and posted by the after-response
//! task, which starts behind a short timer so that it runs after the response is written (the
//! runtime writes it on the same thread).

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use futures_util::future::join_all;
use guardrails::{Direction, Engine, Verdict, VerdictAction};
use js_sys::{Array, Reflect};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Headers, ReadableStream, Request, RequestInit, RequestRedirect, Response, ResponseInit};
use worker::{Context, Env};

use crate::body::{self, read_capped, Captured, Reader};
use crate::config::{Config, ConfigError, Mode, Vars};
use crate::events::{emit, get, Event};
use crate::guard::{self, ExecutorVerdict};
use crate::mirror::{self, Exchange, Ingest, ThreatMark};
use crate::report;
use crate::upstream::{binding, origin_url, send, Target};

/// How long the after-response task waits before it starts (see `finish`).
const AFTER_RESPONSE_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

thread_local! {
    static CONFIG: RefCell<Option<Result<Rc<Config>, ConfigError>>> = const { RefCell::new(None) };
}

fn config(env: &Env) -> Result<Rc<Config>, ConfigError> {
    CONFIG.with(|c| c.borrow_mut().get_or_insert_with(|| Config::from_vars(env as &dyn Vars).map(Rc::new)).clone())
}

/// A JSON error response of the worker itself (never used for the MCP server's own errors).
fn error_response(status: u16, message: &str) -> Response {
    let body = json!({"error": message, "source": "akto-tap-worker"}).to_string();
    json_response(status, &body)
}

fn json_response(status: u16, body: &str) -> Response {
    let init = ResponseInit::new();
    init.set_status(status);
    if let Ok(h) = Headers::new() {
        let _ = h.set("content-type", "application/json");
        init.set_headers(&h);
    }
    Response::new_with_opt_str_and_init(Some(body), &init)
        .unwrap_or_else(|_| Response::new().unwrap_or_else(|_| JsValue::NULL.unchecked_into()))
}

/// Every request goes through here; failures become responses, never panics.
pub async fn handle(req: Request, env: Env, ctx: Context) -> Response {
    let cfg = match config(&env) {
        Ok(c) => c,
        Err(e) => {
            emit(Event::ConfigInvalid, json!({"error": e.to_string()}));
            return error_response(500, &format!("akto-tap-worker is misconfigured: {e}"));
        }
    };
    let mcp = match (&cfg.origin_url, binding(&env, "MCP")) {
        (Some(u), _) => Target::Url(u.clone()),
        (None, Some(f)) => Target::Binding(f),
        (None, None) => {
            emit(
                Event::McpBindingMissing,
                json!({"fix": "add the MCP service binding (services: [{binding: \"MCP\", service: \"<your MCP worker>\"}]) or set MCP_ORIGIN_URL"}),
            );
            return error_response(
                502,
                "akto-tap-worker: the MCP service binding is missing; add services: [{\"binding\": \"MCP\", \"service\": \"<your MCP worker>\"}] to wrangler.jsonc, or set MCP_ORIGIN_URL",
            );
        }
    };
    let ingest = ["AKTO_INGESTION_WORKER", "AKTO_INGEST_GUARDRAILS", "AKTO_INGEST"]
        .iter()
        .find_map(|n| binding(&env, n).map(|f| Ingest { target: Target::Binding(f), name: (*n).to_string() }))
        .or_else(|| cfg.ingest_url.as_ref().map(|u| Ingest { target: Target::Url(u.clone()), name: u.clone() }));
    if ingest.is_none() && get(Event::IngestNotConfigured) == 0 {
        emit(
            Event::IngestNotConfigured,
            json!({"consequence": "exchanges are not mirrored", "fix": "bind AKTO_INGESTION_WORKER or set DATA_INGESTION_URL"}),
        );
    }
    let executor = if cfg.mode == Mode::Mirror {
        None
    } else {
        binding(&env, "AKTO_GUARDRAILS_EXECUTOR")
            .map(Target::Binding)
            .or_else(|| cfg.executor_url.clone().map(Target::Url))
    };
    let req_for_log = Clone::clone(&req);
    match run(req, &ctx, Setup { cfg, mcp, ingest, executor }).await {
        Ok(r) => r,
        Err(e) => {
            let msg = e
                .as_string()
                .or_else(|| Reflect::get(&e, &"message".into()).ok().and_then(|m| m.as_string()))
                .unwrap_or_else(|| format!("{e:?}"));
            emit(Event::UpstreamFailed, json!({"url": req_for_log.url(), "error": msg}));
            error_response(502, &format!("akto-tap-worker: the MCP server could not be reached: {msg}"))
        }
    }
}

struct Setup {
    cfg: Rc<Config>,
    mcp: Target,
    ingest: Option<Ingest>,
    executor: Option<Target>,
}

/// Where a body for the after-response task comes from.
enum BodySrc {
    Done(Captured),
    /// A whole body held by JS (copied into wasm memory up to the cap when resolved).
    Js(js_sys::Uint8Array, usize),
    /// A JS clone of a request whose body is small (`Content-Length` within `MAX_BUFFER_BYTES`):
    /// read whole by the runtime, then copied into wasm memory up to the cap.
    Request(Request, usize),
    Stream(ReadableStream, usize),
    Pending(oneshot::Receiver<Captured>),
}

impl BodySrc {
    async fn resolve(self, max_ms: u64) -> Captured {
        match self {
            BodySrc::Done(c) => c,
            BodySrc::Js(a, cap) => {
                let len = a.length() as usize;
                let keep = len.min(cap);
                Captured { bytes: a.subarray(0, keep as u32).to_vec(), truncated: len > cap, timed_out: false }
            }
            BodySrc::Request(r, cap) => {
                let buf = match r.array_buffer() {
                    Ok(p) => wasm_bindgen_futures::JsFuture::from(p).await,
                    Err(e) => Err(e),
                };
                match buf {
                    Ok(b) => Box::pin(BodySrc::Js(js_sys::Uint8Array::new(&b), cap).resolve(max_ms)).await,
                    // The client went away mid-body: nothing whole to mirror.
                    Err(_) => Captured { truncated: true, ..Captured::default() },
                }
            }
            BodySrc::Stream(s, cap) => {
                let c = read_capped(&s, cap, max_ms).await;
                if c.timed_out {
                    emit(Event::CaptureTimeout, json!({"capture_max_ms": max_ms}));
                }
                c
            }
            BodySrc::Pending(rx) => rx.await.unwrap_or_else(|_| Captured { truncated: true, ..Captured::default() }),
        }
    }
}

/// The exchange as the after-response task sees it.
struct After {
    setup: Rc<SetupShared>,
    /// The client's request: method, URL and headers are read from it after the response.
    req: Request,
    /// Unix seconds when the request arrived.
    time: u64,
    /// The upstream response (status, status text, headers), when there was one.
    upstream: Option<Response>,
    /// Status and headers of the worker's own response to a blocked request.
    own_response: Option<(u16, Vec<(String, String)>)>,
    req_src: BodySrc,
    resp_src: BodySrc,
    /// The exchange, filled in by the after-response task.
    ex: Exchange,
    req_verdict: Option<Verdict>,
    resp_verdict: Option<Verdict>,
    /// Direction and reason when the exchange was blocked.
    blocked: Option<(Direction, String)>,
    /// Extra threats (executor findings) as (direction, summary).
    extra: Vec<(Direction, Value)>,
    /// Verdict(s) delivered later by the SSE scanner.
    sse: Option<oneshot::Receiver<SseOutcome>>,
}

struct SetupShared {
    cfg: Rc<Config>,
    ingest: Option<Ingest>,
    executor: Option<Target>,
    engine: Option<Rc<Engine>>,
}

/// Header pairs in order, repeats kept (`set-cookie`). One `Array.from` and one JSON string cross
/// the wasm boundary instead of several calls per header.
fn header_pairs(h: &Headers) -> Vec<(String, String)> {
    let pairs = Array::from(h);
    js_sys::JSON::stringify(&pairs)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str::<Vec<(String, String)>>(&s).ok())
        .unwrap_or_default()
}

fn header(h: &Headers, name: &str) -> Option<String> {
    h.get(name).ok().flatten()
}

/// Host and request-target (path and query) of a URL.
fn url_parts(url: &str) -> (String, String) {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    match after_scheme.find('/') {
        Some(i) => (after_scheme[..i].to_string(), after_scheme[i..].to_string()),
        None => (after_scheme.to_string(), "/".to_string()),
    }
}

fn request_exchange(req: &Request, time: u64) -> Exchange {
    let (host, path) = url_parts(&req.url());
    let h = req.headers();
    let ip = header(&h, "cf-connecting-ip")
        .or_else(|| header(&h, "x-forwarded-for").map(|v| v.split(',').next().unwrap_or("").trim().to_string()))
        .or_else(|| header(&h, "x-real-ip"))
        .unwrap_or_default();
    let http_type = Reflect::get(req, &"cf".into())
        .ok()
        .filter(|cf| cf.is_object())
        .and_then(|cf| Reflect::get(&cf, &"httpProtocol".into()).ok())
        .and_then(|p| p.as_string())
        .map(|p| if p == "HTTP/2" || p == "HTTP/3" || p == "HTTP/1.0" { p } else { "HTTP/1.1".to_string() })
        .unwrap_or_else(|| "HTTP/1.1".to_string());
    Exchange {
        method: req.method(),
        path,
        host,
        request_headers: header_pairs(&h),
        ip,
        time,
        http_type,
        ..Exchange::default()
    }
}

/// A request for the upstream: same method and headers, `body` (or none), `redirect: manual`.
fn upstream_request(req: &Request, url: &str, body: Option<&JsValue>) -> Result<Request, JsValue> {
    let init = RequestInit::new();
    init.set_method(&req.method());
    init.set_headers(&req.headers());
    init.set_redirect(RequestRedirect::Manual);
    if let Some(b) = body {
        init.set_body(b);
    }
    Request::new_with_str_and_init(url, &init)
}

fn response_with_body(
    status: u16,
    status_text: &str,
    headers: &Headers,
    body: Option<&JsValue>,
) -> Result<Response, JsValue> {
    let init = ResponseInit::new();
    init.set_status(status);
    init.set_status_text(status_text);
    init.set_headers(headers);
    match body {
        Some(b) if b.is_instance_of::<ReadableStream>() => {
            Response::new_with_opt_readable_stream_and_init(Some(b.unchecked_ref()), &init)
        }
        Some(b) => Response::new_with_opt_buffer_source_and_init(Some(b.unchecked_ref()), &init),
        None => Response::new_with_opt_str_and_init(None, &init),
    }
}

fn copy_headers_without_length(h: &Headers) -> Result<Headers, JsValue> {
    let out = Headers::new_with_headers(h)?;
    out.delete("content-length")?;
    Ok(out)
}

/// A `ReadableStream` from a Rust stream of chunks.
fn readable<S>(stream: S) -> Result<ReadableStream, JsValue>
where
    S: futures_util::Stream<Item = Result<Vec<u8>, worker::Error>> + 'static,
{
    let r = worker::Response::from_stream(stream).map_err(|e| JsValue::from_str(&e.to_string()))?;
    match r.into_parts().1 {
        worker::ResponseBody::Stream(s) => Ok(s),
        _ => Err(JsValue::from_str("from_stream did not give a stream")),
    }
}

fn is_sse(ct: &str) -> bool {
    ct.to_ascii_lowercase().contains("text/event-stream")
}

fn is_json(ct: &str) -> bool {
    ct.to_ascii_lowercase().contains("json")
}

async fn run(req: Request, ctx: &Context, s: Setup) -> Result<Response, JsValue> {
    let Setup { cfg, mcp, ingest, executor } = s;
    let req_headers = req.headers();
    let websocket = header(&req_headers, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let needs_copy = ingest.is_some() || cfg.mode != Mode::Mirror;
    if websocket || !needs_copy {
        // Nothing to look at: forward the original request object (for an origin, a copy with its URL).
        return send(&mcp, &forward(req, &mcp)?).await;
    }
    let engine = if cfg.mode == Mode::Mirror { None } else { guard::engine(&cfg) };
    let capture_cap =
        if cfg.mode == Mode::Mirror { cfg.max_body_bytes } else { cfg.max_body_bytes.max(guard::scan_bytes(&cfg)) };
    let shared = Rc::new(SetupShared { cfg: Rc::clone(&cfg), ingest, executor, engine: engine.clone() });
    let after = After {
        setup: shared,
        req: Clone::clone(&req),
        time: (js_sys::Date::now() / 1000.0) as u64,
        upstream: None,
        own_response: None,
        req_src: BodySrc::Done(Captured::default()),
        resp_src: BodySrc::Done(Captured::default()),
        ex: Exchange::default(),
        req_verdict: None,
        resp_verdict: None,
        blocked: None,
        extra: Vec::new(),
        sse: None,
    };
    let content_length: Option<usize> = header(&req_headers, "content-length").and_then(|v| v.trim().parse().ok());
    if cfg.mode == Mode::Blocked {
        run_blocked(req, req_headers, content_length, ctx, &mcp, after, engine, capture_cap).await
    } else {
        run_passive(req, content_length, ctx, &mcp, after, capture_cap).await
    }
}

/// `req` as it goes upstream: the object itself for a binding, a copy with the origin's URL
/// (same method, headers and body stream) for an origin.
fn forward(req: Request, mcp: &Target) -> Result<Request, JsValue> {
    match mcp {
        Target::Binding(_) => Ok(req),
        Target::Url(o) => upstream_request(&req, &origin_url(o, &req.url()), req.body().as_ref().map(|b| b.as_ref())),
    }
}

/// The URL a rebuilt request goes to.
fn forward_url(req: &Request, mcp: &Target) -> String {
    match mcp {
        Target::Binding(_) => req.url(),
        Target::Url(o) => origin_url(o, &req.url()),
    }
}

/// A request body of unknown or large size: the upstream gets one tee branch while the other is
/// read now, up to the cap and the deadline, then cancelled (read only after the response, it
/// would hold the whole body in the tee).
fn tee_request_body(stream: &ReadableStream, cfg: &Config, capture_cap: usize) -> (ReadableStream, BodySrc) {
    let branches = stream.tee();
    let (to_upstream, to_capture): (ReadableStream, ReadableStream) =
        (branches.get(0).unchecked_into(), branches.get(1).unchecked_into());
    let (tx, rx) = oneshot::channel();
    let max_ms = cfg.capture_max_ms;
    wasm_bindgen_futures::spawn_local(async move {
        let c = read_capped(&to_capture, capture_cap, max_ms).await;
        let _ = tx.send(c);
    });
    (to_upstream, BodySrc::Pending(rx))
}

/// Mirror and async modes: nothing is read, parsed or scanned before the response is returned.
/// The request object itself is forwarded (a JS clone of it keeps the copy of a small body), the
/// upstream response object is returned as is (a clone of it is the mirror's copy), and the
/// record, the scans and the reports are all made by the after-response task.
async fn run_passive(
    req: Request,
    content_length: Option<usize>,
    ctx: &Context,
    mcp: &Target,
    mut after: After,
    capture_cap: usize,
) -> Result<Response, JsValue> {
    let cfg = Rc::clone(&after.setup.cfg);
    let fwd = match req.body() {
        None => forward(req, mcp)?,
        Some(_) if content_length.is_some_and(|n| n <= cfg.max_buffer_bytes) => {
            after.req_src = BodySrc::Request(req.clone()?, capture_cap);
            forward(req, mcp)?
        }
        Some(stream) => {
            let (to_upstream, src) = tee_request_body(&stream, &cfg, capture_cap);
            after.req_src = src;
            upstream_request(&req, &forward_url(&req, mcp), Some(&to_upstream))?
        }
    };
    let resp = send(mcp, &fwd).await?;
    if resp.status() == 101 {
        return Ok(resp);
    }
    if let Some(copy) = resp.clone()?.body() {
        after.resp_src = BodySrc::Stream(copy, capture_cap);
    }
    after.upstream = Some(Clone::clone(&resp));
    ctx.wait_until(finish(after));
    Ok(resp)
}

/// Blocked mode: the request is scanned before it is forwarded and the response before it is
/// returned (SSE event by event).
#[expect(clippy::too_many_arguments, reason = "the request path's state, passed once from `run`")]
async fn run_blocked(
    req: Request,
    req_headers: Headers,
    content_length: Option<usize>,
    ctx: &Context,
    mcp: &Target,
    mut after: After,
    engine: Option<Rc<Engine>>,
    capture_cap: usize,
) -> Result<Response, JsValue> {
    let shared = Rc::clone(&after.setup);
    let cfg = Rc::clone(&shared.cfg);
    let path = url_parts(&req.url()).1;

    // Request body: small ones are read once, scanned, and forwarded from memory; large or
    // unknown-length ones stream through a tee (unscanned before forwarding).
    let fwd = match req.body() {
        None => forward(req, mcp)?,
        Some(_) if content_length.is_some_and(|n| n <= cfg.max_buffer_bytes) => {
            let buf = wasm_bindgen_futures::JsFuture::from(req.array_buffer()?).await?;
            let bytes = js_sys::Uint8Array::new(&buf).to_vec();
            let mut forward_body: Option<String> = None;
            let text = body::text(&bytes);
            if guard::is_mcp(&text) {
                if let Some(engine) = &engine {
                    let v = guard::scan(engine, &text, Direction::Request, None, &path);
                    if v.is_blocked() {
                        after.blocked = Some((Direction::Request, v.reason()));
                    } else if v.action == VerdictAction::Redact && cfg.redact {
                        forward_body = v.redacted.clone();
                        emit(Event::Redacted, json!({"path": path, "direction": "request"}));
                    }
                    after.req_verdict = Some(v);
                }
                if after.blocked.is_none() {
                    if let Some(exec) = &shared.executor {
                        if let ExecutorVerdict::Block(reason) =
                            guard::executor_scan(&cfg, exec, &text, Direction::Request, &path).await
                        {
                            after.extra.push((
                                Direction::Request,
                                json!({"direction": "request", "action": "block", "reason": reason, "scanner": "executor"}),
                            ));
                            after.blocked = Some((Direction::Request, reason));
                        }
                    }
                }
            }
            if let Some((_, reason)) = after.blocked.clone() {
                let message = guard::blocked_message(&cfg, engine.as_deref()).to_string();
                let body = guard::blocked_body(&bytes, &message, &reason);
                emit(Event::Blocked, json!({"path": path, "direction": "request", "reason": reason}));
                after.own_response =
                    Some((cfg.blocked_status, vec![("content-type".into(), "application/json".into())]));
                after.req_src = BodySrc::Done(Captured { bytes, ..Captured::default() });
                after.resp_src = BodySrc::Done(Captured { bytes: body.clone().into_bytes(), ..Captured::default() });
                ctx.wait_until(finish(after));
                let resp = json_response(cfg.blocked_status, &body);
                let _ = resp.headers().set("x-blocked-by", "Akto-Guardrails");
                return Ok(resp);
            }
            let js_body: JsValue = match &forward_body {
                Some(redacted) => JsValue::from_str(redacted),
                None => buf,
            };
            let h = if forward_body.is_some() { copy_headers_without_length(&req_headers)? } else { req_headers };
            let init = RequestInit::new();
            init.set_method(&req.method());
            init.set_headers(&h);
            init.set_redirect(RequestRedirect::Manual);
            init.set_body(&js_body);
            after.req_src = BodySrc::Done(Captured { bytes, ..Captured::default() });
            Request::new_with_str_and_init(&forward_url(&req, mcp), &init)?
        }
        Some(stream) => {
            emit(
                Event::ScanSkippedTooLarge,
                json!({"path": path, "direction": "request", "content_length": content_length, "cap": cfg.max_buffer_bytes,
                       "consequence": "forwarded before scanning; scanned after the response (report only)"}),
            );
            let (to_upstream, src) = tee_request_body(&stream, &cfg, capture_cap);
            after.req_src = src;
            upstream_request(&req, &forward_url(&req, mcp), Some(&to_upstream))?
        }
    };

    let resp = send(mcp, &fwd).await?;
    let status = resp.status();
    if status == 101 {
        return Ok(resp);
    }
    after.upstream = Some(Clone::clone(&resp));
    let resp_headers = resp.headers();
    let ct = header(&resp_headers, "content-type").unwrap_or_default();
    let request_method = after.req_verdict.as_ref().and_then(|v| guard::first_method(v).map(str::to_string));

    if engine.is_some() && resp.body().is_some() && is_sse(&ct) {
        let (tx, rx) = oneshot::channel();
        let request_bytes = match &after.req_src {
            BodySrc::Done(c) => c.bytes.clone(),
            _ => Vec::new(),
        };
        let state = SseState {
            reader: Reader::new(&resp.body().ok_or_else(|| JsValue::from_str("no body"))?),
            buf: Vec::new(),
            capture: Captured::default(),
            cap: capture_cap,
            shared: Rc::clone(&shared),
            method: request_method,
            path,
            request_bytes,
            done: false,
            tx: Some(tx),
            verdicts: Vec::new(),
            blocked: None,
        };
        let stream = futures_util::stream::unfold(state, sse_step);
        let out = response_with_body(
            status,
            &resp.status_text(),
            &copy_headers_without_length(&resp_headers)?,
            Some(&readable(stream)?.into()),
        )?;
        after.sse = Some(rx);
        ctx.wait_until(finish(after));
        return Ok(out);
    }

    let copy = resp.clone()?.body();
    if engine.is_some() && (is_json(&ct) || ct.is_empty()) {
        if let Some(copy) = &copy {
            // A clone is read (up to the scan cap) and scanned; unless it is rewritten, the
            // client gets the upstream response object itself.
            let reader = Reader::new(copy);
            let (prefix, ended) = read_prefix(&reader, cfg.max_buffer_bytes).await?;
            if !ended {
                reader.cancel();
                emit(
                    Event::ScanSkippedTooLarge,
                    json!({"path": path, "direction": "response", "cap": cfg.max_buffer_bytes, "consequence": "passed unscanned; the prefix is scanned after the response (report only)"}),
                );
                let mut capture = prefix;
                capture.truncate(capture_cap);
                after.resp_src = BodySrc::Done(Captured { bytes: capture, truncated: true, timed_out: false });
                ctx.wait_until(finish(after));
                return Ok(resp);
            }
            let text = body::text(&prefix);
            let mut out_body: Option<String> = None;
            if guard::is_mcp(&text) {
                if let Some(engine) = &engine {
                    let v = guard::scan(engine, &text, Direction::Response, request_method.as_deref(), &path);
                    if v.is_blocked() {
                        after.blocked = Some((Direction::Response, v.reason()));
                    } else if v.action == VerdictAction::Redact && cfg.redact {
                        out_body = v.redacted.clone();
                        emit(Event::Redacted, json!({"path": path, "direction": "response"}));
                    }
                    after.resp_verdict = Some(v);
                }
                if after.blocked.is_none() {
                    if let Some(exec) = &shared.executor {
                        if let ExecutorVerdict::Block(reason) =
                            guard::executor_scan(&cfg, exec, &text, Direction::Response, &path).await
                        {
                            after.extra.push((
                                Direction::Response,
                                json!({"direction": "response", "action": "block", "reason": reason, "scanner": "executor"}),
                            ));
                            after.blocked = Some((Direction::Response, reason));
                        }
                    }
                }
            }
            let truncated = prefix.len() > capture_cap;
            let mut capture = prefix;
            capture.truncate(capture_cap);
            after.resp_src = BodySrc::Done(Captured { bytes: capture, truncated, timed_out: false });
            if let Some((_, reason)) = after.blocked.clone() {
                let message = guard::blocked_message(&cfg, engine.as_deref()).to_string();
                let request_bytes = match &after.req_src {
                    BodySrc::Done(c) => c.bytes.clone(),
                    _ => Vec::new(),
                };
                let body = guard::blocked_body(&request_bytes, &message, &reason);
                emit(Event::Blocked, json!({"path": path, "direction": "response", "reason": reason}));
                if let Some(b) = resp.body() {
                    let _ = b.cancel();
                }
                ctx.wait_until(finish(after));
                let resp = json_response(cfg.blocked_status, &body);
                let _ = resp.headers().set("x-blocked-by", "Akto-Guardrails");
                return Ok(resp);
            }
            let out = match out_body {
                Some(redacted) => {
                    if let Some(b) = resp.body() {
                        let _ = b.cancel();
                    }
                    response_with_body(
                        status,
                        &resp.status_text(),
                        &copy_headers_without_length(&resp_headers)?,
                        Some(&JsValue::from(body::js_bytes(redacted.as_bytes()))),
                    )?
                }
                None => resp,
            };
            ctx.wait_until(finish(after));
            return Ok(out);
        }
    }

    // Bodies blocked mode does not scan (other content types, no engine): the client gets the
    // upstream response object itself; the mirror reads a tee branch.
    if let Some(copy) = copy {
        after.resp_src = BodySrc::Stream(copy, capture_cap);
    }
    ctx.wait_until(finish(after));
    Ok(resp)
}

/// Reads up to `cap + 1` bytes: the prefix and whether the body ended within the cap.
async fn read_prefix(reader: &Reader, cap: usize) -> Result<(Vec<u8>, bool), JsValue> {
    let mut buf = Vec::new();
    loop {
        match reader.next().await? {
            None => return Ok((buf, true)),
            Some(chunk) => {
                body::append(&mut buf, &chunk);
                if buf.len() > cap {
                    return Ok((buf, false));
                }
            }
        }
    }
}

/// What the SSE scanner concluded, sent to the after-response task when the stream ends.
#[derive(Default)]
struct SseOutcome {
    capture: Captured,
    verdicts: Vec<Verdict>,
    blocked: Option<String>,
}

struct SseState {
    reader: Reader,
    buf: Vec<u8>,
    capture: Captured,
    cap: usize,
    shared: Rc<SetupShared>,
    method: Option<String>,
    path: String,
    request_bytes: Vec<u8>,
    done: bool,
    tx: Option<oneshot::Sender<SseOutcome>>,
    verdicts: Vec<Verdict>,
    blocked: Option<String>,
}

impl Drop for SseState {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(SseOutcome {
                capture: std::mem::take(&mut self.capture),
                verdicts: std::mem::take(&mut self.verdicts),
                blocked: self.blocked.take(),
            });
        }
    }
}

/// End of the first complete SSE event in `buf` (after its blank line), if any.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

impl SseState {
    /// Scans one event; the bytes to send on (the event itself, or the error event that ends the stream).
    fn process(&mut self, event: Vec<u8>) -> Vec<u8> {
        let text = body::text(&event);
        let Some(engine) = self.shared.engine.clone() else { return event };
        if !guard::is_mcp(&text) {
            return event;
        }
        let v = guard::scan(&engine, &text, Direction::Response, self.method.as_deref(), &self.path);
        let blocked = v.is_blocked();
        let reason = v.reason();
        if guard::is_threat(&v) {
            self.verdicts.push(v);
        }
        if !blocked {
            return event;
        }
        let cfg = &self.shared.cfg;
        let message = guard::blocked_message(cfg, Some(&engine)).to_string();
        let body = guard::blocked_body(&self.request_bytes, &message, &reason);
        emit(Event::Blocked, json!({"path": self.path, "direction": "response", "reason": reason, "sse": true}));
        self.blocked = Some(reason);
        self.done = true;
        self.reader.cancel();
        format!("event: message\ndata: {body}\n\n").into_bytes()
    }
}

async fn sse_step(mut st: SseState) -> Option<(Result<Vec<u8>, worker::Error>, SseState)> {
    loop {
        if st.done && st.buf.is_empty() {
            return None;
        }
        if let Some(end) = event_end(&st.buf) {
            let rest = st.buf.split_off(end);
            let event = std::mem::replace(&mut st.buf, rest);
            let out = st.process(event);
            if st.done {
                st.buf.clear();
            }
            return Some((Ok(out), st));
        }
        if st.done {
            // The stream ended without a final blank line: scan what is left.
            let event = std::mem::take(&mut st.buf);
            let out = st.process(event);
            return Some((Ok(out), st));
        }
        if st.buf.len() > st.shared.cfg.max_buffer_bytes {
            emit(
                Event::ScanSkippedTooLarge,
                json!({"path": st.path, "direction": "response", "sse": true, "cap": st.shared.cfg.max_buffer_bytes, "consequence": "event passed unscanned"}),
            );
            let out = std::mem::take(&mut st.buf);
            return Some((Ok(out), st));
        }
        match st.reader.next().await {
            Ok(Some(chunk)) => {
                let start = st.buf.len();
                body::append(&mut st.buf, &chunk);
                let room = st.cap.saturating_sub(st.capture.bytes.len());
                let new = &st.buf[start..];
                if new.len() > room {
                    st.capture.truncated = true;
                }
                let take = new.len().min(room);
                st.capture.bytes.extend_from_slice(&new[..take]);
            }
            Ok(None) => st.done = true,
            Err(e) => {
                st.done = true;
                st.buf.clear();
                st.capture.truncated = true;
                return Some((Err(worker::Error::JsError(format!("upstream stream failed: {e:?}"))), st));
            }
        }
    }
}

/// The after-response task: bodies, async scanning, mirroring, threat reports. Never fails.
async fn finish(mut a: After) {
    // The runtime writes the response on this same thread, after the microtasks: started at
    // once, this task (and the ingestion worker it calls) would run before the client's bytes
    // are out. A timer puts it behind the response.
    worker::Delay::from(AFTER_RESPONSE_DELAY).await;
    let cfg = Rc::clone(&a.setup.cfg);
    let max_ms = cfg.capture_max_ms;
    a.ex = request_exchange(&a.req, a.time);
    if let Some(r) = &a.upstream {
        a.ex.status = r.status();
        a.ex.status_text = r.status_text();
        a.ex.response_headers = header_pairs(&r.headers());
    }
    if let Some((status, headers)) = a.own_response.take() {
        a.ex.status = status;
        a.ex.response_headers = headers;
    }
    let req_src = std::mem::replace(&mut a.req_src, BodySrc::Done(Captured::default()));
    let resp_src = std::mem::replace(&mut a.resp_src, BodySrc::Done(Captured::default()));
    a.ex.request_body = req_src.resolve(max_ms).await;
    a.ex.response_body = resp_src.resolve(max_ms).await;
    let mut threats: Vec<(Direction, Value)> = std::mem::take(&mut a.extra);
    let sse = a.sse.is_some();
    if let Some(rx) = a.sse.take() {
        if let Ok(o) = rx.await {
            a.ex.response_body = o.capture;
            for v in &o.verdicts {
                threats.push((Direction::Response, guard::verdict_summary(v, Direction::Response)));
            }
            if let Some(r) = o.blocked {
                a.blocked = Some((Direction::Response, r));
            }
        }
    }
    if cfg.mode != Mode::Mirror {
        if let Some(engine) = a.setup.engine.clone() {
            if a.req_verdict.is_none() {
                let text = body::text(&a.ex.request_body.bytes);
                if guard::is_mcp(&text) {
                    a.req_verdict = Some(guard::scan(&engine, &text, Direction::Request, None, &a.ex.path));
                }
            }
            let method = a.req_verdict.as_ref().and_then(|v| guard::first_method(v).map(str::to_string));
            // A blocked exchange's response is our own error: nothing to scan.
            if a.resp_verdict.is_none() && a.blocked.is_none() && !sse {
                let text = body::text(&a.ex.response_body.bytes);
                if guard::is_mcp(&text) {
                    a.resp_verdict =
                        Some(guard::scan(&engine, &text, Direction::Response, method.as_deref(), &a.ex.path));
                }
            }
        }
        if cfg.mode == Mode::Async {
            if let Some(exec) = &a.setup.executor {
                // Request and response scans in parallel, under one shared budget each.
                let scans = [
                    (Direction::Request, &a.ex.request_body.bytes),
                    (Direction::Response, &a.ex.response_body.bytes),
                ]
                .map(|(dir, bytes)| {
                    let text = body::text(bytes);
                    let cfg = &cfg;
                    let path = &a.ex.path;
                    async move {
                        if !guard::is_mcp(&text) {
                            return None;
                        }
                        match guard::executor_scan(cfg, exec, &text, dir, path).await {
                            ExecutorVerdict::Block(reason) => Some((
                                dir,
                                json!({"direction": dir, "action": "block", "reason": reason, "scanner": "executor"}),
                            )),
                            _ => None,
                        }
                    }
                });
                threats.extend(join_all(scans).await.into_iter().flatten());
            }
        }
        for (dir, v) in [(Direction::Request, &a.req_verdict), (Direction::Response, &a.resp_verdict)] {
            if let Some(v) = v.as_ref().filter(|v| guard::is_threat(v)) {
                threats.push((dir, guard::verdict_summary(v, dir)));
            }
        }
    }
    let blocked = a.blocked.is_some();
    let mark = if blocked || !threats.is_empty() {
        let reason = match &a.blocked {
            Some((_, r)) => r.clone(),
            None => threats
                .iter()
                .filter_map(|(_, s)| {
                    s.get("reason").and_then(Value::as_str).filter(|r| !r.is_empty()).map(str::to_string)
                })
                .next()
                .or_else(|| {
                    [&a.req_verdict, &a.resp_verdict]
                        .iter()
                        .find_map(|v| v.as_ref().filter(|v| guard::is_threat(v)).map(guard::flag_reason))
                })
                .unwrap_or_default(),
        };
        let metadata = json!({
            "blocked": blocked,
            "blockedAt": a.blocked.as_ref().map(|(d, _)| *d),
            "mode": cfg.mode.as_str(),
            "verdicts": threats.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>(),
        });
        emit(
            Event::ThreatDetected,
            json!({"path": a.ex.path, "blocked": blocked, "reason": reason, "mode": cfg.mode.as_str()}),
        );
        Some(ThreatMark { outcome: if blocked { "blocked" } else { "flagged" }, reason, metadata })
    } else {
        None
    };
    let mirror = async {
        if let Some(ingest) = &a.setup.ingest {
            if mirror::passes_filters(&cfg, &a.ex, blocked) {
                let rec = mirror::record_json(&cfg, &a.ex, mark.as_ref());
                mirror::post(&cfg, ingest, &rec, &a.ex.path).await;
            } else {
                crate::events::count(Event::MirrorFiltered);
            }
        }
    };
    let threat_report = async {
        if let (Some(m), true) = (&mark, cfg.threat.backend) {
            let filter_id = threats
                .iter()
                .find_map(|(_, s)| s.pointer("/findings/0/scanner").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| "MCPGuardrails".to_string());
            let body = report::malicious_event(&cfg, &a.ex, &filter_id, blocked, &m.metadata);
            report::send(&cfg, &body, &a.ex.path).await;
        }
    };
    futures_util::future::join(mirror, threat_report).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_event_boundaries() {
        assert_eq!(event_end(b"data: a\n\ndata: b"), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\nx"), Some(11));
        assert_eq!(event_end(b"data: a\n"), None);
    }
}
