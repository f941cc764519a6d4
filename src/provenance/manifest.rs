//! The provenance manifest (`provenance.json`), format version 1.
//!
//! Others read this file (replay, verify, RO-Crate export, people), so its
//! shape is a stable, versioned format described by
//! `schemas/provenance.schema.json`: add fields, never change their meaning.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::runtime::{Enforcement, Termination};

/// The value of the `format` field.
pub const FORMAT: &str = "seal-provenance/1";

/// One run of one pipeline.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub seal_version: String,
    pub run: RunInfo,
    pub pipeline: PipelineInfo,
    pub params: serde_json::Map<String, Json>,
    pub lock: Option<LockInfo>,
    pub host: HostInfo,
    /// Image name (as in the pipeline) → what it resolved to.
    pub images: BTreeMap<String, ImageRecord>,
    /// One record per step instance, in plan order.
    pub steps: Vec<StepRecord>,
}

/// How the run went as a whole.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: String,
    pub wall_seconds: f64,
    /// The command line, as typed.
    pub command: Vec<String>,
    pub out_dir: PathBuf,
    pub results_dir: PathBuf,
    pub cores: u32,
    pub memory_bytes: u64,
    pub keep_going: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

/// The pipeline file, byte for byte.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineInfo {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub text: String,
}

/// The lock file that pinned images, byte for byte.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub text: String,
}

/// Facts about the machine that ran the steps.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HostInfo {
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub cpus: u32,
    pub memory_bytes: u64,
}

/// An image as resolved for this run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The reference as the pipeline writes it.
    pub reference: String,
    /// The pinned reference seal used (from the pipeline or the lock).
    pub pinned: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<String>,
}

/// One step instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub step: String,
    pub item: Option<Json>,
    pub status: StepStatus,
    pub image: String,
    pub image_manifest_digest: String,
    /// False when the step had the host network.
    pub hermetic: bool,
    pub process: Option<ProcessRecord>,
    pub resources: ResourcesRecord,
    pub exit: Option<Termination>,
    pub inputs: Vec<FileRecord>,
    pub outputs: Vec<FileRecord>,
    pub logs: Vec<FileRecord>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The kept sandbox, for a step that failed.
    pub sandbox: Option<PathBuf>,
    pub error: Option<String>,
}

impl StepRecord {
    /// The record of an instance before (or without) running it: who it is and
    /// what it asked for, nothing that happened.
    pub fn blank(
        instance: &crate::dag::Instance,
        step: &crate::pipeline::Step,
        image_manifest_digest: String,
        status: StepStatus,
    ) -> StepRecord {
        StepRecord {
            id: instance.id.clone(),
            step: step.name.clone(),
            item: instance.item.clone(),
            status,
            image: step.image.value.clone(),
            image_manifest_digest,
            hermetic: !step.network,
            process: None,
            resources: ResourcesRecord {
                cpus: step.resources.cpus,
                memory_bytes: step.resources.memory_bytes,
                time_seconds: step.resources.time.map(|t| t.as_secs_f64()),
                used: None,
            },
            exit: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            logs: Vec::new(),
            started_at: None,
            finished_at: None,
            sandbox: None,
            error: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Not run because something it depends on failed.
    Skipped,
    /// Not started because the run stopped (failure policy or interrupt).
    NotRun,
    Interrupted,
}

/// Exactly how the step's process was started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub network: bool,
    pub mounts: Vec<MountRecord>,
    pub tmpfs: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MountRecord {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// Resources asked for and used.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResourcesRecord {
    pub cpus: u32,
    pub memory_bytes: Option<u64>,
    pub time_seconds: Option<f64>,
    pub used: Option<UsageRecord>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UsageRecord {
    pub wall_seconds: f64,
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    pub peak_memory_bytes: u64,
    pub enforcement: Enforcement,
}

/// A file read or written by a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The input or output name (or `stdout`/`stderr` for logs).
    pub name: String,
    /// Path relative to the working directory (inputs), to the results
    /// directory (outputs) or to the run's work area (logs).
    pub path: String,
    /// Where the file is on the host.
    pub location: PathBuf,
    pub size: u64,
    pub sha256: String,
}
