//! Pure parsers of the procfs files workload attribution reads. No I/O here: the scanner
//! (`scan.rs`) reads the files and hands their text in, so every parser is tested on literal
//! lines, including hostile and truncated ones. A line that does not parse is skipped (and
//! counted by the caller through the returned `skipped` numbers), never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// TCP state `LISTEN` in `/proc/net/tcp` (`include/net/tcp_states.h`).
pub const TCP_LISTEN: u8 = 0x0A;

/// One socket line of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockEntry {
    /// Local address (IPv4-mapped IPv6 addresses are given as IPv4).
    pub local: SocketAddr,
    /// Remote address (unspecified for listening sockets).
    pub remote: SocketAddr,
    /// TCP state (`TCP_LISTEN`, 0x01 = established, ...).
    pub state: u8,
    /// Socket inode (0 for sockets no file refers to, e.g. `TIME_WAIT`).
    pub inode: u64,
}

/// Lines of a parsed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    /// What parsed.
    pub items: Vec<T>,
    /// Lines that did not (the header excluded).
    pub skipped: usize,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed { items: Vec::new(), skipped: 0 }
    }
}

/// `::ffff:a.b.c.d` → `a.b.c.d`; other addresses unchanged. Capture sees IPv4 packets of a
/// dual-stack socket as IPv4, while procfs lists them in `tcp6` as mapped addresses.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// [`canonical_ip`] of a socket address.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

/// `ADDR:PORT` as the kernel prints it: the address as 32-bit words in host byte order, each
/// `%08X` (one word for IPv4, four for IPv6), the port as `%04X` of its value.
fn parse_hex_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    // `from_str_radix` would accept a sign; the kernel prints bare hex digits.
    if port.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |w: &str| u32::from_str_radix(w, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// Parses `/proc/net/tcp` or `/proc/net/tcp6` (the header line is recognised and skipped).
///
/// ```text
///   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
///    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 ...
/// ```
pub fn parse_proc_net_tcp(text: &str) -> Parsed<SockEntry> {
    let mut out = Parsed::default();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(sl) = f.next() else { continue };
        if sl == "sl" {
            continue;
        }
        let entry = (|| {
            if !sl.ends_with(':') {
                return None;
            }
            let local = parse_hex_addr(f.next()?)?;
            let remote = parse_hex_addr(f.next()?)?;
            let state = u8::from_str_radix(f.next()?, 16).ok()?;
            // tx:rx queues, timer, retransmits, uid, timeout, then the inode.
            let inode = f.nth(5)?.parse::<u64>().ok()?;
            Some(SockEntry { local, remote, state, inode })
        })();
        match entry {
            Some(e) => out.items.push(e),
            None => out.skipped += 1,
        }
    }
    out
}

/// The inode of a `/proc/PID/fd/N` link target `socket:[INODE]`.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The Kubernetes identity in a process's cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CgroupInfo {
    /// Pod UID with dashes (`kubepods-…-pod<uid>.slice` spells them `_`).
    pub pod_uid: Option<String>,
    /// Container id (hex), from the component after the pod's.
    pub container_id: Option<String>,
}

/// A pod UID: hex digits and dashes, 32 digits (an API UID has 4 dashes; a static pod's is a
/// bare 32-digit hash).
fn is_uid(s: &str) -> bool {
    let digits = s.bytes().filter(u8::is_ascii_hexdigit).count();
    digits == 32 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') && s.len() <= 36
}

/// The pod UID of one path component: `pod<uid>` (cgroupfs driver) or
/// `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd driver).
fn pod_uid_of(component: &str) -> Option<String> {
    let raw = if let Some(slice) = component.strip_suffix(".slice") {
        if !slice.contains("kubepods") {
            return None;
        }
        slice.rsplit_once("-pod")?.1
    } else {
        component.strip_prefix("pod")?
    };
    let uid = raw.replace('_', "-");
    is_uid(&uid).then_some(uid)
}

/// The container id of the component after the pod's: `<id>` (cgroupfs) or
/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` (systemd).
fn container_id_of(component: &str) -> Option<String> {
    let c = component.strip_suffix(".scope").unwrap_or(component);
    let id = c.rsplit('-').next().unwrap_or(c);
    (id.len() >= 12 && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// Parses `/proc/PID/cgroup`: cgroup v2 (`0::/path`) and v1 (`N:controllers:/path`) lines.
/// The first line naming a pod wins (in v1 every controller repeats the same path).
pub fn parse_cgroup(text: &str) -> CgroupInfo {
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, c) in comps.iter().enumerate() {
            if let Some(pod_uid) = pod_uid_of(c) {
                let container_id = comps.get(i + 1).and_then(|n| container_id_of(n));
                return CgroupInfo { pod_uid: Some(pod_uid), container_id };
            }
        }
    }
    CgroupInfo::default()
}

/// The local IPv4 addresses of a network namespace from `/proc/PID/net/fib_trie`: the leaves
/// (`|-- A.B.C.D`) followed by a `/32 host LOCAL` line.
pub fn parse_fib_trie_locals(text: &str) -> Vec<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("|--").or_else(|| t.strip_prefix("+--")) {
            last = rest.split_ascii_whitespace().next().and_then(|a| a.parse().ok());
        } else if t.starts_with("/32 host LOCAL") {
            if let Some(a) = last {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// The IPv6 addresses of a network namespace from `/proc/PID/net/if_inet6` (32 hex digits in
/// network byte order, then index, prefix, scope, flags and the interface name).
pub fn parse_if_inet6(text: &str) -> Vec<Ipv6Addr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(hex) = line.split_ascii_whitespace().next() else { continue };
        if hex.len() != 32 || !hex.is_ascii() {
            continue;
        }
        let mut b = [0u8; 16];
        let ok = b.iter_mut().enumerate().all(|(i, byte)| match u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16) {
            Ok(v) => {
                *byte = v;
                true
            }
            Err(_) => false,
        });
        if ok && !out.contains(&Ipv6Addr::from(b)) {
            out.push(Ipv6Addr::from(b));
        }
    }
    out
}

/// `/proc/PID/comm` without its newline (at most 15 bytes from the kernel; capped anyway).
pub fn parse_comm(text: &str) -> Option<String> {
    let name: String = text.trim_end_matches('\n').chars().take(64).collect();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D5A2 01 00000000:00000000 00:00000000 00000000  1000        0 31338 1 0000000000000000 20 4 30 10 -1
   2: 0501F40A:0050 0A01F40A:C350 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000
";

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn tcp4_lines() {
        let p = parse_proc_net_tcp(TCP);
        assert_eq!(p.skipped, 0);
        assert_eq!(p.items.len(), 3);
        assert_eq!(
            p.items[0],
            SockEntry { local: sa("127.0.0.1:8080"), remote: sa("0.0.0.0:0"), state: TCP_LISTEN, inode: 31337 }
        );
        assert_eq!(p.items[1].remote, sa("127.0.0.1:54690"));
        assert_eq!(p.items[1].state, 1);
        assert_eq!(p.items[2].local, sa("10.244.1.5:80"));
        assert_eq!(p.items[2].inode, 0);
    }

    #[test]
    fn tcp6_lines_and_mapped_v4() {
        let text = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:C000 01 00000000:00000000 00:00000000 00000000     0        0 4244 1
   3: B80D0120000000000000000001000000:0050 B80D0120000000000000000002000000:C001 01 00000000:00000000 00:00000000 00000000     0        0 4245 1
";
        let p = parse_proc_net_tcp(text);
        assert_eq!(p.skipped, 0);
        assert_eq!(p.items[0].local, sa("[::]:8080"));
        assert_eq!(p.items[1].local, sa("127.0.0.1:8080"), "IPv4-mapped becomes IPv4");
        assert_eq!(p.items[1].remote, sa("127.0.0.1:41394"));
        assert_eq!(p.items[2].local, sa("[::1]:443"));
        assert_eq!(p.items[3].local, sa("[2001:db8::1]:80"));
        assert_eq!(p.items[3].remote, sa("[2001:db8::2]:49153"));
    }

    #[test]
    fn hostile_and_truncated_lines_are_skipped() {
        let text = "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77\n\
                    garbage\n\
                    1: 0100007F:1F90\n\
                    2: 0100007F:1F9 00000000:0000 0A 0 0 0 0 0 1\n\
                    3: 0100007G:1F90 00000000:0000 0A 0 0 0 0 0 1\n\
                    4: 0100007F:1F90 00000000:0000 ZZ 0 0 0 0 0 1\n\
                    5: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 -1\n\
                    6: 0100007F0:1F90 00000000:0000 0A 0 0 0 0 0 1\n\
                    7: 0100007F:1F90 00000000:0000 0A 0 0 0 0 0 99999999999999999999999\n\
                    8: \u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}:0050 00000000:0000 0A 0 0 0 0 0 1\n\
                    \n   9: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0";
        let p = parse_proc_net_tcp(text);
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].inode, 77);
        assert_eq!(p.skipped, 10);
        // Every prefix of a real file parses without panicking.
        for cut in 0..TCP.len() {
            if TCP.is_char_boundary(cut) {
                let p = parse_proc_net_tcp(&TCP[..cut]);
                assert!(p.items.len() <= 3);
            }
        }
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link("socket:[31337]"), Some(31337));
        assert_eq!(parse_socket_link("socket:[]"), None);
        assert_eq!(parse_socket_link("socket:[12"), None);
        assert_eq!(parse_socket_link("pipe:[12]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("anon_inode:[eventpoll]"), None);
    }

    macro_rules! cgroup {
        ($text:expr => $uid:expr, $cid:expr) => {
            let got = parse_cgroup($text);
            assert_eq!(got.pod_uid.as_deref(), $uid, "{}", $text);
            assert_eq!(got.container_id.as_deref(), $cid, "{}", $text);
        };
    }

    const CID: &str = "3f1c2a9e8b7d6c5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f";

    #[test]
    fn cgroup_v2_systemd_driver() {
        let t = format!("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7e1b2f4c_9a3d_4e2b_8c1f_0d5e6a7b8c9d.slice/cri-containerd-{CID}.scope\n");
        cgroup!(&t => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), Some(CID));
        // Guaranteed QoS has no QoS slice; CRI-O and docker scopes.
        let t = format!("0::/kubepods.slice/kubepods-pod7e1b2f4c_9a3d_4e2b_8c1f_0d5e6a7b8c9d.slice/crio-{CID}.scope\n");
        cgroup!(&t => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), Some(CID));
        let t = format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod7e1b2f4c_9a3d_4e2b_8c1f_0d5e6a7b8c9d.slice/docker-{CID}.scope");
        cgroup!(&t => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), Some(CID));
        // kind: kubelet's cgroup root nested in a systemd slice.
        let t = format!("0::/system.slice/containerd.service/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod7e1b2f4c_9a3d_4e2b_8c1f_0d5e6a7b8c9d.slice/cri-containerd-{CID}.scope");
        cgroup!(&t => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), Some(CID));
    }

    #[test]
    fn cgroup_v1_cgroupfs_driver() {
        let t = format!(
            "12:hugetlb:/kubepods/burstable/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d/{CID}\n\
             11:memory:/kubepods/burstable/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d/{CID}\n\
             1:name=systemd:/kubepods/burstable/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d/{CID}\n"
        );
        cgroup!(&t => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), Some(CID));
        // Guaranteed, static pod (hash UID), pause-less path ending at the pod.
        let t = "4:cpu,cpuacct:/kubepods/pod6fbd8d2d0b9ad4a7c0e5bd7e1a5b6e52\n";
        cgroup!(t => Some("6fbd8d2d0b9ad4a7c0e5bd7e1a5b6e52"), None);
    }

    #[test]
    fn cgroup_outside_kubernetes_and_hostile() {
        cgroup!("0::/user.slice/user-1000.slice/session-2.scope\n" => None, None);
        cgroup!("0::/system.slice/docker-0123456789abcdef0123456789abcdef.scope\n" => None, None);
        cgroup!("0::/\n" => None, None);
        cgroup!("" => None, None);
        cgroup!("garbage without colons\n::\n:::\n" => None, None);
        cgroup!("0::/kubepods/podnot-a-uid/abc\n" => None, None);
        cgroup!("0::/kubepods/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d0000/abc\n" => None, None);
        cgroup!("0::/kubepods.slice/kubepods-pod.slice\n" => None, None);
        cgroup!("0::/kubepods/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d/not:hex!\n" => Some("7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d"), None);
        // A truncated read still answers what it can.
        let t = format!("0::/kubepods/burstable/pod7e1b2f4c-9a3d-4e2b-8c1f-0d5e6a7b8c9d/{CID}");
        for cut in 0..t.len() {
            let _ = parse_cgroup(&t[..cut]);
        }
    }

    #[test]
    fn fib_trie_local_addresses() {
        let text = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.244.1.0/24 2 0 2
        |-- 10.244.1.0
           /24 link UNICAST
        |-- 10.244.1.5
           /32 host LOCAL
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.1
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.244.1.5
        /32 host LOCAL
     |-- 10.244.1.255
        /32 link BROADCAST
";
        assert_eq!(parse_fib_trie_locals(text), vec![Ipv4Addr::new(10, 244, 1, 5), Ipv4Addr::LOCALHOST]);
        assert!(parse_fib_trie_locals("/32 host LOCAL\n|-- nonsense\n/32 host LOCAL\n").is_empty());
    }

    #[test]
    fn if_inet6_addresses() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    fe80000000000000a8c1abfffe123456 02 40 20 80     eth0\n\
                    zz80000000000000a8c1abfffe123456 02 40 20 80     eth0\n\
                    fe80 02\n\u{e9}\n";
        assert_eq!(
            parse_if_inet6(text),
            vec![Ipv6Addr::LOCALHOST, "fe80::a8c1:abff:fe12:3456".parse::<Ipv6Addr>().expect("v6")]
        );
    }

    #[test]
    fn comm() {
        assert_eq!(parse_comm("python3\n").as_deref(), Some("python3"));
        assert_eq!(parse_comm("\n"), None);
        assert_eq!(parse_comm(&"x".repeat(1000)).map(|s| s.len()), Some(64));
    }
}
