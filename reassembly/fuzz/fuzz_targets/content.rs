//! Entry point: content decoding. The input (after a selector byte) is the body of a response
//! whose `Content-Encoding` the selector picks (gzip, deflate, br, zstd, or two stacked), so the
//! decoders and the gzip member framing see arbitrary, truncated and corrupt streams. The decoded
//! body never exceeds its cap and the exchange is always reported.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reassembly::decode::{Packet, TcpFlags};
use reassembly::{Config, Engine, Timestamp};
use std::borrow::Cow;

const CODINGS: [&str; 6] = ["gzip", "deflate", "br", "zstd", "gzip, gzip", "x-gzip"];
const CAP: usize = 64 << 10;

fn seg(client: bool, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Packet<'_> {
    let c = std::net::IpAddr::from([10, 0, 0, 1]);
    let s = std::net::IpAddr::from([10, 0, 0, 2]);
    let (src, dst, sp, dp) = if client { (c, s, 40000, 80) } else { (s, c, 80, 40000) };
    Packet { vni: 0, src, dst, src_port: sp, dst_port: dp, seq, ack, flags, payload: Cow::Borrowed(payload) }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let coding = CODINGS[usize::from(selector) % CODINGS.len()];
    let mut cfg = Config::default();
    cfg.http.max_decoded_body_bytes = CAP;
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    let t = Timestamp(1);
    let ack = TcpFlags { ack: true, ..TcpFlags::default() };
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    response.extend_from_slice(body);
    e.on_packet(t, &seg(true, 0, 0, TcpFlags { syn: true, ..TcpFlags::default() }, b""), &mut out);
    e.on_packet(t, &seg(false, 0, 1, TcpFlags { syn: true, ack: true, ..TcpFlags::default() }, b""), &mut out);
    e.on_packet(t, &seg(true, 1, 1, ack, request), &mut out);
    let mut seq = 1u32;
    for chunk in response.chunks(1400) {
        e.on_packet(t, &seg(false, seq, 1 + request.len() as u32, ack, chunk), &mut out);
        seq = seq.wrapping_add(chunk.len() as u32);
    }
    e.flush_all(&mut out);
    assert_eq!(out.len(), 1, "one exchange, whatever the body");
    let r = out[0].response.as_ref().expect("the response is complete");
    assert!(r.body.data.len() <= CAP, "decoded body within its cap");
});
