//! Serialization: the task, workflow and launch-plan specs `pyflyte package` writes for a
//! workflow, in the workflow's own environment, on its materialised code set; by the
//! environment's long-lived serializer ([`crate::artifacts::serializer`]) where its flytekit is one it
//! knows, else by one pyflyte process per workflow. A cache keyed by everything that reaches
//! the output (code fingerprint, image, packages, environment, named images), so an unchanged
//! workflow never starts Python. [`serialize_all`] schedules a run: environments built while
//! others serialize, one serializer per environment, up to `--jobs` at once. Runs programs
//! (through [`crate::artifacts::environment`] the builds too) and writes only into its cache.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::artifacts::codeset::CodeSet;
use crate::artifacts::environment::{self, Envs, Ready};
use crate::artifacts::serializer::{Serializer, Served};
use crate::settings;
use crate::workspace::requirements::Environment;

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
    /// The cache folder of the repository at `root`, for a command working on `commit`. Also
    /// sweeps what killed runs left behind (see [`sweep_litter`]).
    pub fn of(repo: &git2::Repository, root: &Path, commit: &git2::Commit<'_>) -> Result<CacheDir> {
        let committed = crate::caches::committed(repo, commit);
        if committed.is_none() {
            crate::caches::heal(root);
            let path = root.join(CACHE_DIR);
            sweep_litter(&path, &std::env::temp_dir());
            return Ok(CacheDir { path, committed, _temp: None });
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

/// The cached package for `key`, if any: only an entry whose bytes match the digest written
/// with it is served. A truncated or edited entry (or one without its digest: a run killed
/// between the two writes) is a miss, and the serialization that follows replaces it.
pub fn cached(cache_dir: &Path, key: &str) -> Option<Serialized> {
    let path = cache_dir.join(format!("{key}.tgz"));
    let bytes = std::fs::read(&path).ok()?;
    let digest = std::fs::read_to_string(cache_dir.join(format!("{key}.sha256"))).ok()?;
    (digest.trim() == hex::encode(Sha256::digest(&bytes))).then_some(Serialized { path, cached: true })
}

/// Puts the package written at `out` into the cache as `key`: the package renamed into place,
/// then its digest written whole beside it (what [`cached`] checks).
fn store(cache_dir: &Path, key: &str, out: &Path) -> Result<PathBuf> {
    let bytes = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
    let path = cache_dir.join(format!("{key}.tgz"));
    std::fs::rename(out, &path).with_context(|| format!("storing {}", path.display()))?;
    let digest = cache_dir.join(format!("{key}.sha256"));
    crate::caches::write_whole(&digest, &[hex::encode(Sha256::digest(&bytes)).as_bytes()])
        .with_context(|| format!("writing {}", digest.display()))?;
    Ok(path)
}

/// How old a temporary folder of a run must be before another run removes it: older than
/// any run's serialization (a workflow's timeout is 10 minutes by default).
const LITTER_AGE: Duration = Duration::from_secs(6 * 3600);

/// Removes what killed runs left: their temporary folders in the serialization cache
/// (`.tmp*`) and their materialised code sets (`flyte-deploy-code*` in `temp`), when older than
/// [`LITTER_AGE`] (a live run's are younger). Best effort: what cannot be removed stays.
pub fn sweep_litter(cache_dir: &Path, temp: &Path) {
    let old = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > LITTER_AGE)
    };
    for (dir, prefix) in [(cache_dir, ".tmp"), (temp, "flyte-deploy-code")] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) && entry.path().is_dir() && old(&entry) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
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

/// How a workflow is serialized.
pub enum Via<'s> {
    /// One `pyflyte package` process for this workflow alone.
    Pyflyte,
    /// The environment's long-lived serializer ([`Serializer`]); a flytekit it does not
    /// know falls back to [`Via::Pyflyte`], said once per run.
    Serializer(&'s mut Serializer),
}

/// Serializes the packages of a materialised code set with pyflyte in the workflow's own
/// environment (one `pyflyte package` process), unless the cache has them. See
/// [`serialize_via`].
pub fn serialize(req: &Request<'_>, cache_dir: &Path, key: &str) -> Result<Serialized> {
    serialize_via(Via::Pyflyte, req, cache_dir, key, timeout()?)
}

/// Serializes the packages of a materialised code set in the workflow's own environment,
/// `via` the long-lived serializer or one pyflyte process, unless the cache has them. The
/// cache entry appears whole or not at all (written aside, then renamed). Workflow code runs
/// with a scrubbed environment ([`environment::workflow_env`]) and a temporary `HOME`;
/// ImageSpec images are not built. A workflow taking longer than `timeout` fails, and its
/// processes are killed.
pub fn serialize_via(
    via: Via<'_>,
    req: &Request<'_>,
    cache_dir: &Path,
    key: &str,
    timeout: Duration,
) -> Result<Serialized> {
    if let Some(hit) = cached(cache_dir, key) {
        return Ok(hit);
    }
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating {}", cache_dir.display()))?;
    crate::caches::keep_out_of_git(cache_dir.parent().unwrap_or(cache_dir));
    let out_dir = tempfile::tempdir_in(cache_dir).context("creating a temporary folder for pyflyte's output")?;
    let out = out_dir.path().join("package.tgz");
    match via {
        Via::Serializer(serializer) => match serializer.serve(req, &out)? {
            Served::Written => {}
            Served::Unsupported { flytekit } => {
                note_unsupported(&flytekit);
                pyflyte(req, &out, timeout)?;
            }
        },
        Via::Pyflyte => pyflyte(req, &out, timeout)?,
    }
    let path = store(cache_dir, key, &out)?;
    Ok(Serialized { path, cached: false })
}

/// Says once per run, for each flytekit version, that its workflows are serialized one
/// pyflyte process each.
pub fn note_unsupported(flytekit: &str) {
    static NOTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
    if noted.insert(flytekit.to_string()) {
        crate::output::note(format_args!(
            "flytekit {flytekit} is not a version the long-lived serializer knows ({}x): the workflows of \
             its environments are serialized with one `pyflyte package` process each",
            crate::artifacts::serializer::KNOWN_FLYTEKIT.join("x, ")
        ));
    }
}

/// The per-workflow serialization timeout: `FLYTE_DEPLOY_SERIALIZE_TIMEOUT` (seconds, or a
/// duration such as `10m`), default [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Result<Duration> {
    let var = settings::FLYTE_DEPLOY_SERIALIZE_TIMEOUT;
    let Some(value) = var.get() else { return Ok(DEFAULT_TIMEOUT) };
    parse_timeout(&value).ok_or_else(|| {
        crate::error::user(
            format!("{var}={value}: not a duration"),
            "give seconds (600) or a duration with its unit (10m, 90s), more than zero",
        )
    })
}

/// The per-workflow timeout when `FLYTE_DEPLOY_SERIALIZE_TIMEOUT` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Seconds, or a duration with its unit (`10m`), more than zero.
pub(crate) fn parse_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let duration = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => Duration::try_from_secs_f64(secs).ok()?,
        Ok(_) => return None,
        Err(_) => humantime::parse_duration(value).ok()?,
    };
    (!duration.is_zero()).then_some(duration)
}

/// Runs one `pyflyte package` of the request (through the driver) writing `out`; an error
/// names the user's exception and frames. Stopped, with its process group, after `timeout`.
fn pyflyte(req: &Request<'_>, out: &Path, timeout: Duration) -> Result<()> {
    let (scratch, driver) = scratch_with_driver("flyte-deploy-home")?;
    let report = scratch.path().join("error.json");
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
        let handle = duct::cmd(req.python, args)
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
            .before_spawn(|cmd| {
                cmd.process_group(0);
                environment::die_with_parent(cmd);
                Ok(())
            })
            .start()
            .with_context(|| format!("running {}", req.python.display()))?;
        let started = Instant::now();
        loop {
            if let Some(output) = handle.try_wait().with_context(|| format!("running {}", req.python.display()))? {
                return Ok(output.clone());
            }
            if started.elapsed() > timeout {
                for pid in handle.pids() {
                    // SAFETY: kill(2) on the process group pyflyte leads; no memory is touched.
                    unsafe {
                        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
                    }
                }
                let _ = handle.wait();
                bail!(
                    "pyflyte could not serialize {}: it took longer than {} (the per-workflow timeout, {}); \
                     pyflyte was stopped with its child processes",
                    req.packages.join(", "),
                    humantime::format_duration(timeout),
                    settings::FLYTE_DEPLOY_SERIALIZE_TIMEOUT
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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
    Ok(())
}

/// One workflow for [`serialize_all`].
pub struct Work<'a> {
    /// Its name, for progress.
    pub name: &'a str,
    /// Its serialization environment.
    pub env: &'a Environment,
    /// Its committed code set (materialised into a temporary folder when serialized).
    pub set: &'a CodeSet,
    pub packages: &'a [String],
    /// The default image (`--image IMG`).
    pub image: &'a str,
    /// Named images (`--image NAME=URI`).
    pub images: &'a BTreeMap<String, String>,
    /// Its cache key ([`cache_key`]).
    pub key: &'a str,
}

/// How [`serialize_all`] runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workers: environments built and serializers run at once.
    pub jobs: usize,
    /// The per-workflow timeout.
    pub timeout: Duration,
    /// The long-lived serializer where the flytekit is one it knows; false: one pyflyte
    /// process per workflow everywhere (the benchmark's baseline).
    pub long_lived: bool,
}

impl Options {
    /// `jobs` workers (default: the core count), the timeout of the settings, the
    /// long-lived serializer.
    pub fn new(jobs: Option<usize>) -> Result<Options> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Options { jobs: jobs.unwrap_or(cores).max(1), timeout: timeout()?, long_lived: true })
    }
}

/// The state of one environment while a run serializes.
enum EnvState {
    Missing,
    Building,
    /// Built, and held (shared) so that no prune removes it while it serializes.
    Ready {
        ready: Ready,
        lane: Lane,
    },
    Failed(String),
}

/// Who may serialize the workflows of a built environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Its serializer is not running: the next worker takes it.
    Free,
    /// A worker runs its serializer, and serializes its workflows one after another.
    Busy,
    /// One pyflyte per workflow (a flytekit the serializer does not know): any worker.
    Shared,
}

/// What [`serialize_all`] reports of a workflow as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// It started a step (building its environment, serializing, …).
    Step(&'a str),
    /// It is done: `own` is the time spent serializing it (not waiting for a worker or an
    /// environment); `ok` whether it succeeded.
    Done { own: Duration, ok: bool },
}

/// Serializes `work` (skipping what the cache has) with `opts.jobs` workers: a worker takes
/// an environment whose serializer is free and serializes its workflows one after another
/// through one long-lived process (a fresh one after a crash or a hang), else builds a
/// missing environment, else waits for one being built. An environment that cannot be built
/// fails its workflows only; so does a workflow that cannot be serialized. Returns one
/// result per item of `work`, by index.
pub fn serialize_all(
    root: &Path,
    envs: &Envs,
    work: &[Work<'_>],
    cache_dir: &Path,
    opts: &Options,
    progress: &(dyn Fn(&str, Event<'_>) + Sync),
) -> Vec<(usize, Result<()>)> {
    struct Board {
        queue: Vec<usize>,
        envs: HashMap<String, EnvState>,
    }
    let board = Mutex::new(Board {
        queue: (0..work.len()).collect(),
        envs: work.iter().map(|w| (w.env.hash.clone(), EnvState::Missing)).collect(),
    });
    let changed = Condvar::new();
    let results = Mutex::new(Vec::new());
    let done = |i: usize, result: Result<()>, own: Duration| {
        progress(work[i].name, Event::Done { own, ok: result.is_ok() });
        results.lock().unwrap_or_else(|e| e.into_inner()).push((i, result));
    };
    let one = |via: Via<'_>, repo: &Result<git2::Repository, String>, w: &Work<'_>, python: &Path| -> Result<()> {
        let repo = repo.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        // A panic must fail this workflow only, not leave the others waiting for its lane.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serialize_work(via, repo, w, python, cache_dir, opts.timeout)
        }))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("serializing {} panicked", w.name)))
    };
    let worker = || {
        let repo = git2::Repository::open(root).map_err(|e| format!("opening the repository: {e}"));
        let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if b.queue.is_empty() {
                return;
            }
            let takeable = |b: &Board, i: usize| match b.envs.get(&work[i].env.hash) {
                Some(EnvState::Ready { lane, .. }) => *lane != Lane::Busy,
                Some(EnvState::Failed(_)) => true,
                _ => false,
            };
            if let Some(pos) = b.queue.iter().position(|&i| takeable(&b, i)) {
                let i = b.queue.remove(pos);
                let hash = &work[i].env.hash;
                let (python, lane) = match b.envs.get_mut(hash) {
                    Some(EnvState::Failed(e)) => {
                        let e = anyhow::anyhow!("{e}");
                        drop(b);
                        done(i, Err(e), Duration::ZERO);
                        b = board.lock().unwrap_or_else(|e| e.into_inner());
                        changed.notify_all();
                        continue;
                    }
                    Some(EnvState::Ready { ready, lane }) => {
                        let taken = *lane;
                        if taken == Lane::Free {
                            *lane = Lane::Busy;
                        }
                        (ready.python.clone(), taken)
                    }
                    _ => unreachable!("only settled environments are taken"),
                };
                drop(b);
                if lane == Lane::Shared {
                    progress(work[i].name, Event::Step("serializing with pyflyte"));
                    let started = Instant::now();
                    let result = one(Via::Pyflyte, &repo, &work[i], &python);
                    done(i, result, started.elapsed());
                    b = board.lock().unwrap_or_else(|e| e.into_inner());
                    changed.notify_all();
                    continue;
                }
                // This worker runs the environment's serializer until its queue is empty.
                let mut serializer = Serializer::new(&python, opts.timeout);
                let mut next = Some(i);
                while let Some(i) = next {
                    if !serializer.running() && serializer.unsupported().is_none() {
                        progress(work[i].name, Event::Step("starting the serializer of its environment"));
                    }
                    progress(work[i].name, Event::Step("serializing"));
                    let started = Instant::now();
                    let mut result = one(Via::Serializer(&mut serializer), &repo, &work[i], &python);
                    // The process ended under this workflow (a crash at exit of a native
                    // library, `os._exit`): it gets one try alone, as `pyflyte package`.
                    if let Err(e) = &result {
                        if serializer.take_ended() {
                            progress(
                                work[i].name,
                                Event::Step("serializing alone with pyflyte (the serializer ended)"),
                            );
                            result = one(Via::Pyflyte, &repo, &work[i], &python).map_err(|alone| {
                                anyhow::anyhow!(
                                    "{e:#}\n(alone, with pyflyte package: {})",
                                    first_line(&format!("{alone:#}"))
                                )
                            });
                        }
                    }
                    done(i, result, started.elapsed());
                    let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
                    // A process that said its flytekit is not one it knows: any worker now.
                    let unsupported = serializer.unsupported().is_some();
                    next = if unsupported {
                        None
                    } else {
                        b.queue.iter().position(|&j| work[j].env.hash == *hash).map(|p| b.queue.remove(p))
                    };
                    if let Some(EnvState::Ready { lane, .. }) = b.envs.get_mut(hash) {
                        if unsupported {
                            *lane = Lane::Shared;
                        } else if next.is_none() {
                            *lane = Lane::Free;
                        }
                    }
                    // Workers waiting for this lane, or for the queue to empty, look again.
                    changed.notify_all();
                }
                drop(serializer);
                b = board.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let missing =
                b.queue.iter().map(|&i| &work[i]).find(|w| matches!(b.envs.get(&w.env.hash), Some(EnvState::Missing)));
            if let Some(w) = missing {
                b.envs.insert(w.env.hash.clone(), EnvState::Building);
                drop(b);
                if !matches!(envs.key(w.env).map(|k| envs.ready(&k)), Ok(Some(_))) {
                    progress(w.name, Event::Step(&format!("building its environment ({})", w.env.describe())));
                }
                // A panic must not leave the others waiting for an environment forever.
                let ready = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| envs.ensure(w.env)));
                let state = match ready {
                    Ok(Ok(ready)) => {
                        let lane = if opts.long_lived && crate::artifacts::serializer::knows(&ready.flytekit) {
                            Lane::Free
                        } else {
                            if opts.long_lived {
                                note_unsupported(&ready.flytekit);
                            }
                            Lane::Shared
                        };
                        EnvState::Ready { ready, lane }
                    }
                    Ok(Err(e)) => EnvState::Failed(format!("{e:#}")),
                    Err(_) => EnvState::Failed("building the environment panicked".into()),
                };
                b = board.lock().unwrap_or_else(|e| e.into_inner());
                b.envs.insert(w.env.hash.clone(), state);
                changed.notify_all();
                continue;
            }
            b = changed.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..opts.jobs {
            scope.spawn(worker);
        }
    });
    results.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Materialises a workflow's committed code set into a temporary folder and serializes it
/// `via` the serializer or pyflyte (filling the cache).
fn serialize_work(
    via: Via<'_>,
    repo: &git2::Repository,
    w: &Work<'_>,
    python: &Path,
    cache_dir: &Path,
    timeout: Duration,
) -> Result<()> {
    if cached(cache_dir, w.key).is_some() {
        return Ok(());
    }
    let code =
        tempfile::Builder::new().prefix("flyte-deploy-code").tempdir().context("creating a folder for the code set")?;
    w.set.materialise(repo, code.path())?;
    let request =
        Request { python, code_dir: code.path(), set: w.set, packages: w.packages, image: w.image, images: w.images };
    serialize_via(via, &request, cache_dir, w.key, timeout)?;
    Ok(())
}

/// The driver pyflyte runs through (see the file's docstring).
const DRIVER: &str = include_str!("pyflyte_driver.py");

/// A temporary folder (the HOME workflow code gets) holding the driver pyflyte runs
/// through; returns it and the driver's path.
pub(crate) fn scratch_with_driver(prefix: &str) -> Result<(tempfile::TempDir, PathBuf)> {
    let scratch = tempfile::Builder::new().prefix(prefix).tempdir().context("creating a temporary home for pyflyte")?;
    let driver = scratch.path().join("flyte_deploy_pyflyte.py");
    std::fs::write(&driver, DRIVER).with_context(|| format!("writing {}", driver.display()))?;
    Ok((scratch, driver))
}

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
    use crate::artifacts::codeset::{CodeEntry, Mode, Origin};

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
    fn the_serialize_timeout_is_seconds_or_a_duration() {
        assert_eq!(parse_timeout("600"), Some(Duration::from_secs(600)));
        assert_eq!(parse_timeout(" 2.5 "), Some(Duration::from_millis(2500)));
        assert_eq!(parse_timeout("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_timeout("1h 30s"), Some(Duration::from_secs(3630)));
        for bad in ["0", "-5", "soon", "0s", "NaN", "inf"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
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

    #[test]
    fn the_cache_serves_only_entries_that_match_their_digest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tgz");
        let write = |bytes: &[u8]| {
            std::fs::write(&out, bytes).unwrap();
            store(dir.path(), "k", &out).unwrap()
        };
        let path = write(b"a package");
        assert_eq!(cached(dir.path(), "k").map(|s| s.path), Some(path.clone()));
        std::fs::write(&path, b"a pack").unwrap(); // truncated
        assert!(cached(dir.path(), "k").is_none(), "a truncated entry is a miss");
        write(b"a package");
        std::fs::write(&path, b"a packagE").unwrap(); // edited, same length
        assert!(cached(dir.path(), "k").is_none(), "an edited entry is a miss");
        write(b"a package");
        std::fs::remove_file(dir.path().join("k.sha256")).unwrap();
        assert!(cached(dir.path(), "k").is_none(), "an entry without its digest is a miss");
        write(b"another package");
        assert!(cached(dir.path(), "k").is_some(), "the rebuilt entry is served");
    }

    #[test]
    fn litter_of_killed_runs_is_swept_and_a_live_runs_is_not() {
        let cache = tempfile::tempdir().unwrap();
        let temp = tempfile::tempdir().unwrap();
        let make = |dir: &Path, name: &str, age: Duration| {
            let path = dir.join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::write(path.join("f"), "x").unwrap();
            let when = std::time::SystemTime::now() - age;
            std::fs::File::open(&path).unwrap().set_modified(when).unwrap();
            path
        };
        let day = Duration::from_secs(24 * 3600);
        let old_tmp = make(cache.path(), ".tmpAbc", day);
        let old_code = make(temp.path(), "flyte-deploy-codeXyz", day);
        let live_tmp = make(cache.path(), ".tmpLive", Duration::from_secs(60));
        let other = make(temp.path(), "someone-else", day);
        std::fs::write(cache.path().join("k.tgz"), "entry").unwrap();
        sweep_litter(cache.path(), temp.path());
        assert!(!old_tmp.exists() && !old_code.exists(), "old litter removed");
        assert!(live_tmp.exists(), "a live run's folder stays");
        assert!(other.exists(), "other programs' folders stay");
        assert!(cache.path().join("k.tgz").exists(), "entries stay");
    }
}
