//! The scheduler: keeps `concurrent_connections` connections open, always writes the packet
//! with the smallest timestamp among them (so the capture is in time order and flows
//! interleave), plans a connection's next flight when its current one is written, and
//! replaces finished connections until the target size is reached.

use std::io::{self, Write};

use crate::config::GenConfig;
use crate::content::vocab::{MCP_USER_AGENTS, SERVER_NAMES, SERVER_SOFTWARE, USER_AGENTS};
use crate::content::{json::push_u64, Content, Peers};
use crate::rng::{Chance, Rng};
use crate::tcp::{Conn, ConnSetup, Params, Scratch, Shared};
use crate::truth::GenSummary;
use crate::wire::{pcap_global_header, write_segment, Flow};

/// Output is handed to the writer in pieces of about this size.
const FLUSH_AT: usize = 256 * 1024;
const SERVER_PORTS: [u16; 5] = [80, 8080, 8000, 3000, 5000];

#[derive(Debug)]
struct Server {
    host: Vec<u8>,
    software: &'static str,
    port: u16,
    ip4: [u8; 16],
    ip6: [u8; 16],
    mac: [u8; 6],
}

/// Hosts and the state that outlives a connection (each client's next ephemeral port).
#[derive(Debug)]
struct World {
    servers: Vec<Server>,
    next_port: Vec<u16>,
    keep_alive: Chance,
    mcp: Chance,
    v6: Chance,
    vlan: Chance,
    max_exchanges: u32,
    mss: u16,
    seed: u64,
    next_id: u64,
}

impl World {
    fn new(cfg: &GenConfig, rng: &mut Rng) -> World {
        let servers = (0..cfg.servers)
            .map(|j| {
                let port = SERVER_PORTS[j as usize % SERVER_PORTS.len()];
                let mut host = Vec::new();
                let name = SERVER_NAMES[j as usize % SERVER_NAMES.len()];
                if (j as usize) < SERVER_NAMES.len() {
                    host.extend_from_slice(name.as_bytes());
                } else {
                    host.extend_from_slice(b"svc");
                    push_u64(&mut host, u64::from(j));
                    host.push(b'.');
                    host.extend_from_slice(name.as_bytes());
                }
                if port != 80 {
                    host.push(b':');
                    push_u64(&mut host, u64::from(port));
                }
                let [_, _, hi, lo] = j.to_be_bytes();
                let mut ip4 = [0u8; 16];
                ip4[..4].copy_from_slice(&[10, 0, hi, lo]);
                let mut ip6 = [0u8; 16];
                ip6[..2].copy_from_slice(&[0xfd, 0x00]);
                ip6[7] = 0x10;
                ip6[14..].copy_from_slice(&[hi, lo]);
                Server {
                    host,
                    software: SERVER_SOFTWARE[j as usize % SERVER_SOFTWARE.len()],
                    port,
                    ip4,
                    ip6,
                    mac: [0x02, 0x5e, 0x00, 0x00, hi, lo],
                }
            })
            .collect();
        let next_port = (0..cfg.clients).map(|_| rng.range(32_768, 60_999) as u16).collect();
        World {
            servers,
            next_port,
            keep_alive: Chance::new(cfg.keep_alive_fraction),
            mcp: Chance::new(cfg.mcp_fraction),
            v6: Chance::new(cfg.ipv6_fraction),
            vlan: Chance::new(cfg.vlan_fraction),
            max_exchanges: cfg.max_exchanges_per_connection,
            mss: cfg.mss,
            seed: cfg.seed,
            next_id: 0,
        }
    }

    /// A new connection starting at `start_ts`.
    fn open(&mut self, rng: &mut Rng, start_ts: u64) -> Conn {
        let id = self.next_id;
        self.next_id += 1;
        let mut crng = Rng::derive(self.seed, id + 1);
        let mcp = rng.hit(self.mcp);
        let n_servers = self.servers.len() as u64;
        let sj = if mcp {
            // The MCP server is "mcp.example.com" when there are enough servers.
            (n_servers - 1).min(5) as usize
        } else {
            rng.skewed(0, n_servers - 1) as usize
        };
        let ci = rng.below(self.next_port.len() as u64) as usize;
        let keep_alive = mcp || rng.hit(self.keep_alive);
        let max = self.max_exchanges.max(1);
        let exchanges = if mcp {
            crng.skewed(u64::from(max.min(4)), u64::from(max)) as u32
        } else if keep_alive {
            crng.skewed(u64::from(max.min(2)), u64::from(max)) as u32
        } else {
            1
        };
        let v6 = rng.hit(self.v6);
        let vlan = rng.hit(self.vlan).then_some(100 + (sj as u16 % 10));

        let port = self.next_port[ci];
        self.next_port[ci] = if port >= 60_999 { 32_768 } else { port + 1 };
        let c = (ci as u32).to_be_bytes();
        let mut client_ip = [0u8; 16];
        let server = &self.servers[sj];
        let server_ip = if v6 {
            client_ip[..2].copy_from_slice(&[0xfd, 0x00]);
            client_ip[7] = 0x01;
            client_ip[12..].copy_from_slice(&c);
            server.ip6
        } else {
            client_ip[..4].copy_from_slice(&[10, 16 + (c[1] & 0x3f), c[2], c[3]]);
            server.ip4
        };
        let flow = Flow::new(
            [0x02, 0x00, c[0], c[1], c[2], c[3]],
            server.mac,
            client_ip,
            server_ip,
            v6,
            port,
            server.port,
            vlan,
            crng.next_u32() & 0x000f_ffff,
            [64, 63, 61, 128, 127][ci % 5],
        );
        let ua = if mcp { *crng.pick(MCP_USER_AGENTS) } else { USER_AGENTS[ci % USER_AGENTS.len()] };
        let peers = Peers::new(&mut crng, server.host.clone(), ua, server.software, mcp);
        Conn::new(ConnSetup { id, rng: crng, flow, peers, keep_alive, exchanges, start_ts }, self.mss)
    }
}

pub(crate) fn run<W: Write>(cfg: &GenConfig, out: &mut W) -> io::Result<GenSummary> {
    cfg.validate()?;
    let params = Params {
        loss: Chance::new(cfg.loss_probability),
        reorder: Chance::new(cfg.reorder_probability),
        duplicate: Chance::new(cfg.duplicate_probability),
        gap: Chance::new(cfg.gap_probability),
        pipeline: Chance::new(cfg.pipeline_probability),
        mss: u32::from(cfg.mss),
        record_truth: cfg.record_truth,
        impaired: [cfg.loss_probability, cfg.reorder_probability, cfg.duplicate_probability, cfg.gap_probability]
            .iter()
            .any(|&p| p > 0.0),
    };
    let mut rng = Rng::derive(cfg.seed, 0);
    let mut world = World::new(cfg, &mut rng);
    let mut content = Content::new(cfg.seed);
    let mut scratch = Scratch::default();
    let mut summary = GenSummary::default();

    let mut buf: Vec<u8> = Vec::with_capacity(FLUSH_AT + 128 * 1024);
    buf.extend_from_slice(&pcap_global_header());
    summary.bytes_written = buf.len() as u64;
    let mut stopping = summary.bytes_written >= cfg.target_bytes;

    let k = cfg.concurrent_connections as usize;
    let mut slots: Vec<Option<Conn>> = (0..k).map(|_| None).collect();
    // Timestamp of each slot's next packet; u64::MAX for an empty slot.
    let mut heads = vec![u64::MAX; k];
    let mut now = cfg.start_time_us;

    macro_rules! shared {
        () => {
            Shared { params: &params, content: &mut content, summary: &mut summary, stopping, scratch: &mut scratch }
        };
    }

    if !stopping {
        for (slot, head) in slots.iter_mut().zip(heads.iter_mut()) {
            let start = now + rng.range(0, 3_000);
            let mut conn = world.open(&mut rng, start);
            conn.plan(&mut shared!());
            *head = conn.head().map_or(u64::MAX, |p| p.ts);
            *slot = Some(conn);
        }
    }

    loop {
        let mut best = usize::MAX;
        let mut best_ts = u64::MAX;
        for (i, &ts) in heads.iter().enumerate() {
            if ts < best_ts {
                best_ts = ts;
                best = i;
            }
        }
        let Some(Some(conn)) = slots.get_mut(best) else {
            break;
        };

        let (pkt, hdr) = conn.pop();
        summary.bytes_written += write_segment(&mut buf, &conn.flow, &hdr, conn.payload(&pkt)) as u64;
        summary.packets += 1;
        now = pkt.ts;
        if buf.len() >= FLUSH_AT {
            out.write_all(&buf)?;
            buf.clear();
        }
        stopping |= summary.bytes_written >= cfg.target_bytes;

        if conn.head().is_none() && !conn.plan(&mut shared!()) {
            summary.connections += 1;
            slots[best] = None;
            heads[best] = u64::MAX;
            if !stopping {
                let start = now + rng.skewed(1, 2_000);
                let mut conn = world.open(&mut rng, start);
                conn.plan(&mut shared!());
                heads[best] = conn.head().map_or(u64::MAX, |p| p.ts);
                slots[best] = Some(conn);
            }
            continue;
        }
        heads[best] = slots[best].as_ref().and_then(|c| c.head()).map_or(u64::MAX, |p| p.ts);
    }
    out.write_all(&buf)?;
    out.flush()?;
    Ok(summary)
}
