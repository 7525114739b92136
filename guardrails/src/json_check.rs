//! Is a body one JSON value? The answer of `serde_json::from_str::<IgnoredAny>(s).is_ok()`
//! (the body format reported for non-MCP bodies), without the deserializer's per-token overhead.
//!
//! `serde_json` ignores a value with an explicit stack (no recursion limit), checks numbers for
//! syntax only (`-`? `0`|`[1-9][0-9]*`, `.` digits+, `[eE][+-]?` digits+), strings for control
//! bytes (< 0x20) and escapes (`\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t` `\uXXXX`, hex digits only,
//! surrogates not checked), allows whitespace `' '`, `\t`, `\n`, `\r` around tokens, and rejects
//! trailing characters. [`is_json`] accepts exactly that language; the test
//! `equals_serde_json` holds the two equal on generated and mutated documents.

const ONES: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// `true` when `s` is exactly one JSON value (surrounded by optional whitespace).
pub(crate) fn is_json(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0usize;
    // Open containers, innermost last: `true` for an object.
    let mut stack: Vec<bool> = Vec::new();
    'value: loop {
        // A value is expected at `i`.
        i = skip_ws(b, i);
        let Some(&c) = b.get(i) else { return false };
        match c {
            b'"' => match string_end(b, i + 1) {
                Some(e) => i = e,
                None => return false,
            },
            b'{' | b'[' => {
                let obj = c == b'{';
                i = skip_ws(b, i + 1);
                let close = if obj { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    i += 1;
                } else {
                    stack.push(obj);
                    if obj {
                        match key(b, i) {
                            Some(e) => i = e,
                            None => return false,
                        }
                    }
                    continue 'value;
                }
            }
            b'-' | b'0'..=b'9' => match number_end(b, i) {
                Some(e) => i = e,
                None => return false,
            },
            b'n' => i = if b.get(i..i + 4) == Some(b"null") { i + 4 } else { return false },
            b't' => i = if b.get(i..i + 4) == Some(b"true") { i + 4 } else { return false },
            b'f' => i = if b.get(i..i + 5) == Some(b"false") { i + 5 } else { return false },
            _ => return false,
        }
        // A value ended: close containers or move to the next element.
        loop {
            let Some(&obj) = stack.last() else {
                return skip_ws(b, i) == b.len();
            };
            i = skip_ws(b, i);
            match b.get(i) {
                Some(b',') => {
                    i += 1;
                    if obj {
                        match key(b, skip_ws(b, i)) {
                            Some(e) => i = e,
                            None => return false,
                        }
                    }
                    continue 'value;
                }
                Some(b'}') if obj => {
                    stack.pop();
                    i += 1;
                }
                Some(b']') if !obj => {
                    stack.pop();
                    i += 1;
                }
                _ => return false,
            }
        }
    }
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// `"key"` then `:` at `i` (whitespace before `i` already skipped): the offset after the colon.
#[inline(always)]
fn key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let e = skip_ws(b, string_end(b, i + 1)?);
    (b.get(e) == Some(&b':')).then_some(e + 1)
}

/// The offset after the closing quote of a string whose body starts at `i`.
#[inline(always)]
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        // Eight bytes at a time to the first quote, backslash or control byte.
        while let Some(chunk) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            let ctrl = x.wrapping_sub(ONES * 0x20) & !x;
            let q = x ^ (ONES * u64::from(b'"'));
            let quote = q.wrapping_sub(ONES) & !q;
            let s = x ^ (ONES * u64::from(b'\\'));
            let slash = s.wrapping_sub(ONES) & !s;
            let m = (ctrl | quote | slash) & HI;
            if m != 0 {
                // The lowest flagged byte is exact (borrows only propagate upwards).
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while let Some(&c) = b.get(i) {
            if c == b'"' || c == b'\\' || c < 0x20 {
                break;
            }
            i += 1;
        }
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let h = b.get(i + 2..i + 6)?;
                    if !h.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// The offset after a number starting at `i` (`-` or a digit).
#[inline]
fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i)? {
        b'0' => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        let e = digits(b, i + 1);
        if e == i + 1 {
            return None;
        }
        i = e;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let e = digits(b, i);
        if e == i {
            return None;
        }
        i = e;
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::is_json;

    fn serde_ok(s: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok()
    }

    /// Equal to `serde_json` on hand-picked edge cases, generated documents and every one-byte
    /// deletion, insertion and replacement of them.
    #[test]
    fn equals_serde_json() {
        let cases = [
            "",
            " ",
            "0",
            "-0",
            "-",
            "01",
            "1.",
            "1.5",
            "1e",
            "1e+",
            "1E-5",
            "1.5e10",
            "-01",
            "00",
            "1x",
            "1 2",
            "[]",
            "[ ]",
            "[,]",
            "[1,]",
            "[1 ,2]",
            "{}",
            "{ }",
            "{,}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\" : 1 , \"b\":[true,false,null]}",
            "{1:2}",
            "\"\\u00e9\"",
            "\"\\u00g9\"",
            "\"\\u00\"",
            "\"\\x\"",
            "\"\\/\"",
            "\"a\u{1}b\"",
            "\"a\tb\"",
            "\"é\"",
            "nul",
            "nulls",
            "true ",
            " \n\r\ttrue\n",
            "truefalse",
            "[[[[[]]]]]",
            "[[[[]]]",
            "{\"a\":{\"b\":{}}}",
            "\"unterminated",
            "\"a\\\"",
            "[\"a\\\\\"]",
            "[1e5,2E+7,-0.0e-0]",
            "[-]",
            "[-a]",
            "+1",
            ".5",
            "[01]",
            "{\"a\":1}}",
            "[1]]",
            "\u{feff}1",
            "\"12345678\\n\"",
        ];
        let mut docs: Vec<String> = cases.iter().map(|s| s.to_string()).collect();
        let gen = [
            serde_json::json!({"id": 1, "name": "Widget \"deluxe\"\n", "price": {"amount": -12.5e3, "c": "EUR"}, "tags": ["a", "b", []], "ok": true, "n": null}),
            serde_json::json!([{"k": "\u{1}\u{1f}\\/é€😀"}, 0, -0.25, 1e-7, [[{}]], ""]),
        ];
        for g in &gen {
            docs.push(g.to_string());
            docs.push(serde_json::to_string_pretty(g).expect("json"));
        }
        let bases = docs.clone();
        let alphabet: &[u8] = b" \t\n\r\"\\/{}[]:,.-+0123456789eEabfnrtuxl\x01\x1f";
        for d in &bases {
            let b = d.as_bytes();
            for i in 0..=b.len() {
                let mut del = b.to_vec();
                if i < b.len() {
                    del.remove(i);
                    if let Ok(s) = String::from_utf8(del) {
                        docs.push(s);
                    }
                }
                for &c in alphabet {
                    let mut ins = b.to_vec();
                    ins.insert(i, c);
                    if let Ok(s) = String::from_utf8(ins) {
                        docs.push(s);
                    }
                    if i < b.len() {
                        let mut rep = b.to_vec();
                        rep[i] = c;
                        if let Ok(s) = String::from_utf8(rep) {
                            docs.push(s);
                        }
                    }
                }
            }
        }
        // Long strings (the eight-byte loop) with a special byte at every offset.
        for k in 0..40 {
            for c in ['"', '\\', '\u{1}', 'é', 'a'] {
                let mut s = String::from("[\"");
                for j in 0..40 {
                    s.push(if j == k { c } else { 'x' });
                }
                s.push_str("\"]");
                docs.push(s);
            }
        }
        let mut differ = Vec::new();
        for d in &docs {
            if is_json(d) != serde_ok(d) {
                differ.push(d.clone());
            }
        }
        assert!(
            differ.is_empty(),
            "{} of {} differ, e.g. {:?}",
            differ.len(),
            docs.len(),
            &differ[..differ.len().min(5)]
        );
    }
}
