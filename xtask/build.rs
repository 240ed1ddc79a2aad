//! Build script: the commit the binary is built from, for `--version`, as the compile-time
//! variable `FLYTE_DEPLOY_COMMIT` ("unknown" outside a git checkout or without git). Reruns
//! only when HEAD or the ref it points to moves.

use std::path::Path;
use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FLYTE_DEPLOY_COMMIT={commit}");
    // Cargo reruns a build script whose watched file is missing on every build: only files
    // that exist are watched (a ref that is packed lives in packed-refs).
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(reference) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]).filter(|r| r.starts_with("refs/")) {
        watched.push(git(&["rev-parse", "--git-path", &reference]));
        watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    for path in watched.into_iter().flatten() {
        if Path::new(&path).is_file() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // Without any watched file (not a checkout), only a change of the script itself reruns it.
    println!("cargo:rerun-if-changed=build.rs");
}

/// A git command's one line of output, run in this crate's folder; None when git is missing
/// or fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_string())
}
