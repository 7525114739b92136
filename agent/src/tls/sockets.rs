//! `(pid, SSL*)` → socket addresses: first from the kernel's [`kind::CONNECT`] events (the
//! programs read the addresses from the connection's `struct sock` before its first event, so
//! even a connection closed before user space looks is known), then from procfs by fd when the
//! kernel could not tell (no BTF offsets, or a fault while walking).
//!
//! [`kind::CONNECT`]: akto_tap_ebpf_common::tls::kind::CONNECT

use super::procfs::ProcResolver;
use super::stream::{Resolver, Socket};
use akto_tap_ebpf_common::tls::ConnAddrs;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The socket of a [`ConnAddrs`]; `None` for an unknown family. `accepted == 2` (role not known
/// in the kernel) reads as client here; [`Sockets::learn_addrs`] asks procfs instead.
pub fn socket_of(a: &ConnAddrs) -> Option<Socket> {
    let ip = |b: &[u8; 16]| -> Option<IpAddr> {
        match a.family {
            2 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            10 => {
                let v6 = Ipv6Addr::from(*b);
                Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => None,
        }
    };
    Some(Socket {
        local: SocketAddr::new(ip(&a.local)?, a.local_port),
        remote: SocketAddr::new(ip(&a.remote)?, a.remote_port),
        local_is_server: a.accepted == 1,
    })
}

/// Sockets learned from the kernel (bounded, oldest forgotten first), procfs behind them.
#[derive(Debug)]
pub struct Sockets {
    known: HashMap<(u32, u64), (u64, Socket)>,
    order: VecDeque<((u32, u64), u64)>,
    next_gen: u64,
    cap: usize,
    procfs: ProcResolver,
    /// Answers from the kernel's events.
    pub from_events: u64,
    /// Answers from procfs.
    pub from_procfs: u64,
    /// Connections whose role (client or server) was decided from listening ports (an OpenSSL
    /// version whose `SSL` layout the kernel does not read).
    pub role_from_procfs: u64,
}

impl Sockets {
    /// A table of at most `cap` sockets.
    pub fn new(cap: usize, procfs: ProcResolver) -> Sockets {
        Sockets {
            known: HashMap::new(),
            order: VecDeque::new(),
            next_gen: 0,
            cap: cap.max(1),
            procfs,
            from_events: 0,
            from_procfs: 0,
            role_from_procfs: 0,
        }
    }

    /// The kernel's addresses of `(pid, ssl)`, the role asked from procfs when the kernel did
    /// not know it. `None` for an unknown address family.
    pub fn learn_addrs(&mut self, pid: u32, ssl: u64, a: &ConnAddrs) -> Option<Socket> {
        let mut sock = socket_of(a)?;
        if a.accepted == 2 {
            self.role_from_procfs += 1;
            sock.local_is_server = self.procfs.listens(pid, sock.local);
        }
        self.learn(pid, ssl, sock);
        Some(sock)
    }

    /// The socket of `(pid, ssl)` (a reused `SSL*` replaces the old entry).
    pub fn learn(&mut self, pid: u32, ssl: u64, sock: Socket) {
        while self.known.len() >= self.cap {
            let Some((key, generation)) = self.order.pop_front() else { break };
            if self.known.get(&key).is_some_and(|(g, _)| *g == generation) {
                self.known.remove(&key);
            }
        }
        self.next_gen += 1;
        self.known.insert((pid, ssl), (self.next_gen, sock));
        self.order.push_back(((pid, ssl), self.next_gen));
        // Stale order entries (replaced keys) are skipped when popped; keep the queue bounded too.
        if self.order.len() > 2 * self.cap {
            let known = &self.known;
            self.order.retain(|(k, g)| known.get(k).is_some_and(|(kg, _)| kg == g));
        }
    }

    /// The process freed `ssl`.
    pub fn forget(&mut self, pid: u32, ssl: u64) {
        self.known.remove(&(pid, ssl));
    }
}

impl Resolver for Sockets {
    fn resolve(&mut self, pid: u32, ssl: u64, fd: i32) -> Option<Socket> {
        if let Some((_, s)) = self.known.get(&(pid, ssl)) {
            self.from_events += 1;
            return Some(*s);
        }
        let s = self.procfs.resolve_fd(pid, fd)?;
        self.from_procfs += 1;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(port: u16) -> Socket {
        Socket {
            local: SocketAddr::from(([10, 0, 0, 1], port)),
            remote: SocketAddr::from(([10, 0, 0, 2], 443)),
            local_is_server: false,
        }
    }

    #[test]
    fn conn_addrs_decode() {
        let mut a = ConnAddrs { family: 2, local_port: 40000, remote_port: 443, accepted: 0, ..ConnAddrs::default() };
        a.local[..4].copy_from_slice(&[127, 0, 0, 1]);
        a.remote[..4].copy_from_slice(&[127, 0, 0, 2]);
        let s = socket_of(&a).unwrap();
        assert_eq!(
            (s.local, s.remote, s.local_is_server),
            ("127.0.0.1:40000".parse().unwrap(), "127.0.0.2:443".parse().unwrap(), false)
        );
        a.family = 10;
        a.local = Ipv6Addr::LOCALHOST.octets();
        a.remote = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped().octets();
        a.accepted = 1;
        let s = socket_of(&a).unwrap();
        assert_eq!(
            (s.local, s.remote, s.local_is_server),
            ("[::1]:40000".parse().unwrap(), "10.1.2.3:443".parse().unwrap(), true)
        );
        a.family = 1;
        assert!(socket_of(&a).is_none());
    }

    #[test]
    fn learned_sockets_win_and_the_table_is_bounded() {
        let mut t = Sockets::new(2, ProcResolver::new("/nonexistent"));
        t.learn(1, 3, sock(1));
        t.learn(1, 4, sock(2));
        t.learn(1, 3, sock(3)); // SSL* reused: replaced, not a third entry
        assert_eq!(t.resolve(1, 3, -1), Some(sock(3)));
        t.learn(1, 5, sock(4)); // evicts the oldest live entry (1, 4)
        assert_eq!(t.resolve(1, 4, -1), None);
        assert_eq!(t.resolve(1, 5, 9), Some(sock(4)));
        t.forget(1, 5);
        assert_eq!(t.resolve(1, 5, -1), None);
        assert_eq!(t.from_events, 2);
    }

    #[test]
    fn unknown_role_is_asked_from_listening_ports() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let mut t = Sockets::new(4, ProcResolver::new("/proc"));
        let mut a = ConnAddrs { family: 2, local_port: port, remote_port: 40000, accepted: 2, ..ConnAddrs::default() };
        a.local[..4].copy_from_slice(&[127, 0, 0, 1]);
        a.remote[..4].copy_from_slice(&[127, 0, 0, 1]);
        let s = t.learn_addrs(std::process::id(), 7, &a).unwrap();
        assert!(s.local_is_server, "local port listens");
        a.local_port = 1;
        a.remote_port = port;
        assert!(!t.learn_addrs(std::process::id(), 8, &a).unwrap().local_is_server);
        assert_eq!(t.role_from_procfs, 2);
    }
}
