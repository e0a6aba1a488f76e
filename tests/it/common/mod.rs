//! What the suites share: a real server on a loopback port, `Set-Cookie` / `Vary` parsing, a
//! store wrapper that counts calls, a store that always fails, free ports and random names;
//! the fixtures of the shared PostgreSQL, MySQL/MariaDB and Redis servers ([`servers`]); and
//! the store behind I/O that the Session API and HTTP suites run on besides `MemoryStore`
//! ([`dispatch`]).

// Not every suite uses every helper, and some only exist with some features.
#![allow(dead_code)]

#[cfg(feature = "redis")]
mod cluster;
mod dispatch;
/// The counting TCP proxy of the benchmarks (messages and round trips to PostgreSQL).
#[path = "../../../benches/common/proxy.rs"]
pub mod proxy;
mod servers;

#[cfg(feature = "redis")]
pub use cluster::{Cluster, Primary, clean_up_and_resume};

pub(crate) use dispatch::on_both_paths;
pub use dispatch::{IoStore, SuiteStore};
#[cfg(feature = "mysql")]
pub use servers::MySqlDatabase;
#[cfg(feature = "postgres")]
pub use servers::{PgDatabase, PgTable};
// `note` is only used by suites that need the `redis` or `postgres` feature.
#[allow(unused_imports)]
pub use servers::{RedisPrefix, note, skip};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use sessionbase::store::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use sessionbase::{Error, SessionKey};

// ----- random names and free ports -----

/// A fresh random lowercase alphanumeric string (32 characters).
pub fn random() -> String {
    SessionKey::generate()
        .expect("system RNG")
        .as_str()
        .to_owned()
}

/// A port that was free a moment ago, and never handed out before in this process (so that
/// two tests never race for one port, and one never takes the other's server for its own):
/// for a child process that must be told its port. Servers of the tests themselves bind
/// port 0 instead.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("bind a loopback port")
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

// ----- server and client -----

/// Serves `app` on `127.0.0.1:<random port>` in a spawned task and returns its base URL
/// (`http://127.0.0.1:PORT`, no trailing slash). The server lives as long as the test's
/// runtime.
pub async fn spawn(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("server error");
    });
    format!("http://{addr}")
}

/// A reqwest client that ignores proxy environment variables (requests must reach the
/// loopback server directly) and keeps no cookies: tests send `Cookie` themselves.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

// ----- Set-Cookie and Vary parsing -----

/// One parsed `Set-Cookie` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie {
    /// The header exactly as received.
    pub raw: String,
    pub name: String,
    pub value: String,
    /// Attributes in order: `(name, value)`; flags such as `HttpOnly` have no value.
    pub attrs: Vec<(String, Option<String>)>,
}

impl SetCookie {
    /// Parses `name=value; Attr=val; Flag`.
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';');
        let first = parts.next().unwrap_or_default();
        let (name, value) = first
            .split_once('=')
            .unwrap_or_else(|| panic!("Set-Cookie without name=value: {raw:?}"));
        let attrs = parts
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim().to_owned(), Some(v.trim().to_owned())),
                None => (p.to_owned(), None),
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attrs,
        }
    }

    /// The value of attribute `name` (case-insensitive); `Some(None)` for a flag present
    /// without a value, `None` when absent.
    pub fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// The value of attribute `name`, panicking when it is absent or has no value.
    pub fn attr_value(&self, name: &str) -> &str {
        match self.attr(name) {
            Some(Some(v)) => v,
            _ => panic!("attribute {name} missing or valueless in {:?}", self.raw),
        }
    }

    /// Whether attribute `name` appears (case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Attribute names in order.
    pub fn attr_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// `Max-Age` as a number.
    pub fn max_age(&self) -> Option<i64> {
        self.attr("Max-Age").map(|v| {
            v.unwrap_or_else(|| panic!("valueless Max-Age in {:?}", self.raw))
                .parse()
                .unwrap_or_else(|e| panic!("bad Max-Age in {:?}: {e}", self.raw))
        })
    }

    /// `expires` parsed as an IMF-fixdate (`Wdy, DD Mon YYYY HH:MM:SS GMT`).
    pub fn expires(&self) -> Option<time::OffsetDateTime> {
        self.attr("expires").map(|v| {
            let v = v.unwrap_or_else(|| panic!("valueless expires in {:?}", self.raw));
            parse_http_date(v).unwrap_or_else(|| panic!("bad expires {v:?} in {:?}", self.raw))
        })
    }

    /// Whether this is a deletion cookie: empty value (or Python's `""`), `Max-Age=0` and
    /// expires at the epoch.
    pub fn is_removal(&self) -> bool {
        (self.value.is_empty() || self.value == "\"\"")
            && self.max_age() == Some(0)
            && self.attr("expires") == Some(Some("Thu, 01 Jan 1970 00:00:00 GMT"))
    }
}

/// Parses an IMF-fixdate such as `Fri, 11 Dec 2026 01:55:15 GMT`.
pub fn parse_http_date(s: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Every `Set-Cookie` header of a response, parsed.
pub fn set_cookies(response: &reqwest::Response) -> Vec<SetCookie> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| SetCookie::parse(v.to_str().expect("ASCII Set-Cookie")))
        .collect()
}

/// The single `Set-Cookie` for `name`, panicking when there is none or several.
pub fn session_cookie(response: &reqwest::Response, name: &str) -> SetCookie {
    let mut found: Vec<SetCookie> = set_cookies(response)
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one Set-Cookie for {name}, got {found:?} (status {})",
        response.status()
    );
    found.remove(0)
}

/// Every `Vary` header of a response, one string per header line.
pub fn vary(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::VARY)
        .iter()
        .map(|v| v.to_str().expect("ASCII Vary").to_owned())
        .collect()
}

/// Whether a generated session key looks like one: 32 characters of `[a-z0-9]`.
pub fn is_generated_key(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

// ----- counting store -----

/// Per-method call counts of a [`CountingStore`].
#[derive(Debug, Default)]
pub struct Counts {
    pub load: AtomicUsize,
    pub create: AtomicUsize,
    pub save: AtomicUsize,
    pub touch: AtomicUsize,
    pub delete: AtomicUsize,
    pub exists: AtomicUsize,
    pub clear_expired: AtomicUsize,
}

/// A snapshot of [`Counts`], comparable with `assert_eq!`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountSnapshot {
    pub load: usize,
    pub create: usize,
    pub save: usize,
    pub touch: usize,
    pub delete: usize,
    pub exists: usize,
    pub clear_expired: usize,
}

impl CountSnapshot {
    pub fn total(&self) -> usize {
        self.load
            + self.create
            + self.save
            + self.touch
            + self.delete
            + self.exists
            + self.clear_expired
    }
}

impl Counts {
    pub fn snapshot(&self) -> CountSnapshot {
        CountSnapshot {
            load: self.load.load(Ordering::SeqCst),
            create: self.create.load(Ordering::SeqCst),
            save: self.save.load(Ordering::SeqCst),
            touch: self.touch.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            exists: self.exists.load(Ordering::SeqCst),
            clear_expired: self.clear_expired.load(Ordering::SeqCst),
        }
    }

    pub fn reset(&self) {
        for c in [
            &self.load,
            &self.create,
            &self.save,
            &self.touch,
            &self.delete,
            &self.exists,
            &self.clear_expired,
        ] {
            c.store(0, Ordering::SeqCst);
        }
    }
}

/// Wraps any store and counts the calls to each method. Clones share the counts and the
/// inner store (when the inner store's clones share their data, as `MemoryStore`'s do).
#[derive(Clone, Default)]
pub struct CountingStore<S> {
    inner: S,
    counts: Arc<Counts>,
}

impl<S> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counts: Arc::default(),
        }
    }

    /// The live counters (shared by every clone).
    pub fn counts(&self) -> Arc<Counts> {
        Arc::clone(&self.counts)
    }

    pub fn snapshot(&self) -> CountSnapshot {
        self.counts.snapshot()
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

fn bump(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::SeqCst);
}

impl<S: SessionStore> SessionStore for CountingStore<S> {
    fn parse_key(&self, cookie_value: &str) -> Option<SessionKey> {
        // Not a store call: it never leaves the process.
        self.inner.parse_key(cookie_value)
    }

    // A wrapper keeps the inner store's dispatch and takes the layer's settings to it.
    fn is_immediate(&self) -> bool {
        self.inner.is_immediate()
    }

    fn configured(&self, config: &sessionbase::SessionConfig) -> Option<Self> {
        Some(Self {
            inner: self.inner.configured(config)?,
            counts: Arc::clone(&self.counts),
        })
    }

    async fn load(&self, key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        bump(&self.counts.load);
        self.inner.load(key).await
    }

    async fn create(&self, record: &Record) -> Result<(SessionKey, Version), Error> {
        bump(&self.counts.create);
        self.inner.create(record).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        bump(&self.counts.save);
        self.inner.save(key, record, expected).await
    }

    async fn touch(
        &self,
        key: &SessionKey,
        record: &Record,
        expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        bump(&self.counts.touch);
        self.inner.touch(key, record, expected).await
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), Error> {
        bump(&self.counts.delete);
        self.inner.delete(key).await
    }

    async fn exists(&self, key: &SessionKey) -> Result<bool, Error> {
        bump(&self.counts.exists);
        self.inner.exists(key).await
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        bump(&self.counts.clear_expired);
        self.inner.clear_expired().await
    }
}

// ----- failing store -----

/// How a [`FailingStore`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `Error::unavailable`: the layer answers 503.
    Unavailable,
    /// `Error::store`: the layer answers 500.
    Other,
}

/// A store whose every call fails, and counts how often it was called.
#[derive(Clone)]
pub struct FailingStore {
    failure: Failure,
    calls: Arc<AtomicUsize>,
}

impl FailingStore {
    pub fn new(failure: Failure) -> Self {
        Self {
            failure,
            calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn fail<T>(&self, op: &str) -> Result<T, Error> {
        bump(&self.calls);
        let cause = std::io::Error::other(format!("{op}: backend is down"));
        Err(match self.failure {
            Failure::Unavailable => Error::unavailable(cause),
            Failure::Other => Error::store(cause),
        })
    }
}

impl SessionStore for FailingStore {
    async fn load(&self, _key: &SessionKey) -> Result<Option<LoadedRecord>, Error> {
        self.fail("load")
    }

    async fn create(&self, _record: &Record) -> Result<(SessionKey, Version), Error> {
        self.fail("create")
    }

    async fn save(
        &self,
        _key: &SessionKey,
        _record: &Record,
        _expected: &Version,
    ) -> Result<SaveOutcome, Error> {
        self.fail("save")
    }

    async fn delete(&self, _key: &SessionKey) -> Result<(), Error> {
        self.fail("delete")
    }

    async fn exists(&self, _key: &SessionKey) -> Result<bool, Error> {
        self.fail("exists")
    }

    async fn clear_expired(&self) -> Result<(), Error> {
        self.fail("clear_expired")
    }
}
