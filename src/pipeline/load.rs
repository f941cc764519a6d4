//! Reading a pipeline file into the checked model.
//!
//! Order matters for good errors: YAML syntax first, then the JSON Schema
//! (shape and types), then the typed model and the semantic checks
//! ([`super::check`]). Each stage reports every problem it finds.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::diag::{PipelineError, Problem, Problems, SourceFile};
use super::lock::Lock;
use super::model::{
    Command, Foreach, ImageDecl, InputDecl, Located, OutputDecl, Pipeline, Resources, Step,
};
use super::node::{self, Node, Pos, Value};
use super::template::Template;
use super::units::{parse_duration, parse_size};
use super::{check, schema};
use crate::image::ImageRef;

/// What the user asked for on the command line that changes the pipeline.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--param key=value` overrides, in order.
    pub params: Vec<(String, String)>,
}

/// Loads and checks the pipeline at `path`.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Pipeline, PipelineError> {
    let parsed = parse(path)?;
    let lock = Lock::read_next_to(path).map_err(|problem| {
        let mut lock_problems = Problems::new(parsed.source.clone());
        lock_problems.push(*problem);
        lock_problems.into_error()
    })?;
    let mut builder = Builder {
        problems: parsed.problems,
        base_dir: &parsed.base_dir,
        lock: lock.as_ref(),
    };
    let pipeline = builder.pipeline(&parsed.root, &parsed.source, options);
    let mut problems = builder.problems;
    check::semantics(&pipeline, &mut problems);
    problems.finish(pipeline)
}

/// Reads only the pipeline's `images:`, as written (unpinned ones too, and ignoring
/// any lock file), for `seal lock`.
pub fn load_images(path: &Path) -> Result<Vec<ImageDecl>, PipelineError> {
    let parsed = parse(path)?;
    let mut builder = Builder {
        problems: parsed.problems,
        base_dir: &parsed.base_dir,
        lock: None,
    };
    let images = builder.images(&parsed.root);
    builder.problems.finish(images)
}

/// A file that is YAML and matches the schema.
struct Parsed {
    source: SourceFile,
    root: Node,
    base_dir: PathBuf,
    problems: Problems,
}

fn parse(path: &Path) -> Result<Parsed, PipelineError> {
    let text = fs_err::read_to_string(path).map_err(|source| PipelineError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let source = SourceFile::new(path.to_path_buf(), text);
    let mut problems = Problems::new(source.clone());
    let root = match node::parse(source.text()) {
        Ok(root) => root,
        Err(error) => {
            problems.push(yaml_problem(&source, &error));
            return Err(problems.into_error());
        }
    };
    schema::check(&root, &mut problems);
    if !problems.is_empty() {
        return Err(problems.into_error());
    }
    Ok(Parsed {
        source,
        root,
        base_dir: absolute_dir_of(path),
        problems,
    })
}

fn absolute_dir_of(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

fn yaml_problem(source: &SourceFile, error: &serde_saphyr::Error) -> Problem {
    let pos = error.location().map(|loc| {
        let (line, column) = (loc.line(), loc.column());
        Pos {
            line,
            column,
            offset: source.offset_of(line, column),
            len: 1,
        }
    });
    let message = yaml_message(&error.to_string());
    match pos {
        Some(pos) => Problem::at(
            pos,
            format!("the file is not valid YAML: {message}"),
            "here",
        ),
        None => Problem::general(format!("the file is not valid YAML: {message}")),
    }
    .with_help("fix the YAML syntax; a YAML linter or your editor's schema support can help")
}

/// The parser's message without its own `error: line L column C:` prefix.
fn yaml_message(text: &str) -> String {
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((place, rest)) if place.starts_with("line ") => rest.to_string(),
        _ => first.to_string(),
    }
}

struct Builder<'a> {
    problems: Problems,
    base_dir: &'a Path,
    lock: Option<&'a Lock>,
}

impl Builder<'_> {
    fn pipeline(&mut self, root: &Node, source: &SourceFile, options: &LoadOptions) -> Pipeline {
        let params = self.params(root, options);
        let images = self.images(root);
        let params_json: serde_json::Map<String, Json> = params.iter().cloned().collect();
        let steps = entries(root.get("steps"))
            .iter()
            .map(|(key, body)| self.step(key, body, &params_json))
            .collect();
        Pipeline {
            sha256: crate::provenance::sha256_hex(source.text().as_bytes()),
            source: source.clone(),
            base_dir: self.base_dir.to_path_buf(),
            name: root
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or_default()
                .to_string(),
            params,
            images,
            steps,
            lock_file: self.lock.map(|lock| lock.path.clone()),
        }
    }

    fn params(&mut self, root: &Node, options: &LoadOptions) -> Vec<(String, Json)> {
        let mut params: Vec<(String, Json)> = entries(root.get("params"))
            .iter()
            .map(|(key, value)| (key.key_text(), value.to_json()))
            .collect();
        for (key, text) in &options.params {
            let value = match node::parse(text) {
                Ok(parsed) => parsed.to_json(),
                Err(_) => Json::String(text.clone()),
            };
            match params.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value,
                None => self.problems.push(unknown_param(key, &params)),
            }
        }
        params
    }

    fn images(&mut self, root: &Node) -> Vec<ImageDecl> {
        let mut images = Vec::new();
        for (key, value) in entries(root.get("images")) {
            let name = key.key_text();
            let written = value.as_str().unwrap_or_default().to_string();
            let parsed = match ImageRef::parse(&written) {
                Ok(parsed) => parsed.resolve_paths(self.base_dir),
                Err(error) => {
                    let problem = Problem::at(
                        value.pos,
                        format!("image `{name}` has an invalid reference: {error}"),
                        "this reference",
                    );
                    self.problems.push(problem.with_help(IMAGE_FORMS));
                    continue;
                }
            };
            let locked = self.lock.and_then(|lock| lock.pinned(&name, &written));
            let (reference, pinned_by_lock) = match locked {
                Some(pinned) if parsed.digest.is_none() => {
                    (pinned.resolve_paths(self.base_dir), true)
                }
                _ => (parsed, false),
            };
            images.push(ImageDecl {
                name,
                written,
                reference,
                pos: value.pos,
                pinned_by_lock,
            });
        }
        images
    }

    fn step(&mut self, key: &Node, body: &Node, params: &serde_json::Map<String, Json>) -> Step {
        let name = key.key_text();
        let image = body.get("image").map_or_else(
            || Located::new(String::new(), key.pos),
            |node| Located::new(node.as_str().unwrap_or_default().to_string(), node.pos),
        );
        Step {
            command: self.command(body),
            inputs: self.inputs(body),
            outputs: self.outputs(body),
            after: self.after(body),
            foreach: self.foreach(&name, body, params),
            resources: self.resources(body),
            env: self.env(body),
            stdout: located_str(body.get("stdout")),
            stderr: located_str(body.get("stderr")),
            network: matches!(
                body.get("network").map(|n| &n.value),
                Some(Value::Bool(true))
            ),
            workdir: body
                .get("workdir")
                .and_then(Node::as_str)
                .map(str::to_string),
            user: body.get("user").and_then(Node::scalar_text),
            name,
            pos: key.pos,
            image,
        }
    }

    fn command(&mut self, body: &Node) -> Command {
        if let Some(run) = body.get("run") {
            return Command::Shell(self.template(run));
        }
        match body.get("argv").map(|n| &n.value) {
            Some(Value::Seq(items)) => {
                Command::Argv(items.iter().map(|i| self.template(i)).collect())
            }
            _ => Command::Image,
        }
    }

    fn inputs(&mut self, body: &Node) -> Vec<InputDecl> {
        entries(body.get("inputs"))
            .iter()
            .map(|(key, value)| {
                let values = match &value.value {
                    Value::Seq(items) => items.iter().map(|i| self.template(i)).collect(),
                    _ => vec![self.template(value)],
                };
                InputDecl {
                    name: key.key_text(),
                    pos: key.pos,
                    values,
                }
            })
            .collect()
    }

    fn outputs(&mut self, body: &Node) -> Vec<OutputDecl> {
        entries(body.get("outputs"))
            .iter()
            .map(|(key, value)| OutputDecl {
                name: key.key_text(),
                pos: key.pos,
                pattern: self.template(value),
            })
            .collect()
    }

    fn after(&mut self, body: &Node) -> Vec<Located<String>> {
        let Some(after) = body.get("after") else {
            return Vec::new();
        };
        let nodes = match &after.value {
            Value::Seq(items) => items.iter().collect(),
            _ => vec![after],
        };
        nodes
            .into_iter()
            .filter_map(|n| located_str(Some(n)))
            .collect()
    }

    fn env(&mut self, body: &Node) -> Vec<(String, Located<Template>)> {
        entries(body.get("env"))
            .iter()
            .map(|(key, value)| (key.key_text(), self.template(value)))
            .collect()
    }

    fn resources(&mut self, body: &Node) -> Resources {
        let mut resources = Resources::default();
        let Some(node) = body.get("resources") else {
            return resources;
        };
        if let Some(Value::Int(cpus)) = node.get("cpus").map(|n| &n.value) {
            resources.cpus = u32::try_from(*cpus).unwrap_or(u32::MAX);
        }
        if let Some(memory) = node.get("memory") {
            resources.memory_bytes = match &memory.value {
                Value::Int(bytes) => u64::try_from(*bytes).ok(),
                _ => memory.as_str().and_then(parse_size),
            };
            if resources.memory_bytes.is_none() {
                self.problems.push(
                    Problem::at(memory.pos, "invalid memory size", "here").with_help(
                        "write bytes or a size with a binary unit, such as 512M, 2G or 1.5GiB",
                    ),
                );
            }
        }
        if let Some(time) = node.get("time") {
            resources.time = match &time.value {
                Value::Int(secs) => u64::try_from(*secs)
                    .ok()
                    .map(std::time::Duration::from_secs),
                _ => time.as_str().and_then(parse_duration),
            };
            if resources.time.is_none() {
                self.problems.push(
                    Problem::at(time.pos, "invalid time limit", "here")
                        .with_help("write seconds or a duration such as 90s, 30m or 1h30m"),
                );
            }
        }
        resources
    }

    fn foreach(
        &mut self,
        step: &str,
        body: &Node,
        params: &serde_json::Map<String, Json>,
    ) -> Option<Foreach> {
        let node = body.get("foreach")?;
        let items = match &node.value {
            Value::Seq(items) => Some(items.iter().map(Node::to_json).collect()),
            Value::Str(text) => self.foreach_param(step, node, text, params),
            _ => None,
        }?;
        if items.is_empty() {
            let problem = Problem::at(
                node.pos,
                format!("step `{step}` has nothing to run"),
                "empty",
            );
            self.problems
                .push(problem.with_help("`foreach` needs at least one item"));
            return None;
        }
        Some(Foreach {
            pos: node.pos,
            items,
        })
    }

    fn foreach_param(
        &mut self,
        step: &str,
        node: &Node,
        text: &str,
        params: &serde_json::Map<String, Json>,
    ) -> Option<Vec<Json>> {
        let template = Template::parse(text).ok();
        let reference = template.as_ref().and_then(Template::single_ref);
        let Some(super::template::Ref::Param(path)) = reference else {
            let problem = Problem::at(
                node.pos,
                format!(
                    "`foreach` of step `{step}` must be a list or a ${{params.NAME}} reference"
                ),
                "not a list",
            );
            self.problems
                .push(problem.with_help("write e.g. `foreach: ${params.samples}`"));
            return None;
        };
        match super::render::lookup(params, path) {
            Some(Json::Array(items)) => Some(items.clone()),
            Some(_) => {
                let message = format!("`foreach` of step `{step}`: `{text}` is not a list");
                let problem = Problem::at(node.pos, message, "not a list");
                self.problems
                    .push(problem.with_help("make the parameter a YAML list"));
                None
            }
            // An unknown parameter is reported by the reference check.
            None => None,
        }
    }

    fn template(&mut self, node: &Node) -> Located<Template> {
        let text = node.scalar_text().unwrap_or_default();
        match Template::parse(&text) {
            Ok(template) => Located::new(template, node.pos),
            Err(error) => {
                let pos =
                    super::check::sub_pos(&self.problems, node.pos, &text, error.start, error.end);
                self.problems
                    .push(Problem::at(pos, error.message, "here").with_help(error.help));
                Located::new(Template::parse("").expect("empty template"), node.pos)
            }
        }
    }
}

const IMAGE_FORMS: &str = "write `[registry/]repo[:tag]@sha256:<64 hex>`, \
    `oci:<dir>[:tag]@sha256:<64 hex>` or `docker-archive:<file>@sha256:<64 hex>`";

fn unknown_param(key: &str, params: &[(String, Json)]) -> Problem {
    let known: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    let help = if known.is_empty() {
        "the pipeline declares no parameters".to_string()
    } else {
        format!("the pipeline declares: {}", known.join(", "))
    };
    Problem::general(format!(
        "`--param {key}=...`: the pipeline has no parameter `{key}`"
    ))
    .with_help(help)
}

fn entries(node: Option<&Node>) -> &[(Node, Node)] {
    node.and_then(Node::as_map).unwrap_or(&[])
}

fn located_str(node: Option<&Node>) -> Option<Located<String>> {
    let node = node?;
    Some(Located::new(node.scalar_text()?, node.pos))
}
