//! The login demo's "Your sessions" page: every browser a user signed in with, "log out
//! other devices", signing one out by its handle, and no session key in the page.

use reqwest::StatusCode;

use super::{Browser, Page, login_app};

/// The handles of the "Sign it out" buttons of a sessions page.
fn handles(page: &Page) -> Vec<String> {
    page.body
        .split("name=handle value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
        .collect()
}

async fn signed_in(base: &str, user: &str, password: &str, agent: &str) -> Browser {
    let mut browser = Browser::new(base, agent);
    let page = browser.sign_in(user, password).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    browser
}

async fn is_signed_in(browser: &mut Browser) -> bool {
    let home = browser.get("/").await;
    home.body.contains("Signed in as")
}

#[tokio::test]
async fn the_page_lists_each_browser_and_logs_out_the_others() {
    let base = login_app().await;
    let mut laptop = signed_in(&base, "alice", "wonderland", "Laptop Firefox").await;
    let mut phone = signed_in(&base, "alice", "wonderland", "Phone Safari").await;
    let mut tablet = signed_in(&base, "alice", "wonderland", "Tablet Chrome").await;
    let mut bob = signed_in(&base, "bob", "builder", "Bob's Edge").await;

    let page = laptop.get("/sessions").await;
    page.assert_is_a_page("Your sessions");
    assert!(page.is_no_store());
    for agent in ["Laptop Firefox", "Phone Safari", "Tablet Chrome"] {
        assert!(
            page.body.contains(agent),
            "{agent} missing from {}",
            page.body
        );
    }
    assert!(
        !page.body.contains("Bob"),
        "another user's session listed: {}",
        page.body
    );
    assert_eq!(
        page.body.matches("this browser").count(),
        1,
        "{}",
        page.body
    );
    assert_eq!(handles(&page).len(), 2, "a button for each other session");
    // The page names sessions by handle, never by key.
    for browser in [&laptop, &phone, &tablet, &bob] {
        let key = browser.cookie("sessionid").expect("signed in");
        assert!(!page.body.contains(key), "a session key in the page");
    }

    // Signing one out by its handle: the phone (the row after the laptop's is not ordered,
    // so take the handle next to "Phone Safari").
    let phone_row = page.body.split("Phone Safari").nth(1).unwrap();
    let phone_handle = phone_row
        .split("name=handle value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the phone's button");
    let done = laptop
        .post("/sessions/revoke", &[("handle", phone_handle)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(
        !is_signed_in(&mut phone).await,
        "the phone is signed out at once"
    );
    assert!(is_signed_in(&mut tablet).await);
    let page = laptop.get("/sessions").await;
    assert!(
        page.body.contains("Signed that session out."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Phone Safari"), "{}", page.body);

    // Bob's handle on alice's page revokes nothing of bob's.
    let bobs = bob.get("/sessions").await;
    assert_eq!(
        handles(&bobs).len(),
        0,
        "bob has one session: {}",
        bobs.body
    );
    let mut bob_second = signed_in(&base, "bob", "builder", "Bob's phone").await;
    let bobs = bob.get("/sessions").await;
    let bob_handle = handles(&bobs).pop().expect("bob's other session");
    laptop
        .post("/sessions/revoke", &[("handle", bob_handle.as_str())])
        .await;
    let page = laptop.get("/sessions").await;
    assert!(
        page.body.contains("That session had already ended."),
        "{}",
        page.body
    );
    assert!(
        is_signed_in(&mut bob_second).await,
        "alice revoked bob's session"
    );

    // "Log out other devices" from the tablet: the laptop goes, the tablet and bob stay.
    let done = tablet.post("/sessions/others", &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let page = tablet.get("/sessions").await;
    assert!(
        page.body.contains("Signed out 1 other session."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("You are signed in nowhere else."),
        "{}",
        page.body
    );
    assert!(
        !is_signed_in(&mut laptop).await,
        "the laptop is signed out at once"
    );
    assert!(is_signed_in(&mut tablet).await);
    assert!(is_signed_in(&mut bob).await);
}

#[tokio::test]
async fn the_page_needs_a_signed_in_user_and_a_real_handle() {
    let base = login_app().await;
    let mut stranger = Browser::new(&base, "curl");
    let page = stranger.get("/sessions").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/login")
    );
    let mut alice = signed_in(&base, "alice", "wonderland", "Laptop").await;
    let page = alice
        .post("/sessions/revoke", &[("handle", "sessionid")])
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(is_signed_in(&mut alice).await);
}
