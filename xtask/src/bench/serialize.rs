//! `cargo xtask bench serialize`: serializing the 200 workflows of a synthetic monorepo
//! (`synthetic.rs`), all in the default environment (flytekit alone), with the long-lived
//! serializer against one `pyflyte package` per workflow (the baseline), in the same run and
//! through the same code path deploy takes ([`flyte_deploy::artifacts::serialize::serialize_all`], the same
//! workers); prints both times, the ratio, each side's peak memory, and whether the specs of
//! both sides are the same bytes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bench::synthetic;
use flyte_deploy::artifacts::canonical::{canonical_specs, SpecFile};
use flyte_deploy::artifacts::codeset::CodeSet;
use flyte_deploy::artifacts::environment::Envs;
use flyte_deploy::artifacts::serialize::{self, Options, Work};
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::requirements::Environment;
use flyte_deploy::workspace::source::GitTree;
use flyte_deploy::workspace::Workspace;

pub(crate) fn run() -> Result<ExitCode> {
    let project = Repo::discover()?;
    let dir = synthetic::serialize_monorepo(&crate::commands::test::target_dir(&project.root).join("bench"))?;
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
    let quiet = |_: &str, _: serialize::Event<'_>| {};
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
    let serializer_peak = flyte_deploy::artifacts::serializer::peak_memory_kib();

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

/// The peak resident memory of the largest child this process has waited for, in KiB.
fn children_peak_kib() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss.max(0) as u64
}
