//! Login and logout the Django way on the in-memory store: a test cookie on the login form,
//! `cycle_key` on login (against session fixation), `flush` on logout and `set_expiry` for
//! "remember me".
//!
//! ```text
//! cargo run --example login
//! # then open http://127.0.0.1:3000/ in a browser (user "alice", password "wonderland")
//! ```

use axum::{
    Form, Router,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Deserialize;
use sessionbase::{Expiry, MemoryStore, Session, SessionConfig, SessionLayer};
use time::Duration;

const USER_KEY: &str = "_auth_user_id";

async fn home(session: Session) -> Result<Html<String>, sessionbase::Error> {
    Ok(Html(match session.get::<String>(USER_KEY)? {
        Some(user) => format!(
            "<p>Signed in as {user}; this session expires in {} s.</p>\
             <form method=post action=/logout><button>Sign out</button></form>",
            session.get_expiry_age()
        ),
        None => "<p>Not signed in. <a href=/login>Sign in</a></p>".to_owned(),
    }))
}

async fn login_form(session: Session) -> Html<&'static str> {
    // Django's idiom: check on the POST that the browser keeps cookies.
    session.set_test_cookie();
    Html(
        "<form method=post>\
           <input name=username placeholder=alice> \
           <input name=password type=password placeholder=wonderland> \
           <label><input type=checkbox name=remember value=1> Remember me</label> \
           <button>Sign in</button></form>",
    )
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
    remember: Option<String>,
}

async fn login(
    session: Session,
    Form(form): Form<Credentials>,
) -> Result<Response, sessionbase::Error> {
    if !session.test_cookie_worked() {
        return Ok(
            Html("<p>Please enable cookies and <a href=/login>try again</a>.</p>").into_response(),
        );
    }
    session.delete_test_cookie();
    if form.username != "alice" || form.password != "wonderland" {
        return Ok(
            Html("<p>Wrong user or password. <a href=/login>Try again</a>.</p>").into_response(),
        );
    }
    // A new key for the signed-in session: a key planted before login is worthless after it.
    session.cycle_key().await?;
    session.insert(USER_KEY, &form.username)?;
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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .layer(
            SessionLayer::new(MemoryStore::new())
                // After a logout, Back shows no signed-in page from the browser's cache.
                .with_config(SessionConfig::default().with_cache_control_no_store(true))
                .map_err(std::io::Error::other)?,
        );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("login demo on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
