//! Persistence: the SQLite alert store and ledger ([`sqlite`]), and the
//! Parquet aggregates fed from it ([`aggregates`]).
//!
//! The data directory is private to its owner: created 0700, files 0600.

pub mod aggregates;
pub mod sqlite;
pub mod staging;

pub use aggregates::Aggregates;
pub use sqlite::{AlertFilter, CommitSummary, FailureRecord, LedgerEntry, Store, StoredAlert};

use std::path::{Path, PathBuf};

/// Why the store failed. Every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: SQLite error: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path}: schema version {found} is newer than this trailwatch understands ({supported}); upgrade trailwatch"
    )]
    SchemaTooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("{path}: Parquet error: {reason}")]
    Parquet { path: PathBuf, reason: String },
    #[error("{path}: staged activity row {id}: {reason}")]
    Staging { path: PathBuf, id: i64, reason: String },
    #[error("{path}: no trailwatch store here (run `trailwatch scan` first, or pass --data-dir)")]
    Missing { path: PathBuf },
}

/// Creates `dir` (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            // mkdir's own word for a data directory that is a file is
            // "File exists", which reads as if all were well.
            source: if dir.exists() && !dir.is_dir() {
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "exists and is not a directory")
            } else {
                source
            },
        })
}

/// Logs a warning (path and mode) for every entry of the data directory
/// that group or others can access, once per process: alerts hold log
/// content (principals, addresses, raw events) that is as sensitive as the
/// logs themselves. Called whenever a store is opened.
pub fn warn_if_loose(dir: &Path) {
    static CHECKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if CHECKED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    for (path, mode) in loose_permissions(dir) {
        let expected = if path.is_dir() { "0700" } else { "0600" };
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:04o}"),
            expected,
            "data directory entry is accessible to group or others; trailwatch creates directories 0700 and files 0600 (chmod go-rwx)"
        );
    }
}

/// Paths under `dir` (the directory itself included) whose permissions let
/// anyone but the owner in: group/other bits on the directory, or on files.
pub fn loose_permissions(dir: &Path) -> Vec<(PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .max_depth(4)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if let Ok(md) = entry.metadata() {
            let mode = md.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                out.push((entry.into_path(), mode));
            }
        }
    }
    out
}
