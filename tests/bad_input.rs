//! Bad input gets a clear error naming the place, a non-zero exit, and
//! nothing published.

mod common;

use common::{Env, assert_fails, text};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// Validates and runs `yaml`, expecting both to fail with exit `code` and
/// stderr containing each of `needles`; checks that nothing was published.
fn refused(env: &Env, yaml: &str, code: i32, needles: &[&str]) {
    env.write("p.yaml", yaml);
    let validate = env.seal(&["validate", "p.yaml"]);
    let run = env.seal(&["run", "p.yaml", "--out", "out"]);
    for output in [&validate, &run] {
        for needle in needles {
            assert_fails(output, code, needle);
        }
    }
    let results = env.path().join("out/results");
    let published = std::fs::read_dir(&results).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        published,
        0,
        "something was published in {}",
        results.display()
    );
}

fn pipeline(steps: &str) -> String {
    format!("seal: 1\nname: bad\nimages:\n  bb: test/bb@{DIGEST}\nsteps:\n{steps}")
}

#[test]
fn a_cycle_names_every_step_in_it() {
    let steps = r#"  a:
    image: bb
    inputs: { x: "${steps.c.outputs.o}" }
    outputs: { o: a.txt }
    run: cat x
  b:
    image: bb
    inputs: { x: "${steps.a.outputs.o}" }
    outputs: { o: b.txt }
    run: cat x
  c:
    image: bb
    after: [b]
    outputs: { o: c.txt }
    run: cat x
"#;
    refused(
        &Env::new(),
        &pipeline(steps),
        2,
        &["steps `a` → `b` → `c` → `a` form a cycle", "p.yaml:13:19"],
    );
}

#[test]
fn unknown_references_name_file_line_and_column() {
    let steps = r#"  a:
    image: bb
    inputs: { x: "${steps.nope.outputs.o}" }
    outputs: { o: a.txt }
    run: cat ${inputs.y} ${params.missing}
"#;
    refused(
        &Env::new(),
        &pipeline(steps),
        2,
        &[
            "p.yaml:8:19: step `a` refers to ${steps.nope.outputs.o}: no step `nope`",
            "p.yaml:10:14: step `a` refers to ${inputs.y}, which it does not declare",
            "p.yaml:10:26: step `a` refers to ${params.missing}, which does not exist",
        ],
    );
}

#[test]
fn two_steps_writing_one_output_are_refused() {
    let steps = r#"  a:
    image: bb
    outputs: { o: same.txt }
    run: echo a > same.txt
  b:
    image: bb
    outputs: { o: same.txt }
    run: echo b > same.txt
"#;
    refused(
        &Env::new(),
        &pipeline(steps),
        2,
        &["a and b both write output `same.txt`", "p.yaml:12:19"],
    );
}

#[test]
fn foreach_instances_writing_one_output_are_refused() {
    let steps = r#"  a:
    image: bb
    foreach: [x, y]
    outputs: { o: out.txt }
    run: echo ${item} > out.txt
"#;
    refused(
        &Env::new(),
        &pipeline(steps),
        2,
        &["a[x] and a[y] both write output `out.txt`", "${item}"],
    );
}

#[test]
fn an_unpinned_image_is_refused_with_a_hint() {
    let yaml = "seal: 1\nname: bad\nimages:\n  bb: test/bb:latest\nsteps:\n  a:\n    image: bb\n    run: true\n";
    refused(
        &Env::new(),
        yaml,
        2,
        &[
            "p.yaml:4:7: image `bb` is not pinned by digest",
            "seal lock",
        ],
    );
}

#[test]
fn malformed_yaml_points_at_the_syntax_error() {
    let yaml = "seal: 1\nname: bad\nsteps:\n  a: {image: bb, run: [echo\n";
    refused(&Env::new(), yaml, 2, &["p.yaml:", "not valid YAML"]);
}

#[test]
fn schema_violations_point_at_the_offending_key() {
    let yaml = format!(
        "seal: 1\nname: bad\nimages:\n  bb: test/bb@{DIGEST}\nsteps:\n  a:\n    image: bb\n    rnu: echo\n"
    );
    refused(
        &Env::new(),
        &yaml,
        2,
        &["p.yaml:8:5", "'rnu' was unexpected"],
    );
}

#[test]
fn a_missing_input_file_is_named_before_anything_runs() {
    let steps = r#"  a:
    image: bb
    inputs: { x: data/nothing-here.txt }
    outputs: { o: a.txt }
    run: cp x a.txt
"#;
    refused(
        &Env::new(),
        &pipeline(steps),
        2,
        &["no file matches", "data/nothing-here.txt"],
    );
}

#[test]
fn an_unknown_parameter_override_is_refused() {
    let env = Env::new();
    env.write("p.yaml", &pipeline("  a:\n    image: bb\n    run: true\n"));
    let output = env.seal(&["validate", "p.yaml", "--param", "samplez=[a]"]);
    assert_fails(&output, 2, "the pipeline has no parameter `samplez`");
    assert!(text(&output.stderr).contains("declares no parameters"));
}

#[test]
fn a_parameter_override_that_is_broken_yaml_is_refused_alone() {
    let env = Env::new();
    let yaml = format!(
        "seal: 1\nname: bad\nparams: {{ parts: [a] }}\nimages:\n  bb: test/bb@{DIGEST}\n\
         steps:\n  a:\n    foreach: ${{params.parts}}\n    image: bb\n    run: echo ${{item}}\n"
    );
    env.write("p.yaml", &yaml);
    let output = env.seal(&["validate", "p.yaml", "--param", "parts=[a, b"]);
    assert_fails(
        &output,
        2,
        "--param parts=[a, b: the value is not valid YAML",
    );
    let output = env.seal(&["validate", "p.yaml", "--param", "parts=x"]);
    assert_fails(&output, 2, "`${params.parts}` is not a list");
    assert!(!text(&output.stderr).contains("has no `foreach`"));
}

#[test]
fn a_step_its_image_cannot_run_is_refused_before_anything_runs() {
    let env = Env::new();
    let image = env.busybox_image("local/bb", &[]);
    let yaml = format!(
        "seal: 1\nname: bad\nimages: {{ bb: {image} }}\nsteps:\n  first:\n    image: bb\n    \
         outputs: {{ o: o.txt }}\n    run: echo > o.txt\n  who:\n    image: bb\n    \
         user: nobody\n    run: true\n  where:\n    image: bb\n    workdir: /nonexistent\n    \
         run: true\n"
    );
    env.write("p.yaml", &yaml);
    let output = env.seal(&["run", "p.yaml", "--out", "out", "--keep-going"]);
    assert_fails(
        &output,
        2,
        "p.yaml:9:3: step `who` (image `bb`): user `nobody`",
    );
    assert_fails(
        &output,
        2,
        "step `where` (image `bb`): the working directory `/nonexistent`",
    );
    assert!(text(&output.stderr).contains("nothing ran"));
    assert!(!env.path().join("out/results/o.txt").exists());
}

#[test]
fn empty_files_other_versions_and_bad_sizes_say_so_plainly() {
    let env = Env::new();
    refused(&env, "", 2, &["the file is empty"]);
    refused(
        &env,
        "seal: 2\nname: x\nsteps: {}\n",
        2,
        &["p.yaml:1:7: format version 2 is not supported: this seal reads version 1"],
    );
    refused(
        &env,
        &pipeline("  a:\n    image: bb\n    run: x\n    resources: { memory: lots }\n"),
        2,
        &["expected a size such as 512M"],
    );
    refused(
        &env,
        "seal: 1\nname: x\nname: y\nsteps: {}\n",
        2,
        &["duplicate mapping key: name\n"],
    );
}

#[test]
fn a_problem_shared_by_every_item_is_reported_once() {
    let env = Env::new();
    let yaml = format!(
        "seal: 1\nname: bad\nparams: {{ s: [{{id: a}}, {{id: b}}, {{id: c}}] }}\nimages:\n  \
         bb: test/bb@{DIGEST}\nsteps:\n  a:\n    foreach: ${{params.s}}\n    image: bb\n    \
         outputs: {{ o: \"${{item}}.txt\" }}\n    run: \"true\"\n"
    );
    env.write("p.yaml", &yaml);
    let output = env.seal(&["validate", "p.yaml"]);
    assert_fails(&output, 2, "${item} is a mapping; pick one of its keys");
    assert_eq!(text(&output.stderr).matches("is a mapping").count(), 1);
}
