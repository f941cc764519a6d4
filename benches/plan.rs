//! In-process cost of seal's planning: loading (parse, schema and reference
//! checks) and expanding a pipeline with a 10,000-item `foreach` into its plan.
//!
//! `cargo bench --bench plan`; the whole-system benchmarks are `benches/run.sh`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use seal::pipeline::{self, LoadOptions};

/// A pinned reference that needs no store: load and plan never open images.
const IMAGE: &str =
    "example.org/busybox@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A fan-out pipeline: one step with a `foreach` over `items` items.
fn fanout(items: usize) -> String {
    let mut list = String::new();
    for k in 0..items {
        let sep = if k == 0 { "" } else { ", " };
        write!(list, "{sep}i{k:05}").expect("writing to a String");
    }
    format!(
        "seal: 1\nname: fan\nparams:\n  items: [{list}]\nimages:\n  bb: {IMAGE}\n\
         steps:\n  w:\n    foreach: ${{params.items}}\n    image: bb\n    \
         outputs: {{ o: \"w/${{item}}.txt\" }}\n    \
         run: mkdir -p w && echo ${{item}} > ${{outputs.o}}\n"
    )
}

fn write_pipeline(dir: &Path, items: usize) -> std::path::PathBuf {
    let path = dir.join(format!("fan{items}.yaml"));
    std::fs::write(&path, fanout(items)).expect("write the pipeline");
    path
}

fn load_and_plan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let options = LoadOptions::default();
    let mut group = c.benchmark_group("fanout");
    group.sample_size(20);
    for items in [100, 10_000] {
        let path = write_pipeline(dir.path(), items);
        let loaded = pipeline::load(&path, &options).expect("the pipeline loads");
        let plan = seal::dag::plan(&loaded).expect("the pipeline plans");
        assert_eq!(plan.instances.len(), items);
        group.bench_function(format!("load+plan {items}"), |b| {
            b.iter(|| {
                let loaded = pipeline::load(black_box(&path), &options).expect("loads");
                let plan = seal::dag::plan(&loaded).expect("plans");
                black_box(plan.instances.len())
            })
        });
        group.bench_function(format!("plan {items}"), |b| {
            b.iter(|| black_box(seal::dag::plan(black_box(&loaded)).expect("plans")))
        });
    }
    group.finish();
}

criterion_group!(benches, load_and_plan);
criterion_main!(benches);
