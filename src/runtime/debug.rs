//! `seal __container --run-spec FILE`: runs one container from a JSON spec
//! file and prints its [`Outcome`](super::Outcome) as JSON. A debugging aid
//! and the entry point of the runtime's integration tests until `seal run`
//! exists.

use std::path::Path;

use super::{ContainerSpec, monitor, run, seal_self};

/// Runs the spec in `path` like `seal run` would run one step; returns the
/// exit code (0 when the container ran, whatever the step's status).
pub fn run_spec_main(path: &Path) -> u8 {
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
    match run(&spec) {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string(&outcome).expect("outcomes serialise")
            );
            0
        }
        Err(err) => {
            eprintln!("error: {err}");
            1
        }
    }
}

fn read(path: &Path) -> Result<ContainerSpec, String> {
    let text = fs_err::read(path).map_err(|err| format!("read the spec: {err}"))?;
    serde_json::from_slice(&text).map_err(|err| format!("parse the spec {}: {err}", path.display()))
}
