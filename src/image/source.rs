//! Reading blobs from where an image comes from (an OCI layout directory, or the files
//! inside a `docker save` archive) and copying them, verified, into the store.

use std::io::Read;

use rayon::prelude::*;
use tracing::debug;

use super::progress;
use super::store::MAX_DOCUMENT_SIZE;
use super::{Digest, ImageError, Store};

/// A tree of files an image can be read from.
pub(crate) trait BlobSource: Sync {
    /// How messages name this source, e.g. `oci:/images/busybox`.
    fn origin(&self) -> String;

    /// Opens the file at `path` (relative to the source's root); `None` if there is none.
    fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send + '_>>, ImageError>;
}

/// The path of a blob inside an OCI layout.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// Reads a small file whole; `None` if it does not exist.
pub(crate) fn read_small(
    source: &dyn BlobSource,
    path: &str,
) -> Result<Option<Vec<u8>>, ImageError> {
    let Some(reader) = source.open(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::io(format!("{} in {}", path, source.origin()), e))?;
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        let reason = format!("it is larger than {MAX_DOCUMENT_SIZE} bytes");
        return Err(ImageError::malformed(
            source.origin(),
            "image document",
            reason,
        ));
    }
    Ok(Some(bytes))
}

/// Reads a small blob (manifest, index or config) and checks its digest; `None` if the
/// source has no such blob.
pub(crate) fn read_blob(
    source: &dyn BlobSource,
    digest: &Digest,
) -> Result<Option<Vec<u8>>, ImageError> {
    let path = blob_path(digest);
    let Some(bytes) = read_small(source, &path)? else {
        return Ok(None);
    };
    let actual = Digest::of_bytes(&bytes);
    if actual != *digest {
        return Err(mismatch(source, &path, digest, actual));
    }
    Ok(Some(bytes))
}

/// Like [`read_blob`], but a missing blob is an error.
pub(crate) fn require_blob(
    source: &dyn BlobSource,
    digest: &Digest,
) -> Result<Vec<u8>, ImageError> {
    read_blob(source, digest)?.ok_or_else(|| missing(source, digest))
}

/// Copies the blobs `digests` into the store, several at a time, checking each digest.
pub(crate) fn copy_blobs(
    store: &Store,
    source: &dyn BlobSource,
    digests: &[(Digest, u64)],
) -> Result<(), ImageError> {
    let bars = progress::Bars::new(store.progress());
    digests.par_iter().try_for_each(|(digest, size)| {
        if store.has_blob(digest) {
            debug!(%digest, "blob already in the store");
            return Ok(());
        }
        let bar = bars.bytes(*size, &format!("copying {}", short(digest)));
        copy_blob_at(store, source, &blob_path(digest), digest, &bar)
    })
}

/// Copies the file at `path` into the store as the blob `digest`, checking its content.
pub(crate) fn copy_blob_at(
    store: &Store,
    source: &dyn BlobSource,
    path: &str,
    digest: &Digest,
    bar: &indicatif::ProgressBar,
) -> Result<(), ImageError> {
    let reader = source.open(path)?.ok_or_else(|| missing(source, digest))?;
    store.write_blob(bar.wrap_read(reader), Some(digest), |actual| {
        mismatch(source, path, digest, actual)
    })?;
    bar.finish_and_clear();
    Ok(())
}

pub(crate) fn mismatch(
    source: &dyn BlobSource,
    path: &str,
    expected: &Digest,
    actual: Digest,
) -> ImageError {
    ImageError::ContentMismatch {
        what: format!("`{path}`"),
        origin: source.origin(),
        expected: expected.clone(),
        actual,
    }
}

fn missing(source: &dyn BlobSource, digest: &Digest) -> ImageError {
    ImageError::NotFound {
        origin: source.origin(),
        what: format!("blob {digest}"),
        hint: None,
    }
}

/// The first 12 hex digits, for progress messages.
pub(crate) fn short(digest: &Digest) -> &str {
    &digest.hex()[..12]
}
