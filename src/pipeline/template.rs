//! `${...}` references in pipeline strings.
//!
//! seal owns `${params.*}`, `${item}`, `${item.*}`, `${inputs.*}`,
//! `${outputs.*}` and `${steps.S.outputs.O}`. Any other `${...}` without a dot
//! (`${HOME}`, `${x:-y}`) is left for the shell, and `$${` writes a literal
//! `${`. A dotted name in an unknown namespace is an error, since it is almost
//! always a typo of one of seal's.

use std::fmt;

/// Where a reference points.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ref {
    /// `${params.name.key...}`
    Param(Vec<String>),
    /// `${item}` or `${item.key...}`
    Item(Vec<String>),
    /// `${inputs.name}`
    Input(String),
    /// `${outputs.name}`
    Output(String),
    /// `${steps.step.outputs.name}`
    StepOutput { step: String, output: String },
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dotted = |head: &str, rest: &[String]| {
            std::iter::once(head.to_string())
                .chain(rest.iter().cloned())
                .collect::<Vec<_>>()
        };
        let parts = match self {
            Ref::Param(path) => dotted("params", path),
            Ref::Item(path) => dotted("item", path),
            Ref::Input(name) => vec!["inputs".into(), name.clone()],
            Ref::Output(name) => vec!["outputs".into(), name.clone()],
            Ref::StepOutput { step, output } => {
                vec![
                    "steps".into(),
                    step.clone(),
                    "outputs".into(),
                    output.clone(),
                ]
            }
        };
        write!(f, "${{{}}}", parts.join("."))
    }
}

/// A piece of a template: literal text or a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Ref {
        reference: Ref,
        /// Byte range of the whole `${...}` in the template text.
        start: usize,
        end: usize,
    },
}

/// A parsed template string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub segments: Vec<Segment>,
}

/// A malformed reference, with its byte range in the template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub help: String,
    pub start: usize,
    pub end: usize,
}

impl Template {
    /// Parses `text`, splitting out seal's references.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(found) = rest.find('$') {
            literal.push_str(&rest[..found]);
            let at = offset + found;
            let tail = &rest[found..];
            let consumed = if tail.starts_with("$${") {
                literal.push_str("${");
                3
            } else if tail.starts_with("${") {
                parse_reference(text, at, &mut literal, &mut segments)?
            } else {
                literal.push('$');
                1
            };
            rest = &rest[found + consumed..];
            offset += found + consumed;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            segments.push(Segment::Text(literal));
        }
        Ok(Template {
            source: text.to_string(),
            segments,
        })
    }

    /// The references in this template, in order.
    pub fn refs(&self) -> impl Iterator<Item = (&Ref, usize, usize)> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Ref {
                reference,
                start,
                end,
            } => Some((reference, *start, *end)),
            Segment::Text(_) => None,
        })
    }

    /// The template is exactly one reference and nothing else.
    pub fn single_ref(&self) -> Option<&Ref> {
        match self.segments.as_slice() {
            [Segment::Ref { reference, .. }] => Some(reference),
            _ => None,
        }
    }

    /// Renders with `resolve` giving the text of each reference.
    pub fn render<E>(
        &self,
        mut resolve: impl FnMut(&Ref) -> Result<String, E>,
    ) -> Result<String, E> {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Ref { reference, .. } => out.push_str(&resolve(reference)?),
            }
        }
        Ok(out)
    }
}

/// Parses the `${...}` starting at `at`; returns how many bytes it used.
fn parse_reference(
    text: &str,
    at: usize,
    literal: &mut String,
    segments: &mut Vec<Segment>,
) -> Result<usize, TemplateError> {
    let body_start = at + 2;
    let Some(close) = text[body_start..].find('}') else {
        // An unclosed `${` cannot be one of ours; the shell will complain if it cares.
        literal.push_str("${");
        return Ok(2);
    };
    let body = &text[body_start..body_start + close];
    let end = body_start + close + 1;
    let Some(reference) = classify(body, at, end)? else {
        literal.push_str(&text[at..end]);
        return Ok(end - at);
    };
    if !literal.is_empty() {
        segments.push(Segment::Text(std::mem::take(literal)));
    }
    segments.push(Segment::Ref {
        reference,
        start: at,
        end,
    });
    Ok(end - at)
}

/// Decides whether `body` is one of seal's references (`Some`), shell syntax
/// (`None`), or a malformed reference (error).
fn classify(body: &str, start: usize, end: usize) -> Result<Option<Ref>, TemplateError> {
    let err = |message: String, help: &str| TemplateError {
        message,
        help: help.to_string(),
        start,
        end,
    };
    let parts: Vec<&str> = body.split('.').collect();
    let is_ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if body == "item" {
        return Ok(Some(Ref::Item(Vec::new())));
    }
    if parts.len() < 2 {
        return Ok(None);
    }
    if !parts.iter().all(|p| is_ident(p)) {
        let known = ["params", "item", "inputs", "outputs", "steps"].contains(&parts[0]);
        if !known {
            return Ok(None);
        }
        return Err(err(
            format!("`${{{body}}}` is not a valid reference"),
            "names are made of letters, digits, `_` and `-`, separated by dots",
        ));
    }
    let rest = || parts[1..].iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let reference = match parts[0] {
        "params" => Ref::Param(rest()),
        "item" => Ref::Item(rest()),
        "inputs" if parts.len() == 2 => Ref::Input(parts[1].to_string()),
        "outputs" if parts.len() == 2 => Ref::Output(parts[1].to_string()),
        "steps" if parts.len() == 4 && parts[2] == "outputs" => Ref::StepOutput {
            step: parts[1].to_string(),
            output: parts[3].to_string(),
        },
        "inputs" | "outputs" => {
            return Err(err(
                format!("`${{{body}}}` is not a valid reference"),
                "write ${inputs.NAME} or ${outputs.NAME}",
            ));
        }
        "steps" => {
            return Err(err(
                format!("`${{{body}}}` is not a valid reference"),
                "write ${steps.STEP.outputs.NAME}",
            ));
        }
        other => {
            return Err(err(
                format!("unknown reference namespace `{other}` in `${{{body}}}`"),
                "seal references start with params, item, inputs, outputs or steps; \
                 write $${ to pass a literal ${ to the shell",
            ));
        }
    };
    Ok(Some(reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(text: &str) -> Vec<Ref> {
        Template::parse(text)
            .unwrap()
            .refs()
            .map(|(r, _, _)| r.clone())
            .collect()
    }

    #[test]
    fn seal_references_are_split_from_text() {
        let t = Template::parse("bwa aln ${inputs.ref} ${item}.fq > ${outputs.sai}").unwrap();
        let found: Vec<_> = t.refs().map(|(r, _, _)| r.clone()).collect();
        assert_eq!(
            found,
            vec![
                Ref::Input("ref".into()),
                Ref::Item(vec![]),
                Ref::Output("sai".into())
            ]
        );
        let rendered = t.render::<()>(|r| Ok(format!("<{r}>"))).unwrap();
        assert_eq!(
            rendered,
            "bwa aln <${inputs.ref}> <${item}>.fq > <${outputs.sai}>"
        );
    }

    #[test]
    fn shell_variables_and_escapes_pass_through() {
        let t = Template::parse("echo ${HOME} $PATH ${x:-y} $${params.a} cost $5").unwrap();
        assert!(t.refs().next().is_none());
        let text = t.render::<()>(|_| unreachable!()).unwrap();
        assert_eq!(text, "echo ${HOME} $PATH ${x:-y} ${params.a} cost $5");
    }

    #[test]
    fn step_outputs_and_nested_params_parse() {
        assert_eq!(
            refs("${steps.index.outputs.index} ${params.samples.A}"),
            vec![
                Ref::StepOutput {
                    step: "index".into(),
                    output: "index".into()
                },
                Ref::Param(vec!["samples".into(), "A".into()]),
            ]
        );
    }

    #[test]
    fn typo_in_namespace_is_an_error_with_its_range() {
        let err = Template::parse("x ${param.samples}").unwrap_err();
        assert!(err.message.contains("unknown reference namespace `param`"));
        assert_eq!((err.start, err.end), (2, 18));
        assert!(Template::parse("${steps.a.b}").is_err());
    }
}
