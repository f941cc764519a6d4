//! The store: corrupted blobs are caught before use, and concurrent seal processes share
//! one root file system per image.

#[path = "common/image.rs"]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{Env, busybox_tree};

/// Imports a busybox image and returns its digest and the store's blob path for `digest`.
fn imported(env: &Env) -> String {
    let tree = env.path("tree");
    busybox_tree(&tree);
    env.import_digest(&tree, "local/bb", &[])
}

fn blob(env: &Env, digest: &str) -> PathBuf {
    env.home()
        .join("blobs/sha256")
        .join(&digest["sha256:".len()..])
}

/// Flips one byte in the middle of a file (blobs are read-only, so make it writable first).
fn corrupt(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_corrupted_layer_in_the_store_is_detected_and_never_unpacked() {
    let env = Env::new();
    let digest = imported(&env);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&env, &digest)).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_path = blob(&env, &layer);
    corrupt(&layer_path);

    let stderr = env.prepare_fails(&format!("local/bb@{digest}"));
    assert!(
        stderr.contains(&format!("blob {layer} in the store is corrupted")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&layer_path.display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("help: delete"), "{stderr}");
    assert!(env.store_entries("rootfs").is_empty());
    assert!(env.store_entries("tmp").is_empty());
}

#[test]
fn a_corrupted_manifest_in_the_store_is_detected() {
    let env = Env::new();
    let digest = imported(&env);
    corrupt(&blob(&env, &digest));

    let stderr = env.prepare_fails(&format!("local/bb@{digest}"));
    assert!(
        stderr.contains(&format!("blob {digest} in the store is corrupted")),
        "{stderr}"
    );
}

#[test]
fn two_processes_preparing_one_image_share_one_tree() {
    let env = Env::new();
    let tree = env.path("tree");
    busybox_tree(&tree);
    // Enough files that unpacking takes a while, so the two processes overlap.
    for dir in 0..40 {
        let dir_path = tree.join(format!("data/{dir:02}"));
        std::fs::create_dir_all(&dir_path).unwrap();
        for file in 0..50 {
            std::fs::write(dir_path.join(format!("{file:02}")), format!("{dir}/{file}")).unwrap();
        }
    }
    let digest = env.import_digest(&tree, "local/big", &[]);
    let reference = format!("local/big@{digest}");

    let spawn = || {
        env.seal()
            .args(["image", "prepare", &reference])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let mut rootfs = Vec::new();
    for output in &outputs {
        common::assert_success(output);
        let prepared: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        rootfs.push(prepared["rootfs"].as_str().unwrap().to_string());
    }
    assert_eq!(rootfs[0], rootfs[1]);
    assert_eq!(env.store_entries("rootfs"), [&digest["sha256:".len()..]]);
    assert!(
        env.store_entries("tmp").is_empty(),
        "{:?}",
        env.store_entries("tmp")
    );
    let unpacked = Path::new(&rootfs[0]);
    assert_eq!(
        std::fs::read_to_string(unpacked.join("data/39/49")).unwrap(),
        "39/49"
    );
    assert_eq!(common::list(&unpacked.join("data")).len(), 40);
}
