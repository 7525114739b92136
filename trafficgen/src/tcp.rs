//! One TCP connection as a sequence of flights (RFC 9293): the handshake, then one exchange (or
//! a pipelined burst) at a time — request segments with the server's ACKs, the response with
//! the client's ACKs — then a FIN exchange or an RST. Segments are cut at MSS and at the points
//! where the sender flushed, then impaired (gap, reorder, loss, duplicate); ACK numbers follow
//! what the receiver has contiguously, so a retransmission shows up behind duplicate ACKs.
//!
//! A flight's bytes stay in the connection's two [`Stream`]s until its last packet is written,
//! so memory per connection is one exchange, not one connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::content::http::Stream;
use crate::content::{Close, Content, ExchangeCtx, Peers, Written};
use crate::rng::{Chance, Rng};
use crate::truth::{ExchangeTruth, GenSummary};
use crate::wire::{Flow, SegmentHeader, ACK, FIN, PSH, RST, SYN};

/// The config, turned into thresholds once.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub loss: Chance,
    pub reorder: Chance,
    pub duplicate: Chance,
    pub gap: Chance,
    pub pipeline: Chance,
    pub mss: u32,
    pub record_truth: bool,
    /// Any impairment probability is non-zero.
    pub impaired: bool,
}

/// A packet waiting to be written; the payload is `len` bytes at `off` in its direction's
/// stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pkt {
    pub ts: u64,
    pub from_client: bool,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub off: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Normal,
    /// Retransmission of a segment whose first copy was lost.
    Retrans,
    /// A second copy of a segment already sent.
    Dup,
    /// Received by the peer, missing from the capture.
    Gap,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    seg: u32,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
struct Seg {
    off: u32,
    len: u32,
    psh: bool,
}

/// What planning a flight needs besides the connection: shared content, counters, scratch.
#[derive(Debug)]
pub(crate) struct Shared<'a> {
    pub params: &'a Params,
    pub content: &'a mut Content,
    pub summary: &'a mut GenSummary,
    /// The target size is reached: close instead of starting another exchange.
    pub stopping: bool,
    pub scratch: &'a mut Scratch,
}

/// Buffers reused by every flight.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    segs: Vec<Seg>,
    order: Vec<Item>,
    received: Vec<bool>,
    /// Exchanges of the current flight.
    exchanges: Vec<FlightExchange>,
}

/// One exchange of the flight being planned.
#[derive(Debug)]
struct FlightExchange {
    written: Written,
    /// Byte ranges of the request in the client stream and of the response in the server one.
    req: (u32, u32),
    resp: (u32, u32),
    /// No byte of it was gapped.
    delivered: bool,
}

/// Constant facts about a new connection.
#[derive(Debug)]
pub(crate) struct ConnSetup {
    pub id: u64,
    pub rng: Rng,
    pub flow: Flow,
    pub peers: Peers,
    pub keep_alive: bool,
    pub exchanges: u32,
    pub start_ts: u64,
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub id: u64,
    rng: Rng,
    pub flow: Flow,
    peers: Peers,
    keep_alive: bool,
    exchanges_left: u32,
    index: u32,
    c_next: u32,
    s_next: u32,
    c_ipid: u16,
    s_ipid: u16,
    c_win: u16,
    s_win: u16,
    mss: u16,
    rtt: u64,
    /// Time of the last planned packet.
    t: u64,
    opened: bool,
    closed: bool,
    pub c2s: Stream,
    pub s2c: Stream,
    pkts: Vec<Pkt>,
    head: usize,
}

impl Conn {
    pub(crate) fn new(s: ConnSetup, mss: u16) -> Conn {
        let ConnSetup { id, mut rng, flow, peers, keep_alive, exchanges, start_ts } = s;
        let rtt = if rng.percent(60) { rng.range(50, 1_000) } else { rng.range(5_000, 120_000) };
        Conn {
            id,
            flow,
            peers,
            keep_alive,
            exchanges_left: exchanges,
            index: 0,
            c_next: rng.next_u32(),
            s_next: rng.next_u32(),
            c_ipid: rng.next_u32() as u16,
            s_ipid: rng.next_u32() as u16,
            c_win: rng.range(501, 2048) as u16,
            s_win: rng.range(501, 2048) as u16,
            mss,
            rtt,
            t: start_ts,
            opened: false,
            closed: false,
            c2s: Stream::default(),
            s2c: Stream::default(),
            pkts: Vec::with_capacity(64),
            head: 0,
            rng,
        }
    }

    /// The next packet to write, if the current flight has one.
    pub(crate) fn head(&self) -> Option<&Pkt> {
        self.pkts.get(self.head)
    }

    /// Consumes the head packet and returns its header (IP ids are assigned in write order).
    pub(crate) fn pop(&mut self) -> (Pkt, SegmentHeader) {
        let p = self.pkts[self.head];
        self.head += 1;
        let (ip_id, window) = if p.from_client {
            self.c_ipid = self.c_ipid.wrapping_add(1);
            (self.c_ipid, if p.flags & SYN != 0 { 64_240 } else { self.c_win })
        } else {
            self.s_ipid = self.s_ipid.wrapping_add(1);
            (self.s_ipid, if p.flags & SYN != 0 { 65_160 } else { self.s_win })
        };
        let h = SegmentHeader {
            ts_us: p.ts,
            from_client: p.from_client,
            flags: p.flags,
            seq: p.seq,
            ack: p.ack,
            window,
            ip_id,
            mss: self.mss,
        };
        (p, h)
    }

    /// The payload of a popped packet.
    pub(crate) fn payload(&self, p: &Pkt) -> &[u8] {
        let s = if p.from_client { &self.c2s } else { &self.s2c };
        &s.data[p.off as usize..(p.off + p.len) as usize]
    }

    fn push(&mut self, from_client: bool, flags: u8, off: u32, len: u32) {
        let (seq, ack) = if from_client { (self.c_next, self.s_next) } else { (self.s_next, self.c_next) };
        self.pkts.push(Pkt { ts: self.t, from_client, flags, seq, ack, off, len });
    }

    /// Plans the next flight. Returns false when the connection is finished (closed and
    /// every packet written).
    pub(crate) fn plan(&mut self, sh: &mut Shared<'_>) -> bool {
        if self.closed {
            return false;
        }
        self.pkts.clear();
        self.head = 0;
        self.c2s.clear();
        self.s2c.clear();

        if !self.opened {
            self.opened = true;
            self.handshake();
        } else {
            // Client think time before the next request.
            self.t += self.rng.skewed(300, 1_500_000);
            if sh.stopping || self.exchanges_left == 0 {
                self.close(Close::No);
                return true;
            }
        }

        let group = if self.keep_alive && self.exchanges_left >= 2 && self.rng.hit(sh.params.pipeline) {
            (self.rng.range(2, 3) as u32).min(self.exchanges_left)
        } else {
            1
        };
        sh.scratch.exchanges.clear();
        let mut close = Close::No;
        for _ in 0..group {
            self.exchanges_left -= 1;
            if self.exchanges_left == 0 {
                close = match (self.keep_alive, self.rng.below(10)) {
                    (true, 0) | (false, 0..=3) => Close::Request,
                    (true, 1..=3) | (false, 4..=6) => Close::Response,
                    _ => Close::No,
                };
            }
            let ctx = ExchangeCtx { close, safe_only: group > 1, now_secs: self.t / 1_000_000 };
            let req0 = self.c2s.data.len() as u32;
            let resp0 = self.s2c.data.len() as u32;
            let w = sh.content.exchange(&mut self.rng, &mut self.peers, ctx, &mut self.c2s, &mut self.s2c);
            let req = (req0, self.c2s.data.len() as u32);
            let resp = (resp0, self.s2c.data.len() as u32);
            sh.scratch.exchanges.push(FlightExchange { written: w, req, resp, delivered: true });
        }

        // Request(s), server think time, response(s).
        self.t += self.rng.range(5, 40);
        self.send_phase(true, sh);
        self.t += self.rng.skewed(150, 60_000);
        self.send_phase(false, sh);

        self.record(sh, group);
        if self.exchanges_left == 0 {
            self.close(close);
        }
        true
    }

    fn handshake(&mut self) {
        self.push(true, SYN, 0, 0);
        self.t += self.rng.range(8, 30);
        // The SYN-ACK acknowledges the SYN's sequence number.
        self.c_next = self.c_next.wrapping_add(1);
        self.push(false, SYN | ACK, 0, 0);
        self.s_next = self.s_next.wrapping_add(1);
        self.t += self.rtt;
        self.push(true, ACK, 0, 0);
    }

    fn close(&mut self, close: Close) {
        self.closed = true;
        let rtt = self.rtt;
        match close {
            Close::Request | Close::Response => {
                self.t += self.rng.range(5, 30);
                self.push(false, FIN | ACK, 0, 0);
                self.s_next = self.s_next.wrapping_add(1);
                self.t += rtt;
                self.push(true, FIN | ACK, 0, 0);
                self.c_next = self.c_next.wrapping_add(1);
                self.t += self.rng.range(5, 30);
                self.push(false, ACK, 0, 0);
            }
            Close::No if self.rng.percent(3) => {
                self.t += self.rng.range(50, 5_000);
                self.push(true, RST | ACK, 0, 0);
            }
            Close::No => {
                self.t += self.rng.range(50, 5_000);
                self.push(true, FIN | ACK, 0, 0);
                self.c_next = self.c_next.wrapping_add(1);
                self.t += self.rng.range(5, 30);
                self.push(false, FIN | ACK, 0, 0);
                self.s_next = self.s_next.wrapping_add(1);
                self.t += rtt;
                self.push(true, ACK, 0, 0);
            }
        }
    }

    /// Cuts one direction's stream into segments, impairs them, and plans the data segments
    /// with the receiver's ACKs.
    fn send_phase(&mut self, from_client: bool, sh: &mut Shared<'_>) {
        let Scratch { segs, order, received, exchanges } = &mut *sh.scratch;
        let stream = if from_client { &self.c2s } else { &self.s2c };
        let end = stream.data.len() as u32;
        let mss = sh.params.mss;

        // Cut at MSS, or at a flush point with probability 1/2.
        segs.clear();
        let breaks = &stream.breaks;
        let mut bi = 0;
        let mut pos = 0u32;
        while pos < end {
            let lim = (pos + mss).min(end);
            while bi < breaks.len() && breaks[bi] <= pos {
                bi += 1;
            }
            let mut cut = lim;
            if bi < breaks.len() && breaks[bi] < lim && self.rng.percent(50) {
                cut = breaks[bi];
            }
            let psh = cut == end || breaks.get(bi).is_some_and(|&b| b == cut);
            segs.push(Seg { off: pos, len: cut - pos, psh });
            pos = cut;
        }

        order.clear();
        order.extend((0..segs.len() as u32).map(|seg| Item { seg, kind: Kind::Normal }));
        if sh.params.impaired {
            impair(&mut self.rng, sh.params, segs, order, exchanges, from_client, sh.summary);
        }

        // Emit in `order`; the receiver ACKs every second in-order arrival, and at once on
        // out-of-order or duplicate data.
        received.clear();
        received.resize(segs.len(), false);
        let seq0 = if from_client { self.c_next } else { self.s_next };
        let mut cum = 0usize; // segments received contiguously
        let mut unacked = 0u32;
        for i in 0..order.len() {
            let Item { seg, kind } = order[i];
            let s = segs[seg as usize];
            self.t += u64::from(s.len) / 125 + self.rng.range(1, 4);
            if kind == Kind::Retrans {
                self.t += self.rtt + self.rng.range(20, 200);
            }
            if kind != Kind::Gap {
                let flags = if s.psh { ACK | PSH } else { ACK };
                let (peer_next, seq) = if from_client {
                    (self.s_next, seq0.wrapping_add(s.off))
                } else {
                    (self.c_next, seq0.wrapping_add(s.off))
                };
                self.pkts.push(Pkt { ts: self.t, from_client, flags, seq, ack: peer_next, off: s.off, len: s.len });
            }
            let in_order = seg as usize == cum;
            if kind != Kind::Dup {
                received[seg as usize] = true;
                while cum < segs.len() && received[cum] {
                    cum += 1;
                }
            }
            unacked += 1;
            if kind == Kind::Dup || !in_order || unacked >= 2 || i + 1 == order.len() {
                let acked = if cum == 0 { 0 } else { segs[cum - 1].off + segs[cum - 1].len };
                self.t += self.rng.range(2, 20);
                let (seq, ack) = if from_client {
                    (self.s_next, seq0.wrapping_add(acked))
                } else {
                    (self.c_next, seq0.wrapping_add(acked))
                };
                self.pkts.push(Pkt { ts: self.t, from_client: !from_client, flags: ACK, seq, ack, off: 0, len: 0 });
                unacked = 0;
            }
        }
        if from_client {
            self.c_next = seq0.wrapping_add(end);
        } else {
            self.s_next = seq0.wrapping_add(end);
        }
    }

    /// Adds the flight's exchanges to the summary (and the truth list when asked).
    fn record(&mut self, sh: &mut Shared<'_>, group: u32) {
        let base = self.index;
        self.index += group;
        for (k, e) in sh.scratch.exchanges.iter().enumerate() {
            let (w, delivered) = (&e.written, &e.delivered);
            sh.summary.exchanges += 1;
            sh.summary.exchanges_delivered += u64::from(*delivered);
            if sh.params.record_truth {
                let (client, server) = self.addrs();
                let path = String::from_utf8_lossy(&self.c2s.data[w.path.0..w.path.1]).into_owned();
                sh.summary.truth.push(ExchangeTruth {
                    connection: self.id,
                    index_in_connection: base + k as u32,
                    client,
                    server,
                    method: w.method,
                    path,
                    status: w.status,
                    request_body_len: w.request_body_len,
                    response_body_len: w.response_body_len,
                    response_framing: w.framing,
                    gzip: w.gzip,
                    response_content_type: w.content_type,
                    mcp_method: w.mcp_method,
                    pipelined: k > 0,
                    delivered: *delivered,
                });
            }
        }
    }

    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        let ip = |b: &[u8; 16]| -> IpAddr {
            if self.flow.v6 {
                IpAddr::V6(Ipv6Addr::from(*b))
            } else {
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
        };
        (
            SocketAddr::new(ip(&self.flow.client_ip), self.flow.client_port),
            SocketAddr::new(ip(&self.flow.server_ip), self.flow.server_port),
        )
    }
}

/// Applies the impairments to one direction's segments, in this order: gaps (never in the
/// capture), swaps of adjacent segments, losses (moved 1–3 places later as retransmissions),
/// duplicates (a copy 0–2 places later). A gapped segment is never retransmitted or copied,
/// so its bytes are really absent.
fn impair(
    rng: &mut Rng,
    p: &Params,
    segs: &[Seg],
    order: &mut Vec<Item>,
    exchanges: &mut [FlightExchange],
    from_client: bool,
    summary: &mut GenSummary,
) {
    for item in order.iter_mut() {
        if rng.hit(p.gap) {
            item.kind = Kind::Gap;
            summary.segments_gapped += 1;
            let s = segs[item.seg as usize];
            for e in exchanges.iter_mut() {
                let (a, b) = if from_client { e.req } else { e.resp };
                if s.off < b && a < s.off + s.len {
                    e.delivered = false;
                }
            }
        }
    }
    let mut i = 0;
    while i + 1 < order.len() {
        if rng.hit(p.reorder) {
            order.swap(i, i + 1);
            summary.segments_reordered += 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    for seg in 0..segs.len() as u32 {
        if !rng.hit(p.loss) {
            continue;
        }
        let Some(pos) = order.iter().position(|it| it.seg == seg && it.kind == Kind::Normal) else {
            continue;
        };
        order.remove(pos);
        let to = (pos + rng.range_usize(1, 3)).min(order.len());
        order.insert(to, Item { seg, kind: Kind::Retrans });
        summary.segments_retransmitted += 1;
    }
    for seg in 0..segs.len() as u32 {
        if !rng.hit(p.duplicate) {
            continue;
        }
        let Some(pos) = order.iter().position(|it| it.seg == seg && it.kind != Kind::Gap) else {
            continue;
        };
        let to = (pos + 1 + rng.range_usize(0, 2)).min(order.len());
        order.insert(to, Item { seg, kind: Kind::Dup });
        summary.segments_duplicated += 1;
    }
}
