//! Semantic checks: references, images, captured streams and cycles.

use petgraph::graph::{DiGraph, NodeIndex};

use super::diag::{Problem, Problems};
use super::model::{Command, Located, Pipeline, Step};
use super::node::Pos;
use super::render::{descend, lookup};
use super::template::{Ref, Template};

/// Runs every semantic check, adding what it finds to `problems`.
pub fn semantics(pipeline: &Pipeline, problems: &mut Problems) {
    check_images(pipeline, problems);
    for step in &pipeline.steps {
        check_step(pipeline, step, problems);
    }
    check_cycles(pipeline, problems);
}

/// Narrows `pos` (a whole string) to bytes `start..end` of its text, when the
/// text appears verbatim in the file (plain or simply quoted scalars).
pub fn sub_pos(problems: &Problems, pos: Pos, text: &str, start: usize, end: usize) -> Pos {
    let source = problems.source().text();
    let needle = &text[start..end];
    let window_end = (pos.offset + pos.len.max(text.len()) + needle.len()).min(source.len());
    let Some(window) = source.get(pos.offset..window_end) else {
        return pos;
    };
    let Some(found) = window.find(needle) else {
        return pos;
    };
    let offset = pos.offset + found;
    let before = &source[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    Pos {
        line,
        column,
        offset,
        len: needle.len(),
    }
}

fn check_images(pipeline: &Pipeline, problems: &mut Problems) {
    for image in &pipeline.images {
        if image.reference.digest.is_some() {
            continue;
        }
        let lock = super::lock::lock_path_for(&pipeline.source.path);
        let problem = Problem::at(
            image.pos,
            format!("image `{}` is not pinned by digest", image.name),
            "no @sha256:<digest>",
        )
        .with_help(format!(
            "append @sha256:<digest> to the reference (`seal image import` prints it for \
             local images), or run `seal lock {}` to pin it in `{}`",
            pipeline.source.path.display(),
            lock.display()
        ));
        problems.push(problem);
    }
}

fn check_step(pipeline: &Pipeline, step: &Step, problems: &mut Problems) {
    if pipeline.image(&step.image.value).is_none() {
        problems.push(unknown_image(pipeline, step));
    }
    for input in &step.inputs {
        for value in &input.values {
            check_refs(pipeline, step, value, Field::Input, problems);
        }
    }
    for output in &step.outputs {
        check_refs(pipeline, step, &output.pattern, Field::Output, problems);
        check_output_path(step, &output.name, &output.pattern, problems);
    }
    for template in command_templates(step) {
        check_refs(pipeline, step, template, Field::Command, problems);
    }
    for (_, value) in &step.env {
        check_refs(pipeline, step, value, Field::Command, problems);
    }
    check_after(pipeline, step, problems);
    check_streams(step, problems);
}

fn command_templates(step: &Step) -> Vec<&Located<Template>> {
    match &step.command {
        Command::Shell(run) => vec![run],
        Command::Argv(argv) => argv.iter().collect(),
        Command::Image => Vec::new(),
    }
}

fn unknown_image(pipeline: &Pipeline, step: &Step) -> Problem {
    let known: Vec<&str> = pipeline.images.iter().map(|i| i.name.as_str()).collect();
    let help = if known.is_empty() {
        "declare it under the top-level `images:`".to_string()
    } else {
        format!("declared images: {}", known.join(", "))
    };
    Problem::at(
        step.image.pos,
        format!(
            "step `{}` uses unknown image `{}`",
            step.name, step.image.value
        ),
        "not in `images:`",
    )
    .with_help(help)
}

/// Which part of a step a template sits in; it decides what may be referenced.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Input,
    Output,
    Command,
}

fn check_refs(
    pipeline: &Pipeline,
    step: &Step,
    template: &Located<Template>,
    field: Field,
    problems: &mut Problems,
) {
    for (reference, start, end) in template.value.refs() {
        let Some(problem) = ref_problem(pipeline, step, reference, field) else {
            continue;
        };
        let pos = sub_pos(problems, template.pos, &template.value.source, start, end);
        problems.push(Problem {
            primary: Some((pos, problem.label)),
            ..Problem::general(problem.message).with_help(problem.help)
        });
    }
}

struct RefProblem {
    message: String,
    label: String,
    help: String,
}

fn ref_problem(
    pipeline: &Pipeline,
    step: &Step,
    reference: &Ref,
    field: Field,
) -> Option<RefProblem> {
    let fail = |message: String, label: &str, help: String| {
        Some(RefProblem {
            message,
            label: label.to_string(),
            help,
        })
    };
    let name = &step.name;
    match reference {
        Ref::Param(path) => {
            let params = pipeline.params_json();
            if lookup(&params, path).is_some() {
                return None;
            }
            let known: Vec<&str> = pipeline.params.iter().map(|(k, _)| k.as_str()).collect();
            fail(
                format!("step `{name}` refers to {reference}, which does not exist"),
                "unknown parameter",
                format!("declared parameters: {}", list_or_none(&known)),
            )
        }
        Ref::Item(path) => item_problem(step, reference, path),
        Ref::Input(input) if field == Field::Command => {
            let known: Vec<&str> = step.inputs.iter().map(|i| i.name.as_str()).collect();
            (step.input(input).is_none()).then(|| RefProblem {
                message: format!("step `{name}` refers to {reference}, which it does not declare"),
                label: "unknown input".into(),
                help: format!("the step's inputs: {}", list_or_none(&known)),
            })
        }
        Ref::Output(output) if field == Field::Command => {
            let known: Vec<&str> = step.outputs.iter().map(|o| o.name.as_str()).collect();
            (step.output(output).is_none()).then(|| RefProblem {
                message: format!("step `{name}` refers to {reference}, which it does not declare"),
                label: "unknown output".into(),
                help: format!("the step's outputs: {}", list_or_none(&known)),
            })
        }
        Ref::StepOutput {
            step: other,
            output,
        } if field == Field::Input => step_output_problem(pipeline, step, reference, other, output),
        Ref::Input(_) | Ref::Output(_) => fail(
            format!("step `{name}` uses {reference} outside its command"),
            "not allowed here",
            "${inputs.*} and ${outputs.*} can be used in `run:`, `argv:` and `env:`".into(),
        ),
        Ref::StepOutput { .. } => fail(
            format!("step `{name}` uses {reference} outside `inputs:`"),
            "not allowed here",
            "declare it as an input (`inputs: {x: ...}`) and use ${inputs.x}".into(),
        ),
    }
}

fn item_problem(step: &Step, reference: &Ref, path: &[String]) -> Option<RefProblem> {
    let Some(foreach) = &step.foreach else {
        return Some(RefProblem {
            message: format!("step `{}` uses {reference} but has no `foreach`", step.name),
            label: "no item here".into(),
            help: "add `foreach:` to the step, or use a parameter".into(),
        });
    };
    let missing = foreach
        .items
        .iter()
        .find(|item| descend(item, path).is_none())?;
    Some(RefProblem {
        message: format!(
            "step `{}` uses {reference}, missing from item {missing}",
            step.name
        ),
        label: "not in every item".into(),
        help: "every foreach item must have the fields the step uses".into(),
    })
}

fn step_output_problem(
    pipeline: &Pipeline,
    step: &Step,
    reference: &Ref,
    other: &str,
    output: &str,
) -> Option<RefProblem> {
    let Some((_, producer)) = pipeline.step(other) else {
        let known: Vec<&str> = pipeline.steps.iter().map(|s| s.name.as_str()).collect();
        return Some(RefProblem {
            message: format!(
                "step `{}` refers to {reference}: no step `{other}`",
                step.name
            ),
            label: "unknown step".into(),
            help: format!("steps: {}", known.join(", ")),
        });
    };
    if producer.output(output).is_some() {
        return None;
    }
    let known: Vec<&str> = producer.outputs.iter().map(|o| o.name.as_str()).collect();
    Some(RefProblem {
        message: format!(
            "step `{}` refers to {reference}: step `{other}` has no output `{output}`",
            step.name
        ),
        label: "unknown output".into(),
        help: format!("outputs of `{other}`: {}", list_or_none(&known)),
    })
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}

fn check_output_path(
    step: &Step,
    name: &str,
    pattern: &Located<Template>,
    problems: &mut Problems,
) {
    let text = &pattern.value.source;
    let escapes = text.starts_with('/') || text.split('/').any(|part| part == "..");
    if escapes {
        let problem = Problem::at(
            pattern.pos,
            format!(
                "output `{name}` of step `{}` leaves the working directory",
                step.name
            ),
            "absolute or contains `..`",
        );
        problems
            .push(problem.with_help("outputs are paths relative to the step's working directory"));
    }
}

fn check_after(pipeline: &Pipeline, step: &Step, problems: &mut Problems) {
    for after in &step.after {
        if pipeline.step(&after.value).is_some() && after.value != step.name {
            continue;
        }
        let message = if after.value == step.name {
            format!("step `{}` cannot run after itself", step.name)
        } else {
            format!(
                "step `{}` runs after unknown step `{}`",
                step.name, after.value
            )
        };
        let known: Vec<&str> = pipeline.steps.iter().map(|s| s.name.as_str()).collect();
        let problem = Problem::at(after.pos, message, "here");
        problems.push(problem.with_help(format!("steps: {}", known.join(", "))));
    }
}

fn check_streams(step: &Step, problems: &mut Problems) {
    let streams = [("stdout", &step.stdout), ("stderr", &step.stderr)];
    for (stream, target) in streams {
        let Some(target) = target else { continue };
        let Some(output) = step.output(&target.value) else {
            let problem = Problem::at(
                target.pos,
                format!(
                    "step `{}` captures {stream} into undeclared output `{}`",
                    step.name, target.value
                ),
                "not in `outputs:`",
            );
            problems.push(problem.with_help("name one of the step's outputs"));
            continue;
        };
        if is_glob(&output.pattern.value.source) {
            let problem = Problem::at(
                target.pos,
                format!(
                    "step `{}` captures {stream} into output `{}`, which is a glob",
                    step.name, target.value
                ),
                "needs a plain path",
            );
            problems.push(problem.also(output.pattern.pos, "this pattern"));
        }
    }
    if let (Some(out), Some(err)) = (&step.stdout, &step.stderr)
        && out.value == err.value
    {
        let message = format!(
            "step `{}` captures stdout and stderr into one output",
            step.name
        );
        problems.push(
            Problem::at(err.pos, message, "same as stdout")
                .with_help("capture them into two outputs, or redirect in the command (`2>&1`)"),
        );
    }
}

/// True when `text` has glob syntax (`*`, `?`, `[`, `{`).
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '[', '{'])
        && Template::parse(text).map_or(true, |t| {
            t.segments.iter().any(|s| {
                matches!(s, super::template::Segment::Text(t) if t.contains(['*', '?', '[', '{']))
            })
        })
}

/// An edge between two steps and where the user wrote it.
struct Edge {
    pos: Pos,
}

fn check_cycles(pipeline: &Pipeline, problems: &mut Problems) {
    let (graph, nodes) = step_graph(pipeline, problems);
    for component in petgraph::algo::tarjan_scc(&graph) {
        let self_loop = component.len() == 1 && graph.contains_edge(component[0], component[0]);
        if component.len() < 2 && !self_loop {
            continue;
        }
        let cycle = cycle_through(&graph, &component);
        let names: Vec<&str> = cycle
            .iter()
            .map(|&n| pipeline.steps[graph[n]].name.as_str())
            .collect();
        let mut text = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>();
        text.push(format!("`{}`", names[0]));
        let mut problem = Problem::general(format!("steps {} form a cycle", text.join(" → ")))
            .with_help("a step cannot depend, through inputs or `after:`, on its own results");
        for pair in 0..cycle.len() {
            let (from, to) = (cycle[pair], cycle[(pair + 1) % cycle.len()]);
            let edge = graph.find_edge(from, to).map(|e| &graph[e]);
            let label = format!(
                "`{}` needs `{}`",
                names[(pair + 1) % names.len()],
                names[pair]
            );
            if let Some(edge) = edge {
                problem = if problem.primary.is_none() {
                    Problem {
                        primary: Some((edge.pos, label)),
                        ..problem
                    }
                } else {
                    problem.also(edge.pos, label)
                };
            }
        }
        let _ = &nodes;
        problems.push(problem);
    }
}

/// The step graph: an edge from producer to consumer for each reference.
fn step_graph(pipeline: &Pipeline, problems: &Problems) -> (DiGraph<usize, Edge>, Vec<NodeIndex>) {
    let mut graph = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..pipeline.steps.len())
        .map(|i| graph.add_node(i))
        .collect();
    for (consumer, step) in pipeline.steps.iter().enumerate() {
        for (producer, pos) in step_dependencies(pipeline, step, problems) {
            if graph.find_edge(nodes[producer], nodes[consumer]).is_none() {
                graph.add_edge(nodes[producer], nodes[consumer], Edge { pos });
            }
        }
    }
    (graph, nodes)
}

/// The steps `step` depends on, with the place each dependency is written.
pub fn step_dependencies(
    pipeline: &Pipeline,
    step: &Step,
    problems: &Problems,
) -> Vec<(usize, Pos)> {
    let mut deps = Vec::new();
    for input in &step.inputs {
        for value in &input.values {
            for (reference, start, end) in value.value.refs() {
                if let Ref::StepOutput { step: other, .. } = reference
                    && let Some((index, _)) = pipeline.step(other)
                {
                    let pos = sub_pos(problems, value.pos, &value.value.source, start, end);
                    deps.push((index, pos));
                }
            }
        }
    }
    for after in &step.after {
        if let Some((index, _)) = pipeline.step(&after.value) {
            deps.push((index, after.pos));
        }
    }
    deps
}

/// A cycle through the strongly connected `component`, in edge order.
fn cycle_through(graph: &DiGraph<usize, Edge>, component: &[NodeIndex]) -> Vec<NodeIndex> {
    let start = *component
        .iter()
        .min_by_key(|n| graph[**n])
        .expect("non-empty component");
    let mut path = vec![start];
    let mut seen = std::collections::HashSet::from([start]);
    let mut current = start;
    loop {
        let next = graph
            .neighbors(current)
            .filter(|n| component.contains(n))
            .min_by_key(|n| (*n != start, graph[*n]));
        match next {
            Some(n) if n == start => return path,
            Some(n) if seen.insert(n) => {
                path.push(n);
                current = n;
            }
            // Walked into a loop that does not return to `start`: report it from there.
            Some(n) => {
                let at = path.iter().position(|p| *p == n).unwrap_or(0);
                return path.split_off(at);
            }
            None => return path,
        }
    }
}
