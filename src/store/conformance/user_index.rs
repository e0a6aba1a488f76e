//! The user index checks: listing a user's sessions and revoking them (see
//! [`crate::store::user_index`]).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Exceptions, create, expired, live, load};
use crate::store::{Revoke, SaveOutcome, SessionHandle, SessionStore, UserSessions};
use crate::{Error, Session, SessionConfig, SessionKey};

/// Runs every user index check; a store that cannot list (a client-side store, or one that
/// states [`Exceptions::no_user_listing`]) must refuse with [`Error::Unsupported`] instead.
pub async fn run<S: SessionStore + Clone>(store: &S, exceptions: Exceptions) {
    if exceptions.no_user_listing.is_some() || !exceptions.server_side() {
        let refused = store.user_records("anyone").await;
        assert!(
            matches!(refused, Err(Error::Unsupported(_))),
            "a client-side store must refuse to list with Error::Unsupported: {refused:?}"
        );
        return;
    }
    lists_the_live_sessions_of_the_user_only(store).await;
    revokes_one_by_handle_of_that_user_only(store).await;
    revokes_all_and_all_but_the_current_one(store).await;
    a_revoked_session_is_never_resurrected_by_a_concurrent_save(store).await;
    a_revoked_session_is_never_resurrected_by_a_cycle_key(store).await;
    a_session_whose_user_changed_is_not_listed_for_the_old_user(store).await;
    handles_do_not_reveal_keys(store).await;
    log_out_other_devices_through_the_session(store).await;
    sessions_that_would_not_load_are_not_listed(store).await;
}

/// A session's listing holds only the sessions that would load under its configuration:
/// none past `absolute_max_age`, none with a malformed `_session_expiry`.
pub async fn sessions_that_would_not_load_are_not_listed<S: SessionStore + Clone>(store: &S) {
    let user = fresh_user();
    let two_hours_ago = time::OffsetDateTime::now_utc().unix_timestamp() - 7200;
    create(
        store,
        &of_user(
            store,
            &json!(user),
            json!({"_sessionbase_created": two_hours_ago}),
        ),
    )
    .await;
    create(
        store,
        &of_user(
            store,
            &json!(user),
            json!({"_session_expiry": "not an expiry"}),
        ),
    )
    .await;
    let config =
        Arc::new(SessionConfig::default().with_absolute_max_age(Some(time::Duration::hours(1))));
    let session = Session::new(store.clone(), config);
    session.insert(store.user_id_key(), &user).expect("insert");
    session.save().await.expect("save");
    let listed = session.user_sessions().await.expect("user_sessions");
    assert_eq!(listed.len(), 1, "a session that would not load was listed");
    assert!(listed[0].is_current);
}

/// A user id no earlier run used (the servers keep records between runs).
fn fresh_user() -> String {
    format!("u{}", SessionKey::generate().expect("rng"))
}

fn of_user<S: SessionStore>(store: &S, user: &Value, extra: Value) -> crate::store::Record {
    let mut value = extra;
    value[store.user_id_key()] = user.clone();
    live(value)
}

/// A user's live sessions are listed, whether the id is stored as a string (as Django does)
/// or a number; another user's, an anonymous one and an expired one are not.
pub async fn lists_the_live_sessions_of_the_user_only<S: SessionStore>(store: &S) {
    let user = fresh_user();
    let numeric = u64::from_str_radix(&user[1..9], 36).expect("digits");
    let (a, _) = create(store, &of_user(store, &json!(user), json!({"note": "a"}))).await;
    let (b, _) = create(store, &of_user(store, &json!(user), json!({"note": "b"}))).await;
    create(store, &of_user(store, &json!(fresh_user()), json!({}))).await;
    create(store, &live(json!({"anonymous": true}))).await;
    let mut gone = expired(json!({}));
    Arc::make_mut(&mut gone.data).insert(store.user_id_key().into(), json!(user));
    create(store, &gone).await;
    let (n, _) = create(store, &of_user(store, &json!(numeric), json!({}))).await;

    let listed = store.user_sessions(&user).await.expect("user_sessions");
    let mut notes: Vec<_> = listed.iter().map(|s| s.data["note"].clone()).collect();
    notes.sort_by_key(|v| v.to_string());
    assert_eq!(
        notes,
        [json!("a"), json!("b")],
        "the user's live sessions only"
    );
    assert!(listed.iter().all(|s| !s.is_current));
    let handles: Vec<_> = listed.iter().map(|s| s.handle.clone()).collect();
    for key in [&a, &b] {
        assert!(
            handles.contains(&SessionHandle::of(&store.record_key(key))),
            "each listed session carries its record's handle"
        );
    }
    let by_number = store
        .user_sessions(&numeric.to_string())
        .await
        .expect("list");
    assert_eq!(
        by_number.len(),
        1,
        "a numeric user id compares by its digits"
    );
    assert_eq!(
        by_number[0].handle,
        SessionHandle::of(&store.record_key(&n))
    );
    assert!(
        store
            .user_sessions(&fresh_user())
            .await
            .expect("list")
            .is_empty(),
        "a user with no session has none listed"
    );
}

/// Revoking by handle deletes that session and no other; the handle of another user's
/// session revokes nothing when given with this user.
pub async fn revokes_one_by_handle_of_that_user_only<S: SessionStore>(store: &S) {
    let (user, other) = (fresh_user(), fresh_user());
    let (a, _) = create(store, &of_user(store, &json!(user), json!({}))).await;
    let (b, _) = create(store, &of_user(store, &json!(user), json!({}))).await;
    let (theirs, _) = create(store, &of_user(store, &json!(other), json!({}))).await;
    let their_handle = SessionHandle::of(&store.record_key(&theirs));
    let revoked = store
        .revoke_user_sessions(&user, Revoke::One(&their_handle))
        .await
        .expect("revoke");
    assert_eq!(revoked, 0, "another user's handle revoked a session");
    assert!(
        load(store, &theirs).await.is_some(),
        "another user's session was revoked"
    );

    let handle = SessionHandle::of(&store.record_key(&a));
    let revoked = store
        .revoke_user_sessions(&user, Revoke::One(&handle))
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    assert!(
        load(store, &a).await.is_none(),
        "the revoked session still loads"
    );
    assert!(
        load(store, &b).await.is_some(),
        "another session was revoked too"
    );
    assert_eq!(store.user_sessions(&user).await.expect("list").len(), 1);
}

/// `AllExcept` keeps the one session named; `All` then revokes the rest.
pub async fn revokes_all_and_all_but_the_current_one<S: SessionStore>(store: &S) {
    let user = fresh_user();
    let mut keys = Vec::new();
    for _ in 0..3 {
        keys.push(
            create(store, &of_user(store, &json!(user), json!({})))
                .await
                .0,
        );
    }
    let revoked = store
        .revoke_user_sessions(&user, Revoke::AllExcept(&keys[0]))
        .await
        .expect("revoke");
    assert_eq!(revoked, 2);
    assert!(
        load(store, &keys[0]).await.is_some(),
        "the kept session was revoked"
    );
    for key in &keys[1..] {
        assert!(
            load(store, key).await.is_none(),
            "a revoked session still loads"
        );
    }
    let revoked = store
        .revoke_user_sessions(&user, Revoke::All)
        .await
        .expect("revoke");
    assert_eq!(revoked, 1);
    assert!(load(store, &keys[0]).await.is_none());
    assert!(store.user_sessions(&user).await.expect("list").is_empty());
}

/// A save (or touch) that loaded the session before it was revoked finds it gone: a revoked
/// session never comes back.
pub async fn a_revoked_session_is_never_resurrected_by_a_concurrent_save<S: SessionStore>(
    store: &S,
) {
    let user = fresh_user();
    let record = of_user(store, &json!(user), json!({"n": 1}));
    let (key, _) = create(store, &record).await;
    let loaded = load(store, &key).await.expect("created");
    store
        .revoke_user_sessions(&user, Revoke::All)
        .await
        .expect("revoke");
    let changed = of_user(store, &json!(user), json!({"n": 2}));
    let saved = store
        .save(&key, &changed, &loaded.version)
        .await
        .expect("save");
    assert_eq!(
        saved,
        SaveOutcome::Gone,
        "a save resurrected a revoked session"
    );
    let touched = store
        .touch(&key, &record, &loaded.version)
        .await
        .expect("touch");
    assert_eq!(
        touched,
        SaveOutcome::Gone,
        "a touch resurrected a revoked session"
    );
    assert!(load(store, &key).await.is_none());
    assert!(store.user_sessions(&user).await.expect("list").is_empty());
}

/// A session loaded before its revocation that then cycles its key (a login) is not brought
/// back under the new key: the cycle fails with `SessionInterrupted` and leaves nothing.
pub async fn a_revoked_session_is_never_resurrected_by_a_cycle_key<S: SessionStore + Clone>(
    store: &S,
) {
    let user = fresh_user();
    let config = Arc::new(SessionConfig::default());
    let device = Session::new(store.clone(), Arc::clone(&config));
    device.insert(store.user_id_key(), &user).expect("insert");
    device.save().await.expect("save");
    let key = device.session_key().expect("saved");
    let loaded = Session::load(store.clone(), config, key.as_ref())
        .await
        .expect("load");
    assert_eq!(loaded.len(), 1, "loaded before the revocation");
    store
        .revoke_user_sessions(&user, Revoke::All)
        .await
        .expect("revoke");
    assert!(
        matches!(loaded.cycle_key().await, Err(Error::SessionInterrupted)),
        "cycle_key of a revoked session must be interrupted"
    );
    assert!(loaded.session_key().is_none());
    assert!(
        store.user_sessions(&user).await.expect("list").is_empty(),
        "cycle_key resurrected a revoked session under a new key"
    );
}

/// A session saved with another user in it is listed for that user, not the old one.
pub async fn a_session_whose_user_changed_is_not_listed_for_the_old_user<S: SessionStore>(
    store: &S,
) {
    let (old, new) = (fresh_user(), fresh_user());
    let (key, version) = create(store, &of_user(store, &json!(old), json!({}))).await;
    let outcome = store
        .save(&key, &of_user(store, &json!(new), json!({})), &version)
        .await
        .expect("save");
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    assert!(
        store.user_sessions(&old).await.expect("list").is_empty(),
        "listed for the user it no longer belongs to"
    );
    assert_eq!(store.user_sessions(&new).await.expect("list").len(), 1);
    let revoked = store
        .revoke_user_sessions(&old, Revoke::All)
        .await
        .expect("revoke");
    assert_eq!(
        revoked, 0,
        "revoking the old user's sessions revoked the new user's"
    );
    assert!(load(store, &key).await.is_some());
}

/// Nothing a listing shows holds the session key.
pub async fn handles_do_not_reveal_keys<S: SessionStore>(store: &S) {
    let user = fresh_user();
    let (key, _) = create(store, &of_user(store, &json!(user), json!({}))).await;
    let listed = store.user_sessions(&user).await.expect("list");
    let shown = format!("{listed:?}");
    assert!(
        !shown.contains(key.as_str()),
        "a listing shows the key: {shown}"
    );
    for session in &listed {
        assert!(!session.handle.as_str().contains(&key.as_str()[..8]));
    }
}

/// Through the `Session` API: two "devices" of one user, the first lists both (itself
/// marked current) and logs the other out; the other's next save is interrupted.
pub async fn log_out_other_devices_through_the_session<S: SessionStore + Clone>(store: &S) {
    let user = fresh_user();
    // With `absolute_max_age` a session keeps its creation time, and a listing shows it.
    let config =
        Arc::new(SessionConfig::default().with_absolute_max_age(Some(time::Duration::hours(1))));
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut devices = Vec::new();
    for device in ["laptop", "phone"] {
        let session = Session::new(store.clone(), Arc::clone(&config));
        session.insert(store.user_id_key(), &user).expect("insert");
        session.insert("device", device).expect("insert");
        session.save().await.expect("save");
        devices.push(session);
    }
    let (laptop, phone) = (&devices[0], &devices[1]);
    let listed = laptop.user_sessions().await.expect("user_sessions");
    assert_eq!(listed.len(), 2);
    let current: Vec<_> = listed.iter().filter(|s| s.is_current).collect();
    assert_eq!(current.len(), 1, "exactly one listed session is current");
    assert_eq!(current[0].data["device"], "laptop");
    for listed in &listed {
        let created = listed
            .created
            .expect("the creation time absolute_max_age keeps");
        assert!(created.unix_timestamp() >= before, "{created}");
    }

    assert_eq!(laptop.revoke_other_sessions().await.expect("revoke"), 1);
    let phone_key = phone.session_key().expect("saved");
    assert!(
        load(store, &phone_key).await.is_none(),
        "the other device is still in"
    );
    phone.insert("after", 1).expect("insert");
    assert!(
        matches!(phone.save().await, Err(Error::SessionInterrupted)),
        "the other device's save resurrected it"
    );
    let listed = laptop.user_sessions().await.expect("user_sessions");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].is_current);

    // Revoking the current session by its handle logs it out.
    assert!(
        laptop
            .revoke_user_session(&listed[0].handle)
            .await
            .expect("revoke")
    );
    assert!(
        laptop.session_key().is_none(),
        "the revoked session kept its key"
    );
    assert!(store.user_sessions(&user).await.expect("list").is_empty());
    let anonymous = Session::new(store.clone(), config);
    assert!(anonymous.user_sessions().await.expect("list").is_empty());
    assert_eq!(anonymous.revoke_other_sessions().await.expect("revoke"), 0);
}
