//! JSON bodies: small ones written fresh for every exchange (ids, names and prices vary), and a
//! pool of larger list responses built once per capture with their gzip encodings, so the hot
//! loop copies bytes instead of formatting or compressing them.

use std::io::Write as _;

use flate2::{Compression, GzBuilder};

use super::vocab::*;
use crate::rng::Rng;

/// Appends the decimal digits of `n`.
pub(crate) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `n` in hexadecimal, without leading zeros.
pub(crate) fn push_hex(buf: &mut Vec<u8>, mut n: u64, upper: bool) {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = digits[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends `len` random characters from `alphabet`.
pub(crate) fn push_random(buf: &mut Vec<u8>, rng: &mut Rng, alphabet: &[u8], len: usize) {
    for _ in 0..len {
        buf.push(*rng.pick(alphabet));
    }
}

pub(crate) const HEX: &[u8] = b"0123456789abcdef";
pub(crate) const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A version-4 UUID in its canonical text form.
pub(crate) fn push_uuid(buf: &mut Vec<u8>, rng: &mut Rng) {
    let v = rng.next_u64();
    let w = rng.next_u64();
    let bytes: [u8; 16] = {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&v.to_be_bytes());
        b[8..].copy_from_slice(&w.to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        b
    };
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf.push(b'-');
        }
        buf.push(HEX[usize::from(byte >> 4)]);
        buf.push(HEX[usize::from(byte & 0xf)]);
    }
}

/// `12.34`-style price.
fn push_price(buf: &mut Vec<u8>, rng: &mut Rng) {
    push_u64(buf, rng.skewed(1, 900));
    buf.push(b'.');
    let cents = rng.below(100);
    buf.push(b'0' + (cents / 10) as u8);
    buf.push(b'0' + (cents % 10) as u8);
}

fn push2(buf: &mut Vec<u8>, n: u64) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// An RFC 3339 timestamp in 2023–2024.
fn push_timestamp(buf: &mut Vec<u8>, rng: &mut Rng) {
    push_u64(buf, rng.range(2023, 2024));
    buf.push(b'-');
    push2(buf, rng.range(1, 12));
    buf.push(b'-');
    push2(buf, rng.range(1, 28));
    buf.push(b'T');
    push2(buf, rng.below(24));
    buf.push(b':');
    push2(buf, rng.below(60));
    buf.push(b':');
    push2(buf, rng.below(60));
    buf.push(b'Z');
}

fn push_words(buf: &mut Vec<u8>, rng: &mut Rng, n: usize) {
    for i in 0..n {
        if i > 0 {
            buf.push(b' ');
        }
        buf.extend_from_slice(rng.pick(LOREM).as_bytes());
    }
}

fn push_name(buf: &mut Vec<u8>, first: &str, last: &str) {
    for (i, word) in [first, last].iter().enumerate() {
        if i > 0 {
            buf.push(b' ');
        }
        let b = word.as_bytes();
        buf.push(b[0].to_ascii_uppercase());
        buf.extend_from_slice(&b[1..]);
    }
}

/// What an API object describes; picks the fields of a generated JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    User,
    Order,
    Product,
    CartItem,
    Payment,
    Session,
}

impl Resource {
    pub(crate) const ALL: [Resource; 6] =
        [Resource::User, Resource::Order, Resource::Product, Resource::CartItem, Resource::Payment, Resource::Session];
}

/// One JSON object of `res`, with an optional filler text field of `filler_words` words.
pub(crate) fn push_object(buf: &mut Vec<u8>, rng: &mut Rng, res: Resource, filler_words: usize) {
    match res {
        Resource::User => {
            let first = *rng.pick(FIRST_NAMES);
            let last = *rng.pick(LAST_NAMES);
            buf.extend_from_slice(b"{\"id\":");
            push_u64(buf, rng.skewed(1, 999_999));
            buf.extend_from_slice(b",\"name\":\"");
            push_name(buf, first, last);
            buf.extend_from_slice(b"\",\"email\":\"");
            buf.extend_from_slice(first.as_bytes());
            buf.push(b'.');
            buf.extend_from_slice(last.as_bytes());
            buf.extend_from_slice(b"@example.com\",\"role\":\"");
            buf.extend_from_slice(rng.pick(ROLES).as_bytes());
            buf.extend_from_slice(b"\",\"active\":");
            buf.extend_from_slice(if rng.percent(90) { b"true" } else { b"false" });
            buf.extend_from_slice(b",\"city\":\"");
            buf.extend_from_slice(rng.pick(CITIES).as_bytes());
            buf.extend_from_slice(b"\",\"created_at\":\"");
            push_timestamp(buf, rng);
            buf.push(b'"');
        }
        Resource::Order => {
            buf.extend_from_slice(b"{\"id\":");
            push_u64(buf, rng.range(10_000, 9_999_999));
            buf.extend_from_slice(b",\"user_id\":");
            push_u64(buf, rng.skewed(1, 999_999));
            buf.extend_from_slice(b",\"status\":\"");
            buf.extend_from_slice(rng.pick(ORDER_STATUS).as_bytes());
            buf.extend_from_slice(b"\",\"items\":[");
            for i in 0..rng.range(1, 3) {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(b"{\"sku\":\"SKU-");
                push_u64(buf, rng.range(1000, 99_999));
                buf.extend_from_slice(b"\",\"qty\":");
                push_u64(buf, rng.skewed(1, 10));
                buf.extend_from_slice(b",\"price\":");
                push_price(buf, rng);
                buf.push(b'}');
            }
            buf.extend_from_slice(b"],\"total\":");
            push_price(buf, rng);
            buf.extend_from_slice(b",\"currency\":\"");
            buf.extend_from_slice(rng.pick(CURRENCIES).as_bytes());
            buf.extend_from_slice(b"\",\"placed_at\":\"");
            push_timestamp(buf, rng);
            buf.push(b'"');
        }
        Resource::Product => {
            buf.extend_from_slice(b"{\"id\":");
            push_u64(buf, rng.range(1, 50_000));
            buf.extend_from_slice(b",\"name\":\"");
            buf.extend_from_slice(rng.pick(PRODUCTS).as_bytes());
            buf.extend_from_slice(b"\",\"category\":\"");
            buf.extend_from_slice(rng.pick(CATEGORIES).as_bytes());
            buf.extend_from_slice(b"\",\"price\":");
            push_price(buf, rng);
            buf.extend_from_slice(b",\"in_stock\":");
            push_u64(buf, rng.skewed(0, 500));
            buf.extend_from_slice(b",\"rating\":");
            push_u64(buf, rng.range(1, 4));
            buf.push(b'.');
            push_u64(buf, rng.below(10));
        }
        Resource::CartItem => {
            buf.extend_from_slice(b"{\"product_id\":");
            push_u64(buf, rng.range(1, 50_000));
            buf.extend_from_slice(b",\"quantity\":");
            push_u64(buf, rng.skewed(1, 5));
            buf.extend_from_slice(b",\"gift\":");
            buf.extend_from_slice(if rng.percent(10) { b"true" } else { b"false" });
        }
        Resource::Payment => {
            buf.extend_from_slice(b"{\"payment_id\":\"pay_");
            push_random(buf, rng, B64URL, 16);
            buf.extend_from_slice(b"\",\"amount\":");
            push_price(buf, rng);
            buf.extend_from_slice(b",\"currency\":\"");
            buf.extend_from_slice(rng.pick(CURRENCIES).as_bytes());
            buf.extend_from_slice(b"\",\"method\":\"card\",\"card_last4\":\"");
            push_u64(buf, rng.range(1000, 9999));
            buf.extend_from_slice(b"\",\"captured\":");
            buf.extend_from_slice(if rng.percent(80) { b"true" } else { b"false" });
        }
        Resource::Session => {
            let first = *rng.pick(FIRST_NAMES);
            buf.extend_from_slice(b"{\"username\":\"");
            buf.extend_from_slice(first.as_bytes());
            push_u64(buf, rng.below(100));
            buf.extend_from_slice(b"\",\"password\":\"");
            push_random(buf, rng, B64URL, 14);
            buf.extend_from_slice(b"\",\"remember_me\":");
            buf.extend_from_slice(if rng.percent(50) { b"true" } else { b"false" });
        }
    }
    if filler_words > 0 {
        buf.extend_from_slice(b",\"notes\":\"");
        push_words(buf, rng, filler_words);
        buf.push(b'"');
    }
    buf.push(b'}');
}

/// A body of about `target` bytes (never much less): one object when that is enough, else a
/// paginated list `{"data":[…],"page":…,"per_page":…,"total":…}`.
pub(crate) fn push_body(buf: &mut Vec<u8>, rng: &mut Rng, res: Resource, target: usize) {
    let start = buf.len();
    if target < 200 {
        let words = if target > 120 { (target - 100) / 6 } else { 0 };
        push_object(buf, rng, res, words);
        return;
    }
    buf.extend_from_slice(b"{\"data\":[");
    let mut n = 0u64;
    while buf.len() - start + 40 < target {
        if n > 0 {
            buf.push(b',');
        }
        let filler = rng.skewed(0, 12) as usize;
        push_object(buf, rng, res, filler);
        n += 1;
    }
    buf.extend_from_slice(b"],\"page\":");
    push_u64(buf, rng.skewed(1, 40));
    buf.extend_from_slice(b",\"per_page\":");
    push_u64(buf, n);
    buf.extend_from_slice(b",\"total\":");
    push_u64(buf, n + rng.below(10_000));
    buf.push(b'}');
}

/// An error body as most JSON APIs send it.
pub(crate) fn push_error(buf: &mut Vec<u8>, rng: &mut Rng, status: u16) {
    let (code, msg): (&[u8], &[u8]) = match status {
        400 => (b"invalid_request", b"field 'quantity' must be a positive integer"),
        401 => (b"unauthorized", b"missing or expired token"),
        404 => (b"not_found", b"resource does not exist"),
        _ => (b"internal_error", b"an unexpected error occurred; retry later"),
    };
    buf.extend_from_slice(b"{\"error\":{\"code\":\"");
    buf.extend_from_slice(code);
    buf.extend_from_slice(b"\",\"message\":\"");
    buf.extend_from_slice(msg);
    buf.extend_from_slice(b"\",\"request_id\":\"");
    push_uuid(buf, rng);
    buf.extend_from_slice(b"\"}}");
}

/// Target sizes of the pooled bodies, in bytes: 1 KB to 200 KB.
const POOL_SIZES: &[usize] = &[
    1_024, 1_536, 2_048, 3_072, 4_096, 6_144, 8_192, 12_288, 16_384, 24_576, 32_768, 49_152, 65_536, 98_304, 131_072,
    163_840, 204_800,
];
const POOL_VARIANTS: usize = 2;
/// Index in `POOL_SIZES` of the first "large" size (24 KB).
const POOL_LARGE_FROM: usize = 9;

/// gzip level: fixed, so the same input compresses to the same bytes (flate2's default
/// backend, miniz_oxide, is deterministic for a level; the header's mtime is 0 and its OS
/// byte 255).
const GZIP_LEVEL: u32 = 6;

#[derive(Debug)]
struct PoolEntry {
    plain: Vec<u8>,
    /// Built on first use, then reused for the rest of the capture.
    gzip: Option<Vec<u8>>,
}

/// Larger JSON bodies, built once per capture from the seed.
#[derive(Debug)]
pub(crate) struct BodyPool {
    entries: Vec<PoolEntry>,
}

/// How big a pooled body to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolClass {
    /// 1–16 KB.
    Medium,
    /// 24–200 KB.
    Large,
}

impl BodyPool {
    pub(crate) fn new(seed: u64) -> BodyPool {
        let mut rng = Rng::derive(seed, u64::MAX);
        let mut entries = Vec::with_capacity(POOL_SIZES.len() * POOL_VARIANTS);
        for &size in POOL_SIZES {
            for _ in 0..POOL_VARIANTS {
                let res = *rng.pick(&Resource::ALL);
                let mut plain = Vec::with_capacity(size + 512);
                push_body(&mut plain, &mut rng, res, size);
                entries.push(PoolEntry { plain, gzip: None });
            }
        }
        BodyPool { entries }
    }

    /// Index of a pooled body of `class`, skewed towards the smaller sizes of the class.
    pub(crate) fn pick(&self, rng: &mut Rng, class: PoolClass) -> usize {
        let (lo, hi) = match class {
            PoolClass::Medium => (0, POOL_LARGE_FROM - 1),
            PoolClass::Large => (POOL_LARGE_FROM, POOL_SIZES.len() - 1),
        };
        let size = rng.skewed(lo as u64, hi as u64) as usize;
        size * POOL_VARIANTS + rng.below(POOL_VARIANTS as u64) as usize
    }

    pub(crate) fn plain(&self, idx: usize) -> &[u8] {
        &self.entries[idx].plain
    }

    /// The gzip encoding of body `idx` (RFC 1952).
    pub(crate) fn gzip(&mut self, idx: usize) -> &[u8] {
        let e = &mut self.entries[idx];
        e.gzip.get_or_insert_with(|| gzip(&e.plain))
    }
}

fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::with_capacity(plain.len() / 3 + 64), Compression::new(GZIP_LEVEL));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(plain);
    enc.finish().unwrap_or_default()
}
