//! `cargo xtask bench serialize`: serializing the 200 workflows of a synthetic monorepo
//! (`synthetic.rs`), all in the default environment (flytekit alone), with the long-lived
//! serializer against one `pyflyte package` per workflow (the baseline), in the same run and
//! through the same code path deploy takes ([`crate::serialize::serialize_all`], the same
//! workers); prints both times, the ratio, each side's peak memory, and whether the specs of
//! both sides are the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::codeset::CodeSet;
use crate::environment::Envs;
use crate::repo::Repo;
use crate::requirements::Environment;
use crate::serialize::{self, Options, Work};
use crate::source::GitTree;
use crate::synthetic;
use crate::workspace::Workspace;

pub fn run() -> Result<ExitCode> {
    let project = Repo::discover()?;
    let dir = synthetic::serialize_monorepo(&crate::test::target_dir(&project.root).join("bench"))?;
    let repo = Repo::discover_from(&dir)?;
    let commit = repo.commit("HEAD")?;
    let tree = GitTree::at_commit(&repo.git, &commit)?;
    let ws = Workspace::load(&tree)?;
    let mut facts = Vec::new();
    for wf in &ws.workflows {
        let env = Environment::of(&tree, &ws.config, wf)?;
        let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
        facts.push((wf, env, set));
    }
    if facts.iter().any(|(_, env, _)| env.hash != facts[0].1.hash) || facts.len() != synthetic::SERIALIZE_WORKFLOWS {
        bail!("the synthetic monorepo in {} is not {} workflows of one environment", dir.display(), facts.len());
    }
    let image = ws.config.images.default.clone();
    let keys: Vec<String> = facts
        .iter()
        .map(|(wf, env, _)| serialize::cache_key(&wf.name, &image, &wf.packages, &env.hash, &wf.images))
        .collect();
    let work: Vec<Work> = facts
        .iter()
        .zip(&keys)
        .map(|((wf, env, set), key)| Work {
            name: &wf.name,
            env,
            set,
            packages: &wf.packages,
            image: &image,
            images: &wf.images,
            key,
        })
        .collect();

    // The environment is built (or found) before anything is timed.
    let envs = Envs::new(&project.root);
    let ready = envs.ensure(&facts[0].1)?;
    let options = Options::new(None)?;
    eprintln!(
        "bench serialize: {} workflows in {}, one environment (flytekit {}, {}), {} workers",
        work.len(),
        dir.display(),
        ready.flytekit,
        ready.dir.display(),
        options.jobs
    );
    let quiet = |_: &str, _: &str| {};
    let side = |long_lived: bool, what: &str| -> Result<(Duration, tempfile::TempDir)> {
        let cache = tempfile::tempdir().context("creating a temporary cache")?;
        let opts = Options { long_lived, ..options.clone() };
        eprintln!("bench serialize: {what}");
        let start = Instant::now();
        let results = serialize::serialize_all(&repo.root, &envs, &work, cache.path(), &opts, &quiet);
        let took = start.elapsed();
        let failed: Vec<String> =
            results.iter().filter_map(|(i, r)| r.as_ref().err().map(|e| format!("{}: {e:#}", work[*i].name))).collect();
        if !failed.is_empty() {
            bail!("{what}: {} workflows failed, the first: {}", failed.len(), failed[0]);
        }
        Ok((took, cache))
    };

    // Warm-up, untimed: one pyflyte, so that neither side pays for a cold file cache.
    {
        let cache = tempfile::tempdir().context("creating a temporary cache")?;
        let opts = Options { long_lived: false, jobs: 1, ..options.clone() };
        let first = &work[..1];
        for (_, r) in serialize::serialize_all(&repo.root, &envs, first, cache.path(), &opts, &quiet) {
            r.context("the warm-up serialization")?;
        }
    }
    let (baseline, baseline_cache) = side(false, "one pyflyte package per workflow (the baseline)")?;
    let pyflyte_peak = children_peak_kib();
    let (ours, our_cache) = side(true, "the long-lived serializer")?;
    let serializer_peak = crate::serializer::peak_memory_kib();

    let paths: Vec<(PathBuf, PathBuf)> = keys
        .iter()
        .map(|key| (our_cache.path().join(format!("{key}.tgz")), baseline_cache.path().join(format!("{key}.tgz"))))
        .collect();
    let all: Vec<&Path> = paths.iter().flat_map(|(a, b)| [a.as_path(), b.as_path()]).collect();
    let specs = canonical_specs(&ready.python, &all)?;
    let (mut same, mut files, mut raw_same) = (0, 0, 0);
    for pair in specs.chunks(2) {
        let canonical = |m: &BTreeMap<String, SpecFile>| -> Vec<(String, Vec<u8>)> {
            m.iter().map(|(k, f)| (k.clone(), f.canonical.clone())).collect()
        };
        if canonical(&pair[0]) == canonical(&pair[1]) {
            same += 1;
        }
        files += pair[0].keys().filter(|k| k.ends_with(".pb")).count();
        raw_same += pair[0]
            .iter()
            .filter(|(k, f)| k.ends_with(".pb") && pair[1].get(*k).is_some_and(|t| t.raw == f.raw))
            .count();
    }
    let n = work.len() as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "serialize {} workflows, one environment (flytekit {}), {} workers:",
        work.len(),
        ready.flytekit,
        options.jobs
    );
    println!(
        "one pyflyte package per workflow (baseline): {:>7.2} s  ({:.3} s a workflow; one pyflyte peaks at {:.0} MiB)",
        baseline.as_secs_f64(),
        baseline.as_secs_f64() / n,
        mib(pyflyte_peak)
    );
    println!(
        "long-lived serializer (one process):         {:>7.2} s  ({:.3} s a workflow; its peak memory {:.0} MiB)",
        ours.as_secs_f64(),
        ours.as_secs_f64() / n,
        mib(serializer_peak)
    );
    println!("ratio: {:.1}x faster than one pyflyte package per workflow", baseline.as_secs_f64() / ours.as_secs_f64());
    println!(
        "specs: the same for {same} of {} workflows (each .pb compared after protobuf's deterministic ordering of \
         map entries; {raw_same} of the {files} files were the same bytes as written)",
        work.len()
    );
    if same != work.len() {
        bail!("the long-lived serializer wrote other specs than pyflyte package for {} workflows", work.len() - same);
    }
    Ok(ExitCode::SUCCESS)
}

/// One file of a `pyflyte package` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// Protobuf's deterministic serialization of the spec (map entries sorted by key); empty
    /// for the fast-registration archive (its name is a digest of the code; its bytes carry
    /// times).
    pub canonical: Vec<u8>,
    /// The bytes as written (empty for the fast-registration archive).
    pub raw: Vec<u8>,
}

/// The files of `pyflyte package` archives by name, spec files (.pb) canonically too. Python's protobuf writes map entries in an
/// order that varies from process to process (two runs of `pyflyte package` on the same code
/// differ so), so specs compare canonically: decoded with flyteidl's own Python classes in
/// `python`'s environment (every field known, unknown ones kept) and written again with
/// sorted maps. One Python run for all the archives.
pub fn canonical_specs(python: &Path, packages: &[&Path]) -> Result<Vec<BTreeMap<String, SpecFile>>> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let mut listed = Vec::new();
    let mut out = Vec::new();
    for (n, package) in packages.iter().enumerate() {
        let file = std::fs::File::open(package).with_context(|| format!("opening {}", package.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = BTreeMap::new();
        for entry in archive.entries().with_context(|| format!("reading {}", package.display()))? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if name.contains('/') || name.starts_with('.') {
                bail!("{}: unexpected entry {name}", package.display());
            }
            let mut raw = Vec::new();
            if name.ends_with(".pb") {
                std::io::Read::read_to_end(&mut entry, &mut raw)?;
                let path = dir.path().join(format!("{n}-{name}"));
                std::fs::write(&path, &raw).with_context(|| format!("writing {}", path.display()))?;
                listed.push((n, name.clone(), path));
            }
            files.insert(name, SpecFile { canonical: Vec::new(), raw });
        }
        out.push(files);
    }
    let input: String = listed.iter().map(|(_, _, p)| format!("{}\n", p.display())).collect();
    let stdout = duct::cmd(python, ["-c", CANONICAL])
        .stdin_bytes(input)
        .read()
        .with_context(|| format!("decoding specs with {}", python.display()))?;
    let canonical: BTreeMap<String, String> = serde_json::from_str(&stdout).context("reading the canonical specs")?;
    for (n, name, path) in listed {
        let hex = canonical
            .get(&path.display().to_string())
            .with_context(|| format!("no canonical form of {}", path.display()))?;
        if let Some(file) = out[n].get_mut(&name) {
            file.canonical = hex::decode(hex)?;
        }
    }
    Ok(out)
}

/// Reads spec paths (`..._<k>.pb`, k = 1 TaskSpec, 2 WorkflowSpec, 3 LaunchPlan) from stdin;
/// prints {path: hex of its deterministic serialization}.
const CANONICAL: &str = r#"
import json, sys
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
kinds = {"1": task_pb2.TaskSpec, "2": workflow_pb2.WorkflowSpec, "3": launch_plan_pb2.LaunchPlan}
out = {}
for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    data = open(path, "rb").read()
    message = kinds[path[:-3].rsplit("_", 1)[1]]()
    message.ParseFromString(data)
    out[path] = message.SerializeToString(deterministic=True).hex()
print(json.dumps(out))
"#;

/// The peak resident memory of the largest child this process has waited for, in KiB.
fn children_peak_kib() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss.max(0) as u64
}
