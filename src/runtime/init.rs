//! PID 1 of the container.
//!
//! The init is a fork of the monitor. It builds the container's file system,
//! starts the step, then stays as a minimal init: it forwards the usual
//! termination signals to the step, reaps every process that ends up as its
//! child, samples memory when no cgroup does, and when the step ends kills
//! whatever is left so the PID namespace dies with it. It reports to the
//! monitor over a pipe, since a namespace's PID 1 cannot die by most signals.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, dup2_stdin, dup2_stdout, pipe2};
use serde::{Deserialize, Serialize};

use super::step::{self, StepIo};
use super::sys::{self, Forked};
use super::{ContainerSpec, Context, SetupResult, Termination, limits, mounts, namespaces};

/// Signals the monitor and the init pass on towards the step.
pub(super) const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Memory samples come at growing intervals up to this one, so a short step
/// costs no sample at all and a long one a few reads of /proc per second.
const MAX_SAMPLE_INTERVAL: Duration = Duration::from_millis(50);
const FIRST_SAMPLE_INTERVAL: Duration = Duration::from_millis(5);

/// What the init tells the monitor before it exits.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum InitReport {
    Finished {
        termination: Termination,
        sampled_peak_bytes: u64,
    },
    SetupError(String),
}

/// The descriptors the monitor hands to the init.
pub(super) struct InitFds {
    pub io: StepIo,
    /// The host's `/dev/null`, to replace the monitor's stdin and stdout.
    pub null: OwnedFd,
    /// Read end of a pipe whose write end only the monitor holds.
    pub monitor_alive: OwnedFd,
    /// Write end of the pipe the monitor reads the [`InitReport`] from.
    pub report: OwnedFd,
}

/// The blocked signals the monitor and the init receive through a signalfd.
pub(super) fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for signal in FORWARDED {
        set.add(signal);
    }
    set
}

/// Runs as PID 1 until the step is gone; never returns.
pub(super) fn run(spec: &ContainerSpec, fds: InitFds, sample_memory: bool) -> ! {
    let report = match start(spec, &fds) {
        Ok((step, signals)) => supervise(step, &signals, spec.limits.memory_bytes, sample_memory),
        Err(message) => InitReport::SetupError(message),
    };
    let text = serde_json::to_vec(&report).expect("a report always serialises");
    let _ = File::from(fds.report).write_all(&text);
    sys::exit_now(match report {
        InitReport::Finished {
            termination: Termination::Exited { code },
            ..
        } => code,
        _ => 1,
    })
}

/// Becomes the init, builds the container and starts the step.
fn start(spec: &ContainerSpec, fds: &InitFds) -> SetupResult<(Pid, SignalFd)> {
    become_init(fds)?;
    namespaces::enter_rest(spec)?;
    mounts::build_root(spec)?;
    let signals = SignalFd::with_flags(
        &handled_signals(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .context(|| "create the init's signalfd")?;
    let (errors_in, errors_out) =
        pipe2(OFlag::O_CLOEXEC).context(|| "create the step's error pipe")?;
    let step = match sys::fork().context(|| "fork the step process")? {
        Forked::Child => {
            drop(errors_in);
            step::exec(spec, &fds.io, errors_out)
        }
        Forked::Parent(pid) => Pid::from_raw(pid),
    };
    drop(errors_out);
    // The pipe closes at the step's exec; anything read before is an error.
    let mut message = String::new();
    let _ = File::from(errors_in).read_to_string(&mut message);
    if !message.is_empty() {
        let _ = waitpid(step, None);
        return Err(message);
    }
    Ok((step, signals))
}

fn become_init(fds: &InitFds) -> SetupResult<()> {
    prctl::set_pdeathsig(Signal::SIGKILL).context(|| "set the init's parent-death signal")?;
    // The monitor may have died before the line above took effect.
    let mut alive = [PollFd::new(fds.monitor_alive.as_fd(), PollFlags::POLLIN)];
    if poll(&mut alive, PollTimeout::ZERO).is_ok_and(|ready| ready > 0) {
        sys::exit_now(1);
    }
    prctl::set_name(c"seal-init").context(|| "name the init")?;
    // Keeps /proc/1/exe (seal's binary) and /proc/1/mem out of the step's reach.
    prctl::set_dumpable(false).context(|| "make the init non-dumpable")?;
    dup2_stdin(fds.null.as_fd()).context(|| "detach the init's stdin")?;
    dup2_stdout(fds.null.as_fd()).context(|| "detach the init's stdout")
}

/// Waits for the step, forwarding signals and reaping orphans; on the step's
/// end (or a memory overrun) kills all that is left.
fn supervise(step: Pid, signals: &SignalFd, limit: Option<u64>, sample: bool) -> InitReport {
    let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as u64);
    let mut interval = FIRST_SAMPLE_INTERVAL;
    let mut next_sample = Instant::now() + interval;
    let mut peak = 0;
    loop {
        let timeout = if sample {
            poll_timeout(next_sample)
        } else {
            PollTimeout::NONE
        };
        let mut ready = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut ready, timeout);
        while let Ok(Some(info)) = signals.read_signal() {
            let signal = Signal::try_from(info.ssi_signo as i32).ok();
            if let Some(signal) = signal.filter(|s| *s != Signal::SIGCHLD) {
                let _ = kill(step, signal);
            }
        }
        if let Some(status) = reap_until(step) {
            kill_all_and_reap();
            let termination = match status {
                WaitStatus::Signaled(_, signal, _) => Termination::Signaled {
                    signal: signal as i32,
                },
                WaitStatus::Exited(_, code) => Termination::Exited { code },
                _ => Termination::Exited { code: 1 },
            };
            return InitReport::Finished {
                termination,
                sampled_peak_bytes: peak,
            };
        }
        if sample && Instant::now() >= next_sample {
            peak = peak.max(limits::sample_memory(page_size));
            if limit.is_some_and(|limit| peak > limit) {
                kill_all_and_reap();
                let termination = Termination::MemoryExceeded;
                return InitReport::Finished {
                    termination,
                    sampled_peak_bytes: peak,
                };
            }
            interval = (interval * 2).min(MAX_SAMPLE_INTERVAL);
            next_sample = Instant::now() + interval;
        }
    }
}

fn poll_timeout(until: Instant) -> PollTimeout {
    let wait = until.saturating_duration_since(Instant::now());
    PollTimeout::try_from(wait.as_millis() + 1).unwrap_or(PollTimeout::MAX)
}

/// Reaps every child that has ended; returns the step's status once it has.
fn reap_until(step: Pid) -> Option<WaitStatus> {
    let mut step_status = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return step_status,
            Ok(status) if status.pid() == Some(step) => step_status = Some(status),
            Ok(_) => {}
        }
    }
}

/// Kills every other process of the PID namespace and waits for them all.
fn kill_all_and_reap() {
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    while !matches!(waitpid(None, None), Err(Errno::ECHILD)) {}
}
