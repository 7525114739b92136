//! Which interfaces to capture on, and noticing when they come and go.
//!
//! `any` means every interface that is up, not loopback, and of a link type the capture can
//! decode; interfaces that appear later (pod veths on a Kubernetes node) join, and those that
//! go away leave. `lo` is captured only when named. Changes are noticed through a netlink
//! subscription to link and address events (a rescan is triggered by any message), with a
//! periodic rescan as a safety net.

use nix::sys::socket::{self, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// How the link layer of an interface looks in captured packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2 {
    /// An Ethernet header (Ethernet, veth, bridges, and `lo` whose header is zeroed).
    Ethernet,
    /// Packets start with the IP header (tun, WireGuard, IP tunnels).
    RawIp,
}

/// An interface as seen in /sys/class/net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    /// Name (`eth0`).
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Link layer, `None` for types the capture cannot decode (e.g. CAN, InfiniBand).
    pub l2: Option<L2>,
    /// Administratively up.
    pub up: bool,
    /// A loopback device.
    pub loopback: bool,
}

/// The interfaces asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every non-loopback interface that is up, present and future.
    Any,
    /// Exactly these (attached while they exist).
    Named(Vec<String>),
}

impl Selection {
    /// From `--interface` values: empty or containing `any` means [`Selection::Any`].
    pub fn from_args(names: &[String]) -> Selection {
        if names.is_empty() || names.iter().any(|n| n == "any") {
            Selection::Any
        } else {
            Selection::Named(names.to_vec())
        }
    }

    /// The interfaces of `all` to capture on now.
    pub fn pick(&self, all: &[Iface]) -> Vec<Iface> {
        match self {
            Selection::Any => all.iter().filter(|i| i.up && !i.loopback && i.l2.is_some()).cloned().collect(),
            Selection::Named(names) => {
                all.iter().filter(|i| names.contains(&i.name) && i.l2.is_some()).cloned().collect()
            }
        }
    }
}

const IFF_UP: u32 = 0x1;
const IFF_LOOPBACK: u32 = 0x8;
const ARPHRD_ETHER: u32 = 1;
const ARPHRD_LOOPBACK: u32 = 772;
/// IP-level devices: tunnels (768 IPIP, 769 TUNNEL6, 776 SIT, 778 IPGRE, 823 IP6GRE), and
/// `ARPHRD_NONE` (65534: tun, WireGuard).
const ARPHRD_RAW_IP: [u32; 6] = [768, 769, 776, 778, 823, 65534];

fn read_num(dir: &Path, file: &str) -> Option<u32> {
    let s = std::fs::read_to_string(dir.join(file)).ok()?;
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Every interface in `root` (normally /sys/class/net), sorted by name.
pub fn list_in(root: &Path) -> std::io::Result<Vec<Iface>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        // An interface removed between readdir and read: skip it, the next scan is right.
        let (Some(index), Some(kind), Some(flags)) =
            (read_num(&dir, "ifindex"), read_num(&dir, "type"), read_num(&dir, "flags"))
        else {
            continue;
        };
        let l2 = match kind {
            ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(L2::Ethernet),
            k if ARPHRD_RAW_IP.contains(&k) => Some(L2::RawIp),
            _ => None,
        };
        let loopback = kind == ARPHRD_LOOPBACK || flags & IFF_LOOPBACK != 0;
        out.push(Iface { name, index, l2, up: flags & IFF_UP != 0, loopback });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Every interface of this network namespace.
pub fn list() -> std::io::Result<Vec<Iface>> {
    list_in(Path::new("/sys/class/net"))
}

/// Addresses of this host's interfaces (for `direction`: a record whose server address is local
/// is inbound).
pub fn local_addrs() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out: Vec<IpAddr> = addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Tells the capture loop when to rescan the interfaces.
#[derive(Debug)]
pub struct Watcher {
    netlink: Option<OwnedFd>,
    rescan_every: Duration,
    last: Instant,
}

const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;

impl Watcher {
    /// Subscribes to link/address events; without netlink (a restricted sandbox) it falls back
    /// to rescanning every `rescan_every`.
    pub fn new(rescan_every: Duration) -> Watcher {
        let netlink = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .ok()
        .filter(|fd| {
            let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
            socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).is_ok()
        });
        Watcher { netlink, rescan_every, last: Instant::now() }
    }

    /// Whether interfaces may have changed since the last call that returned true.
    pub fn changed(&mut self) -> bool {
        let mut event = false;
        if let Some(fd) = &self.netlink {
            let mut buf = [0u8; 8192];
            // Drain everything queued; the content does not matter, a rescan reads the truth.
            while let Ok(n) = socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                if n == 0 {
                    break;
                }
                event = true;
            }
        }
        if event || self.last.elapsed() >= self.rescan_every {
            self.last = Instant::now();
            return true;
        }
        false
    }
}

/// The difference between what is attached and what should be.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Interfaces to attach to.
    pub attach: Vec<Iface>,
    /// Interfaces (by name) to detach from: gone, down, or replaced by a new index.
    pub detach: Vec<String>,
}

/// What to change so that `attached` (name → index) becomes `wanted`.
pub fn plan(attached: &BTreeMap<String, u32>, wanted: &[Iface]) -> Plan {
    let mut p = Plan::default();
    for (name, index) in attached {
        if !wanted.iter().any(|w| &w.name == name && w.index == *index) {
            p.detach.push(name.clone());
        }
    }
    for w in wanted {
        if attached.get(&w.name) != Some(&w.index) {
            p.attach.push(w.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(root: &Path, name: &str, index: u32, kind: u32, flags: u32) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ifindex"), format!("{index}\n")).unwrap();
        std::fs::write(d.join("type"), format!("{kind}\n")).unwrap();
        std::fs::write(d.join("flags"), format!("0x{flags:x}\n")).unwrap();
    }

    #[test]
    fn any_means_up_non_loopback_decodable() {
        let t = tempfile::tempdir().unwrap();
        fake(t.path(), "lo", 1, 772, 0x9);
        fake(t.path(), "eth0", 2, 1, 0x1003);
        fake(t.path(), "eth1", 3, 1, 0x1002); // down
        fake(t.path(), "wg0", 4, 65534, 0x91);
        fake(t.path(), "can0", 5, 280, 0x1); // CAN: not decodable
        std::fs::create_dir_all(t.path().join("half")).unwrap(); // vanished mid-scan
        let all = list_in(t.path()).unwrap();
        assert_eq!(all.len(), 5);
        let any: Vec<_> = Selection::Any.pick(&all).into_iter().map(|i| i.name).collect();
        assert_eq!(any, ["eth0", "wg0"]);
        assert_eq!(all.iter().find(|i| i.name == "wg0").unwrap().l2, Some(L2::RawIp));
        let named = Selection::from_args(&["lo".into(), "eth1".into(), "missing".into()]);
        let picked: Vec<_> = named.pick(&all).into_iter().map(|i| i.name).collect();
        assert_eq!(picked, ["eth1", "lo"]);
        assert_eq!(Selection::from_args(&[]), Selection::Any);
        assert_eq!(Selection::from_args(&["eth0".into(), "any".into()]), Selection::Any);
    }

    #[test]
    fn plan_attaches_new_and_detaches_gone_or_renumbered() {
        let iface =
            |name: &str, index| Iface { name: name.into(), index, l2: Some(L2::Ethernet), up: true, loopback: false };
        let attached: BTreeMap<String, u32> =
            [("eth0".to_string(), 2), ("veth1".to_string(), 7), ("veth2".to_string(), 8)].into();
        let wanted = vec![iface("eth0", 2), iface("veth2", 9), iface("veth3", 10)];
        let p = plan(&attached, &wanted);
        assert_eq!(p.detach, ["veth1", "veth2"]);
        assert_eq!(p.attach.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["veth2", "veth3"]);
    }
}
