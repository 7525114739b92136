//! Types shared by akto-tap's eBPF programs (`ebpf/programs`) and the agent.
//!
//! Everything here is `#[repr(C)]` plain data with a layout both sides agree on: the agent reads
//! [`PacketHeader`]s out of the ring buffer and writes [`CaptureConfig`], ports and endpoints into
//! maps. `no_std`, no dependencies on the kernel side; with the `user` feature the types are
//! [`aya::Pod`] so user space can put them in maps.
#![no_std]

pub mod tls;

/// Largest packet copied whole (bytes from the start of the link-layer frame). GSO
/// super-packets reach 64 KiB of payload on most devices and up to `tso_max_size` (512 KiB)
/// with BIG TCP (seen on `lo` here); anything longer is cut and counted in
/// [`counter::TRUNCATED`]. The scratch area costs this much kernel memory per CPU.
pub const MAX_PACKET: usize = 512 * 1024 + 1024;

/// Name of the BPF ring buffer that carries packets longer than [`MAX_RING_PACKET`] (BIG TCP
/// super-packets) to user space; every other packet goes through the per-CPU rings.
pub const MAP_EVENTS: &str = "EVENTS";
/// Name of the `BPF_F_MMAPABLE` array of [`RingChunk`]s: the data of the per-CPU packet rings,
/// `chunks per CPU` consecutive elements for each possible CPU (see [`ring`]).
pub const MAP_RING_CHUNKS: &str = "RING_CHUNKS";
/// Name of the `BPF_F_MMAPABLE` array of [`RingCtrl`]: one per possible CPU, its ring's
/// producer and consumer positions.
pub const MAP_RING_CTRL: &str = "RING_CTRL";
/// Name of the per-CPU counter array (indices in [`counter`]).
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Per-CPU scratch space the program copies a packet into before `bpf_ringbuf_output`, for
/// packets too long for the largest ring-buffer size class (BIG TCP super-packets).
pub const MAP_SCRATCH: &str = "SCRATCH";
/// Array of 65,536 [`port_flag`] bit sets indexed by port (host byte order): ports to capture
/// (consulted when [`CaptureConfig::filter_ports`] is set), ports never captured, and ports of
/// the deny-listed endpoints.
pub const MAP_PORT_FLAGS: &str = "PORT_FLAGS";
/// Endpoints never captured: the agent's Kafka brokers.
pub const MAP_DENY_ENDPOINTS: &str = "DENY_ENDPOINTS";
/// Name of the global holding [`CaptureConfig`].
pub const GLOBAL_CONFIG: &str = "CONFIG";
/// Program attached to TC ingress of Ethernet (and loopback) interfaces.
pub const PROG_INGRESS: &str = "tap_ingress";
/// Program attached to TC egress of Ethernet (and loopback) interfaces.
pub const PROG_EGRESS: &str = "tap_egress";
/// Program attached to TC ingress of raw-IP interfaces (tun, WireGuard: no link-layer header).
pub const PROG_INGRESS_RAW: &str = "tap_ingress_raw";
/// Program attached to TC egress of raw-IP interfaces.
pub const PROG_EGRESS_RAW: &str = "tap_egress_raw";

/// Capacity of [`MAP_DENY_ENDPOINTS`].
pub const MAX_DENY_ENDPOINTS: u32 = 256;

/// Largest packet copied into a per-CPU ring (64 KiB GSO super-packets and their headers);
/// longer ones (BIG TCP) take the scratch area and [`MAP_EVENTS`].
pub const MAX_RING_PACKET: usize = 65536 + 1024;

/// Layout of the per-CPU packet rings.
///
/// Each CPU has a single-producer / single-consumer ring: the TC programs running on that CPU
/// produce, the agent's capture thread consumes through an `mmap` of the two maps. Positions
/// are byte counters that only grow (`u64`, never wrap in practice). A CPU's ring is
/// `chunks` elements of [`MAP_RING_CHUNKS`], each [`CHUNK_BYTES`] of ring space followed by
/// [`CHUNK_SLACK`] bytes of slack: the record at position `p` lives in element
/// `cpu * chunks + (p >> CHUNK_SHIFT) % chunks`, at offset `p % CHUNK_BYTES`, and runs into the
/// slack rather than wrapping. So a record is always contiguous, the program's store offsets are
/// bounded by a constant the verifier can check, and no skip marker is needed: the next record
/// starts at `p + record_len(cap_len)`, in the next chunk when that crosses the boundary (the
/// part of the next chunk before it stays unused). A record of `n` bytes at `p` is written only
/// when `p + n - consumer <= chunks * CHUNK_BYTES`, which keeps it clear of every unconsumed
/// record, slack included (they lie at least a ring's length behind in the same element).
pub mod ring {
    use super::{HEADER_LEN, MAX_RING_PACKET};

    /// log2 of [`CHUNK_BYTES`].
    pub const CHUNK_SHIFT: u32 = 19;
    /// Ring space per chunk (512 KiB): per-CPU ring sizes are multiples of it.
    pub const CHUNK_BYTES: usize = 1 << CHUNK_SHIFT;
    /// Room after a chunk for the record that starts near its end: a header and the largest
    /// packet, rounded up to the record alignment. 13 % of a chunk.
    pub const CHUNK_SLACK: usize = (HEADER_LEN + MAX_RING_PACKET + 7) & !7;
    /// Records start 8-byte aligned (the header is stored as 8-byte words).
    pub const fn record_len(cap_len: u32) -> u64 {
        (HEADER_LEN as u64 + cap_len as u64 + 7) & !7
    }
}

/// One element of [`MAP_RING_CHUNKS`]: ring space plus slack (see [`ring`]).
#[repr(C, align(8))]
pub struct RingChunk {
    /// Records: a [`PacketHeader`] then `cap_len` packet bytes, 8-byte aligned.
    pub data: [u8; ring::CHUNK_BYTES + ring::CHUNK_SLACK],
}

impl core::fmt::Debug for RingChunk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RingChunk").finish_non_exhaustive()
    }
}

/// One element of [`MAP_RING_CTRL`]: a CPU ring's positions, each on a cache line of its own
/// (the producer's CPU writes one, the agent's the other).
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy, Default)]
pub struct RingCtrl {
    /// Bytes produced (end of the last published record); written by the program with release
    /// ordering after the record, read by the agent with acquire ordering.
    pub producer: u64,
    /// Padding to the next cache line.
    pub pad0: [u64; 7],
    /// Bytes consumed; written by the agent with release ordering once it copied the records.
    pub consumer: u64,
    /// Padding to the end of the cache line.
    pub pad1: [u64; 7],
}

/// Indices into the per-CPU counter array. Drops are the ones user space reports as
/// `kernel_*` drops; the others explain what the filter skipped.
pub mod counter {
    /// Packets copied to the ring buffer.
    pub const CAPTURED_PACKETS: u32 = 0;
    /// Bytes copied to the ring buffer (packet bytes, headers excluded).
    pub const CAPTURED_BYTES: u32 = 1;
    /// Packets lost because their ring (the CPU's ring, or the BPF ring buffer for packets
    /// past `MAX_RING_PACKET`) was full (user space too slow).
    pub const RING_FULL_PACKETS: u32 = 2;
    /// Bytes lost because the ring buffer was full.
    pub const RING_FULL_BYTES: u32 = 3;
    /// Packets longer than `MAX_PACKET`, copied cut (their tail is lost).
    pub const TRUNCATED: u32 = 4;
    /// Packets that could not be read from the skb (helper error).
    pub const LOAD_ERRORS: u32 = 5;
    /// Packets skipped by the deny lists (ports or endpoints).
    pub const DENIED: u32 = 6;
    /// Packets skipped by the port filter.
    pub const FILTERED: u32 = 7;
    /// IPv4 fragments and IPv6 packets with a fragment header: not captured, because the
    /// filter cannot see their ports (TCP sets DF; this is rare).
    pub const FRAGMENTS: u32 = 8;
    /// Records committed to the BPF ring buffer (packets past `MAX_RING_PACKET` only) with a
    /// wake-up for the reader (the backlog crossed `wakeup_bytes`); the per-CPU rings never
    /// wake the reader, it drains them every `--poll-ms`.
    /// Each one costs the capturing CPU an interrupt to itself and a wake-up of the reader's
    /// CPU (on a VM, exits to the hypervisor): it should stay far below the packet count.
    pub const WAKEUPS: u32 = 9;
    /// Number of counters.
    pub const LEN: u32 = 10;
}

/// Bits of a [`MAP_PORT_FLAGS`] entry.
pub mod port_flag {
    /// A port to capture.
    pub const WANTED: u8 = 1;
    /// A port never captured (deny list).
    pub const DENIED: u8 = 2;
    /// The port of at least one endpoint in `DENY_ENDPOINTS`: only packets with such a port
    /// pay for the endpoint lookups.
    pub const DENY_ENDPOINT: u8 = 4;
}

/// Bits of [`PacketHeader::flags`].
pub mod flags {
    /// Seen on egress (else ingress).
    pub const EGRESS: u8 = 1;
    /// The copy is shorter than the packet (`cap_len < wire_len`).
    pub const TRUNCATED: u8 = 2;
}

/// What precedes each packet in the ring buffer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketHeader {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the program ran: also the order in which
    /// the agent merges the per-CPU rings.
    pub ts_ns: u64,
    /// Interface index the packet was seen on.
    pub ifindex: u32,
    /// Length of the packet (`skb->len`).
    pub wire_len: u32,
    /// Bytes that follow this header.
    pub cap_len: u32,
    /// Direction-independent hash of the addresses and ports, for sharding flows.
    pub flow_hash: u32,
    /// Offset of the IP header in the copied bytes.
    pub l2_len: u16,
    /// [`flags`] bits.
    pub flags: u8,
    /// Padding (zero).
    pub pad: [u8; 5],
}

/// Size of [`PacketHeader`] in the ring buffer.
pub const HEADER_LEN: usize = core::mem::size_of::<PacketHeader>();

/// [`PacketHeader`] as the four 8-byte words of its layout on a little-endian target (the
/// kernel side is `bpfel`), padding zero. The program stores these words: building the struct
/// instead made LLVM zero the padding with a call to a byte-wise `memset` loop per packet.
pub const fn header_words(
    ts_ns: u64,
    ifindex: u32,
    wire_len: u32,
    cap_len: u32,
    flow_hash: u32,
    l2_len: u16,
    flags: u8,
) -> [u64; 4] {
    [
        ts_ns,
        ifindex as u64 | (wire_len as u64) << 32,
        cap_len as u64 | (flow_hash as u64) << 32,
        l2_len as u64 | (flags as u64) << 16,
    ]
}

/// Settings read by the program at run time (a global set at load).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureConfig {
    /// 1: capture only packets whose source or destination port is in [`MAP_PORTS`].
    pub filter_ports: u8,
    /// Padding (zero).
    pub pad: [u8; 3],
    /// Wake the reader only when the bytes waiting in the ring cross this many (it also polls
    /// on a timer): one wake-up per packet costs an inter-processor interrupt each, which
    /// dominated the program's cost at high packet rates. 0 = wake for every packet. Only the
    /// BPF ring buffer of packets past `MAX_RING_PACKET` wakes the reader.
    pub wakeup_bytes: u32,
    /// Chunks of [`ring::CHUNK_BYTES`] per CPU ring (a power of two).
    pub ring_chunks: u32,
    /// Padding (zero).
    pub pad2: u32,
}

/// Key of [`MAP_DENY_ENDPOINTS`]: an address (IPv4 as `::ffff:a.b.c.d`) and a port.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// IPv6 address bytes, or IPv4-mapped.
    pub addr: [u8; 16],
    /// Port, host byte order.
    pub port: u16,
    /// Padding (zero: map keys compare as bytes).
    pub pad: [u8; 2],
}

/// Scratch area per CPU: the header then the packet, contiguous so one `bpf_ringbuf_output`
/// sends both.
#[repr(C)]
pub struct Scratch {
    /// Header of the packet being copied.
    pub header: PacketHeader,
    /// Packet bytes.
    pub data: [u8; MAX_PACKET],
}

impl core::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scratch").field("header", &self.header).finish_non_exhaustive()
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` data without padding holes the kernel could leave
    // uninitialized (padding is explicit and zeroed) and valid for any bit pattern.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::PacketHeader {}
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::CaptureConfig {}
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::Endpoint {}
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::RingCtrl {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_stable() {
        assert_eq!(HEADER_LEN, 32);
        assert_eq!(core::mem::align_of::<PacketHeader>(), 8);
        assert_eq!(core::mem::size_of::<Endpoint>(), 20);
        assert_eq!(core::mem::size_of::<CaptureConfig>(), 16);
        assert_eq!(core::mem::offset_of!(CaptureConfig, wakeup_bytes), 4);
        assert_eq!(core::mem::offset_of!(CaptureConfig, ring_chunks), 8);
        assert_eq!(core::mem::size_of::<RingCtrl>(), 128);
        assert_eq!(core::mem::offset_of!(RingCtrl, consumer), 64);
        assert_eq!(core::mem::size_of::<RingChunk>() % 8, 0);
        assert_eq!(ring::record_len(0), 32);
        assert_eq!(ring::record_len(1), 40);
        assert_eq!(ring::record_len(8), 40);
        // The largest record fits in the slack whatever its start in the chunk.
        assert!(ring::record_len(MAX_RING_PACKET as u32) as usize <= ring::CHUNK_SLACK);
        assert_eq!(core::mem::offset_of!(Scratch, data), HEADER_LEN);
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn header_words_are_the_header_layout() {
        let h = PacketHeader {
            ts_ns: 0x0102_0304_0506_0708,
            ifindex: 0x1112_1314,
            wire_len: 0x2122_2324,
            cap_len: 0x3132_3334,
            flow_hash: 0x4142_4344,
            l2_len: 0x5152,
            flags: 0x61,
            pad: [0; 5],
        };
        let w = header_words(h.ts_ns, h.ifindex, h.wire_len, h.cap_len, h.flow_hash, h.l2_len, h.flags);
        let mut bytes = [0u8; HEADER_LEN];
        for (i, word) in w.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        // Each field's bytes where the `repr(C)` layout puts it; padding zero.
        let mut expected = [0u8; HEADER_LEN];
        let mut put = |off: usize, b: &[u8]| expected[off..off + b.len()].copy_from_slice(b);
        put(core::mem::offset_of!(PacketHeader, ts_ns), &h.ts_ns.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, ifindex), &h.ifindex.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, wire_len), &h.wire_len.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, cap_len), &h.cap_len.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, flow_hash), &h.flow_hash.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, l2_len), &h.l2_len.to_le_bytes());
        put(core::mem::offset_of!(PacketHeader, flags), &[h.flags]);
        assert_eq!(bytes, expected);
    }
}
