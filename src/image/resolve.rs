//! [`Store::resolve`]: the digest an unpinned reference stands for today, so that
//! `seal lock` can pin it.

use super::archive::{self, DockerArchive};
use super::layout::{self, LayoutDir};
use super::source::BlobSource;
use super::{Digest, ImageError, ImageRef, ImageSource, Store, digest::from_oci};

impl Store {
    /// The digest `reference` names now: a name recorded by `seal image import`, the
    /// manifest a tag of an OCI layout points at, or the image ID of a `docker save`
    /// archive holding one image. A pinned reference resolves to its own pin.
    pub fn resolve(&self, reference: &ImageRef) -> Result<Digest, ImageError> {
        if let Some(digest) = &reference.digest {
            return Ok(digest.clone());
        }
        match &reference.source {
            ImageSource::Registry { name, tag } => self.resolve_name(name, tag.as_deref()),
            ImageSource::OciLayout { dir, tag } => resolve_layout(&LayoutDir::new(dir), tag),
            ImageSource::DockerArchive { file } => {
                archive::only_image_id(&DockerArchive::open(file)?)
            }
        }
    }

    /// Looks `name[:tag]` up among the names `seal image import` recorded; a missing tag
    /// and `latest` are the same.
    fn resolve_name(&self, name: &str, tag: Option<&str>) -> Result<Digest, ImageError> {
        let names = self.names()?;
        let candidates = match tag {
            Some("latest") | None => vec![name.to_string(), format!("{name}:latest")],
            Some(tag) => vec![format!("{name}:{tag}")],
        };
        candidates
            .iter()
            .find_map(|candidate| names.get(candidate).cloned())
            .ok_or_else(|| ImageError::NotFound {
                origin: format!("the image store {}", self.root().display()),
                what: format!("image named `{}`", candidates[candidates.len() - 1]),
                hint: Some(format!(
                    "import it with `seal image import DIR --tag {}` (`seal image ls` lists \
                     the names the store has); registry pulls are not supported yet",
                    candidates[0]
                )),
            })
    }
}

/// The manifest (or index) a layout's tag points at; without a tag, its only image.
fn resolve_layout(dir: &LayoutDir, tag: &Option<String>) -> Result<Digest, ImageError> {
    let index = layout::read_index(dir)?;
    let manifests = index.manifests();
    let found = match tag {
        Some(tag) => manifests
            .iter()
            .find(|d| layout::ref_name(d) == Some(tag.as_str())),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    let Some(descriptor) = found else {
        let what = match tag {
            Some(tag) => format!("tag `{tag}`"),
            None => "exactly one image (name one with oci:DIR:TAG)".to_string(),
        };
        return Err(ImageError::NotFound {
            origin: dir.origin(),
            what,
            hint: Some(format!("it holds: {}", layout::describe_entries(&index))),
        });
    };
    from_oci(descriptor.digest())
}
