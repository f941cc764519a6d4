//! The monitor: the `seal __container` process itself.
//!
//! Started fresh by [`super::spawn`], it is single-threaded and so free to
//! fork. It reads the spec from stdin, opens the step's output files while
//! it still sees the host, places itself in a cgroup when one is delegated,
//! creates the user and PID namespaces, and forks the init. Then it waits:
//! for the init (with `wait4`, for CPU time and peak RSS), for the time
//! limit, for signals to forward, and for its stdin to hang up, which means
//! the scheduler died and the container must go too. Finally it writes a
//! [`Report`] on stdout.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::stat::Mode;
use nix::unistd::{Pid, pipe2};
use tracing::debug;

use super::init::{self, InitFds, InitReport};
use super::limits::Cgroup;
use super::spawn::{MAX_SPEC_BYTES, Report};
use super::step::StepIo;
use super::sys::{self, Forked, Reaped};
use super::{ContainerSpec, Context, Enforcement, Outcome, SetupResult, Termination, namespaces};

/// Time between the SIGTERM of a time limit and the SIGKILL that follows.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Entry point of the hidden `seal __container` subcommand; returns the exit code.
pub fn container_main() -> u8 {
    init_logging();
    let _ = nix::sys::prctl::set_name(c"seal-monitor");
    let report = match read_spec().and_then(|spec| supervise(&spec)) {
        Ok(outcome) => Report::Outcome(outcome),
        Err(message) => Report::SetupError(message),
    };
    let mut stdout = io::stdout().lock();
    // A scheduler that is gone reads nothing; that is no error of ours.
    let written = serde_json::to_writer(&mut stdout, &report).is_ok() && stdout.flush().is_ok();
    if written { 0 } else { 1 }
}

/// Logs of the container processes go to stderr, filtered by `SEAL_LOG`.
pub(super) fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SEAL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(io::stderr)
            .try_init();
    }
}

/// Reads the length-prefixed JSON spec the scheduler wrote on stdin.
fn read_spec() -> SetupResult<ContainerSpec> {
    let mut stdin = io::stdin().lock();
    let mut len = [0u8; 4];
    stdin
        .read_exact(&mut len)
        .context(|| "read the spec's length from the scheduler")?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_SPEC_BYTES {
        return Err(format!(
            "read the spec: {len} bytes is more than {MAX_SPEC_BYTES}"
        ));
    }
    let mut body = vec![0; len];
    stdin
        .read_exact(&mut body)
        .context(|| "read the spec from the scheduler")?;
    serde_json::from_slice(&body).map_err(|err| format!("parse the container spec: {err}"))
}

fn validate(spec: &ContainerSpec) -> SetupResult<()> {
    if spec.argv.is_empty() {
        return Err("start the step: its command is empty".into());
    }
    if !spec.cwd.starts_with('/') {
        return Err(format!(
            "use {:?} as the working directory: it is not absolute",
            spec.cwd
        ));
    }
    Ok(())
}

/// Runs the container and measures it.
fn supervise(spec: &ContainerSpec) -> SetupResult<Outcome> {
    validate(spec)?;
    let io = StepIo::open(spec)?;
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| "open /dev/null")?;
    let cgroup = Cgroup::create(&spec.limits);
    let sample_memory = cgroup.is_none();
    let ended = run_container(spec, io, null, sample_memory);
    let (enforcement, usage) = match cgroup {
        Some(cgroup) => (
            Enforcement::Cgroup2 {
                path: cgroup.path.clone(),
            },
            Some(cgroup.finish()),
        ),
        None => (Enforcement::Polling, None),
    };
    let ended = ended?;
    let (mut termination, sampled_peak) = match ended.report {
        Some(InitReport::SetupError(message)) => return Err(message),
        Some(InitReport::Finished {
            termination,
            sampled_peak_bytes,
        }) => (termination, sampled_peak_bytes),
        None => (termination_of(ended.reaped.status), 0),
    };
    if usage.as_ref().is_some_and(|usage| usage.oom_killed) {
        termination = Termination::MemoryExceeded;
    }
    if ended.timed_out {
        termination = Termination::TimedOut;
    }
    let cgroup_peak = usage.map_or(0, |usage| usage.peak_bytes);
    Ok(Outcome {
        termination,
        wall: ended.wall,
        user_cpu: ended.reaped.user_cpu,
        system_cpu: ended.reaped.system_cpu,
        peak_memory_bytes: sampled_peak
            .max(ended.reaped.max_rss_bytes)
            .max(cgroup_peak),
        enforcement,
    })
}

/// How the init ended, as the monitor saw it.
struct Ended {
    reaped: Reaped,
    report: Option<InitReport>,
    wall: Duration,
    timed_out: bool,
}

fn run_container(
    spec: &ContainerSpec,
    io: StepIo,
    null: OwnedFd,
    sample_memory: bool,
) -> SetupResult<Ended> {
    namespaces::enter_user_and_pid(spec.uid, spec.gid)?;
    let (alive_read, alive_write) = pipe2(OFlag::O_CLOEXEC).context(|| "create a pipe")?;
    let (report_read, report_write) = pipe2(OFlag::O_CLOEXEC).context(|| "create a pipe")?;
    // Blocked before the fork, so that no signal is lost or acted on by
    // default before a signalfd takes it.
    let signals = init::handled_signals();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), None).context(|| "block signals")?;
    let started = Instant::now();
    let init = match sys::fork().context(|| "fork the container's init")? {
        Forked::Child => {
            drop((alive_write, report_read));
            let fds = InitFds {
                io,
                null,
                monitor_alive: alive_read,
                report: report_write,
            };
            init::run(spec, fds, sample_memory)
        }
        Forked::Parent(pid) => Pid::from_raw(pid),
    };
    drop((alive_read, report_write, io, null));
    let signalfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context(|| "create the monitor's signalfd");
    let signalfd = match signalfd {
        Ok(fd) => fd,
        Err(message) => {
            let _ = kill(init, Signal::SIGKILL);
            return Err(message);
        }
    };
    let (reaped, timed_out) = watch(init, &signalfd, spec.limits.time, started)?;
    let wall = started.elapsed();
    let mut text = Vec::new();
    let _ = File::from(report_read).read_to_end(&mut text);
    // Held open until here: its hang-up is how the init would learn of our death.
    drop(alive_write);
    let report = serde_json::from_slice(&text).ok();
    Ok(Ended {
        reaped,
        report,
        wall,
        timed_out,
    })
}

/// Waits for the init to end. Returns its usage and whether the time limit
/// struck.
fn watch(
    init: Pid,
    signals: &SignalFd,
    limit: Option<Duration>,
    started: Instant,
) -> SetupResult<(Reaped, bool)> {
    let deadline = limit.map(|limit| started + limit);
    let mut timed_out = false;
    let mut kill_at: Option<Instant> = None;
    let mut scheduler_alive = true;
    let stdin = io::stdin();
    loop {
        let next = kill_at.or(deadline.filter(|_| !timed_out));
        let timeout = next.map_or(PollTimeout::NONE, |at| {
            let wait = at.saturating_duration_since(Instant::now()).as_millis() + 1;
            PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX)
        });
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if scheduler_alive {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        let _ = poll(&mut fds, timeout);
        if fds
            .get(1)
            .and_then(PollFd::revents)
            .is_some_and(|events| !events.is_empty())
        {
            debug!("the scheduler is gone: killing the container");
            scheduler_alive = false;
            let _ = kill(init, Signal::SIGKILL);
        }
        while let Ok(Some(info)) = signals.read_signal() {
            let signal = Signal::try_from(info.ssi_signo as i32).ok();
            if let Some(signal) = signal.filter(|s| *s != Signal::SIGCHLD) {
                let _ = kill(init, signal);
            }
        }
        if let Some(reaped) = sys::wait4_nohang(init.as_raw()).context(|| "wait for the init")? {
            return Ok((reaped, timed_out));
        }
        let now = Instant::now();
        if kill_at.is_some_and(|at| now >= at) {
            kill_at = None;
            let _ = kill(init, Signal::SIGKILL);
        } else if !timed_out && deadline.is_some_and(|at| now >= at) {
            debug!("time limit reached: terminating the container");
            timed_out = true;
            kill_at = Some(now + KILL_GRACE);
            let _ = kill(init, Signal::SIGTERM);
        }
    }
}

/// The termination of an init that could not report (it was killed).
fn termination_of(status: i32) -> Termination {
    if libc::WIFSIGNALED(status) {
        Termination::Signaled {
            signal: libc::WTERMSIG(status),
        }
    } else {
        Termination::Exited {
            code: libc::WEXITSTATUS(status),
        }
    }
}
