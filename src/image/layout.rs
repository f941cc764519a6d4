//! OCI image layouts: reading one (a directory, or the same files inside a newer
//! `docker save` archive) into the store, and writing one for `seal image import`.
//!
//! A layout has `index.json` listing manifests (or indexes), tagged with the annotation
//! `org.opencontainers.image.ref.name`, and every blob under `blobs/sha256/<hex>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};
use tracing::debug;

use super::digest::{from_oci, to_oci};
use super::manifest::{Document, classify, select_platform};
use super::source::{self, BlobSource};
use super::{Digest, ImageError, Store};

/// The annotation that holds a tag in a layout's `index.json`.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI layout directory on disk.
pub(crate) struct LayoutDir {
    dir: PathBuf,
}

impl LayoutDir {
    pub(crate) fn new(dir: &Path) -> LayoutDir {
        LayoutDir {
            dir: dir.to_path_buf(),
        }
    }
}

impl BlobSource for LayoutDir {
    fn origin(&self) -> String {
        format!("oci:{}", self.dir.display())
    }

    fn open(&self, path: &str) -> Result<Option<Box<dyn Read + Send + '_>>, ImageError> {
        let full = self.dir.join(path);
        match std::fs::File::open(&full) {
            Ok(file) => Ok(Some(Box::new(std::io::BufReader::new(file)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImageError::io(full, e)),
        }
    }
}

/// Reads a layout's `index.json`.
pub(crate) fn read_index(source: &dyn BlobSource) -> Result<ImageIndex, ImageError> {
    let Some(bytes) = source::read_small(source, "index.json")? else {
        return Err(ImageError::NotFound {
            origin: source.origin(),
            what: "index.json".to_string(),
            hint: Some("an OCI image layout has oci-layout, index.json and blobs/".to_string()),
        });
    };
    serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::malformed(
            format!("index.json in {}", source.origin()),
            "image index",
            e,
        )
    })
}

/// Copies the image pinned by `pin` from a layout into the store and returns the digest of
/// its (platform) manifest. With a `tag`, the tag must name `pin`, or an index holding it.
pub(crate) fn fetch(
    store: &Store,
    source: &dyn BlobSource,
    tag: Option<&str>,
    pin: &Digest,
) -> Result<Digest, ImageError> {
    let index = read_index(source)?;
    match tag {
        Some(tag) => check_tag(source, &index, tag, pin)?,
        None => check_listed(source, &index, pin)?,
    }
    copy_image(store, source, pin)
}

/// Makes sure `tag` resolves to `pin` (or to an index that contains `pin`).
fn check_tag(
    source: &dyn BlobSource,
    index: &ImageIndex,
    tag: &str,
    pin: &Digest,
) -> Result<(), ImageError> {
    let tagged = index.manifests().iter().find(|d| ref_name(d) == Some(tag));
    let Some(tagged) = tagged else {
        return Err(ImageError::NotFound {
            origin: source.origin(),
            what: format!("tag `{tag}`"),
            hint: Some(format!("it holds: {}", describe_entries(index))),
        });
    };
    let actual = from_oci(tagged.digest())?;
    if actual == *pin || index_lists(source, &actual, pin)? {
        return Ok(());
    }
    Err(ImageError::PinMismatch {
        origin: format!("{}:{tag}", source.origin()),
        expected: pin.clone(),
        actual,
    })
}

/// Without a tag, the pin must be a blob of the layout; say what the layout holds if not.
fn check_listed(
    source: &dyn BlobSource,
    index: &ImageIndex,
    pin: &Digest,
) -> Result<(), ImageError> {
    if source.open(&source::blob_path(pin))?.is_some() {
        return Ok(());
    }
    if let [only] = index.manifests().as_slice() {
        let actual = from_oci(only.digest())?;
        return Err(ImageError::PinMismatch {
            origin: source.origin(),
            expected: pin.clone(),
            actual,
        });
    }
    Err(ImageError::NotFound {
        origin: source.origin(),
        what: format!("image {pin}"),
        hint: Some(format!("it holds: {}", describe_entries(index))),
    })
}

/// Whether the blob `index` is an image index that lists `child`.
fn index_lists(
    source: &dyn BlobSource,
    index: &Digest,
    child: &Digest,
) -> Result<bool, ImageError> {
    let bytes = source::require_blob(source, index)?;
    let origin = format!("{} in {}", source::blob_path(index), source.origin());
    Ok(match classify(&bytes, &origin)? {
        Document::Index(index) => index
            .manifests()
            .iter()
            .any(|d| d.digest().as_ref() == child.as_str()),
        _ => false,
    })
}

/// Copies the manifest or index `pin`, and everything it needs, into the store. Manifests
/// are written last, so a manifest in the store means its config and layers are there too.
pub(crate) fn copy_image(
    store: &Store,
    source: &dyn BlobSource,
    pin: &Digest,
) -> Result<Digest, ImageError> {
    let bytes = source::require_blob(source, pin)?;
    let origin = format!("{} in {}", source::blob_path(pin), source.origin());
    match classify(&bytes, &origin)? {
        Document::Manifest(manifest) => {
            copy_manifest(store, source, pin, &manifest, &bytes)?;
            Ok(pin.clone())
        }
        Document::Index(index) => {
            let chosen = select_platform(&index, &origin)?;
            debug!(index = %pin, manifest = %chosen, "chose the manifest for this platform");
            let child = source::require_blob(source, &chosen)?;
            let child_origin = format!("{} in {}", source::blob_path(&chosen), source.origin());
            let Document::Manifest(manifest) = classify(&child, &child_origin)? else {
                return Err(ImageError::malformed(
                    child_origin,
                    "image manifest",
                    "it is not one",
                ));
            };
            copy_manifest(store, source, &chosen, &manifest, &child)?;
            store.write_blob_bytes(&bytes)?;
            Ok(chosen)
        }
        Document::Other => Err(ImageError::malformed(
            origin,
            "image manifest",
            "the pinned digest names neither a manifest nor an index",
        )),
    }
}

fn copy_manifest(
    store: &Store,
    source: &dyn BlobSource,
    digest: &Digest,
    manifest: &ImageManifest,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let mut blobs = vec![(
        from_oci(manifest.config().digest())?,
        manifest.config().size(),
    )];
    for layer in manifest.layers() {
        blobs.push((from_oci(layer.digest())?, layer.size()));
    }
    source::copy_blobs(store, source, &blobs)?;
    let written = store.write_blob_bytes(bytes)?;
    debug_assert_eq!(written, *digest);
    Ok(())
}

pub(crate) fn ref_name(descriptor: &Descriptor) -> Option<&str> {
    descriptor
        .annotations()
        .as_ref()?
        .get(REF_NAME)
        .map(String::as_str)
}

/// `sha256:… (tag latest), …` for messages.
pub(crate) fn describe_entries(index: &ImageIndex) -> String {
    let entries: Vec<String> = index
        .manifests()
        .iter()
        .map(|d| match ref_name(d) {
            Some(tag) => format!("{} (tag `{tag}`)", d.digest()),
            None => d.digest().to_string(),
        })
        .collect();
    if entries.is_empty() {
        "nothing".to_string()
    } else {
        entries.join(", ")
    }
}

/// Writes the image `manifest` (with its config and layers, taken from the store) into the
/// layout `dir` under `tag`, creating the layout if needed and replacing an older `tag`.
pub(crate) fn write(
    store: &Store,
    dir: &Path,
    tag: &str,
    manifest: &Digest,
    blobs: &[Digest],
) -> Result<(), ImageError> {
    fs_err::create_dir_all(dir.join("blobs/sha256"))?;
    fs_err::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for digest in blobs.iter().chain([manifest]) {
        let target = dir.join(source::blob_path(digest));
        if !target.exists() {
            fs_err::copy(store.blob_path(digest), &target)?;
        }
    }
    let source = LayoutDir::new(dir);
    let mut entries = match source::read_small(&source, "index.json")? {
        Some(_) => read_index(&source)?.manifests().clone(),
        None => Vec::new(),
    };
    entries.retain(|d| ref_name(d) != Some(tag));
    let size = fs_err::metadata(store.blob_path(manifest))?.len();
    let mut descriptor = Descriptor::new(MediaType::ImageManifest, size, to_oci(manifest));
    descriptor.set_annotations(Some([(REF_NAME.to_string(), tag.to_string())].into()));
    entries.push(descriptor);
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(entries)
        .build()
        .expect("all required index fields are set");
    let json = serde_json::to_vec_pretty(&index).expect("an index serialises");
    fs_err::write(dir.join("index.json"), json)?;
    Ok(())
}
