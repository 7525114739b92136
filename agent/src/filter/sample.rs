//! Per-endpoint sampling: a bounded table of endpoint → (window start, exchanges in window).
//!
//! Endpoints are keyed by a 64-bit hash of method + host + path template, so an entry is a fixed
//! 24 bytes however long the path: memory is `max_endpoints` × (entry + map overhead), whatever
//! the input. Two endpoints whose hashes collide share a budget (probability ~n²/2⁶⁵, with a
//! per-process random seed so it cannot be aimed at).
//!
//! When the table is full, entries whose window has ended are swept out, at most once per
//! window (so the O(table) sweep is amortized over a window's worth of exchanges); an endpoint
//! that still finds no room is *untracked* and treated as over its limit.

use super::config::SamplingConfig;
use ahash::RandomState;
use reassembly::Timestamp;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// What the sampler says about one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sampled {
    /// Within the endpoint's budget: keep the bodies.
    Bodies,
    /// Past the budget.
    OverLimit,
    /// The endpoint table is full: not tracked, treated as over the limit.
    Untracked,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    count: u32,
}

/// Counters the sampler keeps, copied into [`super::FilterStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SamplerCounts {
    pub untracked: u64,
    pub swept: u64,
}

/// The endpoint table.
#[derive(Debug)]
pub(super) struct Sampler {
    limit: u32,
    window_micros: u64,
    max_endpoints: usize,
    table: HashMap<u64, Entry, RandomState>,
    keys: RandomState,
    last_sweep: Option<u64>,
    pub(super) counts: SamplerCounts,
}

impl Sampler {
    pub(super) fn new(cfg: &SamplingConfig, keys: RandomState) -> Sampler {
        Sampler {
            limit: cfg.bodies_per_window,
            window_micros: u64::try_from(cfg.window().as_micros()).unwrap_or(u64::MAX),
            max_endpoints: cfg.max_endpoints,
            // Grows on demand up to the cap; not preallocated (most agents see far fewer).
            table: HashMap::with_hasher(RandomState::new()),
            keys,
            last_sweep: None,
            counts: SamplerCounts::default(),
        }
    }

    /// Endpoints tracked now.
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// The key of an endpoint. `method` is compared case-insensitively, `host` is normalized,
    /// `template` from [`super::pattern::path_template`].
    pub(super) fn key(&self, method: &str, host: &str, template: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        for b in method.bytes() {
            h.write_u8(b.to_ascii_uppercase());
        }
        h.write_u8(0xff);
        host.hash(&mut h);
        template.hash(&mut h);
        h.finish()
    }

    /// Counts one exchange of endpoint `key` at `now`.
    pub(super) fn admit(&mut self, now: Timestamp, key: u64) -> Sampled {
        let now = now.0;
        if !self.table.contains_key(&key) {
            if self.table.len() >= self.max_endpoints {
                self.sweep(now);
            }
            if self.table.len() >= self.max_endpoints {
                self.counts.untracked += 1;
                return Sampled::Untracked;
            }
            self.table.insert(key, Entry { window_start: now, count: 0 });
        }
        let window = self.window_micros;
        let Some(e) = self.table.get_mut(&key) else {
            return Sampled::Untracked;
        };
        // Time going backwards (shards merge clocks of several interfaces) stays in the window.
        if now.saturating_sub(e.window_start) >= window {
            e.window_start = now;
            e.count = 0;
        }
        if e.count < self.limit {
            e.count += 1;
            Sampled::Bodies
        } else {
            Sampled::OverLimit
        }
    }

    /// Removes endpoints whose window has ended, unless a sweep ran less than a window ago.
    fn sweep(&mut self, now: u64) {
        if self.last_sweep.is_some_and(|t| now.saturating_sub(t) < self.window_micros) {
            return;
        }
        self.last_sweep = Some(now);
        let window = self.window_micros;
        let before = self.table.len();
        self.table.retain(|_, e| now.saturating_sub(e.window_start) < window);
        self.counts.swept += (before - self.table.len()) as u64;
    }
}
