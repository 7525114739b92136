//! A REST/JSON API: users, orders, products, carts, payments. Endpoints, statuses and body
//! sizes are drawn with fixed weights so the mix looks like production traffic: mostly GETs,
//! mostly 200s, mostly small bodies, with a long tail of large list responses.

use super::json::{push_body, push_error, push_object, push_u64, PoolClass, Resource};
use super::vocab::{CATEGORIES, SEARCH_TERMS, SORTS};
use super::{
    write_request, write_response, BodySrc, Close, Content, ExchangeCtx, Peers, RequestSpec, Response, Written,
};
use crate::content::http::Stream;
use crate::rng::Rng;
use crate::truth::Framing;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    GetUser,
    ListUserOrders,
    ListProducts,
    GetProduct,
    Search,
    GetOrder,
    Health,
    CreateOrder,
    UpdateUser,
    PatchOrder,
    DeleteCartItem,
    AddCartItem,
    Login,
    CreatePayment,
}

const ENDPOINTS: [(Ep, u32); 14] = [
    (Ep::GetUser, 16),
    (Ep::ListUserOrders, 13),
    (Ep::ListProducts, 13),
    (Ep::GetProduct, 9),
    (Ep::Search, 6),
    (Ep::GetOrder, 7),
    (Ep::Health, 3),
    (Ep::CreateOrder, 9),
    (Ep::UpdateUser, 4),
    (Ep::PatchOrder, 4),
    (Ep::DeleteCartItem, 3),
    (Ep::AddCartItem, 6),
    (Ep::Login, 3),
    (Ep::CreatePayment, 4),
];
/// The first 7 endpoints are GETs, usable in a pipelined burst.
const GET_ENDPOINTS: usize = 7;

struct Shape {
    method: &'static str,
    res: Resource,
    /// The 200 body is a list (may come from the pool).
    list: bool,
}

fn shape(ep: Ep) -> Shape {
    let (method, res, list) = match ep {
        Ep::GetUser => ("GET", Resource::User, false),
        Ep::ListUserOrders => ("GET", Resource::Order, true),
        Ep::ListProducts => ("GET", Resource::Product, true),
        Ep::GetProduct => ("GET", Resource::Product, false),
        Ep::Search => ("GET", Resource::Product, true),
        Ep::GetOrder => ("GET", Resource::Order, false),
        Ep::Health => ("GET", Resource::Session, false),
        Ep::CreateOrder => ("POST", Resource::Order, false),
        Ep::UpdateUser => ("PUT", Resource::User, false),
        Ep::PatchOrder => ("PATCH", Resource::Order, false),
        Ep::DeleteCartItem => ("DELETE", Resource::CartItem, false),
        Ep::AddCartItem => ("POST", Resource::CartItem, false),
        Ep::Login => ("POST", Resource::Session, false),
        Ep::CreatePayment => ("POST", Resource::Payment, false),
    };
    Shape { method, res, list }
}

fn write_path(p: &mut Vec<u8>, rng: &mut Rng, ep: Ep) {
    let id = |p: &mut Vec<u8>, rng: &mut Rng| push_u64(p, rng.skewed(1, 999_999));
    match ep {
        Ep::GetUser | Ep::UpdateUser => {
            p.extend_from_slice(b"/api/v1/users/");
            id(p, rng);
        }
        Ep::ListUserOrders => {
            p.extend_from_slice(b"/api/v1/users/");
            id(p, rng);
            p.extend_from_slice(b"/orders?limit=");
            push_u64(p, *rng.pick(&[10, 20, 50, 100]));
            if rng.percent(50) {
                p.extend_from_slice(b"&offset=");
                push_u64(p, rng.skewed(0, 20) * 10);
            }
            if rng.percent(25) {
                p.extend_from_slice(b"&status=shipped");
            }
        }
        Ep::ListProducts => {
            p.extend_from_slice(b"/api/v2/products?category=");
            p.extend_from_slice(rng.pick(CATEGORIES).as_bytes());
            p.extend_from_slice(b"&page=");
            push_u64(p, rng.skewed(1, 30));
            p.extend_from_slice(b"&sort=");
            p.extend_from_slice(rng.pick(SORTS).as_bytes());
        }
        Ep::GetProduct => {
            p.extend_from_slice(b"/api/v2/products/");
            push_u64(p, rng.range(1, 50_000));
        }
        Ep::Search => {
            p.extend_from_slice(b"/api/v1/search?q=");
            p.extend_from_slice(rng.pick(SEARCH_TERMS).as_bytes());
            p.extend_from_slice(b"&limit=25");
        }
        Ep::GetOrder | Ep::PatchOrder => {
            p.extend_from_slice(b"/api/v1/orders/");
            push_u64(p, rng.range(10_000, 9_999_999));
        }
        Ep::Health => p.extend_from_slice(b"/healthz"),
        Ep::CreateOrder => p.extend_from_slice(b"/api/v1/orders"),
        Ep::DeleteCartItem => {
            p.extend_from_slice(b"/api/v1/carts/");
            id(p, rng);
            p.extend_from_slice(b"/items/");
            push_u64(p, rng.range(1, 50_000));
        }
        Ep::AddCartItem => {
            p.extend_from_slice(b"/api/v1/carts/");
            id(p, rng);
            p.extend_from_slice(b"/items");
        }
        Ep::Login => p.extend_from_slice(b"/api/v1/auth/login"),
        Ep::CreatePayment => p.extend_from_slice(b"/api/v1/payments"),
    }
}

/// Status code by method, with the weights of a healthy service.
fn status(rng: &mut Rng, method: &str, ep: Ep) -> u16 {
    let (codes, weights): (&[u16], &[u32]) = match method {
        "GET" => (&[200, 304, 404, 301, 400, 500], &[82, 5, 6, 2, 3, 2]),
        "POST" if matches!(ep, Ep::Login) => (&[200, 400, 500], &[85, 12, 3]),
        "POST" => (&[201, 200, 400, 500], &[60, 20, 15, 5]),
        "PUT" | "PATCH" => (&[200, 204, 400, 404, 500], &[72, 12, 8, 6, 2]),
        _ => (&[204, 404, 500], &[80, 15, 5]),
    };
    codes[rng.weighted(weights)]
}

pub(super) fn exchange(
    c: &mut Content,
    rng: &mut Rng,
    peers: &Peers,
    ctx: ExchangeCtx,
    c2s: &mut Stream,
    s2c: &mut Stream,
) -> Written {
    let n = if ctx.safe_only { GET_ENDPOINTS } else { ENDPOINTS.len() };
    let mut w = [0u32; ENDPOINTS.len()];
    for (i, (_, weight)) in ENDPOINTS.iter().enumerate().take(n) {
        w[i] = *weight;
    }
    let ep = ENDPOINTS[rng.weighted(&w[..n])].0;
    let Shape { method, res, list } = shape(ep);
    let status = status(rng, method, ep);

    // Request.
    c.path.clear();
    write_path(&mut c.path, rng, ep);
    c.req_body.clear();
    let with_body = match method {
        "POST" | "PUT" | "PATCH" => true,
        "DELETE" => rng.percent(20),
        _ => false,
    };
    if with_body {
        match rng.weighted(&[95, 4, 1]) {
            0 => {
                let target = rng.skewed(20, 900) as usize;
                push_body(&mut c.req_body, rng, res, target);
            }
            1 => c.req_body.extend_from_slice(c.pool.plain(c.pool.pick(rng, PoolClass::Medium))),
            _ => c.req_body.extend_from_slice(c.pool.plain(c.pool.pick(rng, PoolClass::Large))),
        }
    }
    c.extra.clear();
    if status == 304 || (method == "GET" && rng.percent(5)) {
        c.extra.extend_from_slice(b"If-None-Match: W/\"");
        push_u64(&mut c.extra, rng.next_u32().into());
        c.extra.extend_from_slice(b"\"\r\n");
    }
    let accept: &[u8] = if rng.percent(80) { b"application/json" } else { b"*/*" };
    let spec = RequestSpec { method, accept, with_body, close: ctx.close == Close::Request };
    let path = write_request(c, rng, peers, spec, c2s);
    let request_body_len = c.req_body.len();

    // Response.
    c.extra.clear();
    c.resp_body.clear();
    let mut body = BodySrc::Fresh;
    match status {
        204 => body = BodySrc::None,
        304 => {
            body = BodySrc::None;
            c.extra.extend_from_slice(b"ETag: W/\"");
            push_u64(&mut c.extra, rng.next_u32().into());
            c.extra.extend_from_slice(b"\"\r\nCache-Control: private, max-age=60\r\n");
        }
        301 => {
            c.extra.extend_from_slice(b"Location: https://");
            c.extra.extend_from_slice(&peers.host);
            c.extra.extend_from_slice(&c2s.data[path.0..path.1]);
            c.extra.extend_from_slice(b"\r\n");
            if rng.percent(50) {
                c.resp_body.extend_from_slice(b"{\"message\":\"moved permanently\"}");
            }
        }
        400 | 404 | 500 => push_error(&mut c.resp_body, rng, status),
        _ if ep == Ep::Health => {
            c.resp_body.extend_from_slice(b"{\"status\":\"ok\",\"uptime_s\":");
            push_u64(&mut c.resp_body, rng.range(10, 10_000_000));
            c.resp_body.push(b'}');
        }
        _ if list => match rng.weighted(&[50, 38, 12]) {
            0 => {
                let target = rng.skewed(200, 1000) as usize;
                push_body(&mut c.resp_body, rng, res, target);
            }
            k => {
                let class = if k == 1 { PoolClass::Medium } else { PoolClass::Large };
                let idx = c.pool.pick(rng, class);
                body = BodySrc::Pool { idx, gzip: peers.accept_gzip && rng.percent(55) };
            }
        },
        _ => {
            let filler = if rng.percent(20) { rng.skewed(1, 60) as usize } else { 0 };
            push_object(&mut c.resp_body, rng, res, filler);
        }
    }
    if status == 201 {
        c.extra.extend_from_slice(b"Location: ");
        c.extra.extend_from_slice(&c2s.data[path.0..path.1]);
        c.extra.extend_from_slice(b"/");
        push_u64(&mut c.extra, rng.range(10_000, 9_999_999));
        c.extra.extend_from_slice(b"\r\n");
    }
    if status == 200 && method == "GET" && rng.percent(30) {
        c.extra.extend_from_slice(b"ETag: W/\"");
        push_u64(&mut c.extra, rng.next_u32().into());
        c.extra.extend_from_slice(b"\"\r\n");
    }
    if status < 300 && rng.percent(40) {
        c.extra.extend_from_slice(b"Cache-Control: no-store\r\n");
    }
    let framing = match body {
        BodySrc::None => Framing::None,
        _ if ctx.close == Close::Response && rng.percent(20) => Framing::Close,
        _ if rng.percent(22) => Framing::Chunked,
        _ => Framing::ContentLength,
    };
    let content_type = "application/json; charset=utf-8";
    let r = Response { status, content_type, body, framing, exact_chunks: false };
    let response_body_len = write_response(c, rng, peers, ctx, r, s2c);
    Written {
        method,
        path,
        status,
        request_body_len,
        response_body_len,
        framing,
        gzip: matches!(body, BodySrc::Pool { gzip: true, .. }),
        content_type: if response_body_len == 0 { "" } else { "application/json" },
        mcp_method: None,
    }
}
