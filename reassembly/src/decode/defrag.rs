//! Bounded IPv4 defragmentation (RFC 791 §3.2).
//!
//! Unlike etherparse's `IpDefragPool`, every datagram and every byte held here is under a cap
//! from [`DefragConfig`]; what does not fit is dropped and counted. Overlapping fragments keep the
//! first copy (the safe choice against overlap-based evasion is to flag, which the TCP layer does
//! again on its own data).

use crate::config::DefragConfig;
use crate::stats::Stats;
use crate::Timestamp;
use std::collections::HashMap;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    proto: u8,
}

#[derive(Debug)]
struct Datagram {
    first_seen: Timestamp,
    /// Payload bytes by offset; `have` marks which bytes arrived.
    data: Vec<u8>,
    have: Vec<(usize, usize)>,
    total_len: Option<usize>,
}

/// IPv4 fragment reassembly state.
#[derive(Debug)]
pub(crate) struct Defragmenter {
    cfg: DefragConfig,
    datagrams: HashMap<Key, Datagram>,
    bytes: usize,
}

/// Largest IPv4 payload.
const MAX_DATAGRAM: usize = 65_535;

/// One fragment.
pub(crate) struct Fragment<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub id: u16,
    pub proto: u8,
    /// Offset in bytes.
    pub offset: usize,
    pub more: bool,
    pub payload: &'a [u8],
}

impl Defragmenter {
    pub(crate) fn new(cfg: DefragConfig) -> Self {
        Defragmenter { cfg, datagrams: HashMap::new(), bytes: 0 }
    }

    /// Adds a fragment; returns the whole payload when this fragment completed a datagram.
    pub(crate) fn add(&mut self, now: Timestamp, f: Fragment<'_>, stats: &mut Stats) -> Option<Vec<u8>> {
        stats.ip_fragments += 1;
        self.expire(now, stats);
        let end = f.offset + f.payload.len();
        if end > MAX_DATAGRAM {
            stats.drop_ip += 1;
            return None;
        }
        let key = Key { src: f.src, dst: f.dst, id: f.id, proto: f.proto };
        if !self.datagrams.contains_key(&key) && self.datagrams.len() >= self.cfg.max_datagrams {
            stats.drop_defrag_cap += 1;
            return None;
        }
        let d = self.datagrams.entry(key).or_insert_with(|| Datagram {
            first_seen: now,
            data: Vec::new(),
            have: Vec::new(),
            total_len: None,
        });
        let grow = end.saturating_sub(d.data.len());
        if self.bytes + grow > self.cfg.max_total_bytes {
            stats.drop_defrag_cap += 1;
            return None;
        }
        if grow > 0 {
            d.data.resize(end, 0);
            self.bytes += grow;
        }
        // First copy wins: only write bytes not yet received.
        let mut pos = f.offset;
        let mut sorted = d.have.clone();
        sorted.sort_unstable();
        for &(s, e) in &sorted {
            if e <= pos || s >= end {
                continue;
            }
            if s > pos {
                d.data[pos..s].copy_from_slice(&f.payload[pos - f.offset..s - f.offset]);
            }
            pos = pos.max(e);
        }
        if pos < end {
            d.data[pos..end].copy_from_slice(&f.payload[pos - f.offset..]);
        }
        d.have.push((f.offset, end));
        if !f.more {
            d.total_len = Some(end);
        }
        let total = d.total_len?;
        d.have.sort_unstable();
        let mut covered = 0;
        for &(s, e) in &d.have {
            if s > covered {
                return None;
            }
            covered = covered.max(e);
        }
        if covered < total {
            return None;
        }
        let mut d = self.datagrams.remove(&key)?;
        self.bytes -= d.data.len();
        d.data.truncate(total);
        stats.ip_reassembled += 1;
        Some(d.data)
    }

    fn expire(&mut self, now: Timestamp, stats: &mut Stats) {
        let timeout = self.cfg.timeout_secs * 1_000_000;
        let before = self.datagrams.len();
        let mut freed = 0;
        self.datagrams.retain(|_, d| {
            let keep = now.micros_since(d.first_seen) <= timeout;
            if !keep {
                freed += d.data.len();
            }
            keep
        });
        self.bytes -= freed;
        stats.drop_defrag_timeout += (before - self.datagrams.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(offset: usize, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment { src: Ipv4Addr::LOCALHOST, dst: Ipv4Addr::LOCALHOST, id: 7, proto: 6, offset, more, payload }
    }

    #[test]
    fn reassembles_out_of_order_and_first_copy_wins() {
        let mut d = Defragmenter::new(DefragConfig::default());
        let mut s = Stats::default();
        let t = Timestamp(0);
        assert!(d.add(t, frag(8, false, b"WORLD!!!"), &mut s).is_none());
        assert!(d.add(t, frag(4, true, b"XXXXxxxx"), &mut s).is_none());
        let out = d.add(t, frag(0, true, b"HELLyyyy"), &mut s);
        assert_eq!(out.as_deref(), Some(&b"HELLXXXXWORLD!!!"[..]));
        assert_eq!(s.ip_reassembled, 1);
        assert_eq!(d.bytes, 0);
    }

    #[test]
    fn caps_and_timeouts_are_counted() {
        let mut d = Defragmenter::new(DefragConfig { max_datagrams: 1, max_total_bytes: 16, timeout_secs: 1 });
        let mut s = Stats::default();
        assert!(d.add(Timestamp(0), frag(0, true, b"aaaaaaaa"), &mut s).is_none());
        let mut other = frag(0, true, b"b");
        other.id = 8;
        assert!(d.add(Timestamp(0), other, &mut s).is_none());
        assert_eq!(s.drop_defrag_cap, 1);
        assert!(d.add(Timestamp(0), frag(8, true, &[0; 16]), &mut s).is_none());
        assert_eq!(s.drop_defrag_cap, 2);
        let mut third = frag(0, true, b"c");
        third.id = 9;
        assert!(d.add(Timestamp(5_000_000), third, &mut s).is_none());
        assert_eq!(s.drop_defrag_timeout, 1);
    }
}
