//! What the user sees: logging, colour, progress style and error reports.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Args;
use tracing_subscriber::EnvFilter;

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// More detail: -v for decisions (debug), -vv for everything (trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and the final summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Progress display: a bar on a terminal, plain lines otherwise.
    #[arg(long, global = true, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    Auto,
    /// Always a bar.
    Bar,
    /// One line per finished step.
    Lines,
    /// Nothing but errors and the summary.
    None,
}

impl GlobalArgs {
    /// The progress mode once `auto` is decided.
    pub fn progress_mode(&self) -> ProgressMode {
        match (self.progress, self.quiet) {
            (_, true) => ProgressMode::None,
            (ProgressMode::Auto, _) if std::io::stderr().is_terminal() => ProgressMode::Bar,
            (ProgressMode::Auto, _) => ProgressMode::Lines,
            (mode, _) => mode,
        }
    }
}

/// Sets up logging (`SEAL_LOG` overrides the level) and error rendering.
pub fn init(args: &GlobalArgs) {
    let level = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "seal=debug,info",
        (false, _) => "seal=trace,debug",
    };
    let filter = EnvFilter::try_from_env("SEAL_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_color())
        .without_time()
        .with_target(false)
        .try_init();
    let _ = miette::set_hook(Box::new(|_| {
        let handler = miette::MietteHandlerOpts::new()
            .terminal_links(false)
            .width(report_width())
            .color(use_color())
            .unicode(use_color())
            .force_graphical(true)
            .build();
        Box::new(handler)
    }));
}

/// Reports wrap at 100 columns on a terminal; in logs and pipes a message
/// stays on one line so that it can be searched for.
fn report_width() -> usize {
    if std::io::stderr().is_terminal() {
        100
    } else {
        1000
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// How a command ended when it did not fully succeed.
#[derive(Debug)]
pub enum Outcome {
    /// The command ran but reports failure with this exit code (e.g. a step failed).
    Failed(u8),
}

/// An error for the user, with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    /// Reports printed in order (several when a file has several problems).
    pub reports: Vec<miette::Report>,
    /// A last line after several reports.
    pub summary: Option<String>,
}

impl CliError {
    pub fn new(code: u8, report: impl Into<miette::Report>) -> CliError {
        CliError {
            code,
            reports: vec![report.into()],
            summary: None,
        }
    }

    /// One report per problem, then a summary line.
    pub fn many(code: u8, reports: Vec<miette::Report>, summary: String) -> CliError {
        CliError {
            code,
            reports,
            summary: Some(summary),
        }
    }
}

/// Exit code for bad input (arguments, pipeline, parameters).
pub const EXIT_INPUT: u8 = 2;
/// Exit code for image problems.
pub const EXIT_IMAGE: u8 = 3;
/// Exit code for environment problems.
pub const EXIT_ENV: u8 = 4;
/// Exit code after an interrupt.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Prints the error, if any, and turns the result into the process exit code.
pub fn exit_code(result: Result<Option<Outcome>, CliError>) -> ExitCode {
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(Outcome::Failed(code))) => ExitCode::from(code),
        Err(error) => {
            for report in &error.reports {
                eprintln!("{report:?}");
            }
            if let Some(summary) = &error.summary {
                eprintln!("error: {summary}");
            }
            ExitCode::from(error.code)
        }
    }
}
