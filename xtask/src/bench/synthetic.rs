//! The synthetic monorepos of the benchmarks: the plan benchmark's 2,000 workflows of ~100
//! files, a shared library used by 50 of them, and a `change` branch touching 5 workflows;
//! the serialize benchmark's 200 small flytekit workflows sharing one environment. Written
//! once with `git fast-import` (one stream, no checkout) into a cached folder; owns nothing
//! else.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Number of workflows.
pub(crate) const WORKFLOWS: usize = 2000;
/// Every `SHARED_EVERY`-th workflow declares the shared library (50 of 2,000).
pub(crate) const SHARED_EVERY: usize = 40;
/// Every `DOCKERFILE_EVERY`-th workflow has its own Dockerfile.
pub(crate) const DOCKERFILE_EVERY: usize = 10;
/// Modules per sub-package of a workflow (two sub-packages).
const MODULES: usize = 48;

/// Bump when the layout changes, so a cached copy of the old layout is not reused.
const LAYOUT: u32 = 1;

/// The monorepo, generated on first use: a repository whose `main` holds the workflows and
/// whose checked-out `change` branch (one commit on top) changes: `wf0001`'s requirements,
/// `wf0002`'s code, a file moved from `wf0003` to `wf0004`, `wf0005` deleted, and a file of
/// the shared library `libs/common`. The working tree is not checked out. The flag says
/// whether this call generated it.
pub(crate) fn monorepo(cache: &Path) -> Result<(PathBuf, bool)> {
    let dir = cache.join(format!("plan-monorepo-v{LAYOUT}"));
    let ready = dir.join(".git/synthetic-ready");
    if ready.exists() {
        return Ok((dir, false));
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the partial {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let git = |args: &[&str]| -> Result<()> {
        duct::cmd("git", args)
            .dir(&dir)
            .stdout_null()
            .run()
            .map(|_| ())
            .with_context(|| format!("running git {}", args.join(" ")))
    };
    git(&["init", "--quiet", "--initial-branch=main"])?;
    eprintln!("generating the synthetic monorepo ({WORKFLOWS} workflows) in {}", dir.display());
    duct::cmd("git", ["fast-import", "--quiet"])
        .dir(&dir)
        .stdin_bytes(stream())
        .run()
        .context("running git fast-import")?;
    git(&["symbolic-ref", "HEAD", "refs/heads/change"])?;
    std::fs::write(&ready, "").with_context(|| format!("writing {}", ready.display()))?;
    Ok((dir, true))
}

fn workflow_files(i: usize, out: &mut Vec<(String, String)>) {
    let name = format!("wf{i:04}");
    let root = format!("workflows/{name}");
    out.push((format!("{root}/{name}/__init__.py"), String::new()));
    for sub in ["tasks", "lib"] {
        out.push((format!("{root}/{name}/{sub}/__init__.py"), String::new()));
        for k in 0..MODULES {
            let body = format!("\"\"\"{name}.{sub}.m{k:02}\"\"\"\n\n\ndef f{k}(x: int) -> int:\n    return x + {k}\n");
            out.push((format!("{root}/{name}/{sub}/m{k:02}.py"), body));
        }
    }
    out.push((format!("{root}/requirements.txt"), format!("flytekit==1.16.31\npandas==2.2.{}\n", i % 7)));
    out.push((format!("{root}/README.md"), format!("# {name}\n")));
    if i.is_multiple_of(DOCKERFILE_EVERY) {
        out.push((format!("{root}/Dockerfile"), "FROM python:3.11-slim\nCOPY requirements.txt .\n".into()));
    }
    if i.is_multiple_of(SHARED_EVERY) {
        out.push((format!("{root}/workflow.toml"), "shared = [\"libs/common\"]\n".into()));
    }
}

/// The fast-import stream: two commits.
fn stream() -> Vec<u8> {
    let mut files = vec![
        ("deploy.toml".to_string(), "project = \"bench\"\nglobal = [\"deploy.toml\"]\n".to_string()),
        ("libs/common/__init__.py".into(), String::new()),
    ];
    for k in 0..20 {
        files.push((format!("libs/common/c{k:02}.py"), format!("C = {k}\n")));
    }
    for i in 0..WORKFLOWS {
        workflow_files(i, &mut files);
    }
    let mut s = String::with_capacity(files.len() * 200);
    commit(&mut s, "refs/heads/main", "the monorepo", None);
    for (path, body) in &files {
        modify(&mut s, path, body);
    }
    s.push('\n');
    commit(&mut s, "refs/heads/change", "change five workflows and the shared library", Some("refs/heads/main"));
    modify(&mut s, "workflows/wf0001/requirements.txt", "flytekit==1.16.31\npandas==2.2.9\n");
    modify(&mut s, "workflows/wf0002/wf0002/tasks/m00.py", "def f0(x: int) -> int:\n    return x\n");
    let _ = writeln!(s, "R workflows/wf0003/wf0003/lib/m00.py workflows/wf0004/wf0004/lib/moved.py");
    let _ = writeln!(s, "D workflows/wf0005");
    modify(&mut s, "libs/common/c00.py", "C = 100\n");
    s.push('\n');
    s.into_bytes()
}

fn commit(s: &mut String, git_ref: &str, message: &str, from: Option<&str>) {
    let _ = writeln!(s, "commit {git_ref}");
    let _ = writeln!(s, "committer Bench <bench@example.com> 1700000000 +0000");
    let _ = writeln!(s, "data {}\n{message}", message.len());
    if let Some(from) = from {
        let _ = writeln!(s, "from {from}");
    }
}

fn modify(s: &mut String, path: &str, body: &str) {
    let _ = writeln!(s, "M 100644 inline {path}");
    let _ = writeln!(s, "data {}\n{body}", body.len());
}

/// Workflows of the serialize benchmark's monorepo.
pub(crate) const SERIALIZE_WORKFLOWS: usize = 200;

/// The serialize benchmark's monorepo, generated on first use: an empty `deploy.toml` and
/// [`SERIALIZE_WORKFLOWS`] workflows `wf000`..., each a package of three tasks and a
/// workflow calling them, with no dependency files (so all share the default environment:
/// flytekit alone), committed on `main`; the working tree is not checked out.
pub(crate) fn serialize_monorepo(cache: &Path) -> Result<PathBuf> {
    let dir = cache.join("serialize-monorepo-v1");
    let ready = dir.join(".git/synthetic-ready");
    if ready.exists() {
        return Ok(dir);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing the partial {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    duct::cmd("git", ["init", "--quiet", "--initial-branch=main"])
        .dir(&dir)
        .stdout_null()
        .run()
        .context("running git init")?;
    let mut s = String::new();
    commit(&mut s, "refs/heads/main", "the serialize benchmark's monorepo", None);
    modify(&mut s, "deploy.toml", "");
    for i in 0..SERIALIZE_WORKFLOWS {
        let name = format!("wf{i:03}");
        modify(&mut s, &format!("workflows/{name}/{name}/__init__.py"), "");
        let tasks = format!(
            "\"\"\"The tasks of {name}.\"\"\"\n\nfrom flytekit import task\n\n\n@task\ndef load(n: int) -> list[int]:\n    \
             return list(range(n + {i}))\n\n\n@task\ndef total(xs: list[int]) -> int:\n    return sum(xs)\n\n\n@task\n\
             def describe(total: int, label: str) -> str:\n    return f\"{{label}}: {{total}}\"\n"
        );
        modify(&mut s, &format!("workflows/{name}/{name}/tasks.py"), &tasks);
        let flow = format!(
            "\"\"\"The workflow of {name}.\"\"\"\n\nfrom flytekit import workflow\n\nfrom {name}.tasks import describe, load, \
             total\n\n\n@workflow\ndef {name}_wf(n: int = {i}, label: str = \"{name}\") -> str:\n    return \
             describe(total=total(xs=load(n=n)), label=label)\n"
        );
        modify(&mut s, &format!("workflows/{name}/{name}/flow.py"), &flow);
    }
    s.push('\n');
    duct::cmd("git", ["fast-import", "--quiet"])
        .dir(&dir)
        .stdin_bytes(s.into_bytes())
        .run()
        .context("running git fast-import")?;
    std::fs::write(&ready, "").with_context(|| format!("writing {}", ready.display()))?;
    Ok(dir)
}
