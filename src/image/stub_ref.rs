//! TEMPORARY stand-in for reference parsing until the image branch lands.

use std::path::Path;

use super::{Digest, ImageError, ImageRef, ImageSource};

impl ImageRef {
    pub fn parse(text: &str) -> Result<ImageRef, ImageError> {
        let (rest, digest) = match text.rsplit_once('@') {
            Some((rest, digest)) => (rest, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        let source = if let Some(dir) = rest.strip_prefix("oci:") {
            ImageSource::OciLayout {
                dir: dir.into(),
                tag: None,
            }
        } else if let Some(file) = rest.strip_prefix("docker-archive:") {
            ImageSource::DockerArchive { file: file.into() }
        } else {
            let (name, tag) = match rest.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => (n.to_string(), Some(t.to_string())),
                _ => (rest.to_string(), None),
            };
            ImageSource::Registry { name, tag }
        };
        Ok(ImageRef { source, digest })
    }

    pub fn resolve_paths(&self, _base: &Path) -> ImageRef {
        self.clone()
    }
}

impl super::Store {
    pub fn prepare(&self, _reference: &ImageRef) -> Result<super::PreparedImage, ImageError> {
        Err(ImageError::BadDigest("image store not merged yet".into()))
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self)
    }
}
