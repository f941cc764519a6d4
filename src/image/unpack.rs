//! Applying layer tars, in order, onto one root file system, without ever writing outside it.
//!
//! The `tar` crate only parses; every file system operation goes through a
//! [`pathrs::Root`], which resolves paths the way the kernel's `RESOLVE_IN_ROOT` does: a
//! symlink met on the way is followed *inside* the tree, with `/` and `..` clamped to its
//! root. So the merged-usr layout (`lib -> usr/lib`, then `lib/x`) works, and a symlink
//! pointing outside can only ever lead to a path inside. On top of that, entries are
//! refused outright (failing the whole image) when their own name is absolute or climbs out
//! with `..`, when a hard link names a target outside, or when a write would go through a
//! symlink whose target does not exist inside the tree.
//!
//! Ownership is ignored (everything belongs to the invoking user, as rootless needs),
//! setuid and setgid bits are dropped, other permission bits and modification times are
//! kept. Device nodes are skipped. Directories stay writable while layers are applied and
//! get their final modes and times in [`Unpacker::finish`].

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::fs::{FileTimes, Permissions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use pathrs::error::ErrorKind;
use pathrs::flags::OpenFlags;
use pathrs::{InodeType, Root};
use tracing::debug;

use super::ImageError;

/// Marks a directory whose contents in lower layers are hidden.
const OPAQUE: &[u8] = b".wh..wh..opq";
/// Prefix of a whiteout: `.wh.<name>` deletes `<name>` from lower layers.
const WHITEOUT: &[u8] = b".wh.";
/// Permission bits kept from layer entries: setuid and setgid are dropped.
const MODE_MASK: u32 = 0o1777;

/// A root file system being built from layers.
pub(crate) struct Unpacker {
    root: Root,
    /// Final mode and mtime of every directory a layer described, applied by `finish`.
    dirs: BTreeMap<PathBuf, (u32, u64)>,
}

/// One layer being applied: its name for messages and the paths it wrote so far.
struct LayerState<'a> {
    label: &'a str,
    written: HashSet<PathBuf>,
}

/// The properties of a tar entry that decide what to create.
struct EntryInfo {
    path: PathBuf,
    shown: String,
    kind: tar::EntryType,
    mode: u32,
    mtime: u64,
    link: Option<Vec<u8>>,
}

impl Unpacker {
    /// Starts building in `dir`, an empty directory with a symlink-free path.
    pub(crate) fn new(dir: &Path) -> Result<Unpacker, ImageError> {
        let root = Root::open(dir).map_err(|e| ImageError::io(dir, io_error(e)))?;
        Ok(Unpacker {
            root,
            dirs: BTreeMap::new(),
        })
    }

    /// The tree, for callers that add to it (mount points).
    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    /// Applies one layer tar; `label` names the layer in errors (its digest, or a file).
    pub(crate) fn apply_layer(&mut self, reader: impl Read, label: &str) -> Result<(), ImageError> {
        let layer_error = |source| ImageError::Layer {
            layer: label.to_string(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        let mut state = LayerState {
            label,
            written: HashSet::new(),
        };
        for entry in archive.entries().map_err(layer_error)? {
            let mut entry = entry.map_err(layer_error)?;
            let Some(info) = entry_info(&entry, label)? else {
                continue;
            };
            self.apply_entry(&mut entry, &info, &mut state)?;
        }
        Ok(())
    }

    fn apply_entry(
        &mut self,
        data: &mut impl Read,
        info: &EntryInfo,
        state: &mut LayerState,
    ) -> Result<(), ImageError> {
        let name = info.path.file_name().map_or(&[][..], OsStr::as_bytes);
        // Relative, possibly empty: whiteout paths must compare equal to entry paths.
        let parent = info.path.parent().unwrap_or(Path::new(""));
        if name == OPAQUE {
            return self.make_opaque(parent, info, state);
        }
        if name.starts_with(b".wh..wh.") {
            debug!(entry = %info.shown, "skipping aufs metadata");
            return Ok(());
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if matches!(hidden, b"" | b"." | b"..") {
                return Err(unsafe_entry(state, info, "a whiteout must name an entry"));
            }
            return self.remove(&parent.join(OsStr::from_bytes(hidden)), info, state);
        }
        state.written.insert(info.path.clone());
        use tar::EntryType as T;
        match info.kind {
            T::Directory => self.make_dir(info, state),
            T::Regular | T::Continuous | T::GNUSparse => self.make_file(data, info, state),
            T::Symlink => self.make_symlink(info, state),
            T::Link => self.make_hard_link(info, state),
            T::Fifo => self.make_fifo(info, state),
            T::Char | T::Block => {
                debug!(entry = %info.shown, "skipping device node");
                Ok(())
            }
            other => {
                debug!(entry = %info.shown, kind = ?other, "skipping entry of unsupported type");
                Ok(())
            }
        }
    }

    fn make_dir(&mut self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        if !self.make_room(info, state, true)? {
            let perm = Permissions::from_mode(0o755);
            self.root
                .create(&info.path, &InodeType::Directory(perm))
                .map_err(|e| entry_error(state, info, "creating the directory", e))?;
        }
        self.dirs
            .insert(info.path.clone(), (info.mode & MODE_MASK, info.mtime));
        Ok(())
    }

    fn make_file(
        &mut self,
        data: &mut impl Read,
        info: &EntryInfo,
        state: &LayerState,
    ) -> Result<(), ImageError> {
        self.make_room(info, state, false)?;
        let flags = OpenFlags::O_WRONLY | OpenFlags::O_EXCL | OpenFlags::O_NOFOLLOW;
        let mut file = self
            .root
            .create_file(&info.path, flags, &Permissions::from_mode(0o600))
            .map_err(|e| entry_error(state, info, "creating the file", e))?;
        io::copy(data, &mut file).map_err(|e| entry_error(state, info, "writing the file", e))?;
        file.set_permissions(Permissions::from_mode(info.mode & MODE_MASK))
            .and_then(|()| file.set_times(file_times(info.mtime)))
            .map_err(|e| entry_error(state, info, "setting the file's mode and time", e))
    }

    fn make_symlink(&mut self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        self.make_room(info, state, false)?;
        let target = PathBuf::from(OsStr::from_bytes(info.link.as_deref().unwrap_or_default()));
        self.root
            .create(&info.path, &InodeType::Symlink(target))
            .map_err(|e| entry_error(state, info, "creating the symlink", e))?;
        self.set_mtime_nofollow(info, state)
    }

    fn make_hard_link(&mut self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        let raw = info.link.as_deref().unwrap_or_default();
        let target = match clean_path(raw) {
            Ok(Some(target)) => target,
            Ok(None) => {
                return Err(unsafe_entry(
                    state,
                    info,
                    "a hard link to the root directory",
                ));
            }
            Err(why) => {
                let reason = format!(
                    "its hard link target `{}` {why}",
                    String::from_utf8_lossy(raw)
                );
                return Err(unsafe_entry(state, info, &reason));
            }
        };
        self.make_room(info, state, false)?;
        self.root
            .create(&info.path, &InodeType::Hardlink(target.clone()))
            .map_err(|e| {
                let what = format!(
                    "linking to `{}`, which must already be in the image",
                    target.display()
                );
                entry_error(state, info, &what, e)
            })
    }

    fn make_fifo(&mut self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        self.make_room(info, state, false)?;
        let perm = Permissions::from_mode(info.mode & 0o777);
        self.root
            .create(&info.path, &InodeType::Fifo(perm))
            .map_err(|e| entry_error(state, info, "creating the fifo", e))?;
        self.set_mtime_nofollow(info, state)
    }

    /// Sets the mtime of a symlink or fifo without following it.
    fn set_mtime_nofollow(&self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        let parent = parent_of(&info.path);
        let name = info.path.file_name().expect("entry paths end in a name");
        let dir = self
            .root
            .resolve(parent)
            .map_err(|e| entry_error(state, info, "opening the parent directory", e))?;
        let time = nix::sys::time::TimeSpec::new(info.mtime as i64, 0);
        let flag = nix::sys::stat::UtimensatFlags::NoFollowSymlink;
        nix::sys::stat::utimensat(dir, name, &time, &time, flag)
            .map_err(|e| entry_error(state, info, "setting the modification time", e))
    }

    /// Clears the way for a new entry: whatever is at its path goes, except that an
    /// existing directory stays when the entry is a directory too (returns `true` then).
    /// Missing parent directories are created.
    fn make_room(
        &mut self,
        info: &EntryInfo,
        state: &LayerState,
        for_dir: bool,
    ) -> Result<bool, ImageError> {
        match self.root.resolve_nofollow(&info.path) {
            Ok(handle) => {
                let is_dir = std::fs::File::from(OwnedFd::from(handle))
                    .metadata()
                    .map_err(|e| entry_error(state, info, "inspecting what is there", e))?
                    .is_dir();
                if for_dir && is_dir {
                    return Ok(true);
                }
                self.remove_existing(&info.path)
                    .map_err(|e| entry_error(state, info, "replacing what is there", e))?;
                Ok(false)
            }
            Err(e) if errno(&e) == Some(libc::ENOENT) => {
                self.make_parents(info, state)?;
                Ok(false)
            }
            Err(e) => Err(self.explain_parent_failure(info, state, e)),
        }
    }

    fn make_parents(&self, info: &EntryInfo, state: &LayerState) -> Result<(), ImageError> {
        let parent = parent_of(&info.path);
        match self.root.mkdir_all(parent, &Permissions::from_mode(0o755)) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.explain_parent_failure(info, state, e)),
        }
    }

    /// Turns a failure to reach an entry's directory into an error that says why: usually a
    /// symlink on the way whose target is not in the image (an attempted escape).
    fn explain_parent_failure(
        &self,
        info: &EntryInfo,
        state: &LayerState,
        error: pathrs::error::Error,
    ) -> ImageError {
        let mut prefix = PathBuf::new();
        for component in info.path.parent().into_iter().flat_map(Path::components) {
            prefix.push(component);
            let Ok(target) = self.root.readlink(&prefix) else {
                continue;
            };
            if !self.resolves_to_dir(&prefix) {
                let reason = format!(
                    "it would be written through the symlink `{}`, whose target `{}` is not a \
                     directory inside the image",
                    prefix.display(),
                    target.display()
                );
                return unsafe_entry(state, info, &reason);
            }
        }
        entry_error(state, info, "creating its parent directories", error)
    }

    /// Removes whatever is at `path` (recursively), forgetting directory metadata under it.
    fn remove_existing(&mut self, path: &Path) -> io::Result<()> {
        self.root.remove_all(path).map_err(io_error)?;
        // Paths order component by component, so everything under `path` follows it.
        let doomed: Vec<PathBuf> = (self.dirs.range(path.to_path_buf()..))
            .take_while(|(dir, _)| dir.starts_with(path))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in doomed {
            self.dirs.remove(&dir);
        }
        Ok(())
    }

    /// A whiteout: removes `path` as lower layers left it; absent paths are fine.
    fn remove(
        &mut self,
        path: &Path,
        info: &EntryInfo,
        state: &LayerState,
    ) -> Result<(), ImageError> {
        match self.remove_existing(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(entry_error(state, info, "applying the whiteout", e))
            }
            _ => Ok(()),
        }
    }

    /// An opaque directory: everything lower layers put in `dir` goes, while what this
    /// layer already wrote there stays.
    fn make_opaque(
        &mut self,
        dir: &Path,
        info: &EntryInfo,
        state: &LayerState,
    ) -> Result<(), ImageError> {
        self.clear_lower(dir, state)
            .map_err(|e| entry_error(state, info, "applying the opaque marker", e))
    }

    fn clear_lower(&mut self, dir: &Path, state: &LayerState) -> io::Result<()> {
        let names = match self.list_dir(dir) {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for name in names {
            let child = dir.join(OsStr::from_bytes(&name));
            if !state.written.contains(&child) {
                self.remove_existing(&child)?;
            } else if self.is_real_dir(&child) {
                self.clear_lower(&child, state)?;
            }
        }
        Ok(())
    }

    fn is_real_dir(&self, path: &Path) -> bool {
        self.root.resolve_nofollow(path).is_ok_and(is_dir)
    }

    /// Whether `path`, following symlinks inside the tree, is a directory.
    fn resolves_to_dir(&self, path: &Path) -> bool {
        self.root.resolve(path).is_ok_and(is_dir)
    }

    /// The names in a directory of the tree.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<Vec<u8>>> {
        let file = self
            .root
            .resolve(if dir.as_os_str().is_empty() {
                Path::new("/")
            } else {
                dir
            })
            .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
            .map_err(io_error)?;
        let mut listing = nix::dir::Dir::from_fd(OwnedFd::from(file))?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Gives every directory its final mode and mtime, and the root `0755`.
    pub(crate) fn finish(self) -> Result<(), ImageError> {
        for (path, (mode, mtime)) in self.dirs.iter().rev() {
            let opened = self
                .root
                .resolve_nofollow(path)
                .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY));
            // A described directory may have been replaced by a later layer; skip it then.
            let Ok(dir) = opened else {
                continue;
            };
            dir.set_permissions(Permissions::from_mode(*mode))
                .and_then(|()| dir.set_times(file_times(*mtime)))
                .map_err(|e| ImageError::io(path, e))?;
        }
        let top = self
            .root
            .resolve("/")
            .and_then(|h| h.reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY))
            .map_err(|e| ImageError::io("/", io_error(e)))?;
        top.set_permissions(Permissions::from_mode(0o755))
            .map_err(|e| ImageError::io("/", e))
    }
}

/// Reads what matters of a tar entry; `None` for entries with nothing to apply.
fn entry_info<R: Read>(
    entry: &tar::Entry<R>,
    label: &str,
) -> Result<Option<EntryInfo>, ImageError> {
    let raw = entry.path_bytes();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let header = entry.header();
    let kind = header.entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
    ) {
        return Ok(None);
    }
    let path = match clean_path(&raw) {
        Ok(Some(path)) => path,
        // The root itself: its metadata is seal's to decide.
        Ok(None) => return Ok(None),
        Err(why) => {
            return Err(ImageError::UnsafeEntry {
                layer: label.to_string(),
                entry: shown,
                reason: format!("the path {why}"),
            });
        }
    };
    let bad_header = |e| ImageError::Layer {
        layer: label.to_string(),
        source: e,
    };
    Ok(Some(EntryInfo {
        path,
        shown,
        kind,
        mode: header.mode().map_err(bad_header)?,
        mtime: header.mtime().map_err(bad_header)?,
        link: entry.link_name_bytes().map(|l| l.into_owned()),
    }))
}

/// A relative, normalised path for an entry name; `None` for the root itself. Absolute
/// names and `..` that would climb above the root are refused, with the reason.
pub(crate) fn clean_path(raw: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("is absolute");
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                if parts.pop().is_none() {
                    return Err("climbs out of the root with `..`");
                }
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(PathBuf::from(OsStr::from_bytes(&parts.join(&b'/')))))
}

fn file_times(mtime: u64) -> FileTimes {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
    FileTimes::new().set_modified(time).set_accessed(time)
}

fn errno(error: &pathrs::error::Error) -> Option<i32> {
    match error.kind() {
        ErrorKind::OsError(errno) => errno,
        _ => None,
    }
}

fn io_error(error: pathrs::error::Error) -> io::Error {
    match errno(&error) {
        Some(code) => io::Error::new(io::Error::from_raw_os_error(code).kind(), error),
        None => io::Error::other(error),
    }
}

/// The directory holding `path`; `/` (the tree's root) for top-level names, since pathrs
/// does not resolve an empty path.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("/"),
    }
}

/// Whether a handle from the tree is a directory (not following it if it is a symlink).
fn is_dir(handle: pathrs::Handle) -> bool {
    std::fs::File::from(OwnedFd::from(handle))
        .metadata()
        .is_ok_and(|m| m.is_dir())
}

fn unsafe_entry(state: &LayerState, info: &EntryInfo, reason: &str) -> ImageError {
    ImageError::UnsafeEntry {
        layer: state.label.to_string(),
        entry: info.shown.clone(),
        reason: reason.to_string(),
    }
}

fn entry_error(
    state: &LayerState,
    info: &EntryInfo,
    what: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ImageError {
    ImageError::Entry {
        layer: state.label.to_string(),
        entry: info.shown.clone(),
        what: what.to_string(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use super::clean_path;
    use std::path::PathBuf;

    #[test]
    fn clean_path_normalises_and_refuses_escapes() {
        assert_eq!(
            clean_path(b"./usr/bin/").unwrap(),
            Some(PathBuf::from("usr/bin"))
        );
        assert_eq!(clean_path(b"a/../b").unwrap(), Some(PathBuf::from("b")));
        assert_eq!(clean_path(b"./").unwrap(), None);
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"../x").is_err());
        assert!(clean_path(b"a/../../x").is_err());
    }
}
