//! The scheduler: runs step instances as soon as their inputs exist and
//! resources allow, applies the failure policy, and stops cleanly on signals.

pub mod exec;
mod job;
mod outputs;
mod progress;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tracing::{debug, warn};

pub use exec::{DEFAULT_PATH, DEFAULT_WORKDIR};
pub use outputs::Collected;
pub use progress::format_duration;

use crate::cli::ProgressMode;
use crate::dag::{InputSource, Plan};
use crate::image::PreparedImage;
use crate::pipeline::units::format_size;
use crate::provenance::manifest::{StepRecord, StepStatus};
use crate::runtime::{ContainerSpec, Termination};
use job::{InputFile, Job, JobResult};
use outputs::Claims;
use progress::{Progress, Shown};

/// How long running steps get to stop after an interrupt before `SIGKILL`.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a run needs besides the plan and images.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub results_dir: PathBuf,
    pub work_dir: PathBuf,
    pub cores: u32,
    pub memory_bytes: u64,
    pub keep_going: bool,
    pub keep_work: bool,
    pub progress: ProgressMode,
}

/// What happened to every instance.
pub struct Execution {
    pub records: Vec<StepRecord>,
    pub interrupted: bool,
}

/// Messages from workers and the signal thread to the scheduler.
enum Msg {
    Started(usize, u32),
    Finished(usize, Box<JobResult>),
    Signal(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

/// Runs every instance of `plan` with the images in `images` (by image name).
pub fn execute(
    plan: &Plan<'_>,
    images: &HashMap<String, PreparedImage>,
    config: &RunConfig,
) -> Execution {
    let (tx, rx) = mpsc::channel();
    let signals = forward_signals(tx.clone());
    let claims = Claims::default();
    let params = plan.pipeline.params_json();
    let mut scheduler = Scheduler::new(plan, images, config, &claims, &params);
    std::thread::scope(|scope| scheduler.run(scope, &tx, &rx));
    if let Some(handle) = signals {
        handle.close();
    }
    scheduler.progress.finish();
    scheduler.into_execution()
}

/// Sends SIGINT, SIGTERM and SIGHUP to the scheduler instead of dying.
fn forward_signals(tx: Sender<Msg>) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(signals) => signals,
        Err(error) => {
            warn!("cannot catch interrupts ({error}); Ctrl-C will not stop steps cleanly");
            return None;
        }
    };
    let handle = signals.handle();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if tx.send(Msg::Signal(signal)).is_err() {
                break;
            }
        }
    });
    Some(handle)
}

struct Scheduler<'a, 'p> {
    plan: &'a Plan<'p>,
    images: &'a HashMap<String, PreparedImage>,
    config: &'a RunConfig,
    claims: &'a Claims,
    params: &'a serde_json::Map<String, serde_json::Value>,
    state: Vec<State>,
    waiting_on: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    /// Ready instances, longest chain of dependents first (see [`Ready`]).
    ready: BTreeSet<Ready>,
    /// Per instance: how many instances the longest chain starting at it has.
    height: Vec<usize>,
    free_cores: u32,
    free_memory: u64,
    running: HashMap<usize, Option<u32>>,
    records: Vec<Option<StepRecord>>,
    published: Vec<Vec<Collected>>,
    stopping: bool,
    interrupted_at: Option<Instant>,
    killed: bool,
    progress: Progress,
}

impl<'a, 'p> Scheduler<'a, 'p> {
    fn new(
        plan: &'a Plan<'p>,
        images: &'a HashMap<String, PreparedImage>,
        config: &'a RunConfig,
        claims: &'a Claims,
        params: &'a serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        let count = plan.instances.len();
        let mut dependents = vec![Vec::new(); count];
        for (index, instance) in plan.instances.iter().enumerate() {
            for &dep in &instance.deps {
                dependents[dep].push(index);
            }
        }
        let waiting_on: Vec<usize> = plan.instances.iter().map(|i| i.deps.len()).collect();
        let height = chain_heights(&dependents);
        let ready = (0..count)
            .filter(|&i| waiting_on[i] == 0)
            .map(|i| Ready::new(&height, i))
            .collect();
        Scheduler {
            height,
            plan,
            images,
            config,
            claims,
            params,
            state: vec![State::Waiting; count],
            waiting_on,
            dependents,
            ready,
            free_cores: config.cores,
            free_memory: config.memory_bytes,
            running: HashMap::new(),
            records: vec![None; count],
            published: vec![Vec::new(); count],
            stopping: false,
            interrupted_at: None,
            killed: false,
            progress: Progress::new(config.progress, count),
        }
    }

    fn run<'s>(
        &mut self,
        scope: &'s std::thread::Scope<'s, '_>,
        tx: &Sender<Msg>,
        rx: &Receiver<Msg>,
    ) where
        'a: 's,
    {
        loop {
            if !self.stopping {
                self.launch_ready(scope, tx);
            }
            if self.running.is_empty() && (self.stopping || self.ready.is_empty()) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(Msg::Started(index, pid)) => {
                    self.running.insert(index, Some(pid));
                }
                Ok(Msg::Finished(index, result)) => self.finished(index, *result),
                Ok(Msg::Signal(signal)) => self.interrupt(signal),
                Err(RecvTimeoutError::Timeout) => self.escalate(),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    /// Starts every ready instance that fits in the free cores and memory,
    /// longest remaining chain first, letting smaller ones fill gaps.
    fn launch_ready<'s>(&mut self, scope: &'s std::thread::Scope<'s, '_>, tx: &Sender<Msg>)
    where
        'a: 's,
    {
        if self.free_cores == 0 || self.ready.is_empty() {
            return;
        }
        let candidates: Vec<Ready> = self.ready.iter().copied().collect();
        for ready in candidates {
            let index = ready.1;
            if self.free_cores == 0 {
                break; // every step needs at least one core
            }
            let resources = &self.plan.pipeline.steps[self.plan.instances[index].step].resources;
            let memory = resources.memory_bytes.unwrap_or(0);
            if resources.cpus > self.free_cores || memory > self.free_memory {
                continue;
            }
            self.free_cores -= resources.cpus;
            self.free_memory -= memory;
            self.ready.remove(&ready);
            self.state[index] = State::Running;
            self.running.insert(index, None);
            self.progress.started(&self.plan.instances[index].id);
            let job = self.job(index);
            let tx = tx.clone();
            debug!(
                "starting {} ({} cpus, {} memory)",
                job.instance.id,
                resources.cpus,
                format_size(memory)
            );
            scope.spawn(move || {
                let result = job.run(|pid| {
                    let _ = tx.send(Msg::Started(index, pid));
                });
                let _ = tx.send(Msg::Finished(index, Box::new(result)));
            });
        }
    }

    fn job(&self, index: usize) -> Job<'a> {
        let plan: &'a Plan<'p> = self.plan;
        let instance = &plan.instances[index];
        let step = &plan.pipeline.steps[instance.step];
        let image_decl = plan
            .pipeline
            .image(&step.image.value)
            .expect("images are checked");
        Job {
            instance,
            step,
            image_decl,
            image: &self.images[&image_decl.name],
            params: self.params,
            inputs: self.input_files(index),
            work_dir: self.config.work_dir.join(&instance.dir_name),
            results_dir: self.config.results_dir.clone(),
            keep_work: self.config.keep_work,
            claims: self.claims,
        }
    }

    /// The concrete files of each input: host files, or what producers published.
    fn input_files(&self, index: usize) -> Vec<InputFile> {
        let mut files = Vec::new();
        for input in &self.plan.instances[index].inputs {
            for source in &input.sources {
                match source {
                    InputSource::File { host, inside } => files.push(InputFile {
                        name: input.name.clone(),
                        host: host.clone(),
                        inside: inside.clone(),
                    }),
                    InputSource::Produced { instance, output } => {
                        let published = self.published[*instance]
                            .iter()
                            .filter(|c| &c.name == output);
                        files.extend(published.map(|c| InputFile {
                            name: input.name.clone(),
                            host: self.config.results_dir.join(&c.relative),
                            inside: c.relative.clone(),
                        }));
                    }
                }
            }
        }
        files
    }

    fn finished(&mut self, index: usize, result: JobResult) {
        let resources = &self.plan.pipeline.steps[self.plan.instances[index].step].resources;
        self.free_cores += resources.cpus;
        self.free_memory += resources.memory_bytes.unwrap_or(0);
        self.running.remove(&index);
        let id = self.plan.instances[index].id.clone();
        let mut record = result.record;
        let wall = record
            .resources
            .used
            .as_ref()
            .map(|u| Duration::from_secs_f64(u.wall_seconds));
        if record.status == StepStatus::Succeeded {
            self.state[index] = State::Succeeded;
            self.published[index] = result.published;
            self.progress.finished(&id, Shown::Done, wall);
            self.release_dependents(index);
        } else {
            self.state[index] = State::Failed;
            if let Some(at) = self.interrupted_at {
                record.status = StepStatus::Interrupted;
                record.error = Some(stopped_reason(at, record.error.take()));
            }
            let why = record.error.clone().unwrap_or_default();
            let shown = match record.status {
                StepStatus::Interrupted => Shown::Stopped(&why),
                _ => Shown::Failed(&why),
            };
            self.progress.finished(&id, shown, wall);
            self.fail_downstream(index);
            if !self.config.keep_going {
                self.stopping = true;
            }
        }
        self.records[index] = Some(record);
    }

    fn release_dependents(&mut self, index: usize) {
        for &dependent in &self.dependents[index] {
            self.waiting_on[dependent] -= 1;
            if self.waiting_on[dependent] == 0 && self.state[dependent] == State::Waiting {
                self.ready.insert(Ready::new(&self.height, dependent));
            }
        }
    }

    /// Marks everything downstream of a failed instance as skipped.
    fn fail_downstream(&mut self, failed: usize) {
        let failed_id = self.plan.instances[failed].id.clone();
        let mut stack = self.dependents[failed].clone();
        while let Some(index) = stack.pop() {
            if self.state[index] != State::Waiting {
                continue;
            }
            self.state[index] = State::Skipped;
            self.ready.remove(&Ready::new(&self.height, index));
            let mut record = self.placeholder_record(index, StepStatus::Skipped);
            let what = if self.interrupted_at.is_some() {
                "was stopped"
            } else {
                "failed"
            };
            record.error = Some(format!("not run: it depends on {failed_id}, which {what}"));
            self.records[index] = Some(record);
            self.progress
                .finished(&self.plan.instances[index].id, Shown::Skipped, None);
            stack.extend(self.dependents[index].iter().copied());
        }
    }

    fn interrupt(&mut self, signal: i32) {
        self.stopping = true;
        let first = self.interrupted_at.is_none();
        if first {
            self.interrupted_at = Some(Instant::now());
            self.progress.line(&format!(
                "seal: interrupted (signal {signal}); stopping {} running step(s), \
                 interrupt again to kill them",
                self.running.len()
            ));
            self.signal_running(Signal::SIGTERM);
        } else {
            self.kill_running();
        }
    }

    /// Kills what is still running once the grace period after an interrupt is over.
    fn escalate(&mut self) {
        if let Some(at) = self.interrupted_at
            && at.elapsed() > STOP_GRACE
            && !self.killed
        {
            self.kill_running();
        }
    }

    fn kill_running(&mut self) {
        self.killed = true;
        self.signal_running(Signal::SIGKILL);
    }

    fn signal_running(&self, signal: Signal) {
        for pid in self.running.values().flatten() {
            // The monitor forwards SIGTERM to the step; SIGKILL on the monitor
            // takes the whole container down through its parent-death signal.
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid as i32), signal);
        }
    }

    fn placeholder_record(&self, index: usize, status: StepStatus) -> StepRecord {
        let instance = &self.plan.instances[index];
        let step = &self.plan.pipeline.steps[instance.step];
        let digest = self
            .images
            .get(&step.image.value)
            .map(|i| i.manifest_digest.to_string())
            .unwrap_or_default();
        StepRecord::blank(instance, step, digest, status)
    }

    fn into_execution(self) -> Execution {
        let interrupted = self.interrupted_at.is_some();
        let records = (0..self.records.len())
            .map(|index| match &self.records[index] {
                Some(record) => record.clone(),
                None => {
                    let mut record = self.placeholder_record(index, StepStatus::NotRun);
                    record.error = Some("not run: the run stopped before it started".into());
                    record
                }
            })
            .collect();
        Execution {
            records,
            interrupted,
        }
    }
}

/// A one-line reason for a step that did not exit 0.
pub fn describe_termination(termination: &Termination, spec: &ContainerSpec) -> String {
    match termination {
        Termination::Exited { code } => format!("exited with status {code}"),
        Termination::Signaled { signal } => {
            let name =
                Signal::try_from(*signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
            format!("killed by signal {name}")
        }
        Termination::TimedOut => {
            let limit = spec.limits.time.map(format_duration).unwrap_or_default();
            format!("exceeded its time limit of {limit} and was stopped")
        }
        Termination::MemoryExceeded => {
            let limit = spec
                .limits
                .memory_bytes
                .map(format_size)
                .unwrap_or_default();
            format!("exceeded its memory limit of {limit} and was killed")
        }
    }
}

/// A ready instance, ordered so that the one with the longest chain of
/// dependents comes first (a long pipeline is not held up behind steps nothing
/// waits for), then in plan order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ready(std::cmp::Reverse<usize>, usize);

impl Ready {
    fn new(height: &[usize], index: usize) -> Ready {
        Ready(std::cmp::Reverse(height[index]), index)
    }
}

/// For each instance, the number of instances on the longest chain of
/// dependents that starts with it (1 for an instance nothing depends on).
fn chain_heights(dependents: &[Vec<usize>]) -> Vec<usize> {
    let mut height = vec![0; dependents.len()];
    for start in 0..dependents.len() {
        // Iterative post-order, since chains can be longer than the stack allows.
        let mut stack = vec![(start, false)];
        while let Some((node, children_done)) = stack.pop() {
            if height[node] != 0 {
                continue;
            }
            if children_done {
                let below = dependents[node].iter().map(|&d| height[d]).max();
                height[node] = 1 + below.unwrap_or(0);
                continue;
            }
            stack.push((node, true));
            stack.extend(
                dependents[node]
                    .iter()
                    .filter(|&&d| height[d] == 0)
                    .map(|&d| (d, false)),
            );
        }
    }
    height
}

/// Why a step ended after the run was interrupted: it stopped on the signal,
/// or it was killed when the grace period ran out.
fn stopped_reason(interrupted_at: Instant, error: Option<String>) -> String {
    if interrupted_at.elapsed() >= STOP_GRACE {
        format!(
            "killed: it did not stop within {}s of the interrupt",
            STOP_GRACE.as_secs()
        )
    } else {
        format!(
            "stopped by the interrupt ({})",
            error.unwrap_or_else(|| "no reason given".into())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::chain_heights;

    #[test]
    fn heights_count_the_longest_chain_of_dependents() {
        // 0 -> 1 -> 2, 0 -> 3, 4 alone.
        let dependents = vec![vec![1, 3], vec![2], vec![], vec![], vec![]];
        assert_eq!(chain_heights(&dependents), [3, 2, 1, 1, 1]);
        let long: Vec<Vec<usize>> = (0..200_000).map(|i| vec![i + 1]).chain([vec![]]).collect();
        assert_eq!(chain_heights(&long)[0], 200_001);
    }
}
