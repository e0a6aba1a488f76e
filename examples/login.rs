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
use sessionbase::store::SessionHandle;
use sessionbase::{Expiry, MemoryStore, Session, SessionConfig, SessionLayer};
use time::{Duration, OffsetDateTime, macros::format_description};

pub(crate) mod support;
use support::{escape, page};

/// Where Django's `login()` keeps the user: the key the user index reads too.
const USER_KEY: &str = "_auth_user_id";
/// Notes for the sessions page, stored at sign-in: the browser, and when.
const DEVICE_KEY: &str = "device";
const SIGNED_IN_KEY: &str = "signed_in_at";
/// A one-time message for the next page (as Django's messages framework keeps them).
const FLASH_KEY: &str = "flash";

/// The demo's users and their passwords.
const USERS: [(&str, &str); 2] = [("alice", "wonderland"), ("bob", "builder")];

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
    if !USERS.contains(&(form.username.as_str(), form.password.as_str())) {
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
    session.insert(SIGNED_IN_KEY, OffsetDateTime::now_utc().unix_timestamp())?;
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

/// A UTC date and time for people.
fn when(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_else(|_| at.to_string())
}

/// The user's sessions: this one, the others with a button each, "log out other devices".
async fn sessions(session: Session) -> Result<Response, sessionbase::Error> {
    if session.get::<String>(USER_KEY)?.is_none() {
        return Ok(Redirect::to("/login").into_response());
    }
    let flash = session
        .pop::<String>(FLASH_KEY)?
        .map(|m| format!("<p role=status>{}</p>", escape(&m)))
        .unwrap_or_default();
    let mut rows = String::new();
    let mut others = 0;
    for listed in session.user_sessions().await? {
        let device = listed.data.get(DEVICE_KEY).and_then(|v| v.as_str());
        let signed_in = listed
            .data
            .get(SIGNED_IN_KEY)
            .and_then(|v| v.as_i64())
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
        let action = if listed.is_current {
            "<strong>this browser</strong>".to_owned()
        } else {
            others += 1;
            format!(
                "<form method=post action=/sessions/revoke>\
                 <input type=hidden name=handle value=\"{}\">\
                 <button>Sign it out</button></form>",
                listed.handle
            )
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(device.unwrap_or("unknown browser")),
            signed_in.map(when).unwrap_or_else(|| "unknown".into()),
            listed
                .expiry_date
                .map(when)
                .unwrap_or_else(|| "when the browser closes".into()),
        ));
    }
    let log_out_others = if others > 0 {
        "<form method=post action=/sessions/others><button>Log out other devices</button></form>"
    } else {
        "<p>You are signed in nowhere else.</p>"
    };
    Ok(Html(page(
        "Your sessions",
        &format!(
            "{flash}<table><thead><tr><th scope=col>Browser</th><th scope=col>Signed in</th>\
             <th scope=col>Expires</th><th scope=col></th></tr></thead><tbody>{rows}</tbody></table>\
             {log_out_others}<p><a href=/>Home</a></p>"
        ),
    ))
    .into_response())
}

/// "Log out other devices": every session of this user but this one.
async fn log_out_others(session: Session) -> Result<Redirect, sessionbase::Error> {
    let revoked = session.revoke_other_sessions().await?;
    let plural = if revoked == 1 { "" } else { "s" };
    session.insert(
        FLASH_KEY,
        format!("Signed out {revoked} other session{plural}."),
    )?;
    Ok(Redirect::to("/sessions"))
}

#[derive(Deserialize)]
struct Revocation {
    handle: String,
}

/// Signs out one session of this user, named by the handle the sessions page showed.
async fn revoke(
    session: Session,
    Form(form): Form<Revocation>,
) -> Result<Response, sessionbase::Error> {
    let Ok(handle) = form.handle.parse::<SessionHandle>() else {
        return Ok((StatusCode::BAD_REQUEST, "not a session handle").into_response());
    };
    // Only ever one of this user's own sessions: another user's handle revokes nothing.
    let message = if session.revoke_user_session(&handle).await? {
        "Signed that session out."
    } else {
        "That session had already ended."
    };
    session.insert(FLASH_KEY, message)?;
    Ok(Redirect::to("/sessions").into_response())
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
        .route("/sessions", get(sessions))
        .route("/sessions/others", post(log_out_others))
        .route("/sessions/revoke", post(revoke))
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
