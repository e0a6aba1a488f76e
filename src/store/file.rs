//! `FileStore`: work in progress.

/// Sessions in files, one per session (Django's `file`).
#[derive(Clone, Debug)]
pub struct FileStore;
