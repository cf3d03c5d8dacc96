//! Where objects come from: local files and folders ([`local`]), and the
//! SQS notification bodies that announce S3 objects ([`notification`]),
//! and S3 itself ([`s3`]).
//! A source yields object identities, and a reader per object.

pub mod local;
pub mod notification;
pub mod s3;
#[cfg(feature = "full")]
pub mod s3_layout;
#[cfg(feature = "full")]
pub mod sqs;

use std::path::PathBuf;

/// Why a source could not produce an object. Every variant names it.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
}

impl SourceError {
    pub fn class(&self) -> &'static str {
        match self {
            SourceError::Io { .. } => "io",
            SourceError::NotFound { .. } => "not_found",
        }
    }

    pub fn object(&self) -> String {
        match self {
            SourceError::Io { path, .. } | SourceError::NotFound { path } => path.display().to_string(),
        }
    }
}
