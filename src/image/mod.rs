//! Images: references, the content-addressed store, local image sources and
//! the flattened root file systems that steps run in.
//!
//! The rest of seal uses three things from here: [`ImageRef::parse`] to read a
//! reference written in a pipeline, [`Store::open`] to find the store, and
//! [`Store::prepare`] to turn a pinned reference into a verified, unpacked
//! [`PreparedImage`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A content digest, always written `sha256:<64 lower-case hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:<64 hex>`.
    pub fn parse(text: &str) -> Result<Digest, ImageError> {
        let hex = text
            .strip_prefix("sha256:")
            .ok_or_else(|| ImageError::BadDigest(text.to_string()))?;
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(ImageError::BadDigest(text.to_string()));
        }
        Ok(Digest(text.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes))))
    }

    /// The 64 hex characters, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = ImageError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Digest::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> String {
        value.0
    }
}

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
}

/// Errors from reading, verifying, storing or unpacking images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("`{0}` is not a valid digest: expected sha256:<64 lower-case hex digits>")]
    BadDigest(String),
    #[error("failed to access `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The content-addressed image store.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `SEAL_HOME`, or the default location.
    pub fn open(home: Option<&Path>) -> Result<Store, ImageError> {
        let root = match home {
            Some(path) => path.to_path_buf(),
            None => default_home(),
        };
        Ok(Store { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// `$SEAL_HOME`, else the user's data directory plus `seal`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("SEAL_HOME") {
        return PathBuf::from(home);
    }
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("seal")
}
