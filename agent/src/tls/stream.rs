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
//! reported once.

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
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits { max_conns: 16_384, idle_secs: 300, ports: Vec::new() }
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
                if let Some(conn) = self.open(pid, ssl, fd, ts_us, resolver) {
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
                    if self.open(pid, ssl, fd, ts_us, resolver).is_none() {
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

    fn open(&mut self, pid: u32, ssl: u64, fd: i32, ts_us: u64, resolver: &mut dyn Resolver) -> Option<&Conn> {
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
        let owner = !filtered
            && match self.owners.get(&tuple) {
                Some(other) => !self.conns.contains_key(other),
                None => true,
            };
        if owner {
            self.owners.insert(tuple, (pid, ssl));
            let (client, server) = ends(&sock);
            self.opened.push((client, server, pid));
        }
        self.stats.conns += 1;
        self.conns.insert((pid, ssl), Conn { sock, pid, fd, next: [0; 2], owner, filtered, last_us: ts_us });
        self.conns.get(&(pid, ssl))
    }

    /// Ends a connection: FIN from both sides (the process closed its socket or reused its
    /// `SSL*`, so neither direction carries more of this connection's bytes).
    fn finish(&mut self, key: (u32, u64), ts_us: u64, out: &mut dyn FnMut(Segment<'_>)) {
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
        let mut streams = Streams::new(StreamLimits { max_conns: 1, idle_secs: 1, ports: Vec::new() });
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
