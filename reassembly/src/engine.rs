//! The engine: frames in, HTTP exchanges out.
//!
//! ```text
//! on_frame ─▶ Decoder ─▶ on_packet ─▶ flow table ─▶ Assembler (per direction) ─▶ chunks
//!   ─▶ roles known? ── no ──▶ sniff buffer (bounded) until one side starts a request/response
//!                    └ yes ─▶ HttpConn ─▶ HttpExchange
//! ```
//!
//! Time only moves with packet timestamps: idle expiry and closed-flow linger are checked once
//! per second of capture time, so a replay is deterministic.

use crate::config::Config;
use crate::decode::{Decoder, LinkType, Packet};
use crate::exchange::{ConnInfo, HttpExchange};
use crate::http::{self, Dir, HttpConn};
use crate::stats::Stats;
use crate::tcp::{Assembler, Budget, Chunk, Chunks, FlowKey, Limits};
use crate::Timestamp;
/// Flow table hasher: aHash is several times faster than SipHash on 5-tuples and, seeded per
/// process, still resists hash flooding by crafted tuples. Its order is random, so every place
/// that emits in table order sorts first (output stays deterministic).
type FlowMap = std::collections::HashMap<FlowKey, Flow, ahash::RandomState>;

/// How often (capture time) the flow table is swept for idle and closed flows.
const SWEEP_INTERVAL_US: u64 = 1_000_000;
/// Fraction of the table evicted at once when it is full (1/16), so eviction is amortized.
const EVICT_DIVISOR: usize = 16;

#[derive(Debug, Default)]
struct Flow {
    asm: [Assembler; 2],
    /// Side index of the client, once known.
    client: Option<usize>,
    syn_seen: [bool; 2],
    /// In-order bytes per side while the roles are unknown.
    sniff: [Vec<u8>; 2],
    /// The sniff buffer of a side does not start at the beginning of its stream.
    sniff_unsynced: [bool; 2],
    /// The first data of a side started a request or response.
    starts_clean: [bool; 2],
    /// Boxed: the connection's HTTP state is ~800 bytes, and a flow is moved into and out of
    /// the flow table (and by its growth) by value.
    http: Option<Box<HttpConn>>,
    last_seen: Timestamp,
    closed_at: Option<Timestamp>,
    /// First RST seen. The flow is finished only after the linger time: a RST can be forged or
    /// out of window (an evasion), and data may still follow it in the capture.
    reset_at: Option<Timestamp>,
}

/// Packet-to-exchange engine. One per thread; shard flows by [`FlowKey::shard_hash`].
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    decoder: Decoder,
    flows: FlowMap,
    budget: Budget,
    stats: Stats,
    last_sweep: Timestamp,
}

/// The parts of the engine a flow needs while the flow itself is borrowed.
struct Env<'e> {
    cfg: &'e Config,
    stats: &'e mut Stats,
    budget: &'e mut Budget,
    out: &'e mut Vec<HttpExchange>,
}

impl Engine {
    /// An engine with the given limits.
    pub fn new(cfg: Config) -> Self {
        Engine {
            decoder: Decoder::new(cfg.defrag.clone()),
            budget: Budget { used: 0, cap: cfg.tcp.max_total_buffered_bytes },
            cfg,
            flows: FlowMap::default(),
            stats: Stats::default(),
            last_sweep: Timestamp::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Decodes a captured frame and processes it. Exchanges completed by it are appended to `out`.
    pub fn on_frame(&mut self, ts: Timestamp, link: LinkType, frame: &[u8], out: &mut Vec<HttpExchange>) {
        self.stats.packets += 1;
        self.stats.packet_bytes += frame.len() as u64;
        if let Ok(p) = self.decoder.decode(ts, link, frame, &mut self.stats) {
            self.on_packet(ts, &p, out);
        }
    }

    /// Processes a decoded TCP segment (for callers that decode and shard themselves; call
    /// [`Engine::count_frame`] for the frame).
    pub fn on_packet(&mut self, ts: Timestamp, p: &Packet<'_>, out: &mut Vec<HttpExchange>) {
        if ts.micros_since(self.last_sweep) >= SWEEP_INTERVAL_US {
            self.sweep(ts, out);
        }
        let (key, side) = FlowKey::of(p);
        // One hash lookup for a packet of a live flow (nearly all of them); the rest (a new
        // flow, or a new SYN on a finished one's tuple) take the slow path below.
        let mut known = false;
        if let Some(flow) = self.flows.get_mut(&key) {
            // A new SYN on a finished connection's tuple is a new connection (port reuse).
            let reused = (flow.closed_at.is_some() || flow.reset_at.is_some()) && p.flags.syn && !p.flags.ack;
            if !reused {
                let mut env = Env { cfg: &self.cfg, stats: &mut self.stats, budget: &mut self.budget, out };
                Self::flow_packet(flow, &key, side, ts, p, &mut env);
                self.stats.buffered_bytes_now = self.budget.used as u64;
                return;
            }
            known = true;
        }
        if !self.open_flow(ts, &key, p, known, out) {
            return;
        }
        let Some(flow) = self.flows.get_mut(&key) else {
            return;
        };
        let mut env = Env { cfg: &self.cfg, stats: &mut self.stats, budget: &mut self.budget, out };
        Self::flow_packet(flow, &key, side, ts, p, &mut env);
        self.stats.buffered_bytes_now = self.budget.used as u64;
    }

    /// A packet of `flow` (known, or just opened).
    #[inline(always)]
    fn flow_packet(flow: &mut Flow, key: &FlowKey, side: usize, ts: Timestamp, p: &Packet<'_>, env: &mut Env<'_>) {
        flow.last_seen = ts;
        if flow.closed_at.is_some() {
            env.stats.retransmitted_bytes += p.payload.len() as u64;
            return;
        }
        if flow.packet(key, side, ts, p, env) {
            flow.finish(key, ts, env);
            flow.closed_at = Some(ts);
            env.stats.flows_closed += 1;
        }
    }

    /// Finishes every flow (end of input): buffered data is delivered with gaps, incomplete
    /// bodies are cut, requests without a response are emitted as pending.
    pub fn flush_all(&mut self, out: &mut Vec<HttpExchange>) {
        let mut keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        // Deterministic output order: oldest activity first, then by key.
        keys.sort_by_key(|k| (self.flows.get(k).map(|f| f.last_seen), k.a, k.b, k.vni));
        for key in keys {
            if let Some(mut flow) = self.flows.remove(&key) {
                if flow.closed_at.is_none() && flow.reset_at.is_none() {
                    self.stats.flows_flushed += 1;
                }
                self.retire(&key, &mut flow, out);
            }
        }
        self.stats.buffered_bytes_now = self.budget.used as u64;
    }

    /// Advances capture time without a packet (a live capture's idle tick).
    pub fn advance(&mut self, now: Timestamp, out: &mut Vec<HttpExchange>) {
        if now.micros_since(self.last_sweep) >= SWEEP_INTERVAL_US {
            self.sweep(now, out);
        }
    }

    /// Makes room for and adds the flow of `key` (retiring the finished flow on its tuple
    /// first when `reused`); false when the packet cannot open a flow (a pure ACK of an
    /// unknown connection).
    #[cold]
    fn open_flow(
        &mut self,
        ts: Timestamp,
        key: &FlowKey,
        p: &Packet<'_>,
        reused: bool,
        out: &mut Vec<HttpExchange>,
    ) -> bool {
        if reused {
            if let Some(mut old) = self.flows.remove(key) {
                self.retire(key, &mut old, out);
            }
        }
        if !(p.flags.syn || !p.payload.is_empty() || p.flags.fin) {
            return false;
        }
        if self.flows.len() >= self.cfg.tcp.max_flows {
            self.evict(ts, out);
        }
        self.stats.flows_created += 1;
        self.stats.flows_now += 1;
        self.flows.insert(*key, Flow::default());
        true
    }

    fn retire(&mut self, key: &FlowKey, flow: &mut Flow, out: &mut Vec<HttpExchange>) {
        let mut env = Env { cfg: &self.cfg, stats: &mut self.stats, budget: &mut self.budget, out };
        if flow.closed_at.is_none() {
            if flow.reset_at.is_some() {
                env.stats.flows_closed += 1;
            }
            flow.finish(key, flow.last_seen, &mut env);
        }
        self.stats.flows_now -= 1;
    }

    fn sweep(&mut self, now: Timestamp, out: &mut Vec<HttpExchange>) {
        self.last_sweep = now;
        let idle = self.cfg.tcp.idle_timeout_secs * 1_000_000;
        let linger = self.cfg.tcp.close_linger_secs * 1_000_000;
        let mut expired: Vec<(Timestamp, FlowKey)> = self
            .flows
            .iter()
            .filter(|(_, f)| match f.closed_at.or(f.reset_at) {
                Some(c) => now.micros_since(c) > linger,
                None => now.micros_since(f.last_seen) > idle,
            })
            .map(|(k, f)| (f.last_seen, *k))
            .collect();
        expired.sort_unstable_by_key(|(t, k)| (*t, k.a, k.b, k.vni));
        for (_, key) in expired {
            if let Some(mut flow) = self.flows.remove(&key) {
                if flow.closed_at.is_none() && flow.reset_at.is_none() {
                    self.stats.flows_idle_expired += 1;
                }
                self.retire(&key, &mut flow, out);
            }
        }
    }

    /// The table is full: drop closed flows, then the least recently active 1/16th.
    fn evict(&mut self, now: Timestamp, out: &mut Vec<HttpExchange>) {
        self.sweep(now, out);
        if self.flows.len() < self.cfg.tcp.max_flows {
            return;
        }
        let mut by_age: Vec<(Timestamp, FlowKey)> = self.flows.iter().map(|(k, f)| (f.last_seen, *k)).collect();
        let n = (by_age.len() / EVICT_DIVISOR).max(1);
        by_age.select_nth_unstable_by_key(n - 1, |(t, k)| (*t, k.a, k.b, k.vni));
        by_age.truncate(n);
        by_age.sort_unstable_by_key(|(t, k)| (*t, k.a, k.b, k.vni));
        for (_, key) in by_age {
            if let Some(mut flow) = self.flows.remove(&key) {
                self.stats.flows_evicted_cap += 1;
                self.retire(&key, &mut flow, out);
            }
        }
    }
}

impl Flow {
    /// Processes one segment. True when the connection is finished (both FINs delivered or RST).
    fn packet(&mut self, key: &FlowKey, side: usize, ts: Timestamp, p: &Packet<'_>, env: &mut Env<'_>) -> bool {
        let other = 1 - side;
        if p.flags.syn {
            self.asm[side].on_syn(p.seq);
            self.syn_seen[side] = true;
            if self.client.is_none() {
                self.set_client(key, if p.flags.ack { other } else { side }, env);
            }
        }
        if p.flags.ack {
            self.asm[other].on_peer_ack(p.ack);
        }
        if p.flags.rst {
            self.reset_at.get_or_insert(ts);
            return false;
        }
        if p.payload.is_empty() && !p.flags.fin {
            return false;
        }
        let limits = Limits {
            max_holes: env.cfg.tcp.max_holes,
            max_bytes: env.cfg.tcp.max_flow_buffered_bytes.saturating_sub(self.asm[other].buffered()),
            max_window: env.cfg.tcp.max_window_bytes,
        };
        let seq = if p.flags.syn { p.seq.wrapping_add(1) } else { p.seq };
        let mut chunks = Chunks::new();
        self.asm[side].on_segment(seq, &p.payload, p.flags.fin, limits, env.budget, env.stats, &mut chunks);
        for c in chunks {
            self.route(key, side, ts, c, env);
        }
        self.asm[0].ended() && self.asm[1].ended()
    }

    /// Hands a chunk of side `side`'s stream to HTTP, or to the sniff buffer.
    fn route(&mut self, key: &FlowKey, side: usize, ts: Timestamp, c: Chunk<'_>, env: &mut Env<'_>) {
        if self.client.is_none() {
            match &c {
                Chunk::Data(d) => {
                    if self.sniff[side].is_empty() && !self.sniff_unsynced[side] {
                        // Only a known method counts here: mid-stream, any "word " looks like a
                        // request line.
                        if http::looks_like_request(d, true) == Some(true) {
                            self.starts_clean[side] = true;
                            self.set_client(key, side, env);
                        } else if http::looks_like_response(d) == Some(true) {
                            self.starts_clean[side] = true;
                            self.set_client(key, 1 - side, env);
                        }
                    }
                    if self.client.is_none() {
                        if self.sniff[side].len() + d.len() > env.cfg.tcp.max_sniff_bytes {
                            // Neither side ever looked like HTTP from its start: fall back to
                            // ports (the lower port is the server's) and let both sides seek.
                            let server = if key.a.port() <= key.b.port() { 0 } else { 1 };
                            self.sniff_unsynced = [true, true];
                            self.set_client(key, 1 - server, env);
                        } else {
                            self.sniff[side].extend_from_slice(d);
                            return;
                        }
                    }
                }
                Chunk::Gap(_) => {
                    env.stats.unknown_role_bytes += self.sniff[side].len() as u64;
                    self.sniff[side].clear();
                    self.sniff_unsynced[side] = true;
                    return;
                }
                Chunk::End => return,
            }
        }
        let (Some(client), Some(h)) = (self.client, self.http.as_mut()) else {
            return;
        };
        let dir = if side == client { Dir::Request } else { Dir::Response };
        let mut cx = http_cx(env);
        match c {
            Chunk::Data(d) => h.data(dir, ts, &d, &mut cx),
            Chunk::Gap(n) => h.gap(dir, n, &mut cx),
            Chunk::End => h.end(dir, &mut cx),
        }
    }

    /// Roles are known: creates the HTTP state and replays what was sniffed.
    fn set_client(&mut self, key: &FlowKey, client: usize, env: &mut Env<'_>) {
        let server = 1 - client;
        self.client = Some(client);
        let info = ConnInfo { client: key.endpoint(client), server: key.endpoint(server), vni: key.vni };
        // A stream starts in sync when its beginning was seen (SYN) or its first bytes start a
        // message of its role; otherwise it seeks the next message start.
        let synced = |s: usize, f: &Flow| {
            let sniff_ok = match s == client {
                true => http::looks_like_request(&f.sniff[s], false) == Some(true),
                false => http::looks_like_response(&f.sniff[s]) == Some(true),
            };
            // With the handshake seen, a side that has sent nothing yet starts at its beginning.
            let fresh = f.syn_seen[1 - s] && !f.asm[s].started();
            !f.sniff_unsynced[s] && (f.syn_seen[s] || fresh || f.starts_clean[s] || sniff_ok)
        };
        let mut h = Box::new(HttpConn::new(info, synced(client, self), synced(server, self)));
        let mut cx = http_cx(env);
        for s in [client, server] {
            let bytes = std::mem::take(&mut self.sniff[s]);
            if !bytes.is_empty() {
                let dir = if s == client { Dir::Request } else { Dir::Response };
                h.data(dir, self.last_seen, &bytes, &mut cx);
            }
        }
        self.http = Some(h);
    }

    /// The connection is over: delivers what is buffered (with gaps) and emits everything.
    fn finish(&mut self, key: &FlowKey, ts: Timestamp, env: &mut Env<'_>) {
        for side in [0, 1] {
            let mut chunks = Chunks::new();
            self.asm[side].flush(env.budget, env.stats, &mut chunks);
            for c in chunks {
                self.route(key, side, ts, c, env);
            }
        }
        if let Some(h) = self.http.as_mut() {
            h.finish(&mut http_cx(env));
        } else {
            env.stats.unknown_role_bytes += (self.sniff[0].len() + self.sniff[1].len()) as u64;
        }
        for a in &mut self.asm {
            a.release(env.budget);
        }
    }
}

fn http_cx<'a>(env: &'a mut Env<'_>) -> http::Ctx<'a> {
    http::Ctx { cfg: &env.cfg.http, stats: env.stats, out: env.out }
}

#[cfg(test)]
mod tests;
