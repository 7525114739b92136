//! TCP: flow keys and per-direction stream reassembly.

pub mod assembler;

pub use assembler::{Assembler, Budget, Chunk, Chunks, Limits};

use crate::decode::Packet;
use std::net::SocketAddr;

/// A connection, independent of direction: endpoint `a` sorts before endpoint `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// VXLAN network identifier (flows in different VNIs are different flows).
    pub vni: u32,
    /// The lower endpoint.
    pub a: SocketAddr,
    /// The higher endpoint.
    pub b: SocketAddr,
}

impl FlowKey {
    /// The key of a packet, and whether the packet was sent by endpoint `b`.
    pub fn of(p: &Packet<'_>) -> (FlowKey, usize) {
        let src = SocketAddr::new(p.src, p.src_port);
        let dst = SocketAddr::new(p.dst, p.dst_port);
        if src <= dst {
            (FlowKey { vni: p.vni, a: src, b: dst }, 0)
        } else {
            (FlowKey { vni: p.vni, a: dst, b: src }, 1)
        }
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
