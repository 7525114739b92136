//! Types shared by the TLS plaintext programs (`ebpf/programs/src/tls.rs`: uprobes on OpenSSL's
//! `SSL_read`/`SSL_write`(`_ex`), handshake, `SSL_set_fd` and `SSL_free` functions, and the
//! `sock_send_length`/`sock_recv_length` raw tracepoints; no syscall tracepoint)
//! and the agent's `tls` module.
//!
//! Each event in [`MAP_TLS_EVENTS`] is a [`TlsHeader`] followed by `len` bytes of plaintext
//! (padded to the event's size class). Data events carry the stream offset of their first byte
//! in that direction, counted by the kernel per `(process, SSL*)`: bytes the program could not
//! deliver (ring buffer full, a call longer than [`MAX_CALL_BYTES`]) leave a hole in the
//! offsets, which user space turns into a gap instead of silently joining unrelated bytes.

/// Ring buffer of [`TlsHeader`] events.
pub const MAP_TLS_EVENTS: &str = "TLS_EVENTS";
/// Per-CPU counters, indices in [`tls_counter`].
pub const MAP_TLS_COUNTERS: &str = "TLS_COUNTERS";
/// Threads inside an SSL call waiting for their socket: `pid_tgid` → the thread's own
/// `pid_tgid` while waiting, then the `struct sock *` seen.
pub const MAP_NEED_SK: &str = "NEED_SK";
/// The program's `.bss`: only `ARMED` (u64), non-zero while a thread may be waiting.
pub const MAP_BSS: &str = ".bss";

/// Entry probe of `SSL_read`.
pub const PROG_SSL_READ: &str = "ssl_read_entry";
/// Entry probe of `SSL_write`.
pub const PROG_SSL_WRITE: &str = "ssl_write_entry";
/// Entry probe of `SSL_read_ex`.
pub const PROG_SSL_READ_EX: &str = "ssl_read_ex_entry";
/// Entry probe of `SSL_write_ex`.
pub const PROG_SSL_WRITE_EX: &str = "ssl_write_ex_entry";
/// Entry probe of `SSL_do_handshake`, `SSL_connect` and `SSL_accept`.
pub const PROG_SSL_HANDSHAKE: &str = "ssl_handshake_entry";
/// Return probe shared by every probed function.
pub const PROG_SSL_RET: &str = "ssl_ret";
/// Entry probe of `SSL_set_fd`, `SSL_set_rfd` and `SSL_set_wfd`: the socket of an `SSL*`.
pub const PROG_SSL_SET_FD: &str = "ssl_set_fd_entry";
/// Entry probe of `SSL_free`: the end of a connection.
pub const PROG_SSL_FREE: &str = "ssl_free_entry";
/// Raw tracepoints `sock_send_length` / `sock_recv_length` (not syscall tracepoints: they run
/// only on socket sends and receives, and do not put every syscall on the slow path): the socket
/// of an SSL call whose `SSL*` has no fd the programs can see (a custom BIO, as curl's).
pub const PROG_SOCK_IO: &str = "sock_io";
/// Raw tracepoint [`PROG_SOCK_IO`] attaches to for socket sends (first argument: `struct sock *`).
pub const SOCK_SEND_TRACEPOINT: &str = "sock_send_length";
/// Raw tracepoint [`PROG_SOCK_IO`] attaches to for socket receives, only on request
/// (`--tls-socket-recv`): sends alone find the socket of nearly every connection, and each
/// attached tracepoint costs every socket call of the host its dispatch.
pub const SOCK_RECV_TRACEPOINT: &str = "sock_recv_length";
/// Global of the TLS object: [`KernelOffsets`], set at load.
pub const GLOBAL_KERNEL_OFFSETS: &str = "KOFFS";

/// Offsets in kernel structs, read from the kernel's BTF by user space at load (aya has no
/// CO-RE for Rust programs): the walk `current task → files → fdt → fd[fd] → file →
/// private_data (socket) → sk` and the addresses in `sock_common`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `task_struct.files`.
    pub task_files: u32,
    /// `files_struct.fdt`.
    pub files_fdt: u32,
    /// `fdtable.max_fds`.
    pub fdt_max_fds: u32,
    /// `fdtable.fd`.
    pub fdt_fd: u32,
    /// `file.private_data`.
    pub file_private_data: u32,
    /// `socket.file`.
    pub socket_file: u32,
    /// `socket.sk`.
    pub socket_sk: u32,
    /// `sock.sk_protocol`.
    pub sk_protocol: u32,
    /// `sock_common.skc_family`.
    pub skc_family: u32,
    /// `sock_common.skc_daddr`.
    pub skc_daddr: u32,
    /// `sock_common.skc_rcv_saddr`.
    pub skc_rcv_saddr: u32,
    /// `sock_common.skc_dport` (network order).
    pub skc_dport: u32,
    /// `sock_common.skc_num` (local port, host order).
    pub skc_num: u32,
    /// `sock_common.skc_v6_daddr`.
    pub skc_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr`.
    pub skc_v6_rcv_saddr: u32,
    /// 1 when the offsets are known; 0: no fd walk and no addresses in the kernel.
    pub valid: u32,
}

/// Where an OpenSSL version keeps the socket of an `SSL*`: `ssl->rbio->num`, validated by the
/// BIO method's type, and `ssl->server`. Chosen per library file by user space from the
/// library's version and passed as the uprobe's attach cookie ([`SslLayout::cookie`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SslLayout {
    /// Offset of `BIO *rbio` in the `SSL` the API is given.
    pub rbio: u16,
    /// Offset of `const BIO_METHOD *method` in `BIO` (the method's `int type` is its first field).
    pub bio_method: u8,
    /// Offset of `int num` (the fd of a socket BIO) in `BIO`.
    pub bio_num: u8,
    /// Offset of `int server` in the `SSL`.
    pub server: u16,
}

/// `BIO_TYPE_SOCKET` (5 | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR).
pub const BIO_TYPE_SOCKET: i32 = 0x0505;

impl SslLayout {
    /// Marks a cookie as carrying a layout (cookie 0: unknown version).
    const KNOWN: u64 = 1 << 63;

    /// The layout packed into a uprobe cookie.
    pub const fn cookie(self) -> u64 {
        Self::KNOWN
            | self.rbio as u64
            | (self.bio_method as u64) << 16
            | (self.bio_num as u64) << 24
            | (self.server as u64) << 32
    }

    /// The layout in a cookie; `None` for an unknown version.
    pub const fn from_cookie(c: u64) -> Option<SslLayout> {
        if c & Self::KNOWN == 0 {
            return None;
        }
        Some(SslLayout {
            rbio: c as u16,
            bio_method: (c >> 16) as u8,
            bio_num: (c >> 24) as u8,
            server: (c >> 32) as u16,
        })
    }
}

/// Largest plaintext chunk in one event.
pub const CHUNK: usize = 16 * 1024;
/// Chunks sent for one `SSL_read`/`SSL_write` call; the rest of a longer call is skipped
/// (counted in [`tls_counter::CALL_TRUNCATED_BYTES`]) and becomes a gap.
pub const MAX_CHUNKS: usize = 64;
/// Bytes of one call delivered at most.
pub const MAX_CALL_BYTES: usize = CHUNK * MAX_CHUNKS;
/// Data size classes of events (the ring buffer reserves a constant size per class).
pub const CLASS_SMALL: usize = 448;
/// Medium size class.
pub const CLASS_MEDIUM: usize = 4096 - 64;

/// What an event reports ([`TlsHeader::kind`]).
pub mod kind {
    /// Plaintext returned by `SSL_read`/`SSL_read_ex` (received from the peer).
    pub const READ: u8 = 1;
    /// Plaintext passed to `SSL_write`/`SSL_write_ex` (sent to the peer).
    pub const WRITE: u8 = 2;
    /// A handshake ran on `fd` for a new `SSL*` (or the `SSL*` moved to another fd): the
    /// stream offsets restart at zero.
    pub const HANDSHAKE: u8 = 3;
    /// The process freed `ssl` (`SSL_free`): its connection is over.
    pub const CLOSE: u8 = 4;
    /// The socket of `ssl` (on `fd`, or -1 when the fd is not visible) was found, sent before the
    /// first event of the connection that needs it; a [`super::ConnAddrs`] follows the header.
    pub const CONNECT: u8 = 5;
}

/// Addresses of a [`kind::CONNECT`] event (IPv4 in the first 4 bytes of the arrays).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnAddrs {
    /// The process's end.
    pub local: [u8; 16],
    /// The peer.
    pub remote: [u8; 16],
    /// Local port, host byte order.
    pub local_port: u16,
    /// Remote port, host byte order.
    pub remote_port: u16,
    /// 2 (AF_INET) or 10 (AF_INET6).
    pub family: u16,
    /// 1: the process is the TLS server (accepted); 0: the client; 2: not known (an OpenSSL
    /// version whose layout the programs do not read: user space decides from listening ports).
    pub accepted: u8,
    /// Padding (zero).
    pub pad: u8,
}

/// A [`kind::CONNECT`] event.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnEvent {
    /// The header (`len` = size of [`ConnAddrs`]).
    pub header: TlsHeader,
    /// The addresses.
    pub addrs: ConnAddrs,
}

/// Indices into [`MAP_TLS_COUNTERS`].
pub mod tls_counter {
    /// Data events delivered.
    pub const EVENTS: u32 = 0;
    /// Plaintext bytes delivered.
    pub const BYTES: u32 = 1;
    /// Events lost because the ring buffer was full.
    pub const RING_FULL_EVENTS: u32 = 2;
    /// Plaintext bytes lost because the ring buffer was full.
    pub const RING_FULL_BYTES: u32 = 3;
    /// Bytes of calls longer than `MAX_CALL_BYTES` not delivered.
    pub const CALL_TRUNCATED_BYTES: u32 = 4;
    /// Plaintext that could not be read from the process (`bpf_probe_read_user` failed).
    pub const READ_ERRORS: u32 = 5;
    /// Data calls of connections whose socket is still unknown: no fd from `SSL_set_fd` or the
    /// `SSL`'s BIO, and no socket send or receive inside the call (served from OpenSSL's buffer).
    pub const NO_SOCKET: u32 = 6;
    /// Connections whose socket was found by walking the process's fd table.
    pub const SOCK_BY_FD: u32 = 7;
    /// Connections whose socket was found from a socket send/receive inside an SSL call.
    pub const SOCK_BY_IO: u32 = 8;
    /// fd known but the walk to a TCP socket failed (not a TCP socket, a fault, no BTF offsets).
    pub const FD_WALK_FAILED: u32 = 9;
    /// A connection's socket found but its addresses unreadable (no CONNECT event: user space
    /// falls back to procfs by fd).
    pub const ADDR_READ_FAILED: u32 = 10;
    /// Number of counters.
    pub const LEN: u32 = 11;
}

/// Header of every TLS event.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsHeader {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC).
    pub ts_ns: u64,
    /// `bpf_get_current_pid_tgid()`: process id in the high 32 bits, thread id in the low.
    pub pid_tgid: u64,
    /// The `SSL*` of the connection (identifies it within the process).
    pub ssl: u64,
    /// Stream offset of the first byte of this event in its direction.
    pub offset: u64,
    /// Socket fd, or -1 when not known.
    pub fd: i32,
    /// Plaintext bytes following the header.
    pub len: u32,
    /// [`kind`].
    pub kind: u8,
    /// Padding (zero).
    pub pad: [u8; 7],
    /// `comm` of the calling thread (NUL-padded).
    pub comm: [u8; 16],
}

/// Size of [`TlsHeader`].
pub const TLS_HEADER_LEN: usize = core::mem::size_of::<TlsHeader>();

/// An event of one size class: the header then up to `N` bytes.
#[repr(C)]
pub struct TlsEvent<const N: usize> {
    /// The header.
    pub header: TlsHeader,
    /// Plaintext (`header.len` bytes valid).
    pub data: [u8; N],
}

impl<const N: usize> core::fmt::Debug for TlsEvent<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsEvent").field("header", &self.header).finish_non_exhaustive()
    }
}

/// An SSL call in progress on a thread (entry probe → return probe).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Active {
    /// The `SSL*`.
    pub ssl: u64,
    /// The caller's buffer.
    pub buf: u64,
    /// `size_t *` of the `_ex` variants (bytes done), 0 for the others.
    pub done_ptr: u64,
    /// The connection's `struct sock *` when known at entry, else 0.
    pub sk: u64,
    /// The socket fd, or -1.
    pub fd: i32,
    /// [`kind`] of the call.
    pub kind: u8,
    /// Padding (zero).
    pub pad: [u8; 3],
}

/// Key of a connection's state: the process and its `SSL*`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Process id.
    pub tgid: u32,
    /// Padding (zero: keys compare as bytes).
    pub pad: u32,
    /// The `SSL*`.
    pub ssl: u64,
}

/// Per-connection state kept by the kernel side.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnState {
    /// Next stream offset of data read (received).
    pub read_off: u64,
    /// Next stream offset of data written (sent).
    pub write_off: u64,
    /// The socket (`struct sock *`), 0 when not known yet.
    pub sk: u64,
    /// Socket fd, or -1.
    pub fd: i32,
    /// Data calls that ended with the socket still unknown; past [`MAX_SOCKET_MISSES`] the
    /// programs stop looking (an `SSL` over memory BIOs, as asyncio's, never shows one).
    pub socket_misses: u32,
}

/// Data calls of one connection whose socket could not be found before the programs stop
/// looking for it (each look may arm the socket tracepoints' lookup).
pub const MAX_SOCKET_MISSES: u32 = 16;

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` data with explicit, zeroed padding, valid for any bit pattern.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::TlsHeader {}
    // SAFETY: as above (u32 fields only).
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::KernelOffsets {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_stable() {
        assert_eq!(TLS_HEADER_LEN, 64);
        assert_eq!(core::mem::size_of::<Active>(), 40);
        assert_eq!(core::mem::size_of::<ConnKey>(), 16);
        assert_eq!(core::mem::size_of::<ConnState>(), 32);
        assert_eq!(core::mem::size_of::<TlsEvent<CLASS_SMALL>>(), 512);
        assert_eq!(core::mem::size_of::<TlsEvent<CLASS_MEDIUM>>(), 4096);
        assert_eq!(core::mem::offset_of!(TlsHeader, comm), 48);
        assert_eq!(core::mem::size_of::<ConnAddrs>(), 40);
        assert_eq!(core::mem::size_of::<ConnEvent>(), 104);
        assert_eq!(core::mem::size_of::<KernelOffsets>(), 64);
    }

    #[test]
    fn layout_cookie_round_trips() {
        let l = SslLayout { rbio: 16, bio_method: 8, bio_num: 56, server: 56 };
        assert_eq!(SslLayout::from_cookie(l.cookie()), Some(l));
        assert_eq!(SslLayout::from_cookie(0), None);
        let big = SslLayout { rbio: 0xffff, bio_method: 0xff, bio_num: 0xff, server: 0xffff };
        assert_eq!(SslLayout::from_cookie(big.cookie()), Some(big));
    }
}
