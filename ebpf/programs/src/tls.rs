//! akto-tap's TLS plaintext programs: uprobes on OpenSSL (libssl 1.1 and 3.x), no kprobes and
//! no syscall tracepoint.
//!
//! ```text
//! SSL_set_fd/rfd/wfd entry ──▶ SSL_FDS[(pid, ssl)] = fd
//! SSL_read/SSL_write(_ex)/handshake entry ──▶ ACTIVE[thread] = {ssl, buf, kind, sk}
//!     sk of a new connection: fd (SSL_FDS, else ssl->rbio->num of a socket BIO, offsets from
//!     the attach cookie) → walk current task's fd table → struct sock (offsets from BTF);
//!     else NEED_SK[thread] armed: the sock_send_length raw tracepoint (and sock_recv_length
//!     with --tls-socket-recv) inside the call records the socket the call uses (curl's own BIO
//!     hides its fd)
//! return probe ──▶ new socket: CONNECT event (addresses read from the sock) →
//!     bytes done → stream offset from CONNS[(pid, ssl)] → TLS_EVENTS (chunks)
//! SSL_do_handshake/connect/accept return on a new socket ──▶ HANDSHAKE event, offsets reset
//! SSL_free entry ──▶ CLOSE event
//! ```
//!
//! Syscall tracepoints are avoided on purpose: enabling any of them sets
//! SYSCALL_WORK_SYSCALL_TRACEPOINT on every task, so every syscall of every process on the host
//! takes the slow path. The uprobes trap only in OpenSSL, the fd probes once per connection, and
//! the raw socket tracepoints return after one load per socket send/receive unless an SSL call
//! is waiting for its socket.
//!
//! Backpressure: the programs never block the process. A full ring buffer loses the event; the
//! offsets still advance, so user space sees a gap, and the loss is counted per CPU.
#![no_std]
#![no_main]

use akto_tap_ebpf_common::tls::{
    kind, tls_counter, Active, ConnAddrs, ConnEvent, ConnKey, ConnState, KernelOffsets, SslLayout, TlsEvent, TlsHeader,
    BIO_TYPE_SOCKET, CHUNK, CLASS_MEDIUM, CLASS_SMALL, MAX_CALL_BYTES, MAX_CHUNKS, MAX_SOCKET_MISSES,
};
use aya_ebpf::bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP};
use aya_ebpf::cty::c_void;
use aya_ebpf::helpers::generated::{
    bpf_get_attach_cookie, bpf_get_current_task, bpf_loop, bpf_probe_read_user as probe_read_user_raw,
};
use aya_ebpf::helpers::{
    bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
};
use aya_ebpf::macros::{map, raw_tracepoint, uprobe, uretprobe};
use aya_ebpf::maps::{LruHashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::{ProbeContext, RawTracePointContext, RetProbeContext};
use aya_ebpf::EbpfContext;

/// Wake the reader only when this much waits in the ring (it also polls on a timer): a wake-up
/// per event is an inter-processor interrupt each, paid by the traced process. Set at load.
#[unsafe(no_mangle)]
static TLS_WAKEUP_BYTES: u64 = 0;

/// Kernel struct offsets from BTF, set at load (`valid == 0`: no fd walk, no addresses).
#[unsafe(no_mangle)]
static KOFFS: KernelOffsets = KernelOffsets {
    task_files: 0,
    files_fdt: 0,
    fdt_max_fds: 0,
    fdt_fd: 0,
    file_private_data: 0,
    socket_file: 0,
    socket_sk: 0,
    sk_protocol: 0,
    skc_family: 0,
    skc_daddr: 0,
    skc_rcv_saddr: 0,
    skc_dport: 0,
    skc_num: 0,
    skc_v6_daddr: 0,
    skc_v6_rcv_saddr: 0,
    valid: 0,
};

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

/// fd given to `SSL_set_fd`/`SSL_set_rfd`/`SSL_set_wfd` per `(pid, SSL*)`.
#[map]
static SSL_FDS: LruHashMap<ConnKey, i32> = LruHashMap::with_max_entries(65_536, 0);

/// Threads inside an SSL call whose socket is not known: the first TCP socket the thread sends
/// or receives on (the thread's own `pid_tgid` until then, never a kernel address). Empty in the
/// steady state, so the socket tracepoints' lookup misses at once.
///
/// Not 0 as the "unset" mark: LLVM folds `&0` into a pointer at any all-zero constant, here the
/// read-only global `TLS_WAKEUP_BYTES` the loader rewrites, so the map got the wake-up threshold.
#[map]
static NEED_SK: LruHashMap<u64, u64> = LruHashMap::with_max_entries(16_384, 0);

/// Non-zero while a thread may be waiting in [`NEED_SK`]: set by the arming thread, cleared by
/// user space once the map is empty (`TlsKernel::disarm_if_idle`). The socket tracepoints run
/// on every socket send (and receive, with `--tls-socket-recv`) of the host and return after
/// this one load while it is 0, without a map lookup; hosts whose SSL sockets are all found by
/// fd (nginx, Python: `SSL_set_fd`) never set it.
/// A flag cleared from user space, not a count of waiting threads (atomic add is not in `core`
/// for the BPF target, and a count leaks when a thread dies while waiting) nor a time window
/// (the clock helper costs as much as the lookup it would save).
#[unsafe(no_mangle)]
static mut ARMED: u64 = 0;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;

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
fn offsets() -> KernelOffsets {
    // SAFETY: reading a plain global the loader may have rewritten before load.
    unsafe { core::ptr::read_volatile(&KOFFS) }
}

/// `*(u64 *)(addr)` in kernel memory, 0 on a fault.
#[inline(always)]
fn kptr(addr: u64) -> u64 {
    // SAFETY: the helper fails cleanly on a bad address.
    unsafe { bpf_probe_read_kernel(addr as *const u64) }.unwrap_or(0)
}

/// The fd of `ssl` from the uprobe's layout: `ssl->rbio->num` when `rbio` is a socket BIO.
#[inline(always)]
fn fd_from_bio(cookie: u64, ssl: u64) -> i32 {
    let Some(l) = SslLayout::from_cookie(cookie) else { return -1 };
    // SAFETY: the helper reads the process's memory and fails cleanly on a bad address.
    unsafe {
        let Ok(bio) = bpf_probe_read_user((ssl + l.rbio as u64) as *const u64) else { return -1 };
        if bio == 0 {
            return -1;
        }
        let Ok(method) = bpf_probe_read_user((bio + l.bio_method as u64) as *const u64) else { return -1 };
        if method == 0 || bpf_probe_read_user(method as *const i32) != Ok(BIO_TYPE_SOCKET) {
            return -1;
        }
        bpf_probe_read_user((bio + l.bio_num as u64) as *const i32).unwrap_or(-1)
    }
}

/// `ssl->server` from the layout: 1 server, 0 client, 2 unknown.
#[inline(always)]
fn server_flag(cookie: u64, ssl: u64) -> u8 {
    let Some(l) = SslLayout::from_cookie(cookie) else { return 2 };
    // SAFETY: as above.
    match unsafe { bpf_probe_read_user((ssl + l.server as u64) as *const i32) } {
        Ok(0) => 0,
        Ok(1) => 1,
        _ => 2,
    }
}

/// The TCP `struct sock *` behind `fd` of the current process, 0 when it is none.
#[inline(always)]
fn sock_of_fd(fd: i32) -> u64 {
    let o = offsets();
    if o.valid == 0 || fd < 0 {
        return 0;
    }
    // SAFETY: helper without arguments.
    let task = unsafe { bpf_get_current_task() };
    let files = kptr(task + o.task_files as u64);
    if files == 0 {
        return 0;
    }
    let fdt = kptr(files + o.files_fdt as u64);
    if fdt == 0 {
        return 0;
    }
    // SAFETY: the helper fails cleanly on a bad address.
    let max = unsafe { bpf_probe_read_kernel((fdt + o.fdt_max_fds as u64) as *const u32) }.unwrap_or(0);
    if fd as u32 >= max {
        return 0;
    }
    let file = kptr(kptr(fdt + o.fdt_fd as u64) + (fd as u64) * 8);
    if file == 0 {
        return 0;
    }
    let socket = kptr(file + o.file_private_data as u64);
    // A socket's file and its `struct socket` point at each other; any other file's
    // private_data does not point back.
    if socket == 0 || kptr(socket + o.socket_file as u64) != file {
        return 0;
    }
    let sk = kptr(socket + o.socket_sk as u64);
    if sk == 0 || !is_tcp(sk, &o) {
        return 0;
    }
    sk
}

#[inline(always)]
fn is_tcp(sk: u64, o: &KernelOffsets) -> bool {
    // SAFETY: the helper fails cleanly on a bad address.
    unsafe {
        let family = bpf_probe_read_kernel((sk + o.skc_family as u64) as *const u16).unwrap_or(0);
        let proto = bpf_probe_read_kernel((sk + o.sk_protocol as u64) as *const u16).unwrap_or(0);
        (family == AF_INET || family == AF_INET6) && proto == IPPROTO_TCP
    }
}

/// The addresses of a connected socket.
#[inline(always)]
fn addrs_of(sk: u64, accepted: u8) -> Option<ConnAddrs> {
    let o = offsets();
    // SAFETY: the helper fails cleanly on a bad address.
    unsafe {
        let family = bpf_probe_read_kernel((sk + o.skc_family as u64) as *const u16).ok()?;
        let local_port = bpf_probe_read_kernel((sk + o.skc_num as u64) as *const u16).ok()?;
        let remote_port = u16::from_be(bpf_probe_read_kernel((sk + o.skc_dport as u64) as *const u16).ok()?);
        let mut a = ConnAddrs { local: [0; 16], remote: [0; 16], local_port, remote_port, family, accepted, pad: 0 };
        if family == AF_INET {
            let l = bpf_probe_read_kernel((sk + o.skc_rcv_saddr as u64) as *const [u8; 4]).ok()?;
            let r = bpf_probe_read_kernel((sk + o.skc_daddr as u64) as *const [u8; 4]).ok()?;
            a.local[..4].copy_from_slice(&l);
            a.remote[..4].copy_from_slice(&r);
        } else if family == AF_INET6 {
            a.local = bpf_probe_read_kernel((sk + o.skc_v6_rcv_saddr as u64) as *const [u8; 16]).ok()?;
            a.remote = bpf_probe_read_kernel((sk + o.skc_v6_daddr as u64) as *const [u8; 16]).ok()?;
        } else {
            return None;
        }
        Some(a)
    }
}

#[inline(always)]
fn cookie_of<C: EbpfContext>(ctx: &C) -> u64 {
    // SAFETY: the helper reads the attachment's cookie (0 when none was set).
    unsafe { bpf_get_attach_cookie(ctx.as_ptr()) }
}

#[inline(always)]
fn enter(ctx: &ProbeContext, ssl: u64, buf: u64, done_ptr: u64, kind: u8) {
    let id = bpf_get_current_pid_tgid();
    let key = ConnKey { tgid: (id >> 32) as u32, pad: 0, ssl };
    let mut a = Active { ssl, buf, done_ptr, sk: 0, fd: -1, kind, pad: [0; 3] };
    // SAFETY: map lookup; copied out.
    match unsafe { CONNS.get(&key) }.copied() {
        Some(s) if s.sk != 0 => {
            a.sk = s.sk;
            a.fd = s.fd;
        }
        // No socket after many calls (memory BIOs): stop looking.
        Some(s) if s.socket_misses >= MAX_SOCKET_MISSES => a.fd = s.fd,
        _ => {
            // A connection not resolved yet: once per connection in the steady state.
            // SAFETY: map lookup; copied out.
            let fd = match unsafe { SSL_FDS.get(&key) }.copied() {
                Some(fd) => fd,
                None => fd_from_bio(cookie_of(ctx), ssl),
            };
            a.fd = fd;
            if fd >= 0 {
                a.sk = sock_of_fd(fd);
                if a.sk == 0 {
                    count(tls_counter::FD_WALK_FAILED, 1);
                }
            }
            if a.sk == 0 {
                let _ = NEED_SK.insert(&id, &id, 0);
                // SAFETY: a plain store to the program's own global (racing stores write the same).
                unsafe { core::ptr::write_volatile(core::ptr::addr_of_mut!(ARMED), 1) };
            }
        }
    }
    let _ = ACTIVE.insert(&id, &a, 0);
}

#[uprobe]
pub fn ssl_read_entry(ctx: ProbeContext) -> u32 {
    enter(&ctx, ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), 0, kind::READ);
    0
}

#[uprobe]
pub fn ssl_write_entry(ctx: ProbeContext) -> u32 {
    enter(&ctx, ctx.arg::<u64>(0).unwrap_or(0), ctx.arg::<u64>(1).unwrap_or(0), 0, kind::WRITE);
    0
}

#[uprobe]
pub fn ssl_read_ex_entry(ctx: ProbeContext) -> u32 {
    enter(
        &ctx,
        ctx.arg::<u64>(0).unwrap_or(0),
        ctx.arg::<u64>(1).unwrap_or(0),
        ctx.arg::<u64>(3).unwrap_or(0),
        kind::READ,
    );
    0
}

#[uprobe]
pub fn ssl_write_ex_entry(ctx: ProbeContext) -> u32 {
    enter(
        &ctx,
        ctx.arg::<u64>(0).unwrap_or(0),
        ctx.arg::<u64>(1).unwrap_or(0),
        ctx.arg::<u64>(3).unwrap_or(0),
        kind::WRITE,
    );
    0
}

#[uprobe]
pub fn ssl_handshake_entry(ctx: ProbeContext) -> u32 {
    enter(&ctx, ctx.arg::<u64>(0).unwrap_or(0), 0, 0, kind::HANDSHAKE);
    0
}

/// `SSL_set_fd(ssl, fd)` (and `_rfd`, `_wfd`): the socket of `ssl`. A different fd than the
/// connection's ends it: the next handshake or call starts a new one.
#[uprobe]
pub fn ssl_set_fd_entry(ctx: ProbeContext) -> u32 {
    let ssl = ctx.arg::<u64>(0).unwrap_or(0);
    let fd = ctx.arg::<u64>(1).unwrap_or(u64::MAX) as i32;
    let key = ConnKey { tgid: (bpf_get_current_pid_tgid() >> 32) as u32, pad: 0, ssl };
    let _ = SSL_FDS.insert(&key, &fd, 0);
    // SAFETY: map lookup; copied out.
    if unsafe { CONNS.get(&key) }.is_some_and(|s| s.fd != fd) {
        let _ = CONNS.remove(&key);
    }
    0
}

/// `SSL_free(ssl)`: the connection is over (after the process's last call on it).
#[uprobe]
pub fn ssl_free_entry(ctx: ProbeContext) -> u32 {
    let ssl = ctx.arg::<u64>(0).unwrap_or(0);
    let key = ConnKey { tgid: (bpf_get_current_pid_tgid() >> 32) as u32, pad: 0, ssl };
    let _ = SSL_FDS.remove(&key);
    // SAFETY: map lookup; copied out.
    let Some(state) = (unsafe { CONNS.get(&key) }).copied() else { return 0 };
    let _ = CONNS.remove(&key);
    if let Some(mut e) = TLS_EVENTS.reserve::<TlsHeader>(0) {
        e.write(header(kind::CLOSE, ssl, state.fd, 0, 0));
        e.submit(wake_flags());
    } else {
        count(tls_counter::RING_FULL_EVENTS, 1);
    }
    0
}

/// `sock_send_length(sk, ret, flags)` / `sock_recv_length(sk, ret, flags)`: a thread inside an
/// SSL call whose socket is unknown learns it from its first TCP send or receive.
#[raw_tracepoint]
pub fn sock_io(ctx: RawTracePointContext) -> u32 {
    // SAFETY: a plain load of the program's own global.
    if unsafe { core::ptr::read_volatile(core::ptr::addr_of!(ARMED)) } == 0 {
        return 0;
    }
    let id = bpf_get_current_pid_tgid();
    let Some(slot) = NEED_SK.get_ptr_mut(&id) else { return 0 };
    let sk: u64 = ctx.arg(0);
    // SAFETY: map value valid for the run; the sock is read through the helper.
    unsafe {
        if *slot == id && sk != 0 && is_tcp(sk, &offsets()) {
            *slot = sk;
        }
    }
    0
}

/// Sends the addresses of a connection's socket ahead of its first event.
#[inline(always)]
fn emit_addrs(ssl: u64, fd: i32, sk: u64, accepted: u8) {
    let Some(addrs) = addrs_of(sk, accepted) else {
        count(tls_counter::ADDR_READ_FAILED, 1);
        return;
    };
    if let Some(mut e) = TLS_EVENTS.reserve::<ConnEvent>(0) {
        e.write(ConnEvent {
            header: header(kind::CONNECT, ssl, fd, 0, core::mem::size_of::<ConnAddrs>() as u32),
            addrs,
        });
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
    let mut sk = a.sk;
    if sk == 0 {
        // SAFETY: map lookup; copied out.
        if let Some(seen) = unsafe { NEED_SK.get(&id) }.copied() {
            let _ = NEED_SK.remove(&id);
            if seen != id {
                sk = seen;
            }
        }
    }
    let via_io = sk != 0 && a.sk == 0;
    let tgid = (id >> 32) as u32;
    let key = ConnKey { tgid, pad: 0, ssl: a.ssl };
    let ret: i64 = ctx.ret::<i64>();
    // Always initialized (an `Option` here let LLVM compare an unset register on the `None`
    // path, which the verifier refuses).
    let mut state = ConnState { read_off: 0, write_off: 0, sk: 0, fd: -1, socket_misses: 0 };
    if let Some(p) = CONNS.get_ptr(&key) {
        // SAFETY: map value valid for the run; copied out.
        state = unsafe { *p };
    }
    if a.kind == kind::HANDSHAKE {
        // A new connection (or an SSL* moved to another socket): offsets restart. A handshake
        // call on a connection already known (renegotiation, a non-blocking retry) changes nothing.
        if sk == 0 || state.sk == sk {
            return 0;
        }
        let state = ConnState { read_off: 0, write_off: 0, sk, fd: a.fd, socket_misses: 0 };
        let _ = CONNS.insert(&key, &state, 0);
        count(if via_io { tls_counter::SOCK_BY_IO } else { tls_counter::SOCK_BY_FD }, 1);
        emit_addrs(a.ssl, a.fd, sk, server_flag(cookie_of(&ctx), a.ssl));
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
    if sk != 0 && state.sk != sk {
        // First call of a connection older than the agent (or whose handshake showed no
        // socket): its addresses go ahead of its data.
        state.sk = sk;
        state.fd = a.fd;
        count(if via_io { tls_counter::SOCK_BY_IO } else { tls_counter::SOCK_BY_FD }, 1);
        emit_addrs(a.ssl, a.fd, sk, server_flag(cookie_of(&ctx), a.ssl));
    } else if state.sk == 0 {
        count(tls_counter::NO_SOCKET, 1);
        state.socket_misses = state.socket_misses.saturating_add(1);
    }
    let fd = state.fd;
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
