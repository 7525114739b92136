//! akto-tap's TLS plaintext programs: uprobes on OpenSSL (libssl 1.1 and 3.x) and syscall
//! tracepoints, no kprobes.
//!
//! ```text
//! SSL_read/SSL_write(_ex) entry ──▶ ACTIVE[thread] = {ssl, buf, kind}
//!   sys_enter_read/write/sendto/… ──▶ ACTIVE[thread].fd = fd      (the call's socket)
//! return probe ──▶ bytes done → stream offset from CONNS[(pid, ssl)] → TLS_EVENTS (chunks)
//! SSL_do_handshake/connect/accept return ──▶ HANDSHAKE event: (pid, ssl, fd), offsets reset
//! sys_enter_close(fd of a TLS connection) ──▶ CLOSE event
//! ```
//!
//! User space resolves `(pid, fd)` to the socket's addresses (procfs) when it sees the handshake,
//! i.e. while the connection is certainly open, and feeds the plaintext to the HTTP
//! reconstruction as ordered stream data.
//!
//! Backpressure: the programs never block the process. A full ring buffer loses the event; the
//! offsets still advance, so user space sees a gap, and the loss is counted per CPU.
#![no_std]
#![no_main]

use akto_tap_ebpf_common::tls::{
    kind, tls_counter, Active, ConnAddrs, ConnEvent, ConnKey, ConnState, Connecting, PeerKey, TlsEvent, TlsHeader, CHUNK,
    CLASS_MEDIUM, CLASS_SMALL,
    MAX_CALL_BYTES, MAX_CHUNKS,
};
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use aya_ebpf::cty::c_void;
use aya_ebpf::helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user};
use aya_ebpf::helpers::generated::{bpf_loop, bpf_probe_read_user as probe_read_user_raw};
use aya_ebpf::macros::{map, tracepoint, uprobe, uretprobe};
use aya_ebpf::maps::{LruHashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::{ProbeContext, RetProbeContext, TracePointContext};

/// Wake the reader only when this much waits in the ring (it also polls on a timer): a wake-up
/// per event is an inter-processor interrupt each, paid by the traced process. Set at load.
#[unsafe(no_mangle)]
static TLS_WAKEUP_BYTES: u64 = 0;

/// Events to user space. Sized by the agent at load time.
#[map]
static TLS_EVENTS: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map]
static TLS_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tls_counter::LEN, 0);

/// SSL calls in progress, per thread. LRU: a thread killed inside a call leaves its entry.
#[map]
static ACTIVE: LruHashMap<u64, Active> = LruHashMap::with_max_entries(16_384, 0);

/// Stream offsets and socket per connection.
#[map]
static CONNS: LruHashMap<ConnKey, ConnState> = LruHashMap::with_max_entries(65_536, 0);

/// `(pid << 32) | fd` of TLS sockets → `SSL*`, for `close`.
#[map]
static FDS: LruHashMap<u64, u64> = LruHashMap::with_max_entries(65_536, 0);

/// Threads inside `connect()`: the fd.
#[map]
static CONNECT_FD: LruHashMap<u64, i32> = LruHashMap::with_max_entries(16_384, 0);

/// Sockets between `SYN_SENT` (set in the connecting thread) and `ESTABLISHED`.
#[map]
static SYN_SENT: LruHashMap<u64, Connecting> = LruHashMap::with_max_entries(65_536, 0);

/// Threads inside `accept()`: where the peer address will be written.
#[map]
static ACCEPT_ADDR: LruHashMap<u64, u64> = LruHashMap::with_max_entries(16_384, 0);

/// Passively opened connections established but not yet accepted: peer → local end.
#[map]
static PASSIVE: LruHashMap<PeerKey, PeerKey> = LruHashMap::with_max_entries(65_536, 0);

/// Offset of the first syscall argument in a `syscalls/sys_enter_*` record (after the common
/// header and `__syscall_nr`; stable tracepoint format).
const SYSCALL_ARG0: usize = 16;

/// Submit flags: wake the reader only past the backlog threshold.
#[inline(always)]
fn wake_flags() -> u64 {
    // SAFETY: reading a plain global the loader may have rewritten before load.
    let threshold = unsafe { core::ptr::read_volatile(&TLS_WAKEUP_BYTES) };
    if TLS_EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= threshold {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
fn count(index: u32, n: u64) {
    if let Some(c) = TLS_COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *c += n };
    }
}

#[inline(always)]
fn enter(ssl: u64, buf: u64, done_ptr: u64, kind: u8) {
    let a = Active { ssl, buf, done_ptr, fd: -1, kind, pad: [0; 3] };
    let _ = ACTIVE.insert(&bpf_get_current_pid_tgid(), &a, 0);
}

#[uprobe]
pub fn ssl_read_entry(ctx: ProbeContext) -> u32 {
    enter(ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), 0, kind::READ);
    0
}

#[uprobe]
pub fn ssl_write_entry(ctx: ProbeContext) -> u32 {
    enter(ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), 0, kind::WRITE);
    0
}

#[uprobe]
pub fn ssl_read_ex_entry(ctx: ProbeContext) -> u32 {
    enter(ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), ctx.arg::<u64>(3).unwrap_or(0), kind::READ);
    0
}

#[uprobe]
pub fn ssl_write_ex_entry(ctx: ProbeContext) -> u32 {
    enter(ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), ctx.arg::<u64>(3).unwrap_or(0), kind::WRITE);
    0
}

#[uprobe]
pub fn ssl_handshake_entry(ctx: ProbeContext) -> u32 {
    enter(ctx.arg::<u64>(0).unwrap_or(0), 0, 0, kind::HANDSHAKE);
    0
}

/// The socket of the SSL call in progress on this thread, if any.
#[tracepoint]
pub fn sys_enter_fd(ctx: TracePointContext) -> u32 {
    if let Some(a) = ACTIVE.get_ptr_mut(&bpf_get_current_pid_tgid()) {
        // SAFETY: reading the tracepoint record at a fixed offset; map value valid for the run.
        unsafe {
            if (*a).fd < 0 {
                if let Ok(fd) = ctx.read_at::<u64>(SYSCALL_ARG0) {
                    (*a).fd = fd as i32;
                }
            }
        }
    }
    0
}

#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    // SAFETY: as above.
    let Ok(fd) = (unsafe { ctx.read_at::<u64>(SYSCALL_ARG0) }) else { return 0 };
    let fd = fd as i32;
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let fd_key = ((tgid as u64) << 32) | (fd as u32 as u64);
    // SAFETY: map lookup; the value is copied out at once.
    let Some(ssl) = (unsafe { FDS.get(&fd_key) }).copied() else { return 0 };
    let _ = FDS.remove(&fd_key);
    let _ = CONNS.remove(&ConnKey { tgid, pad: 0, ssl });
    if let Some(mut e) = TLS_EVENTS.reserve::<TlsHeader>(0) {
        e.write(header(kind::CLOSE, ssl, fd, 0, 0));
        e.submit(wake_flags());
    } else {
        count(tls_counter::RING_FULL_EVENTS, 1);
    }
    0
}

/// `syscalls/sys_exit_*`: the return value.
const SYSCALL_RET: usize = 16;
/// Second syscall argument.
const SYSCALL_ARG1: usize = 24;

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    // SAFETY: fixed offset in the tracepoint record.
    if let Ok(fd) = unsafe { ctx.read_at::<u64>(SYSCALL_ARG0) } {
        let _ = CONNECT_FD.insert(&bpf_get_current_pid_tgid(), &(fd as i32), 0);
    }
    0
}

#[tracepoint]
pub fn sys_exit_connect(_ctx: TracePointContext) -> u32 {
    let _ = CONNECT_FD.remove(&bpf_get_current_pid_tgid());
    0
}

#[tracepoint]
pub fn sys_enter_accept(ctx: TracePointContext) -> u32 {
    // SAFETY: fixed offset in the tracepoint record.
    if let Ok(addr) = unsafe { ctx.read_at::<u64>(SYSCALL_ARG1) } {
        if addr != 0 {
            let _ = ACCEPT_ADDR.insert(&bpf_get_current_pid_tgid(), &addr, 0);
        }
    }
    0
}

/// `struct sockaddr_in{,6}` as far as needed: family, port (network order), address.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockAddr {
    family: u16,
    port_be: u16,
    /// IPv4 address (sockaddr_in) or flowinfo (sockaddr_in6).
    v4_or_flow: [u8; 4],
    /// IPv6 address (sockaddr_in6).
    v6: [u8; 16],
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: map lookup; copied out.
    let Some(ptr) = (unsafe { ACCEPT_ADDR.get(&id) }).copied() else { return 0 };
    let _ = ACCEPT_ADDR.remove(&id);
    // SAFETY: fixed offset in the tracepoint record.
    let Ok(fd) = (unsafe { ctx.read_at::<i64>(SYSCALL_RET) }) else { return 0 };
    if fd < 0 {
        return 0;
    }
    // SAFETY: the helper reads the process's memory and fails cleanly on a bad address.
    let Ok(sa) = (unsafe { bpf_probe_read_user(ptr as *const SockAddr) }) else { return 0 };
    let mut peer = PeerKey { addr: [0; 16], port: u16::from_be(sa.port_be), family: sa.family, pad: 0 };
    match sa.family {
        AF_INET => peer.addr[..4].copy_from_slice(&sa.v4_or_flow),
        AF_INET6 => peer.addr = sa.v6,
        _ => return 0,
    }
    // SAFETY: map lookup; copied out.
    let Some(local) = (unsafe { PASSIVE.get(&peer) }).copied() else { return 0 };
    let _ = PASSIVE.remove(&peer);
    let addrs = ConnAddrs {
        local: local.addr,
        remote: peer.addr,
        local_port: local.port,
        remote_port: peer.port,
        family: peer.family,
        accepted: 1,
        pad: 0,
    };
    emit_conn(header(kind::CONNECT, 0, fd as i32, 0, core::mem::size_of::<ConnAddrs>() as u32), addrs);
    0
}

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;

/// `sock/inet_sock_set_state` record offsets (stable tracepoint format).
mod state {
    pub const SKADDR: usize = 8;
    pub const OLDSTATE: usize = 16;
    pub const NEWSTATE: usize = 20;
    pub const SPORT: usize = 24;
    pub const DPORT: usize = 26;
    pub const FAMILY: usize = 28;
    pub const PROTOCOL: usize = 30;
    pub const SADDR: usize = 32;
    pub const DADDR: usize = 36;
    pub const SADDR_V6: usize = 40;
    pub const DADDR_V6: usize = 56;
}

#[tracepoint]
pub fn sock_state(ctx: TracePointContext) -> u32 {
    // SAFETY: fixed offsets in the tracepoint record.
    unsafe {
        let (Ok(proto), Ok(old), Ok(new), Ok(sk)) = (
            ctx.read_at::<u16>(state::PROTOCOL),
            ctx.read_at::<i32>(state::OLDSTATE),
            ctx.read_at::<i32>(state::NEWSTATE),
            ctx.read_at::<u64>(state::SKADDR),
        ) else {
            return 0;
        };
        if proto != IPPROTO_TCP {
            return 0;
        }
        if new == TCP_SYN_SENT {
            // In the connecting thread, inside connect(): remember whose socket this is.
            let id = bpf_get_current_pid_tgid();
            if let Some(fd) = CONNECT_FD.get(&id).copied() {
                let _ = SYN_SENT.insert(&sk, &Connecting { pid_tgid: id, fd, pad: 0 }, 0);
            }
            return 0;
        }
        if new != TCP_ESTABLISHED || (old != TCP_SYN_SENT && old != TCP_SYN_RECV) {
            if old == TCP_SYN_SENT {
                let _ = SYN_SENT.remove(&sk);
            }
            return 0;
        }
        let (Ok(sport), Ok(dport), Ok(family)) =
            (ctx.read_at::<u16>(state::SPORT), ctx.read_at::<u16>(state::DPORT), ctx.read_at::<u16>(state::FAMILY))
        else {
            return 0;
        };
        let mut local = [0u8; 16];
        let mut remote = [0u8; 16];
        if family == AF_INET {
            let (Ok(s), Ok(d)) = (ctx.read_at::<[u8; 4]>(state::SADDR), ctx.read_at::<[u8; 4]>(state::DADDR)) else { return 0 };
            local[..4].copy_from_slice(&s);
            remote[..4].copy_from_slice(&d);
        } else {
            let (Ok(s), Ok(d)) = (ctx.read_at::<[u8; 16]>(state::SADDR_V6), ctx.read_at::<[u8; 16]>(state::DADDR_V6)) else { return 0 };
            local = s;
            remote = d;
        }
        if old == TCP_SYN_RECV {
            // Server side: any context (softirq); the accept() that takes it finds it by peer.
            let peer = PeerKey { addr: remote, port: dport, family, pad: 0 };
            let me = PeerKey { addr: local, port: sport, family, pad: 0 };
            let _ = PASSIVE.insert(&peer, &me, 0);
            return 0;
        }
        let Some(c) = SYN_SENT.get(&sk).copied() else { return 0 };
        let _ = SYN_SENT.remove(&sk);
        let mut h = header(kind::CONNECT, 0, c.fd, 0, core::mem::size_of::<ConnAddrs>() as u32);
        // Established in softirq context: the connecting thread is the one remembered.
        h.pid_tgid = c.pid_tgid;
        emit_conn(h, ConnAddrs { local, remote, local_port: sport, remote_port: dport, family, accepted: 0, pad: 0 });
    }
    0
}

#[inline(always)]
fn emit_conn(header: TlsHeader, addrs: ConnAddrs) {
    if let Some(mut e) = TLS_EVENTS.reserve::<ConnEvent>(0) {
        e.write(ConnEvent { header, addrs });
        e.submit(wake_flags());
    } else {
        count(tls_counter::RING_FULL_EVENTS, 1);
    }
}

#[inline(always)]
fn header(kind: u8, ssl: u64, fd: i32, offset: u64, len: u32) -> TlsHeader {
    TlsHeader {
        // SAFETY: helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_ns() },
        pid_tgid: bpf_get_current_pid_tgid(),
        ssl,
        offset,
        fd,
        len,
        kind,
        pad: [0; 7],
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}

#[uretprobe]
pub fn ssl_ret(ctx: RetProbeContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: map lookup; the value is copied out at once.
    let Some(a) = (unsafe { ACTIVE.get(&id) }).copied() else { return 0 };
    let _ = ACTIVE.remove(&id);
    let tgid = (id >> 32) as u32;
    let key = ConnKey { tgid, pad: 0, ssl: a.ssl };
    let ret: i64 = ctx.ret::<i64>();
    // SAFETY: map lookup; copied out.
    let known = unsafe { CONNS.get(&key) }.copied();
    if a.kind == kind::HANDSHAKE {
        // A new connection (or an SSL* moved to another socket): offsets restart. A handshake
        // call on a connection already known (renegotiation, a non-blocking retry) changes nothing.
        if a.fd < 0 || known.is_some_and(|s| s.fd == a.fd) {
            return 0;
        }
        let state = ConnState { read_off: 0, write_off: 0, fd: a.fd, pad: 0 };
        let _ = CONNS.insert(&key, &state, 0);
        let _ = FDS.insert(&(((tgid as u64) << 32) | (a.fd as u32 as u64)), &a.ssl, 0);
        if let Some(mut e) = TLS_EVENTS.reserve::<TlsHeader>(0) {
            e.write(header(kind::HANDSHAKE, a.ssl, a.fd, 0, 0));
            e.submit(wake_flags());
        } else {
            count(tls_counter::RING_FULL_EVENTS, 1);
        }
        return 0;
    }
    let done: u64 = if a.done_ptr != 0 {
        if (ret as i32) != 1 {
            return 0;
        }
        // SAFETY: reads the caller's `size_t` through the helper (faults are an error, not a crash).
        match unsafe { bpf_probe_read_user(a.done_ptr as *const u64) } {
            Ok(n) => n,
            Err(_) => {
                count(tls_counter::READ_ERRORS, 1);
                return 0;
            }
        }
    } else if (ret as i32) > 0 {
        (ret as i32) as u64
    } else {
        return 0;
    };
    let mut state = known.unwrap_or(ConnState { read_off: 0, write_off: 0, fd: -1, pad: 0 });
    let fd = if a.fd >= 0 { a.fd } else { state.fd };
    if fd < 0 {
        count(tls_counter::NO_FD, 1);
    } else if state.fd != fd {
        state.fd = fd;
        let _ = FDS.insert(&(((tgid as u64) << 32) | (fd as u32 as u64)), &a.ssl, 0);
    }
    let offset = if a.kind == kind::READ { state.read_off } else { state.write_off };
    if a.kind == kind::READ {
        state.read_off += done;
    } else {
        state.write_off += done;
    }
    let _ = CONNS.insert(&key, &state, 0);
    emit(a.kind, a.ssl, fd, a.buf, offset, done);
    0
}

/// Sends `len` bytes at `buf` as events of the smallest size class that fits, or as 16 KiB
/// chunks for long calls.
#[inline(always)]
fn emit(kind: u8, ssl: u64, fd: i32, buf: u64, offset: u64, len: u64) {
    if len <= CLASS_SMALL as u64 {
        chunk::<CLASS_SMALL>(kind, ssl, fd, buf, offset, len as u32);
        return;
    }
    if len <= CLASS_MEDIUM as u64 {
        chunk::<CLASS_MEDIUM>(kind, ssl, fd, buf, offset, len as u32);
        return;
    }
    // Long calls: 16 KiB chunks through `bpf_loop`, which the verifier checks once instead of
    // once per unrolled iteration (an unrolled loop exceeds its instruction budget).
    let mut ctx = LoopCtx { kind, fd, ssl, buf, offset, len };
    // SAFETY: the callback only reads `ctx`, which outlives the call.
    unsafe {
        bpf_loop(MAX_CHUNKS as u32, emit_chunk as *mut c_void, &mut ctx as *mut LoopCtx as *mut c_void, 0);
    }
    if len > MAX_CALL_BYTES as u64 {
        count(tls_counter::CALL_TRUNCATED_BYTES, len - MAX_CALL_BYTES as u64);
    }
}

/// What `emit_chunk` needs from the call being reported.
#[repr(C)]
struct LoopCtx {
    kind: u8,
    fd: i32,
    ssl: u64,
    buf: u64,
    offset: u64,
    len: u64,
}

/// `bpf_loop` callback: chunk `i` of the call; returns 1 (stop) past the end.
#[inline(never)]
extern "C" fn emit_chunk(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the caller's `LoopCtx` (see `emit`).
    let c = unsafe { &*(ctx as *const LoopCtx) };
    let done = i * CHUNK as u64;
    if done >= c.len {
        return 1;
    }
    let left = c.len - done;
    let n = if left > CHUNK as u64 { CHUNK as u32 } else { left as u32 };
    chunk::<CHUNK>(c.kind, c.ssl, c.fd, c.buf + done, c.offset + done, n);
    0
}

#[inline(always)]
fn chunk<const N: usize>(kind: u8, ssl: u64, fd: i32, src: u64, offset: u64, len: u32) {
    let Some(mut e) = TLS_EVENTS.reserve::<TlsEvent<N>>(0) else {
        count(tls_counter::RING_FULL_EVENTS, 1);
        count(tls_counter::RING_FULL_BYTES, len as u64);
        return;
    };
    let ev = e.as_mut_ptr();
    // The helper's size must be provably in [1, N].
    let mut n = len;
    if n > N as u32 {
        n = N as u32;
    }
    if n == 0 {
        e.discard(0);
        return;
    }
    // SAFETY: `ev` is the reservation (N bytes of data after the header); the helper copies from
    // the traced process's memory and fails cleanly on a bad address.
    let rc = unsafe {
        (*ev).header = header(kind, ssl, fd, offset, n);
        probe_read_user_raw((*ev).data.as_mut_ptr() as *mut c_void, n, src as *const c_void)
    };
    if rc != 0 {
        count(tls_counter::READ_ERRORS, 1);
        e.discard(0);
        return;
    }
    count(tls_counter::EVENTS, 1);
    count(tls_counter::BYTES, n as u64);
    e.submit(wake_flags());
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
