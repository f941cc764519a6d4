//! The lock file: image tags resolved to digests, kept next to the pipeline.
//!
//! `pipeline.yaml` is locked by `pipeline.lock`. An entry applies only while
//! the pipeline still writes the same reference, so editing an image line
//! makes its lock entry stale instead of silently pinning the old image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::diag::Problem;
use crate::image::ImageRef;

/// The lock file's current format version.
pub const LOCK_VERSION: u32 = 1;

/// A parsed lock file.
#[derive(Clone, Debug)]
pub struct Lock {
    pub path: PathBuf,
    pub content: LockContent,
}

/// What a lock file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockContent {
    #[serde(rename = "seal-lock")]
    pub version: u32,
    pub images: BTreeMap<String, LockedImage>,
}

/// One image: the reference as the pipeline writes it, and the pinned one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedImage {
    pub reference: String,
    pub pinned: String,
}

/// The lock file path for a pipeline file: same directory and stem, `.lock`.
pub fn lock_path_for(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("lock")
}

impl Lock {
    /// Reads the lock next to `pipeline`, if there is one.
    pub fn read_next_to(pipeline: &Path) -> Result<Option<Lock>, Box<Problem>> {
        let path = lock_path_for(pipeline);
        let text = match fs_err::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(Box::new(Problem::general(format!(
                    "failed to read {error}"
                ))));
            }
        };
        let content: LockContent = serde_json::from_str(&text)
            .map_err(|error| {
                Problem::general(format!(
                    "lock file `{}` is not valid: line {} column {}: {error}",
                    path.display(),
                    error.line(),
                    error.column()
                ))
                .with_help("delete it and run `seal lock` again")
            })
            .map_err(Box::new)?;
        if content.version != LOCK_VERSION {
            let message = format!(
                "lock file `{}` has format version {}, this seal reads version {LOCK_VERSION}",
                path.display(),
                content.version
            );
            return Err(Box::new(
                Problem::general(message).with_help("run `seal lock` again"),
            ));
        }
        Ok(Some(Lock { path, content }))
    }

    /// The pinned reference for image `name`, if the lock entry is current.
    pub fn pinned(&self, name: &str, written: &str) -> Option<ImageRef> {
        let entry = self.content.images.get(name)?;
        if entry.reference != written {
            return None;
        }
        ImageRef::parse(&entry.pinned)
            .ok()
            .filter(|r| r.digest.is_some())
    }

    /// Writes `content` as the lock for `pipeline`, atomically.
    pub fn write(pipeline: &Path, content: &LockContent) -> std::io::Result<PathBuf> {
        let path = lock_path_for(pipeline);
        let mut text = serde_json::to_string_pretty(content).map_err(std::io::Error::other)?;
        text.push('\n');
        crate::provenance::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }
}
