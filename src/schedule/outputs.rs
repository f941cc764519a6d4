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

/// Checks a matched output: a symlink must point inside the sandbox, and is
/// replaced by a copy of its target (a bind mount of a published symlink
/// would follow it on the host). Returns whether the output is a directory.
fn check_entry(root: &Path, relative: &str, name: &str) -> Result<bool, String> {
    let path = root.join(relative);
    let meta = path
        .symlink_metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_symlink() {
        return Ok(meta.is_dir());
    }
    let target = path.canonicalize().ok().filter(|t| t.starts_with(root));
    let Some(target) = target else {
        return Err(format!(
            "output `{name}` (`{relative}`) is a symbolic link to outside the working directory"
        ));
    };
    if !target.is_file() {
        return Err(format!(
            "output `{name}` (`{relative}`) is a symbolic link to a directory"
        ));
    }
    let copy = path.with_extension("seal-deref");
    fs_err::copy(&target, &copy).map_err(|e| e.to_string())?;
    fs_err::rename(&copy, &path).map_err(|e| e.to_string())?;
    Ok(false)
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
