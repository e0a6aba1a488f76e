//! Signed-cookie encode and decode per operation (issue #5, benchmark 5): sessionbase's
//! Django-compatible signing (`TimestampSigner`: HMAC-SHA256, base62 timestamp, base64, zlib
//! when it is shorter) against the `cookie` crate's signed jar, the reference.
//!
//! - `sign` / `verify`: only the signature over a ready string (the jar: add a cookie to a
//!   fresh jar through `signed_mut`, read it back through `signed` from a jar holding the
//!   signed value as an original cookie, as a cookie-jar middleware does per request).
//! - `encode_small` / `decode_small`: a small session (`{"user_id":42,"counter":7}`) from
//!   a JSON map to the cookie value and back: for sessionbase `Signer::dumps`/`loads` as
//!   `CookieStore` calls them (compression attempted), for the jar `serde_json` plus the
//!   jar.
//! - `encode_small_nozlib`: sessionbase without the compression attempt, to show its cost.
//! - `encode_1k` / `decode_1k`: a compressible 1 KiB session, where zlib wins.

use std::hint::black_box;
use std::time::Duration;

use cookie::{Cookie, CookieJar, Key};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use sessionbase::signing::{COOKIE_SALT, Signer};

const SECRET: &str = "a benchmark secret of reasonable length, 50 bytes!";
const NOW: i64 = 1_780_000_000;

fn small() -> Map<String, Value> {
    json!({"user_id": 42, "counter": 7})
        .as_object()
        .cloned()
        .expect("object")
}

fn one_kib() -> Map<String, Value> {
    let items: Vec<Value> = (0..24)
        .map(|i| json!({"sku": format!("SKU-{i:04}"), "qty": i % 3 + 1}))
        .collect();
    json!({"user_id": 42, "cart": items})
        .as_object()
        .cloned()
        .expect("object")
}

fn jar_with(signed_value: &str) -> CookieJar {
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new("sessionid", signed_value.to_owned()));
    jar
}

fn signing(c: &mut Criterion) {
    let signer = Signer::new(SECRET, COOKIE_SALT);
    // cookie's Key: 64 bytes of master key, half of them the HMAC-SHA256 signing key.
    let key = Key::from(&[7u8; 64]);
    let mut group = c.benchmark_group("signing");

    for (name, data) in [("small", small()), ("1k", one_kib())] {
        let json = serde_json::to_string(&data).expect("json");
        let payload = sessionbase::signing::encode_payload(&data, true).expect("payload");
        let ours = signer.dumps_at(&data, NOW, true).expect("dumps");
        let mut jar = CookieJar::new();
        jar.signed_mut(&key)
            .add(Cookie::new("sessionid", json.clone()));
        let theirs = jar.get("sessionid").expect("added").value().to_owned();
        if name == "small" {
            eprintln!(
                "cookie value sizes, small session: sessionbase {} bytes, cookie jar {} bytes",
                ours.len(),
                theirs.len()
            );
            group.bench_function("sessionbase/sign", |b| {
                b.iter(|| signer.sign_at(black_box(&payload), NOW))
            });
            let signed = signer.sign_at(&payload, NOW);
            group.bench_function("sessionbase/verify", |b| {
                b.iter(|| {
                    signer
                        .unsign_at(black_box(&signed), Some(1_209_600), NOW)
                        .expect("valid")
                        .1
                })
            });
            group.bench_function("cookie/sign", |b| {
                b.iter(|| {
                    let mut jar = CookieJar::new();
                    jar.signed_mut(&key)
                        .add(Cookie::new("sessionid", black_box(&payload).clone()));
                    jar
                })
            });
            let signed_jar = {
                let mut jar = CookieJar::new();
                jar.signed_mut(&key)
                    .add(Cookie::new("sessionid", payload.clone()));
                jar.get("sessionid").expect("added").value().to_owned()
            };
            group.bench_function("cookie/verify", |b| {
                b.iter_batched(
                    || jar_with(&signed_jar),
                    |jar| jar.signed(&key).get("sessionid").expect("valid"),
                    criterion::BatchSize::SmallInput,
                )
            });
            group.bench_function("sessionbase/encode_small_nozlib", |b| {
                b.iter(|| {
                    signer
                        .dumps_at(black_box(&data), NOW, false)
                        .expect("dumps")
                })
            });
        }
        group.bench_function(format!("sessionbase/encode_{name}"), |b| {
            b.iter(|| signer.dumps_at(black_box(&data), NOW, true).expect("dumps"))
        });
        group.bench_function(format!("sessionbase/decode_{name}"), |b| {
            b.iter(|| {
                signer
                    .loads_at(black_box(&ours), Some(1_209_600), NOW)
                    .expect("valid")
            })
        });
        group.bench_function(format!("cookie/encode_{name}"), |b| {
            b.iter(|| {
                let json = serde_json::to_string(black_box(&data)).expect("json");
                let mut jar = CookieJar::new();
                jar.signed_mut(&key).add(Cookie::new("sessionid", json));
                jar
            })
        });
        group.bench_function(format!("cookie/decode_{name}"), |b| {
            b.iter_batched(
                || jar_with(&theirs),
                |jar| {
                    let cookie = jar.signed(&key).get("sessionid").expect("valid");
                    serde_json::from_str::<Map<String, Value>>(cookie.value()).expect("json")
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(50);
    targets = signing
}
criterion_main!(benches);
