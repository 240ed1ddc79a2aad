//! `cargo xtask deploy`: the main job. Reads top-down like the pipeline: plan (with
//! versions) → policy → for each workflow: is this version already complete in the domain?
//! → environment and serialize (one long-lived serializer per environment, cached) → entity
//! names checked across workflows (a clash refuses the deploy before any change) → images
//! the tasks name (check, build where allowed) → removed workflows deactivated → package →
//! hydrate + register → record → report. One workflow failing leaves the others to finish;
//! the exit status is then 1.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use flyte_api::admin as pb;
use flyte_api::{Identifier, Kind, Message};

use crate::args::{self, ReportFormat};
use crate::artifacts::build::ImageBuilder;
use crate::artifacts::codeset::CodeSet;
use crate::artifacts::environment::Envs;
use crate::artifacts::image::{self, Destination, ImageDecision, ImageFacts};
use crate::artifacts::package;
use crate::artifacts::registry::{ImageRef, Registry};
use crate::artifacts::serialize;
use crate::artifacts::specs::{self, Package};
use crate::config::Domain;
use crate::error;
use crate::output::Stage;
use crate::plan::base::{self, CiContext};
use crate::plan::{self, Action, Plan, PlannedWorkflow, ReasonKind};
use crate::registration::admin::{Address, Admin};
use crate::registration::hydrate::{self, Target};
use crate::registration::policy;
use crate::registration::record::{self, Record, Store};
use crate::registration::register::{self, Archive};
use crate::report::summary::{Entities, Outcome, Problem, Summary, WorkflowSummary};
use crate::settings;
use crate::workspace::repo::Repo;
use crate::workspace::requirements::Environment;
use crate::workspace::source::GitTree;
use crate::workspace::{Workflow, Workspace};

pub fn run(args: args::Deploy) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let mut range = args.range.clone();
    if args.dirty {
        if range.head != "HEAD" {
            return Err(error::user(
                format!("--dirty deploys the working tree, not '{}'", range.head),
                "drop --head, or drop --dirty to deploy that commit",
            ));
        }
        range.head = snapshot(&repo)?.to_string();
    }
    let stage = Stage::start("plan");
    let (mut plan, ws) = plan::compute_with_workspace(&repo, &range)?;
    stage.done();
    let mass_removal = mass_removal(&plan);
    let domain = ws.config.domain(&plan.domain).expect("the plan's domain is declared").clone();
    let ci = CiContext::from_env();
    let branch = base::branch(&repo, &args.range.head, &ci);
    let in_ci = settings::in_ci();
    policy::check(
        &ws.config,
        &domain,
        policy::Operation::Deploy { dirty: args.dirty },
        policy::Context { branch: branch.as_deref(), ci: in_ci },
    )?;
    if args.dirty {
        mark_dirty(&repo, &args.range, &mut plan)?;
    }
    // Every workflow's version, before a matrix entry keeps only its own: a reference to
    // another workflow resolves to that workflow's version whichever job deploys it.
    let mut others = Others::of(&ws, &plan);
    if !args.workflows.is_empty() {
        others.elsewhere = plan
            .workflows
            .iter()
            .filter(|w| !matches!(w.action, Action::Unchanged | Action::Removed))
            .filter(|w| !args.workflows.iter().any(|n| *n == w.name))
            .map(|w| w.name.to_string())
            .collect();
        others.wait = reference_wait()?;
    }
    select(&mut plan, &args.workflows)?;
    let options = serialize::Options::new(args.jobs.map(usize::from))?;
    for note in &plan.notes {
        crate::output::note(note);
    }
    let deployed: Vec<&Workflow> =
        plan.workflows.iter().filter(|p| p.action != Action::Removed).filter_map(|p| ws.workflow(&p.name)).collect();
    if let Some(warning) = uncommitted(&repo, &args.range.head, &deployed, "deployed").filter(|_| !args.dirty) {
        crate::output::warning(warning);
    }
    if args.dry_run {
        match args.format {
            ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
            ReportFormat::Text => print!("{}", plan::table(&plan)),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let (Some((removed, of)), false) = (mass_removal, args.allow_mass_removal) {
        return Err(error::user(
            format!(
                "the change from {:.10} to {:.10} removes {removed} of {of} workflows; deploying it would deactivate \
                 their launch plans in {}",
                plan.base.as_deref().unwrap_or("-"),
                plan.head,
                plan.domain
            ),
            "check the change (a renamed workflows root or a bad merge looks like this); if the removals are meant, \
             deploy with --allow-mass-removal",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let summary = runtime.block_on(deploy(
        &repo,
        &ws,
        &plan,
        &domain,
        may_build(in_ci, args.allow_local_build),
        &options,
        others,
    ))?;
    report(&summary, args.format)?;
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// When the plan removes more than half of its workflows (those at head and those removed):
/// (removed, of).
fn mass_removal(plan: &Plan) -> Option<(usize, usize)> {
    let removed = plan.workflows.iter().filter(|w| w.action == Action::Removed).count();
    let of = plan.workflows.len();
    (removed > 0 && removed * 2 > of).then_some((removed, of))
}

/// A commit object (on no branch) of the working tree's tracked files, its parent the
/// checked-out commit: what `--dirty` deploys. Untracked files never enter; the index file
/// and every ref stay as they are.
fn snapshot(repo: &Repo) -> Result<git2::Oid> {
    let head = repo.commit("HEAD")?;
    let mut index = repo.git.index().context("reading the git index")?;
    index.update_all(["*"], None).context("reading the working tree's tracked files")?;
    let tree_id = index.write_tree().context("writing the working tree's files to the object database")?;
    let tree = repo.git.find_tree(tree_id)?;
    let sig = repo
        .git
        .signature()
        .or_else(|_| git2::Signature::now("flyte-deploy", "flyte-deploy@localhost"))
        .context("making a signature")?;
    let id = repo
        .git
        .commit(None, &sig, &sig, "flyte-deploy --dirty: the working tree's tracked files", &tree, &[&head])
        .context("writing the working tree's snapshot commit")?;
    Ok(id)
}

/// Every workflow whose version from the working tree differs from the checked-out commit's
/// gets the `-dirty` suffix (as `package --dirty` versions); the others are as committed.
fn mark_dirty(repo: &Repo, range: &args::Range, plan: &mut Plan) -> Result<()> {
    let (committed, _) = plan::compute_with_workspace(repo, range)?;
    for w in plan.workflows.iter_mut() {
        let before = committed.workflows.iter().find(|c| c.name == w.name).and_then(|c| c.version.clone());
        if w.version.as_deref() == before.as_deref() {
            continue;
        }
        if let Some(v) = w.version.as_mut() {
            *v = format!("{v}{}", plan::fingerprint::DIRTY_SUFFIX).into();
        }
    }
    Ok(())
}

/// When `head` is the checked-out commit and the working tree has uncommitted changes
/// (tracked files, staged or not) in the folders or shared paths of workflows being
/// deployed: one warning naming them, since only the commit is taken. `what`: what the
/// command does with the commit ("deployed", "packaged", "promoted").
pub fn uncommitted(repo: &Repo, head: &str, workflows: &[&Workflow], what: &str) -> Option<String> {
    let checked_out = repo.git.head().ok()?.peel_to_commit().ok()?.id();
    if repo.commit(head).ok()?.id() != checked_out || repo.git.is_bare() {
        return None;
    }
    let mut options = git2::StatusOptions::new();
    options.include_untracked(false).include_ignored(false).exclude_submodules(true);
    let statuses = repo.git.statuses(Some(&mut options)).ok()?;
    let changed: Vec<String> =
        statuses.iter().filter(|e| !e.status().is_empty()).filter_map(|e| e.path().map(str::to_string)).collect();
    let under = |path: &str, dir: &str| path == dir || path.starts_with(&format!("{dir}/"));
    let mut named = Vec::new();
    for wf in workflows {
        let mine: Vec<&str> = changed
            .iter()
            .filter(|p| under(p, &wf.path) || wf.shared.iter().any(|s| under(p, s)))
            .map(String::as_str)
            .collect();
        if let Some(first) = mine.first() {
            let more = if mine.len() > 1 { format!(" and {} more", mine.len() - 1) } else { String::new() };
            named.push(format!("{} ({first}{more})", wf.name));
        }
    }
    if named.is_empty() {
        return None;
    }
    Some(format!(
        "uncommitted changes to {} are not {what}: only commit {:.12} is; commit them, or take the working tree \
         with --dirty (`deploy --dirty`: development only)",
        named.join(", "),
        checked_out
    ))
}

fn may_build(in_ci: bool, allow_local_build: bool) -> bool {
    image::building_allowed(in_ci, allow_local_build)
}

/// Keeps only the named workflows (a CI matrix entry); the plan is computed as for all.
fn select(plan: &mut Plan, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    for n in names {
        if !plan.workflows.iter().any(|w| &w.name == n) {
            return Err(error::user(
                format!("--workflow {n}: no such workflow in the plan of {:.12}", plan.head),
                format!("name one of: {}", plan.workflows.iter().map(|w| &*w.name).collect::<Vec<_>>().join(", ")),
            ));
        }
    }
    plan.workflows.retain(|w| names.iter().any(|n| *n == w.name));
    Ok(())
}

/// Prints the report, and appends its markdown to `$GITHUB_STEP_SUMMARY` when set.
pub fn report(summary: &Summary, format: ReportFormat) -> Result<()> {
    match format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(summary)?),
        ReportFormat::Text => {
            print!("{}", summary.text());
            // Failures and warnings on stderr; the JSON carries them in `error` and `warnings`.
            for (kind, line) in summary.problems() {
                match kind {
                    Problem::Warning => crate::output::warning(line),
                    Problem::Error => eprintln!("{} {line}", crate::output::error_prefix()),
                }
            }
        }
    }
    if let Some(path) = settings::GITHUB_STEP_SUMMARY.get_os() {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", Path::new(&path).display()))?;
        f.write_all(summary.markdown().as_bytes())?;
    }
    Ok(())
}

/// One workflow on its way through the pipeline.
struct Job<'w> {
    planned: PlannedWorkflow<'static>,
    wf: &'w Workflow,
    set: CodeSet,
    /// The serialize cache key.
    key: String,
    /// Its serialization environment.
    env: Environment,
    summary: WorkflowSummary,
    /// The time spent on this workflow's own work so far (checks, serialization, images,
    /// registration), never waiting for a worker or another workflow.
    own: Duration,
    launch_plans: Vec<String>,
    /// The Flyte workflows it registered.
    workflows: Vec<String>,
}

async fn deploy(
    repo: &Repo,
    ws: &Workspace,
    plan: &Plan<'static>,
    domain: &Domain,
    may_build: bool,
    options: &serialize::Options,
    others: Others,
) -> Result<Summary> {
    let progress = Progress::new();
    let stage = Stage::start("connect");
    let head = repo.commit(&plan.head)?;
    let tree = GitTree::at_commit(&repo.git, &head)?;
    let admin = Admin::connect(&ws.config, &repo.root).await?;
    let sandbox = admin.is_sandbox().await?;
    let store = Store::for_address(&Address::from_config(&ws.config, &repo.root)?);
    let history = store.load(&repo.git).unwrap_or_default();
    // A committed cache folder was said among the plan's notes.
    let cache_dir = serialize::CacheDir::of(&repo.git, &repo.root, &head)?;
    let mut packages = Packages::new(&cache_dir);

    let mut done: Vec<WorkflowSummary> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut removals = Vec::new();
    stage.done();
    let stage = Stage::start("check registered versions");

    // 1. What each workflow needs: the diff narrowed, the hash decides.
    progress.stage("checked", plan.workflows.len());
    for planned in &plan.workflows {
        let mut summary = new_summary(planned);
        let started = Instant::now();
        let _checked = progress.item(&planned.name, started);
        if planned.action == Action::Removed {
            // Deactivated after every check has passed, with the registrations.
            removals.push((planned, summary));
            continue;
        }
        let Some(wf) = ws.workflow(&planned.name) else { continue };
        let Some(version) = planned.version.as_deref().map(str::to_string) else {
            summary.outcome = Outcome::Failed;
            summary.error = Some(
                plan.notes
                    .iter()
                    .find(|n| n.starts_with(&format!("{}: ", wf.name)))
                    .cloned()
                    .unwrap_or_else(|| "no version could be computed".into()),
            );
            done.push(summary);
            continue;
        };
        // The plan fingerprinted every workflow; the code set is read again only for the
        // workflows that need serializing or an archive.
        let code = planned.code.as_deref().unwrap_or_default();
        let env = match Environment::of(&tree, &ws.config, wf) {
            Ok(env) => env,
            Err(e) => {
                fail(&mut summary, &e);
                done.push(summary);
                continue;
            }
        };
        let image = planned.image.as_deref().unwrap_or_default();
        let key = serialize::cache_key(code, image, &wf.packages, &env.hash, &wf.images);
        let known = known_launch_plans(&mut packages, &key, &history, &wf.name, &version);
        if let Some(names) = &known {
            progress.step(&wf.name, "checking the registered version");
            match complete(&admin, &wf.project, &domain.name.value, &version, names, domain.activate).await {
                Ok(true) => {
                    summary.outcome = Outcome::AlreadyRegistered;
                    summary.images = serialized_images(&mut packages, &key);
                    let workflows = packages.get(&key).map(|p| workflow_names(&p)).unwrap_or_default();
                    summary.link(
                        ws.config.flyte.console.as_deref(),
                        &wf.project,
                        &domain.name.value,
                        &workflows,
                        names,
                    );
                    summary.seconds = started.elapsed().as_secs_f64();
                    // A run killed after its registration but before its record left the
                    // version in place unrecorded: the record is written now.
                    if !recorded(&history, &wf.name, &domain.name.value, &version) {
                        let record = record_of(repo, plan, &summary, &domain.name.value, names.clone());
                        store.append(&repo.git, &[record]).context("recording the deploy")?;
                    }
                    done.push(summary);
                    continue;
                }
                Ok(false) => {}
                Err(e) => {
                    fail(&mut summary, &e);
                    done.push(summary);
                    continue;
                }
            }
        }
        let set = match CodeSet::at(&repo.git, tree.tree(), wf) {
            Ok(set) => set,
            Err(e) => {
                fail(&mut summary, &e);
                done.push(summary);
                continue;
            }
        };
        let own = started.elapsed();
        let (launch_plans, workflows) = (Vec::new(), Vec::new());
        jobs.push(Job { planned: planned.clone(), wf, set, key, env, summary, own, launch_plans, workflows });
    }

    stage.done();
    let stage = Stage::start("serialize");
    // 2. Serialize what the cache does not have, in each workflow's own environment: one
    // long-lived serializer per environment, environments built while others serialize.
    let envs = Envs::new(&repo.root);
    let missing: Vec<usize> =
        (0..jobs.len()).filter(|&i| serialize::cached(&cache_dir, &jobs[i].key).is_none()).collect();
    if !missing.is_empty() {
        let work: Vec<serialize::Work> = missing
            .iter()
            .map(|&i| {
                let job = &jobs[i];
                serialize::Work {
                    name: &job.wf.name,
                    env: &job.env,
                    set: &job.set,
                    packages: &job.wf.packages,
                    image: job.planned.image.as_deref().unwrap_or_default(),
                    images: &job.wf.images,
                    key: &job.key,
                }
            })
            .collect();
        progress.stage("serialized", work.len());
        let own: std::sync::Mutex<HashMap<String, Duration>> = Default::default();
        let results =
            serialize::serialize_all(&repo.root, &envs, &work, &cache_dir, options, &|name, event| match event {
                serialize::Event::Step(what) => progress.step(name, what),
                serialize::Event::Done { own: took, .. } => {
                    own.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), took);
                    progress.done(name, took);
                }
            });

        drop(work);
        for (name, took) in own.into_inner().unwrap_or_else(|e| e.into_inner()) {
            if let Some(job) = jobs.iter_mut().find(|j| j.wf.name == name) {
                job.own += took;
            }
        }
        for (k, r) in results {
            if let Err(e) = r {
                fail(&mut jobs[missing[k]].summary, &e);
            }
        }
        let keep: HashSet<String> = jobs.iter().filter_map(|j| envs.key(&j.env).ok()).collect();
        envs.prune(&keep, crate::artifacts::environment::budget());
    }

    stage.done();
    let stage = Stage::start("images");
    // Two workflows of one project that register the same name would overwrite each
    // other's versions and flip each other's launch plans: refused before anything is
    // registered (bad input, exit 2).
    let named: Vec<(&Workflow, String)> = jobs
        .iter()
        .map(|j| (j.wf, j.key.clone()))
        .chain(plan.workflows.iter().filter(|p| !jobs.iter().any(|j| j.wf.name == p.name)).filter_map(|p| {
            let wf = ws.workflow(&p.name)?;
            let env = Environment::of(&tree, &ws.config, wf).ok()?;
            let key = serialize::cache_key(
                p.code.as_deref()?,
                p.image.as_deref().unwrap_or_default(),
                &wf.packages,
                &env.hash,
                &wf.images,
            );
            Some((wf, key))
        }))
        .collect();
    check_entity_names(&mut packages, &named)?;

    // 3. Images: the ones the serialized tasks name, every decision before anything is built
    // or registered.
    let destination = if sandbox { Destination::Sandbox } else { Destination::FlyteAdmin };
    let registry = Registry::new();
    let mut builder: Option<ImageBuilder> = None;
    let mut checked: HashMap<String, std::result::Result<bool, String>> = HashMap::new();
    progress.stage("images checked", jobs.iter().filter(|j| j.summary.outcome != Outcome::Failed).count());
    for job in jobs.iter_mut() {
        if job.summary.outcome == Outcome::Failed {
            continue;
        }
        let started = Instant::now();
        let name = job.wf.name.clone();
        'images: {
            job.summary.images = serialized_images(&mut packages, &job.key);
            let own = job.wf.dockerfile.as_ref().and(job.planned.image.as_deref()).map(str::to_string);
            // Against the sandbox only the images the code alone names are checked (the
            // configured ones are the user's word, and the sandbox runs nothing); against
            // FlyteAdmin every image, since a task whose image is missing never starts.
            let configured = |i: &str| i == ws.config.images.default || job.wf.images.values().any(|u| u == i);
            let to_check: Vec<String> = job
                .summary
                .images
                .iter()
                .filter(|i| Some(i.as_str()) != own.as_deref() && (!sandbox || !configured(i)))
                .cloned()
                .collect();
            for image in to_check {
                progress.step(&job.wf.name, &format!("checking image {image}"));
                let found = checked.entry(image.clone()).or_insert_with(|| {
                    ImageRef::parse(&image)
                        .and_then(|r| registry.manifest_digest(&r))
                        .map(|d| d.is_some())
                        .map_err(|e| first_line(&e))
                });
                check_code_image(job, &image, found.clone(), destination);
            }
            let Some(image) = own.filter(|i| job.summary.images.contains(i)) else { break 'images };
            progress.step(&job.wf.name, "checking its image");
            let dependencies: Vec<String> = job
                .planned
                .reasons
                .iter()
                .filter(|r| r.kind == ReasonKind::Dependency)
                .map(|r| r.path.clone())
                .collect();
            let exists = ImageRef::parse(&image).and_then(|r| Ok((registry.manifest_digest(&r)?.is_some(), r)));
            let (exists, reference) = match exists {
                Ok(x) => x,
                Err(e) if sandbox => {
                    let changed = if dependencies.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} changed: CI builds the image)", dependencies.join(", "))
                    };
                    job.summary.warnings.push(format!(
                        "image {image} could not be checked{changed}: {}; the sandbox runs no executions",
                        first_line(&e)
                    ));
                    break 'images;
                }
                Err(e) => {
                    fail(&mut job.summary, &e);
                    break 'images;
                }
            };
            let decision = image::decide(&ImageFacts {
                workflow: &job.wf.name,
                reference: &image,
                own_image: true,
                exists,
                may_build,
                destination,
                dependencies: if dependencies.is_empty() { &job.wf.dependencies } else { &dependencies },
            });
            match decision {
                ImageDecision::Reuse => {}
                ImageDecision::Warn(w) => job.summary.warnings.push(w),
                ImageDecision::Refuse(msg) => fail(&mut job.summary, &error::user(msg, "")),
                ImageDecision::Build => {
                    progress.step(&job.wf.name, "building its image");
                    let built = match &builder {
                        Some(b) => Ok(b),
                        None => ImageBuilder::detect(&ws.config).map(|b| &*builder.insert(b)),
                    }
                    .and_then(|b| b.build(&tree, job.wf, &reference, true, &registry));
                    if let Err(e) = built {
                        fail(&mut job.summary, &e);
                    }
                }
            }
        }
        job.own += started.elapsed();
        progress.done(&name, started.elapsed());
    }
    let (failed, mut jobs): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.summary.outcome == Outcome::Failed);
    done.extend(failed.into_iter().map(|j| WorkflowSummary { seconds: j.own.as_secs_f64(), ..j.summary }));

    stage.done();
    let stage = Stage::start("register");
    // 4. Removed workflows: their launch plans deactivated, where the domain activates (where
    // it does not, they belong to whoever activated them, and are left alone).
    let registering = jobs.iter().filter(|j| serialize::cached(&cache_dir, &j.key).is_some()).count();
    progress.stage("registered", registering + removals.len());
    for (planned, mut summary) in removals {
        let started = Instant::now();
        let _done = progress.item(&planned.name, started);
        if !domain.activate {
            summary.warnings.push(format!(
                "its launch plans were left as they are: domain '{}' does not activate (activate = false)",
                domain.name.value
            ));
            summary.seconds = started.elapsed().as_secs_f64();
            done.push(summary);
            continue;
        }
        progress.step(&planned.name, "deactivating launch plans");
        let live: Vec<&str> = ws
            .workflows
            .iter()
            .filter(|w| w.project == planned.project)
            .flat_map(|w| w.packages.iter().map(String::as_str))
            .collect();
        let outcome = deactivate(&admin, repo, plan, planned, &domain.name.value, &history, &live).await;
        match outcome {
            Ok(n) => {
                summary.outcome = Outcome::Deactivated;
                summary.warnings.push(format!("{n} launch plan(s) deactivated: the workflow was removed"));
            }
            Err(e) => fail(&mut summary, &e),
        }
        summary.seconds = started.elapsed().as_secs_f64();
        // Recorded as the change happens, not at the end of the run.
        let record = record_of(repo, plan, &summary, &domain.name.value, Vec::new());
        store.append(&repo.git, &[record]).context("recording the deactivation")?;
        done.push(summary);
    }

    // 5. Package, hydrate and register, workflows concurrently; those that reference
    // entities of other workflows of the monorepo after the others (a second wave), so
    // that what they reference is registered when they are checked.
    let others = Arc::new(others);
    let progress = Arc::new(progress);
    let second_wave: Vec<bool> = jobs.iter().map(|j| refers_to_others(&cache_dir, j, &others)).collect();
    for wave in [false, true] {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, job) in jobs.iter().enumerate() {
            if job.summary.outcome == Outcome::Failed || second_wave[i] != wave {
                continue;
            }
            let Some(cached) = serialize::cached(&cache_dir, &job.key) else { continue };
            let archive = match package::write_archive(&job.set, &repo.git, Vec::new()) {
                Ok(bytes) => bytes,
                Err(e) => {
                    tasks.spawn(async move { (i, Err(e), Duration::ZERO) });
                    continue;
                }
            };
            let admin = admin.clone();
            let target = Target {
                project: job.wf.project.clone(),
                domain: domain.name.value.clone(),
                version: job.planned.version.as_deref().unwrap_or_default().to_string(),
                code_url: None,
                dest_dir: String::new(),
                settings: domain.settings.clone(),
            };
            let filename = format!("{}-{}.tar.gz", job.wf.name, target.version);
            let options = register::Options { activate: domain.activate, ..register::Options::default() };
            let progress = progress.clone();
            let name = job.wf.name.clone();
            let others = others.clone();
            tasks.spawn(async move {
                progress.step(&name, "registering");
                let started = Instant::now();
                let result = async {
                    let package = specs::read_package_file(&cached.path)?;
                    let archive = Some(Archive { filename: &filename, bytes: &archive });
                    let summary = register_package(&admin, &package, target, archive, &options, &others, &name).await?;
                    Ok((summary, launch_plan_names(&package), workflow_names(&package)))
                }
                .await;
                progress.done(&name, started.elapsed());
                (i, result, started.elapsed())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result, took) = joined.context("a registration task panicked")?;
            let job = &mut jobs[i];
            job.own += took;
            match result {
                Ok((reg, launch_plans, workflows)) => {
                    job.launch_plans = launch_plans;
                    job.workflows = workflows;
                    job.summary.entities =
                        Entities { created: reg.created(), existing: reg.existing(), failed: reg.failed() };
                    if reg.errors.is_empty() {
                        // Activating what existed already is a change of state too.
                        job.summary.outcome = if reg.created() == 0 && reg.activated == 0 {
                            Outcome::AlreadyRegistered
                        } else {
                            Outcome::Registered
                        };
                    } else {
                        job.summary.outcome = Outcome::Failed;
                        job.summary.error = Some(reg.errors.join("; "));
                    }
                }
                Err(e) => fail(&mut job.summary, &e),
            }
            // 6. Recorded as the change happens: a run killed later keeps this record. A
            // workflow that changed nothing is recorded only when history lacks its version.
            let version = job.planned.version.as_deref().unwrap_or_default();
            if job.summary.outcome != Outcome::AlreadyRegistered
                || !recorded(&history, &job.wf.name, &domain.name.value, version)
            {
                job.summary.seconds = job.own.as_secs_f64();
                let record = record_of(repo, plan, &job.summary, &domain.name.value, job.launch_plans.clone());
                store.append(&repo.git, &[record]).context("recording the deploy")?;
            }
        }
    }
    for mut job in jobs {
        job.summary.seconds = job.own.as_secs_f64();
        let (project, domain) = (&job.wf.project, &domain.name.value);
        job.summary.link(ws.config.flyte.console.as_deref(), project, domain, &job.workflows, &job.launch_plans);
        done.push(job.summary);
    }
    progress.finish();
    stage.done();

    // 7. Report.
    done.sort_by(|a, b| a.name.cmp(&b.name));
    admin.close().await.ok();
    Ok(Summary { domain: domain.name.value.clone(), base: plan.base.clone(), head: plan.head.clone(), workflows: done })
}

/// Every workflow of the plan with a version, by the Python packages that name its
/// entities: a reference to one of them from another workflow resolves to its version.
#[derive(Default)]
pub(crate) struct Others {
    /// (package, workflow, project, version)
    owners: Vec<(String, String, String, String)>,
    /// Workflows that other entries of the same plan deploy (a CI matrix job deploys one):
    /// what they define may appear while this run waits for it.
    pub(crate) elsewhere: HashSet<String>,
    /// How long to wait for an entity of one of them.
    pub(crate) wait: Duration,
}

/// `FLYTE_DEPLOY_REFERENCE_WAIT`, default 20 minutes (a job that builds an image first).
fn reference_wait() -> Result<Duration> {
    let var = settings::FLYTE_DEPLOY_REFERENCE_WAIT;
    let Some(value) = var.get() else { return Ok(Duration::from_secs(20 * 60)) };
    serialize::parse_timeout(&value).ok_or_else(|| {
        error::user(
            format!("{var}={value}: not a duration"),
            "give seconds (1200) or a duration with its unit (20m, 90s), more than zero",
        )
    })
}

impl Others {
    fn of(ws: &Workspace, plan: &Plan<'_>) -> Others {
        let versions = plan
            .workflows
            .iter()
            .filter(|p| p.action != Action::Removed)
            .filter_map(|p| Some((p.name.to_string(), p.version.as_deref()?.to_string())));
        Others::from_versions(ws, versions)
    }

    /// From (workflow, version) pairs of the workflows of `ws`.
    pub(crate) fn from_versions(ws: &Workspace, versions: impl Iterator<Item = (String, String)>) -> Others {
        let mut owners = Vec::new();
        for (name, version) in versions {
            let Some(wf) = ws.workflow(&name) else { continue };
            for package in &wf.packages {
                owners.push((package.clone(), wf.name.clone(), wf.project.clone(), version.clone()));
            }
        }
        Others { owners, ..Others::default() }
    }

    /// `Others::owner`'s version, as the resolver hydration takes.
    pub(crate) fn version(&self, me: &str, project: &str, entity: &str) -> Option<String> {
        self.owner(me, project, entity).map(|(_, v)| v.to_string())
    }

    /// The workflow (other than `me`, in `project`) whose package names `entity`, and its version.
    fn owner(&self, me: &str, project: &str, entity: &str) -> Option<(&str, &str)> {
        self.owners
            .iter()
            .find(|(package, wf, p, _)| wf != me && p == project && entity.starts_with(&format!("{package}.")))
            .map(|(_, wf, _, v)| (wf.as_str(), v.as_str()))
    }
}

/// True when the workflow's serialized specs reference an entity of another workflow with
/// the version left to registration (so it resolves to that workflow's version).
fn refers_to_others(cache_dir: &Path, job: &Job, others: &Others) -> bool {
    let Some(cached) = serialize::cached(cache_dir, &job.key) else { return false };
    let Ok(package) = specs::read_package_file(&cached.path) else { return false };
    let target = Target {
        project: job.wf.project.clone(),
        domain: "d".into(),
        version: "\u{0}".into(),
        code_url: Some(String::new()),
        dest_dir: String::new(),
        settings: Default::default(),
    };
    let other = |name: &str| others.owner(&job.wf.name, &job.wf.project, name).map(|(_, v)| v.to_string());
    hydrate::hydrate_package_resolving(&package, &target, &other)
        .is_ok_and(|all| all.iter().any(|h| h.references.iter().any(|r| r.version != target.version)))
}

/// `register::register_package`, with references to entities of other workflows of the
/// monorepo resolved to their versions, and every referenced entity from outside the package
/// checked to be registered before anything of this workflow is: else it fails naming both
/// workflows (or the reference, when no workflow here defines it).
pub(crate) async fn register_package(
    admin: &Admin,
    package: &Package,
    target: Target,
    archive: Option<Archive<'_>>,
    options: &register::Options,
    others: &Others,
    me: &str,
) -> Result<register::Summary> {
    let target = register::upload(admin, &target, archive).await?;
    let other = |name: &str| others.owner(me, &target.project, name).map(|(_, v)| v.to_string());
    let hydrated = hydrate::hydrate_package_resolving(package, &target, &other)?;
    let own: HashSet<&Identifier> = hydrated.iter().map(|h| &h.id).collect();
    let mut checked = HashSet::new();
    for r in hydrated.iter().flat_map(|h| &h.references) {
        if own.contains(r) || !checked.insert(r.clone()) {
            continue;
        }
        // Every entity referenced from outside the package must be registered before
        // anything of it is: a monorepo workflow's at that workflow's version, and one the
        // code pins (to another version, or one no workflow here defines) as pinned.
        let owner = others.owner(me, &target.project, &r.name);
        let kind = r.kind().context("a reference of an unknown kind")?;
        if admin.get(kind, r).await?.is_some() {
            continue;
        }
        // Another entry of the plan deploys it (matrix jobs run at once): wait for it.
        if let Some((owner, _)) = owner.filter(|(o, v)| r.version == *v && others.elsewhere.contains(*o)) {
            crate::output::status(format_args!(
                "{me}: waiting up to {} for {kind} '{}' of workflow '{owner}', which another job of this plan deploys",
                humantime::format_duration(others.wait),
                r.name
            ));
            let until = Instant::now() + others.wait;
            let mut found = false;
            while !found && Instant::now() < until {
                tokio::time::sleep(Duration::from_secs(3)).await;
                found = admin.get(kind, r).await?.is_some();
            }
            if found {
                continue;
            }
        }
        return Err(match owner.filter(|(_, version)| r.version == *version) {
            Some((owner, version)) => error::user(
                format!(
                    "workflow '{me}' references {kind} '{}' of workflow '{owner}' at {owner}'s version {version}, \
                     which is not registered in domain '{}'; nothing of '{me}' was registered",
                    r.name, target.domain
                ),
                format!(
                    "deploy '{owner}' to '{}' first (fix what failed, or `cargo xtask deploy --domain {} --workflow \
                     {owner}`), then deploy '{me}' again",
                    target.domain, target.domain
                ),
            ),
            None => {
                let (project, domain, version) = (&r.project, &r.domain, &r.version);
                let whose = match owner {
                    Some((owner, theirs)) => {
                        format!("pinned by the code to version '{version}', not {owner}'s {theirs}")
                    }
                    None if *version == target.version => format!(
                        "which no workflow of this repository defines, at this workflow's own version '{version}' \
                         (the code leaves it to {{{{ registration.version }}}})"
                    ),
                    None => format!("which no workflow of this repository defines, at version '{version}'"),
                };
                error::user(
                    format!(
                        "workflow '{me}' references {kind} '{}' in {project}/{domain}, {whose}; it is not registered \
                         there, so nothing of '{me}' was registered",
                        r.name
                    ),
                    "register that entity first, or correct the reference's project, domain, name or version in the code",
                )
            }
        });
    }
    Ok(register::register_entities(admin, hydrated.iter().map(register::entity).collect(), options).await)
}

fn new_summary(planned: &PlannedWorkflow<'_>) -> WorkflowSummary {
    WorkflowSummary::new(
        &planned.name,
        planned.action.as_str(),
        planned.version.as_deref().map(str::to_string),
        planned.image.as_deref().map(str::to_string),
        Outcome::Skipped,
    )
}

fn fail(summary: &mut WorkflowSummary, e: &anyhow::Error) {
    summary.outcome = Outcome::Failed;
    summary.error = Some(format!("{e:#}"));
}

fn first_line(e: &anyhow::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

fn record_of(repo: &Repo, plan: &Plan<'_>, s: &WorkflowSummary, domain: &str, launch_plans: Vec<String>) -> Record {
    Record {
        commit: plan.head.clone(),
        workflow: s.name.clone(),
        domain: domain.into(),
        version: s.version.clone().unwrap_or_default(),
        image: s.image.clone().unwrap_or_default(),
        actor: record::actor(&repo.git),
        time: record::now(),
        outcome: s.outcome.as_str().into(),
        promoted_from: None,
        launch_plans,
    }
}

/// The serialization cache's packages, each read (decompressed) once per run: an unchanged
/// workflow's package is wanted for its launch plans, its images and the name check. Only
/// hits are kept, since a miss may be serialized later in the run.
struct Packages<'c> {
    dir: &'c Path,
    read: HashMap<String, std::rc::Rc<Package>>,
}

impl<'c> Packages<'c> {
    fn new(dir: &'c Path) -> Packages<'c> {
        Packages { dir, read: HashMap::new() }
    }

    fn get(&mut self, key: &str) -> Option<std::rc::Rc<Package>> {
        if let Some(p) = self.read.get(key) {
            return Some(p.clone());
        }
        let hit = serialize::cached(self.dir, key)?;
        let package = std::rc::Rc::new(specs::read_package_file(&hit.path).ok()?);
        self.read.insert(key.to_string(), package.clone());
        Some(package)
    }
}

/// The images the tasks of a cached serialization name.
fn serialized_images(packages: &mut Packages<'_>, key: &str) -> Vec<String> {
    packages.get(key).map(|p| specs::task_images(&p)).unwrap_or_default()
}

/// Acts on whether an image a task names exists (other than the workflow's Dockerfile
/// image): against the sandbox a missing or unreachable one is a warning; against FlyteAdmin
/// it fails the workflow, since its tasks would not start and flyte-deploy builds only
/// Dockerfile images.
fn check_code_image(job: &mut Job, image: &str, exists: std::result::Result<bool, String>, destination: Destination) {
    let problem = match exists {
        Ok(true) => return,
        Ok(false) => "is not in its registry".to_string(),
        Err(e) => format!("could not be checked: {e}"),
    };
    match destination {
        Destination::FlyteAdmin => fail(
            &mut job.summary,
            &error::user(
                format!("image {image}, which tasks of workflow {} run in, {problem}", job.wf.name),
                "build and push it before deploying (flyte-deploy builds only Dockerfile images: ImageSpec \
                 images with `pyflyte build` or your CI's image job), or correct [images] in deploy.toml",
            ),
        ),
        _ => job.summary.warnings.push(format!(
            "image {image}, named by the code (ImageSpec or container_image), {problem}; the sandbox runs no executions"
        )),
    }
}

/// The launch plans of a workflow at a version, without Python: from the serialized package
/// in the cache, else from an earlier record of the same version.
fn known_launch_plans(
    packages: &mut Packages<'_>,
    key: &str,
    history: &[Record],
    workflow: &str,
    version: &str,
) -> Option<Vec<String>> {
    if let Some(package) = packages.get(key) {
        return Some(launch_plan_names(&package));
    }
    history
        .iter()
        .rev()
        .find(|r| r.workflow == workflow && r.version == version && !r.launch_plans.is_empty())
        .map(|r| r.launch_plans.clone())
}

/// Refuses two workflow folders of one project whose serialized packages (in the cache)
/// hold an entity of the same kind and name, unless the entity comes from a shared path
/// both declare (a task of `libs/common` is registered by each of its users, under each
/// one's own version, which is as it should be).
fn check_entity_names(packages: &mut Packages<'_>, workflows: &[(&Workflow, String)]) -> Result<()> {
    let mut owners: HashMap<(&str, Kind, String), &Workflow> = HashMap::new();
    let mut clashes: Vec<(String, String, &str, &str, String)> = Vec::new();
    let shared_by_both = |a: &Workflow, b: &Workflow, name: &str| {
        let package = |s: &String| s.rsplit('/').next().unwrap_or_default().to_string();
        a.shared.iter().any(|s| b.shared.contains(s) && name.starts_with(&format!("{}.", package(s))))
    };
    for (wf, key) in workflows {
        let Some(package) = packages.get(key) else { continue };
        for (kind, name) in specs::entity_names(&package) {
            match owners.get(&(wf.project.as_str(), kind, name.clone())) {
                Some(other) if other.path != wf.path && !shared_by_both(other, wf, &name) => {
                    let (a, b) = if other.path < wf.path { (&other.path, &wf.path) } else { (&wf.path, &other.path) };
                    clashes.push((name.clone(), kind.to_string(), a, b, wf.project.clone()));
                }
                Some(_) => {}
                None => {
                    owners.insert((wf.project.as_str(), kind, name), wf);
                }
            }
        }
    }
    clashes.sort();
    let Some((name, kind, a, b, project)) = clashes.first() else { return Ok(()) };
    let more = if clashes.len() > 1 { format!(" ({} more names clash)", clashes.len() - 1) } else { String::new() };
    Err(error::user(
        format!(
            "{a} and {b} both register {kind} '{name}' in project {project}{more}: each deploy would \
             overwrite the other's version and flip its launch plans; nothing was registered"
        ),
        format!("rename the {kind} in one of them, or give one of them another `project` in its workflow.toml"),
    ))
}

/// The names of the Flyte workflows a package registers.
pub(crate) fn workflow_names(package: &Package) -> Vec<String> {
    specs::entity_names(package).into_iter().filter(|(kind, _)| *kind == Kind::Workflow).map(|(_, n)| n).collect()
}

fn launch_plan_names(package: &Package) -> Vec<String> {
    package
        .entities
        .iter()
        .filter(|e| e.kind == Kind::LaunchPlan)
        .filter_map(|e| pb::LaunchPlan::decode(e.bytes.as_slice()).ok())
        .filter_map(|lp| lp.id.map(|id| id.name))
        .collect()
}

/// True when a record says `workflow` reached `version` in `domain` (registered, promoted or
/// rolled back there).
fn recorded(history: &[Record], workflow: &str, domain: &str, version: &str) -> bool {
    history.iter().any(|r| {
        r.workflow == workflow && r.domain == domain && r.version == version && r.outcome != Outcome::Failed.as_str()
    })
}

/// True when every launch plan exists at `version` in the domain and, where the domain
/// activates, is active: they are registered last and activated after, so the whole
/// workflow is there.
async fn complete(
    admin: &Admin,
    project: &str,
    domain: &str,
    version: &str,
    names: &[String],
    activate: bool,
) -> Result<bool> {
    if names.is_empty() {
        return Ok(false);
    }
    for name in names {
        let id = Identifier::new(Kind::LaunchPlan, project, domain, name, version);
        match admin.launch_plan_active(&id).await? {
            Some(true) => {}
            Some(false) if !activate => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Deactivates the active launch plans of a removed workflow in the domain: those named in
/// its records, else those whose workflow lives in one of its packages (as they were at base).
async fn deactivate(
    admin: &Admin,
    repo: &Repo,
    plan: &Plan<'_>,
    planned: &PlannedWorkflow<'_>,
    domain: &str,
    history: &[Record],
    live: &[&str],
) -> Result<usize> {
    let project = &planned.project;
    let mut names: Vec<String> = history
        .iter()
        .rev()
        .find(|r| r.workflow == planned.name && !r.launch_plans.is_empty())
        .map(|r| r.launch_plans.clone())
        .unwrap_or_default();
    let packages = base_packages(repo, plan, &planned.name)?;
    let mut count = 0;
    let mut candidates: HashMap<String, ()> = names.drain(..).map(|n| (n, ())).collect();
    if candidates.is_empty() {
        for name in admin.list_names(Kind::LaunchPlan, project, domain).await? {
            candidates.insert(name, ());
        }
    }
    for name in candidates.keys() {
        for bytes in admin.list(Kind::LaunchPlan, project, domain, name).await? {
            let lp = pb::LaunchPlan::decode(bytes.as_slice()).context("decoding a launch plan")?;
            let active = lp.closure.as_ref().is_some_and(|c| c.state() == pb::LaunchPlanState::Active);
            let workflow = lp.spec.as_ref().and_then(|s| s.workflow_id.as_ref()).map(|w| w.name.clone());
            // A package that a workflow of the head still has (a renamed folder) is not ours.
            let inside = |w: &str, p: &str| w.starts_with(&format!("{p}."));
            let ours =
                workflow.is_some_and(|w| packages.iter().any(|p| inside(&w, p)) && !live.iter().any(|p| inside(&w, p)));
            if active && ours {
                let id = lp.id.clone().context("a launch plan without id")?;
                admin
                    .set_launch_plan_active(&id, false)
                    .await
                    .map_err(|s| crate::registration::admin::status_error(&admin.endpoint, "UpdateLaunchPlan", s))?;
                count += 1;
            }
        }
    }
    Ok(count)
}

/// The Python packages a workflow had at the plan's base.
fn base_packages(repo: &Repo, plan: &Plan, name: &str) -> Result<Vec<String>> {
    let Some(base) = &plan.base else { return Ok(Vec::new()) };
    let commit = repo.commit(base)?;
    let tree = GitTree::at_commit(&repo.git, &commit)?;
    let ws = Workspace::load(&tree)?;
    Ok(ws.workflow(name).map(|w| w.packages.clone()).unwrap_or_default())
}

/// Progress of a deploy, stage by stage: on a terminal a live counter (`[12/59] serialized`)
/// with the workflow being worked on, and each finished stage's line; elsewhere nothing, but
/// with `-v` a line per workflow done (`[12/59] serialized etl (3.1s)`), its own time.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    lines: bool,
    /// The stage's word and size, for the lines.
    stage: std::sync::Mutex<(&'static str, usize)>,
    count: std::sync::atomic::AtomicUsize,
}

impl Progress {
    fn new() -> Progress {
        use crate::output::{verbosity, Verbosity};
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = (terminal && verbosity() != Verbosity::Quiet).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {prefix} {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar
        });
        Progress {
            bar,
            lines: !terminal && verbosity() == Verbosity::Verbose,
            stage: std::sync::Mutex::new(("", 0)),
            count: Default::default(),
        }
    }

    /// A new stage of `total` workflows; the one before is said done (on a terminal).
    fn stage(&self, word: &'static str, total: usize) {
        let mut stage = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = &self.bar {
            if stage.1 > 0 {
                bar.println(format!("[{}/{}] {}", bar.position(), stage.1, stage.0));
            }
            if stage.1 == 0 && stage.0.is_empty() {
                // The first stage: the bar starts drawing now, not before it counts anything.
                bar.enable_steady_tick(Duration::from_millis(120));
            }
            bar.set_position(0);
            bar.set_length(total as u64);
            bar.set_prefix(word);
            bar.set_message("");
        }
        *stage = (word, total);
        self.count.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// What a workflow is doing now (with `-v` off a terminal, a line: CI logs, and the
    /// tests that stop a deploy at a given step, read them).
    fn step(&self, workflow: &str, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("· {workflow}: {what}"));
        }
        if self.lines {
            eprintln!("{workflow}: {what}");
        }
    }

    /// A workflow is through the stage, having taken `own`.
    fn done(&self, workflow: &str, own: Duration) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.lines {
            let n = self.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let (word, total) = *self.stage.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("[{n}/{total}] {word} {workflow} ({:.1}s)", own.as_secs_f64());
        }
    }

    /// A guard that says the workflow done when it goes out of scope (however its iteration
    /// ends).
    fn item<'p>(&'p self, workflow: &str, started: Instant) -> Item<'p> {
        Item { progress: self, workflow: workflow.to_string(), started }
    }

    /// The last stage said done, the bar cleared.
    fn finish(&self) {
        let stage = self.stage.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = &self.bar {
            if stage.1 > 0 {
                bar.println(format!("[{}/{}] {}", bar.position(), stage.1, stage.0));
            }
            bar.finish_and_clear();
        }
    }
}

/// See [`Progress::item`].
struct Item<'p> {
    progress: &'p Progress,
    workflow: String,
    started: Instant,
}

impl Drop for Item<'_> {
    fn drop(&mut self) {
        self.progress.done(&self.workflow, self.started.elapsed());
    }
}
