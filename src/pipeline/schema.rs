//! The JSON Schema check, with errors mapped back to the YAML's lines.

use std::sync::OnceLock;

use super::diag::{Problem, Problems};
use super::node::Node;

/// The pipeline schema, as shipped in `schemas/` for editors.
pub const PIPELINE_SCHEMA: &str = include_str!("../../schemas/pipeline.schema.json");

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(PIPELINE_SCHEMA).expect("the bundled schema is valid JSON");
        jsonschema::validator_for(&schema).expect("the bundled schema is a valid JSON Schema")
    })
}

/// Checks `root` against the schema, adding one problem per violation.
pub fn check(root: &Node, problems: &mut Problems) {
    let instance = root.to_json();
    let mut found: Vec<(String, String)> = validator()
        .iter_errors(&instance)
        .map(|error| {
            (
                error.instance_path().as_str().to_string(),
                error.to_string(),
            )
        })
        .collect();
    // `oneOf` failures repeat for each branch; keep the clearest per place.
    found.sort();
    found.dedup_by(|a, b| a.0 == b.0);
    for (pointer, message) in found {
        problems.push(problem_at(root, &pointer, &message));
    }
}

fn problem_at(root: &Node, pointer: &str, message: &str) -> Problem {
    let parent = root.at_pointer(pointer);
    // Point at an unexpected key itself rather than at the mapping holding it.
    let node = unexpected_key(message)
        .and_then(|key| parent.key_node(&key))
        .unwrap_or(parent);
    let place = if pointer.is_empty() {
        "the top level".to_string()
    } else {
        format!("`{}`", pointer.trim_start_matches('/').replace('/', "."))
    };
    let problem = Problem::at(
        node.pos,
        format!(
            "{place} does not match the pipeline schema: {}",
            shorten(message)
        ),
        "here",
    );
    match hint_for(message) {
        Some(hint) => problem.with_help(hint),
        None => problem.with_help("see schemas/pipeline.schema.json and docs/pipeline.md"),
    }
}

/// The key named in "Additional properties are not allowed ('x' was unexpected)".
fn unexpected_key(message: &str) -> Option<String> {
    let start = message.find("('")? + 2;
    let end = start + message[start..].find('\'')?;
    Some(message[start..end].to_string())
}

/// Schema messages quote whole values; keep them readable.
fn shorten(message: &str) -> String {
    const LIMIT: usize = 160;
    if message.len() <= LIMIT {
        return message.to_string();
    }
    let cut = (0..=LIMIT)
        .rev()
        .find(|&i| message.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &message[..cut])
}

fn hint_for(message: &str) -> Option<&'static str> {
    if message.contains("Additional properties") || message.contains("unexpected") {
        Some("check the spelling of the key; docs/pipeline.md lists every key")
    } else if message.contains("should not be valid under") {
        Some("a step has either `run:` (a shell command) or `argv:` (a list), not both")
    } else {
        None
    }
}
