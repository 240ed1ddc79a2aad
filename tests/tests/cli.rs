//! The command-line habits users bring from other tools, through the binary: `--version`
//! naming the commit it was built from, shell completions, `-q`/`-v`, colour only on
//! terminals, every failure on stderr.

use std::process::Command;

use tests::{project_root, xtask_bin, TempRepo};

#[test]
fn version_names_the_release_and_the_commit_built_from() {
    let out = Command::new(xtask_bin()).arg("--version").output().expect("running xtask");
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).expect("UTF-8");
    let rest = line.strip_prefix("flyte-deploy ").unwrap_or_else(|| panic!("not `flyte-deploy …`: {line:?}"));
    let (release, commit) = rest.trim_end().split_once(' ').unwrap_or_else(|| panic!("no commit: {line:?}"));
    let parts: Vec<&str> = release.split('.').collect();
    assert!(parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()), "not X.Y.Z: {line:?}");
    let commit = commit.strip_prefix('(').and_then(|c| c.strip_suffix(')')).expect("the commit in parentheses");
    // This project is a git checkout, so the binary knows its commit: one of this repository.
    assert!(commit.len() == 12 && commit.chars().all(|c| c.is_ascii_hexdigit()), "not a commit: {line:?}");
    let known = Command::new("git")
        .current_dir(project_root())
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .expect("running git");
    assert!(known.success(), "{commit} is no commit of {}", project_root().display());
    // The same from any folder: the build, not the current repository, decides it.
    let elsewhere = TempRepo::new().xtask(&["--version"]);
    assert_eq!(elsewhere.ok(), line);
}
