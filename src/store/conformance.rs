//! The store conformance suite: one generic test body that every [`SessionStore`] runs.
//!
//! It checks the contract the session layer relies on: unknown keys load as nothing,
//! `create` never overwrites and concurrent creates never collide, saves are compare-and-swap
//! and never resurrect a deleted record, a touch moves only the expiry and never resurrects
//! one either (`conformance/touch.rs`), expiry is honoured on load, `clear_expired` keeps live
//! records, every JSON type round-trips, and `flush`, `cycle_key` and concurrent saves work
//! through the [`Session`] API, and a user's sessions are listed and revoked
//! (`conformance/user_index.rs`). A store that by its nature cannot do a thing states it in
//! [`Exceptions`], with the reason, and the suite checks the rest.
//!
//! Third-party stores can run it too (feature `conformance`):
//!
//! ```
//! # #[cfg(feature = "memory")]
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use sessionbase::store::conformance::{Exceptions, run};
//! run(sessionbase::MemoryStore::new(), Exceptions::none()).await;
//! # });
//! ```
//!
//! Failures panic with a message naming the check: this is test code.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use super::{LoadedRecord, Record, SaveOutcome, SessionStore, Version};
use crate::expiry::EXPIRY_KEY;
use crate::{Expiry, Session, SessionConfig, SessionKey};

mod touch;
pub mod user_index;
pub use touch::{
    touch_moves_the_expiry_and_keeps_the_rest, touch_of_a_deleted_record_is_gone,
    touch_of_an_expired_record_is_gone, touch_with_a_stale_version_is_a_conflict,
};

/// What a store cannot do, each with the reason. The suite skips exactly these checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct Exceptions {
    /// The store keeps nothing on the server (the signed-cookie store): it cannot refuse a
    /// deleted or replaced session, `exists` is always false, and two copies of one session
    /// cannot see each other's changes.
    pub no_server_state: Option<&'static str>,
    /// The store cannot list a user's sessions (it keeps the default
    /// [`user_records`](SessionStore::user_records)): the user index checks then only check
    /// that it says so with [`Error::Unsupported`](crate::Error::Unsupported).
    pub no_user_listing: Option<&'static str>,
}

impl Exceptions {
    /// A store that does everything.
    pub fn none() -> Self {
        Self::default()
    }

    /// A store that keeps the whole session on the client.
    pub fn client_side(reason: &'static str) -> Self {
        Self {
            no_server_state: Some(reason),
            no_user_listing: Some(reason),
        }
    }

    fn server_side(&self) -> bool {
        self.no_server_state.is_none()
    }
}

fn data(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        other => panic!("test data must be an object, got {other}"),
    }
}

fn live(value: Value) -> Record {
    Record {
        data: data(value),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    }
}

/// A record already expired, the way a `Session` writes one (`set_expiry` of a negative
/// inactivity), so that stores that compute expiry from the data see it too.
fn expired(value: Value) -> Record {
    let mut map = data(value).as_ref().clone();
    map.insert(
        EXPIRY_KEY.into(),
        Expiry::Inactivity(Duration::seconds(-10)).to_value(),
    );
    Record {
        data: Arc::new(map),
        expiry_date: OffsetDateTime::now_utc() - Duration::seconds(10),
    }
}

async fn load<S: SessionStore>(store: &S, key: &SessionKey) -> Option<LoadedRecord> {
    store.load(key).await.expect("load must not fail")
}

async fn create<S: SessionStore>(store: &S, record: &Record) -> (SessionKey, Version) {
    store.create(record).await.expect("create must not fail")
}

/// Runs every check against `store`.
pub async fn run<S: SessionStore + Clone>(store: S, exceptions: Exceptions) {
    unknown_keys_load_as_nothing(&store, exceptions).await;
    attacker_chosen_keys_are_never_adopted(&store).await;
    create_then_load(&store, exceptions).await;
    concurrent_creates_never_collide(&store).await;
    save_is_compare_and_swap(&store, exceptions).await;
    save_of_deleted_record_is_gone(&store, exceptions).await;
    touch::run(&store, exceptions).await;
    expiry_is_honoured_on_load(&store).await;
    clear_expired_keeps_live_records(&store).await;
    every_json_type_round_trips(&store).await;
    flush_and_cycle_key_through_session(&store, exceptions).await;
    concurrent_saves_keep_different_keys(&store, exceptions).await;
    an_immediate_store_answers_at_the_first_poll(&store).await;
    user_index::run(&store, exceptions).await;
}

/// A store whose [`SessionStore::is_immediate`] is `true` (the session then polls its calls
/// once, inline) completes every call the first time it is polled. Nothing to check for
/// other stores.
pub async fn an_immediate_store_answers_at_the_first_poll<S: SessionStore>(store: &S) {
    use std::task::{Context, Poll, Waker};
    if !store.is_immediate() {
        return;
    }
    fn first_poll<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
        let call = std::pin::pin!(call);
        match call.poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("an immediate store's {what} was pending at its first poll"),
        }
    }
    let record = live(json!({"n": 1}));
    let (key, version) = first_poll("create", store.create(&record)).expect("create");
    let loaded = first_poll("load", store.load(&key)).expect("load");
    assert!(loaded.is_some(), "an immediate store lost what it created");
    let outcome = first_poll("save", store.save(&key, &record, &version)).expect("save");
    let (key, version) = match outcome {
        SaveOutcome::Saved { key, version } => (key, version),
        other => panic!("save after create: {other:?}"),
    };
    let outcome = first_poll("touch", store.touch(&key, &record, &version)).expect("touch");
    let key = match outcome {
        SaveOutcome::Saved { key, .. } => key,
        other => panic!("touch after save: {other:?}"),
    };
    first_poll("exists", store.exists(&key)).expect("exists");
    first_poll("delete", store.delete(&key)).expect("delete");
    first_poll("clear_expired", store.clear_expired()).expect("clear_expired");
}

/// Unknown keys load as nothing and do not exist; deleting one is not an error.
pub async fn unknown_keys_load_as_nothing<S: SessionStore>(store: &S, exceptions: Exceptions) {
    let key = SessionKey::generate().expect("rng");
    if let Some(key) = store.parse_key(key.as_str()) {
        assert!(
            load(store, &key).await.is_none(),
            "an unknown key loaded a record"
        );
        assert!(
            !store.exists(&key).await.expect("exists"),
            "an unknown key exists"
        );
        store
            .delete(&key)
            .await
            .expect("deleting an unknown key is not an error");
    } else {
        assert!(
            !exceptions.server_side(),
            "a server-side store rejected a generated key"
        );
    }
}

/// Session fixation: a key the client chose (well-formed but unknown to the store) is never
/// adopted; a write creates a fresh key and nothing is stored under the client's.
pub async fn attacker_chosen_keys_are_never_adopted<S: SessionStore + Clone>(store: &S) {
    let chosen = SessionKey::generate().expect("rng");
    let config = Arc::new(SessionConfig::default());
    let session = Session::load(store.clone(), Arc::clone(&config), chosen.as_str())
        .await
        .expect("load");
    assert!(session.session_key().is_none(), "an unknown key was kept");
    session.insert("user", 1).expect("insert");
    session.save().await.expect("save");
    let issued = session.session_key().expect("a saved session has a key");
    assert_ne!(issued, chosen, "the client's key was adopted");
    if let Some(chosen) = store.parse_key(chosen.as_str()) {
        assert!(
            load(store, &chosen).await.is_none(),
            "a record was stored under the client's key"
        );
    }
}

/// A created record loads back under the key `create` returned, and the key parses.
pub async fn create_then_load<S: SessionStore>(store: &S, exceptions: Exceptions) {
    let (key, version) = create(store, &live(json!({"a": 1, "b": "two"}))).await;
    assert_eq!(
        store.parse_key(key.as_str()).as_ref(),
        Some(&key),
        "the store rejects its own key"
    );
    let loaded = load(store, &key).await.expect("a created record loads");
    assert_eq!(*loaded.data, *data(json!({"a": 1, "b": "two"})));
    assert_eq!(
        loaded.version, version,
        "load returns the version create returned"
    );
    if exceptions.server_side() {
        assert!(
            store.exists(&key).await.expect("exists"),
            "a created record exists"
        );
        store.delete(&key).await.expect("delete");
        assert!(
            load(store, &key).await.is_none(),
            "a deleted record still loads"
        );
        assert!(
            !store.exists(&key).await.expect("exists"),
            "a deleted record exists"
        );
    }
}

/// Fifty concurrent creates give fifty distinct keys, each loading its own data.
pub async fn concurrent_creates_never_collide<S: SessionStore + Clone>(store: &S) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let (key, _) = create(&store, &live(json!({ "i": i }))).await;
                (i, key)
            })
        })
        .collect();
    let mut keys = HashSet::new();
    for task in tasks {
        let (i, key) = task.await.expect("create task");
        let loaded = load(store, &key).await.expect("each created record loads");
        assert_eq!(loaded.data["i"], json!(i), "a create overwrote another");
        assert!(keys.insert(key), "two creates returned the same key");
    }
}

/// A save with the loaded version succeeds; with a stale one it is a conflict and writes
/// nothing.
pub async fn save_is_compare_and_swap<S: SessionStore>(store: &S, exceptions: Exceptions) {
    let (key, v0) = create(store, &live(json!({"n": 0}))).await;
    let outcome = store
        .save(&key, &live(json!({"n": 1})), &v0)
        .await
        .expect("save");
    let SaveOutcome::Saved {
        key: key1,
        version: v1,
    } = outcome
    else {
        panic!("a save with the current version was refused: {outcome:?}");
    };
    let loaded = load(store, &key1).await.expect("a saved record loads");
    assert_eq!(loaded.data["n"], json!(1));
    assert_eq!(loaded.version, v1);
    if exceptions.server_side() {
        assert_eq!(key1, key, "a server-side save keeps the key");
        let stale = store
            .save(&key, &live(json!({"n": 2})), &v0)
            .await
            .expect("save");
        assert_eq!(
            stale,
            SaveOutcome::Conflict,
            "a save with a stale version was not a conflict"
        );
        assert_eq!(
            load(store, &key).await.expect("loads").data["n"],
            json!(1),
            "a conflicting save wrote"
        );
    }
}

/// Saving a record that was deleted fails with `Gone` and does not resurrect it (Django's
/// `UpdateError`, which becomes `SessionInterrupted`).
pub async fn save_of_deleted_record_is_gone<S: SessionStore>(store: &S, exceptions: Exceptions) {
    if !exceptions.server_side() {
        return;
    }
    let (key, version) = create(store, &live(json!({"x": 1}))).await;
    store.delete(&key).await.expect("delete");
    let outcome = store
        .save(&key, &live(json!({"x": 2})), &version)
        .await
        .expect("save");
    assert_eq!(
        outcome,
        SaveOutcome::Gone,
        "a save of a deleted record did not fail"
    );
    assert!(
        load(store, &key).await.is_none(),
        "a deleted record was resurrected"
    );
}

/// An expired record never loads, whether created or saved expired.
pub async fn expiry_is_honoured_on_load<S: SessionStore>(store: &S) {
    let (key, _) = create(store, &expired(json!({"x": 1}))).await;
    assert!(
        load(store, &key).await.is_none(),
        "a record created expired loaded"
    );

    let (key, version) = create(store, &live(json!({"x": 1}))).await;
    if let SaveOutcome::Saved { key, .. } = store
        .save(&key, &expired(json!({"x": 2})), &version)
        .await
        .expect("save")
    {
        assert!(
            load(store, &key).await.is_none(),
            "a record saved expired loaded"
        );
    }
}

/// `clear_expired` succeeds and leaves live records loadable.
pub async fn clear_expired_keeps_live_records<S: SessionStore>(store: &S) {
    let (live_key, _) = create(store, &live(json!({"keep": true}))).await;
    let (dead_key, _) = create(store, &expired(json!({"keep": false}))).await;
    store.clear_expired().await.expect("clear_expired");
    assert!(
        load(store, &live_key).await.is_some(),
        "clear_expired removed a live record"
    );
    assert!(
        load(store, &dead_key).await.is_none(),
        "an expired record loads after clear_expired"
    );
    assert!(
        !store.exists(&dead_key).await.expect("exists"),
        "an expired record exists after clear_expired"
    );
}

/// Values of every JSON type come back exactly.
pub async fn every_json_type_round_trips<S: SessionStore>(store: &S) {
    let value = json!({
        "null": null,
        "true": true,
        "false": false,
        "int": -42,
        "big": i64::MAX,
        "unsigned": u64::MAX,
        "float": 1.5,
        "tiny": 1e-300,
        "string": "plain",
        "unicode": "é€😀 \u{7f}",
        "escapes": "quote\" backslash\\ newline\n tab\t nul\u{0}",
        "empty_string": "",
        "array": [1, "two", null, [3.5, {"four": 4}]],
        "empty_array": [],
        "object": {"nested": {"deeper": [true]}},
        "empty_object": {},
        "_session_expiry": 3600,
    });
    let (key, _) = create(store, &live(value.clone())).await;
    let loaded = load(store, &key).await.expect("loads");
    assert_eq!(Value::Object(loaded.data.as_ref().clone()), value);
    let keys: Vec<_> = loaded.data.keys().cloned().collect();
    let expected: Vec<_> = data(value).keys().cloned().collect();
    assert_eq!(keys, expected, "key order changed");
}

/// `flush` and `cycle_key` through `Session`: the data moves to a new key, the old key stops
/// loading, and a flushed session loses its key and its record.
pub async fn flush_and_cycle_key_through_session<S: SessionStore + Clone>(
    store: &S,
    exceptions: Exceptions,
) {
    let config = Arc::new(SessionConfig::default());
    let session = Session::new(store.clone(), Arc::clone(&config));
    session.insert("user", 7).expect("insert");
    session.save().await.expect("save creates");
    let first = session.session_key().expect("a saved session has a key");

    let session = Session::load(store.clone(), Arc::clone(&config), first.as_str())
        .await
        .expect("load");
    assert_eq!(session.get::<i32>("user").expect("get"), Some(7));
    session.cycle_key().await.expect("cycle_key");
    let second = session.session_key().expect("a cycled session has a key");
    assert_eq!(
        session.get::<i32>("user").expect("get"),
        Some(7),
        "cycle_key lost the data"
    );
    let reloaded = Session::load(store.clone(), Arc::clone(&config), second.as_str())
        .await
        .expect("load");
    assert_eq!(
        reloaded.get::<i32>("user").expect("get"),
        Some(7),
        "the new key does not load the data"
    );
    if exceptions.server_side() {
        assert_ne!(first, second, "cycle_key kept the key");
        let old = Session::load(store.clone(), Arc::clone(&config), first.as_str())
            .await
            .expect("load");
        assert!(
            old.session_key().is_none(),
            "the old key still loads after cycle_key"
        );
    }

    reloaded.flush().await.expect("flush");
    assert!(reloaded.session_key().is_none(), "flush kept the key");
    assert!(reloaded.is_empty(), "flush left data");
    if exceptions.server_side() {
        let gone = Session::load(store.clone(), Arc::clone(&config), second.as_str())
            .await
            .expect("load");
        assert!(gone.session_key().is_none(), "the flushed key still loads");
    }
}

/// How many concurrent writers share one session in [`concurrent_saves_keep_different_keys`].
pub const WRITERS: i32 = 200;

/// Two hundred concurrent sessions on one record, each setting its own key, keep every key;
/// writers of the same key leave one of their values (last writer wins).
pub async fn concurrent_saves_keep_different_keys<S: SessionStore + Clone>(
    store: &S,
    exceptions: Exceptions,
) {
    if !exceptions.server_side() {
        return;
    }
    let config = Arc::new(SessionConfig::default());
    let session = Session::new(store.clone(), Arc::clone(&config));
    session.insert("base", true).expect("insert");
    session.save().await.expect("save");
    let key = session.session_key().expect("key");

    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (store, config, key) = (store.clone(), Arc::clone(&config), key.clone());
            tokio::spawn(async move {
                let s = Session::load(store, config, key.as_str())
                    .await
                    .expect("load");
                s.insert(format!("k{i}"), i).expect("insert");
                s.insert("same", i).expect("insert");
                s.save().await.expect("a concurrent save failed");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("save task");
    }
    let merged = Session::load(store.clone(), config, key.as_str())
        .await
        .expect("load");
    for i in 0..WRITERS {
        assert_eq!(
            merged.get::<i32>(&format!("k{i}")).expect("get"),
            Some(i),
            "k{i} was lost"
        );
    }
    assert_eq!(merged.get::<bool>("base").expect("get"), Some(true));
    let same = merged
        .get::<i32>("same")
        .expect("get")
        .expect("same is set");
    assert!((0..WRITERS).contains(&same));
}
