//! The libpcap backend (`--backend pcap`, and the fallback where eBPF is not permitted): one
//! non-blocking live capture per interface, all polled by the capture thread, with a kernel BPF
//! filter built from the same port and deny settings as the eBPF programs.

use super::ifaces::Iface;
use super::pipeline::Dispatcher;
use super::{KernelStats, Source};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use pcap::{Active, Capture, Direction};
use reassembly::{LinkType, Timestamp};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

/// Packets read from one interface per `poll` call before the others get a turn.
const READ_LIMIT: usize = 4096;

/// What the libpcap backend needs to know.
#[derive(Debug, Clone)]
pub struct PcapConfig {
    /// Bytes captured per packet.
    pub snaplen: u32,
    /// Kernel buffer per interface, bytes.
    pub buffer_bytes: u32,
    /// Put interfaces in promiscuous mode (mirror/SPAN ports).
    pub promisc: bool,
    /// The kernel hands over a block of packets when it is full or after this long: one
    /// wake-up per block rather than per packet.
    pub timeout_ms: u16,
    /// Ports to capture; empty = all.
    pub ports: Vec<u16>,
    /// Ports never captured.
    pub deny_ports: Vec<u16>,
    /// Endpoints never captured (the Kafka brokers).
    pub deny_endpoints: Vec<SocketAddr>,
}

/// TCP packets the reassembly needs: those with payload, and SYN/FIN/RST (pure ACKs are most
/// of the packets of a busy connection and carry nothing; the eBPF program skips them too).
const TCP_USEFUL: &str = "(tcp[tcpflags] & (tcp-syn|tcp-fin|tcp-rst) != 0 or \
(ip and ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0) or \
(ip6 and ip6[4:2] - ((tcp[12] & 0xf0) >> 2) != 0))";

/// The BPF filter expression for these settings: useful TCP packets (and VXLAN-encapsulated
/// mirror traffic when no port set is given), minus the deny lists.
pub fn filter_expression(cfg: &PcapConfig) -> String {
    let mut f = if cfg.ports.is_empty() {
        format!("((tcp and {TCP_USEFUL}) or udp port {})", reassembly::decode::VXLAN_PORT)
    } else {
        let ports: Vec<String> = cfg.ports.iter().map(|p| format!("port {p}")).collect();
        format!("(tcp and ({}) and {TCP_USEFUL})", ports.join(" or "))
    };
    for p in &cfg.deny_ports {
        f.push_str(&format!(" and not port {p}"));
    }
    for ep in &cfg.deny_endpoints {
        f.push_str(&format!(" and not (host {} and port {})", ep.ip(), ep.port()));
    }
    f
}

struct Live {
    index: u32,
    cap: Capture<Active>,
    link: Option<LinkType>,
    last: pcap::Stat,
}

/// Live captures by interface name.
pub struct PcapSource {
    cfg: PcapConfig,
    filter: String,
    live: BTreeMap<String, Live>,
    /// Counters of captures already closed.
    closed: pcap::Stat,
    unknown_link: u64,
    read_errors: u64,
}

impl std::fmt::Debug for PcapSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSource")
            .field("filter", &self.filter)
            .field("live", &self.live.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PcapSource {
    /// A backend with nothing open yet.
    pub fn new(cfg: PcapConfig) -> PcapSource {
        let filter = filter_expression(&cfg);
        PcapSource {
            cfg,
            filter,
            live: BTreeMap::new(),
            closed: pcap::Stat { received: 0, dropped: 0, if_dropped: 0 },
            unknown_link: 0,
            read_errors: 0,
        }
    }

    fn totals(&self) -> pcap::Stat {
        let mut t = pcap::Stat {
            received: self.closed.received,
            dropped: self.closed.dropped,
            if_dropped: self.closed.if_dropped,
        };
        for l in self.live.values() {
            t.received += l.last.received;
            t.dropped += l.last.dropped;
            t.if_dropped += l.last.if_dropped;
        }
        t
    }
}

impl Source for PcapSource {
    fn name(&self) -> &'static str {
        "pcap"
    }

    fn attach(&mut self, iface: &Iface) -> anyhow::Result<()> {
        let snaplen = i32::try_from(self.cfg.snaplen).unwrap_or(i32::MAX);
        let buffer = i32::try_from(self.cfg.buffer_bytes).unwrap_or(i32::MAX);
        let mut cap = Capture::from_device(iface.name.as_str())?
            .promisc(self.cfg.promisc)
            .snaplen(snaplen)
            .buffer_size(buffer)
            .timeout(i32::from(self.cfg.timeout_ms))
            .open()?
            .setnonblock()?;
        cap.filter(&self.filter, true).map_err(|e| anyhow::anyhow!("BPF filter {:?}: {e}", self.filter))?;
        // On loopback a packet socket sees every packet twice (out, then in): keep one copy.
        if iface.loopback {
            cap.direction(Direction::In)?;
        }
        let link = LinkType::from_pcap(cap.get_datalink().0 as u32);
        self.live.insert(
            iface.name.clone(),
            Live { index: iface.index, cap, link, last: pcap::Stat { received: 0, dropped: 0, if_dropped: 0 } },
        );
        Ok(())
    }

    fn detach(&mut self, name: &str) {
        if let Some(mut l) = self.live.remove(name) {
            if let Ok(s) = l.cap.stats() {
                l.last = s;
            }
            self.closed.received += l.last.received;
            self.closed.dropped += l.last.dropped;
            self.closed.if_dropped += l.last.if_dropped;
        }
    }

    fn attached(&self) -> BTreeMap<String, u32> {
        self.live.iter().map(|(n, l)| (n.clone(), l.index)).collect()
    }

    fn poll(&mut self, timeout: Duration, out: &mut Dispatcher) -> anyhow::Result<()> {
        if self.live.is_empty() {
            std::thread::sleep(timeout);
            return Ok(());
        }
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd<'_>> =
                self.live.values().map(|l| PollFd::new(l.cap.as_fd(), PollFlags::POLLIN)).collect();
            match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) => fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect(),
                Err(nix::errno::Errno::EINTR) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        };
        for (l, ready) in self.live.values_mut().zip(ready) {
            if !ready {
                continue;
            }
            for _ in 0..READ_LIMIT {
                match l.cap.next_packet() {
                    Ok(p) => {
                        let Some(link) = l.link else {
                            self.unknown_link += 1;
                            continue;
                        };
                        let tv = p.header.ts;
                        let ts =
                            Timestamp::from_secs_micros(tv.tv_sec.max(0) as u64, tv.tv_usec.clamp(0, 999_999) as u32);
                        out.push(reassembly::decode::flow_hash(link, p.data), ts, link, p.data);
                    }
                    Err(pcap::Error::TimeoutExpired | pcap::Error::NoMorePackets) => break,
                    Err(_) => {
                        // The interface went away under us: the next rescan detaches it.
                        self.read_errors += 1;
                        break;
                    }
                }
            }
            if let Ok(s) = l.cap.stats() {
                l.last = s;
            }
        }
        Ok(())
    }

    fn kernel(&self) -> KernelStats {
        let t = self.totals();
        KernelStats {
            packets: u64::from(t.received),
            bytes: 0,
            drops: vec![
                ("pcap_buffer_full", u64::from(t.dropped)),
                ("interface_dropped", u64::from(t.if_dropped)),
                ("unknown_link", self.unknown_link),
                ("read_error", self.read_errors),
            ],
            other: vec![],
            wakeups: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_follows_ports_and_deny_lists() {
        let mut cfg = PcapConfig {
            snaplen: 65535,
            buffer_bytes: 1 << 20,
            promisc: false,
            timeout_ms: 5,
            ports: vec![],
            deny_ports: vec![22],
            deny_endpoints: vec!["10.0.0.9:9092".parse().unwrap()],
        };
        assert_eq!(
            filter_expression(&cfg),
            format!("((tcp and {TCP_USEFUL}) or udp port 4789) and not port 22 and not (host 10.0.0.9 and port 9092)")
        );
        cfg.ports = vec![80, 8080];
        cfg.deny_endpoints.clear();
        assert_eq!(
            filter_expression(&cfg),
            format!("(tcp and (port 80 or port 8080) and {TCP_USEFUL}) and not port 22")
        );
        // libpcap itself accepts what we build.
        let dead = Capture::dead(pcap::Linktype::ETHERNET).unwrap();
        dead.compile(&filter_expression(&cfg), true).unwrap();
        cfg.deny_endpoints = vec!["[2001:db8::1]:9093".parse().unwrap()];
        dead.compile(&filter_expression(&cfg), true).unwrap();
    }
}
