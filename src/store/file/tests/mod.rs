use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::time::{Duration as StdDuration, SystemTime};

use serde_json::{Map, Value, json};
use time::{OffsetDateTime, PrimitiveDateTime};

use super::locking::LOCK_FILE_PREFIX;
use super::paths::to_datetime;
use super::*;
use crate::signing::{SESSION_STORE_SALT, Signer};
use crate::store::conformance::{self, Exceptions};
use crate::{Session, SessionConfig};

const SECRET: &str = "django_tests_secret_key";
/// `signing.dumps({"hello": "world"}, salt=SESSION_STORE_SALT, compress=True)` by Django.
const DJANGO_HELLO: &str =
    "eyJoZWxsbyI6IndvcmxkIn0:1r31eq:tWy-azdqKYIwu_o6Ht3nBxc5SvPyROA4n-zKWAcm4Cc";

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "sessionbase-file-test-{}-{}",
            std::process::id(),
            SessionKey::generate().unwrap()
        ));
        fs::create_dir(&path).unwrap();
        Self(path)
    }

    fn store(&self) -> FileStore {
        FileStore::new(&self.0).unwrap()
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Every name in the directory but the lock files.
    fn names(&self) -> BTreeSet<String> {
        fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with(LOCK_FILE_PREFIX))
            .collect()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn record(value: Value) -> Record {
    Record {
        data: Arc::new(obj(value)),
        expiry_date: OffsetDateTime::now_utc() + Duration::hours(1),
    }
}

fn set_mtime(path: &Path, ago: StdDuration) {
    let file = OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

fn key(text: &str) -> SessionKey {
    SessionKey::parse(text).unwrap()
}

async fn load_data(store: &FileStore, key: &SessionKey) -> Option<Value> {
    store
        .load(key)
        .await
        .unwrap()
        .map(|r| Value::Object(r.data.as_ref().clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance() {
    let dir = TempDir::new();
    conformance::run(dir.store(), Exceptions::none()).await;
    let django = dir
        .store()
        .with_codec(Codec::django(SECRET, Vec::<String>::new()));
    conformance::run(django, Exceptions::none()).await;
}

#[tokio::test]
async fn file_is_named_after_the_key_and_holds_exactly_the_codec_output() {
    let dir = TempDir::new();
    let store = dir
        .store()
        .with_codec(Codec::django(SECRET, Vec::<String>::new()));
    let data = json!({"hello": "world", "_session_expiry": 3600});
    let (key, version) = store.create(&record(data.clone())).await.unwrap();
    let path = dir.file(&format!("sessionid{key}"));
    assert_eq!(store.path(&key).unwrap(), path);
    assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(version.as_bytes(), Some(text.as_bytes()));
    let decoded = Signer::new(SECRET, SESSION_STORE_SALT)
        .loads(&text, None)
        .unwrap();
    assert_eq!(Value::Object(decoded), data);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A save replaces the content with the new codec output, and nothing else is left.
    let saved = store
        .save(&key, &record(json!({"hello": "moon"})), &version)
        .await
        .unwrap();
    let SaveOutcome::Saved { version: v1, .. } = saved else {
        panic!("{saved:?}")
    };
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(v1.as_bytes(), Some(text.as_bytes()));
    assert_eq!(
        Signer::new(SECRET, SESSION_STORE_SALT)
            .loads(&text, None)
            .unwrap(),
        obj(json!({"hello": "moon"}))
    );
    assert_eq!(dir.names(), BTreeSet::from([format!("sessionid{key}")]));

    // Plain JSON without a secret.
    let plain = dir
        .store()
        .with_session_config(&crate::SessionConfig::default().with_cookie_name("sid"));
    let (key, _) = plain.create(&record(json!({"a": [1, "b"]}))).await.unwrap();
    assert_eq!(
        fs::read_to_string(dir.file(&format!("sid{key}"))).unwrap(),
        r#"{"a":[1,"b"]}"#
    );
}

#[tokio::test]
async fn a_file_django_wrote_loads_and_saves() {
    let dir = TempDir::new();
    let store = dir
        .store()
        .with_codec(Codec::django(SECRET, Vec::<String>::new()));
    let key = key("django0session0key0abc");
    fs::write(dir.file(&format!("sessionid{key}")), DJANGO_HELLO).unwrap();
    assert_eq!(
        load_data(&store, &key).await,
        Some(json!({"hello": "world"}))
    );
    assert!(store.exists(&key).await.unwrap());

    let config = Arc::new(crate::SessionConfig::default());
    let session = Session::load(store.clone(), Arc::clone(&config), key.as_str())
        .await
        .unwrap();
    assert_eq!(
        session.get::<String>("hello").unwrap().as_deref(),
        Some("world")
    );
    session.insert("n", 1).unwrap();
    session.save().await.unwrap();
    assert_eq!(session.session_key(), Some(key.clone()));
    let text = fs::read_to_string(dir.file(&format!("sessionid{key}"))).unwrap();
    assert_eq!(
        Signer::new(SECRET, SESSION_STORE_SALT)
            .loads(&text, None)
            .unwrap(),
        obj(json!({"hello": "world", "n": 1}))
    );

    // The wrong secret: no session.
    let other = dir
        .store()
        .with_codec(Codec::django("another secret", Vec::<String>::new()));
    assert_eq!(load_data(&other, &key).await, None);
}

#[tokio::test]
async fn an_empty_file_loads_as_an_empty_session() {
    let dir = TempDir::new();
    let store = dir.store();
    let key = key("emptyplaceholder");
    fs::write(dir.file(&format!("sessionid{key}")), "").unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert!(loaded.data.is_empty());
    assert_eq!(loaded.version.as_bytes(), Some(&b""[..]));
    let outcome = store
        .save(&key, &record(json!({"x": 1})), &loaded.version)
        .await
        .unwrap();
    assert!(matches!(outcome, SaveOutcome::Saved { .. }), "{outcome:?}");
    assert_eq!(load_data(&store, &key).await, Some(json!({"x": 1})));
}

#[tokio::test]
async fn keys_with_path_characters_never_touch_the_file_system() {
    let dir = TempDir::new();
    let store = dir.store();
    // Something to find if a traversal worked.
    fs::write(dir.file("sessionidvictim00"), "{}").unwrap();
    let before = dir.names();
    let bad = [
        "../../etc/passwd",
        "a/b/cdefgh",
        "..\\..\\x",
        "abc.defgh",
        "ABCDEFGHIJ",
        "abcdefgH",
        "../sessionidvictim00",
        "",
        "short",
        &"a".repeat(41),
    ];
    for text in bad {
        assert!(store.parse_key(text).is_none(), "{text:?} parsed");
        let key = SessionKey::from_validated(text);
        assert!(store.path(&key).is_err(), "{text:?} built a path");
        assert!(store.load(&key).await.is_err(), "{text:?} loaded");
        assert!(store.exists(&key).await.is_err(), "{text:?} checked");
        assert!(store.delete(&key).await.is_err(), "{text:?} deleted");
        let saved = store
            .save(&key, &record(json!({})), &Version::from_bytes(*b"{}"))
            .await;
        assert!(saved.is_err(), "{text:?} saved");
    }
    // Not even a lock file was created.
    assert_eq!(
        fs::read_dir(&dir.0).unwrap().count(),
        before.len(),
        "the file system was touched"
    );
    assert_eq!(dir.names(), before);

    // A prefix that would leave the directory is a configuration error.
    let escaping = dir
        .store()
        .with_session_config(&crate::SessionConfig::default().with_cookie_name("../sessionid"));
    let key = key("abcdefgh1234");
    assert!(matches!(escaping.path(&key), Err(Error::Config(_))));
    assert!(matches!(escaping.load(&key).await, Err(Error::Config(_))));
    assert!(matches!(
        escaping.create(&record(json!({}))).await,
        Err(Error::Config(_))
    ));
    assert!(matches!(
        escaping.clear_expired().await,
        Err(Error::Config(_))
    ));
    assert_eq!(dir.names(), before);
}

#[tokio::test]
async fn corrupt_files_load_as_no_session_and_are_kept() {
    let dir = TempDir::new();
    let signed = dir
        .store()
        .with_codec(Codec::django(SECRET, Vec::<String>::new()));
    let plain = dir.store();
    let tampered = DJANGO_HELLO.replacen("eyJoZWxsbyI6IndvcmxkIn0", "eyJoZWxsbyI6Im1vb24ifQ", 1);
    let cases: [(&FileStore, &[u8]); 7] = [
        (&plain, b"garbage"),
        (&plain, b"[1, 2]"),
        (&plain, b"\"text\""),
        (&plain, b"{\"a\": \xff}"),
        (&plain, b"\xff\xfe\x00"),
        (&signed, tampered.as_bytes()),
        (&signed, b"{\"hello\": \"world\"}"),
    ];
    for (i, (store, content)) in cases.into_iter().enumerate() {
        let key = key(&format!("corrupt{i:04}"));
        let path = dir.file(&format!("sessionid{key}"));
        fs::write(&path, content).unwrap();
        assert!(store.load(&key).await.unwrap().is_none(), "case {i}");
        assert!(!store.exists(&key).await.unwrap(), "case {i}");
        assert_eq!(
            store
                .save(
                    &key,
                    &record(json!({})),
                    &Version::from_bytes(content.to_vec())
                )
                .await
                .unwrap(),
            SaveOutcome::Gone,
            "case {i}"
        );
        store.clear_expired().await.unwrap();
        assert_eq!(fs::read(&path).unwrap(), content, "case {i} was touched");
    }
    // A directory where a session file should be: no session either.
    let key = key("directory0000");
    fs::create_dir(dir.file(&format!("sessionid{key}"))).unwrap();
    assert!(plain.load(&key).await.unwrap().is_none());
    plain.clear_expired().await.unwrap();
    assert!(dir.file(&format!("sessionid{key}")).is_dir());
}

#[tokio::test]
async fn operational_faults_are_errors_not_missing_sessions() {
    let dir = TempDir::new();
    let store = dir.store();
    let (key, version) = store.create(&record(json!({"a": 1}))).await.unwrap();
    // The directory is replaced by a regular file: ENOTDIR, not "no such session".
    fs::remove_dir_all(&dir.0).unwrap();
    fs::write(&dir.0, "not a directory").unwrap();
    let error = store.load(&key).await.unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(
        !error.to_string().contains(key.as_str()),
        "the key leaked: {error}"
    );
    assert!(matches!(store.exists(&key).await, Err(Error::Store(_))));
    assert!(matches!(
        store.save(&key, &record(json!({})), &version).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(
        store.create(&record(json!({}))).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(store.delete(&key).await, Err(Error::Store(_))));
    assert!(matches!(store.clear_expired().await, Err(Error::Store(_))));
    fs::remove_file(&dir.0).unwrap();
    // A missing file in a missing directory is still just no session.
    assert!(store.load(&key).await.unwrap().is_none());
    fs::create_dir(&dir.0).unwrap();
}

#[test]
fn new_needs_an_existing_directory() {
    let dir = TempDir::new();
    let missing = dir.file("missing");
    assert!(matches!(FileStore::new(&missing), Err(Error::Config(_))));
    fs::write(dir.file("file"), "").unwrap();
    assert!(matches!(
        FileStore::new(dir.file("file")),
        Err(Error::Config(_))
    ));
    let store = FileStore::new(&dir.0).unwrap();
    assert_eq!(store.dir(), dir.0.as_path());
    assert_eq!(store.prefix(), "sessionid");
    assert_eq!(
        store
            .clone()
            .with_session_config(&crate::SessionConfig::default().with_cookie_name("sid"))
            .prefix(),
        "sid"
    );
    assert_eq!(
        store.prefix(),
        "sessionid",
        "clones do not share builder changes"
    );
}

#[test]
fn file_times_convert_without_panicking() {
    assert_eq!(
        to_datetime(SystemTime::UNIX_EPOCH),
        OffsetDateTime::UNIX_EPOCH
    );
    let now = SystemTime::now();
    assert!((to_datetime(now) - OffsetDateTime::now_utc()).abs() < Duration::seconds(5));
    if let Some(far) = SystemTime::UNIX_EPOCH.checked_add(StdDuration::from_secs(u64::MAX / 4)) {
        assert_eq!(to_datetime(far), PrimitiveDateTime::MAX.assume_utc());
    }
    if let Some(early) = SystemTime::UNIX_EPOCH.checked_sub(StdDuration::from_secs(u64::MAX / 4)) {
        assert_eq!(to_datetime(early), PrimitiveDateTime::MIN.assume_utc());
    }
}

mod expiry;
mod locking;

/// The layer's settings reach the store: files are named after the configured cookie name
/// (Django's file prefix is `SESSION_COOKIE_NAME`), whatever the store had before.
#[tokio::test]
async fn the_prefix_and_cookie_age_follow_the_session_config() {
    let dir = TempDir::new();
    let config = crate::SessionConfig::default()
        .with_cookie_name("sid")
        .with_cookie_age(time::Duration::hours(1));
    let session = crate::Session::new(dir.store(), config);
    session.insert("a", 1).unwrap();
    session.save().await.unwrap();
    let key = session.session_key().unwrap();
    assert_eq!(dir.names(), BTreeSet::from([format!("sid{key}")]));
    let configured = dir.store().configured(session.config()).unwrap();
    assert_eq!(configured.prefix(), "sid");
    assert_eq!(configured.inner.cookie_age, time::Duration::hours(1));
    // Already as configured: nothing to copy.
    assert!(configured.configured(session.config()).is_none());
}
