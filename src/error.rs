//! The crate's one error type.

use http::StatusCode;

/// A boxed error from a store's backend (a driver, the file system, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong with a session.
///
/// Store failures carry the backend's error as their [`source`](std::error::Error::source).
/// [`Error::status`] gives the HTTP status the layer answers with; with the `axum` feature,
/// `Error` is also an `IntoResponse` whose body is generic (the cause is logged, never sent).
///
/// ```
/// use sessionbase::Error;
/// use http::StatusCode;
///
/// assert_eq!(Error::SessionInterrupted.status(), StatusCode::BAD_REQUEST);
/// let down = Error::unavailable(std::io::Error::other("connection refused"));
/// assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The session was deleted (by a logout in a concurrent request, say) while this request
    /// was using it. Django's `SessionInterrupted`; the layer answers 400.
    #[error(
        "The request's session was deleted before the request completed. \
         The user may have logged out in a concurrent request, for example."
    )]
    SessionInterrupted,

    /// The store could not be reached, or did not answer in time; the layer answers 503.
    #[error("session store unavailable: {0}")]
    StoreUnavailable(#[source] BoxError),

    /// The store did not answer within `SessionConfig::store_timeout`; the layer answers 503.
    #[error("session store did not answer within {0:?}")]
    StoreTimeout(std::time::Duration),

    /// The store failed in any other way; the layer answers 500.
    #[error("session store error: {0}")]
    Store(#[source] BoxError),

    /// A value could not be turned into JSON, or the JSON stored under `key` is not the
    /// type asked for.
    #[error("session value {key:?} could not be (de)serialized: {source}")]
    Serde {
        /// The session key (dictionary key) of the value.
        key: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },

    /// Concurrent requests kept changing the session faster than this request could save
    /// its own changes on top of theirs.
    #[error("session save gave up after {0} conflicting concurrent updates")]
    Conflict(u32),

    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(#[source] BoxError),

    /// The session does not fit in a cookie browsers keep (4096 bytes for name and value):
    /// a cookie that large would be dropped silently, losing the session.
    #[error("session cookie of {size} bytes exceeds the {limit}-byte browser limit")]
    CookieTooLarge {
        /// The size of `name=value`.
        size: usize,
        /// The limit.
        limit: usize,
    },

    /// The session's data is larger than `SessionConfig::max_session_size`; it was not
    /// saved (the stored record, if any, is unchanged). The layer answers 500.
    #[error("session data exceeds max_session_size ({limit} bytes of JSON)")]
    SessionTooLarge {
        /// The configured limit.
        limit: usize,
    },

    /// The `Session` extractor ran on a request that did not pass through a `SessionLayer`.
    #[error("no SessionLayer wraps this handler: add `.layer(SessionLayer::new(store))`")]
    MissingLayer,

    /// The configuration cannot work (a browser would drop the cookie, say).
    #[error("invalid session configuration: {0}")]
    Config(String),

    /// The store cannot do this by its nature: the signed-cookie store cannot list or revoke
    /// a user's sessions, which live in the browsers. The layer answers 500.
    #[error("this session store cannot {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// A store failure that is not about reachability (a bad query, a full disk, ...).
    pub fn store(cause: impl Into<BoxError>) -> Self {
        Self::Store(cause.into())
    }

    /// The store could not be reached or timed out.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::StoreUnavailable(cause.into())
    }

    /// The same error again, for each of several requests that one failure ends (a group
    /// of saves written together): the kind and the message are kept, a source becomes its
    /// message.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::SessionInterrupted => Self::SessionInterrupted,
            Self::StoreUnavailable(cause) => Self::unavailable(cause.to_string()),
            Self::StoreTimeout(limit) => Self::StoreTimeout(*limit),
            Self::Conflict(attempts) => Self::Conflict(*attempts),
            Self::SessionTooLarge { limit } => Self::SessionTooLarge { limit: *limit },
            Self::CookieTooLarge { size, limit } => Self::CookieTooLarge {
                size: *size,
                limit: *limit,
            },
            Self::MissingLayer => Self::MissingLayer,
            Self::Config(message) => Self::Config(message.clone()),
            Self::Unsupported(what) => Self::Unsupported(what),
            Self::Store(cause) => Self::store(cause.to_string()),
            other => Self::store(other.to_string()),
        }
    }

    /// The HTTP status the layer answers with when this error ends a request.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SessionInterrupted => StatusCode::BAD_REQUEST,
            Self::StoreUnavailable(_) | Self::StoreTimeout(_) | Self::Conflict(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Error {
    /// The status from [`Error::status`] and its canonical reason as the body; the cause is
    /// not sent to the client.
    fn into_response(self) -> axum_core::response::Response {
        let status = self.status();
        let body = status.canonical_reason().unwrap_or("Error");
        (status, body).into_response()
    }
}
