//! Taking the request's [`Session`] out of a request: the axum extractor, and
//! [`Session::from_extensions`] for any other Tower service.
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

use std::future::Future;

use crate::{Error, Session};

/// What the layer attaches to each request; private so that only the extractor (which
/// reads the record first) hands the session out.
#[derive(Clone)]
pub(crate) struct RequestSession(pub(crate) Session);

impl Session {
    /// The session a [`SessionLayer`](crate::SessionLayer) attached to a request, with its
    /// record read from the store: the extractor, for Tower services that are not axum
    /// handlers. Fails with [`Error::MissingLayer`] when no layer ran, or with the store's
    /// error.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use sessionbase::{MemoryStore, Session, SessionLayer};
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let service = ServiceBuilder::new()
    ///     .layer(SessionLayer::new(MemoryStore::new()))
    ///     .service(service_fn(|request: Request<String>| async move {
    ///         let session = Session::from_extensions(request.extensions()).await?;
    ///         session.insert("seen", true)?;
    ///         Ok::<_, sessionbase::Error>(Response::new(String::new()))
    ///     }));
    /// let response = service.oneshot(Request::new(String::new())).await.unwrap();
    /// assert!(response.headers().contains_key("set-cookie"));
    /// # });
    /// ```
    pub fn from_extensions(
        extensions: &http::Extensions,
    ) -> impl Future<Output = Result<Session, Error>> + Send + 'static {
        let session = extensions.get::<RequestSession>().map(|s| s.0.clone());
        async move {
            let session = session.ok_or(Error::MissingLayer)?;
            if let Err(error) = session.fetch().await {
                tracing::error!(%error, cause = ?std::error::Error::source(&error), "loading the session failed");
                return Err(error);
            }
            session.mark_extracted();
            Ok(session)
        }
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::FromRequestParts<S> for Session {
    /// [`Error::MissingLayer`] (500) without a [`SessionLayer`](crate::SessionLayer), or the
    /// store's error (503 or 500) when the record could not be read.
    type Rejection = Error;

    fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> impl Future<Output = Result<Self, Self::Rejection>> + Send {
        Session::from_extensions(&parts.extensions)
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum_core::extract::OptionalFromRequestParts<S> for Session {
    /// The store's error; a missing layer is `None`.
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match Session::from_extensions(&parts.extensions).await {
            Ok(session) => Ok(Some(session)),
            Err(Error::MissingLayer) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
