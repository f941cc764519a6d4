//! Creating the container's namespaces.
//!
//! The monitor creates the user namespace (mapping the invoking user to the
//! step's uid and gid, one ID each, so no setuid helper is needed) together
//! with the PID namespace, whose first child becomes PID 1. The init then
//! creates the mount, UTS, IPC and (unless the step shares the host network)
//! network namespaces for itself, so that its `pivot_root` never changes the
//! monitor's view of the host.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use nix::unistd::{getgid, getuid, setgroups, sethostname};
use tracing::debug;

use super::{ContainerSpec, Context, SetupResult, sys};

/// Enters a new user namespace (the caller's uid/gid become `uid`/`gid`
/// inside) and a new PID namespace for the caller's next child.
pub(super) fn enter_user_and_pid(uid: u32, gid: u32) -> SetupResult<()> {
    let (host_uid, host_gid) = (getuid(), getgid());
    // Root's supplementary groups would keep host group rights (group 0
    // among them) inside; an ordinary user cannot drop its own, and neither
    // can root of a user namespace that denies setgroups (nested use).
    if host_uid.is_root() && setgroups(&[]).is_err() {
        debug!("supplementary groups kept: setgroups is denied here");
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID).map_err(userns_refused)?;
    write_proc("/proc/self/setgroups", "deny")?;
    write_proc("/proc/self/uid_map", &format!("{uid} {host_uid} 1"))?;
    write_proc("/proc/self/gid_map", &format!("{gid} {host_gid} 1"))
}

fn write_proc(path: &str, text: &str) -> SetupResult<()> {
    fs_err::write(path, text).context(|| format!("write \"{text}\" to {path}"))
}

/// The message for a refused user namespace, with the settings to check.
fn userns_refused(errno: Errno) -> String {
    let reason = errno.desc();
    match errno {
        Errno::EPERM | Errno::ENOSPC | Errno::EUSERS | Errno::EACCES => format!(
            "create a user namespace: {reason}; unprivileged user namespaces look disabled \
             on this host (check the sysctls user.max_user_namespaces, \
             kernel.unprivileged_userns_clone and, on Ubuntu, \
             kernel.apparmor_restrict_unprivileged_userns)"
        ),
        _ => format!("create the user and PID namespaces: {reason}"),
    }
}

/// Gives the init its own mount, UTS, IPC and network namespaces, brings
/// `lo` up in a new network namespace and sets the host name.
pub(super) fn enter_rest(spec: &ContainerSpec) -> SetupResult<()> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if !spec.network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).context(|| "create the mount, UTS, IPC and network namespaces")?;
    if !spec.network {
        loopback_up()?;
    }
    sethostname(&spec.hostname).context(|| format!("set the host name to {:?}", spec.hostname))
}

/// A new network namespace has only `lo`, and it is down; tools that talk to
/// localhost expect it up.
fn loopback_up() -> SetupResult<()> {
    let socket = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context(|| "open a socket to configure lo")?;
    sys::set_interface_up(socket.as_fd(), b"lo").context(|| "bring the lo interface up")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_user_namespace_names_the_settings_to_check() {
        for errno in [Errno::EPERM, Errno::ENOSPC] {
            let message = userns_refused(errno);
            assert!(
                message.contains("unprivileged user namespaces look disabled"),
                "{message}"
            );
            assert!(
                message.contains("kernel.unprivileged_userns_clone"),
                "{message}"
            );
        }
        assert!(!userns_refused(Errno::EINVAL).contains("disabled"));
    }
}
