//! The genomics example (examples/genomics) end to end through the real seal
//! binary: its eight tool images built from pinned Debian packages and
//! imported, the digests pipeline.lock pins, and the biology in the results.
//!
//! Needs what examples/genomics/images/build.sh needs: apt-get (with package
//! lists, refreshed once when run as root), dpkg-deb, GNU tar, unshare, and
//! the Debian mirror the first time. Built images and the .debs stay under
//! `target/tmp/genomics/` so later runs only run the pipeline.
//! `SEAL_TEST_SKIP_GENOMICS=1` skips these tests (saying so) on machines
//! that cannot build Debian images.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use common::{assert_valid_provenance, provenance, sha256sum, text};

/// The example's folder in this repository.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/genomics")
}

/// Where built images, the .deb cache, the store and the runs are kept.
fn cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("genomics")
}

fn skipped() -> bool {
    let skip = std::env::var_os("SEAL_TEST_SKIP_GENOMICS").is_some_and(|v| v == "1");
    if skip {
        eprintln!("genomics: skipped (SEAL_TEST_SKIP_GENOMICS=1)");
    }
    skip
}

/// A shell script of the example with the cache's locations.
fn script(path: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg(example().join(path))
        .args(args)
        .env("SEAL_GENOMICS_BUILD", cache().join("build"))
        .env("SEAL_GENOMICS_CACHE", cache().join("downloads"))
        .env("SEAL", env!("CARGO_BIN_EXE_seal"))
        .env("SEAL_HOME", cache().join("seal-home"));
    command
}

fn seal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seal"))
        .args(args)
        .env("SEAL_HOME", cache().join("seal-home"))
        .env("NO_COLOR", "1")
        .env_remove("SEAL_LOG")
        .output()
        .expect("seal runs")
}

fn succeeded(what: &str, output: &Output) -> Result<(), String> {
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    ))
}

/// Builds (or finds built) and imports the images; returns the references
/// import.sh printed, NAME@sha256:DIGEST, one per image.
fn prepare_images() -> Result<Vec<String>, String> {
    let start = Instant::now();
    let build = script("images/build.sh", &[])
        .output()
        .map_err(|e| e.to_string())?;
    succeeded("images/build.sh", &build)?;
    let import = script("images/import.sh", &[])
        .output()
        .map_err(|e| e.to_string())?;
    succeeded("images/import.sh", &import)?;
    eprintln!("genomics: images ready in {:.1?}", start.elapsed());
    Ok(text(&import.stdout).lines().map(str::to_string).collect())
}

fn images() -> &'static Result<Vec<String>, String> {
    static IMAGES: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    IMAGES.get_or_init(prepare_images)
}

/// Runs the pipeline into `target/tmp/genomics/<name>` (emptied first).
fn run_pipeline(name: &str, extra: &[&str]) -> Result<(PathBuf, Output), String> {
    images()
        .as_ref()
        .map_err(|e| format!("the images could not be prepared: {e}"))?;
    let out = cache().join(name);
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    let pipeline = example().join("pipeline.yaml");
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "none",
    ];
    args.extend_from_slice(extra);
    let start = Instant::now();
    let output = seal(&args);
    eprintln!("genomics: seal run ({name}) took {:.1?}", start.elapsed());
    Ok((out, output))
}

/// The pipeline as committed, run once for all the tests that read it.
fn good_run() -> &'static Path {
    static RUN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let (out, output) = run_pipeline("run", &[])?;
        succeeded("seal run examples/genomics/pipeline.yaml", &output)?;
        Ok(out)
    });
    match run {
        Ok(out) => out,
        Err(message) => panic!("{message}"),
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `pinned` reference of every image in pipeline.lock, by image name.
fn locked_images() -> BTreeMap<String, String> {
    let lock: serde_json::Value =
        serde_json::from_str(&read(&example().join("pipeline.lock"))).expect("lock is JSON");
    let images = lock["images"].as_object().expect("lock has images");
    images
        .iter()
        .map(|(name, entry)| (name.clone(), entry["pinned"].as_str().unwrap().to_string()))
        .collect()
}

/// summary.tsv as sample -> column -> value.
fn summary(out: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let table = read(&out.join("results/summary.tsv"));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("a header").split('\t').collect();
    lines
        .map(|line| {
            let row: BTreeMap<String, String> = header
                .iter()
                .zip(line.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (row["sample"].clone(), row)
        })
        .collect()
}

fn figure(table: &BTreeMap<String, BTreeMap<String, String>>, sample: &str, column: &str) -> f64 {
    table[sample][column]
        .parse()
        .unwrap_or_else(|_| panic!("{sample} {column} is not a number"))
}

fn assert_within(value: f64, low: f64, high: f64, what: &str) {
    assert!(
        (low..=high).contains(&value),
        "{what} = {value}, expected within {low}..{high}"
    );
}

/// The truth set: (1-based position, ref, alt).
fn truth() -> Vec<(usize, char, char)> {
    read(&example().join("data/A/A.truth.tsv"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let base = |s: &str| s.chars().next().unwrap();
            (f[0].parse().unwrap(), base(f[1]), base(f[2]))
        })
        .collect()
}

/// The sequence of a one-record FASTA file.
fn fasta_sequence(path: &Path) -> Vec<u8> {
    read(path)
        .lines()
        .filter(|l| !l.starts_with('>'))
        .flat_map(|l| l.trim().bytes())
        .collect()
}

/// The log a step instance wrote, from the work area of a run.
fn step_log(out: &Path, step: &str, stream: &str) -> String {
    read(&out.join("work").join(step).join(format!("{stream}.log")))
}

#[test]
fn images_build_to_the_digests_pipeline_lock_pins() {
    if skipped() {
        return;
    }
    let imported = images().as_ref().unwrap_or_else(|e| panic!("{e}"));
    let imported: BTreeSet<&str> = imported.iter().map(String::as_str).collect();
    let locked = locked_images();
    let locked: BTreeSet<&str> = locked.values().map(String::as_str).collect();
    assert_eq!(
        imported, locked,
        "the images built here are not the ones pipeline.lock pins"
    );
    // A second build and import finds everything done and gives the same.
    let again = script("images/build.sh", &[]).output().unwrap();
    assert!(
        text(&again.stderr).contains("up to date"),
        "{}",
        text(&again.stderr)
    );
    assert!(
        !text(&again.stderr).contains("built in"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn sample_a_calls_every_truth_snp_with_ancient_dna_figures() {
    if skipped() {
        return;
    }
    let out = good_run();
    let truth = truth();
    let check = step_log(out, "check", "stderr");
    let expected = format!(
        "A: truth set data/A/A.truth.tsv: {n}/{n} truth variants called, 0 missed, \
         0 false calls",
        n = truth.len()
    );
    assert!(check.contains(&expected), "check said:\n{check}");
    assert!(check.contains("check passed"), "check said:\n{check}");

    let table = summary(out);
    assert_eq!(figure(&table, "A", "variants"), truth.len() as f64);
    // Simulated: 30% environmental reads, 23.2% PCR duplicates, C->T 0.3.
    assert_within(figure(&table, "A", "mapped_pct"), 65.0, 75.0, "A mapped %");
    assert_within(
        figure(&table, "A", "duplicates_pct"),
        20.0,
        27.0,
        "A duplicates %",
    );
    assert_within(
        figure(&table, "A", "ct_5p_pos1"),
        0.25,
        0.35,
        "A C->T at 5' pos 1",
    );
    assert_within(
        figure(&table, "A", "ga_3p_pos1"),
        0.25,
        0.35,
        "A G->A at 3' pos 1",
    );
    assert_within(
        figure(&table, "A", "breadth_pct"),
        99.0,
        100.0,
        "A breadth %",
    );
    // Sample B is modern DNA: no damage, nearly all reads on its reference.
    assert_within(
        figure(&table, "B", "ct_5p_pos1"),
        0.0,
        0.05,
        "B C->T at 5' pos 1",
    );
    assert_within(figure(&table, "B", "mapped_pct"), 90.0, 100.0, "B mapped %");
}

#[test]
fn consensus_differs_from_the_reference_exactly_at_the_truth_snps() {
    if skipped() {
        return;
    }
    let out = good_run();
    let reference = fasta_sequence(&example().join("data/ref/rCRS.fa"));
    let consensus = fasta_sequence(&out.join("results/A.consensus.fa"));
    assert_eq!(consensus.len(), reference.len(), "SNPs only: same length");
    let differences: Vec<(usize, char, char)> = reference
        .iter()
        .zip(&consensus)
        .enumerate()
        .filter(|(_, (r, c))| !r.eq_ignore_ascii_case(c))
        .map(|(i, (r, c))| (i + 1, *r as char, c.to_ascii_uppercase() as char))
        .collect();
    assert_eq!(differences, truth());

    let ex1 = fasta_sequence(&example().join("data/ref/ex1.fa"));
    let b = fasta_sequence(&out.join("results/B.consensus.fa"));
    assert_eq!(
        ex1, b,
        "sample B has no variant call, so its consensus is its reference"
    );
}

#[test]
fn provenance_hashes_every_output_and_names_each_steps_locked_image() {
    if skipped() {
        return;
    }
    let out = good_run();
    let document = provenance(out);
    assert_valid_provenance(&document);
    let locked = locked_images();
    let steps = document["steps"].as_array().expect("steps");
    assert_eq!(
        steps.len(),
        27,
        "13 steps for each of 2 samples, and the check"
    );
    let mut outputs = 0;
    for step in steps {
        let id = step["id"].as_str().unwrap();
        assert_eq!(step["status"], "succeeded", "{id}");
        let image = step["image"].as_str().unwrap();
        let pinned = &locked[image];
        let digest = step["image_manifest_digest"].as_str().unwrap();
        assert!(
            pinned.ends_with(&format!("@{digest}")),
            "{id}: {digest} vs {pinned}"
        );
        assert_eq!(step["hermetic"], true, "{id}");
        for output in step["outputs"].as_array().unwrap() {
            let location = Path::new(output["location"].as_str().unwrap());
            assert!(
                location.starts_with(out.join("results")),
                "{}",
                location.display()
            );
            let sha256 = output["sha256"].as_str().unwrap();
            assert_eq!(sha256, sha256sum(location), "{id}: {}", location.display());
            outputs += 1;
        }
    }
    let published = std::fs::read_dir(out.join("results")).unwrap().count();
    assert_eq!(
        outputs, published,
        "every published file is in the provenance"
    );
}

#[test]
fn check_fails_when_a_truth_variant_is_missing_or_a_call_is_false() {
    if skipped() {
        return;
    }
    // A truth set that lacks the real 73A>G and holds 9999A>G, which the
    // simulated individual does not carry.
    let doctored = cache().join("doctored");
    std::fs::create_dir_all(&doctored).unwrap();
    let truth = read(&example().join("data/A/A.truth.tsv"));
    let mut lines: Vec<&str> = truth.lines().filter(|l| !l.starts_with("73\t")).collect();
    assert_eq!(
        lines.len() + 1,
        truth.lines().count(),
        "73A>G is in the truth set"
    );
    lines.push("9999\tA\tG");
    let path = doctored.join("A.truth.tsv");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let param = format!("truths=[{}]", path.display());
    let (out, output) = run_pipeline("doctored-run", &["--param", &param]).unwrap();
    assert!(
        !output.status.success(),
        "the run passed with a wrong truth set"
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("step check failed"), "{stderr}");
    assert!(stderr.contains("26 succeeded, 1 failed"), "{stderr}");
    let check = step_log(&out, "check", "stderr");
    assert!(
        check.contains("check FAILED: A: missed truth variant 9999 A>G"),
        "{check}"
    );
    assert!(
        check.contains("check FAILED: A: false call 73 A>G"),
        "{check}"
    );
    assert!(
        !out.join("results/summary.tsv").exists(),
        "a failed check publishes no summary"
    );
}
