//! Building the flattened root file system of an image, once per manifest digest.
//!
//! A build takes the flock `locks/rootfs-<hex>.lock`, so concurrent seal processes sharing
//! a store never build the same tree twice; it unpacks into a fresh directory under `tmp/`
//! and renames it to `rootfs/<hex>` only when complete, so a tree at that path is always
//! whole. A failed build leaves nothing behind.

use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use pathrs::Root;
use pathrs::flags::OpenFlags;
use rayon::prelude::*;
use tracing::debug;

use super::manifest::{Compression, Image, Layer};
use super::progress::Bars;
use super::source::short;
use super::unpack::{Unpacker, clean_path};
use super::{Digest, ImageConfig, ImageError, Store};
use crate::image::digest::HashingReader;

/// Directories the runtime mounts over, created empty when the image lacks them.
const MOUNT_POINTS: &[&str] = &["/proc", "/dev", "/sys", "/tmp", "/work"];
/// Decompressed data travels from the decoding thread in chunks of this size.
const CHUNK: usize = 256 << 10;
/// How many chunks may wait between the decoding thread and the unpacker.
const CHUNKS_IN_FLIGHT: usize = 16;
/// `/etc/passwd` files bigger than this are not read.
const MAX_PASSWD: u64 = 4 << 20;

impl Store {
    /// The root file system of `image`, building it if it is not in the store yet.
    pub(crate) fn ensure_rootfs(&self, image: &Image) -> Result<PathBuf, ImageError> {
        let target = self.rootfs_path(&image.manifest_digest);
        if target.is_dir() {
            debug!(rootfs = %target.display(), "root file system already unpacked");
            return Ok(target);
        }
        let hex = image.manifest_digest.hex();
        let _lock = self.lock(&format!("rootfs-{hex}"))?;
        if target.is_dir() {
            debug!(rootfs = %target.display(), "another seal process unpacked it meanwhile");
            return Ok(target);
        }
        self.remove_stale_builds(hex)?;
        self.verify_layers(image)?;
        let build = BuildDir::create(&self.tmp_dir(), &format!("rootfs-{hex}-"))?;
        self.build_tree(build.path(), image)?;
        // TODO: the tree's files are not fsynced before the rename (a syncfs per image is
        // costly on shared file systems), so a power loss right after can leave a renamed
        // but incomplete tree; `seal image` has no command to drop a tree yet either.
        fs_err::rename(build.path(), &target)?;
        build.disarm();
        super::store::sync_dir(target.parent().expect("rootfs paths have a parent"))?;
        debug!(rootfs = %target.display(), "unpacked root file system");
        Ok(target)
    }

    /// Removes half-built trees of this image left by a process that died. Only called
    /// with the image's lock held, so no live process is building them.
    fn remove_stale_builds(&self, hex: &str) -> Result<(), ImageError> {
        let prefix = format!("rootfs-{hex}-");
        for entry in fs_err::read_dir(self.tmp_dir())? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                debug!(path = %entry.path().display(), "removing a stale build");
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Checks every layer blob against its digest, several at a time, before any is used.
    fn verify_layers(&self, image: &Image) -> Result<(), ImageError> {
        image.layers.par_iter().try_for_each(|layer| {
            let size = self.verify_blob(&layer.digest)?;
            if size != layer.size {
                let reason = format!(
                    "layer {} is {size} bytes, but the manifest says {}",
                    layer.digest, layer.size
                );
                return Err(ImageError::malformed(
                    &image.manifest_digest,
                    "image manifest",
                    reason,
                ));
            }
            Ok(())
        })
    }

    fn build_tree(&self, dir: &Path, image: &Image) -> Result<(), ImageError> {
        let mut unpacker = Unpacker::new(dir)?;
        let bars = Bars::new(self.progress());
        for layer in &image.layers {
            let bar = bars.bytes(layer.size, &format!("unpacking {}", short(&layer.digest)));
            self.apply_layer(&mut unpacker, layer, &bar)?;
            bar.finish_and_clear();
        }
        create_mount_points(unpacker.root(), &image.config);
        unpacker.finish()
    }

    /// Applies one layer. A second thread decompresses (and hashes the result for the
    /// config's diff ID) while this one writes files.
    fn apply_layer(
        &self,
        unpacker: &mut Unpacker,
        layer: &Layer,
        bar: &indicatif::ProgressBar,
    ) -> Result<(), ImageError> {
        let file = self.open_blob(&layer.digest)?;
        let compression = detect_compression(&file, layer);
        let label = layer.digest.to_string();
        let (sender, receiver) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let (applied, decoded) = std::thread::scope(|scope| {
            let decoder = scope.spawn(|| decode(bar.wrap_read(file), compression, sender));
            let mut reader = ChannelReader {
                receiver,
                chunk: Vec::new(),
                pos: 0,
            };
            let mut applied = unpacker.apply_layer(&mut reader, &label);
            if applied.is_ok() {
                // Read what follows the end-of-archive marker so the diff ID covers it all.
                if let Err(source) = io::copy(&mut reader, &mut io::sink()) {
                    applied = Err(ImageError::Layer {
                        layer: label.clone(),
                        source,
                    });
                }
            }
            drop(reader);
            (
                applied,
                decoder.join().expect("the decoding thread does not panic"),
            )
        });
        applied?;
        let actual = decoded.map_err(|source| ImageError::Layer {
            layer: label,
            source,
        })?;
        if actual != layer.diff_id {
            return Err(ImageError::DiffIdMismatch {
                layer: layer.digest.clone(),
                expected: layer.diff_id.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// The compression of a layer: its magic bytes decide; the media type is only a claim.
fn detect_compression(file: &std::fs::File, layer: &Layer) -> Compression {
    let mut head = [0u8; 4];
    let got = file.read_at(&mut head, 0).unwrap_or(0);
    let by_magic = Compression::sniff(&head[..got]);
    match Compression::from_media_type(&layer.media_type) {
        Some(claimed) if claimed != by_magic => {
            debug!(layer = %layer.digest, ?claimed, actual = ?by_magic,
                "the media type does not match the content; going by the content");
        }
        None => debug!(layer = %layer.digest, media_type = %layer.media_type, ?by_magic,
            "unknown layer media type; going by the content"),
        Some(_) => {}
    }
    by_magic
}

/// Decompresses `input` into chunks for the unpacker and returns the digest of the
/// uncompressed stream. Stops early, with an error, if the unpacker stopped reading.
fn decode(
    input: impl Read,
    compression: Compression,
    sender: mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> io::Result<Digest> {
    let input = io::BufReader::with_capacity(CHUNK, input);
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(input)?),
    };
    let mut hashing = HashingReader::new(decoder);
    loop {
        let mut chunk = vec![0u8; CHUNK];
        let n = match read_full(&mut hashing, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                let message = e.to_string();
                let _ = sender.send(Err(e));
                return Err(io::Error::other(message));
            }
        };
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        if sender.send(Ok(chunk)).is_err() {
            return Err(io::Error::other("the unpacker stopped reading"));
        }
    }
    Ok(hashing.finish()?.0)
}

/// Fills `buf` unless the stream ends first; returns how much was read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the chunks the decoding thread sends, as one stream.
struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.chunk.len() {
            match self.receiver.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The sender is gone: the stream ended.
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Creates the directories the runtime mounts over, the image's working directory and its
/// user's home. Paths that exist (as anything) are left alone; failures are only logged,
/// since the runtime reports a missing mount point more precisely.
fn create_mount_points(root: &Root, config: &ImageConfig) {
    let mut wanted: Vec<String> = MOUNT_POINTS.iter().map(|p| p.to_string()).collect();
    if !config.working_dir.is_empty() {
        wanted.push(config.working_dir.clone());
    }
    if let Some(home) = user_home(root, &config.user) {
        wanted.push(home);
    }
    let perm = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    for path in wanted {
        let Ok(Some(relative)) = clean_path(path.trim_start_matches('/').as_bytes()) else {
            debug!(path, "not creating a mount point outside the root");
            continue;
        };
        if let Err(e) = root.mkdir_all(&relative, &perm) {
            debug!(path, error = %e, "could not create the mount point");
        }
    }
}

/// The home directory of the image's user (`User` in the config: name or uid, optionally
/// with `:group`), from the image's `/etc/passwd`; `/root` for root even without one.
pub(crate) fn user_home(root: &Root, user: &str) -> Option<String> {
    let name = user.split(':').next().unwrap_or("");
    let name = if name.is_empty() { "root" } else { name };
    let from_passwd = read_passwd(root).and_then(|passwd| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let matches = fields.len() >= 6 && (fields[0] == name || fields[2] == name);
            matches.then(|| fields[5].to_string())
        })
    });
    let is_root = name == "root" || name == "0";
    from_passwd
        .filter(|home| home.starts_with('/'))
        .or_else(|| is_root.then(|| "/root".into()))
}

/// The image's `/etc/passwd`, resolved inside the tree (it may be a symlink).
fn read_passwd(root: &Root) -> Option<String> {
    let file = root.open_subpath("etc/passwd", OpenFlags::O_RDONLY).ok()?;
    let mut text = String::new();
    file.take(MAX_PASSWD).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The home directory of `user` in an unpacked root file system at `rootfs`.
pub(crate) fn home_in(rootfs: &Path, user: &str) -> Option<String> {
    user_home(&Root::open(rootfs).ok()?, user)
}

/// A directory under construction, removed on drop unless disarmed.
struct BuildDir {
    path: PathBuf,
    armed: bool,
}

impl BuildDir {
    fn create(parent: &Path, prefix: &str) -> Result<BuildDir, ImageError> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(|e| ImageError::io(parent, e))?;
        Ok(BuildDir {
            path: dir.keep(),
            armed: true,
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Err(e) = remove_tree(&self.path) {
            let path = self.path.display();
            tracing::warn!(path = %path, error = %e, "could not remove a failed build");
        }
    }
}

/// Removes a tree, first making its directories writable (an image may have read-only
/// ones, which would stop an unprivileged user from emptying them).
pub(crate) fn remove_tree(path: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o700));
        }
    }
    match fs_err::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
