//! What the layer answers when a request ends in an error (a failed save, a session deleted
//! concurrently).

use http::Response;

use crate::Error;

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
