//! The one error type of the image module.

use std::path::PathBuf;

use super::Digest;

/// The forms of image reference seal understands, for error hints.
const REFERENCE_FORMS: &str = "write [registry/]repo[:tag][@sha256:<64 hex>], \
    oci:<dir>[:tag][@sha256:<64 hex>] or docker-archive:<file>[@sha256:<64 hex>]";

/// Errors from reading, verifying, storing or unpacking images.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error("`{0}` is not a valid digest: expected sha256:<64 lower-case hex digits>")]
    BadDigest(String),

    #[error("`{text}` is not a valid image reference: {reason}")]
    #[diagnostic(help("{}", REFERENCE_FORMS))]
    BadReference { text: String, reason: String },

    #[error("image `{0}` is not pinned by a digest")]
    #[diagnostic(help(
        "append @sha256:<digest> to the reference; `seal image import` and `seal image ls` \
         print digests of local images"
    ))]
    Unpinned(String),

    /// The source holds a different image than the reference pins.
    #[error("{origin} resolves to {actual}, but the reference pins {expected}")]
    #[diagnostic(help("check the digest after `@`, or update it if the image changed on purpose"))]
    PinMismatch {
        origin: String,
        expected: Digest,
        actual: Digest,
    },

    /// Content read from a source does not hash to the digest that names it.
    #[error("{what} in {origin} has digest {actual}, but it should have {expected}")]
    ContentMismatch {
        what: String,
        origin: String,
        expected: Digest,
        actual: Digest,
    },

    #[error("{origin} has no {what}")]
    NotFound {
        origin: String,
        what: String,
        #[help]
        hint: Option<String>,
    },

    #[error("image {reference} is not in the store")]
    #[diagnostic(help(
        "pulling from registries is not available yet: import the image with \
         `seal image import`, or use an oci: or docker-archive: reference"
    ))]
    NotInStore { reference: String },

    #[error("blob {digest} in the store is corrupted: `{path}` has digest {actual}")]
    #[diagnostic(help("delete `{}` and prepare the image again from its source", path.display()))]
    CorruptBlob {
        digest: Digest,
        path: PathBuf,
        actual: Digest,
    },

    #[error("blob {digest} is missing from the store (`{path}`)")]
    #[diagnostic(help("prepare the image again from its source"))]
    MissingBlob { digest: Digest, path: PathBuf },

    #[error("{origin} is not a valid {what}: {reason}")]
    Malformed {
        origin: String,
        what: &'static str,
        reason: String,
    },

    #[error("{origin} has no image for {wanted}; it has {available}")]
    NoPlatform {
        origin: String,
        wanted: String,
        available: String,
    },

    /// A layer entry that would leave the root file system; the whole image is refused.
    #[error("layer {layer} tries to escape the root file system with entry `{entry}`: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },

    #[error("failed to apply entry `{entry}` of layer {layer}: {what}")]
    Entry {
        layer: String,
        entry: String,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("failed to read layer {layer}")]
    Layer {
        layer: String,
        #[source]
        source: std::io::Error,
    },

    #[error("layer {layer} unpacks to {actual}, but the image config lists {expected}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },

    /// A command-line argument that makes no sense.
    #[error("{0}")]
    BadArgument(String),

    #[error("failed to access `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An error from `fs_err`, whose message already names the path.
    #[error(transparent)]
    Fs(#[from] std::io::Error),
}

impl ImageError {
    /// Wraps an I/O error that happened on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> ImageError {
        ImageError::Io {
            path: path.into(),
            source,
        }
    }

    /// An invalid reference, with the reason it is invalid.
    pub(crate) fn bad_reference(text: &str, reason: impl Into<String>) -> ImageError {
        ImageError::BadReference {
            text: text.to_string(),
            reason: reason.into(),
        }
    }

    /// A document (`what`) from `origin` that could not be understood.
    pub(crate) fn malformed(
        origin: impl std::fmt::Display,
        what: &'static str,
        reason: impl std::fmt::Display,
    ) -> ImageError {
        ImageError::Malformed {
            origin: origin.to_string(),
            what,
            reason: reason.to_string(),
        }
    }
}
