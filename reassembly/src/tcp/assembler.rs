//! One direction of a TCP stream: sequence space → in-order bytes and gaps.
//!
//! Out-of-order data is held as disjoint ranges, at most `max_holes` of them (smoltcp's
//! `Assembler` idea, with owned bytes). In-order data is never buffered here: it is handed to the
//! consumer as it arrives, so a flow that stays in order costs no copy. Offsets are 64-bit and
//! relative to the first sequence number seen, so wrap-around (RFC 9293 §3.4) is handled once, in
//! [`Assembler::offset_of`].
//!
//! Overlaps are resolved deterministically: bytes already delivered or already buffered win
//! (first copy wins); a retransmission whose bytes differ from what was kept is counted as a
//! conflict.

use crate::stats::Stats;
use std::borrow::Cow;

/// What the assembler hands to its consumer.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// In-order bytes: borrowed from the segment, or owned when they were buffered.
    Data(Cow<'a, [u8]>),
    /// This many bytes were never seen and are skipped.
    Gap(u64),
    /// The sender's FIN was reached: no more data in this direction.
    End,
}

/// Chunks produced by one segment: almost always one, so they live on the stack.
pub type Chunks<'a> = smallvec::SmallVec<[Chunk<'a>; 2]>;

/// The out-of-order budget shared by all flows of an engine.
#[derive(Debug, Default)]
pub struct Budget {
    /// Bytes currently buffered.
    pub used: usize,
    /// Cap.
    pub cap: usize,
}

/// Limits of one direction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Maximum disjoint buffered ranges.
    pub max_holes: usize,
    /// Maximum buffered bytes of this direction.
    pub max_bytes: usize,
    /// Maximum distance from the next expected byte to a buffered segment's start.
    pub max_window: u32,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Assembler {
    /// Sequence number of offset 0; `None` until the first segment or SYN.
    isn: Option<u32>,
    /// Bytes delivered (or skipped as gaps) so far = offset of the next expected byte.
    delivered: u64,
    /// Buffered out-of-order ranges, sorted, disjoint, non-adjacent.
    ranges: Vec<(u64, Vec<u8>)>,
    buffered: usize,
    /// Offset of the FIN, when seen.
    fin_at: Option<u64>,
    /// Highest offset the peer acknowledged.
    peer_acked: u64,
    ended: bool,
}

impl Assembler {
    /// Whether any sequence number is known yet.
    pub fn started(&self) -> bool {
        self.isn.is_some()
    }

    /// Whether the FIN was delivered.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Bytes buffered out of order.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// A SYN with sequence number `seq`: data starts at `seq + 1`.
    pub fn on_syn(&mut self, seq: u32) {
        if self.delivered == 0 && self.ranges.is_empty() {
            self.isn = Some(seq.wrapping_add(1));
        }
    }

    /// Relative offset of `seq`, or `None` when it lies outside ±2 GiB of the next byte.
    fn offset_of(&self, seq: u32) -> Option<u64> {
        let isn = self.isn?;
        let next = isn.wrapping_add(self.delivered as u32);
        let diff = i64::from(seq.wrapping_sub(next) as i32);
        u64::try_from(self.delivered as i64 + diff).ok()
    }

    /// The peer acknowledged everything before `ack`.
    pub fn on_peer_ack(&mut self, ack: u32) {
        if let Some(off) = self.offset_of(ack) {
            self.peer_acked = self.peer_acked.max(off);
        }
    }

    /// A segment. Delivers what became contiguous to `out`.
    #[expect(
        clippy::too_many_arguments,
        reason = "the segment, its limits, and the engine's shared budget, counters and output"
    )]
    pub fn on_segment<'a>(
        &mut self,
        seq: u32,
        data: &'a [u8],
        fin: bool,
        limits: Limits,
        budget: &mut Budget,
        stats: &mut Stats,
        out: &mut Chunks<'a>,
    ) {
        if self.ended {
            stats.retransmitted_bytes += data.len() as u64;
            return;
        }
        if self.isn.is_none() {
            // Mid-stream pickup: the first segment seen defines the start.
            self.isn = Some(seq);
        }
        let Some(mut off) = self.offset_of(seq) else {
            stats.drop_segment_window += 1;
            return;
        };
        if fin {
            let fin_at = off + data.len() as u64;
            self.fin_at = Some(self.fin_at.map_or(fin_at, |f| f.min(fin_at)));
        }
        let mut data = data;
        // Already delivered: a retransmission.
        if off < self.delivered {
            let dup = ((self.delivered - off) as usize).min(data.len());
            stats.retransmitted_bytes += dup as u64;
            data = &data[dup..];
            off = self.delivered;
        }
        if !data.is_empty() {
            if off == self.delivered {
                self.deliver(Cow::Borrowed(data), stats, out);
                self.drain(budget, stats, out);
            } else if off - self.delivered > u64::from(limits.max_window) {
                stats.drop_segment_window += 1;
            } else {
                self.buffer(off, data, limits, budget, stats);
                // Bytes the peer acknowledged but the capture never had will never come.
                if self.peer_acked > self.delivered {
                    self.skip_acked_gap(budget, stats, out);
                }
            }
        }
        self.check_end(budget, stats, out);
    }

    /// Skips a hole the peer has acknowledged past (the bytes were lost by the capture).
    fn skip_acked_gap<'a>(&mut self, budget: &mut Budget, stats: &mut Stats, out: &mut Chunks<'a>) {
        while let Some(&(start, _)) = self.ranges.first() {
            if start > self.peer_acked || start <= self.delivered {
                break;
            }
            self.gap(start - self.delivered, stats, out);
            self.drain(budget, stats, out);
        }
    }

    /// Gives up on every hole: delivers all buffered data with gaps between, and a final gap up
    /// to what the peer acknowledged. Used when the stream ends or is flushed.
    pub fn flush<'a>(&mut self, budget: &mut Budget, stats: &mut Stats, out: &mut Chunks<'a>) {
        while let Some(&(start, _)) = self.ranges.first() {
            if start > self.delivered {
                self.gap(start - self.delivered, stats, out);
            }
            self.drain(budget, stats, out);
        }
        if self.peer_acked > self.delivered && !self.ended {
            // Trailing bytes the peer received but we never saw (a FIN counts one sequence number).
            let end = self.fin_at.map_or(self.peer_acked, |f| f.min(self.peer_acked));
            if end > self.delivered {
                self.gap(end - self.delivered, stats, out);
            }
        }
        if let Some(f) = self.fin_at {
            if f > self.delivered && !self.ended {
                self.gap(f - self.delivered, stats, out);
            }
        }
        if !self.ended {
            self.ended = true;
            out.push(Chunk::End);
        }
    }

    fn gap<'a>(&mut self, len: u64, stats: &mut Stats, out: &mut Chunks<'a>) {
        stats.gaps += 1;
        stats.gap_bytes += len;
        self.delivered += len;
        out.push(Chunk::Gap(len));
    }

    fn deliver<'a>(&mut self, data: Cow<'a, [u8]>, stats: &mut Stats, out: &mut Chunks<'a>) {
        stats.stream_bytes += data.len() as u64;
        self.delivered += data.len() as u64;
        out.push(Chunk::Data(data));
    }

    /// Delivers buffered ranges that became contiguous.
    fn drain<'a>(&mut self, budget: &mut Budget, stats: &mut Stats, out: &mut Chunks<'a>) {
        while let Some((start, _)) = self.ranges.first() {
            if *start > self.delivered {
                break;
            }
            let (start, mut bytes) = self.ranges.remove(0);
            self.buffered -= bytes.len();
            budget.used -= bytes.len();
            let skip = (self.delivered - start) as usize;
            if skip < bytes.len() {
                bytes.drain(..skip);
                self.deliver(Cow::Owned(bytes), stats, out);
            } else {
                stats.retransmitted_bytes += bytes.len() as u64;
            }
        }
    }

    fn check_end<'a>(&mut self, budget: &mut Budget, stats: &mut Stats, out: &mut Chunks<'a>) {
        if let Some(f) = self.fin_at {
            if self.delivered >= f && !self.ended {
                self.flush(budget, stats, out);
            }
        }
    }

    /// Stores `data` at `off` (> delivered), keeping bytes already buffered (first copy wins).
    fn buffer(&mut self, off: u64, data: &[u8], limits: Limits, budget: &mut Budget, stats: &mut Stats) {
        let end = off + data.len() as u64;
        // Pieces of [off, end) not covered by existing ranges.
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut pos = off;
        for (s, bytes) in &self.ranges {
            let e = s + bytes.len() as u64;
            if e <= pos || *s >= end {
                continue;
            }
            // Compare the overlap for conflicts.
            let ov_s = pos.max(*s);
            let ov_e = end.min(e);
            if ov_s < ov_e {
                let a = &data[(ov_s - off) as usize..(ov_e - off) as usize];
                let b = &bytes[(ov_s - s) as usize..(ov_e - s) as usize];
                if a != b {
                    stats.overlap_conflicts += 1;
                }
            }
            if *s > pos {
                pieces.push((pos, *s));
            }
            pos = pos.max(e);
        }
        if pos < end {
            pieces.push((pos, end));
        }
        let new_bytes: u64 = pieces.iter().map(|(s, e)| e - s).sum();
        if new_bytes == 0 {
            stats.retransmitted_bytes += data.len() as u64;
            return;
        }
        let new_bytes = new_bytes as usize;
        if self.buffered + new_bytes > limits.max_bytes {
            stats.drop_segment_flow_bytes += 1;
            return;
        }
        if budget.used + new_bytes > budget.cap {
            stats.drop_segment_total_bytes += 1;
            return;
        }
        // Refuse the segment when it would leave more disjoint ranges than allowed.
        let mut spans: Vec<(u64, u64)> =
            self.ranges.iter().map(|(s, b)| (*s, s + b.len() as u64)).chain(pieces.iter().copied()).collect();
        spans.sort_unstable();
        let mut count = 0;
        let mut last_end = None;
        for (s, e) in spans {
            if last_end != Some(s) {
                count += 1;
            }
            last_end = Some(e);
        }
        if count > limits.max_holes {
            stats.drop_segment_holes += 1;
            return;
        }
        let mut ranges = std::mem::take(&mut self.ranges);
        for (s, e) in pieces {
            let idx = ranges.partition_point(|(rs, _)| *rs < s);
            ranges.insert(idx, (s, data[(s - off) as usize..(e - off) as usize].to_vec()));
        }
        let mut merged: Vec<(u64, Vec<u8>)> = Vec::with_capacity(ranges.len());
        for (s, bytes) in ranges {
            match merged.last_mut() {
                Some((ls, lb)) if *ls + lb.len() as u64 == s => lb.extend_from_slice(&bytes),
                _ => merged.push((s, bytes)),
            }
        }
        self.ranges = merged;
        self.buffered += new_bytes;
        budget.used += new_bytes;
    }

    /// Releases the buffer when the flow is dropped.
    pub fn release(&mut self, budget: &mut Budget) {
        budget.used -= self.buffered.min(budget.used);
        self.buffered = 0;
        self.ranges.clear();
    }
}

#[cfg(test)]
mod tests;
