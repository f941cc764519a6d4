//! Assembling the container's root file system inside the init's private
//! mount namespace, then entering it with `pivot_root`.
//!
//! Every mount target is resolved inside the rootfs one component at a time
//! without following symbolic links, and mounted through its
//! `/proc/self/fd/N` path, so an image cannot redirect a mount (or a created
//! mountpoint) to somewhere on the host.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, fstat, mkdirat};
use nix::sys::statvfs::{FsFlags, fstatvfs};
use nix::unistd::{chdir, fchdir, pivot_root, symlinkat};
use tracing::debug;

use super::{BindMount, ContainerSpec, Context, SetupResult, sys};

/// Host devices bound into the container's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` entries hidden as runc hides them: files get `/dev/null` over
/// them, directories an empty read-only tmpfs (`true`).
const PROC_MASKED: [(&str, bool); 10] = [
    ("acpi", true),
    ("asound", true),
    ("interrupts", false),
    ("kcore", false),
    ("keys", false),
    ("latency_stats", false),
    ("timer_list", false),
    ("timer_stats", false),
    ("sched_debug", false),
    ("scsi", true),
];

/// `/proc` entries made read-only: they hold host-wide settings that a
/// container started by root could otherwise write.
const PROC_READONLY: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// `/sys` directories hidden behind an empty read-only tmpfs.
const SYS_MASKED: [&str; 2] = ["firmware", "devices/virtual/powercap"];

/// A tmpfs or bind mount made so far, where missing mountpoints of later
/// mounts may be created when it is writable.
#[derive(Clone, Copy, Debug)]
struct Mounted<'a> {
    target: &'a str,
    writable: bool,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// Builds the container's file system tree and makes it the root.
pub(super) fn build_root(spec: &ContainerSpec) -> SetupResult<()> {
    let private = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, private, None::<&str>)
        .context(|| "make the mount namespace private")?;
    let root = bind_rootfs(&spec.rootfs)?;

    mount_proc(&root)?;
    mount_dev(&root)?;
    mount_sys(&root)?;
    let mut mounted: Vec<Mounted> = Vec::new();
    for target in &spec.tmpfs {
        mount_tmpfs(&root, target, &mounted)?;
        mounted.push(Mounted {
            target,
            writable: true,
        });
    }
    for bind in &spec.mounts {
        mount_bind(&root, bind, &mounted)?;
        mounted.push(Mounted {
            target: &bind.target,
            writable: !bind.readonly,
        });
    }

    make_readonly(root.as_fd(), false).context(|| "remount the rootfs read-only")?;
    enter(&root)
}

/// Mounts a new file system of type `fstype` on `target`.
fn mount_new(fstype: &str, target: &str, flags: MsFlags, data: Option<&str>) -> nix::Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data)
}

/// Binds `source` on `target`; `flags` may add `MS_REC`.
fn bind<P: ?Sized + nix::NixPath>(source: &P, target: &str, flags: MsFlags) -> nix::Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | flags,
        None::<&str>,
    )
}

/// `O_PATH` descriptor flags for a mountpoint, never following a final link.
const PATH_ONLY: OFlag = OFlag::O_PATH
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn bind_rootfs(rootfs: &Path) -> SetupResult<OwnedFd> {
    let what = || format!("bind the rootfs {}", rootfs.display());
    let path = rootfs
        .to_str()
        .ok_or_else(|| format!("{}: the path is not UTF-8", what()))?;
    bind(rootfs, path, MsFlags::MS_REC).context(what)?;
    // Opened after the bind, so the descriptor names the new mount.
    nix::fcntl::open(rootfs, PATH_ONLY | OFlag::O_DIRECTORY, Mode::empty()).context(what)
}

/// `/proc/self/fd/N`: the path through which a mount reaches exactly the
/// file the descriptor holds.
fn fd_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn mount_proc(root: &OwnedFd) -> SetupResult<()> {
    let mountpoint = existing_dir(root, "/proc")?;
    let target = fd_path(mountpoint.as_fd());
    mount_new("proc", &target, NOSUID_NODEV_NOEXEC, None)
        .context(|| "mount a new proc file system on /proc")?;
    // Reopened: the first descriptor still names the directory below.
    let proc = existing_dir(root, "/proc")?;
    let base = fd_path(proc.as_fd());
    for (name, is_dir) in PROC_MASKED {
        mask(&format!("{base}/{name}"), is_dir).context(|| format!("mask /proc/{name}"))?;
    }
    for name in PROC_READONLY {
        bind_readonly_in_place(&format!("{base}/{name}"), &proc, name)
            .context(|| format!("make /proc/{name} read-only"))?;
    }
    Ok(())
}

/// Hides `path` (if it exists) behind `/dev/null` or an empty tmpfs.
fn mask(path: &str, is_dir: bool) -> nix::Result<()> {
    let result = if is_dir {
        mount_new(
            "tmpfs",
            path,
            MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
            None,
        )
    } else {
        bind("/dev/null", path, MsFlags::empty())
    };
    match result {
        Err(Errno::ENOENT) => Ok(()),
        other => other,
    }
}

/// Binds `path` (a name under `dir`) onto itself and makes the bind read-only.
fn bind_readonly_in_place(path: &str, dir: &OwnedFd, name: &str) -> nix::Result<()> {
    match bind(path, path, MsFlags::MS_REC) {
        Err(Errno::ENOENT) => return Ok(()),
        other => other?,
    }
    let bound = openat(dir.as_fd(), name, PATH_ONLY, Mode::empty())?;
    make_readonly(bound.as_fd(), true).map_err(io_to_errno)
}

fn io_to_errno(err: std::io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

/// Makes the mount at `fd` read-only without touching its other flags (the
/// kernel refuses to clear flags it locked, such as nosuid or nodev).
fn make_readonly(fd: BorrowedFd<'_>, recursive: bool) -> std::io::Result<()> {
    match sys::mount_setattr_readonly(fd, recursive) {
        Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => remount_readonly(fd),
        other => other,
    }
}

/// Kernels before 5.12 lack `mount_setattr`: remount with the flags the
/// mount already has. Only the top mount becomes read-only there.
fn remount_readonly(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    // TODO: submounts of a read-only bind stay writable on kernels before
    // 5.12; walking /proc/self/mountinfo would fix it, at a cost.
    let current = fstatvfs(fd)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (has, flag) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(has) {
            flags |= flag;
        }
    }
    mount(
        None::<&str>,
        fd_path(fd).as_str(),
        None::<&str>,
        flags,
        None::<&str>,
    )?;
    Ok(())
}

fn mount_dev(root: &OwnedFd) -> SetupResult<()> {
    let mountpoint = existing_dir(root, "/dev")?;
    let target = fd_path(mountpoint.as_fd());
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_STRICTATIME;
    mount_new("tmpfs", &target, flags, Some("mode=755,size=64k"))
        .context(|| "mount a tmpfs on /dev")?;
    let dev = existing_dir(root, "/dev")?;
    let base = fd_path(dev.as_fd());
    for name in DEVICES {
        bind_device(&dev, &base, name)
            .context(|| format!("bind /dev/{name} into the container"))?;
    }
    mkdirat(dev.as_fd(), "pts", Mode::from_bits_truncate(0o755)).context(|| "create /dev/pts")?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let options = Some("newinstance,ptmxmode=0666,mode=0620");
    mount_new("devpts", &format!("{base}/pts"), flags, options)
        .context(|| "mount a new devpts instance on /dev/pts")?;
    mkdirat(dev.as_fd(), "shm", Mode::from_bits_truncate(0o1777)).context(|| "create /dev/shm")?;
    let options = Some("mode=1777,size=65536k");
    mount_new(
        "tmpfs",
        &format!("{base}/shm"),
        NOSUID_NODEV_NOEXEC,
        options,
    )
    .context(|| "mount a tmpfs on /dev/shm")?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlinkat(to, dev.as_fd(), link).context(|| format!("create the link /dev/{link}"))?;
    }
    Ok(())
}

/// Binds the host's `/dev/<name>` over an empty file, read-only: the device
/// still reads and writes, but a step started by root (whose files on the
/// host are root's) cannot change the host node's mode or times.
fn bind_device(dev: &OwnedFd, base: &str, name: &str) -> nix::Result<()> {
    let create = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
    drop(openat(
        dev.as_fd(),
        name,
        create,
        Mode::from_bits_truncate(0o666),
    )?);
    bind(
        format!("/dev/{name}").as_str(),
        &format!("{base}/{name}"),
        MsFlags::empty(),
    )?;
    let bound = openat(dev.as_fd(), name, PATH_ONLY, Mode::empty())?;
    make_readonly(bound.as_fd(), false).map_err(io_to_errno)
}

/// A fresh sysfs, read-only. The kernel allows one only to the owner of the
/// network namespace, so a step sharing the host network gets none.
fn mount_sys(root: &OwnedFd) -> SetupResult<()> {
    let mountpoint = existing_dir(root, "/sys")?;
    let target = fd_path(mountpoint.as_fd());
    match mount_new(
        "sysfs",
        &target,
        MsFlags::MS_RDONLY | NOSUID_NODEV_NOEXEC,
        None,
    ) {
        Err(Errno::EPERM) => {
            debug!("sysfs refused (host network namespace): /sys stays empty");
            return Ok(());
        }
        other => other.context(|| "mount a read-only sysfs on /sys")?,
    }
    let sys = existing_dir(root, "/sys")?;
    let base = fd_path(sys.as_fd());
    for name in SYS_MASKED {
        mask(&format!("{base}/{name}"), true).context(|| format!("mask /sys/{name}"))?;
    }
    Ok(())
}

fn mount_tmpfs(root: &OwnedFd, target: &str, mounted: &[Mounted]) -> SetupResult<()> {
    let fd = mountpoint(root, target, true, mounted)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_new("tmpfs", &fd_path(fd.as_fd()), flags, Some("mode=1777"))
        .context(|| format!("mount a tmpfs on {target}"))
}

fn mount_bind(root: &OwnedFd, bind_mount: &BindMount, mounted: &[Mounted]) -> SetupResult<()> {
    let (source, target) = (bind_mount.source.as_path(), bind_mount.target.as_str());
    let is_dir = fs_err::metadata(source)
        .context(|| {
            format!(
                "find the source {} of the mount on {target}",
                source.display()
            )
        })?
        .is_dir();
    let fd = mountpoint(root, target, is_dir, mounted)?;
    let what = || format!("bind {} to {target}", source.display());
    bind(source, &fd_path(fd.as_fd()), MsFlags::MS_REC).context(what)?;
    if bind_mount.readonly {
        // Reopened: the first descriptor still names the mountpoint below.
        let bound = resolve(root, target).map_err(|_| what())?;
        make_readonly(bound.as_fd(), true)
            .context(|| format!("make the mount on {target} read-only"))?;
    }
    Ok(())
}

/// Makes the rootfs mount at `root` the root directory, detaching the host's.
fn enter(root: &OwnedFd) -> SetupResult<()> {
    fchdir(root.as_fd()).context(|| "enter the rootfs")?;
    // With new and old root the same, the old root ends up stacked on top of
    // the new one, from where it can be detached: no put_old directory needed.
    pivot_root(".", ".").context(|| "pivot_root into the rootfs")?;
    umount2(".", MntFlags::MNT_DETACH).context(|| "detach the host's root")?;
    chdir("/").context(|| "change to the new root")
}

/// Why a path inside the rootfs could not be opened.
enum Unresolved {
    Missing,
    /// A symbolic link, or a non-directory where a directory must be.
    NotPlain,
    Other(Errno),
}

/// Opens `path` (absolute, inside the container) relative to `root` with
/// `O_PATH`, refusing symbolic links and `..` anywhere on the way.
fn resolve(root: &OwnedFd, path: &str) -> Result<OwnedFd, Unresolved> {
    let names = components(path).ok_or(Unresolved::Other(Errno::EINVAL))?;
    let mut fd: Option<OwnedFd> = None;
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        // O_DIRECTORY refuses a link on the way; only the last needs fstat.
        let flags = if last {
            PATH_ONLY
        } else {
            PATH_ONLY | OFlag::O_DIRECTORY
        };
        let dir = fd.as_ref().map_or(root.as_fd(), |fd| fd.as_fd());
        let next = openat(dir, *name, flags, Mode::empty()).map_err(|errno| match errno {
            Errno::ENOENT => Unresolved::Missing,
            Errno::ENOTDIR => Unresolved::NotPlain,
            errno => Unresolved::Other(errno),
        })?;
        if last {
            let mode = fstat(&next).map_err(Unresolved::Other)?.st_mode;
            if SFlag::from_bits_truncate(mode) & SFlag::S_IFMT == SFlag::S_IFLNK {
                return Err(Unresolved::NotPlain);
            }
        }
        fd = Some(next);
    }
    fd.ok_or(Unresolved::Other(Errno::EINVAL))
}

/// The names along an absolute path; `None` for a relative path or `..`.
fn components(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    let names: Vec<&str> = rest
        .split('/')
        .filter(|name| !name.is_empty() && *name != ".")
        .collect();
    if names.contains(&"..") {
        None
    } else {
        Some(names)
    }
}

/// Opens a directory the image must provide (`/proc`, `/dev`, `/sys`).
fn existing_dir(root: &OwnedFd, path: &str) -> SetupResult<OwnedFd> {
    mountpoint(root, path, true, &[])
}

/// Opens the mountpoint `target`, creating it when it is missing and the
/// innermost earlier mount above it is writable (a tmpfs or a writable bind).
fn mountpoint(
    root: &OwnedFd,
    target: &str,
    is_dir: bool,
    mounted: &[Mounted],
) -> SetupResult<OwnedFd> {
    match resolve(root, target) {
        Ok(fd) => Ok(fd),
        Err(Unresolved::NotPlain) => Err(format!(
            "use {target} as a mountpoint: the path passes through a symbolic link \
             or a non-directory in the image"
        )),
        Err(Unresolved::Other(errno)) => {
            Err(format!("open the mountpoint {target}: {}", errno.desc()))
        }
        Err(Unresolved::Missing) => match covering_mount(target, mounted) {
            Some(cover) if cover.writable => {
                create_mountpoint(root, target, cover.target, is_dir)?;
                resolve(root, target).map_err(|_| format!("open the created mountpoint {target}"))
            }
            Some(cover) => Err(format!(
                "use {target} as a mountpoint: it does not exist in the read-only mount on {}",
                cover.target
            )),
            None => Err(format!(
                "use {target} as a mountpoint: it does not exist in the read-only image \
                 and no writable mount lies above it to create it in"
            )),
        },
    }
}

/// The innermost of the `mounted` that strictly contains `target`.
fn covering_mount<'a>(target: &str, mounted: &[Mounted<'a>]) -> Option<Mounted<'a>> {
    let target = components(target)?;
    mounted
        .iter()
        .filter_map(|mount| components(mount.target).map(|names| (*mount, names)))
        .filter(|(_, names)| names.len() < target.len() && target.starts_with(names))
        .max_by_key(|(_, names)| names.len())
        .map(|(mount, _)| mount)
}

/// Creates `target`'s missing parents (directories) and `target` itself (a
/// directory or an empty file) below the writable mount `cover`.
fn create_mountpoint(root: &OwnedFd, target: &str, cover: &str, is_dir: bool) -> SetupResult<()> {
    let names = components(target).unwrap_or_default();
    let skip = components(cover).map_or(0, |names| names.len());
    let mut parent = format!("/{}", names[..skip].join("/"));
    for (i, name) in names.iter().enumerate().skip(skip) {
        let dir = resolve(root, &parent)
            .map_err(|_| format!("open {parent} to create the mountpoint {target}"))?;
        let created = if i + 1 == names.len() && !is_dir {
            let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            openat(dir.as_fd(), *name, flags, Mode::from_bits_truncate(0o644)).map(drop)
        } else {
            mkdirat(dir.as_fd(), *name, Mode::from_bits_truncate(0o755))
        };
        parent = format!("{}/{name}", parent.trim_end_matches('/'));
        match created {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(errno) => {
                return Err(format!(
                    "create the mountpoint {parent} for {target}: {}",
                    errno.desc()
                ));
            }
        }
    }
    debug!(
        target,
        cover, "created a missing mountpoint inside a writable mount"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_refuse_relative_paths_and_dotdot() {
        assert_eq!(components("/a//b/./c/"), Some(vec!["a", "b", "c"]));
        assert_eq!(components("a/b"), None);
        assert_eq!(components("/a/../b"), None);
    }

    #[test]
    fn covering_mount_is_the_innermost_strict_parent() {
        let mounted = [
            Mounted {
                target: "/work",
                writable: true,
            },
            Mounted {
                target: "/work/out",
                writable: true,
            },
            Mounted {
                target: "/work/in",
                writable: false,
            },
            Mounted {
                target: "/tmp",
                writable: true,
            },
        ];
        let cover = |target| covering_mount(target, &mounted).map(|m| (m.target, m.writable));
        assert_eq!(cover("/work/out/x/y"), Some(("/work/out", true)));
        assert_eq!(cover("/work/in.txt"), Some(("/work", true)));
        assert_eq!(cover("/work/in/x"), Some(("/work/in", false)));
        assert_eq!(cover("/work"), None);
        assert_eq!(cover("/workshop/x"), None);
        assert_eq!(cover("/data/x"), None);
    }
}
