//! Capture-file reader: classic pcap (both byte orders, micro- and nanosecond), pcapng (all
//! byte orders, per-interface link types and `if_tsresol`), optionally gzip-compressed.
//!
//! Hand-written rather than `pcap-file` 2.0, which reads pcapng timestamps as nanoseconds
//! regardless of `if_tsresol` (standard microsecond files come out 1000× too early) and unwraps
//! inside its parsers; its 3.x line is still a release candidate. The formats are small, and a
//! reader that reuses one buffer is also faster. Every length read from the file is checked
//! against [`MAX_BLOCK`] before anything is allocated.

use std::io::{self, BufRead, BufReader, Read};

/// Largest packet record or pcapng block accepted (256 MiB).
const MAX_BLOCK: usize = 256 << 20;

/// A packet read from a file.
#[derive(Debug)]
pub struct Frame<'a> {
    /// Microseconds since the Unix epoch.
    pub ts_us: u64,
    /// pcap `LINKTYPE_*` of the interface.
    pub linktype: u32,
    /// Captured bytes.
    pub data: &'a [u8],
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not a pcap or pcapng file.
    #[error("not a pcap or pcapng file (magic {0:02x?})")]
    UnknownFormat([u8; 4]),
    /// The file ended in the middle of a record.
    #[error("truncated after {packets} packets: {what}")]
    Truncated { packets: u64, what: &'static str },
    /// A length field is impossible.
    #[error("corrupt after {packets} packets: {what}")]
    Corrupt { packets: u64, what: &'static str },
    /// I/O error.
    #[error("{0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Pcap { big_endian: bool, nanos: bool, linktype: u32 },
    PcapNg,
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
}

/// Streaming reader over any buffered byte source: a boxed one for files read through a buffer
/// (and gzip), or a mapped file, whose `fill_buf` and `consume` are then inlined into the loop
/// over its records.
pub struct CaptureReader<R: BufRead = Box<dyn BufRead + Send>> {
    inner: R,
    format: Format,
    big_endian: bool,
    interfaces: Vec<Interface>,
    buf: Vec<u8>,
    packets: u64,
    /// Bytes of the reader's buffer lent out by the previous frame, consumed on the next call.
    lent: usize,
}

impl<R: BufRead> std::fmt::Debug for CaptureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader").field("format", &self.format).field("packets", &self.packets).finish()
    }
}

fn u32_of(b: &[u8], big: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_of(b: &[u8], big: bool) -> u16 {
    let a = [b[0], b[1]];
    if big {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

impl CaptureReader {
    /// Opens a capture from a byte source; gzip is detected by its magic and decompressed.
    pub fn new(source: impl Read + Send + 'static) -> Result<Self, ReadError> {
        Self::with_buffer(source, 1 << 20)
    }

    /// [`CaptureReader::new`] with a read buffer of `capacity` bytes: records that lie wholly in
    /// the buffer are parsed and lent in place, the others are copied out first.
    fn with_buffer(source: impl Read + Send + 'static, capacity: usize) -> Result<Self, ReadError> {
        let mut src: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(capacity, source));
        if is_gzip(src.fill_buf()?) {
            src = Box::new(BufReader::with_capacity(1 << 20, flate2::bufread::MultiGzDecoder::new(src)));
        }
        Self::buffered(src)
    }
}

/// Whether bytes start with gzip's magic number.
pub fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

impl<R: BufRead> CaptureReader<R> {
    /// Opens an uncompressed capture from a source with its own buffer: records that lie
    /// wholly in what `fill_buf` returns are parsed and lent in place (all of them, when that is
    /// a mapped file), the others are copied out first. A gzip file is read as not a capture
    /// ([`is_gzip`]: [`CaptureReader::new`] decompresses).
    pub fn buffered(mut src: R) -> Result<Self, ReadError> {
        let mut magic = [0u8; 4];
        read_exact(&mut src, &mut magic, 0, "file header")?;
        let mut r = CaptureReader {
            inner: src,
            format: Format::PcapNg,
            big_endian: false,
            interfaces: Vec::new(),
            buf: Vec::new(),
            packets: 0,
            lent: 0,
        };
        match magic {
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d] => {
                let big = magic[0] == 0xa1;
                let nanos = matches!(magic, [0x4d, ..] | [.., 0x4d]);
                let mut rest = [0u8; 20];
                read_exact(&mut r.inner, &mut rest, 0, "pcap header")?;
                // Link type is the low 16 bits; the upper bits may carry FCS information.
                let linktype = u32_of(&rest[16..20], big) & 0x0fff_ffff & 0xffff;
                r.big_endian = big;
                r.format = Format::Pcap { big_endian: big, nanos, linktype };
            }
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                // Section header: length, then the byte-order magic.
                let mut lenbom = [0u8; 8];
                read_exact(&mut r.inner, &mut lenbom, 0, "pcapng section header")?;
                r.big_endian = lenbom[4..8] == [0x1a, 0x2b, 0x3c, 0x4d];
                let total = u32_of(&lenbom[..4], r.big_endian) as usize;
                if !(28..=MAX_BLOCK).contains(&total) {
                    return Err(ReadError::Corrupt { packets: 0, what: "section header length" });
                }
                r.skip(total - 12)?;
            }
            other => return Err(ReadError::UnknownFormat(other)),
        }
        Ok(r)
    }

    /// Packets read so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    fn skip(&mut self, n: usize) -> Result<(), ReadError> {
        let copied = io::copy(&mut (&mut self.inner).take(n as u64), &mut io::sink())?;
        if copied as usize != n {
            return Err(ReadError::Truncated { packets: self.packets, what: "block body" });
        }
        Ok(())
    }

    /// The next packet, `Ok(None)` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.lent > 0 {
            self.inner.consume(self.lent);
            self.lent = 0;
        }
        match self.format {
            Format::Pcap { big_endian, nanos, linktype } => self.next_pcap(big_endian, nanos, linktype),
            Format::PcapNg => self.next_pcapng(),
        }
    }

    fn at_eof(&mut self) -> Result<bool, ReadError> {
        Ok(self.inner.fill_buf()?.is_empty())
    }

    fn next_pcap(&mut self, big: bool, nanos: bool, linktype: u32) -> Result<Option<Frame<'_>>, ReadError> {
        if self.at_eof()? {
            return Ok(None);
        }
        // Fast path: the whole record is in the reader's buffer; lend it without copying.
        let avail = self.inner.fill_buf()?;
        if avail.len() >= 16 {
            let incl = u32_of(&avail[8..12], big) as usize;
            if avail.len() >= 16 + incl {
                let secs = u64::from(u32_of(&avail[0..4], big));
                let frac = u64::from(u32_of(&avail[4..8], big));
                self.packets += 1;
                self.lent = 16 + incl;
                let ts_us = secs * 1_000_000 + if nanos { frac / 1000 } else { frac };
                let avail = self.inner.fill_buf()?;
                return Ok(Some(Frame { ts_us, linktype, data: &avail[16..16 + incl] }));
            }
        }
        let mut h = [0u8; 16];
        read_exact(&mut self.inner, &mut h, self.packets, "packet header")?;
        let secs = u64::from(u32_of(&h[0..4], big));
        let frac = u64::from(u32_of(&h[4..8], big));
        let incl = u32_of(&h[8..12], big) as usize;
        if incl > MAX_BLOCK {
            return Err(ReadError::Corrupt { packets: self.packets, what: "packet length" });
        }
        self.buf.resize(incl, 0);
        read_exact(&mut self.inner, &mut self.buf, self.packets, "packet data")?;
        self.packets += 1;
        let ts_us = secs * 1_000_000 + if nanos { frac / 1000 } else { frac };
        Ok(Some(Frame { ts_us, linktype, data: &self.buf }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        loop {
            if self.at_eof()? {
                return Ok(None);
            }
            // Fast path: the whole block is in the reader's buffer; parse it there and lend the
            // packet without copying. A section header changes the byte order: slow path.
            let big = self.big_endian;
            let avail = self.inner.fill_buf()?;
            if avail.len() >= 8 {
                let btype = u32_of(&avail[..4], big);
                let total = u32_of(&avail[4..8], big) as usize;
                if btype != 0x0A0D_0D0A
                    && (12..=MAX_BLOCK).contains(&total)
                    && total.is_multiple_of(4)
                    && avail.len() >= total
                {
                    let body = &avail[8..total - 4];
                    let found = block(btype, body, big, &mut self.interfaces, &mut self.packets)?;
                    self.lent = total;
                    if let Some((ts_us, linktype, range)) = found {
                        let avail = self.inner.fill_buf()?;
                        return Ok(Some(Frame { ts_us, linktype, data: &avail[8 + range.start..8 + range.end] }));
                    }
                    self.inner.consume(total);
                    self.lent = 0;
                    continue;
                }
            }
            let mut h = [0u8; 8];
            read_exact(&mut self.inner, &mut h, self.packets, "block header")?;
            let btype = u32_of(&h[..4], big);
            let total = u32_of(&h[4..8], big) as usize;
            if btype == 0x0A0D_0D0A {
                // A new section: byte order may change; interfaces reset.
                let mut bom = [0u8; 4];
                read_exact(&mut self.inner, &mut bom, self.packets, "section header")?;
                self.big_endian = bom == [0x1a, 0x2b, 0x3c, 0x4d];
                let total = u32_of(&h[4..8], self.big_endian) as usize;
                if !(28..=MAX_BLOCK).contains(&total) {
                    return Err(ReadError::Corrupt { packets: self.packets, what: "section header length" });
                }
                self.interfaces.clear();
                self.skip(total - 12)?;
                continue;
            }
            if !(12..=MAX_BLOCK).contains(&total) || !total.is_multiple_of(4) {
                return Err(ReadError::Corrupt { packets: self.packets, what: "block length" });
            }
            self.buf.resize(total - 8, 0);
            read_exact(&mut self.inner, &mut self.buf, self.packets, "block body")?;
            let body = &self.buf[..total - 12];
            if let Some((ts_us, linktype, range)) = block(btype, body, big, &mut self.interfaces, &mut self.packets)? {
                return Ok(Some(Frame { ts_us, linktype, data: &self.buf[range] }));
            }
        }
    }
}

/// One pcapng block's body (after type and length, before the trailing length): records an
/// interface, or returns a packet's timestamp, link type and where its bytes are in `body`.
fn block(
    btype: u32,
    body: &[u8],
    big: bool,
    interfaces: &mut Vec<Interface>,
    packets: &mut u64,
) -> Result<Option<(u64, u32, std::ops::Range<usize>)>, ReadError> {
    let corrupt = |what| ReadError::Corrupt { packets: *packets, what };
    match btype {
        // Interface description: link type, snaplen, options (if_tsresol = 9).
        1 => {
            if body.len() < 8 {
                return Err(corrupt("interface block"));
            }
            let linktype = u32::from(u16_of(&body[0..2], big));
            let mut units_per_sec = 1_000_000;
            let mut opts = &body[8..];
            while opts.len() >= 4 {
                let code = u16_of(&opts[0..2], big);
                let len = usize::from(u16_of(&opts[2..4], big));
                let padded = (len + 3) & !3;
                if code == 0 || opts.len() < 4 + len {
                    break;
                }
                if code == 9 && len >= 1 {
                    let v = opts[4];
                    let exp = u32::from(v & 0x7f);
                    units_per_sec = if v & 0x80 == 0 { 10u64.checked_pow(exp) } else { 2u64.checked_pow(exp) }
                        .unwrap_or(1_000_000)
                        .max(1);
                }
                opts = &opts[(4 + padded).min(opts.len())..];
            }
            interfaces.push(Interface { linktype, units_per_sec });
            Ok(None)
        }
        // Enhanced packet block (interface: 4 bytes), or the obsolete packet block (interface: 2
        // bytes, then 2 of drop count); then the timestamp and the lengths, the same in both.
        6 | 2 => {
            if body.len() < 20 {
                return Err(corrupt(if btype == 6 { "enhanced packet block" } else { "packet block" }));
            }
            let iface =
                if btype == 6 { u32_of(&body[0..4], big) as usize } else { usize::from(u16_of(&body[0..2], big)) };
            let ts = u64::from(u32_of(&body[4..8], big)) << 32 | u64::from(u32_of(&body[8..12], big));
            let caplen = u32_of(&body[12..16], big) as usize;
            if 20 + caplen > body.len() {
                return Err(corrupt("captured length"));
            }
            let Some(i) = interfaces.get(iface).copied() else {
                return Err(corrupt("unknown interface id"));
            };
            *packets += 1;
            Ok(Some((ts_to_micros(ts, i.units_per_sec), i.linktype, 20..20 + caplen)))
        }
        // Simple packet block: interface 0, no timestamp.
        3 => {
            let Some(i) = interfaces.first().copied() else {
                return Err(corrupt("simple packet without interface"));
            };
            if body.len() < 4 {
                return Err(corrupt("simple packet block"));
            }
            let orig = u32_of(&body[0..4], big) as usize;
            let caplen = orig.min(body.len() - 4);
            *packets += 1;
            Ok(Some((0, i.linktype, 4..4 + caplen)))
        }
        // Statistics, name resolution, custom blocks: nothing for us.
        _ => Ok(None),
    }
}

fn ts_to_micros(ts: u64, units_per_sec: u64) -> u64 {
    if units_per_sec == 1_000_000 {
        ts
    } else {
        (u128::from(ts) * 1_000_000 / u128::from(units_per_sec)) as u64
    }
}

fn read_exact(r: &mut dyn BufRead, buf: &mut [u8], packets: u64, what: &'static str) -> Result<(), ReadError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ReadError::Truncated { packets, what },
        _ => ReadError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap(big: bool, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut f = Vec::new();
        f.extend(w32(0xa1b2_c3d4));
        f.extend(w16(2));
        f.extend(w16(4));
        f.extend(w32(0));
        f.extend(w32(0));
        f.extend(w32(65535));
        f.extend(w32(1));
        for (s, us, d) in packets {
            f.extend(w32(*s));
            f.extend(w32(*us));
            f.extend(w32(d.len() as u32));
            f.extend(w32(d.len() as u32));
            f.extend_from_slice(d);
        }
        f
    }

    type Frames = Vec<(u64, u32, Vec<u8>)>;

    /// Every frame, read with a 1 MiB buffer (records parsed in place) and, checked to give the
    /// same frames or the same error, with a 24-byte one (records copied out first) and from a
    /// mapped file.
    fn all(bytes: Vec<u8>) -> Result<Frames, ReadError> {
        let read = |capacity| -> Result<Frames, ReadError> {
            let mut r = CaptureReader::with_buffer(io::Cursor::new(bytes.clone()), capacity)?;
            let mut out = Vec::new();
            while let Some(f) = r.next_frame()? {
                out.push((f.ts_us, f.linktype, f.data.to_vec()));
            }
            Ok(out)
        };
        let (large, small) = (read(1 << 20), read(24));
        match (&large, &small) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "in place and copied out differ"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "in place and copied out fail differently"),
            _ => panic!("in place {large:?}, copied out {small:?}"),
        }
        // And from a mapped file, where every record lies in what the source lends.
        if !bytes.is_empty() && !is_gzip(&bytes) {
            let mut file = tempfile::tempfile().expect("temporary file");
            io::Write::write_all(&mut file, &bytes).expect("write");
            let source = crate::replay::source::MappedFile::new(&file, indicatif::ProgressBar::hidden()).expect("map");
            let mapped = (|| {
                let mut r = CaptureReader::buffered(source)?;
                let mut out = Vec::new();
                while let Some(f) = r.next_frame()? {
                    out.push((f.ts_us, f.linktype, f.data.to_vec()));
                }
                Ok::<_, ReadError>(out)
            })();
            match (&large, &mapped) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "buffered and mapped differ"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "buffered and mapped fail differently"),
                _ => panic!("buffered {large:?}, mapped {mapped:?}"),
            }
        }
        large
    }

    #[test]
    fn pcap_both_byte_orders() {
        for big in [false, true] {
            let got = all(pcap(big, &[(10, 5, b"abc"), (11, 0, b"")])).expect("reads");
            assert_eq!(got, vec![(10_000_005, 1, b"abc".to_vec()), (11_000_000, 1, vec![])]);
        }
    }

    #[test]
    fn gzip_wrapped_pcap() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&pcap(false, &[(1, 2, b"x")])).ok();
        let got = all(e.finish().unwrap_or_default()).expect("reads");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn truncated_and_garbage_are_errors_not_panics() {
        let mut f = pcap(false, &[(1, 2, b"hello")]);
        f.truncate(f.len() - 2);
        assert!(matches!(all(f), Err(ReadError::Truncated { packets: 0, .. })));
        assert!(matches!(all(b"nope, not a capture".to_vec()), Err(ReadError::UnknownFormat(_))));
        assert!(matches!(all(vec![0xd4]), Err(ReadError::Truncated { .. })));
        let mut huge = pcap(false, &[]);
        huge.extend([0u8; 8]);
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(all(huge), Err(ReadError::Corrupt { .. })));
    }

    fn pcapng_le(tsresol: Option<u8>) -> Vec<u8> {
        let mut f = Vec::new();
        let block = |f: &mut Vec<u8>, t: u32, body: &[u8]| {
            let total = 12 + body.len() as u32;
            f.extend(t.to_le_bytes());
            f.extend(total.to_le_bytes());
            f.extend_from_slice(body);
            f.extend(total.to_le_bytes());
        };
        let mut shb = Vec::new();
        shb.extend(0x1a2b_3c4d_u32.to_le_bytes());
        shb.extend(1u16.to_le_bytes());
        shb.extend(0u16.to_le_bytes());
        shb.extend((-1i64).to_le_bytes());
        block(&mut f, 0x0A0D_0D0A, &shb);
        let mut idb = Vec::new();
        idb.extend(113u16.to_le_bytes());
        idb.extend(0u16.to_le_bytes());
        idb.extend(0u32.to_le_bytes());
        if let Some(r) = tsresol {
            idb.extend(9u16.to_le_bytes());
            idb.extend(1u16.to_le_bytes());
            idb.extend([r, 0, 0, 0]);
            idb.extend([0u8; 4]);
        }
        block(&mut f, 1, &idb);
        let mut epb = Vec::new();
        let ts: u64 = 1_500_000_123;
        epb.extend(0u32.to_le_bytes());
        epb.extend(((ts >> 32) as u32).to_le_bytes());
        epb.extend((ts as u32).to_le_bytes());
        epb.extend(3u32.to_le_bytes());
        epb.extend(3u32.to_le_bytes());
        epb.extend(b"abc\0");
        block(&mut f, 6, &epb);
        f
    }

    #[test]
    fn pcapng_default_microseconds_and_tsresol_nanoseconds() {
        let got = all(pcapng_le(None)).expect("reads");
        assert_eq!(got, vec![(1_500_000_123, 113, b"abc".to_vec())]);
        let got = all(pcapng_le(Some(9))).expect("reads");
        assert_eq!(got[0].0, 1_500_000);
    }
    /// A pcapng block in either byte order.
    fn ng_block(f: &mut Vec<u8>, big: bool, t: u32, body: &[u8]) {
        let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let total = 12 + body.len() as u32;
        f.extend(w32(t));
        f.extend(w32(total));
        f.extend_from_slice(body);
        f.extend(w32(total));
    }

    /// A section (header, one interface of link type `link`) followed by `packets` as enhanced
    /// packet blocks on interface `iface`, with a statistics block between them.
    fn ng_section(f: &mut Vec<u8>, big: bool, link: u16, iface: u32, packets: &[(u64, &[u8])]) {
        let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut shb = Vec::new();
        shb.extend(w32(0x1a2b_3c4d));
        shb.extend(w16(1));
        shb.extend(w16(0));
        shb.extend((-1i64).to_le_bytes());
        ng_block(f, big, 0x0A0D_0D0A, &shb);
        let mut idb = Vec::new();
        idb.extend(w16(link));
        idb.extend(w16(0));
        idb.extend(w32(0));
        ng_block(f, big, 1, &idb);
        for (i, (ts, data)) in packets.iter().enumerate() {
            let mut epb = Vec::new();
            epb.extend(w32(iface));
            epb.extend(w32((ts >> 32) as u32));
            epb.extend(w32(*ts as u32));
            epb.extend(w32(data.len() as u32));
            epb.extend(w32(data.len() as u32));
            epb.extend_from_slice(data);
            epb.resize(epb.len().next_multiple_of(4), 0);
            ng_block(f, big, 6, &epb);
            if i == 0 {
                ng_block(f, big, 5, &[0u8; 12]); // interface statistics: skipped
            }
        }
    }

    #[test]
    fn pcapng_sections_of_both_byte_orders_in_place_and_copied() {
        let big_packet = vec![0x5a; 3000];
        let mut f = Vec::new();
        ng_section(&mut f, false, 1, 0, &[(1, b"first"), (2, &big_packet), (3, b"")]);
        ng_section(&mut f, true, 113, 0, &[(4_000_000, b"big-endian section")]);
        let got = all(f.clone()).expect("reads");
        let want = vec![
            (1, 1, b"first".to_vec()),
            (2, 1, big_packet.clone()),
            (3, 1, vec![]),
            (4_000_000, 113, b"big-endian section".to_vec()),
        ];
        assert_eq!(got, want);

        // A packet on an interface the section does not have, and a captured length past its
        // block: errors after the packets before them, the same in place and copied out.
        let mut bad_iface = Vec::new();
        ng_section(&mut bad_iface, false, 1, 3, &[(1, b"x")]);
        assert!(matches!(all(bad_iface), Err(ReadError::Corrupt { what: "unknown interface id", .. })));
        let mut bad_len = f.clone();
        let first_epb = bad_len.windows(4).position(|w| w == b"firs").expect("packet") - 20;
        bad_len[first_epb + 12..first_epb + 16].copy_from_slice(&999u32.to_le_bytes());
        assert!(matches!(all(bad_len), Err(ReadError::Corrupt { what: "captured length", .. })));
        // The obsolete packet block: a 2-byte interface id and a drop count where the enhanced
        // block has a 4-byte id.
        let mut obsolete = Vec::new();
        ng_section(&mut obsolete, true, 1, 0, &[]);
        let mut pb = vec![0, 0, 0, 7]; // interface 0, 7 drops
        pb.extend(0u32.to_be_bytes());
        pb.extend(9u32.to_be_bytes());
        pb.extend(2u32.to_be_bytes());
        pb.extend(2u32.to_be_bytes());
        pb.extend(b"ok\0\0");
        ng_block(&mut obsolete, true, 2, &pb);
        assert_eq!(all(obsolete).expect("reads"), vec![(9, 1, b"ok".to_vec())]);
        // Cut inside the statistics block after the last packet: all four packets, then the error.
        let mut cut = f;
        cut.truncate(cut.len() - 6);
        let r = all(cut);
        assert!(matches!(r, Err(ReadError::Truncated { packets: 4, .. })), "{r:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1024))]
        /// Hostile files: captures of both formats and byte orders with bytes overwritten
        /// anywhere, junk appended and cut anywhere, and arbitrary bytes behind each magic
        /// number. Reading never panics, ends at an error or at the end, and gives the same
        /// frames or the same error with records parsed in place and copied out (`all`).
        #[test]
        fn hostile_captures_read_the_same_in_place_and_copied(
            kind in 0usize..6,
            edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..8),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cut in proptest::option::of(proptest::prelude::any::<usize>()),
        ) {
            let mut f = Vec::new();
            match kind {
                0 => f = pcap(false, &[(1, 2, b"hello"), (3, 4, &[0x5a; 700]), (5, 6, b"")]),
                1 => f = pcap(true, &[(1, 2, b"x")]),
                2 => ng_section(&mut f, false, 1, 0, &[(1, b"first"), (2, &[7; 900])]),
                3 => {
                    ng_section(&mut f, true, 113, 0, &[(4, b"be")]);
                    ng_section(&mut f, false, 1, 0, &[(5, b"le")]);
                }
                // A magic number, then only the arbitrary tail.
                4 => f.extend(0xa1b2_c3d4_u32.to_le_bytes()),
                _ => f.extend(0x0A0D_0D0A_u32.to_le_bytes()),
            }
            f.extend_from_slice(&tail);
            for (at, b) in edits {
                if !f.is_empty() {
                    let i = at % f.len();
                    f[i] = b;
                }
            }
            if let Some(c) = cut {
                f.truncate(c % (f.len() + 1));
            }
            let _ = all(f);
        }
    }
}
