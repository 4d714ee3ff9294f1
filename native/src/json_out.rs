//! JSON text exactly as orjson writes it (the Python path's serializer): no spaces, the same
//! string escapes, the same float layout. Tests compare the two on generated values.

use crate::value::Value;
use crate::words::json_plain;

pub fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"null");
}

pub fn int(value: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

pub fn opt_int(value: Option<i64>, out: &mut Vec<u8>) {
    match value {
        Some(v) => int(v, out),
        None => null(out),
    }
}

pub fn string(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if json_plain(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    // serde_json escapes what orjson escapes: '"', '\\' and controls below 0x20.
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

pub fn opt_string(text: Option<&str>, out: &mut Vec<u8>) {
    match text {
        Some(t) => string(t, out),
        None => null(out),
    }
}

/// A finite float as orjson writes it: the shortest digits that read back the same (of two,
/// the even one), laid out fixed for decimal exponents -5..=15 (`1000000000000000.0`,
/// `0.00001`) and as `d.ddde+N` / `d.ddde-N` otherwise, which is what Żmij writes. Rust's
/// `{:e}` picks the odd digit of a tie (`-1113178120592002.3`), so it is not used here.
pub fn float(value: f64, out: &mut Vec<u8>) {
    assert!(value.is_finite(), "JSON has no NaN or Infinity");
    out.extend_from_slice(zmij::Buffer::new().format_finite(value).as_bytes());
}

pub fn value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => null(out),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(v) => int(*v, out),
        Value::Float(v) => float(*v, out),
        Value::Str(s) => string(s, out),
    }
}
