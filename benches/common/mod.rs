//! What the benchmarks share: the scenarios of issue #5, the three contenders (no session
//! layer, sessionbase, tower-sessions) as axum routers with the same routes and handlers, and
//! the requests each scenario sends.
//!
//! Every handler answers the static body `"ok"`, so that the only difference between
//! contenders is the session work itself:
//!
//! | path | handler | scenario |
//! |---|---|---|
//! | `/a` | never extracts the session | a (no cookie), b (a valid cookie) |
//! | `/c` | reads `counter` | c |
//! | `/d` | reads `counter`, stores `counter + 1` | d |
//! | `/e` | inserts `user_id = 42` | e (no cookie: a new session) |
//!
//! Scenario f (issue #12) is c with a save on every request: the same `/c`, with
//! sessionbase's `save_every_request` and tower-sessions' `with_always_save(true)`.

// Helpers shared by several binaries: `pub` so each can use them.
#![allow(unreachable_pub)]
// Each bench binary uses a different part of this module.
#![allow(dead_code)]

pub mod proxy;

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, Response, header};
use tower::ServiceExt;

/// A scenario of issue #5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// The handler never extracts the session; no cookie.
    A,
    /// The handler never extracts the session; a valid session cookie is sent.
    B,
    /// The handler reads one value of an existing session.
    C,
    /// The handler increments a counter of an existing session (load, save, Set-Cookie).
    D,
    /// The handler inserts into a new session (no cookie in, Set-Cookie out).
    E,
    /// c with a save on every request (rolling sessions: `save_every_request`).
    F,
}

impl Scenario {
    /// Issue #5's scenarios, on the default configuration.
    pub const ALL: [Scenario; 5] = [Self::A, Self::B, Self::C, Self::D, Self::E];
    /// The scenarios of the production-store comparisons (issue #12).
    pub const STORES: [Scenario; 3] = [Self::C, Self::D, Self::F];

    pub fn id(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
            Self::C => "c",
            Self::D => "d",
            Self::E => "e",
            Self::F => "f",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Self::F])
            .find(|s| s.id() == id)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::A => "session never extracted, no cookie",
            Self::B => "session never extracted, valid cookie sent",
            Self::C => "read one value of an existing session",
            Self::D => "increment a counter (load, save, Set-Cookie)",
            Self::E => "insert into a new session (create, Set-Cookie)",
            Self::F => "read one value, save every request (load, save, Set-Cookie)",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::A | Self::B => "/a",
            Self::C | Self::F => "/c",
            Self::D => "/d",
            Self::E => "/e",
        }
    }

    /// Whether the request carries the cookie of an existing session.
    pub fn sends_cookie(self) -> bool {
        matches!(self, Self::B | Self::C | Self::D | Self::F)
    }

    /// Whether a session layer saves and sends `Set-Cookie` in this scenario.
    pub fn writes(self) -> bool {
        matches!(self, Self::D | Self::E | Self::F)
    }

    /// Whether the layer saves every request (`save_every_request`, `with_always_save`).
    pub fn saves_every_request(self) -> bool {
        self == Self::F
    }

    /// The request of this scenario (`cookie` is `name=value`, used when the scenario sends
    /// one).
    pub fn request(self, cookie: &str) -> Request<Body> {
        let mut builder = Request::get(self.path()).header(header::HOST, "bench.local");
        if self.sends_cookie() {
            builder = builder.header(header::COOKIE, cookie);
        }
        builder.body(Body::empty()).expect("valid request")
    }
}

/// Who handles the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contender {
    /// The same router without any session layer: the floor.
    Bare,
    /// The bare router with a layer that does nothing (`MapRequestLayer` of the identity),
    /// added with `Router::layer` like the session layers: what axum charges for any layer.
    NoopLayer,
    /// `SessionLayer::new(MemoryStore::new())`.
    Sessionbase,
    /// tower-sessions 0.15 with its `MemoryStore`.
    TowerSessions,
}

impl Contender {
    pub const ALL: [Contender; 4] = [
        Self::Bare,
        Self::NoopLayer,
        Self::Sessionbase,
        Self::TowerSessions,
    ];
    /// The contenders of issue #5 (the over-HTTP benchmark runs only these).
    pub const ISSUE: [Contender; 3] = [Self::Bare, Self::Sessionbase, Self::TowerSessions];

    pub fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::NoopLayer => "noop-layer",
            Self::Sessionbase => "sessionbase",
            Self::TowerSessions => "tower-sessions",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The contender's router, on its in-memory store.
    pub fn router(self) -> Router {
        match self {
            Self::Bare => bare_router(),
            Self::NoopLayer => {
                bare_router().layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r))
            }
            Self::Sessionbase => sessionbase_router(sessionbase::MemoryStore::new()),
            Self::TowerSessions => tower_sessions_router(tower_sessions::MemoryStore::default()),
        }
    }
}

/// A cookie value of the right shape for the bare router, which ignores it.
pub const BARE_COOKIE: &str = "sessionid=abcdefghijklmnopqrstuvwxyz012345";

async fn untouched() -> &'static str {
    "ok"
}

/// The floor: the same routes, no session.
pub fn bare_router() -> Router {
    Router::new()
        .route("/a", get(untouched))
        .route("/c", get(untouched))
        .route("/d", get(untouched))
        .route("/e", get(untouched))
}

mod sb {
    use super::black_box;
    use sessionbase::{Error, Session};

    pub async fn read(session: Session) -> Result<&'static str, Error> {
        black_box(session.get::<u64>("counter")?);
        Ok("ok")
    }

    pub async fn increment(session: Session) -> Result<&'static str, Error> {
        let n: u64 = session.get("counter")?.unwrap_or(0);
        session.insert("counter", n + 1)?;
        Ok("ok")
    }

    pub async fn insert(session: Session) -> Result<&'static str, Error> {
        session.insert("user_id", 42u64)?;
        Ok("ok")
    }
}

/// sessionbase's routes, without the layer.
fn sessionbase_routes() -> Router {
    Router::new()
        .route("/a", get(untouched))
        .route("/c", get(sb::read))
        .route("/d", get(sb::increment))
        .route("/e", get(sb::insert))
}

/// sessionbase's layer, with Django's default settings, on `store`.
pub fn sessionbase_router<S: sessionbase::SessionStore>(store: S) -> Router {
    sessionbase_routes().layer(sessionbase::SessionLayer::new(store))
}

/// sessionbase's layer on `store` as `scenario` configures it: Django's defaults, plus
/// `save_every_request` in f.
pub fn sessionbase_router_for<S: sessionbase::SessionStore>(
    store: S,
    scenario: Scenario,
) -> Router {
    let config = sessionbase::SessionConfig::default()
        .with_save_every_request(scenario.saves_every_request());
    let layer = sessionbase::SessionLayer::new(store)
        .with_config(config)
        .expect("a valid configuration");
    sessionbase_routes().layer(layer)
}

mod ts {
    use super::black_box;
    use http::StatusCode;
    use tower_sessions::Session;

    fn fail(_: tower_sessions::session::Error) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    pub async fn read(session: Session) -> Result<&'static str, StatusCode> {
        black_box(session.get::<u64>("counter").await.map_err(fail)?);
        Ok("ok")
    }

    pub async fn increment(session: Session) -> Result<&'static str, StatusCode> {
        let n: u64 = session.get("counter").await.map_err(fail)?.unwrap_or(0);
        session.insert("counter", n + 1).await.map_err(fail)?;
        Ok("ok")
    }

    pub async fn insert(session: Session) -> Result<&'static str, StatusCode> {
        session.insert("user_id", 42u64).await.map_err(fail)?;
        Ok("ok")
    }
}

/// tower-sessions' layer on `store`, with `Secure` off as sessionbase's default (everything
/// else is its default).
pub fn tower_sessions_router<S>(store: S) -> Router
where
    S: tower_sessions::SessionStore + Clone,
{
    tower_sessions_routes()
        .layer(tower_sessions::SessionManagerLayer::new(store).with_secure(false))
}

fn tower_sessions_routes() -> Router {
    Router::new()
        .route("/a", get(untouched))
        .route("/c", get(ts::read))
        .route("/d", get(ts::increment))
        .route("/e", get(ts::insert))
}

/// A service the benchmarks can drive: a `Router`, or a layer wrapped around one.
pub trait App:
    tower::Service<
        Request<Body>,
        Response = Response<Body>,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> App for T where
    T: tower::Service<
            Request<Body>,
            Response = Response<Body>,
            Error = std::convert::Infallible,
            Future: Send,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// The second placement of a layer: around the whole router (`Layer::layer(router)`, as
/// `ServiceBuilder` does), where axum does not box and clone a layered route per request.
/// Calls `f` once per contender with its name and service.
pub trait AroundVisitor {
    fn visit<S: App>(&mut self, contender: Contender, name: &'static str, app: S);
}

/// The in-process contenders with their layer around the whole router.
pub const AROUND: [&str; 3] = ["noop-around", "sessionbase-around", "tower-sessions-around"];

pub fn visit_around(v: &mut impl AroundVisitor) {
    use tower::Layer;
    v.visit(
        Contender::NoopLayer,
        AROUND[0],
        tower::util::MapRequestLayer::new(|r: Request<Body>| r).layer(bare_router()),
    );
    v.visit(
        Contender::Sessionbase,
        AROUND[1],
        sessionbase::SessionLayer::new(sessionbase::MemoryStore::new()).layer(sessionbase_routes()),
    );
    v.visit(
        Contender::TowerSessions,
        AROUND[2],
        tower_sessions::SessionManagerLayer::new(tower_sessions::MemoryStore::default())
            .with_secure(false)
            .layer(tower_sessions_routes()),
    );
}

/// The `name=value` of the first `Set-Cookie` of `response`.
pub fn set_cookie_pair<B>(response: &Response<B>) -> Option<String> {
    let value = response.headers().get(header::SET_COOKIE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_owned())
}

/// Creates a session through `app` (a cookie-less `/d`: `counter = 1`) and returns its
/// cookie, `name=value`.
pub async fn new_session(app: &impl App) -> String {
    let request = Request::get("/d")
        .header(header::HOST, "bench.local")
        .body(Body::empty())
        .expect("valid request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    assert!(response.status().is_success(), "{:?}", response.status());
    set_cookie_pair(&response).expect("a new session sets its cookie")
}

/// The cookie the contender's requests carry in scenarios b, c and d: a real session's for
/// the session layers, a well-formed dummy for the bare router.
pub async fn cookie_for(contender: Contender, app: &impl App) -> String {
    match contender {
        Contender::Bare | Contender::NoopLayer => BARE_COOKIE.to_owned(),
        _ => new_session(app).await,
    }
}

/// Sends `request` through `app` and checks what a scenario promises: 200, and a
/// `Set-Cookie` exactly when the session was written (d and e, never for the bare router).
pub async fn check(contender: Contender, scenario: Scenario, app: &impl App, cookie: &str) {
    let response = app
        .clone()
        .oneshot(scenario.request(cookie))
        .await
        .expect("infallible");
    assert_eq!(
        response.status(),
        200,
        "{} {}",
        contender.name(),
        scenario.id()
    );
    let writes =
        matches!(contender, Contender::Sessionbase | Contender::TowerSessions) && scenario.writes();
    assert_eq!(
        response.headers().contains_key(header::SET_COOKIE),
        writes,
        "Set-Cookie of {} in scenario {}",
        contender.name(),
        scenario.id()
    );
}

/// Where the benchmarks leave their results: `target/bench-results` (or
/// `$SESSIONBASE_BENCH_RESULTS`).
pub fn results_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("SESSIONBASE_BENCH_RESULTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results")
        });
    std::fs::create_dir_all(&dir).expect("create the results directory");
    dir
}

/// Whether cargo ran this binary as a benchmark filter listing (`--list`) or as a test
/// (`cargo test --benches` passes no `--bench`): harness-less benches then do nothing.
pub fn invoked_as_test() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--list") || !args.iter().any(|a| a == "--bench")
}

/// One `GET` over a fresh HTTP/1.1 connection: the status and the `name=value` of the
/// `Set-Cookie`, if any.
pub async fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: bench.local\r\n{cookie}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("receive");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let set_cookie = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.split(';').next().unwrap_or("").trim().to_owned())
        });
    (status, set_cookie)
}
