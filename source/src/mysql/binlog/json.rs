//! MySQL's binary JSON (`JSON` columns in MySQL 5.7+ rows events) to JSON
//! text, rendered the way MySQL prints it (`{"a": 1, "b": [true, null]}`).
//!
//! Offsets inside the document are checked; nesting depth and the number of
//! values visited are bounded, so hostile bytes cannot overflow the stack or
//! blow up the output.

use super::reader::{DecodeError, DecodeResult, Reader};
use crate::mysql::types;

const W: &str = "binary json";
const MAX_DEPTH: usize = 100;

mod t {
    pub const SMALL_OBJ: u8 = 0;
    pub const LARGE_OBJ: u8 = 1;
    pub const SMALL_ARR: u8 = 2;
    pub const LARGE_ARR: u8 = 3;
    pub const LITERAL: u8 = 4;
    pub const INT16: u8 = 5;
    pub const UINT16: u8 = 6;
    pub const INT32: u8 = 7;
    pub const UINT32: u8 = 8;
    pub const INT64: u8 = 9;
    pub const UINT64: u8 = 10;
    pub const DOUBLE: u8 = 11;
    pub const STRING: u8 = 12;
    pub const OPAQUE: u8 = 15;
}

/// Renders a binary JSON document as text. An empty document is JSON null
/// (what MySQL stores for a JSON NULL written by some paths).
pub fn to_text(doc: &[u8]) -> DecodeResult<String> {
    let Some((&ty, body)) = doc.split_first() else {
        return Ok("null".to_owned());
    };
    let mut out = String::with_capacity(doc.len() * 2);
    let mut budget = doc.len() + 1;
    value(ty, body, &mut out, 0, &mut budget)?;
    Ok(out)
}

fn err(reason: impl Into<String>) -> DecodeError {
    DecodeError::new(W, reason)
}

fn slice_from(buf: &[u8], offset: usize) -> DecodeResult<&[u8]> {
    buf.get(offset..)
        .ok_or_else(|| err(format!("offset {offset} beyond {} bytes", buf.len())))
}

fn value(
    ty: u8,
    buf: &[u8],
    out: &mut String,
    depth: usize,
    budget: &mut usize,
) -> DecodeResult<()> {
    if depth > MAX_DEPTH {
        return Err(err("nested deeper than 100 levels"));
    }
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| err("more values than the document can hold"))?;
    let mut r = Reader::new(buf);
    match ty {
        t::SMALL_OBJ | t::LARGE_OBJ | t::SMALL_ARR | t::LARGE_ARR => {
            container(ty, buf, out, depth, budget)?;
        }
        t::LITERAL => out.push_str(match r.u8(W)? {
            0 => "null",
            1 => "true",
            2 => "false",
            other => return Err(err(format!("literal {other}"))),
        }),
        t::INT16 => out.push_str(&(r.u16(W)? as i16).to_string()),
        t::UINT16 => out.push_str(&r.u16(W)?.to_string()),
        t::INT32 => out.push_str(&(r.u32(W)? as i32).to_string()),
        t::UINT32 => out.push_str(&r.u32(W)?.to_string()),
        t::INT64 => out.push_str(&(r.u64(W)? as i64).to_string()),
        t::UINT64 => out.push_str(&r.u64(W)?.to_string()),
        t::DOUBLE => {
            let d = f64::from_bits(r.u64(W)?);
            if !d.is_finite() {
                return Err(err("double is not finite"));
            }
            out.push_str(&format!("{d:?}"));
        }
        t::STRING => {
            let n = varlen(&mut r)?;
            let s = std::str::from_utf8(r.take(n, W)?).map_err(|_| err("string is not UTF-8"))?;
            quote(s, out);
        }
        t::OPAQUE => {
            let field_type = r.u8(W)?;
            let n = varlen(&mut r)?;
            opaque(field_type, r.take(n, W)?, out)?;
        }
        other => return Err(err(format!("value type {other}"))),
    }
    Ok(())
}

fn container(
    ty: u8,
    buf: &[u8],
    out: &mut String,
    depth: usize,
    budget: &mut usize,
) -> DecodeResult<()> {
    let large = ty == t::LARGE_OBJ || ty == t::LARGE_ARR;
    let is_obj = ty == t::SMALL_OBJ || ty == t::LARGE_OBJ;
    let w = if large { 4 } else { 2 };
    let mut r = Reader::new(buf);
    let count = r.uint_le(w, W)? as usize;
    let size = r.uint_le(w, W)? as usize;
    if size > buf.len() {
        return Err(err(format!(
            "container of {size} bytes in {} bytes",
            buf.len()
        )));
    }
    let buf = &buf[..size];
    let key_entry = if is_obj { w + 2 } else { 0 };
    let value_entry = 1 + w;
    let header = count
        .checked_mul(key_entry + value_entry)
        .and_then(|n| n.checked_add(2 * w))
        .filter(|n| *n <= size)
        .ok_or_else(|| err(format!("{count} entries do not fit in {size} bytes")))?;
    let _ = header;
    out.push(if is_obj { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        if is_obj {
            let mut k = Reader::new(slice_from(buf, 2 * w + i * key_entry)?);
            let key_offset = k.uint_le(w, W)? as usize;
            let key_len = usize::from(k.u16(W)?);
            let key = slice_from(buf, key_offset)?
                .get(..key_len)
                .ok_or_else(|| err("key beyond its object"))?;
            quote(
                std::str::from_utf8(key).map_err(|_| err("key is not UTF-8"))?,
                out,
            );
            out.push_str(": ");
        }
        let mut v = Reader::new(slice_from(
            buf,
            2 * w + count * key_entry + i * value_entry,
        )?);
        let vty = v.u8(W)?;
        let inline = matches!(vty, t::LITERAL | t::INT16 | t::UINT16)
            || (large && matches!(vty, t::INT32 | t::UINT32));
        if inline {
            let raw = v.take(w, W)?;
            value(vty, raw, out, depth + 1, budget)?;
        } else {
            let offset = v.uint_le(w, W)? as usize;
            value(vty, slice_from(buf, offset)?, out, depth + 1, budget)?;
        }
    }
    out.push(if is_obj { '}' } else { ']' });
    Ok(())
}

/// Length of a string: 7 bits a byte, low bits first, at most 5 bytes.
fn varlen(r: &mut Reader<'_>) -> DecodeResult<usize> {
    let mut n: u64 = 0;
    for i in 0..5 {
        let b = r.u8(W)?;
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return usize::try_from(n).map_err(|_| err("length overflows"));
        }
    }
    Err(err("string length longer than 5 bytes"))
}

pub fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn opaque(field_type: u8, data: &[u8], out: &mut String) -> DecodeResult<()> {
    use super::table_map::ty;
    match field_type {
        ty::NEWDECIMAL => {
            let mut r = Reader::new(data);
            let precision = r.u8(W)?;
            let scale = r.u8(W)?;
            if precision == 0 || precision > 65 || scale > precision {
                return Err(err(format!("decimal precision {precision} scale {scale}")));
            }
            let d = types::decimal(&mut r, precision, scale)?;
            out.push_str(&d.to_string());
        }
        ty::DATE | ty::TIME | ty::DATETIME | ty::TIMESTAMP => {
            let packed = Reader::new(data).u64(W)? as i64;
            out.push('"');
            out.push_str(&packed_temporal(field_type, packed));
            out.push('"');
        }
        other => {
            out.push_str(&format!("\"base64:type{other}:"));
            base64(data, out);
            out.push('"');
        }
    }
    Ok(())
}

/// MySQL's packed longlong temporal values (`TIME_to_longlong_*_packed`).
fn packed_temporal(field_type: u8, packed: i64) -> String {
    use super::table_map::ty;
    let neg = packed < 0;
    let a = packed.unsigned_abs();
    let frac = a % (1 << 24);
    let int = a >> 24;
    let frac_text = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:06}")
    };
    if field_type == ty::TIME {
        let hms = int;
        return format!(
            "{}{:02}:{:02}:{:02}{frac_text}",
            if neg { "-" } else { "" },
            (hms >> 12) % (1 << 10),
            (hms >> 6) % (1 << 6),
            hms % (1 << 6)
        );
    }
    let ymd = int >> 17;
    let ym = ymd >> 5;
    let hms = int % (1 << 17);
    let date = format!("{:04}-{:02}-{:02}", ym / 13, ym % 13, ymd % (1 << 5));
    if field_type == ty::DATE {
        return date;
    }
    format!(
        "{date} {:02}:{:02}:{:02}{frac_text}",
        hms >> 12,
        (hms >> 6) % (1 << 6),
        hms % (1 << 6)
    )
}

fn base64(data: &[u8], out: &mut String) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(to_text(&[t::LITERAL, 1]).unwrap(), "true");
        assert_eq!(to_text(&[t::INT16, 0xff, 0xff]).unwrap(), "-1");
        assert_eq!(to_text(&[t::STRING, 2, b'h', b'i']).unwrap(), "\"hi\"");
        assert_eq!(to_text(&[]).unwrap(), "null");
    }

    #[test]
    fn hostile_bytes_are_errors() {
        assert!(to_text(&[t::SMALL_OBJ, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(to_text(&[t::STRING, 0x80]).is_err());
        assert!(to_text(&[99]).is_err());
    }

    #[test]
    fn base64_pads() {
        let mut s = String::new();
        base64(b"ab", &mut s);
        assert_eq!(s, "YWI=");
    }
}
