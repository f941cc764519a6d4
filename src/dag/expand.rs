//! Expanding steps into instances and binding their inputs.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value as Json;

use super::{BoundInput, InputSource, Instance, Plan};
use crate::pipeline::Pipeline;
use crate::pipeline::check::is_glob;
use crate::pipeline::diag::{PipelineError, Problem, Problems};
use crate::pipeline::model::{InputDecl, Located, Step};
use crate::pipeline::render::{Join, Scope, item_label};
use crate::pipeline::template::{Ref, Template};

/// Expands `pipeline` into its plan, checking what only expansion reveals:
/// missing input files, two instances writing one output, input clashes.
pub fn plan(pipeline: &Pipeline) -> Result<Plan<'_>, PipelineError> {
    let mut expander = Expander {
        pipeline,
        params: pipeline.params_json(),
        problems: Problems::new(pipeline.source.clone()),
        first_instance: Vec::with_capacity(pipeline.steps.len()),
        instances: Vec::new(),
    };
    expander.create_instances();
    expander.bind_all();
    expander.check_output_clashes();
    let Expander {
        problems,
        instances,
        ..
    } = expander;
    problems.finish(Plan {
        pipeline,
        instances,
    })
}

struct Expander<'p> {
    pipeline: &'p Pipeline,
    params: serde_json::Map<String, Json>,
    problems: Problems,
    /// Index of each step's first instance; a step's instances are contiguous.
    first_instance: Vec<usize>,
    instances: Vec<Instance>,
}

impl Expander<'_> {
    fn create_instances(&mut self) {
        for (step_index, step) in self.pipeline.steps.iter().enumerate() {
            self.first_instance.push(self.instances.len());
            let items: Vec<Option<Json>> = match &step.foreach {
                Some(foreach) => foreach.items.iter().cloned().map(Some).collect(),
                None => vec![None],
            };
            let labels = unique_labels(&items);
            for (item, label) in items.into_iter().zip(labels) {
                let (id, dir_name) = match &label {
                    Some(label) => (
                        format!("{}[{label}]", step.name),
                        dir_safe(&step.name, label),
                    ),
                    None => (step.name.clone(), step.name.clone()),
                };
                self.instances.push(Instance {
                    id,
                    dir_name,
                    step: step_index,
                    item,
                    inputs: Vec::new(),
                    outputs: Vec::new(),
                    deps: Vec::new(),
                });
            }
        }
    }

    fn bind_all(&mut self) {
        for index in 0..self.instances.len() {
            let step = &self.pipeline.steps[self.instances[index].step];
            let outputs = self.outputs_of(index, step);
            let inputs = step
                .inputs
                .iter()
                .map(|decl| self.bind_input(index, step, decl))
                .collect();
            let mut deps = self.after_deps(index, step);
            let instance = &mut self.instances[index];
            instance.outputs = outputs;
            instance.inputs = inputs;
            for input in &instance.inputs {
                for source in &input.sources {
                    if let InputSource::Produced { instance, .. } = source {
                        deps.push(*instance);
                    }
                }
            }
            deps.sort_unstable();
            deps.dedup();
            instance.deps = deps;
            self.check_input_clashes(index);
        }
    }

    fn scope(&self, index: usize) -> Scope<'_> {
        Scope {
            params: &self.params,
            item: self.instances[index].item.as_ref(),
            inputs: &[],
            outputs: &[],
        }
    }

    fn outputs_of(&mut self, index: usize, step: &Step) -> Vec<(String, String)> {
        let mut outputs = Vec::with_capacity(step.outputs.len());
        for output in &step.outputs {
            let rendered = self.scope(index).render(&output.pattern.value, Join::Plain);
            match rendered {
                Ok(path) if is_relative_inside(&path) => outputs.push((output.name.clone(), path)),
                Ok(path) => {
                    let id = &self.instances[index].id;
                    let problem = Problem::at(
                        output.pattern.pos,
                        format!(
                            "output `{}` of {id} is `{path}`, outside the working directory",
                            output.name
                        ),
                        "expands to an absolute path or one with `..`",
                    );
                    self.problems.push(problem);
                }
                Err(error) => self.push_render_problem(&output.pattern, &error.0),
            }
        }
        outputs
    }

    fn bind_input(&mut self, index: usize, step: &Step, decl: &InputDecl) -> BoundInput {
        let mut sources = Vec::new();
        for value in &decl.values {
            match value.value.single_ref() {
                Some(Ref::StepOutput {
                    step: producer,
                    output,
                }) => {
                    let producer = self.pipeline.step(producer).map(|(i, _)| i);
                    if let Some(producer) = producer {
                        for instance in self.bound_instances(index, producer) {
                            let output = output.clone();
                            sources.push(InputSource::Produced { instance, output });
                        }
                    }
                }
                _ if value
                    .value
                    .refs()
                    .any(|(r, _, _)| matches!(r, Ref::StepOutput { .. })) =>
                {
                    let problem = Problem::at(
                        value.pos,
                        format!(
                            "input `{}` of step `{}` mixes a step output with other text",
                            decl.name, step.name
                        ),
                        "here",
                    );
                    let help = "write the reference alone: `x: ${steps.S.outputs.O}`; \
                                use a list for several";
                    self.problems.push(problem.with_help(help));
                }
                _ => sources.extend(self.host_files(index, decl, value)),
            }
        }
        BoundInput {
            name: decl.name.clone(),
            sources,
        }
    }

    /// The instances of `producer` that instance `index` reads from: the one
    /// with the same item when both steps iterate over the same list, else all.
    fn bound_instances(&self, index: usize, producer: usize) -> Vec<usize> {
        let consumer = &self.pipeline.steps[self.instances[index].step];
        let producer_step = &self.pipeline.steps[producer];
        let first = self.first_instance[producer];
        let count = producer_step.foreach.as_ref().map_or(1, |f| f.items.len());
        match (&consumer.foreach, &producer_step.foreach) {
            (Some(mine), Some(theirs)) if mine.items == theirs.items => {
                let offset = index - self.first_instance[self.instances[index].step];
                vec![first + offset]
            }
            _ => (first..first + count).collect(),
        }
    }

    fn after_deps(&self, index: usize, step: &Step) -> Vec<usize> {
        let mut deps = Vec::new();
        for after in &step.after {
            if let Some((producer, _)) = self.pipeline.step(&after.value) {
                deps.extend(self.bound_instances(index, producer));
            }
        }
        deps
    }

    fn host_files(
        &mut self,
        index: usize,
        decl: &InputDecl,
        value: &Located<Template>,
    ) -> Vec<InputSource> {
        let words = match self.scope(index).render_words(&value.value) {
            Ok(words) => words,
            Err(error) => {
                self.push_render_problem(value, &error.0);
                return Vec::new();
            }
        };
        let mut sources = Vec::new();
        for word in words {
            let matches = self.expand_host_path(&word);
            if matches.is_empty() {
                let id = &self.instances[index].id;
                let shown = self.pipeline.base_dir.join(&word);
                let problem = Problem::at(
                    value.pos,
                    format!(
                        "input `{}` of {id}: no file matches `{}`",
                        decl.name,
                        shown.display()
                    ),
                    "nothing matches",
                )
                .with_help(
                    "relative input paths are resolved against the pipeline file's directory",
                );
                self.problems.push(problem);
            }
            for (host, inside) in matches {
                sources.push(InputSource::File { host, inside });
            }
        }
        sources
    }

    /// Host files for a path or glob, with where each appears in the sandbox.
    fn expand_host_path(&self, word: &str) -> Vec<(PathBuf, String)> {
        let full = self.pipeline.base_dir.join(word);
        if !is_glob(word) {
            return match full.symlink_metadata() {
                Ok(_) => vec![(full, inside_path(word))],
                Err(_) => Vec::new(),
            };
        }
        let pattern = full.to_string_lossy().into_owned();
        let Ok(paths) = glob::glob(&pattern) else {
            return Vec::new();
        };
        let base = &self.pipeline.base_dir;
        paths
            .filter_map(Result::ok)
            .map(|host| {
                let relative = host
                    .strip_prefix(base)
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned());
                let shown = match relative {
                    Some(rel) if !Path::new(word).is_absolute() => rel,
                    _ => host.to_string_lossy().into_owned(),
                };
                let inside = inside_path(&shown);
                (host, inside)
            })
            .collect()
    }

    fn check_input_clashes(&mut self, index: usize) {
        let mut seen: HashMap<String, &str> = HashMap::new();
        let instance = &self.instances[index];
        let step = &self.pipeline.steps[instance.step];
        for input in &instance.inputs {
            for source in &input.sources {
                let InputSource::File { inside, .. } = source else {
                    continue;
                };
                if let Some(other) = seen.insert(inside.clone(), &input.name) {
                    let pos = step.input(&input.name).map_or(step.pos, |d| d.pos);
                    let message = format!(
                        "inputs `{other}` and `{}` of {} both appear at `{inside}`",
                        input.name, instance.id
                    );
                    let problem = Problem::at(pos, message, "clashes")
                        .with_help("inputs are mounted at their relative path, or by file name");
                    self.problems.push(problem);
                }
            }
        }
    }

    fn check_output_clashes(&mut self) {
        let mut owners: HashMap<&str, (usize, &str)> = HashMap::new();
        let mut found = Vec::new();
        for (index, instance) in self.instances.iter().enumerate() {
            for (name, path) in &instance.outputs {
                let Some((other, other_name)) = owners.insert(path, (index, name)) else {
                    continue;
                };
                found.push((
                    other,
                    other_name.to_string(),
                    index,
                    name.clone(),
                    path.clone(),
                ));
            }
        }
        for (first, first_name, second, second_name, path) in found {
            let problem = self.output_clash(first, &first_name, second, &second_name, &path);
            self.problems.push(problem);
        }
    }

    fn output_clash(&self, a: usize, a_name: &str, b: usize, b_name: &str, path: &str) -> Problem {
        let (a, b) = (&self.instances[a], &self.instances[b]);
        let step_a = &self.pipeline.steps[a.step];
        let step_b = &self.pipeline.steps[b.step];
        let pos_a = step_a.output(a_name).map_or(step_a.pos, |o| o.pattern.pos);
        let pos_b = step_b.output(b_name).map_or(step_b.pos, |o| o.pattern.pos);
        let help = if a.step == b.step {
            "include ${item} in the output path so each foreach item writes its own file"
        } else {
            "results share one directory: give one of the outputs another path"
        };
        Problem::at(
            pos_b,
            format!("{} and {} both write output `{path}`", a.id, b.id),
            format!("{} writes `{path}`", b.id),
        )
        .also(pos_a, format!("{} writes `{path}`", a.id))
        .with_help(help)
    }

    fn push_render_problem(&mut self, template: &Located<Template>, message: &str) {
        self.problems
            .push(Problem::at(template.pos, message.to_string(), "here"));
    }
}

/// Labels for foreach items: each item's label, or its index when labels are
/// missing or repeat.
fn unique_labels(items: &[Option<Json>]) -> Vec<Option<String>> {
    if items.len() == 1 && items[0].is_none() {
        return vec![None];
    }
    let labels: Vec<Option<String>> = items
        .iter()
        .map(|i| i.as_ref().and_then(item_label))
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for label in labels.iter().flatten() {
        *counts.entry(label).or_default() += 1;
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| match label {
            Some(l) if counts[l.as_str()] == 1 && !l.is_empty() => Some(l.clone()),
            _ => Some(i.to_string()),
        })
        .collect()
}

/// `step.label` with anything outside `[A-Za-z0-9._-]` replaced.
fn dir_safe(step: &str, label: &str) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{step}.{clean}")
}

/// True for a relative path with no `..` component.
pub fn is_relative_inside(path: &str) -> bool {
    let path = Path::new(path);
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// Where a host input appears inside the working directory: at its relative
/// path when it has one without `..`, else by its file name.
fn inside_path(written: &str) -> String {
    if is_relative_inside(written) {
        let normal: PathBuf = Path::new(written).components().collect();
        return normal.to_string_lossy().into_owned();
    }
    Path::new(written)
        .file_name()
        .map_or_else(|| written.to_string(), |n| n.to_string_lossy().into_owned())
}
