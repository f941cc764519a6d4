//! The plan: steps expanded into instances (one per `foreach` item), inputs
//! bound to files or to other instances' outputs, and the edges between them.

mod expand;
mod render;

use std::path::PathBuf;

use serde_json::Value as Json;

pub use expand::plan;
pub use render::{Format, render_graph};

use crate::pipeline::Pipeline;

/// Every step instance of a pipeline and how they depend on each other.
#[derive(Debug)]
pub struct Plan<'p> {
    pub pipeline: &'p Pipeline,
    pub instances: Vec<Instance>,
}

/// One run of one step: the step itself, or one `foreach` item of it.
#[derive(Clone, Debug)]
pub struct Instance {
    /// `step` or `step[label]`, as shown to users.
    pub id: String,
    /// A file-name-safe, unique version of `id`.
    pub dir_name: String,
    /// Index into `pipeline.steps`.
    pub step: usize,
    pub item: Option<Json>,
    pub inputs: Vec<BoundInput>,
    /// Output name → path or glob, relative to the working directory.
    pub outputs: Vec<(String, String)>,
    /// Instances that must finish first (indices into `Plan::instances`).
    pub deps: Vec<usize>,
}

/// A declared input and what it was bound to.
#[derive(Clone, Debug)]
pub struct BoundInput {
    pub name: String,
    pub sources: Vec<InputSource>,
}

/// Where the files of an input come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSource {
    /// A file or directory on the host, mounted at `inside` (relative to the
    /// working directory).
    File { host: PathBuf, inside: String },
    /// The published files of another instance's output.
    Produced { instance: usize, output: String },
}

impl Plan<'_> {
    /// Instances in an order where each comes after everything it depends on.
    pub fn topological_order(&self) -> Vec<usize> {
        let mut order = Vec::with_capacity(self.instances.len());
        let mut state = vec![0u8; self.instances.len()];
        for start in 0..self.instances.len() {
            self.visit(start, &mut state, &mut order);
        }
        order
    }

    fn visit(&self, index: usize, state: &mut [u8], order: &mut Vec<usize>) {
        if state[index] != 0 {
            return;
        }
        state[index] = 1;
        for &dep in &self.instances[index].deps {
            self.visit(dep, state, order);
        }
        state[index] = 2;
        order.push(index);
    }

    /// Instances that depend, directly or not, on `index`.
    pub fn descendants(&self, index: usize) -> Vec<usize> {
        let mut found = vec![false; self.instances.len()];
        let mut stack = vec![index];
        while let Some(current) = stack.pop() {
            for (i, instance) in self.instances.iter().enumerate() {
                if !found[i] && instance.deps.contains(&current) {
                    found[i] = true;
                    stack.push(i);
                }
            }
        }
        (0..found.len()).filter(|&i| found[i]).collect()
    }
}
