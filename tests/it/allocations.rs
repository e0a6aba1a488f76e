//! A request whose handler never takes the session allocates at most one box for it:
//! counted with a counting global allocator, the layer against the same service without it.
//!
//! The allocator is the whole test binary's, yet this module shares the binary with the
//! other suites: it counts per thread, each test here runs on a current-thread runtime and
//! compares counts of its own thread only, and the other tests pay one thread-local
//! increment per allocation and see nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;

use http::{Request, Response, header::COOKIE};
use sessionbase::{MemoryStore, Session, SessionLayer};
use tower::{Layer, Service, ServiceExt, service_fn};

struct Counting;

thread_local! {
    // Per thread: libtest runs other tests (of every suite of the binary) on other threads
    // at the same time, and the current-thread runtime keeps all of a test's work on its own
    // thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROUNDS: usize = 200;

/// Allocations per request of `service` for requests made by `request`, after a warm-up.
async fn per_request<S>(mut service: S, request: impl Fn() -> Request<String>) -> f64
where
    S: Service<Request<String>, Response = Response<String>, Error = Infallible> + Clone,
{
    let requests: Vec<_> = (0..ROUNDS + 10).map(|_| request()).collect();
    let mut requests = requests.into_iter();
    for request in requests.by_ref().take(10) {
        let _ = service.ready().await.unwrap().call(request).await;
    }
    let before = allocations();
    for request in requests {
        let _ = service.ready().await.unwrap().call(request).await;
    }
    (allocations() - before) as f64 / ROUNDS as f64
}

/// Allocations per request of an axum service for requests made by `request`.
async fn router_allocations<S>(service: S, request: impl Fn() -> Request<axum::body::Body>) -> f64
where
    S: Service<
            Request<axum::body::Body>,
            Response = Response<axum::body::Body>,
            Error = Infallible,
        > + Clone,
{
    let requests: Vec<_> = (0..ROUNDS + 10).map(|_| request()).collect();
    let mut requests = requests.into_iter();
    for request in requests.by_ref().take(10) {
        let _ = service.clone().oneshot(request).await;
    }
    let before = allocations();
    for request in requests {
        let _ = service.clone().oneshot(request).await;
    }
    (allocations() - before) as f64 / ROUNDS as f64
}

async fn untouched(_: Request<String>) -> Result<Response<String>, Infallible> {
    Ok(Response::new(String::new()))
}

/// A live session in `store`, for requests whose cookie names a real record.
async fn live_key(store: &MemoryStore) -> String {
    let session = Session::new(store.clone(), sessionbase::SessionConfig::default());
    session.insert("n", 1).unwrap();
    session.save().await.unwrap();
    session.session_key().unwrap().to_string()
}

#[tokio::test(flavor = "current_thread")]
async fn around_the_router_untouched_requests_cost_at_most_one_allocation() {
    use axum::{Router, body::Body, routing::get};
    let store = MemoryStore::new();
    let key = live_key(&store).await;
    let router = || Router::new().route("/", get(|| async { "ok" }));
    let layered = SessionLayer::new(store).layer(router());
    let no_cookie = || Request::builder().uri("/").body(Body::empty()).unwrap();
    let with_cookie = || {
        Request::builder()
            .uri("/")
            .header(COOKIE, format!("csrftoken=abc; sessionid={key}"))
            .body(Body::empty())
            .unwrap()
    };
    let a = router_allocations(layered.clone(), no_cookie).await
        - router_allocations(router(), no_cookie).await;
    let b = router_allocations(layered, with_cookie).await
        - router_allocations(router(), with_cookie).await;
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("extra allocations per request around the router: a={a} b={b}\n").as_bytes(),
    );
    // The session handle is pooled per thread; what is left is the box the request's
    // extensions keep it in.
    assert!(a <= 1.0, "no cookie: {a} extra allocations per request");
    // The key the cookie carries is validated and kept inline, for a handler that may ask.
    assert!(b <= 1.0, "valid cookie: {b} extra allocations per request");
}

#[tokio::test(flavor = "current_thread")]
async fn around_a_bare_service_the_extensions_map_is_the_rest() {
    let store = MemoryStore::new();
    let key = live_key(&store).await;
    let bare = service_fn(untouched);
    let layered = SessionLayer::new(store).layer(service_fn(untouched));
    let no_cookie = || Request::new(String::new());
    let with_cookie = || {
        Request::builder()
            .header(COOKIE, format!("csrftoken=abc; sessionid={key}"))
            .body(String::new())
            .unwrap()
    };
    let a = per_request(layered.clone(), no_cookie).await - per_request(bare, no_cookie).await;
    let b = per_request(layered, with_cookie).await - per_request(bare, with_cookie).await;
    // A service with no extensions yet: the map and its table (which a router creates for
    // itself anyway), and the session's box.
    assert!(a <= 3.0, "no cookie: {a} extra allocations per request");
    assert!(b <= 3.0, "valid cookie: {b} extra allocations per request");
}

#[tokio::test(flavor = "current_thread")]
async fn the_session_is_in_the_request_extensions() {
    let service = SessionLayer::new(MemoryStore::new()).layer(service_fn(
        |request: Request<String>| async move {
            let session = request.extensions().get::<Session>().cloned().unwrap();
            // An immediate store loads on first use, with no explicit read.
            session.insert("k", "v").unwrap();
            Ok::<_, Infallible>(Response::new(String::new()))
        },
    ));
    let response = service.oneshot(Request::new(String::new())).await.unwrap();
    assert!(response.headers().contains_key("set-cookie"));
    // Without the layer there is no session to take.
    assert!(matches!(
        Session::from_extensions(Request::new(()).extensions()).await,
        Err(sessionbase::Error::MissingLayer)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn under_axum_router_layer_at_most_two_allocations_beyond_a_no_op_layer() {
    use axum::{Router, body::Body, routing::get};
    let noop = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(tower::util::MapRequestLayer::new(|r: Request<Body>| r));
    let layered = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(SessionLayer::new(MemoryStore::new()));
    let request = || Request::builder().uri("/").body(Body::empty()).unwrap();
    let count = |router: Router| async move {
        for _ in 0..10 {
            let _ = router.clone().oneshot(request()).await;
        }
        let before = allocations();
        for _ in 0..ROUNDS {
            let _ = router.clone().oneshot(request()).await;
        }
        (allocations() - before) as f64 / ROUNDS as f64
    };
    let extra = count(layered).await - count(noop).await;
    // axum boxes and clones every layered route per request, whatever the layer, and clones
    // a layer with state once more (`LayerFn::clone_box`); beyond that, a request that never
    // takes the session costs the box its extensions keep the session in.
    assert!(extra <= 2.0, "{extra} allocations beyond a no-op layer");
}

#[tokio::test(flavor = "current_thread")]
async fn audit_events_allocate_nothing_when_nobody_listens() {
    // No hook, and no subscriber on this thread (another suite's global one would listen).
    let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    let read = |request: Request<String>| async move {
        let session = request.extensions().get::<Session>().cloned().unwrap();
        let _ = session.len();
        Ok::<_, Infallible>(Response::new(String::new()))
    };
    let service = SessionLayer::new(MemoryStore::new()).layer(service_fn(read));
    let with_cookie = |value: String| {
        move || {
            Request::builder()
                .header(COOKIE, format!("sessionid={value}"))
                .body(String::new())
                .unwrap()
        }
    };
    let unknown = sessionbase::SessionKey::generate().unwrap().to_string();
    // The same read without an event (no cookie), then with `RejectedCookie` and
    // `ExpiredOnLoad`.
    let quiet = per_request(service.clone(), || Request::new(String::new())).await;
    let rejected = per_request(service.clone(), with_cookie("Forged-Value".into())).await;
    let expired = per_request(service, with_cookie(unknown)).await;
    assert!(rejected - quiet <= 0.0, "{rejected} against {quiet}");
    assert!(expired - quiet <= 0.0, "{expired} against {quiet}");
}
