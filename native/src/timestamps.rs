//! Input timestamps to epoch milliseconds, as `streams/codecs/timestamps.py`.

use crate::doc::Doc;
use crate::validate::{Reject, Verdict};

pub const UNKNOWN_TS: i64 = -1;
pub const MAX_EPOCH_MS: i64 = 253_402_300_799_999;
pub const MAX_SECONDS: i64 = MAX_EPOCH_MS / 1000;

/// `to_epoch_ms(value, field)`. An ISO-8601 text outside the common RFC 3339 shapes is left
/// to the reference (`Verdict::Defer`): Python's `fromisoformat` accepts many more.
pub fn to_epoch_ms(value: &Doc, field: &str) -> Result<i64, Verdict> {
    match value {
        Doc::Int(v) => {
            if (0..=MAX_SECONDS).contains(v) {
                Ok(v * 1000)
            } else if *v == UNKNOWN_TS {
                Ok(UNKNOWN_TS)
            } else {
                Err(out_of_range(field, *v as f64))
            }
        }
        Doc::BigInt => Err(Verdict::Reject(Reject::integer_out_of_range(field))),
        Doc::Float(v) => {
            let v = *v;
            if (0.0..=MAX_SECONDS as f64 + 1.0).contains(&v) {
                let ms = (v * 1000.0).round_ties_even() as i64;
                if ms <= MAX_EPOCH_MS {
                    return Ok(ms);
                }
            }
            if v == UNKNOWN_TS as f64 {
                return Ok(UNKNOWN_TS);
            }
            Err(out_of_range(field, v))
        }
        Doc::Str(text) => match iso_to_ms(text) {
            Some(Ok(ms)) => Ok(ms),
            Some(Err(())) => Err(Verdict::Reject(Reject::new(
                "bad_timestamp",
                format!("{field} is before 1970 or after 9999"),
            ))),
            None => Err(Verdict::Defer),
        },
        other => Err(Verdict::Reject(Reject::new(
            "bad_timestamp",
            format!(
                "{field} must be UNIX seconds or an ISO-8601 string, not {}",
                other.type_name()
            ),
        ))),
    }
}

fn out_of_range(field: &str, seconds: f64) -> Verdict {
    let hint = if seconds > MAX_SECONDS as f64 && seconds <= MAX_EPOCH_MS as f64 {
        " (milliseconds? expected seconds)"
    } else {
        ""
    };
    Verdict::Reject(Reject::new(
        "bad_timestamp",
        format!("{field} is not UNIX seconds between 1970 and 9999{hint}"),
    ))
}

/// `YYYY-MM-DD[(T| )HH:MM:SS[.f{1,6}][Z|±HH:MM]]` with valid fields: `Some(Ok(ms))`, or
/// `Some(Err(()))` outside 1970..9999; `None` for any other text (the reference decides).
fn iso_to_ms(text: &str) -> Option<Result<i64, ()>> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut micros: i64 = 0;
    let mut offset_seconds: i64 = 0;
    let mut pos = 10;
    if b.len() > pos {
        if b[pos] != b'T' && b[pos] != b' ' {
            return None;
        }
        let hour = digits(b, pos + 1, 2)?;
        let minute = digits(b, pos + 4, 2)?;
        let second = digits(b, pos + 7, 2)?;
        if b.get(pos + 3) != Some(&b':') || b.get(pos + 6) != Some(&b':') {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        micros = ((hour * 60 + minute) * 60 + second) * 1_000_000;
        pos += 9;
        if b.get(pos) == Some(&b'.') {
            let start = pos + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let count = end - start;
            if count == 0 || count > 6 {
                return None;
            }
            let fraction = digits(b, start, count)?;
            micros += fraction * 10_i64.pow((6 - count) as u32);
            pos = end;
        }
        match b.get(pos) {
            None => {}
            Some(b'Z') if pos + 1 == b.len() => {}
            Some(sign @ (b'+' | b'-')) if pos + 6 == b.len() => {
                let hours = digits(b, pos + 1, 2)?;
                let minutes = digits(b, pos + 4, 2)?;
                if b[pos + 3] != b':' || hours > 23 || minutes > 59 {
                    return None;
                }
                offset_seconds = (hours * 60 + minutes) * 60;
                if *sign == b'-' {
                    offset_seconds = -offset_seconds;
                }
            }
            Some(_) => return None,
        }
    }
    let days = days_from_civil(year, month, day);
    let total = (days * 86_400 - offset_seconds) * 1_000_000 + micros;
    let (mut ms, rest) = (total.div_euclid(1000), total.rem_euclid(1000));
    if rest > 500 || (rest == 500 && ms % 2 != 0) {
        ms += 1; // round half to even, as the reference does
    }
    Some(if (0..=MAX_EPOCH_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(())
    })
}

fn digits(b: &[u8], start: usize, count: usize) -> Option<i64> {
    let slice = b.get(start..start + count)?;
    let mut value = 0_i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(c - b'0');
    }
    Some(value)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
