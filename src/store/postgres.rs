//! `PostgresStore`: work in progress.

/// Sessions in PostgreSQL through sqlx (Django's `db`).
#[derive(Clone, Debug)]
pub struct PostgresStore;
