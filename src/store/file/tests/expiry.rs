//! Expiry from `_session_expiry` and the modification time, and `clear_expired`.

use super::*;

#[tokio::test]
async fn expiry_follows_the_modification_time() {
    let dir = TempDir::new();
    let store = dir.store();
    let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
    let path = store.path(&key).unwrap();
    // Just inside the cookie age: live.
    set_mtime(&path, StdDuration::from_secs(14 * 86_400 - 60));
    assert!(store.load(&key).await.unwrap().is_some());
    // Just past it: expired.
    set_mtime(&path, StdDuration::from_secs(14 * 86_400 + 1));
    assert!(store.load(&key).await.unwrap().is_none());
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(
        store
            .save(&key, &record(json!({"a": 2})), &version)
            .await
            .unwrap(),
        SaveOutcome::Gone,
        "an expired file is not renewed by a save"
    );

    // The configured cookie age counts, and browser-close sessions (0) follow it too.
    let short = dir
        .store()
        .with_session_config(&crate::SessionConfig::default().with_cookie_age(Duration::hours(1)));
    for data in [
        json!({}),
        json!({"_session_expiry": 0}),
        json!({"_session_expiry": null}),
    ] {
        let (key, _) = short.create(&record(data.clone())).await.unwrap();
        let path = short.path(&key).unwrap();
        set_mtime(&path, StdDuration::from_secs(59 * 60));
        assert!(short.load(&key).await.unwrap().is_some(), "{data}");
        set_mtime(&path, StdDuration::from_secs(61 * 60));
        assert!(short.load(&key).await.unwrap().is_none(), "{data}");
    }
}

#[tokio::test]
async fn custom_expiry_values() {
    let dir = TempDir::new();
    let store = dir.store();
    let hour_ago = StdDuration::from_secs(3600);
    let cases = [
        // Negative inactivity: always expired, as in Django.
        (json!({"_session_expiry": -10}), StdDuration::ZERO, false),
        // Positive inactivity counts from the last write (Django would never expire it).
        (json!({"_session_expiry": 300}), hour_ago, false),
        (
            json!({"_session_expiry": 300}),
            StdDuration::from_secs(200),
            true,
        ),
        (
            json!({"_session_expiry": 0.5}),
            StdDuration::from_secs(1),
            false,
        ),
        // A date: the date alone counts.
        (
            json!({"_session_expiry": "2000-01-01T00:00:00+00:00"}),
            StdDuration::ZERO,
            false,
        ),
        (
            json!({"_session_expiry": "2999-01-01T00:00:00.000001+00:00"}),
            StdDuration::from_secs(30 * 86_400),
            true,
        ),
        // Something Django could not have written: no session.
        (json!({"_session_expiry": true}), StdDuration::ZERO, false),
        (
            json!({"_session_expiry": "tomorrow"}),
            StdDuration::ZERO,
            false,
        ),
        (json!({"_session_expiry": [1]}), StdDuration::ZERO, false),
    ];
    for (data, age, live) in cases {
        let (key, _) = store.create(&record(data.clone())).await.unwrap();
        set_mtime(&store.path(&key).unwrap(), age);
        assert_eq!(
            load_data(&store, &key).await.is_some(),
            live,
            "{data} {age:?}"
        );
        assert_eq!(store.exists(&key).await.unwrap(), live, "{data} {age:?}");
    }
}

#[tokio::test]
async fn loaded_records_carry_their_expiry_date() {
    let dir = TempDir::new();
    let store = dir.store();
    let (key, _) = store
        .create(&record(
            json!({"_session_expiry": "2999-01-01T00:00:00+00:00"}),
        ))
        .await
        .unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        loaded.expiry_date,
        Some(time::macros::datetime!(2999-01-01 00:00:00 UTC))
    );
    let (key, _) = store.create(&record(json!({}))).await.unwrap();
    let expiry = store
        .load(&key)
        .await
        .unwrap()
        .unwrap()
        .expiry_date
        .unwrap();
    let expected = OffsetDateTime::now_utc() + Duration::weeks(2);
    assert!((expiry - expected).abs() < Duration::seconds(5), "{expiry}");
}

#[tokio::test]
async fn clear_expired_removes_expired_files_only() {
    let dir = TempDir::new();
    let store = dir.store();
    let old = StdDuration::from_secs(15 * 86_400);

    let (live, _) = store.create(&record(json!({"live": true}))).await.unwrap();
    let (dead, _) = store.create(&record(json!({"dead": true}))).await.unwrap();
    set_mtime(&store.path(&dead).unwrap(), old);
    let (negative, _) = store
        .create(&record(json!({"_session_expiry": -10})))
        .await
        .unwrap();
    // An old placeholder left by a crash expires like any empty session.
    fs::write(dir.file("sessionidplaceholder0"), "").unwrap();
    set_mtime(&dir.file("sessionidplaceholder0"), old);
    // Temporary files: a stale one goes, a fresh one (a save under way) stays.
    let stale_temp = format!("sessionid{live}_out_abc123");
    let fresh_temp = format!("sessionid{live}_out_def456");
    fs::write(dir.file(&stale_temp), "{}").unwrap();
    set_mtime(&dir.file(&stale_temp), StdDuration::from_secs(120));
    fs::write(dir.file(&fresh_temp), "{}").unwrap();
    // Foreign files, even old ones, are never touched.
    let foreign = [
        "notes.txt",
        "sessionid",
        "sessionidshort",
        "sessionidUPPERCASE0",
        "sessionidabc.defghij",
        "sessionid_out_abc",
        "xsessionidabcdefgh12",
    ];
    for name in foreign {
        fs::write(dir.file(name), "{}").unwrap();
        set_mtime(&dir.file(name), old);
    }
    // Old files in a subdirectory and behind a symbolic link are not followed.
    fs::create_dir(dir.file("sessionidsubdir000")).unwrap();
    fs::write(dir.file("sessionidsubdir000/sessionidinside00"), "{}").unwrap();
    set_mtime(&dir.file("sessionidsubdir000/sessionidinside00"), old);
    let outside = TempDir::new();
    fs::write(outside.file("target"), "{}").unwrap();
    set_mtime(&outside.file("target"), old);
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.file("target"), dir.file("sessionidsymlink00")).unwrap();

    store.clear_expired().await.unwrap();

    let names = dir.names();
    assert!(names.contains(&format!("sessionid{live}")));
    assert!(!names.contains(&format!("sessionid{dead}")));
    assert!(!names.contains(&format!("sessionid{negative}")));
    assert!(!names.contains("sessionidplaceholder0"));
    assert!(!names.contains(&stale_temp));
    assert!(names.contains(&fresh_temp));
    for name in foreign {
        assert!(names.contains(name), "{name} was removed");
    }
    assert!(dir.file("sessionidsubdir000/sessionidinside00").exists());
    assert!(outside.file("target").exists());
    #[cfg(unix)]
    assert!(names.contains("sessionidsymlink00"));
    assert_eq!(load_data(&store, &live).await, Some(json!({"live": true})));
}
