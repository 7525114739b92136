//! Kernel struct offsets for the TLS programs, from the kernel's BTF (`/sys/kernel/btf/vmlinux`).
//!
//! aya has no CO-RE for Rust programs, so the program walking `task → files → fd → socket → sk`
//! reads at offsets user space finds here and passes as a global ([`KernelOffsets`]).
//!
//! Why a small parser of our own: aya-obj parses BTF but keeps type and member lookup
//! crate-private (`type_by_id`, `string_at`); btf-rs (the maintained crate retis uses) is
//! LGPL-2.1, awkward in this Apache-2.0 static binary. Only struct/union member offsets are
//! needed, which is the simplest part of the format: a header, fixed-size type records with
//! kind-dependent trailers, and a string section. Untrusted input (a file) is bounds-checked;
//! every lookup is total.

use akto_tap_ebpf_common::tls::KernelOffsets;

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

/// Why BTF could not be used.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// Reading the file.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not BTF, or truncated.
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    /// A member the programs need is missing (or a bitfield).
    #[error("BTF has no byte offset for {0}")]
    Missing(String),
}

#[derive(Debug, Clone, Copy)]
struct Member {
    name_off: u32,
    type_id: u32,
    /// Bit offset.
    bits: u32,
    /// Bitfield size (0: not a bitfield).
    bitfield: u32,
}

#[derive(Debug, Clone)]
struct Type {
    name_off: u32,
    kind: u32,
    /// Referenced type (typedef, const, …).
    type_id: u32,
    members: Vec<Member>,
}

/// Parsed BTF: types by id (id 0 is `void`) and the string section.
#[derive(Debug)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

impl Btf {
    /// Reads and parses a file.
    pub fn from_file(path: &str) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Io { path: path.into(), source })?;
        Btf::parse(&data)
    }

    /// Parses raw BTF (little-endian, as the running kernel exposes it).
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        let u32_at = |o: usize| data.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let magic = data.get(0..2).map(|b| u16::from_le_bytes([b[0], b[1]]));
        if magic != Some(MAGIC) {
            return Err(BtfError::Malformed("bad magic (not little-endian BTF)"));
        }
        let hdr_len = u32_at(4).ok_or(BtfError::Malformed("short header"))? as usize;
        let field = |o: usize| u32_at(8 + o).map(|v| v as usize).ok_or(BtfError::Malformed("short header"));
        let (type_off, type_len, str_off, str_len) = (field(0)?, field(4)?, field(8)?, field(12)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Malformed("section offset"))?;
            data.get(start..start.checked_add(len).ok_or(BtfError::Malformed("section length"))?)
                .ok_or(BtfError::Malformed("section past the end"))
        };
        let tdata = section(type_off, type_len)?;
        let strings = section(str_off, str_len)?.to_vec();
        let t32 = |o: usize| tdata.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let mut types = vec![Type { name_off: 0, kind: 0, type_id: 0, members: Vec::new() }];
        let mut o = 0;
        while o < tdata.len() {
            let (Some(name_off), Some(info), Some(size_or_type)) = (t32(o), t32(o + 4), t32(o + 8)) else {
                return Err(BtfError::Malformed("truncated type"));
            };
            o += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 == 1;
            let mut members = Vec::new();
            let trailer = match kind {
                1 | 14 | 17 => 4, // INT, VAR, DECL_TAG
                3 => 12,          // ARRAY
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = o + i * 12;
                        let (Some(name_off), Some(type_id), Some(off)) = (t32(m), t32(m + 4), t32(m + 8)) else {
                            return Err(BtfError::Malformed("truncated member"));
                        };
                        let (bits, bitfield) = if kind_flag { (off & 0x00ff_ffff, off >> 24) } else { (off, 0) };
                        members.push(Member { name_off, type_id, bits, bitfield });
                    }
                    vlen * 12
                }
                6 | 13 => vlen * 8,            // ENUM, FUNC_PROTO
                15 | 19 => vlen * 12,          // DATASEC, ENUM64
                2 | 7 | 8..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF…FUNC, FLOAT, TYPE_TAG
                _ => return Err(BtfError::Malformed("unknown type kind")),
            };
            o += trailer;
            types.push(Type { name_off, kind, type_id: size_or_type, members });
        }
        Ok(Btf { types, strings })
    }

    fn name(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or(&[]);
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// Follows typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        for _ in 0..32 {
            let t = self.types.get(id as usize)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => id = t.type_id,
                _ => return Some(t),
            }
        }
        None
    }

    /// The struct named `name` that has members (a definition, not a forward declaration).
    fn find_struct(&self, name: &str) -> Option<&Type> {
        self.types
            .iter()
            .find(|t| t.kind == KIND_STRUCT && !t.members.is_empty() && self.name(t.name_off) == name.as_bytes())
    }

    /// Bit offset and type of member `name` in `t`, looking through anonymous structs/unions.
    fn member(&self, t: &Type, name: &str, depth: u32) -> Option<(u32, u32, u32)> {
        if depth > 8 {
            return None;
        }
        for m in &t.members {
            if m.name_off == 0 {
                let inner = self.resolve(m.type_id)?;
                if matches!(inner.kind, KIND_STRUCT | KIND_UNION) {
                    if let Some((bits, ty, bf)) = self.member(inner, name, depth + 1) {
                        return Some((m.bits + bits, ty, bf));
                    }
                }
            } else if self.name(m.name_off) == name.as_bytes() {
                return Some((m.bits, m.type_id, m.bitfield));
            }
        }
        None
    }

    /// Byte offset of `path` (members, nested structs followed) inside struct `st`; `None`
    /// when missing or not byte-aligned (a bitfield).
    pub fn offset_of(&self, st: &str, path: &[&str]) -> Option<u32> {
        let mut t = self.find_struct(st)?;
        let mut bits = 0;
        for (i, name) in path.iter().enumerate() {
            let (b, ty, bitfield) = self.member(t, name, 0)?;
            bits += b;
            if bitfield != 0 {
                return None;
            }
            if i + 1 < path.len() {
                t = self.resolve(ty)?;
            }
        }
        (bits % 8 == 0).then_some(bits / 8)
    }

    /// The offsets the TLS programs need, or the first one missing.
    pub fn kernel_offsets(&self) -> Result<KernelOffsets, BtfError> {
        let get = |st: &str, path: &[&str]| {
            self.offset_of(st, path).ok_or_else(|| BtfError::Missing(format!("{st}.{}", path.join("."))))
        };
        let skc = |field: &str| get("sock", &["__sk_common", field]);
        Ok(KernelOffsets {
            task_files: get("task_struct", &["files"])?,
            files_fdt: get("files_struct", &["fdt"])?,
            fdt_max_fds: get("fdtable", &["max_fds"])?,
            fdt_fd: get("fdtable", &["fd"])?,
            file_private_data: get("file", &["private_data"])?,
            socket_file: get("socket", &["file"])?,
            socket_sk: get("socket", &["sk"])?,
            sk_protocol: get("sock", &["sk_protocol"])?,
            skc_family: skc("skc_family")?,
            skc_daddr: skc("skc_daddr")?,
            skc_rcv_saddr: skc("skc_rcv_saddr")?,
            skc_dport: skc("skc_dport")?,
            skc_num: skc("skc_num")?,
            skc_v6_daddr: skc("skc_v6_daddr")?,
            skc_v6_rcv_saddr: skc("skc_v6_rcv_saddr")?,
            valid: 1,
        })
    }
}

/// Offsets for this kernel: `valid == 0` (the programs then skip the fd walk and learn sockets
/// from the socket calls alone) when BTF is absent or lacks a member.
pub fn kernel_offsets() -> Result<KernelOffsets, BtfError> {
    Btf::from_file("/sys/kernel/btf/vmlinux")?.kernel_offsets()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds BTF from (name, kind, size_or_type, members) records.
    struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Builder {
        fn new() -> Builder {
            Builder { types: Vec::new(), strings: vec![0] }
        }
        fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            off
        }
        fn int(&mut self, name: &str) {
            let n = self.str(name);
            for v in [n, 1 << 24, 4, 32] {
                self.types.extend_from_slice(&u32::to_le_bytes(v));
            }
        }
        fn typedef(&mut self, name: &str, to: u32) {
            let n = self.str(name);
            for v in [n, KIND_TYPEDEF << 24, to] {
                self.types.extend_from_slice(&u32::to_le_bytes(v));
            }
        }
        /// Members: (name, type id, bit offset, bitfield size).
        fn composite(&mut self, kind: u32, name: &str, members: &[(&str, u32, u32, u32)]) {
            let n = self.str(name);
            let kind_flag = members.iter().any(|m| m.3 != 0) as u32;
            for v in [n, (kind_flag << 31) | (kind << 24) | members.len() as u32, 64] {
                self.types.extend_from_slice(&u32::to_le_bytes(v));
            }
            for &(name, ty, bits, bf) in members {
                let n = self.str(name);
                let off = if kind_flag == 1 { (bf << 24) | bits } else { bits };
                for v in [n, ty, off] {
                    self.types.extend_from_slice(&u32::to_le_bytes(v));
                }
            }
        }
        fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_le_bytes());
            out.extend_from_slice(&[1, 0]);
            for v in [24, 0, self.types.len() as u32, self.types.len() as u32, self.strings.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    #[test]
    fn offsets_through_anonymous_unions_typedefs_and_nesting() {
        let mut b = Builder::new();
        b.int("int"); // 1
                      // 2: anonymous struct { int skc_daddr; int skc_rcv_saddr; }
        b.composite(KIND_STRUCT, "", &[("skc_daddr", 1, 0, 0), ("skc_rcv_saddr", 1, 32, 0)]);
        // 3: anonymous union { long skc_addrpair; struct 2; }
        b.composite(KIND_UNION, "", &[("skc_addrpair", 1, 0, 0), ("", 2, 0, 0)]);
        // 4: struct sock_common { union 3; int skc_family @ 128 bits }
        b.composite(KIND_STRUCT, "sock_common", &[("", 3, 0, 0), ("skc_family", 1, 128, 0)]);
        b.typedef("sock_common_t", 4); // 5
                                       // 6: struct sock { sock_common_t __sk_common; int sk_protocol @ 4096 bits; int bits:3 }
        b.composite(
            KIND_STRUCT,
            "sock",
            &[("__sk_common", 5, 0, 0), ("sk_protocol", 1, 4096, 0), ("flags", 1, 4104, 3)],
        );
        let btf = Btf::parse(&b.build()).unwrap();
        assert_eq!(btf.offset_of("sock", &["__sk_common", "skc_daddr"]), Some(0));
        assert_eq!(btf.offset_of("sock", &["__sk_common", "skc_rcv_saddr"]), Some(4));
        assert_eq!(btf.offset_of("sock", &["__sk_common", "skc_family"]), Some(16));
        assert_eq!(btf.offset_of("sock", &["sk_protocol"]), Some(512));
        assert_eq!(btf.offset_of("sock", &["flags"]), None, "bitfield");
        assert_eq!(btf.offset_of("sock", &["nope"]), None);
        assert_eq!(btf.offset_of("nostruct", &["x"]), None);
        assert!(matches!(btf.kernel_offsets(), Err(BtfError::Missing(_))));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(Btf::parse(b"").is_err());
        assert!(Btf::parse(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
        let mut b = Builder::new();
        b.int("int");
        let full = b.build();
        for cut in 0..full.len() {
            let _ = Btf::parse(&full[..cut]);
        }
    }

    /// The running kernel's BTF has every member the programs use (skipped without BTF).
    #[test]
    fn running_kernel_offsets() {
        let Ok(btf) = Btf::from_file("/sys/kernel/btf/vmlinux") else {
            eprintln!("no /sys/kernel/btf/vmlinux: skipped");
            return;
        };
        let o = btf.kernel_offsets().expect("every member present");
        assert_eq!(o.valid, 1);
        // Stable for years: the address pair opens sock_common, the fd array follows max_fds.
        assert_eq!((o.skc_daddr, o.skc_rcv_saddr), (0, 4));
        assert_eq!((o.skc_dport, o.skc_num), (12, 14));
        assert_eq!(o.fdt_max_fds, 0);
        assert_eq!(o.fdt_fd, 8);
    }
}
