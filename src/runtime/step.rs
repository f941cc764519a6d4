//! The step process: a fork of the init that drops everything it does not
//! need and becomes the step's program.
//!
//! Failures before `execve` (a missing working directory, a capability the
//! kernel would not drop) are setup errors and go back to the init over a
//! close-on-exec pipe. A program that cannot be found or run is the step's
//! own failure and ends like a shell would: a message on the step's stderr
//! and exit status 127 (not found) or 126 (not executable).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};

use caps::CapSet;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, dup2_stderr, dup2_stdin, dup2_stdout, execve};

use super::{ContainerSpec, Context, SetupResult, sys};

/// `PATH` when the step's environment has none (the one Docker uses).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The step's output files, opened by the monitor on the host.
pub(super) struct StepIo {
    pub stdout: File,
    pub stderr: File,
}

/// Runs in the forked step process; never returns.
pub(super) fn exec(spec: &ContainerSpec, io: &StepIo, error_pipe: OwnedFd) -> ! {
    if let Err(message) = prepare(spec, io) {
        let _ = File::from(error_pipe).write_all(message.as_bytes());
        sys::exit_now(126);
    }
    let errno = exec_argv(&spec.argv, &spec.env);
    let name = &spec.argv[0];
    let (code, why) = match errno {
        Errno::ENOENT => (
            127,
            format!("command not found (PATH={})", search_path(&spec.env)),
        ),
        errno => (126, errno.desc().to_string()),
    };
    let _ = writeln!(std::io::stderr(), "seal: cannot execute {name}: {why}");
    sys::exit_now(code)
}

/// Everything between fork and exec, in an order that keeps the rights
/// each part needs until it is done.
fn prepare(spec: &ContainerSpec, io: &StepIo) -> SetupResult<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .context(|| "unblock signals")?;
    sys::default_sigpipe().context(|| "restore the default SIGPIPE action")?;
    chdir(spec.cwd.as_str()).context(|| format!("change to the working directory {}", spec.cwd))?;
    redirect(io)?;
    // A core dump of a step would land in its working directory.
    setrlimit(Resource::RLIMIT_CORE, 0, 0).context(|| "disable core dumps")?;
    nix::sys::prctl::set_no_new_privs().context(|| "set no_new_privs")?;
    drop_capabilities()?;
    close_inherited()
}

fn redirect(io: &StepIo) -> SetupResult<()> {
    let null = open(
        "/dev/null",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context(|| "open /dev/null for the step's stdin")?;
    dup2_stdin(null).context(|| "redirect the step's stdin")?;
    dup2_stdout(io.stdout.as_fd()).context(|| "redirect the step's stdout")?;
    dup2_stderr(io.stderr.as_fd()).context(|| "redirect the step's stderr")
}

/// Empties all five capability sets. The bounding set goes first (dropping
/// from it needs CAP_SETPCAP), permitted and effective last.
fn drop_capabilities() -> SetupResult<()> {
    for set in [
        CapSet::Ambient,
        CapSet::Bounding,
        CapSet::Inheritable,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|err| format!("clear the {set:?} capabilities: {err}"))?;
    }
    Ok(())
}

/// Every descriptor above 2 closes at exec.
fn close_inherited() -> SetupResult<()> {
    match sys::cloexec_from(3) {
        Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => cloexec_listed(),
        other => other.context(|| "mark inherited descriptors close-on-exec"),
    }
}

/// The slow way for kernels before 5.11: every descriptor in /proc/self/fd.
fn cloexec_listed() -> SetupResult<()> {
    let fds: Vec<i32> = fs_err::read_dir("/proc/self/fd")
        .context(|| "list /proc/self/fd")?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        sys::set_cloexec_raw(fd);
    }
    Ok(())
}

/// The `PATH` from the step's environment.
fn search_path(env: &[String]) -> &str {
    env.iter()
        .find_map(|var| var.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
}

/// Executes `argv` with exactly `env`, looking up a bare `argv[0]` in the
/// environment's `PATH` like `execvpe`. Returns only on failure: `ENOENT`
/// when nothing was found, else the most telling error seen.
fn exec_argv(argv: &[String], env: &[String]) -> Errno {
    let (Some(args), Some(vars)) = (c_strings(argv), c_strings(env)) else {
        return Errno::EINVAL;
    };
    let name = &argv[0];
    if name.contains('/') {
        return exec_one(&args[0], &args, &vars);
    }
    let mut found = Errno::ENOENT;
    for dir in search_path(env).split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let Ok(path) = CString::new(format!("{}/{name}", dir.trim_end_matches('/'))) else {
            continue;
        };
        match exec_one(&path, &args, &vars) {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => {}
            Errno::EACCES => found = Errno::EACCES,
            errno => return errno,
        }
    }
    found
}

/// One `execve`, and like `execvp` a file without a known format is run by
/// `/bin/sh`.
fn exec_one(path: &CStr, args: &[CString], vars: &[CString]) -> Errno {
    let Err(errno) = execve(path, args, vars);
    if errno != Errno::ENOEXEC {
        return errno;
    }
    let mut shell_args = vec![c"/bin/sh".to_owned(), path.to_owned()];
    shell_args.extend_from_slice(&args[1..]);
    let Err(errno) = execve(c"/bin/sh", &shell_args, vars);
    errno
}

fn c_strings(strings: &[String]) -> Option<Vec<CString>> {
    strings
        .iter()
        .map(|s| CString::new(s.as_bytes()).ok())
        .collect()
}

impl StepIo {
    /// Opens (creating or truncating) the step's output files on the host;
    /// one file when both paths are the same, so that the streams append to
    /// each other instead of overwriting each other.
    pub fn open(spec: &ContainerSpec) -> SetupResult<StepIo> {
        let create = |path: &std::path::Path| {
            fs_err::File::create(path)
                .map(|file| file.into_parts().0)
                .context(|| format!("create the step's output file {}", path.display()))
        };
        let stdout = create(&spec.stdout)?;
        let stderr = if spec.stderr == spec.stdout {
            stdout
                .try_clone()
                .context(|| "share the step's output file")?
        } else {
            create(&spec.stderr)?
        };
        Ok(StepIo { stdout, stderr })
    }
}
