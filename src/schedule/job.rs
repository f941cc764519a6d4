//! Running one step instance on this machine: a fresh sandbox holding only
//! the declared inputs, the container, then outputs collected, hashed and
//! published, and a provenance record of all of it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rayon::prelude::*;
use tracing::debug;

use super::exec::{self, User};
use super::outputs::{self, Claims};
use crate::dag::Instance;
use crate::image::PreparedImage;
use crate::pipeline::model::{ImageDecl, Step};
use crate::pipeline::render::{Join, Scope};
use crate::provenance::manifest::{
    FileRecord, MountRecord, ProcessRecord, StepRecord, StepStatus, UsageRecord,
};
use crate::provenance::{hash_file, timestamp};
use crate::runtime::{BindMount, ContainerSpec, Limits, Outcome};

/// One input file bound for an instance: where it is, where it appears.
#[derive(Clone, Debug)]
pub struct InputFile {
    pub name: String,
    pub host: PathBuf,
    /// Relative to the working directory.
    pub inside: String,
}

/// Everything a worker needs to run one instance.
pub struct Job<'a> {
    pub instance: &'a Instance,
    pub step: &'a Step,
    pub image_decl: &'a ImageDecl,
    pub image: &'a PreparedImage,
    pub params: &'a serde_json::Map<String, serde_json::Value>,
    pub inputs: Vec<InputFile>,
    /// `<out>/work/<instance>`: holds `sandbox/` and the logs.
    pub work_dir: PathBuf,
    pub results_dir: PathBuf,
    pub keep_work: bool,
    pub claims: &'a Claims,
}

/// What a worker reports when an instance is done.
pub struct JobResult {
    pub record: StepRecord,
    /// The published top-level outputs, for downstream instances.
    pub published: Vec<outputs::Collected>,
}

impl Job<'_> {
    /// Runs the instance to the end; `started` gets the container's monitor pid.
    pub fn run(self, started: impl FnOnce(u32)) -> JobResult {
        let started_at = SystemTime::now();
        let mut record = self.empty_record();
        record.started_at = Some(timestamp(started_at));
        let sandbox = self.work_dir.join("sandbox");
        let outcome = self.execute(&sandbox, &mut record, started);
        record.finished_at = Some(timestamp(SystemTime::now()));
        match outcome {
            Ok((files, published)) => {
                record.status = StepStatus::Succeeded;
                record.outputs = files;
                self.clean_up(&sandbox);
                JobResult { record, published }
            }
            Err(error) => {
                record.status = StepStatus::Failed;
                record.error = Some(error);
                record.sandbox = Some(sandbox);
                JobResult {
                    record,
                    published: Vec::new(),
                }
            }
        }
    }

    fn empty_record(&self) -> StepRecord {
        let digest = self.image.manifest_digest.to_string();
        StepRecord::blank(self.instance, self.step, digest, StepStatus::NotRun)
    }

    /// The whole life of the instance; an error is the message users see.
    fn execute(
        &self,
        sandbox: &Path,
        record: &mut StepRecord,
        started: impl FnOnce(u32),
    ) -> Result<(Vec<FileRecord>, Vec<outputs::Collected>), String> {
        self.fresh_sandbox(sandbox)?;
        record.inputs = hash_inputs(&self.inputs)?;
        let spec = self.container_spec(sandbox)?;
        record.process = Some(process_record(&spec));

        let running = crate::runtime::spawn(&spec).map_err(|e| crate::error_chain(&e))?;
        started(running.pid());
        let outcome = running.wait().map_err(|e| crate::error_chain(&e));
        record.logs = self.log_records(&spec);
        let outcome = outcome?;
        record.resources.used = Some(usage(&outcome));
        record.exit = Some(outcome.termination.clone());
        if !outcome.termination.success() {
            return Err(super::describe_termination(&outcome.termination, &spec));
        }

        self.remove_placeholders(sandbox);
        let collected = outputs::collect(sandbox, &self.instance.outputs)?;
        let records = outputs::hash(sandbox, &self.results_dir, &collected)?;
        self.claims.claim(&self.instance.id, &collected)?;
        outputs::publish(sandbox, &self.results_dir, &collected)?;
        Ok((records, collected))
    }

    fn fresh_sandbox(&self, sandbox: &Path) -> Result<(), String> {
        if self.work_dir.exists() {
            fs_err::remove_dir_all(&self.work_dir).map_err(|e| e.to_string())?;
        }
        fs_err::create_dir_all(sandbox).map_err(|e| e.to_string())?;
        // Inputs are bind-mounted onto placeholders in the sandbox.
        for input in &self.inputs {
            let at = sandbox.join(&input.inside);
            if let Some(parent) = at.parent() {
                fs_err::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let made = if input.host.is_dir() {
                fs_err::create_dir_all(&at)
            } else {
                fs_err::File::create(&at).map(drop)
            };
            made.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn container_spec(&self, sandbox: &Path) -> Result<ContainerSpec, String> {
        let config = &self.image.config;
        let user_text = self.step.user.as_deref().unwrap_or(&config.user);
        let User { uid, gid, home } = exec::resolve_user(user_text, &self.image.rootfs)
            .map_err(|e| format!("image `{}`: {e}", self.image_decl.name))?;
        let cwd = exec::workdir(self.step.workdir.as_deref(), config);
        self.check_mountpoint(&cwd)?;

        let inputs = self.input_words();
        let outputs = self.instance.outputs.clone();
        let scope = Scope {
            params: self.params,
            item: self.instance.item.as_ref(),
            inputs: &inputs,
            outputs: &outputs,
        };
        let argv = exec::argv(&self.step.command, config, &scope).map_err(|e| e.0)?;
        let step_env = self.step_env(&scope)?;
        let home_is_mountable = home != "/" && home != cwd && self.is_dir_in_image(&home);
        let home = if home_is_mountable || home == cwd {
            home
        } else {
            "/tmp".to_string()
        };
        let env = exec::environment(config, &home, &step_env);

        let mut tmpfs = vec!["/tmp".to_string()];
        if home_is_mountable {
            tmpfs.push(home);
        }
        Ok(ContainerSpec {
            rootfs: self.image.rootfs.clone(),
            argv,
            env,
            mounts: self.mounts(sandbox, &cwd),
            cwd,
            uid,
            gid,
            hostname: "seal".to_string(),
            tmpfs,
            network: self.step.network,
            limits: Limits {
                memory_bytes: self.step.resources.memory_bytes,
                time: self.step.resources.time,
                cpus: Some(self.step.resources.cpus),
            },
            stdout: self.stream_target(
                sandbox,
                self.step.stdout.as_ref().map(|s| &s.value),
                "stdout",
            ),
            stderr: self.stream_target(
                sandbox,
                self.step.stderr.as_ref().map(|s| &s.value),
                "stderr",
            ),
        })
    }

    /// Input name → paths inside the working directory, in declaration order.
    fn input_words(&self) -> Vec<(String, Vec<String>)> {
        let mut words: Vec<(String, Vec<String>)> = self
            .step
            .inputs
            .iter()
            .map(|d| (d.name.clone(), Vec::new()))
            .collect();
        for file in &self.inputs {
            if let Some((_, paths)) = words.iter_mut().find(|(n, _)| *n == file.name) {
                paths.push(file.inside.clone());
            }
        }
        words
    }

    fn step_env(&self, scope: &Scope<'_>) -> Result<Vec<(String, String)>, String> {
        self.step
            .env
            .iter()
            .map(|(key, value)| {
                Ok((
                    key.clone(),
                    scope.render(&value.value, Join::Plain).map_err(|e| e.0)?,
                ))
            })
            .collect()
    }

    fn mounts(&self, sandbox: &Path, cwd: &str) -> Vec<BindMount> {
        let mut mounts = vec![BindMount {
            source: sandbox.to_path_buf(),
            target: cwd.to_string(),
            readonly: false,
        }];
        for input in &self.inputs {
            mounts.push(BindMount {
                source: input.host.clone(),
                target: format!("{}/{}", cwd.trim_end_matches('/'), input.inside),
                readonly: true,
            });
        }
        mounts
    }

    /// Where a stream goes: into a declared output in the sandbox, or a log.
    fn stream_target(&self, sandbox: &Path, output: Option<&String>, stream: &str) -> PathBuf {
        let declared =
            output.and_then(|name| self.instance.outputs.iter().find(|(n, _)| n == name));
        match declared {
            Some((_, path)) => {
                let target = sandbox.join(path);
                if let Some(parent) = target.parent() {
                    let _ = fs_err::create_dir_all(parent);
                }
                target
            }
            None => self.work_dir.join(format!("{stream}.log")),
        }
    }

    fn check_mountpoint(&self, cwd: &str) -> Result<(), String> {
        if self.is_dir_in_image(cwd) {
            return Ok(());
        }
        Err(format!(
            "the working directory `{cwd}` does not exist in image `{}`",
            self.image_decl.name
        ))
    }

    /// True when `path` is a directory of the image (not through a symlink).
    fn is_dir_in_image(&self, path: &str) -> bool {
        exec::is_dir_in(&self.image.rootfs, path)
    }

    fn log_records(&self, spec: &ContainerSpec) -> Vec<FileRecord> {
        [("stdout", &spec.stdout), ("stderr", &spec.stderr)]
            .into_iter()
            .filter(|(_, path)| {
                path.starts_with(&self.work_dir) && !path.starts_with(self.work_dir.join("sandbox"))
            })
            .filter_map(|(name, path)| {
                let (size, sha256) = hash_file(path).ok()?;
                Some(FileRecord {
                    name: name.to_string(),
                    path: path
                        .strip_prefix(&self.work_dir)
                        .ok()?
                        .to_string_lossy()
                        .into_owned(),
                    location: path.clone(),
                    size,
                    sha256,
                })
            })
            .collect()
    }

    /// Removes the empty files and directories that inputs were mounted on.
    fn remove_placeholders(&self, sandbox: &Path) {
        for input in &self.inputs {
            let at = sandbox.join(&input.inside);
            let removed = match at.symlink_metadata() {
                Ok(meta) if meta.is_file() && meta.len() == 0 => std::fs::remove_file(&at).is_ok(),
                Ok(meta) if meta.is_dir() => std::fs::remove_dir(&at).is_ok(),
                _ => false,
            };
            if !removed {
                continue;
            }
            let mut parent = at.parent();
            while let Some(dir) = parent.filter(|d| *d != sandbox && d.starts_with(sandbox)) {
                if std::fs::remove_dir(dir).is_err() {
                    break;
                }
                parent = dir.parent();
            }
        }
    }

    fn clean_up(&self, sandbox: &Path) {
        if self.keep_work {
            return;
        }
        if let Err(error) = fs_err::remove_dir_all(sandbox) {
            debug!("could not remove sandbox of {}: {error}", self.instance.id);
        }
    }
}

/// Sizes and hashes of every input file (files below directories included).
fn hash_inputs(inputs: &[InputFile]) -> Result<Vec<FileRecord>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if !input.host.is_dir() {
            files.push((input.name.clone(), input.inside.clone(), input.host.clone()));
            continue;
        }
        for entry in walkdir::WalkDir::new(&input.host).sort_by_file_name() {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.file_type().is_file() {
                let below = entry
                    .path()
                    .strip_prefix(&input.host)
                    .unwrap_or(entry.path());
                let inside = Path::new(&input.inside)
                    .join(below)
                    .to_string_lossy()
                    .into_owned();
                files.push((input.name.clone(), inside, entry.path().to_path_buf()));
            }
        }
    }
    files
        .into_par_iter()
        .map(|(name, path, location)| {
            let (size, sha256) =
                hash_file(&location).map_err(|e| format!("input `{name}`: {e}"))?;
            Ok(FileRecord {
                name,
                path,
                location,
                size,
                sha256,
            })
        })
        .collect()
}

fn process_record(spec: &ContainerSpec) -> ProcessRecord {
    ProcessRecord {
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        cwd: spec.cwd.clone(),
        uid: spec.uid,
        gid: spec.gid,
        hostname: spec.hostname.clone(),
        network: spec.network,
        mounts: spec
            .mounts
            .iter()
            .map(|m| MountRecord {
                source: m.source.clone(),
                target: m.target.clone(),
                readonly: m.readonly,
            })
            .collect(),
        tmpfs: spec.tmpfs.clone(),
    }
}

fn usage(outcome: &Outcome) -> UsageRecord {
    UsageRecord {
        wall_seconds: outcome.wall.as_secs_f64(),
        user_cpu_seconds: outcome.user_cpu.as_secs_f64(),
        system_cpu_seconds: outcome.system_cpu.as_secs_f64(),
        peak_memory_bytes: outcome.peak_memory_bytes,
        enforcement: outcome.enforcement.clone(),
    }
}
