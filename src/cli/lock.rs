//! `seal lock`: pin every image the pipeline names by tag in a lock file next to it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use super::output::{CliError, EXIT_IMAGE, EXIT_INPUT, Outcome};
use super::validate::input_error;
use crate::image::Store;
use crate::pipeline::lock::{LOCK_VERSION, Lock, LockContent, LockedImage};
use crate::pipeline::{self, model::ImageDecl};

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The pipeline file; the lock is written next to it (`pipeline.lock` for
    /// `pipeline.yaml`).
    pub pipeline: PathBuf,
}

/// Resolves each unpinned image and writes the lock file; nothing is written when an
/// image cannot be resolved.
pub fn run(args: LockArgs) -> Result<Option<Outcome>, CliError> {
    let images = pipeline::load_images(&args.pipeline).map_err(input_error)?;
    let store = Store::open(None).map_err(|e| CliError::new(EXIT_IMAGE, e))?;
    let mut locked = BTreeMap::new();
    let mut failures = Vec::new();
    for image in images.iter().filter(|image| !image.reference.is_pinned()) {
        match pin(&store, image) {
            Ok(entry) => {
                locked.insert(image.name.clone(), entry);
            }
            Err(report) => failures.push(report),
        }
    }
    if !failures.is_empty() {
        let summary = format!(
            "{} of the images of `{}` could not be pinned; the lock file was not written",
            failures.len(),
            args.pipeline.display()
        );
        return Err(CliError::many(EXIT_IMAGE, failures, summary));
    }
    write(&args, locked)
}

fn pin(store: &Store, image: &ImageDecl) -> Result<LockedImage, miette::Report> {
    let digest = store
        .resolve(&image.reference)
        .map_err(|error| miette::Report::new(error).wrap_err(format!("image `{}`", image.name)))?;
    Ok(LockedImage {
        reference: image.written.clone(),
        pinned: format!("{}@{digest}", image.written),
    })
}

fn write(
    args: &LockArgs,
    images: BTreeMap<String, LockedImage>,
) -> Result<Option<Outcome>, CliError> {
    let content = LockContent {
        version: LOCK_VERSION,
        images,
    };
    let path = Lock::write(&args.pipeline, &content).map_err(|error| {
        let path = pipeline::lock::lock_path_for(&args.pipeline);
        CliError::new(
            EXIT_INPUT,
            miette::miette!(
                "failed to write the lock file `{}`: {error}",
                path.display()
            ),
        )
    })?;
    for (name, entry) in &content.images {
        println!("{name}\t{}", entry.pinned);
    }
    eprintln!(
        "wrote {} ({} images pinned)",
        path.display(),
        content.images.len()
    );
    Ok(None)
}
