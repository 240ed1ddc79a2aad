//! `cargo xtask bench package`: our code archive of a 100 MB / 10,000-file workflow vs
//! flytekit's own fast packaging (`flytekit.tools.fast_registration.fast_package` with
//! `--copy all`, as `pyflyte package --copy all` calls it) of the same folder, through the
//! default serialization environment's Python, in the same run; prints both times and the
//! ratio. The workflow is generated once under the target directory and committed into a
//! git repository there.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use flyte_deploy::artifacts::codeset::CodeSet;
use flyte_deploy::plan::fingerprint;
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::source::GitTree;
use flyte_deploy::workspace::Workspace;

const FILES: usize = 10_000;
const TOTAL_BYTES: usize = 100_000_000;
const RUNS: usize = 3;
const WORKFLOW: &str = "big";

/// flytekit's side: `fast_package` of the folder, timed inside Python (imports excluded).
const FLYTEKIT: &str = r#"
import json, sys, tempfile, time, os
from flytekit.constants import CopyFileDetection
from flytekit.tools.fast_registration import FastPackageOptions, fast_package
source, runs = sys.argv[1], int(sys.argv[2])
best, size = None, 0
for _ in range(runs):
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        path = fast_package(source, out, options=FastPackageOptions([], copy_style=CopyFileDetection.ALL))
        took = time.perf_counter() - start
        size = os.path.getsize(path)
    best = took if best is None else min(best, took)
print(json.dumps({"seconds": best, "size": size}))
"#;

pub(crate) fn run() -> Result<ExitCode> {
    flyte_deploy::artifacts::codeset::tune_object_reads();
    let project = Repo::discover()?;
    let python =
        flyte_deploy::artifacts::environment::default_python(&project.root, flyte_deploy::config::DEFAULT_FLYTEKIT)?;
    let dir = crate::commands::test::target_dir(&project.root).join("bench/package");
    generate(&dir)?;
    let folder = dir.join("workflows").join(WORKFLOW);
    eprintln!("bench package: {FILES} files, {} MB in {}", TOTAL_BYTES / 1_000_000, folder.display());

    let repo = Repo::discover_from(&dir)?;
    let out = tempfile::tempdir().context("creating a temporary folder")?;
    let mut ours = Duration::MAX;
    let mut our_size = 0;
    let mut version = String::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let commit = repo.commit("HEAD")?;
        let tree = GitTree::at_commit(&repo.git, &commit)?;
        let ws = Workspace::load(&tree)?;
        let wf = ws.select(&[WORKFLOW.to_string()])?[0];
        let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
        let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf)?;
        let archive = flyte_deploy::artifacts::package::write(&set, &repo.git, out.path(), &wf.name, &fp.version)?;
        ours = ours.min(start.elapsed());
        our_size = archive.size;
        version = fp.version;
    }

    let runs = RUNS.to_string();
    let output = duct::cmd(&python, ["-c".as_ref(), FLYTEKIT.as_ref(), folder.as_os_str(), runs.as_ref()])
        .env("FLYTE_SDK_LOGGING_LEVEL", "40")
        .stdout_capture()
        .run()
        .with_context(|| format!("running flytekit's fast_package with {}", python.display()))?;
    // flytekit prints progress on stdout too: the result is the last line.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    let theirs: serde_json::Value =
        serde_json::from_str(last).with_context(|| format!("reading the flytekit side's result from:\n{stdout}"))?;
    let their_secs = theirs["seconds"].as_f64().context("no time from the flytekit side")?;
    let their_size = theirs["size"].as_u64().unwrap_or(0);

    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "flyte-deploy package   best of {RUNS}: {:>7.2} s  archive {:>6.1} MB  (version {version})",
        ours.as_secs_f64(),
        mb(our_size)
    );
    println!("flytekit fast_package  best of {RUNS}: {:>7.2} s  archive {:>6.1} MB", their_secs, mb(their_size));
    println!("ratio: {:.1}x faster than flytekit", their_secs / ours.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Creates the benchmark repository once: a deploy.toml and one workflow of [`FILES`]
/// Python-like files of [`TOTAL_BYTES`] in all, committed.
fn generate(dir: &Path) -> Result<()> {
    let stamp = dir.join(".generated-v1");
    if stamp.exists() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing the partial {}", dir.display()))?;
    }
    eprintln!("generating the benchmark workflow in {} (once)", dir.display());
    let root = dir.join("workflows").join(WORKFLOW).join(WORKFLOW);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let per_file = TOTAL_BYTES / FILES;
    let mut paths: Vec<PathBuf> = Vec::new();
    for i in 0..FILES {
        let folder = root.join(format!("pkg{:03}", i / 100));
        paths.push(folder.join(format!("module_{i:05}.py")));
    }
    let mut written = 0usize;
    for (i, path) in paths.iter().enumerate() {
        // Sizes vary around the mean; the last file makes the total exact.
        let size = if i + 1 == FILES { TOTAL_BYTES - written } else { per_file / 2 + rng.below(per_file) };
        let text = python_like(&mut rng, size);
        written += text.len();
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    for folder in std::iter::once(root.clone()).chain((0..FILES / 100).map(|i| root.join(format!("pkg{i:03}")))) {
        std::fs::write(folder.join("__init__.py"), b"")?;
    }
    std::fs::write(dir.join("deploy.toml"), b"")?;
    let sh = xshell::Shell::new()?;
    sh.change_dir(dir);
    let id = ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"];
    xshell::cmd!(sh, "git init --quiet --initial-branch=main").quiet().run()?;
    xshell::cmd!(sh, "git add -A").quiet().run()?;
    xshell::cmd!(sh, "git {id...} commit --quiet -m bench").quiet().run()?;
    std::fs::write(&stamp, b"")?;
    Ok(())
}

/// Exactly `size` bytes of text that compresses like source code.
fn python_like(rng: &mut Rng, size: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "def", "return", "self", "import", "from", "class", "for", "in", "if", "else", "None", "True", "data", "frame",
        "value", "result", "task", "workflow", "config", "path", "items", "index", "count", "name", "=", "(", ")", ":",
        ",", "+", "len", "range", "dict", "list", "str", "int", "float", "with", "open", "yield",
    ];
    let mut out = Vec::with_capacity(size + 64);
    while out.len() < size {
        let indent = 4 * rng.below(3);
        out.extend(std::iter::repeat_n(b' ', indent));
        for _ in 0..3 + rng.below(8) {
            out.extend_from_slice(WORDS[rng.below(WORDS.len())].as_bytes());
            if rng.below(4) == 0 {
                out.extend_from_slice(format!("_{}", rng.below(1000)).as_bytes());
            }
            out.push(b' ');
        }
        out.push(b'\n');
    }
    out.truncate(size);
    out
}

/// xorshift64*: deterministic, so every machine generates the same folder.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}
