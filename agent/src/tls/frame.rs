//! A synthesized [`Segment`] as a raw IP frame (`LinkType::Raw`), so TLS plaintext takes the
//! same path through the pipeline as captured packets (batching, sharding, the engine's decoder).
//! etherparse builds the headers; the payload is at most one kernel chunk (16 KiB), far below the
//! IP length limit.

use super::stream::Segment;
use etherparse::PacketBuilder;
use std::net::{IpAddr, SocketAddr};

/// TCP window advertised in synthesized segments (any value; the engine ignores it).
const WINDOW: u16 = 65_535;

/// Writes `s` into `buf` (cleared first). Mixed address families are written as IPv6 with
/// IPv4-mapped addresses.
pub fn build(s: &Segment<'_>, buf: &mut Vec<u8>) {
    buf.clear();
    let ip = match (s.src, s.dst) {
        (SocketAddr::V4(a), SocketAddr::V4(b)) => PacketBuilder::ipv4(a.ip().octets(), b.ip().octets(), 64),
        (a, b) => PacketBuilder::ipv6(v6(a.ip()), v6(b.ip()), 64),
    };
    let mut tcp = ip.tcp(s.src.port(), s.dst.port(), s.seq, WINDOW);
    if s.ack_flag {
        tcp = tcp.ack(s.ack);
    }
    if s.syn {
        tcp = tcp.syn();
    }
    if s.fin {
        tcp = tcp.fin();
    }
    // Writing to a Vec cannot fail; a payload over the IP limit is a bug caught by the tests.
    if let Err(e) = tcp.write(buf, s.payload) {
        debug_assert!(false, "synthesized segment: {e}");
        buf.clear();
    }
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reassembly::decode::Decoder;
    use reassembly::{LinkType, Stats, Timestamp};

    #[test]
    fn frames_decode_back_to_the_segment() {
        for (src, dst) in [("10.0.0.1:40000", "10.0.0.2:443"), ("[::1]:40000", "[::1]:8443")] {
            let s = Segment {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                seq: 7,
                ack: 9,
                syn: false,
                ack_flag: true,
                fin: true,
                payload: &[b'x'; 16 * 1024],
                ts_us: 1,
                pid: 1,
            };
            let mut buf = Vec::new();
            build(&s, &mut buf);
            let mut stats = Stats::default();
            let mut d = Decoder::new(Default::default());
            let p = d.decode(Timestamp(1), LinkType::Raw, &buf, &mut stats).expect("decodes");
            assert_eq!((p.src, p.src_port, p.dst, p.dst_port), (s.src.ip(), s.src.port(), s.dst.ip(), s.dst.port()));
            assert_eq!((p.seq, p.ack, p.flags.fin, p.flags.syn), (7, 9, true, false));
            assert_eq!(p.payload.len(), 16 * 1024);
        }
    }
}
