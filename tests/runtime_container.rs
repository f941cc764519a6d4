//! End-to-end tests of the built-in runtime: each test builds a busybox
//! rootfs in its own temporary directory, runs the real `seal` binary on a
//! container spec (`seal __container --run-spec`) and checks what the step
//! saw and what the outcome says.
//!
//! When the suite runs as root (as CI does), the tests that matter for
//! rootless use run a second time as an ordinary user.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use seal::runtime::{BindMount, ContainerSpec, Enforcement, Limits, Outcome, Termination};

const SEAL: &str = env!("CARGO_BIN_EXE_seal");

/// Who runs `seal`: the test's own user, or an ordinary (non-root) one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum As {
    Invoker,
    Ordinary,
}

/// A temporary directory with a busybox rootfs, a writable sandbox (bound at
/// /work by default) and the step's log files.
struct Fixture {
    dir: tempfile::TempDir,
    runner: As,
}

/// What one container run gave.
struct Ran {
    outcome: Result<Outcome, String>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn outcome(&self) -> &Outcome {
        match &self.outcome {
            Ok(outcome) => outcome,
            Err(err) => panic!(
                "container failed to run: {err}\nstep stderr: {}",
                self.stderr
            ),
        }
    }

    fn exited_ok(&self) -> &str {
        let outcome = self.outcome();
        assert_eq!(
            outcome.termination,
            Termination::Exited { code: 0 },
            "{}",
            self.stderr
        );
        &self.stdout
    }
}

/// The uid and gid of an ordinary user to re-run tests as (root only).
fn ordinary_user() -> (u32, u32) {
    static USER: OnceLock<(u32, u32)> = OnceLock::new();
    *USER.get_or_init(|| {
        let find = || {
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
            passwd.lines().find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                let uid: u32 = fields.get(2)?.parse().ok()?;
                let gid: u32 = fields.get(3)?.parse().ok()?;
                ((1000..60000).contains(&uid) || fields[0] == "seal-test").then_some((uid, gid))
            })
        };
        if let Some(user) = find() {
            return user;
        }
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "seal-test",
            ])
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd seal-test failed");
        find().expect("the user just created")
    })
}

fn ordinary_user_can_run_seal() -> bool {
    static CAN: OnceLock<bool> = OnceLock::new();
    *CAN.get_or_init(|| {
        let (uid, gid) = ordinary_user();
        let status = Command::new(SEAL)
            .arg("--version")
            .uid(uid)
            .gid(gid)
            .output();
        status.is_ok_and(|output| output.status.success())
    })
}

fn is_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// The runners a rootless-relevant test runs under.
fn runners() -> Vec<As> {
    if is_root() {
        vec![As::Invoker, As::Ordinary]
    } else {
        vec![As::Invoker]
    }
}

impl Fixture {
    fn new(runner: As) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("seal-rt-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        let fixture = Fixture { dir, runner };
        fixture.build_rootfs();
        for writable in ["sandbox", "logs"] {
            std::fs::create_dir(fixture.path(writable)).unwrap();
            fixture.give_to_runner(&fixture.path(writable));
        }
        fixture
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn build_rootfs(&self) {
        let root = self.path("rootfs");
        for dir in [
            "bin", "proc", "dev", "sys", "tmp", "work", "root", "etc", "data",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        let passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/work:/bin/sh\n";
        std::fs::write(root.join("etc/passwd"), passwd).unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
    }

    fn give_to_runner(&self, path: &Path) {
        if self.runner == As::Ordinary {
            let (uid, gid) = ordinary_user();
            std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    /// A spec running `sh -c script` as root in the container, with the
    /// sandbox bound writable at /work and a tmpfs at /tmp.
    fn spec(&self, script: &str) -> ContainerSpec {
        ContainerSpec {
            rootfs: self.path("rootfs"),
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/work".into(),
            uid: 0,
            gid: 0,
            hostname: "step".into(),
            mounts: vec![BindMount {
                source: self.path("sandbox"),
                target: "/work".into(),
                readonly: false,
            }],
            tmpfs: vec!["/tmp".into()],
            network: false,
            limits: Limits::default(),
            stdout: self.path("logs/stdout"),
            stderr: self.path("logs/stderr"),
        }
    }

    /// The command that runs `spec` with the real binary, as the runner.
    fn command(&self, spec: &ContainerSpec) -> Command {
        let file = self.path("spec.json");
        std::fs::write(&file, serde_json::to_vec(spec).unwrap()).unwrap();
        let mut command = Command::new(self.binary());
        command.args(["__container", "--run-spec"]).arg(&file);
        if self.runner == As::Ordinary {
            let (uid, gid) = ordinary_user();
            command.uid(uid).gid(gid);
        }
        command
    }

    /// The `seal` binary, copied into the fixture when the ordinary user
    /// cannot reach the build directory (a checkout under /root, say).
    fn binary(&self) -> PathBuf {
        if self.runner == As::Invoker || ordinary_user_can_run_seal() {
            return PathBuf::from(SEAL);
        }
        let copy = self.path("seal");
        if !copy.exists() {
            std::fs::copy(SEAL, &copy).unwrap();
        }
        copy
    }

    fn run(&self, spec: &ContainerSpec) -> Ran {
        let output = self.command(spec).output().expect("run seal");
        self.ran(output)
    }

    fn ran(&self, output: Output) -> Ran {
        let read = |name| std::fs::read_to_string(self.path(name)).unwrap_or_default();
        let outcome = if output.status.success() {
            Ok(serde_json::from_slice(&output.stdout).expect("the outcome is JSON"))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        };
        Ran {
            outcome,
            stdout: read("logs/stdout"),
            stderr: read("logs/stderr"),
        }
    }

    fn sh(&self, script: &str) -> Ran {
        self.run(&self.spec(script))
    }

    fn runner_uid(&self) -> u32 {
        match self.runner {
            As::Invoker => nix::unistd::getuid().as_raw(),
            As::Ordinary => ordinary_user().0,
        }
    }
}

#[test]
fn the_step_is_root_inside_and_its_files_belong_to_the_invoking_user() {
    for runner in runners() {
        let fixture = Fixture::new(runner);
        let ran = fixture.sh("id -u; id -g; touch /work/made-inside; mkdir /work/dir");
        assert_eq!(ran.exited_ok(), "0\n0\n", "as {runner:?}");
        for name in ["made-inside", "dir"] {
            let meta = std::fs::metadata(fixture.path("sandbox").join(name)).unwrap();
            assert_eq!(meta.uid(), fixture.runner_uid(), "{name} as {runner:?}");
        }
    }
}

#[test]
fn a_spec_uid_of_1000_is_seen_inside() {
    for runner in runners() {
        let fixture = Fixture::new(runner);
        let mut spec =
            fixture.spec("id -u; id -g; touch /work/by-1000; grep Cap /proc/self/status");
        (spec.uid, spec.gid) = (1000, 1000);
        let ran = fixture.run(&spec);
        let out = ran.exited_ok();
        assert!(out.starts_with("1000\n1000\n"), "as {runner:?}: {out}");
        assert!(
            out.lines()
                .skip(2)
                .all(|line| line.ends_with("0000000000000000")),
            "{out}"
        );
        let meta = std::fs::metadata(fixture.path("sandbox/by-1000")).unwrap();
        assert_eq!(meta.uid(), fixture.runner_uid());
    }
}

#[test]
fn host_files_outside_the_mounts_are_invisible() {
    let fixture = Fixture::new(As::Invoker);
    std::fs::write(fixture.path("secret"), "host secret").unwrap();
    let secret = fixture.path("secret");
    let script = format!(
        "ls -A /; test -e {} && echo LEAK; ls /root | wc -l",
        secret.display()
    );
    let out = fixture.sh(&script).exited_ok().to_string();
    let mut expected: Vec<String> = std::fs::read_dir(fixture.path("rootfs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    expected.sort();
    let listed: Vec<&str> = out.lines().take(expected.len()).collect();
    assert_eq!(listed, expected);
    assert!(!out.contains("LEAK"), "{out}");
}

#[test]
fn pid_1_is_the_init_and_only_the_containers_processes_are_visible() {
    let fixture = Fixture::new(As::Invoker);
    let out = fixture
        .sh("cat /proc/1/comm; echo $$; ps -o pid | tail -n +2")
        .exited_ok()
        .to_string();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("seal-init"));
    assert_eq!(
        lines.next(),
        Some("2"),
        "the step is the init's first child"
    );
    let pids: Vec<u32> = lines.map(|l| l.trim().parse().unwrap()).collect();
    assert!(
        pids.len() <= 4 && pids.contains(&1) && pids.contains(&2),
        "ps saw {pids:?}"
    );
}

#[test]
fn only_loopback_exists_and_it_is_up() {
    let fixture = Fixture::new(As::Invoker);
    let out = fixture
        .sh("ls /sys/class/net; cat /sys/class/net/lo/flags; hostname")
        .exited_ok()
        .to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "interfaces: {out}");
    let flags = u32::from_str_radix(lines[1].trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is up (IFF_UP)");
    assert_eq!(lines[2], "step");
    let net_dev = fixture
        .sh("tail -n +3 /proc/net/dev | cut -d: -f1")
        .exited_ok()
        .to_string();
    assert_eq!(net_dev.trim(), "lo");
}

#[test]
fn a_step_with_network_shares_the_hosts_interfaces() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("tail -n +3 /proc/net/dev | cut -d: -f1");
    spec.network = true;
    let seen: BTreeSet<String> = fixture
        .run(&spec)
        .exited_ok()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let host = std::fs::read_to_string("/proc/net/dev").unwrap();
    let host: BTreeSet<String> = host
        .lines()
        .skip(2)
        .filter_map(|line| Some(line.split_once(':')?.0.trim().to_string()))
        .collect();
    assert_eq!(seen, host);
}

#[test]
fn the_rootfs_and_read_only_binds_refuse_writes_while_tmp_and_work_accept_them() {
    for runner in runners() {
        let fixture = Fixture::new(runner);
        std::fs::create_dir(fixture.path("input")).unwrap();
        std::fs::write(fixture.path("input/data.txt"), "input bytes").unwrap();
        // Writable by anyone, so that only the read-only mount can refuse.
        for path in ["input", "input/data.txt"] {
            std::fs::set_permissions(fixture.path(path), PermissionsExt::from_mode(0o777)).unwrap();
        }
        let mut spec = fixture.spec(
            "touch /etc/new 2>&1; touch /data/in/new 2>&1; (echo x >> /data/in/data.txt) 2>&1; \
             cat /data/in/data.txt; echo; ls -A /tmp | wc -l; echo t > /tmp/t && cat /tmp/t; \
             echo w > /work/w && cat /work/w",
        );
        spec.mounts.push(BindMount {
            source: fixture.path("input"),
            target: "/data/in".into(),
            readonly: true,
        });
        std::fs::create_dir(fixture.path("rootfs/data/in")).unwrap();
        let out = fixture.run(&spec).exited_ok().to_string();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].contains("Read-only file system"),
            "rootfs as {runner:?}: {out}"
        );
        assert!(lines[1].contains("Read-only file system"), "ro bind: {out}");
        assert!(
            lines[2].contains("Read-only file system"),
            "ro bind file: {out}"
        );
        assert_eq!(&lines[3..], ["input bytes", "0", "t", "w"], "{out}");
        assert_eq!(
            std::fs::read_to_string(fixture.path("input/data.txt")).unwrap(),
            "input bytes"
        );
    }
}

#[test]
fn devices_work_but_their_host_nodes_cannot_be_changed() {
    let fixture = Fixture::new(As::Invoker);
    let before = std::fs::metadata("/dev/null").unwrap().modified().unwrap();
    let script = "echo discarded > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c; \
                  touch /dev/null 2>&1; ls /dev/pts/ptmx /dev/shm >/dev/null && echo ok";
    let out = fixture.sh(script).exited_ok().to_string();
    assert_eq!(
        out,
        "null-ok\n4\ntouch: /dev/null: Read-only file system\nok\n"
    );
    assert_eq!(
        std::fs::metadata("/dev/null").unwrap().modified().unwrap(),
        before
    );
}

#[test]
fn stdout_and_stderr_may_share_one_file() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("echo one; echo two >&2; echo three");
    spec.stderr = spec.stdout.clone();
    fixture.run(&spec).exited_ok();
    let log = std::fs::read_to_string(&spec.stdout).unwrap();
    assert_eq!(log, "one\ntwo\nthree\n");
}

#[test]
fn tmp_is_private_to_each_container() {
    let fixture = Fixture::new(As::Invoker);
    fixture.sh("echo one > /tmp/mine").exited_ok();
    assert_eq!(fixture.sh("ls -A /tmp").exited_ok(), "");
}

#[test]
fn environment_and_working_directory_are_exactly_the_specs() {
    let fixture = Fixture::new(As::Invoker);
    std::fs::create_dir(fixture.path("sandbox/sub")).unwrap();
    let mut spec = fixture.spec("");
    spec.argv = vec!["cat".into(), "/proc/self/environ".into()];
    spec.env = vec!["PATH=/bin".into(), "A=1".into(), "WITH SPACE=x y".into()];
    spec.cwd = "/work/sub".into();
    let ran = fixture.run(&spec);
    assert_eq!(ran.exited_ok(), "PATH=/bin\0A=1\0WITH SPACE=x y\0");
    spec.argv = vec!["pwd".into()];
    assert_eq!(fixture.run(&spec).exited_ok(), "/work/sub\n");
}

#[test]
fn exit_codes_and_deaths_by_signal_are_reported() {
    let fixture = Fixture::new(As::Invoker);
    let outcome = fixture.sh("exit 3").outcome().clone();
    assert_eq!(outcome.termination, Termination::Exited { code: 3 });
    let outcome = fixture.sh("kill -KILL $$").outcome().clone();
    assert_eq!(outcome.termination, Termination::Signaled { signal: 9 });
    let outcome = fixture.sh("kill -SEGV $$").outcome().clone();
    assert_eq!(outcome.termination, Termination::Signaled { signal: 11 });
}

#[test]
fn a_missing_or_unexecutable_program_fails_like_a_shell() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("");
    spec.argv = vec!["no-such-tool".into(), "arg".into()];
    let ran = fixture.run(&spec);
    assert_eq!(ran.outcome().termination, Termination::Exited { code: 127 });
    assert!(
        ran.stderr.contains("no-such-tool: command not found"),
        "{}",
        ran.stderr
    );
    std::fs::write(fixture.path("sandbox/not-exec"), "#!/bin/sh\necho hi\n").unwrap();
    spec.argv = vec!["/work/not-exec".into()];
    let ran = fixture.run(&spec);
    assert_eq!(ran.outcome().termination, Termination::Exited { code: 126 });
    assert!(
        ran.stderr.contains("/work/not-exec: Permission denied"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_step_over_its_time_limit_is_timed_out() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("sleep 30");
    spec.limits.time = Some(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = fixture.run(&spec).outcome().clone();
    assert_eq!(outcome.termination, Termination::TimedOut);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        outcome.wall >= Duration::from_millis(300),
        "{:?}",
        outcome.wall
    );
}

#[test]
fn a_step_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("trap '' TERM; while :; do sleep 1; done");
    spec.limits.time = Some(Duration::from_millis(200));
    let outcome = fixture.run(&spec).outcome().clone();
    assert_eq!(outcome.termination, Termination::TimedOut);
    assert!(outcome.wall < Duration::from_secs(8), "{:?}", outcome.wall);
}

#[test]
fn a_step_over_its_memory_limit_is_stopped_and_reported() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("tail /dev/zero");
    spec.limits.memory_bytes = Some(64 << 20);
    spec.limits.time = Some(Duration::from_secs(60));
    let outcome = fixture.run(&spec).outcome().clone();
    assert_eq!(outcome.termination, Termination::MemoryExceeded);
    assert!(
        outcome.peak_memory_bytes > 64 << 20,
        "peak {}",
        outcome.peak_memory_bytes
    );
    if outcome.enforcement == Enforcement::Polling {
        eprintln!("note: memory limit enforced by polling (no delegated cgroup v2 here)");
    }
}

#[test]
fn resource_use_is_measured() {
    let fixture = Fixture::new(As::Invoker);
    let outcome = fixture
        .sh("x=$(head -c 30000000 /dev/zero | tr '\\0' a); echo ${#x}")
        .outcome()
        .clone();
    assert_eq!(outcome.termination, Termination::Exited { code: 0 });
    assert!(
        outcome.peak_memory_bytes >= 30_000_000,
        "peak {}",
        outcome.peak_memory_bytes
    );
    assert!(outcome.user_cpu + outcome.system_cpu > Duration::ZERO);
    assert!(outcome.wall > Duration::ZERO);
}

#[test]
fn the_step_has_no_capabilities_no_new_privileges_and_no_inherited_descriptors() {
    let fixture = Fixture::new(As::Invoker);
    let leaked = std::fs::File::open("/etc/passwd").unwrap();
    // Inheritable across exec, as a careless parent process would leave it.
    nix::fcntl::fcntl(
        &leaked,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let out = fixture
        .sh("grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ls /proc/$$/fd; true")
        .exited_ok()
        .to_string();
    drop(leaked);
    let lines: Vec<&str> = out.lines().collect();
    for line in &lines[..5] {
        assert!(
            line.starts_with("Cap") && line.ends_with("0000000000000000"),
            "{line}"
        );
    }
    assert_eq!(lines[5], "NoNewPrivs:\t1");
    let fds: BTreeSet<&str> = lines[6..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    assert_eq!(
        fds,
        BTreeSet::from(["0", "1", "2"]),
        "the shell's descriptors"
    );
}

#[test]
fn setup_errors_name_what_failed_and_the_path() {
    let fixture = Fixture::new(As::Invoker);
    let mut spec = fixture.spec("true");
    spec.mounts.push(BindMount {
        source: fixture.path("sandbox"),
        target: "/not/in/image".into(),
        readonly: true,
    });
    let ran = fixture.run(&spec);
    let err = ran.outcome.unwrap_err();
    assert!(err.contains("failed to set up the container"), "{err}");
    assert!(
        err.contains("/not/in/image") && err.contains("does not exist"),
        "{err}"
    );

    let mut spec = fixture.spec("true");
    spec.mounts[0].source = fixture.path("missing-source");
    let err = fixture.run(&spec).outcome.unwrap_err();
    assert!(
        err.contains("missing-source") && err.contains("No such file"),
        "{err}"
    );

    // An image cannot redirect a mount through a symbolic link.
    std::os::unix::fs::symlink("/work", fixture.path("rootfs/link")).unwrap();
    let mut spec = fixture.spec("true");
    spec.tmpfs.push("/link/elsewhere".into());
    let err = fixture.run(&spec).outcome.unwrap_err();
    assert!(
        err.contains("/link/elsewhere") && err.contains("symbolic link"),
        "{err}"
    );

    // Nothing is created inside a read-only mount.
    let mut spec = fixture.spec("true");
    spec.mounts[0].readonly = true;
    spec.tmpfs.clear();
    spec.mounts.push(BindMount {
        source: fixture.path("logs"),
        target: "/work/new".into(),
        readonly: false,
    });
    let err = fixture.run(&spec).outcome.unwrap_err();
    assert!(err.contains("read-only mount on /work"), "{err}");
    assert!(!fixture.path("sandbox/new").exists());

    let mut spec = fixture.spec("true");
    spec.cwd = "/work/absent".into();
    let err = fixture.run(&spec).outcome.unwrap_err();
    assert!(err.contains("working directory /work/absent"), "{err}");
}

#[test]
fn missing_mountpoints_below_a_writable_bind_are_created_on_the_host() {
    for runner in runners() {
        let fixture = Fixture::new(runner);
        std::fs::write(fixture.path("input.txt"), "payload").unwrap();
        let mut spec =
            fixture.spec("cat /work/in/deep/input.txt; echo; echo x > /work/in/deep/input.txt");
        spec.mounts.push(BindMount {
            source: fixture.path("input.txt"),
            target: "/work/in/deep/input.txt".into(),
            readonly: true,
        });
        let ran = fixture.run(&spec);
        assert_eq!(
            ran.outcome().termination,
            Termination::Exited { code: 1 },
            "{}",
            ran.stderr
        );
        assert_eq!(ran.stdout, "payload\n");
        assert!(
            ran.stderr.contains("Read-only file system"),
            "{}",
            ran.stderr
        );
        let created = fixture.path("sandbox/in/deep/input.txt");
        let meta = std::fs::metadata(&created).unwrap();
        assert_eq!(
            (meta.len(), meta.uid()),
            (0, fixture.runner_uid()),
            "as {runner:?}"
        );
    }
}

#[test]
fn a_rootless_run_leaves_no_root_owned_file_behind() {
    if !is_root() {
        eprintln!("skipped: already running as an ordinary user, nothing to compare against");
        return;
    }
    let fixture = Fixture::new(As::Ordinary);
    let mut spec =
        fixture.spec("mkdir -p /work/a/b; echo x > /work/a/b/f; ln -s f /work/a/l; touch /work/m");
    spec.mounts.push(BindMount {
        source: fixture.path("sandbox/a"),
        target: "/work/again".into(),
        readonly: false,
    });
    std::fs::create_dir(fixture.path("sandbox/a")).unwrap();
    fixture.give_to_runner(&fixture.path("sandbox/a"));
    fixture.run(&spec).exited_ok();
    let (uid, _) = ordinary_user();
    for dir in ["sandbox", "logs"] {
        for entry in walk(&fixture.path(dir)) {
            let meta = std::fs::symlink_metadata(&entry).unwrap();
            assert_eq!(
                meta.uid(),
                uid,
                "{} is owned by uid {}",
                entry.display(),
                meta.uid()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.symlink_metadata().unwrap().is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Processes (pid, ppid) whose command line contains `marker`, zombies left out.
fn live_processes(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) && process_state(pid).is_some_and(|s| s != 'Z') {
            found.push(pid);
        }
    }
    found
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split(' ').nth(1));
        if ppid.and_then(|p| p.parse().ok()) == Some(parent) {
            found.push(pid);
        }
    }
    found
}

/// Polls `check` for up to 10 s.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts a long-running step; returns the `seal` process, its monitor and the marker.
fn start_sleeper(fixture: &Fixture, script: &str) -> (Child, u32, String) {
    // Unique per call: tests run in parallel and must not see each other's steps.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let marker = format!(
        "{}",
        1_000_000_000 + (std::process::id() % 100_000) * 1000 + call
    );
    let spec = fixture.spec(&script.replace("MARKER", &marker));
    let child = fixture
        .command(&spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let child = child.unwrap();
    let seal_pid = child.id();
    assert!(
        eventually(|| !live_processes(&marker).is_empty()),
        "the step never started"
    );
    let monitors = children_of(seal_pid);
    assert_eq!(monitors.len(), 1, "one monitor under seal: {monitors:?}");
    (child, monitors[0], marker)
}

#[test]
fn killing_seal_leaves_no_container_process_behind() {
    let fixture = Fixture::new(As::Invoker);
    let (mut seal, monitor, marker) = start_sleeper(&fixture, "sleep MARKER & sleep MARKER; wait");
    seal.kill().unwrap();
    seal.wait().unwrap();
    assert!(
        eventually(|| live_processes(&marker).is_empty()),
        "container processes outlived seal: {:?}",
        live_processes(&marker)
    );
    assert!(
        eventually(|| process_state(monitor).is_none_or(|s| s == 'Z')),
        "monitor lives on"
    );
}

#[test]
fn killing_the_monitor_takes_the_container_with_it() {
    let fixture = Fixture::new(As::Invoker);
    let (seal, monitor, marker) = start_sleeper(&fixture, "sleep MARKER & sleep MARKER; wait");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    let ran = fixture.ran(seal.wait_with_output().unwrap());
    let err = ran.outcome.unwrap_err();
    assert!(err.contains("monitor process ended"), "{err}");
    assert!(
        eventually(|| live_processes(&marker).is_empty()),
        "container processes outlived their monitor: {:?}",
        live_processes(&marker)
    );
}

#[test]
fn signals_sent_to_the_monitor_reach_the_step() {
    let fixture = Fixture::new(As::Invoker);
    let script = "trap 'echo got-term; exit 42' TERM; sleep MARKER & wait";
    let (seal, monitor, _) = start_sleeper(&fixture, script);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let ran = fixture.ran(seal.wait_with_output().unwrap());
    assert_eq!(ran.outcome().termination, Termination::Exited { code: 42 });
    assert_eq!(ran.stdout, "got-term\n");
}

#[test]
fn seals_binary_is_out_of_the_containers_reach() {
    let fixture = Fixture::new(As::Invoker);
    // The init is non-dumpable: its exe link cannot even be read.
    let out = fixture
        .sh("readlink /proc/1/exe || echo no-link; echo x >> /proc/1/exe || echo no-write")
        .exited_ok()
        .to_string();
    assert!(out.contains("no-link") && out.contains("no-write"), "{out}");

    // A step whose program is a `#!/proc/self/exe` script makes the kernel
    // run seal's own binary inside the container, the CVE-2019-5736 path.
    std::fs::write(fixture.path("sandbox/evil"), "#!/proc/self/exe\n").unwrap();
    let evil = fixture.path("sandbox/evil");
    std::fs::set_permissions(&evil, PermissionsExt::from_mode(0o755)).unwrap();
    let mut spec = fixture.spec("");
    spec.argv = vec!["/work/evil".into()];
    let ran = fixture.run(&spec);
    assert!(
        ran.stderr.contains("/work/evil"),
        "seal ran inside: {}",
        ran.stderr
    );

    // What it reached is a sealed memfd, never seal's file: hold it open
    // while the container runs, then try to write it once no one executes it.
    let (seal, monitor, _) = start_sleeper(&fixture, "sleep MARKER");
    let exe = format!("/proc/{monitor}/exe");
    let link = std::fs::read_link(&exe).unwrap();
    assert!(
        link.to_string_lossy().starts_with("/memfd:"),
        "monitor runs {}",
        link.display()
    );
    let held = std::fs::File::open(&exe).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor as i32),
        nix::sys::signal::SIGKILL,
    )
    .unwrap();
    fixture.ran(seal.wait_with_output().unwrap());
    let reopened = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let written = std::fs::OpenOptions::new()
        .append(true)
        .open(&reopened)
        .and_then(|mut file| std::io::Write::write_all(&mut file, b"pwned\n"));
    assert!(written.is_err(), "seal's executable could be rewritten");
}

#[test]
fn a_host_without_user_namespaces_gets_a_clear_error() {
    // The limit on user namespaces is per user namespace: inside one made by
    // `unshare`, set it to 0, as a host with them disabled would have it.
    let fixture = Fixture::new(As::Invoker);
    let spec = fixture.spec("true");
    let file = fixture.path("spec.json");
    std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; \
         exec {SEAL} __container --run-spec {}",
        file.display()
    );
    let output = Command::new("unshare")
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .output();
    let Ok(output) = output else {
        eprintln!("skipped: `unshare` (util-linux) is not installed");
        return;
    };
    if output.status.code() == Some(99) {
        eprintln!("skipped: cannot lower user.max_user_namespaces in a user namespace here");
        return;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("unprivileged user namespaces look disabled"),
        "{stderr}"
    );
    assert!(stderr.contains("user.max_user_namespaces"), "{stderr}");
}
