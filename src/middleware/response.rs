//! `process_response`: after the handler, delete the cookie, or save and set it, and add
//! `Vary: Cookie`, as Django's `SessionMiddleware` does (and, with `cache_control_no_store`,
//! `Cache-Control: no-store` wherever `Vary: Cookie` goes).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Response, StatusCode};
use pin_project_lite::pin_project;
use time::OffsetDateTime;

use super::LayerState;
use super::on_error::OnError;
use super::{cache_control, clear_site_data, set_cookie};
use crate::store::{BoxFuture, run_now};
use crate::{Error, Session, SessionKey};

pin_project! {
    /// The response future of [`SessionService`](super::SessionService): the inner
    /// service's future, then, only when the session must be saved by a store behind I/O,
    /// the save.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

/// What the request's end needs besides the response.
struct Pending<E> {
    session: Session,
    layer: Arc<LayerState>,
    cookie_present: bool,
    on_error: E,
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Handler {
            #[pin]
            future: F,
            pending: Option<Pending<E>>,
        },
        Saving {
            future: BoxFuture<'static, Response<B>>,
        },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(super) fn new(
        future: F,
        session: Session,
        layer: Arc<LayerState>,
        cookie_present: bool,
        on_error: E,
    ) -> Self {
        Self {
            state: State::Handler {
                future,
                pending: Some(Pending {
                    session,
                    layer,
                    cookie_present,
                    on_error,
                }),
            },
        }
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
                StateProj::Handler { future, pending } => {
                    let response = ready!(future.poll(cx))?;
                    let Some(pending) = pending.take() else {
                        return Poll::Ready(Ok(response));
                    };
                    match process_response(pending, response) {
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
fn process_response<B, E>(pending: Pending<E>, mut response: Response<B>) -> Processed<B>
where
    B: Send + 'static,
    E: OnError<B>,
{
    // Django reads these before any save.
    let flags = pending.session.flags();
    let layer = &pending.layer;
    if pending.cookie_present && flags.empty {
        if let Some(removal) = &layer.cookie.removal {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, removal.clone());
        }
        mark_session_dependent(layer, response.headers_mut());
        if layer.config().cache_control_no_store {
            // A logout: the browser's back/forward cache must let go of the pages too.
            clear_site_data::add_cache(response.headers_mut());
        }
        pending.session.recycle();
        return Processed::Done(response);
    }
    let wants_save = (flags.modified || layer.config().save_every_request) && !flags.empty;
    // Django skips the save for every 5xx, not only 500.
    if wants_save && response.status() < StatusCode::INTERNAL_SERVER_ERROR {
        let now = OffsetDateTime::now_utc();
        // A store that answers at once saves right here, without boxing a future; only a
        // save that lost a race and pauses before retrying needs the boxed path.
        if pending.session.store_is_immediate()
            && let Some(saved) = run_now(save(&pending.session, now))
        {
            let response = finish_save(&pending, response, saved, now);
            pending.session.recycle();
            return Processed::Done(response);
        }
        return Processed::Save(Box::pin(save_and_set_cookie(pending, response)));
    }
    if flags.accessed {
        mark_session_dependent(layer, response.headers_mut());
    }
    pending.session.recycle();
    Processed::Done(response)
}

/// Django's middleware around `save()`: the cookie's `Max-Age` (`None` for a browser-length
/// session, else `get_expiry_age()`, read before the save and loading the data as Django
/// does), then the save: of the expiry alone when the request changed nothing and only
/// `save_every_request` asks for it (`session/touch.rs`). Returns the key the cookie carries
/// and the age. `now` is the request's one clock reading, for the cookie's age, its `expires`
/// and the record's expiry.
async fn save(session: &Session, now: OffsetDateTime) -> Result<(SessionKey, Option<i64>), Error> {
    // save_every_request on a session no handler took: its record is read now.
    session.fetch().await?;
    let max_age = if session.get_expire_at_browser_close() {
        None
    } else {
        Some(session.expiry_age_at(now))
    };
    let key = session.save_or_touch_at(now).await?;
    Ok((key, max_age))
}

async fn save_and_set_cookie<B, E: OnError<B>>(
    pending: Pending<E>,
    response: Response<B>,
) -> Response<B> {
    let now = OffsetDateTime::now_utc();
    let saved = save(&pending.session, now).await;
    let response = finish_save(&pending, response, saved, now);
    pending.session.recycle();
    response
}

/// The response once the save is done: its cookie, or the error's response.
fn finish_save<B, E: OnError<B>>(
    pending: &Pending<E>,
    mut response: Response<B>,
    saved: Result<(SessionKey, Option<i64>), Error>,
    now: OffsetDateTime,
) -> Response<B> {
    let (key, max_age) = match saved {
        Ok(saved) => saved,
        Err(error) => {
            // A session deleted meanwhile was logged as the `Interrupted` event.
            if !matches!(error, Error::SessionInterrupted) {
                tracing::error!(error = %error, cause = ?std::error::Error::source(&error), "saving the session failed");
            }
            let mut response = pending.on_error.on_error(&error);
            // The error page of a session in use must not be kept either.
            if pending.layer.config().cache_control_no_store {
                cache_control::add_no_store(response.headers_mut());
            }
            return response;
        }
    };
    match set_cookie::set_cookie(&pending.layer.cookie, key.as_str(), max_age, now) {
        Some(value) => {
            response
                .headers_mut()
                .append(http::header::SET_COOKIE, value);
        }
        None => tracing::error!("session cookie value is not a valid header value"),
    }
    mark_session_dependent(&pending.layer, response.headers_mut());
    response
}

/// Marks a response that used the session (read it, or set or deleted its cookie):
/// `Vary: Cookie`, as Django, and `Cache-Control: no-store` with `cache_control_no_store`.
fn mark_session_dependent(layer: &LayerState, headers: &mut http::HeaderMap) {
    set_cookie::add_vary_cookie(headers);
    if layer.config().cache_control_no_store {
        cache_control::add_no_store(headers);
    }
}
