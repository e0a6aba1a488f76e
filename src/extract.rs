//! Taking the request's [`Session`]: the axum extractor, and [`Session::current`] for any
//! other Tower service.
//!
//! The layer keeps each request's session slot in a task-local scope around the inner
//! service's future, not in the request's extensions: a request whose handler never takes the
//! session then costs no allocation for it. The session is built, and its record read, only
//! when a handler asks for it.
//!
//! ```
//! use axum::{Router, routing::get};
//! use sessionbase::{MemoryStore, Session, SessionLayer};
//!
//! async fn whoami(session: Session) -> Result<String, sessionbase::Error> {
//!     Ok(session.get::<String>("user")?.unwrap_or_else(|| "anonymous".into()))
//! }
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(SessionLayer::new(MemoryStore::new()));
//! ```

use std::cell::OnceCell;
use std::future::Future;
use std::sync::Arc;

use crate::session::Backend;
use crate::{Error, Session, SessionConfig, SessionKey};

tokio::task_local! {
    /// The session slot of the request whose future is being polled.
    pub(crate) static CURRENT: RequestSlot;
}

/// What the layer knows about one request's session before a handler asks for it.
pub(crate) struct RequestSlot {
    backend: Arc<Backend>,
    key: Option<SessionKey>,
    /// Set when a handler takes the session.
    session: OnceCell<Session>,
}

impl RequestSlot {
    pub(crate) fn new(backend: Arc<Backend>, key: Option<SessionKey>) -> Self {
        Self {
            backend,
            key,
            session: OnceCell::new(),
        }
    }

    /// The request's session, built on first call.
    fn session(&self) -> Session {
        self.session
            .get_or_init(|| Session::with_parts(Arc::clone(&self.backend), self.key.clone()))
            .clone()
    }

    /// The session, if a handler took it.
    pub(crate) fn extracted(&self) -> Option<&Session> {
        self.session.get()
    }

    pub(crate) fn has_key(&self) -> bool {
        self.key.is_some()
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        &self.backend.config
    }

    pub(crate) fn cookie_template(&self) -> &crate::cookie::CookieTemplate {
        &self.backend.cookie
    }

    /// The session, built now if no handler took it.
    pub(crate) fn into_session(self) -> Session {
        match self.session.into_inner() {
            Some(session) => session,
            None => Session::with_parts(self.backend, self.key),
        }
    }
}

impl Session {
    /// The session of the request being served, with its record read from the store: the
    /// extractor, for Tower services that are not axum handlers. Call it from within the
    /// future that the [`SessionLayer`](crate::SessionLayer) wraps (the service's response
    /// future), not from `Service::call` itself nor from a task spawned off it. Fails with
    /// [`Error::MissingLayer`] outside such a future, or with the store's error.
    ///
    /// ```
    /// use http::{Request, Response};
    /// use sessionbase::{MemoryStore, Session, SessionLayer};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let service = ServiceBuilder::new()
    ///     .layer(SessionLayer::new(MemoryStore::new()))
    ///     .service(service_fn(|_request: Request<String>| async move {
    ///         let session = Session::current().await?;
    ///         session.insert("seen", true)?;
    ///         Ok::<_, sessionbase::Error>(Response::new(String::new()))
    ///     }));
    /// let response = service.oneshot(Request::new(String::new())).await.unwrap();
    /// assert!(response.headers().contains_key("set-cookie"));
    /// # });
    /// ```
    pub fn current() -> impl Future<Output = Result<Session, Error>> + Send + 'static {
        // Read now, while the layer's scope is entered; the load happens when awaited.
        let session = CURRENT.try_with(RequestSlot::session).ok();
        async move {
            let session = session.ok_or(Error::MissingLayer)?;
            if let Err(error) = session.fetch(true).await {
                tracing::error!(%error, cause = ?std::error::Error::source(&error), "loading the session failed");
                return Err(error);
            }
            Ok(session)
        }
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for Session {
    /// [`Error::MissingLayer`] (500) without a [`SessionLayer`](crate::SessionLayer), or the
    /// store's error (503 or 500) when the record could not be read.
    type Rejection = Error;

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Session::current().await.inspect_err(|e| {
            if matches!(e, Error::MissingLayer) {
                tracing::error!("the Session extractor needs a SessionLayer around the handler");
            }
        })
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::OptionalFromRequestParts<S> for Session {
    /// The store's error; a missing layer is `None`.
    type Rejection = Error;

    async fn from_request_parts(
        _parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match Session::current().await {
            Ok(session) => Ok(Some(session)),
            Err(Error::MissingLayer) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
