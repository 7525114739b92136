//! Types shared by the TLS plaintext programs (`ebpf/programs/src/tls.rs`: uprobes on OpenSSL's
//! `SSL_read`/`SSL_write`(`_ex`) and handshake functions, syscall tracepoints for the socket)
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
/// Tracepoint on the `sys_enter_*` of socket reads and writes: learns the fd of an SSL call.
pub const PROG_SYS_ENTER_FD: &str = "sys_enter_fd";
/// Tracepoint on `sys_enter_close`: the end of a TLS connection.
pub const PROG_SYS_ENTER_CLOSE: &str = "sys_enter_close";
/// Tracepoints on `sys_enter_connect` / `sys_exit_connect`: which fd a thread is connecting.
pub const PROG_SYS_ENTER_CONNECT: &str = "sys_enter_connect";
/// See [`PROG_SYS_ENTER_CONNECT`].
pub const PROG_SYS_EXIT_CONNECT: &str = "sys_exit_connect";
/// Tracepoints on `sys_enter_accept{,4}`: where the peer's address will be written.
pub const PROG_SYS_ENTER_ACCEPT: &str = "sys_enter_accept";
/// Tracepoints on `sys_exit_accept{,4}`: the accepted fd and its peer → a [`kind::CONNECT`] event.
pub const PROG_SYS_EXIT_ACCEPT: &str = "sys_exit_accept";
/// Tracepoint `sock/inet_sock_set_state`: the socket addresses of connections as they are
/// established, tied to the connecting thread's fd (client) or to the accept (server).
pub const PROG_SOCK_STATE: &str = "sock_state";

/// `syscalls` tracepoints [`PROG_SYS_ENTER_FD`] attaches to (their first argument is the fd).
pub const FD_SYSCALLS: [&str; 8] = [
    "sys_enter_read",
    "sys_enter_write",
    "sys_enter_readv",
    "sys_enter_writev",
    "sys_enter_recvfrom",
    "sys_enter_sendto",
    "sys_enter_recvmsg",
    "sys_enter_sendmsg",
];

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
    /// The process closed `fd`, the socket of `ssl`.
    pub const CLOSE: u8 = 4;
    /// A TCP connection of the process was established on `fd` (any connection, TLS or not:
    /// the handshake that tells comes later); a [`super::ConnAddrs`] follows the header.
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
    /// 1: the process accepted the connection (server); 0: it connected (client).
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

/// Key of the established-but-not-yet-accepted connections: the peer's address and port.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// Peer address (IPv4 in the first 4 bytes).
    pub addr: [u8; 16],
    /// Peer port, host byte order.
    pub port: u16,
    /// Address family.
    pub family: u16,
    /// Padding (zero).
    pub pad: u32,
}

/// A socket between `SYN_SENT` and `ESTABLISHED`: the thread that connected it and its fd.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connecting {
    /// `pid_tgid` of the connecting thread.
    pub pid_tgid: u64,
    /// The fd.
    pub fd: i32,
    /// Padding (zero).
    pub pad: u32,
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
    /// Calls whose socket fd was never seen (no syscall inside the call and none before).
    pub const NO_FD: u32 = 6;
    /// Number of counters.
    pub const LEN: u32 = 7;
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
    /// The socket fd seen by a syscall inside the call, or -1.
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
    /// Socket fd, or -1.
    pub fd: i32,
    /// Padding (zero).
    pub pad: u32,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` data with explicit, zeroed padding, valid for any bit pattern.
    #[allow(unsafe_code)]
    unsafe impl aya::Pod for super::TlsHeader {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_stable() {
        assert_eq!(TLS_HEADER_LEN, 64);
        assert_eq!(core::mem::size_of::<Active>(), 32);
        assert_eq!(core::mem::size_of::<ConnKey>(), 16);
        assert_eq!(core::mem::size_of::<ConnState>(), 24);
        assert_eq!(core::mem::size_of::<TlsEvent<CLASS_SMALL>>(), 512);
        assert_eq!(core::mem::size_of::<TlsEvent<CLASS_MEDIUM>>(), 4096);
        assert_eq!(core::mem::offset_of!(TlsHeader, comm), 48);
        assert_eq!(core::mem::size_of::<ConnAddrs>(), 40);
        assert_eq!(core::mem::size_of::<ConnEvent>(), 104);
        assert_eq!(core::mem::size_of::<PeerKey>(), 24);
    }
}
