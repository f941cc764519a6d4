//! What a step sees from inside its container, checked from inside, both
//! when seal runs as root and as an ordinary user.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{Env, root_owned, text};

/// A step that probes its own sandbox and writes what it found.
fn probe_pipeline(image: &str) -> String {
    format!(
        r#"
seal: 1
name: probe
images: {{ bb: {image} }}
steps:
  probe:
    image: bb
    inputs: {{ declared: data/declared.txt }}
    outputs: {{ report: report.txt, made: made.txt }}
    run: |
      exec > report.txt 2>&1
      echo "uid=$(id -u)"
      echo "pwd=$(pwd)"
      echo "greeting=$GREETING"
      echo "declared=$(cat data/declared.txt)"
      test -e secret.txt && echo "secret=visible" || echo "secret=hidden"
      test -e /etc/os-release && echo "hostfs=visible" || echo "hostfs=hidden"
      echo "pid1=$(cat /proc/1/comm)"
      echo "procs=$(ls -d /proc/[0-9]* | wc -l)"
      echo "netifs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ',')"
      touch /bin/intruder 2>/dev/null && echo "rootfs=writable" || echo "rootfs=readonly"
      echo x > data/declared.txt 2>/dev/null && echo "input=writable" || echo "input=readonly"
      touch /tmp/scratch && echo "tmp=writable" || echo "tmp=readonly"
      grep CapEff /proc/self/status | tr -d '\t'
      grep NoNewPrivs /proc/self/status | tr -d '\t'
      echo "fds=$(ls /proc/self/fd | wc -l)"
      echo made > made.txt
"#
    )
}

fn probe(env: &Env) -> (String, std::path::PathBuf) {
    let image = env.busybox_image(
        "test/probe:1",
        &["--env", "GREETING=hello", "--workdir", "/data"],
    );
    env.write("data/declared.txt", "yes");
    env.write("secret.txt", "not declared");
    env.write("probe.yaml", &probe_pipeline(&image));
    let output = env.seal(&["run", "probe.yaml", "--out", "out"]);
    assert!(
        output.status.success(),
        "run failed:\n{}",
        text(&output.stderr)
    );
    let results = env.path().join("out/results");
    (
        std::fs::read_to_string(results.join("report.txt")).unwrap(),
        results,
    )
}

fn assert_isolated(report: &str) {
    let host_init = std::fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let expect = [
        "uid=0",
        "pwd=/data",
        "greeting=hello",
        "declared=yes",
        "secret=hidden",
        "hostfs=hidden",
        "netifs=lo,",
        "rootfs=readonly",
        "input=readonly",
        "tmp=writable",
        "CapEff:0000000000000000",
        "NoNewPrivs:1",
    ];
    for line in expect {
        assert!(
            report.lines().any(|l| l == line),
            "expected `{line}` in:\n{report}"
        );
    }
    let pid1 = report
        .lines()
        .find_map(|l| l.strip_prefix("pid1="))
        .unwrap();
    assert_ne!(
        pid1,
        host_init.trim(),
        "PID 1 is the host's init:\n{report}"
    );
    let procs: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs <= 5, "the step sees {procs} processes:\n{report}");
    // stdin, stdout, stderr and the directory `ls` itself opens: nothing inherited.
    let fds: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("fds="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fds <= 4, "the step inherited descriptors:\n{report}");
}

#[test]
fn step_sees_only_its_inputs_as_root_in_its_own_namespaces() {
    let env = Env::new();
    let (report, results) = probe(&env);
    assert_isolated(&report);
    let made = std::fs::metadata(results.join("made.txt")).unwrap();
    assert_eq!(
        made.uid(),
        nix::unistd::geteuid().as_raw(),
        "files belong to the invoking user"
    );
}

#[test]
fn rootless_run_is_isolated_and_leaves_no_root_owned_file() {
    let env = Env::rootless();
    let (report, results) = probe(&env);
    assert_isolated(&report);
    let invoking = env
        .user
        .map_or(nix::unistd::geteuid().as_raw(), |(uid, _)| uid);
    let made = std::fs::metadata(results.join("made.txt")).unwrap();
    assert_eq!(
        made.uid(),
        invoking,
        "files created in the step belong to the invoking user"
    );
    if env.user.is_some() {
        let owned = root_owned(env.path());
        assert!(
            owned.is_empty(),
            "a rootless run left root-owned files: {owned:#?}"
        );
    }
}
