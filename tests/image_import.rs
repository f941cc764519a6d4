//! `seal image import` and `seal image ls`: deterministic images from root file systems.

#[path = "common/image.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Env, busybox_tree};

fn is_name_at_digest(line: &str, name: &str) -> bool {
    let Some(hex) = line.strip_prefix(&format!("{name}@sha256:")) else {
        return false;
    };
    hex.len() == 65 && hex.ends_with('\n') && hex[..64].bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn import_prints_name_at_digest_and_is_deterministic() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);

    let first = env.import(&tree, "local/busybox", &[]);
    assert!(
        is_name_at_digest(&first, "local/busybox"),
        "unexpected output {first:?}"
    );

    // Same tree, touched and imported into another store: the same digest.
    std::fs::File::open(tree.join("bin/busybox"))
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let other = Env::new();
    assert_eq!(other.import(&tree, "local/busybox", &[]), first);
    assert_eq!(env.import(&tree, "local/busybox", &[]), first);

    // A changed file, or another fixed time, gives another digest.
    let mut epoch = env.seal();
    epoch.env("SOURCE_DATE_EPOCH", "1700000000");
    epoch
        .args(["image", "import"])
        .arg(&tree)
        .args(["--tag", "local/busybox"]);
    let dated = epoch.output().unwrap();
    common::assert_success(&dated);
    assert_ne!(String::from_utf8(dated.stdout).unwrap(), first);
    std::fs::write(tree.join("etc/motd"), "hello\n").unwrap();
    assert_ne!(env.import(&tree, "local/busybox", &[]), first);
}

#[test]
fn import_of_a_tarball_matches_import_of_the_directory() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);
    std::fs::create_dir_all(tree.join("usr/share/doc")).unwrap();
    // Longer than the 100 bytes of a tar header's name field: needs a GNU long-name record.
    let long_name = format!("usr/share/doc/{}.txt", "long-name-".repeat(12));
    std::fs::write(tree.join(long_name), "x").unwrap();
    std::fs::hard_link(tree.join("bin/busybox"), tree.join("bin/ls")).unwrap();
    let from_dir = env.import_digest(&tree, "local/bb", &[]);

    let tarball = env.path("rootfs.tar.gz");
    let status = std::process::Command::new("tar")
        .args(["-C"])
        .arg(&tree)
        .args(["-czf"])
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(env.import_digest(&tarball, "local/bb", &[]), from_dir);
}

#[test]
fn import_sets_the_config_and_prepare_creates_mount_points() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);
    let digest = env.import_digest(
        &tree,
        "local/app:1.0",
        &[
            "--env",
            "PATH=/bin",
            "--env",
            "GREETING=hello world",
            "--workdir",
            "/srv/data",
            "--user",
            "alice",
            "--entrypoint",
            r#"["/bin/sh", "-c"]"#,
            "--cmd",
            "echo 'two words'",
        ],
    );

    let prepared = env.prepare(&format!("local/app@{digest}"));
    assert_eq!(prepared["manifest_digest"], digest.as_str());
    let config = &prepared["config"];
    assert_eq!(
        config["env"],
        serde_json::json!(["PATH=/bin", "GREETING=hello world"])
    );
    assert_eq!(config["entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(config["cmd"], serde_json::json!(["echo", "two words"]));
    assert_eq!(config["user"], "alice");
    assert_eq!(config["working_dir"], "/srv/data");
    assert_eq!(prepared["home"], "/home/alice");

    let rootfs = Path::new(prepared["rootfs"].as_str().unwrap());
    for dir in [
        "proc",
        "dev",
        "sys",
        "tmp",
        "work",
        "srv/data",
        "home/alice",
    ] {
        assert!(rootfs.join(dir).is_dir(), "missing mount point /{dir}");
    }
    let busybox = std::fs::metadata(rootfs.join("bin/busybox")).unwrap();
    assert_eq!(busybox.permissions().mode() & 0o7777, 0o755);
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
}

#[test]
fn ls_lists_imported_names_with_digest_and_size() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);
    let one = env.import(&tree, "local/one", &[]);
    let two = env.import(&tree, "local/two:v2", &["--env", "A=b"]);

    let output = env.run(&["image", "ls"]);
    common::assert_success(&output);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, printed) in lines.iter().zip([one, two]) {
        let (name_at_digest, size) = line.split_once('\t').expect("NAME@DIGEST<tab>SIZE");
        assert_eq!(name_at_digest, printed.trim());
        assert!(size.ends_with("MiB"), "busybox is about 2 MiB, got {size}");
    }
}

#[test]
fn import_rejects_a_name_with_a_digest_or_capitals() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);
    for name in ["Local/BB", &format!("local/bb@sha256:{}", "0".repeat(64))] {
        let output = env.run(&["image", "import", tree.to_str().unwrap(), "--tag", name]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is not a valid image reference"),
            "{stderr}"
        );
    }
}

#[test]
fn import_writes_an_oci_layout_usable_as_a_reference() {
    let producer = Env::new();
    let tree = producer.path("tree");
    busybox_tree(&tree);
    let layout = producer.path("layout");
    let layout_arg = layout.to_str().unwrap();
    let digest = producer.import_digest(&tree, "local/bb:v1", &["--oci-layout", layout_arg]);
    let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
    assert!(
        index.contains(r#""org.opencontainers.image.ref.name": "v1""#),
        "{index}"
    );

    // A fresh store reads it from the layout, by tag and pin, and relative to the cwd.
    let consumer = Env::new();
    std::fs::rename(&layout, consumer.path("images")).unwrap();
    let prepared = consumer.prepare(&format!("oci:images:v1@{digest}"));
    assert_eq!(prepared["manifest_digest"], digest.as_str());
    let rootfs = Path::new(prepared["rootfs"].as_str().unwrap());
    assert!(rootfs.join("bin/busybox").is_file());
}
