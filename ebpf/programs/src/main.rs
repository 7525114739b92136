//! akto-tap's kernel side: TC classifiers (TCX on 6.6+) on ingress and egress that copy TCP
//! packets to per-CPU rings for user-space reassembly.
//!
//! What is copied: every TCP packet that carries payload, plus SYN, FIN and RST (the flow table
//! needs them); pure ACKs are not. Skipped: deny-listed ports and endpoints (SSH, the agent's own
//! Kafka connections), ports outside the configured set when a set is given, and IP fragments
//! (their ports are unknown; TCP sets DF so they are rare). Packets are copied whole, GSO
//! super-packets included, up to `MAX_PACKET` bytes; longer ones are cut and counted.
//!
//! Cost per packet (measured with `kernel.bpf_stats_enabled` and `scripts/bench-packet-cost.sh`,
//! see the README): headers are read with direct packet access (the helper `bpf_skb_load_bytes`
//! per field only when the headers are not in the skb's linear area); the port filters are one
//! array lookup per port (inlined by the verifier), the endpoint deny list a hash lookup only
//! for ports that have a denied endpoint; and a packet is copied once, with `bpf_skb_load_bytes`
//! straight into the ring of the CPU the program runs on (`RING_CHUNKS`, a `BPF_F_MMAPABLE`
//! array the agent maps): no lock, no reserve/commit, one release store to publish. The shared
//! BPF ring buffer it replaced cost 125-250 ns per packet for the record alone (its spinlock,
//! the reservation protocol, the size classes `bpf_ringbuf_reserve` needed). Only packets past
//! `MAX_RING_PACKET` (BIG TCP super-packets) take the per-CPU scratch area and
//! `bpf_ringbuf_output` into `EVENTS`, a second copy.
//!
//! Backpressure: the program never blocks or alters traffic. It always returns `TC_ACT_UNSPEC`
//! (TCX_NEXT: the next program decides), and when the CPU's ring (or the ring buffer) is full
//! the packet is dropped from the capture and counted per CPU in `COUNTERS`, which the agent
//! reads and exports.
#![no_std]
#![no_main]

use akto_tap_ebpf_common::{
    counter, flags, header_words, port_flag, ring, CaptureConfig, Endpoint, PacketHeader, RingChunk, RingCtrl, Scratch,
    HEADER_LEN, MAX_DENY_ENDPOINTS, MAX_PACKET, MAX_RING_PACKET,
};
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC};
use aya_ebpf::cty::c_void;
use aya_ebpf::helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_skb_load_bytes};
use aya_ebpf::macros::{classifier, map};
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::TcContext;
use core::sync::atomic::{compiler_fence, Ordering};

/// Set by the agent at load time (`EbpfLoader::set_global`).
#[unsafe(no_mangle)]
static CONFIG: CaptureConfig = CaptureConfig { filter_ports: 0, pad: [0; 3], wakeup_bytes: 0, ring_chunks: 1, pad2: 0 };

/// Packets past `MAX_RING_PACKET` (BIG TCP) to user space. Sized by the agent (`--ring-mib`) at
/// load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// `BPF_F_MMAPABLE` (include/uapi/linux/bpf.h): user space maps the array's values.
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Data of the per-CPU packet rings, read by the agent through `mmap`. Resized at load time to
/// `CPUs x chunks per CPU` (`--ring-kib`).
#[map]
static RING_CHUNKS: Array<RingChunk> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Producer and consumer positions of each CPU's ring. Resized to the CPU count at load time.
#[map]
static RING_CTRL: Array<RingCtrl> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// One scratch area per CPU, indexed by CPU id (a per-CPU array cannot hold 64 KiB values).
/// TC programs do not nest on one CPU (ingress runs in softirq, egress with BHs disabled), so
/// the slot is never shared by two runs at once. Resized to the CPU count at load time.
#[map]
static SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::LEN, 0);

/// `port_flag` bits per port (host byte order = index). An array, not a hash: the verifier
/// inlines its lookup, where a hash lookup is a call and a hash per port.
#[map]
static PORT_FLAGS: Array<u8> = Array::with_max_entries(65536, 0);

#[map]
static DENY_ENDPOINTS: HashMap<Endpoint, u8> = HashMap::with_max_entries(MAX_DENY_ENDPOINTS, 0);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

/// Length of the Ethernet header (loopback has one too).
const ETH_HLEN: usize = 14;

// One program per hook and link type: the offset of the IP header is a constant in each (no
// per-packet lookup by interface), 14 on Ethernet and loopback, 0 on raw-IP devices (tun,
// WireGuard), where the skb starts at the IP header.

#[classifier]
pub fn tap_ingress(ctx: TcContext) -> i32 {
    capture(&ctx, 0, ETH_HLEN);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tap_egress(ctx: TcContext) -> i32 {
    capture(&ctx, flags::EGRESS, ETH_HLEN);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tap_ingress_raw(ctx: TcContext) -> i32 {
    capture(&ctx, 0, 0);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tap_egress_raw(ctx: TcContext) -> i32 {
    capture(&ctx, flags::EGRESS, 0);
    TC_ACT_UNSPEC
}

#[inline(always)]
fn count(index: u32, n: u64) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *c += n };
    }
}

/// Addresses and ports of a TCP packet, and where its payload starts.
struct Tcp {
    /// Addresses as four native-endian words of the IPv6 (or IPv4-mapped) address bytes:
    /// words, not bytes, so no byte-wise `memset`/`memcpy` loops are generated.
    src: [u32; 4],
    dst: [u32; 4],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: u32,
}

#[inline(always)]
fn capture(ctx: &TcContext, direction: u8, l2: usize) {
    let Some((l3, tcp)) = parse(ctx, l2) else { return };
    if tcp.payload == 0 && tcp.flags & (TCP_SYN | TCP_FIN | TCP_RST) == 0 {
        return;
    }
    let ports = port_flags(tcp.sport) | port_flags(tcp.dport);
    if ports & port_flag::DENIED != 0 || (ports & port_flag::DENY_ENDPOINT != 0 && denied_endpoint(&tcp)) {
        count(counter::DENIED, 1);
        return;
    }
    // SAFETY: reading a plain global the loader may have rewritten before load.
    let cfg = unsafe { core::ptr::read_volatile(&CONFIG) };
    if cfg.filter_ports != 0 && ports & port_flag::WANTED == 0 {
        count(counter::FILTERED, 1);
        return;
    }
    copy_out(ctx, l3, &tcp, direction, &cfg);
}

#[inline(always)]
fn port_flags(port: u16) -> u8 {
    PORT_FLAGS.get(port as u32).copied().unwrap_or(0)
}

#[inline(always)]
fn endpoint(addr: &[u32; 4], port: u16) -> Endpoint {
    let b = |w: u32| w.to_ne_bytes();
    let (a, c, d, e) = (b(addr[0]), b(addr[1]), b(addr[2]), b(addr[3]));
    Endpoint {
        addr: [a[0], a[1], a[2], a[3], c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3], e[0], e[1], e[2], e[3]],
        port,
        pad: [0; 2],
    }
}

/// Only called when one of the ports has a deny-listed endpoint (rare: the Kafka brokers').
#[inline(never)]
fn denied_endpoint(t: &Tcp) -> bool {
    // SAFETY: map lookups return pointers into map memory valid for the program run.
    unsafe {
        DENY_ENDPOINTS.get(&endpoint(&t.src, t.sport)).is_some()
            || DENY_ENDPOINTS.get(&endpoint(&t.dst, t.dport)).is_some()
    }
}

/// Where header bytes come from: the skb's linear area by direct packet access, or the
/// `bpf_skb_load_bytes` helper when the headers are not all there. `Err(())` = out of range.
trait Bytes {
    fn u8_at(&self, off: usize) -> Result<u8, ()>;
    fn be16_at(&self, off: usize) -> Result<u16, ()>;
    /// Four bytes as a native-endian word (the bytes in memory order).
    fn word_at(&self, off: usize) -> Result<u32, ()>;
}

/// Direct packet access: `[data, end)` of the linear area. Offsets are bounded (at most a few
/// hundred bytes), which the verifier needs for a variable-offset packet pointer.
struct Linear {
    data: usize,
    end: usize,
}

impl Linear {
    #[inline(always)]
    fn at(&self, off: usize, len: usize) -> Result<*const u8, ()> {
        // The offset goes through memory so that LLVM cannot split it into a variable and a
        // constant part (`data + l3` then `- 2`): the verifier refuses a packet pointer with a
        // negative constant offset even when its variable part makes up for it.
        // SAFETY: reading a local.
        let off = unsafe { core::ptr::read_volatile(&off) };
        let p = self.data + off;
        if p + len > self.end {
            return Err(());
        }
        Ok(p as *const u8)
    }
}

impl Bytes for Linear {
    #[inline(always)]
    fn u8_at(&self, off: usize) -> Result<u8, ()> {
        let p = self.at(off, 1)?;
        // SAFETY: `at` checked that the byte lies inside the linear area.
        Ok(unsafe { *p })
    }
    #[inline(always)]
    fn be16_at(&self, off: usize) -> Result<u16, ()> {
        let p = self.at(off, 2)?;
        // SAFETY: as in `u8_at`, for two bytes.
        Ok(unsafe { u16::from_be_bytes([*p, *p.add(1)]) })
    }
    #[inline(always)]
    fn word_at(&self, off: usize) -> Result<u32, ()> {
        let p = self.at(off, 4)?;
        // SAFETY: as in `u8_at`, for four bytes.
        Ok(unsafe { u32::from_ne_bytes([*p, *p.add(1), *p.add(2), *p.add(3)]) })
    }
}

/// The helper path, one call per field.
struct Helper<'a>(&'a TcContext);

impl Bytes for Helper<'_> {
    #[inline(always)]
    fn u8_at(&self, off: usize) -> Result<u8, ()> {
        self.0.load::<u8>(off).map_err(|_| ())
    }
    #[inline(always)]
    fn be16_at(&self, off: usize) -> Result<u16, ()> {
        self.0.load::<u16>(off).map(u16::from_be).map_err(|_| ())
    }
    #[inline(always)]
    fn word_at(&self, off: usize) -> Result<u32, ()> {
        self.0.load::<u32>(off).map_err(|_| ())
    }
}

/// Finds the TCP header. `None` for anything that is not a capturable TCP packet.
#[inline(always)]
fn parse(ctx: &TcContext, l2: usize) -> Option<(usize, Tcp)> {
    let linear = Linear { data: ctx.data(), end: ctx.data_end() };
    match parse_from(ctx, &linear, l2) {
        Ok(found) => found,
        // Headers not (all) in the linear area: read them with the helper.
        Err(()) => parse_from(ctx, &Helper(ctx), l2).ok().flatten(),
    }
}

/// `Ok(None)`: not a capturable TCP packet; `Err(())`: a header lies outside what `b` can read.
#[inline(always)]
fn parse_from<B: Bytes>(ctx: &TcContext, b: &B, l2: usize) -> Result<Option<(usize, Tcp)>, ()> {
    let mut l3 = l2;
    let mut proto = if l3 >= 14 {
        b.be16_at(l3 - 2)?
    } else {
        // Raw-IP device: the skb's protocol field (network byte order in the low 16 bits).
        u16::from_be(ctx.skb.protocol() as u16)
    };
    // Up to two VLAN tags left in the frame (offloaded tags are not in the data).
    if l3 >= 14 && (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
        proto = b.be16_at(l3 + 2)?;
        l3 += 4;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            proto = b.be16_at(l3 + 2)?;
            l3 += 4;
        }
    }
    let skb_len = ctx.len() as usize;
    let mut t = Tcp { src: [0; 4], dst: [0; 4], sport: 0, dport: 0, flags: 0, payload: 0 };
    let (l4, ip_payload_end) = match proto {
        ETH_P_IP => {
            let vihl = b.u8_at(l3)?;
            let ihl = ((vihl & 0x0f) as usize) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return Ok(None);
            }
            if b.u8_at(l3 + 9)? != IPPROTO_TCP {
                return Ok(None);
            }
            let frag = b.be16_at(l3 + 6)?;
            if frag & 0x3fff != 0 {
                count(counter::FRAGMENTS, 1);
                return Ok(None);
            }
            let total = b.be16_at(l3 + 2)? as usize;
            // IPv4-mapped IPv6 (::ffff:a.b.c.d), as words of the address bytes.
            let mapped = u32::from_ne_bytes([0, 0, 0xff, 0xff]);
            t.src = [0, 0, mapped, b.word_at(l3 + 12)?];
            t.dst = [0, 0, mapped, b.word_at(l3 + 16)?];
            // A zero total length is a GSO packet past 64 KiB (BIG TCP): use the skb length.
            let end = if total == 0 { skb_len } else { l3 + total };
            (l3 + ihl, end)
        }
        ETH_P_IPV6 => {
            let next = b.u8_at(l3 + 6)?;
            if next == 44 {
                count(counter::FRAGMENTS, 1);
                return Ok(None);
            }
            if next != IPPROTO_TCP {
                return Ok(None);
            }
            let plen = b.be16_at(l3 + 4)? as usize;
            t.src = [b.word_at(l3 + 8)?, b.word_at(l3 + 12)?, b.word_at(l3 + 16)?, b.word_at(l3 + 20)?];
            t.dst = [b.word_at(l3 + 24)?, b.word_at(l3 + 28)?, b.word_at(l3 + 32)?, b.word_at(l3 + 36)?];
            let end = if plen == 0 { skb_len } else { l3 + 40 + plen };
            (l3 + 40, end)
        }
        _ => return Ok(None),
    };
    t.sport = b.be16_at(l4)?;
    t.dport = b.be16_at(l4 + 2)?;
    let doff = ((b.u8_at(l4 + 12)? >> 4) as usize) * 4;
    t.flags = b.u8_at(l4 + 13)?;
    // Ethernet pads short frames: the IP length, not the skb length, ends the payload.
    let end = if ip_payload_end < skb_len { ip_payload_end } else { skb_len };
    let start = l4 + doff;
    t.payload = if end > start { (end - start) as u32 } else { 0 };
    Ok(Some((l3, t)))
}

/// Folds an address into 32 bits (xor of its words: order-independent once combined).
#[inline(always)]
fn fold(a: &[u32; 4]) -> u32 {
    a[0] ^ a[1] ^ a[2] ^ a[3]
}

/// A record's [`PacketHeader`], as the words [`header_words`] lays out.
#[derive(Clone, Copy)]
struct Header {
    words: [u64; 4],
}

impl Header {
    #[inline(always)]
    fn with_cap_len(mut self, cap_len: u32) -> Header {
        self.words[2] = (self.words[2] & !0xffff_ffff) | cap_len as u64;
        self
    }

    #[inline(always)]
    fn with_flag(mut self, flag: u8) -> Header {
        self.words[3] |= (flag as u64) << 16;
        self
    }

    /// # Safety
    /// `dst` is valid for writing a `PacketHeader` (8-byte aligned: ring records and the
    /// scratch slot are).
    #[inline(always)]
    unsafe fn write(self, dst: *mut PacketHeader) {
        let d = dst as *mut u64;
        // SAFETY: per the contract, four aligned words.
        unsafe {
            d.write(self.words[0]);
            d.add(1).write(self.words[1]);
            d.add(2).write(self.words[2]);
            d.add(3).write(self.words[3]);
        }
    }
}

/// Why a packet did not reach the ring.
enum Lost {
    RingFull,
    Load,
}

#[inline(always)]
fn copy_out(ctx: &TcContext, l3: usize, t: &Tcp, direction: u8, cfg: &CaptureConfig) {
    let wire = ctx.len();
    let (a, b) = (fold(&t.src), fold(&t.dst));
    // Direction-independent: both sides of a connection hash alike.
    let hash = (a ^ b) ^ ((t.sport as u32) ^ (t.dport as u32)).wrapping_mul(0x9e37_79b9);
    // The precise clock, not the coarse one: the agent merges the per-CPU rings by this
    // timestamp, and a packet caused by another (a response, an ACK) must sort after it even
    // when the two were seen on different CPUs within one tick. With the TSC clocksource this
    // is a `rdtsc` and some arithmetic, no VM exit.
    // SAFETY: helper without arguments.
    let ts_ns = unsafe { bpf_ktime_get_ns() };
    // SAFETY: `ctx.skb` points at the program's `__sk_buff` for the whole run.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    let header = Header { words: header_words(ts_ns, ifindex, wire, 0, hash, l3 as u16, direction) };
    let n = wire as usize;
    if n <= MAX_RING_PACKET {
        return done(emit_percpu(ctx, n, header, cfg.ring_chunks), wire, n, false);
    }
    let backlog = Backlog { avail: EVENTS.query(BPF_RB_AVAIL_DATA as u64), threshold: cfg.wakeup_bytes as u64 };
    let copied = if n > MAX_PACKET { MAX_PACKET } else { n };
    let wake = backlog.flags(HEADER_LEN + copied);
    done(copy_out_scratch(ctx, wire, header, wake), wire, copied, wake == BPF_RB_FORCE_WAKEUP as u64);
}

/// Writes the packet into this CPU's ring (`RING_CHUNKS`, layout in `akto_tap_ebpf_common::ring`)
/// and publishes it.
///
/// Single producer per ring without a lock: TC programs do not nest on one CPU (ingress runs in
/// softirq, egress with bottom halves disabled, and neither is preempted), and only these TC
/// programs write to `RING_CHUNKS`/`RING_CTRL` (the TLS uprobes, which can be preempted, keep
/// their own BPF ring buffer). So between reading `producer` and publishing the new value no
/// other writer of this CPU's ring can run.
#[inline(never)]
fn emit_percpu(ctx: &TcContext, n: usize, header: Header, chunks: u32) -> Result<(), Lost> {
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(ctrl) = RING_CTRL.get_ptr_mut(cpu) else {
        return Err(Lost::Load);
    };
    // The helper's size must be provably in [1, MAX_RING_PACKET]: clamp, then rule out zero.
    let mut len = n;
    if len > MAX_RING_PACKET {
        len = MAX_RING_PACKET;
    }
    if len == 0 {
        return Err(Lost::Load);
    }
    // SAFETY: `ctrl` is this CPU's element, valid for the map's lifetime. `producer` is only
    // written by this CPU (see above): a plain load. `consumer` is written by the agent; a
    // volatile load reads it once. A stale (smaller) value only makes the ring look fuller.
    let (prod, cons) = unsafe {
        (core::ptr::addr_of!((*ctrl).producer).read(), core::ptr::read_volatile(core::ptr::addr_of!((*ctrl).consumer)))
    };
    let need = ring::record_len(len as u32);
    let size = (chunks as u64) << ring::CHUNK_SHIFT;
    if prod.wrapping_add(need).wrapping_sub(cons) > size {
        return Err(Lost::RingFull);
    }
    let chunk = ((prod >> ring::CHUNK_SHIFT) as u32) & chunks.wrapping_sub(1);
    let Some(area) = RING_CHUNKS.get_ptr_mut(cpu.wrapping_mul(chunks).wrapping_add(chunk)) else {
        return Err(Lost::Load);
    };
    // Masked to the chunk: with the slack after it, `off + HEADER_LEN + len` is within the
    // element whatever the offset, which is what the verifier checks.
    let off = (prod as usize) & (ring::CHUNK_BYTES - 1) & !7;
    // SAFETY: `area` is a `RingChunk`; `off < CHUNK_BYTES` and `HEADER_LEN + len` fits in the
    // slack (`CHUNK_SLACK`), so the record lies inside the element.
    let rec = unsafe { (area as *mut u8).add(off) };
    // SAFETY: as above; the destination holds `len` bytes after the header.
    let ret =
        unsafe { bpf_skb_load_bytes(ctx.skb.skb as *const c_void, 0, rec.add(HEADER_LEN) as *mut c_void, len as u32) };
    if ret != 0 {
        return Err(Lost::Load);
    }
    // SAFETY: `rec` is 8-byte aligned (element and `off` are) and inside the element.
    unsafe { header.with_cap_len(len as u32).write(rec as *mut PacketHeader) };
    // Publish, with release ordering: the record's stores (the helper's and the header's) must
    // be visible before the new position. The x86 JIT emits BPF instructions in order and x86
    // does not reorder a store with older stores, so what remains is to keep the compiler from
    // sinking the header's stores after this one: a compiler fence, then a volatile store. (A
    // real store-release is BPF_STORE_REL, which LLVM only selects for `-mcpu=v4`; aya-build
    // targets `generic`, where LLVM cannot select an atomic release store at all, and `core` has
    // no atomic read-modify-write for the BPF target. On weakly ordered CPUs - arm64 - this would
    // need v4 and `AtomicU64::store(Release)`.)
    compiler_fence(Ordering::Release);
    // SAFETY: `producer` is an aligned u64 inside this CPU's element, only written here.
    unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!((*ctrl).producer), prod.wrapping_add(need)) };
    Ok(())
}

/// Batched wake-ups of the BPF ring buffer (packets past `MAX_RING_PACKET` only): the reader
/// polls on a short timer and drains everything each time; it is woken early only when the
/// backlog crosses `threshold`. Only on the crossing: a reader that is behind (its core busy)
/// finds the data when it next polls, and waking it again for every packet meanwhile cost an
/// inter-processor interrupt each (on a VM, an exit to the hypervisor): several microseconds per
/// packet on the server's core, measured.
#[derive(Clone, Copy)]
struct Backlog {
    /// Bytes waiting in the ring before this record (`BPF_RB_AVAIL_DATA`).
    avail: u64,
    /// `CaptureConfig::wakeup_bytes`; 0 = wake for every record.
    threshold: u64,
}

impl Backlog {
    /// Flags for committing a record of `size` bytes (the ring adds an 8-byte header).
    #[inline(always)]
    fn flags(self, size: usize) -> u64 {
        let after = self.avail + size as u64 + 8;
        if self.threshold == 0 || (self.avail < self.threshold && after >= self.threshold) {
            BPF_RB_FORCE_WAKEUP as u64
        } else {
            BPF_RB_NO_WAKEUP as u64
        }
    }
}

#[inline(always)]
fn done(r: Result<(), Lost>, wire: u32, copied: usize, woke: bool) {
    match r {
        Ok(()) => {
            count(counter::CAPTURED_PACKETS, 1);
            count(counter::CAPTURED_BYTES, copied as u64);
            if woke {
                count(counter::WAKEUPS, 1);
            }
        }
        Err(Lost::RingFull) => {
            count(counter::RING_FULL_PACKETS, 1);
            count(counter::RING_FULL_BYTES, wire as u64);
        }
        Err(Lost::Load) => count(counter::LOAD_ERRORS, 1),
    }
}

/// Packets past `MAX_RING_PACKET`: copied into the per-CPU scratch area, then `bpf_ringbuf_output`
/// (its size may vary), cut at `MAX_PACKET`.
#[inline(never)]
fn copy_out_scratch(ctx: &TcContext, wire: u32, mut header: Header, wake: u64) -> Result<(), Lost> {
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(slot) = SCRATCH.get_ptr_mut(cpu) else { return Err(Lost::Load) };
    // SAFETY: the slot is this CPU's (see `SCRATCH`) and lives as long as the map.
    let scratch = unsafe { &mut *slot };
    let mut n = wire as usize;
    if n > MAX_PACKET {
        n = MAX_PACKET;
    }
    // The helper's size must be provably in [1, MAX_PACKET]. Through memory, so that LLVM
    // checks the very register it passes (it moved the zero test onto `wire` otherwise).
    // SAFETY: reading a local.
    let n = unsafe { core::ptr::read_volatile(&n) };
    if n == 0 || n > MAX_PACKET {
        return Err(Lost::Load);
    }
    // SAFETY: the destination is the slot's `data`, at least `n` bytes long.
    let ret = unsafe {
        bpf_skb_load_bytes(ctx.skb.skb as *const c_void, 0, scratch.data.as_mut_ptr() as *mut c_void, n as u32)
    };
    if ret != 0 {
        return Err(Lost::Load);
    }
    if (n as u32) < wire {
        header = header.with_flag(flags::TRUNCATED);
        count(counter::TRUNCATED, 1);
    }
    // SAFETY: the slot's header, aligned (the map value is).
    unsafe { header.with_cap_len(n as u32).write(core::ptr::addr_of_mut!(scratch.header)) };
    let total = HEADER_LEN + n;
    // SAFETY: `Scratch` is `repr(C)` plain bytes; the view covers exactly the slot.
    let bytes = unsafe { core::slice::from_raw_parts(slot as *const u8, core::mem::size_of::<Scratch>()) };
    let total = if total > bytes.len() { bytes.len() } else { total };
    EVENTS.output::<[u8]>(&bytes[..total], wake).map_err(|_| Lost::RingFull)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
