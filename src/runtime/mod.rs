//! The built-in rootless container runtime.
//!
//! The scheduler is multi-threaded, so it never forks to start a container.
//! [`spawn`] starts a fresh `seal __container` process (see [`container_main`])
//! and hands it the [`ContainerSpec`] over a pipe; that single-threaded process
//! builds the namespaces, runs the step under a small init, enforces the
//! limits, and reports an [`Outcome`] back.

mod stub_spawn;

pub use stub_spawn::{Running, seal_self, spawn};

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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

/// The mechanism that enforced a container's resource limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Enforcement {
    Cgroup2 { path: PathBuf },
    Polling,
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

/// Errors from starting or supervising a container.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to set up the container: {0}")]
    Setup(String),
}

/// Entry point of the hidden `seal __container` subcommand; returns the exit code.
pub fn container_main() -> u8 {
    1
}
