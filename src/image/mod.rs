//! Images: references, the content-addressed store, local image sources and
//! the flattened root file systems that steps run in.
//!
//! The rest of seal uses three things from here: [`ImageRef::parse`] to read a
//! reference written in a pipeline, [`Store::open`] to find the store, and
//! [`Store::prepare`] to turn a pinned reference into a verified, unpacked
//! [`PreparedImage`].
//!
//! Inside: `reference` parses references, `store` keeps blobs and names, `layout` and
//! `archive` read OCI layouts and `docker save` archives, `manifest` understands image
//! documents, `unpack` applies layers safely, `rootfs` builds the flattened trees, and
//! `import` turns a directory into an image.

mod archive;
mod digest;
mod error;
pub mod import;
mod layout;
mod manifest;
mod prepare;
mod progress;
mod reference;
mod resolve;
mod rootfs;
mod source;
mod store;
mod unpack;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use digest::Digest;
pub use error::ImageError;
pub use reference::DEFAULT_REGISTRY;
pub use store::{Store, default_home};

/// Where an image comes from, as written in a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageSource {
    /// `[registry/]repo[:tag]`: a registry image, or a name given by `seal image import`.
    Registry { name: String, tag: Option<String> },
    /// `oci:<dir>[:tag]`: an OCI image layout directory.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// `docker-archive:<file>`: the output of `docker save`.
    DockerArchive { file: PathBuf },
}

/// A parsed image reference: a source plus, when pinned, its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRef {
    pub source: ImageSource,
    /// The pinned digest (`@sha256:...`), if the reference has one.
    pub digest: Option<Digest>,
}

/// The parts of an image's config that decide how a step process starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `User` as written in the config (`""`, `name`, `uid`, `uid:gid`, ...).
    pub user: String,
    /// `WorkingDir`; empty when the image sets none.
    pub working_dir: String,
}

/// A verified image whose root file system is unpacked and ready to mount.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreparedImage {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<Digest>,
    pub config: ImageConfig,
    /// The flattened root file system; shared, never written by a step.
    pub rootfs: PathBuf,
    /// The home directory of the image's user (from the image's `/etc/passwd`; `/root` for
    /// root), which exists in `rootfs` as a mount point. `None` when the user has none.
    #[serde(default)]
    pub home: Option<String>,
}
