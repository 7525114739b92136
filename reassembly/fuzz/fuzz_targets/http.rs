//! Entry point: HTTP/1.x parsing. The input is split into a client stream and a server stream
//! (at the first 0xFF), each delivered after a clean handshake in segments whose sizes come from
//! the input, so heads, bodies and framing see arbitrary bytes at arbitrary boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reassembly::decode::{Packet, TcpFlags};
use reassembly::{Config, Engine, Timestamp};
use std::borrow::Cow;

fn seg<'a>(client: bool, seq: u32, ack: u32, flags: TcpFlags, payload: &'a [u8]) -> Packet<'a> {
    let c = std::net::IpAddr::from([10, 0, 0, 1]);
    let s = std::net::IpAddr::from([10, 0, 0, 2]);
    let (src, dst, sp, dp) = if client { (c, s, 40000, 80) } else { (s, c, 80, 40000) };
    Packet { vni: 0, src, dst, src_port: sp, dst_port: dp, seq, ack, flags, payload: Cow::Borrowed(payload) }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mss, data)) = data.split_first() else { return };
    let mss = usize::from(mss).max(1);
    let split = data.iter().position(|b| *b == 0xFF).unwrap_or(data.len());
    let (client, server) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let mut cfg = Config::default();
    cfg.http.max_body_bytes = 1024;
    cfg.http.max_head_bytes = 2048;
    cfg.http.max_pending_requests = 8;
    cfg.http.max_decoded_body_bytes = 4096;
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    let ack = TcpFlags { ack: true, ..TcpFlags::default() };
    let t = Timestamp(1);
    e.on_packet(t, &seg(true, 0, 0, TcpFlags { syn: true, ..TcpFlags::default() }, b""), &mut out);
    e.on_packet(t, &seg(false, 0, 1, TcpFlags { syn: true, ack: true, ..TcpFlags::default() }, b""), &mut out);
    let (mut cs, mut ss) = (1u32, 1u32);
    let (mut ci, mut si) = (client.chunks(mss), server.chunks(mss));
    loop {
        let a = ci.next();
        if let Some(d) = a {
            e.on_packet(t, &seg(true, cs, ss, ack, d), &mut out);
            cs = cs.wrapping_add(d.len() as u32);
        }
        let b = si.next();
        if let Some(d) = b {
            e.on_packet(t, &seg(false, ss, cs, ack, d), &mut out);
            ss = ss.wrapping_add(d.len() as u32);
        }
        if a.is_none() && b.is_none() {
            break;
        }
    }
    e.on_packet(t, &seg(true, cs, ss, TcpFlags { fin: true, ack: true, ..TcpFlags::default() }, b""), &mut out);
    e.on_packet(t, &seg(false, ss, cs + 1, TcpFlags { fin: true, ack: true, ..TcpFlags::default() }, b""), &mut out);
    e.flush_all(&mut out);
    assert_eq!(e.stats().body_bytes_held_now, 0, "every held body byte is released");
    for ex in &out {
        assert!(ex.request.body.data.len() <= 4096);
        assert!(ex.response.as_ref().map_or(0, |r| r.body.data.len()) <= 4096);
    }
});
