//! TLS plaintext capture without kprobes and without syscall tracepoints: OpenSSL uprobes, the
//! socket found in the kernel from the `SSL*`'s fd (an fd-table walk at BTF offsets) or from the
//! socket call inside an SSL call (issue 7).
//!
//! * [`kernel`] — loads `ebpf/programs/src/tls.rs`, attaches the socket raw tracepoints and,
//!   per libssl file, the uprobes; reads the event ring and the kernel counters.
//! * [`btf`] — the kernel struct offsets the programs walk, from `/sys/kernel/btf/vmlinux`.
//! * [`libssl`] — finds the libssl files processes map (containers included), rescanning new
//!   processes every `--tls-rescan-secs`: a process started later that uses a file already
//!   probed is covered at once (uprobes are per file), a new file is probed at the next scan.
//! * [`sockets`] — `(pid, SSL*)` → socket addresses: from the kernel's CONNECT events (read
//!   from the `struct sock`, race-free: known before the first TLS byte), else [`procfs`] by fd.
//! * [`stream`] — (pure) events → TCP segments with `seq = stream offset`; one end per
//!   connection reports it.
//! * [`frame`] — segments as raw IP frames for the capture pipeline.
//!
//! The TLS thread feeds its own [`Dispatcher`]: its frames reach the same shard threads as
//! captured packets but a separate reassembly engine, so a connection seen both as plaintext
//! (here) and as encrypted packets (TC/libpcap) never mixes: the encrypted copy is not HTTP and
//! yields nothing, the plaintext yields each exchange once.
//!
//! Backpressure: the thread never blocks the traced processes (the kernel side drops and counts
//! when the ring is full); its dispatcher drops batches when a shard queue is full, as the
//! capture thread's does.

pub mod btf;
pub mod frame;
pub mod kernel;
pub mod libssl;
pub mod procfs;
pub mod sockets;
pub mod stream;

use crate::capture::ebpf::Clock;
use crate::capture::pipeline::Dispatcher;
use akto_tap_ebpf_common::tls::{kind, ConnAddrs};
use anyhow::Context;
use kernel::{Header, TlsKernel};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use reassembly::LinkType;
use std::hash::{Hash, Hasher};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use stream::{Dir, Event, StreamLimits, StreamStats, Streams};

/// Sockets of TLS connections remembered from the kernel's CONNECT events (one per connection,
/// dropped at `SSL_free`; the oldest forgotten past this).
const SOCKET_TABLE: usize = 65_536;

/// `--tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// On where uprobes are permitted; a note and no TLS plaintext elsewhere.
    Auto,
    /// On; the agent stops when the probes cannot be loaded.
    On,
    /// Off.
    Off,
}

/// TLS flags of `akto-tap capture` (file section `[tls]`).
#[derive(Debug, Clone, clap::Args)]
pub struct TlsArgs {
    /// TLS plaintext of OpenSSL (libssl 1.1/3.x) processes through uprobes: auto = where the
    /// kernel permits it.
    #[arg(long = "tls", value_enum, default_value = "auto")]
    pub tls: TlsMode,
    /// Size of the TLS event ring buffer, MiB (a power of two).
    #[arg(long = "tls-ring-mib", default_value_t = 8)]
    pub tls_ring_mib: u32,
    /// TLS connections tracked at once (the least recently active is dropped past this,
    /// counted).
    #[arg(long = "tls-max-conns", default_value_t = 16_384)]
    pub tls_max_conns: usize,
    /// On a connection older than the agent whose server end is seen first, how long that
    /// end's events wait for the client end (which has the request the server may have read
    /// before the probes attached): if it shows up, it reports the connection. 0 = no wait.
    #[arg(long = "tls-peer-wait-ms", default_value_t = 250)]
    pub tls_peer_wait_ms: u64,
    /// Plaintext held waiting for client ends (`--tls-peer-wait-ms`), in all, at most (KiB);
    /// past it a held connection's events are passed on at once (counted).
    #[arg(long = "tls-max-held-kib", default_value_t = 16 * 1024)]
    pub tls_max_held_kib: usize,
    /// Seconds between scans of new processes for libssl files to probe.
    #[arg(long = "tls-rescan-secs", default_value_t = 2.0)]
    pub tls_rescan_secs: f64,
    /// Learn the socket of an SSL connection whose fd OpenSSL does not show (curl's own BIO, a
    /// libssl 3.2+) from the socket send inside its first SSL call that sends: a raw tracepoint
    /// on every socket send of the host, which returns at once unless such a call is waiting.
    /// false: no per-socket-call program; such connections are not reported.
    #[arg(long = "tls-socket-calls", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_socket_calls: bool,
    /// With `--tls-socket-calls`: watch socket receives too, not only sends. Sends find the
    /// socket of every new connection (the handshake sends); receives add connections older
    /// than the agent whose first SSL calls after its start only read, at the price of one more
    /// raw-tracepoint dispatch (~65 ns) on every socket receive of the host.
    #[arg(long = "tls-socket-recv", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls_socket_recv: bool,
}

/// Counters of the TLS capture (for the summary, the status and `/metrics`).
#[derive(Debug, Clone, Default)]
pub struct TlsSnapshot {
    /// libssl files probed.
    pub libs: u64,
    /// libssl files whose probes failed to attach.
    pub lib_errors: u64,
    /// Kernel counters by name.
    pub kernel: Vec<(&'static str, u64)>,
    /// Connection table counters.
    pub streams: StreamStats,
    /// Ring items too short for their header (a bug if ever non-zero).
    pub malformed: u64,
    /// Events of the agent's own TLS connections (Kafka, APIs), ignored.
    pub own_events: u64,
    /// Connections resolved from the kernel's connect/accept events.
    pub resolved_by_events: u64,
    /// Connections resolved from procfs (the kernel could not read the socket).
    pub resolved_by_procfs: u64,
    /// Connections whose client/server role came from listening ports (unknown OpenSSL layout).
    pub role_from_procfs: u64,
    /// The kernel's BTF gave the struct offsets (fd walk and addresses in the kernel).
    pub btf_offsets: bool,
    /// The socket-call fallback runs (`--tls-socket-calls` and the kernel's tracepoints).
    pub socket_calls: bool,
    /// Threads found waiting for their socket that no longer exist (killed inside an SSL
    /// call), removed.
    pub stale_waiters: u64,
}

impl TlsSnapshot {
    /// As JSON for `--stats-json`.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.streams;
        serde_json::json!({
            "libs": self.libs,
            "lib_errors": self.lib_errors,
            "kernel": self.kernel.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "conns": s.conns, "conns_now": s.conns_now, "handshakes": s.handshakes, "closes": s.closes,
            "bytes": s.bytes, "unresolved_events": s.unresolved_events, "unresolved_bytes": s.unresolved_bytes,
            "peer_duplicate_bytes": s.peer_duplicate_bytes, "port_filtered": s.port_filtered, "evicted": s.evicted, "idle_expired": s.idle_expired,
            "peer_takeovers": s.peer_takeovers, "held_released": s.held_released, "held_over_limit": s.held_over_limit, "held_dropped_bytes": s.held_dropped_bytes,
            "malformed": self.malformed, "own_events": self.own_events,
            "resolved_by_events": self.resolved_by_events, "resolved_by_procfs": self.resolved_by_procfs,
            "role_from_procfs": self.role_from_procfs, "btf_offsets": self.btf_offsets, "socket_calls": self.socket_calls, "stale_waiters": self.stale_waiters,
        })
    }
}

impl TlsSnapshot {
    /// One line for the end-of-run summary.
    pub fn summary_line(&self) -> String {
        let k = |name: &str| self.kernel.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v);
        let s = &self.streams;
        format!(
            "tls: libssl files probed {} · connections {} · plaintext bytes {} · ring-full drops {} events · unresolved {} events · duplicate-end bytes {}",
            self.libs, s.conns, s.bytes, k("ring_full_events"), s.unresolved_events, s.peer_duplicate_bytes
        )
    }

    /// `akto_tap_tls_*` metrics.
    pub fn add_metrics(&self, m: &mut crate::metrics::MetricSet) {
        m.gauge("tls_libs_probed", "libssl files with uprobes attached.", &[], self.libs as f64);
        m.counter("tls_lib_errors_total", "libssl files whose uprobes failed to attach.", &[], self.lib_errors);
        for (name, v) in &self.kernel {
            m.counter("tls_kernel_total", "TLS kernel-side counters, by name (events, bytes, ring_full_*, call_truncated_bytes, read_errors, no_socket, sock_by_fd, sock_by_io, fd_walk_failed, addr_read_failed).", &[("counter", name)], *v);
        }
        let s = &self.streams;
        m.counter("tls_connections_total", "TLS connections resolved to their socket.", &[], s.conns);
        m.gauge("tls_connections", "TLS connections tracked now.", &[], s.conns_now as f64);
        m.counter("tls_bytes_total", "TLS plaintext bytes fed to reassembly.", &[], s.bytes);
        m.counter(
            "tls_dropped_events_total",
            "TLS events not used, by reason.",
            &[("reason", "unresolved")],
            s.unresolved_events,
        );
        m.counter(
            "tls_dropped_bytes_total",
            "TLS plaintext bytes not used, by reason.",
            &[("reason", "unresolved")],
            s.unresolved_bytes,
        );
        m.counter(
            "tls_dropped_bytes_total",
            "TLS plaintext bytes not used, by reason.",
            &[("reason", "peer_duplicate")],
            s.peer_duplicate_bytes,
        );
        m.counter("tls_connections_evicted_total", "TLS connections dropped at --tls-max-conns.", &[], s.evicted);
        m.counter(
            "tls_peer_takeovers_total",
            "TLS connections older than the agent reported from their client end while the server end's events were held.",
            &[],
            s.peer_takeovers,
        );
        m.counter(
            "tls_held_released_total",
            "Held server ends of TLS connections passed on, by reason (no client end in --tls-peer-wait-ms, or --tls-max-held-kib reached).",
            &[("reason", "wait_over")],
            s.held_released,
        );
        m.counter(
            "tls_held_released_total",
            "Held server ends of TLS connections passed on, by reason (no client end in --tls-peer-wait-ms, or --tls-max-held-kib reached).",
            &[("reason", "over_limit")],
            s.held_over_limit,
        );
        m.counter(
            "tls_dropped_bytes_total",
            "TLS plaintext bytes not used, by reason.",
            &[("reason", "held_dropped")],
            s.held_dropped_bytes,
        );
        m.counter(
            "tls_dropped_events_total",
            "TLS events not used, by reason.",
            &[("reason", "malformed")],
            self.malformed,
        );
    }
}

/// When the TLS thread reads the ring: the capture's `--poll-ms` and `--wakeup-kib`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest wait for events before reading the ring anyway.
    pub poll: Duration,
    /// Backlog in the ring that wakes the thread before its timer.
    pub wakeup_bytes: u64,
}

/// The running TLS capture.
#[derive(Debug)]
pub struct TlsCapture {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    snapshot: Arc<Mutex<TlsSnapshot>>,
}

impl TlsCapture {
    /// Starts TLS capture per `args.tls`: `Ok(None)` when off, or when `auto` and the kernel
    /// (or this build) does not permit it (said once in the log).
    pub fn start(
        args: &TlsArgs,
        ports: &[u16],
        timing: Timing,
        workload: crate::workload::Attributor,
        dispatcher: Dispatcher,
    ) -> anyhow::Result<Option<TlsCapture>> {
        if args.tls == TlsMode::Off {
            return Ok(None);
        }
        let ring_bytes =
            args.tls_ring_mib.max(1).checked_next_power_of_two().unwrap_or(1 << 30).saturating_mul(1 << 20);
        let offsets = match btf::kernel_offsets() {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "no kernel struct offsets from BTF: TLS sockets are learned from socket calls and resolved through procfs");
                akto_tap_ebpf_common::tls::KernelOffsets::default()
            }
        };
        tracing::debug!(?offsets, "kernel struct offsets");
        let socket_calls = match (args.tls_socket_calls, args.tls_socket_recv) {
            (false, _) => kernel::SocketCalls::Off,
            (true, false) => kernel::SocketCalls::Send,
            (true, true) => kernel::SocketCalls::SendAndRecv,
        };
        let kernel = match TlsKernel::open(ring_bytes, timing.wakeup_bytes, offsets, socket_calls) {
            Ok(k) => k,
            Err(e) if args.tls == TlsMode::Auto => {
                tracing::info!(error = %e, "TLS plaintext capture unavailable here (--tls auto): {e}");
                return Ok(None);
            }
            Err(e) => return Err(anyhow::Error::new(e).context("--tls on: loading the TLS uprobes")),
        };
        let kernel_socket_calls = kernel.socket_calls;
        let stop = Arc::new(AtomicBool::new(false));
        let snapshot = Arc::new(Mutex::new(TlsSnapshot::default()));
        let mut worker = Worker {
            kernel,
            dispatcher,
            streams: Streams::new(StreamLimits {
                max_conns: args.tls_max_conns.max(1),
                ports: ports.to_vec(),
                peer_wait_us: args.tls_peer_wait_ms.saturating_mul(1000),
                max_held_bytes: args.tls_max_held_kib.saturating_mul(1024),
                ..StreamLimits::default()
            }),
            resolver: sockets::Sockets::new(SOCKET_TABLE, procfs::ProcResolver::new("/proc")),
            scanner: libssl::Scanner::default(),
            clock: Clock::new(),
            rescan: Duration::from_secs_f64(args.tls_rescan_secs.max(0.1)),
            own_pid: std::process::id(),
            snap: TlsSnapshot {
                btf_offsets: offsets.valid == 1,
                socket_calls: kernel_socket_calls,
                ..TlsSnapshot::default()
            },
            frame: Vec::with_capacity(1 << 15),
            scans: 0,
            poll: timing.poll,
            workload,
        };
        // The first scan runs before start-up returns: traffic of processes already running is
        // seen from the first request.
        if let Some(denied) = worker.scan() {
            // Uprobes are a perf event the kernel grants only with CAP_SYS_ADMIN: without it no
            // file can ever be probed, so say so once instead of warning at every new library.
            let msg = format!("uprobes not permitted ({denied}); TLS plaintext capture needs CAP_SYS_ADMIN");
            if args.tls == TlsMode::Auto {
                tracing::info!("TLS plaintext capture unavailable here (--tls auto): {msg}");
                return Ok(None);
            }
            anyhow::bail!("--tls on: {msg}");
        }
        tracing::info!(
            libs = worker.snap.libs,
            "TLS plaintext capture on ({} libssl file(s) probed)",
            worker.snap.libs
        );
        let (stop2, snap2) = (Arc::clone(&stop), Arc::clone(&snapshot));
        let thread = std::thread::Builder::new()
            .name("akto-tap-tls".into())
            .spawn(move || worker.run(&stop2, &snap2))
            .context("starting the TLS thread")?;
        Ok(Some(TlsCapture { thread, stop, snapshot }))
    }

    /// A handle to the counters.
    pub fn observer(&self) -> Arc<Mutex<TlsSnapshot>> {
        Arc::clone(&self.snapshot)
    }

    /// Drains what the kernel queued, stops the thread (its dispatcher is flushed and dropped)
    /// and returns the final counters.
    pub fn finish(self) -> TlsSnapshot {
        self.stop.store(true, Relaxed);
        let _ = self.thread.join();
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The [`ConnAddrs`] after a CONNECT event's header.
fn parse_addrs(data: &[u8]) -> Option<ConnAddrs> {
    if data.len() < std::mem::size_of::<ConnAddrs>() {
        return None;
    }
    let arr16 = |o: usize| -> [u8; 16] { data[o..o + 16].try_into().unwrap_or([0; 16]) };
    let u16_at = |o: usize| u16::from_ne_bytes([data[o], data[o + 1]]);
    Some(ConnAddrs {
        local: arr16(0),
        remote: arr16(16),
        local_port: u16_at(32),
        remote_port: u16_at(34),
        family: u16_at(36),
        accepted: data[38],
        pad: 0,
    })
}

/// Hands a segment to the reassembly shard of its connection, as a raw IP frame.
fn dispatch(seg: &stream::Segment<'_>, frame: &mut Vec<u8>, dispatcher: &mut Dispatcher) {
    frame::build(seg, frame);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // Direction-independent: both directions of a connection go to one shard.
    (seg.src.min(seg.dst), seg.src.max(seg.dst)).hash(&mut hasher);
    dispatcher.push(hasher.finish(), reassembly::Timestamp(seg.ts_us), LinkType::Raw, frame);
}

struct Worker {
    kernel: TlsKernel,
    dispatcher: Dispatcher,
    streams: Streams,
    resolver: sockets::Sockets,
    scanner: libssl::Scanner,
    clock: Clock,
    rescan: Duration,
    own_pid: u32,
    snap: TlsSnapshot,
    frame: Vec<u8>,
    scans: u64,
    poll: Duration,
    /// Told the process of each connection (records carry `process_id`, `process_name`).
    workload: crate::workload::Attributor,
}

impl Worker {
    fn run(mut self, stop: &AtomicBool, shared: &Mutex<TlsSnapshot>) {
        let mut last_scan = Instant::now();
        let mut last_tick = Instant::now();
        loop {
            let stopping = stop.load(Relaxed);
            if !stopping {
                let ring = self.kernel.ring();
                let mut fds = [PollFd::new(ring.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(self.poll.as_millis()).unwrap_or(u16::MAX).max(1);
                let _ = nix::poll::poll(&mut fds, PollTimeout::from(ms));
            }
            self.drain();
            // Held connections whose wait is over go on; at the end, all of them.
            let now = if stopping { u64::MAX } else { crate::capture::pipeline::now().0 };
            let Worker { streams, dispatcher, frame, .. } = &mut self;
            streams.tick(now, &mut |seg| dispatch(&seg, frame, dispatcher));
            for (client, server, pid) in self.streams.take_opened() {
                self.workload.register(client, server, pid);
            }
            self.dispatcher.flush();
            if stopping {
                break;
            }
            if last_scan.elapsed() >= self.rescan {
                last_scan = Instant::now();
                let _ = self.scan();
            }
            if last_tick.elapsed() >= Duration::from_secs(1) {
                last_tick = Instant::now();
                self.clock.refresh();
                self.streams.expire(crate::capture::pipeline::now().0);
                self.snap.stale_waiters += self.kernel.disarm_if_idle(Path::new("/proc")).unwrap_or(0);
                self.publish(shared);
            }
        }
        self.publish(shared);
    }

    fn drain(&mut self) {
        let Worker { kernel, dispatcher, streams, resolver, clock, own_pid, snap, frame, .. } = self;
        let ring = kernel.ring();
        // Bounded per round so stop requests and rescans are not starved.
        for _ in 0..65_536 {
            let Some(item) = ring.next() else { break };
            let Some(h) = Header::parse(&item) else {
                snap.malformed += 1;
                continue;
            };
            if h.pid == *own_pid {
                snap.own_events += 1;
                continue;
            }
            let ts_us = clock.to_wall(h.ts_ns).0;
            let data = &item[akto_tap_ebpf_common::tls::TLS_HEADER_LEN..][..h.len as usize];
            let ev = match h.kind {
                kind::CONNECT => {
                    if parse_addrs(data).and_then(|a| resolver.learn_addrs(h.pid, h.ssl, &a)).is_some() {
                        streams.learned(h.pid, h.ssl);
                    } else {
                        snap.malformed += 1;
                    }
                    continue;
                }
                kind::CLOSE => {
                    resolver.forget(h.pid, h.ssl);
                    Event::Close { pid: h.pid, ssl: h.ssl, fd: h.fd, ts_us }
                }
                kind::HANDSHAKE => Event::Handshake { pid: h.pid, ssl: h.ssl, fd: h.fd, ts_us },
                kind::READ | kind::WRITE => {
                    let dir = if h.kind == kind::READ { Dir::Read } else { Dir::Write };
                    Event::Data { pid: h.pid, ssl: h.ssl, fd: h.fd, dir, offset: h.offset, data, ts_us }
                }
                _ => {
                    snap.malformed += 1;
                    continue;
                }
            };
            streams.on_event(&ev, resolver, &mut |seg| dispatch(&seg, frame, dispatcher));
        }
    }

    /// Probes libssl files not seen before. `Some(error)` when every attempt was refused for
    /// lack of permission (nothing can be probed by this process).
    fn scan(&mut self) -> Option<String> {
        let mut found = Vec::new();
        if self.scans == 0 {
            found = self.scanner.scan_dirs(&libssl::SYSTEM_DIRS);
        }
        self.scans += 1;
        found.extend(self.scanner.scan(Path::new("/proc"), self.own_pid));
        let (mut attached, mut denied) = (0, None);
        for found in found {
            let (version, layout) = libssl::layout_of_file(&found.open_path);
            match self.kernel.attach_lib(&found.open_path, layout) {
                Ok(n) => {
                    attached += 1;
                    self.snap.libs += 1;
                    let version = version.map(|(a, b, c)| format!("{a}.{b}.{c}")).unwrap_or_else(|| "unknown".into());
                    tracing::info!(lib = %found.lib.path, pid = found.pid, functions = n, version, ssl_layout = layout.is_some(), "TLS probes attached to {}", found.lib.path);
                }
                Err(e) if e.permission_denied() => {
                    self.snap.lib_errors += 1;
                    if denied.is_none() {
                        tracing::debug!(lib = %found.lib.path, error = %e, "cannot probe {}", found.lib.path);
                    }
                    denied.get_or_insert_with(|| e.to_string());
                }
                Err(e) => {
                    self.snap.lib_errors += 1;
                    tracing::warn!(lib = %found.lib.path, pid = found.pid, error = %e, "cannot probe {}", found.lib.path);
                }
            }
        }
        if attached == 0 && self.snap.libs == 0 {
            denied
        } else {
            None
        }
    }

    fn publish(&mut self, shared: &Mutex<TlsSnapshot>) {
        self.snap.kernel = self.kernel.counters();
        self.snap.streams = self.streams.stats();
        self.snap.resolved_by_events = self.resolver.from_events;
        self.snap.resolved_by_procfs = self.resolver.from_procfs;
        self.snap.role_from_procfs = self.resolver.role_from_procfs;
        if let Ok(mut s) = shared.lock() {
            *s = self.snap.clone();
        }
    }
}
