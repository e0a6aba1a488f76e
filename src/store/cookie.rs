//! `CookieStore`: work in progress.

/// Sessions kept whole in a signed cookie (Django's `signed_cookies`).
#[derive(Clone, Debug)]
pub struct CookieStore;
