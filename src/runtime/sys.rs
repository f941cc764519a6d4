//! Thin safe wrappers over the few raw system calls the runtime needs that
//! `nix` does not offer (or offers only as `unsafe`). All of the runtime's
//! `unsafe` lives here.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// The result of [`fork`].
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// Forks the calling process.
///
/// Only the `seal __container` process and its descendants call this; they
/// never start a thread, so the child may safely run arbitrary code.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the caller is single-threaded (see above), so the child inherits
    // no lock held by another thread and may allocate and run Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// How a waited-for process ended, with its (and its waited-for
/// descendants') resource usage.
pub struct Reaped {
    pub status: libc::c_int,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
    /// Largest resident set size of the process or any waited descendant.
    pub max_rss_bytes: u64,
}

/// `wait4(pid, WNOHANG)`: `None` while the process still runs.
pub fn wait4_nohang(pid: libc::pid_t) -> io::Result<Option<Reaped>> {
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, writable locals of the right type.
    let got = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match got {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(Reaped {
            status,
            user_cpu: timeval(usage.ru_utime),
            system_cpu: timeval(usage.ru_stime),
            max_rss_bytes: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        })),
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::new(secs, micros * 1000)
}

/// Marks every descriptor from `first` up close-on-exec.
///
/// Marking rather than closing keeps the step's error pipe usable until the
/// `execve` that closes it. Returns `ENOSYS` on kernels before 5.11.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the read-only attribute on the mount at `fd` and, with `recursive`,
/// on every mount below it, keeping all other (possibly locked) attributes.
/// Returns `ENOSYS` on kernels before 5.12.
pub fn mount_setattr_readonly(fd: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid C string, `attr` lives across the call and
    // its size is passed along.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Brings the network interface `name` (e.g. `lo`) up through `socket`.
pub fn set_interface_up(socket: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    // SAFETY: an all-zero `ifreq` is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.iter().take(libc::IFNAMSIZ - 1))
    {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq naming the interface; the kernel fills
    // in the flags member of the union.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just initialised the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: as above; the kernel reads the name and flags.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the default action of `SIGPIPE`, which the Rust runtime ignores
/// and which an exec'd program would otherwise inherit as ignored.
pub fn default_sigpipe() -> io::Result<()> {
    // SAFETY: installing SIG_DFL runs no Rust code in signal context.
    if unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Exits at once, without running destructors or flushing stdio buffers
/// inherited across a fork.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it never returns.
    unsafe { libc::_exit(code) }
}

/// Sets close-on-exec on a descriptor known only by number (it may already
/// be closed, which is harmless).
pub fn set_cloexec_raw(fd: i32) {
    // SAFETY: fcntl(F_SETFD) on any integer only changes descriptor flags or
    // fails with EBADF; no memory is involved.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}
