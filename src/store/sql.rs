//! What the SQL stores share: the validated table name, the query texts, Django's index
//! names, Django's SQLite datetime text, and how sqlx errors map onto [`Error`].

use std::fmt::Write as _;

#[cfg(feature = "sqlite")]
use time::macros::format_description;
#[cfg(feature = "sqlite")]
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::Error;

/// Django's table for sessions.
pub(crate) const DEFAULT_TABLE: &str = "django_session";

/// Longest table name accepted: PostgreSQL's identifier limit (`NAMEDATALEN - 1`).
const MAX_TABLE_LEN: usize = 63;

/// How many fresh keys `create` tries before giving up. A collision among 165-bit random
/// keys is practically impossible, so reaching this means something else is wrong.
pub(crate) const CREATE_ATTEMPTS: usize = 10;

/// The SQL dialects the stores speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

impl Dialect {
    /// Django's `connection.ops.max_name_length()`, or the 200 its schema editor uses when the
    /// backend has none (SQLite).
    fn max_name_length(self) -> usize {
        match self {
            Self::Sqlite => 200,
            Self::Postgres => 63,
        }
    }
}

/// Checks a table name before it is interpolated into SQL: `[A-Za-z_][A-Za-z0-9_]*`, at
/// most 63 characters. This is the only value the stores put into SQL text, and it is also
/// double-quoted there, so anything outside this alphabet must be refused.
pub(crate) fn validate_table(name: &str) -> Result<(), Error> {
    let mut bytes = name.bytes();
    let valid_start = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let valid_rest = bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid_start && valid_rest && name.len() <= MAX_TABLE_LEN {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "invalid session table name {name:?}: it must match [A-Za-z_][A-Za-z0-9_]* \
             and be at most {MAX_TABLE_LEN} characters"
        )))
    }
}

/// The SQL text of every statement a store runs, built once per table.
///
/// Every value is a bind parameter (`$n`, which sqlx accepts for SQLite too); the table
/// name, validated by [`validate_table`], is the only interpolated part.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) table: String,
    /// `$1` key, `$2` now → `session_data`, `expire_date`.
    pub(crate) load: String,
    /// `$1` key, `$2` data, `$3` expire date.
    pub(crate) insert: String,
    /// `$1` new data, `$2` new expire date, `$3` key, `$4` expected data, `$5` now.
    pub(crate) update: String,
    /// `$1` key, `$2` now → a row when the key has a live record.
    pub(crate) live: String,
    /// `$1` key.
    pub(crate) delete: String,
    /// `$1` now.
    pub(crate) clear_expired: String,
    /// Django's DDL with `IF NOT EXISTS`, one statement per entry.
    pub(crate) migrate: Vec<String>,
}

impl Queries {
    /// The statements for `table`, which must have passed [`validate_table`].
    pub(crate) fn new(dialect: Dialect, table: &str) -> Self {
        let t = format!("\"{table}\"");
        let expire_index = django_index_name(dialect, table, "expire_date", "");
        let mut migrate = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\"session_key\" varchar(40) NOT NULL PRIMARY KEY, \
                 \"session_data\" text NOT NULL, \"expire_date\" {} NOT NULL)",
                match dialect {
                    Dialect::Sqlite => "datetime",
                    Dialect::Postgres => "timestamp with time zone",
                }
            ),
            format!("CREATE INDEX IF NOT EXISTS \"{expire_index}\" ON {t} (\"expire_date\")"),
        ];
        if dialect == Dialect::Postgres {
            // Django's PostgreSQL schema editor adds this for varchar primary keys, so that
            // `LIKE 'prefix%'` can use an index whatever the database's collation.
            let like_index = django_index_name(dialect, table, "session_key", "_like");
            migrate.push(format!(
                "CREATE INDEX IF NOT EXISTS \"{like_index}\" ON {t} (\"session_key\" varchar_pattern_ops)"
            ));
        }
        Self {
            table: table.to_owned(),
            load: format!(
                "SELECT \"session_data\", \"expire_date\" FROM {t} WHERE \"session_key\" = $1 AND \"expire_date\" > $2"
            ),
            insert: format!(
                "INSERT INTO {t} (\"session_key\", \"session_data\", \"expire_date\") VALUES ($1, $2, $3)"
            ),
            update: format!(
                "UPDATE {t} SET \"session_data\" = $1, \"expire_date\" = $2 \
                 WHERE \"session_key\" = $3 AND \"session_data\" = $4 AND \"expire_date\" > $5"
            ),
            live: format!("SELECT 1 FROM {t} WHERE \"session_key\" = $1 AND \"expire_date\" > $2"),
            delete: format!("DELETE FROM {t} WHERE \"session_key\" = $1"),
            clear_expired: format!("DELETE FROM {t} WHERE \"expire_date\" < $1"),
            migrate,
        }
    }
}

/// Django's `BaseDatabaseSchemaEditor._create_index_name(table, [column], suffix)`, so that
/// `migrate` names indexes exactly as Django's migration does (and `IF NOT EXISTS` finds
/// them on a table Django created).
pub(crate) fn django_index_name(
    dialect: Dialect,
    table: &str,
    column: &str,
    suffix: &str,
) -> String {
    let max_length = dialect.max_name_length();
    let digest = md5_hex(format!("{table}{column}").as_bytes());
    let mut hash_suffix = format!("{}{suffix}", &digest[..8]);
    let name = format!("{table}_{column}_{hash_suffix}");
    if name.len() <= max_length {
        return name;
    }
    // Python: `if len(hash_suffix_part) > max_length / 3` (true division).
    if hash_suffix.len() * 3 > max_length {
        hash_suffix.truncate(max_length / 3);
    }
    let other = ((max_length - hash_suffix.len()) / 2).saturating_sub(1);
    // Table and column names are ASCII, so byte slicing is character slicing.
    let name = format!(
        "{}_{}_{hash_suffix}",
        &table[..table.len().min(other)],
        &column[..column.len().min(other)],
    );
    if name.starts_with(|c: char| c == '_' || c.is_ascii_digit()) {
        format!("D{}", &name[..name.len() - 1])
    } else {
        name
    }
}

/// `datetime` as Django's SQLite backend stores it with `USE_TZ = True`: naive UTC, Python's
/// `str(datetime)`, i.e. `YYYY-MM-DD HH:MM:SS` followed by `.ffffff` unless the microseconds
/// are zero. Text comparison orders these correctly (the part up to the seconds has a fixed
/// width, and a value without a fraction sorts before the same second with one).
/// Nanoseconds are truncated to microseconds; instants before year 1 (Python's minimum)
/// become `0001-01-01 00:00:00`.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_datetime(datetime: OffsetDateTime) -> String {
    let utc = datetime
        .checked_to_offset(UtcOffset::UTC)
        .filter(|utc| utc.year() >= 1);
    let Some(utc) = utc else {
        return "0001-01-01 00:00:00".to_owned();
    };
    let mut text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    );
    let micros = utc.microsecond();
    if micros != 0 {
        // Writing to a String cannot fail.
        let _ = write!(text, ".{micros:06}");
    }
    text
}

/// Reads an `expire_date` Django's SQLite backend wrote (`YYYY-MM-DD HH:MM:SS[.ffffff]`,
/// naive UTC); `None` for anything else.
#[cfg(feature = "sqlite")]
pub(crate) fn parse_sqlite_datetime(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Maps a sqlx error: the database out of reach (I/O, TLS, pool timeouts, connection and
/// resource errors, a busy SQLite file) is [`Error::StoreUnavailable`], a bad URL or option
/// is [`Error::Config`], anything else [`Error::Store`].
pub(crate) fn map_err(dialect: Dialect, error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::unavailable(error),
        sqlx::Error::Configuration(cause) => {
            Error::Config(format!("invalid database configuration: {cause}"))
        }
        sqlx::Error::Database(db) if is_unavailable(dialect, db.code().as_deref()) => {
            Error::unavailable(error)
        }
        _ => Error::store(error),
    }
}

/// Whether a database error code means "out of reach or too busy" rather than a failure of
/// the statement itself.
fn is_unavailable(dialect: Dialect, code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    match dialect {
        // Extended result codes; the primary code is the low byte. SQLITE_IOERR (10),
        // SQLITE_BUSY (5), SQLITE_LOCKED (6), SQLITE_CANTOPEN (14).
        Dialect::Sqlite => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 14)),
        // SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator
        // intervention (shutdown, statement timeout), 40 transaction rollback (deadlock,
        // serialization failure: worth retrying later).
        Dialect::Postgres => ["08", "40", "53", "57"]
            .iter()
            .any(|class| code.starts_with(class)),
    }
}

/// Whether an error from an INSERT means the key is taken.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// MD5 (RFC 1321) as lowercase hex: Django's `names_digest` uses it to name indexes. Not
/// used for anything secret.
fn md5_hex(input: &[u8]) -> String {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32).
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut state: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    let mut message = input.to_vec();
    let bit_len = (input.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_len.to_le_bytes());
    for block in message.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (word, bytes) in m.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(K[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut hex = String::with_capacity(32);
    for byte in state.iter().flat_map(|s| s.to_le_bytes()) {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            md5_hex(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            ),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn index_names_are_djangos() {
        assert_eq!(
            django_index_name(Dialect::Sqlite, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(Dialect::Postgres, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(Dialect::Postgres, "django_session", "session_key", "_like"),
            "django_session_session_key_c0390e0f_like"
        );
        // Too long for PostgreSQL: shortened as Django does (values computed with Django's
        // algorithm in Python).
        let long = "a".repeat(60);
        let name = django_index_name(Dialect::Postgres, &long, "session_key", "_like");
        assert!(name.len() <= 63, "{name}");
        assert_eq!(
            name,
            format!(
                "{}_session_key_{}_like",
                "a".repeat(24),
                &md5_hex(format!("{long}session_key").as_bytes())[..8]
            )
        );
        let name = django_index_name(Dialect::Postgres, &format!("_{long}"), "expire_date", "");
        assert!(name.starts_with("D_"), "{name}");
        assert!(name.len() <= 63, "{name}");
    }

    #[test]
    fn table_names_are_validated() {
        for good in ["django_session", "_x", "Sessions_2", &"a".repeat(63)] {
            assert!(validate_table(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "tábla",
            "django_session\"; DROP TABLE x; --",
            "x'",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(
                matches!(validate_table(bad), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_datetimes_are_pythons_str() {
        use time::macros::datetime;

        assert_eq!(
            sqlite_datetime(datetime!(2099-05-06 07:08:09.123456 UTC)),
            "2099-05-06 07:08:09.123456"
        );
        assert_eq!(
            sqlite_datetime(datetime!(2099-05-06 07:08:09.000001 UTC)),
            "2099-05-06 07:08:09.000001"
        );
        assert_eq!(
            sqlite_datetime(datetime!(2099-05-06 07:08:09 UTC)),
            "2099-05-06 07:08:09"
        );
        assert_eq!(
            sqlite_datetime(datetime!(2099-05-06 09:08:09.5 +02:00)),
            "2099-05-06 07:08:09.500000"
        );
        assert_eq!(
            sqlite_datetime(datetime!(0999-01-02 03:04:05.123456789 UTC)),
            "0999-01-02 03:04:05.123456"
        );
        assert_eq!(
            sqlite_datetime(datetime!(-0001-01-01 00:00 UTC)),
            "0001-01-01 00:00:00"
        );
        // And back.
        for dt in [
            datetime!(2099-05-06 07:08:09.123456 UTC),
            datetime!(2099-05-06 07:08:09 UTC),
            datetime!(2099-05-06 07:08:09.5 UTC),
        ] {
            assert_eq!(parse_sqlite_datetime(&sqlite_datetime(dt)), Some(dt));
        }
        assert_eq!(
            parse_sqlite_datetime("2099-05-06 07:08:09.5"),
            Some(datetime!(2099-05-06 07:08:09.5 UTC))
        );
        assert_eq!(parse_sqlite_datetime("2099-05-06T07:08:09Z"), None);
        assert_eq!(parse_sqlite_datetime("garbage"), None);
        // Text order is time order, with and without a fraction.
        let a = sqlite_datetime(datetime!(2026-01-01 00:00:00 UTC));
        let b = sqlite_datetime(datetime!(2026-01-01 00:00:00.5 UTC));
        let c = sqlite_datetime(datetime!(2026-01-01 00:00:01 UTC));
        assert!(a < b && b < c);
    }

    #[test]
    fn availability_codes() {
        assert!(is_unavailable(Dialect::Sqlite, Some("5")));
        assert!(is_unavailable(Dialect::Sqlite, Some("517")));
        assert!(is_unavailable(Dialect::Sqlite, Some("262")));
        assert!(!is_unavailable(Dialect::Sqlite, Some("1555")));
        assert!(!is_unavailable(Dialect::Sqlite, Some("13")));
        assert!(is_unavailable(Dialect::Postgres, Some("08006")));
        assert!(is_unavailable(Dialect::Postgres, Some("57P01")));
        assert!(!is_unavailable(Dialect::Postgres, Some("23505")));
        assert!(!is_unavailable(Dialect::Postgres, Some("42P01")));
        assert!(!is_unavailable(Dialect::Postgres, None));
    }
}
