//! Test support: builds captured frames of TCP conversations.

use crate::{Engine, HttpExchange, LinkType, Timestamp};
use etherparse::PacketBuilder;

/// One TCP connection between a client and a server, producing Ethernet frames.
pub(crate) struct Conv {
    pub client: ([u8; 4], u16),
    pub server: ([u8; 4], u16),
    pub cseq: u32,
    pub sseq: u32,
    pub ts: u64,
}

pub(crate) struct Frame {
    pub ts: Timestamp,
    pub bytes: Vec<u8>,
}

impl Conv {
    pub(crate) fn new(cport: u16) -> Self {
        Conv {
            client: ([10, 0, 0, 1], cport),
            server: ([10, 0, 0, 2], 80),
            cseq: 1000,
            sseq: 5000,
            ts: 1_700_000_000_000_000,
        }
    }

    fn frame(&mut self, from_client: bool, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Frame {
        let (src, dst) = if from_client { (self.client, self.server) } else { (self.server, self.client) };
        let mut b = PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, seq, 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('A') {
            b = b.ack(ack);
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        let mut bytes = Vec::new();
        b.write(&mut bytes, payload).ok();
        self.ts += 100;
        Frame { ts: Timestamp(self.ts), bytes }
    }

    pub(crate) fn handshake(&mut self) -> Vec<Frame> {
        let a = self.frame(true, self.cseq, 0, "S", b"");
        let b = self.frame(false, self.sseq, self.cseq + 1, "SA", b"");
        self.cseq += 1;
        self.sseq += 1;
        let c = self.frame(true, self.cseq, self.sseq, "A", b"");
        vec![a, b, c]
    }

    /// Data from one side at the current sequence number, advancing it.
    pub(crate) fn send(&mut self, from_client: bool, data: &[u8]) -> Frame {
        let (seq, ack) = if from_client { (self.cseq, self.sseq) } else { (self.sseq, self.cseq) };
        let f = self.frame(from_client, seq, ack, "A", data);
        if from_client {
            self.cseq = self.cseq.wrapping_add(data.len() as u32);
        } else {
            self.sseq = self.sseq.wrapping_add(data.len() as u32);
        }
        f
    }

    /// Data split into segments of `mss` bytes.
    pub(crate) fn send_segments(&mut self, from_client: bool, data: &[u8], mss: usize) -> Vec<Frame> {
        data.chunks(mss.max(1)).map(|c| self.send(from_client, c)).collect()
    }

    /// Data at an explicit offset from the current sequence (for loss/reorder tests), without
    /// advancing.
    pub(crate) fn send_at(&mut self, from_client: bool, offset: u32, data: &[u8]) -> Frame {
        let (seq, ack) = if from_client { (self.cseq, self.sseq) } else { (self.sseq, self.cseq) };
        self.frame(from_client, seq.wrapping_add(offset), ack, "A", data)
    }

    pub(crate) fn advance(&mut self, from_client: bool, n: u32) {
        if from_client {
            self.cseq = self.cseq.wrapping_add(n);
        } else {
            self.sseq = self.sseq.wrapping_add(n);
        }
    }

    /// A pure ACK from one side.
    pub(crate) fn ack(&mut self, from_client: bool) -> Frame {
        let (seq, ack) = if from_client { (self.cseq, self.sseq) } else { (self.sseq, self.cseq) };
        self.frame(from_client, seq, ack, "A", b"")
    }

    pub(crate) fn close(&mut self) -> Vec<Frame> {
        let a = self.frame(true, self.cseq, self.sseq, "FA", b"");
        self.cseq += 1;
        let b = self.frame(false, self.sseq, self.cseq, "FA", b"");
        self.sseq += 1;
        let c = self.frame(true, self.cseq, self.sseq, "A", b"");
        vec![a, b, c]
    }

    pub(crate) fn rst(&mut self, from_client: bool) -> Frame {
        let seq = if from_client { self.cseq } else { self.sseq };
        self.frame(from_client, seq, 0, "R", b"")
    }
}

/// Runs frames through a fresh engine with the default config and flushes.
pub(crate) fn run(frames: &[Frame]) -> (Vec<HttpExchange>, crate::Stats) {
    run_with(crate::Config::default(), frames)
}

pub(crate) fn run_with(cfg: crate::Config, frames: &[Frame]) -> (Vec<HttpExchange>, crate::Stats) {
    let mut e = Engine::new(cfg);
    let mut out = Vec::new();
    for f in frames {
        e.on_frame(f.ts, LinkType::Ethernet, &f.bytes, &mut out);
    }
    e.flush_all(&mut out);
    (out, e.stats().clone())
}
