//! Layers that try to write outside the root file system are refused as a whole, write
//! nothing outside, and leave no root file system behind.

#[path = "common/image.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::{Env, Layer, Tar, oci_layout};

/// A test store plus a directory outside it holding a `secret` the layers aim at.
struct Target {
    env: Env,
    outside: PathBuf,
}

impl Target {
    fn new() -> Target {
        let env = Env::new();
        let outside = env.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        Target { env, outside }
    }

    fn outside(&self) -> &str {
        self.outside.to_str().unwrap()
    }

    /// Prepares an image of `tar` (after a harmless base layer), expecting it to be refused
    /// because of `entry`; checks the message, the outside directory and the store.
    fn refuses(&self, tar: Vec<u8>, entry: &str, reason: &str) {
        let base = Layer::plain(Tar::new().dir("etc/").file("etc/os-release", "x").finish());
        let layer = Layer::gzip(tar);
        let layer_digest = layer.digest();
        let layout = self.env.path("layout");
        let image = oci_layout(&layout, &[base, layer]);

        let stderr =
            self.env
                .prepare_fails(&format!("oci:{}@{}", layout.display(), image.manifest));
        assert!(
            stderr.contains(&layer_digest),
            "the layer must be named: {stderr}"
        );
        assert!(
            stderr.contains(&format!("`{entry}`")),
            "the entry must be named: {stderr}"
        );
        assert!(stderr.contains(reason), "expected `{reason}` in: {stderr}");

        assert_eq!(
            common::list(&self.outside),
            ["secret"],
            "something was written outside"
        );
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret")).unwrap(),
            "secret"
        );
        assert!(
            self.env.store_entries("rootfs").is_empty(),
            "a rootfs was left behind"
        );
        assert!(
            self.env.store_entries("tmp").is_empty(),
            "a partial tree was left behind"
        );
    }
}

/// `../` repeated enough to climb from anywhere under the temp dir to `/`.
fn climb_to_root(from: &Path) -> String {
    "../".repeat(from.components().count() + 4)
}

#[test]
fn dot_dot_in_an_entry_path_is_refused() {
    let t = Target::new();
    let name = format!("{}{}/dotdot", climb_to_root(&t.outside), &t.outside()[1..]);
    t.refuses(
        Tar::new().file(&name, "pwned").finish(),
        &name,
        "climbs out of the root",
    );

    let t = Target::new();
    t.refuses(
        Tar::new().file("a/../../escape", "x").finish(),
        "a/../../escape",
        "`..`",
    );

    // A whiteout of `..` would delete the directory holding it.
    let t = Target::new();
    t.refuses(
        Tar::new().file("etc/.wh...", "").finish(),
        "etc/.wh...",
        "whiteout",
    );
}

#[test]
fn an_absolute_entry_path_is_refused() {
    let t = Target::new();
    let name = format!("{}/absolute", t.outside());
    t.refuses(
        Tar::new().file(&name, "pwned").finish(),
        &name,
        "is absolute",
    );
}

#[test]
fn writing_through_a_symlink_to_outside_is_refused() {
    let t = Target::new();
    let tar = Tar::new()
        .symlink("evil", t.outside())
        .file("evil/x", "pwned")
        .finish();
    t.refuses(tar, "evil/x", "through the symlink `evil`");

    // The same with a relative symlink climbing out, in a directory of its own.
    let t = Target::new();
    let target = format!("../{}{}", climb_to_root(&t.outside), &t.outside()[1..]);
    let tar = Tar::new()
        .dir("d/")
        .symlink("d/up", &target)
        .file("d/up/x", "pwned")
        .finish();
    t.refuses(tar, "d/up/x", "through the symlink `d/up`");
}

#[test]
fn hard_links_to_outside_are_refused() {
    let t = Target::new();
    let absolute = format!("{}/secret", t.outside());
    t.refuses(
        Tar::new().hard_link("h", &absolute).finish(),
        "h",
        "hard link target",
    );

    let t = Target::new();
    let climbing = format!("{}{}/secret", climb_to_root(&t.outside), &t.outside()[1..]);
    t.refuses(
        Tar::new().hard_link("h", &climbing).finish(),
        "h",
        "hard link target",
    );

    // Through a symlink: the link target is looked up inside the image, where it is absent.
    let t = Target::new();
    let tar = Tar::new()
        .symlink("s", t.outside())
        .hard_link("h", "s/secret")
        .finish();
    t.refuses(tar, "h", "must already be in the image");
}

#[test]
fn a_symlink_to_an_absolute_path_leads_inside_the_tree() {
    // `etc-link -> /etc` is legitimate: it means the image's own /etc, never the host's.
    let env = Env::new();
    let unique = format!("seal-escape-test-{}", std::process::id());
    let name = format!("etc-link/{unique}");
    let tar = Tar::new()
        .dir("etc/")
        .symlink("etc-link", "/etc")
        .file(&name, "inside")
        .finish();
    let layout = env.path("layout");
    let image = oci_layout(&layout, &[Layer::plain(tar)]);

    let prepared = env.prepare(&format!("oci:{}@{}", layout.display(), image.manifest));
    let rootfs = Path::new(prepared["rootfs"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc").join(&unique)).unwrap(),
        "inside"
    );
    assert!(!Path::new("/etc").join(&unique).exists());
}
