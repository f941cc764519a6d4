//! Applying layers: whiteouts, opaque directories, compressions, links, metadata.

#[path = "common/image.rs"]
mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Env, Layer, MTIME, Tar, oci_layout};
use tar::EntryType;

/// Writes a layout of `layers`, prepares it in a fresh store, and returns the rootfs path
/// (with the env, which owns it).
fn unpack(layers: Vec<Layer>) -> (Env, PathBuf) {
    let env = Env::new();
    let layout = env.path("layout");
    let image = oci_layout(&layout, &layers);
    let prepared = env.prepare(&format!("oci:{}@{}", layout.display(), image.manifest));
    let rootfs = PathBuf::from(prepared["rootfs"].as_str().unwrap());
    (env, rootfs)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn whiteouts_and_opaque_directories_hide_lower_layers() {
    let lower = Tar::new()
        .dir("a/")
        .file("a/keep", "keep")
        .file("a/gone", "gone")
        .dir("b/")
        .file("b/old", "old")
        .dir("b/sub/")
        .file("b/sub/deep", "deep")
        .dir("c/")
        .file("c/old", "old")
        .dir("d/")
        .file("d/inside", "x")
        .entry("e/", EntryType::Directory, 0o700, b"", None)
        .finish();
    let upper = Tar::new()
        .file("a/.wh.gone", "")
        .dir("b/")
        .file("b/.wh..wh..opq", "")
        .file("b/new", "new")
        // Written before the opaque marker of the same layer: must survive it.
        .dir("c/")
        .file("c/early", "early")
        .file("c/.wh..wh..opq", "")
        .file(".wh.d", "")
        // `e` goes, then comes back implicitly: the old directory's mode must not return.
        .file(".wh.e", "")
        .file("e/again", "again")
        .finish();
    let (_env, rootfs) = unpack(vec![Layer::plain(lower), Layer::gzip(upper)]);

    assert_eq!(read(&rootfs.join("a/keep")), "keep");
    assert!(!rootfs.join("a/gone").exists());
    assert!(!rootfs.join("a/.wh.gone").exists());
    assert_eq!(common::list(&rootfs.join("b")), ["new"]);
    assert_eq!(common::list(&rootfs.join("c")), ["early"]);
    assert!(!rootfs.join("d").exists());
    let mode = std::fs::metadata(rootfs.join("e"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[test]
fn gzip_zstd_and_plain_layers_apply_in_order() {
    let first = Tar::new()
        .file("one", "1")
        .file("shared", "from gzip")
        .finish();
    let second = Tar::new()
        .file("two", "2")
        .file("shared", "from zstd")
        .finish();
    let third = Tar::new().file("three", "3").finish();
    // A layer whose media type claims gzip but whose content is zstd: the content wins.
    let fourth = Tar::new().file("four", "4").finish();
    let mislabeled = Layer::new(
        common::zstd(&fourth),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &fourth,
    );
    let layers = vec![
        Layer::gzip(first),
        Layer::zstd(second),
        Layer::plain(third),
        mislabeled,
    ];
    let (_env, rootfs) = unpack(layers);

    for (name, content) in [("one", "1"), ("two", "2"), ("three", "3"), ("four", "4")] {
        assert_eq!(read(&rootfs.join(name)), content);
    }
    assert_eq!(read(&rootfs.join("shared")), "from zstd");
}

#[test]
fn merged_usr_symlinks_are_followed_inside_the_tree() {
    let base = Tar::new()
        .dir("usr/")
        .dir("usr/lib/")
        .symlink("lib", "usr/lib")
        .dir("run/")
        .dir("var/")
        .symlink("var/run", "/run")
        .finish();
    let upper = Tar::new()
        .file("lib/libx.so", "elf")
        .file("var/run/app.pid", "42")
        .finish();
    let (_env, rootfs) = unpack(vec![Layer::plain(base), Layer::plain(upper)]);

    assert_eq!(read(&rootfs.join("usr/lib/libx.so")), "elf");
    assert_eq!(read(&rootfs.join("run/app.pid")), "42");
    assert_eq!(
        std::fs::read_link(rootfs.join("lib")).unwrap(),
        Path::new("usr/lib")
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("var/run")).unwrap(),
        Path::new("/run")
    );
}

#[test]
fn modes_times_links_and_special_files() {
    let layer = Tar::new()
        .entry("bin/", EntryType::Directory, 0o750, b"", None)
        .entry("bin/tool", EntryType::Regular, 0o4755, b"#!/bin/sh\n", None)
        .entry("bin/group", EntryType::Regular, 0o2711, b"g", None)
        .entry("bin/private", EntryType::Regular, 0o600, b"p", None)
        .hard_link("bin/tool-link", "bin/tool")
        .symlink("bin/abs", "/bin/tool")
        .entry("pipe", EntryType::Fifo, 0o644, b"", None)
        .entry("dev-null", EntryType::Char, 0o666, b"", None)
        .entry(
            "implicit/parent/file",
            EntryType::Regular,
            0o644,
            b"x",
            None,
        )
        .finish();
    let (_env, rootfs) = unpack(vec![Layer::plain(layer)]);

    let mode = |p: &str| {
        std::fs::symlink_metadata(rootfs.join(p))
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode("bin/tool") & 0o7777, 0o755, "setuid must be dropped");
    assert_eq!(mode("bin/group") & 0o7777, 0o711, "setgid must be dropped");
    assert_eq!(mode("bin/private") & 0o7777, 0o600);
    assert_eq!(mode("bin") & 0o7777, 0o750);

    let meta = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap();
    for path in ["bin/tool", "bin", "bin/abs", "pipe"] {
        assert_eq!(meta(path).mtime(), MTIME as i64, "mtime of {path}");
    }
    assert_eq!(meta("bin/tool").ino(), meta("bin/tool-link").ino());
    assert_eq!(
        std::fs::read_link(rootfs.join("bin/abs")).unwrap(),
        Path::new("/bin/tool")
    );
    assert!(meta("pipe").file_type().is_fifo());
    assert!(
        !rootfs.join("dev-null").exists(),
        "device nodes are skipped"
    );
    assert_eq!(read(&rootfs.join("implicit/parent/file")), "x");
    // Ownership is not taken from the layer (uid 1000 there): files belong to the invoker.
    assert_eq!(meta("bin/tool").uid(), nix::unistd::geteuid().as_raw());
}

#[test]
fn later_layers_replace_files_with_directories_and_back() {
    let lower = Tar::new()
        .file("thing", "file")
        .dir("other/")
        .file("other/child", "c")
        .symlink("link", "thing")
        .finish();
    let upper = Tar::new()
        .dir("thing/")
        .file("thing/inner", "i")
        .file("other", "now a file")
        .file("link", "no longer a link")
        .finish();
    let (_env, rootfs) = unpack(vec![Layer::plain(lower), Layer::plain(upper)]);

    assert_eq!(read(&rootfs.join("thing/inner")), "i");
    assert_eq!(read(&rootfs.join("other")), "now a file");
    assert!(
        !std::fs::symlink_metadata(rootfs.join("link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    let env = Env::new();
    let layout = env.path("layout");
    let real = Tar::new().file("a", "a").finish();
    let claimed = Tar::new().file("b", "b").finish();
    let layer = Layer::new(
        common::gzip(&real),
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &claimed,
    );
    let layer_digest = layer.digest();
    let image = oci_layout(&layout, &[layer]);

    let stderr = env.prepare_fails(&format!("oci:{}@{}", layout.display(), image.manifest));
    assert!(stderr.contains(&layer_digest), "{stderr}");
    assert!(stderr.contains(&common::sha256(&real)), "{stderr}");
    assert!(stderr.contains(&common::sha256(&claimed)), "{stderr}");
    assert!(env.store_entries("rootfs").is_empty());
    assert!(env.store_entries("tmp").is_empty());
}

#[test]
fn an_opaque_marker_at_the_top_keeps_only_the_new_layer() {
    let lower = Tar::new().file("x", "x").dir("y/").finish();
    let upper = Tar::new().file("z", "z").file(".wh..wh..opq", "").finish();
    let (_env, rootfs) = unpack(vec![Layer::plain(lower), Layer::plain(upper)]);

    let names: Vec<String> = common::list(&rootfs)
        .into_iter()
        .filter(|n| !["proc", "dev", "sys", "tmp", "work", "root"].contains(&n.as_str()))
        .collect();
    assert_eq!(names, ["z"]);
}
