//! akto-tap's kernel side: TC classifiers (TCX on 6.6+) on ingress and egress that copy TCP
//! packets to a ring buffer for user-space reassembly.
//!
//! What is copied: every TCP packet that carries payload, plus SYN, FIN and RST (the flow table
//! needs them); pure ACKs are not. Skipped: deny-listed ports and endpoints (SSH, the agent's own
//! Kafka connections), ports outside the configured set when a set is given, and IP fragments
//! (their ports are unknown; TCP sets DF so they are rare). Packets are copied whole, GSO
//! super-packets included, up to `MAX_PACKET` bytes; longer ones are cut and counted.
//!
//! Backpressure: the program never blocks or alters traffic. It always returns `TC_ACT_UNSPEC`
//! (TCX_NEXT: the next program decides), and when the ring buffer is full the packet is dropped
//! from the capture and counted per CPU in `COUNTERS`, which the agent reads and exports.
#![no_std]
#![no_main]

use akto_tap_ebpf_common::{
    counter, flags, CaptureConfig, Endpoint, PacketHeader, Scratch, HEADER_LEN, MAX_DENY_ENDPOINTS,
    MAX_DENY_PORTS, MAX_INTERFACES, MAX_PACKET, MAX_PORTS,
};
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC};
use aya_ebpf::cty::c_void;
use aya_ebpf::helpers::{bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_skb_load_bytes};
use aya_ebpf::macros::{classifier, map};
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::TcContext;

/// Set by the agent at load time (`EbpfLoader::set_global`).
#[unsafe(no_mangle)]
static CONFIG: CaptureConfig = CaptureConfig { filter_ports: 0, pad: [0; 3], wakeup_bytes: 0 };

/// Packets to user space. Sized by the agent (`--ring-mib`) at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

/// One scratch area per CPU, indexed by CPU id (a per-CPU array cannot hold 64 KiB values).
/// TC programs do not nest on one CPU (ingress runs in softirq, egress with BHs disabled), so
/// the slot is never shared by two runs at once. Resized to the CPU count at load time.
#[map]
static SCRATCH: Array<Scratch> = Array::with_max_entries(1, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::LEN, 0);

#[map]
static PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_PORTS, 0);

#[map]
static DENY_PORTS: HashMap<u16, u8> = HashMap::with_max_entries(MAX_DENY_PORTS, 0);

#[map]
static DENY_ENDPOINTS: HashMap<Endpoint, u8> = HashMap::with_max_entries(MAX_DENY_ENDPOINTS, 0);

#[map]
static L2_LEN: HashMap<u32, u32> = HashMap::with_max_entries(MAX_INTERFACES, 0);

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88A8;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;

#[classifier]
pub fn tap_ingress(ctx: TcContext) -> i32 {
    capture(&ctx, 0);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn tap_egress(ctx: TcContext) -> i32 {
    capture(&ctx, flags::EGRESS);
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
    src: [u8; 16],
    dst: [u8; 16],
    sport: u16,
    dport: u16,
    flags: u8,
    payload: u32,
}

#[inline(always)]
fn capture(ctx: &TcContext, direction: u8) {
    let Some((l2, tcp)) = parse(ctx) else { return };
    if tcp.payload == 0 && tcp.flags & (TCP_SYN | TCP_FIN | TCP_RST) == 0 {
        return;
    }
    if denied(&tcp) {
        count(counter::DENIED, 1);
        return;
    }
    // SAFETY: reading a plain global the loader may have rewritten before load.
    let cfg = unsafe { core::ptr::read_volatile(&CONFIG) };
    if cfg.filter_ports != 0 && !wanted(&tcp) {
        count(counter::FILTERED, 1);
        return;
    }
    copy_out(ctx, l2, &tcp, direction, cfg.wakeup_bytes);
}

#[inline(always)]
fn denied(t: &Tcp) -> bool {
    // SAFETY: map lookups return pointers into map memory valid for the program run.
    unsafe {
        if DENY_PORTS.get(&t.sport).is_some() || DENY_PORTS.get(&t.dport).is_some() {
            return true;
        }
        let src = Endpoint { addr: t.src, port: t.sport, pad: [0; 2] };
        let dst = Endpoint { addr: t.dst, port: t.dport, pad: [0; 2] };
        DENY_ENDPOINTS.get(&src).is_some() || DENY_ENDPOINTS.get(&dst).is_some()
    }
}

#[inline(always)]
fn wanted(t: &Tcp) -> bool {
    // SAFETY: as in `denied`.
    unsafe { PORTS.get(&t.sport).is_some() || PORTS.get(&t.dport).is_some() }
}

#[inline(always)]
fn be16(ctx: &TcContext, off: usize) -> Option<u16> {
    ctx.load::<u16>(off).ok().map(u16::from_be)
}

/// Finds the TCP header. `None` for anything that is not a capturable TCP packet.
#[inline(always)]
fn parse(ctx: &TcContext) -> Option<(usize, Tcp)> {
    // SAFETY: `ctx.skb` points at the program's `__sk_buff` for the whole run.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    // SAFETY: as in `denied`.
    let mut l3 = match unsafe { L2_LEN.get(&ifindex) } {
        Some(v) => (*v & 0xff) as usize,
        None => 14,
    };
    let mut proto = if l3 >= 14 {
        be16(ctx, l3 - 2)?
    } else {
        // Raw-IP device: the skb's protocol field (network byte order in the low 16 bits).
        u16::from_be(ctx.skb.protocol() as u16)
    };
    // Up to two VLAN tags left in the frame (offloaded tags are not in the data).
    if l3 >= 14 && (proto == ETH_P_8021Q || proto == ETH_P_8021AD) {
        proto = be16(ctx, l3 + 2)?;
        l3 += 4;
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            proto = be16(ctx, l3 + 2)?;
            l3 += 4;
        }
    }
    let skb_len = ctx.len() as usize;
    let mut t = Tcp { src: [0; 16], dst: [0; 16], sport: 0, dport: 0, flags: 0, payload: 0 };
    let (l4, ip_payload_end) = match proto {
        ETH_P_IP => {
            let vihl: u8 = ctx.load(l3).ok()?;
            let ihl = ((vihl & 0x0f) as usize) * 4;
            if vihl >> 4 != 4 || ihl < 20 {
                return None;
            }
            if ctx.load::<u8>(l3 + 9).ok()? != IPPROTO_TCP {
                return None;
            }
            let frag = be16(ctx, l3 + 6)?;
            if frag & 0x3fff != 0 {
                count(counter::FRAGMENTS, 1);
                return None;
            }
            let total = be16(ctx, l3 + 2)? as usize;
            let src: [u8; 4] = ctx.load(l3 + 12).ok()?;
            let dst: [u8; 4] = ctx.load(l3 + 16).ok()?;
            t.src[10] = 0xff;
            t.src[11] = 0xff;
            t.dst[10] = 0xff;
            t.dst[11] = 0xff;
            t.src[12..16].copy_from_slice(&src);
            t.dst[12..16].copy_from_slice(&dst);
            // A zero total length is a GSO packet past 64 KiB (BIG TCP): use the skb length.
            let end = if total == 0 { skb_len } else { l3 + total };
            (l3 + ihl, end)
        }
        ETH_P_IPV6 => {
            let next: u8 = ctx.load(l3 + 6).ok()?;
            if next == 44 {
                count(counter::FRAGMENTS, 1);
                return None;
            }
            if next != IPPROTO_TCP {
                return None;
            }
            let plen = be16(ctx, l3 + 4)? as usize;
            t.src = ctx.load(l3 + 8).ok()?;
            t.dst = ctx.load(l3 + 24).ok()?;
            let end = if plen == 0 { skb_len } else { l3 + 40 + plen };
            (l3 + 40, end)
        }
        _ => return None,
    };
    t.sport = be16(ctx, l4)?;
    t.dport = be16(ctx, l4 + 2)?;
    let doff = ((ctx.load::<u8>(l4 + 12).ok()? >> 4) as usize) * 4;
    t.flags = ctx.load(l4 + 13).ok()?;
    // Ethernet pads short frames: the IP length, not the skb length, ends the payload.
    let end = if ip_payload_end < skb_len { ip_payload_end } else { skb_len };
    let start = l4 + doff;
    t.payload = if end > start { (end - start) as u32 } else { 0 };
    Some((l3, t))
}

/// Folds an address into 32 bits (sum of its words: order-independent once combined).
#[inline(always)]
fn fold(a: &[u8; 16]) -> u32 {
    let w = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

#[inline(always)]
fn copy_out(ctx: &TcContext, l3: usize, t: &Tcp, direction: u8, wakeup_bytes: u32) {
    // SAFETY: helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let Some(slot) = SCRATCH.get_ptr_mut(cpu) else {
        count(counter::LOAD_ERRORS, 1);
        return;
    };
    // SAFETY: the slot is this CPU's (see `SCRATCH`) and lives as long as the map.
    let scratch = unsafe { &mut *slot };
    let wire = ctx.len();
    // The helper's size must be provably in [1, MAX_PACKET]: clamp, then rule out zero.
    let mut n = wire as usize;
    if n > MAX_PACKET {
        n = MAX_PACKET;
    }
    if n == 0 {
        return;
    }
    // SAFETY: the destination is the slot's `data`, at least `n` bytes long.
    let ret = unsafe {
        bpf_skb_load_bytes(ctx.skb.skb as *const c_void, 0, scratch.data.as_mut_ptr() as *mut c_void, n as u32)
    };
    if ret != 0 {
        count(counter::LOAD_ERRORS, 1);
        return;
    }
    let mut f = direction;
    if (n as u32) < wire {
        f |= flags::TRUNCATED;
        count(counter::TRUNCATED, 1);
    }
    let (a, b) = (fold(&t.src), fold(&t.dst));
    // Direction-independent: both sides of a connection hash alike.
    let hash = (a ^ b) ^ ((t.sport as u32) ^ (t.dport as u32)).wrapping_mul(0x9e37_79b9);
    scratch.header = PacketHeader {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        // SAFETY: as in `parse`.
        ifindex: unsafe { (*ctx.skb.skb).ifindex },
        wire_len: wire,
        cap_len: n as u32,
        flow_hash: hash,
        l2_len: l3 as u16,
        flags: f,
        pad: [0; 5],
    };
    let total = HEADER_LEN + n;
    // SAFETY: `Scratch` is `repr(C)` plain bytes; the view covers exactly the slot.
    let bytes = unsafe {
        core::slice::from_raw_parts(slot as *const u8, core::mem::size_of::<Scratch>())
    };
    let total = if total > bytes.len() { bytes.len() } else { total };
    // Batched wake-ups: the reader polls on a short timer and is woken early only when a
    // backlog builds up.
    let wake = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= wakeup_bytes as u64 {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    match EVENTS.output::<[u8]>(&bytes[..total], wake as u64) {
        Ok(()) => {
            count(counter::CAPTURED_PACKETS, 1);
            count(counter::CAPTURED_BYTES, n as u64);
        }
        Err(_) => {
            count(counter::RING_FULL_PACKETS, 1);
            count(counter::RING_FULL_BYTES, wire as u64);
        }
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
