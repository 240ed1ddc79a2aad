//! `cargo xtask promote --from staging --to production [WORKFLOW...] [--commit REV]`: puts
//! into the target domain exactly what the source domain has for the commit's versions.
//!
//! Per workflow: the version the commit's content names (`fingerprint`), the specs pyflyte
//! wrote for it (the serialization cache, never a new pyflyte run), a check that every one
//! of them is registered in the source domain, then the same specs re-hydrated for the
//! target domain (same version and image, the target's settings), the code archive rebuilt
//! from the commit and checked to be the very archive the source's tasks use (same MD5),
//! registration, and activation of the launch plans that are active in the source.
//! Branch policy is checked before anything is uploaded. Builds no image and edits no
//! spec itself (`hydrate.rs` does).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use flyteidl::flyteidl::core::ResourceType;

use crate::admin::Admin;
use crate::base::{self, CiContext};
use crate::cli::{Promote, ReportFormat};
use crate::codeset::CodeSet;
use crate::config::Config;
use crate::error;
use crate::fingerprint::{self, Fingerprint};
use crate::hydrate::{self, Kind, Target};
use crate::policy::{self, Context as PolicyContext, Operation};
use crate::record::{self, Record};
use crate::register::{self, Archive, Options};
use crate::repo::Repo;
use crate::serialize;
use crate::source::GitTree;
use crate::specs::{self, Package};
use crate::summary::{Entities, Outcome, Summary, WorkflowSummary};
use crate::wire;
use crate::workspace::{Workflow, Workspace};

/// The `action` promote reports for every workflow (deploy reports the plan's action).
pub const ACTION: &str = "promote";

/// The container arg pyflyte puts right before the code archive's URL.
const ADDITIONAL_DISTRIBUTION: &str = "--additional-distribution";

pub fn run(args: Promote) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let commit = repo.commit(&args.commit)?;
    let tree = GitTree::at_commit(&repo.git, &commit)?;
    let ws = Workspace::load(&tree)?;
    let config = &ws.config;
    let declared = || config.domains.iter().map(|d| d.name.value.as_str()).collect::<Vec<_>>().join(", ");
    let target_domain = config.domain(&args.to).ok_or_else(|| {
        error::user(
            format!("--to '{}' is not a domain of {}", args.to, config.file.display()),
            format!("use one of: {}", declared()),
        )
    })?;
    let branch = base::branch(&repo, &args.commit, &CiContext::from_env());
    policy::check(
        config,
        target_domain,
        Operation::Promote { from: &args.from },
        PolicyContext { branch: branch.as_deref(), ci: crate::image::in_ci() },
    )?;
    let workflows: Vec<&Workflow> =
        if args.workflows.is_empty() { ws.workflows.iter().collect() } else { ws.select(&args.workflows)? };

    let cache_dir = repo.root.join(serialize::CACHE_DIR);
    let mut prepared = Vec::new();
    for wf in workflows {
        let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
        let fp = fingerprint::of_commit(&commit, &tree, &set, &ws, wf)?;
        let key = serialize::cache_key(&fp.code, &fp.image, &wf.packages);
        let package = match serialize::cached(&cache_dir, &key) {
            Some(hit) => Some(specs::read_package_file(&hit.path)?),
            None => None,
        };
        let archive = if set.entries.is_empty() {
            None
        } else {
            Some(crate::package::write_archive(&set, &repo.git, Vec::new())?)
        };
        prepared.push(Prepared { wf: wf.clone(), fp, key, package, archive });
    }

    let head = commit.id().to_string();
    let promotion = Promotion {
        config,
        from: &args.from,
        to: &args.to,
        commit: &head,
        target_settings: target_domain.settings.clone(),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let results = runtime.block_on(async {
        let admin = Admin::connect(config, &repo.root).await?;
        let mut results = Vec::new();
        for p in &prepared {
            let started = Instant::now();
            let mut summary = promotion.promote(&admin, p).await;
            summary.seconds = started.elapsed().as_secs_f64();
            let launch_plans = p.launch_plan_names();
            results.push((summary, launch_plans));
        }
        admin.close().await?;
        anyhow::Ok(results)
    })?;

    let records = records(&repo, &promotion, &prepared, &results)?;
    record::append_notes(&repo.git, commit.id(), &records)?;

    let summary =
        Summary { domain: args.to.clone(), base: None, head, workflows: results.into_iter().map(|r| r.0).collect() };
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        ReportFormat::Text => print!("{}", summary.text()),
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append_file(Path::new(&path), &summary.markdown())?;
    }
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One workflow, ready to promote: its fingerprint at the commit, the cached pyflyte
/// package (if the cache has it) and the code archive rebuilt from the commit.
struct Prepared {
    wf: Workflow,
    fp: Fingerprint,
    key: String,
    package: Option<Package>,
    archive: Option<Vec<u8>>,
}

impl Prepared {
    fn launch_plan_names(&self) -> Vec<String> {
        let Some(package) = &self.package else { return Vec::new() };
        let mut names: Vec<String> = package
            .entities
            .iter()
            .filter(|e| e.kind == Kind::LaunchPlan)
            .filter_map(|e| wire::last_len(&e.bytes, 1).ok().flatten())
            .filter_map(|id| hydrate::Identifier::from_wire(id).ok())
            .map(|id| id.name)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// What is promoted where.
struct Promotion<'a> {
    config: &'a Config,
    from: &'a str,
    to: &'a str,
    commit: &'a str,
    target_settings: crate::config::DomainSettings,
}

impl Promotion<'_> {
    fn short_commit(&self) -> &str {
        &self.commit[..12.min(self.commit.len())]
    }

    fn deploy_first(&self) -> String {
        format!(
            "deploy commit {} to {} first (`cargo xtask deploy --domain {}` from a branch that deploys there), \
             then promote again",
            self.short_commit(),
            self.from,
            self.from
        )
    }

    fn target(&self, p: &Prepared, domain: &str) -> Target {
        Target {
            project: p.wf.project.clone(),
            domain: domain.to_string(),
            version: p.fp.version.clone(),
            code_url: None,
            dest_dir: "/root".into(),
            settings: if domain == self.to {
                self.target_settings.clone()
            } else {
                self.config.domain(domain).map(|d| d.settings.clone()).unwrap_or_default()
            },
        }
    }

    /// Promotes one workflow; every failure is in the returned summary.
    async fn promote(&self, admin: &Admin, p: &Prepared) -> WorkflowSummary {
        let mut summary = WorkflowSummary {
            name: p.wf.name.clone(),
            action: ACTION.into(),
            version: Some(p.fp.version.clone()),
            image: Some(p.fp.image.clone()),
            outcome: Outcome::Failed,
            entities: Entities::default(),
            warnings: Vec::new(),
            error: None,
            seconds: 0.0,
        };
        match self.promote_package(admin, p, &mut summary).await {
            Ok(()) => {}
            Err(e) => summary.error = Some(format!("{e:#}")),
        }
        summary
    }

    async fn promote_package(&self, admin: &Admin, p: &Prepared, summary: &mut WorkflowSummary) -> Result<()> {
        let Some(package) = &p.package else {
            return Err(self.no_package(admin, p).await);
        };
        // The source's entities: every spec of the package, at this version, in the source domain.
        let mut source_target = self.target(p, self.from);
        source_target.code_url = Some(String::new());
        let source_ids = hydrate::hydrate_package(package, &source_target)?;
        let mut missing = Vec::new();
        let mut source_tasks = Vec::new();
        for h in &source_ids {
            match admin.get(register::resource_type(h.kind), &h.id.to_prost()).await? {
                None => missing.push(h.id.to_string()),
                Some(entity) if h.kind == Kind::Task => source_tasks.push((h, entity)),
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "version {} of '{}' is not registered in '{}' (missing: {}); nothing was registered in '{}': {}",
                p.fp.version,
                p.wf.name,
                self.from,
                missing.join(", "),
                self.to,
                self.deploy_first()
            );
        }

        // The code archive: the one the source's tasks use, rebuilt byte for byte.
        let source_url = source_code_url(package, &source_tasks)?;
        let archive = match &source_url {
            None => None,
            Some(url) => {
                let filename = url.rsplit('/').next().unwrap_or_default().to_string();
                let mut candidates: Vec<&[u8]> = Vec::new();
                if let Some(bytes) = &p.archive {
                    candidates.push(bytes);
                }
                if let Some((_, bytes)) = &package.fast_archive {
                    candidates.push(bytes);
                }
                let mut found = None;
                for bytes in candidates {
                    let location = admin.create_upload_location(&p.wf.project, self.from, &filename, bytes).await?;
                    if &location.native_url == url {
                        found = Some(bytes);
                        break;
                    }
                }
                let Some(bytes) = found else {
                    anyhow::bail!(
                        "the code archive rebuilt from commit {} is not the one the tasks in '{}' use ({url}); \
                         nothing was registered in '{}': {}",
                        self.short_commit(),
                        self.from,
                        self.to,
                        self.deploy_first()
                    );
                };
                Some((filename, bytes))
            }
        };

        // Register the same specs into the target domain.
        let target = self.target(p, self.to);
        let options = Options { activate: false, ..Options::default() };
        let archive = archive.as_ref().map(|(filename, bytes)| Archive { filename, bytes });
        let registered = register::register_package(admin, package, &target, archive, &options).await?;
        summary.entities =
            Entities { created: registered.created(), existing: registered.existing(), failed: registered.failed() };
        if !registered.errors.is_empty() {
            anyhow::bail!("{}", registered.errors.join("; "));
        }

        // Activate in the target what is active in the source.
        let mut activated = 0;
        for h in source_ids.iter().filter(|h| h.kind == Kind::LaunchPlan) {
            let source_id = h.id.to_prost();
            if admin.launch_plan_active(&source_id).await? != Some(true) {
                continue;
            }
            let mut target_id = source_id.clone();
            target_id.domain = self.to.to_string();
            if admin.launch_plan_active(&target_id).await? == Some(true) {
                continue;
            }
            admin
                .set_launch_plan_active(&target_id, true)
                .await
                .map_err(|s| crate::admin::status_error(&admin.endpoint, "activating a launch plan", s))
                .with_context(|| format!("activating {}", register::describe(ResourceType::LaunchPlan, &target_id)))?;
            activated += 1;
        }
        summary.outcome =
            if registered.created() > 0 || activated > 0 { Outcome::Registered } else { Outcome::AlreadyRegistered };
        Ok(())
    }

    /// The error for a workflow whose pyflyte package is not in the cache: "deploy first"
    /// when the source domain does not have the version either, else how to get the cache.
    async fn no_package(&self, admin: &Admin, p: &Prepared) -> anyhow::Error {
        let in_source = async {
            let names = admin.list_names(ResourceType::Workflow, &p.wf.project, self.from).await?;
            for name in names.iter().filter(|n| p.wf.packages.iter().any(|pkg| n.starts_with(&format!("{pkg}.")))) {
                let id = flyteidl::flyteidl::core::Identifier {
                    resource_type: ResourceType::Workflow as i32,
                    project: p.wf.project.clone(),
                    domain: self.from.to_string(),
                    name: name.clone(),
                    version: p.fp.version.clone(),
                    org: String::new(),
                };
                if admin.get(ResourceType::Workflow, &id).await?.is_some() {
                    return anyhow::Ok(true);
                }
            }
            Ok(false)
        };
        match in_source.await {
            Ok(false) => anyhow::anyhow!(
                "version {} of '{}' is not registered in '{}'; nothing was registered in '{}': {}",
                p.fp.version,
                p.wf.name,
                self.from,
                self.to,
                self.deploy_first()
            ),
            Ok(true) => anyhow::anyhow!(
                "version {} of '{}' is in '{}', but the specs pyflyte wrote for it are not in {}/{}.tgz, and \
                 promotion never runs pyflyte; nothing was registered in '{}': restore the serialization cache of \
                 the {} deploy (cache {} between CI jobs)",
                p.fp.version,
                p.wf.name,
                self.from,
                serialize::CACHE_DIR,
                p.key,
                self.to,
                self.from,
                serialize::CACHE_DIR
            ),
            Err(e) => e.context(format!("checking '{}' in '{}'", p.wf.name, self.from)),
        }
    }
}

/// The code archive URL the source's tasks use: the arg at the position where the package's
/// task has `{{ .remote_package_path }}` (right after `--additional-distribution`). `None`
/// when no task is fast-registered. All tasks must agree.
fn source_code_url(package: &Package, source_tasks: &[(&hydrate::Hydrated, Vec<u8>)]) -> Result<Option<String>> {
    let mut url: Option<String> = None;
    for spec in package.entities.iter().filter(|e| e.kind == Kind::Task) {
        let args = container_args(&spec.bytes)?;
        let Some(position) = args.iter().position(|a| a == hydrate::REMOTE_PACKAGE_PATH) else { continue };
        let id = hydrate::Identifier::from_wire(
            wire::last_len(wire::last_len(&spec.bytes, 1)?.unwrap_or_default(), 1)?.unwrap_or_default(),
        )?;
        let Some((_, entity)) = source_tasks.iter().find(|(h, _)| h.id.name == id.name) else { continue };
        let source_spec = crate::admin::spec_of(ResourceType::Task, entity);
        let source_args = container_args(&source_spec)?;
        let found =
            source_args.get(position).filter(|_| position == 0 || source_args[position - 1] == args[position - 1]);
        let Some(found) = found else {
            anyhow::bail!(
                "task {} in the source domain has no code archive URL where the package has {} (after {})",
                id.name,
                hydrate::REMOTE_PACKAGE_PATH,
                ADDITIONAL_DISTRIBUTION
            );
        };
        match &url {
            Some(u) if u != found => {
                anyhow::bail!("the tasks of the source domain use two code archives: {u} and {found}")
            }
            _ => url = Some(found.clone()),
        }
    }
    Ok(url)
}

/// The container args of an `admin.TaskSpec` (template = 1, container = 6, args = 3).
fn container_args(task_spec: &[u8]) -> Result<Vec<String>> {
    let template = wire::last_len(task_spec, 1)?.unwrap_or_default();
    let Some(container) = wire::last_len(template, 6)? else { return Ok(Vec::new()) };
    Ok(wire::all_len(container, 3)?.into_iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// The records of this promotion: one per workflow that is now in the target domain,
/// unless an identical promotion is recorded already (a re-run adds nothing).
fn records(
    repo: &Repo,
    promotion: &Promotion<'_>,
    prepared: &[Prepared],
    results: &[(WorkflowSummary, Vec<String>)],
) -> Result<Vec<Record>> {
    let existing = record::read_notes(&repo.git)?;
    let actor = record::actor(&repo.git);
    let time = record::now();
    let mut out = Vec::new();
    for (p, (summary, launch_plans)) in prepared.iter().zip(results) {
        if !matches!(summary.outcome, Outcome::Registered | Outcome::AlreadyRegistered) {
            continue;
        }
        let known = existing.iter().any(|r| {
            r.commit == promotion.commit
                && r.workflow == p.wf.name
                && r.domain == promotion.to
                && r.version == p.fp.version
                && r.promoted_from.as_deref() == Some(promotion.from)
        });
        if summary.outcome == Outcome::AlreadyRegistered && known {
            continue;
        }
        out.push(Record {
            commit: promotion.commit.to_string(),
            workflow: p.wf.name.clone(),
            domain: promotion.to.to_string(),
            version: p.fp.version.clone(),
            image: p.fp.image.clone(),
            actor: actor.clone(),
            time: time.clone(),
            outcome: summary.outcome.as_str().to_string(),
            promoted_from: Some(promotion.from.to_string()),
            launch_plans: launch_plans.clone(),
        });
    }
    Ok(out)
}

fn append_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
