//! Loading the TLS programs (`ebpf/programs/src/tls.rs`), attaching the socket raw tracepoints
//! once and the OpenSSL uprobes per libssl file (with that file's struct layout as the attach
//! cookie), reading the event ring and the kernel counters. No syscall tracepoint is attached:
//! one would put every syscall of every process on the slow path.
//!
//! Links belong to this process: when it exits the kernel removes them.

use akto_tap_ebpf_common::tls::{
    tls_counter, KernelOffsets, SslLayout, GLOBAL_KERNEL_OFFSETS, MAP_BSS, MAP_NEED_SK, MAP_TLS_COUNTERS,
    MAP_TLS_EVENTS, PROG_SOCK_IO, PROG_SSL_FREE, PROG_SSL_HANDSHAKE, PROG_SSL_READ, PROG_SSL_READ_EX, PROG_SSL_RET,
    PROG_SSL_SET_FD, PROG_SSL_WRITE, PROG_SSL_WRITE_EX, SOCK_RECV_TRACEPOINT, SOCK_SEND_TRACEPOINT, TLS_HEADER_LEN,
};
use aya::maps::{MapData, PerCpuArray, RingBuf};
use aya::programs::uprobe::{UProbeAttachPoint, UProbeScope};
use aya::programs::{RawTracePoint, UProbe};
use aya::{Ebpf, EbpfLoader};
use std::path::Path;

/// The compiled programs, embedded at build time (empty when the build had no eBPF toolchain).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/akto-tap-tls"));

/// Functions probed in each libssl, entry and return: (symbol, entry program, required). The
/// `_ex` variants are OpenSSL 1.1.1+; the handshake functions only teach the socket early.
const PROBES: [(&str, &str, bool); 7] = [
    ("SSL_read", PROG_SSL_READ, true),
    ("SSL_write", PROG_SSL_WRITE, true),
    ("SSL_read_ex", PROG_SSL_READ_EX, false),
    ("SSL_write_ex", PROG_SSL_WRITE_EX, false),
    ("SSL_do_handshake", PROG_SSL_HANDSHAKE, false),
    ("SSL_connect", PROG_SSL_HANDSHAKE, false),
    ("SSL_accept", PROG_SSL_HANDSHAKE, false),
];

/// Functions probed at entry only (once per connection each): where the socket of an `SSL*` is
/// set, and where the connection ends.
const ENTRY_ONLY: [(&str, &str); 4] = [
    ("SSL_set_fd", PROG_SSL_SET_FD),
    ("SSL_set_rfd", PROG_SSL_SET_FD),
    ("SSL_set_wfd", PROG_SSL_SET_FD),
    ("SSL_free", PROG_SSL_FREE),
];

/// Why TLS capture cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The binary was built without its eBPF object.
    #[error("this akto-tap was built without its eBPF programs ({0})")]
    NotBuilt(&'static str),
    /// The kernel refused a step.
    #[error("{what}: {source:#}")]
    Kernel {
        /// Step that failed.
        what: String,
        /// The error.
        source: anyhow::Error,
    },
}

impl TlsError {
    /// The kernel refused for lack of privilege (EACCES/EPERM), not for this file.
    pub fn permission_denied(&self) -> bool {
        let TlsError::Kernel { source, .. } = self else { return false };
        source.chain().any(|c| {
            // EPERM or EACCES, as an io::Error or inside aya's message.
            c.downcast_ref::<std::io::Error>().is_some_and(|e| matches!(e.raw_os_error(), Some(1 | 13)))
                || c.to_string().contains("Permission denied")
                || c.to_string().contains("Operation not permitted")
        })
    }
}

fn kernel<E: Into<anyhow::Error>>(what: impl Into<String>) -> impl FnOnce(E) -> TlsError {
    let what = what.into();
    move |e| TlsError::Kernel { what, source: e.into() }
}

/// Which socket calls the socket-call fallback watches (see [`PROG_SOCK_IO`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketCalls {
    /// None: connections whose fd OpenSSL hides are not reported.
    Off,
    /// Sends only: an SSL call that sends (every handshake does: ClientHello, ServerHello)
    /// finds its socket; a connection whose first SSL calls only receive (one older than the
    /// agent, read-only calls) is found at its first call that sends.
    Send,
    /// Sends and receives: found at the first call either way, for twice the dispatch cost.
    SendAndRecv,
}

/// The loaded programs, the event ring and the counters.
pub struct TlsKernel {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    /// The socket raw tracepoints are attached (`--tls-socket-calls` and the kernel has them).
    pub socket_calls: bool,
}

impl std::fmt::Debug for TlsKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKernel").finish_non_exhaustive()
    }
}

impl TlsKernel {
    /// Loads every program (the verifier runs here) and attaches the socket raw tracepoints.
    /// `offsets` come from the kernel's BTF (`valid == 0` when unknown: sockets are then learned
    /// from the socket calls inside SSL calls only, and addresses from procfs).
    /// `socket_calls`: which socket raw tracepoints to attach (`--tls-socket-calls`,
    /// `--tls-socket-recv`).
    pub fn open(
        ring_bytes: u32,
        wakeup_bytes: u64,
        offsets: KernelOffsets,
        socket_calls: SocketCalls,
    ) -> Result<TlsKernel, TlsError> {
        if OBJECT.is_empty() {
            return Err(TlsError::NotBuilt(env!("AKTO_TAP_EBPF_BUILD")));
        }
        let wakeup_bytes = wakeup_bytes.min(u64::from(ring_bytes) / 2);
        let mut ebpf = EbpfLoader::new()
            .override_global("TLS_WAKEUP_BYTES", &wakeup_bytes, true)
            .override_global(GLOBAL_KERNEL_OFFSETS, &offsets, true)
            .map_max_entries(MAP_TLS_EVENTS, ring_bytes)
            .load(OBJECT)
            .map_err(kernel("loading the TLS eBPF object (maps)"))?;
        for name in [
            PROG_SSL_READ,
            PROG_SSL_WRITE,
            PROG_SSL_READ_EX,
            PROG_SSL_WRITE_EX,
            PROG_SSL_HANDSHAKE,
            PROG_SSL_SET_FD,
            PROG_SSL_FREE,
            PROG_SSL_RET,
        ] {
            let p: &mut UProbe = prog(&mut ebpf, name)?.try_into().map_err(kernel(format!("{name}: program type")))?;
            p.load().map_err(kernel(format!("loading uprobe {name} (verifier)")))?;
        }
        let p: &mut RawTracePoint =
            prog(&mut ebpf, PROG_SOCK_IO)?.try_into().map_err(kernel(format!("{PROG_SOCK_IO}: program type")))?;
        p.load().map_err(kernel(format!("loading raw tracepoint {PROG_SOCK_IO} (verifier)")))?;
        let tracepoints: &[&str] = match socket_calls {
            SocketCalls::Off => &[],
            SocketCalls::Send => &[SOCK_SEND_TRACEPOINT],
            SocketCalls::SendAndRecv => &[SOCK_SEND_TRACEPOINT, SOCK_RECV_TRACEPOINT],
        };
        let mut socket_calls_on = !tracepoints.is_empty();
        for tp in tracepoints {
            // Kernels before 6.3 lack these tracepoints: TLS capture goes on without the
            // fallback (connections whose fd OpenSSL hides are then not reported).
            if let Err(e) = p.attach(tp) {
                tracing::warn!(tracepoint = tp, error = %e, "TLS: no socket-call fallback (raw tracepoint {tp} not attached)");
                socket_calls_on = false;
                break;
            }
        }
        let ring = RingBuf::try_from(ebpf.take_map(MAP_TLS_EVENTS).ok_or_else(|| missing(MAP_TLS_EVENTS))?)
            .map_err(kernel("TLS ring buffer"))?;
        let counters = PerCpuArray::try_from(ebpf.take_map(MAP_TLS_COUNTERS).ok_or_else(|| missing(MAP_TLS_COUNTERS))?)
            .map_err(kernel("TLS counters"))?;
        Ok(TlsKernel { ebpf, ring, counters, socket_calls: socket_calls_on })
    }

    /// Attaches the probes to one libssl file (every process mapping it, now and later), with
    /// the file's struct layout when its version is known. Returns how many functions were
    /// probed.
    pub fn attach_lib(&mut self, path: &Path, layout: Option<SslLayout>) -> Result<usize, TlsError> {
        let cookie = layout.map_or(0, SslLayout::cookie);
        let mut probed = 0;
        for (symbol, entry, required) in PROBES {
            let result = attach_probe(&mut self.ebpf, entry, symbol, path, cookie)
                .and_then(|()| attach_probe(&mut self.ebpf, PROG_SSL_RET, symbol, path, cookie));
            match result {
                Ok(()) => probed += 1,
                Err(e) if required => return Err(e),
                Err(_) => {}
            }
        }
        for (symbol, entry) in ENTRY_ONLY {
            if attach_probe(&mut self.ebpf, entry, symbol, path, cookie).is_ok() {
                probed += 1;
            }
        }
        Ok(probed)
    }

    /// Clears the programs' `ARMED` flag when no thread waits for its socket, so the socket
    /// tracepoints go back to one load per socket call. Entries of threads that no longer exist
    /// (killed inside an SSL call) are deleted first. The map is checked again after clearing:
    /// a thread that armed meanwhile has its entry in the map before it sets the flag, so
    /// either the second check sees it (the flag is set again) or its own store comes after
    /// ours. Returns the stale entries deleted; `None` when the maps are not accessible.
    pub fn disarm_if_idle(&mut self, proc_root: &Path) -> Option<u64> {
        let mut stale = 0;
        let waiting = |ebpf: &Ebpf| -> Option<Vec<u64>> {
            let m: aya::maps::HashMap<&MapData, u64, u64> =
                aya::maps::HashMap::try_from(ebpf.map(MAP_NEED_SK)?).ok()?;
            Some(m.keys().filter_map(Result::ok).collect())
        };
        let keys = waiting(&self.ebpf)?;
        if !keys.is_empty() {
            let mut m: aya::maps::HashMap<&mut MapData, u64, u64> =
                aya::maps::HashMap::try_from(self.ebpf.map_mut(MAP_NEED_SK)?).ok()?;
            for k in keys {
                let (tgid, tid) = (k >> 32, k & 0xffff_ffff);
                if !proc_root.join(format!("{tgid}/task/{tid}")).exists() && m.remove(&k).is_ok() {
                    stale += 1;
                }
            }
            if !waiting(&self.ebpf)?.is_empty() {
                return Some(stale);
            }
        }
        let set = |ebpf: &mut Ebpf, v: u64| -> Option<()> {
            let mut bss: aya::maps::Array<&mut MapData, u64> =
                aya::maps::Array::try_from(ebpf.map_mut(MAP_BSS)?).ok()?;
            if bss.get(&0, 0).ok()? != v {
                bss.set(0, v, 0).ok()?;
            }
            Some(())
        };
        set(&mut self.ebpf, 0)?;
        if !waiting(&self.ebpf)?.is_empty() {
            set(&mut self.ebpf, 1)?;
        }
        Some(stale)
    }

    /// The event ring.
    pub fn ring(&mut self) -> &mut RingBuf<MapData> {
        &mut self.ring
    }

    /// A kernel counter summed over CPUs ([`tls_counter`]).
    pub fn counter(&self, index: u32) -> u64 {
        self.counters.get(&index, 0).map(|v| v.iter().sum()).unwrap_or(0)
    }

    /// All kernel counters, named.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("events", self.counter(tls_counter::EVENTS)),
            ("bytes", self.counter(tls_counter::BYTES)),
            ("ring_full_events", self.counter(tls_counter::RING_FULL_EVENTS)),
            ("ring_full_bytes", self.counter(tls_counter::RING_FULL_BYTES)),
            ("call_truncated_bytes", self.counter(tls_counter::CALL_TRUNCATED_BYTES)),
            ("read_errors", self.counter(tls_counter::READ_ERRORS)),
            ("no_socket", self.counter(tls_counter::NO_SOCKET)),
            ("sock_by_fd", self.counter(tls_counter::SOCK_BY_FD)),
            ("sock_by_io", self.counter(tls_counter::SOCK_BY_IO)),
            ("fd_walk_failed", self.counter(tls_counter::FD_WALK_FAILED)),
            ("addr_read_failed", self.counter(tls_counter::ADDR_READ_FAILED)),
        ]
    }
}

fn prog<'e>(ebpf: &'e mut Ebpf, name: &str) -> Result<&'e mut aya::programs::Program, TlsError> {
    ebpf.program_mut(name).ok_or_else(|| TlsError::Kernel {
        what: "finding a TLS program".into(),
        source: anyhow::anyhow!("{name} missing"),
    })
}

fn attach_probe(ebpf: &mut Ebpf, program: &str, symbol: &str, path: &Path, cookie: u64) -> Result<(), TlsError> {
    let p: &mut UProbe = prog(ebpf, program)?.try_into().map_err(kernel("program type"))?;
    let point = UProbeAttachPoint { location: symbol.into(), cookie: Some(cookie) };
    p.attach(point, path, UProbeScope::AllProcesses)
        .map(|_| ())
        .map_err(kernel(format!("attaching {program} to {symbol} in {}", path.display())))
}

fn missing(name: &'static str) -> TlsError {
    TlsError::Kernel { what: "finding a map".into(), source: anyhow::anyhow!("{name} missing from the object") }
}

/// A ring item's header, decoded (host byte order, the layout of `TlsHeader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Monotonic nanoseconds.
    pub ts_ns: u64,
    /// Process id.
    pub pid: u32,
    /// The `SSL*`.
    pub ssl: u64,
    /// Stream offset.
    pub offset: u64,
    /// Socket fd or -1.
    pub fd: i32,
    /// Data bytes following the header.
    pub len: u32,
    /// Event kind.
    pub kind: u8,
}

impl Header {
    /// Decodes the header at the front of an item; `None` when the item is too short for it or
    /// for the data it announces.
    pub fn parse(item: &[u8]) -> Option<Header> {
        let u64_at = |o: usize| item.get(o..o + 8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes);
        let u32_at = |o: usize| item.get(o..o + 4).and_then(|b| b.try_into().ok()).map(u32::from_ne_bytes);
        let h = Header {
            ts_ns: u64_at(0)?,
            pid: (u64_at(8)? >> 32) as u32,
            ssl: u64_at(16)?,
            offset: u64_at(24)?,
            fd: u32_at(32)? as i32,
            len: u32_at(36)?,
            kind: *item.get(40)?,
        };
        (item.len() >= TLS_HEADER_LEN + h.len as usize).then_some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use akto_tap_ebpf_common::tls::{kind, TlsHeader};

    #[test]
    fn header_parse_matches_the_shared_layout() {
        let h = TlsHeader {
            ts_ns: 5,
            pid_tgid: (77u64 << 32) | 78,
            ssl: 0xdead,
            offset: 1 << 33,
            fd: -1,
            len: 3,
            kind: kind::WRITE,
            pad: [0; 7],
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let mut item = Vec::new();
        item.extend_from_slice(&h.ts_ns.to_ne_bytes());
        item.extend_from_slice(&h.pid_tgid.to_ne_bytes());
        item.extend_from_slice(&h.ssl.to_ne_bytes());
        item.extend_from_slice(&h.offset.to_ne_bytes());
        item.extend_from_slice(&h.fd.to_ne_bytes());
        item.extend_from_slice(&h.len.to_ne_bytes());
        item.push(h.kind);
        item.extend_from_slice(&h.pad);
        item.extend_from_slice(&h.comm);
        assert_eq!(item.len(), TLS_HEADER_LEN);
        item.extend_from_slice(b"abc");
        let p = Header::parse(&item).unwrap();
        assert_eq!(
            (p.ts_ns, p.pid, p.ssl, p.offset, p.fd, p.len, p.kind),
            (5, 77, 0xdead, 1 << 33, -1, 3, kind::WRITE)
        );
        assert!(Header::parse(&item[..TLS_HEADER_LEN + 2]).is_none(), "announced data missing");
        assert!(Header::parse(&item[..30]).is_none());
    }
}
