//! Entry point: TCP reassembly. Each 12-byte record is a segment header (side, flags, sequence
//! offset, length) over a fixed pattern, so the fuzzer explores ordering, overlaps, holes,
//! wrap-around and FIN/RST placement directly. Small caps make the limits reachable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reassembly::decode::{Packet, TcpFlags};
use reassembly::{Config, Engine, Timestamp};
use std::borrow::Cow;

fuzz_target!(|data: &[u8]| {
    let mut cfg = Config::default();
    cfg.tcp.max_holes = 4;
    cfg.tcp.max_flow_buffered_bytes = 4096;
    cfg.tcp.max_total_buffered_bytes = 8192;
    cfg.tcp.max_flows = 4;
    cfg.http.max_body_bytes = 512;
    let mut engine = Engine::new(cfg);
    let mut out = Vec::new();
    let stream: Vec<u8> = b"GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nworld\r\n0\r\n\r\n"
        .iter()
        .copied()
        .cycle()
        .take(4096)
        .collect();
    for (i, rec) in data.chunks_exact(12).enumerate() {
        let side = rec[0] & 1;
        let port = 40000 + u16::from(rec[0] >> 6);
        let flags = TcpFlags { syn: rec[1] & 1 != 0, ack: rec[1] & 2 != 0, fin: rec[1] & 4 != 0, rst: rec[1] & 8 != 0 };
        let seq = u32::from_le_bytes([rec[2], rec[3], rec[4], rec[5]]);
        let ack = u32::from_le_bytes([rec[6], rec[7], rec[8], rec[9]]);
        let off = (usize::from(rec[10]) * 13) % stream.len();
        let len = usize::from(rec[11]).min(stream.len() - off);
        let (src, dst) = if side == 0 { ("10.0.0.1", "10.0.0.2") } else { ("10.0.0.2", "10.0.0.1") };
        let (sp, dp) = if side == 0 { (port, 80) } else { (80, port) };
        let p = Packet {
            vni: 0,
            src: src.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            dst: dst.parse().unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
            src_port: sp,
            dst_port: dp,
            seq,
            ack,
            flags,
            payload: Cow::Borrowed(&stream[off..off + len]),
        };
        engine.on_packet(Timestamp(i as u64 * 10_000), &p, &mut out);
    }
    engine.flush_all(&mut out);
    assert_eq!(engine.stats().buffered_bytes_now, 0);
    assert_eq!(engine.stats().body_bytes_held_now, 0);
});
