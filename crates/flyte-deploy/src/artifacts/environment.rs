//! Serialization environments, built: uv (from PyPI, installed into the tool's own folder,
//! never onto PATH) makes one Python environment per dependency set and interpreter
//! ([`Environment`] → [`Envs::key`]), built whole in a temporary folder under a lock and
//! renamed into place, so a half-built environment is never used; reused by every workflow
//! with the same dependency set; pruned least-recently-used beyond a size budget. Runs
//! pip, uv and Python, and writes only below its own folders.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::settings;
use crate::workspace::requirements::Environment;

/// The uv release the tool installs (a wheel on PyPI that carries its binary).
pub const UV_VERSION: &str = "0.13.9";
/// Where environments live, below the repository root, unless `FLYTE_DEPLOY_ENVS` says.
pub const ENVS_DIR: &str = ".flyte/cache/envs";
/// The file in an environment that says what it holds; an environment without it is not one.
const MANIFEST: &str = "flyte-deploy-env.json";
/// Touched each time an environment is used: least-recently-used pruning reads its time.
const LAST_USED: &str = ".last-used";
/// The size budget of the environments folder when `FLYTE_DEPLOY_ENVS_MAX_GB` is not set.
const DEFAULT_BUDGET_GB: u64 = 20;

/// A built environment.
#[derive(Debug, Clone)]
pub struct Ready {
    /// Its folder.
    pub dir: PathBuf,
    /// Its Python.
    pub python: PathBuf,
    /// The flytekit installed in it.
    pub flytekit: String,
    /// True when this call built it.
    pub built: bool,
    /// A shared lock on it while this value lives (from [`Envs::ensure`]): no prune removes
    /// an environment that serializes.
    _in_use: Option<std::sync::Arc<std::fs::File>>,
}

/// The host interpreter environments are made from.
#[derive(Debug, Clone)]
pub struct Interpreter {
    pub path: PathBuf,
    /// Implementation, version and machine (`cpython 3.11.7 x86_64 linux`).
    pub id: String,
}

/// The environments of one repository (or of the folder `FLYTE_DEPLOY_ENVS` names).
pub struct Envs {
    dir: PathBuf,
    interpreter: OnceLock<std::result::Result<Interpreter, String>>,
    uv: OnceLock<std::result::Result<PathBuf, String>>,
}

impl Envs {
    /// The environments folder of the repository at `root`.
    pub fn new(root: &Path) -> Envs {
        let dir = settings::FLYTE_DEPLOY_ENVS.get_os().map(|d| root.join(d)).unwrap_or_else(|| root.join(ENVS_DIR));
        Envs::at(dir)
    }

    /// The environments kept in `dir`.
    pub fn at(dir: PathBuf) -> Envs {
        Envs { dir, interpreter: OnceLock::new(), uv: OnceLock::new() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The interpreter environments are made from (found once per run).
    pub fn interpreter(&self) -> Result<&Interpreter> {
        self.interpreter
            .get_or_init(|| find_interpreter().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The uv binary, installed into the tool's folder when missing (once per run).
    pub fn uv(&self) -> Result<&Path> {
        let found = self.uv.get_or_init(|| {
            let python = self.interpreter().map_err(|e| format!("{e:#}"))?.path.clone();
            install_uv(&python).map_err(|e| format!("{e:#}"))
        });
        found.as_deref().map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// The folder name of `env` built with this interpreter: 32 hex characters.
    pub fn key(&self, env: &Environment) -> Result<String> {
        let interpreter = self.interpreter()?;
        let mut h = Sha256::new();
        h.update(format!("flyte-deploy env v1\0{}\0{}\0uv {UV_VERSION}", env.hash, interpreter.id).as_bytes());
        Ok(hex::encode(h.finalize())[..32].to_string())
    }

    /// The environment `key` when it is built (no program is run).
    pub fn ready(&self, key: &str) -> Option<Ready> {
        let dir = self.dir.join(key);
        let manifest = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
        let manifest: serde_json::Value = serde_json::from_str(&manifest).ok()?;
        let flytekit = manifest["flytekit"].as_str()?.to_string();
        let python = dir.join("bin/python");
        python.exists().then_some(Ready { dir, python, flytekit, built: false, _in_use: None })
    }

    /// The environment of `env`, built when missing. A requirement that cannot be resolved
    /// or installed fails with uv's explanation and the dependency files named.
    ///
    /// Locks: building holds `.<key>.lock` exclusively; a returned [`Ready`] holds it shared
    /// (so [`Envs::prune`], which only takes it without waiting, never removes it in use).
    pub fn ensure(&self, env: &Environment) -> Result<Ready> {
        let key = self.key(env)?;
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        if let Some(cache) = self.dir.parent().filter(|p| p.ends_with(".flyte/cache")) {
            crate::caches::keep_out_of_git(cache);
        }
        let lock_file = self.dir.join(format!(".{key}.lock"));
        let mut built = false;
        loop {
            let file = open_lock(&lock_file)?;
            file.lock_shared().with_context(|| format!("locking {}", lock_file.display()))?;
            if let Some(ready) = self.ready(&key) {
                touch(&ready.dir);
                return Ok(Ready { built, _in_use: Some(std::sync::Arc::new(file)), ..ready });
            }
            drop(file);
            if built {
                bail!("the environment {key} was removed as soon as it was built; run again");
            }
            let file = lock(&lock_file)?;
            if self.ready(&key).is_none() {
                self.build_whole(env, &key)?;
                built = true;
            }
            drop(file);
        }
    }

    /// Builds the environment `key` beside its place and renames it there (the caller holds
    /// the exclusive lock). A folder in the way that is not a ready environment is removed.
    fn build_whole(&self, env: &Environment, key: &str) -> Result<()> {
        let temp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{key}-"))
            .tempdir_in(&self.dir)
            .with_context(|| format!("creating a folder in {}", self.dir.display()))?;
        self.build(env, temp.path())?;
        let dir = self.dir.join(key);
        if dir.exists() {
            let trash = temp.path().join("unusable");
            std::fs::rename(&dir, &trash)
                .with_context(|| format!("moving the unusable environment {} aside", dir.display()))?;
        }
        std::fs::rename(temp.path().join("venv"), &dir)
            .with_context(|| format!("moving the new environment to {}", dir.display()))?;
        touch(&dir);
        Ok(())
    }

    /// Builds `env` into `temp/venv`; returns the flytekit version installed.
    fn build(&self, env: &Environment, temp: &Path) -> Result<String> {
        let uv = self.uv()?.to_path_buf();
        let interpreter = self.interpreter()?;
        let src = temp.join("src");
        std::fs::create_dir_all(&src).with_context(|| format!("creating {}", src.display()))?;
        // At their repository paths, so `-r`/`-c` references inside them resolve as in git.
        for f in &env.files {
            let to = src.join(&f.path);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&to, &f.bytes).with_context(|| format!("writing {}", f.path))?;
        }
        let venv = temp.join("venv");
        let run = |args: Vec<OsString>, what: &str| -> Result<()> {
            let out = duct::cmd(&uv, args)
                .full_env(uv_env())
                .dir(&src)
                .stdout_capture()
                .stderr_capture()
                .unchecked()
                .run()
                .with_context(|| format!("running {}", uv.display()))?;
            if out.status.success() {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&out.stderr)
                .replace(&*venv.to_string_lossy(), "<new environment>")
                .replace(&*src.to_string_lossy(), ".");
            bail!("{what} for {} failed:\n{}", env.describe(), text.trim_end())
        };
        let mut args: Vec<OsString> = vec!["venv".into(), "--quiet".into(), "--relocatable".into(), "--python".into()];
        args.push(interpreter.path.clone().into());
        args.push(venv.clone().into());
        run(args, "creating the environment")?;

        let mut install: Vec<OsString> = vec!["pip".into(), "install".into(), "--quiet".into(), "--python".into()];
        install.push(venv.join("bin/python").into());
        let has = |name: &str| env.files.iter().any(|f| f.name == name);
        for f in env.files.iter().filter(|f| f.installed) {
            match f.name.as_str() {
                "uv.lock" => {}
                "pyproject.toml" if has("uv.lock") => {
                    let export = src.join(".uv-export.txt");
                    let project = src.join(f.path.rsplit_once('/').map_or("", |(d, _)| d));
                    let mut args: Vec<OsString> =
                        ["export", "--quiet", "--frozen", "--no-hashes", "--no-emit-project", "--no-dev", "--project"]
                            .map(OsString::from)
                            .into();
                    args.extend([project.into(), "-o".into(), export.clone().into()]);
                    run(args, "reading uv.lock")?;
                    install.extend(["-r".into(), export.into()]);
                }
                _ => install.extend(["-r".into(), f.path.clone().into()]),
            }
        }
        install.extend(env.added_requirement().map(OsString::from));
        run(install, "installing the dependencies").map_err(|e| {
            let hint = if env.pinned {
                String::new()
            } else {
                format!(
                    "\n(flytekit=={} was added because no dependency file pins flytekit: pin the version the \
                     others need, or change [python] flytekit in deploy.toml)",
                    env.flytekit
                )
            };
            anyhow::anyhow!("{e:#}{hint}")
        })?;

        let python = venv.join("bin/python");
        let out = duct::cmd(&python, ["-c", "import importlib.metadata as m; print(m.version('flytekit'))"])
            .full_env(uv_env())
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("running {}", python.display()))?;
        let flytekit = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || flytekit.is_empty() {
            bail!("flytekit is not installed in the environment of {}", env.describe());
        }
        if !same_version(&flytekit, &env.flytekit) {
            bail!(
                "the environment of {} got flytekit {flytekit} where flytekit=={} was asked for",
                env.describe(),
                env.flytekit
            );
        }
        let manifest = serde_json::json!({
            "flytekit": flytekit,
            "interpreter": interpreter.id,
            "uv": UV_VERSION,
            "environment": env.hash,
            "files": env.files.iter().map(|f| &f.path).collect::<Vec<_>>(),
        });
        std::fs::write(venv.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)
            .with_context(|| format!("writing {}", venv.join(MANIFEST).display()))?;
        Ok(flytekit)
    }

    /// Removes least-recently-used environments (never those in `keep`) until the folder
    /// is within `budget` bytes, and folders that killed runs left half-built over an hour
    /// ago. Returns the removed keys.
    pub fn prune(&self, keep: &HashSet<String>, budget: u64) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut envs: Vec<(SystemTime, u64, String)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if let Some(rest) = name.strip_prefix(".tmp-") {
                // Left by a killed build: nobody holds its key's lock any more.
                let key = rest.split('-').next().unwrap_or_default();
                if let Some(_free) = try_lock(&self.dir.join(format!(".{key}.lock"))) {
                    std::fs::remove_dir_all(&path).ok();
                }
                continue;
            }
            if name.starts_with('.') || !path.join(MANIFEST).is_file() {
                continue;
            }
            let used = std::fs::metadata(path.join(LAST_USED))
                .or_else(|_| std::fs::metadata(path.join(MANIFEST)))
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            envs.push((used, size(&path), name));
        }
        let mut total: u64 = envs.iter().map(|e| e.1).sum();
        envs.sort();
        let mut removed = Vec::new();
        for (_, bytes, name) in envs {
            if total <= budget {
                break;
            }
            if keep.contains(&name) {
                continue;
            }
            let Some(_unused) = try_lock(&self.dir.join(format!(".{name}.lock"))) else { continue };
            let trash = self.dir.join(format!(".tmp-{name}-pruned"));
            if std::fs::rename(self.dir.join(&name), &trash).is_ok() {
                std::fs::remove_dir_all(&trash).ok();
                total = total.saturating_sub(bytes);
                removed.push(name);
            }
        }
        removed
    }
}

/// The Python of the environment of workflows without dependency files (flytekit
/// `flytekit` alone) in the environments of `root`, built when missing.
pub fn default_python(root: &Path, flytekit: &str) -> Result<PathBuf> {
    Ok(Envs::new(root).ensure(&Environment::flytekit_only(flytekit))?.python)
}

/// The size budget of the environments folder in bytes: `FLYTE_DEPLOY_ENVS_MAX_GB`
/// (decimal gigabytes), default 20.
pub fn budget() -> u64 {
    let gb = settings::FLYTE_DEPLOY_ENVS_MAX_GB
        .get()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| *v >= 0.0)
        .unwrap_or(DEFAULT_BUDGET_GB as f64);
    (gb * 1e9) as u64
}

/// The interpreter: `FLYTE_DEPLOY_PYTHON`, else `python3.11`, else `python3` on PATH.
fn find_interpreter() -> Result<Interpreter> {
    let candidates: Vec<PathBuf> = match settings::FLYTE_DEPLOY_PYTHON.get_os() {
        Some(p) => vec![PathBuf::from(p)],
        None => ["python3.11", "python3"].iter().filter_map(|p| which(p)).collect(),
    };
    let script = "import sys, platform; print(sys.implementation.name, '.'.join(map(str, sys.version_info[:3])), \
                  platform.machine(), sys.platform)";
    for path in &candidates {
        let out = duct::cmd(path, ["-c", script]).stdout_capture().stderr_null().unchecked().run();
        if let Some(out) = out.ok().filter(|o| o.status.success()) {
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            return Ok(Interpreter { path: path.clone(), id });
        }
    }
    match candidates.first() {
        Some(p) if settings::FLYTE_DEPLOY_PYTHON.get_os().is_some() => Err(crate::error::user(
            format!("FLYTE_DEPLOY_PYTHON={} does not run", p.display()),
            "name a Python 3 interpreter, or unset it to use python3 from PATH",
        )),
        _ => Err(crate::error::user(
            "no Python 3 interpreter on PATH (python3.11 or python3): serialization environments are made from one",
            "install Python 3.11 (Debian: apt-get install python3 python3-pip), or set FLYTE_DEPLOY_PYTHON",
        )),
    }
}

/// The tool's own folder: `FLYTE_DEPLOY_HOME`, else `$XDG_CACHE_HOME/flyte-deploy`, else
/// `~/.cache/flyte-deploy`.
pub fn tool_home() -> PathBuf {
    if let Some(home) = settings::FLYTE_DEPLOY_HOME.get_os() {
        return PathBuf::from(home);
    }
    let cache = settings::XDG_CACHE_HOME
        .get_os()
        .map(PathBuf::from)
        .or_else(|| settings::HOME.get_os().map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("flyte-deploy")
}

/// Installs uv [`UV_VERSION`] with pip into the tool's folder (whole, under a lock).
fn install_uv(python: &Path) -> Result<PathBuf> {
    let home = tool_home();
    let dir = home.join(format!("uv-{UV_VERSION}"));
    let uv = dir.join("bin/uv");
    if uv.is_file() {
        return Ok(uv);
    }
    std::fs::create_dir_all(&home).with_context(|| format!("creating {}", home.display()))?;
    let _lock = lock(&home.join(format!(".uv-{UV_VERSION}.lock")))?;
    if uv.is_file() {
        return Ok(uv);
    }
    crate::output::status(format_args!("installing uv {UV_VERSION} from PyPI into {} (once)", dir.display()));
    let temp = tempfile::Builder::new().prefix(".tmp-uv-").tempdir_in(&home).context("creating a folder for uv")?;
    let spec = format!("uv=={UV_VERSION}");
    let args: Vec<OsString> = vec![
        "-m".into(),
        "pip".into(),
        "install".into(),
        "--quiet".into(),
        "--disable-pip-version-check".into(),
        "--no-deps".into(),
        "--target".into(),
        temp.path().into(),
        spec.clone().into(),
    ];
    let out = duct::cmd(python, args)
        .full_env(uv_env())
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running {} -m pip", python.display()))?;
    if !out.status.success() || !temp.path().join("bin/uv").is_file() {
        bail!(
            "installing {spec} with {} -m pip failed (pip is needed once, to fetch uv from PyPI: \
             Debian: apt-get install python3-pip):\n{}",
            python.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    std::fs::rename(temp.path(), &dir).with_context(|| format!("moving uv to {}", dir.display()))?;
    Ok(uv)
}

/// The environment uv and pip run with: the machine's basics, proxies, certificates, where
/// packages come from and uv's cache; never Flyte credentials, tokens or variables marked
/// secret, and none of uv's settings that change what is resolved (`UV_CONSTRAINT`,
/// `UV_PRERELEASE`, `UV_EXCLUDE_NEWER`, …), which would make one environment key stand for
/// different environments on different machines.
pub fn uv_env() -> Vec<(OsString, OsString)> {
    scrubbed(|name| {
        is_index_setting(name)
            || matches!(name, "HOME" | "XDG_CACHE_HOME" | "SSL_CERT_FILE" | "SSL_CERT_DIR" | "REQUESTS_CA_BUNDLE")
            || is_proxy(name)
    })
    .into_iter()
    .chain([("UV_PYTHON_DOWNLOADS".into(), "never".into()), ("UV_NO_PROGRESS".into(), "1".into())])
    .collect()
}

/// The environment workflow code runs with while it is serialized: the machine's basics
/// and flytekit's logging settings (`FLYTE_SDK_LOGGING_*`, `FLYTE_SDK_RICH_TRACEBACKS`);
/// never tokens, passwords, keys, the tool's own settings, variables named in
/// `FLYTE_DEPLOY_SECRET_VARS`, nor other `FLYTE_*` settings (some change the specs, e.g.
/// `FLYTE_USE_OLD_DC_FORMAT`, which the version would not show). `HOME` is set by the caller
/// (a temporary folder), so no user configuration is read.
pub fn workflow_env() -> Vec<(OsString, OsString)> {
    scrubbed(|name| {
        ((name.starts_with("FLYTE_SDK_LOGGING") || name == "FLYTE_SDK_RICH_TRACEBACKS") && !looks_secret(name))
            || matches!(name, "SSL_CERT_FILE" | "SSL_CERT_DIR" | "REQUESTS_CA_BUNDLE")
    })
}

/// Where packages come from and how they are fetched: indexes (and their credentials, which
/// uv needs), links, cache, TLS, timeouts; pip's index settings (pip fetches uv).
fn is_index_setting(name: &str) -> bool {
    const UV: &[&str] = &[
        "UV_INDEX",
        "UV_DEFAULT_INDEX",
        "UV_INDEX_URL",
        "UV_EXTRA_INDEX_URL",
        "UV_FIND_LINKS",
        "UV_INDEX_STRATEGY",
        "UV_KEYRING_PROVIDER",
        "UV_CACHE_DIR",
        "UV_NATIVE_TLS",
        "UV_INSECURE_HOST",
        "UV_HTTP_TIMEOUT",
        "UV_CONCURRENT_DOWNLOADS",
        "UV_LINK_MODE",
        "UV_OFFLINE",
    ];
    const PIP: &[&str] = &["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_CERT"];
    UV.iter().any(|u| name == *u || name.strip_prefix(u).is_some_and(|rest| rest.starts_with('_')))
        || PIP.contains(&name)
}

/// The basics every program gets (PATH, locale, time zone, temp folder) and what `extra`
/// lets through, less what looks secret or is marked so.
fn scrubbed(extra: impl Fn(&str) -> bool) -> Vec<(OsString, OsString)> {
    let marked: HashSet<String> = settings::FLYTE_DEPLOY_SECRET_VARS
        .get()
        .unwrap_or_default()
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    settings::all_vars()
        .into_iter()
        .filter(|(name, _)| {
            let Some(name) = name.to_str() else { return false };
            let basic = matches!(name, "PATH" | "LANG" | "LANGUAGE" | "TZ" | "TMPDIR") || name.starts_with("LC_");
            (basic || extra(name)) && !marked.contains(name)
        })
        .collect()
}

fn is_proxy(name: &str) -> bool {
    matches!(name.to_ascii_lowercase().as_str(), "http_proxy" | "https_proxy" | "no_proxy" | "all_proxy")
}

fn looks_secret(name: &str) -> bool {
    ["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "KEY", "AUTH"].iter().any(|w| name.contains(w))
}

/// True when two version strings name one release as pip compares them: case, a leading
/// `v` and trailing `.0` release parts do not count (`1.16` is `1.16.0`).
fn same_version(a: &str, b: &str) -> bool {
    fn canonical(v: &str) -> String {
        let v = v.trim().to_ascii_lowercase();
        let v = v.strip_prefix('v').unwrap_or(&v).to_string();
        let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
        let (release, rest) = v.split_at(split);
        let mut parts: Vec<&str> = release.split('.').collect();
        while parts.len() > 1 && parts.last().is_some_and(|p| p.chars().all(|c| c == '0')) {
            parts.pop();
        }
        let parts: Vec<String> = parts.iter().map(|p| p.trim_start_matches('0').to_string()).collect();
        let parts: Vec<&str> = parts.iter().map(|p| if p.is_empty() { "0" } else { p.as_str() }).collect();
        format!("{}{rest}", parts.join("."))
    }
    canonical(a) == canonical(b)
}

/// The lock file `path` (created), not locked yet.
fn open_lock(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock {}", path.display()))
}

/// An exclusive lock on `path` (created), held until the file is dropped.
fn lock(path: &Path) -> Result<std::fs::File> {
    let file = open_lock(path)?;
    file.lock().with_context(|| format!("locking {}", path.display()))?;
    Ok(file)
}

/// An exclusive lock on `path` when nobody holds it, else `None`.
fn try_lock(path: &Path) -> Option<std::fs::File> {
    let file = open_lock(path).ok()?;
    file.try_lock().ok()?;
    Some(file)
}

fn touch(dir: &Path) {
    std::fs::write(dir.join(LAST_USED), b"").ok();
}

/// The bytes the files below `path` hold (links not followed), each file's size shared out
/// among its hard links: uv links files from its wheel cache, so an environment costs little
/// more than the files only it has.
fn size(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len() / meta.nlink().max(1);
    }
    std::fs::read_dir(path).map(|d| d.flatten().map(|e| size(&e.path())).sum()).unwrap_or(0)
}

/// The path of a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    settings::PATH.get_os()?.to_str()?.split(':').map(|dir| Path::new(dir).join(program)).find(|p| p.is_file())
}

/// Makes the child `cmd` spawns die when the thread that spawns it ends (Linux's parent-death
/// signal): a deploy killed with SIGKILL takes the Python it started with it, instead of
/// leaving it running in its own process group. Spawn from a thread that outlives the child
/// (the serializers are started and used by one worker thread).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl(2) and getppid(2) are async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the signal was asked for.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("the parent process ended"));
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn secrets_never_reach_workflow_code() {
        for name in ["FLYTE_TOKEN", "FLYTE_CLIENT_SECRET", "FLYTE_CREDENTIALS_CLIENT_SECRET", "FLYTE_API_KEY"] {
            assert!(looks_secret(name), "{name}");
        }
        assert!(!looks_secret("FLYTE_SDK_LOGGING_LEVEL"));
        assert!(is_proxy("HTTPS_PROXY") && is_proxy("no_proxy") && !is_proxy("PROXY_PASSWORD"));
        assert!(is_index_setting("UV_INDEX_URL") && is_index_setting("UV_INDEX_INTERNAL_PASSWORD"));
        assert!(!is_index_setting("UV_CONSTRAINT") && !is_index_setting("UV_EXCLUDE_NEWER"));
    }

    #[test]
    fn versions_compare_as_pip_does() {
        assert!(same_version("1.16.0", "1.16"));
        assert!(same_version("1.16.31", "1.16.31"));
        assert!(same_version("1.7.1B1", "1.7.1b1"));
        assert!(!same_version("1.16.1", "1.16"));
        assert!(!same_version("1.16.31", "1.16.3"));
    }

    /// An environment folder of `bytes` bytes last used `age` seconds ago.
    fn fake(dir: &Path, key: &str, bytes: usize, age: u64) {
        let env = dir.join(key);
        std::fs::create_dir_all(env.join("bin")).unwrap();
        std::fs::write(env.join(MANIFEST), r#"{"flytekit": "1.16.31"}"#).unwrap();
        std::fs::write(env.join("bin/python"), vec![0u8; bytes]).unwrap();
        let used = std::fs::File::create(env.join(LAST_USED)).unwrap();
        used.set_modified(SystemTime::now() - Duration::from_secs(age)).unwrap();
    }

    #[test]
    fn pruning_removes_the_least_recently_used_beyond_the_budget_and_spares_what_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let envs = Envs::at(dir.path().to_path_buf());
        fake(dir.path(), "oldest", 4000, 300);
        fake(dir.path(), "old", 4000, 200);
        fake(dir.path(), "new", 4000, 100);
        fake(dir.path(), "newest", 4000, 0);
        // A half-built folder of a killed run, and one still being built (its lock held).
        let stale = dir.path().join(".tmp-abc-1");
        std::fs::create_dir(&stale).unwrap();
        std::fs::create_dir(dir.path().join(".tmp-def-2")).unwrap();
        let _building = lock(&dir.path().join(".def.lock")).unwrap();
        // Another deploy serializes with "old" (a shared lock): it is not removed either.
        let in_use = open_lock(&dir.path().join(".old.lock")).unwrap();
        in_use.lock_shared().unwrap();
        let keep: HashSet<String> = ["oldest".to_string()].into();
        let removed = envs.prune(&keep, 10_000);
        assert_eq!(removed, ["new", "newest"], "within 10 kB once two are gone; those in use stay");
        assert!(envs.ready("oldest").is_some() && envs.ready("old").is_some());
        assert!(envs.ready("new").is_none());
        assert!(!stale.exists() && dir.path().join(".tmp-def-2").exists());
        assert!(envs.prune(&HashSet::new(), 1_000_000).is_empty(), "nothing to do within the budget");
    }

    #[test]
    fn a_child_dies_with_the_thread_that_started_it() {
        let child = std::thread::spawn(|| {
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg("60");
            die_with_parent(&mut cmd);
            cmd.spawn().unwrap()
        })
        .join()
        .unwrap();
        let mut child = child;
        let started = std::time::Instant::now();
        let status = child.wait().unwrap();
        assert!(started.elapsed() < Duration::from_secs(30), "the child outlived its thread");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}
