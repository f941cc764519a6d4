//! Shared harness for the integration tests: a private directory and seal
//! store per test, test images built from the host's static busybox, and the
//! real `seal` binary run as the current user or as an ordinary one.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ordinary user the rootless tests run as when the suite runs as root
/// (`scripts/test.sh` creates it).
pub const TEST_USER: &str = "seal-tester";

/// One test's world: a directory, a store, and who runs seal.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    /// `Some((uid, gid))` to run seal as that user.
    pub user: Option<(u32, u32)>,
}

impl Env {
    /// A fresh directory and store, seal run as the current user.
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("seal-test-")
            .tempdir()
            .expect("temp dir");
        let home = dir.path().join("seal-home");
        std::fs::create_dir(&home).unwrap();
        Env {
            dir,
            home,
            user: None,
        }
    }

    /// Like [`Env::new`], but seal runs as an ordinary user. When the tests
    /// themselves run as an ordinary user, that is the current user.
    pub fn rootless() -> Env {
        let mut env = Env::new();
        if nix::unistd::geteuid().is_root() {
            let (uid, gid) = ordinary_user();
            chown_tree(env.dir.path(), uid, gid);
            std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            env.user = Some((uid, gid));
        }
        env
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file below the test directory (owned by the test's user).
    pub fn write(&self, relative: &str, content: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        if let Some((uid, gid)) = self.user {
            chown_tree(self.path(), uid, gid);
        }
        path
    }

    /// A `seal` command with this test's store, in the test directory.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_seal"));
        command
            .current_dir(self.path())
            .env("SEAL_HOME", &self.home)
            .env("NO_COLOR", "1")
            .env_remove("SEAL_LOG");
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid).env("HOME", self.path());
        }
        command
    }

    /// Runs seal with `args` and returns what it printed.
    pub fn seal(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("seal runs")
    }

    /// Imports a busybox image into this test's store and returns its pinned
    /// reference. `extra` are further `seal image import` flags (`--env`, ...).
    pub fn busybox_image(&self, tag: &str, extra: &[&str]) -> String {
        let rootfs = self
            .path()
            .join(format!("rootfs-{}", tag.replace(['/', ':'], "-")));
        build_busybox_rootfs(&rootfs);
        if let Some((uid, gid)) = self.user {
            chown_tree(self.path(), uid, gid);
        }
        let mut args = vec!["image", "import", rootfs.to_str().unwrap(), "--tag", tag];
        args.extend_from_slice(extra);
        let output = self.seal(&args);
        assert!(
            output.status.success(),
            "image import failed: {}",
            text(&output.stderr)
        );
        text(&output.stdout).trim().to_string()
    }
}

/// A minimal root file system: static busybox with its applets, a passwd.
pub fn build_busybox_rootfs(root: &Path) {
    for dir in ["bin", "etc", "root", "tmp", "work", "proc", "dev", "sys"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox is needed (Debian: busybox-static; scripts/test.sh installs it)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in text(&list.stdout).lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

/// The uid and gid of [`TEST_USER`], else of `nobody`.
pub fn ordinary_user() -> (u32, u32) {
    for name in [TEST_USER, "nobody"] {
        if let Ok(Some(user)) = nix::unistd::User::from_name(name) {
            return (user.uid.as_raw(), user.gid.as_raw());
        }
    }
    panic!("no ordinary user: run scripts/test.sh as root once, it creates `{TEST_USER}`");
}

/// Gives a whole tree to `uid:gid` (symlinks themselves, not their targets).
pub fn chown_tree(root: &Path, uid: u32, gid: u32) {
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(gid)).unwrap();
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sha256 of a file as `sha256sum` prints it.
pub fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    text(&output.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Reads and parses `provenance.json` below `out`.
pub fn provenance(out: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(out.join("provenance.json")).expect("provenance.json exists");
    serde_json::from_str(&text).expect("provenance.json is JSON")
}

/// Checks a provenance document against `schemas/provenance.schema.json`.
pub fn assert_valid_provenance(document: &serde_json::Value) {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schemas/provenance.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "provenance does not match its schema: {errors:#?}"
    );
}

/// Every path below `root` owned by uid 0.
pub fn root_owned(root: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().symlink_metadata().is_ok_and(|m| m.uid() == 0))
        .map(|e| e.path().to_path_buf())
        .collect()
}

/// Asserts that a command failed with `code` and that stderr mentions `needle`.
pub fn assert_fails(output: &Output, code: i32, needle: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit status; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains(needle),
        "stderr lacks `{needle}`:\n{stderr}"
    );
}
