//! The eBPF backend: TC classifiers (TCX on kernels 6.6+) on the selected interfaces copy TCP
//! packets into per-CPU rings, and BIG TCP super-packets into a BPF ring buffer
//! (`ebpf/programs`); this side loads them, fills the filter maps, attaches and detaches per
//! interface, drains the rings into the pipeline in timestamp order and reads the kernel's
//! per-CPU counters.
//!
//! Order: a flow's packets can be on different CPUs' rings (a request sent from one CPU, its
//! response from another; ACK-clocked sends from the softirq of whichever CPU took the ACK).
//! The engine needs them in the order they happened, or an ACK seen before the data it
//! acknowledges turns that data into a gap. Each ring is in time order, so each poll merges
//! the rings by the kernel timestamp (the precise monotonic clock) up to a watermark: the
//! monotonic time read *before* the producer positions. A record stamped before the watermark
//! but published after its ring was read (a program still running on another CPU) comes in the
//! next poll; anything it caused started after it was published, so after the watermark, and
//! waits for that same poll. Records at or past the watermark stay in their ring until then.
//!
//! TCX links belong to this process: when it exits — cleanly, after SIGTERM, or killed — the
//! kernel detaches them, so a restart never finds stale programs. On kernels without TCX aya
//! falls back to netlink `clsact` filters, which are removed on detach.

use super::ifaces::{Iface, L2};
use super::pipeline::Dispatcher;
use super::ring::{PerCpuRings, RecordRef};
use super::{KernelStats, Source};
use akto_tap_ebpf_common::{
    counter, port_flag, CaptureConfig, Endpoint, GLOBAL_CONFIG, HEADER_LEN, MAP_COUNTERS, MAP_DENY_ENDPOINTS,
    MAP_EVENTS, MAP_PORT_FLAGS, MAP_RING_CHUNKS, MAP_RING_CTRL, MAP_SCRATCH, PROG_EGRESS, PROG_EGRESS_RAW,
    PROG_INGRESS, PROG_INGRESS_RAW,
};
use aya::maps::{Array as BpfArray, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::tc::{SchedClassifierLinkId, TcAttachType};
use aya::programs::SchedClassifier;
use aya::{Ebpf, EbpfLoader};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use reassembly::{LinkType, Timestamp};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// The compiled programs, embedded at build time (empty when the build had no eBPF toolchain).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/akto-tap-tc"));

/// BPF ring-buffer items (BIG TCP packets) drained per `poll` call.
const DRAIN_LIMIT: usize = 1024;

/// Poll interval while a ring is filling up (see `EbpfSource::poll`).
const BUSY_POLL: Duration = Duration::from_millis(1);

/// [`RecordRef::cpu`] of a record from the BPF ring buffer (an index into `EbpfSource::big`).
const BIG: u32 = u32::MAX;

/// What the eBPF backend needs to know.
#[derive(Debug, Clone)]
pub struct EbpfConfig {
    /// Ring buffer size in bytes for packets past `MAX_RING_PACKET` (a power of two, at least one page).
    pub ring_bytes: u32,
    /// Chunks of `ring::CHUNK_BYTES` in each CPU's packet ring (a power of two).
    pub ring_chunks: u32,
    /// Backlog in the ring that wakes the reader before its poll timer.
    pub wakeup_bytes: u32,
    /// Ports to capture; empty = all.
    pub ports: Vec<u16>,
    /// Ports never captured.
    pub deny_ports: Vec<u16>,
    /// Endpoints never captured (the Kafka brokers).
    pub deny_endpoints: Vec<SocketAddr>,
}

/// Why the eBPF backend cannot run here.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The binary was built without its eBPF object.
    #[error("this akto-tap was built without its eBPF programs ({0}); rebuild with the eBPF toolchain (scripts/ensure-tools.sh)")]
    NotBuilt(&'static str),
    /// The kernel refused (permissions, lockdown, verifier, missing features).
    #[error("{what}: {source}")]
    Kernel {
        /// Step that failed.
        what: &'static str,
        /// The error, with the kernel's reason.
        source: anyhow::Error,
    },
}

fn kernel<E: Into<anyhow::Error>>(what: &'static str) -> impl FnOnce(E) -> EbpfError {
    move |e| {
        let full = format!("{:#}", e.into());
        // The whole verifier log, for whoever debugs the programs (`--log-level debug`).
        tracing::debug!(what, error = %full, "eBPF load failed");
        EbpfError::Kernel { what, source: anyhow::anyhow!(shorten(&full)) }
    }
}

/// A verifier rejection comes with the whole verifier log (hundreds of lines): keep the
/// syscall error and the log's last lines, which say what was refused.
fn shorten(msg: &str) -> String {
    let Some((head, log)) = msg.split_once("Verifier output:") else { return msg.to_string() };
    let lines: Vec<&str> = log.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(4)..].join(" | ");
    format!("{} verifier: … {tail}", head.trim_end())
}

/// The links of one interface: its index and one TC link per hook (`ingress`/`egress`).
type Attached = (u32, Vec<(&'static str, SchedClassifierLinkId)>);

/// The loaded programs and their maps.
pub struct EbpfSource {
    ebpf: Ebpf,
    rings: PerCpuRings,
    /// Records found by the current poll, merged by timestamp.
    order: Vec<RecordRef>,
    /// BIG TCP packets from `ring`, kept until the watermark passes them: `(ts_ns, record)`.
    big: Vec<(u64, Vec<u8>)>,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    attached: BTreeMap<String, Attached>,
    clock: Clock,
    malformed: u64,
}

impl std::fmt::Debug for EbpfSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfSource").field("attached", &self.attached.keys().collect::<Vec<_>>()).finish()
    }
}

fn endpoint(sa: &SocketAddr) -> Endpoint {
    let addr = match sa.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    Endpoint { addr, port: sa.port(), pad: [0; 2] }
}

impl EbpfSource {
    /// Loads and verifies the programs and fills the filter maps. Nothing is attached yet.
    pub fn open(cfg: &EbpfConfig) -> Result<EbpfSource, EbpfError> {
        if OBJECT.is_empty() {
            return Err(EbpfError::NotBuilt(env!("AKTO_TAP_EBPF_BUILD")));
        }
        let cpus = aya::util::nr_cpus()
            .map_err(|(what, e)| EbpfError::Kernel { what: "counting CPUs", source: anyhow::anyhow!("{what}: {e}") })?;
        let chunks = cfg.ring_chunks;
        let sizing = |e: String| EbpfError::Kernel { what: "sizing the packet rings", source: anyhow::anyhow!(e) };
        if !chunks.is_power_of_two() {
            return Err(sizing(format!("{chunks} chunks per CPU: not a power of two")));
        }
        let chunk_entries =
            (cpus as u32).checked_mul(chunks).ok_or_else(|| sizing(format!("{cpus} CPUs x {chunks} chunks")))?;
        let conf = CaptureConfig {
            filter_ports: u8::from(!cfg.ports.is_empty()),
            pad: [0; 3],
            wakeup_bytes: cfg.wakeup_bytes.min(cfg.ring_bytes / 2),
            ring_chunks: chunks,
            pad2: 0,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_CONFIG, &conf, true)
            .map_max_entries(MAP_SCRATCH, cpus as u32)
            .map_max_entries(MAP_RING_CHUNKS, chunk_entries)
            .map_max_entries(MAP_RING_CTRL, cpus as u32)
            .map_max_entries(MAP_EVENTS, cfg.ring_bytes)
            .load(OBJECT)
            .map_err(kernel("loading the eBPF object (maps)"))?;
        for name in [PROG_INGRESS, PROG_EGRESS, PROG_INGRESS_RAW, PROG_EGRESS_RAW] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or_else(|| EbpfError::Kernel {
                    what: "finding the TC program",
                    source: anyhow::anyhow!("{name} missing"),
                })?
                .try_into()
                .map_err(kernel("TC program type"))?;
            prog.load().map_err(kernel("loading the TC classifier (verifier)"))?;
        }
        let mut port_flags: BpfArray<_, u8> =
            BpfArray::try_from(ebpf.take_map(MAP_PORT_FLAGS).ok_or_else(|| missing(MAP_PORT_FLAGS))?)
                .map_err(kernel("port map"))?;
        for (port, bits) in port_bits(cfg) {
            port_flags.set(u32::from(port), bits, 0).map_err(kernel("filling the port map"))?;
        }
        let mut deny_ep: BpfHashMap<_, Endpoint, u8> =
            BpfHashMap::try_from(ebpf.take_map(MAP_DENY_ENDPOINTS).ok_or_else(|| missing(MAP_DENY_ENDPOINTS))?)
                .map_err(kernel("deny-endpoint map"))?;
        for sa in &cfg.deny_endpoints {
            deny_ep.insert(endpoint(sa), 1, 0).map_err(kernel("filling the deny-endpoint map"))?;
        }
        let ring = RingBuf::try_from(ebpf.take_map(MAP_EVENTS).ok_or_else(|| missing(MAP_EVENTS))?)
            .map_err(kernel("ring buffer"))?;
        let counters = PerCpuArray::try_from(ebpf.take_map(MAP_COUNTERS).ok_or_else(|| missing(MAP_COUNTERS))?)
            .map_err(kernel("counters"))?;
        let rings = {
            let data = ebpf.map(MAP_RING_CHUNKS).ok_or_else(|| missing(MAP_RING_CHUNKS))?;
            let ctrl = ebpf.map(MAP_RING_CTRL).ok_or_else(|| missing(MAP_RING_CTRL))?;
            let (aya::maps::Map::Array(data), aya::maps::Map::Array(ctrl)) = (data, ctrl) else {
                return Err(EbpfError::Kernel { what: "packet rings", source: anyhow::anyhow!("not array maps") });
            };
            PerCpuRings::map(data.fd().as_fd(), ctrl.fd().as_fd(), cpus as u32, chunks)
                .map_err(kernel("mapping the packet rings (mmap)"))?
        };
        tracing::debug!(cpus, bytes_per_cpu = rings.bytes_per_cpu(), "per-CPU packet rings mapped");
        let (order, big, attached) = (Vec::new(), Vec::new(), BTreeMap::new());
        Ok(EbpfSource { ebpf, rings, order, big, ring, counters, attached, clock: Clock::new(), malformed: 0 })
    }

    fn program(&mut self, name: &str) -> anyhow::Result<&mut SchedClassifier> {
        let p = self.ebpf.program_mut(name).ok_or_else(|| anyhow::anyhow!("program {name} missing"))?;
        Ok(p.try_into()?)
    }

    fn counter(&self, index: u32) -> u64 {
        self.counters.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }
}

/// The [`MAP_PORT_FLAGS`] entries: every port the configuration names, with its bits.
fn port_bits(cfg: &EbpfConfig) -> BTreeMap<u16, u8> {
    let mut bits = BTreeMap::new();
    let ports = cfg.ports.iter().map(|p| (*p, port_flag::WANTED));
    let deny = cfg.deny_ports.iter().map(|p| (*p, port_flag::DENIED));
    let endpoints = cfg.deny_endpoints.iter().map(|sa| (sa.port(), port_flag::DENY_ENDPOINT));
    for (port, bit) in ports.chain(deny).chain(endpoints) {
        *bits.entry(port).or_insert(0) |= bit;
    }
    bits
}

fn missing(name: &'static str) -> EbpfError {
    EbpfError::Kernel { what: "finding a map", source: anyhow::anyhow!("{name} missing from the object") }
}

impl Source for EbpfSource {
    fn name(&self) -> &'static str {
        "ebpf"
    }

    fn attach(&mut self, iface: &Iface) -> anyhow::Result<()> {
        // The programs differ by where the IP header starts (see `ebpf/programs`).
        let (ingress, egress) = match iface.l2 {
            Some(L2::Ethernet) => (PROG_INGRESS, PROG_EGRESS),
            Some(L2::RawIp) => (PROG_INGRESS_RAW, PROG_EGRESS_RAW),
            None => anyhow::bail!("{}: link type not supported", iface.name),
        };
        // On loopback every packet passes egress and then ingress: egress alone sees it once.
        let hooks: &[(&'static str, TcAttachType)] = if iface.loopback {
            &[(egress, TcAttachType::Egress)]
        } else {
            &[(ingress, TcAttachType::Ingress), (egress, TcAttachType::Egress)]
        };
        let mut links = Vec::new();
        for (prog, hook) in hooks {
            let result = self.program(prog).and_then(|p| Ok(p.attach(&iface.name, *hook)?));
            match result {
                Ok(link) => links.push((*prog, link)),
                Err(e) => {
                    // Leave nothing half-attached.
                    for (p, link) in links {
                        if let Ok(p) = self.program(p) {
                            let _ = p.detach(link);
                        }
                    }
                    return Err(e.context(format!("attaching to {} ({hook:?})", iface.name)));
                }
            }
        }
        self.attached.insert(iface.name.clone(), (iface.index, links));
        Ok(())
    }

    fn detach(&mut self, name: &str) {
        if let Some((_, links)) = self.attached.remove(name) {
            for (prog, link) in links {
                // An interface that is gone took its links with it: nothing to undo.
                if let Ok(p) = self.program(prog) {
                    let _ = p.detach(link);
                }
            }
        }
    }

    fn attached(&self) -> BTreeMap<String, u32> {
        self.attached.iter().map(|(n, (i, _))| (n.clone(), *i)).collect()
    }

    fn poll(&mut self, timeout: Duration, out: &mut Dispatcher) -> anyhow::Result<()> {
        self.clock.refresh();
        // The rings never wake the reader: when the last drain found one more than an eighth
        // full, poll again after 1 ms instead of `--poll-ms`, so a fast sender does not fill its
        // ring between two polls.
        let busy = self.rings.fullest() > self.rings.bytes_per_cpu() / 8;
        let timeout = if busy { timeout.min(BUSY_POLL) } else { timeout };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let ready = {
            let mut fds = [PollFd::new(self.ring.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) => n > 0,
                Err(nix::errno::Errno::EINTR) => false,
                Err(e) => return Err(e.into()),
            }
        };
        // Drain even when poll said nothing: the per-CPU rings never wake the reader, the BPF
        // ring buffer only past `--wakeup-kib`.
        let _ = ready;
        let watermark = monotonic_ns();
        for _ in 0..DRAIN_LIMIT {
            let Some(item) = self.ring.next() else { break };
            match Header::parse(&item) {
                Some(h) => self.big.push((h.ts_ns, item.to_vec())),
                None => self.malformed += 1,
            }
        }
        self.order.clear();
        self.malformed += self.rings.scan(watermark, &mut self.order);
        let rings_end = self.order.len();
        // BIG TCP records before the watermark join the merge; the rest wait.
        for (i, (ts_ns, _)) in self.big.iter().enumerate() {
            if *ts_ns < watermark {
                self.order.push(RecordRef::other(*ts_ns, BIG, i as u64));
            }
        }
        let has_big = self.order.len() > rings_end;
        // Each ring's records are already sorted: a stable sort merges the runs.
        self.order.sort_by_key(|r| r.ts_ns);
        for r in &self.order {
            let item = if r.cpu() == BIG { self.big[r.pos() as usize].1.as_slice() } else { self.rings.record(r) };
            let Some(h) = Header::parse(item) else {
                self.malformed += 1;
                continue;
            };
            let data = &item[HEADER_LEN..HEADER_LEN + h.cap_len as usize];
            let link = if h.l2_len == 0 { LinkType::Raw } else { LinkType::Ethernet };
            out.push(u64::from(h.flow_hash), self.clock.to_wall(h.ts_ns), link, data);
        }
        self.rings.release();
        if has_big {
            self.big.retain(|(ts_ns, _)| *ts_ns >= watermark);
        }
        Ok(())
    }

    fn kernel(&self) -> KernelStats {
        KernelStats {
            packets: self.counter(counter::CAPTURED_PACKETS),
            bytes: self.counter(counter::CAPTURED_BYTES),
            drops: vec![
                ("ring_full", self.counter(counter::RING_FULL_PACKETS)),
                ("load_error", self.counter(counter::LOAD_ERRORS)),
                ("malformed_event", self.malformed),
            ],
            other: vec![
                ("ring_full_bytes", self.counter(counter::RING_FULL_BYTES)),
                ("truncated", self.counter(counter::TRUNCATED)),
                ("denied", self.counter(counter::DENIED)),
                ("filtered_port", self.counter(counter::FILTERED)),
                ("fragment_skipped", self.counter(counter::FRAGMENTS)),
            ],
            wakeups: self.counter(counter::WAKEUPS),
        }
    }
}

impl Drop for EbpfSource {
    fn drop(&mut self) {
        let names: Vec<String> = self.attached.keys().cloned().collect();
        for n in names {
            self.detach(&n);
        }
    }
}

/// CLOCK_MONOTONIC now, nanoseconds: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    let ns = |t: nix::sys::time::TimeSpec| {
        u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec()).unwrap_or(0)
    };
    clock_gettime(ClockId::CLOCK_MONOTONIC).map(ns).unwrap_or(u64::MAX)
}

/// The fields of a ring-buffer item's header the capture needs.
struct Header {
    ts_ns: u64,
    cap_len: u32,
    flow_hash: u32,
    l2_len: u16,
}

impl Header {
    /// Reads the `#[repr(C)]` `PacketHeader` at the front of an item (host byte order).
    fn parse(item: &[u8]) -> Option<Header> {
        let u32_at = |o: usize| item.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes);
        let h = Header {
            ts_ns: u64::from_ne_bytes(item.get(0..8)?.try_into().ok()?),
            cap_len: u32_at(16)?,
            flow_hash: u32_at(20)?,
            l2_len: u16::from_ne_bytes(item.get(24..26)?.try_into().ok()?),
        };
        (item.len() >= HEADER_LEN + h.cap_len as usize).then_some(h)
    }
}

/// Converts the kernel's monotonic timestamps to wall-clock capture time.
pub(crate) struct Clock {
    offset_ns: i128,
    refreshed: Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let mut c = Clock { offset_ns: 0, refreshed: Instant::now() };
        c.offset_ns = Clock::sample();
        c
    }

    fn sample() -> i128 {
        use nix::time::{clock_gettime, ClockId};
        let ns = |id| {
            clock_gettime(id).map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())).unwrap_or(0)
        };
        ns(ClockId::CLOCK_REALTIME) - ns(ClockId::CLOCK_MONOTONIC)
    }

    /// Follows wall-clock adjustments (NTP steps) once a second.
    pub(crate) fn refresh(&mut self) {
        if self.refreshed.elapsed() >= Duration::from_secs(1) {
            self.offset_ns = Clock::sample();
            self.refreshed = Instant::now();
        }
    }

    pub(crate) fn to_wall(&self, mono_ns: u64) -> Timestamp {
        let wall = i128::from(mono_ns) + self.offset_ns;
        Timestamp(u64::try_from(wall / 1000).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use akto_tap_ebpf_common::PacketHeader;

    #[test]
    fn port_bits_combine_per_port() {
        let cfg = EbpfConfig {
            ring_bytes: 1 << 20,
            ring_chunks: 1,
            wakeup_bytes: 0,
            ports: vec![80, 9092],
            deny_ports: vec![22, 80],
            deny_endpoints: vec!["10.0.0.1:9092".parse().unwrap(), "[::1]:9093".parse().unwrap()],
        };
        let bits: Vec<(u16, u8)> = port_bits(&cfg).into_iter().collect();
        assert_eq!(
            bits,
            vec![
                (22, port_flag::DENIED),
                (80, port_flag::WANTED | port_flag::DENIED),
                (9092, port_flag::WANTED | port_flag::DENY_ENDPOINT),
                (9093, port_flag::DENY_ENDPOINT),
            ]
        );
    }

    #[test]
    fn header_parse_matches_the_shared_layout() {
        let h = PacketHeader {
            ts_ns: 7,
            ifindex: 3,
            wire_len: 100,
            cap_len: 4,
            flow_hash: 0xabcd,
            l2_len: 14,
            flags: 1,
            pad: [0; 5],
        };
        let mut item = Vec::new();
        item.extend_from_slice(&h.ts_ns.to_ne_bytes());
        item.extend_from_slice(&h.ifindex.to_ne_bytes());
        item.extend_from_slice(&h.wire_len.to_ne_bytes());
        item.extend_from_slice(&h.cap_len.to_ne_bytes());
        item.extend_from_slice(&h.flow_hash.to_ne_bytes());
        item.extend_from_slice(&h.l2_len.to_ne_bytes());
        item.push(h.flags);
        item.extend_from_slice(&h.pad);
        assert_eq!(item.len(), HEADER_LEN);
        item.extend_from_slice(b"abcd");
        let p = Header::parse(&item).unwrap();
        assert_eq!((p.ts_ns, p.cap_len, p.flow_hash, p.l2_len), (7, 4, 0xabcd, 14));
        // A cap_len longer than the item is refused, not sliced past the end.
        assert!(Header::parse(&item[..HEADER_LEN + 2]).is_none());
        assert!(Header::parse(&item[..10]).is_none());
    }

    #[test]
    fn clock_maps_monotonic_to_wall() {
        let c = Clock::new();
        let mono = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
        let mono_ns = mono.tv_sec() as u64 * 1_000_000_000 + mono.tv_nsec() as u64;
        let wall = super::super::pipeline::now().0;
        assert!(c.to_wall(mono_ns).0.abs_diff(wall) < 1_000_000);
    }
}
