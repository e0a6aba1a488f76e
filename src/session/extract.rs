//! Taking the request's [`Session`]: the axum extractor, and [`Session::from_extensions`]
//! for any other Tower service.
//!
//! The layer puts the request's session in its extensions before the inner service runs;
//! the record is read only when a handler takes it (or, for a store that answers at once, on
//! first use).

use std::future::Future;

use http::Extensions;

use super::Session;
use crate::Error;

impl Session {
    /// The request's session with its record read from the store: the extractor, for Tower
    /// services that are not axum handlers. `extensions` are the request's (or its `Parts`');
    /// the session stays usable wherever the request goes, a spawned task included. Fails
    /// with [`Error::MissingLayer`] when no [`SessionLayer`](crate::SessionLayer) put a
    /// session there, or with the store's error.
    ///
    /// `extensions.get::<Session>()` finds the same handle without reading the record: with
    /// a store that answers at once (memory, signed cookie) it loads on first use; with any
    /// other, take it through this function (or the extractor) before using its data.
    ///
    /// ```
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
        extensions: &Extensions,
    ) -> impl Future<Output = Result<Session, Error>> + Send + use<> {
        // Cloned now, so the future borrows nothing from the request.
        let session = extensions.get::<Session>().cloned();
        async move {
            let session = session.ok_or(Error::MissingLayer)?;
            if let Err(error) = session.fetch().await {
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
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Session::from_extensions(&parts.extensions)
            .await
            .inspect_err(|e| {
                if matches!(e, Error::MissingLayer) {
                    tracing::error!(
                        "the Session extractor needs a SessionLayer around the handler"
                    );
                }
            })
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
