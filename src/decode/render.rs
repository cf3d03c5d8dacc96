//! Compact JSON text of a tape value: what an alert stores as its raw event.
//!
//! The text must be byte for byte what simd-json's own `encode()` writes,
//! because records without an `eventID` are keyed by a hash of it (see
//! `pipeline::record_key`): a different rendering would give a stored
//! record a second key. So the escaping follows value-trait's generator
//! exactly: `"` and `\` are escaped, control characters become `\b \t \n
//! \f \r` or `\u00xx` (lowercase hex), and every other byte, non-ASCII
//! included, is copied as it is; numbers go through `itoa` and `ryu`, and a
//! non-finite float is `null`.
//!
//! Why not `encode()` itself: it writes through `io::Write`, three calls
//! per string, and checks short strings a byte at a time through a table.
//! A full-pack scan renders one record per alert, and that was a sixth of
//! the worker's cost per alert. Here the output is one `Vec` grown once per
//! string, and strings are checked eight bytes at a time; only a string
//! with something to escape is walked byte by byte.

use super::view::Value;
use simd_json::prelude::*;

/// Appends the compact JSON text of `v` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, v: Value<'_>) {
    if let Some(s) = v.as_str() {
        return write_str(out, s.as_bytes());
    }
    if let Some(obj) = v.as_object() {
        out.push(b'{');
        for (i, (k, v)) in obj.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, k.as_bytes());
            out.push(b':');
            write_value(out, v);
        }
        return out.push(b'}');
    }
    if let Some(arr) = v.as_array() {
        out.push(b'[');
        for (i, v) in arr.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_value(out, v);
        }
        return out.push(b']');
    }
    match v.value_type() {
        ValueType::Null => out.extend_from_slice(b"null"),
        ValueType::Bool => out.extend_from_slice(if v.as_bool() == Some(true) { b"true" } else { b"false" }),
        ValueType::I64 => out.extend_from_slice(itoa::Buffer::new().format(v.as_i64().unwrap_or(0)).as_bytes()),
        ValueType::U64 => out.extend_from_slice(itoa::Buffer::new().format(v.as_u64().unwrap_or(0)).as_bytes()),
        _ => match v.as_f64() {
            Some(n) if n.is_finite() => out.extend_from_slice(ryu::Buffer::new().format_finite(n).as_bytes()),
            // JSON has no NaN or infinity (value-trait writes null too).
            _ => out.extend_from_slice(b"null"),
        },
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether any of the 8 bytes in `w` is `"`, `\` or below 0x20. Exact: the
/// classic word tests for "has a zero byte" and "has a byte below n"
/// (n ≤ 128) neither miss a byte nor report one that is not there.
#[inline(always)]
fn needs_escape(w: u64) -> bool {
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    (zero(w ^ (LO * u64::from(b'"'))) | zero(w ^ (LO * u64::from(b'\\'))) | control) != 0
}

/// `\x` for the bytes that have a short escape, `u` for the other control
/// characters, 0 for bytes copied as they are (value-trait's table).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = b'u';
        b += 1;
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

/// Whether any byte of `s` needs escaping, a word at a time: whole words,
/// then one last word overlapping the one before (strings shorter than a
/// word are read as two overlapping halves).
#[inline]
fn any_escape(s: &[u8]) -> bool {
    let word = |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
    let half = |i: usize| u64::from(u32::from_le_bytes(s[i..i + 4].try_into().expect("4 bytes")));
    let n = s.len();
    match n {
        0 => false,
        1..=3 => s.iter().any(|&b| ESCAPE[b as usize] != 0),
        4..=7 => needs_escape(half(0) | half(n - 4) << 32),
        _ => (0..n / 8).any(|w| needs_escape(word(8 * w))) || (!n.is_multiple_of(8) && needs_escape(word(n - 8))),
    }
}

/// Appends `s` as a JSON string: quoted and escaped exactly as serde_json
/// and simd-json escape it (alert output uses it too).
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    write_str(out, s.as_bytes())
}

/// Appends `"s"`, escaped.
fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    if any_escape(s) {
        write_escaped(out, s);
    } else {
        out.extend_from_slice(s);
    }
    out.push(b'"');
}

/// The contents of a string that has something to escape.
#[cold]
fn write_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut clean = 0; // s[..clean] is written
    for (i, &b) in s.iter().enumerate() {
        let e = ESCAPE[b as usize];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&s[clean..i]);
        if e == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        clean = i + 1;
    }
    out.extend_from_slice(&s[clean..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our text and simd-json's `encode()` for a JSON document.
    fn both(doc: &str) -> (String, String) {
        let mut bytes = doc.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut bytes).expect("valid JSON");
        let mut out = Vec::new();
        write_value(&mut out, Value::root(&tape));
        (String::from_utf8(out).expect("UTF-8"), tape.as_value().encode())
    }

    #[test]
    fn every_byte_of_a_string_renders_as_simd_json_renders_it() {
        // Every ASCII byte (control characters as JSON escapes), at every
        // offset within an 8-byte word, in keys and values, plus non-ASCII.
        for b in 0u8..0x80 {
            let c = if b < 0x20 || b == b'"' || b == b'\\' {
                format!("\\u{b:04x}")
            } else {
                (b as char).to_string()
            };
            for pad in 0..9 {
                let s = format!("{}{c}{}é€😀", "a".repeat(pad), "b".repeat(9 - pad));
                let doc = format!(r#"{{"{s}":"{s}","k":["{s}",{{"x{s}":"{c}"}}]}}"#);
                let (ours, theirs) = both(&doc);
                assert_eq!(ours, theirs, "byte {b:#04x} at {pad}");
            }
            // Every position of strings of 1 to 17 bytes (the short paths,
            // and the overlapping last word).
            for len in 1..=17 {
                for at in 0..len {
                    let s = format!("{}{c}{}", "a".repeat(at), "b".repeat(len - at - 1));
                    let (ours, theirs) = both(&format!(r#"["{s}"]"#));
                    assert_eq!(ours, theirs, "byte {b:#04x} at {at} of {len}");
                }
            }
        }
    }

    #[test]
    fn numbers_literals_and_empty_containers_render_as_simd_json_renders_them() {
        for doc in [
            r#"{"a":0,"b":-1,"c":9223372036854775807,"d":-9223372036854775808,"e":18446744073709551615}"#,
            r#"{"f":1.5,"g":-0.0,"h":1e300,"i":5e-324,"j":2.0,"k":123456789.125,"l":1E-7}"#,
            r#"{"m":true,"n":false,"o":null,"p":{},"q":[],"r":[[],[{}],[null,true]]}"#,
            r#"[1,"two",{"three":[3.0]}]"#,
            r#""just a string with \" and \\ and \n""#,
            "42",
            "{}",
        ] {
            let (ours, theirs) = both(doc);
            assert_eq!(ours, theirs, "{doc}");
        }
    }
}
