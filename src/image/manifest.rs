//! Reading image documents: manifests, indexes (manifest lists) and configs, in their OCI
//! and Docker schema 2 media types; choosing a platform; layer compression.

use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, Os,
};

use super::digest::from_oci;
use super::{Digest, ImageConfig, ImageError};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a JSON blob turned out to be.
pub(crate) enum Document {
    Manifest(Box<ImageManifest>),
    Index(Box<ImageIndex>),
    /// Valid JSON but neither a manifest nor an index (for example an image config).
    Other,
}

/// Decides whether `bytes` (read from `origin`) is a manifest or an index, and parses it.
pub(crate) fn classify(bytes: &[u8], origin: &str) -> Result<Document, ImageError> {
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(_) => return Ok(Document::Other),
    };
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or("");
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
        return Err(ImageError::malformed(
            origin,
            "image manifest",
            "Docker schema 1 manifests are not supported; re-push the image with a current tool",
        ));
    }
    let is_index = value.get("manifests").is_some_and(|m| m.is_array())
        || media_type == DOCKER_MANIFEST_LIST
        || media_type == MediaType::ImageIndex.as_ref();
    if is_index {
        let index = serde_json::from_value(value)
            .map_err(|e| ImageError::malformed(origin, "image index", e))?;
        return Ok(Document::Index(Box::new(index)));
    }
    let is_manifest = (value.get("config").is_some() && value.get("layers").is_some())
        || media_type == DOCKER_MANIFEST
        || media_type == MediaType::ImageManifest.as_ref();
    if is_manifest {
        let manifest = serde_json::from_value(value)
            .map_err(|e| ImageError::malformed(origin, "image manifest", e))?;
        return Ok(Document::Manifest(Box::new(manifest)));
    }
    Ok(Document::Other)
}

/// The platform this process runs on, in OCI terms.
pub(crate) fn host_platform() -> (Os, Arch) {
    (Os::Linux, Arch::default())
}

/// Picks the manifest for the host platform (linux and the host architecture) from an index.
pub(crate) fn select_platform(index: &ImageIndex, origin: &str) -> Result<Digest, ImageError> {
    let (os, arch) = host_platform();
    let manifests = index.manifests();
    let matching = manifests.iter().find(|d| {
        d.platform()
            .as_ref()
            .is_some_and(|p| *p.os() == os && *p.architecture() == arch)
    });
    // An index entry without a platform is taken only when it is the only entry.
    let chosen = matching.or_else(|| match manifests.as_slice() {
        [only] if only.platform().is_none() => Some(only),
        _ => None,
    });
    match chosen {
        Some(descriptor) => from_oci(descriptor.digest()),
        None => Err(ImageError::NoPlatform {
            origin: origin.to_string(),
            wanted: format!("{os}/{arch}"),
            available: describe_platforms(manifests),
        }),
    }
}

fn describe_platforms(manifests: &[Descriptor]) -> String {
    let names: Vec<String> = manifests
        .iter()
        .map(|d| match d.platform() {
            Some(p) => match p.variant() {
                Some(variant) => format!("{}/{}/{variant}", p.os(), p.architecture()),
                None => format!("{}/{}", p.os(), p.architecture()),
            },
            None => "an entry without a platform".to_string(),
        })
        .collect();
    if names.is_empty() {
        "no manifests".to_string()
    } else {
        names.join(", ")
    }
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the media type, if it says.
    pub(crate) fn from_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// From the first bytes of the blob.
    pub(crate) fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI media type of a layer compressed this way.
    pub(crate) fn oci_media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

/// One layer of a manifest.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

/// A manifest and its config, parsed and cross-checked.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
}

impl Image {
    /// Joins a manifest with its config, checking they describe the same layers.
    pub(crate) fn new(
        manifest_digest: Digest,
        manifest: &ImageManifest,
        config_bytes: &[u8],
    ) -> Result<Image, ImageError> {
        let origin = format!("the config of image {manifest_digest}");
        let config: ImageConfiguration = serde_json::from_slice(config_bytes)
            .map_err(|e| ImageError::malformed(&origin, "image config", e))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            let reason = format!(
                "it lists {} layer digests but the manifest has {} layers",
                diff_ids.len(),
                manifest.layers().len()
            );
            return Err(ImageError::malformed(&origin, "image config", reason));
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(descriptor, diff_id)| {
                Ok(Layer {
                    digest: from_oci(descriptor.digest())?,
                    media_type: descriptor.media_type().to_string(),
                    size: descriptor.size(),
                    diff_id: Digest::parse(diff_id)?,
                })
            })
            .collect::<Result<Vec<_>, ImageError>>()?;
        Ok(Image {
            manifest_digest,
            config_digest: from_oci(manifest.config().digest())?,
            layers,
            config: runtime_config(&config),
        })
    }
}

/// The parts of an image config that decide how a step starts.
fn runtime_config(config: &ImageConfiguration) -> ImageConfig {
    let Some(c) = config.config() else {
        return ImageConfig::default();
    };
    ImageConfig {
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_by_media_type_then_magic() {
        let docker_gzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
        assert_eq!(
            Compression::from_media_type(docker_gzip),
            Some(Compression::Gzip)
        );
        let zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert_eq!(Compression::from_media_type(zstd), Some(Compression::Zstd));
        let plain = "application/vnd.oci.image.layer.v1.tar";
        assert_eq!(Compression::from_media_type(plain), Some(Compression::None));
        assert_eq!(
            Compression::from_media_type("application/octet-stream"),
            None
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
    }

    #[test]
    fn schema_1_is_refused_with_a_reason() {
        let err = classify(br#"{"schemaVersion":1,"fsLayers":[]}"#, "x")
            .err()
            .unwrap();
        assert!(err.to_string().contains("x is not a valid image manifest"));
    }
}
