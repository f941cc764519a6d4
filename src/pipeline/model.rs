//! The checked pipeline: what the rest of seal plans and runs from.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

use super::diag::SourceFile;
use super::node::Pos;
use super::template::Template;
use crate::image::ImageRef;

/// A value and where it was written.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Located<T> {
    pub fn new(value: T, pos: Pos) -> Located<T> {
        Located { value, pos }
    }
}

/// A loaded, checked pipeline.
#[derive(Debug)]
pub struct Pipeline {
    pub source: SourceFile,
    /// Directory that relative paths in the pipeline are resolved against.
    pub base_dir: PathBuf,
    pub sha256: String,
    pub name: String,
    /// Parameters after `--param` overrides, in declaration order.
    pub params: Vec<(String, Json)>,
    pub images: Vec<ImageDecl>,
    pub steps: Vec<Step>,
    /// The lock file that pinned images, if one was used.
    pub lock_file: Option<PathBuf>,
}

impl Pipeline {
    pub fn step(&self, name: &str) -> Option<(usize, &Step)> {
        self.steps.iter().enumerate().find(|(_, s)| s.name == name)
    }

    pub fn image(&self, name: &str) -> Option<&ImageDecl> {
        self.images.iter().find(|i| i.name == name)
    }

    /// The parameters as one JSON object (for templates and provenance).
    pub fn params_json(&self) -> serde_json::Map<String, Json> {
        self.params.iter().cloned().collect()
    }
}

/// A named image.
#[derive(Clone, Debug)]
pub struct ImageDecl {
    pub name: String,
    /// The reference as written in the pipeline.
    pub written: String,
    /// The reference seal uses: as written, or pinned by the lock file.
    pub reference: ImageRef,
    pub pos: Pos,
    pub pinned_by_lock: bool,
}

/// How a step's process is started.
#[derive(Clone, Debug)]
pub enum Command {
    /// `run:` through `/bin/sh -c`.
    Shell(Located<Template>),
    /// `argv:` as an exact list, appended to the image's entrypoint.
    Argv(Vec<Located<Template>>),
    /// Neither: the image's entrypoint and cmd.
    Image,
}

/// A declared input: one or more path templates.
#[derive(Clone, Debug)]
pub struct InputDecl {
    pub name: String,
    pub pos: Pos,
    pub values: Vec<Located<Template>>,
}

/// A declared output: a path or glob template.
#[derive(Clone, Debug)]
pub struct OutputDecl {
    pub name: String,
    pub pos: Pos,
    pub pattern: Located<Template>,
}

/// `foreach:` resolved to its items.
#[derive(Clone, Debug)]
pub struct Foreach {
    pub pos: Pos,
    pub items: Vec<Json>,
}

/// Resources a step asks for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resources {
    pub cpus: u32,
    pub memory_bytes: Option<u64>,
    #[serde(with = "crate::provenance::duration_secs_opt")]
    pub time: Option<Duration>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpus: 1,
            memory_bytes: None,
            time: None,
        }
    }
}

/// One step as declared.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: String,
    pub pos: Pos,
    pub image: Located<String>,
    pub command: Command,
    pub inputs: Vec<InputDecl>,
    pub outputs: Vec<OutputDecl>,
    pub after: Vec<Located<String>>,
    pub foreach: Option<Foreach>,
    pub resources: Resources,
    pub env: Vec<(String, Located<Template>)>,
    pub stdout: Option<Located<String>>,
    pub stderr: Option<Located<String>>,
    pub network: bool,
    pub workdir: Option<String>,
    pub user: Option<String>,
}

impl Step {
    pub fn output(&self, name: &str) -> Option<&OutputDecl> {
        self.outputs.iter().find(|o| o.name == name)
    }

    pub fn input(&self, name: &str) -> Option<&InputDecl> {
        self.inputs.iter().find(|i| i.name == name)
    }
}
