//! Image references as written in pipelines and on the command line.
//!
//! Three forms:
//! - `[registry/]repo[:tag][@sha256:<hex>]`: a registry image, or a name recorded by
//!   `seal image import`;
//! - `oci:<dir>[:tag][@sha256:<hex>]`: an OCI image layout directory; the pin is the digest
//!   of a manifest (or of an index, from which the host platform is chosen);
//! - `docker-archive:<file>[@sha256:<hex>]`: the output of `docker save`; the pin is the
//!   *image ID*, the digest of the image config, because that is what `docker images` and
//!   `docker inspect` show. The digest of a manifest inside a newer archive is accepted too.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{Digest, ImageError, ImageRef, ImageSource};

/// The registry a name without a registry part refers to.
pub const DEFAULT_REGISTRY: &str = "docker.io";

impl ImageRef {
    /// Parses a reference in one of the three forms described in the module docs.
    pub fn parse(text: &str) -> Result<ImageRef, ImageError> {
        let (body, digest) = split_pin(text)?;
        let source = if let Some(rest) = body.strip_prefix("oci:") {
            parse_oci(text, rest)?
        } else if let Some(file) = body.strip_prefix("docker-archive:") {
            if file.is_empty() {
                return Err(ImageError::bad_reference(
                    text,
                    "the archive file is missing",
                ));
            }
            ImageSource::DockerArchive {
                file: PathBuf::from(file),
            }
        } else {
            parse_registry(text, body)?
        };
        Ok(ImageRef { source, digest })
    }

    /// Whether the reference carries a digest.
    pub fn is_pinned(&self) -> bool {
        self.digest.is_some()
    }

    /// The same reference with relative `oci:` and `docker-archive:` paths made relative
    /// to `base` (the pipeline's directory). Registry references are returned unchanged.
    pub fn resolve_paths(&self, base: &Path) -> ImageRef {
        let source = match &self.source {
            ImageSource::OciLayout { dir, tag } => ImageSource::OciLayout {
                dir: base.join(dir),
                tag: tag.clone(),
            },
            ImageSource::DockerArchive { file } => ImageSource::DockerArchive {
                file: base.join(file),
            },
            registry @ ImageSource::Registry { .. } => registry.clone(),
        };
        ImageRef {
            source,
            digest: self.digest.clone(),
        }
    }

    /// The same reference pinned to `digest` (replacing any pin it had).
    pub fn with_digest(&self, digest: Digest) -> ImageRef {
        ImageRef {
            source: self.source.clone(),
            digest: Some(digest),
        }
    }
}

impl ImageSource {
    /// For a registry reference, the registry host and the repository path on it, with
    /// Docker's defaults applied (`busybox` is `docker.io`, `library/busybox`).
    pub fn registry_and_repository(&self) -> Option<(String, String)> {
        let ImageSource::Registry { name, .. } = self else {
            return None;
        };
        let (first, rest) = match name.split_once('/') {
            Some((first, rest)) if is_domain(first) => (first, rest.to_string()),
            _ => (DEFAULT_REGISTRY, name.clone()),
        };
        let repository = if first == DEFAULT_REGISTRY && !rest.contains('/') {
            format!("library/{rest}")
        } else {
            rest
        };
        Some((first.to_string(), repository))
    }
}

impl FromStr for ImageRef {
    type Err = ImageError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(text)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)?;
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (text, tag) = match self {
            ImageSource::Registry { name, tag } => (name.clone(), tag),
            ImageSource::OciLayout { dir, tag } => (format!("oci:{}", dir.display()), tag),
            ImageSource::DockerArchive { file } => {
                return write!(f, "docker-archive:{}", file.display());
            }
        };
        f.write_str(&text)?;
        if let Some(tag) = tag {
            write!(f, ":{tag}")?;
        }
        Ok(())
    }
}

/// Splits `text` into the part before `@` and the parsed digest after it.
fn split_pin(text: &str) -> Result<(&str, Option<Digest>), ImageError> {
    let Some((body, pin)) = text.rsplit_once('@') else {
        return Ok((text, None));
    };
    let digest = Digest::parse(pin).map_err(|_| {
        ImageError::bad_reference(text, format!("`{pin}` after `@` is not sha256:<64 hex>"))
    })?;
    Ok((body, Some(digest)))
}

/// Parses `<dir>[:tag]`; a colon followed by a `/` belongs to the directory.
fn parse_oci(text: &str, rest: &str) -> Result<ImageSource, ImageError> {
    let (dir, tag) = match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (dir, Some(tag)),
        _ => (rest, None),
    };
    if dir.is_empty() {
        return Err(ImageError::bad_reference(
            text,
            "the layout directory is missing",
        ));
    }
    if let Some(tag) = tag {
        check_tag(text, tag)?;
    }
    Ok(ImageSource::OciLayout {
        dir: PathBuf::from(dir),
        tag: tag.map(str::to_string),
    })
}

/// Parses `[registry/]repo[:tag]`.
fn parse_registry(text: &str, body: &str) -> Result<ImageSource, ImageError> {
    let (name, tag) = match body.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (body, None),
    };
    check_name(text, name)?;
    if let Some(tag) = tag {
        check_tag(text, tag)?;
    }
    Ok(ImageSource::Registry {
        name: name.to_string(),
        tag: tag.map(str::to_string),
    })
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, as in the OCI distribution spec.
fn check_tag(text: &str, tag: &str) -> Result<(), ImageError> {
    let mut bytes = tag.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        return Ok(());
    }
    Err(ImageError::bad_reference(
        text,
        format!("`{tag}` is not a valid tag (letters, digits, `_`, `.` and `-`, at most 128)"),
    ))
}

/// Repository names: `/`-separated lower-case components, optionally after a registry host.
fn check_name(text: &str, name: &str) -> Result<(), ImageError> {
    if name.is_empty() {
        return Err(ImageError::bad_reference(
            text,
            "the repository name is missing",
        ));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 && is_domain(components[0]) {
        check_domain(text, components.remove(0))?;
    }
    for component in components {
        if !is_name_component(component) {
            return Err(ImageError::bad_reference(
                text,
                format!(
                    "`{component}` is not a valid repository name component (lower-case \
                     letters and digits, separated by `.`, `_`, `__` or dashes)"
                ),
            ));
        }
    }
    Ok(())
}

/// A first component names a registry host when it looks like one, as Docker decides.
fn is_domain(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

fn check_domain(text: &str, domain: &str) -> Result<(), ImageError> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok {
        return Ok(());
    }
    Err(ImageError::bad_reference(
        text,
        format!("`{domain}` is not a valid registry host"),
    ))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_name_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let dashes = separator.bytes().all(|b| b == b'-');
        if !(matches!(separator, "." | "_" | "__") || dashes) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> String {
        format!("sha256:{}", "ab".repeat(32))
    }

    #[test]
    fn registry_forms_round_trip() {
        for text in [
            "busybox".to_string(),
            "local/busybox:1.36".to_string(),
            format!("quay.io/biocontainers/samtools:1.16--h00cdaf9_0@{}", pin()),
            format!("localhost:5000/a/b@{}", pin()),
        ] {
            let parsed = ImageRef::parse(&text).unwrap();
            assert!(
                matches!(parsed.source, ImageSource::Registry { .. }),
                "{text}"
            );
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn registry_host_port_is_not_a_tag() {
        let parsed = ImageRef::parse("localhost:5000/repo").unwrap();
        assert_eq!(
            parsed.source,
            ImageSource::Registry {
                name: "localhost:5000/repo".into(),
                tag: None
            }
        );
        let parts = parsed.source.registry_and_repository().unwrap();
        assert_eq!(parts, ("localhost:5000".into(), "repo".into()));
        let hub = ImageRef::parse("busybox")
            .unwrap()
            .source
            .registry_and_repository();
        assert_eq!(hub.unwrap(), ("docker.io".into(), "library/busybox".into()));
    }

    #[test]
    fn oci_and_archive_forms() {
        let parsed = ImageRef::parse(&format!("oci:images/bb:v1@{}", pin())).unwrap();
        assert_eq!(
            parsed.source,
            ImageSource::OciLayout {
                dir: "images/bb".into(),
                tag: Some("v1".into())
            }
        );
        assert!(parsed.is_pinned());
        let resolved = parsed.resolve_paths(Path::new("/pipelines"));
        assert_eq!(
            resolved.to_string(),
            format!("oci:/pipelines/images/bb:v1@{}", pin())
        );

        let colon_dir = ImageRef::parse("oci:/data/a:b/layout").unwrap();
        assert_eq!(
            colon_dir.source,
            ImageSource::OciLayout {
                dir: "/data/a:b/layout".into(),
                tag: None
            }
        );

        let archive = ImageRef::parse(&format!("docker-archive:bb.tar@{}", pin())).unwrap();
        assert_eq!(
            archive.source,
            ImageSource::DockerArchive {
                file: "bb.tar".into()
            }
        );
        assert_eq!(
            archive.to_string(),
            format!("docker-archive:bb.tar@{}", pin())
        );
    }

    #[test]
    fn malformed_references_say_what_is_wrong() {
        let cases = [
            ("Busybox", "repository name component"),
            ("busybox@sha256:abc", "after `@`"),
            ("busybox:", "not a valid tag"),
            ("oci:", "layout directory is missing"),
            ("docker-archive:", "archive file is missing"),
            ("a//b", "repository name component"),
        ];
        for (text, expected) in cases {
            let message = ImageRef::parse(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }
}
