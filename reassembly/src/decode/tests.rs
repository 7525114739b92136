use super::*;
use etherparse::PacketBuilder;

const TCP_PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

fn ipv4_tcp() -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(1234, 80, 7, 100).ack(9).write(&mut v, TCP_PAYLOAD).ok();
    v
}

fn ipv6_tcp() -> Vec<u8> {
    let mut v = Vec::new();
    let a = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let b = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    PacketBuilder::ipv6(a, b, 64).tcp(1234, 80, 7, 100).write(&mut v, TCP_PAYLOAD).ok();
    v
}

fn eth(ethertype: u16, tags: &[u8], ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    if tags.is_empty() {
        f.extend(ethertype.to_be_bytes());
    }
    f.extend_from_slice(tags);
    if !tags.is_empty() {
        f.extend(ethertype.to_be_bytes());
    }
    f.extend_from_slice(ip);
    f
}

fn decode_one(link: LinkType, frame: &[u8]) -> Result<Packet<'_>, DecodeError> {
    let mut d = Decoder::new(DefragConfig::default());
    let mut s = Stats::default();
    d.decode(Timestamp(0), link, frame, &mut s)
}

fn assert_tcp(r: Result<Packet<'_>, DecodeError>, vni: u32) {
    let p = r.expect("decodes");
    assert_eq!((p.src_port, p.dst_port, p.seq, p.vni), (1234, 80, 7, vni));
    assert_eq!(&*p.payload, TCP_PAYLOAD);
}

#[test]
fn link_layers() {
    let ip = ipv4_tcp();
    assert_tcp(decode_one(LinkType::Ethernet, &eth(0x0800, &[], &ip)), 0);
    assert_tcp(decode_one(LinkType::Raw, &ip), 0);
    assert_tcp(decode_one(LinkType::Raw, &ipv6_tcp()), 0);
    // 802.1Q and QinQ (VLAN id 0 included).
    let q = [0x00, 0x00];
    let mut tags = Vec::new();
    tags.extend(q);
    assert_tcp(decode_one(LinkType::Ethernet, &[&[0u8; 12][..], &[0x81, 0x00], &q, &[0x08, 0x00], &ip].concat()), 0);
    assert_tcp(
        decode_one(
            LinkType::Ethernet,
            &[&[0u8; 12][..], &[0x88, 0xa8, 0, 5, 0x81, 0x00, 0, 7, 0x08, 0x00], &ip].concat(),
        ),
        0,
    );
    // MPLS two labels then IPv4.
    assert_tcp(
        decode_one(LinkType::Ethernet, &[&[0u8; 12][..], &[0x88, 0x47, 0, 1, 0, 64, 0, 2, 1, 64], &ip].concat()),
        0,
    );
    // 802.3 LLC/SNAP.
    let len = (8 + ip.len()) as u16;
    assert_tcp(
        decode_one(
            LinkType::Ethernet,
            &[&[0u8; 12][..], &len.to_be_bytes(), &[0xaa, 0xaa, 3, 0, 0, 0, 8, 0], &ip].concat(),
        ),
        0,
    );
    // Linux cooked v1 and v2, BSD null in both byte orders, OpenBSD loop.
    let mut sll = vec![0u8; 14];
    sll.extend([0x08, 0x00]);
    assert_tcp(decode_one(LinkType::LinuxSll, &[&sll[..], &ip].concat()), 0);
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend([0u8; 18]);
    assert_tcp(decode_one(LinkType::LinuxSll2, &[&sll2[..], &ip].concat()), 0);
    assert_tcp(decode_one(LinkType::Null, &[&2u32.to_le_bytes()[..], &ip].concat()), 0);
    assert_tcp(decode_one(LinkType::Null, &[&2u32.to_be_bytes()[..], &ip].concat()), 0);
    assert_tcp(decode_one(LinkType::Loop, &[&24u32.to_be_bytes()[..], &ipv6_tcp()].concat()), 0);
    // NFLOG with a prefix TLV before the payload TLV.
    let mut nf = vec![2, 0, 0, 0];
    nf.extend(8u16.to_le_bytes());
    nf.extend(10u16.to_le_bytes());
    nf.extend(b"abcd");
    nf.extend(((4 + ip.len()) as u16).to_le_bytes());
    nf.extend(9u16.to_le_bytes());
    nf.extend(&ip);
    assert_tcp(decode_one(LinkType::Nflog, &nf), 0);
}

#[test]
fn vxlan_gre_and_ip_in_ip() {
    let inner = eth(0x0800, &[], &ipv4_tcp());
    let mut vx = vec![0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0];
    vx.extend(&inner);
    let mut outer = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(5555, VXLAN_PORT).write(&mut outer, &vx).ok();
    assert_tcp(decode_one(LinkType::Raw, &outer), 0x123456);

    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend(ipv4_tcp());
    let mut outer = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(5555, 4754).write(&mut outer, &gre).ok();
    assert_tcp(decode_one(LinkType::Raw, &outer), 0);

    // IPv6 in IPv4 (protocol 41): build the outer header by hand.
    let v6 = ipv6_tcp();
    let mut h =
        etherparse::Ipv4Header::new(v6.len() as u16, 64, IpNumber::IPV6, [1, 1, 1, 1], [2, 2, 2, 2]).expect("header");
    h.header_checksum = h.calc_header_checksum();
    let mut outer = Vec::new();
    h.write(&mut outer).ok();
    outer.extend(&v6);
    assert_tcp(decode_one(LinkType::Raw, &outer), 0);
}

#[test]
fn ipv4_fragments_reassemble() {
    let whole = ipv4_tcp();
    let ihl = 20;
    let payload = &whole[ihl..];
    let (a, b) = payload.split_at(16);
    let frag = |off: u16, more: bool, data: &[u8]| {
        let mut h = etherparse::Ipv4Header::new(data.len() as u16, 64, IpNumber::TCP, [10, 0, 0, 1], [10, 0, 0, 2])
            .expect("header");
        h.identification = 99;
        h.more_fragments = more;
        h.fragment_offset = etherparse::IpFragOffset::try_new(off / 8).expect("offset");
        h.header_checksum = h.calc_header_checksum();
        let mut v = Vec::new();
        h.write(&mut v).ok();
        v.extend_from_slice(data);
        v
    };
    let mut d = Decoder::new(DefragConfig::default());
    let mut s = Stats::default();
    let second = frag(16, false, b);
    assert_eq!(d.decode(Timestamp(0), LinkType::Raw, &second, &mut s).err(), Some(DecodeError::FragmentHeld));
    let first = frag(0, true, a);
    let p = d.decode(Timestamp(1), LinkType::Raw, &first, &mut s).expect("reassembled");
    assert_eq!(&*p.payload, TCP_PAYLOAD);
    assert_eq!((s.ip_fragments, s.ip_reassembled), (2, 1));
}

#[test]
fn errors_are_counted_by_cause() {
    let mut d = Decoder::new(DefragConfig::default());
    let mut s = Stats::default();
    let _ = d.decode(Timestamp(0), LinkType::Ethernet, &[0u8; 5], &mut s);
    let _ = d.decode(Timestamp(0), LinkType::Ethernet, &eth(0x0806, &[], &[0u8; 28]), &mut s);
    let _ = d.decode(Timestamp(0), LinkType::Raw, &[0x45, 0, 0], &mut s);
    let mut udp = Vec::new();
    PacketBuilder::ipv4([1, 1, 1, 1], [2, 2, 2, 2], 64).udp(1, 53).write(&mut udp, b"dns").ok();
    let _ = d.decode(Timestamp(0), LinkType::Raw, &udp, &mut s);
    let mut bad_tcp = ipv4_tcp();
    bad_tcp.truncate(25);
    bad_tcp[3] = 25;
    let _ = d.decode(Timestamp(0), LinkType::Raw, &bad_tcp, &mut s);
    assert_eq!((s.drop_link, s.drop_not_tcp, s.drop_ip, s.drop_tcp_header), (1, 2, 1, 1));
}

#[test]
fn snaplen_truncated_packet_keeps_what_was_captured() {
    let mut ip = ipv4_tcp();
    ip.truncate(ip.len() - 4);
    let mut d = Decoder::new(DefragConfig::default());
    let mut s = Stats::default();
    let p = d.decode(Timestamp(0), LinkType::Raw, &ip, &mut s).expect("decodes");
    assert_eq!(&*p.payload, &TCP_PAYLOAD[..TCP_PAYLOAD.len() - 4]);
    assert_eq!(s.truncated_packets, 1);
}

#[test]
fn flow_hash_is_direction_independent_and_spreads_ports() {
    let pkt = |src: [u8; 4], sp: u16, dst: [u8; 4], dp: u16| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64).tcp(sp, dp, 7, 100).write(&mut v, TCP_PAYLOAD).ok();
        v
    };
    let fwd = pkt([10, 0, 0, 1], 40000, [10, 0, 0, 2], 80);
    let rev = pkt([10, 0, 0, 2], 80, [10, 0, 0, 1], 40000);
    let other = pkt([10, 0, 0, 1], 40001, [10, 0, 0, 2], 80);
    assert_eq!(flow_hash(LinkType::Raw, &fwd), flow_hash(LinkType::Raw, &rev));
    assert_ne!(flow_hash(LinkType::Raw, &fwd), flow_hash(LinkType::Raw, &other));
    let framed = eth(0x0800, &[], &fwd);
    assert_eq!(flow_hash(LinkType::Ethernet, &framed), flow_hash(LinkType::Raw, &fwd));
    assert_eq!(flow_hash(LinkType::Ethernet, &[0u8; 3]), 0);
}

mod plain_tcp_path {
    use super::*;
    use proptest::prelude::*;

    /// The general path alone (etherparse), for comparison.
    fn general(ip: &[u8]) -> (Result<Packet<'_>, DecodeError>, Stats) {
        let mut d = Decoder::new(DefragConfig::default());
        let mut s = Stats::default();
        (d.ip_general(Timestamp(0), ip, 9, 0, &mut s), s)
    }

    /// A TCP packet from parts, with `patch` applied to its bytes afterwards (offset, value).
    fn build(v6: bool, opts: usize, payload: &[u8], flags: u8, pad: usize, patch: &[(usize, u8)]) -> Vec<u8> {
        let mut v = Vec::new();
        let b = if v6 {
            PacketBuilder::ipv6(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
                64,
            )
            .tcp(40000, 443, 0xfedc_ba98, 65535)
        } else {
            PacketBuilder::ipv4([192, 168, 1, 2], [10, 0, 0, 1], 64).tcp(40000, 443, 0xfedc_ba98, 65535)
        };
        let mut b = b.ack(0x0123_4567);
        if flags & 0x02 != 0 {
            b = b.syn();
        }
        if flags & 0x01 != 0 {
            b = b.fin();
        }
        if flags & 0x04 != 0 {
            b = b.rst();
        }
        if opts > 0 {
            b = b.options_raw(&vec![1u8; opts * 4]).unwrap_or_else(|_| unreachable!("at most 40 bytes"));
        }
        b.write(&mut v, payload).ok();
        v.extend(std::iter::repeat_n(0u8, pad)); // link-layer padding after the IP packet
        let n = v.len().max(1);
        for &(at, val) in patch {
            if let Some(b) = v.get_mut(at % n) {
                *b = val;
            }
        }
        v
    }

    #[test]
    fn takes_the_common_packets() {
        for v6 in [false, true] {
            let ip = build(v6, 0, b"GET / HTTP/1.1\r\n\r\n", 0, 6, &[]);
            let p = plain_tcp(&ip, 9).expect("plain TCP");
            assert_eq!(Ok(p), general(&ip).0);
            assert_eq!(
                &*plain_tcp(&ip, 9).map(|p| p.payload.into_owned()).unwrap_or_default(),
                b"GET / HTTP/1.1\r\n\r\n"
            );
        }
        // What it declines: IPv4 options, fragments, another protocol, a cut packet, IPv6
        // extension headers, a zero IPv6 length.
        let v4 = build(false, 0, b"abc", 0, 0, &[]);
        let mut options = v4.clone();
        options[0] = 0x46;
        let mut more_fragments = v4.clone();
        more_fragments[6] |= 0x20;
        let mut offset = v4.clone();
        offset[7] = 1;
        let mut udp = v4.clone();
        udp[9] = 17;
        let cut = &v4[..v4.len() - 1];
        let v6 = build(true, 0, b"abc", 0, 0, &[]);
        let mut hop_by_hop = v6.clone();
        hop_by_hop[6] = 0;
        let mut jumbo = v6.clone();
        jumbo[4..6].copy_from_slice(&[0, 0]);
        for (what, ip) in [
            ("options", &options[..]),
            ("MF", &more_fragments[..]),
            ("offset", &offset[..]),
            ("UDP", &udp[..]),
            ("cut", cut),
            ("hop-by-hop", &hop_by_hop[..]),
            ("zero length", &jumbo[..]),
        ] {
            assert!(plain_tcp(ip, 0).is_none(), "{what}");
        }
        let mut df = v4.clone();
        df[6] |= 0x40;
        assert!(plain_tcp(&df, 0).is_some(), "DF alone is not a fragment");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

        /// Whatever the direct decoder accepts, the general path decodes to the same packet
        /// without counting anything: valid packets of every shape, with bytes overwritten
        /// anywhere (lengths, offsets, flags, versions) and padding after them.
        #[test]
        fn same_packet_as_the_general_path(
            v6 in any::<bool>(),
            opts in 0usize..=10,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            flags in 0u8..8,
            pad in 0usize..8,
            patch in proptest::collection::vec((0usize..120, any::<u8>()), 0..4),
        ) {
            let ip = build(v6, opts, &payload, flags, pad, &patch);
            if let Some(p) = plain_tcp(&ip, 9) {
                let (g, stats) = general(&ip);
                prop_assert_eq!(Ok(p), g);
                prop_assert_eq!(stats, Stats::default());
            }
        }

        /// Arbitrary bytes: never a panic, and the same agreement.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120), first in prop_oneof![Just(0x45u8), Just(0x60u8), any::<u8>()]) {
            let mut ip = bytes;
            if let Some(b) = ip.first_mut() {
                *b = first;
            }
            if let Some(p) = plain_tcp(&ip, 0) {
                let mut d = Decoder::new(DefragConfig::default());
                let mut s = Stats::default();
                prop_assert_eq!(Ok(p), d.ip_general(Timestamp(0), &ip, 0, 0, &mut s));
            }
        }
    }
}
