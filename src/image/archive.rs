//! `docker save` archives.
//!
//! Two layouts exist. The classic one has `manifest.json` (a list of images, each naming
//! its config file `<image id>.json` and its layer tars, such as `<id>/layer.tar`; a layer
//! shared by two images may be a symlink to another one). Archives from Docker 25 on hold
//! an OCI image layout as well (`index.json`, `blobs/sha256/…`), and their `manifest.json`
//! points into it. A reference pins an image by its image ID (the config digest), which is
//! what `docker images` shows; in the newer layout the manifest digest works as well.
//!
//! A classic image has no manifest, so seal writes an OCI manifest for it (deterministic, so
//! every import of the same archive gives the same manifest digest) and remembers which
//! image ID it belongs to.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use rayon::prelude::*;
use serde::Deserialize;
use tracing::debug;

use super::digest::to_oci;
use super::layout;
use super::manifest::{Compression, Document, classify};
use super::source::{self, BlobSource};
use super::{Digest, ImageError, Store};

/// How deep symlinks between files of an archive may chain.
const MAX_LINK_HOPS: usize = 16;

/// A `docker save` archive, indexed so files inside can be read directly.
pub(crate) struct DockerArchive {
    path: PathBuf,
    /// Regular files: offset of their data in the archive, and size.
    files: HashMap<String, (u64, u64)>,
    /// Symlinks: their targets, as written.
    links: HashMap<String, String>,
}

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveImage {
    config: String,
    #[serde(default)]
    layers: Vec<String>,
}

impl DockerArchive {
    /// Reads the archive's table of contents (headers only; file data is skipped).
    pub(crate) fn open(path: &Path) -> Result<DockerArchive, ImageError> {
        let file = fs_err::File::open(path)?;
        let mut archive = tar::Archive::new(file);
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .map_err(|e| ImageError::io(path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io(path, e))?;
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    files.insert(name, (entry.raw_file_position(), entry.size()));
                }
                tar::EntryType::Symlink => {
                    let target = entry.link_name_bytes().unwrap_or_default();
                    links.insert(name, String::from_utf8_lossy(&target).into_owned());
                }
                _ => {}
            }
        }
        Ok(DockerArchive {
            path: path.to_path_buf(),
            files,
            links,
        })
    }

    /// Follows symlinks inside the archive to a regular file.
    fn resolve(&self, path: &str) -> Option<(u64, u64)> {
        let mut current = normalize(path);
        for _ in 0..MAX_LINK_HOPS {
            if let Some(location) = self.files.get(&current) {
                return Some(*location);
            }
            let target = self.links.get(&current)?;
            let base = current.rsplit_once('/').map_or("", |(dir, _)| dir);
            current = normalize(&format!("{base}/{target}"));
        }
        None
    }
}

impl BlobSource for DockerArchive {
    fn origin(&self) -> String {
        format!("docker-archive:{}", self.path.display())
    }

    fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send + '_>>, ImageError> {
        let Some((offset, size)) = self.resolve(path) else {
            return Ok(None);
        };
        let mut file = fs_err::File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(Some(Box::new(std::io::BufReader::new(file).take(size))))
    }
}

/// Lexically normalises a path inside the archive (`./a/../b` is `b`).
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Copies the image with ID (or manifest digest) `pin` from the archive `file` into the
/// store, and returns its manifest digest.
pub(crate) fn fetch(store: &Store, file: &Path, pin: &Digest) -> Result<Digest, ImageError> {
    let archive = DockerArchive::open(file)?;
    let images = read_manifest_json(&archive)?;
    let mut ids = Vec::new();
    for image in &images {
        let config = archive_file(&archive, &image.config)?;
        let id = Digest::of_bytes(&config);
        if id == *pin {
            return fetch_image(store, &archive, image, &config, pin);
        }
        ids.push(id);
    }
    // A newer archive may be pinned by the digest of a manifest of its OCI layout.
    if archive.files.contains_key("index.json")
        && archive.resolve(&source::blob_path(pin)).is_some()
    {
        return layout::copy_image(store, &archive, pin);
    }
    Err(pin_not_found(&archive, pin, ids))
}

/// The image ID of an archive that holds exactly one image.
pub(crate) fn only_image_id(archive: &DockerArchive) -> Result<Digest, ImageError> {
    let images = read_manifest_json(archive)?;
    let [image] = images.as_slice() else {
        let mut ids = Vec::new();
        for image in &images {
            ids.push(Digest::of_bytes(&archive_file(archive, &image.config)?).to_string());
        }
        return Err(ImageError::NotFound {
            origin: archive.origin(),
            what: "exactly one image".to_string(),
            hint: Some(format!(
                "it holds {}; pin one with docker-archive:FILE@<image ID>",
                ids.join(", ")
            )),
        });
    };
    Ok(Digest::of_bytes(&archive_file(archive, &image.config)?))
}

fn pin_not_found(archive: &DockerArchive, pin: &Digest, ids: Vec<Digest>) -> ImageError {
    match <[Digest; 1]>::try_from(ids) {
        Ok([actual]) => ImageError::PinMismatch {
            origin: archive.origin(),
            expected: pin.clone(),
            actual,
        },
        Err(ids) => {
            let list: Vec<String> = ids.iter().map(Digest::to_string).collect();
            ImageError::NotFound {
                origin: archive.origin(),
                what: format!("image with ID {pin}"),
                hint: Some(format!("it holds images {}", list.join(", "))),
            }
        }
    }
}

fn read_manifest_json(archive: &DockerArchive) -> Result<Vec<ArchiveImage>, ImageError> {
    let bytes =
        source::read_small(archive, "manifest.json")?.ok_or_else(|| ImageError::NotFound {
            origin: archive.origin(),
            what: "manifest.json".to_string(),
            hint: Some("is it the output of `docker save`?".to_string()),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::malformed(
            format!("manifest.json in {}", archive.origin()),
            "manifest",
            e,
        )
    })
}

fn archive_file(archive: &DockerArchive, path: &str) -> Result<Vec<u8>, ImageError> {
    source::read_small(archive, path)?.ok_or_else(|| ImageError::NotFound {
        origin: archive.origin(),
        what: format!("file `{path}` (named in manifest.json)"),
        hint: None,
    })
}

/// Copies one image: through its real OCI manifest when the archive has one, else by
/// writing a manifest for the classic layout.
fn fetch_image(
    store: &Store,
    archive: &DockerArchive,
    image: &ArchiveImage,
    config: &[u8],
    id: &Digest,
) -> Result<Digest, ImageError> {
    if let Some(manifest) = oci_manifest_for(archive, id)? {
        debug!(%manifest, "the archive has an OCI manifest for this image");
        let digest = layout::copy_image(store, archive, &manifest)?;
        store.record_config(id, &digest)?;
        return Ok(digest);
    }
    let layers: Vec<Descriptor> = image
        .layers
        .par_iter()
        .map(|path| copy_layer(store, archive, path))
        .collect::<Result<_, _>>()?;
    let config_digest = store.write_blob_bytes(config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config.len() as u64,
            to_oci(&config_digest),
        ))
        .layers(layers)
        .build()
        .expect("all required manifest fields are set");
    let bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
    let digest = store.write_blob_bytes(&bytes)?;
    store.record_config(id, &digest)?;
    debug!(manifest = %digest, image = %id, "wrote a manifest for a classic docker archive");
    Ok(digest)
}

/// The manifest in the archive's OCI layout whose config is `id`, if there is a layout.
fn oci_manifest_for(archive: &DockerArchive, id: &Digest) -> Result<Option<Digest>, ImageError> {
    if !archive.files.contains_key("index.json") {
        return Ok(None);
    }
    let index = layout::read_index(archive)?;
    for entry in index.manifests() {
        let digest = Digest::parse(entry.digest().as_ref())?;
        let Some(bytes) = source::read_blob(archive, &digest)? else {
            continue;
        };
        let origin = format!("{} in {}", source::blob_path(&digest), archive.origin());
        let is_match = match classify(&bytes, &origin)? {
            Document::Manifest(manifest) => manifest.config().digest().as_ref() == id.as_str(),
            _ => false,
        };
        if is_match {
            return Ok(Some(digest));
        }
    }
    Ok(None)
}

/// Copies one layer file into the store; its digest is whatever its content hashes to.
fn copy_layer(
    store: &Store,
    archive: &DockerArchive,
    path: &str,
) -> Result<Descriptor, ImageError> {
    let mut head = [0u8; 4];
    let mut reader = archive.open(path)?.ok_or_else(|| ImageError::NotFound {
        origin: archive.origin(),
        what: format!("layer `{path}` (named in manifest.json)"),
        hint: None,
    })?;
    let got = read_head(&mut reader, &mut head)
        .map_err(|e| ImageError::io(format!("{path} in {}", archive.origin()), e))?;
    let compression = Compression::sniff(&head[..got]);
    let written = store.write_blob((&head[..got]).chain(reader), None, |_| {
        unreachable!("no expected digest")
    })?;
    debug!(layer = %written.digest, ?compression, path, "copied layer");
    Ok(Descriptor::new(
        compression.oci_media_type(),
        written.size,
        to_oci(&written.digest),
    ))
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the stream.
fn read_head(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn archive_paths_normalise_lexically() {
        assert_eq!(normalize("./abc/layer.tar"), "abc/layer.tar");
        assert_eq!(normalize("abc/../def/layer.tar"), "def/layer.tar");
        assert_eq!(normalize("/x//y/"), "x/y");
    }
}
