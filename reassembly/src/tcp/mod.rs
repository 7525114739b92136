//! TCP: flow keys and per-direction stream reassembly.

pub mod assembler;

pub use assembler::{Assembler, Budget, Chunk, Chunks, Limits};

use crate::decode::Packet;
use std::net::SocketAddr;

/// A connection, independent of direction: endpoint `a` sorts before endpoint `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// VXLAN network identifier (flows in different VNIs are different flows).
    pub vni: u32,
    /// The lower endpoint.
    pub a: SocketAddr,
    /// The higher endpoint.
    pub b: SocketAddr,
}

impl std::hash::Hash for FlowKey {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (addrs, ports) = self.words();
        state.write_u64(addrs);
        state.write_u64(ports);
    }
}

impl FlowKey {
    /// The key of a packet, and whether the packet was sent by endpoint `b`.
    pub fn of(p: &Packet<'_>) -> (FlowKey, usize) {
        let src = SocketAddr::new(p.src, p.src_port);
        let dst = SocketAddr::new(p.dst, p.dst_port);
        // `SocketAddr`'s order (address, then port), for IPv4 as one integer compare.
        let src_first = match (p.src, p.dst) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                (u64::from(s.to_bits()) << 16 | u64::from(p.src_port))
                    <= (u64::from(d.to_bits()) << 16 | u64::from(p.dst_port))
            }
            _ => src <= dst,
        };
        if src_first {
            (FlowKey { vni: p.vni, a: src, b: dst }, 0)
        } else {
            (FlowKey { vni: p.vni, a: dst, b: src }, 1)
        }
    }

    /// The key as two words for the flow table's hasher: IPv4 endpoints (nearly all flows)
    /// pack into them exactly; IPv6 addresses are folded in (equal keys still hash equally,
    /// which is all `Hash` needs). `SocketAddr`'s derived `Hash` writes every enum tag and
    /// field separately: 3 hash lookups a packet made it ~3 % of the replay.
    #[inline]
    fn words(&self) -> (u64, u64) {
        fn ip(addr: std::net::IpAddr) -> u64 {
            match addr {
                std::net::IpAddr::V4(v) => u64::from(v.to_bits()),
                std::net::IpAddr::V6(v) => {
                    let bits = v.to_bits();
                    (bits as u64) ^ ((bits >> 64) as u64).rotate_left(17) ^ (1 << 63)
                }
            }
        }
        let ports = (u64::from(self.a.port()) << 16) | u64::from(self.b.port()) | (u64::from(self.vni) << 32);
        (ip(self.a.ip()) ^ ip(self.b.ip()).rotate_left(32), ports)
    }

    /// Endpoint by side index (0 = `a`, 1 = `b`).
    pub fn endpoint(&self, side: usize) -> SocketAddr {
        if side == 0 {
            self.a
        } else {
            self.b
        }
    }

    /// A stable hash for sharding flows across threads (FNV-1a; the same on every run and
    /// platform, unlike `std`'s randomized hasher). Both directions hash alike.
    pub fn shard_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(&self.vni.to_be_bytes());
        for ep in [self.a, self.b] {
            match ep.ip() {
                std::net::IpAddr::V4(v) => eat(&v.octets()),
                std::net::IpAddr::V6(v) => eat(&v.octets()),
            }
            eat(&ep.port().to_be_bytes());
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::TcpFlags;
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn packet(src: SocketAddr, dst: SocketAddr, vni: u32) -> Packet<'static> {
        Packet {
            vni,
            src: src.ip(),
            dst: dst.ip(),
            src_port: src.port(),
            dst_port: dst.port(),
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            payload: std::borrow::Cow::Borrowed(&[]),
        }
    }

    fn addr() -> impl Strategy<Value = SocketAddr> {
        // Few distinct values, so that equal addresses and ports come up often.
        let v4 = (0u32..4, 0u16..3)
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from_bits(ip << 24 | ip)), port));
        let v6 = (0u128..3, 0u16..3)
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from_bits(ip << 100 | ip)), port));
        prop_oneof![v4, v6]
    }

    proptest! {
        /// Both directions give one key, ordered as `SocketAddr` orders, and equal keys hash
        /// alike (the flow table's hasher is fed two words, not the fields).
        #[test]
        fn both_directions_give_one_key(x in addr(), y in addr(), vni in 0u32..2) {
            let (k1, s1) = FlowKey::of(&packet(x, y, vni));
            let (k2, s2) = FlowKey::of(&packet(y, x, vni));
            prop_assert_eq!(k1, k2);
            prop_assert!(k1.a <= k1.b);
            prop_assert_eq!(s1, usize::from(x > y));
            prop_assert_eq!(k1.endpoint(s1), x);
            if x != y {
                prop_assert_ne!(s1, s2);
            }
            let hasher = ahash::RandomState::new();
            prop_assert_eq!(hasher.hash_one(k1), hasher.hash_one(k2));
        }
    }
}
