//! Bytes on the wire: the pcap file format and Ethernet / 802.1Q / IPv4 / IPv6 / TCP headers
//! with real checksums (RFC 791, RFC 8200, RFC 9293 §3.1). Everything is written into a
//! caller-owned `Vec<u8>`; nothing here allocates.

/// pcap global header: magic 0xa1b2c3d4 (microsecond timestamps), version 2.4, UTC, snaplen
/// 262144, LINKTYPE_ETHERNET (1); little endian.
pub(crate) const PCAP_GLOBAL_HEADER_LEN: usize = 24;
/// Snapshot length announced in the global header; no generated frame comes near it.
pub(crate) const SNAPLEN: u32 = 262_144;

pub(crate) fn pcap_global_header() -> [u8; PCAP_GLOBAL_HEADER_LEN] {
    let mut h = [0u8; PCAP_GLOBAL_HEADER_LEN];
    h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone = 0, sigfigs = 0
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

/// Addresses of one TCP connection as seen on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    /// IPv4 addresses use the first 4 bytes.
    pub client_ip: [u8; 16],
    pub server_ip: [u8; 16],
    pub v6: bool,
    pub client_port: u16,
    pub server_port: u16,
    pub vlan: Option<u16>,
    /// IPv6 flow label (20 bits), one per connection as Linux does.
    pub flow_label: u32,
    /// Hop limit / TTL of client packets as they reach the capture point.
    pub client_ttl: u8,
    /// Ones'-complement sum of both addresses and the protocol number: the part of the TCP
    /// pseudo-header that does not depend on direction or length.
    pseudo_sum: u64,
}

impl Flow {
    #[expect(clippy::too_many_arguments, reason = "one call site, every field named there")]
    pub(crate) fn new(
        client_mac: [u8; 6],
        server_mac: [u8; 6],
        client_ip: [u8; 16],
        server_ip: [u8; 16],
        v6: bool,
        client_port: u16,
        server_port: u16,
        vlan: Option<u16>,
        flow_label: u32,
        client_ttl: u8,
    ) -> Flow {
        let n = if v6 { 16 } else { 4 };
        let pseudo_sum = sum_words(&client_ip[..n]) + sum_words(&server_ip[..n]) + 6;
        Flow {
            client_mac,
            server_mac,
            client_ip,
            server_ip,
            v6,
            client_port,
            server_port,
            vlan,
            flow_label,
            client_ttl,
            pseudo_sum,
        }
    }
}

/// One TCP segment to write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentHeader {
    pub ts_us: u64,
    pub from_client: bool,
    pub flags: u8,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub ip_id: u16,
    /// Announced MSS, written as an option on SYN segments only.
    pub mss: u16,
}

/// Sum of big-endian 32-bit words (a trailing partial word is zero-padded on the right).
/// Folding this to 16 bits gives the RFC 1071 ones'-complement sum of 16-bit words, because
/// 2^16 ≡ 1 (mod 2^16 − 1). Summing 4 bytes at a time lets the compiler vectorise.
pub(crate) fn sum_words(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut sum: u64 = 0;
    for c in &mut chunks {
        sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 4];
    last[..rest.len()].copy_from_slice(rest);
    sum + u64::from(u32::from_be_bytes(last))
}

/// Folds a word sum to 16 bits and complements it: the Internet checksum.
pub(crate) fn fold_checksum(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const SYN_OPTIONS_LEN: usize = 12;

/// Appends one pcap record (record header, Ethernet, optional 802.1Q tag, IP, TCP, payload)
/// to `out` and returns the number of bytes appended.
pub(crate) fn write_segment(out: &mut Vec<u8>, flow: &Flow, h: &SegmentHeader, payload: &[u8]) -> usize {
    let opt_len = if h.flags & SYN != 0 { SYN_OPTIONS_LEN } else { 0 };
    let tcp_len = 20 + opt_len;
    let ip_len = if flow.v6 { 40 } else { 20 };
    let eth_len = if flow.vlan.is_some() { 18 } else { 14 };
    let frame_len = eth_len + ip_len + tcp_len + payload.len();

    // Headers are assembled in a stack buffer and copied once.
    let mut hdr = [0u8; 16 + 18 + 40 + 20 + SYN_OPTIONS_LEN];
    let ts_sec = (h.ts_us / 1_000_000) as u32;
    let ts_usec = (h.ts_us % 1_000_000) as u32;
    hdr[0..4].copy_from_slice(&ts_sec.to_le_bytes());
    hdr[4..8].copy_from_slice(&ts_usec.to_le_bytes());
    hdr[8..12].copy_from_slice(&(frame_len as u32).to_le_bytes());
    hdr[12..16].copy_from_slice(&(frame_len as u32).to_le_bytes());

    let (src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port, ttl) = if h.from_client {
        (
            &flow.client_mac,
            &flow.server_mac,
            &flow.client_ip,
            &flow.server_ip,
            flow.client_port,
            flow.server_port,
            flow.client_ttl,
        )
    } else {
        (&flow.server_mac, &flow.client_mac, &flow.server_ip, &flow.client_ip, flow.server_port, flow.client_port, 64)
    };

    let mut p = 16;
    hdr[p..p + 6].copy_from_slice(dst_mac);
    hdr[p + 6..p + 12].copy_from_slice(src_mac);
    p += 12;
    if let Some(vid) = flow.vlan {
        hdr[p..p + 2].copy_from_slice(&0x8100u16.to_be_bytes());
        hdr[p + 2..p + 4].copy_from_slice(&(vid & 0x0fff).to_be_bytes());
        p += 4;
    }
    let ethertype: u16 = if flow.v6 { 0x86dd } else { 0x0800 };
    hdr[p..p + 2].copy_from_slice(&ethertype.to_be_bytes());
    p += 2;

    let l4_len = tcp_len + payload.len();
    if flow.v6 {
        let first = 0x6000_0000u32 | (flow.flow_label & 0x000f_ffff);
        hdr[p..p + 4].copy_from_slice(&first.to_be_bytes());
        hdr[p + 4..p + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        hdr[p + 6] = 6; // next header: TCP
        hdr[p + 7] = ttl;
        hdr[p + 8..p + 24].copy_from_slice(src_ip);
        hdr[p + 24..p + 40].copy_from_slice(dst_ip);
    } else {
        hdr[p] = 0x45;
        hdr[p + 2..p + 4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        hdr[p + 4..p + 6].copy_from_slice(&h.ip_id.to_be_bytes());
        hdr[p + 6] = 0x40; // DF
        hdr[p + 8] = ttl;
        hdr[p + 9] = 6;
        hdr[p + 12..p + 16].copy_from_slice(&src_ip[..4]);
        hdr[p + 16..p + 20].copy_from_slice(&dst_ip[..4]);
        let c = fold_checksum(sum_words(&hdr[p..p + 20]));
        hdr[p + 10..p + 12].copy_from_slice(&c.to_be_bytes());
    }
    p += ip_len;

    let t = p;
    hdr[t..t + 2].copy_from_slice(&src_port.to_be_bytes());
    hdr[t + 2..t + 4].copy_from_slice(&dst_port.to_be_bytes());
    hdr[t + 4..t + 8].copy_from_slice(&h.seq.to_be_bytes());
    let ack = if h.flags & ACK != 0 { h.ack } else { 0 };
    hdr[t + 8..t + 12].copy_from_slice(&ack.to_be_bytes());
    hdr[t + 12] = ((tcp_len / 4) as u8) << 4;
    hdr[t + 13] = h.flags;
    hdr[t + 14..t + 16].copy_from_slice(&h.window.to_be_bytes());
    if opt_len != 0 {
        let m = h.mss.to_be_bytes();
        // MSS, NOP + window scale 7, NOP NOP + SACK permitted.
        let opts = [2, 4, m[0], m[1], 1, 3, 3, 7, 1, 1, 4, 2];
        hdr[t + 20..t + 20 + SYN_OPTIONS_LEN].copy_from_slice(&opts);
    }
    p += tcp_len;
    // Checksum field is still zero here; tcp_len is even, so header and payload sums join.
    let sum = flow.pseudo_sum + l4_len as u64 + sum_words(&hdr[t..t + tcp_len]) + sum_words(payload);
    let c = fold_checksum(sum);
    hdr[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());

    out.extend_from_slice(&hdr[..p]);
    out.extend_from_slice(payload);
    16 + frame_len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071's reference: a plain 16-bit ones'-complement sum, byte pair by byte pair.
    fn naive(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let w = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn word_sum_matches_rfc1071() {
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for len in [0, 1, 2, 3, 4, 5, 7, 8, 19, 20, 1447, 1448, 2000] {
            assert_eq!(fold_checksum(sum_words(&data[..len])), naive(&data[..len]), "{len}");
        }
    }

    #[test]
    fn ipv4_header_checksum_example() {
        // The worked example from Wikipedia's "IPv4 header checksum" article.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(fold_checksum(sum_words(&h)), 0xb861);
    }
}
