//! The scheduler's side of a container: start a fresh `seal __container`
//! process, hand it the spec, and read back what happened.
//!
//! The scheduler is multi-threaded, so it only ever forks to exec (through
//! `std::process::Command`). The write end of the monitor's stdin stays open
//! for the container's whole life: when the scheduler dies, even by
//! `SIGKILL`, the monitor sees the pipe hang up and tears the container down.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{ContainerSpec, Outcome, RuntimeError};

/// Largest spec the monitor accepts, a guard against a corrupt length.
pub(super) const MAX_SPEC_BYTES: usize = 16 << 20;

/// What the monitor writes on its stdout when it is done.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum Report {
    Outcome(Outcome),
    SetupError(String),
}

/// A started container.
///
/// Dropping it without [`Running::wait`] kills the container.
#[derive(Debug)]
pub struct Running {
    child: Child,
    /// Held open only to signal the monitor that the scheduler is alive.
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

/// Starts the container described by `spec` and returns at once.
pub fn spawn(spec: &ContainerSpec) -> Result<Running, RuntimeError> {
    warn_if_unsealed();
    let frame = encode_frame(spec);
    let mut child = Command::new("/proc/self/exe")
        .arg("__container")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Keep terminal signals (Ctrl-C) away: the scheduler forwards them.
        .process_group(0)
        .spawn()
        .map_err(|source| RuntimeError::Io {
            what: "start `seal __container`",
            source,
        })?;
    let mut running = Running {
        stdin: child.stdin.take(),
        stdout: child.stdout.take(),
        child,
    };
    let stdin = running.stdin.as_mut().expect("stdin is piped");
    stdin.write_all(&frame).map_err(|source| RuntimeError::Io {
        what: "send the spec to `seal __container`",
        source,
    })?;
    Ok(running)
}

/// Says once per process when [`super::seal_self`] was not called: then the
/// container's processes are forks of seal's binary on disk, which a step can
/// reach through a `#!/proc/self/exe` script.
fn warn_if_unsealed() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        if !pentacle::is_sealed() {
            warn!(
                "seal is not running from a sealed copy of itself: containers can reach its binary"
            );
        }
    });
}

/// Starts the container described by `spec` and waits for it to end.
pub fn run(spec: &ContainerSpec) -> Result<Outcome, RuntimeError> {
    spawn(spec)?.wait()
}

/// The spec as the monitor reads it: a little-endian `u32` length, then JSON.
fn encode_frame(spec: &ContainerSpec) -> Vec<u8> {
    let body = serde_json::to_vec(spec).expect("a spec always serialises to JSON");
    let len = u32::try_from(body.len()).expect("a spec is far smaller than 4 GiB");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    frame
}

impl Running {
    /// The host process ID of the container's monitor process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forwards `signal` to the step (through the monitor and the init).
    ///
    /// `SIGKILL` cannot be forwarded: it kills the monitor and with it the
    /// whole container, and [`Running::wait`] then reports
    /// [`RuntimeError::MonitorLost`]. Use `SIGTERM`, or a time limit.
    pub fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("pids fit in i32"));
        kill(pid, signal).map_err(|errno| RuntimeError::Io {
            what: "signal the container's monitor",
            source: errno.into(),
        })
    }

    /// Waits for the container to end and returns what happened.
    pub fn wait(mut self) -> Result<Outcome, RuntimeError> {
        let mut text = Vec::new();
        let read = self
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_end(&mut text);
        let status = self.child.wait();
        self.stdin = None;
        read.map_err(|source| RuntimeError::Io {
            what: "read the container's outcome",
            source,
        })?;
        match serde_json::from_slice::<Report>(&text) {
            Ok(Report::Outcome(outcome)) => Ok(outcome),
            Ok(Report::SetupError(message)) => Err(RuntimeError::Setup(message)),
            Err(_) => Err(RuntimeError::MonitorLost(match status {
                Ok(status) => format!("ended ({status}) without reporting an outcome"),
                Err(err) => format!("could not be waited for: {err}"),
            })),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Closing stdin tells the monitor to kill the container; then reap it.
        if self.stdin.take().is_some() {
            let _ = self.child.wait();
        }
    }
}
