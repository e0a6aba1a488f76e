use std::io::Write;

use base64::Engine;
use flate2::Compression;
use serde_json::{Map, Value, json};

use super::*;

const SECRET: &str = "django_tests_secret_key";
const T: i64 = 1_700_000_000;

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn thirty() -> Map<String, Value> {
    obj(json!({"a": (0..30).collect::<Vec<_>>()}))
}

#[test]
fn base62_matches_django() {
    assert_eq!(base62_encode(T), "1r31eq");
    assert_eq!(base62_encode(0), "0");
    assert_eq!(base62_encode(-61), "-z");
    for n in [0, 1, 61, 62, -1, T, i64::MAX, i64::MIN + 1] {
        assert_eq!(base62_decode(&base62_encode(n)), Some(n));
    }
    assert_eq!(base62_decode(""), None);
    assert_eq!(base62_decode("a+b"), None);
    assert_eq!(base62_decode("zzzzzzzzzzzzzzzzzzzz"), None);
}

#[test]
fn cookie_salt_vectors() {
    let s = Signer::new(SECRET, COOKIE_SALT);
    assert_eq!(
        s.dumps_at(&obj(json!({"hello": "world"})), T, true)
            .unwrap(),
        "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:D7br0mU4xl7_pVmn8oQP-46zTk7_-k7T0N1hmLtBPNc"
    );
    assert_eq!(
        s.dumps_at(&Map::new(), T, true).unwrap(),
        "e30:1r31eq:bm9Z9NUl34o8o-n4aaAkHGlR-ZM2VBuyjHK9uxlDPWY"
    );
    // Django's compressed bytes depend on its zlib; ours must decode them.
    let django = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ktB1bT7J8YBAfxrYUXYy0H6cliM1BhjASNPoFXsL4_o";
    assert_eq!(s.loads_at(django, None, T).unwrap(), thirty());
    let ours = s.dumps_at(&thirty(), T, true).unwrap();
    assert!(ours.starts_with('.'), "compressed when shorter: {ours}");
    assert_eq!(s.loads_at(&ours, None, T).unwrap(), thirty());
}

#[test]
fn session_store_salt_vectors() {
    let s = Signer::new(SECRET, SESSION_STORE_SALT);
    assert_eq!(
        s.dumps_at(&obj(json!({"hello": "world"})), T, true)
            .unwrap(),
        "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc"
    );
    let django = ".eJwNy7sNgDAQRMFeHL_Au_7cmVYQgetA9I7TkeYtu1x3RZhGZzAJkoUOChk11NFAEwVKtHDF5xg33PHAEwdOvJ7vBwQtEZE:1r31eq:ykjX_84uu4XkzFYXUAkIc9ST41QvhzvyUwetrOpR-3s";
    assert_eq!(s.loads_at(django, None, T).unwrap(), thirty());
    let mixed = obj(json!({"_session_expiry": 3600, "x": 1, "b": [true, null, 1.5, "s"]}));
    assert_eq!(
        s.dumps_at(&mixed, T, true).unwrap(),
        "eyJfc2Vzc2lvbl9leHBpcnkiOjM2MDAsIngiOjEsImIiOlt0cnVlLG51bGwsMS41LCJzIl19:1r31eq:opcHBwjhRlg3kOBf_3rhK5AEPTHITbaUDrhnXGtDzWI"
    );
    assert_eq!(
        s.dumps_at(&obj(json!({"k": "é€"})), T, true).unwrap(),
        "eyJrIjoiXHUwMGU5XHUyMGFjIn0:1r31eq:0ExxXUKtMkTj_iniYupmOFYRrH8mauPT3u-H92ZseP4"
    );
    // A valid signature over junk is malformed, not a bad signature (Django: silent {}).
    assert!(matches!(
        s.loads_at(
            "b'invalid data':1r31eq:Wu-C_6_Pyb3z0NiQ50o0gsctmss0MFrIyFIN3kTJdTY",
            None,
            T
        ),
        Err(SigningError::Malformed(_))
    ));
}

#[test]
fn ascii_escaping_matches_python() {
    let data = obj(json!({"e": "é", "emoji": "😀", "del": "\u{7f}", "nl": "a\nb", "q": "\"\\/"}));
    assert_eq!(
        to_django_json(&data),
        r#"{"e":"\u00e9","emoji":"\ud83d\ude00","del":"\u007f","nl":"a\nb","q":"\"\\/"}"#
    );
}

#[test]
fn bad_inputs_are_rejected() {
    let s = Signer::new(SECRET, SESSION_STORE_SALT);
    for bad in [
        "Zmxhc2tkajphbGtkamY=",
        "bad:encoded:value",
        "",
        ":",
        "::",
        "e30:1r31eq:",
    ] {
        assert_eq!(
            s.loads_at(bad, None, T),
            Err(SigningError::BadSignature),
            "{bad:?}"
        );
    }
    // The other salt's signature does not verify.
    let cookie = Signer::new(SECRET, COOKIE_SALT)
        .dumps_at(&Map::new(), T, true)
        .unwrap();
    assert_eq!(
        s.loads_at(&cookie, None, T),
        Err(SigningError::BadSignature)
    );
    // Tampering with any part breaks it.
    let good = s.dumps_at(&obj(json!({"user": 1})), T, false).unwrap();
    let (payload, rest) = good.split_once(':').unwrap();
    let forged = format!("{}:{rest}", B64.encode(br#"{"user":2}"#));
    assert_eq!(
        s.loads_at(&forged, None, T),
        Err(SigningError::BadSignature)
    );
    assert_eq!(
        s.loads_at(&format!("{good}="), None, T),
        Err(SigningError::BadSignature)
    );
    let truncated = &good[..good.len() - 1];
    assert_eq!(
        s.loads_at(truncated, None, T),
        Err(SigningError::BadSignature)
    );
    assert!(!payload.is_empty());
}

#[test]
fn max_age_is_strictly_greater() {
    let s = Signer::new(SECRET, COOKIE_SALT);
    let signed = s.dumps_at(&Map::new(), T, true).unwrap();
    assert!(s.loads_at(&signed, Some(10), T + 10).is_ok());
    assert_eq!(
        s.loads_at(&signed, Some(10), T + 11),
        Err(SigningError::Expired {
            age: 11,
            max_age: 10
        })
    );
}

#[test]
fn fallback_keys_verify_but_never_sign() {
    let old = Signer::new("old-secret", COOKIE_SALT);
    let rotated = Signer::with_fallbacks("new-secret", ["old-secret"], COOKIE_SALT);
    let by_old = old.dumps_at(&obj(json!({"a": 1})), T, true).unwrap();
    assert_eq!(
        rotated.loads_at(&by_old, None, T).unwrap(),
        obj(json!({"a": 1}))
    );
    let by_rotated = rotated.dumps_at(&obj(json!({"a": 1})), T, true).unwrap();
    assert_eq!(
        by_rotated,
        Signer::new("new-secret", COOKIE_SALT)
            .dumps_at(&obj(json!({"a": 1})), T, true)
            .unwrap()
    );
    assert_eq!(
        old.loads_at(&by_rotated, None, T),
        Err(SigningError::BadSignature)
    );
}

#[test]
fn non_objects_and_bombs_are_malformed() {
    assert!(matches!(
        decode_payload(&B64.encode(b"[1,2]")),
        Err(SigningError::Malformed(_))
    ));
    let big = vec![b' '; (MAX_DECOMPRESSED_LEN + 10) as usize];
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
    enc.write_all(&big).unwrap();
    let bomb = format!(".{}", B64.encode(enc.finish().unwrap()));
    assert!(matches!(
        decode_payload(&bomb),
        Err(SigningError::Malformed(_))
    ));
}
