//! `seal __container --run-spec FILE [--repeat N]`: runs one container from
//! a JSON spec file and prints its [`Outcome`](super::Outcome) as JSON. A
//! debugging aid, the runtime's benchmark, and the entry point of its
//! integration tests until `seal run` exists.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{ContainerSpec, monitor, run, seal_self};

/// Runs the spec in `path` like `seal run` would run one step, `repeat`
/// times; returns the exit code (0 when the container ran, whatever the
/// step's status). With `repeat` above 1, start-to-exit times go to stderr.
pub fn run_spec_main(path: &Path, repeat: u32) -> u8 {
    monitor::init_logging();
    if let Err(err) = seal_self() {
        eprintln!("error: {err}");
        return 1;
    }
    let spec = match read(path) {
        Ok(spec) => spec,
        Err(message) => {
            eprintln!("error: failed to {message}");
            return 1;
        }
    };
    let mut times = Vec::with_capacity(repeat as usize);
    for _ in 0..repeat.max(1) {
        let started = Instant::now();
        match run(&spec) {
            Ok(outcome) => {
                times.push(started.elapsed());
                println!(
                    "{}",
                    serde_json::to_string(&outcome).expect("outcomes serialise")
                );
            }
            Err(err) => {
                eprintln!("error: {err}");
                return 1;
            }
        }
    }
    if repeat > 1 {
        eprintln!("{}", summary(&mut times));
    }
    0
}

fn read(path: &Path) -> Result<ContainerSpec, String> {
    let text = fs_err::read(path).map_err(|err| format!("read the spec: {err}"))?;
    serde_json::from_slice(&text).map_err(|err| format!("parse the spec {}: {err}", path.display()))
}

/// `runs: N, median: X ms, min: Y ms, max: Z ms` over spawn-to-outcome times.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "runs: {}, median: {:.2} ms, min: {:.2} ms, max: {:.2} ms",
        times.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}
