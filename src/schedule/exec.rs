//! How a step's process starts: argv, environment, user and working
//! directory, from the image config overridden by the step, as Docker does.

use std::path::Path;

use crate::image::{ImageConfig, PreparedImage};
use crate::pipeline::render::{Join, RenderError, Scope};
use crate::pipeline::{Command, Step};

/// `PATH` when the image sets none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The working directory when neither the step nor the image sets one.
pub const DEFAULT_WORKDIR: &str = "/work";

/// The argv for a step: `run:` through `/bin/sh -c`; `argv:` after the
/// image's entrypoint; neither: entrypoint plus cmd.
pub fn argv(
    command: &Command,
    config: &ImageConfig,
    scope: &Scope<'_>,
) -> Result<Vec<String>, RenderError> {
    match command {
        Command::Shell(run) => {
            let script = scope.render(&run.value, Join::Shell)?;
            Ok(vec!["/bin/sh".into(), "-c".into(), script])
        }
        Command::Argv(items) => {
            let mut argv = config.entrypoint.clone();
            for item in items {
                argv.extend(scope.render_words(&item.value)?);
            }
            Ok(argv)
        }
        Command::Image => {
            let argv: Vec<String> = config
                .entrypoint
                .iter()
                .chain(&config.cmd)
                .cloned()
                .collect();
            if argv.is_empty() {
                return Err(RenderError(
                    "the step has no `run:` or `argv:` and the image has no entrypoint or cmd"
                        .into(),
                ));
            }
            Ok(argv)
        }
    }
}

/// What a step needs from its image, checked before any step of the run
/// starts: its user, its working directory, and something to run.
pub fn preflight(step: &Step, image: &PreparedImage) -> Result<(), String> {
    let config = &image.config;
    resolve_user(step.user.as_deref().unwrap_or(&config.user), &image.rootfs)?;
    let cwd = workdir(step.workdir.as_deref(), config);
    if !is_dir_in(&image.rootfs, &cwd) {
        return Err(format!(
            "the working directory `{cwd}` is not a directory in the image"
        ));
    }
    let runs_nothing = matches!(step.command, Command::Image)
        && config.entrypoint.is_empty()
        && config.cmd.is_empty();
    if runs_nothing {
        return Err(
            "the step has no `run:` or `argv:` and the image has no entrypoint or cmd".into(),
        );
    }
    Ok(())
}

/// True when `path` is a directory of the image at `rootfs` (not through a
/// symlink, which a mount would not follow safely).
pub fn is_dir_in(rootfs: &Path, path: &str) -> bool {
    let full = rootfs.join(path.trim_start_matches('/'));
    full.symlink_metadata().is_ok_and(|m| m.is_dir())
}

/// The working directory inside the container.
pub fn workdir(step_workdir: Option<&str>, config: &ImageConfig) -> String {
    if let Some(dir) = step_workdir {
        return dir.to_string();
    }
    match config.working_dir.trim_end_matches('/') {
        "" => DEFAULT_WORKDIR.to_string(),
        dir => dir.to_string(),
    }
}

/// A resolved user: ids and home directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Resolves `user` (`""`, `name`, `uid`, `uid:gid`, `name:group`) against the
/// image's `/etc/passwd` and `/etc/group`.
pub fn resolve_user(user: &str, rootfs: &Path) -> Result<User, String> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_image_file(rootfs, "etc/passwd");
    let entry = match user_part {
        "" => passwd_entry(&passwd, |e| e.uid == 0),
        name => match name.parse::<u32>() {
            Ok(uid) => passwd_entry(&passwd, |e| e.uid == uid),
            Err(_) => passwd_entry(&passwd, |e| e.name == name),
        },
    };
    let uid = match (user_part.parse::<u32>(), &entry) {
        (Ok(uid), _) => uid,
        (Err(_), _) if user_part.is_empty() => 0,
        (Err(_), Some(entry)) => entry.uid,
        (Err(_), None) => {
            return Err(format!(
                "user `{user_part}` is not in the image's /etc/passwd"
            ));
        }
    };
    let gid = match group_part {
        Some(group) => resolve_group(group, rootfs)?,
        None => entry.as_ref().map_or(0, |e| e.gid),
    };
    let home = entry.map(|e| e.home).filter(|h| !h.is_empty());
    let home = home.unwrap_or_else(|| if uid == 0 { "/root".into() } else { "/".into() });
    Ok(User { uid, gid, home })
}

fn resolve_group(group: &str, rootfs: &Path) -> Result<u32, String> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let groups = read_image_file(rootfs, "etc/group");
    groups
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&group))
        .and_then(|fields| fields.get(2)?.parse().ok())
        .ok_or_else(|| format!("group `{group}` is not in the image's /etc/group"))
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn passwd_entry(text: &str, wanted: impl Fn(&PasswdEntry) -> bool) -> Option<PasswdEntry> {
    text.lines()
        .filter_map(parse_passwd_line)
        .find(|e| wanted(e))
}

fn parse_passwd_line(line: &str) -> Option<PasswdEntry> {
    let fields: Vec<&str> = line.split(':').collect();
    if fields.len() < 7 {
        return None;
    }
    Some(PasswdEntry {
        name: fields[0].to_string(),
        uid: fields[2].parse().ok()?,
        gid: fields[3].parse().ok()?,
        home: fields[5].to_string(),
    })
}

/// Reads a small text file of the image, refusing symlinks (which would be
/// resolved against the host, not the image).
fn read_image_file(rootfs: &Path, relative: &str) -> String {
    let path = rootfs.join(relative);
    match path.symlink_metadata() {
        Ok(meta) if meta.is_file() => std::fs::read_to_string(&path).unwrap_or_default(),
        _ => String::new(),
    }
}

/// The step's environment: defaults, then the image's, then the step's.
pub fn environment(config: &ImageConfig, home: &str, step_env: &[(String, String)]) -> Vec<String> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into()),
    ];
    let image_env = config.env.iter().filter_map(|kv| kv.split_once('='));
    let step_env = step_env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (key, value) in image_env.chain(step_env) {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => env.push((key.to_string(), value.to_string())),
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootfs_with(passwd: &str, group: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        dir
    }

    #[test]
    fn users_resolve_by_name_id_and_group() {
        let root = rootfs_with(
            "root:x:0:0:root:/root:/bin/sh\nbio:x:1000:1001::/home/bio:/bin/sh\n",
            "root:x:0:\nstaff:x:50:\n",
        );
        let user = |u: &str| resolve_user(u, root.path());
        assert_eq!(
            user("").unwrap(),
            User {
                uid: 0,
                gid: 0,
                home: "/root".into()
            }
        );
        assert_eq!(
            user("bio").unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                home: "/home/bio".into()
            }
        );
        assert_eq!(user("1000:staff").unwrap().gid, 50);
        assert_eq!(
            user("4242").unwrap(),
            User {
                uid: 4242,
                gid: 0,
                home: "/".into()
            }
        );
        assert!(
            user("nobody-here")
                .unwrap_err()
                .contains("not in the image")
        );
    }

    #[test]
    fn step_env_overrides_image_env_which_overrides_defaults() {
        let config = ImageConfig {
            env: vec!["PATH=/opt/bin".into(), "LANG=C.UTF-8".into()],
            ..Default::default()
        };
        let env = environment(&config, "/root", &[("LANG".into(), "C".into())]);
        assert_eq!(env, vec!["PATH=/opt/bin", "HOME=/root", "LANG=C"]);
    }

    #[test]
    fn workdir_falls_back_to_work() {
        let mut config = ImageConfig::default();
        assert_eq!(workdir(None, &config), "/work");
        config.working_dir = "/data/".into();
        assert_eq!(workdir(None, &config), "/data");
        assert_eq!(workdir(Some("/x"), &config), "/x");
        config.working_dir = "/".into();
        assert_eq!(workdir(None, &config), "/work");
    }
}
