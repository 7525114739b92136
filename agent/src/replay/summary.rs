//! The one-screen summary printed after a replay.

use reassembly::{HttpExchange, Stats};
use std::collections::{BTreeMap, HashMap, HashSet};
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
    endpoints: HashSet<u64, std::hash::BuildHasherDefault<IdentityHasher>>,
    hasher: ahash::RandomState,
    unknown_links: BTreeMap<u32, u64>,
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
    pub fn count(&mut self, ex: &HttpExchange) {
        let server;
        let host = match ex.request_header("host") {
            Some(h) => h,
            None => {
                server = ex.conn.server.to_string();
                &server
            }
        };
        let target = ex.request.target.as_bytes();
        let path = memchr::memchr(b'?', target).map_or(target, |q| &target[..q]);
        let host_hash = self.hasher.hash_one(host);
        let endpoint = self.hasher.hash_one((host_hash, ex.request.method.as_str(), path));
        let new_endpoint = self.endpoints.len() < MAX_ENDPOINTS && self.endpoints.insert(endpoint);
        let room = self.hosts.len() < MAX_HOSTS;
        let tally = match self.hosts.get_mut(&host_hash) {
            Some(t) => Some(t),
            None if room => Some(
                self.hosts
                    .entry(host_hash)
                    .or_insert_with(|| HostTally { name: host.to_string(), ..HostTally::default() }),
            ),
            None => None,
        };
        if let Some(t) = tally {
            t.exchanges += 1;
            t.endpoints += u64::from(new_endpoint);
        }
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
}
