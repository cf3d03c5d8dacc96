//! Local files and folders.
//!
//! Named files are always read, whatever their extension (gzip is detected
//! from the content). Inside folders, only files that look like CloudTrail
//! output are taken (`.json`, `.json.gz`, `.gz`, `.ndjson`, `.jsonl` and
//! their gzipped forms), so that a README or a script beside the logs is not
//! reported as a bad log. Files under a `CloudTrail-Digest` folder, or named
//! like a digest, are digest files: listed as such, never read.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::SourceError;

/// One local file to process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: Option<i64>,
    /// A CloudTrail digest file (by its path); skipped without reading.
    pub digest: bool,
}

/// Whether a path names a CloudTrail digest file.
pub fn is_digest_path(p: &str) -> bool {
    p.contains("CloudTrail-Digest")
}

fn looks_like_log(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    [
        ".json",
        ".json.gz",
        ".gz",
        ".ndjson",
        ".jsonl",
        ".ndjson.gz",
        ".jsonl.gz",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

fn file_of(path: PathBuf, md: &std::fs::Metadata) -> LocalFile {
    let mtime_ns = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64);
    let digest = is_digest_path(&path.to_string_lossy());
    LocalFile {
        size: md.len(),
        mtime_ns,
        digest,
        path,
    }
}

/// Walks `paths` (files and folders, recursively, in sorted order) and
/// yields every file to process, or the error that kept one out.
pub fn walk(paths: &[PathBuf]) -> impl Iterator<Item = Result<LocalFile, SourceError>> + '_ {
    paths
        .iter()
        .flat_map(|root| -> Box<dyn Iterator<Item = Result<LocalFile, SourceError>>> {
            match std::fs::metadata(root) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Box::new(std::iter::once(Err(SourceError::NotFound { path: root.clone() })))
                }
                Err(source) => Box::new(std::iter::once(Err(SourceError::Io {
                    path: root.clone(),
                    source,
                }))),
                Ok(md) if md.is_file() => Box::new(std::iter::once(Ok(file_of(root.clone(), &md)))),
                Ok(_) => Box::new(
                    walkdir::WalkDir::new(root)
                        .follow_links(true)
                        .sort_by_file_name()
                        .into_iter()
                        .filter_map(move |entry| match entry {
                            Err(e) => {
                                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| root.clone());
                                Some(Err(SourceError::Io {
                                    path,
                                    source: e
                                        .into_io_error()
                                        .unwrap_or_else(|| std::io::Error::other("filesystem loop")),
                                }))
                            }
                            Ok(ent) if ent.file_type().is_file() && looks_like_log(ent.path()) => {
                                match ent.metadata() {
                                    Ok(md) => Some(Ok(file_of(ent.into_path(), &md))),
                                    Err(e) => Some(Err(SourceError::Io {
                                        path: ent.path().to_path_buf(),
                                        source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("metadata")),
                                    })),
                                }
                            }
                            Ok(_) => None,
                        }),
                ),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_takes_logs_in_folders_and_any_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/CloudTrail-Digest")).unwrap();
        std::fs::write(d.join("a/x.json.gz"), b"x").unwrap();
        std::fs::write(d.join("a/notes.md"), b"x").unwrap();
        std::fs::write(d.join("a/CloudTrail-Digest/d.json.gz"), b"x").unwrap();
        std::fs::write(d.join("odd.name"), b"x").unwrap();
        let got: Vec<_> = walk(&[d.join("a"), d.join("odd.name"), d.join("missing")]).collect();
        assert_eq!(got.len(), 4);
        let ok: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(ok.len(), 3);
        assert!(ok[0].digest && ok[0].path.ends_with("a/CloudTrail-Digest/d.json.gz"));
        assert!(!ok[1].digest && ok[1].path.ends_with("a/x.json.gz"));
        assert!(ok[2].path.ends_with("odd.name"));
        assert!(matches!(got[3], Err(SourceError::NotFound { .. })));
    }
}
