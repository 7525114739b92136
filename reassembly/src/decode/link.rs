//! Link layers and encapsulations in front of IP, peeled by hand.
//!
//! etherparse slices Ethernet II and VLAN, but not MPLS, 802.3 LLC/SNAP, Linux cooked v2, BSD
//! null or NFLOG; each of those is a few fixed-size fields, so one small walker handles all of them
//! uniformly and hands the IP bytes to etherparse.

/// Link-layer header types (the pcap `LINKTYPE_*` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// BSD loopback / null: 4-byte address family in host byte order.
    Null,
    /// Ethernet II, with 802.1Q/QinQ, MPLS, PPPoE and 802.3 LLC/SNAP inside.
    Ethernet,
    /// Raw IPv4 or IPv6 (version from the first nibble).
    Raw,
    /// OpenBSD loopback: 4-byte address family in network byte order.
    Loop,
    /// Linux cooked capture v1 (SLL).
    LinuxSll,
    /// Linux cooked capture v2 (SLL2).
    LinuxSll2,
    /// Linux netfilter NFLOG.
    Nflog,
    /// Cisco HDLC: address, control, then an EtherType.
    CiscoHdlc,
}

impl LinkType {
    /// Maps a pcap link type number. `None` for types the engine cannot decode.
    pub fn from_pcap(linktype: u32) -> Option<LinkType> {
        Some(match linktype {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            12 | 14 | 101 | 228 | 229 => LinkType::Raw,
            108 => LinkType::Loop,
            104 => LinkType::CiscoHdlc,
            113 => LinkType::LinuxSll,
            239 => LinkType::Nflog,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// Where the IP packet starts, or why it could not be found.
pub(crate) enum Network<'a> {
    /// IPv4 or IPv6 bytes (the version nibble decides).
    Ip(&'a [u8]),
    /// Not IP (ARP, LLDP, ...): not an error, not ours.
    Other,
    /// Too short or malformed.
    Malformed,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86DD;
const ETH_VLAN: [u16; 3] = [0x8100, 0x88A8, 0x9100];
const ETH_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETH_PPPOE_SESSION: u16 = 0x8864;
/// Nested VLAN/MPLS/PPPoE layers walked before giving up.
const MAX_LINK_LAYERS: usize = 8;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Finds the network layer of a frame.
pub(crate) fn network(link: LinkType, frame: &[u8]) -> Network<'_> {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::Raw => Network::Ip(frame),
        LinkType::Null | LinkType::Loop => {
            let Some(fam) = frame.get(..4) else { return Network::Malformed };
            // The family is in the capturing host's byte order (Null) or network order (Loop):
            // read it both ways; AF_INET is 2 everywhere, AF_INET6 is 10/24/28/30 by OS.
            let le = u32::from_le_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let be = u32::from_be_bytes([fam[0], fam[1], fam[2], fam[3]]);
            let is_ip = |f: u32| matches!(f, 2 | 10 | 24 | 28 | 30);
            if is_ip(le) || is_ip(be) {
                Network::Ip(&frame[4..])
            } else {
                Network::Other
            }
        }
        LinkType::LinuxSll => match be16(frame, 14) {
            Some(proto) => ether_type(proto, frame.get(16..).unwrap_or_default(), 0),
            None => Network::Malformed,
        },
        LinkType::LinuxSll2 => match be16(frame, 0) {
            Some(proto) if frame.len() >= 20 => ether_type(proto, &frame[20..], 0),
            _ => Network::Malformed,
        },
        LinkType::Nflog => nflog(frame),
        LinkType::CiscoHdlc => match be16(frame, 2) {
            Some(proto) => ether_type(proto, &frame[4..], 0),
            None => Network::Malformed,
        },
    }
}

fn ethernet(frame: &[u8]) -> Network<'_> {
    let Some(t) = be16(frame, 12) else { return Network::Malformed };
    ether_type(t, &frame[14..], 0)
}

fn ether_type(t: u16, rest: &[u8], depth: usize) -> Network<'_> {
    if depth > MAX_LINK_LAYERS {
        return Network::Malformed;
    }
    match t {
        ETH_IPV4 | ETH_IPV6 => Network::Ip(rest),
        t if ETH_VLAN.contains(&t) => match be16(rest, 2) {
            Some(inner) => ether_type(inner, &rest[4..], depth + 1),
            None => Network::Malformed,
        },
        t if ETH_MPLS.contains(&t) => mpls(rest),
        // PPPoE session (RFC 2516): 6-byte header, then the PPP protocol: 0x0021 IPv4, 0x0057
        // IPv6, or their one-byte forms under protocol-field compression (RFC 1661 §6.5).
        ETH_PPPOE_SESSION => match rest.get(6) {
            Some(&b) if b & 1 == 1 => match b {
                0x21 | 0x57 => Network::Ip(&rest[7..]),
                _ => Network::Other,
            },
            Some(_) => match be16(rest, 6) {
                Some(0x0021) | Some(0x0057) => Network::Ip(&rest[8..]),
                Some(_) => Network::Other,
                None => Network::Malformed,
            },
            None => Network::Malformed,
        },
        // IEEE 802.3 length field: LLC, possibly SNAP with an EtherType.
        len if len <= 1500 => match rest.get(..3) {
            Some([0xAA, 0xAA, 0x03]) => match be16(rest, 6) {
                Some(inner) => ether_type(inner, &rest[8..], depth + 1),
                None => Network::Malformed,
            },
            Some(_) => Network::Other,
            None => Network::Malformed,
        },
        _ => Network::Other,
    }
}

/// MPLS label stack (RFC 3032): 4 bytes per label until the bottom-of-stack bit; the payload's
/// first nibble tells IPv4/IPv6. A pseudowire payload starting with an Ethernet header is
/// recognised by a zero control word.
fn mpls(mut rest: &[u8]) -> Network<'_> {
    for _ in 0..MAX_LINK_LAYERS {
        let Some(label) = rest.get(..4) else { return Network::Malformed };
        let bottom = label[2] & 1 == 1;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => Network::Ip(rest),
                Some(0) if rest.len() > 4 => ethernet(&rest[4..]),
                _ => Network::Other,
            };
        }
    }
    Network::Malformed
}

/// NFLOG: 4-byte header then TLVs (length and type in host order, little-endian in practice),
/// padded to 4 bytes; type 9 is the packet payload (an IP packet).
fn nflog(frame: &[u8]) -> Network<'_> {
    let mut at = 4;
    while at + 4 <= frame.len() {
        let len = usize::from(u16::from_le_bytes([frame[at], frame[at + 1]]));
        let typ = u16::from_le_bytes([frame[at + 2], frame[at + 3]]);
        if len < 4 || at + len > frame.len() {
            return Network::Malformed;
        }
        if typ == 9 {
            return Network::Ip(&frame[at + 4..at + len]);
        }
        at += (len + 3) & !3;
    }
    Network::Other
}
