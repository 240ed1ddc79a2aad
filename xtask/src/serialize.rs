//! Serialization: running the real pyflyte on a workflow's materialised code set to get the
//! task, workflow and launch-plan specs, with a cache keyed by everything that reaches the
//! output (code fingerprint, image, packages, flytekit version), so an unchanged workflow
//! never starts Python. Runs programs and writes only into its cache.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::venv;

/// Where serialized packages are kept, below the repository root.
pub const CACHE_DIR: &str = ".flyte/cache/serialized";

/// The folder of the serialization cache: [`CACHE_DIR`], or a temporary one, removed when
/// this is dropped, when the caches are committed to git ([`crate::caches::committed`]).
pub struct CacheDir {
    path: PathBuf,
    /// Why [`CACHE_DIR`] is not used, when it is not.
    pub committed: Option<String>,
    _temp: Option<tempfile::TempDir>,
}

impl CacheDir {
    /// The cache folder of the repository at `root`, for a command working on `commit`.
    pub fn of(repo: &git2::Repository, root: &Path, commit: &git2::Commit<'_>) -> Result<CacheDir> {
        let committed = crate::caches::committed(repo, commit);
        if committed.is_none() {
            return Ok(CacheDir { path: root.join(CACHE_DIR), committed, _temp: None });
        }
        let temp = tempfile::tempdir().context("creating a temporary serialization cache")?;
        Ok(CacheDir { path: temp.path().join("serialized"), committed, _temp: Some(temp) })
    }
}

impl std::ops::Deref for CacheDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// The cache key of one serialization.
pub fn cache_key(code_fingerprint: &str, image: &str, packages: &[String]) -> String {
    let mut h = Sha256::new();
    for part in ["flyte-deploy serialize v1", venv::FLYTEKIT_VERSION, code_fingerprint, image] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for p in packages {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// A serialized package (`pyflyte package` output, a .tgz of .pb files).
#[derive(Debug, Clone)]
pub struct Serialized {
    pub path: PathBuf,
    /// True when it came from the cache and no Python was started.
    pub cached: bool,
}

/// The cached package for `key`, if any.
pub fn cached(cache_dir: &Path, key: &str) -> Option<Serialized> {
    let path = cache_dir.join(format!("{key}.tgz"));
    path.is_file().then_some(Serialized { path, cached: true })
}

/// Serializes the packages of a materialised code set with pyflyte, unless the cache has
/// them. The cache entry appears whole or not at all (written aside, then renamed).
pub fn serialize(
    python: &Path,
    code_dir: &Path,
    packages: &[String],
    image: &str,
    cache_dir: &Path,
    key: &str,
) -> Result<Serialized> {
    if let Some(hit) = cached(cache_dir, key) {
        return Ok(hit);
    }
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    crate::caches::keep_out_of_git(cache_dir.parent().unwrap_or(cache_dir));
    let out_dir = tempfile::tempdir_in(cache_dir).context("creating a temporary folder for pyflyte's output")?;
    let out = out_dir.path().join("package.tgz");
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for p in packages {
        args.push("--pkgs".into());
        args.push(p.into());
    }
    args.extend(["package".into(), "--image".into(), image.into(), "--copy".into(), "all".into()]);
    args.extend(["--source".into(), code_dir.as_os_str().to_owned(), "--force".into(), "-o".into()]);
    args.push(out.as_os_str().to_owned());
    let output = duct::cmd(venv::pyflyte(python), args)
        .dir(code_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONPATH", code_dir)
        .env("FLYTE_SDK_LOGGING_LEVEL", "40")
        .stderr_to_stdout()
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running {}", venv::pyflyte(python).display()))?;
    if !output.status.success() || !out.is_file() {
        let text = String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = text.lines().rev().filter(|l| !l.trim().is_empty()).take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!("pyflyte could not serialize {}:\n{}", packages.join(", "), tail.join("\n"));
    }
    let path = cache_dir.join(format!("{key}.tgz"));
    std::fs::rename(&out, &path).with_context(|| format!("storing {}", path.display()))?;
    Ok(Serialized { path, cached: false })
}
