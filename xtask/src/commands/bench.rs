//! `cargo xtask bench`: each benchmark measures its subject and a named baseline in the
//! same run and prints the ratio. Dispatch, and the measurements; what is measured lives
//! with its subject (the plan benchmark's monorepo in `synthetic.rs`).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bench::synthetic;
use crate::cli::{Bench, BenchKind};

pub(crate) fn run(args: Bench) -> Result<ExitCode> {
    match args.what {
        BenchKind::Plan => plan(),
        BenchKind::Package => crate::bench::package::run(),
        BenchKind::Register => flyte_deploy::registration::register::bench::run(),
        BenchKind::Serialize => crate::bench::serialize::run(),
    }
}

/// Runs of each side, interleaved; the best counts (on a shared machine the best of many is
/// what is stable).
const RUNS: usize = 50;
/// Runs of the slower plan variants (without or with an older versions cache).
const COLD_RUNS: usize = 3;

/// The alternatives to what plan does that `bench plan` times in the same runs
/// (`FLYTE_DEPLOY_BENCH_PLAN`), with what each is: the measured reason `versions.rs` keeps
/// a format of its own.
const VARIANTS: &[(&str, &str)] = &[
    ("sqlite-versions", "the versions cache a SQLite table, read whole"),
    ("postcard-versions", "the versions cache serialized with postcard, read whole"),
];

/// `plan` on the synthetic monorepo vs `git diff-tree -r --no-renames <merge-base> <head>`,
/// and plan with each of [`VARIANTS`].
fn plan() -> Result<ExitCode> {
    let cache = target_dir()?.join("bench");
    let (repo, generated) = synthetic::monorepo(&cache)?;
    let git = |args: &[&str]| -> Result<String> {
        let out =
            duct::cmd("git", args).dir(&repo).read().with_context(|| format!("running git {}", args.join(" ")))?;
        Ok(out.trim().to_string())
    };
    let exe = release_binary()?;
    // A child's peak memory as the kernel reports it starts from its parent's peak (the child
    // runs in the parent's memory until it execs), so the process that measures must be a
    // fresh one: not the one that built the monorepo in memory, nor the debug build.
    if generated || exe != std::env::current_exe().context("finding the xtask binary")? {
        let err = Command::new(&exe).args(["bench", "plan"]).exec();
        return Err(err).with_context(|| format!("running {} bench plan", exe.display()));
    }
    let head = git(&["rev-parse", "refs/heads/change"])?;
    let merge_base = git(&["merge-base", "refs/heads/main", &head])?;

    // What plan answers must be right before its speed means anything.
    let out = duct::cmd(&exe, ["plan", "--format", "json"]).dir(&repo).read().context("running plan")?;
    let json: serde_json::Value = serde_json::from_str(&out).context("parsing the plan JSON")?;
    let count =
        |action: &str| json["workflows"].as_array().map_or(0, |w| w.iter().filter(|w| w["action"] == action).count());
    let counts = [count("rebuild"), count("fast"), count("removed"), count("unchanged")];
    let shared_users = synthetic::WORKFLOWS / synthetic::SHARED_EVERY;
    if counts != [1, 3 + shared_users, 1, synthetic::WORKFLOWS - 5 - shared_users] {
        bail!("plan gave {counts:?} (rebuild, fast, removed, unchanged) on the synthetic monorepo");
    }

    // Context: what git itself needs to read the tree of every workflow folder, which plan
    // must do for every workflow's name and project (its workflow.toml) while diff-tree
    // reads only the folders that differ.
    let folders = git(&["ls-tree", "--format=%(objectname)", &format!("{head}:workflows")])?;
    let folder_list = repo.join(".git/synthetic-folders");
    std::fs::write(&folder_list, folders + "\n").with_context(|| format!("writing {}", folder_list.display()))?;
    let mut cat_best = Duration::MAX;

    let diff_tree = ["diff-tree", "-r", "--no-renames", merge_base.as_str(), head.as_str()];
    let plan_args = ["plan", "--format", "json"];
    let mut git_best = Duration::MAX;
    let mut plan_best = Duration::MAX;
    let mut plan_rss = 0;
    // Each run's plan time over the diff-tree time measured just before it.
    let mut paired = Vec::with_capacity(RUNS);
    // The alternatives, each run twice before it is timed (its own caches written, then
    // read), and each giving the same plan.
    let mut variant_best = vec![Duration::MAX; VARIANTS.len()];
    // Each run's time of each alternative over the plan time of the same run.
    let mut variant_paired = vec![Vec::with_capacity(RUNS); VARIANTS.len()];
    for (variant, _) in VARIANTS {
        for _ in 0..2 {
            let same = duct::cmd(&exe, plan_args)
                .dir(&repo)
                .env(crate::settings::FLYTE_DEPLOY_BENCH_PLAN.name, variant)
                .read()
                .with_context(|| format!("running plan with {variant}"))?;
            if same != out {
                bail!("plan with {variant} gives another plan:\n{same}\ninstead of\n{out}");
            }
        }
    }
    for _ in 0..RUNS {
        let git_time = measure(Path::new("git"), &diff_tree, &repo, None, None)?.0;
        git_best = git_best.min(git_time);
        let (time, rss) = measure(&exe, &plan_args, &repo, None, None)?;
        plan_best = plan_best.min(time);
        plan_rss = plan_rss.max(rss);
        paired.push(time.as_secs_f64() / git_time.as_secs_f64());
        let batch = ["cat-file", "--batch"];
        cat_best = cat_best.min(measure(Path::new("git"), &batch, &repo, Some(&folder_list), None)?.0);
    }
    paired.sort_by(f64::total_cmp);
    // Then the alternatives, each run after a plan of the same round (so the rounds above
    // measure plan as they always have).
    for _ in 0..RUNS {
        let time = measure(&exe, &plan_args, &repo, None, None)?.0;
        for (i, (variant, _)) in VARIANTS.iter().enumerate() {
            let variant_time = measure(&exe, &plan_args, &repo, None, Some(variant))?.0;
            variant_best[i] = variant_best[i].min(variant_time);
            variant_paired[i].push(variant_time.as_secs_f64() / time.as_secs_f64());
        }
    }

    // The same plan without the versions cache (a fresh clone), and with the cache a plan of
    // main left (the change's commits are new to it: a pull request's first plan).
    let cache = repo.join(flyte_deploy::plan::versions::CACHE_DIR);
    let clear = || -> Result<()> {
        match std::fs::remove_dir_all(&cache) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", cache.display()))
            }
            _ => Ok(()),
        }
    };
    let mut cold_best = Duration::MAX;
    let mut cold_rss = 0;
    for _ in 0..COLD_RUNS {
        clear()?;
        let (time, rss) = measure(&exe, &plan_args, &repo, None, None)?;
        cold_best = cold_best.min(time);
        cold_rss = cold_rss.max(rss);
    }
    clear()?;
    measure(&exe, &["plan", "--format", "json", "--head", "refs/heads/main"], &repo, None, None)?;
    let from_main = repo.join(".git/synthetic-versions-cache-of-main");
    let _ = std::fs::remove_dir_all(&from_main);
    copy_dir(&cache, &from_main)?;
    let mut new_best = Duration::MAX;
    for _ in 0..COLD_RUNS {
        clear()?;
        copy_dir(&from_main, &cache)?;
        new_best = new_best.min(measure(&exe, &plan_args, &repo, None, None)?.0);
    }
    // Leave the cache as the plan of the change makes it.
    measure(&exe, &plan_args, &repo, None, None)?;
    println!("synthetic monorepo: {} ({} workflows, ~100 files each)", repo.display(), synthetic::WORKFLOWS);
    println!(
        "plan: {} rebuild, {} fast, {} removed, {} unchanged ({})",
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        exe.display()
    );
    let ratio = |d: Duration| d.as_secs_f64() / git_best.as_secs_f64();
    println!("git diff-tree -r --no-renames: {:.2} ms (best of {RUNS})", ms(git_best));
    println!("xtask plan --format json:      {:.2} ms (best of {RUNS}; versions cache warm)", ms(plan_best));
    println!("ratio plan / git diff-tree:    {:.2}", ratio(plan_best));
    println!(
        "  (median of the {RUNS} runs' own ratios, each plan against the diff-tree just before it: {:.2})",
        paired[RUNS / 2]
    );
    for (((variant, what), best), paired) in VARIANTS.iter().zip(&variant_best).zip(&mut variant_paired) {
        paired.sort_by(f64::total_cmp);
        println!(
            "  with {variant}: {:.2} ms, ratio {:.2}; median of its runs over plan's in the same run: {:.2} \
             ({what}; FLYTE_DEPLOY_BENCH_PLAN={variant})",
            ms(*best),
            ratio(*best),
            paired[RUNS / 2]
        );
    }
    println!(
        "plan peak memory (max RSS):    {:.1} MiB (versions cache warm), {:.1} MiB without it",
        plan_rss as f64 / 1024.0,
        cold_rss as f64 / 1024.0
    );
    println!(
        "plan, cache left by a plan of main: {:.2} ms ({:.2} x diff-tree, best of {COLD_RUNS})",
        ms(new_best),
        ratio(new_best)
    );
    println!(
        "plan, no versions cache (fresh clone): {:.2} ms ({:.2} x diff-tree, best of {COLD_RUNS})",
        ms(cold_best),
        ratio(cold_best)
    );
    println!(
        "for context, git cat-file --batch of the {} workflow folder trees alone: {:.2} ms ({:.2} x diff-tree)",
        synthetic::WORKFLOWS - 1,
        ms(cat_best),
        cat_best.as_secs_f64() / git_best.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Copies the files of a folder (no subfolders) into another, created when missing.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let dest = to.join(path.file_name().unwrap_or_default());
            std::fs::copy(&path, &dest).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Wall time and peak resident memory (KiB) of one run of a program (stdin from a file or
/// empty; with `FLYTE_DEPLOY_BENCH_PLAN` set to `variant`, if any), output discarded.
fn measure(
    program: &Path,
    args: &[&str],
    dir: &Path,
    stdin: Option<&Path>,
    variant: Option<&str>,
) -> Result<(Duration, i64)> {
    let input = match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?),
        None => Stdio::null(),
    };
    let start = Instant::now();
    let mut command = Command::new(program);
    if let Some(v) = variant {
        command.env(crate::settings::FLYTE_DEPLOY_BENCH_PLAN.name, v);
    }
    let child = command
        .args(args)
        .current_dir(dir)
        .stdin(input)
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {}", program.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps our own child, which `child` never waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    if reaped != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{} {} failed (status {status})", program.display(), args.join(" "));
    }
    Ok((elapsed, usage.ru_maxrss))
}

/// The optimised binary: this one when it is a release build, else `cargo build --release`.
fn release_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    if !cfg!(debug_assertions) {
        return Ok(exe);
    }
    eprintln!("building the release binary (cargo build --release -p xtask) to measure it");
    let cargo = flyte_deploy::settings::CARGO.get_os().unwrap_or_else(|| "cargo".into());
    let root = flyte_deploy::workspace::repo::Repo::discover()?.root;
    duct::cmd(cargo, ["build", "--quiet", "--release", "--package", "xtask"])
        .dir(&root)
        .run()
        .context("building the release binary")?;
    Ok(target_dir()?.join("release/xtask"))
}

/// Where cargo builds: `CARGO_TARGET_DIR`, else `target/` of this project.
fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = flyte_deploy::settings::CARGO_TARGET_DIR.get_os() {
        return Ok(PathBuf::from(dir));
    }
    let repo = flyte_deploy::workspace::repo::Repo::discover()?;
    Ok(repo.root.join("target"))
}
