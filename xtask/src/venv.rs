//! The managed Python environment: a venv under the target directory with the pinned
//! flytekit, created on first use and reused after. Owns where it is and how it is made.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

/// The flytekit version every serialization uses.
pub const FLYTEKIT_VERSION: &str = "1.16.31";

/// The target directory of the monorepo's cargo workspace.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The venv's folder.
pub fn venv_dir(root: &Path) -> PathBuf {
    target_dir(root).join("venv")
}

/// The Python of the managed venv, created with the pinned flytekit when missing.
/// `FLYTE_DEPLOY_PYTHON` names another Python (which must have flytekit installed).
pub fn ensure(root: &Path) -> Result<PathBuf> {
    if let Some(python) = std::env::var_os("FLYTE_DEPLOY_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let dir = venv_dir(root);
    let python = dir.join("bin/python");
    let stamp = dir.join(format!(".flytekit-{FLYTEKIT_VERSION}"));
    if stamp.exists() && python.exists() {
        return Ok(python);
    }
    let sh = Shell::new()?;
    let host = ["python3.11", "python3"]
        .into_iter()
        .find(|p| cmd!(sh, "{p} --version").quiet().ignore_stdout().ignore_stderr().run().is_ok())
        .context("no python3 found on PATH: install Python 3.11 (Debian: apt-get install python3 python3-venv)")?;
    eprintln!("installing flytekit=={FLYTEKIT_VERSION} into {} (once; takes a minute)", dir.display());
    if !python.exists() {
        cmd!(sh, "{host} -m venv {dir}")
            .quiet()
            .run()
            .with_context(|| format!("creating the Python venv at {}", dir.display()))?;
    }
    let pin = format!("flytekit=={FLYTEKIT_VERSION}");
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check {pin}")
        .quiet()
        .run()
        .with_context(|| format!("installing {pin} into {}", dir.display()))?;
    let version = cmd!(sh, "{python} -c 'import flytekit; print(flytekit.__version__)'").quiet().read()?;
    if version.trim() != FLYTEKIT_VERSION {
        bail!("{} has flytekit {} instead of {FLYTEKIT_VERSION}", dir.display(), version.trim());
    }
    std::fs::write(&stamp, b"").with_context(|| format!("writing {}", stamp.display()))?;
    Ok(python)
}

/// The `pyflyte` next to a venv's Python.
pub fn pyflyte(python: &Path) -> PathBuf {
    python.with_file_name("pyflyte")
}
