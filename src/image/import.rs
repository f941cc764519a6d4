//! `seal image import`: a root file system (a directory or a tarball) becomes a
//! single-layer OCI image in the store, deterministically: the same tree always gives the
//! same manifest digest.
//!
//! What makes it deterministic: entries in byte order of their paths; every entry owned by
//! 0:0 with no user or group names; every mtime set to one fixed time (0, or
//! `SOURCE_DATE_EPOCH`); GNU headers whose long-name records are fixed too; the layer
//! stored uncompressed (so no compressor version can change it); a config without history
//! whose `created` is that same fixed time; JSON written by serde in a fixed field order.

use std::collections::HashMap;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, ImageConfigurationBuilder, ImageManifestBuilder, MediaType,
    Os, RootFsBuilder,
};
use tar::{EntryType, Header};
use tracing::{debug, warn};

use super::digest::{HashingWriter, to_oci};
use super::manifest::Compression;
use super::progress::Bars;
use super::rootfs::remove_tree;
use super::unpack::Unpacker;
use super::{Digest, ImageError, ImageRef, ImageSource, Store, layout};

/// What to import, and the config to give the image.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// `repo[:tag]`, recorded in the store's name index.
    pub name: String,
    /// `KEY=value` entries of the config's `Env`.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// Seconds since the epoch used for every mtime and for `created`.
    pub epoch: u64,
    /// Also write the image into this OCI layout directory, tagged with the name's tag
    /// (or `latest`).
    pub oci_layout: Option<PathBuf>,
}

/// The image an import produced.
#[derive(Clone, Debug)]
pub struct Imported {
    pub name: String,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    pub layer_digest: Digest,
}

/// Imports the directory or tarball `source` as a new image.
pub fn import(
    store: &Store,
    source: &Path,
    options: &ImportOptions,
) -> Result<Imported, ImageError> {
    let tag = check_name(&options.name)?;
    let layer = if fs_err::metadata(source)?.is_dir() {
        write_layer(store, source, options.epoch)?
    } else {
        let unpacked = unpack_tarball(store, source)?;
        let layer = write_layer(store, &unpacked, options.epoch);
        remove_tree(&unpacked)?;
        layer?
    };
    let config = config_json(options, &layer);
    let config_digest = store.write_blob_bytes(&config)?;
    let manifest = manifest_json(&config_digest, config.len() as u64, &layer);
    let manifest_digest = store.write_blob_bytes(&manifest)?;
    store.record_name(&options.name, &manifest_digest)?;
    if let Some(dir) = &options.oci_layout {
        let blobs = [config_digest.clone(), layer.digest.clone()];
        layout::write(
            store,
            dir,
            tag.as_deref().unwrap_or("latest"),
            &manifest_digest,
            &blobs,
        )?;
    }
    debug!(name = %options.name, manifest = %manifest_digest, "imported image");
    Ok(Imported {
        name: options.name.clone(),
        manifest_digest,
        config_digest,
        layer_digest: layer.digest,
    })
}

/// Checks that `name` is `repo[:tag]` and returns its tag.
fn check_name(name: &str) -> Result<Option<String>, ImageError> {
    let parsed = ImageRef::parse(name)?;
    match parsed {
        ImageRef {
            source: ImageSource::Registry { tag, .. },
            digest: None,
        } => Ok(tag),
        _ => Err(ImageError::bad_reference(
            name,
            "an image name is `repo[:tag]`, without a digest",
        )),
    }
}

/// The stored layer: its digest (also its diff ID, as it is uncompressed) and size.
struct Layer {
    digest: Digest,
    size: u64,
}

/// Writes the tree at `dir` as one uncompressed layer tar into the store.
fn write_layer(store: &Store, dir: &Path, epoch: u64) -> Result<Layer, ImageError> {
    let tmp_dir = store.tmp_dir();
    let temp = tempfile::Builder::new()
        .prefix("layer-")
        .tempfile_in(&tmp_dir)
        .map_err(|e| ImageError::io(&tmp_dir, e))?;
    let temp_path = temp.path().to_path_buf();
    let mut builder = tar::Builder::new(HashingWriter::new(BufWriter::new(temp)));
    let bar = Bars::new(store.progress()).spinner("importing");
    append_tree(&mut builder, dir, epoch, &bar)?;
    bar.finish_and_clear();
    let hashing = builder
        .into_inner()
        .map_err(|e| ImageError::io(&temp_path, e))?;
    let (digest, size, buffered) = hashing.finish();
    let temp = buffered
        .into_inner()
        .map_err(|e| ImageError::io(&temp_path, e.into_error()))?;
    store.persist(temp, &digest)?;
    Ok(Layer { digest, size })
}

/// Appends every entry under `dir` (not `dir` itself), sorted, with fixed metadata.
fn append_tree(
    builder: &mut tar::Builder<impl Write>,
    dir: &Path,
    epoch: u64,
    bar: &indicatif::ProgressBar,
) -> Result<(), ImageError> {
    // The first path seen for each multiply-linked inode; later ones become hard links.
    let mut first_links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            ImageError::io(path, e.into())
        })?;
        let path = entry.path();
        let relative = path
            .strip_prefix(dir)
            .expect("walkdir stays under its root");
        let meta = fs_err::symlink_metadata(path)?;
        append_entry(builder, path, relative, &meta, epoch, &mut first_links)
            .map_err(|e| ImageError::io(path, e))?;
        bar.inc(meta.len());
    }
    builder.finish().map_err(|e| ImageError::io(dir, e))
}

fn append_entry(
    builder: &mut tar::Builder<impl Write>,
    path: &Path,
    relative: &Path,
    meta: &std::fs::Metadata,
    epoch: u64,
    first_links: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    if !kind.is_dir() && meta.nlink() > 1 {
        let key = (meta.dev(), meta.ino());
        if let Some(first) = first_links.get(&key) {
            let mut header = fixed_header(EntryType::Link, mode, epoch);
            return builder.append_link(&mut header, relative, first);
        }
        first_links.insert(key, relative.to_path_buf());
    }
    if kind.is_dir() {
        let mut header = fixed_header(EntryType::Directory, mode, epoch);
        builder.append_data(&mut header, relative.join(""), io::empty())
    } else if kind.is_file() {
        let mut header = fixed_header(EntryType::Regular, mode, epoch);
        header.set_size(meta.len());
        let file = fs_err::File::open(path)?;
        builder.append_data(&mut header, relative, file.take(meta.len()))
    } else if kind.is_symlink() {
        let target = fs_err::read_link(path)?;
        let mut header = fixed_header(EntryType::Symlink, mode, epoch);
        builder.append_link(&mut header, relative, target)
    } else if kind.is_fifo() {
        let mut header = fixed_header(EntryType::Fifo, mode, epoch);
        builder.append_data(&mut header, relative, io::empty())
    } else if kind.is_char_device() || kind.is_block_device() {
        let entry_type = if kind.is_char_device() {
            EntryType::Char
        } else {
            EntryType::Block
        };
        let mut header = fixed_header(entry_type, mode, epoch);
        let rdev = meta.rdev();
        header.set_device_major(libc::major(rdev))?;
        header.set_device_minor(libc::minor(rdev))?;
        builder.append_data(&mut header, relative, io::empty())
    } else {
        warn!(path = %path.display(), "skipping a socket: tar cannot hold one");
        Ok(())
    }
}

/// A GNU header with everything but the path fixed: owner 0:0, no names, one mtime.
fn fixed_header(kind: EntryType, mode: u32, epoch: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(epoch);
    header.set_size(0);
    header
}

/// Unpacks a root file system tarball (plain, gzip or zstd) into a temporary directory,
/// with the same safety rules as image layers.
fn unpack_tarball(store: &Store, tarball: &Path) -> Result<PathBuf, ImageError> {
    let tmp_dir = store.tmp_dir();
    let dir = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&tmp_dir)
        .map_err(|e| ImageError::io(&tmp_dir, e))?
        .keep();
    let result = (|| {
        let mut file = io::BufReader::new(fs_err::File::open(tarball)?);
        let head = io::BufRead::fill_buf(&mut file).map_err(|e| ImageError::io(tarball, e))?;
        let reader: Box<dyn Read> = match Compression::sniff(head) {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
            Compression::Zstd => {
                Box::new(zstd::Decoder::with_buffer(file).map_err(|e| ImageError::io(tarball, e))?)
            }
        };
        let mut unpacker = Unpacker::new(&dir)?;
        unpacker.apply_layer(reader, &tarball.display().to_string())?;
        unpacker.finish()
    })();
    match result {
        Ok(()) => Ok(dir),
        Err(e) => {
            remove_tree(&dir)?;
            Err(e)
        }
    }
}

/// The image config: the runtime settings given, the one diff ID, host platform, fixed time.
fn config_json(options: &ImportOptions, layer: &Layer) -> Vec<u8> {
    let mut runtime = ConfigBuilder::default();
    if !options.env.is_empty() {
        runtime = runtime.env(options.env.clone());
    }
    if let Some(entrypoint) = &options.entrypoint {
        runtime = runtime.entrypoint(entrypoint.clone());
    }
    if let Some(cmd) = &options.cmd {
        runtime = runtime.cmd(cmd.clone());
    }
    if let Some(user) = &options.user {
        runtime = runtime.user(user.clone());
    }
    if let Some(dir) = &options.working_dir {
        runtime = runtime.working_dir(dir.clone());
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.digest.to_string()])
        .build()
        .expect("all rootfs fields are set");
    let config = ImageConfigurationBuilder::default()
        .created(rfc3339(options.epoch))
        .architecture(Arch::default())
        .os(Os::Linux)
        .config(runtime.build().expect("config fields are all optional"))
        .rootfs(rootfs)
        .build()
        .expect("all required config fields are set");
    serde_json::to_vec(&config).expect("a config serialises")
}

fn manifest_json(config: &Digest, config_size: u64, layer: &Layer) -> Vec<u8> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            config_size,
            to_oci(config),
        ))
        .layers(vec![Descriptor::new(
            MediaType::ImageLayer,
            layer.size,
            to_oci(&layer.digest),
        )])
        .build()
        .expect("all required manifest fields are set");
    serde_json::to_vec(&manifest).expect("a manifest serialises")
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (days to civil date after
/// H. Hinnant's well-known algorithm).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
