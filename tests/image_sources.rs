//! Preparing images from OCI layouts, `docker save` archives and the store itself, and
//! refusing wrong pins.

#[path = "common/image.rs"]
mod common;

use std::path::Path;

use common::{
    Env, Layer, Tar, host_arch, oci_layout, sha256, write_blob, write_image, write_index,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn hello_layer() -> Layer {
    Layer::gzip(Tar::new().dir("etc/").file("etc/hello", "hello\n").finish())
}

fn rootfs_of(prepared: &serde_json::Value) -> &Path {
    Path::new(prepared["rootfs"].as_str().unwrap())
}

#[test]
fn prepare_from_an_oci_layout_by_pin_with_and_without_tag() {
    let env = Env::new();
    let layout = env.path("layout");
    let image = oci_layout(&layout, &[hello_layer()]);

    let tagged = env.prepare(&format!(
        "oci:{}:latest@{}",
        layout.display(),
        image.manifest
    ));
    assert_eq!(tagged["manifest_digest"], image.manifest.as_str());
    assert_eq!(tagged["config_digest"], image.config.as_str());
    assert_eq!(
        std::fs::read_to_string(rootfs_of(&tagged).join("etc/hello")).unwrap(),
        "hello\n"
    );

    let other = Env::new();
    let untagged = other.prepare(&format!("oci:{}@{}", layout.display(), image.manifest));
    assert_eq!(untagged["manifest_digest"], image.manifest.as_str());
}

#[test]
fn wrong_pins_name_both_digests() {
    let env = Env::new();
    let layout = env.path("layout");
    let image = oci_layout(&layout, &[hello_layer()]);
    let wrong = format!("sha256:{}", "e".repeat(64));

    for reference in [
        format!("oci:{}:latest@{wrong}", layout.display()),
        format!("oci:{}@{wrong}", layout.display()),
    ] {
        let stderr = env.prepare_fails(&reference);
        assert!(stderr.contains(&wrong), "{stderr}");
        assert!(stderr.contains(&image.manifest), "{stderr}");
        assert!(
            stderr.contains(&format!("oci:{}", layout.display())),
            "{stderr}"
        );
    }
    assert!(env.store_entries("rootfs").is_empty());
}

#[test]
fn a_blob_whose_content_does_not_match_its_name_is_refused() {
    let env = Env::new();
    let layout = env.path("layout");
    let layer = hello_layer();
    let layer_digest = layer.digest();
    let image = oci_layout(&layout, &[layer]);
    let path = layout.join("blobs/sha256").join(&layer_digest[7..]);
    let tampered = common::gzip(&Tar::new().file("etc/evil", "x").finish());
    std::fs::write(&path, &tampered).unwrap();

    let stderr = env.prepare_fails(&format!("oci:{}@{}", layout.display(), image.manifest));
    assert!(stderr.contains(&layer_digest), "{stderr}");
    assert!(stderr.contains(&sha256(&tampered)), "{stderr}");
    assert!(env.store_entries("rootfs").is_empty());
    assert!(
        !env.home()
            .join("blobs/sha256")
            .join(&sha256(&tampered)[7..])
            .exists()
    );
}

#[test]
fn an_index_resolves_to_the_host_platform() {
    let env = Env::new();
    let layout = env.path("layout");
    let native = write_image(&layout, &[hello_layer()], host_arch());
    let foreign_arch = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let foreign_layer = Layer::plain(Tar::new().file("foreign", "x").finish());
    let foreign = write_image(&layout, &[foreign_layer], foreign_arch);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": foreign.manifest, "size": 1,
             "platform": {"architecture": foreign_arch, "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": native.manifest, "size": 1,
             "platform": {"architecture": host_arch(), "os": "linux"}},
        ],
    });
    let index_digest = write_blob(&layout, &serde_json::to_vec(&index).unwrap());
    write_index(&layout, &[(&index_digest, OCI_INDEX, Some("multi"))]);

    let prepared = env.prepare(&format!("oci:{}:multi@{index_digest}", layout.display()));
    assert_eq!(prepared["manifest_digest"], native.manifest.as_str());
    assert!(rootfs_of(&prepared).join("etc/hello").is_file());
    assert!(!rootfs_of(&prepared).join("foreign").exists());

    // Pinned by the platform manifest under the tagged index works as well.
    let other = Env::new();
    let by_child = other.prepare(&format!(
        "oci:{}:multi@{}",
        layout.display(),
        native.manifest
    ));
    assert_eq!(by_child["manifest_digest"], native.manifest.as_str());
}

#[test]
fn an_index_without_the_host_platform_lists_what_it_has() {
    let env = Env::new();
    let layout = env.path("layout");
    let foreign = write_image(&layout, &[hello_layer()], "s390x");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": foreign.manifest, "size": 1,
                       "platform": {"architecture": "s390x", "os": "linux"}}],
    });
    let index_digest = write_blob(&layout, &serde_json::to_vec(&index).unwrap());
    write_index(&layout, &[(&index_digest, OCI_INDEX, None)]);

    let stderr = env.prepare_fails(&format!("oci:{}@{index_digest}", layout.display()));
    assert!(
        stderr.contains(&format!("has no image for linux/{}", host_arch())),
        "{stderr}"
    );
    assert!(stderr.contains("linux/s390x"), "{stderr}");
}

#[test]
fn docker_schema2_media_types_are_understood() {
    let env = Env::new();
    let layout = env.path("layout");
    let tar = Tar::new().file("docker-file", "d\n").finish();
    let layer = Layer::new(
        common::gzip(&tar),
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        &tar,
    );
    let media = "application/vnd.docker.distribution.manifest.v2+json";
    let image = common::write_image_typed(&layout, &[layer], host_arch(), media);
    write_index(&layout, &[(&image.manifest, media, Some("docker"))]);

    let prepared = env.prepare(&format!(
        "oci:{}:docker@{}",
        layout.display(),
        image.manifest
    ));
    assert!(rootfs_of(&prepared).join("docker-file").is_file());
}

/// Writes a classic `docker save` archive: manifest.json, `<id>.json`, `<dir>/layer.tar`,
/// with the last layer a symlink to the second (as docker writes shared layers).
fn classic_docker_archive(path: &Path) -> String {
    let first = Tar::new()
        .dir("data/")
        .file("data/a", "a\n")
        .file("data/gone", "x")
        .finish();
    let second = Tar::new()
        .file("data/.wh.gone", "")
        .file("data/b", "b\n")
        .finish();
    let diff_ids = [sha256(&first), sha256(&second), sha256(&second)];
    let config = serde_json::json!({
        "architecture": host_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "WorkingDir": "/data"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    });
    let config = serde_json::to_vec(&config).unwrap();
    let id = sha256(&config);
    let manifest = serde_json::json!([{
        "Config": format!("{}.json", &id[7..]),
        "RepoTags": ["test/classic:latest"],
        "Layers": ["111/layer.tar", "222/layer.tar", "333/layer.tar"],
    }]);
    let archive = Tar::new()
        .entry(
            &format!("{}.json", &id[7..]),
            tar::EntryType::Regular,
            0o644,
            &config,
            None,
        )
        .dir("111/")
        .entry(
            "111/layer.tar",
            tar::EntryType::Regular,
            0o644,
            &first,
            None,
        )
        .dir("222/")
        .entry(
            "222/layer.tar",
            tar::EntryType::Regular,
            0o644,
            &second,
            None,
        )
        .dir("333/")
        .symlink("333/layer.tar", "../222/layer.tar")
        .entry(
            "manifest.json",
            tar::EntryType::Regular,
            0o644,
            &serde_json::to_vec(&manifest).unwrap(),
            None,
        )
        .finish();
    std::fs::write(path, archive).unwrap();
    id
}

#[test]
fn prepare_from_a_classic_docker_archive_by_image_id() {
    let env = Env::new();
    let archive = env.path("classic.tar");
    let id = classic_docker_archive(&archive);

    let prepared = env.prepare(&format!("docker-archive:classic.tar@{id}"));
    assert_eq!(prepared["config_digest"], id.as_str());
    assert_eq!(prepared["config"]["working_dir"], "/data");
    let rootfs = rootfs_of(&prepared);
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/a")).unwrap(),
        "a\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/b")).unwrap(),
        "b\n"
    );
    assert!(!rootfs.join("data/gone").exists());

    // The manifest seal writes for a classic archive is the same in every store, and once
    // stored the image no longer needs the archive.
    let other = Env::new();
    std::fs::copy(&archive, other.path("classic.tar")).unwrap();
    let again = other.prepare(&format!("docker-archive:classic.tar@{id}"));
    assert_eq!(again["manifest_digest"], prepared["manifest_digest"]);
    std::fs::remove_file(&archive).unwrap();
    let from_store = env.prepare(&format!("docker-archive:classic.tar@{id}"));
    assert_eq!(from_store["rootfs"], prepared["rootfs"]);
}

#[test]
fn a_docker_archive_with_a_wrong_image_id_names_both() {
    let env = Env::new();
    let archive = env.path("classic.tar");
    let id = classic_docker_archive(&archive);
    let wrong = format!("sha256:{}", "1".repeat(64));

    let stderr = env.prepare_fails(&format!("docker-archive:{}@{wrong}", archive.display()));
    assert!(stderr.contains(&wrong), "{stderr}");
    assert!(stderr.contains(&id), "{stderr}");
    assert!(stderr.contains("docker-archive:"), "{stderr}");
}

#[test]
fn a_pinned_image_in_the_store_is_used_whatever_its_name() {
    let env = Env::new();
    let tree = env.path("tree");
    common::busybox_tree(&tree);
    let digest = env.import_digest(&tree, "local/bb", &[]);

    let by_name = env.prepare(&format!("local/bb@{digest}"));
    let by_other_name = env.prepare(&format!("registry.example:5000/other/name:tag@{digest}"));
    assert_eq!(by_name["rootfs"], by_other_name["rootfs"]);

    let missing = format!("sha256:{}", "2".repeat(64));
    let stderr = env.prepare_fails(&format!("local/bb@{missing}"));
    assert!(stderr.contains("is not in the store"), "{stderr}");
    let stderr = env.prepare_fails("local/bb");
    assert!(stderr.contains("is not pinned by a digest"), "{stderr}");
    let stderr = env.prepare_fails("Local/BB@sha256:abc");
    assert!(
        stderr.contains("is not a valid image reference"),
        "{stderr}"
    );
    assert!(
        stderr.contains("help: write [registry/]repo[:tag]"),
        "{stderr}"
    );
}

/// Writes a `docker save` archive in the newer layout: an OCI layout plus a manifest.json
/// pointing into its blobs.
fn oci_docker_archive(env: &Env, path: &Path) -> common::OciImage {
    let layout = env.path("layout-for-archive");
    let image = oci_layout(
        &layout,
        &[Layer::plain(Tar::new().file("new-format", "n\n").finish())],
    );
    let layer_blob = common::list(&layout.join("blobs/sha256"))
        .into_iter()
        .find(|hex| ![&image.manifest[7..], &image.config[7..]].contains(&hex.as_str()))
        .unwrap();
    let manifest_json = serde_json::json!([{
        "Config": format!("blobs/sha256/{}", &image.config[7..]),
        "RepoTags": ["test/new:latest"],
        "Layers": [format!("blobs/sha256/{layer_blob}")],
    }]);
    let regular = tar::EntryType::Regular;
    let mut archive = Tar::new().dir("blobs/").dir("blobs/sha256/");
    for hex in common::list(&layout.join("blobs/sha256")) {
        let bytes = std::fs::read(layout.join("blobs/sha256").join(&hex)).unwrap();
        archive = archive.entry(&format!("blobs/sha256/{hex}"), regular, 0o644, &bytes, None);
    }
    for name in ["oci-layout", "index.json"] {
        let bytes = std::fs::read(layout.join(name)).unwrap();
        archive = archive.entry(name, regular, 0o644, &bytes, None);
    }
    let manifest_json = serde_json::to_vec(&manifest_json).unwrap();
    let archive = archive.entry("manifest.json", regular, 0o644, &manifest_json, None);
    std::fs::write(path, archive.finish()).unwrap();
    image
}

#[test]
fn prepare_from_a_docker_archive_holding_an_oci_layout() {
    let env = Env::new();
    let archive = env.path("new.tar");
    let image = oci_docker_archive(&env, &archive);

    // Pinned by image ID, the archive's own manifest is used (not one seal writes).
    let by_id = env.prepare(&format!("docker-archive:new.tar@{}", image.config));
    assert_eq!(by_id["manifest_digest"], image.manifest.as_str());
    assert!(rootfs_of(&by_id).join("new-format").is_file());

    let other = Env::new();
    std::fs::copy(&archive, other.path("new.tar")).unwrap();
    let by_manifest = other.prepare(&format!("docker-archive:new.tar@{}", image.manifest));
    assert_eq!(by_manifest["manifest_digest"], image.manifest.as_str());
}
