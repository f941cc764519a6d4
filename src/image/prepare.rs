//! [`Store::prepare`]: from a pinned reference to a verified, unpacked image.
//!
//! An image pinned by digest that is already in the store is used from there, whatever
//! its name or source; otherwise it is copied in from its source (checking every digest)
//! and then unpacked.

use tracing::debug;

use super::manifest::{Document, Image, classify, select_platform};
use super::store::MAX_DOCUMENT_SIZE;
use super::{Digest, ImageError, ImageRef, ImageSource, PreparedImage, Store, archive, layout};

impl Store {
    /// Makes the image `reference` ready to run: in the store, verified, and unpacked.
    /// The reference must be pinned by a digest.
    pub fn prepare(&self, reference: &ImageRef) -> Result<PreparedImage, ImageError> {
        let pin = reference
            .digest
            .as_ref()
            .ok_or_else(|| ImageError::Unpinned(reference.to_string()))?;
        let manifest_digest = match self.find_manifest(pin)? {
            Some(found) => {
                debug!(%pin, manifest = %found, "image found in the store");
                found
            }
            None => self.fetch(reference, pin)?,
        };
        let image = self.load_image(&manifest_digest)?;
        let rootfs = self.ensure_rootfs(&image)?;
        let home = super::rootfs::home_in(&rootfs, &image.config.user);
        Ok(PreparedImage {
            manifest_digest: image.manifest_digest,
            config_digest: image.config_digest,
            layers: image.layers.into_iter().map(|l| l.digest).collect(),
            config: image.config,
            rootfs,
            home,
        })
    }

    /// The manifest the store has for `pin`: the pin itself when it is a manifest, the
    /// platform's manifest when it is an index, or the manifest recorded for an image ID.
    fn find_manifest(&self, pin: &Digest) -> Result<Option<Digest>, ImageError> {
        let by_image_id = self.manifest_for_config(pin)?;
        if let Some(manifest) = by_image_id.filter(|m| self.has_blob(m)) {
            return Ok(Some(manifest));
        }
        if !self.has_blob(pin) || self.blob_size(pin)? > MAX_DOCUMENT_SIZE {
            return Ok(None);
        }
        let bytes = self.read_blob(pin)?;
        let origin = format!("blob {pin} in the store");
        match classify(&bytes, &origin)? {
            Document::Manifest(_) => Ok(Some(pin.clone())),
            Document::Index(index) => {
                let chosen = select_platform(&index, &origin)?;
                Ok(self.has_blob(&chosen).then_some(chosen))
            }
            Document::Other => Ok(None),
        }
    }

    fn blob_size(&self, digest: &Digest) -> Result<u64, ImageError> {
        Ok(fs_err::metadata(self.blob_path(digest))?.len())
    }

    /// Copies the image from its source into the store; returns its manifest digest.
    fn fetch(&self, reference: &ImageRef, pin: &Digest) -> Result<Digest, ImageError> {
        debug!(%reference, "copying the image into the store");
        match &reference.source {
            ImageSource::OciLayout { dir, tag } => {
                layout::fetch(self, &layout::LayoutDir::new(dir), tag.as_deref(), pin)
            }
            ImageSource::DockerArchive { file } => archive::fetch(self, file, pin),
            // TODO: pull from registries (OCI distribution API); until then only images
            // already in the store can be used by name.
            ImageSource::Registry { .. } => Err(ImageError::NotInStore {
                reference: reference.to_string(),
            }),
        }
    }

    /// Reads a manifest and its config from the store, both checked against their digests.
    pub(crate) fn load_image(&self, manifest_digest: &Digest) -> Result<Image, ImageError> {
        let bytes = self.read_blob(manifest_digest)?;
        let origin = format!("blob {manifest_digest} in the store");
        let Document::Manifest(manifest) = classify(&bytes, &origin)? else {
            return Err(ImageError::malformed(
                origin,
                "image manifest",
                "it is not a manifest",
            ));
        };
        let config_digest = super::digest::from_oci(manifest.config().digest())?;
        let config = self.read_blob(&config_digest)?;
        Image::new(manifest_digest.clone(), &manifest, &config)
    }

    /// The total size of an image's blobs in the store: manifest, config and layers.
    pub fn image_size(&self, manifest_digest: &Digest) -> Result<u64, ImageError> {
        let bytes = self.read_blob(manifest_digest)?;
        let origin = format!("blob {manifest_digest} in the store");
        let Document::Manifest(manifest) = classify(&bytes, &origin)? else {
            return Err(ImageError::malformed(
                origin,
                "image manifest",
                "it is not a manifest",
            ));
        };
        let blobs = manifest.layers().iter().map(|l| l.size()).sum::<u64>();
        Ok(bytes.len() as u64 + manifest.config().size() + blobs)
    }
}
