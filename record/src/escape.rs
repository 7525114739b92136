//! JSON string literals, byte for byte as serde_json writes them, for escape-dense text.
//!
//! The record embeds JSON bodies and header maps *as JSON strings*, so the text to escape has a
//! `"` every ~8 bytes (measured on the synthetic capture). General-purpose escapers (serde_json's
//! byte loop, sonic-rs's SIMD loop) stop and re-scan after every escape. Here a 16-byte block is
//! classified once; on x86-64 with SSSE3 a block whose escapes are all `"` or `\\` is then
//! written with two byte shuffles from a table (no loop over its escapes), and any other block
//! walks its escape mask. With AVX-512 VBMI2 (and BMI2), a 32-byte block whose escapes all have
//! a two-byte form is written with one `vpexpandb`: the block's bytes are spread over the output
//! positions a `pdep`/`pext` pair computes from the escape mask, backslashes fill the gaps.
//! Written by hand because the libraries measured 2-3x slower on this text (README, replay
//! section). The `unsafe` is the calls into `#[target_feature]` functions, each after the
//! feature is known to be there, and the AVX-512 kernel's masked load and store (bounds
//! checked by slicing first).

/// What follows the backslash for each byte that needs escaping; 0 = copied as is.
/// serde_json's choices: the short forms for `\b \t \n \f \r`, `\u00xx` (lowercase hex) for the
/// other control characters, and nothing else escaped (DEL, `/` and non-ASCII pass through).
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

use std::mem::MaybeUninit;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bytes classified per step.
const BLOCK: usize = 16;

/// Bit `j` set when byte `j` of the block needs an escape: SSE2 compares and one `movemask`.
/// (A plain loop over the block is not vectorized into this by LLVM: it measured 3x slower.)
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn escape_mask(block: &[u8; BLOCK]) -> u32 {
    // SAFETY: the intrinsics only need SSE2, which this build enables for every function
    // (the cfg above; it is part of the x86-64 baseline). They take no pointers.
    #[allow(unsafe_code)]
    unsafe {
        sse2_mask(block)
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn sse2_mask(block: &[u8; BLOCK]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    let [lo, hi] = [&block[..8], &block[8..]].map(|h| i64::from_le_bytes(h.try_into().unwrap_or_default()));
    let v = _mm_set_epi64x(hi, lo);
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    // Unsigned `v <= 0x1f`: max(v, 0x1f) == 0x1f.
    let control = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
    _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
}

/// The portable form (wasm, other targets).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn escape_mask(block: &[u8; BLOCK]) -> u32 {
    block.iter().enumerate().fold(0u32, |m, (j, &b)| m | (u32::from(ESCAPE[b as usize] != 0) << j))
}

/// Appends `s` to `out` as a JSON string literal (with its quotes), exactly as
/// `serde_json::to_writer(out, s)` does.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    push_with(out, s, Kernel::detect());
}

/// Whether `s` needs no JSON escape (no control byte, `"` or `\\`), eight bytes a step with
/// word arithmetic: header names and values are mostly under 32 bytes, where a vectorized loop
/// spends its time in the scalar tail (~4 instructions a byte).
#[inline]
pub(crate) fn plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Some byte of `w` under `n` (n <= 0x80), exact as a yes/no (the classic `hasless`).
    let under = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let flags =
        |w: u64| under(w, 0x20) | under(w ^ (ONES * u64::from(b'"')), 1) | under(w ^ (ONES * u64::from(b'\\')), 1);
    if s.len() >= BLOCK {
        // Long values (user agents, cookies, tokens): a block at a time with the escaper's
        // vector mask, the last block overlapping the one before (about a third of the word
        // loop's instructions on values of 30 to 200 bytes).
        let mut blocks = s.chunks_exact(BLOCK);
        let any = blocks.by_ref().fold(0, |acc, b| acc | escape_mask(b.try_into().unwrap_or(&[b' '; BLOCK])));
        let last: &[u8; BLOCK] = s[s.len() - BLOCK..].try_into().unwrap_or(&[b' '; BLOCK]);
        return any | escape_mask(last) == 0;
    }
    let mut chunks = s.chunks_exact(8);
    let mut any = chunks.by_ref().fold(0, |acc, c| acc | flags(u64::from_le_bytes(c.try_into().unwrap_or([b' '; 8]))));
    // The last bytes as one word from overlapping loads, not a copy into a padded buffer (a
    // `memcpy` of 1..7 bytes and a load of the word stalled on store forwarding): bytes seen
    // twice are harmless to a yes/no, and spaces fill what a short string lacks.
    let le32 = |b: &[u8]| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let le16 = |b: &[u8]| u64::from(u16::from_le_bytes([b[0], b[1]]));
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let n = s.len();
    let tail = match chunks.remainder().len() {
        0 => SPACES,
        _ if n >= 8 => u64::from_le_bytes(s[n - 8..].try_into().unwrap_or([b' '; 8])),
        4.. => le32(s) | le32(&s[n - 4..]) << 32,
        2.. => le16(s) | le16(&s[n - 2..]) << 16 | SPACES << 32,
        _ => u64::from(s[0]) | SPACES << 8,
    };
    any |= flags(tail);
    any == 0
}

/// Which block loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    /// SSSE3 and POPCNT (x86-64-v2, every x86-64 CPU since about 2009).
    Ssse3,
    #[cfg(target_arch = "x86_64")]
    /// AVX-512 F/BW/VL/VBMI/VBMI2, BMI2 and POPCNT (Intel Ice Lake and later, AMD Zen 4 and
    /// later: CPUs whose `pdep`/`pext` are fast).
    Avx512,
}

impl Kernel {
    /// The fastest one this CPU has, probed once (the AVX-512 probe is seven feature checks;
    /// a record escapes ~30 strings).
    #[inline(always)]
    fn detect() -> Kernel {
        static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(Kernel::probe)
    }

    fn probe() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512::available() {
                return Kernel::Avx512;
            }
            if std::is_x86_feature_detected!("ssse3") && std::is_x86_feature_detected!("popcnt") {
                return Kernel::Ssse3;
            }
        }
        Kernel::Portable
    }
}

/// Appends `s` escaped as the inside of a JSON string literal (without its quotes).
pub(crate) fn push_json_str_contents(out: &mut Vec<u8>, s: &str) {
    push_contents(out, s, Kernel::detect());
}

#[inline(always)]
fn push_with(out: &mut Vec<u8>, s: &str, kernel: Kernel) {
    // Room for the common case, a string without escapes, and its quotes.
    out.reserve(s.len() + 2);
    out.push(b'"');
    push_contents(out, s, kernel);
    out.push(b'"');
}

#[inline(always)]
fn push_contents(out: &mut Vec<u8>, s: &str, kernel: Kernel) {
    let s = s.as_bytes();
    // Most calls are header names and values that need no escape: one check (a word at a time
    // for short strings; over 32-byte chunks without an early exit inside a chunk, which LLVM
    // vectorizes, for long ones: a body stops at its first chunk) and one copy, without the
    // escaper's set-up.
    let clean = if s.len() < 4 * BLOCK {
        plain(s)
    } else {
        s.chunks(2 * BLOCK).all(|chunk| chunk.iter().fold(true, |ok, &b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\')))
    };
    if clean {
        out.extend_from_slice(s);
        return;
    }
    let mut read = 0;
    while read < s.len() {
        // `escape_into` returns early when `\u00xx` escapes have eaten into the room.
        out.reserve(room(s.len() - read));
        let (r, written) = match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx512` is only chosen when the CPU has every feature the
            // function is compiled for (`avx512::available`).
            #[allow(unsafe_code)]
            Kernel::Avx512 => unsafe { avx512::escape_into(out.spare_capacity_mut(), s, read) },
            _ => escape_into(out.spare_capacity_mut(), s, read, kernel),
        };
        // SAFETY: `escape_into` initialized the first `written` bytes of the spare capacity
        // (it only writes through `write`/`write_copy_of_slice`, or for AVX-512 one vector
        // store per block, at offsets it then counts).
        // Written by hand rather than with a library: see the module comment.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(out.len() + written);
        }
        read = r;
    }
}

/// Output room checked before each step of escaping `n` more bytes: two bytes per byte (every
/// escape but `\u00xx`) plus what one step can take beyond that: a 32-byte AVX-512 step of
/// `\u00xx` escapes is 192 bytes out, 128 over two a byte (a 16-byte step, 64; the slack of a
/// whole-block store, at most 64). A fresh reservation always passes the check.
#[inline(always)]
fn room(n: usize) -> usize {
    2 * n + 8 * BLOCK
}

/// Escapes `s[from..]` into `dst` while `dst` keeps [`room`] for what is left; returns the
/// bytes of `s` consumed and the bytes of `dst` initialized.
#[inline(always)]
fn escape_into(dst: &mut [MaybeUninit<u8>], s: &[u8], from: usize, kernel: Kernel) -> (usize, usize) {
    // Whole blocks while a block-sized copy from any of their bytes stays inside `s`.
    let direct = from + s.len().saturating_sub(from + BLOCK) / BLOCK * BLOCK;
    let (i, o) = escape_blocks(dst, 0, s, from, direct, s.len(), kernel);
    if i < direct {
        return (i, o);
    }
    // The last 16..=31 bytes, or a short string: the same loop over a padded copy.
    let (tail, len) = padded(&s[i..]);
    let (t, o) = escape_blocks(dst, o, &tail, 0, len, len, kernel);
    (i + t, o)
}

/// Escapes the blocks of `data[from..end]` into `dst[o..]` (the last one may be short); `data`
/// holds a block past `end` rounded up to whole blocks. `total` is where the string ends, for
/// the room check. Returns where it stopped in `data` and in `dst`.
#[inline(always)]
fn escape_blocks(
    dst: &mut [MaybeUninit<u8>],
    o: usize,
    data: &[u8],
    from: usize,
    end: usize,
    total: usize,
    kernel: Kernel,
) -> (usize, usize) {
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Ssse3 {
        // SAFETY: `Kernel::Ssse3` is only chosen when the CPU has SSSE3 and POPCNT, all the
        // function needs.
        #[allow(unsafe_code)]
        return unsafe { x86::escape_blocks(dst, o, data, from, end, total) };
    }
    // Elsewhere there is one kernel.
    #[cfg(not(target_arch = "x86_64"))]
    let Kernel::Portable = kernel;
    escape_blocks_portable(dst, o, data, from, end, total)
}

#[inline(always)]
fn escape_blocks_portable(
    dst: &mut [MaybeUninit<u8>],
    mut o: usize,
    data: &[u8],
    from: usize,
    end: usize,
    total: usize,
) -> (usize, usize) {
    let mut i = from;
    while i < end {
        if dst.len() - o < room(total - i) {
            return (i, o);
        }
        let Some(block) = data[i..].first_chunk::<BLOCK>() else {
            break;
        };
        let take = BLOCK.min(end - i);
        o = escape_block(dst, o, &data[i..], take, escape_mask(block) & (u32::MAX >> (32 - take)));
        i += take;
    }
    (i, o)
}

/// Writes the first `take` bytes of `data` (a block and a block past it are readable) to
/// `dst[o..]`, escaping the bytes whose bit is set in `mask`; returns the new end in `dst`.
#[inline(always)]
fn escape_block(dst: &mut [MaybeUninit<u8>], mut o: usize, data: &[u8], take: usize, mut mask: u32) -> usize {
    let mut done = 0;
    while mask != 0 {
        let k = mask.trailing_zeros() as usize;
        // The run before the escape, as a whole-block copy that the next write overlaps.
        store(dst, o, &data[done..]);
        o += k - done;
        o += write_escape(dst, o, data[k]);
        done = k + 1;
        mask &= mask - 1;
    }
    store(dst, o, &data[done..]);
    o + take - done
}

/// The SSSE3 block loop: blocks with only `"` and `\\` escapes (or none) take no branch per
/// escape.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{escape_block, room, MaybeUninit, BLOCK};
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x, _mm_shuffle_epi8, _mm_unpackhi_epi64, _mm_unpacklo_epi64,
    };

    /// For each mask of 8 bytes, the `pshufb` pattern that writes those bytes with lane 8 (a
    /// backslash) before each byte whose bit is set: 8 to 16 bytes out.
    const EXPAND: [[i64; 2]; 256] = {
        let mut table = [[0i64; 2]; 256];
        let mut m = 0;
        while m < 256 {
            // 0x80 lanes write zero (never kept: the output is cut to its length).
            let mut lanes = [0x80u8; 16];
            let (mut o, mut j) = (0, 0);
            while j < 8 {
                if m & (1 << j) != 0 {
                    lanes[o] = 8;
                    o += 1;
                }
                lanes[o] = j as u8;
                o += 1;
                j += 1;
            }
            let (mut lo, mut hi, mut b) = (0u64, 0u64, 0);
            while b < 8 {
                lo |= (lanes[b] as u64) << (8 * b);
                hi |= (lanes[b + 8] as u64) << (8 * b);
                b += 1;
            }
            table[m] = [lo as i64, hi as i64];
            m += 1;
        }
        table
    };

    #[inline]
    #[target_feature(enable = "ssse3")]
    fn load(bytes: &[u8; BLOCK]) -> __m128i {
        let [lo, hi] = [&bytes[..8], &bytes[8..]].map(|h| i64::from_le_bytes(h.try_into().unwrap_or_default()));
        _mm_set_epi64x(hi, lo)
    }

    #[inline]
    #[target_feature(enable = "ssse3")]
    fn store(dst: &mut [MaybeUninit<u8>], o: usize, v: __m128i) {
        let lo = _mm_cvtsi128_si64(v).to_le_bytes();
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)).to_le_bytes();
        dst[o..o + 8].write_copy_of_slice(&lo);
        dst[o + 8..o + 16].write_copy_of_slice(&hi);
    }

    /// As [`super::escape_blocks_portable`].
    #[target_feature(enable = "ssse3,popcnt")]
    pub(super) fn escape_blocks(
        dst: &mut [MaybeUninit<u8>],
        mut o: usize,
        data: &[u8],
        from: usize,
        end: usize,
        total: usize,
    ) -> (usize, usize) {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let x1f = _mm_set1_epi8(0x1f);
        let mut i = from;
        while i < end {
            if dst.len() - o < room(total - i) {
                return (i, o);
            }
            let Some(block) = data[i..].first_chunk::<BLOCK>() else {
                break;
            };
            let take = BLOCK.min(end - i);
            let keep = u32::MAX >> (32 - take);
            let v = load(block);
            let quoted = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
            // Unsigned `v <= 0x1f`: max(v, 0x1f) == 0x1f.
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, x1f), x1f);
            let q = _mm_movemask_epi8(quoted) as u32 & keep;
            let c = _mm_movemask_epi8(control) as u32 & keep;
            if c != 0 {
                o = escape_block(dst, o, &data[i..], take, q | c);
            } else if q == 0 {
                store(dst, o, v);
                o += take;
            } else {
                // Each half with backslashes in lanes 8..16, shuffled into place.
                let [lo, hi] = EXPAND[(q & 0xff) as usize];
                store(dst, o, _mm_shuffle_epi8(_mm_unpacklo_epi64(v, backslash), _mm_set_epi64x(hi, lo)));
                o += take.min(8) + (q & 0xff).count_ones() as usize;
                if take > 8 {
                    let [lo, hi] = EXPAND[(q >> 8) as usize];
                    store(dst, o, _mm_shuffle_epi8(_mm_unpackhi_epi64(v, backslash), _mm_set_epi64x(hi, lo)));
                    o += take - 8 + (q >> 8).count_ones() as usize;
                }
            }
            i += take;
        }
        (i, o)
    }
}

/// The AVX-512 block loop: 32 bytes per step, one `vpexpandb` for every block without a
/// `\u00xx` escape (no branch per escape, no table lookup per half block as in [`x86`]).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{room, write_escape, MaybeUninit, ESCAPE};
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8_mask, _mm256_cmple_epu8_mask, _mm256_mask_blend_epi8, _mm256_maskz_loadu_epi8,
        _mm256_permutexvar_epi8, _mm256_set1_epi8, _mm256_setr_epi8, _mm256_test_epi8_mask, _mm512_mask_expand_epi8,
        _mm512_set1_epi8, _mm512_storeu_si512, _mm512_zextsi256_si512, _pdep_u64, _pext_u64,
    };

    /// Bytes classified per step; the output of a step is at most twice that, one zmm.
    const STEP: usize = 32;

    pub(super) fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vbmi")
            && std::is_x86_feature_detected!("avx512vbmi2")
            && std::is_x86_feature_detected!("bmi2")
            && std::is_x86_feature_detected!("popcnt")
    }

    /// As [`super::escape_into`]: escapes `s[from..]` into `dst` while `dst` keeps
    /// [`room`] for what is left; returns the bytes of `s` consumed and of `dst` initialized.
    /// The last block is read with a masked load, so no padded copy of the tail is needed.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vbmi2,bmi2,popcnt")]
    pub(super) fn escape_into(dst: &mut [MaybeUninit<u8>], s: &[u8], from: usize) -> (usize, usize) {
        let quote = _mm256_set1_epi8(b'"' as i8);
        let backslash = _mm256_set1_epi8(b'\\' as i8);
        let x1f = _mm256_set1_epi8(0x1f);
        let fill = _mm512_set1_epi8(b'\\' as i8);
        // The letter of the short escapes `\b \t \n \f \r`, indexed by the control byte (only
        // looked up for bytes under 0x20; `vpermb` uses the index's low 5 bits).
        let letters = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, b'b' as i8, b't' as i8, b'n' as i8, 0, b'f' as i8, b'r' as i8, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        );
        // Output slots: byte j of the block becomes bits 2j (its backslash, kept only when it
        // escapes) and 2j+1 (the byte itself, always kept) of `slots`; `pext` then packs the
        // kept slots into the expand mask (1 = a byte of the block, 0 = a backslash).
        const ODD: u64 = 0xaaaa_aaaa_aaaa_aaaa;
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let (mut i, mut o) = (from, 0);
        while i < s.len() {
            if dst.len() - o < room(s.len() - i) {
                return (i, o);
            }
            let take = STEP.min(s.len() - i);
            let live = u32::MAX >> (STEP - take);
            let block = &s[i..i + take];
            // SAFETY: the mask covers exactly `block`'s `take` bytes; masked-off bytes are
            // not read (AVX-512 masked loads suppress faults) and read as zero.
            #[allow(unsafe_code)]
            let v = unsafe { _mm256_maskz_loadu_epi8(live, block.as_ptr().cast()) };
            let control = _mm256_cmple_epu8_mask(v, x1f) & live;
            let short = _mm256_test_epi8_mask(_mm256_permutexvar_epi8(v, letters), _mm256_permutexvar_epi8(v, letters))
                & control;
            let escapes = (_mm256_cmpeq_epi8_mask(v, quote) | _mm256_cmpeq_epi8_mask(v, backslash)) & live | short;
            if control & !short != 0 {
                // A `\u00xx` escape in the block (rare): byte by byte.
                for &b in block {
                    if ESCAPE[usize::from(b)] == 0 {
                        dst[o].write(b);
                        o += 1;
                    } else {
                        o += write_escape(dst, o, b);
                    }
                }
            } else {
                let letters_in = _mm256_mask_blend_epi8(short, v, _mm256_permutexvar_epi8(v, letters));
                let slots = _pdep_u64(u64::from(escapes), EVEN) | ODD;
                let expand = _pext_u64(ODD, slots);
                let out = _mm512_mask_expand_epi8(fill, expand, _mm512_zextsi256_si512(letters_in));
                let at = &mut dst[o..o + 2 * STEP];
                // SAFETY: `at` is 64 writable bytes (`room` keeps at least that much), the
                // size of the unaligned store.
                #[allow(unsafe_code)]
                unsafe {
                    _mm512_storeu_si512(at.as_mut_ptr().cast(), out)
                };
                o += take + escapes.count_ones() as usize;
            }
            i += take;
        }
        (i, o)
    }
}

/// Buffer for the end of a string: up to two blocks of text and a block of padding.
type Tail = [u8; 3 * BLOCK];

/// Copies `rest` (under two blocks) into a space-padded buffer with fixed-size, overlapping
/// copies (no `memcpy` call per string: most strings are short header names and values).
#[inline(always)]
fn padded(rest: &[u8]) -> (Tail, usize) {
    let mut buf: Tail = [b' '; 3 * BLOCK];
    let n = rest.len().min(2 * BLOCK);
    fn two<const W: usize>(buf: &mut Tail, rest: &[u8], n: usize) {
        if let (Some(head), Some(last)) = (rest.first_chunk::<W>(), rest[..n].last_chunk::<W>()) {
            buf[..W].copy_from_slice(head);
            buf[n - W..n].copy_from_slice(last);
        }
    }
    match n {
        BLOCK.. => two::<BLOCK>(&mut buf, rest, n),
        8.. => two::<8>(&mut buf, rest, n),
        4.. => two::<4>(&mut buf, rest, n),
        2.. => two::<2>(&mut buf, rest, n),
        1 => buf[0] = rest[0],
        _ => {}
    }
    (buf, n)
}

/// Copies the first block of `src` to `dst[o..]`.
#[inline(always)]
fn store(dst: &mut [MaybeUninit<u8>], o: usize, src: &[u8]) {
    if let Some(block) = src.first_chunk::<BLOCK>() {
        dst[o..o + BLOCK].write_copy_of_slice(block);
    }
}

/// Writes the escape of `b` at `dst[o..]`; returns its length.
#[inline(always)]
fn write_escape(dst: &mut [MaybeUninit<u8>], o: usize, b: u8) -> usize {
    match ESCAPE[b as usize] {
        b'u' => {
            let hex = [b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]];
            dst[o..o + 6].write_copy_of_slice(&hex);
            6
        }
        e => {
            dst[o..o + 2].write_copy_of_slice(&[b'\\', e]);
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap_or_default()
    }

    /// Every block loop this CPU can run (the portable one always).
    fn kernels() -> Vec<Kernel> {
        let mut all = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("ssse3") && std::is_x86_feature_detected!("popcnt") {
                all.push(Kernel::Ssse3);
            }
            if avx512::available() {
                all.push(Kernel::Avx512);
            }
        }
        all
    }

    /// `push_json_str` with each kernel; asserts they agree and returns the bytes.
    fn escaped(prefix: &[u8], text: &str) -> Vec<u8> {
        let runs: Vec<Vec<u8>> = kernels()
            .into_iter()
            .map(|k| {
                let mut out = prefix.to_vec();
                push_with(&mut out, text, k);
                out
            })
            .collect();
        assert!(runs.windows(2).all(|w| w[0] == w[1]), "kernels disagree on {text:?}");
        runs.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn every_single_byte_and_every_length_around_a_block() {
        for c in 0u8..0x80 {
            let one = (c as char).to_string();
            assert_eq!(escaped(b"", &one), reference(&one), "byte {c:#x}");
            // The byte at every position of strings of 1..=4 blocks (two AVX-512 steps), among
            // escapes and not.
            for len in 1..=4 * BLOCK + 1 {
                for at in [0, len / 2, len - 1] {
                    for fill in ['a', '"', '\u{1}'] {
                        let mut text: Vec<char> = vec![fill; len];
                        text[at] = c as char;
                        let text: String = text.into_iter().collect();
                        let out = escaped(b"xyz", &text);
                        assert_eq!(&out[..3], b"xyz");
                        assert_eq!(out[3..], reference(&text), "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn worst_cases_grow_the_room() {
        for len in [0, 1, 15, 16, 17, 100, 4096] {
            for fill in ["\u{0}", "\"", "\\", "é", "\u{2028}", "😀", "\u{1f}a"] {
                let text = fill.repeat(len);
                assert_eq!(escaped(b"", &text), reference(&text), "{fill:?} x {len}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn same_bytes_as_serde_json(
            text in proptest::prop_oneof![
                "[\"\\\\\\x00-\\x1f a-z{}:,é\u{2028}😀\u{7f}]{0,200}",
                ".{0,100}",
                "([a-z]{0,20}\"){0,40}",
            ],
            prefix in "[a-z]{0,5}",
        ) {
            let out = escaped(prefix.as_bytes(), &text);
            proptest::prop_assert_eq!(&out[..prefix.len()], prefix.as_bytes());
            proptest::prop_assert_eq!(out[prefix.len()..].to_vec(), reference(&text));
        }
    }
}
