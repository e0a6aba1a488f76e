//! Raw `Cookie` header bytes through a `SessionLayer`, as a client would send them.
//!
//! The input is sent as one `Cookie` header (when `HeaderValue` accepts it), then split at
//! `\n` into several `Cookie` headers. Each request goes through two layers: a `MemoryStore`
//! holding one session under `KNOWN_KEY`, and a `CookieStore` keyed on Django's test secret
//! (so the signed vectors in the corpus load). The handler takes the session with
//! `Session::from_extensions` and reports its key before and after reading the data.
//!
//! Invariants: no panic; the status is below 500; a key reported before the data is read is
//! one the store's `parse_key` accepts (`SessionKey::parse` for the memory store); after
//! the data is read, the memory store's session key is `KNOWN_KEY` or none (a client's key
//! is never adopted), and the cookie store's is a value that verifies.
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use http::header::COOKIE;
use http::{HeaderValue, Request, Response};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sessionbase::signing::{COOKIE_SALT, Signer};
use sessionbase::store::{CacheStore, Record};
use sessionbase::{CookieStore, MemoryStore, Session, SessionKey, SessionLayer, SessionStore};
use tower::{Layer, ServiceExt, service_fn};

/// The one session the memory store holds (the corpus carries cookies naming it).
const KNOWN_KEY: &str = "abcdefgh12345678";
const SECRET: &str = "django_tests_secret_key";

/// What the handler saw: the session key before and after reading the data.
#[derive(Default)]
struct Seen {
    before: Option<SessionKey>,
    after: Option<SessionKey>,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    memory: SessionLayer,
    memory_store: MemoryStore,
    cookie: SessionLayer,
    cookie_store: CookieStore,
    signer: Signer,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
        let memory_store = MemoryStore::new();
        let mut data = Map::new();
        data.insert("user".into(), Value::from(1));
        let record = Record {
            data: Arc::new(data),
            expiry_date: time::OffsetDateTime::now_utc() + time::Duration::days(3650),
        };
        let key = SessionKey::parse(KNOWN_KEY).expect("a valid key");
        runtime
            .block_on(memory_store.put(&key, &record))
            .expect("the memory store accepts the record");
        // Long enough for the 2023 vectors of Django's test suite to load.
        // The layer hands its cookie age to the store; the store used directly gets it too.
        let config =
            sessionbase::SessionConfig::default().with_cookie_age(time::Duration::weeks(52 * 100));
        let cookie_store = CookieStore::new(SECRET).with_session_config(&config);
        Fixture {
            runtime,
            memory: SessionLayer::new(memory_store.clone()),
            memory_store,
            cookie: SessionLayer::new(cookie_store.clone())
                .with_config(config)
                .expect("a valid configuration"),
            cookie_store,
            signer: Signer::new(SECRET, COOKIE_SALT),
        }
    })
}

async fn handler(request: Request<()>) -> Result<Response<Seen>, Infallible> {
    let mut response = Response::new(Seen::default());
    match Session::from_extensions(request.extensions()).await {
        Ok(session) => {
            let before = session.session_key();
            // Reading the data drops a key the store did not know.
            let _ = session.len();
            let after = session.session_key();
            *response.body_mut() = Seen { before, after };
        }
        Err(error) => *response.status_mut() = error.status(),
    }
    Ok(response)
}

fn send(fx: &Fixture, layer: &SessionLayer, headers: &[HeaderValue]) -> Response<Seen> {
    let mut request = Request::new(());
    for value in headers {
        request.headers_mut().append(COOKIE, value.clone());
    }
    let service = layer.layer(service_fn(handler));
    let response = fx
        .runtime
        .block_on(service.oneshot(request))
        .unwrap_or_else(|never| match never {});
    assert!(
        response.status().as_u16() < 500,
        "status {}",
        response.status()
    );
    response
}

fn check(fx: &Fixture, headers: &[HeaderValue]) {
    let seen = send(fx, &fx.memory, headers).into_body();
    if let Some(key) = &seen.before {
        assert!(
            SessionKey::parse(key.as_str()).is_some(),
            "memory store session carries a key SessionKey::parse rejects: {:?}",
            key.as_str()
        );
        assert!(fx.memory_store.parse_key(key.as_str()).is_some());
    }
    if let Some(key) = &seen.after {
        assert_eq!(key.as_str(), KNOWN_KEY, "a client's key was adopted");
    }

    let seen = send(fx, &fx.cookie, headers).into_body();
    if let Some(key) = &seen.before {
        assert!(
            fx.cookie_store.parse_key(key.as_str()).is_some(),
            "cookie store session carries a key its parse_key rejects: {:?}",
            key.as_str()
        );
    }
    if let Some(key) = &seen.after {
        assert!(
            fx.signer.unsign_at(key.as_str(), None, 0).is_ok(),
            "cookie store kept a value that does not verify: {:?}",
            key.as_str()
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        check(fx, &[value]);
    }
    if data.contains(&b'\n') {
        let headers: Vec<HeaderValue> = data
            .split(|&b| b == b'\n')
            .filter_map(|part| HeaderValue::from_bytes(part).ok())
            .collect();
        check(fx, &headers);
    }
});
