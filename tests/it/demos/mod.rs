//! The demos a person runs first (`examples/counter.rs`, `examples/login.rs`), driven over
//! real HTTP as a browser would: their routers are the examples' own (`app()`), served on a
//! loopback port; the `PORT` handling runs the built example binaries.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, COOKIE, USER_AGENT};

use crate::common::{set_cookies, spawn};

// Each demo carries its own `support` module, as a reader copying one would want.
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../../../examples/counter.rs"]
mod counter;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../examples/login.rs"]
mod login;

mod browser;
mod port;
mod sessions_page;

/// A browser: keeps the cookies it is sent, follows no redirect by itself.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
    user_agent: String,
}

/// What a page answered: status, headers and body.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn cache_control(&self) -> Vec<String> {
        self.headers
            .get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().expect("ASCII Cache-Control").to_owned())
            .collect()
    }

    /// Whether `Cache-Control` forbids storing the page (RFC 9111 `no-store`).
    pub fn is_no_store(&self) -> bool {
        self.cache_control()
            .iter()
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
    }

    /// A page of its own: `<html lang=…>`, a `<title>` and UTF-8.
    pub fn assert_is_a_page(&self, title: &str) {
        let content_type = self.headers.get(CONTENT_TYPE).expect("Content-Type");
        assert!(
            content_type.to_str().unwrap().starts_with("text/html"),
            "{content_type:?}"
        );
        assert!(self.body.starts_with("<!doctype html>"), "{}", self.body);
        assert!(self.body.contains("<html lang=en>"), "{}", self.body);
        assert!(
            self.body
                .contains(&format!("<title>{title} · sessionbase</title>")),
            "no title {title:?} in {}",
            self.body
        );
    }
}

impl Browser {
    pub fn new(base: &str, user_agent: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            cookies: HashMap::new(),
            user_agent: user_agent.to_owned(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request
            .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
            .header(USER_AGENT, &self.user_agent);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request = request.header(COOKIE, jar.join("; "));
        }
        let response = request.send().await.expect("request");
        for cookie in set_cookies(&response) {
            if cookie.is_removal() {
                self.cookies.remove(&cookie.name);
            } else {
                self.cookies
                    .insert(cookie.name.clone(), cookie.value.clone());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body.join("&"));
        self.send(request).await
    }

    /// Signs in on the login demo as a person does: the form, then the POST.
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Page {
        self.get("/login").await;
        self.post("/login", &[("username", username), ("password", password)])
            .await
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn counter_app() -> String {
    spawn(counter::app().expect("the counter demo's configuration")).await
}

pub async fn login_app() -> String {
    spawn(login::app().expect("the login demo's configuration")).await
}

#[tokio::test]
async fn counter_counts_in_text_for_curl_and_in_a_page_for_a_browser() {
    let base = counter_app().await;
    let mut curl = Browser::new(&base, "curl/8");
    let text = curl
        .send(curl.client.get(format!("{base}/")).header(ACCEPT, "*/*"))
        .await;
    assert_eq!(text.body, "0 earlier visits\n");
    let text = curl
        .send(curl.client.get(format!("{base}/")).header(ACCEPT, "*/*"))
        .await;
    assert_eq!(text.body, "1 earlier visits\n");

    let mut browser = Browser::new(&base, "Mozilla/5.0");
    let page = browser.get("/").await;
    page.assert_is_a_page("Visit counter");
    assert!(page.body.contains("here 0 times before"), "{}", page.body);
    assert!(page.is_no_store(), "{:?}", page.cache_control());
    let page = browser.get("/").await;
    assert!(page.body.contains("here 1 time before"), "{}", page.body);
    let forgotten = browser.post("/forget", &[]).await;
    assert_eq!(forgotten.status, StatusCode::SEE_OTHER);
    assert!(
        browser.cookie("sessionid").is_none(),
        "flush deletes the cookie"
    );
    let page = browser.get("/").await;
    assert!(page.body.contains("here 0 times before"), "{}", page.body);
}

#[tokio::test]
async fn login_form_has_labels_a_title_and_shows_its_error_with_the_form() {
    let base = login_app().await;
    let mut browser = Browser::new(&base, "Mozilla/5.0 (one)");
    let form = browser.get("/login").await;
    form.assert_is_a_page("Sign in");
    for field in ["username", "password"] {
        assert!(
            form.body.contains(&format!("<label for={field}>")),
            "{}",
            form.body
        );
        assert!(
            form.body.contains(&format!("id={field} name={field}")),
            "{}",
            form.body
        );
    }

    let wrong = browser
        .post("/login", &[("username", "alice<b>"), ("password", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    wrong.assert_is_a_page("Sign in");
    assert!(wrong.body.contains("role=alert"), "{}", wrong.body);
    assert!(wrong.body.contains("do not match"), "{}", wrong.body);
    // The form comes back with the name typed, escaped, and without the password.
    assert!(
        wrong.body.contains("value=\"alice&lt;b&gt;\""),
        "{}",
        wrong.body
    );
    assert!(!wrong.body.contains("nope"), "{}", wrong.body);

    let signed_in = browser.sign_in("alice", "wonderland").await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.body
    );
    let home = browser.get("/").await;
    home.assert_is_a_page("Signed in");
    assert!(
        home.body.contains("Signed in as <strong>alice</strong>"),
        "{}",
        home.body
    );
    assert!(home.is_no_store(), "a signed-in page must not be cached");

    // Signed out, the page is no longer the signed-in one, and no cached copy may be kept.
    let out = browser.post("/logout", &[]).await;
    assert!(out.is_no_store(), "{:?}", out.cache_control());
    assert!(browser.cookie("sessionid").is_none());
    let home = browser.get("/").await;
    home.assert_is_a_page("Not signed in");
}

#[tokio::test]
async fn login_without_cookies_says_so_with_the_form() {
    let base = login_app().await;
    // A browser that drops cookies: a fresh one for the POST.
    let mut browser = Browser::new(&base, "Mozilla/5.0");
    let page = browser
        .post(
            "/login",
            &[("username", "alice"), ("password", "wonderland")],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    page.assert_is_a_page("Sign in");
    assert!(page.body.contains("enable cookies"), "{}", page.body);
    assert!(page.body.contains("value=\"alice\""), "{}", page.body);
}
