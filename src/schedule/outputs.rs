//! Collecting a finished step's outputs, hashing them and publishing them
//! atomically into the results directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::pipeline::check::is_glob;
use crate::provenance::hash_file;
use crate::provenance::manifest::FileRecord;

/// A top-level output path found in the sandbox.
#[derive(Clone, Debug)]
pub struct Collected {
    pub name: String,
    /// Relative to the sandbox, and to the results directory once published.
    pub relative: String,
    pub is_dir: bool,
}

/// Finds every declared output in `sandbox`; a missing one is an error.
pub fn collect(sandbox: &Path, outputs: &[(String, String)]) -> Result<Vec<Collected>, String> {
    let root = sandbox
        .canonicalize()
        .map_err(|e| format!("{}: {e}", sandbox.display()))?;
    let mut found = Vec::new();
    for (name, pattern) in outputs {
        let matches = matches_of(&root, pattern)?;
        if matches.is_empty() {
            return Err(format!(
                "the step exited 0 but did not write output `{name}` (`{pattern}`)"
            ));
        }
        for relative in matches {
            let is_dir = check_entry(&root, &relative, name)?;
            found.push(Collected {
                name: name.clone(),
                relative,
                is_dir,
            });
        }
    }
    Ok(found)
}

/// Relative paths in `root` matching `pattern`, sorted.
fn matches_of(root: &Path, pattern: &str) -> Result<Vec<String>, String> {
    if !is_glob(pattern) {
        let exists = root.join(pattern).symlink_metadata().is_ok();
        return Ok(if exists {
            vec![pattern.to_string()]
        } else {
            Vec::new()
        });
    }
    let full = format!(
        "{}/{pattern}",
        glob::Pattern::escape(&root.to_string_lossy())
    );
    let paths = glob::glob(&full).map_err(|e| format!("output pattern `{pattern}`: {e}"))?;
    let mut relative: Vec<String> = paths
        .filter_map(Result::ok)
        .filter_map(|p| {
            p.strip_prefix(root)
                .ok()
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect();
    relative.sort();
    Ok(relative)
}

/// Checks a matched output and everything below it: only regular files,
/// directories and symlinks to regular files inside the sandbox are allowed;
/// such a symlink is replaced by a copy of its target (a bind mount of a
/// published symlink would follow it on the host). Returns whether the output
/// is a directory.
fn check_entry(root: &Path, relative: &str, name: &str) -> Result<bool, String> {
    let is_dir = check_one(root, relative, name)?;
    if is_dir {
        for entry in walkdir::WalkDir::new(root.join(relative)).min_depth(1) {
            let entry = entry.map_err(|e| e.to_string())?;
            let below = entry.path().strip_prefix(root).unwrap_or(entry.path());
            check_one(root, &below.to_string_lossy(), name)?;
        }
    }
    Ok(is_dir)
}

/// Checks one path of output `name`; see [`check_entry`].
fn check_one(root: &Path, relative: &str, name: &str) -> Result<bool, String> {
    let path = root.join(relative);
    let meta = path
        .symlink_metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let kind = meta.file_type();
    if kind.is_dir() || kind.is_file() {
        return Ok(kind.is_dir());
    }
    if !kind.is_symlink() {
        return Err(format!(
            "output `{name}` has `{relative}`, a {}: only regular files, directories and \
             symbolic links to files in the working directory can be outputs",
            special_kind(&kind)
        ));
    }
    let target = resolve_inside(root, &path, relative, name)?;
    let copy = path.with_extension("seal-deref");
    fs_err::copy(&target, &copy).map_err(|e| e.to_string())?;
    fs_err::rename(&copy, &path).map_err(|e| e.to_string())?;
    Ok(false)
}

/// The regular file a symlink output points at, which must be in the sandbox.
fn resolve_inside(root: &Path, path: &Path, relative: &str, name: &str) -> Result<PathBuf, String> {
    let written = fs_err::read_link(path).map_err(|e| e.to_string())?;
    let what = format!(
        "output `{name}` has `{relative}`, a symbolic link to `{}`",
        written.display()
    );
    let Ok(target) = path.canonicalize() else {
        return Err(format!(
            "{what}, which does not exist once the step has ended (inputs are not kept \
             in the working directory): write a copy of the file instead"
        ));
    };
    if !target.starts_with(root) {
        return Err(format!(
            "{what}, outside the working directory: write a copy instead"
        ));
    }
    if !target.is_file() {
        return Err(format!("{what}, which is not a regular file"));
    }
    Ok(target)
}

fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "named pipe (FIFO)"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "device node"
    } else {
        "special file"
    }
}

/// Hashes collected outputs (every file below a directory output), in parallel.
pub fn hash(
    sandbox: &Path,
    results: &Path,
    collected: &[Collected],
) -> Result<Vec<FileRecord>, String> {
    let mut files = Vec::new();
    for output in collected {
        let base = sandbox.join(&output.relative);
        if !output.is_dir {
            files.push((output.name.clone(), output.relative.clone(), base));
            continue;
        }
        for entry in walkdir::WalkDir::new(&base).sort_by_file_name() {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.file_type().is_file() {
                let below = entry.path().strip_prefix(sandbox).unwrap_or(entry.path());
                let relative = below.to_string_lossy().into_owned();
                files.push((output.name.clone(), relative, entry.path().to_path_buf()));
            }
        }
    }
    files
        .into_par_iter()
        .map(|(name, relative, path)| {
            let (size, sha256) = hash_file(&path).map_err(|e| e.to_string())?;
            Ok(FileRecord {
                name,
                location: results.join(&relative),
                path: relative,
                size,
                sha256,
            })
        })
        .collect()
}

/// Which instance published each results path in this run, so that two
/// instances whose globs overlap cannot overwrite each other.
#[derive(Debug, Default)]
pub struct Claims {
    owners: Mutex<HashMap<String, String>>,
}

impl Claims {
    /// Claims every path for `owner`; fails naming the other instance.
    pub fn claim(&self, owner: &str, collected: &[Collected]) -> Result<(), String> {
        let mut owners = self.owners.lock().expect("claims lock");
        for output in collected {
            if let Some(other) = owners.get(&output.relative)
                && other != owner
            {
                return Err(format!(
                    "output `{}` (`{}`) was already published by {other} in this run",
                    output.name, output.relative
                ));
            }
        }
        for output in collected {
            owners.insert(output.relative.clone(), owner.to_string());
        }
        Ok(())
    }
}

/// Moves each collected output into `results` with a rename, so a reader
/// sees either the previous version or the complete new one.
pub fn publish(sandbox: &Path, results: &Path, collected: &[Collected]) -> Result<(), String> {
    for output in collected {
        let from = sandbox.join(&output.relative);
        let to = results.join(&output.relative);
        if let Some(parent) = to.parent() {
            fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        replace(&from, &to).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Renames `from` over `to`; a directory already at `to` is moved aside first
/// (rename cannot replace a non-empty directory) and removed afterwards.
fn replace(from: &Path, to: &Path) -> std::io::Result<()> {
    let old_dir = to.symlink_metadata().ok().filter(|m| m.is_dir());
    let aside: Option<PathBuf> = match old_dir {
        Some(_) => {
            let aside = to.with_file_name(format!(
                ".seal-old-{}-{}",
                std::process::id(),
                to.file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            ));
            fs_err::rename(to, &aside)?;
            Some(aside)
        }
        None => None,
    };
    if from.is_dir() && to.symlink_metadata().is_ok() {
        fs_err::remove_file(to)?;
    }
    fs_err::rename(from, to)?;
    if let Some(aside) = aside {
        fs_err::remove_dir_all(aside)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_outputs_and_escaping_symlinks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path();
        std::fs::write(sandbox.join("a.txt"), "a").unwrap();
        let ok = collect(sandbox, &[("a".into(), "*.txt".into())]).unwrap();
        assert_eq!(ok.len(), 1);
        let missing = collect(sandbox, &[("b".into(), "b.txt".into())]).unwrap_err();
        assert!(missing.contains("did not write output `b`"), "{missing}");
        std::os::unix::fs::symlink("/etc/passwd", sandbox.join("evil")).unwrap();
        let evil = collect(sandbox, &[("e".into(), "evil".into())]).unwrap_err();
        assert!(evil.contains("outside the working directory"), "{evil}");
    }

    #[test]
    fn inside_symlinks_are_published_as_copies() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        let results = dir.path().join("results");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(sandbox.join("real"), "data").unwrap();
        std::os::unix::fs::symlink("real", sandbox.join("link")).unwrap();
        let found = collect(&sandbox, &[("l".into(), "link".into())]).unwrap();
        let records = hash(&sandbox, &results, &found).unwrap();
        publish(&sandbox, &results, &found).unwrap();
        let published = results.join("link");
        assert!(
            !published
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(published).unwrap(), "data");
        assert_eq!(records[0].sha256, crate::provenance::sha256_hex(b"data"));
    }

    #[test]
    fn special_files_are_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let error = collect(dir.path(), &[("f".into(), "fifo".into())]).unwrap_err();
        assert!(error.contains("a named pipe (FIFO)"), "{error}");
    }

    #[test]
    fn symlinks_inside_directory_outputs_follow_the_same_rules() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        let out = sandbox.join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("a"), "a").unwrap();
        std::os::unix::fs::symlink("a", out.join("rel")).unwrap();
        let found = collect(&sandbox, &[("o".into(), "out".into())]).unwrap();
        let records = hash(&sandbox, &dir.path().join("results"), &found).unwrap();
        let paths: Vec<&str> = records.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["out/a", "out/rel"]);

        std::os::unix::fs::symlink("/etc/passwd", out.join("bad")).unwrap();
        let error = collect(&sandbox, &[("o".into(), "out".into())]).unwrap_err();
        assert!(
            error.contains("`out/bad`, a symbolic link to `/etc/passwd`"),
            "{error}"
        );
        std::fs::remove_file(out.join("bad")).unwrap();
        std::os::unix::fs::symlink("../input.txt", out.join("gone")).unwrap();
        let error = collect(&sandbox, &[("o".into(), "out".into())]).unwrap_err();
        assert!(
            error.contains("does not exist once the step has ended"),
            "{error}"
        );
    }

    #[test]
    fn overlapping_claims_name_the_first_owner() {
        let claims = Claims::default();
        let out = vec![Collected {
            name: "o".into(),
            relative: "x".into(),
            is_dir: false,
        }];
        claims.claim("a[1]", &out).unwrap();
        let err = claims.claim("a[2]", &out).unwrap_err();
        assert!(err.contains("already published by a[1]"), "{err}");
    }
}
