//! Property tests of the fuzz invariants, on stable `cargo test` (proptest, 256 cases each):
//!
//! 1. Cookie parsing: any `Cookie` header value driven through a `SessionLayer` never panics,
//!    and the key the layer takes from it is none or the last well-formed `sessionid` value
//!    of the header; it is adopted only when the store holds it.
//! 2. Key validation: `SessionKey::parse` accepts exactly 8 to 40 characters of `[a-z0-9]`,
//!    and round-trips.
//! 3. Signed values: `Signer::loads_at` never panics, and loads only what it signed itself,
//!    exactly; one changed character, another secret, or an age past `max_age` fails.
//! 4. Records: `Codec::decode` (plain and Django) never panics, and `decode(encode(map))` is
//!    `map`.
//! 5. Expiry: `Expiry::from_value` never panics on any JSON, nor does anything computed from
//!    what it returns.

use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, header};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use sessionbase::expiry::{self, Expiry};
use sessionbase::signing::{self, COOKIE_SALT, SESSION_STORE_SALT, Signer, SigningError};
use sessionbase::store::{Codec, Record};
use sessionbase::{CookieStore, MemoryStore, Session, SessionKey, SessionLayer, SessionStore};
use time::{Duration, OffsetDateTime};
use tower::{ServiceBuilder, ServiceExt, service_fn};

const SECRET: &str = "property-tests-secret-key";

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Shrunk failures are printed; no regression files next to the tests.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|rt| rt.block_on(future))
}

// ----- strategies -----

/// Every byte `HeaderValue::from_bytes` accepts on its own: tab, visible ASCII, space, and
/// 0x80 to 0xFF.
fn header_bytes() -> Vec<u8> {
    (0..=255u8)
        .filter(|b| HeaderValue::from_bytes(&[*b]).is_ok())
        .collect()
}

/// Stands for the live session's cookie value; never a valid header byte itself.
const LIVE: u8 = 0x01;

/// `Cookie` header values: arbitrary valid bytes, fragments of cookies put together, or
/// `name=value` pairs with names and values near the session cookie's.
fn cookie_header() -> impl Strategy<Value = Vec<u8>> {
    let byte = proptest::sample::select(header_bytes());
    let fragment = prop_oneof![
        Just(b"sessionid=".to_vec()),
        Just(b"sessionid".to_vec()),
        Just(b" sessionid = ".to_vec()),
        Just(b"=".to_vec()),
        Just(b";".to_vec()),
        Just(b"; ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(vec![LIVE]),
        "[a-z0-9]{6,42}".prop_map(String::into_bytes),
        "[A-Za-z0-9_.:-]{0,60}".prop_map(String::into_bytes),
        "\\PC{0,6}".prop_map(String::into_bytes),
        proptest::collection::vec(byte.clone(), 0..8),
    ];
    let name = prop_oneof![
        4 => Just(b"sessionid".to_vec()),
        1 => Just(b" sessionid\t".to_vec()),
        1 => Just(b"SESSIONID".to_vec()),
        1 => Just(b"sessionid2".to_vec()),
        1 => Just(b"session id".to_vec()),
        1 => "[a-z]{1,8}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        3 => Just(vec![LIVE]),
        1 => Just(vec![b'"', LIVE, b'"']),
        1 => Just(vec![b' ', LIVE, b'x']),
        3 => "[a-z0-9]{8,40}".prop_map(String::into_bytes),
        1 => "\"[a-z0-9]{8,40}\"".prop_map(String::into_bytes),
        2 => "[a-z0-9]{0,45}".prop_map(String::into_bytes),
        1 => "[A-Za-z0-9_.:-]{0,60}".prop_map(String::into_bytes),
        1 => proptest::collection::vec(byte.clone(), 0..12),
    ];
    let separator = prop_oneof![Just(&b"; "[..]), Just(&b";"[..]), Just(&b" ; "[..])];
    let pairs = proptest::collection::vec((name, value, separator), 0..6).prop_map(|pairs| {
        let mut out = Vec::new();
        for (i, (name, value, separator)) in pairs.into_iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(separator);
            }
            out.extend_from_slice(&name);
            out.push(b'=');
            out.extend_from_slice(&value);
        }
        out
    });
    prop_oneof![
        1 => proptest::collection::vec(byte, 0..256),
        1 => proptest::collection::vec(fragment, 0..24).prop_map(|v| v.concat()),
        3 => pairs,
    ]
}

/// JSON numbers that print and parse back to the same value: integers of every size, and
/// floats with a short decimal form.
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (any::<i32>(), 0..6i32).prop_map(|(m, e)| Value::from(f64::from(m) / 10f64.powi(e))),
        any::<String>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::vec(("\\PC{0,12}", json_value()), 0..8)
        .prop_map(|kv| kv.into_iter().collect())
}

/// Strings shaped like signed values, and anything else.
fn signed_lookalike() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.:=-]{0,120}",
        (
            "\\.?[A-Za-z0-9_-]{0,64}",
            "-?[0-9A-Za-z]{0,12}",
            "[A-Za-z0-9_=-]{0,48}"
        )
            .prop_map(|(p, t, s)| format!("{p}:{t}:{s}")),
    ]
}

// ----- 1. cookie parsing -----

/// What the service saw.
#[derive(Debug)]
struct Seen {
    /// The key the layer took from the cookie, before first use.
    taken: Option<String>,
    /// The key after first use (an unknown key is dropped then).
    kept: Option<String>,
    len: usize,
    status: StatusCode,
    set_cookie: Vec<String>,
}

/// Sends one request with `Cookie: <header>` through a `SessionLayer` over a `service_fn`
/// that takes the session with `Session::from_extensions` and reads it.
async fn drive<S: SessionStore>(store: S, header: &[u8]) -> Result<Seen, TestCaseError> {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let out = Arc::clone(&seen);
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(store))
        .service(service_fn(move |request: Request<String>| {
            let out = Arc::clone(&out);
            let session = Session::from_extensions(request.extensions());
            async move {
                let session = session.await?;
                let taken = session.session_key().map(|k| k.to_string());
                let len = session.len();
                let kept = session.session_key().map(|k| k.to_string());
                *out.lock().expect("lock") = Some((taken, kept, len));
                Ok::<_, sessionbase::Error>(Response::new(String::new()))
            }
        }));
    let mut request = Request::new(String::new());
    let value = HeaderValue::from_bytes(header).map_err(|e| TestCaseError::fail(e.to_string()))?;
    request.headers_mut().insert(header::COOKIE, value);
    let response = service
        .oneshot(request)
        .await
        .map_err(|e| TestCaseError::fail(format!("the service failed: {e}")))?;
    let (taken, kept, len) = seen
        .lock()
        .expect("lock")
        .take()
        .ok_or_else(|| TestCaseError::fail("the service never ran"))?;
    Ok(Seen {
        taken,
        kept,
        len,
        status: response.status(),
        set_cookie: response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect(),
    })
}

/// The oracle: every value of a cookie named `sessionid` (RFC 6265 pairs split on ';',
/// ASCII whitespace trimmed, one pair of double quotes removed), in order.
fn session_values(header: &[u8]) -> Vec<&[u8]> {
    header
        .split(|&b| b == b';')
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            let name = pair[..eq].trim_ascii();
            let mut value = pair[eq + 1..].trim_ascii();
            if value.len() >= 2 && value.starts_with(b"\"") && value.ends_with(b"\"") {
                value = &value[1..value.len() - 1];
            }
            (name == b"sessionid").then_some(value)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// `header` with each `LIVE` marker replaced by `live`.
fn with_live(header: &[u8], live: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    for &b in header {
        if b == LIVE {
            out.extend_from_slice(live.as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// The invariants for one store: `parse` is its key grammar, `live` the one session it holds.
fn check_cookie_parsing<S: SessionStore>(
    store: S,
    parse: impl Fn(&str) -> bool,
    live: &str,
    header: &[u8],
) -> Result<(), TestCaseError> {
    let seen = block_on(drive(store, header))?;
    prop_assert_eq!(seen.status, StatusCode::OK);

    // The key taken is none, or well-formed and sent.
    if let Some(key) = &seen.taken {
        prop_assert!(parse(key), "taken key {:?} is not well-formed", key);
        prop_assert!(
            contains(header, key.as_bytes()),
            "taken key {:?} is not in the header",
            key
        );
    }
    // It is the last well-formed `sessionid` value (D1).
    let values = session_values(header);
    let expected = values
        .iter()
        .rev()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find(|v| parse(v));
    prop_assert_eq!(seen.taken.as_deref(), expected);

    // After first use, only the live session's key survives, with its data.
    match seen.kept.as_deref() {
        Some(key) => {
            prop_assert_eq!(key, live);
            prop_assert_eq!(seen.taken.as_deref(), Some(live));
            prop_assert_eq!(seen.len, 1);
        }
        None => {
            prop_assert!(seen.taken.as_deref() != Some(live));
            prop_assert_eq!(seen.len, 0);
        }
    }

    // A read saves nothing; a cookie sent for a session that turned out empty is deleted.
    let removal = seen
        .set_cookie
        .iter()
        .all(|c| c.starts_with("sessionid=;") && c.contains("Max-Age=0"));
    prop_assert!(removal, "unexpected Set-Cookie {:?}", seen.set_cookie);
    let should_delete = !values.is_empty() && seen.kept.is_none();
    prop_assert_eq!(seen.set_cookie.len(), usize::from(should_delete));
    Ok(())
}

fn record(data: Value) -> Record {
    Record {
        data: Arc::new(data.as_object().cloned().expect("object")),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cookie_parsing_memory_store(header in cookie_header()) {
        let store = MemoryStore::new();
        let (live, _) = block_on(store.create(&record(json!({"live": true})))).expect("create");
        let header = with_live(&header, live.as_str());
        check_cookie_parsing(store, |k| SessionKey::parse(k).is_some(), live.as_str(), &header)?;
    }

    #[test]
    fn cookie_parsing_cookie_store(header in cookie_header()) {
        let store = CookieStore::new(SECRET);
        let (live, _) = block_on(store.create(&record(json!({"live": true})))).expect("create");
        let header = with_live(&header, live.as_str());
        let grammar = store.clone();
        check_cookie_parsing(
            store,
            move |k| grammar.parse_key(k).is_some(),
            live.as_str(),
            &header,
        )?;
    }
}

// ----- 2. key validation -----

fn key_candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]{0,48}",
        "[a-z0-9]{7,9}",
        "[a-z0-9]{39,41}",
        "[a-zA-Z0-9._/*'\"%-]{6,42}",
        "\\PC{0,45}",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_parse_accepts_exactly_8_to_40_lowercase_alphanumerics(s in key_candidate()) {
        let well_formed = (8..=40).contains(&s.chars().count())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let parsed = SessionKey::parse(&s);
        prop_assert_eq!(parsed.is_some(), well_formed, "{:?}", s);
        if let Some(key) = parsed {
            prop_assert_eq!(key.as_str(), s.as_str());
            prop_assert_eq!(key.to_string(), s.clone());
            prop_assert_eq!(SessionKey::parse(key.as_str()), Some(key.clone()));
            prop_assert_eq!(format!("{key:?}"), "SessionKey(..)");
        }
        // Whatever a store validated by its own rules comes back as it went in.
        let validated = SessionKey::from_validated(&s);
        prop_assert_eq!(validated.as_str(), s.as_str());
    }
}

// ----- 3. signed values -----

/// `value` with the character at `i` (a char index) replaced by `with`.
fn replace_char(value: &str, i: usize, with: char) -> String {
    value
        .chars()
        .enumerate()
        .map(|(j, c)| if j == i { with } else { c })
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_values_load_only_when_signed_here(
        s in signed_lookalike(),
        max_age in proptest::option::of(-10i64..1_000_000),
        now in any::<i64>(),
    ) {
        let signer = Signer::with_fallbacks(SECRET, ["an older secret"], COOKIE_SALT);
        prop_assert!(signer.loads_at(&s, max_age, now).is_err(), "{:?}", s);
        prop_assert!(signer.unsign_at(&s, max_age, now).is_err(), "{:?}", s);
        let _ = signing::decode_payload(&s);
        // Through the cookie store as the layer uses it: rejected by shape, or no session.
        let store = CookieStore::new(SECRET);
        if let Some(key) = store.parse_key(&s) {
            prop_assert_eq!(block_on(store.load(&key)).expect("load"), None);
        }
    }

    #[test]
    fn signed_maps_load_back_exactly_and_a_changed_character_fails(
        data in json_map(),
        at in -1_000_000_000i64..4_000_000_000,
        age in 0i64..10_000_000,
        compress in any::<bool>(),
        index in any::<proptest::sample::Index>(),
        with in prop_oneof![
            proptest::char::range('0', '9'),
            proptest::char::range('A', 'Z'),
            proptest::char::range('a', 'z'),
            Just('-'), Just('_'), Just('.'), Just(':'), Just('='), Just('é'),
        ],
    ) {
        let signer = Signer::new(SECRET, COOKIE_SALT);
        let signed = signer.dumps_at(&data, at, compress).expect("sign");
        prop_assert_eq!(signer.loads_at(&signed, None, at), Ok(data.clone()));
        // The age check: at the limit it loads, a second later it has expired.
        prop_assert_eq!(signer.loads_at(&signed, Some(age), at + age), Ok(data.clone()));
        let expired = signer.loads_at(&signed, Some(age), at + age + 1);
        prop_assert!(matches!(expired, Err(SigningError::Expired { .. })), "{:?}", expired);
        // Another secret or salt fails; a fallback verifies.
        prop_assert!(Signer::new("another secret", COOKIE_SALT).loads_at(&signed, None, at).is_err());
        prop_assert!(Signer::new(SECRET, SESSION_STORE_SALT).loads_at(&signed, None, at).is_err());
        let rotated = Signer::with_fallbacks("the next secret", [SECRET], COOKIE_SALT);
        prop_assert_eq!(rotated.loads_at(&signed, None, at), Ok(data.clone()));
        // One changed character anywhere fails.
        let i = index.index(signed.chars().count());
        let original = signed.chars().nth(i).expect("in range");
        if original != with {
            let mutated = replace_char(&signed, i, with);
            let loaded = signer.loads_at(&mutated, None, at);
            prop_assert!(loaded.is_err(), "{:?} -> {:?} loads: {:?}", signed, mutated, loaded);
        }
        // Dropping the last character fails too.
        let truncated = &signed[..signed.len() - 1];
        prop_assert!(signer.loads_at(truncated, None, at).is_err());
    }
}

// ----- 4. record decoding -----

proptest! {
    #![proptest_config(config())]

    #[test]
    fn codec_decode_never_panics(s in prop_oneof![signed_lookalike(), "\\{.{0,40}\\}"]) {
        let plain = Codec::plain().decode(&s);
        let expected = serde_json::from_str::<Map<String, Value>>(&s).ok();
        prop_assert_eq!(plain, expected);
        let django = Codec::django(SECRET, ["an older secret"]);
        prop_assert_eq!(django.decode(&s), None);
    }

    #[test]
    fn codec_round_trips_json_maps(data in json_map()) {
        for codec in [Codec::plain(), Codec::django(SECRET, Vec::<String>::new())] {
            let text = codec.encode(&data).expect("encode");
            prop_assert!(text.is_ascii(), "{:?}", text);
            prop_assert_eq!(codec.decode(&text), Some(data.clone()));
        }
        // A record written before a key rotation still decodes.
        let text = Codec::django(SECRET, Vec::<String>::new()).encode(&data).expect("encode");
        prop_assert_eq!(
            Codec::django("the next secret", [SECRET]).decode(&text),
            Some(data.clone())
        );
    }
}

// ----- 5. expiry -----

/// ISO 8601 date-times with every optional part, at the edges of the calendar.
fn isoformat() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(0u32),
            Just(1),
            Just(1970),
            Just(2026),
            Just(9999),
            0u32..10_000
        ],
        1u32..=13,
        0u32..=32,
        0u32..=24,
        0u32..=60,
        0u32..=60,
        proptest::option::of("[0-9]{1,12}"),
        prop_oneof![
            Just(String::new()),
            Just("Z".to_owned()),
            (prop_oneof![Just('+'), Just('-')], 0u32..=26, 0u32..=60)
                .prop_map(|(s, h, m)| format!("{s}{h:02}:{m:02}")),
        ],
    )
        .prop_map(|(y, mo, d, h, mi, s, frac, off)| {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}")
        })
}

/// Dates at the very ends of the calendar with an offset that moves them past it in UTC
/// (Python's `isoformat()` of an aware datetime keeps its offset, so Django writes these).
fn edge_isoformat() -> impl Strategy<Value = String> {
    (any::<bool>(), 1u32..=23, 0u32..=59).prop_map(|(end, h, m)| {
        if end {
            format!("9999-12-31T23:59:59-{h:02}:{m:02}")
        } else {
            format!("0000-01-01T00:00:00+{h:02}:{m:02}")
        }
    })
}

fn expiry_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        edge_isoformat().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        isoformat().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn expiry_from_value_never_panics(value in expiry_value()) {
        let Ok(Some(expiry)) = Expiry::from_value(&value) else {
            return Ok(());
        };
        // Nothing the layer and the stores compute from what it read may panic either.
        let now = OffsetDateTime::now_utc();
        let cookie_age = Duration::weeks(2);
        let _ = expiry::expiry_age(now, Some(&expiry), cookie_age);
        let date = expiry::expiry_date(now, Some(&expiry), cookie_age);
        let _ = date <= now;
        let _ = date.min(now + cookie_age);
        let _ = expiry::expire_at_browser_close(Some(&expiry), false);
    }

    /// What `from_value` accepted can be stored again (`set_expiry(get_expiry())`) and read
    /// back.
    #[test]
    fn expiry_read_from_a_record_can_be_written_back(value in expiry_value()) {
        let Ok(Some(expiry)) = Expiry::from_value(&value) else {
            return Ok(());
        };
        let stored = std::panic::catch_unwind(|| expiry.to_value());
        prop_assert!(stored.is_ok(), "Expiry::to_value panicked on {:?} read from {}", expiry, value);
        let stored = stored.unwrap_or_default();
        prop_assert!(
            Expiry::from_value(&stored).is_ok(),
            "{} is read as {:?} but written as {}, which does not read back",
            value, expiry, stored
        );
    }
}
