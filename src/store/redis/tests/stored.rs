//! What lands in Redis, which keys reach it, and corrupt, conflicting and deleted records.

use super::*;

async fn pttl(raw: &mut ConnectionManager, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_is_the_records_expiry() {
    with_redis(|store, mut raw| async move {
        let tolerance = 5_000;
        let (key, v0) = store
            .create(&record(json!({"a": 1}), time::Duration::minutes(30)))
            .await
            .expect("create");
        let full = store.redis_key(&key);
        assert_eq!(full, format!("{}{}", store.prefix(), key.as_str()));
        let ms = pttl(&mut raw, &full).await;
        assert!(
            (30 * 60_000 - tolerance..=30 * 60_000).contains(&ms),
            "PTTL {ms} after create"
        );
        let stored: String = redis::cmd("GET")
            .arg(&full)
            .query_async(&mut raw)
            .await
            .expect("GET");
        assert_eq!(stored, r#"{"a":1}"#, "plain codec: compact JSON");
        assert_eq!(
            v0.as_bytes(),
            Some(stored.as_bytes()),
            "version = stored bytes"
        );

        let outcome = store
            .save(
                &key,
                &record(json!({"a": 2}), time::Duration::minutes(10)),
                &v0,
            )
            .await
            .expect("save");
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        let ms = pttl(&mut raw, &full).await;
        assert!(
            (10 * 60_000 - tolerance..=10 * 60_000).contains(&ms),
            "PTTL {ms} after save"
        );

        // As a cache, `put` sets the TTL too.
        store
            .put(&key, &record(json!({"a": 3}), time::Duration::minutes(5)))
            .await
            .expect("put");
        let ms = pttl(&mut raw, &full).await;
        assert!(
            (5 * 60_000 - tolerance..=5 * 60_000).contains(&ms),
            "PTTL {ms} after put"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_records_are_not_kept() {
    with_redis(|store, mut raw| async move {
        let (key, version) = store
            .create(&record(json!({"x": 1}), time::Duration::seconds(-5)))
            .await
            .expect("create");
        let exists: bool = redis::cmd("EXISTS")
            .arg(store.redis_key(&key))
            .query_async(&mut raw)
            .await
            .expect("EXISTS");
        assert!(!exists, "a record created expired was written");
        assert!(store.load(&key).await.expect("load").is_none());
        assert_eq!(
            store
                .save(&key, &live(json!({"x": 2})), &version)
                .await
                .expect("save"),
            SaveOutcome::Gone,
            "a record created expired was resurrected by a save"
        );

        let (key, version) = store.create(&live(json!({"x": 1}))).await.expect("create");
        let outcome = store
            .save(
                &key,
                &record(json!({"x": 2}), time::Duration::seconds(-5)),
                &version,
            )
            .await
            .expect("save");
        assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
        assert!(
            !store.exists(&key).await.expect("exists"),
            "saved expired: gone"
        );
    })
    .await;
}

// ----- keys -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_never_reach_redis() {
    let store = unreachable_store("redis://127.0.0.1:1/").with_prefix("p:");
    for hostile in [
        "*",
        "abc*defgh",
        "abcdefgh\r\nFLUSHALL",
        "abcdefgh\nDEL x",
        "a b c d e f g h",
        "abcdefg?",
        "[abcdefgh]",
        "ABCDEFGHIJ",
        "abcdefg",
        "abcdefghij/../../x",
        "abcdefgh\0",
        "",
        &"a".repeat(41),
    ] {
        assert!(
            store.parse_key(hostile).is_none(),
            "{hostile:?} was accepted"
        );
    }
    let key = store
        .parse_key("abcdefgh12345678")
        .expect("a well-formed key");
    assert_eq!(store.redis_key(&key), "p:abcdefgh12345678");
    let generated = SessionKey::generate().expect("rng");
    assert_eq!(store.parse_key(generated.as_str()), Some(generated));
}

// ----- corrupt records, conflicts and deleted records -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_load_as_nothing() {
    with_redis(|store, mut raw| async move {
        let signed = store
            .clone()
            .with_codec(Codec::django("redis-test-secret", Vec::<String>::new()));
        let corrupt: [&[u8]; 6] = [
            b"not json",
            b"[1, 2, 3]",
            b"{\"truncated\": ",
            b"\xff\xfe\x00garbage",
            b"",
            b"\"a string\"",
        ];
        for value in corrupt {
            let key = SessionKey::generate().expect("rng");
            let _: () = redis::cmd("SET")
                .arg(store.redis_key(&key))
                .arg(value)
                .arg("EX")
                .arg(60)
                .query_async(&mut raw)
                .await
                .expect("SET");
            assert!(
                store.load(&key).await.expect("load").is_none(),
                "{value:?} loaded"
            );
            assert!(
                signed.load(&key).await.expect("load").is_none(),
                "{value:?} loaded signed"
            );
        }
        // Plain JSON in a store that expects signed data: tampered or foreign.
        let (key, _) = store
            .create(&live(json!({"admin": true})))
            .await
            .expect("create");
        assert!(store.load(&key).await.expect("load").is_some());
        assert!(
            signed.load(&key).await.expect("load").is_none(),
            "unsigned data loaded in a signed store"
        );
        // Signed with another secret.
        let other = store
            .clone()
            .with_codec(Codec::django("another-secret", Vec::<String>::new()));
        let (key, _) = other
            .create(&live(json!({"admin": true})))
            .await
            .expect("create");
        assert!(signed.load(&key).await.expect("load").is_none());
        assert!(other.load(&key).await.expect("load").is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_after_a_delete_is_gone() {
    with_redis(|store, _| async move {
        let (key, version) = store.create(&live(json!({"n": 1}))).await.expect("create");
        let loaded = store.load(&key).await.expect("load").expect("loads");
        assert_eq!(loaded.version, version);
        store.delete(&key).await.expect("delete");
        store.delete(&key).await.expect("deleting twice is fine");
        assert_eq!(
            store
                .save(&key, &live(json!({"n": 2})), &loaded.version)
                .await
                .expect("save"),
            SaveOutcome::Gone
        );
        assert!(
            store.load(&key).await.expect("load").is_none(),
            "resurrected"
        );
        assert!(!store.exists(&key).await.expect("exists"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_version_conflicts() {
    with_redis(|store, _| async move {
        let (key, v0) = store.create(&live(json!({"n": 0}))).await.expect("create");
        let SaveOutcome::Saved { version: v1, .. } = store
            .save(&key, &live(json!({"n": 1})), &v0)
            .await
            .expect("save")
        else {
            panic!("the first save was refused")
        };
        assert_ne!(v0, v1);
        for stale in [
            v0,
            Version::unversioned(),
            Version::from_counter(0),
            Version::from_bytes(Vec::new()),
        ] {
            assert_eq!(
                store
                    .save(&key, &live(json!({"n": 99})), &stale)
                    .await
                    .expect("save"),
                SaveOutcome::Conflict,
                "{stale:?}"
            );
        }
        let loaded = store.load(&key).await.expect("load").expect("loads");
        assert_eq!(loaded.data["n"], json!(1), "a conflicting save wrote");
        assert_eq!(loaded.version, v1);
    })
    .await;
}
