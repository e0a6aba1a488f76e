//! `absolute_max_age`: a session older than it is refused however active it stayed (OWASP),
//! the age survives `cycle_key` and restarts with `flush`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sessionbase::expiry::CREATED_KEY;
use sessionbase::store::{Record, SessionStore};
use sessionbase::{MemoryStore, Session, SessionConfig};
use time::{Duration, OffsetDateTime};

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig::default().with_absolute_max_age(Some(Duration::hours(1))))
}

/// A live record (idle expiry a week away) created `age` ago.
async fn record_created(store: &MemoryStore, age: Option<Value>) -> String {
    let mut data = Map::new();
    data.insert("user".into(), json!(7));
    if let Some(created) = age {
        data.insert(CREATED_KEY.into(), created);
    }
    let record = Record {
        data: Arc::new(data),
        expiry_date: OffsetDateTime::now_utc() + Duration::weeks(1),
    };
    store.create(&record).await.unwrap().0.to_string()
}

fn ago(d: Duration) -> Value {
    json!((OffsetDateTime::now_utc() - d).unix_timestamp())
}

#[tokio::test]
async fn new_sessions_are_stamped_and_load() {
    let store = MemoryStore::new();
    let session = Session::new(store.clone(), config());
    session.insert("a", 1).unwrap();
    session.save().await.unwrap();
    let created = session
        .get::<i64>(CREATED_KEY)
        .unwrap()
        .expect("stamped on create");
    assert!((OffsetDateTime::now_utc().unix_timestamp() - created).abs() <= 2);
    let key = session.session_key().unwrap();
    let again = Session::load(store, config(), key.as_str()).await.unwrap();
    assert_eq!(again.get::<i32>("a").unwrap(), Some(1));
}

#[tokio::test]
async fn an_old_but_active_session_is_refused() {
    let store = MemoryStore::new();
    let key = record_created(&store, Some(ago(Duration::hours(2)))).await;
    let session = Session::load(store.clone(), config(), &key).await.unwrap();
    assert!(
        session.session_key().is_none(),
        "a 2-hour-old session loaded under a 1-hour cap"
    );
    assert_eq!(session.get::<i32>("user").unwrap(), None);
    // Without the option, the same record is a session as Django sees it.
    let plain = Session::load(store, SessionConfig::default(), &key)
        .await
        .unwrap();
    assert_eq!(plain.get::<i32>("user").unwrap(), Some(7));
}

#[tokio::test]
async fn the_expiry_never_reaches_past_the_deadline() {
    let store = MemoryStore::new();
    let key = record_created(&store, Some(ago(Duration::minutes(50)))).await;
    let session = Session::load(store.clone(), config(), &key).await.unwrap();
    assert_eq!(session.get::<i32>("user").unwrap(), Some(7));
    let age = session.get_expiry_age();
    assert!((595..=600).contains(&age), "{age} s left, 600 expected");
    let deadline = session.absolute_deadline().unwrap();
    assert_eq!(session.get_expiry_date(), deadline);
    // The store drops the record at the deadline too.
    session.insert("n", 1).unwrap();
    session.save().await.unwrap();
    let stored = store
        .load(&session.session_key().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.expiry_date, Some(deadline));
}

#[tokio::test]
async fn cycle_key_keeps_the_age_and_flush_restarts_it() {
    let store = MemoryStore::new();
    let key = record_created(&store, Some(ago(Duration::minutes(30)))).await;
    let session = Session::load(store.clone(), config(), &key).await.unwrap();
    let created = session.get::<i64>(CREATED_KEY).unwrap();
    session.cycle_key().await.unwrap();
    assert_eq!(
        session.get::<i64>(CREATED_KEY).unwrap(),
        created,
        "cycle_key reset the age"
    );
    let moved = Session::load(
        store.clone(),
        config(),
        session.session_key().unwrap().as_str(),
    )
    .await
    .unwrap();
    assert_eq!(moved.get::<i64>(CREATED_KEY).unwrap(), created);

    session.flush().await.unwrap();
    session.insert("fresh", true).unwrap();
    session.save().await.unwrap();
    let restarted = session.get::<i64>(CREATED_KEY).unwrap().unwrap();
    assert!(
        restarted > created.unwrap(),
        "flush did not restart the age"
    );
}

#[tokio::test]
async fn sessions_from_before_the_option_are_stamped_on_their_next_save() {
    let store = MemoryStore::new();
    let key = record_created(&store, None).await;
    let session = Session::load(store.clone(), config(), &key).await.unwrap();
    assert_eq!(session.get::<i32>("user").unwrap(), Some(7));
    session.insert("n", 1).unwrap();
    session.save().await.unwrap();
    assert!(session.get::<i64>(CREATED_KEY).unwrap().is_some());
}

#[tokio::test]
async fn a_malformed_creation_time_is_no_session() {
    let store = MemoryStore::new();
    for bad in [json!("yesterday"), json!(1.5), json!(null), json!([1])] {
        let key = record_created(&store, Some(bad.clone())).await;
        let session = Session::load(store.clone(), config(), &key).await.unwrap();
        assert!(session.session_key().is_none(), "{bad} loaded");
    }
}

#[tokio::test]
async fn a_conflicting_save_does_not_write_over_a_record_that_became_too_old() {
    let store = MemoryStore::new();
    let key = record_created(&store, Some(ago(Duration::minutes(10)))).await;
    let session = Session::load(store.clone(), config(), &key).await.unwrap();
    session.insert("n", 1).unwrap();
    // Another process rewrites the record meanwhile, with a creation time past the cap.
    let parsed = store.parse_key(&key).unwrap();
    let current = store.load(&parsed).await.unwrap().unwrap();
    let mut data = (*current.data).clone();
    data.insert(CREATED_KEY.into(), ago(Duration::hours(2)));
    let record = Record {
        data: Arc::new(data),
        expiry_date: OffsetDateTime::now_utc() + Duration::weeks(1),
    };
    store
        .save(&parsed, &record, &current.version)
        .await
        .unwrap();
    // The save conflicts, reloads, finds the session too old: gone, not extended.
    assert!(matches!(
        session.save().await,
        Err(sessionbase::Error::SessionInterrupted)
    ));
    let stored = store.load(&parsed).await.unwrap().unwrap();
    assert!(
        stored.data.get("n").is_none(),
        "the save landed on a session past its cap"
    );
}

#[tokio::test]
async fn the_layer_caps_the_cookie_at_the_deadline() {
    use axum::{Router, body::Body, routing::get};
    use http::{Request, header};
    use sessionbase::SessionLayer;
    use tower::ServiceExt;

    // Django's middleware sends `Max-Age = get_expiry_age()`: with `absolute_max_age`, a
    // session created 50 minutes ago under a one-hour cap gets 10 minutes, not two weeks.
    let store = MemoryStore::new();
    let key = record_created(&store, Some(ago(Duration::minutes(50)))).await;
    let max_age = |config: Arc<SessionConfig>| {
        let store = store.clone();
        let key = key.clone();
        async move {
            let app: Router = Router::new()
                .route(
                    "/",
                    get(|session: Session| async move {
                        session.insert("seen", true)?;
                        Ok::<_, sessionbase::Error>("ok")
                    }),
                )
                .layer(SessionLayer::new(store).with_config(config).unwrap());
            let request = Request::get("/")
                .header(header::COOKIE, format!("sessionid={key}"))
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
            let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
            assert!(cookie.starts_with(&format!("sessionid={key};")), "{cookie}");
            cookie
                .split("; ")
                .find_map(|a| a.strip_prefix("Max-Age="))
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let capped = max_age(config()).await;
    assert!(
        (595..=600).contains(&capped),
        "Max-Age {capped}, 600 expected"
    );
    assert_eq!(max_age(Arc::new(SessionConfig::default())).await, 1_209_600);
}
