//! End to end: pipelines run in real containers, in parallel, and their
//! outputs and provenance are what users expect.

mod common;

use common::{Env, assert_valid_provenance, provenance, sha256sum, text};

/// A three-step pipeline whose middle step fans out over three items.
fn fan_out_pipeline(image: &str) -> String {
    format!(
        r#"
seal: 1
name: fan
params:
  parts: [a, b, c]
images:
  bb: {image}
steps:
  split:
    image: bb
    inputs: {{ text: data/words.txt }}
    outputs: {{ chunks: "chunk.*" }}
    run: for p in ${{params.parts}}; do grep -n . ${{inputs.text}} > chunk.$p; done
  upper:
    foreach: ${{params.parts}}
    image: bb
    inputs: {{ chunks: "${{steps.split.outputs.chunks}}" }}
    outputs: {{ up: "up/${{item}}.txt" }}
    run: |
      sleep 1
      mkdir -p up
      tr a-z A-Z < chunk.${{item}} > ${{outputs.up}}
      echo ${{item}} >> ${{outputs.up}}
  join:
    image: bb
    inputs: {{ parts: "${{steps.upper.outputs.up}}" }}
    outputs: {{ all: all.txt }}
    run: cat ${{inputs.parts}} > ${{outputs.all}}
"#
    )
}

fn seconds(timestamp: &serde_json::Value) -> f64 {
    let text = timestamp.as_str().expect("timestamp");
    let time = humantime::parse_rfc3339(text).expect("RFC 3339");
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn fan_out_runs_in_parallel_and_provenance_hashes_match_sha256sum() {
    let env = Env::new();
    let image = env.busybox_image("test/busybox:1", &[]);
    env.write("data/words.txt", "alpha\nbeta\n");
    env.write("fan.yaml", &fan_out_pipeline(&image));

    let output = env.seal(&["run", "fan.yaml", "--cores", "3", "--out", "out"]);
    assert!(
        output.status.success(),
        "run failed:\n{}",
        text(&output.stderr)
    );

    let out = env.path().join("out");
    let all = std::fs::read_to_string(out.join("results/all.txt")).unwrap();
    assert_eq!(
        all,
        "1:ALPHA\n2:BETA\na\n1:ALPHA\n2:BETA\nb\n1:ALPHA\n2:BETA\nc\n"
    );
    let manifest = provenance(&out);
    assert_valid_provenance(&manifest);
    assert_eq!(manifest["run"]["status"], "succeeded");

    // Every output and input in provenance carries the hash sha256sum computes.
    let steps = manifest["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    for step in steps {
        for file in step["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .chain(step["inputs"].as_array().unwrap())
        {
            let location = std::path::Path::new(file["location"].as_str().unwrap());
            assert_eq!(
                file["sha256"].as_str().unwrap(),
                sha256sum(location),
                "{file}"
            );
        }
        let digest = step["image_manifest_digest"].as_str().unwrap();
        assert!(
            image.ends_with(digest),
            "{digest} is not the pinned image {image}"
        );
    }

    // The three one-second instances overlapped in time.
    let upper: Vec<_> = steps.iter().filter(|s| s["step"] == "upper").collect();
    let latest_start = upper
        .iter()
        .map(|s| seconds(&s["started_at"]))
        .fold(0.0, f64::max);
    let earliest_end = upper
        .iter()
        .map(|s| seconds(&s["finished_at"]))
        .fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "upper instances ran one after another"
    );
}

#[test]
fn provenance_records_process_resources_and_exit_status() {
    let env = Env::new();
    let image = env.busybox_image("test/busybox:1", &[]);
    env.write("data/words.txt", "alpha\nbeta\n");
    env.write("fan.yaml", &fan_out_pipeline(&image));
    let output = env.seal(&["run", "fan.yaml", "--out", "out"]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let manifest = provenance(&env.path().join("out"));
    let join = manifest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "join")
        .unwrap();
    let process = &join["process"];
    assert_eq!(process["argv"][0], "/bin/sh");
    assert_eq!(
        process["argv"][2],
        "cat up/a.txt up/b.txt up/c.txt > all.txt"
    );
    assert_eq!(process["cwd"], "/work");
    assert!(
        process["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("PATH="))
    );
    assert_eq!(
        join["exit"],
        serde_json::json!({"kind": "exited", "code": 0})
    );
    let used = &join["resources"]["used"];
    assert!(used["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(used["peak_memory_bytes"].as_u64().unwrap() > 0);
    let image_record = &manifest["images"]["bb"];
    assert_eq!(image_record["layers"].as_array().unwrap().len(), 1);
    assert_eq!(
        manifest["pipeline"]["sha256"].as_str().unwrap(),
        sha256sum(&env.path().join("fan.yaml"))
    );
}

#[test]
fn a_failing_step_publishes_nothing_and_names_its_sandbox() {
    let env = Env::new();
    let image = env.busybox_image("test/busybox:1", &[]);
    let pipeline = format!(
        r#"
seal: 1
name: fails
images: {{ bb: {image} }}
steps:
  half:
    image: bb
    outputs: {{ a: a.txt, b: b.txt }}
    run: echo partial > a.txt; echo "something went wrong" >&2; exit 3
  after:
    image: bb
    inputs: {{ a: "${{steps.half.outputs.a}}" }}
    outputs: {{ c: c.txt }}
    run: cp a.txt c.txt
"#
    );
    env.write("fails.yaml", &pipeline);
    let output = env.seal(&["run", "fails.yaml", "--out", "out"]);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step half failed: exited with status 3"),
        "{stderr}"
    );
    assert!(stderr.contains("something went wrong"), "{stderr}");
    let sandbox = env.path().join("out/work/half/sandbox");
    assert!(stderr.contains(sandbox.to_str().unwrap()), "{stderr}");
    assert!(sandbox.join("a.txt").exists(), "the failed sandbox is kept");

    let results: Vec<_> = std::fs::read_dir(env.path().join("out/results"))
        .unwrap()
        .collect();
    assert!(results.is_empty(), "a failed run published {results:?}");
    let manifest = provenance(&env.path().join("out"));
    assert_valid_provenance(&manifest);
    assert_eq!(manifest["run"]["status"], "failed");
    assert_eq!(manifest["steps"][1]["status"], "skipped");
}

#[test]
fn keep_going_runs_what_does_not_depend_on_a_failure() {
    let env = Env::new();
    let image = env.busybox_image("test/busybox:1", &[]);
    let pipeline = format!(
        r#"
seal: 1
name: keep
images: {{ bb: {image} }}
steps:
  bad:
    image: bb
    outputs: {{ x: x.txt }}
    run: exit 1
  good:
    image: bb
    after: bad
    outputs: {{ y: y.txt }}
    run: echo y > y.txt
  other:
    image: bb
    outputs: {{ z: z.txt }}
    run: echo z > z.txt
"#
    );
    env.write("keep.yaml", &pipeline);
    let output = env.seal(&[
        "run",
        "keep.yaml",
        "--out",
        "out",
        "--keep-going",
        "--cores",
        "1",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let results = env.path().join("out/results");
    assert!(results.join("z.txt").exists(), "independent step ran");
    assert!(
        !results.join("y.txt").exists(),
        "dependent step did not run"
    );
}

#[test]
fn files_left_from_an_earlier_run_are_pointed_out() {
    let env = Env::new();
    let image = env.busybox_image("local/bb", &[]);
    let yaml = format!(
        "seal: 1\nname: twice\nparams: {{ parts: [a, b] }}\nimages: {{ bb: {image} }}\n\
         steps:\n  make:\n    foreach: ${{params.parts}}\n    image: bb\n    \
         outputs: {{ out: \"${{item}}.txt\" }}\n    run: echo ${{item}} > ${{outputs.out}}\n"
    );
    env.write("p.yaml", &yaml);
    let first = env.seal(&["run", "p.yaml", "--out", "out"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(!text(&first.stderr).contains("not written by this run"));
    let second = env.seal(&["run", "p.yaml", "--out", "out", "--param", "parts=[a]"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains("1 file(s) in results/ were not written by this run"),
        "{}",
        text(&second.stderr)
    );
    let document = provenance(&env.path().join("out"));
    assert_eq!(document["steps"].as_array().unwrap().len(), 1);
}

#[test]
fn items_whose_names_clean_up_alike_keep_their_own_sandboxes() {
    let env = Env::new();
    let image = env.busybox_image("local/bb", &[]);
    let yaml = format!(
        "seal: 1\nname: alike\nparams: {{ items: [\"x y\", x_y] }}\n\
         images: {{ bb: {image} }}\nsteps:\n  e:\n    foreach: ${{params.items}}\n    \
         image: bb\n    outputs: {{ o: \"out/${{item}}\" }}\n    run: |\n      \
         echo '${{item}}' > scratch\n      sleep 1\n      mkdir -p out\n      \
         cat scratch > ${{outputs.o}}\n"
    );
    env.write("p.yaml", &yaml);
    let run = env.seal(&["run", "p.yaml", "--out", "out", "--cores", "4"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let results = env.path().join("out/results/out");
    for (file, content) in [("x y", "x y"), ("x_y", "x_y")] {
        let written = std::fs::read_to_string(results.join(file)).unwrap();
        assert_eq!(written.trim(), content);
    }
    let document = provenance(&env.path().join("out"));
    let ids: Vec<&str> = document["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["e[x y]", "e[x_y]"]);
}

#[test]
fn an_interrupt_stops_running_steps_and_leaves_nothing_running() {
    let env = Env::new();
    let image = env.busybox_image("local/bb", &[]);
    let marker = format!("seal-test-marker-{}", std::process::id());
    let yaml = format!(
        "seal: 1\nname: stop\nimages: {{ bb: {image} }}\nsteps:\n  long:\n    image: bb\n    \
         outputs: {{ o: o.txt }}\n    run: sleep 600; echo {marker} > o.txt\n  after:\n    \
         image: bb\n    inputs: {{ i: \"${{steps.long.outputs.o}}\" }}\n    \
         outputs: {{ o: p.txt }}\n    run: cp ${{inputs.i}} p.txt\n"
    );
    env.write("p.yaml", &yaml);
    let child = env
        .command()
        .args(["run", "p.yaml", "--out", "out"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sandbox = env.path().join("out/work/long/sandbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running_with(&marker) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        sandbox.exists() && running_with(&marker),
        "the step never started"
    );
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let output = child.wait_with_output().unwrap();

    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("stopped  long"), "{stderr}");
    assert!(!stderr.contains("FAILED"), "{stderr}");
    assert!(!running_with(&marker), "a step process outlived the run");
    let document = provenance(&env.path().join("out"));
    assert_eq!(document["run"]["status"], "interrupted");
    assert_eq!(document["steps"][0]["status"], "interrupted");
    assert_eq!(document["steps"][1]["status"], "skipped");
    assert!(!env.path().join("out/results/o.txt").exists());
    // The output directory is free again.
    env.write("p.yaml", &yaml.replace("sleep 600; ", ""));
    let again = env.seal(&["run", "p.yaml", "--out", "out"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// Whether any process on the machine has `marker` in its command line.
fn running_with(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .any(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
}

#[test]
fn steps_asking_for_more_cores_than_the_run_has_run_with_what_there_is() {
    let env = Env::new();
    let image = env.busybox_image("local/bb", &[]);
    let yaml = format!(
        "seal: 1\nname: cores\nimages: {{ bb: {image} }}\nsteps:\n  wide:\n    image: bb\n    \
         resources: {{ cpus: 8 }}\n    outputs: {{ o: o.txt }}\n    run: echo > o.txt\n  \
         big:\n    image: bb\n    resources: {{ memory: 2G }}\n    run: true\n  \
         bigger:\n    image: bb\n    resources: {{ memory: 3G }}\n    run: true\n"
    );
    env.write("p.yaml", &yaml);
    let refused = env.seal(&[
        "run", "p.yaml", "--out", "out", "--cores", "1", "--memory", "1G",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("step `big` asks for 2G of memory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("step `bigger` asks for 3G of memory"),
        "{stderr}"
    );
    assert!(!stderr.contains("cpus but"), "{stderr}");

    let run = env.seal(&["run", "p.yaml", "--out", "out", "--cores", "1"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(
        text(&run.stderr).contains("step `wide` asks for 8 cpus; it runs with 1 (--cores)"),
        "{}",
        text(&run.stderr)
    );
    let document = provenance(&env.path().join("out"));
    assert_eq!(document["steps"][0]["resources"]["cpus"], 1);
}
