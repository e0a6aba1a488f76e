//! [`SessionStore::touch`]: the expiry moves, nothing else does, and nothing comes back.

use std::time::Duration as StdDuration;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{Exceptions, create, data, expired, live, load};
use crate::Expiry;
use crate::expiry::EXPIRY_KEY;
use crate::store::{Record, SaveOutcome, SessionStore};

/// How long the records of [`touch_moves_the_expiry_and_keeps_the_rest`] live unless
/// touched: long enough that a loaded machine still touches them in time, short enough to
/// wait out.
const INACTIVITY: Duration = Duration::seconds(4);

/// A record of `value` that expires [`INACTIVITY`] from now, as a `Session` writes one with
/// `set_expiry(Inactivity)`, so that stores that compute expiry from the data see it too.
fn short_lived(value: &Value) -> Record {
    let mut map = data(value.clone()).as_ref().clone();
    map.insert(EXPIRY_KEY.into(), Expiry::Inactivity(INACTIVITY).to_value());
    Record {
        data: std::sync::Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() + INACTIVITY,
    }
}

/// Runs every touch check.
pub(super) async fn run<S: SessionStore>(store: &S, exceptions: Exceptions) {
    touch_moves_the_expiry_and_keeps_the_rest(store, exceptions).await;
    touch_of_a_deleted_record_is_gone(store, exceptions).await;
    touch_of_an_expired_record_is_gone(store, exceptions).await;
    touch_with_a_stale_version_is_a_conflict(store, exceptions).await;
}

/// A touched record still loads after its old expiry, with its data, and the version the
/// touch returned is the record's: a save with it goes through.
pub async fn touch_moves_the_expiry_and_keeps_the_rest<S: SessionStore>(
    store: &S,
    exceptions: Exceptions,
) {
    let value = json!({"n": 1, "s": "kept"});
    let (key, version) = create(store, &short_lived(&value)).await;
    tokio::time::sleep(StdDuration::from_millis(2000)).await;
    let outcome = store
        .touch(&key, &short_lived(&value), &version)
        .await
        .expect("touch");
    let SaveOutcome::Saved {
        key: touched,
        version: after,
    } = outcome
    else {
        panic!("a touch of a live record at its version was refused: {outcome:?}");
    };
    if exceptions.server_side() {
        assert_eq!(touched, key, "a server-side touch keeps the key");
    }
    // Past the expiry the record had before the touch.
    tokio::time::sleep(StdDuration::from_millis(2200)).await;
    let loaded = load(store, &touched)
        .await
        .expect("a touched record expired at its old expiry");
    assert_eq!(
        *loaded.data,
        *short_lived(&value).data,
        "a touch changed the data"
    );
    assert_eq!(
        loaded.version, after,
        "load returns the version touch returned"
    );
    let saved = store
        .save(&touched, &live(json!({"n": 2})), &after)
        .await
        .expect("save");
    assert!(
        matches!(saved, SaveOutcome::Saved { .. }),
        "a save with the version a touch returned was refused: {saved:?}"
    );
}

/// Touching a deleted record is `Gone` and does not bring it back.
pub async fn touch_of_a_deleted_record_is_gone<S: SessionStore>(store: &S, exceptions: Exceptions) {
    if !exceptions.server_side() {
        return;
    }
    let (key, version) = create(store, &live(json!({"x": 1}))).await;
    store.delete(&key).await.expect("delete");
    let outcome = store
        .touch(&key, &live(json!({"x": 1})), &version)
        .await
        .expect("touch");
    assert_eq!(outcome, SaveOutcome::Gone, "a touch of a deleted record");
    assert!(
        load(store, &key).await.is_none(),
        "a touch resurrected a deleted record"
    );
    assert!(
        !store.exists(&key).await.expect("exists"),
        "a touch recreated it"
    );
}

/// Touching an expired record is `Gone` and does not bring it back.
pub async fn touch_of_an_expired_record_is_gone<S: SessionStore>(
    store: &S,
    exceptions: Exceptions,
) {
    if !exceptions.server_side() {
        return;
    }
    let record = expired(json!({"x": 1}));
    let (key, version) = create(store, &record).await;
    let revived = Record {
        data: record.data,
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    };
    let outcome = store.touch(&key, &revived, &version).await.expect("touch");
    assert_eq!(outcome, SaveOutcome::Gone, "a touch of an expired record");
    assert!(
        load(store, &key).await.is_none(),
        "a touch resurrected an expired record"
    );
}

/// A touch with a version the record no longer has is a conflict and changes nothing.
pub async fn touch_with_a_stale_version_is_a_conflict<S: SessionStore>(
    store: &S,
    exceptions: Exceptions,
) {
    if !exceptions.server_side() {
        return;
    }
    let (key, v0) = create(store, &live(json!({"n": 0}))).await;
    let outcome = store
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save");
    let SaveOutcome::Saved { version: v1, .. } = outcome else {
        panic!("save: {outcome:?}");
    };
    let stale = store
        .touch(&key, &live(json!({"n": 0})), &v0)
        .await
        .expect("touch");
    assert_eq!(stale, SaveOutcome::Conflict, "a touch with a stale version");
    let loaded = load(store, &key).await.expect("loads");
    assert_eq!(loaded.data["n"], json!(1), "a conflicting touch wrote");
    assert_eq!(
        loaded.version, v1,
        "a conflicting touch changed the version"
    );
}
