//! Session keys: generation from the OS CSPRNG, and validation.

use std::fmt;
use std::sync::Arc;

use arrayvec::ArrayString;
use rand::TryRng;
use rand::rngs::SysRng;

use crate::Error;

/// The alphabet of generated keys: lowercase so that case-insensitive stores are safe.
const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Length of a generated key: 32 symbols of 36, about 165 bits.
pub(crate) const GENERATED_LEN: usize = 32;
/// Shortest key Django accepts.
pub(crate) const MIN_LEN: usize = 8;
/// Longest key Django's `session_key varchar(40)` column holds.
pub(crate) const MAX_LEN: usize = 40;

/// The key that names a session in its store, as carried by the session cookie.
///
/// Cheap to clone. It is never printed by `Debug`: logs must not hold live keys.
///
/// ```
/// use sessionbase::SessionKey;
///
/// let key = SessionKey::generate().unwrap();
/// assert_eq!(key.as_ref().len(), 32);
/// assert!(SessionKey::parse(key.as_ref()).is_some());
/// assert!(SessionKey::parse("../etc/passwd").is_none());
/// assert!(SessionKey::parse("short").is_none());
/// ```
#[derive(Clone)]
pub struct SessionKey(Repr);

/// Keys of server-side stores (at most 40 bytes) live inline, so parsing, cloning and
/// dropping one allocates nothing and reading one costs no UTF-8 check; longer ones (a
/// signed cookie) are shared.
#[derive(Clone)]
enum Repr {
    Inline(ArrayString<MAX_LEN>),
    Shared(Arc<str>),
}

thread_local! {
    /// Bytes from the OS CSPRNG, drawn a page at a time so that a key costs no system call.
    static OS_RANDOM: std::cell::RefCell<RandomPool> = const {
        std::cell::RefCell::new(RandomPool { bytes: [0; POOL_LEN], next: POOL_LEN })
    };
}

const POOL_LEN: usize = 4096;

struct RandomPool {
    bytes: [u8; POOL_LEN],
    next: usize,
}

impl RandomPool {
    /// Fills the start of `out` with fresh bytes from the OS CSPRNG (at least one) and says
    /// how many. Each byte is handed out once and wiped from the pool.
    fn fill(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        if self.next == POOL_LEN {
            SysRng
                .try_fill_bytes(&mut self.bytes)
                .map_err(|e| Error::Random(Box::new(e)))?;
            self.next = 0;
        }
        let n = out.len().min(POOL_LEN - self.next);
        let chunk = &mut self.bytes[self.next..self.next + n];
        out[..n].copy_from_slice(chunk);
        chunk.fill(0);
        self.next += n;
        Ok(n)
    }
}

/// Fills `out` with bytes straight from the OS CSPRNG, one system call each time: the
/// encrypted-cookie store's AES-GCM nonces. Not from the per-thread pool, whose bytes a
/// process that forks would hand out twice, and a repeated nonce gives the key away.
#[cfg_attr(not(feature = "cookie-encrypted"), allow(dead_code))]
pub(crate) fn os_random(out: &mut [u8]) -> Result<(), Error> {
    SysRng
        .try_fill_bytes(out)
        .map_err(|e| Error::Random(Box::new(e)))
}

impl SessionKey {
    /// A fresh key: 32 characters of `[a-z0-9]`, each drawn without bias from bytes of the
    /// operating system's CSPRNG (fetched a page at a time per thread).
    pub fn generate() -> Result<Self, Error> {
        // Twelve symbols per 64-bit draw: 36^12 < 2^64. Draws at or above the largest
        // multiple of 36^12 that fits are rejected, so that every symbol stays uniform.
        const PER_DRAW: usize = 12;
        const SPAN: u64 = 36u64.pow(PER_DRAW as u32);
        const LIMIT: u64 = SPAN * (u64::MAX / SPAN);
        let mut symbols = [0u8; GENERATED_LEN];
        let mut filled = 0;
        OS_RANDOM.with_borrow_mut(|pool| {
            while filled < GENERATED_LEN {
                // Five draws at a time: three suffice four times in five.
                let mut random = [0u8; 40];
                let mut got = 0;
                while got < random.len() {
                    got += pool.fill(&mut random[got..])?;
                }
                for draw in random.chunks_exact(8) {
                    let mut x = u64::from_le_bytes(draw.try_into().unwrap_or_default());
                    if x >= LIMIT || filled == GENERATED_LEN {
                        continue;
                    }
                    x %= SPAN;
                    for symbol in symbols[filled..].iter_mut().take(PER_DRAW) {
                        *symbol = ALPHABET[(x % 36) as usize];
                        x /= 36;
                    }
                    filled = (filled + PER_DRAW).min(GENERATED_LEN);
                }
            }
            Ok::<_, Error>(())
        })?;
        let mut key = ArrayString::<MAX_LEN>::new();
        // The alphabet is ASCII: the check cannot fail.
        key.push_str(std::str::from_utf8(&symbols).unwrap_or_default());
        Ok(Self(Repr::Inline(key)))
    }

    /// Accepts a key of the shape server-side stores use: 8 to 40 characters of `[a-z0-9]`
    /// (Django's minimum and its column width). Anything else is `None`, so that it never
    /// reaches a store's I/O (a path, a query, a Redis command).
    pub fn parse(value: &str) -> Option<Self> {
        is_server_side_key(value).then(|| Self::from_validated(value))
    }

    /// Wraps a value that the caller has already validated by its own rules: a store whose
    /// keys are not server-side keys (the signed-cookie store's key is the signed data)
    /// uses this in its [`SessionStore::parse_key`](crate::SessionStore::parse_key).
    pub fn from_validated(value: impl AsRef<str>) -> Self {
        let value = value.as_ref();
        match ArrayString::from(value) {
            Ok(inline) => Self(Repr::Inline(inline)),
            Err(_) => Self(Repr::Shared(value.into())),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SessionKey {}

impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Whether `value` is 8 to 40 characters of `[a-z0-9]`.
pub(crate) fn is_server_side_key(value: &str) -> bool {
    (MIN_LEN..=MAX_LEN).contains(&value.len()) && value.bytes().all(|b| KEY_BYTES[usize::from(b)])
}

/// Which bytes a server-side key may hold: `[a-z0-9]`, by table (a check per cookie).
static KEY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_lowercase() || (b as u8).is_ascii_digit();
        b += 1;
    }
    table
};

impl AsRef<str> for SessionKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for SessionKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_keys_are_32_lowercase_alphanumerics() {
        for _ in 0..1000 {
            let key = SessionKey::generate().unwrap();
            assert_eq!(key.as_str().len(), GENERATED_LEN);
            assert!(is_server_side_key(key.as_str()), "{key}");
        }
    }

    #[test]
    fn a_hundred_thousand_keys_have_no_duplicate_and_an_even_alphabet() {
        let mut seen = HashSet::new();
        let mut counts = [0usize; 36];
        let mut by_position = [[0usize; 36]; GENERATED_LEN];
        for _ in 0..100_000 {
            let key = SessionKey::generate().unwrap();
            for (position, b) in key.as_str().bytes().enumerate() {
                let i = ALPHABET.iter().position(|&a| a == b).unwrap();
                counts[i] += 1;
                by_position[position][i] += 1;
            }
            assert!(seen.insert(key));
        }
        // Every position on its own too (symbols come twelve per 64-bit draw).
        let per_cell = 100_000.0 / 36.0;
        for (position, cells) in by_position.iter().enumerate() {
            let chi2: f64 = cells
                .iter()
                .map(|&c| (c as f64 - per_cell).powi(2) / per_cell)
                .sum();
            assert!(chi2 < 100.0, "position {position}: chi-square {chi2}");
        }
        // 3.2 million symbols, about 88,889 each: one standard deviation is about 294 (0.33%),
        // so 2% is over 6 sigmas for chance, while `byte % 36` without rejection would skew
        // the first four symbols by 4% and still pass a looser bound.
        let expected = 100_000.0 * GENERATED_LEN as f64 / 36.0;
        for (i, &c) in counts.iter().enumerate() {
            let dev = (c as f64 - expected).abs() / expected;
            assert!(dev < 0.02, "symbol {} seen {c} times", ALPHABET[i] as char);
        }
        // And a chi-square over the 36 symbols: 35 degrees of freedom average 35; above 100 has a
        // chance below 1e-8, while a modulo bias would score in the thousands.
        let chi2: f64 = counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 100.0, "chi-square {chi2}");
    }

    #[test]
    fn parse_follows_django_length_bounds_and_charset() {
        assert!(SessionKey::parse("").is_none());
        assert!(SessionKey::parse("1234567").is_none());
        assert!(SessionKey::parse("12345678").is_some());
        assert!(SessionKey::parse(&"a".repeat(40)).is_some());
        assert!(SessionKey::parse(&"a".repeat(41)).is_none());
        for bad in [
            "ABCDEFGHIJ",
            "abcdefgh/",
            "abc.defgh",
            "abcdefgh\n",
            "abcdéfghi",
            "a'b\"cdefgh",
        ] {
            assert!(SessionKey::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn short_and_long_keys_compare_by_text() {
        let long = "a".repeat(300);
        let k = SessionKey::from_validated(&long);
        assert_eq!(k.as_str(), long);
        assert_eq!(k, SessionKey::from_validated(long.clone()));
        let short = SessionKey::from_validated("abcdefgh12");
        assert_eq!(short, SessionKey::parse("abcdefgh12").unwrap());
        assert_eq!(short.as_str(), "abcdefgh12");
        let mut set = HashSet::new();
        set.insert(short.clone());
        assert!(set.contains("abcdefgh12"));
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SessionKey::parse("secretkey123").unwrap();
        assert_eq!(format!("{key:?}"), "SessionKey(..)");
        assert_eq!(key.to_string(), "secretkey123");
    }
}
