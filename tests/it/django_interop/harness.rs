//! The machinery of the Django interop tests: finding the venv's python, running the Django
//! project of `tests/django_project` (migrate, runserver, clearsessions), the Rust axum
//! server mirroring its endpoints, one cookie jar shared by both, and direct looks at the
//! shared database and directory.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use sessionbase::django::{DjangoCache, DjangoConfig, MODEL_BACKEND, SessionUser};
use sessionbase::{Error, Expiry, Session};
use time::OffsetDateTime;

use crate::common::{self, RedisPrefix, SetCookie, free_port, random};

/// The Django project's directory.
pub fn project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django_project")
}

// ----- python -----

static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn find_python() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("SESSIONBASE_DJANGO_PYTHON").filter(|p| !p.is_empty()) {
        let python = PathBuf::from(python);
        return if python.exists() {
            Ok(python)
        } else {
            Err(format!(
                "SESSIONBASE_DJANGO_PYTHON={} does not exist",
                python.display()
            ))
        };
    }
    let setup = project_dir().join("setup.sh");
    let output = Command::new("bash")
        .arg(&setup)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", setup.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            setup.display(),
            output.status,
            stderr.trim()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let python = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| PathBuf::from(l.trim()))
        .ok_or_else(|| format!("{} printed no python path", setup.display()))?;
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "{} printed {}, which does not exist",
            setup.display(),
            python.display()
        ))
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// The venv's python, or `None` (after saying why on stderr) when it cannot be had outside
/// CI. In CI (`CI` set) a missing python fails the test.
pub fn python() -> Option<PathBuf> {
    match PYTHON.get_or_init(find_python) {
        Ok(python) => Some(python.clone()),
        Err(reason) if in_ci() => panic!("Django interop tests cannot run in CI: {reason}"),
        Err(reason) => {
            // Straight to stderr: libtest captures eprintln! of passing tests.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("skipping Django interop tests: {reason}\n").as_bytes(),
            );
            None
        }
    }
}

/// A Redis key prefix of the test's own (its cache `KEY_PREFIX`, given to
/// [`Settings::with_cache`] with its URL) for the scenarios with a Redis cache, or `None`
/// (said on stderr) without `REDIS_URL`. Always `None` when the test binary is built without
/// the `redis` feature (the Rust side then has no Redis), so such scenarios skip instead of
/// failing to connect.
pub fn redis_prefix() -> Option<RedisPrefix> {
    const WHAT: &str = "Django interop Redis scenarios";
    if !cfg!(feature = "redis") {
        common::skip(WHAT, "built without the redis feature");
        return None;
    }
    RedisPrefix::new(WHAT)
}

// ----- temporary directory -----

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "sessionbase-django-{label}-{}-{}",
            std::process::id(),
            &random()[..12]
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `sqlite:///<dir>/db.sqlite3`: the URL Django and sqlx both take.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.0.join("db.sqlite3").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ----- settings shared by both sides -----

/// One Django configuration, given to the Django process as environment variables and to
/// the Rust side as a [`DjangoConfig`].
#[derive(Clone, Debug)]
pub struct Settings {
    pub secret: String,
    pub fallbacks: Vec<String>,
    /// `db`, `cached_db`, `cache`, `signed_cookies` or `file`.
    pub engine: &'static str,
    /// Django's `DATABASES["default"]` (also for engines that keep no sessions there: the
    /// auth tables live in it).
    pub database_url: String,
    pub file_path: Option<PathBuf>,
    /// The cache the session engines use (`CACHES[SESSION_CACHE_ALIAS]`); `None` leaves
    /// Django's LocMemCache, which no other process shares.
    pub cache: Option<CacheSettings>,
    /// `SESSION_CACHE_ALIAS`; `None` is Django's `"default"`.
    pub session_cache_alias: Option<String>,
    /// `SESSION_SAVE_EVERY_REQUEST`.
    pub save_every_request: bool,
}

/// One entry of Django's `CACHES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// The short name the Django project takes: `redis`, `django_redis`, `dummy`, `locmem`.
    pub backend: &'static str,
    pub location: String,
    pub key_prefix: String,
    pub version: i64,
}

impl CacheSettings {
    /// Django's dotted path of the backend.
    pub fn backend_path(&self) -> &'static str {
        cache_backend_path(self.backend)
    }

    /// The key Django's `make_key` builds for `key` (`default_key_func`:
    /// `"<KEY_PREFIX>:<VERSION>:<key>"`).
    #[allow(dead_code)] // for tests that look at Redis directly
    pub fn make_key(&self, key: &str) -> String {
        format!("{}:{}:{key}", self.key_prefix, self.version)
    }
}

/// The dotted path of a cache backend the tests use, by the Django project's short name.
pub fn cache_backend_path(short: &str) -> &'static str {
    match short {
        "redis" => "django.core.cache.backends.redis.RedisCache",
        "django_redis" => "django_redis.cache.RedisCache",
        "dummy" => "django.core.cache.backends.dummy.DummyCache",
        "locmem" => "django.core.cache.backends.locmem.LocMemCache",
        other => panic!("unknown cache backend {other:?} (redis, django_redis, dummy, locmem)"),
    }
}

/// The key Django's `cached_db` or `cache` engine gives a session in its cache, before the
/// cache's `make_key`: `django.contrib.sessions.cached_db<key>` or
/// `django.contrib.sessions.cache<key>`. `None` for the other engines.
#[allow(dead_code)] // for tests that look at Redis directly
pub fn session_cache_key(engine: &str, session_key: &str) -> Option<String> {
    match engine {
        "cached_db" => Some(format!("django.contrib.sessions.cached_db{session_key}")),
        "cache" => Some(format!("django.contrib.sessions.cache{session_key}")),
        _ => None,
    }
}

impl Settings {
    pub fn new(secret: &str, engine: &'static str, database_url: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            fallbacks: Vec::new(),
            engine,
            database_url: database_url.to_owned(),
            file_path: None,
            cache: None,
            session_cache_alias: None,
            save_every_request: false,
        }
    }

    /// The session cache (`CACHES[SESSION_CACHE_ALIAS]`): `backend` is `redis` (Django's
    /// RedisCache), `django_redis`, `dummy` or `locmem`; `location` its `LOCATION` (the
    /// Redis URL for the Redis backends), `key_prefix` and `version` its `KEY_PREFIX` and
    /// `VERSION`.
    pub fn with_cache(
        mut self,
        backend: &'static str,
        location: &str,
        key_prefix: &str,
        version: i64,
    ) -> Self {
        cache_backend_path(backend); // panics on an unknown name
        self.cache = Some(CacheSettings {
            backend,
            location: location.to_owned(),
            key_prefix: key_prefix.to_owned(),
            version,
        });
        self
    }

    /// `SESSION_CACHE_ALIAS`. When it is not `"default"`, the cache of
    /// [`with_cache`](Self::with_cache) is defined under this alias and `default` is a
    /// LocMemCache, on both sides.
    pub fn with_session_cache_alias(mut self, alias: &str) -> Self {
        self.session_cache_alias = Some(alias.to_owned());
        self
    }

    /// `SESSION_CACHE_ALIAS` as Django has it.
    pub fn cache_alias(&self) -> &str {
        self.session_cache_alias.as_deref().unwrap_or("default")
    }

    /// The full key (after the cache's `make_key`) under which the session engine caches
    /// `session_key`, or `None` for an engine without a cache or without
    /// [`with_cache`](Self::with_cache).
    #[allow(dead_code)] // for tests that look at Redis directly
    pub fn cache_key(&self, session_key: &str) -> Option<String> {
        let cache = self.cache.as_ref()?;
        Some(cache.make_key(&session_cache_key(self.engine, session_key)?))
    }

    pub fn with_secret(mut self, secret: &str, fallbacks: &[&str]) -> Self {
        self.secret = secret.to_owned();
        self.fallbacks = fallbacks.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// `SESSION_SAVE_EVERY_REQUEST = True` on both sides.
    pub fn with_save_every_request(mut self) -> Self {
        self.save_every_request = true;
        self
    }

    pub fn with_file_path(mut self, path: &Path) -> Self {
        self.file_path = Some(path.to_owned());
        self
    }

    /// The Rust side's configuration for the same settings.
    pub fn django_config(&self) -> DjangoConfig {
        let mut config = DjangoConfig::new(&self.secret)
            .with_secret_key_fallbacks(self.fallbacks.clone())
            .with_session_engine(self.engine)
            .with_database_url(&self.database_url)
            .with_session_save_every_request(self.save_every_request);
        if let Some(path) = &self.file_path {
            config = config.with_session_file_path(path);
        }
        let alias = self.cache_alias();
        if let Some(cache) = &self.cache {
            let mut django_cache = DjangoCache::new(cache.backend_path())
                .with_key_prefix(cache.key_prefix.as_str())
                .with_version(cache.version);
            if !cache.location.is_empty() {
                // As Django's settings: an empty CACHE_LOCATION is no LOCATION.
                django_cache = django_cache.with_location(cache.location.as_str());
            }
            config = config.with_cache(alias, django_cache);
        }
        if alias != "default" {
            // As the Django project's settings: `default` is a LocMemCache then.
            config = config
                .with_cache("default", DjangoCache::new(cache_backend_path("locmem")))
                .with_session_cache_alias(alias);
        }
        config
    }

    fn apply(&self, command: &mut Command) {
        // Nothing from the test's own environment leaks into Django's settings.
        for name in [
            "SECRET_KEY",
            "SECRET_KEY_FALLBACKS",
            "SESSION_ENGINE",
            "DATABASE_URL",
            "SESSION_FILE_PATH",
            "SESSION_COOKIE_NAME",
            "SESSION_COOKIE_AGE",
            "SESSION_SAVE_EVERY_REQUEST",
            "SESSION_EXPIRE_AT_BROWSER_CLOSE",
            "SESSION_COOKIE_PATH",
            "SESSION_COOKIE_DOMAIN",
            "SESSION_COOKIE_SECURE",
            "SESSION_COOKIE_HTTPONLY",
            "SESSION_COOKIE_SAMESITE",
            "CACHE_BACKEND",
            "CACHE_LOCATION",
            "CACHE_KEY_PREFIX",
            "CACHE_VERSION",
            "CACHE_OPTIONS",
            "SESSION_CACHE_ALIAS",
            "USE_TZ",
            "TIME_ZONE",
            "DJANGO_SETTINGS_MODULE",
        ] {
            command.env_remove(name);
        }
        command
            .current_dir(project_dir())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("SECRET_KEY", &self.secret)
            .env("SESSION_ENGINE", self.engine)
            .env("DATABASE_URL", &self.database_url);
        if !self.fallbacks.is_empty() {
            command.env("SECRET_KEY_FALLBACKS", self.fallbacks.join(","));
        }
        if let Some(path) = &self.file_path {
            command.env("SESSION_FILE_PATH", path);
        }
        if let Some(cache) = &self.cache {
            command
                .env("CACHE_BACKEND", cache.backend)
                .env("CACHE_LOCATION", &cache.location)
                .env("CACHE_KEY_PREFIX", &cache.key_prefix)
                .env("CACHE_VERSION", cache.version.to_string());
        }
        if let Some(alias) = &self.session_cache_alias {
            command.env("SESSION_CACHE_ALIAS", alias);
        }
        if self.save_every_request {
            command.env("SESSION_SAVE_EVERY_REQUEST", "1");
        }
    }
}

// ----- the Django process -----

/// Runs `manage.py <args>` to completion, panicking with its output when it fails.
pub async fn manage(python: &Path, settings: &Settings, args: &[&str]) -> String {
    let mut command = Command::new(python);
    command.arg("manage.py").args(args).stdin(Stdio::null());
    settings.apply(&mut command);
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let output = tokio::time::timeout(StdDuration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("manage.py {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run manage.py {args:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "manage.py {args:?} failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `manage.py runserver --noreload <addr>` (the address is `sys.argv[1]`), plus a daemon
/// thread that exits the process once its parent (this test binary) is gone: the guard's
/// drop kills the server when a test ends or panics, and the watchdog covers a test binary
/// that is killed outright.
const WATCHDOG_RUNSERVER: &str = r#"
import os, runpy, sys, threading, time
parent = os.getppid()
def watch():
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ["manage.py", "runserver", "--noreload", sys.argv[1]]
runpy.run_path("manage.py", run_name="__main__")
"#;

/// A running `manage.py runserver`, killed (and reaped) on drop, so that no test leaves a
/// server behind, whether it passes or panics. On a panic its log is printed.
pub struct Django {
    child: Child,
    pub base: String,
    log: PathBuf,
    /// The log, open for reading: still readable when the test's directory holding it is
    /// removed before this guard drops (as when the `TempDir` is dropped first).
    log_reader: Option<File>,
}

impl Django {
    /// `migrate`, then `runserver --noreload` on a free port; waits for `/health`.
    pub async fn start(python: &Path, settings: &Settings, logs: &Path) -> Self {
        manage(python, settings, &["migrate", "--noinput"]).await;
        Self::serve(python, settings, logs).await
    }

    /// `runserver` only (the database is already migrated).
    pub async fn serve(python: &Path, settings: &Settings, logs: &Path) -> Self {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Self::try_serve(python, settings, logs).await {
                Ok(django) => return django,
                Err(error) => last_error = error,
            }
        }
        panic!("Django did not start: {last_error}");
    }

    async fn try_serve(python: &Path, settings: &Settings, logs: &Path) -> Result<Self, String> {
        let port = free_port();
        let log = logs.join(format!("django-{port}-{}.log", &random()[..6]));
        let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(python);
        command
            .args(["-c", WATCHDOG_RUNSERVER])
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        settings.apply(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot spawn runserver: {e}"))?;
        // From here the guard owns the child: any early return kills it.
        let mut django = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log_reader: File::open(&log).ok(),
            log,
        };
        let client = common::client();
        let deadline = Instant::now() + StdDuration::from_secs(60);
        loop {
            if let Ok(Some(status)) = django.child.try_wait() {
                return Err(format!(
                    "runserver exited with {status}; log:\n{}",
                    django.log_text()
                ));
            }
            let health = client
                .get(format!("{}/health", django.base))
                .timeout(StdDuration::from_secs(2))
                .send()
                .await;
            if let Ok(response) = health
                && response.status().is_success()
            {
                let body: Value = serde_json::from_str(&response.text().await.unwrap_or_default())
                    .unwrap_or(Value::Null);
                let engine = body["engine"].as_str().unwrap_or_default();
                if !engine.ends_with(&format!(".{}", settings.engine)) {
                    return Err(format!(
                        "port {port} answers /health for engine {engine:?}, not {}",
                        settings.engine
                    ));
                }
                // `.ci/run` names the series each run must test, so that a venv mix-up
                // cannot pass for the other version.
                let version = body["django_version"].as_str().unwrap_or_default();
                if let Ok(expected) = std::env::var("SESSIONBASE_DJANGO_EXPECT_VERSION") {
                    assert!(
                        version.starts_with(&format!("{expected}.")),
                        "Django {version} answers, but this run must test Django {expected}.x"
                    );
                }
                return Ok(django);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no /health answer within 60 s; log:\n{}",
                    django.log_text()
                ));
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        use std::io::{Read as _, Seek as _, SeekFrom};
        if let Some(mut reader) = self.log_reader.as_ref() {
            let mut text = String::new();
            if reader.seek(SeekFrom::Start(0)).is_ok() && reader.read_to_string(&mut text).is_ok() {
                return text;
            }
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The tail, with long lines (the query strings of big values) cut.
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            let tail: Vec<String> = lines[lines.len().saturating_sub(40)..]
                .iter()
                .map(|line| match line.char_indices().nth(300) {
                    Some((cut, _)) => format!("{}…", &line[..cut]),
                    None => (*line).to_owned(),
                })
                .collect();
            eprintln!(
                "----- Django log ({}), last lines -----\n{}\n-----",
                self.base,
                tail.join("\n")
            );
        }
    }
}

// ----- the Rust server -----

type Params = Query<HashMap<String, String>>;

fn reply(value: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"ok": false, "error": message}).to_string(),
    )
        .into_response()
}

fn key_of(session: &Session) -> Value {
    session
        .session_key()
        .map_or(Value::Null, |k| Value::from(k.as_str()))
}

fn iso(t: OffsetDateTime) -> Value {
    Expiry::At(t).to_value()
}

fn expiry_info(session: &Session, out: &mut Map<String, Value>) {
    out.insert("expiry_age".into(), session.get_expiry_age().into());
    out.insert("expiry_date".into(), iso(session.get_expiry_date()));
    out.insert(
        "expire_at_browser_close".into(),
        session.get_expire_at_browser_close().into(),
    );
}

async fn r_set(session: Session, Query(q): Params) -> Response {
    let (Some(key), Some(raw)) = (q.get("key"), q.get("value")) else {
        return bad_request("key and value are required".into());
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(value) => {
            session.insert_value(key.clone(), value);
            reply(json!({"ok": true, "session_key": key_of(&session)}))
        }
        Err(e) => bad_request(format!("value is not JSON: {e}")),
    }
}

async fn r_set_many(session: Session, Query(q): Params) -> Response {
    match q.get("data").map(|d| serde_json::from_str::<Value>(d)) {
        Some(Ok(Value::Object(data))) => {
            for (key, value) in data {
                session.insert_value(key, value);
            }
            reply(json!({"ok": true, "session_key": key_of(&session)}))
        }
        _ => bad_request("data must be a JSON object".into()),
    }
}

async fn r_get(session: Session, Query(q): Params) -> Response {
    let Some(key) = q.get("key") else {
        return bad_request("key is required".into());
    };
    reply(json!({
        "present": session.contains_key(key),
        "value": session.get_value(key).unwrap_or(Value::Null),
        "session_key": key_of(&session),
    }))
}

async fn r_all(session: Session) -> Response {
    let items: Map<String, Value> = session.items().into_iter().collect();
    let mut out = Map::new();
    out.insert("items".into(), Value::Object(items));
    out.insert("session_key".into(), key_of(&session));
    expiry_info(&session, &mut out);
    reply(Value::Object(out))
}

async fn r_set_expiry(session: Session, Query(q): Params) -> Response {
    let expiry = if let Some(seconds) = q.get("seconds") {
        match seconds.parse::<i64>() {
            Ok(0) => Some(Expiry::BrowserClose),
            Ok(n) => Some(Expiry::Inactivity(time::Duration::seconds(n))),
            Err(e) => return bad_request(format!("seconds: {e}")),
        }
    } else if let Some(text) = q.get("iso") {
        match Expiry::from_value(&Value::String(text.clone())) {
            Ok(Some(at @ Expiry::At(_))) => Some(at),
            _ => return bad_request(format!("iso {text:?} is not an ISO 8601 date-time")),
        }
    } else {
        None
    };
    session.set_expiry(expiry);
    let mut out = Map::new();
    out.insert("ok".into(), true.into());
    out.insert("session_key".into(), key_of(&session));
    expiry_info(&session, &mut out);
    reply(Value::Object(out))
}

async fn r_flush(session: Session) -> Result<Response, Error> {
    session.flush().await?;
    Ok(reply(json!({"ok": true, "session_key": key_of(&session)})))
}

async fn r_cycle(session: Session) -> Result<Response, Error> {
    let old = key_of(&session);
    session.cycle_key().await?;
    Ok(reply(
        json!({"ok": true, "old_session_key": old, "session_key": key_of(&session)}),
    ))
}

/// `?password_hash=` (the user's `password` column, from Django): Django's `get_user`
/// check. Without it, only what the session says.
async fn r_whoami(
    State(django): State<Arc<DjangoConfig>>,
    session: Session,
    Query(q): Params,
) -> Result<Response, Error> {
    let user = SessionUser::from_session(&session)?;
    let verified = match (&user, q.get("password_hash")) {
        (Some(_), Some(hash)) => Some(django.verify_session(&session, hash).await?),
        _ => None,
    };
    let authenticated = user.is_some() && verified != Some(false);
    Ok(reply(json!({
        "authenticated": authenticated,
        "verified": verified,
        "user_id": user.as_ref().filter(|_| authenticated).map(|u| u.user_id.clone()),
        "backend": user.as_ref().filter(|_| authenticated).map(|u| u.backend.clone()),
        "hash": user.as_ref().filter(|_| authenticated).map(|u| u.hash.clone()),
        "session_key": key_of(&session),
    })))
}

/// `?user_id=&password_hash=`: `django.contrib.auth.login` with the model backend.
async fn r_login(
    State(django): State<Arc<DjangoConfig>>,
    session: Session,
    Query(q): Params,
) -> Result<Response, Error> {
    let (Some(user_id), Some(hash)) = (q.get("user_id"), q.get("password_hash")) else {
        return Ok(bad_request("user_id and password_hash are required".into()));
    };
    django.login(&session, user_id, MODEL_BACKEND, hash).await?;
    Ok(reply(
        json!({"ok": true, "user_id": user_id, "session_key": key_of(&session)}),
    ))
}

async fn r_logout(
    State(django): State<Arc<DjangoConfig>>,
    session: Session,
) -> Result<Response, Error> {
    django.logout(&session).await?;
    Ok(reply(json!({"ok": true, "session_key": key_of(&session)})))
}

/// `/user_sessions`: the sessions of this session's user (`handle`, `current`).
async fn r_user_sessions(session: Session) -> Result<Response, Error> {
    let listed: Vec<Value> = session
        .user_sessions()
        .await?
        .into_iter()
        .map(|s| json!({"handle": s.handle.to_string(), "current": s.is_current}))
        .collect();
    Ok(reply(json!({"sessions": listed})))
}

/// `/revoke_other_sessions`: "log out other devices"; how many were revoked.
async fn r_revoke_other_sessions(session: Session) -> Result<Response, Error> {
    let revoked = session.revoke_other_sessions().await?;
    Ok(reply(json!({"revoked": revoked})))
}

/// Serves the Rust mirror of the Django endpoints for `settings` (the layer built by
/// [`DjangoConfig::layer`]) and returns its base URL.
pub async fn rust_server(settings: &Settings) -> String {
    let django = Arc::new(settings.django_config());
    let layer = django
        .layer()
        .await
        .unwrap_or_else(|e| panic!("DjangoConfig::layer for {settings:?}: {e}"));
    let app = Router::new()
        .route("/set", get(r_set))
        .route("/set_many", get(r_set_many))
        .route("/get", get(r_get))
        .route("/all", get(r_all))
        .route("/set_expiry", get(r_set_expiry))
        .route("/flush", get(r_flush))
        .route("/cycle", get(r_cycle))
        .route("/whoami", get(r_whoami))
        .route("/login", get(r_login))
        .route("/logout", get(r_logout))
        .route("/user_sessions", get(r_user_sessions))
        .route("/revoke_other_sessions", get(r_revoke_other_sessions))
        .with_state(django)
        .layer(layer);
    common::spawn(app).await
}

// ----- one browser, one cookie jar, both servers -----

/// A response: status, JSON body, and the session cookie it set, if any.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub cookie: Option<SetCookie>,
}

impl std::ops::Index<&str> for Reply {
    type Output = Value;

    fn index(&self, key: &str) -> &Value {
        &self.body[key]
    }
}

/// A browser with a one-cookie jar. Both servers are on 127.0.0.1 and cookies are not
/// port-specific, so the jar is shared by them, as a real browser's would be.
pub struct Browser {
    client: reqwest::Client,
    name: String,
    jar: Mutex<Option<String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Self {
            client: common::client(),
            name: "sessionid".into(),
            jar: Mutex::new(None),
        }
    }

    /// The session cookie's value in the jar.
    pub fn cookie(&self) -> Option<String> {
        self.jar
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The session cookie's value in the jar; panics when there is none.
    pub fn key(&self) -> String {
        self.cookie().expect("a session cookie in the jar")
    }

    /// Puts `value` in the jar (as a stale tab or a copied cookie would send it), or
    /// empties it.
    pub fn set_cookie(&self, value: Option<&str>) {
        *self.jar.lock().unwrap_or_else(PoisonError::into_inner) = value.map(str::to_owned);
    }

    /// GETs `base` + `path` with the query pairs, sending the jar's cookie and applying the
    /// response's `Set-Cookie` for the session cookie. Panics unless the status is 2xx.
    pub async fn get(&self, base: &str, path: &str, query: &[(&str, &str)]) -> Reply {
        let reply = self.request(base, path, query).await;
        assert!(
            (200..300).contains(&reply.status),
            "GET {base}{path} {query:?}: status {} body {}",
            reply.status,
            reply.body
        );
        reply
    }

    /// As [`get`](Self::get), whatever the status.
    pub async fn request(&self, base: &str, path: &str, query: &[(&str, &str)]) -> Reply {
        let mut request = self.client.get(format!("{base}{path}")).query(query);
        if let Some(value) = self.cookie() {
            request = request.header(header::COOKIE, format!("{}={value}", self.name));
        }
        let response = request
            .timeout(StdDuration::from_secs(60))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
        let status = response.status().as_u16();
        let cookie = common::set_cookies(&response)
            .into_iter()
            .rfind(|c| c.name == self.name);
        let text = response.text().await.expect("response body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("GET {base}{path}: body is not JSON ({e}): {text:?}"))
        };
        if let Some(cookie) = &cookie {
            self.apply(cookie);
        }
        Reply {
            status,
            body,
            cookie,
        }
    }

    fn apply(&self, cookie: &SetCookie) {
        let expired = cookie.max_age().is_some_and(|age| age <= 0)
            || cookie
                .attr("expires")
                .and_then(|v| v.and_then(common::parse_http_date))
                .is_some_and(|t| t <= OffsetDateTime::now_utc());
        let removed = cookie.value.is_empty() || cookie.value == "\"\"" || expired;
        self.set_cookie((!removed).then_some(cookie.value.as_str()));
    }
}

// ----- the shared database -----

/// A direct connection to the database both sides use, to look at `django_session`.
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
}

/// One `django_session` row: `session_data` and `expire_date` as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub data: String,
    pub expire_date: String,
}

impl Db {
    pub async fn connect(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            return Self::Sqlite(sqlx::SqlitePool::connect(url).await.expect("open SQLite"));
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres") {
            return Self::Postgres(
                sqlx::PgPool::connect(url)
                    .await
                    .expect("connect PostgreSQL"),
            );
        }
        #[cfg(feature = "mysql")]
        if url.starts_with("mysql") || url.starts_with("mariadb") {
            return Self::MySql(sqlx::MySqlPool::connect(url).await.expect("connect MySQL"));
        }
        panic!("unsupported database URL {url}")
    }

    pub async fn row(&self, key: &str) -> Option<Row> {
        let row: Option<(String, String)> = match self {
            Self::Sqlite(pool) => sqlx::query_as(
                "SELECT session_data, expire_date FROM django_session WHERE session_key = ?",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
            .expect("select row"),
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::query_as(
                "SELECT session_data, expire_date::text FROM django_session WHERE session_key = $1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
            .expect("select row"),
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => sqlx::query_as(
                "SELECT session_data, CAST(expire_date AS CHAR) FROM django_session \
                 WHERE session_key = ?",
            )
            .bind(key)
            .fetch_optional(pool)
            .await
            .expect("select row"),
        };
        row.map(|(data, expire_date)| Row { data, expire_date })
    }

    pub async fn count(&self) -> i64 {
        let (n,): (i64,) = match self {
            Self::Sqlite(pool) => sqlx::query_as("SELECT COUNT(*) FROM django_session")
                .fetch_one(pool)
                .await
                .expect("count rows"),
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => sqlx::query_as("SELECT COUNT(*) FROM django_session")
                .fetch_one(pool)
                .await
                .expect("count rows"),
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => sqlx::query_as("SELECT COUNT(*) FROM django_session")
                .fetch_one(pool)
                .await
                .expect("count rows"),
        };
        n
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
            #[cfg(feature = "mysql")]
            Self::MySql(pool) => pool.close().await,
        }
    }
}

// ----- the shared directory -----

/// The session files in `dir` (`sessionid<key>`), by key, sorted.
pub fn session_files(dir: &Path) -> Vec<String> {
    let mut keys: Vec<String> = std::fs::read_dir(dir)
        .expect("list the session directory")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let key = name.strip_prefix("sessionid")?;
            common::is_generated_key(key).then(|| key.to_owned())
        })
        .collect();
    keys.sort();
    keys
}
