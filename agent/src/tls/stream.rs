//! TLS plaintext events → TCP segments for the reassembly engine (pure: no I/O, no clock).
//!
//! The kernel reports, per process and `SSL*`, the plaintext each `SSL_read`/`SSL_write` call
//! moved and its stream offset in that direction. Each connection is resolved once to its socket
//! addresses (a [`Resolver`]: the kernel's own answer in the agent, procfs behind it), then every event becomes a TCP segment from
//! the sender to the receiver with `seq = 1 + offset`: the engine's reassembly orders them, turns
//! offset holes (events the kernel could not deliver) into gaps, and parses HTTP exactly as for
//! captured packets. A connection that began with a handshake the kernel saw gets a synthetic
//! SYN / SYN-ACK from the client, so the roles are known from the first byte.
//!
//! When both ends of a connection are traced (client and server on one host), the first end seen
//! owns the connection and the other end's events are dropped (counted): every exchange is
//! reported once. One exception: a connection older than the agent whose server end shows up
//! first. The server may have been inside an `SSL_read` entered before the probes attached, so
//! the request of its next exchange is lost at that end, while the client end, if traced, sends
//! that request after the start and has it. The server end's events are therefore held for
//! [`StreamLimits::peer_wait_us`]; if the client end appears meanwhile it takes the connection
//! and the held events are dropped (counted), else they are passed on and the server end keeps it.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Direction of a data event, from the traced process's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received from the peer (`SSL_read`).
    Read,
    /// Sent to the peer (`SSL_write`).
    Write,
}

/// One event from the kernel, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A handshake on `fd`: a new connection for this `SSL*`, offsets start at zero.
    Handshake { pid: u32, ssl: u64, fd: i32, ts_us: u64 },
    /// Plaintext moved by one call (or one chunk of it).
    Data { pid: u32, ssl: u64, fd: i32, dir: Dir, offset: u64, data: &'a [u8], ts_us: u64 },
    /// The process closed the socket of `ssl`.
    Close { pid: u32, ssl: u64, fd: i32, ts_us: u64 },
}

/// A connection's socket as the traced process sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Socket {
    /// The process's end.
    pub local: SocketAddr,
    /// The peer.
    pub remote: SocketAddr,
    /// The local port is a listening port of the process's network namespace: the process is
    /// the server.
    pub local_is_server: bool,
}

/// Finds the socket of a process's `SSL*` (on `fd`, -1 when the kernel did not see it).
pub trait Resolver {
    /// `None` when unknown, or the fd is not (or no longer) a TCP socket.
    fn resolve(&mut self, pid: u32, ssl: u64, fd: i32) -> Option<Socket>;
}

/// A synthesized TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (the ACK flag is set when not SYN-only).
    pub ack: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack_flag: bool,
    /// FIN flag.
    pub fin: bool,
    /// Payload.
    pub payload: &'a [u8],
    /// Capture time, microseconds since the epoch.
    pub ts_us: u64,
    /// Process that owns the connection.
    pub pid: u32,
}

/// Limits of the connection table.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// Connections tracked at once; the least recently active is dropped past this.
    pub max_conns: usize,
    /// A connection without events for this long is forgotten (its flow in the engine expires
    /// on the engine's own idle timeout).
    pub idle_secs: u64,
    /// Report only connections with one of these ports at either end (`--ports`); empty = all.
    pub ports: Vec<u16>,
    /// How long the events of a server end seen first on a connection older than the agent
    /// are held for its client end to show up (see the module comment); 0 = not held.
    pub peer_wait_us: u64,
    /// Bytes held that way in all, at most; past it a held connection's events are passed on
    /// at once (counted).
    pub max_held_bytes: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_conns: 16_384,
            idle_secs: 300,
            ports: Vec::new(),
            peer_wait_us: 250_000,
            max_held_bytes: 16 << 20,
        }
    }
}

/// Counters of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connections seen (resolved).
    pub conns: u64,
    /// Connections tracked now.
    pub conns_now: u64,
    /// Handshake events.
    pub handshakes: u64,
    /// Close events of tracked connections.
    pub closes: u64,
    /// Plaintext bytes turned into segments.
    pub bytes: u64,
    /// Events whose socket could not be resolved (fd unknown, closed, not TCP): dropped.
    pub unresolved_events: u64,
    /// Bytes of those events.
    pub unresolved_bytes: u64,
    /// Bytes from the second traced end of a connection already reported from the other end.
    pub peer_duplicate_bytes: u64,
    /// Connections not reported because neither port is in `ports`.
    pub port_filtered: u64,
    /// Connections dropped because the table was full.
    pub evicted: u64,
    /// Connections forgotten after `idle_secs` without events.
    pub idle_expired: u64,
    /// Connections older than the agent taken over by their client end while their server
    /// end's events were held (those events are counted in `peer_duplicate_bytes`).
    pub peer_takeovers: u64,
    /// Held server ends whose client end did not show up in time: their events passed on.
    pub held_released: u64,
    /// Held server ends passed on early because `max_held_bytes` was reached.
    pub held_over_limit: u64,
    /// Held bytes dropped with their connection (evicted or expired while held).
    pub held_dropped_bytes: u64,
}

#[derive(Debug)]
struct Conn {
    sock: Socket,
    pid: u32,
    fd: i32,
    /// Next offset per direction (index 0 = read, 1 = write): the ACK of the other direction
    /// and the FIN's sequence number.
    next: [u64; 2],
    /// This end owns the connection's 4-tuple (reports it).
    owner: bool,
    /// Outside the port filter: tracked (so its events are recognized) but not reported.
    filtered: bool,
    last_us: u64,
    /// Owner's segments not passed on yet, while waiting for the client end (server end of a
    /// connection older than the agent), with when the wait started.
    held: Option<(u64, Vec<HeldSegment>)>,
}

/// A segment kept while its connection's owner is not settled.
#[derive(Debug)]
struct HeldSegment {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
    ts_us: u64,
    pid: u32,
}

/// Unordered pair of endpoints identifying a TCP connection.
type TupleKey = (SocketAddr, SocketAddr);

fn tuple_key(s: &Socket) -> TupleKey {
    if s.local <= s.remote {
        (s.local, s.remote)
    } else {
        (s.remote, s.local)
    }
}

/// The connection table.
#[derive(Debug)]
pub struct Streams {
    limits: StreamLimits,
    conns: HashMap<(u32, u64), Conn>,
    owners: HashMap<TupleKey, (u32, u64)>,
    /// `(pid, SSL*)` whose resolution failed, with when: not retried for a second.
    unresolved: HashMap<(u32, u64), u64>,
    /// Connections opened since the last [`Streams::take_opened`]: (client, server, pid).
    opened: Vec<(SocketAddr, SocketAddr, u32)>,
    /// Bytes in `held` segments of all connections.
    held_bytes: usize,
    stats: StreamStats,
}

impl Streams {
    /// An empty table.
    pub fn new(limits: StreamLimits) -> Streams {
        Streams {
            limits,
            conns: HashMap::new(),
            owners: HashMap::new(),
            unresolved: HashMap::new(),
            opened: Vec::new(),
            held_bytes: 0,
            stats: StreamStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> StreamStats {
        StreamStats { conns_now: self.conns.len() as u64, ..self.stats.clone() }
    }

    /// The kernel told the socket of `(pid, ssl)`: a failed resolution of it is stale.
    pub fn learned(&mut self, pid: u32, ssl: u64) {
        self.unresolved.remove(&(pid, ssl));
    }

    /// The reported connections opened since the last call, as (client, server, process): the
    /// process is known here, which packet capture cannot tell (workload attribution).
    pub fn take_opened(&mut self) -> Vec<(SocketAddr, SocketAddr, u32)> {
        std::mem::take(&mut self.opened)
    }

    /// Processes one event; the segments it yields are passed to `out`.
    pub fn on_event(&mut self, ev: &Event<'_>, resolver: &mut dyn Resolver, out: &mut dyn FnMut(Segment<'_>)) {
        match *ev {
            Event::Handshake { pid, ssl, fd, ts_us, .. } => {
                self.stats.handshakes += 1;
                // A new connection for this SSL*: whatever was tracked under it is finished.
                self.finish((pid, ssl), ts_us, out);
                if let Some(conn) = self.open(pid, ssl, fd, ts_us, false, resolver) {
                    if conn.owner && !conn.filtered {
                        let (client, server) = ends(&conn.sock);
                        let pid = conn.pid;
                        out(Segment {
                            src: client,
                            dst: server,
                            seq: 0,
                            ack: 0,
                            syn: true,
                            ack_flag: false,
                            fin: false,
                            payload: &[],
                            ts_us,
                            pid,
                        });
                        out(Segment {
                            src: server,
                            dst: client,
                            seq: 0,
                            ack: 1,
                            syn: true,
                            ack_flag: true,
                            fin: false,
                            payload: &[],
                            ts_us,
                            pid,
                        });
                    }
                }
            }
            Event::Data { pid, ssl, fd, dir, offset, data, ts_us, .. } => {
                let key = (pid, ssl);
                let known = match self.conns.get(&key) {
                    // The SSL* now runs on another socket: a new connection.
                    Some(c) => fd < 0 || c.fd < 0 || c.fd == fd,
                    None => false,
                };
                if !known {
                    self.finish(key, ts_us, out);
                    if self.open(pid, ssl, fd, ts_us, true, resolver).is_none() {
                        self.stats.unresolved_events += 1;
                        self.stats.unresolved_bytes += data.len() as u64;
                        return;
                    }
                }
                let Some(conn) = self.conns.get_mut(&key) else { return };
                conn.last_us = ts_us;
                if conn.filtered {
                    return;
                }
                if !conn.owner {
                    self.stats.peer_duplicate_bytes += data.len() as u64;
                    return;
                }
                let i = usize::from(dir == Dir::Write);
                conn.next[i] = conn.next[i].max(offset + data.len() as u64);
                let (src, dst) = if dir == Dir::Write {
                    (conn.sock.local, conn.sock.remote)
                } else {
                    (conn.sock.remote, conn.sock.local)
                };
                let ack = seq_of(conn.next[1 - i]);
                self.stats.bytes += data.len() as u64;
                if let Some((_, held)) = &mut conn.held {
                    if self.held_bytes + data.len() <= self.limits.max_held_bytes {
                        self.held_bytes += data.len();
                        let payload = data.to_vec();
                        held.push(HeldSegment { src, dst, seq: seq_of(offset), ack, payload, ts_us, pid });
                        return;
                    }
                    self.stats.held_over_limit += 1;
                    self.release(key, out);
                }
                out(Segment {
                    src,
                    dst,
                    seq: seq_of(offset),
                    ack,
                    syn: false,
                    ack_flag: true,
                    fin: false,
                    payload: data,
                    ts_us,
                    pid,
                });
            }
            Event::Close { pid, ssl, ts_us, .. } => {
                if self.conns.contains_key(&(pid, ssl)) {
                    self.stats.closes += 1;
                }
                self.finish((pid, ssl), ts_us, out);
            }
        }
    }

    /// Passes on the events of held connections whose wait for their client end is over at
    /// `now_us` (the caller's clock, microseconds since the epoch, as the events').
    pub fn tick(&mut self, now_us: u64, out: &mut dyn FnMut(Segment<'_>)) {
        let wait = self.limits.peer_wait_us;
        let due: Vec<(u32, u64)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.held.as_ref().is_some_and(|(since, _)| now_us.saturating_sub(*since) >= wait))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.stats.held_released += 1;
            self.release(key, out);
        }
    }

    /// Ends the wait of a held connection: its segments are passed on, it keeps ownership.
    fn release(&mut self, key: (u32, u64), out: &mut dyn FnMut(Segment<'_>)) {
        let Some(conn) = self.conns.get_mut(&key) else { return };
        let Some((_, held)) = conn.held.take() else { return };
        let (client, server) = ends(&conn.sock);
        self.opened.push((client, server, conn.pid));
        for h in held {
            self.held_bytes -= h.payload.len();
            out(Segment {
                src: h.src,
                dst: h.dst,
                seq: h.seq,
                ack: h.ack,
                syn: false,
                ack_flag: true,
                fin: false,
                payload: &h.payload,
                ts_us: h.ts_us,
                pid: h.pid,
            });
        }
    }

    /// Forgets connections idle for longer than the limit (no segments: the engine's idle
    /// timeout finishes their flows).
    pub fn expire(&mut self, now_us: u64) {
        let idle = self.limits.idle_secs * 1_000_000;
        let stale: Vec<(u32, u64)> =
            self.conns.iter().filter(|(_, c)| now_us.saturating_sub(c.last_us) > idle).map(|(k, _)| *k).collect();
        for k in stale {
            self.stats.idle_expired += 1;
            self.forget(k);
        }
        self.unresolved.retain(|_, t| now_us.saturating_sub(*t) < 1_000_000);
    }

    /// Tracks the connection of `(pid, ssl)`; `mid_stream` when it was not seen from its
    /// handshake (older than the agent, or its handshake event lost).
    fn open(
        &mut self,
        pid: u32,
        ssl: u64,
        fd: i32,
        ts_us: u64,
        mid_stream: bool,
        resolver: &mut dyn Resolver,
    ) -> Option<&Conn> {
        if let Some(t) = self.unresolved.get(&(pid, ssl)) {
            if ts_us.saturating_sub(*t) < 1_000_000 {
                return None;
            }
        }
        let Some(sock) = resolver.resolve(pid, ssl, fd) else {
            if self.unresolved.len() < self.limits.max_conns {
                self.unresolved.insert((pid, ssl), ts_us);
            }
            return None;
        };
        self.unresolved.remove(&(pid, ssl));
        if self.conns.len() >= self.limits.max_conns {
            if let Some(oldest) = self.conns.iter().min_by_key(|(_, c)| c.last_us).map(|(k, _)| *k) {
                self.stats.evicted += 1;
                self.forget(oldest);
            }
        }
        let filtered = !self.limits.ports.is_empty()
            && !self.limits.ports.contains(&sock.local.port())
            && !self.limits.ports.contains(&sock.remote.port());
        if filtered {
            self.stats.port_filtered += 1;
        }
        let tuple = tuple_key(&sock);
        let current = self.owners.get(&tuple).copied().filter(|other| self.conns.contains_key(other));
        let owner = !filtered
            && match current {
                None => true,
                // The client end takes a connection whose server end is still held.
                Some(other) => !sock.local_is_server && self.take_over(other),
            };
        // A server end first seen mid-stream waits for its client end (module comment).
        let held =
            (owner && mid_stream && sock.local_is_server && self.limits.peer_wait_us > 0).then(|| (ts_us, Vec::new()));
        if owner {
            self.owners.insert(tuple, (pid, ssl));
            if held.is_none() {
                let (client, server) = ends(&sock);
                self.opened.push((client, server, pid));
            }
        }
        self.stats.conns += 1;
        self.conns.insert((pid, ssl), Conn { sock, pid, fd, next: [0; 2], owner, filtered, last_us: ts_us, held });
        self.conns.get(&(pid, ssl))
    }

    /// Takes the connection away from `other` if its events are still held (they are dropped,
    /// counted as the other end's duplicates); false when `other` owns it for good.
    fn take_over(&mut self, other: (u32, u64)) -> bool {
        let Some(conn) = self.conns.get_mut(&other) else { return true };
        let Some((_, held)) = conn.held.take() else { return false };
        conn.owner = false;
        let bytes: usize = held.iter().map(|h| h.payload.len()).sum();
        self.held_bytes -= bytes;
        self.stats.peer_duplicate_bytes += bytes as u64;
        self.stats.bytes -= bytes as u64;
        self.stats.peer_takeovers += 1;
        true
    }

    /// Ends a connection: FIN from both sides (the process closed its socket or reused its
    /// `SSL*`, so neither direction carries more of this connection's bytes).
    fn finish(&mut self, key: (u32, u64), ts_us: u64, out: &mut dyn FnMut(Segment<'_>)) {
        // What was held goes out before the end (no client end showed up before it).
        if self.conns.get(&key).is_some_and(|c| c.held.is_some()) {
            self.stats.held_released += 1;
            self.release(key, out);
        }
        let Some(conn) = self.forget(key) else { return };
        if !conn.owner || conn.filtered {
            return;
        }
        let (l, r) = (conn.sock.local, conn.sock.remote);
        let (rd, wr) = (seq_of(conn.next[0]), seq_of(conn.next[1]));
        out(Segment {
            src: l,
            dst: r,
            seq: wr,
            ack: rd,
            syn: false,
            ack_flag: true,
            fin: true,
            payload: &[],
            ts_us,
            pid: conn.pid,
        });
        out(Segment {
            src: r,
            dst: l,
            seq: rd,
            ack: wr.wrapping_add(1),
            syn: false,
            ack_flag: true,
            fin: true,
            payload: &[],
            ts_us,
            pid: conn.pid,
        });
    }

    fn forget(&mut self, key: (u32, u64)) -> Option<Conn> {
        let conn = self.conns.remove(&key)?;
        if let Some((_, held)) = &conn.held {
            let bytes: usize = held.iter().map(|h| h.payload.len()).sum();
            self.held_bytes -= bytes;
            self.stats.held_dropped_bytes += bytes as u64;
        }
        let tuple = tuple_key(&conn.sock);
        if self.owners.get(&tuple) == Some(&key) {
            self.owners.remove(&tuple);
        }
        Some(conn)
    }
}

/// Client and server ends of a socket.
fn ends(s: &Socket) -> (SocketAddr, SocketAddr) {
    if s.local_is_server {
        (s.remote, s.local)
    } else {
        (s.local, s.remote)
    }
}

/// Sequence number of a stream offset (the SYN takes sequence number 0).
fn seq_of(offset: u64) -> u32 {
    (offset as u32).wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reassembly::{Engine, HttpExchange, LinkType, Timestamp};

    struct Fixed(HashMap<(u32, i32), Socket>);

    impl Resolver for Fixed {
        fn resolve(&mut self, pid: u32, _ssl: u64, fd: i32) -> Option<Socket> {
            self.0.get(&(pid, fd)).copied()
        }
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Client pid 10 fd 3 at 127.0.0.1:40000, server pid 20 fd 7 at 127.0.0.1:8443.
    fn resolver() -> Fixed {
        let client = Socket { local: sa("127.0.0.1:40000"), remote: sa("127.0.0.1:8443"), local_is_server: false };
        let server = Socket { local: sa("127.0.0.1:8443"), remote: sa("127.0.0.1:40000"), local_is_server: true };
        Fixed(HashMap::from([((10, 3), client), ((20, 7), server)]))
    }

    /// Runs events through the table and an engine (segments as raw IP frames, as in the agent).
    fn run(events: &[Event<'_>]) -> (Vec<HttpExchange>, StreamStats) {
        let mut streams = Streams::new(StreamLimits::default());
        let mut r = resolver();
        let mut engine = Engine::new(reassembly::Config::default());
        let mut out = Vec::new();
        let mut frame = Vec::new();
        for ev in events {
            streams.on_event(ev, &mut r, &mut |s| {
                super::super::frame::build(&s, &mut frame);
                engine.on_frame(Timestamp(s.ts_us), LinkType::Raw, &frame, &mut out);
            });
        }
        engine.flush_all(&mut out);
        (out, streams.stats())
    }

    const REQ: &[u8] = b"POST /mcp HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    fn data<'a>(pid: u32, ssl: u64, fd: i32, dir: Dir, offset: u64, data: &'a [u8], ts_us: u64) -> Event<'a> {
        Event::Data { pid, ssl, fd, dir, offset, data, ts_us }
    }

    #[test]
    fn client_side_events_make_one_exchange_with_roles_from_the_handshake() {
        let (out, stats) = run(&[
            Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 },
            data(10, 1, 3, Dir::Write, 0, REQ, 2),
            data(10, 1, 3, Dir::Read, 0, RESP, 3),
            Event::Close { pid: 10, ssl: 1, fd: 3, ts_us: 4 },
        ]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].request.target, "/mcp");
        assert_eq!(out[0].request.body.data, b"hello");
        assert_eq!(out[0].response.as_ref().unwrap().body.data, b"ok");
        assert_eq!(out[0].conn.server, sa("127.0.0.1:8443"));
        assert_eq!((stats.handshakes, stats.closes, stats.conns), (1, 1, 1));
    }

    #[test]
    fn opened_connections_name_client_server_and_process() {
        let mut streams = Streams::new(StreamLimits::default());
        let mut r = resolver();
        streams.on_event(&Event::Handshake { pid: 20, ssl: 9, fd: 7, ts_us: 1 }, &mut r, &mut |_| {});
        streams.on_event(&Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 }, &mut r, &mut |_| {});
        // The server end came first and owns the connection; the client's end is a duplicate.
        assert_eq!(streams.take_opened(), vec![(sa("127.0.0.1:40000"), sa("127.0.0.1:8443"), 20)]);
        assert!(streams.take_opened().is_empty());
    }

    #[test]
    fn both_ends_traced_report_once() {
        let (out, stats) = run(&[
            Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 },
            Event::Handshake { pid: 20, ssl: 9, fd: 7, ts_us: 1 },
            data(10, 1, 3, Dir::Write, 0, REQ, 2),
            data(20, 9, 7, Dir::Read, 0, REQ, 2),
            data(20, 9, 7, Dir::Write, 0, RESP, 3),
            data(10, 1, 3, Dir::Read, 0, RESP, 3),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(stats.peer_duplicate_bytes, (REQ.len() + RESP.len()) as u64);
    }

    #[test]
    fn split_calls_on_the_server_side_without_a_handshake() {
        // Server side, no handshake seen (a connection older than the agent); the request comes
        // in two reads. (Events of one connection arrive in order: one ring, sequential calls.)
        let (out, _) = run(&[
            data(20, 9, 7, Dir::Read, 0, &REQ[..10], 2),
            data(20, 9, 7, Dir::Read, 10, &REQ[10..], 2),
            data(20, 9, 7, Dir::Write, 0, RESP, 3),
            Event::Close { pid: 20, ssl: 9, fd: 7, ts_us: 4 },
        ]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].request.body.data, b"hello");
        assert_eq!(out[0].conn.client, sa("127.0.0.1:40000"));
    }

    /// Like [`run`], with the table's clock: `tick` after every event at the event's time,
    /// and at `end_us` before flushing.
    fn run_with(limits: StreamLimits, events: &[Event<'_>], end_us: u64) -> (Vec<HttpExchange>, StreamStats) {
        let mut streams = Streams::new(limits);
        let mut r = resolver();
        let mut engine = Engine::new(reassembly::Config::default());
        let mut out = Vec::new();
        let mut frame = Vec::new();
        let mut feed = |s: Segment<'_>| {
            super::super::frame::build(&s, &mut frame);
            engine.on_frame(Timestamp(s.ts_us), LinkType::Raw, &frame, &mut out);
        };
        for ev in events {
            let ts = match ev {
                Event::Handshake { ts_us, .. } | Event::Data { ts_us, .. } | Event::Close { ts_us, .. } => *ts_us,
            };
            streams.on_event(ev, &mut r, &mut feed);
            streams.tick(ts, &mut feed);
        }
        streams.tick(end_us, &mut feed);
        engine.flush_all(&mut out);
        (out, streams.stats())
    }

    /// A connection older than the agent: the server was inside an `SSL_read` entered before
    /// the probes, so its end has the response but not the request; its events reach the table
    /// before the client's. The client end, which has both, reports the exchange.
    #[test]
    fn a_held_server_end_yields_to_its_client_end() {
        let (out, stats) = run_with(
            StreamLimits::default(),
            &[
                data(20, 9, 7, Dir::Write, 0, RESP, 1_000),
                data(10, 1, 3, Dir::Write, 0, REQ, 1_010),
                data(10, 1, 3, Dir::Read, 0, RESP, 1_020),
                data(20, 9, 7, Dir::Read, 0, REQ, 2_000),
                data(10, 1, 3, Dir::Write, REQ.len() as u64, REQ, 2_000),
                data(20, 9, 7, Dir::Write, RESP.len() as u64, RESP, 2_010),
                data(10, 1, 3, Dir::Read, RESP.len() as u64, RESP, 2_020),
            ],
            10_000_000,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|e| e.request.target == "/mcp" && e.response.is_some()), "{out:?}");
        assert_eq!(stats.peer_takeovers, 1);
        assert_eq!(stats.held_released, 0);
        // The server end's events: the held response, then everything after the takeover.
        assert_eq!(stats.peer_duplicate_bytes, (2 * RESP.len() + REQ.len()) as u64);
        assert_eq!(stats.bytes, 2 * (REQ.len() + RESP.len()) as u64);
    }

    #[test]
    fn a_held_server_end_alone_reports_after_the_wait() {
        let events = [
            data(20, 9, 7, Dir::Read, 0, REQ, 1_000),
            data(20, 9, 7, Dir::Write, 0, RESP, 1_010),
            data(20, 9, 7, Dir::Read, REQ.len() as u64, REQ, 400_000),
            data(20, 9, 7, Dir::Write, RESP.len() as u64, RESP, 400_010),
        ];
        let mut streams = Streams::new(StreamLimits::default());
        let mut r = resolver();
        let mut n = 0;
        streams.on_event(&events[0], &mut r, &mut |_| n += 1);
        streams.on_event(&events[1], &mut r, &mut |_| n += 1);
        streams.tick(250_000, &mut |_| n += 1);
        assert_eq!(n, 0, "held during the wait");
        assert!(streams.take_opened().is_empty(), "not reported as opened while held");
        streams.tick(251_010, &mut |_| n += 1);
        assert_eq!(n, 2, "passed on once the wait is over");
        assert_eq!(streams.take_opened().len(), 1);
        let (out, stats) = run_with(StreamLimits::default(), &events, 10_000_000);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!((stats.held_released, stats.peer_takeovers, stats.peer_duplicate_bytes), (1, 0, 0));
    }

    #[test]
    fn held_ends_go_on_at_close_at_the_byte_limit_and_not_after_a_handshake() {
        // Closed while held: released before the FIN.
        let (out, stats) = run_with(
            StreamLimits::default(),
            &[
                data(20, 9, 7, Dir::Read, 0, REQ, 1_000),
                data(20, 9, 7, Dir::Write, 0, RESP, 1_010),
                Event::Close { pid: 20, ssl: 9, fd: 7, ts_us: 1_020 },
            ],
            1_030,
        );
        assert_eq!((out.len(), stats.held_released), (1, 1), "{out:?}");
        // Past the byte limit: passed on at once.
        let mut streams = Streams::new(StreamLimits { max_held_bytes: REQ.len(), ..StreamLimits::default() });
        let mut r = resolver();
        let mut n = 0;
        streams.on_event(&data(20, 9, 7, Dir::Read, 0, REQ, 1_000), &mut r, &mut |_| n += 1);
        assert_eq!(n, 0);
        streams.on_event(&data(20, 9, 7, Dir::Write, 0, RESP, 1_010), &mut r, &mut |_| n += 1);
        assert_eq!((n, streams.stats().held_over_limit), (2, 1));
        // Seen from its handshake, the server end owns at once (its reads are all there).
        let mut streams = Streams::new(StreamLimits::default());
        let mut n = 0;
        streams.on_event(&Event::Handshake { pid: 20, ssl: 9, fd: 7, ts_us: 1 }, &mut r, &mut |_| n += 1);
        streams.on_event(&data(20, 9, 7, Dir::Read, 0, REQ, 2), &mut r, &mut |_| n += 1);
        assert_eq!(n, 3, "SYN, SYN-ACK and the data");
        // No wait configured: nothing held.
        let mut streams = Streams::new(StreamLimits { peer_wait_us: 0, ..StreamLimits::default() });
        let mut n = 0;
        streams.on_event(&data(20, 9, 7, Dir::Read, 0, REQ, 2), &mut r, &mut |_| n += 1);
        assert_eq!(n, 1);
        // Evicted while held: the bytes are counted as dropped.
        let mut streams = Streams::new(StreamLimits { max_conns: 1, ..StreamLimits::default() });
        r.0.insert(
            (30, 5),
            Socket { local: sa("127.0.0.1:8443"), remote: sa("127.0.0.1:40009"), local_is_server: true },
        );
        streams.on_event(&data(20, 9, 7, Dir::Read, 0, REQ, 1), &mut r, &mut |_| {});
        streams.on_event(&data(30, 7, 5, Dir::Read, 0, REQ, 2), &mut r, &mut |_| {});
        assert_eq!((streams.stats().evicted, streams.stats().held_dropped_bytes), (1, REQ.len() as u64));
        assert_eq!(streams.held_bytes, REQ.len(), "the new connection's held bytes only");
    }

    #[test]
    fn an_offset_hole_is_a_gap_not_spliced_bytes() {
        let second = b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
        let (out, _) = run(&[
            Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 },
            data(10, 1, 3, Dir::Write, 0, &REQ[..20], 2),
            // REQ[20..] lost in the kernel (ring full): the next request starts after it.
            data(10, 1, 3, Dir::Write, REQ.len() as u64, second, 3),
            data(10, 1, 3, Dir::Read, 0, RESP, 4),
            data(10, 1, 3, Dir::Read, RESP.len() as u64, RESP, 5),
        ]);
        // The bytes after the hole are not glued to the cut request: the next request parses
        // cleanly on its own, and the cut one carries nothing of it.
        assert!(out.iter().any(|e| e.request.method == "GET" && e.request.target == "/b"), "{out:?}");
        assert!(out.iter().all(|e| !e.request.body.data.windows(3).any(|w| w == b"GET")), "{out:?}");
    }

    #[test]
    fn unresolvable_fds_are_counted_and_retried_later() {
        let (out, stats) = run(&[
            data(10, 1, 99, Dir::Write, 0, REQ, 2),
            data(10, 1, 99, Dir::Write, 0, REQ, 3),
            data(10, 1, -1, Dir::Write, 0, REQ, 4),
        ]);
        assert!(out.is_empty());
        assert_eq!(stats.unresolved_events, 3);
        assert_eq!(stats.unresolved_bytes, 3 * REQ.len() as u64);
    }

    #[test]
    fn reused_ssl_pointer_on_a_new_socket_starts_a_new_connection() {
        let mut r = resolver();
        r.0.insert(
            (10, 4),
            Socket { local: sa("127.0.0.1:40001"), remote: sa("127.0.0.1:8443"), local_is_server: false },
        );
        let mut streams = Streams::new(StreamLimits::default());
        let mut segs = Vec::new();
        let evs = [
            Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 },
            data(10, 1, 3, Dir::Write, 0, REQ, 2),
            data(10, 1, 4, Dir::Write, 0, REQ, 3),
        ];
        for ev in &evs {
            streams.on_event(ev, &mut r, &mut |s| segs.push((s.src, s.dst, s.syn, s.fin, s.payload.len())));
        }
        // SYN, SYN-ACK, data, FIN×2 for the first socket, then data on the new one.
        assert_eq!(segs.len(), 6, "{segs:?}");
        assert!(segs[3].3 && segs[4].3);
        assert_eq!(segs[5].0, sa("127.0.0.1:40001"));
        assert_eq!(streams.stats().conns, 2);
    }

    #[test]
    fn the_port_filter_applies_to_either_end() {
        let mut r = resolver();
        for (ports, want) in [(vec![8443], 1), (vec![40000], 1), (vec![80, 443], 0), (vec![], 1)] {
            let mut streams = Streams::new(StreamLimits { ports: ports.clone(), ..StreamLimits::default() });
            let mut n = 0;
            for ev in [Event::Handshake { pid: 10, ssl: 1, fd: 3, ts_us: 1 }, data(10, 1, 3, Dir::Write, 0, REQ, 2)] {
                streams.on_event(&ev, &mut r, &mut |s| n += usize::from(!s.payload.is_empty()));
            }
            assert_eq!(n, want, "{ports:?}");
            assert_eq!(streams.stats().port_filtered, 1 - want as u64);
        }
    }

    #[test]
    fn the_table_is_bounded_and_idle_connections_expire() {
        let mut streams = Streams::new(StreamLimits { max_conns: 1, idle_secs: 1, ..StreamLimits::default() });
        let mut r = resolver();
        streams.on_event(&data(10, 1, 3, Dir::Write, 0, REQ, 1), &mut r, &mut |_| {});
        streams.on_event(&data(20, 9, 7, Dir::Read, 0, REQ, 2), &mut r, &mut |_| {});
        assert_eq!(streams.stats().evicted, 1);
        assert_eq!(streams.stats().conns_now, 1);
        streams.expire(5_000_000);
        assert_eq!(streams.stats().conns_now, 0);
        assert_eq!(streams.stats().idle_expired, 1);
    }
}
