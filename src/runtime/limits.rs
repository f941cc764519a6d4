//! Enforcing and measuring resource limits.
//!
//! Where the monitor sits in a cgroup v2 tree whose parent is writable and
//! has the memory controller delegated (a systemd user slice, a delegated
//! Slurm or batch cgroup, root on a pure v2 host), the container gets its own
//! leaf cgroup with `memory.max` and `cpu.max`, and `memory.peak` gives the
//! peak. Elsewhere (hybrid hosts such as this one, many HPC nodes) the init
//! samples the memory of the container's processes instead and kills them
//! all when they exceed the limit; `cpus` is then left to the scheduler's
//! accounting.

use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access};
use tracing::debug;

use super::Limits;

/// Where a cgroup v2 hierarchy is usually mounted: alone, or beside v1.
const CGROUP2_MOUNTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// cgroup v2 CPU bandwidth period in microseconds.
const CPU_PERIOD_US: u64 = 100_000;

/// A leaf cgroup created for one container; the monitor sits in it (and so
/// every process it starts) until [`Cgroup::finish`].
#[derive(Debug)]
pub(super) struct Cgroup {
    pub path: PathBuf,
    /// The monitor's cgroup before it moved, to move back to.
    original: PathBuf,
}

/// What the cgroup measured.
pub(super) struct CgroupUsage {
    pub peak_bytes: u64,
    pub oom_killed: bool,
}

impl Cgroup {
    /// Creates a limited leaf cgroup and moves the calling process into it,
    /// or returns `None` (saying why at debug level) when no usable cgroup v2
    /// subtree is delegated to us.
    pub fn create(limits: &Limits) -> Option<Cgroup> {
        let (mount, own) = match locate() {
            Ok(found) => found,
            Err(why) => {
                debug!("limits enforced by polling: {why}");
                return None;
            }
        };
        match Cgroup::create_in(&mount, &own, limits, std::process::id()) {
            Ok(cgroup) => {
                debug!(path = %cgroup.path.display(), "limits enforced by a cgroup v2 leaf");
                Some(cgroup)
            }
            Err(why) => {
                debug!("limits enforced by polling: {why}");
                None
            }
        }
    }

    /// The testable part of [`Cgroup::create`]: `mount` is the cgroup2 root,
    /// `own` the process's cgroup path below it (from `/proc/self/cgroup`).
    fn create_in(mount: &Path, own: &str, limits: &Limits, pid: u32) -> Result<Cgroup, String> {
        let original = mount.join(own.trim_start_matches('/'));
        let parent = delegated_parent(mount, &original)?;
        let path = parent.join(format!("seal-{pid}"));
        fs_err::create_dir(&path)
            .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        let cgroup = Cgroup { path, original };
        if let Err(why) = cgroup.configure(limits) {
            let _ = fs_err::remove_dir(&cgroup.path);
            return Err(why);
        }
        Ok(cgroup)
    }

    fn configure(&self, limits: &Limits) -> Result<(), String> {
        let write = |file: &str, value: String| {
            fs_err::write(self.path.join(file), value).map_err(|err| err.to_string())
        };
        if let Some(bytes) = limits.memory_bytes {
            write("memory.max", bytes.to_string())?;
            // Without these, a step over its limit swaps, or loses only its
            // largest process to the OOM killer.
            let _ = write("memory.swap.max", "0".into());
            let _ = write("memory.oom.group", "1".into());
        }
        if let Some(cpus) = limits.cpus {
            let quota = u64::from(cpus.max(1)) * CPU_PERIOD_US;
            if let Err(why) = write("cpu.max", format!("{quota} {CPU_PERIOD_US}")) {
                debug!("cpu limit not enforced: {why}");
            }
        }
        write("cgroup.procs", "0".into())
    }

    /// Reads the peak and OOM events, moves the monitor back and removes the
    /// leaf (all container processes are gone by now).
    pub fn finish(self) -> CgroupUsage {
        let read = |file: &str| fs_err::read_to_string(self.path.join(file)).unwrap_or_default();
        let peak_bytes = read("memory.peak").trim().parse().unwrap_or(0);
        let oom_killed = read("memory.events")
            .lines()
            .filter_map(|line| line.split_once(' '))
            .any(|(key, count)| key == "oom_kill" && count.trim() != "0");
        let _ = fs_err::write(self.original.join("cgroup.procs"), "0");
        if let Err(err) = fs_err::remove_dir(&self.path) {
            debug!("could not remove the container's cgroup: {err}");
        }
        CgroupUsage {
            peak_bytes,
            oom_killed,
        }
    }
}

/// Finds the cgroup v2 mount and this process's cgroup below it.
fn locate() -> Result<(PathBuf, String), String> {
    let mount = CGROUP2_MOUNTS
        .iter()
        .find(|path| {
            nix::sys::statfs::statfs(**path)
                .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
        .ok_or("no cgroup v2 file system is mounted")?;
    let own = fs_err::read_to_string("/proc/self/cgroup").map_err(|err| err.to_string())?;
    let own = own
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 group")?;
    Ok((PathBuf::from(mount), own.to_string()))
}

/// Chooses where the container's leaf goes: a cgroup with processes may not
/// have controllers for its children (except the root), so the leaf becomes
/// a sibling of `own`, under a parent that delegates `memory` to us.
fn delegated_parent(mount: &Path, own: &Path) -> Result<PathBuf, String> {
    let parent = if own == mount {
        own
    } else {
        own.parent().unwrap_or(mount)
    };
    let controllers = fs_err::read_to_string(parent.join("cgroup.subtree_control"))
        .map_err(|err| err.to_string())?;
    if !controllers.split_whitespace().any(|name| name == "memory") {
        return Err(format!(
            "the memory controller is not delegated to the children of {}",
            parent.display()
        ));
    }
    let writable = access(parent, AccessFlags::W_OK).is_ok()
        && access(&parent.join("cgroup.procs"), AccessFlags::W_OK).is_ok();
    if !writable {
        return Err(format!("{} is not writable by this user", parent.display()));
    }
    Ok(parent.to_path_buf())
}

/// Memory of the container's processes, as the init sees them in its
/// `/proc`: private resident memory summed over processes, plus the largest
/// shared part once (shared libraries would otherwise count many times).
/// The init itself (PID 1) is left out.
pub(super) fn sample_memory(page_size: u64) -> u64 {
    let Ok(entries) = fs_err::read_dir("/proc") else {
        return 0;
    };
    let (mut private, mut shared_max) = (0u64, 0u64);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if pid == "1" {
            continue;
        }
        let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else {
            continue;
        };
        let mut fields = statm
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse::<u64>().unwrap_or(0));
        let (resident, shared) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        private += resident.saturating_sub(shared);
        shared_max = shared_max.max(shared);
    }
    (private + shared_max) * page_size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup2 tree: `root/user.slice/me.scope` holding this process.
    fn tree(subtree_control: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("user.slice");
        fs_err::create_dir_all(parent.join("me.scope")).unwrap();
        fs_err::write(parent.join("cgroup.subtree_control"), subtree_control).unwrap();
        fs_err::write(parent.join("cgroup.procs"), "").unwrap();
        dir
    }

    #[test]
    fn leaf_is_created_beside_our_cgroup_with_the_limits_written() {
        let dir = tree("cpu memory pids\n");
        let limits = Limits {
            memory_bytes: Some(1 << 20),
            cpus: Some(2),
            time: None,
        };
        let cgroup = Cgroup::create_in(dir.path(), "/user.slice/me.scope", &limits, 42).unwrap();
        let leaf = dir.path().join("user.slice/seal-42");
        assert_eq!(cgroup.path, leaf);
        assert_eq!(
            fs_err::read_to_string(leaf.join("memory.max")).unwrap(),
            "1048576"
        );
        assert_eq!(
            fs_err::read_to_string(leaf.join("cpu.max")).unwrap(),
            "200000 100000"
        );
        assert_eq!(
            fs_err::read_to_string(leaf.join("cgroup.procs")).unwrap(),
            "0"
        );
    }

    #[test]
    fn no_leaf_without_a_delegated_memory_controller() {
        let dir = tree("cpu pids\n");
        let why = Cgroup::create_in(dir.path(), "/user.slice/me.scope", &Limits::default(), 42)
            .unwrap_err();
        assert!(why.contains("memory controller is not delegated"), "{why}");
        assert!(!dir.path().join("user.slice/seal-42").exists());
    }

    #[test]
    fn the_root_cgroup_is_its_own_parent() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("cgroup.subtree_control"), "memory").unwrap();
        fs_err::write(dir.path().join("cgroup.procs"), "").unwrap();
        let cgroup = Cgroup::create_in(dir.path(), "/", &Limits::default(), 7).unwrap();
        assert_eq!(cgroup.path, dir.path().join("seal-7"));
    }
}
