//! Problems found in a pipeline file, each pointing at `file:line:column`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode, SourceSpan};

use super::node::Pos;

/// The pipeline file's name and text, shared by every problem found in it.
#[derive(Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    named: Arc<NamedSource<String>>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> SourceFile {
        let named = NamedSource::new(path.display().to_string(), text);
        SourceFile {
            path,
            named: Arc::new(named),
        }
    }

    pub fn text(&self) -> &str {
        self.named.inner()
    }

    /// The byte offset of a 1-based line and (character) column.
    pub fn offset_of(&self, line: u64, column: u64) -> usize {
        let text = self.text();
        let line_start: usize = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1) as usize)
            .map(str::len)
            .sum();
        let rest = &text[line_start.min(text.len())..];
        let in_line = rest
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map_or(rest.len(), |(i, _)| i);
        line_start + in_line
    }

    /// `file:line:column` for a position in this file.
    pub fn locate(&self, pos: Pos) -> String {
        format!("{}:{}:{}", self.path.display(), pos.line, pos.column)
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("path", &self.path)
            .finish()
    }
}

/// One problem in the pipeline: what is wrong, where, and what to do.
#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub primary: Option<(Pos, String)>,
    pub secondary: Vec<(Pos, String)>,
    pub help: Option<String>,
    pub source: Option<SourceFile>,
}

impl Problem {
    /// A problem at `pos`, labelled with `label`.
    pub fn at(pos: Pos, message: impl Into<String>, label: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            primary: Some((pos, label.into())),
            secondary: Vec::new(),
            help: None,
            source: None,
        }
    }

    /// A problem with no particular place in the file.
    pub fn general(message: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
            source: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Problem {
        self.help = Some(help.into());
        self
    }

    pub fn also(mut self, pos: Pos, label: impl Into<String>) -> Problem {
        self.secondary.push((pos, label.into()));
        self
    }

    /// `file:line:column` of the primary position, when known.
    pub fn location(&self) -> Option<String> {
        let (pos, _) = self.primary.as_ref()?;
        let source = self.source.as_ref()?;
        Some(source.locate(*pos))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(location) => write!(f, "{location}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Problem {}

impl miette::Diagnostic for Problem {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        let source = self.source.as_ref()?;
        Some(source.named.as_ref() as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let primary = self.primary.iter().map(|(pos, label)| {
            LabeledSpan::new_primary_with_span(Some(label.clone()), span_of(*pos))
        });
        let secondary = self
            .secondary
            .iter()
            .map(|(pos, label)| LabeledSpan::new_with_span(Some(label.clone()), span_of(*pos)));
        Some(Box::new(primary.chain(secondary)))
    }

    fn help(&self) -> Option<Box<dyn fmt::Display + '_>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }
}

fn span_of(pos: Pos) -> SourceSpan {
    SourceSpan::new(pos.offset.into(), pos.len.max(1))
}

/// Errors from loading a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("failed to read pipeline `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", invalid_summary(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn invalid_summary(path: &std::path::Path, problems: &[Problem]) -> String {
    match problems {
        [one] => format!("pipeline `{}` is not valid: {one}", path.display()),
        many => format!("pipeline `{}` has {} problems", path.display(), many.len()),
    }
}

impl miette::Diagnostic for PipelineError {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.single()?.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.single()?.labels()
    }

    fn help(&self) -> Option<Box<dyn fmt::Display + '_>> {
        self.single()?.help()
    }
}

impl PipelineError {
    /// The problem, when there is exactly one.
    fn single(&self) -> Option<&Problem> {
        match self {
            PipelineError::Invalid { problems, .. } if problems.len() == 1 => problems.first(),
            _ => None,
        }
    }
}

/// Collects problems while checking a pipeline, so all are reported at once.
#[derive(Debug)]
pub struct Problems {
    source: SourceFile,
    list: Vec<Problem>,
}

impl Problems {
    pub fn new(source: SourceFile) -> Problems {
        Problems {
            source,
            list: Vec::new(),
        }
    }

    /// Adds `problem`, unless the same message at the same place is already
    /// there (a template shared by every `foreach` item fails once per item).
    pub fn push(&mut self, mut problem: Problem) {
        let repeated = self
            .list
            .iter()
            .any(|p| p.message == problem.message && p.primary == problem.primary);
        if repeated {
            return;
        }
        problem.source = Some(self.source.clone());
        self.list.push(problem);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn source(&self) -> &SourceFile {
        &self.source
    }

    /// Every problem found, as one error (call only when there are some).
    pub fn into_error(self) -> PipelineError {
        PipelineError::Invalid {
            path: self.source.path.clone(),
            problems: self.list,
        }
    }

    /// `Ok(value)` when nothing was found, else every problem as one error.
    pub fn finish<T>(self, value: T) -> Result<T, PipelineError> {
        if self.list.is_empty() {
            return Ok(value);
        }
        Err(PipelineError::Invalid {
            path: self.source.path.clone(),
            problems: self.list,
        })
    }
}
