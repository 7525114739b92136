//! `(pid, fd)` → the socket's addresses, from procfs: `/proc/PID/fd/FD` names the socket inode,
//! and `/proc/PID/net/tcp{,6}` (the process's own network namespace, so containers resolve too)
//! gives the inode's addresses and which local ports listen.

use super::stream::{Resolver, Socket};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// One row of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRow {
    /// Local address.
    pub local: SocketAddr,
    /// Remote address.
    pub remote: SocketAddr,
    /// `st`: 0x0A is LISTEN.
    pub state: u8,
    /// Socket inode.
    pub inode: u64,
}

/// TCP state LISTEN in `/proc/net/tcp`.
pub const TCP_LISTEN: u8 = 0x0a;

/// Parses `/proc/net/tcp` or `/proc/net/tcp6` text. Malformed rows are skipped.
pub fn parse_tcp_table(text: &str) -> Vec<TcpRow> {
    text.lines().skip(1).filter_map(parse_row).collect()
}

fn parse_row(line: &str) -> Option<TcpRow> {
    let mut f = line.split_whitespace();
    let _sl = f.next()?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    // tx_queue:rx_queue, tr:tm->when, retrnsmt, uid, timeout, then the inode.
    let inode = f.nth(5)?.parse().ok()?;
    Some(TcpRow { local, remote, state, inode })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits + port (IPv6): each 32-bit group is printed as a
/// host-order integer of network-order bytes. IPv4-mapped IPv6 comes back as IPv4.
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let group = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_le_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(group(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&group(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The inode of `socket:[INODE]`.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Finds a socket by inode among rows, and whether its local port listens there.
pub fn find_socket(rows: &[TcpRow], inode: u64) -> Option<Socket> {
    let row = rows.iter().find(|r| r.inode == inode && r.state != TCP_LISTEN)?;
    let listening: HashSet<SocketAddr> = rows.iter().filter(|r| r.state == TCP_LISTEN).map(|r| r.local).collect();
    let port = row.local.port();
    let local_is_server =
        listening.iter().any(|l| l.port() == port && (l.ip().is_unspecified() || l.ip() == row.local.ip()));
    Some(Socket { local: row.local, remote: row.remote, local_is_server })
}

/// The procfs resolver (`root` is `/proc`, or a fixture directory in tests).
#[derive(Debug)]
pub struct ProcResolver {
    root: PathBuf,
}

impl ProcResolver {
    /// Resolves under `root`.
    pub fn new(root: impl Into<PathBuf>) -> ProcResolver {
        ProcResolver { root: root.into() }
    }
}

impl ProcResolver {
    /// Whether `local` is a listening address in `pid`'s network namespace (the process is the
    /// server of a connection from that address).
    pub fn listens(&self, pid: u32, local: SocketAddr) -> bool {
        let proc_dir = self.root.join(pid.to_string());
        ["net/tcp", "net/tcp6"].iter().filter_map(|t| std::fs::read_to_string(proc_dir.join(t)).ok()).any(|text| {
            parse_tcp_table(&text).iter().any(|r| {
                r.state == TCP_LISTEN
                    && r.local.port() == local.port()
                    && (r.local.ip().is_unspecified() || r.local.ip() == local.ip())
            })
        })
    }

    /// The socket behind `(pid, fd)`.
    pub fn resolve_fd(&mut self, pid: u32, fd: i32) -> Option<Socket> {
        if fd < 0 {
            return None;
        }
        let proc_dir = self.root.join(pid.to_string());
        let link = match std::fs::read_link(proc_dir.join("fd").join(fd.to_string())) {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(pid, fd, error = %e, "TLS socket not resolved: fd gone");
                return None;
            }
        };
        let Some(inode) = link.to_str().and_then(socket_inode) else {
            tracing::debug!(pid, fd, link = %link.display(), "TLS socket not resolved: not a socket");
            return None;
        };
        let mut rows = Vec::new();
        for table in ["net/tcp", "net/tcp6"] {
            if let Ok(text) = std::fs::read_to_string(proc_dir.join(table)) {
                rows.extend(parse_tcp_table(&text));
            }
        }
        let found = find_socket(&rows, inode);
        if found.is_none() {
            tracing::debug!(pid, fd, inode, "TLS socket not resolved: not a TCP connection");
        }
        found
    }
}

impl Resolver for ProcResolver {
    fn resolve(&mut self, pid: u32, _ssl: u64, fd: i32) -> Option<Socket> {
        self.resolve_fd(pid, fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:9C40 0100007F:20FB 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:20FB 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
   3: garbage
   4: 0100007F:ZZZZ 0100007F:20FB 01 00000000:00000000 00:00000000 00000000     0        0 1004 1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:01BB 0000000000000000FFFF00000200007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:A000 00000000000000000000000001000000:01BB 01 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn parses_ipv4_rows_and_skips_malformed_ones() {
        let rows = parse_tcp_table(TCP);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(rows[1].remote, "127.0.0.1:8443".parse().unwrap());
        assert_eq!((rows[0].state, rows[0].inode), (TCP_LISTEN, 1001));
    }

    #[test]
    fn finds_client_and_server_sockets() {
        let rows = parse_tcp_table(TCP);
        let client = find_socket(&rows, 1002).unwrap();
        assert!(!client.local_is_server);
        let server = find_socket(&rows, 1003).unwrap();
        assert!(server.local_is_server);
        assert_eq!(server.remote, "127.0.0.1:40000".parse().unwrap());
        // The listening socket itself is not a connection.
        assert!(find_socket(&rows, 1001).is_none());
        assert!(find_socket(&rows, 999).is_none());
    }

    #[test]
    fn parses_ipv6_and_maps_ipv4_mapped_addresses_back() {
        let rows = parse_tcp_table(TCP6);
        let mapped = find_socket(&rows, 2002).unwrap();
        assert_eq!(mapped.local, "127.0.0.1:443".parse().unwrap());
        assert_eq!(mapped.remote, "127.0.0.2:54321".parse().unwrap());
        assert!(mapped.local_is_server, "listener on [::]:443");
        let v6 = find_socket(&rows, 2003).unwrap();
        assert_eq!(v6.local, "[::1]:40960".parse().unwrap());
        assert!(!v6.local_is_server);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        assert_eq!(socket_inode("pipe:[12345]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
    }

    #[test]
    fn resolves_a_real_loopback_connection() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut r = ProcResolver::new("/proc");
        let pid = std::process::id();
        let client = r.resolve_fd(pid, c.as_raw_fd()).expect("client socket");
        assert_eq!(
            (client.local, client.remote, client.local_is_server),
            (c.local_addr().unwrap(), l.local_addr().unwrap(), false)
        );
        let server = r.resolve_fd(pid, s.as_raw_fd()).expect("server socket");
        assert!(server.local_is_server);
        assert!(r.resolve_fd(pid, 987_654).is_none());
        assert!(r.listens(pid, l.local_addr().unwrap()));
        assert!(!r.listens(pid, c.local_addr().unwrap()));
    }
}
