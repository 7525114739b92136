//! Outbound calls: service bindings (`MCP`, ingestion, executor) or plain URLs.
//!
//! Requests and responses stay `web_sys` objects end to end, so the upstream response (status,
//! status text, headers, body stream, WebSocket) reaches the client as the very same object.

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response};

#[wasm_bindgen]
extern "C" {
    /// Anything with a `fetch(request)` method: a service binding (`Fetcher`).
    #[wasm_bindgen(extends = js_sys::Object)]
    #[derive(Debug, Clone)]
    pub type JsFetcher;

    #[wasm_bindgen(method, catch, js_name = fetch)]
    fn fetch_request(this: &JsFetcher, req: &Request) -> Result<Promise, JsValue>;

    #[wasm_bindgen(catch, js_name = fetch)]
    fn global_fetch(req: &Request) -> Result<Promise, JsValue>;
}

/// Where a call goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A service binding.
    Binding(JsFetcher),
    /// A URL, reached with the global `fetch` (needs outbound network access).
    Url(String),
}

/// A binding from `env` when it exists and has a `fetch` method.
pub fn binding(env: &worker::Env, name: &str) -> Option<JsFetcher> {
    let v = Reflect::get(env, &JsValue::from_str(name)).ok()?;
    if v.is_undefined() || v.is_null() {
        return None;
    }
    let f = Reflect::get(&v, &JsValue::from_str("fetch")).ok()?;
    f.is_function().then(|| v.unchecked_into())
}

/// Sends `req` to `target` (for a `Url` target, `req`'s URL must already point there).
pub async fn send(target: &Target, req: &Request) -> Result<Response, JsValue> {
    let promise = match target {
        Target::Binding(f) => f.fetch_request(req)?,
        Target::Url(_) => global_fetch(req)?,
    };
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

/// `POST`s `body` (JSON) to `target`; for a binding, `url` is the URL the bound worker sees.
pub async fn post_json(target: &Target, url: &str, body: &str, headers: &[(&str, &str)]) -> Result<Response, JsValue> {
    post_json_within(target, url, body, headers, None).await
}

/// [`post_json`] that the runtime aborts after `timeout_ms` (`AbortSignal.timeout`: no wasm timer);
/// the error is then a `TimeoutError` (see [`is_timeout`]).
pub async fn post_json_within(
    target: &Target,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
    timeout_ms: Option<u64>,
) -> Result<Response, JsValue> {
    let h = Headers::new()?;
    h.set("content-type", "application/json")?;
    for (k, v) in headers {
        h.set(k, v)?;
    }
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_headers(&h);
    init.set_body(&JsValue::from_str(body));
    if let Some(ms) = timeout_ms {
        init.set_signal(Some(&web_sys::AbortSignal::timeout_with_u32(ms.min(u32::MAX as u64) as u32)));
    }
    let url = match target {
        Target::Url(u) => u.as_str(),
        Target::Binding(_) => url,
    };
    let req = Request::new_with_str_and_init(url, &init)?;
    send(target, &req).await
}

/// `true` when a fetch failed because its `AbortSignal.timeout` fired.
pub fn is_timeout(err: &JsValue) -> bool {
    Reflect::get(err, &JsValue::from_str("name"))
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "TimeoutError" || n == "AbortError")
}

/// The URL `req` must be sent to for an origin: `origin`'s scheme and authority, `req`'s path
/// and query.
pub fn origin_url(origin: &str, req_url: &str) -> String {
    let origin = origin.trim_end_matches('/');
    let after_scheme = req_url.split_once("://").map_or(req_url, |(_, r)| r);
    let path = after_scheme.find('/').map_or("/", |i| &after_scheme[i..]);
    // An origin with a path prefix keeps it: https://o.example/mcp + /x → https://o.example/mcp/x.
    format!("{origin}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rewrite() {
        assert_eq!(
            origin_url("http://127.0.0.1:8080", "https://mcp.example.com/mcp?x=1"),
            "http://127.0.0.1:8080/mcp?x=1"
        );
        assert_eq!(origin_url("https://o.example/base/", "https://a/b"), "https://o.example/base/b");
        assert_eq!(origin_url("https://o.example", "https://a"), "https://o.example/");
    }
}
