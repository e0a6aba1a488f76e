//! The SQL stores: Django's `db` session backend on SQLite ([`SqliteStore`]), PostgreSQL
//! ([`PostgresStore`]) and MySQL or MariaDB ([`MySqlStore`]), through sqlx.
//!
//! They are one store, generic over the database (`store.rs`: every operation, written once),
//! and a small backend per database (one file each) for what differs: the placeholder syntax
//! (`$n` or `?`), the identifier quote, how `expire_date` is bound (Django's SQLite text,
//! `timestamp with time zone`, or MySQL's `datetime(6)` in UTC), Django's DDL and index names,
//! and which database errors mean "unavailable". They share one test suite (`tests.rs`) on
//! top of the conformance suite.
//!
//! Every store uses Django's table (`django_session`, or another name), its schema and its
//! index names, and `session_data` is [`Codec`](crate::store::Codec)'s encoding: a Django
//! project and a Rust service with the same `SECRET_KEY` can share the table.
//!
//! [`SqliteStore`]: crate::store::SqliteStore
//! [`PostgresStore`]: crate::store::PostgresStore
//! [`MySqlStore`]: crate::store::MySqlStore

use md5::{Digest, Md5};

use crate::Error;

mod impls;
#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;
mod store;
#[cfg(test)]
mod tests;

use store::Backend;

/// Django's table for sessions.
pub(crate) const DEFAULT_TABLE: &str = "django_session";

/// Longest table name accepted: PostgreSQL's identifier limit (`NAMEDATALEN - 1`).
const MAX_TABLE_LEN: usize = 63;

/// How many fresh keys `create` tries before giving up. A collision among 165-bit random
/// keys is practically impossible, so reaching this means something else is wrong.
const CREATE_ATTEMPTS: usize = 10;

/// Checks a table name before it is interpolated into SQL: `[A-Za-z_][A-Za-z0-9_]*`, at
/// most 63 characters. This is the only value the stores put into SQL text, and it is also
/// quoted there, so anything outside this alphabet must be refused.
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

/// Django's `BaseDatabaseSchemaEditor._create_index_name(table, [column], suffix)` for a
/// backend whose `max_name_length()` is `max_length`, so that `migrate` names indexes exactly
/// as Django's migration does (and finds them on a table Django created).
pub(crate) fn django_index_name(
    max_length: usize,
    table: &str,
    column: &str,
    suffix: &str,
) -> String {
    let digest = names_digest(&[table, column]);
    let mut hash_suffix = format!("{digest}{suffix}");
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

/// Django's `names_digest(*args, length=8)`: the first 8 hex digits of the MD5 of the parts
/// (naming only, nothing secret).
fn names_digest(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
    }
    let digest = md5.finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Maps a sqlx error: the database out of reach (I/O, TLS, pool timeouts, connection and
/// resource errors, a busy SQLite file, a deadlock) is [`Error::StoreUnavailable`], a bad URL
/// or option is [`Error::Config`], anything else [`Error::Store`].
fn map_err<B: Backend>(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::unavailable(error),
        sqlx::Error::Configuration(cause) => {
            Error::Config(format!("invalid database configuration: {cause}"))
        }
        sqlx::Error::Database(db) if B::is_unavailable(db.as_ref()) => Error::unavailable(error),
        _ => Error::store(error),
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    /// SQLite has no `max_name_length()`: Django's schema editor uses 200.
    const SQLITE: usize = 200;
    /// PostgreSQL's `NAMEDATALEN - 1`.
    const POSTGRES: usize = 63;

    #[test]
    fn names_digest_is_md5() {
        // md5("django_sessionexpire_date") starts with Django's a5c62663.
        assert_eq!(names_digest(&["django_session", "expire_date"]), "a5c62663");
        assert_eq!(names_digest(&[""]), "d41d8cd9");
        assert_eq!(names_digest(&["a", "bc"]), "90015098");
    }

    #[test]
    fn index_names_are_djangos() {
        assert_eq!(
            django_index_name(SQLITE, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(POSTGRES, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(64, "django_session", "expire_date", ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(POSTGRES, "django_session", "session_key", "_like"),
            "django_session_session_key_c0390e0f_like"
        );
        // Too long for PostgreSQL: shortened as Django does (values computed with Django's
        // algorithm in Python).
        let long = "a".repeat(60);
        let name = django_index_name(POSTGRES, &long, "session_key", "_like");
        assert!(name.len() <= 63, "{name}");
        assert_eq!(
            name,
            format!(
                "{}_session_key_{}_like",
                "a".repeat(24),
                names_digest(&[&long, "session_key"])
            )
        );
        let name = django_index_name(POSTGRES, &format!("_{long}"), "expire_date", "");
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
            "django_session`; DROP TABLE x; --",
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
}
