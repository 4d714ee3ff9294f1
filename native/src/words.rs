//! Eight bytes at a time: hashing, comparing and checking short texts (a row's cells, JSON
//! strings).
//!
//! Words are read little-endian whatever the machine, so the same code (and the same byte
//! positions from `trailing_zeros`) serves every target: there is no byte-at-a-time variant.

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;

#[inline(always)]
pub fn load8(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"))
}

#[inline(always)]
fn load4(s: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(
        s[at..at + 4].try_into().expect("four bytes"),
    ))
}

/// The high bit of each byte of `word` that equals `c`, exactly (no false positives).
#[inline(always)]
fn bytes_equal(word: u64, c: u8) -> u64 {
    let x = word ^ (ONES * u64::from(c));
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

#[inline(always)]
fn mix(a: u64, b: u64) -> u64 {
    let a = (a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    a ^ (a >> 31)
}

/// A hash of `s` from whole words (cells are short: a multiply per word, not per byte). The low
/// bits pick a table slot, the high bits are its tag: both are mixed.
pub fn hash_bytes(s: &[u8]) -> u64 {
    let n = s.len();
    let mut h = 0x2545_F491_4F6C_DD1D ^ n as u64;
    let mut i = 0;
    while i + 8 < n {
        h = mix(h, load8(s, i));
        i += 8;
    }
    // The last 1..8 bytes (the last word overlaps the one before: n is mixed in).
    let tail = if n >= 8 {
        load8(s, n - 8)
    } else if n >= 4 {
        load4(s, 0) | load4(s, n - 4) << 32
    } else if n > 0 {
        u64::from(s[0]) | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]) << 16
    } else {
        0
    };
    h = mix(h, tail);
    h ^= h >> 29;
    h = h.wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 32)
}

/// `s == t` (of equal length) for short cells without a call to `memcmp`.
#[inline(always)]
pub fn same_bytes(s: &[u8], t: &[u8]) -> bool {
    let n = s.len();
    if n != t.len() {
        return false;
    }
    match n {
        0..4 => s == t,
        4..8 => load4(s, 0) == load4(t, 0) && load4(s, n - 4) == load4(t, n - 4),
        8..=16 => load8(s, 0) == load8(t, 0) && load8(s, n - 8) == load8(t, n - 8),
        _ => s == t,
    }
}

/// No control byte (< 0x20), '"' or '\\' in the word.
#[inline(always)]
fn word_plain(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word & (ONES * 0x80);
    (control | bytes_equal(word, b'"') | bytes_equal(word, b'\\')) == 0
}

/// Nothing in `s` that a JSON string escapes.
pub fn json_plain(s: &[u8]) -> bool {
    let n = s.len();
    let mut i = 0;
    while i + 8 <= n {
        if !word_plain(load8(s, i)) {
            return false;
        }
        i += 8;
    }
    if i == n {
        return true;
    }
    // The rest in one more word, overlapping what was checked (or built of two 4-byte loads).
    if n >= 8 {
        return word_plain(load8(s, n - 8));
    }
    if n >= 4 {
        return word_plain(load4(s, 0) | load4(s, n - 4) << 32);
    }
    s.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length up to three words and every position of the interesting bytes in them.
    fn samples() -> Vec<Vec<u8>> {
        let mut out = vec![];
        for n in 0..24 {
            for special in [b',', b'"', b'\\', 0x1f, 0x7f, 0xc3, b' '] {
                for at in 0..n {
                    let mut s = vec![b'a'; n];
                    s[at] = special;
                    out.push(s.clone());
                    s[n - 1 - at / 2] = b',';
                    out.push(s);
                }
            }
        }
        out
    }

    #[test]
    fn words_agree_with_bytes() {
        for s in samples() {
            let plain = s.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
            assert_eq!(json_plain(&s), plain, "{s:?}");
            let mut other = s.clone();
            assert!(same_bytes(&s, &other));
            if let Some(last) = other.last_mut() {
                *last ^= 1;
                assert!(!same_bytes(&s, &other));
                assert_ne!(hash_bytes(&s), hash_bytes(&other));
            }
        }
    }
}
