//! The content-addressed store on disk.
//!
//! ```text
//! $SEAL_HOME/
//!   blobs/sha256/<hex>        manifests, indexes, configs and layers, named by digest
//!   rootfs/<manifest hex>/    one flattened root file system per image manifest
//!   index/names.json          names given by `seal image import` (and later pulls)
//!   index/by-config/<hex>     image ID (config digest) -> manifest digest
//!   locks/                    flock files: one per root file system being built
//!   tmp/                      temporary files and trees, renamed into place when complete
//! ```
//!
//! Every blob is written to a temporary file in `tmp/`, checked against its digest, synced
//! and renamed into place, so a blob path only ever holds complete content. Blobs are
//! checked again whenever they are read: a file changed on disk is reported, never used.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use tracing::debug;

use super::digest::{HashingReader, HashingWriter};
use super::{Digest, ImageError};

/// Small documents (manifests, indexes, configs) are read whole; nothing bigger is one.
pub(crate) const MAX_DOCUMENT_SIZE: u64 = 8 << 20;

/// The content-addressed image store.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    progress: bool,
}

/// A blob just written to the store.
#[derive(Clone, Debug)]
pub(crate) struct Written {
    pub digest: Digest,
    pub size: u64,
}

impl Store {
    /// Opens (creating if needed) the store at `home`, else at [`default_home`].
    pub fn open(home: Option<&Path>) -> Result<Store, ImageError> {
        let root = match home {
            Some(path) => path.to_path_buf(),
            None => default_home(),
        };
        for dir in ["blobs/sha256", "rootfs", "index/by-config", "locks", "tmp"] {
            fs_err::create_dir_all(root.join(dir))?;
        }
        // Later steps open the root file systems with pathrs, which wants a path free of
        // symlinks, so resolve the store's location once here.
        let root = fs_err::canonicalize(&root)?;
        Ok(Store {
            root,
            progress: false,
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Shows progress bars on stderr while importing and unpacking, when it is a terminal.
    pub fn with_progress(mut self, show: bool) -> Store {
        self.progress = show;
        self
    }

    pub(crate) fn progress(&self) -> bool {
        self.progress
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob `digest` is in the store (its content is checked when read).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn rootfs_path(&self, manifest: &Digest) -> PathBuf {
        self.root.join("rootfs").join(manifest.hex())
    }

    /// Writes `reader` into the store. With `expected`, content with another digest is
    /// discarded and `on_mismatch(actual)` returned instead.
    pub(crate) fn write_blob(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
        on_mismatch: impl FnOnce(Digest) -> ImageError,
    ) -> Result<Written, ImageError> {
        let tmp_dir = self.tmp_dir();
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&tmp_dir)
            .map_err(|e| ImageError::io(&tmp_dir, e))?;
        let temp_path = temp.path().to_path_buf();
        let mut writer = HashingWriter::new(io::BufWriter::new(temp));
        let mut reader = reader;
        io::copy(&mut reader, &mut writer).map_err(|e| ImageError::io(&temp_path, e))?;
        let (digest, size, buffered) = writer.finish();
        if let Some(expected) = expected.filter(|e| **e != digest) {
            debug!(%expected, actual = %digest, "discarding blob with the wrong digest");
            return Err(on_mismatch(digest));
        }
        let temp = buffered
            .into_inner()
            .map_err(|e| ImageError::io(&temp_path, e.into_error()))?;
        self.persist(temp, &digest)?;
        Ok(Written { digest, size })
    }

    /// Writes a small in-memory blob (a manifest or config seal made) and returns its digest.
    pub(crate) fn write_blob_bytes(&self, bytes: &[u8]) -> Result<Digest, ImageError> {
        let written = self.write_blob(bytes, None, |_| unreachable!("no expected digest"))?;
        Ok(written.digest)
    }

    /// Moves a complete temporary file to its blob path, durably.
    pub(crate) fn persist(
        &self,
        temp: tempfile::NamedTempFile,
        digest: &Digest,
    ) -> Result<(), ImageError> {
        let temp_path = temp.path().to_path_buf();
        let file = temp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(0o444))
            .and_then(|()| file.sync_all())
            .map_err(|e| ImageError::io(&temp_path, e))?;
        let target = self.blob_path(digest);
        temp.persist(&target)
            .map_err(|e| ImageError::io(&target, e.error))?;
        sync_dir(target.parent().expect("blob paths have a parent"))?;
        debug!(%digest, "stored blob");
        Ok(())
    }

    /// Reads a small blob whole, checking its digest.
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(MAX_DOCUMENT_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ImageError::io(&path, e))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(ImageError::CorruptBlob {
                digest: digest.clone(),
                path,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Checks that the blob on disk still hashes to its name.
    pub(crate) fn verify_blob(&self, digest: &Digest) -> Result<u64, ImageError> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let reader = HashingReader::new(io::BufReader::with_capacity(1 << 20, file));
        let (actual, size) = reader.finish().map_err(|e| ImageError::io(&path, e))?;
        if actual != *digest {
            return Err(ImageError::CorruptBlob {
                digest: digest.clone(),
                path,
                actual,
            });
        }
        Ok(size)
    }

    /// Opens a blob for reading; callers check its content (see [`Store::verify_blob`]).
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<std::fs::File, ImageError> {
        let path = self.blob_path(digest);
        match std::fs::File::open(&path) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ImageError::MissingBlob {
                digest: digest.clone(),
                path,
            }),
            Err(e) => Err(ImageError::io(path, e)),
        }
    }

    /// Takes the exclusive lock `name`, waiting for another process that holds it.
    /// The lock is released when the returned file is dropped.
    pub(crate) fn lock(&self, name: &str) -> Result<Flock<std::fs::File>, ImageError> {
        let path = self.root.join("locks").join(format!("{name}.lock"));
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        let file = match Flock::lock(file.into_file(), FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((file, Errno::EWOULDBLOCK)) => file,
            Err((_, errno)) => return Err(ImageError::io(&path, errno.into())),
        };
        debug!(lock = %path.display(), "waiting for another seal process");
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| ImageError::io(&path, errno.into()))
    }

    /// Records that `name` (as given to `seal image import`) is the image `digest`.
    pub fn record_name(&self, name: &str, digest: &Digest) -> Result<(), ImageError> {
        let _lock = self.lock("names")?;
        let mut names = self.names()?;
        names.insert(name.to_string(), digest.clone());
        let json = serde_json::to_vec_pretty(&names).expect("a map of strings serialises");
        self.replace_file(&self.names_path(), &json)
    }

    /// Every recorded name and its manifest digest, sorted by name.
    pub fn names(&self) -> Result<BTreeMap<String, Digest>, ImageError> {
        let path = self.names_path();
        match fs_err::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| ImageError::malformed(path.display(), "name index", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn names_path(&self) -> PathBuf {
        self.root.join("index/names.json")
    }

    /// Records that the image whose config is `config` has the manifest `manifest`, so a
    /// `docker-archive:` reference pinned by image ID resolves from the store.
    pub(crate) fn record_config(
        &self,
        config: &Digest,
        manifest: &Digest,
    ) -> Result<(), ImageError> {
        let path = self.root.join("index/by-config").join(config.hex());
        self.replace_file(&path, manifest.as_str().as_bytes())
    }

    /// The manifest recorded for the image ID `config`, if any.
    pub(crate) fn manifest_for_config(
        &self,
        config: &Digest,
    ) -> Result<Option<Digest>, ImageError> {
        let path = self.root.join("index/by-config").join(config.hex());
        match fs_err::read_to_string(&path) {
            Ok(text) => Digest::parse(text.trim()).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Atomically replaces a small file of the store's own bookkeeping.
    fn replace_file(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let tmp_dir = self.tmp_dir();
        let mut temp =
            tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| ImageError::io(&tmp_dir, e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| ImageError::io(temp.path(), e))?;
        temp.persist(path)
            .map_err(|e| ImageError::io(path, e.error))?;
        Ok(())
    }
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// `$SEAL_HOME`, else the user's data directory plus `seal`.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("SEAL_HOME") {
        return PathBuf::from(home);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("seal")
}
