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

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use flyte_api::fields::{container, task_spec, task_template};
use flyte_api::{Identifier, Kind, Message};

use crate::args::Promote;
use crate::artifacts::codeset::CodeSet;
use crate::artifacts::serialize;
use crate::artifacts::specs::{self, Package};
use crate::config::Config;
use crate::error;
use crate::plan::base::{self, CiContext};
use crate::plan::fingerprint::{self, Fingerprint};
use crate::registration::admin::Admin;
use crate::registration::hydrate::{self, Target};
use crate::registration::policy::{self, Context as PolicyContext, Operation};
use crate::registration::record::{self, Record, Store};
use crate::registration::register::{self, Archive, Options};
use crate::report::summary::{Entities, Outcome, Summary, WorkflowSummary};
use crate::workspace::repo::Repo;
use crate::workspace::source::GitTree;
use crate::workspace::{Workflow, Workspace};
use flyte_api::wire;

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
        PolicyContext { branch: branch.as_deref(), ci: crate::settings::in_ci() },
    )?;
    let workflows: Vec<&Workflow> =
        if args.workflows.is_empty() { ws.workflows.iter().collect() } else { ws.select(&args.workflows)? };

    if let Some(warning) = crate::pipeline::deploy::uncommitted(&repo, &args.commit, &workflows, "promoted") {
        crate::output::warning(warning);
    }
    let cache_dir = serialize::CacheDir::of(&repo.git, &repo.root, &commit)?;
    if let Some(why) = &cache_dir.committed {
        crate::output::warning(why);
    }
    let stage = crate::output::Stage::start("versions and archives");
    let mut prepared = Vec::new();
    for wf in workflows {
        let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
        let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf)?;
        let key = serialize::cache_key(&fp.code, &fp.image, &wf.packages, &fp.environment, &wf.images);
        let package = match serialize::cached(&cache_dir, &key) {
            Some(hit) => Some(specs::read_package_file(&hit.path)?),
            None => None,
        };
        let archive = if set.entries.is_empty() {
            None
        } else {
            Some(crate::artifacts::package::write_archive(&set, &repo.git, Vec::new())?)
        };
        prepared.push(Prepared { wf: wf.clone(), fp, key, package, archive });
    }

    stage.done();
    let head = commit.id().to_string();
    let promotion = Promotion {
        config,
        from: &args.from,
        to: &args.to,
        commit: &head,
        target_settings: target_domain.settings.clone(),
        others: crate::pipeline::deploy::Others::from_versions(
            &ws,
            versions_at(&repo, &commit, &tree, &ws, &prepared)?,
        ),
    };
    let store = Store::for_address(&crate::registration::admin::Address::from_config(config, &repo.root)?);
    let existing = store.load(&repo.git)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let stage = crate::output::Stage::start("promote");
    let results = runtime.block_on(async {
        let admin = Admin::connect(config, &repo.root).await?;
        let mut results = Vec::new();
        for p in &prepared {
            let started = Instant::now();
            let (mut summary, launch_plans) = promotion.promote(&admin, p).await;
            summary.seconds = started.elapsed().as_secs_f64();
            let workflows = p.package.as_ref().map(crate::pipeline::deploy::workflow_names).unwrap_or_default();
            summary.link(config.flyte.console.as_deref(), &p.wf.project, &args.to, &workflows, &launch_plans);
            let result = (summary, launch_plans);
            // Recorded as each workflow changes, not at the end of the run.
            let mine = records(&existing, &repo, &promotion, std::slice::from_ref(p), std::slice::from_ref(&result));
            store.append(&repo.git, &mine).context("recording the promotion")?;
            results.push(result);
        }
        admin.close().await?;
        anyhow::Ok(results)
    })?;
    stage.done();

    let summary =
        Summary { domain: args.to.clone(), base: None, head, workflows: results.into_iter().map(|r| r.0).collect() };
    crate::pipeline::deploy::report(&summary, args.format)?;
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Every workflow's version at the commit (those being promoted are computed already).
fn versions_at(
    repo: &Repo,
    commit: &git2::Commit<'_>,
    tree: &GitTree<'_>,
    ws: &Workspace,
    prepared: &[Prepared],
) -> Result<std::vec::IntoIter<(String, String)>> {
    let mut out = Vec::new();
    for wf in &ws.workflows {
        let version = match prepared.iter().find(|p| p.wf.name == wf.name) {
            Some(p) => p.fp.version.clone(),
            None => {
                let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
                fingerprint::of_commit(commit, tree, &set, &ws.config, wf)?.version
            }
        };
        out.push((wf.name.clone(), version));
    }
    Ok(out.into_iter())
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

/// What is promoted where.
struct Promotion<'a> {
    config: &'a Config,
    from: &'a str,
    to: &'a str,
    commit: &'a str,
    target_settings: crate::config::DomainSettings,
    /// Every workflow's version at the commit: references between workflows resolve to them.
    others: crate::pipeline::deploy::Others,
}

/// An entity as registered in the source domain: its id there and the spec in the form
/// pyflyte writes it (`admin::spec_of`).
struct Fetched {
    kind: Kind,
    id: Identifier,
    spec: Vec<u8>,
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

    fn not_in_source(&self, p: &Prepared, missing: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "version {} of '{}' is not registered in '{}'{missing}; nothing was registered in '{}': {}",
            p.fp.version,
            p.wf.name,
            self.from,
            self.to,
            self.deploy_first()
        )
    }

    fn source_settings(&self) -> crate::config::DomainSettings {
        self.config.domain(self.from).map(|d| d.settings.clone()).unwrap_or_default()
    }

    fn target(&self, p: &Prepared, domain: &str) -> Target {
        Target {
            project: p.wf.project.clone(),
            domain: domain.to_string(),
            version: p.fp.version.clone(),
            code_url: None,
            dest_dir: String::new(),
            settings: if domain == self.to { self.target_settings.clone() } else { self.source_settings() },
        }
    }

    /// Promotes one workflow; every failure is in the returned summary. Also returns the
    /// names of its launch plans (for the record).
    async fn promote(&self, admin: &Admin, p: &Prepared) -> (WorkflowSummary, Vec<String>) {
        let mut summary = WorkflowSummary::new(
            &p.wf.name,
            ACTION,
            Some(p.fp.version.clone()),
            Some(p.fp.image.clone()),
            Outcome::Failed,
        );
        summary.images = p.package.as_ref().map(specs::task_images).unwrap_or_default();
        let mut launch_plans = Vec::new();
        let done = match &p.package {
            Some(package) => self.rehydrate_package(admin, p, package, &mut summary, &mut launch_plans).await,
            None => self.move_from_source(admin, p, &mut summary, &mut launch_plans).await,
        };
        if let Err(e) = done {
            summary.outcome = Outcome::Failed;
            summary.error = Some(format!("{e:#}"));
        }
        launch_plans.sort();
        launch_plans.dedup();
        (summary, launch_plans)
    }

    /// From pyflyte's cached package: every spec checked in the source domain, then the
    /// package hydrated for the target domain, as a deploy there would.
    async fn rehydrate_package(
        &self,
        admin: &Admin,
        p: &Prepared,
        package: &Package,
        summary: &mut WorkflowSummary,
        launch_plans: &mut Vec<String>,
    ) -> Result<()> {
        let mut source_target = self.target(p, self.from);
        source_target.code_url = Some(String::new());
        let other = |name: &str| self.others.version(&p.wf.name, &p.wf.project, name);
        let source_ids = hydrate::hydrate_package_resolving(package, &source_target, &other)?;
        let mut missing = Vec::new();
        let mut source_tasks = Vec::new();
        for h in &source_ids {
            match admin.get(h.kind, &h.id).await? {
                None => missing.push(h.id.to_string()),
                Some(entity) if h.kind == Kind::Task => {
                    source_tasks.push((h.id.name.clone(), crate::registration::admin::spec_of(Kind::Task, &entity)))
                }
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            return Err(self.not_in_source(p, &format!(" (missing: {})", missing.join(", "))));
        }
        let source_url = package_code_url(package, &source_tasks)?;
        let mut candidates: Vec<&[u8]> = p.archive.iter().map(Vec::as_slice).collect();
        if let Some((_, bytes)) = &package.fast_archive {
            candidates.push(bytes);
        }
        let archive = match &source_url {
            None => None,
            Some(url) => Some(self.same_archive(admin, p, url, &candidates).await?),
        };
        let target = self.target(p, self.to);
        let options = Options { activate: false, ..Options::default() };
        let archive = archive.as_ref().map(|(filename, bytes)| Archive { filename, bytes });
        let registered = crate::pipeline::deploy::register_package(
            admin,
            package,
            target,
            archive,
            &options,
            &self.others,
            &p.wf.name,
        )
        .await?;
        let lp_ids: Vec<Identifier> =
            source_ids.iter().filter(|h| h.kind == Kind::LaunchPlan).map(|h| h.id.clone()).collect();
        launch_plans.extend(lp_ids.iter().map(|id| id.name.clone()));
        self.finish(admin, &registered, &lp_ids, summary).await
    }

    /// Without pyflyte's package: the entities are fetched from the source domain (the
    /// workflows of the workflow's packages at this version, everything they reference at
    /// this version, and the launch plans of those workflows) and moved to the target
    /// domain by wire edits (`hydrate::retarget`).
    async fn move_from_source(
        &self,
        admin: &Admin,
        p: &Prepared,
        summary: &mut WorkflowSummary,
        launch_plans: &mut Vec<String>,
    ) -> Result<()> {
        let project = &p.wf.project;
        let version = &p.fp.version;
        let source_id = |kind: Kind, name: &str| Identifier::new(kind, project, self.from, name, version);
        // Only to read references: the source's own domain as target changes nothing.
        let mut read_target = self.target(p, self.from);
        read_target.code_url = Some(String::new());
        let mut fetched: Vec<Fetched> = Vec::new();
        let mut queue: Vec<Identifier> = Vec::new();
        for name in admin.list_names(Kind::Workflow, project, self.from).await? {
            if p.wf.packages.iter().any(|pkg| name.starts_with(&format!("{pkg}."))) {
                queue.push(source_id(Kind::Workflow, &name));
            }
        }
        let roots = queue.clone();
        let mut workflows = Vec::new();
        let mut missing = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(id) = queue.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let kind = id.kind().context("a reference of an unknown kind")?;
            let Some(entity) = admin.get(kind, &id).await? else {
                // A workflow name without this version is not ours; a missing reference is.
                if !roots.contains(&id) {
                    missing.push(id.to_string());
                }
                continue;
            };
            let spec = crate::registration::admin::spec_of(kind, &entity);
            let read = hydrate::hydrate(kind, &spec, &read_target).with_context(|| format!("reading {id}"))?;
            for r in read.references {
                if r.project == *project && r.domain == self.from && r.version == *version {
                    queue.push(r);
                }
            }
            if kind == Kind::Workflow {
                workflows.push(id.clone());
            }
            fetched.push(Fetched { kind, id, spec });
        }
        if workflows.is_empty() {
            return Err(self.not_in_source(p, ""));
        }
        // The launch plans of these workflows at this version.
        for name in admin.list_names(Kind::LaunchPlan, project, self.from).await? {
            let id = source_id(Kind::LaunchPlan, &name);
            if fetched.iter().any(|f| f.id == id) {
                continue;
            }
            let Some(entity) = admin.get(Kind::LaunchPlan, &id).await? else { continue };
            let spec = crate::registration::admin::spec_of(Kind::LaunchPlan, &entity);
            let read = hydrate::hydrate(Kind::LaunchPlan, &spec, &read_target)?;
            if read.references.iter().any(|r| workflows.contains(r)) {
                fetched.push(Fetched { kind: Kind::LaunchPlan, id, spec });
            }
        }
        if !missing.is_empty() {
            missing.sort();
            return Err(self.not_in_source(p, &format!(" completely (missing: {})", missing.join(", "))));
        }
        self.settings_replaceable(p)?;

        // The code archive the source's tasks use, rebuilt from the commit.
        let mut source_url: Option<String> = None;
        for f in fetched.iter().filter(|f| f.kind == Kind::Task) {
            let args = container_args(&f.spec)?;
            let Some(i) = args.iter().position(|a| a == ADDITIONAL_DISTRIBUTION) else { continue };
            let Some(url) = args.get(i + 1) else { continue };
            match &source_url {
                Some(u) if u != url => {
                    anyhow::bail!("the tasks in '{}' use two code archives: {u} and {url}", self.from)
                }
                _ => source_url = Some(url.clone()),
            }
        }
        let mut target = self.target(p, self.to);
        if let Some(url) = &source_url {
            let candidates: Vec<&[u8]> = p.archive.iter().map(Vec::as_slice).collect();
            let (filename, bytes) = self.same_archive(admin, p, url, &candidates).await?;
            admin.ensure_project(project).await?;
            let native = admin
                .upload(project, self.to, &filename, bytes)
                .await
                .with_context(|| format!("uploading the code archive {filename}"))?;
            target.code_url = Some(native);
        }
        let source = hydrate::Source { domain: self.from, code_url: source_url.as_deref() };
        let mut entities = Vec::new();
        for f in &fetched {
            let moved =
                hydrate::retarget(f.kind, &f.spec, source, &target).with_context(|| format!("moving {}", f.id))?;
            entities.push(register::entity(&moved));
        }
        admin.ensure_project(project).await?;
        let options = Options { activate: false, ..Options::default() };
        let registered = register::register_entities(admin, entities, &options).await;
        let lp_ids: Vec<Identifier> =
            fetched.iter().filter(|f| f.kind == Kind::LaunchPlan).map(|f| f.id.clone()).collect();
        launch_plans.extend(lp_ids.iter().map(|id| id.name.clone()));
        self.finish(admin, &registered, &lp_ids, summary).await
    }

    /// Fetched specs carry the source domain's launch-plan settings; the target's replace
    /// them only where the target sets the same ones. Refuses otherwise (the source's
    /// setting would leak into the target).
    fn settings_replaceable(&self, p: &Prepared) -> Result<()> {
        let (s, t) = (self.source_settings(), &self.target_settings);
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        let mut uncovered = Vec::new();
        for (what, source, target) in [
            ("service_account", &s.service_account, &t.service_account),
            ("iam_role", &s.iam_role, &t.iam_role),
            ("raw_output_prefix", &s.raw_output_prefix, &t.raw_output_prefix),
        ] {
            if set(source) && !set(target) {
                uncovered.push(what.to_string());
            }
        }
        for (what, source, target) in
            [("labels", &s.labels, &t.labels), ("annotations", &s.annotations, &t.annotations), ("env", &s.env, &t.env)]
        {
            uncovered.extend(source.keys().filter(|k| !target.contains_key(*k)).map(|k| format!("{what}.{k}")));
        }
        if uncovered.is_empty() {
            return Ok(());
        }
        Err(error::user(
            format!(
                "'{}': the specs pyflyte wrote for version {} are not in {}/{}.tgz, and the launch plans in '{}' \
                 carry settings '{}' does not replace ({}); nothing was registered",
                p.wf.name,
                p.fp.version,
                serialize::CACHE_DIR,
                p.key,
                self.from,
                self.to,
                uncovered.join(", ")
            ),
            format!(
                "restore the serialization cache of the {} deploy ({} between CI jobs), or set those settings on \
                 domain '{}' in deploy.toml",
                self.from,
                serialize::CACHE_DIR,
                self.to
            ),
        ))
    }

    /// Which of `candidates` is the archive at `url` in the source domain (same name and
    /// MD5: the upload location is content-addressed), with its file name.
    async fn same_archive<'b>(
        &self,
        admin: &Admin,
        p: &Prepared,
        url: &str,
        candidates: &[&'b [u8]],
    ) -> Result<(String, &'b [u8])> {
        let filename = url.rsplit('/').next().unwrap_or_default().to_string();
        for bytes in candidates {
            let location = admin.create_upload_location(&p.wf.project, self.from, &filename, bytes).await?;
            if location.native_url == url {
                return Ok((filename, bytes));
            }
        }
        anyhow::bail!(
            "the code archive rebuilt from commit {} is not the one the tasks in '{}' use ({url}); nothing was \
             registered in '{}': {}",
            self.short_commit(),
            self.from,
            self.to,
            self.deploy_first()
        )
    }

    /// Counts, failures, and activation in the target of the launch plans active in the source.
    async fn finish(
        &self,
        admin: &Admin,
        registered: &register::Summary,
        source_launch_plans: &[Identifier],
        summary: &mut WorkflowSummary,
    ) -> Result<()> {
        summary.entities =
            Entities { created: registered.created(), existing: registered.existing(), failed: registered.failed() };
        if !registered.errors.is_empty() {
            anyhow::bail!("{}", registered.errors.join("; "));
        }
        let mut activated = 0;
        let activates = self.config.domain(self.to).is_none_or(|d| d.activate);
        for id in source_launch_plans.iter().filter(|_| activates) {
            if admin.launch_plan_active(id).await? != Some(true) {
                summary.warnings.push(format!(
                    "launch plan {} is not active in '{}' at this version, so it was not activated in '{}'",
                    id.name, self.from, self.to
                ));
                continue;
            }
            let mut target_id = id.clone();
            target_id.domain = self.to.to_string();
            if admin.launch_plan_active(&target_id).await? == Some(true) {
                continue;
            }
            admin
                .set_launch_plan_active(&target_id, true)
                .await
                .map_err(|s| crate::registration::admin::status_error(&admin.endpoint, "UpdateLaunchPlan", s))
                .with_context(|| format!("activating {}", register::describe(Some(Kind::LaunchPlan), &target_id)))?;
            activated += 1;
        }
        summary.outcome =
            if registered.created() > 0 || activated > 0 { Outcome::Registered } else { Outcome::AlreadyRegistered };
        Ok(())
    }
}

/// The code archive URL the source's tasks use: the arg at the position where the package's
/// task has `{{ .remote_package_path }}` (right after `--additional-distribution`). `None`
/// when no task is fast-registered. All tasks must agree. `source_tasks`: (name, TaskSpec).
fn package_code_url(package: &Package, source_tasks: &[(String, Vec<u8>)]) -> Result<Option<String>> {
    let mut url: Option<String> = None;
    for spec in package.entities.iter().filter(|e| e.kind == Kind::Task) {
        let args = container_args(&spec.bytes)?;
        let Some(position) = args.iter().position(|a| a == hydrate::REMOTE_PACKAGE_PATH) else { continue };
        let template = wire::last_len(&spec.bytes, task_spec::TEMPLATE)?.unwrap_or_default();
        let id = Identifier::decode(wire::last_len(template, task_template::ID)?.unwrap_or_default())
            .context("reading a task's identifier")?;
        let Some((_, source_spec)) = source_tasks.iter().find(|(name, _)| *name == id.name) else { continue };
        let source_args = container_args(source_spec)?;
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

/// The container args of an `admin.TaskSpec`, read on the wire.
fn container_args(spec: &[u8]) -> Result<Vec<String>> {
    let template = wire::last_len(spec, task_spec::TEMPLATE)?.unwrap_or_default();
    let Some(args) = wire::last_len(template, task_template::CONTAINER)? else { return Ok(Vec::new()) };
    Ok(wire::all_len(args, container::ARGS)?.into_iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect())
}

/// The records of this promotion: one per workflow that is now in the target domain,
/// unless an identical promotion is recorded already (a re-run adds nothing).
fn records(
    existing: &[Record],
    repo: &Repo,
    promotion: &Promotion<'_>,
    prepared: &[Prepared],
    results: &[(WorkflowSummary, Vec<String>)],
) -> Vec<Record> {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn promotion(config: &Config) -> Promotion<'_> {
        Promotion {
            config,
            from: "staging",
            to: "production",
            commit: "0123456789abcdef",
            target_settings: config.domain("production").unwrap().settings.clone(),
            others: Default::default(),
        }
    }

    fn prepared() -> Prepared {
        Prepared {
            wf: Workflow {
                name: "hello".into(),
                path: "workflows/hello".into(),
                project: "flytesnacks".into(),
                packages: vec!["hello".into()],
                dockerfile: None,
                dependencies: Vec::new(),
                shared: Vec::new(),
                images: Default::default(),
                matcher: crate::workspace::DependencyMatcher::new(std::iter::empty()).unwrap(),
                name_at: None,
            },
            fp: Fingerprint {
                code: "c".into(),
                deps: "d".into(),
                settings: "s".into(),
                image: "img".into(),
                environment: "e".into(),
                version: "v1".into(),
            },
            key: "k".into(),
            package: None,
            archive: None,
        }
    }

    const DOMAINS: &str = r#"
[[domains]]
name = "staging"
branches = ["main"]
[domains.settings]
service_account = "flyte-staging"
labels = { env = "staging", team = "ml" }

[[domains]]
name = "production"
branches = ["release/*"]
promote_from = "staging"
[domains.settings]
service_account = "flyte-production"
labels = { env = "production" }
"#;

    #[test]
    fn fetched_specs_move_only_when_the_target_replaces_every_source_setting() {
        let config = Config::parse(Path::new("deploy.toml"), DOMAINS).unwrap();
        let e = promotion(&config).settings_replaceable(&prepared()).unwrap_err().to_string();
        assert!(e.contains("settings 'production' does not replace (labels.team)"), "{e}");
        assert!(e.contains("restore the serialization cache"), "{e}");
        let covered =
            DOMAINS.replace(r#"labels = { env = "production" }"#, r#"labels = { env = "production", team = "x" }"#);
        let config = Config::parse(Path::new("deploy.toml"), &covered).unwrap();
        promotion(&config).settings_replaceable(&prepared()).unwrap();
        let no_account = covered.replace(r#"service_account = "flyte-production""#, "");
        let config = Config::parse(Path::new("deploy.toml"), &no_account).unwrap();
        let e = promotion(&config).settings_replaceable(&prepared()).unwrap_err().to_string();
        assert!(e.contains("(service_account)"), "{e}");
    }

    #[test]
    fn the_deploy_first_message_names_the_commit_and_the_source() {
        let config = Config::parse(Path::new("deploy.toml"), DOMAINS).unwrap();
        let e = promotion(&config).not_in_source(&prepared(), "").to_string();
        assert_eq!(
            e,
            "version v1 of 'hello' is not registered in 'staging'; nothing was registered in 'production': deploy \
             commit 0123456789ab to staging first (`cargo xtask deploy --domain staging` from a branch that deploys \
             there), then promote again"
        );
    }
}
