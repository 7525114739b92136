//! What to generate. One plain struct, defaults in one place ([`GenConfig::default`]), checked
//! once by [`GenConfig::validate`] before any byte is written.

use std::io;

/// Parameters of a generated capture. Every field has a documented default; build one with
/// struct-update syntax: `GenConfig { seed: 7, target_bytes: 1 << 30, ..GenConfig::default() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Seed of the whole capture: the same seed and config give the same bytes. Default 1.
    pub seed: u64,
    /// Approximate capture size in bytes, pcap headers included. Once this many bytes are
    /// written no new connection starts and open connections close after their current
    /// exchange, so the file ends slightly past the target with every exchange complete.
    /// Default 16 MiB.
    pub target_bytes: u64,
    /// Number of distinct client hosts (each has an IPv4 and an IPv6 address and a MAC).
    /// Default 200.
    pub clients: u32,
    /// Number of distinct API servers. Default 12.
    pub servers: u32,
    /// Connections open at the same time; their packets are interleaved by timestamp.
    /// Default 32.
    pub concurrent_connections: u32,
    /// Fraction of connections that are keep-alive (several exchanges); the rest carry one
    /// exchange and close. Default 0.7.
    pub keep_alive_fraction: f64,
    /// Upper bound on exchanges per keep-alive connection (the count is drawn in
    /// `2..=max`, skewed small). Default 16.
    pub max_exchanges_per_connection: u32,
    /// Probability that a keep-alive connection sends 2–3 requests back to back before the
    /// responses (HTTP/1.1 pipelining, RFC 9112 §9.3.2), per exchange. Default 0.03.
    pub pipeline_probability: f64,
    /// Fraction of connections that are MCP sessions (`POST /mcp`, JSON-RPC 2.0, answered with
    /// `application/json` or `text/event-stream`). Default 0.05.
    pub mcp_fraction: f64,
    /// Per data segment: the first transmission is lost before the capture point and the
    /// retransmission arrives after 1–3 later segments (out of order). Default 0.001.
    pub loss_probability: f64,
    /// Per data segment: swapped with the next segment of the same direction. Default 0.001.
    pub reorder_probability: f64,
    /// Per data segment: a second identical copy (spurious retransmission) follows 0–2
    /// segments later. Default 0.0005.
    pub duplicate_probability: f64,
    /// Per data segment: missing from the capture for ever (the endpoints got it, the capture
    /// did not), to exercise gap handling. Exchanges touched by a gap are counted in
    /// [`GenSummary::exchanges`](crate::GenSummary) but not in `exchanges_delivered`. Default 0.
    pub gap_probability: f64,
    /// TCP maximum segment size: no payload is larger. Must be in `64..=65495`. Default 1448
    /// (Ethernet MTU 1500 minus IPv4, TCP and timestamp-option headers, as Linux announces).
    pub mss: u16,
    /// Fraction of connections over IPv6. Default 0.1.
    pub ipv6_fraction: f64,
    /// Fraction of connections whose frames carry an 802.1Q VLAN tag. Default 0.02.
    pub vlan_fraction: f64,
    /// Capture start, microseconds since the Unix epoch; at most 4·10^15 (year 2096), so
    /// that pcap's 32-bit seconds do not overflow. Default 2024-06-03T09:00:00Z.
    pub start_time_us: u64,
    /// Record one [`ExchangeTruth`](crate::ExchangeTruth) per exchange in the summary. Memory
    /// grows with the capture (about 200 bytes per exchange, some 70 MB for a 1 GB capture),
    /// so it is off by default.
    pub record_truth: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 1,
            target_bytes: 16 << 20,
            clients: 200,
            servers: 12,
            concurrent_connections: 32,
            keep_alive_fraction: 0.7,
            max_exchanges_per_connection: 16,
            pipeline_probability: 0.03,
            mcp_fraction: 0.05,
            loss_probability: 0.001,
            reorder_probability: 0.001,
            duplicate_probability: 0.0005,
            gap_probability: 0.0,
            mss: 1448,
            ipv6_fraction: 0.1,
            vlan_fraction: 0.02,
            start_time_us: 1_717_405_200_000_000,
            record_truth: false,
        }
    }
}

impl GenConfig {
    /// A config with every impairment (loss, reorder, duplicate, gap) set to zero: the capture
    /// is each TCP stream in order, once.
    pub fn clean() -> Self {
        GenConfig {
            loss_probability: 0.0,
            reorder_probability: 0.0,
            duplicate_probability: 0.0,
            gap_probability: 0.0,
            ..GenConfig::default()
        }
    }

    /// Checks every field; the error names the field and the accepted range.
    pub fn validate(&self) -> io::Result<()> {
        let probabilities = [
            ("keep_alive_fraction", self.keep_alive_fraction),
            ("pipeline_probability", self.pipeline_probability),
            ("mcp_fraction", self.mcp_fraction),
            ("loss_probability", self.loss_probability),
            ("reorder_probability", self.reorder_probability),
            ("duplicate_probability", self.duplicate_probability),
            ("gap_probability", self.gap_probability),
            ("ipv6_fraction", self.ipv6_fraction),
            ("vlan_fraction", self.vlan_fraction),
        ];
        for (name, p) in probabilities {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(format!("{name} must be in [0, 1], got {p}")));
            }
        }
        let counts = [
            ("clients", self.clients, 1, 1 << 20),
            ("servers", self.servers, 1, 1 << 16),
            ("concurrent_connections", self.concurrent_connections, 1, 4096),
            ("max_exchanges_per_connection", self.max_exchanges_per_connection, 1, 1 << 20),
            ("mss", u32::from(self.mss), 64, 65_495),
        ];
        for (name, v, lo, hi) in counts {
            if !(lo..=hi).contains(&v) {
                return Err(invalid(format!("{name} must be in {lo}..={hi}, got {v}")));
            }
        }
        if self.start_time_us > MAX_START_US {
            return Err(invalid(format!("start_time_us must be at most {MAX_START_US}, got {}", self.start_time_us)));
        }
        Ok(())
    }
}

/// Leaves pcap's unsigned 32-bit seconds about ten years of capture time.
const MAX_START_US: u64 = 4_000_000_000_000_000;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
