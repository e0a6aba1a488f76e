//! Login and logout the Django way on the in-memory store: a test cookie on the login form,
//! `cycle_key` on login (against session fixation), `flush` on logout, `set_expiry` for
//! "remember me", a page of the user's other sessions with "log out other devices", and
//! `Cache-Control: no-store` so that no signed-in page comes back from the browser's cache
//! after a logout.
//!
//! ```text
//! cargo run --example login                   # PORT=3001 to use another port
//! # then open http://127.0.0.1:3000/ in a browser (user "alice", password "wonderland");
//! # sign in from a second browser (or a private window) too, and open "Your sessions".
//! ```

use std::process::ExitCode;

use axum::{
    Form, Router,
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use serde::Deserialize;
use sessionbase::{Expiry, MemoryStore, Session, SessionConfig, SessionLayer};
use time::Duration;

pub(crate) mod support;
use support::{escape, page};

/// Where Django's `login()` keeps the user: the key the user index reads too.
const USER_KEY: &str = "_auth_user_id";
/// A note for the sessions page, stored at sign-in.
const DEVICE_KEY: &str = "device";

async fn home(session: Session) -> Result<Html<String>, sessionbase::Error> {
    Ok(Html(match session.get::<String>(USER_KEY)? {
        Some(user) => page(
            "Signed in",
            &format!(
                "<p>Signed in as <strong>{}</strong>; this session expires in {} s.</p>\
                 <p><a href=/sessions>Your sessions</a></p>\
                 <form method=post action=/logout><button>Sign out</button></form>",
                escape(&user),
                session.get_expiry_age()
            ),
        ),
        None => page(
            "Not signed in",
            "<p>You are not signed in.</p><p><a href=/login>Sign in</a></p>",
        ),
    }))
}

/// The sign-in form, with `error` above it and the user name kept.
fn login_page(error: Option<&str>, username: &str) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=error role=alert id=error>{}</p>", escape(e)))
        .unwrap_or_default();
    Html(page(
        "Sign in",
        &format!(
            "{error}<form method=post action=/login>\
             <label for=username>User name</label>\
             <input id=username name=username autocomplete=username required value=\"{}\">\
             <label for=password>Password</label>\
             <input id=password name=password type=password autocomplete=current-password required>\
             <label><input type=checkbox name=remember value=1> Remember me for 30 days</label>\
             <button>Sign in</button></form>\
             <p>Try user <code>alice</code>, password <code>wonderland</code>.</p>",
            escape(username)
        ),
    ))
}

async fn login_form(session: Session) -> Html<String> {
    // Django's idiom: check on the POST that the browser keeps cookies.
    session.set_test_cookie();
    login_page(None, "")
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    remember: Option<String>,
}

async fn login(
    session: Session,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Result<Response, sessionbase::Error> {
    if !session.test_cookie_worked() {
        // Set it again: the next POST can tell whether cookies work now.
        session.set_test_cookie();
        let error = "Your browser did not send the session cookie back: enable cookies for \
                     this site and sign in again.";
        return Ok((
            StatusCode::BAD_REQUEST,
            login_page(Some(error), &form.username),
        )
            .into_response());
    }
    if form.username != "alice" || form.password != "wonderland" {
        let error = "That user name and password do not match.";
        return Ok((
            StatusCode::UNAUTHORIZED,
            login_page(Some(error), &form.username),
        )
            .into_response());
    }
    session.delete_test_cookie();
    // A new key for the signed-in session: a key planted before login is worthless after it.
    session.cycle_key().await?;
    session.insert(USER_KEY, &form.username)?;
    let device = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("an unknown browser");
    session.insert(DEVICE_KEY, device)?;
    session.set_expiry(Some(if form.remember.is_some() {
        Expiry::Inactivity(Duration::days(30))
    } else {
        Expiry::BrowserClose
    }));
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session) -> Result<Redirect, sessionbase::Error> {
    // Deletes the record on the server and the cookie in the browser.
    session.flush().await?;
    Ok(Redirect::to("/"))
}

/// The demo's routes behind the session layer.
pub fn app() -> Result<Router, sessionbase::Error> {
    // After a logout, Back shows no signed-in page from the browser's cache.
    let config = SessionConfig::default().with_cache_control_no_store(true);
    let layer = SessionLayer::new(MemoryStore::new()).with_config(config)?;
    Ok(Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .layer(layer))
}

#[tokio::main]
async fn main() -> ExitCode {
    support::init_tracing();
    match app() {
        Ok(app) => support::serve("login", app).await,
        Err(e) => {
            eprintln!("login: {e}");
            ExitCode::FAILURE
        }
    }
}
