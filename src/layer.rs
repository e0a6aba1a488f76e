//! `SessionLayer` and `SessionService`: Django's `SessionMiddleware`.
//!
//! The path of a request:
//! 1. [`SessionService::call`] finds the session cookie (only that one) in the `Cookie`
//!    headers, asks the store whether its value is a well-formed key, and attaches a
//!    [`Session`] to the request. Nothing is read from the store.
//! 2. The handler takes the session (the extractor reads the record then) or ignores it.
//! 3. [`ResponseFuture`] applies Django's `process_response`: delete the cookie of a session
//!    that is now empty, or save a modified one and set the cookie, and add `Vary: Cookie`.
//!    Only a save needs the store; every other path finishes without another allocation.
//!
//! ```
//! use axum::{Router, routing::get};
//! use sessionbase::{MemoryStore, Session, SessionConfig, SessionLayer};
//!
//! # fn main() -> Result<(), sessionbase::Error> {
//! let config = SessionConfig::default()
//!     .with_cookie_secure(true)
//!     .with_save_every_request(true);
//! let app: Router = Router::new()
//!     .route("/", get(|session: Session| async move { session.len().to_string() }))
//!     .layer(SessionLayer::new(MemoryStore::new()).with_config(config)?);
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use time::OffsetDateTime;
use tokio::task::futures::TaskLocalFuture;
use tower_layer::Layer;
use tower_service::Service;

use crate::cookie;
use crate::extract::{CURRENT, RequestSlot};
use crate::session::{Backend, Snapshot};
use crate::store::BoxFuture;
use crate::{Error, Session, SessionConfig, SessionKey, SessionStore};

/// Turns an error that ends a request (a failed save, a session deleted concurrently) into
/// the response sent instead. The error has already been logged.
///
/// Any `Fn(&Error) -> Response<B> + Clone + Send + Sync` is one:
///
/// ```
/// use axum::{body::Body, response::{IntoResponse, Response}};
/// use sessionbase::{Error, MemoryStore, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::new()).on_error(|e: &Error| -> Response<Body> {
///     (e.status(), "Please sign in again").into_response()
/// });
/// ```
pub trait OnError<B>: Clone + Send + Sync + 'static {
    /// The response for `error`.
    fn on_error(&self, error: &Error) -> Response<B>;
}

/// The default [`OnError`]: the status of [`Error::status`] with an empty body (400 for
/// [`Error::SessionInterrupted`], 503 when the store is unreachable, 500 otherwise).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultOnError;

impl<B: Default> OnError<B> for DefaultOnError {
    fn on_error(&self, error: &Error) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.status_mut() = error.status();
        response
    }
}

impl<F, B> OnError<B> for F
where
    F: Fn(&Error) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn on_error(&self, error: &Error) -> Response<B> {
        self(error)
    }
}

/// Adds Django's sessions to a service: a [`Session`] for every request, saved and sent back
/// in the cookie afterwards.
///
/// The store is read only when the handler extracts the [`Session`] (or
/// `save_every_request` needs it). After the handler, as Django's `SessionMiddleware`: an
/// emptied session's cookie is deleted; a modified one is saved and its cookie set (never on
/// a 5xx); `Vary: Cookie` is added when the session was used.
///
/// ```
/// use axum::{Router, routing::get};
/// use sessionbase::{MemoryStore, Session, SessionLayer};
///
/// let app: Router = Router::new()
///     .route("/", get(|s: Session| async move { s.len().to_string() }))
///     .layer(SessionLayer::new(MemoryStore::new()));
/// ```
#[derive(Clone)]
pub struct SessionLayer<E = DefaultOnError> {
    backend: Arc<Backend>,
    on_error: E,
}

impl SessionLayer {
    /// Sessions in `store`, with Django's default settings.
    pub fn new<S: SessionStore>(store: S) -> Self {
        let backend = Backend::new(Arc::new(store), Arc::new(SessionConfig::default()));
        Self {
            backend: Arc::new(backend),
            on_error: DefaultOnError,
        }
    }
}

impl<E> SessionLayer<E> {
    /// Uses `config` instead of the defaults. Fails when browsers would drop the cookie it
    /// describes (see [`SessionConfig::validate`]).
    pub fn with_config(mut self, config: impl Into<Arc<SessionConfig>>) -> Result<Self, Error> {
        let config = config.into();
        config.validate()?;
        self.backend = Arc::new(Backend::new(Arc::clone(&self.backend.store), config));
        Ok(self)
    }

    /// Answers errors that end a request with `on_error` instead of [`DefaultOnError`].
    pub fn on_error<E2>(self, on_error: E2) -> SessionLayer<E2> {
        SessionLayer {
            backend: self.backend,
            on_error,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        &self.backend.config
    }
}

impl<S, E: Clone> Layer<S> for SessionLayer<E> {
    type Service = SessionService<S, E>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an inner service.
#[derive(Clone)]
pub struct SessionService<S, E = DefaultOnError> {
    inner: S,
    layer: SessionLayer<E>,
}

impl<S, E, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, E>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Send + 'static,
    E: OnError<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let layer = &self.layer;
        let backend = &layer.backend;
        let incoming = cookie::incoming(request.headers(), &backend.config.cookie_name, |v| {
            backend.store.parse_key(v)
        });
        // The slot lives inside the response future (a task-local scope), so a request whose
        // handler never takes the session allocates nothing for it.
        let slot = RequestSlot::new(Arc::clone(backend), incoming.key);
        ResponseFuture {
            state: State::Handler {
                future: CURRENT.scope(slot, self.inner.call(request)),
                cookie_present: incoming.present,
                on_error: Some(layer.on_error.clone()),
            },
        }
    }
}

pin_project! {
    /// The response future of [`SessionService`]: the inner service's future, then, only when
    /// the session must be saved, the save.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Handler {
            #[pin]
            future: TaskLocalFuture<RequestSlot, F>,
            cookie_present: bool,
            on_error: Option<E>,
        },
        Saving {
            future: BoxFuture<'static, Response<B>>,
        },
    }
}

impl<F, B, Err, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, Err>>,
    B: Send + 'static,
    E: OnError<B>,
{
    type Output = Result<Response<B>, Err>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let saving = match self.as_mut().project().state.project() {
                StateProj::Handler {
                    mut future,
                    cookie_present,
                    on_error,
                } => {
                    let response = ready!(future.as_mut().poll(cx))?;
                    let (Some(slot), Some(on_error)) = (future.take_value(), on_error.take())
                    else {
                        return Poll::Ready(Ok(response));
                    };
                    match process_response(slot, response, *cookie_present, on_error) {
                        Processed::Done(response) => return Poll::Ready(Ok(response)),
                        Processed::Save(future) => future,
                    }
                }
                StateProj::Saving { future } => return future.as_mut().poll(cx).map(Ok),
            };
            self.as_mut()
                .project()
                .state
                .set(State::Saving { future: saving });
        }
    }
}

enum Processed<B> {
    Done(Response<B>),
    Save(BoxFuture<'static, Response<B>>),
}

/// Django 5.2's `SessionMiddleware.process_response`, up to the save, which is async.
fn process_response<B, E>(
    slot: RequestSlot,
    mut response: Response<B>,
    cookie_present: bool,
    on_error: E,
) -> Processed<B>
where
    B: Send + 'static,
    E: OnError<B>,
{
    // Django takes these before any save. A session no handler took was neither accessed
    // nor modified, and is empty exactly when the cookie named no key.
    let snapshot = match slot.extracted() {
        Some(session) => session.response_snapshot(),
        None => Snapshot::untouched(slot.has_key()),
    };
    let config = slot.config();
    if cookie_present && snapshot.empty {
        if let Some(removal) = &slot.cookie_template().removal {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, removal.clone());
        }
        cookie::add_vary_cookie(response.headers_mut());
        return Processed::Done(response);
    }
    let wants_save = (snapshot.modified || config.save_every_request) && !snapshot.empty;
    // Django skips the save for every 5xx, not only 500.
    if wants_save && response.status() < StatusCode::INTERNAL_SERVER_ERROR {
        let session = slot.into_session();
        let now = OffsetDateTime::now_utc();
        // A store that answers without waiting saves right here, without boxing a future.
        if let Some(saved) = session.run_now_if_immediate(save(&session, snapshot.extracted, now)) {
            return Processed::Done(finish_save(&session, response, saved, now, &on_error));
        }
        return Processed::Save(Box::pin(save_and_set_cookie(
            session,
            response,
            snapshot.extracted,
            on_error,
        )));
    }
    if snapshot.accessed {
        cookie::add_vary_cookie(response.headers_mut());
    }
    Processed::Done(response)
}

/// Reads the record if no handler did (`save_every_request`), then saves: the key the cookie
/// carries and its `Max-Age`.
async fn save(
    session: &Session,
    extracted: bool,
    now: OffsetDateTime,
) -> Result<(SessionKey, Option<i64>), Error> {
    if !extracted {
        // save_every_request on a session no handler took: read it now.
        session.fetch(false).await?;
    }
    session.save_for_response(now).await
}

async fn save_and_set_cookie<B, E: OnError<B>>(
    session: Session,
    response: Response<B>,
    extracted: bool,
    on_error: E,
) -> Response<B> {
    // One clock reading for the cookie's age, its `expires` and the record's expiry.
    let now = OffsetDateTime::now_utc();
    let saved = save(&session, extracted, now).await;
    finish_save(&session, response, saved, now, &on_error)
}

/// The response once the save is done: its cookie, or the error's response.
fn finish_save<B, E: OnError<B>>(
    session: &Session,
    mut response: Response<B>,
    saved: Result<(SessionKey, Option<i64>), Error>,
    now: OffsetDateTime,
    on_error: &E,
) -> Response<B> {
    let (key, max_age) = match saved {
        Ok(saved) => saved,
        Err(error) => {
            match &error {
                Error::SessionInterrupted => {
                    tracing::warn!(%error, "session deleted during the request")
                }
                _ => {
                    tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "saving the session failed")
                }
            }
            return on_error.on_error(&error);
        }
    };
    // Browsers drop a larger cookie silently, which would lose the session without a trace.
    let size = session.config().cookie_name.len() + 1 + key.as_str().len();
    if size > cookie::MAX_COOKIE_SIZE {
        let error = Error::CookieTooLarge {
            size,
            limit: cookie::MAX_COOKIE_SIZE,
        };
        tracing::error!(%error, "not sending a session cookie browsers would drop");
        return on_error.on_error(&error);
    }
    match cookie::set_cookie(session.cookie_template(), key.as_str(), max_age, now) {
        Some(value) => {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value);
        }
        None => tracing::error!("session cookie value is not a valid header value"),
    }
    cookie::add_vary_cookie(response.headers_mut());
    response
}
