//! One cell's checks and JSON text: each either writes exactly what the Python converter
//! (streams/bootstrap/rows.py, columns.py, convert.py) writes of the cell, or says no and the
//! row goes to Python, which builds or rejects it.

use std::ffi::{c_char, CStr, CString};

use pyo3::ffi;
use pyo3::prelude::*;

use super::out::Out;

const EMAIL_MAX: usize = 254;
const NUMBER_MAX: usize = 64;
/// DBL_DIG: decimals this short survive a trip through a double.
const PLAIN_DIGITS: usize = 15;

/// Byte classes of email addresses, looked up per byte.
const ALNUM: u8 = 1; // [A-Za-z0-9]
const LOCAL: u8 = 2; // [A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]: a local part's bytes
const LABEL: u8 = 4; // [A-Za-z0-9-]: a domain label's bytes

const CLASSES: [u8; 256] = {
    let mut classes = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() {
            classes[c] = ALNUM | LOCAL | LABEL;
        }
        c += 1;
    }
    let local = b".!#$%&'*+/=?^_`{|}~-";
    let mut i = 0;
    while i < local.len() {
        classes[local[i] as usize] |= LOCAL;
        i += 1;
    }
    classes[b'-' as usize] |= LABEL;
    classes
};

#[inline(always)]
fn is(c: u8, class: u8) -> bool {
    CLASSES[usize::from(c)] & class != 0
}

/// The language of emails.EMAIL_PATTERN: local@label(.label)+ with
/// label = [A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?, at most EMAIL_MAX bytes. One pass.
pub fn email_ok(s: &[u8]) -> bool {
    if s.len() > EMAIL_MAX {
        return false;
    }
    // The local part runs to the first byte no local part holds: that must be the '@'.
    let at = s.iter().position(|&c| !is(c, LOCAL)).unwrap_or(s.len());
    if at == 0 || s.get(at) != Some(&b'@') {
        return false;
    }
    let (mut labels, mut start) = (0, at + 1);
    loop {
        let mut end = start;
        while end < s.len() && s[end] != b'.' {
            if !is(s[end], LABEL) {
                return false;
            }
            end += 1;
        }
        let length = end - start;
        if !(1..=63).contains(&length) || !is(s[start], ALNUM) || !is(s[end - 1], ALNUM) {
            return false;
        }
        labels += 1;
        if end == s.len() {
            return labels >= 2;
        }
        start = end + 1; // the dot: a label must follow
    }
}

/// -?[0-9]{1,18} as str(int(text)) writes it: no leading zeros, no "-0" (at most the cell's
/// bytes, in room reserved). False: not an int of that form.
pub fn put_int(b: &mut Out, s: &[u8]) -> bool {
    let sign = usize::from(s.first() == Some(&b'-'));
    let digits = &s[sign..];
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let zeros = digits[..digits.len() - 1]
        .iter()
        .take_while(|&&c| c == b'0')
        .count();
    let digits = &digits[zeros..];
    if digits == b"0" {
        b.append(b"0");
        return true;
    }
    if sign == 1 {
        b.append(b"-");
    }
    b.append(digits);
    true
}

/// A number of the form -?[0-9]+(\.[0-9]+)? taken apart.
pub struct Number<'a> {
    negative: bool,
    whole: &'a [u8],    // the integer part without leading zeros
    fraction: &'a [u8], // the fraction without trailing zeros
}

impl<'a> Number<'a> {
    pub fn split(s: &'a [u8]) -> Option<Self> {
        if s.len() > NUMBER_MAX {
            return None;
        }
        let negative = s.first() == Some(&b'-');
        let rest = &s[usize::from(negative)..];
        let whole_end = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if whole_end == 0 {
            return None;
        }
        let whole = &rest[..whole_end];
        let whole = &whole[whole.iter().take_while(|&&c| c == b'0').count()..];
        let mut fraction: &[u8] = &[];
        if whole_end < rest.len() {
            if rest[whole_end] != b'.' {
                return None;
            }
            let digits = &rest[whole_end + 1..];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let kept = digits.len() - digits.iter().rev().take_while(|&&c| c == b'0').count();
            fraction = &digits[..kept];
        }
        Some(Number {
            negative,
            whole,
            fraction,
        })
    }
}

/// repr(float(text)) without a double when that is the text itself, tidied: at most 15
/// significant digits (then no other decimal of as few digits rounds to the same double, so the
/// shortest repr is this one) and inside repr's fixed notation, 1e-4 <= |x| < 1e16, or zero.
/// The value: the double, exact by Clinger's fast path (an integer below 2^53 over an exact
/// power of ten). At most two bytes more than the text, in room reserved. None: not plain (the
/// caller takes CPython's way).
pub fn put_plain(b: &mut Out, number: &Number<'_>) -> Option<f64> {
    const TENS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (whole, fraction) = (number.whole, number.fraction);
    // Zeros after the point before the first digit, when the integer part is 0.
    let mut leading = 0;
    if whole.is_empty() {
        leading = fraction.iter().take_while(|&&c| c == b'0').count();
        if !fraction.is_empty() && leading > 3 {
            return None; // below 1e-4
        }
    }
    if whole.len() + fraction.len() - leading > PLAIN_DIGITS || whole.len() > 16 {
        return None;
    }
    let mantissa = whole
        .iter()
        .chain(fraction)
        .fold(0u64, |m, &c| m * 10 + u64::from(c - b'0'));
    let value = mantissa as f64 / TENS[fraction.len()];
    if number.negative {
        b.append(b"-");
    }
    b.append(if whole.is_empty() { b"0" } else { whole });
    b.append(b".");
    b.append(if fraction.is_empty() { b"0" } else { fraction });
    Some(if number.negative { -value } else { value })
}

/// float(text) and repr() by CPython itself (`PyOS_string_to_double`, `PyOS_double_to_string`;
/// needs the GIL). None: not finite.
pub fn put_repr(py: Python<'_>, b: &mut Out, s: &[u8]) -> PyResult<Option<f64>> {
    let text = CString::new(s).expect("a number holds no NUL");
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: the GIL is held (`py`); `text` is NUL-terminated and outlives the call.
    let parsed =
        unsafe { ffi::PyOS_string_to_double(text.as_ptr(), &mut end, std::ptr::null_mut()) };
    if parsed == -1.0 && PyErr::occurred(py) {
        drop(PyErr::take(py));
        return Ok(None);
    }
    let consumed = end as usize - text.as_ptr() as usize;
    if consumed != s.len() || !parsed.is_finite() {
        return Ok(None);
    }
    // SAFETY: the GIL is held; a non-NULL result is a NUL-terminated string we own and free.
    let repr = unsafe {
        ffi::PyOS_double_to_string(
            parsed,
            b'r' as c_char,
            0,
            ffi::Py_DTSF_ADD_DOT_0,
            std::ptr::null_mut(),
        )
    };
    if repr.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: see above.
    unsafe {
        b.put(CStr::from_ptr(repr).to_bytes());
        ffi::PyMem_Free(repr.cast());
    }
    Ok(Some(parsed))
}

/// A line number (at most 20 bytes, in room reserved).
pub fn put_line(b: &mut Out, number: i64) {
    b.append(itoa::Buffer::new().format(number).as_bytes());
}

/// The inside of a JSON string holding `s`, with what JSON escapes escaped (as the Python
/// converter's orjson escapes it: the event decodes to the same text).
pub fn put_escaped(b: &mut Out, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    b.reserve(6 * s.len());
    for &c in s {
        match c {
            b'"' => b.append(b"\\\""),
            b'\\' => b.append(b"\\\\"),
            b'\n' => b.append(b"\\n"),
            b'\r' => b.append(b"\\r"),
            b'\t' => b.append(b"\\t"),
            0x08 => b.append(b"\\b"),
            0x0c => b.append(b"\\f"),
            0..=0x1f => b.append(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]),
            _ => b.append(&[c]),
        }
    }
}
