//! Serialization: running the real pyflyte, in the workflow's own environment, on its
//! materialised code set to get the task, workflow and launch-plan specs, with a cache keyed
//! by everything that reaches the output (code fingerprint, image, packages, environment,
//! named images), so an unchanged workflow never starts Python. Runs programs and writes
//! only into its cache.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::codeset::CodeSet;
use crate::environment;

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

/// The cache key of one serialization: everything that reaches pyflyte's output.
pub fn cache_key(
    code_fingerprint: &str,
    image: &str,
    packages: &[String],
    environment: &str,
    images: &BTreeMap<String, String>,
) -> String {
    let mut h = Sha256::new();
    let named: Vec<String> = images.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let parts = ["flyte-deploy serialize v2", code_fingerprint, image, environment];
    for part in parts.iter().copied().chain(packages.iter().map(String::as_str)).chain(named.iter().map(String::as_str))
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
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

/// What one serialization needs.
pub struct Request<'a> {
    /// The environment's Python.
    pub python: &'a Path,
    /// The materialised code set.
    pub code_dir: &'a Path,
    /// The code set, to name the user's files by their repository paths in errors.
    pub set: &'a CodeSet,
    pub packages: &'a [String],
    /// The default image (`--image IMG`).
    pub image: &'a str,
    /// Named images (`--image NAME=URI`).
    pub images: &'a BTreeMap<String, String>,
}

/// Serializes the packages of a materialised code set with pyflyte in the workflow's own
/// environment, unless the cache has them. The cache entry appears whole or not at all
/// (written aside, then renamed). Workflow code runs with a scrubbed environment
/// ([`environment::workflow_env`]) and a temporary `HOME`; ImageSpec images are not built.
pub fn serialize(req: &Request<'_>, cache_dir: &Path, key: &str) -> Result<Serialized> {
    if let Some(hit) = cached(cache_dir, key) {
        return Ok(hit);
    }
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    crate::caches::keep_out_of_git(cache_dir.parent().unwrap_or(cache_dir));
    let out_dir = tempfile::tempdir_in(cache_dir).context("creating a temporary folder for pyflyte's output")?;
    let scratch = tempfile::Builder::new()
        .prefix("flyte-deploy-home")
        .tempdir()
        .context("creating a temporary home for pyflyte")?;
    let driver = scratch.path().join("flyte_deploy_pyflyte.py");
    std::fs::write(&driver, DRIVER).with_context(|| format!("writing {}", driver.display()))?;
    let report = scratch.path().join("error.json");
    let out = out_dir.path().join("package.tgz");
    let run = |copy: &[&str]| -> Result<std::process::Output> {
        let mut args: Vec<OsString> = vec![driver.clone().into(), report.clone().into()];
        for p in req.packages {
            args.push("--pkgs".into());
            args.push(p.into());
        }
        args.extend(["package".into(), "--image".into(), req.image.into()]);
        for (name, uri) in req.images {
            args.extend(["--image".into(), format!("{name}={uri}").into()]);
        }
        args.extend(copy.iter().map(OsString::from));
        args.extend(["--source".into(), req.code_dir.as_os_str().to_owned()]);
        args.extend(["--force".into(), "-o".into(), out.as_os_str().to_owned()]);
        duct::cmd(req.python, args)
            .dir(req.code_dir)
            // duct applies the innermost setting last: these go on top of the scrubbed set.
            .env("HOME", scratch.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONPATH", req.code_dir)
            .env("FLYTE_SDK_LOGGING_LEVEL", "40")
            .full_env(environment::workflow_env())
            .stderr_to_stdout()
            .stdout_capture()
            .unchecked()
            .run()
            .with_context(|| format!("running {}", req.python.display()))
    };
    let mut output = run(&["--copy", "all"])?;
    let text = String::from_utf8_lossy(&output.stdout);
    let no_copy = text.contains("No such option '--copy'") || text.contains("No such option: --copy");
    if !output.status.success() && no_copy {
        // A flytekit from before `--copy` (1.12 and older) spells it `--fast`.
        output = run(&["--fast"])?;
    }
    if !output.status.success() || !out.is_file() {
        let text = String::from_utf8_lossy(&output.stdout);
        let report = std::fs::read(&report).ok().and_then(|b| serde_json::from_slice::<Vec<Raised>>(&b).ok());
        bail!("{}", failure(req, report.as_deref(), &text));
    }
    let path = cache_dir.join(format!("{key}.tgz"));
    std::fs::rename(&out, &path).with_context(|| format!("storing {}", path.display()))?;
    Ok(Serialized { path, cached: false })
}

/// The driver pyflyte runs through (see the file's docstring).
const DRIVER: &str = include_str!("pyflyte_driver.py");

/// One exception of a chain, as the driver writes it.
#[derive(Debug, Deserialize)]
pub struct Raised {
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub frames: Vec<Frame>,
}

/// One frame of a traceback.
#[derive(Debug, Deserialize)]
pub struct Frame {
    pub file: String,
    pub line: u32,
    pub function: String,
}

/// The message of a failed serialization: the exception that the user's code raised or
/// met (the innermost of the chain with a frame in the code set, else the outermost), its
/// type and message, and the user's frames named by repository path. Without a report,
/// pyflyte's last lines with the temporary folder named as the workflow's.
pub fn failure(req: &Request<'_>, report: Option<&[Raised]>, output: &str) -> String {
    let code_dir = req.code_dir.to_string_lossy();
    let ours = |f: &Frame| repository_path(req, &f.file).map(|p| format!("{p}:{} in {}", f.line, f.function));
    let pkgs = req.packages.join(", ");
    if let Some(chain) = report.filter(|c| !c.is_empty()) {
        let chosen = chain.iter().rev().find(|r| r.frames.iter().any(|f| ours(f).is_some())).unwrap_or(&chain[0]);
        let message = chosen.message.replace(&*code_dir, "<code set>");
        let mut text = format!("pyflyte could not serialize {pkgs}: {}: {}", chosen.kind, message.trim());
        let user_frames: Vec<String> = chosen.frames.iter().filter_map(ours).collect();
        for frame in &user_frames {
            text.push_str(&format!("\n  at {frame}"));
        }
        if user_frames.is_empty() {
            // Raised by a library at import (a plugin, a package the code needs): where.
            if let Some(f) = chosen.frames.last() {
                text.push_str(&format!("\n  at {}:{} in {}", f.file, f.line, f.function));
            }
        }
        if !std::ptr::eq(chosen, &chain[0]) {
            text.push_str(&format!("\n  (raised as {}: {})", chain[0].kind, first_line(&chain[0].message)));
        }
        return text;
    }
    let tail: Vec<&str> = output.lines().rev().filter(|l| !l.trim().is_empty()).take(15).collect();
    let tail: Vec<String> = tail.into_iter().rev().map(|l| l.replace(&*code_dir, "<code set>")).collect();
    format!("pyflyte could not serialize {pkgs}:\n{}", tail.join("\n"))
}

/// The repository path of a file of the materialised code set (`None` for other files).
fn repository_path(req: &Request<'_>, file: &str) -> Option<String> {
    let rel = Path::new(file).strip_prefix(req.code_dir).ok()?;
    let rel = rel.to_str()?.as_bytes();
    let entry = req.set.entries.iter().find(|e| e.path == rel)?;
    Some(String::from_utf8_lossy(&entry.source).into_owned())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codeset::{CodeEntry, Mode, Origin};

    fn set() -> CodeSet {
        let entry = |path: &str, source: &str| CodeEntry {
            path: path.as_bytes().to_vec(),
            source: source.as_bytes().to_vec(),
            mode: Mode::File,
            oid: git2::Oid::zero(),
        };
        CodeSet {
            entries: vec![
                entry("etl/pipeline.py", "workflows/etl/etl/pipeline.py"),
                entry("flyte_common/text.py", "libs/flyte_common/text.py"),
            ],
            origin: Origin::Commit,
        }
    }

    fn frame(file: &str, line: u32, function: &str) -> Frame {
        Frame { file: file.into(), line, function: function.into() }
    }

    #[test]
    fn a_failure_names_the_users_frames_by_repository_path() {
        let set = set();
        let images = BTreeMap::new();
        let code = Path::new("/tmp/flyte-deploy-codeXYZ");
        let req = Request {
            python: Path::new("python"),
            code_dir: code,
            set: &set,
            packages: &["etl".into()],
            image: "img",
            images: &images,
        };
        // flytekit wraps the user's error: the inner one, with frames in the code set, is told.
        let chain = vec![
            Raised {
                kind: "flytekit.exceptions.user.FlyteAssertion".into(),
                message: "could not load module".into(),
                frames: vec![frame("/venv/flytekit/tools/module_loader.py", 20, "load")],
            },
            Raised {
                kind: "KeyError".into(),
                message: "'region'".into(),
                frames: vec![
                    frame("/venv/importlib/__init__.py", 126, "import_module"),
                    frame("/tmp/flyte-deploy-codeXYZ/etl/pipeline.py", 12, "<module>"),
                    frame("/tmp/flyte-deploy-codeXYZ/flyte_common/text.py", 3, "settings"),
                ],
            },
        ];
        let text = failure(&req, Some(&chain), "");
        assert_eq!(
            text,
            "pyflyte could not serialize etl: KeyError: 'region'\n  at workflows/etl/etl/pipeline.py:12 in <module>\n  \
             at libs/flyte_common/text.py:3 in settings\n  (raised as flytekit.exceptions.user.FlyteAssertion: could \
             not load module)"
        );
        // No report: pyflyte's last lines, the temporary folder named as the code set.
        let text = failure(&req, None, "Loading packages under /tmp/flyte-deploy-codeXYZ\nboom\n\n");
        assert_eq!(text, "pyflyte could not serialize etl:\nLoading packages under <code set>\nboom");
        // A library's own error at import: its frame, since none is the user's.
        let lib = vec![Raised {
            kind: "TypeError".into(),
            message: "bad".into(),
            frames: vec![frame("/venv/pyspark/a.py", 1, "<module>"), frame("/venv/pyspark/b.py", 9, "f")],
        }];
        assert_eq!(
            failure(&req, Some(&lib), ""),
            "pyflyte could not serialize etl: TypeError: bad\n  at /venv/pyspark/b.py:9 in f"
        );
    }
}
