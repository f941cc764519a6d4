//! `seal lock` pins images named by tag; a stale or missing pin is an error.

mod common;

use common::{Env, assert_fails, provenance, text};

fn pipeline(reference: &str) -> String {
    format!(
        r#"seal: 1
name: locked
images:
  bb: {reference}
steps:
  hello:
    image: bb
    outputs: {{ out: out.txt }}
    run: echo hello > ${{outputs.out}}
"#
    )
}

#[test]
fn lock_pins_a_tagged_image_and_the_run_uses_the_pin() {
    let env = Env::new();
    let pinned = env.busybox_image("local/bb:1", &[]);
    let digest = pinned.split_once('@').unwrap().1.to_string();
    env.write("p.yaml", &pipeline("local/bb:1"));

    let unlocked = env.seal(&["validate", "p.yaml"]);
    assert_fails(&unlocked, 2, "image `bb` is not pinned by digest");
    assert!(text(&unlocked.stderr).contains("seal lock p.yaml"));

    let locked = env.seal(&["lock", "p.yaml"]);
    assert!(locked.status.success(), "{}", text(&locked.stderr));
    assert_eq!(text(&locked.stdout), format!("bb\tlocal/bb:1@{digest}\n"));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path().join("p.lock")).unwrap()).unwrap();
    assert_eq!(
        lock["images"]["bb"]["pinned"],
        format!("local/bb:1@{digest}")
    );

    let run = env.seal(&["run", "p.yaml", "--out", "out"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let document = provenance(&env.path().join("out"));
    let image = &document["images"]["bb"];
    assert_eq!(image["manifest_digest"], digest, "{image}");
}

#[test]
fn editing_the_image_line_makes_the_lock_entry_stale() {
    let env = Env::new();
    env.busybox_image("local/bb:1", &[]);
    env.write("p.yaml", &pipeline("local/bb:1"));
    assert!(env.seal(&["lock", "p.yaml"]).status.success());
    env.write("p.yaml", &pipeline("local/bb:2"));
    assert_fails(
        &env.seal(&["validate", "p.yaml"]),
        2,
        "is not pinned by digest",
    );
}

#[test]
fn an_unknown_name_is_an_error_and_no_lock_is_written() {
    let env = Env::new();
    env.write("p.yaml", &pipeline("local/missing:1"));
    let output = env.seal(&["lock", "p.yaml"]);
    assert_fails(&output, 3, "image named `local/missing:1`");
    assert!(text(&output.stderr).contains("seal image import DIR --tag local/missing:1"));
    assert!(!env.path().join("p.lock").exists());
}

#[test]
fn an_oci_layout_tag_is_pinned_to_its_manifest() {
    let env = Env::new();
    let pinned = env.busybox_image("local/bb:2", &["--oci-layout", "layout"]);
    let digest = pinned.split_once('@').unwrap().1.to_string();
    env.write("p.yaml", &pipeline("oci:layout:2"));
    let locked = env.seal(&["lock", "p.yaml"]);
    assert!(locked.status.success(), "{}", text(&locked.stderr));
    assert_eq!(text(&locked.stdout), format!("bb\toci:layout:2@{digest}\n"));
    let run = env.seal(&["run", "p.yaml", "--out", "out"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
}
