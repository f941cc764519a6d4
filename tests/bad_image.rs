//! Images that fail verification stop a run before any step starts: the digest
//! and the image are named, the exit code is 3, and nothing is published.

mod common;
#[path = "common/image.rs"]
mod layers;

use common::{Env, assert_fails, text};
use layers::{Layer, Tar, oci_layout};

fn pipeline(image: &str) -> String {
    format!(
        r#"seal: 1
name: bad-image
images:
  bb: {image}
steps:
  hello:
    image: bb
    outputs: {{ out: out.txt }}
    run: echo hello > ${{outputs.out}}
"#
    )
}

/// Runs `p.yaml`, expecting exit 3 with each needle, no results and no provenance
/// of steps that ran.
fn run_refused(env: &Env, needles: &[&str]) {
    let output = env.seal(&["run", "p.yaml", "--out", "out"]);
    for needle in needles {
        assert_fails(&output, 3, needle);
    }
    let results = env.path().join("out/results");
    let published = std::fs::read_dir(&results).map(|d| d.count()).unwrap_or(0);
    assert_eq!(published, 0, "published: {}", text(&output.stderr));
}

#[test]
fn a_wrong_digest_names_both_digests() {
    let env = Env::new();
    let pinned = env.busybox_image("local/bb", &["--oci-layout", "layout"]);
    let actual = pinned.split_once('@').unwrap().1.to_string();
    let wrong = format!("sha256:{}", "2".repeat(64));
    // A fresh store, so that the image must come from the layout.
    let fresh = Env::new();
    copy_dir(&env.path().join("layout"), &fresh.path().join("layout"));
    fresh.write("p.yaml", &pipeline(&format!("oci:layout:latest@{wrong}")));
    run_refused(&fresh, &[&wrong, &actual]);
}

#[test]
fn a_corrupted_layer_is_refused_before_it_is_unpacked() {
    let env = Env::new();
    let layer = Layer::plain(Tar::new().dir("bin/").file("bin/x", "x").finish());
    let digest = layer.digest();
    let image = oci_layout(&env.path().join("layout"), &[layer]);
    let blob = env
        .path()
        .join("layout/blobs/sha256")
        .join(&digest["sha256:".len()..]);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[600] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    env.write(
        "p.yaml",
        &pipeline(&format!("oci:layout@{}", image.manifest)),
    );
    run_refused(&env, &[&digest, "bb"]);
}

#[test]
fn a_layer_writing_outside_its_tree_is_refused() {
    let env = Env::new();
    let evil = Tar::new()
        .dir("bin/")
        .file("bin/../../escaped", "x")
        .finish();
    let image = oci_layout(&env.path().join("layout"), &[Layer::gzip(evil)]);
    env.write(
        "p.yaml",
        &pipeline(&format!("oci:layout@{}", image.manifest)),
    );
    run_refused(&env, &["`bin/../../escaped`", "bb"]);
    assert!(!env.path().join("escaped").exists());
    assert!(!env.path().parent().unwrap().join("escaped").exists());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
