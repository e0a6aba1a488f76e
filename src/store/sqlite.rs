//! `SqliteStore`: work in progress.

/// Sessions in SQLite through sqlx (Django's `db`).
#[derive(Clone, Debug)]
pub struct SqliteStore;
