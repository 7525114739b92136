//! The one-screen summary printed after a replay.

use reassembly::{HttpExchange, Stats};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// Tallies of what was written.
#[derive(Debug, Default)]
pub struct Summary {
    /// Hosts by the 64-bit hash of their name, which the endpoint's hash reuses: one hash of the
    /// host per exchange instead of two, and no name comparison (a collision between two names
    /// would merge their tallies, as one between endpoints would count them once).
    hosts: HashMap<u64, HostTally, std::hash::BuildHasherDefault<IdentityHasher>>,
    /// Endpoints (host, method, path) counted by a 64-bit hash: no allocation per exchange. One
    /// set for all hosts: the hash includes the host, so an endpoint new to the set is new to its
    /// host, and the host's tally only counts it (a set per host as well cost a second insert,
    /// about 1.5 % of a replay).
    endpoints: EndpointSet,
    hasher: ahash::RandomState,
    /// `count_all`'s hashes of a batch (kept for its allocation).
    keys: Vec<(u64, u64)>,
    unknown_links: BTreeMap<u32, u64>,
}

/// The host an exchange is counted under: its `Host` field, or the server's address.
fn host_of(ex: &HttpExchange) -> Cow<'_, str> {
    match ex.request_header("host") {
        Some(h) => Cow::Borrowed(h),
        None => Cow::Owned(ex.conn.server.to_string()),
    }
}

/// A set of 64-bit hashes: open addressing with linear probing, each key in its slot (0 marks
/// an empty slot; a hash of 0 is counted as 1). Written here rather than a `HashSet<u64>`
/// (hashbrown): hashbrown keeps a key's control byte and the key itself in two places, two cache
/// misses for a new key once the set outgrows the cache, and offers no way to prefetch a key's
/// place, which [`Summary::count_all`] does for a batch before inserting it.
#[derive(Debug, Default)]
struct EndpointSet {
    /// A power of two slots (or none), at most half full.
    slots: Vec<u64>,
    len: usize,
}

impl EndpointSet {
    fn len(&self) -> usize {
        self.len
    }

    /// The slot where the search for `key` starts (the keys are hashes, mixed in every bit).
    fn home(&self, key: u64) -> usize {
        key as usize & (self.slots.len() - 1)
    }

    /// Asks the CPU to bring `key`'s slot into the cache.
    fn prefetch(&self, key: u64) {
        if !self.slots.is_empty() {
            super::prefetch(&self.slots[self.home(key)]);
        }
    }

    /// Adds `key`; whether it was new.
    fn insert(&mut self, key: u64) -> bool {
        let key = key.max(1);
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = key;
                    self.len += 1;
                    return true;
                }
                k if k == key => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        let mask = self.slots.len() - 1;
        for key in old.into_iter().filter(|&k| k != 0) {
            let mut i = self.home(key);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = key;
        }
    }
}

/// What one host saw.
#[derive(Debug, Default)]
struct HostTally {
    name: String,
    exchanges: u64,
    endpoints: u64,
}

/// Hosts listed in the summary.
const TOP_HOSTS: usize = 10;
/// Distinct hosts tallied (memory bound for captures with millions of hosts).
const MAX_HOSTS: usize = 100_000;
/// Distinct endpoints tallied, over all hosts.
const MAX_ENDPOINTS: usize = 1_000_000;

impl Summary {
    /// Counts one exchange.
    #[cfg(test)]
    pub fn count(&mut self, ex: &HttpExchange) {
        self.count_all(std::slice::from_ref(ex));
    }

    /// Counts a batch of exchanges in two passes: every exchange's hashes first, each with a
    /// prefetch of its endpoint's slot, then the inserts. An endpoint set larger than the cache
    /// costs a miss per new endpoint; issued together, a batch's misses overlap instead of
    /// being waited for one after another.
    pub fn count_all(&mut self, batch: &[HttpExchange]) {
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        for ex in batch {
            let host_hash = self.hasher.hash_one(host_of(ex).as_ref());
            let target = ex.request.target.as_bytes();
            let path = memchr::memchr(b'?', target).map_or(target, |q| &target[..q]);
            let endpoint = self.hasher.hash_one((host_hash, ex.request.method.as_str(), path));
            self.endpoints.prefetch(endpoint);
            keys.push((host_hash, endpoint));
        }
        for (ex, &(host_hash, endpoint)) in batch.iter().zip(&keys) {
            let new_endpoint = self.endpoints.len() < MAX_ENDPOINTS && self.endpoints.insert(endpoint);
            let room = self.hosts.len() < MAX_HOSTS;
            let tally = match self.hosts.get_mut(&host_hash) {
                Some(t) => Some(t),
                None if room => Some(
                    self.hosts
                        .entry(host_hash)
                        .or_insert_with(|| HostTally { name: host_of(ex).into_owned(), ..HostTally::default() }),
                ),
                None => None,
            };
            if let Some(t) = tally {
                t.exchanges += 1;
                t.endpoints += u64::from(new_endpoint);
            }
        }
        self.keys = keys;
    }

    /// A packet with a link type the engine cannot decode.
    pub fn unknown_link(&mut self, linktype: u32) {
        *self.unknown_links.entry(linktype).or_default() += 1;
    }

    /// The summary text.
    pub fn render(&self, stats: &Stats, files: usize, failed: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "── akto-tap replay ──");
        let _ = writeln!(
            s,
            "files {files} ({failed} failed) · packets {} · {:.1} MB · flows {} · exchanges {} ({} pending, {} with gaps, {} truncated) · endpoints {}",
            stats.packets,
            stats.packet_bytes as f64 / 1e6,
            stats.flows_created,
            stats.exchanges,
            stats.exchanges_pending,
            stats.exchanges_with_gap,
            stats.exchanges_truncated,
            self.endpoints.len(),
        );
        let mut hosts: Vec<_> = self.hosts.values().collect();
        hosts.sort_by(|a, b| b.exchanges.cmp(&a.exchanges).then(a.name.cmp(&b.name)));
        if !hosts.is_empty() {
            let _ = writeln!(s, "{:>11}  {:>9}  host", "exchanges", "endpoints");
            for t in hosts.iter().take(TOP_HOSTS) {
                let _ = writeln!(s, "{:>11}  {:>9}  {}", t.exchanges, t.endpoints, t.name);
            }
            if hosts.len() > TOP_HOSTS {
                let _ = writeln!(s, "  … and {} more hosts", hosts.len() - TOP_HOSTS);
            }
        }
        let drops: Vec<_> = stats.fields().into_iter().filter(|(name, _, v)| *v > 0 && is_loss(name)).collect();
        if !drops.is_empty() || !self.unknown_links.is_empty() {
            let _ = writeln!(s, "drops and losses:");
            for (name, help, v) in drops {
                let _ = writeln!(s, "  {v:>9}  {name}: {help}");
            }
            for (lt, n) in &self.unknown_links {
                let _ = writeln!(s, "  {n:>9}  unknown link type {lt}");
            }
        }
        s
    }
}

/// The hasher of keys that are already 64-bit hashes (of `hasher`, well mixed in every bit).
#[derive(Debug, Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a `u64`); anything else is folded in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Counters that say something was lost or cut.
fn is_loss(name: &str) -> bool {
    name.starts_with("drop_")
        || matches!(
            name,
            "gaps"
                | "gap_bytes"
                | "flows_evicted_cap"
                | "orphan_responses"
                | "head_too_large"
                | "malformed_heads"
                | "body_bytes_over_cap"
                | "decode_capped"
                | "decode_errors"
                | "unknown_role_bytes"
                | "truncated_packets"
                | "overlap_conflicts"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::ex_full;

    fn exchange(host: Option<&str>, method: &str, target: &str) -> HttpExchange {
        ex_full(method, target, host, "10.0.0.1:40000", "10.0.0.2:8080")
    }

    #[test]
    fn endpoints_are_distinct_per_host_method_and_path() {
        let mut s = Summary::default();
        for (host, method, target) in [
            (Some("a.example"), "GET", "/users?id=1"),
            (Some("a.example"), "GET", "/users?id=2"), // same endpoint: the query does not count
            (Some("a.example"), "POST", "/users"),
            (Some("b.example"), "GET", "/users"), // same path, other host: another endpoint
            (Some("b.example"), "GET", "/users"),
            (None, "GET", "/health"), // no Host: the server's address names the host
        ] {
            s.count(&exchange(host, method, target));
        }
        assert_eq!(s.endpoints.len(), 4);
        let tally = |h: &str| s.hosts.values().find(|t| t.name == h).map(|t| (t.exchanges, t.endpoints));
        assert_eq!(tally("a.example"), Some((3, 2)));
        assert_eq!(tally("b.example"), Some((2, 1)));
        assert_eq!(tally("10.0.0.2:8080"), Some((1, 1)));
        let text = s.render(&reassembly::Stats::default(), 1, 0);
        assert!(text.contains("endpoints 4"), "{text}");
        assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["3", "2", "a.example"]), "{text}");
    }

    #[test]
    fn endpoint_set_counts_each_key_once_across_growth() {
        let mut set = EndpointSet::default();
        let mut reference = std::collections::HashSet::new();
        // Keys that share their low bits (the same home slot, long probe runs across the end
        // of the table), zero and one (counted as one key), and well-mixed ones, each twice.
        let keys: Vec<u64> = (0..5000u64)
            .map(|i| i << 40)
            .chain([0, 1, u64::MAX])
            .chain((0..20_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
            .collect();
        for round in 0..2 {
            for &k in &keys {
                let new = set.insert(k);
                assert_eq!(new, reference.insert(k.max(1)), "key {k:#x}, round {round}");
            }
        }
        assert_eq!(set.len(), reference.len());
        assert!(set.slots.len().is_power_of_two() && set.len() * 2 <= set.slots.len());
        assert_eq!(set.slots.iter().filter(|&&k| k != 0).count(), set.len());
    }

    #[test]
    fn a_batch_counts_as_its_exchanges_one_by_one() {
        let batch: Vec<HttpExchange> = (0..300)
            .map(|i| {
                let host = ["a.example", "b.example", "c.example"][i % 3];
                let method = ["GET", "POST"][i % 2];
                exchange((i % 7 != 0).then_some(host), method, &format!("/items/{}?page={i}", i % 40))
            })
            .collect();
        let (mut one, mut all) = (Summary::default(), Summary::default());
        all.hasher = one.hasher.clone();
        for ex in &batch {
            one.count(ex);
        }
        for part in batch.chunks(32) {
            all.count_all(part);
        }
        let stats = reassembly::Stats::default();
        assert_eq!(one.render(&stats, 1, 0), all.render(&stats, 1, 0));
        assert_eq!(one.endpoints.len(), all.endpoints.len());
        assert!(one.endpoints.len() > 100, "{}", one.endpoints.len());
    }
}
