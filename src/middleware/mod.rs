//! `SessionLayer` and `SessionService`: Django's `SessionMiddleware`.
//!
//! A request's path, top to bottom:
//!
//! 1. **`process_request`** ([`SessionService::call`], `request.rs`): the session cookie,
//!    and only that one, is found in the `Cookie` headers; the store says whether its value
//!    is a well-formed key. A [`Session`] handle for that key goes into the request's
//!    extensions. Nothing is read from the store. A cookie that is no key is the
//!    `rejected_cookie` audit event (`events.rs`: logged by a salted fingerprint, handed to
//!    the app's hook).
//! 2. **The handler** takes the session (the extractor, or [`Session::from_extensions`],
//!    reads the record then; see `session/extract.rs`) or ignores it. It uses Django's
//!    `SessionBase` API (`session/`); the store is called through one dispatch chosen when
//!    the layer was built (`store/dispatch.rs`): inline for a store that answers at once,
//!    a boxed future bounded by `store_timeout` for one behind I/O, and timed there with
//!    the `metrics` feature (`instruments.rs`). The session's lifecycle (created, key cycled,
//!    flushed, expired on load) is announced as audit events as it happens.
//! 3. **`process_response`** ([`ResponseFuture`], `response.rs`) reads the flags Django's
//!    middleware reads (`accessed`, `modified`, `is_empty()`) and does what it does: delete
//!    the cookie of a session that is now empty; or save a modified one (or every one, with
//!    `save_every_request`; a session that request left unchanged only has its stored
//!    expiry moved, `SessionStore::touch`), never on a 5xx, and set the cookie with the
//!    computed expiry (`set_cookie.rs`, with `Partitioned` when `cookie_partitioned`); add
//!    `Vary: Cookie` when the session was used (accessed, or its cookie set or deleted), and
//!    then, with `cache_control_no_store`, `Cache-Control: no-store` merged into the
//!    handler's (`cache_control.rs`), and on the response that deletes the cookie (a
//!    logout) `Clear-Site-Data: "cache"`, so that no back/forward cache keeps a signed-in
//!    page either (`clear_site_data.rs`). Only a save needs the store; with a store that answers
//!    at once it runs inline too.
//! 4. Errors that end the request (a failed save, a session deleted concurrently: the
//!    `interrupted` event) are logged and answered by [`OnError`] (`on_error.rs`), with
//!    `no-store` on that answer too under `cache_control_no_store`.
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

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::events::{self, SessionEventKind};
use crate::session::Shared;
use crate::store::Store;
use crate::{Error, Session, SessionConfig, SessionStore};

mod cache_control;
mod clear_site_data;
mod on_error;
mod request;
mod response;
pub(crate) mod set_cookie;

pub use on_error::{DefaultOnError, OnError};
pub use response::ResponseFuture;
use set_cookie::CookieTemplate;

/// Adds Django's sessions to a service: a [`Session`] for every request, saved and sent back
/// in the cookie afterwards.
///
/// The store is read only when the handler extracts the [`Session`] (or
/// `save_every_request` needs it). After the handler, as Django's `SessionMiddleware`: an
/// emptied session's cookie is deleted; a modified one is saved and its cookie set (never on
/// a 5xx); `Vary: Cookie` is added when the session was used. The module docs of
/// `src/middleware/mod.rs` follow a request's whole path.
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
    state: Arc<LayerState>,
    on_error: E,
}

/// What every request of a layer shares: its sessions' store and configuration, and the
/// parts of `Set-Cookie` the configuration decides.
pub(crate) struct LayerState {
    sessions: Arc<Shared>,
    cookie: CookieTemplate,
}

impl LayerState {
    fn new(store: Store, config: Arc<SessionConfig>) -> Self {
        Self {
            cookie: CookieTemplate::new(&config),
            sessions: Arc::new(Shared::new(store, config)),
        }
    }

    fn config(&self) -> &SessionConfig {
        &self.sessions.config
    }
}

impl SessionLayer {
    /// Sessions in `store`, with Django's default settings.
    pub fn new<S: SessionStore>(store: S) -> Self {
        let state = LayerState::new(Store::new(store), Arc::new(SessionConfig::default()));
        Self {
            state: Arc::new(state),
            on_error: DefaultOnError,
        }
    }
}

impl<E> SessionLayer<E> {
    /// Uses `config` instead of the defaults. Fails when browsers would drop the cookie it
    /// describes (see [`SessionConfig::validate`]), or when the store cannot serve it (see
    /// [`SessionStore::check_config`]).
    pub fn with_config(mut self, config: impl Into<Arc<SessionConfig>>) -> Result<Self, Error> {
        let config = config.into();
        config.validate()?;
        let store = self.state.sessions.store.clone();
        store.check_config(&config)?;
        self.state = Arc::new(LayerState::new(store, config));
        Ok(self)
    }

    /// Answers errors that end a request with `on_error` instead of [`DefaultOnError`].
    pub fn on_error<E2>(self, on_error: E2) -> SessionLayer<E2> {
        SessionLayer {
            state: self.state,
            on_error,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SessionConfig {
        self.state.config()
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

    /// Django's `process_request`: the session goes into the request's extensions.
    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let state = &self.layer.state;
        let sessions = &state.sessions;
        let config = &sessions.config;
        let incoming = request::incoming(
            request.headers(),
            &config.cookie_name,
            |v| sessions.store.parse_key(v),
            |rejected| {
                events::emit(
                    config,
                    SessionEventKind::RejectedCookie,
                    Some(rejected),
                    None,
                )
            },
        );
        let session = Session::for_request(sessions, incoming.key);
        request.extensions_mut().insert(session.clone());
        ResponseFuture::new(
            self.inner.call(request),
            session,
            Arc::clone(state),
            incoming.present,
            self.layer.on_error.clone(),
        )
    }
}
