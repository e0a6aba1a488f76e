//! The timestamp of a signed value: Django's base62.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Django's `b62_encode`.
pub fn base62_encode(n: i64) -> String {
    if n == 0 {
        return "0".to_owned();
    }
    let mut digits = Vec::with_capacity(12);
    let mut rest = n.unsigned_abs();
    while rest > 0 {
        digits.push(BASE62[(rest % 62) as usize]);
        rest /= 62;
    }
    if n < 0 {
        digits.push(b'-');
    }
    digits.iter().rev().map(|&b| char::from(b)).collect()
}

/// Django's `b62_decode`; `None` for characters outside the alphabet or overflow.
pub fn base62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for b in digits.bytes() {
        let d = BASE62.iter().position(|&c| c == b)? as i64;
        n = n.checked_mul(62)?.checked_add(d)?;
    }
    Some(if negative { -n } else { n })
}
