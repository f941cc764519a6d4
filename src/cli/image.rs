//! `seal image`: import, list and (for debugging) prepare images in the store.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Subcommand;

use super::output::{CliError, EXIT_IMAGE, Outcome};
use crate::image::import::{ImportOptions, import};
use crate::image::{ImageError, ImageRef, Store};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Turn a root file system (directory or tar archive) into a single-layer OCI image.
    ///
    /// The same tree always gives the same digest: entries are sorted, owned by 0:0 and
    /// dated 0 (or SOURCE_DATE_EPOCH). Prints NAME@sha256:<manifest digest>.
    Import {
        /// A directory, or a tar archive (plain, gzip or zstd), holding the root file system.
        source: PathBuf,
        /// The image name to record, `repo[:tag]`, e.g. `local/busybox:1.36`.
        #[arg(long)]
        tag: String,
        /// An environment variable for the image config, `KEY=value` (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The image's working directory.
        #[arg(long)]
        workdir: Option<String>,
        /// The user the image runs as (`name`, `uid`, `uid:gid`, ...).
        #[arg(long)]
        user: Option<String>,
        /// The entrypoint: a JSON array, or words split as a shell would.
        #[arg(long)]
        entrypoint: Option<String>,
        /// The command: a JSON array, or words split as a shell would.
        #[arg(long)]
        cmd: Option<String>,
        /// Also write the image into this OCI layout directory (for `oci:` references).
        #[arg(long, value_name = "DIR")]
        oci_layout: Option<PathBuf>,
    },
    /// List the images imported into the store: NAME@DIGEST and size.
    Ls,
    /// Copy in, verify and unpack a pinned image, then print it as JSON (for debugging).
    #[command(hide = true)]
    Prepare {
        /// The image reference, pinned by digest.
        reference: String,
    },
}

/// Runs an image subcommand; errors exit with the image error code.
pub fn run(cmd: ImageCommand) -> Result<Option<Outcome>, CliError> {
    execute(cmd).map_err(|error| CliError::new(EXIT_IMAGE, error))?;
    Ok(None)
}

fn execute(cmd: ImageCommand) -> Result<(), ImageError> {
    let store = Store::open(None)?.with_progress(std::io::stderr().is_terminal());
    match cmd {
        ImageCommand::Import {
            source,
            tag,
            env,
            workdir,
            user,
            entrypoint,
            cmd,
            oci_layout,
        } => {
            let options = ImportOptions {
                name: tag,
                env,
                working_dir: workdir,
                user,
                entrypoint: entrypoint
                    .as_deref()
                    .map(|text| parse_words("--entrypoint", text))
                    .transpose()?,
                cmd: cmd
                    .as_deref()
                    .map(|text| parse_words("--cmd", text))
                    .transpose()?,
                epoch: source_date_epoch()?,
                oci_layout,
            };
            let imported = import(&store, &source, &options)?;
            print_line(&format!("{}@{}", imported.name, imported.manifest_digest))
        }
        ImageCommand::Ls => list(&store),
        ImageCommand::Prepare { reference } => {
            let cwd = std::env::current_dir().map_err(|e| ImageError::io(".", e))?;
            let reference = ImageRef::parse(&reference)?.resolve_paths(&cwd);
            let prepared = store.prepare(&reference)?;
            let json =
                serde_json::to_string_pretty(&prepared).expect("a prepared image serialises");
            print_line(&json)
        }
    }
}

/// Prints every recorded name with its digest and the size of its blobs.
fn list(store: &Store) -> Result<(), ImageError> {
    let mut out = String::new();
    for (name, digest) in store.names()? {
        let size = match store.image_size(&digest) {
            Ok(size) => indicatif::BinaryBytes(size).to_string(),
            Err(_) => "(incomplete)".to_string(),
        };
        out.push_str(&format!("{name}@{digest}\t{size}\n"));
    }
    print_text(&out)
}

/// A JSON array of strings, or else shell words.
fn parse_words(flag: &str, text: &str) -> Result<Vec<String>, ImageError> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| {
            ImageError::BadArgument(format!("{flag} is not a JSON array of strings: {e}"))
        });
    }
    shlex::split(text)
        .ok_or_else(|| ImageError::BadArgument(format!("{flag} has unbalanced quotes: {text}")))
}

/// `SOURCE_DATE_EPOCH` if set (the reproducible-builds convention), else 0.
fn source_date_epoch() -> Result<u64, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(text) if !text.is_empty() => text.trim().parse().map_err(|_| {
            ImageError::BadArgument(format!(
                "SOURCE_DATE_EPOCH `{text}` is not a whole number of seconds"
            ))
        }),
        _ => Ok(0),
    }
}

fn print_line(text: &str) -> Result<(), ImageError> {
    print_text(&format!("{text}\n"))
}

/// Writes data to stdout; a closed pipe is not an error.
fn print_text(text: &str) -> Result<(), ImageError> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(ImageError::io("<stdout>", e)),
        _ => Ok(()),
    }
}
