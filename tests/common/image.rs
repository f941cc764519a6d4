//! Helpers for the image tests: a private store per test, busybox trees, raw layer tars,
//! and OCI layouts built by hand (independently of seal's own code).
//!
//! Each `tests/image_*.rs` includes this file with `#[path]` and uses a different part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sha2::Digest as _;

/// A temporary directory holding a private `SEAL_HOME` and whatever the test builds.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// `seal` with this test's store and no inherited SOURCE_DATE_EPOCH.
    pub fn seal(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_seal"));
        cmd.env("SEAL_HOME", self.home())
            .env_remove("SOURCE_DATE_EPOCH");
        cmd.current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.seal().args(args).output().expect("run seal")
    }

    /// Runs `seal image import DIR --tag NAME EXTRA...`, expecting success; returns stdout.
    pub fn import(&self, dir: &Path, name: &str, extra: &[&str]) -> String {
        let mut cmd = self.seal();
        cmd.args(["image", "import"])
            .arg(dir)
            .args(["--tag", name])
            .args(extra);
        let output = cmd.output().expect("run seal");
        assert_success(&output);
        String::from_utf8(output.stdout).expect("utf-8 stdout")
    }

    /// The digest part of `NAME@sha256:...` printed by an import.
    pub fn import_digest(&self, dir: &Path, name: &str, extra: &[&str]) -> String {
        let line = self.import(dir, name, extra);
        line.trim()
            .rsplit_once('@')
            .expect("NAME@digest")
            .1
            .to_string()
    }

    /// Runs the hidden `seal image prepare REF`, expecting success; returns the JSON.
    pub fn prepare(&self, reference: &str) -> serde_json::Value {
        let output = self.run(&["image", "prepare", reference]);
        assert_success(&output);
        serde_json::from_slice(&output.stdout).expect("prepare prints JSON")
    }

    /// Runs `seal image prepare REF`, expecting failure; returns stderr.
    pub fn prepare_fails(&self, reference: &str) -> String {
        let output = self.run(&["image", "prepare", reference]);
        assert!(
            !output.status.success(),
            "prepare {reference} should fail; stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// The entries of a directory of the store (`rootfs`, `tmp`, ...), sorted.
    pub fn store_entries(&self, dir: &str) -> Vec<String> {
        list(&self.home().join(dir))
    }
}

pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

pub fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "seal failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small root file system: busybox, `sh` linking to it, and a passwd with two users.
pub fn busybox_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static is installed");
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    std::fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    )
    .unwrap();
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// The host architecture as OCI names it.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A tar archive written header by header, so names can be anything, even malicious.
#[derive(Default)]
pub struct Tar {
    bytes: Vec<u8>,
}

pub const MTIME: u64 = 1_234_567_890;

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends one entry with a raw name (at most 100 bytes) and optional link target.
    pub fn entry(
        mut self,
        name: &str,
        kind: tar::EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&str>,
    ) -> Tar {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(1000);
        header.set_gid(1000);
        header.set_mtime(MTIME);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, padding));
        self
    }

    pub fn dir(self, name: &str) -> Tar {
        self.entry(name, tar::EntryType::Directory, 0o755, b"", None)
    }

    pub fn file(self, name: &str, data: &str) -> Tar {
        self.entry(name, tar::EntryType::Regular, 0o644, data.as_bytes(), None)
    }

    pub fn symlink(self, name: &str, target: &str) -> Tar {
        self.entry(name, tar::EntryType::Symlink, 0o777, b"", Some(target))
    }

    pub fn hard_link(self, name: &str, target: &str) -> Tar {
        self.entry(name, tar::EntryType::Link, 0o644, b"", Some(target))
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend(std::iter::repeat_n(0u8, 1024));
        self.bytes
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// A layer blob: bytes as stored, their media type, and the digest of the plain tar.
pub struct Layer {
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer::new(tar.clone(), "application/vnd.oci.image.layer.v1.tar", &tar)
    }

    pub fn gzip(tar: Vec<u8>) -> Layer {
        Layer::new(
            gzip(&tar),
            "application/vnd.oci.image.layer.v1.tar+gzip",
            &tar,
        )
    }

    pub fn zstd(tar: Vec<u8>) -> Layer {
        Layer::new(
            zstd(&tar),
            "application/vnd.oci.image.layer.v1.tar+zstd",
            &tar,
        )
    }

    pub fn new(bytes: Vec<u8>, media_type: &str, tar: &[u8]) -> Layer {
        Layer {
            media_type: media_type.to_string(),
            bytes,
            diff_id: sha256(tar),
        }
    }

    pub fn digest(&self) -> String {
        sha256(&self.bytes)
    }
}

/// An image written into an OCI layout.
pub struct OciImage {
    pub manifest: String,
    pub config: String,
}

/// Writes `bytes` as a blob of the layout `dir`; returns its digest.
pub fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
    digest
}

/// Writes a manifest (OCI media types) and config for `layers` as blobs of `dir`.
pub fn write_image(dir: &Path, layers: &[Layer], arch: &str) -> OciImage {
    write_image_typed(
        dir,
        layers,
        arch,
        "application/vnd.oci.image.manifest.v1+json",
    )
}

pub fn write_image_typed(dir: &Path, layers: &[Layer], arch: &str, media: &str) -> OciImage {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = write_blob(dir, &config_bytes);
    let layer_descriptors: Vec<serde_json::Value> = layers
        .iter()
        .map(|layer| {
            let digest = write_blob(dir, &layer.bytes);
            serde_json::json!({
                "mediaType": layer.media_type,
                "digest": digest,
                "size": layer.bytes.len(),
            })
        })
        .collect();
    let config_media = if media.contains("docker") {
        "application/vnd.docker.container.image.v1+json"
    } else {
        "application/vnd.oci.image.config.v1+json"
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media,
        "config": {"mediaType": config_media, "digest": config_digest, "size": config_bytes.len()},
        "layers": layer_descriptors,
    });
    let manifest = write_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    OciImage {
        manifest,
        config: config_digest,
    }
}

/// Writes `index.json` listing `entries` (digest, media type, tag).
pub fn write_index(dir: &Path, entries: &[(&str, &str, Option<&str>)]) {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(digest, media, tag)| {
            let size = std::fs::metadata(dir.join("blobs/sha256").join(&digest[7..]))
                .unwrap()
                .len();
            let mut entry = serde_json::json!({"mediaType": media, "digest": digest, "size": size});
            if let Some(tag) = tag {
                entry["annotations"] =
                    serde_json::json!({"org.opencontainers.image.ref.name": tag});
            }
            entry
        })
        .collect();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A complete layout at `dir` holding one image made of `layers`, tagged `latest`.
pub fn oci_layout(dir: &Path, layers: &[Layer]) -> OciImage {
    let image = write_image(dir, layers, host_arch());
    let media = "application/vnd.oci.image.manifest.v1+json";
    write_index(dir, &[(&image.manifest, media, Some("latest"))]);
    image
}
