//! JSON text exactly as orjson writes it (the Python path's serializer): no spaces, the same
//! string escapes, the same float layout. Tests compare the two on generated values.

use crate::value::Value;

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
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
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

/// A finite float as orjson writes it: the shortest digits that read back the same, laid out
/// fixed for decimal exponents -5..=15 (`1000000000000000.0`, `0.00001`) and as
/// `d.ddde+N` / `d.ddde-N` otherwise.
pub fn float(value: f64, out: &mut Vec<u8>) {
    let sci = format!("{:e}", value.abs());
    let (mantissa, exponent) = sci.split_once('e').expect("{:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("{:e} writes a decimal exponent");
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    if value.is_sign_negative() {
        out.push(b'-');
    }
    if (-5..16).contains(&exponent) {
        if exponent >= 0 {
            let whole = exponent as usize + 1;
            if digits.len() <= whole {
                out.extend_from_slice(&digits);
                out.resize(out.len() + whole - digits.len(), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..whole]);
                out.push(b'.');
                out.extend_from_slice(&digits[whole..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (-exponent - 1) as usize, b'0');
            out.extend_from_slice(&digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent > 0 { b'+' } else { b'-' });
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(exponent.unsigned_abs())
                .as_bytes(),
        );
    }
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
