//! Turning references into text: parameter lookup, items, input and output paths.

use serde_json::Value as Json;

use super::template::{Ref, Template};

/// Looks up `path` (e.g. `["samples", "0"]`) in the parameters.
pub fn lookup<'a>(params: &'a serde_json::Map<String, Json>, path: &[String]) -> Option<&'a Json> {
    let (first, rest) = path.split_first()?;
    descend(params.get(first)?, rest)
}

/// Follows object keys and list indices below `value`.
pub fn descend<'a>(value: &'a Json, path: &[String]) -> Option<&'a Json> {
    path.iter().try_fold(value, |value, key| match value {
        Json::Object(map) => map.get(key),
        Json::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A scalar as text; `None` for lists and mappings.
pub fn scalar_text(value: &Json) -> Option<String> {
    match value {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Null => Some(String::new()),
        Json::Array(_) | Json::Object(_) => None,
    }
}

/// How the words of a list are joined into one string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Space-separated, each word shell-quoted when it needs it (`run:`).
    Shell,
    /// Space-separated as they are (argv elements, env values).
    Plain,
}

/// Joins words for insertion into a command.
pub fn join_words(words: &[String], join: Join) -> String {
    match join {
        Join::Plain => words.join(" "),
        Join::Shell => words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Quotes `word` for `/bin/sh` only when it needs quoting.
pub fn shell_quote(word: &str) -> String {
    shlex::try_quote(word).map_or_else(|_| word.to_string(), |q| q.into_owned())
}

/// The values a reference can take while rendering one step instance.
pub struct Scope<'a> {
    pub params: &'a serde_json::Map<String, Json>,
    pub item: Option<&'a Json>,
    /// Input name → its paths inside the working directory.
    pub inputs: &'a [(String, Vec<String>)],
    /// Output name → its path or glob inside the working directory.
    pub outputs: &'a [(String, String)],
}

/// A reference that cannot be turned into text here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

impl Scope<'_> {
    /// The words a reference stands for (several for lists and multi-file inputs).
    pub fn words(&self, reference: &Ref) -> Result<Vec<String>, RenderError> {
        let value = match reference {
            Ref::Param(path) => lookup(self.params, path)
                .ok_or_else(|| RenderError(format!("{reference}: no such parameter")))?,
            Ref::Item(path) => {
                let item = self
                    .item
                    .ok_or_else(|| RenderError(format!("{reference}: the step has no foreach")))?;
                descend(item, path).ok_or_else(|| {
                    RenderError(format!("{reference}: the item has no such field"))
                })?
            }
            Ref::Input(name) => return self.input(name, reference),
            Ref::Output(name) => return self.output(name, reference),
            Ref::StepOutput { .. } => {
                let message = format!("{reference} can only be used in `inputs:`");
                return Err(RenderError(message));
            }
        };
        value_words(value)
            .ok_or_else(|| RenderError(format!("{reference} is a mapping; pick one of its keys")))
    }

    fn input(&self, name: &str, reference: &Ref) -> Result<Vec<String>, RenderError> {
        self.inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, paths)| paths.clone())
            .ok_or_else(|| RenderError(format!("{reference}: the step has no such input")))
    }

    fn output(&self, name: &str, reference: &Ref) -> Result<Vec<String>, RenderError> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, path)| vec![path.clone()])
            .ok_or_else(|| RenderError(format!("{reference}: the step has no such output")))
    }

    /// Renders a template into one string, joining lists as `join` says.
    pub fn render(&self, template: &Template, join: Join) -> Result<String, RenderError> {
        template.render(|reference| Ok(join_words(&self.words(reference)?, join)))
    }

    /// Renders a template into words: a template that is exactly one list
    /// reference gives one word per element; anything else gives one word.
    pub fn render_words(&self, template: &Template) -> Result<Vec<String>, RenderError> {
        match template.single_ref() {
            Some(reference) => self.words(reference),
            None => Ok(vec![self.render(template, Join::Plain)?]),
        }
    }
}

/// Scalars give one word, lists one word per scalar element.
fn value_words(value: &Json) -> Option<Vec<String>> {
    match value {
        Json::Array(items) => items.iter().map(scalar_text).collect(),
        other => scalar_text(other).map(|text| vec![text]),
    }
}

/// A short label for a foreach item: the scalar itself, or a mapping's `id`
/// or `name`; `None` when neither exists.
pub fn item_label(item: &Json) -> Option<String> {
    match item {
        Json::Object(map) => map
            .get("id")
            .or_else(|| map.get("name"))
            .and_then(scalar_text),
        other => scalar_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> serde_json::Map<String, Json> {
        json!({"samples": ["A", "B c"], "k": 19, "ref": {"path": "r.fa"}})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn lists_are_quoted_for_the_shell_and_kept_as_words_for_argv() {
        let params = params();
        let inputs = vec![(
            "reads".to_string(),
            vec!["a.fq".to_string(), "b 2.fq".to_string()],
        )];
        let scope = Scope {
            params: &params,
            item: None,
            inputs: &inputs,
            outputs: &[],
        };
        let t = Template::parse("cat ${inputs.reads} ${params.samples} -k ${params.k}").unwrap();
        assert_eq!(
            scope.render(&t, Join::Shell).unwrap(),
            "cat a.fq 'b 2.fq' A 'B c' -k 19"
        );
        let single = Template::parse("${inputs.reads}").unwrap();
        assert_eq!(scope.render_words(&single).unwrap(), vec!["a.fq", "b 2.fq"]);
    }

    #[test]
    fn mappings_need_a_key_and_items_resolve_fields() {
        let params = params();
        let item = json!({"id": "JK2134", "reads": "x.fq"});
        let scope = Scope {
            params: &params,
            item: Some(&item),
            inputs: &[],
            outputs: &[],
        };
        let bad = Template::parse("${params.ref}").unwrap();
        assert!(
            scope
                .render(&bad, Join::Shell)
                .unwrap_err()
                .0
                .contains("mapping")
        );
        let good = Template::parse("${params.ref.path} ${item.reads}").unwrap();
        assert_eq!(scope.render(&good, Join::Shell).unwrap(), "r.fa x.fq");
        assert_eq!(item_label(&item).as_deref(), Some("JK2134"));
    }
}
