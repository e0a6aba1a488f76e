//! The login demo in a real browser (Chromium through ChromeDriver's WebDriver API): two tabs
//! signed in, a sign-out in one, Back in the other must not bring the signed-in page back
//! from the browser's caches (`Cache-Control: no-store`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); without them
//! the test says so and passes, unless `SESSIONBASE_REQUIRE_ALL_SUITES` is set.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{free_port, skip};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// One WebDriver session on a ChromeDriver of its own, ended (and the driver killed) on drop.
struct Driver {
    http: reqwest::Client,
    url: String,
    process: tokio::process::Child,
    _profile: Profile,
}

/// A throw-away Chromium profile directory.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Driver {
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            skip(
                "the browser test of the login demo",
                "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
            );
            return None;
        }
        let port = free_port();
        let process = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = Profile(
            std::env::temp_dir().join(format!("sessionbase-chromium-{}", crate::common::random())),
        );
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         format!("--user-data-dir={}", profile.0.display())],
            },
        }}});
        let created = post(&http, &format!("{base}/session"), &capabilities).await;
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Some(Self {
            http,
            url: format!("{base}/session/{id}"),
            process,
            _profile: profile,
        })
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        post(&self.http, &format!("{}{path}", self.url), &body).await
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("WebDriver call");
        let value: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        value["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.call("/url", json!({ "url": url })).await;
    }

    async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call("/element", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.element(css).await;
        self.call(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let element = self.element(css).await;
        self.call(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Waits (up to 5 s) for the page title to become `title`, and returns the last one seen.
    async fn wait_for_title(&self, title: &str) -> String {
        let mut seen = String::new();
        for _ in 0..50 {
            seen = self.title().await;
            if seen == title {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    async fn new_tab(&self) -> String {
        let tab = self.call("/window/new", json!({"type": "tab"})).await;
        tab["handle"].as_str().expect("a new tab").to_owned()
    }

    async fn current_tab(&self) -> String {
        self.get("/window")
            .await
            .as_str()
            .expect("a tab")
            .to_owned()
    }

    async fn switch_to(&self, tab: &str) {
        self.call("/window", json!({ "handle": tab })).await;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.start_kill();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("WebDriver call");
    let text = response.text().await.expect("WebDriver answer");
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    if value["value"]["error"].is_string() {
        panic!("WebDriver error on {url}: {value}");
    }
    value["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_after_a_sign_out_in_another_tab_shows_the_signed_out_page() {
    let Some(browser) = Driver::start().await else {
        return;
    };
    let base = super::login_app().await;

    // Tab one signs in, then moves on to another page.
    let first = browser.current_tab().await;
    browser.open(&format!("{base}/login")).await;
    assert_eq!(
        browser.wait_for_title("Sign in · sessionbase").await,
        "Sign in · sessionbase"
    );
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", "wonderland").await;
    browser.click("form button").await;
    assert_eq!(
        browser.wait_for_title("Signed in · sessionbase").await,
        "Signed in · sessionbase"
    );
    browser.open(&format!("{base}/sessions")).await;
    assert_eq!(
        browser.wait_for_title("Your sessions · sessionbase").await,
        "Your sessions · sessionbase"
    );

    // Tab two, same browser and cookie, signs out.
    let second = browser.new_tab().await;
    browser.switch_to(&second).await;
    browser.open(&format!("{base}/")).await;
    assert_eq!(
        browser.wait_for_title("Signed in · sessionbase").await,
        "Signed in · sessionbase"
    );
    browser.click("form[action='/logout'] button").await;
    assert_eq!(
        browser.wait_for_title("Not signed in · sessionbase").await,
        "Not signed in · sessionbase"
    );

    // Back in tab one: the signed-in page must be fetched again, not shown from a cache.
    browser.switch_to(&first).await;
    browser.call("/back", json!({})).await;
    assert_eq!(
        browser.wait_for_title("Not signed in · sessionbase").await,
        "Not signed in · sessionbase",
        "Back showed a signed-in page kept from before the sign-out"
    );
}
