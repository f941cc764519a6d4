//! `seal run`: run a pipeline.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use clap::Args;
use rayon::prelude::*;
use tracing::warn;

use super::output::{
    CliError, EXIT_ENV, EXIT_IMAGE, EXIT_INPUT, EXIT_INTERRUPTED, GlobalArgs, Outcome,
};
use super::validate::{input_error, parse_param};
use crate::dag::Plan;
use crate::image::{PreparedImage, Store};
use crate::pipeline::units::{format_size, parse_size};
use crate::pipeline::{self, LoadOptions, Pipeline};
use crate::provenance::manifest::{
    FORMAT, ImageRecord, LockInfo, Manifest, PipelineInfo, RunInfo, RunStatus, StepRecord,
    StepStatus,
};
use crate::provenance::{self, host, timestamp};
use crate::schedule::{self, Execution, RunConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// Override a parameter: --param key=value (value read as YAML).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// CPU cores steps may use at once [default: all of this machine's].
    #[arg(long, short = 'j', value_name = "N")]
    pub cores: Option<u32>,
    /// Memory steps may use at once, e.g. 8G [default: this machine's total].
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    pub memory: Option<u64>,
    /// Directory for results, work area and provenance [default: seal-out/<pipeline name>].
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// After a failure, keep running every step that does not depend on it.
    #[arg(long, short = 'k')]
    pub keep_going: bool,
    /// Keep the sandboxes of steps that succeeded (failed ones are always kept).
    #[arg(long)]
    pub keep_work: bool,
}

fn parse_memory(text: &str) -> Result<u64, String> {
    parse_size(text).ok_or_else(|| format!("`{text}` is not a size such as 8G or 512M"))
}

pub fn run(args: RunArgs, global: &GlobalArgs) -> Result<Option<Outcome>, CliError> {
    // Before any thread exists: afterwards nothing a step runs can reach seal's binary.
    crate::runtime::seal_self()
        .map_err(|e| CliError::new(EXIT_ENV, miette::Report::msg(crate::error_chain(&e))))?;
    let started = (SystemTime::now(), Instant::now());
    let options = LoadOptions {
        params: args.params.clone(),
    };
    let mut loaded = pipeline::load(&args.pipeline, &options).map_err(input_error)?;
    let config = run_config(&args, global, &loaded)?;
    cap_cpus(&mut loaded, &config);
    let plan = crate::dag::plan(&loaded).map_err(input_error)?;
    check_fits(&plan, &config)?;
    let images = {
        let guard = InterruptGuard::install()?;
        let images = prepare_images(&loaded, &plan, global)?;
        guard.check()?;
        images
    };
    preflight(&loaded, &images)?;
    let out_dir = config
        .results_dir
        .parent()
        .expect("results dir has a parent")
        .to_path_buf();
    let _lock = lock_out_dir(&out_dir)?;

    announce(&loaded, &plan, &config, &out_dir, global);
    let execution = schedule::execute(&plan, &images, &config);

    let manifest = manifest(&loaded, &images, &config, &args, &execution, started);
    let provenance_path = out_dir.join("provenance.json");
    write_manifest(&provenance_path, &manifest)?;
    summarize(&manifest, &provenance_path, global);
    Ok(match manifest.run.status {
        RunStatus::Succeeded => None,
        RunStatus::Failed => Some(Outcome::Failed(1)),
        RunStatus::Interrupted => Some(Outcome::Failed(EXIT_INTERRUPTED)),
    })
}

fn run_config(
    args: &RunArgs,
    global: &GlobalArgs,
    pipeline: &Pipeline,
) -> Result<RunConfig, CliError> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("seal-out").join(&pipeline.name));
    let out =
        std::path::absolute(&out).map_err(|e| env_error(format!("{}: {e}", out.display())))?;
    let machine_cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let cores = args.cores.unwrap_or(machine_cores);
    if cores == 0 {
        return Err(CliError::new(
            EXIT_INPUT,
            miette::Report::msg("--cores must be at least 1"),
        ));
    }
    Ok(RunConfig {
        results_dir: out.join("results"),
        work_dir: out.join("work"),
        cores,
        memory_bytes: args.memory.unwrap_or_else(host::total_memory),
        keep_going: args.keep_going,
        keep_work: args.keep_work,
        progress: global.progress_mode(),
    })
}

/// Runs steps that ask for more cores than the run may use with the cores it
/// has, as Snakemake does with `threads`, and says so.
fn cap_cpus(pipeline: &mut Pipeline, config: &RunConfig) {
    for step in &mut pipeline.steps {
        if step.resources.cpus > config.cores {
            warn!(
                "step `{}` asks for {} cpus; it runs with {} (--cores)",
                step.name, step.resources.cpus, config.cores
            );
            step.resources.cpus = config.cores;
        }
    }
}

/// Refuses a plan with steps that could never start within the memory limit,
/// naming every one of them.
fn check_fits(plan: &Plan<'_>, config: &RunConfig) -> Result<(), CliError> {
    let help = "raise --memory, or lower the step's `resources: { memory: ... }`";
    let reports: Vec<miette::Report> = plan
        .pipeline
        .steps
        .iter()
        .filter(|step| step.resources.memory_bytes.unwrap_or(0) > config.memory_bytes)
        .map(|step| {
            miette::miette!(
                help = help,
                "step `{}` asks for {} of memory but the run may use {}",
                step.name,
                format_size(step.resources.memory_bytes.unwrap_or(0)),
                format_size(config.memory_bytes)
            )
        })
        .collect();
    if reports.is_empty() {
        return Ok(());
    }
    let summary = format!("{} step(s) can never start; nothing ran", reports.len());
    Err(CliError::many(EXIT_INPUT, reports, summary))
}

/// Catches SIGINT, SIGTERM and SIGHUP while images are prepared, before the
/// scheduler takes over signals: a first signal lets the image being copied or
/// unpacked finish (so the store stays whole) and then stops the run; a second
/// one ends seal at once.
struct InterruptGuard {
    flag: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ids: Vec<signal_hook::SigId>,
}

impl InterruptGuard {
    fn install() -> Result<InterruptGuard, CliError> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut ids = Vec::new();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let exit = i32::from(EXIT_INTERRUPTED);
            let registered =
                signal_hook::flag::register_conditional_shutdown(signal, exit, flag.clone())
                    .and_then(|first| {
                        Ok([first, signal_hook::flag::register(signal, flag.clone())?])
                    });
            ids.extend(registered.map_err(|e| env_error(format!("signal handler: {e}")))?);
        }
        Ok(InterruptGuard { flag, ids })
    }

    fn check(&self) -> Result<(), CliError> {
        if !self.flag.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        Err(CliError::new(
            EXIT_INTERRUPTED,
            miette::Report::msg("interrupted while preparing images; no step ran"),
        ))
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Verifies and unpacks every image the plan uses, in parallel.
fn prepare_images(
    pipeline: &Pipeline,
    plan: &Plan<'_>,
    global: &GlobalArgs,
) -> Result<HashMap<String, PreparedImage>, CliError> {
    let show = !global.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let store = Store::open(None)
        .map_err(|e| CliError::new(EXIT_IMAGE, miette::Report::msg(crate::error_chain(&e))))?
        .with_progress(show);
    let used: std::collections::BTreeSet<&str> = plan
        .instances
        .iter()
        .map(|i| pipeline.steps[i.step].image.value.as_str())
        .collect();
    let decls: Vec<_> = pipeline
        .images
        .iter()
        .filter(|d| used.contains(d.name.as_str()))
        .collect();
    decls
        .par_iter()
        .map(|decl| {
            let prepared = store.prepare(&decl.reference).map_err(|e| {
                let message = format!(
                    "image `{}` ({}): {}",
                    decl.name,
                    decl.written,
                    crate::error_chain(&e)
                );
                CliError::new(EXIT_IMAGE, miette::Report::msg(message))
            })?;
            Ok((decl.name.clone(), prepared))
        })
        .collect()
}

/// Refuses, before anything runs, steps whose image cannot give them their
/// user, working directory or command.
fn preflight(pipeline: &Pipeline, images: &HashMap<String, PreparedImage>) -> Result<(), CliError> {
    let mut reports = Vec::new();
    for step in &pipeline.steps {
        let Some(image) = images.get(&step.image.value) else {
            continue;
        };
        if let Err(problem) = schedule::exec::preflight(step, image) {
            let place = format!(
                "{}:{}:{}",
                pipeline.source.path.display(),
                step.pos.line,
                step.pos.column
            );
            let message = format!(
                "{place}: step `{}` (image `{}`): {problem}",
                step.name, step.image.value
            );
            reports.push(miette::Report::msg(message));
        }
    }
    if reports.is_empty() {
        return Ok(());
    }
    let summary = format!(
        "{} step(s) cannot run in their images; nothing ran",
        reports.len()
    );
    Err(CliError::many(EXIT_INPUT, reports, summary))
}

/// Holds an exclusive lock on the output directory for the whole run.
fn lock_out_dir(out_dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, CliError> {
    for dir in [
        out_dir.to_path_buf(),
        out_dir.join("results"),
        out_dir.join("work"),
    ] {
        fs_err::create_dir_all(&dir).map_err(|e| env_error(e.to_string()))?;
    }
    let path = out_dir.join(".seal.lock");
    let file = fs_err::File::create(&path).map_err(|e| env_error(e.to_string()))?;
    nix::fcntl::Flock::lock(
        file.into_file(),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .map_err(|_| {
        CliError::new(
            EXIT_ENV,
            miette::miette!(
                help = "wait for it to finish, or pass --out to use another directory",
                "another seal run is using `{}`",
                out_dir.display()
            ),
        )
    })
}

fn announce(
    pipeline: &Pipeline,
    plan: &Plan<'_>,
    config: &RunConfig,
    out: &Path,
    global: &GlobalArgs,
) {
    if global.quiet {
        return;
    }
    eprintln!(
        "seal: running `{}`: {} step instance(s) of {} step(s) on {} core(s), {} memory; \
         output in {}",
        pipeline.name,
        plan.instances.len(),
        pipeline.steps.len(),
        config.cores,
        format_size(config.memory_bytes),
        out.display()
    );
}

fn manifest(
    pipeline: &Pipeline,
    images: &HashMap<String, PreparedImage>,
    config: &RunConfig,
    args: &RunArgs,
    execution: &Execution,
    started: (SystemTime, Instant),
) -> Manifest {
    let failed = execution
        .records
        .iter()
        .any(|r| r.status != StepStatus::Succeeded);
    let status = match (execution.interrupted, failed) {
        (true, _) => RunStatus::Interrupted,
        (false, true) => RunStatus::Failed,
        (false, false) => RunStatus::Succeeded,
    };
    Manifest {
        format: FORMAT.to_string(),
        seal_version: env!("CARGO_PKG_VERSION").to_string(),
        run: RunInfo {
            status,
            started_at: timestamp(started.0),
            finished_at: timestamp(SystemTime::now()),
            wall_seconds: started.1.elapsed().as_secs_f64(),
            command: std::env::args().collect(),
            out_dir: config
                .results_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            results_dir: config.results_dir.clone(),
            cores: config.cores,
            memory_bytes: config.memory_bytes,
            keep_going: args.keep_going,
        },
        pipeline: PipelineInfo {
            name: pipeline.name.clone(),
            path: std::path::absolute(&pipeline.source.path)
                .unwrap_or_else(|_| pipeline.source.path.clone()),
            sha256: pipeline.sha256.clone(),
            text: pipeline.source.text().to_string(),
        },
        params: pipeline.params_json(),
        lock: pipeline.lock_file.as_ref().and_then(|path| lock_info(path)),
        host: host::host_info(),
        images: image_records(pipeline, images),
        steps: execution.records.clone(),
    }
}

fn lock_info(path: &Path) -> Option<LockInfo> {
    let text = fs_err::read_to_string(path).ok()?;
    Some(LockInfo {
        path: path.to_path_buf(),
        sha256: provenance::sha256_hex(text.as_bytes()),
        text,
    })
}

fn image_records(
    pipeline: &Pipeline,
    images: &HashMap<String, PreparedImage>,
) -> BTreeMap<String, ImageRecord> {
    let mut records = BTreeMap::new();
    for decl in &pipeline.images {
        let Some(prepared) = images.get(&decl.name) else {
            continue;
        };
        records.insert(
            decl.name.clone(),
            ImageRecord {
                reference: decl.written.clone(),
                pinned: decl.reference.to_string(),
                manifest_digest: prepared.manifest_digest.to_string(),
                config_digest: prepared.config_digest.to_string(),
                layers: prepared.layers.iter().map(ToString::to_string).collect(),
            },
        );
    }
    records
}

fn write_manifest(path: &Path, manifest: &Manifest) -> Result<(), CliError> {
    let mut text = serde_json::to_vec_pretty(manifest).expect("the manifest serialises");
    text.push(b'\n');
    provenance::write_atomic(path, &text)
        .map_err(|e| env_error(format!("failed to write provenance: {e}")))
}

/// The end of a run: failures with their logs, then where everything is.
fn summarize(manifest: &Manifest, provenance_path: &Path, global: &GlobalArgs) {
    for record in manifest
        .steps
        .iter()
        .filter(|r| r.status == StepStatus::Failed)
    {
        report_failure(record);
    }
    let count = |status: StepStatus| manifest.steps.iter().filter(|r| r.status == status).count();
    let (ok, failed) = (count(StepStatus::Succeeded), count(StepStatus::Failed));
    let not_run =
        count(StepStatus::Skipped) + count(StepStatus::NotRun) + count(StepStatus::Interrupted);
    let verdict = match manifest.run.status {
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "FAILED",
        RunStatus::Interrupted => "INTERRUPTED",
    };
    if global.quiet && manifest.run.status == RunStatus::Succeeded {
        return;
    }
    eprintln!(
        "seal: run {verdict} in {}: {ok} succeeded, {failed} failed, {not_run} not run",
        schedule::format_duration(std::time::Duration::from_secs_f64(
            manifest.run.wall_seconds
        ))
    );
    eprintln!("  results:    {}", manifest.run.results_dir.display());
    eprintln!("  provenance: {}", provenance_path.display());
    let stale = stale_results(manifest);
    if stale > 0 {
        eprintln!(
            "  note: {stale} file(s) in results/ were not written by this run (left from an \
             earlier run); provenance.json lists this run's outputs"
        );
    }
}

/// How many files under the results directory this run did not publish.
fn stale_results(manifest: &Manifest) -> usize {
    let published: std::collections::HashSet<&Path> = manifest
        .steps
        .iter()
        .flat_map(|record| record.outputs.iter().map(|o| o.location.as_path()))
        .collect();
    walkdir::WalkDir::new(&manifest.run.results_dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_type().is_dir())
        .filter(|entry| !published.contains(entry.path()))
        .count()
}

fn report_failure(record: &StepRecord) {
    eprintln!(
        "error: step {} failed: {}",
        record.id,
        record.error.as_deref().unwrap_or("unknown")
    );
    if let Some(sandbox) = &record.sandbox {
        eprintln!("  sandbox kept for inspection: {}", sandbox.display());
    }
    for log in record
        .logs
        .iter()
        .filter(|l| l.name == "stderr" && l.size > 0)
    {
        eprintln!("  last lines of {}:", log.location.display());
        let text = std::fs::read_to_string(&log.location).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(10)..] {
            eprintln!("    | {line}");
        }
    }
}

fn env_error(message: String) -> CliError {
    CliError::new(EXIT_ENV, miette::Report::msg(message))
}
