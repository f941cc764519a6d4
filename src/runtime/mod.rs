//! The built-in rootless container runtime.
//!
//! The scheduler is multi-threaded, so it never forks to start a container.
//! [`spawn`] starts a fresh `seal __container` process (see [`container_main`])
//! and hands it the [`ContainerSpec`] over a pipe; that single-threaded process
//! builds the namespaces, runs the step under a small init, enforces the
//! limits, and reports an [`Outcome`] back.
//!
//! The process tree of one container:
//!
//! ```text
//! scheduler (seal run, many threads)
//! └── monitor   `seal __container`: user + PID namespace owner, limits, wait4
//!     └── init  PID 1 of the new PID namespace: mounts, pivot_root, reaper
//!         └── step  the step's argv, no capabilities, no_new_privs
//! ```

mod debug;
mod init;
mod limits;
mod monitor;
mod mounts;
mod namespaces;
mod spawn;
mod step;
mod sys;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use debug::run_spec_main;
pub use monitor::container_main;
pub use spawn::{Running, run, spawn};

/// Everything needed to start one step container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The image's flattened root file system; mounted read-only.
    pub rootfs: PathBuf,
    /// The exact argument vector to execute (already resolved from
    /// entrypoint/cmd/step); `argv[0]` is looked up in the container's `PATH`.
    pub argv: Vec<String>,
    /// The complete environment, `KEY=value`.
    pub env: Vec<String>,
    /// Working directory inside the container (absolute).
    pub cwd: String,
    /// User and group the step runs as inside the container.
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    /// Bind mounts, applied in order after the rootfs.
    pub mounts: Vec<BindMount>,
    /// Absolute paths inside the container that get a fresh, private tmpfs.
    pub tmpfs: Vec<String>,
    /// Share the host network namespace instead of a new, empty one.
    pub network: bool,
    pub limits: Limits,
    /// Host files that receive the step's stdout and stderr (created/truncated).
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// A bind mount from the host into the container.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub readonly: bool,
}

/// Resource limits for one container.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub time: Option<Duration>,
    pub cpus: Option<u32>,
}

/// How a container ended and what it used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub termination: Termination,
    pub wall: Duration,
    pub user_cpu: Duration,
    pub system_cpu: Duration,
    /// Peak resident memory in bytes.
    pub peak_memory_bytes: u64,
    /// What enforced the memory and CPU limits and measured the peak.
    pub enforcement: Enforcement,
}

/// Why a container stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Termination {
    Exited { code: i32 },
    Signaled { signal: i32 },
    TimedOut,
    MemoryExceeded,
}

impl Termination {
    /// True only for a step that exited with status 0.
    pub fn success(&self) -> bool {
        *self == Termination::Exited { code: 0 }
    }
}

/// The mechanism that enforced a container's resource limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Enforcement {
    /// A cgroup v2 leaf created for the container (`memory.max`, `cpu.max`,
    /// `memory.peak`); `path` is the cgroup directory on the host.
    Cgroup2 { path: PathBuf },
    /// No usable cgroup: the init samples the memory of the container's
    /// processes and kills them all above the limit; `cpus` is not enforced.
    Polling,
}

/// Errors from starting or supervising a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to set up the container: {0}")]
    Setup(String),
    /// The `seal __container` process could not be started or talked to.
    #[error("failed to {what}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The `seal __container` process ended without reporting an outcome.
    #[error("failed to supervise the container: the monitor process {0}")]
    MonitorLost(String),
}

/// Re-executes seal from a sealed, immutable memory file (once per process).
///
/// Call at the start of `seal run`, before any thread exists: afterwards
/// `/proc/self/exe` of seal and of every container process it starts is a
/// sealed memfd, so nothing inside a container can rewrite seal's binary
/// through it (the CVE-2019-5736 class). Returns only when already sealed.
pub fn seal_self() -> Result<(), RuntimeError> {
    pentacle::ensure_sealed().map_err(|source| RuntimeError::Io {
        what: "re-execute seal from a sealed memfd",
        source,
    })?;
    // The re-exec named the process after its memfd's descriptor number.
    let _ = nix::sys::prctl::set_name(c"seal");
    Ok(())
}

/// Setup failures travel between the container's processes as plain messages
/// naming what failed and where; the scheduler gets them as
/// [`RuntimeError::Setup`].
type SetupResult<T> = Result<T, String>;

/// Turns a system error into a setup message: `what` (e.g. "mount proc on
/// /proc") followed by the operating system's reason.
trait Context<T> {
    fn context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> SetupResult<T>;
}

impl<T> Context<T> for Result<T, nix::Error> {
    fn context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> SetupResult<T> {
        self.map_err(|errno| format!("{}: {}", what(), errno.desc()))
    }
}

impl<T> Context<T> for Result<T, std::io::Error> {
    fn context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> SetupResult<T> {
        self.map_err(|err| format!("{}: {}", what(), os_reason(&err)))
    }
}

/// The operating system's reason behind `err`, without the path that
/// `fs_err` adds (the caller's message names it already).
fn os_reason(err: &std::io::Error) -> String {
    // fs_err hides the original error, but its message ends with it.
    let text = err.to_string();
    let wrapped = text
        .rsplit_once("(os error ")
        .and_then(|(_, n)| n.strip_suffix(')'));
    match err.raw_os_error().or_else(|| wrapped?.parse().ok()) {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.kind().to_string(),
    }
}
