//! Parses generated captures back with an independent decoder (etherparse), reassembles the
//! TCP streams by sequence number, parses the HTTP messages naively, and compares with the
//! generator's ground truth.

#![expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use trafficgen::{generate, ExchangeTruth, Framing, GenConfig, GenSummary};

fn gen(cfg: &GenConfig) -> (Vec<u8>, GenSummary) {
    let mut out = Vec::new();
    let summary = generate(cfg, &mut out).expect("generate");
    assert_eq!(summary.bytes_written, out.len() as u64);
    (out, summary)
}

fn small(seed: u64) -> GenConfig {
    GenConfig { seed, target_bytes: 3 << 20, record_truth: true, ..GenConfig::clean() }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// One TCP segment from the capture.
#[derive(Debug)]
struct Seg {
    src: SocketAddr,
    dst: SocketAddr,
    syn: bool,
    ack_flag: bool,
    fin: bool,
    rst: bool,
    seq: u32,
    ack: u32,
    payload: Vec<u8>,
}

/// Walks the pcap records, checking the file format, frame lengths, and the IPv4 header and
/// TCP checksums as it goes.
fn parse(pcap: &[u8], mss: usize) -> Vec<Seg> {
    assert_eq!(&pcap[0..4], &0xa1b2_c3d4u32.to_le_bytes(), "magic");
    assert_eq!(u16::from_le_bytes([pcap[4], pcap[5]]), 2);
    assert_eq!(u16::from_le_bytes([pcap[6], pcap[7]]), 4);
    let snaplen = u32::from_le_bytes(pcap[16..20].try_into().unwrap());
    assert_eq!(snaplen, 262_144);
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 1, "LINKTYPE_ETHERNET");

    let mut segs = Vec::new();
    let mut pos = 24;
    let mut last_ts = 0;
    while pos < pcap.len() {
        let h = &pcap[pos..pos + 16];
        let sec = u64::from(u32::from_le_bytes(h[0..4].try_into().unwrap()));
        let usec = u64::from(u32::from_le_bytes(h[4..8].try_into().unwrap()));
        let incl = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
        assert!(usec < 1_000_000);
        assert_eq!(incl, orig);
        assert!(incl <= snaplen as usize);
        let ts = sec * 1_000_000 + usec;
        assert!(ts >= last_ts, "timestamps go back at record offset {pos}");
        last_ts = ts;
        let frame = &pcap[pos + 16..pos + 16 + incl];
        pos += 16 + incl;

        let p = SlicedPacket::from_ethernet(frame).expect("well-formed frame");
        let Some(TransportSlice::Tcp(tcp)) = p.transport else { panic!("not TCP") };
        let (src_ip, dst_ip, csum) = match p.net.expect("ip") {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum(), "IPv4 checksum");
                assert_eq!(usize::from(h.total_len()), frame.len() - 14 - 4 * p.link_exts.len());
                let c = tcp.calc_checksum_ipv4(h.source(), h.destination()).unwrap();
                (IpAddr::V4(h.source_addr()), IpAddr::V4(h.destination_addr()), c)
            }
            NetSlice::Ipv6(ip) => {
                let h = ip.header();
                let c = tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap();
                (IpAddr::V6(h.source_addr()), IpAddr::V6(h.destination_addr()), c)
            }
            NetSlice::Arp(_) => panic!("arp"),
        };
        assert_eq!(tcp.checksum(), csum, "TCP checksum");
        assert!(tcp.payload().len() <= mss);
        segs.push(Seg {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            syn: tcp.syn(),
            ack_flag: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            seq: tcp.sequence_number(),
            ack: tcp.acknowledgment_number(),
            payload: tcp.payload().to_vec(),
        });
    }
    assert_eq!(pos, pcap.len());
    segs
}

/// One direction of a connection, placed by sequence number.
#[derive(Debug, Default)]
struct Dir {
    isn: u32,
    data: Vec<u8>,
    have: Vec<bool>,
    fin: bool,
}

impl Dir {
    fn put(&mut self, seq: u32, payload: &[u8]) {
        let off = seq.wrapping_sub(self.isn.wrapping_add(1)) as usize;
        assert!(off < 1 << 30, "segment before the ISN");
        if self.data.len() < off + payload.len() {
            self.data.resize(off + payload.len(), 0);
            self.have.resize(off + payload.len(), false);
        }
        for (i, &b) in payload.iter().enumerate() {
            if self.have[off + i] {
                assert_eq!(self.data[off + i], b, "retransmission differs");
            }
            self.data[off + i] = b;
            self.have[off + i] = true;
        }
    }

    fn complete(&self) -> bool {
        self.have.iter().all(|&h| h)
    }
}

#[derive(Debug, Default)]
struct Conn {
    client: Option<SocketAddr>,
    c2s: Dir,
    s2c: Dir,
    closed: bool,
}

/// Reassembles every connection by sequence number, keyed by (client, server). Also checks
/// that no ACK acknowledges data the peer has not sent yet, when `check_acks`.
fn reassemble(segs: &[Seg], check_acks: bool) -> BTreeMap<(SocketAddr, SocketAddr), Conn> {
    let mut conns: BTreeMap<(SocketAddr, SocketAddr), Conn> = BTreeMap::new();
    // Highest sequence number sent so far per (src, dst), for the ACK check.
    let mut sent: BTreeMap<(SocketAddr, SocketAddr), u32> = BTreeMap::new();
    for s in segs {
        let key = if s.syn && !s.ack_flag { (s.src, s.dst) } else { (s.dst, s.src) };
        let key = if conns.contains_key(&key) || (s.syn && !s.ack_flag) { key } else { (s.src, s.dst) };
        let c = conns.entry(key).or_default();
        if s.syn && !s.ack_flag {
            assert!(c.client.is_none(), "4-tuple reused in a small capture");
            c.client = Some(s.src);
            c.c2s.isn = s.seq;
        } else if s.syn {
            c.s2c.isn = s.seq;
            assert_eq!(s.ack, c.c2s.isn.wrapping_add(1), "SYN-ACK acknowledges the SYN");
        }
        let from_client = Some(s.src) == c.client;
        let dir = if from_client { &mut c.c2s } else { &mut c.s2c };
        if !s.payload.is_empty() {
            dir.put(s.seq, &s.payload);
        }
        dir.fin |= s.fin;
        c.closed |= s.rst || (c.c2s.fin && c.s2c.fin);
        let end = s.seq.wrapping_add(s.payload.len() as u32 + u32::from(s.syn) + u32::from(s.fin));
        let e = sent.entry((s.src, s.dst)).or_insert(end);
        if end.wrapping_sub(*e) as i32 > 0 {
            *e = end;
        }
        if check_acks && s.ack_flag {
            let peer = sent.get(&(s.dst, s.src)).copied().expect("ACK before the peer sent");
            assert!(peer.wrapping_sub(s.ack) as i32 >= 0, "ACK of unsent data");
        }
    }
    conns
}

#[derive(Debug, PartialEq, Eq, Clone)]
struct Parsed {
    method: String,
    path: String,
    request_body_len: usize,
    status: u16,
    response_body_len: usize,
    framing: Framing,
    gzip: bool,
    content_type: String,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Header block at `data[pos..]`: (first line, lower-cased name/value pairs, end offset).
fn head(data: &[u8], pos: usize) -> (String, Vec<(String, String)>, usize) {
    let end = pos + find(&data[pos..], b"\r\n\r\n").expect("end of header block");
    let text = std::str::from_utf8(&data[pos..end]).expect("ascii header");
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap().to_owned();
    let fields = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("field");
            (n.to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (first, fields, end + 4)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Parses all exchanges of one connection from its two streams.
fn parse_http(c2s: &[u8], s2c: &[u8]) -> Vec<Parsed> {
    let mut out = Vec::new();
    let (mut rp, mut sp) = (0, 0);
    while rp < c2s.len() {
        let (line, fields, body) = head(c2s, rp);
        let mut parts = line.split(' ');
        let method = parts.next().unwrap().to_owned();
        let path = parts.next().unwrap().to_owned();
        assert_eq!(parts.next(), Some("HTTP/1.1"));
        let n: usize = field(&fields, "content-length").map_or(0, |v| v.parse().unwrap());
        rp = body + n;

        let (line, fields, body) = head(s2c, sp);
        let status: u16 = line[9..12].parse().unwrap();
        let chunked = field(&fields, "transfer-encoding") == Some("chunked");
        let cl = field(&fields, "content-length").map(|v| v.parse::<usize>().unwrap());
        let (raw, framing) = if status == 204 || status == 304 {
            assert!(cl.is_none() && !chunked);
            sp = body;
            (Vec::new(), Framing::None)
        } else if chunked {
            let mut p = body;
            let mut raw = Vec::new();
            loop {
                let eol = p + find(&s2c[p..], b"\r\n").unwrap();
                let line = std::str::from_utf8(&s2c[p..eol]).unwrap();
                let size = usize::from_str_radix(line.split(';').next().unwrap(), 16).unwrap();
                p = eol + 2;
                if size == 0 {
                    break;
                }
                raw.extend_from_slice(&s2c[p..p + size]);
                assert_eq!(&s2c[p + size..p + size + 2], b"\r\n");
                p += size + 2;
            }
            // Trailer fields, then the empty line.
            loop {
                let eol = p + find(&s2c[p..], b"\r\n").unwrap();
                let empty = eol == p;
                p = eol + 2;
                if empty {
                    break;
                }
            }
            sp = p;
            (raw, Framing::Chunked)
        } else if let Some(n) = cl {
            sp = body + n;
            (s2c[body..body + n].to_vec(), Framing::ContentLength)
        } else {
            assert_eq!(field(&fields, "connection"), Some("close"));
            sp = s2c.len();
            (s2c[body..].to_vec(), Framing::Close)
        };
        let gzip = field(&fields, "content-encoding") == Some("gzip");
        let decoded = if gzip {
            let mut d = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut d).expect("gzip");
            d
        } else {
            raw
        };
        let content_type =
            field(&fields, "content-type").map(|v| v.split(';').next().unwrap().to_owned()).unwrap_or_default();
        if content_type == "application/json" {
            assert!(decoded.starts_with(b"{") && decoded.ends_with(b"}"), "JSON body");
        }
        if content_type == "text/event-stream" {
            assert!(decoded.starts_with(b"event: message\n") && decoded.ends_with(b"}\n\n"));
            assert!(find(&decoded, b"data: {\"jsonrpc\":\"2.0\"").is_some());
        }
        out.push(Parsed {
            method,
            path,
            request_body_len: n,
            status,
            response_body_len: decoded.len(),
            framing,
            gzip,
            content_type,
        });
    }
    assert_eq!(sp, s2c.len(), "response bytes left over");
    out
}

fn expected(t: &ExchangeTruth) -> Parsed {
    Parsed {
        method: t.method.to_owned(),
        path: t.path.clone(),
        request_body_len: t.request_body_len,
        status: t.status,
        response_body_len: t.response_body_len,
        framing: t.response_framing,
        gzip: t.gzip,
        content_type: t.response_content_type.to_owned(),
    }
}

/// Every exchange in the truth is found, in order, by parsing the reassembled streams.
fn check_against_truth(cfg: &GenConfig) -> GenSummary {
    let (pcap, summary) = gen(cfg);
    let segs = parse(&pcap, usize::from(cfg.mss));
    assert_eq!(segs.len() as u64, summary.packets);
    let no_gap = cfg.gap_probability == 0.0;
    let conns = reassemble(&segs, no_gap);
    assert_eq!(conns.len() as u64, summary.connections);

    let mut truth: BTreeMap<(SocketAddr, SocketAddr), Vec<&ExchangeTruth>> = BTreeMap::new();
    for t in &summary.truth {
        truth.entry((t.client, t.server)).or_default().push(t);
    }
    assert_eq!(summary.truth.len() as u64, summary.exchanges);
    let mut parsed_total = 0;
    for (key, c) in &conns {
        assert!(c.closed, "connection {key:?} not closed");
        let want = truth.get(key).expect("connection in truth");
        assert!(want.windows(2).all(|w| w[0].index_in_connection + 1 == w[1].index_in_connection));
        if want.iter().all(|t| t.delivered) {
            assert!(c.c2s.complete() && c.s2c.complete(), "hole in a delivered connection");
            let got = parse_http(&c.c2s.data, &c.s2c.data);
            let want: Vec<Parsed> = want.iter().map(|t| expected(t)).collect();
            assert_eq!(got, want, "connection {key:?}");
            parsed_total += got.len();
        }
    }
    if no_gap {
        assert_eq!(parsed_total as u64, summary.exchanges);
        assert_eq!(summary.exchanges_delivered, summary.exchanges);
    }
    summary
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let cfg = GenConfig { target_bytes: 2 << 20, gap_probability: 0.001, ..GenConfig::default() };
    let (a, sa) = gen(&cfg);
    let (b, sb) = gen(&cfg);
    assert!(a == b, "same seed gave different bytes");
    assert_eq!(sa, sb);
    let (c, _) = gen(&GenConfig { seed: 2, ..cfg.clone() });
    assert_ne!(fnv1a(&a), fnv1a(&c));
    // Recording the truth does not change the capture.
    let (d, _) = gen(&GenConfig { record_truth: true, ..cfg });
    assert!(a == d);
}

#[test]
fn clean_capture_matches_truth() {
    for seed in [1, 2, 3] {
        let s = check_against_truth(&small(seed));
        assert!(s.exchanges > 500, "{s:?}");
        assert_eq!(s.segments_retransmitted + s.segments_reordered + s.segments_duplicated, 0);
    }
}

#[test]
fn naive_request_line_scan_counts_every_exchange() {
    let (pcap, summary) = gen(&small(9));
    // No impairment: each request line is in the client payloads once, in stream order.
    let segs = parse(&pcap, 1448);
    let mut streams: BTreeMap<(SocketAddr, SocketAddr), Vec<u8>> = BTreeMap::new();
    let servers: std::collections::BTreeSet<SocketAddr> = summary.truth.iter().map(|t| t.server).collect();
    for s in &segs {
        if servers.contains(&s.dst) {
            streams.entry((s.src, s.dst)).or_default().extend_from_slice(&s.payload);
        }
    }
    // A request line ends with " HTTP/1.1\r\n" and follows the previous message directly
    // (bodies have no trailing newline), so count that suffix and check what precedes it.
    let methods = ["GET /", "POST /", "PUT /", "PATCH /", "DELETE /"];
    let mut count = 0u64;
    for data in streams.values() {
        let mut from = 0;
        while let Some(i) = find(&data[from..], b" HTTP/1.1\r\n") {
            let end = from + i;
            let line_start = data[..end].windows(2).rposition(|w| w == b"\r\n").map_or(0, |p| p + 2);
            let line = String::from_utf8_lossy(&data[line_start..end]);
            assert!(methods.iter().any(|m| line.contains(m)), "{line}");
            count += 1;
            from = end + 11;
        }
    }
    assert_eq!(count, summary.exchanges);
}

#[test]
fn impaired_capture_reassembles_to_truth() {
    let cfg = GenConfig {
        seed: 5,
        loss_probability: 0.03,
        reorder_probability: 0.03,
        duplicate_probability: 0.03,
        ..small(5)
    };
    let s = check_against_truth(&cfg);
    assert!(s.segments_retransmitted > 0 && s.segments_reordered > 0 && s.segments_duplicated > 0);
}

#[test]
fn gaps_are_counted_and_leave_holes() {
    let cfg = GenConfig { seed: 6, gap_probability: 0.01, ..small(6) };
    let s = check_against_truth(&cfg);
    assert!(s.segments_gapped > 0);
    assert!(s.exchanges_delivered < s.exchanges);
    assert_eq!(s.truth.iter().filter(|t| t.delivered).count() as u64, s.exchanges_delivered);
}

#[test]
fn the_mix_has_every_feature() {
    let s = check_against_truth(&GenConfig { seed: 11, target_bytes: 6 << 20, ..small(11) });
    let t = &s.truth;
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(t.iter().any(|e| e.method == m), "{m}");
    }
    for st in [200, 201, 204, 301, 304, 400, 404, 500] {
        assert!(t.iter().any(|e| e.status == st), "{st}");
    }
    for f in [Framing::None, Framing::ContentLength, Framing::Chunked, Framing::Close] {
        assert!(t.iter().any(|e| e.response_framing == f), "{f:?}");
    }
    assert!(t.iter().any(|e| e.gzip && e.response_framing == Framing::Chunked));
    assert!(t.iter().any(|e| e.pipelined));
    assert!(t.iter().any(|e| e.path.contains('?')));
    assert!(t.iter().any(|e| e.response_body_len > 100_000));
    assert!(t.iter().any(|e| e.request_body_len > 100_000) || t.iter().any(|e| e.request_body_len > 20_000));
    for m in ["initialize", "notifications/initialized", "tools/list", "tools/call"] {
        assert!(t.iter().any(|e| e.mcp_method == Some(m)), "{m}");
    }
    assert!(t.iter().any(|e| e.response_content_type == "text/event-stream"));
    assert!(t.iter().any(|e| e.client.is_ipv6()));
    // Small bodies dominate.
    let small_bodies = t.iter().filter(|e| e.response_body_len < 1024).count();
    assert!(small_bodies * 2 > t.len());
}

#[test]
fn target_size_is_reached_and_not_overshot_much() {
    for target in [0u64, 10, 100_000, 5 << 20] {
        let (pcap, s) = gen(&GenConfig { target_bytes: target, ..GenConfig::default() });
        assert!(pcap.len() as u64 >= target.max(24));
        // Open connections finish their current exchange: at most a few MB past the target.
        assert!((pcap.len() as u64) < target + (8 << 20), "{} for {target}", pcap.len());
        if target <= 24 {
            assert_eq!(s.packets, 0);
        }
    }
}

#[test]
fn vlan_and_small_mss() {
    let cfg = GenConfig { vlan_fraction: 0.5, mss: 536, ..small(12) };
    check_against_truth(&cfg);
    let (pcap, _) = gen(&cfg);
    let segs = parse(&pcap, 536);
    assert!(segs.iter().any(|s| s.payload.len() == 536));
}

#[test]
fn invalid_configs_are_rejected() {
    for cfg in [
        GenConfig { loss_probability: 1.5, ..GenConfig::default() },
        GenConfig { ipv6_fraction: f64::NAN, ..GenConfig::default() },
        GenConfig { clients: 0, ..GenConfig::default() },
        GenConfig { mss: 10, ..GenConfig::default() },
    ] {
        let err = generate(&cfg, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

/// Pins the exact bytes of one capture. A failure means captures for a given seed are no
/// longer what they were: an intended change to the generator (update the constant and say so
/// in the commit), a flate2 backend change (the workspace uses zlib-rs) that compresses differently, or a platform
/// difference, which would be a bug.
#[test]
fn golden_capture_hash() {
    let cfg = GenConfig { target_bytes: 1 << 20, ..GenConfig::default() };
    let (pcap, s) = gen(&cfg);
    assert_eq!((fnv1a(&pcap), s.bytes_written), (GOLDEN_HASH, GOLDEN_LEN), "{:#x}", fnv1a(&pcap));
}

const GOLDEN_HASH: u64 = 0x34f1_077f_bd45_e998;
const GOLDEN_LEN: u64 = 1_096_007;
