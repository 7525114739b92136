//! Reader of the per-CPU packet rings (`RING_CHUNKS`/`RING_CTRL`, layout in
//! `akto_tap_ebpf_common::ring`): both maps are `BPF_F_MMAPABLE` arrays, mapped here once, and
//! read without a system call.
//!
//! Each CPU's ring has one producer (the TC programs on that CPU, which never nest) and one
//! consumer (this reader, on the capture thread). The program stores a record, then its new
//! `producer` position with release ordering; [`PerCpuRings::scan`] loads `producer` with
//! acquire ordering and only then reads the records before it; [`PerCpuRings::release`] stores
//! `consumer` with release ordering once the records were copied out, and the program writes
//! over them only after it saw that store. Records the kernel wrote are untrusted: a header
//! that does not fit between the positions is counted and the rest of that ring skipped.
//!
//! All `unsafe` of the capture lives here: the mapping and the atomics on it.
#![expect(unsafe_code, reason = "mmap of the BPF maps and atomic access to the positions in them")]

use akto_tap_ebpf_common::{ring, RingChunk, RingCtrl, HEADER_LEN, MAX_RING_PACKET};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};
use std::num::NonZeroUsize;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// A shared mapping of a BPF map's values, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: ProtFlags) -> nix::Result<Mapping> {
        let len = NonZeroUsize::new(len.next_multiple_of(page_size())).ok_or(nix::errno::Errno::EINVAL)?;
        // SAFETY: a new shared mapping of the map's fd at offset 0; `len` is at most the map's
        // value area rounded up to pages (what the kernel accepts for an mmapable array), and
        // the mapping is only accessed within `len` while `self` lives.
        let ptr = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0)? };
        Ok(Mapping { ptr: ptr.cast(), len: len.get() })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, no reference into it outlives `self`.
        let _ = unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

// SAFETY: the mapping is plain shared memory; access is synchronized by the positions' atomics.
unsafe impl Send for Mapping {}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().map_or(4096, |p| p as usize)
}

/// How far past the watermark a record's timestamp may be before it counts as malformed (a
/// program publishes within microseconds of its stamp; the reader's clock is read first).
const MAX_FUTURE_NS: u64 = 10_000_000_000;

/// Where a record lies: found by [`PerCpuRings::scan`], read by [`PerCpuRings::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordRef {
    /// The header's `ts_ns`: the order of the merge.
    pub ts_ns: u64,
    cpu: u32,
    pos: u64,
    len: u32,
}

impl RecordRef {
    /// A record kept elsewhere, identified by `(source, index)` (not one of the rings').
    pub(crate) fn other(ts_ns: u64, source: u32, index: u64) -> RecordRef {
        RecordRef { ts_ns, cpu: source, pos: index, len: 0 }
    }

    /// The ring (CPU) of the record, or the `source` given to [`RecordRef::other`].
    pub(crate) fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Position in the ring, or the `index` given to [`RecordRef::other`].
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }
}

/// The mapped rings of every possible CPU.
pub(crate) struct PerCpuRings {
    data: Mapping,
    ctrl: Mapping,
    cpus: u32,
    chunks: u32,
    /// Per CPU: where the next unread record starts (what `consumer` becomes on release).
    next: Vec<u64>,
    /// Most bytes one ring had waiting at the last `scan`.
    fullest: u64,
}

impl std::fmt::Debug for PerCpuRings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerCpuRings").field("cpus", &self.cpus).field("chunks", &self.chunks).finish_non_exhaustive()
    }
}

/// Size of one `RING_CHUNKS` element in the mapping: array values are 8-byte aligned.
const STRIDE: usize = std::mem::size_of::<RingChunk>().next_multiple_of(8);
const CTRL_STRIDE: usize = std::mem::size_of::<RingCtrl>().next_multiple_of(8);

impl PerCpuRings {
    /// Maps the two arrays, created with `cpus * chunks` and `cpus` elements.
    pub(crate) fn map(data: BorrowedFd<'_>, ctrl: BorrowedFd<'_>, cpus: u32, chunks: u32) -> nix::Result<PerCpuRings> {
        let entries = cpus as usize * chunks as usize;
        let data = Mapping::new(data, entries * STRIDE, ProtFlags::PROT_READ)?;
        let ctrl = Mapping::new(ctrl, cpus as usize * CTRL_STRIDE, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE)?;
        let mut rings = PerCpuRings { data, ctrl, cpus, chunks, next: vec![0; cpus as usize], fullest: 0 };
        // Start where the kernel is (a fresh map: 0).
        for cpu in 0..cpus {
            rings.next[cpu as usize] = rings.position(cpu, Position::Consumer).load(Ordering::Acquire);
        }
        Ok(rings)
    }

    /// Most bytes one ring had waiting at the last [`PerCpuRings::scan`].
    pub(crate) fn fullest(&self) -> u64 {
        self.fullest
    }

    /// Ring space per CPU, bytes.
    pub(crate) fn bytes_per_cpu(&self) -> u64 {
        u64::from(self.chunks) << ring::CHUNK_SHIFT
    }

    fn position(&self, cpu: u32, which: Position) -> &AtomicU64 {
        assert!(cpu < self.cpus);
        let off = cpu as usize * CTRL_STRIDE
            + match which {
                Position::Producer => std::mem::offset_of!(RingCtrl, producer),
                Position::Consumer => std::mem::offset_of!(RingCtrl, consumer),
            };
        // SAFETY: inside the mapping (`cpu < cpus`), 8-byte aligned (page-aligned base, 64-byte
        // elements, fields at 0 and 64); the kernel accesses it only as a whole u64.
        unsafe { AtomicU64::from_ptr(self.ctrl.ptr.as_ptr().add(off).cast::<u64>()) }
    }

    /// The bytes of `[pos, pos + len)` of `cpu`'s ring: within one element (ring space plus slack).
    fn bytes(&self, cpu: u32, pos: u64, len: usize) -> Option<&[u8]> {
        let chunk = (pos >> ring::CHUNK_SHIFT) as usize & (self.chunks as usize - 1);
        let off = pos as usize & (ring::CHUNK_BYTES - 1);
        if off + len > std::mem::size_of::<RingChunk>() {
            return None;
        }
        let start = (cpu as usize * self.chunks as usize + chunk) * STRIDE + off;
        if start + len > self.data.len {
            return None;
        }
        // SAFETY: inside the mapping (checked). The bytes lie between this ring's consumer and
        // producer positions (callers pass positions `scan` found there), which the program
        // does not write until `release` stores a consumer past them; `release` takes
        // `&mut self`, so this borrow ends first.
        Some(unsafe { std::slice::from_raw_parts(self.data.ptr.as_ptr().add(start), len) })
    }

    /// Appends to `out` the records of every ring published so far whose timestamp is before
    /// `watermark_ns`, each ring's in its order (timestamps grow along a ring). Returns the
    /// number of malformed records (each skips the rest of its ring).
    pub(crate) fn scan(&mut self, watermark_ns: u64, out: &mut Vec<RecordRef>) -> u64 {
        let mut malformed = 0;
        self.fullest = 0;
        for cpu in 0..self.cpus {
            let prod = self.position(cpu, Position::Producer).load(Ordering::Acquire);
            let mut pos = self.next[cpu as usize];
            self.fullest = self.fullest.max(prod.saturating_sub(pos));
            while pos < prod {
                match self.header(cpu, pos, prod) {
                    // A stamp from the future would hold its ring back forever: the program
                    // stamps before it publishes, so only a corrupt record has one.
                    Some((ts_ns, _)) if ts_ns.saturating_sub(watermark_ns) > MAX_FUTURE_NS => {
                        malformed += 1;
                        pos = prod;
                    }
                    Some((ts_ns, len)) => {
                        if ts_ns >= watermark_ns {
                            break;
                        }
                        out.push(RecordRef { ts_ns, cpu, pos, len });
                        pos += ring::record_len(len - HEADER_LEN as u32);
                    }
                    None => {
                        malformed += 1;
                        pos = prod;
                    }
                }
            }
            self.next[cpu as usize] = pos;
        }
        malformed
    }

    /// `(ts_ns, header + cap_len)` of the record at `pos`, if it is well-formed and ends by `prod`.
    fn header(&self, cpu: u32, pos: u64, prod: u64) -> Option<(u64, u32)> {
        let h = self.bytes(cpu, pos, HEADER_LEN)?;
        let ts_ns = u64::from_ne_bytes(h[0..8].try_into().ok()?);
        let cap_len = u32::from_ne_bytes(h[16..20].try_into().ok()?);
        if cap_len as usize > MAX_RING_PACKET || pos + ring::record_len(cap_len) > prod {
            return None;
        }
        Some((ts_ns, HEADER_LEN as u32 + cap_len))
    }

    /// A record `scan` found: its header and packet bytes.
    pub(crate) fn record(&self, r: &RecordRef) -> &[u8] {
        self.bytes(r.cpu, r.pos, r.len as usize).unwrap_or_default()
    }

    /// Hands everything `scan` went past back to the program.
    pub(crate) fn release(&mut self) {
        for cpu in 0..self.cpus {
            let next = self.next[cpu as usize];
            let cons = self.position(cpu, Position::Consumer);
            if cons.load(Ordering::Relaxed) != next {
                cons.store(next, Ordering::Release);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Position {
    Producer,
    Consumer,
}

#[cfg(test)]
mod tests {
    use super::*;
    use akto_tap_ebpf_common::header_words;
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;

    /// Plays the program's part on files the reader maps (a shared file mapping sees `pwrite`s).
    struct Producer {
        data: std::fs::File,
        ctrl: std::fs::File,
        chunks: u32,
        prod: Vec<u64>,
    }

    impl Producer {
        fn new(cpus: u32, chunks: u32) -> Producer {
            let data = tempfile::tempfile().unwrap();
            data.set_len((cpus as usize * chunks as usize * STRIDE) as u64).unwrap();
            let ctrl = tempfile::tempfile().unwrap();
            ctrl.set_len((cpus as usize * CTRL_STRIDE) as u64).unwrap();
            Producer { data, ctrl, chunks, prod: vec![0; cpus as usize] }
        }

        fn rings(&self) -> PerCpuRings {
            let cpus = self.prod.len() as u32;
            PerCpuRings::map(self.data.as_fd(), self.ctrl.as_fd(), cpus, self.chunks).unwrap()
        }

        /// Where the program would put the record at `pos`.
        fn offset(&self, cpu: u32, pos: u64) -> u64 {
            let chunk = (pos >> ring::CHUNK_SHIFT) & u64::from(self.chunks - 1);
            (u64::from(cpu) * u64::from(self.chunks) + chunk) * STRIDE as u64 + (pos & (ring::CHUNK_BYTES as u64 - 1))
        }

        fn write(&mut self, cpu: u32, ts_ns: u64, cap_len: u32, payload: &[u8]) {
            let pos = self.prod[cpu as usize];
            let mut rec = Vec::new();
            for w in header_words(ts_ns, 1, cap_len, cap_len, 7, 14, 0) {
                rec.extend_from_slice(&w.to_ne_bytes());
            }
            rec.extend_from_slice(payload);
            self.data.write_all_at(&rec, self.offset(cpu, pos)).unwrap();
            self.prod[cpu as usize] = pos + ring::record_len(cap_len);
            self.publish(cpu);
        }

        fn publish(&self, cpu: u32) {
            let at = u64::from(cpu) * CTRL_STRIDE as u64;
            self.ctrl.write_all_at(&self.prod[cpu as usize].to_ne_bytes(), at).unwrap();
        }

        fn start_at(&mut self, cpu: u32, pos: u64) {
            self.prod[cpu as usize] = pos;
            self.publish(cpu);
            self.ctrl.write_all_at(&pos.to_ne_bytes(), u64::from(cpu) * CTRL_STRIDE as u64 + 64).unwrap();
        }

        fn consumer(&self, cpu: u32) -> u64 {
            let mut b = [0u8; 8];
            self.ctrl.read_exact_at(&mut b, u64::from(cpu) * CTRL_STRIDE as u64 + 64).unwrap();
            u64::from_ne_bytes(b)
        }
    }

    fn payload(r: &PerCpuRings, rec: &RecordRef) -> Vec<u8> {
        r.record(rec)[HEADER_LEN..].to_vec()
    }

    #[test]
    fn merges_rings_up_to_the_watermark_and_releases_what_it_read() {
        let mut p = Producer::new(2, 1);
        p.write(0, 10, 3, b"abc");
        p.write(1, 20, 1, b"x");
        p.write(0, 30, 2, b"de");
        p.write(1, 40, 4, b"wxyz");
        let mut rings = p.rings();
        let mut found = Vec::new();
        assert_eq!(rings.scan(35, &mut found), 0);
        found.sort_by_key(|r| r.ts_ns);
        let got: Vec<(u64, Vec<u8>)> = found.iter().map(|r| (r.ts_ns, payload(&rings, r))).collect();
        assert_eq!(got, vec![(10, b"abc".to_vec()), (20, b"x".to_vec()), (30, b"de".to_vec())]);
        // Nothing is handed back before `release`; then exactly what was read.
        assert_eq!((p.consumer(0), p.consumer(1)), (0, 0));
        rings.release();
        assert_eq!((p.consumer(0), p.consumer(1)), (80, 40));
        // The record held back by the watermark comes in the next scan, once.
        found.clear();
        assert_eq!(rings.scan(100, &mut found), 0);
        assert_eq!(found.iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![40]);
        assert_eq!(payload(&rings, &found[0]), b"wxyz");
        rings.release();
        found.clear();
        rings.scan(1000, &mut found);
        assert!(found.is_empty());
    }

    #[test]
    fn a_record_near_the_end_of_a_chunk_runs_into_the_slack_and_the_next_starts_in_the_next_chunk() {
        let mut p = Producer::new(1, 2);
        // A ring whose positions stand 8 bytes before the chunk boundary.
        p.start_at(0, ring::CHUNK_BYTES as u64 - 8);
        p.write(0, 1, 1, b"z");
        assert_eq!(p.prod[0], ring::CHUNK_BYTES as u64 + 32);
        let big = vec![2u8; 5000];
        p.write(0, 2, 5000, &big);
        p.write(0, 3, 3, b"end");
        let mut rings = p.rings();
        let mut found = Vec::new();
        assert_eq!(rings.scan(u64::MAX, &mut found), 0);
        assert_eq!(found.len(), 3);
        assert_eq!(payload(&rings, &found[0]), b"z");
        assert_eq!(payload(&rings, &found[1]), big);
        assert_eq!(payload(&rings, &found[2]), b"end");
        // The first record ran past its chunk into the slack of the same element; the next
        // one starts in the second element, where the first one's overflow would have been.
        assert_eq!(p.offset(0, found[0].pos), ring::CHUNK_BYTES as u64 - 8);
        assert_eq!(p.offset(0, found[1].pos), STRIDE as u64 + 32);
    }

    #[test]
    fn a_malformed_record_skips_the_rest_of_its_ring_only() {
        let mut p = Producer::new(2, 1);
        p.write(0, 5, 1, b"a");
        // cap_len past the largest packet: the reader must not trust it.
        p.write(0, 6, MAX_RING_PACKET as u32 + 1, b"");
        p.write(0, 7, 1, b"b");
        p.write(1, 8, 1, b"c");
        // A stamp far past the watermark: skipped, not waited for.
        p.write(1, 100 + MAX_FUTURE_NS + 1, 1, b"d");
        p.write(1, 9, 1, b"e");
        let mut rings = p.rings();
        let mut found = Vec::new();
        assert_eq!(rings.scan(100, &mut found), 2);
        assert_eq!(found.iter().map(|r| r.ts_ns).collect::<Vec<_>>(), vec![5, 8]);
        rings.release();
        assert_eq!(p.consumer(0), p.prod[0]);
        assert_eq!(p.consumer(1), p.prod[1]);
    }
}
