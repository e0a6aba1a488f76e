use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::*;
use crate::expiry::Expiry;
use crate::store::conformance::{self, Exceptions};

const SECRET: &str = "the encrypted cookie store's test secret, 32+ bytes";
const OTHER: &str = "another secret of at least thirty-two bytes, too";

fn store() -> EncryptedCookieStore {
    EncryptedCookieStore::new(SECRET).unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn seal(store: &EncryptedCookieStore, v: Value, at: i64) -> String {
    store.seal(&obj(v), at).unwrap().as_str().to_owned()
}

/// Through `parse_key` as the layer goes; `None` when it rejects the value.
async fn load_cookie(store: &EncryptedCookieStore, value: &str) -> Option<Map<String, Value>> {
    let key = store.parse_key(value)?;
    load_raw(store, key.as_str()).await
}

/// `load` directly, even on values `parse_key` would reject.
async fn load_raw(store: &EncryptedCookieStore, value: &str) -> Option<Map<String, Value>> {
    let key = SessionKey::from_validated(value);
    let loaded = store.load(&key).await.unwrap()?;
    assert_eq!(loaded.version, Version::unversioned());
    Some(loaded.data.as_ref().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    conformance::run(
        store(),
        Exceptions::client_side(
            "the whole session is in the cookie: nothing on the server to delete, replace or compare",
        ),
    )
    .await;
}

#[tokio::test]
async fn round_trips_and_hides_the_data() {
    let store = store();
    let value = seal(&store, json!({"card": "4111 1111 1111 1111"}), now());
    assert_eq!(
        load_cookie(&store, &value).await,
        Some(obj(json!({"card": "4111 1111 1111 1111"})))
    );
    let bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("4111"));
    assert!(!value.contains("4111"));
    // A fresh nonce each time: the same data never gives the same value.
    let again = seal(&store, json!({"card": "4111 1111 1111 1111"}), now());
    assert_ne!(value, again);
    assert_ne!(bytes[..12], URL_SAFE_NO_PAD.decode(&again).unwrap()[..12]);
}

#[tokio::test]
async fn every_flipped_byte_is_no_session() {
    let store = store();
    let value = seal(&store, json!({"user": "alice"}), now());
    let bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut tampered = bytes.clone();
            tampered[i] ^= bit;
            let tampered = URL_SAFE_NO_PAD.encode(&tampered);
            assert_eq!(
                load_cookie(&store, &tampered).await,
                None,
                "byte {i} bit {bit}"
            );
        }
    }
    // And every character of the text replaced by another base64 character.
    for i in 0..value.len() {
        let mut text = value.clone().into_bytes();
        text[i] = if text[i] == b'A' { b'B' } else { b'A' };
        let text = String::from_utf8(text).unwrap();
        // The last character may carry unused bits only.
        if URL_SAFE_NO_PAD.decode(&text).ok() != Some(bytes.clone()) {
            assert_eq!(load_raw(&store, &text).await, None, "character {i}");
        }
    }
    assert!(
        load_cookie(&store, &value).await.is_some(),
        "the original still loads"
    );
}

#[tokio::test]
async fn every_truncation_and_extension_is_no_session() {
    let store = store();
    let value = seal(&store, json!({"user": "alice"}), now());
    for len in 0..value.len() {
        assert_eq!(load_raw(&store, &value[..len]).await, None, "length {len}");
        assert_eq!(
            load_cookie(&store, &value[..len]).await,
            None,
            "length {len}"
        );
    }
    let bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
    for len in 0..bytes.len() {
        let cut = URL_SAFE_NO_PAD.encode(&bytes[..len]);
        assert_eq!(load_raw(&store, &cut).await, None, "{len} bytes");
    }
    for extra in ["A", "AA", "AAAA", "_-_-"] {
        assert_eq!(load_raw(&store, &format!("{value}{extra}")).await, None);
    }
}

#[tokio::test]
async fn a_wrong_key_is_no_session_and_fallbacks_rotate() {
    let old = EncryptedCookieStore::new(OTHER).unwrap();
    let value = seal(&old, json!({"user": "alice"}), now());
    assert_eq!(load_cookie(&store(), &value).await, None);
    let rotated = store().with_fallbacks([OTHER]).unwrap();
    assert_eq!(
        load_cookie(&rotated, &value).await,
        Some(obj(json!({"user": "alice"})))
    );
    // The next save encrypts under the current secret, which the old store cannot open.
    let resealed = seal(&rotated, json!({"user": "alice"}), now());
    assert!(load_cookie(&store(), &resealed).await.is_some());
    assert_eq!(load_cookie(&old, &resealed).await, None);
    // Fallbacks are replaced, not added.
    let replaced = rotated.with_fallbacks(Vec::<&str>::new()).unwrap();
    assert_eq!(load_cookie(&replaced, &value).await, None);
}

#[tokio::test]
async fn a_value_of_another_cookie_name_is_no_session() {
    let sessionid = store();
    let other = store().with_session_config(&SessionConfig::default().with_cookie_name("other"));
    let value = seal(&sessionid, json!({"user": "alice"}), now());
    assert!(load_cookie(&sessionid, &value).await.is_some());
    assert_eq!(load_cookie(&other, &value).await, None);
}

#[tokio::test]
async fn age_leeway_and_custom_expiry_are_checked() {
    let age = Duration::hours(1);
    let store = store().with_session_config(&SessionConfig::default().with_cookie_age(age));
    let t = now();
    let fresh = seal(&store, json!({"a": 1}), t - 3590);
    assert!(load_cookie(&store, &fresh).await.is_some());
    // Replayed after its age: refused, whatever the cookie's Max-Age said.
    let replayed = seal(&store, json!({"a": 1}), t - 3602);
    assert_eq!(load_cookie(&store, &replayed).await, None);
    let future = seal(&store, json!({"a": 1}), t + 3600);
    assert_eq!(load_cookie(&store, &future).await, None);
    let expiry = Expiry::Inactivity(Duration::seconds(10)).to_value();
    let ended = seal(&store, json!({"_session_expiry": expiry}), t - 20);
    assert_eq!(load_cookie(&store, &ended).await, None);
    let malformed = seal(&store, json!({"_session_expiry": "soon"}), t);
    assert_eq!(load_cookie(&store, &malformed).await, None);
}

#[tokio::test]
async fn an_oversized_session_is_a_clear_error() {
    let store = store();
    let big = "x".repeat(5000);
    let record = Record {
        data: Arc::new(obj(json!({ "big": big }))),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    let err = store.create(&record).await.unwrap_err();
    let Error::CookieTooLarge { size, limit } = err else {
        panic!("expected CookieTooLarge, got {err:?}");
    };
    assert_eq!(limit, 4096);
    assert!(size > limit);
    // The limit counts the configured name: the largest value that fits differs by its length.
    let fits = |store: &EncryptedCookieStore, n: usize| {
        store
            .seal(&obj(json!({ "v": "y".repeat(n) })), now())
            .is_ok()
    };
    let long_name = "n".repeat(100);
    let named = store
        .clone()
        .with_session_config(&SessionConfig::default().with_cookie_name(long_name));
    let largest = (0..4096).rev().find(|&n| fits(&store, n)).unwrap();
    assert!(!fits(&named, largest), "a longer name leaves less room");
}

#[tokio::test]
async fn hostile_values_are_no_session_without_panicking() {
    let store = store();
    let long = "A".repeat(5000);
    for value in [
        "",
        "x",
        "not base64!",
        "....",
        "%00",
        &long,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert_eq!(load_cookie(&store, value).await, None, "{value:?}");
        assert_eq!(load_raw(&store, value).await, None, "{value:?}");
    }
}

#[test]
fn short_secrets_are_refused_and_debug_hides_them() {
    assert!(matches!(
        EncryptedCookieStore::new("short"),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        store().with_fallbacks(["short"]),
        Err(Error::Config(_))
    ));
    let debug = format!("{:?}", store().with_fallbacks([OTHER]).unwrap());
    assert!(!debug.contains(SECRET) && !debug.contains(OTHER), "{debug}");
    assert!(debug.contains("fallbacks: 1"), "{debug}");
}

#[test]
fn a_configuration_shared_with_django_is_refused() {
    let shared = SessionConfig::default().with_shared_with_django(true);
    let Err(Error::Config(message)) = store().check_config(&shared) else {
        panic!("must refuse");
    };
    assert!(message.contains("Django"), "{message}");
    assert!(store().check_config(&SessionConfig::default()).is_ok());
}

#[tokio::test]
async fn the_shortest_value_an_empty_session_seals_to_loads() {
    let store = store();
    let value = seal(&store, json!({}), now());
    assert_eq!(value.len(), cipher::MIN_VALUE_LEN, "{value}");
    assert_eq!(load_cookie(&store, &value).await, Some(Map::new()));
    // One character shorter is no value this store seals.
    assert!(store.parse_key(&value[1..]).is_none());
}
