//! `cargo xtask rollback --domain D --to COMMIT|VERSION [WORKFLOW...]`: makes an earlier
//! version that the domain had the active one again.
//!
//! Per workflow: the version named (directly, or as the commit's content names it), which
//! the domain's records must show it had (else exit 2 naming the versions it had, before
//! anything changes); its launch plans looked up in the domain, anything missing registered
//! again from the serialization cache of that version's commit (what exists answers
//! ALREADY_EXISTS); the launch plans of the version being left that the earlier one lacks
//! deactivated; the earlier ones activated (FlyteAdmin moves each schedule to them); a
//! `rolled-back` record written as each workflow changes.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use flyte_api::admin as pb;
use flyte_api::{Identifier, Kind, Message};

use crate::args::Rollback;
use crate::artifacts::codeset::CodeSet;
use crate::artifacts::{package, serialize, specs};
use crate::config::Domain;
use crate::error;
use crate::plan::fingerprint;
use crate::registration::admin::{self, Address, Admin};
use crate::registration::hydrate::Target;
use crate::registration::record::{self, Record, Store};
use crate::registration::register::{self, Archive};
use crate::report::summary::{Entities, Outcome, Summary, WorkflowSummary};
use crate::workspace::repo::Repo;
use crate::workspace::source::GitTree;
use crate::workspace::Workspace;

/// The `action` rollback reports for every workflow.
pub const ACTION: &str = "rollback";

/// One workflow going back: the record of the earlier version in the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    workflow: String,
    version: String,
    /// The commit that version was deployed from.
    commit: String,
    image: String,
    /// Its launch plans, when the record names them.
    launch_plans: Vec<String>,
}

pub fn run(args: Rollback) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let head = repo.commit("HEAD")?;
    let ws = Workspace::load(&GitTree::at_commit(&repo.git, &head)?)?;
    let declared = || ws.config.domains.iter().map(|d| d.name.value.as_str()).collect::<Vec<_>>().join(", ");
    let domain = ws.config.domain(&args.domain).ok_or_else(|| {
        error::user(
            format!("--domain '{}' is not a domain of {}", args.domain, ws.config.file.display()),
            format!("use one of: {}", declared()),
        )
    })?;
    if !domain.activate {
        return Err(error::user(
            format!(
                "domain '{}' does not activate launch plans (activate = false, {}): there is no active version to \
                 roll back",
                domain.name.value,
                domain.name.place()
            ),
            "roll back a domain that activates (staging, production), or deploy the earlier commit",
        ));
    }
    let store = Store::for_address(&Address::from_config(&ws.config, &repo.root)?);
    let history = store.load(&repo.git)?;
    let steps = steps(&repo, &history, &domain.name.value, &args.to, &args.workflows)?;

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let summaries = runtime.block_on(async {
        let admin = Admin::connect(&ws.config, &repo.root).await?;
        let mut out = Vec::new();
        for step in &steps {
            let started = Instant::now();
            let mut summary = WorkflowSummary::new(
                &step.workflow,
                ACTION,
                Some(step.version.clone()),
                Some(step.image.clone()),
                Outcome::Failed,
            );
            match roll_back(&repo, &admin, domain, &history, step, &mut summary).await {
                Ok(launch_plans) => {
                    // Its launch plans are what a rollback makes active: those are linked.
                    let project = ws.workflow(&step.workflow).map_or(&ws.config.project, |w| &w.project);
                    let console = ws.config.flyte.console.as_deref();
                    summary.link(console, project, &domain.name.value, &[], &launch_plans);
                    if summary.outcome == Outcome::Registered {
                        // Recorded as the change happens.
                        let r = Record {
                            commit: step.commit.clone(),
                            workflow: step.workflow.clone(),
                            domain: domain.name.value.clone(),
                            version: step.version.clone(),
                            image: step.image.clone(),
                            actor: record::actor(&repo.git),
                            time: record::now(),
                            outcome: record::ROLLED_BACK.into(),
                            promoted_from: None,
                            launch_plans,
                        };
                        store.append(&repo.git, &[r]).context("recording the rollback")?;
                    }
                }
                Err(e) => {
                    summary.outcome = Outcome::Failed;
                    summary.error = Some(format!("{e:#}"));
                }
            }
            summary.seconds = started.elapsed().as_secs_f64();
            out.push(summary);
        }
        admin.close().await.ok();
        anyhow::Ok(out)
    })?;
    let summary =
        Summary { domain: domain.name.value.clone(), base: None, head: head.id().to_string(), workflows: summaries };
    crate::pipeline::deploy::report(&summary, args.format)?;
    Ok(if summary.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What goes back to what, decided from the records before anything changes. `to` is a
/// version the domain had, else a commit (each workflow's version at that commit).
fn steps(repo: &Repo, history: &[Record], domain: &str, to: &str, named: &[String]) -> Result<Vec<Step>> {
    let had: Vec<&Record> = history.iter().filter(|r| r.domain == domain && record::reached(r)).collect();
    let mut names: Vec<String> = named.to_vec();
    // Not a commit but workflows named: taken as a version, refused below if never had.
    let by_version = had.iter().any(|r| r.version == to) || (!names.is_empty() && repo.commit(to).is_err());
    let wanted: Vec<(String, String)> = if by_version {
        if names.is_empty() {
            names = had.iter().filter(|r| r.version == to).map(|r| r.workflow.clone()).collect();
        }
        names.iter().map(|n| (n.clone(), to.to_string())).collect()
    } else {
        let commit = repo.commit(to).map_err(|_| {
            error::user(
                format!("--to {to}: neither a version domain '{domain}' had nor a commit of this repository"),
                "name a commit (sha, tag, branch) or a version from `cargo xtask history --domain DOMAIN`",
            )
        })?;
        let tree = GitTree::at_commit(&repo.git, &commit)?;
        let ws = Workspace::load(&tree)?;
        if names.is_empty() {
            let recorded: BTreeSet<&str> = had.iter().map(|r| r.workflow.as_str()).collect();
            names =
                ws.workflows.iter().filter(|w| recorded.contains(w.name.as_str())).map(|w| w.name.clone()).collect();
        }
        let mut out = Vec::new();
        for n in &names {
            let Some(wf) = ws.workflow(n) else {
                return Err(error::user(
                    format!("workflow '{n}' does not exist at commit {:.12}", commit.id()),
                    "name workflows of that commit, or roll back to a version",
                ));
            };
            let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
            let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf)?;
            out.push((n.clone(), fp.version));
        }
        out
    };
    if wanted.is_empty() {
        return Err(error::user(
            format!("nothing to roll back: no workflow has a recorded deploy of {to} in domain '{domain}'"),
            "see `cargo xtask history --domain DOMAIN` for what the domain had",
        ));
    }
    let mut steps = Vec::new();
    for (name, version) in wanted {
        // The most recent record of that version in the domain.
        let Some(r) = had.iter().rev().find(|r| r.workflow == name && r.version == version) else {
            let mut versions: Vec<&str> = Vec::new();
            for r in had.iter().filter(|r| r.workflow == name) {
                if !versions.contains(&r.version.as_str()) {
                    versions.push(&r.version);
                }
            }
            let had_text = if versions.is_empty() { "none".to_string() } else { versions.join(", ") };
            return Err(error::user(
                format!(
                    "domain '{domain}' never had version {version} of '{name}' (the versions it had: {had_text}); \
                     nothing was changed"
                ),
                "roll back to one of the versions it had, or deploy that commit first",
            ));
        };
        steps.push(Step {
            workflow: name,
            version,
            commit: r.commit.clone(),
            image: r.image.clone(),
            launch_plans: r.launch_plans.clone(),
        });
    }
    Ok(steps)
}

/// Rolls one workflow back; returns its launch plans at the earlier version. The summary's
/// outcome is `registered` when something changed, `already-registered` when the version
/// was the active one already.
async fn roll_back(
    repo: &Repo,
    admin: &Admin,
    domain: &Domain,
    history: &[Record],
    step: &Step,
    summary: &mut WorkflowSummary,
) -> Result<Vec<String>> {
    let d = domain.name.value.as_str();
    let commit = repo.commit(&step.commit)?;
    let tree = GitTree::at_commit(&repo.git, &commit)?;
    let ws = Workspace::load(&tree)?;
    let wf = ws.workflow(&step.workflow).with_context(|| {
        format!("workflow '{}' is not in commit {:.12}, which the record names", step.workflow, step.commit)
    })?;
    let id = |name: &str, version: &str| Identifier::new(Kind::LaunchPlan, &wf.project, d, name, version);
    let mut names = step.launch_plans.clone();
    let mut missing = names.is_empty();
    for name in &names {
        missing |= admin.launch_plan_active(&id(name, &step.version)).await?.is_none();
    }
    if missing {
        // Registered again from what pyflyte wrote for that version: what exists answers
        // ALREADY_EXISTS, so only what is missing is created.
        let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
        let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf)?;
        let key = serialize::cache_key(&fp.code, &fp.image, &wf.packages, &fp.environment, &wf.images);
        let cache_dir = serialize::CacheDir::of(&repo.git, &repo.root, &commit)?;
        let Some(cached) = serialize::cached(&cache_dir, &key) else {
            anyhow::bail!(
                "version {} of '{}' is no longer complete in '{d}', and its specs are not in {}/{key}.tgz: deploy \
                 commit {:.12} to '{d}' (`cargo xtask deploy --head {:.12} --domain {d}`) to register it again",
                step.version,
                step.workflow,
                serialize::CACHE_DIR,
                step.commit,
                step.commit
            );
        };
        let specs = specs::read_package_file(&cached.path)?;
        let settings = ws.config.domain(d).map(|x| x.settings.clone()).unwrap_or_default();
        let target = Target {
            project: wf.project.clone(),
            domain: d.to_string(),
            version: step.version.clone(),
            code_url: None,
            dest_dir: String::new(),
            settings,
        };
        let archive = package::write_archive(&set, &repo.git, Vec::new())?;
        let filename = format!("{}-{}.tar.gz", wf.name, step.version);
        let options = register::Options { activate: false, ..register::Options::default() };
        let reg = register::register_package(
            admin,
            &specs,
            &target,
            Some(Archive { filename: &filename, bytes: &archive }),
            &options,
        )
        .await?;
        summary.entities = Entities { created: reg.created(), existing: reg.existing(), failed: reg.failed() };
        if !reg.errors.is_empty() {
            anyhow::bail!("{}", reg.errors.join("; "));
        }
        names = specs
            .entities
            .iter()
            .filter(|e| e.kind == Kind::LaunchPlan)
            .filter_map(|e| pb::LaunchPlan::decode(e.bytes.as_slice()).ok())
            .filter_map(|lp| lp.id.map(|i| i.name))
            .collect();
    }
    let mut changed = summary.entities.created > 0;
    // Launch plans of the version being left that the earlier one does not have.
    let current = history
        .iter()
        .rev()
        .find(|r| r.workflow == step.workflow && r.domain == d && record::reached(r) && !r.launch_plans.is_empty());
    for name in current.map(|r| r.launch_plans.as_slice()).unwrap_or_default() {
        if names.contains(name) {
            continue;
        }
        for bytes in admin.list(Kind::LaunchPlan, &wf.project, d, name).await? {
            let lp = pb::LaunchPlan::decode(bytes.as_slice()).context("decoding a launch plan")?;
            if lp.closure.as_ref().is_some_and(|c| c.state == pb::LaunchPlanState::Active as i32) {
                let lp_id = lp.id.context("a launch plan without id")?;
                admin
                    .set_launch_plan_active(&lp_id, false)
                    .await
                    .map_err(|s| admin::status_error(&admin.endpoint, "UpdateLaunchPlan", s))?;
                summary.warnings.push(format!("launch plan {name} deactivated: version {} lacks it", step.version));
                changed = true;
            }
        }
    }
    for name in &names {
        let lp_id = id(name, &step.version);
        if admin.launch_plan_active(&lp_id).await? == Some(true) {
            continue;
        }
        admin
            .set_launch_plan_active(&lp_id, true)
            .await
            .map_err(|s| admin::status_error(&admin.endpoint, "UpdateLaunchPlan", s))
            .with_context(|| format!("activating {}", register::describe(Some(Kind::LaunchPlan), &lp_id)))?;
        changed = true;
    }
    summary.outcome = if changed { Outcome::Registered } else { Outcome::AlreadyRegistered };
    if !changed {
        summary.warnings.push(format!("version {} is the active one in '{d}' already", step.version));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(workflow: &str, domain: &str, version: &str, outcome: &str) -> Record {
        Record {
            commit: "0".repeat(40),
            workflow: workflow.into(),
            domain: domain.into(),
            version: version.into(),
            image: "img".into(),
            actor: "me".into(),
            time: "2026-01-01T00:00:00Z".into(),
            outcome: outcome.into(),
            promoted_from: None,
            launch_plans: vec!["lp".into()],
        }
    }

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init(dir.path()).unwrap();
        let repo = Repo::discover_from(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn a_version_the_domain_never_had_is_refused_naming_those_it_had() {
        let (_dir, repo) = repo();
        let history = [
            record("hello", "staging", "v1", "registered"),
            record("hello", "staging", "v2", "registered"),
            record("hello", "development", "v9", "registered"),
            record("hello", "staging", "v3", "failed"),
        ];
        let steps = steps(&repo, &history, "staging", "v1", &[]).unwrap();
        assert_eq!(steps.iter().map(|s| (&*s.workflow, &*s.version)).collect::<Vec<_>>(), [("hello", "v1")]);
        let e = steps_error(&repo, &history, "v9", &["hello".into()]);
        assert!(e.contains("domain 'staging' never had version v9 of 'hello' (the versions it had: v1, v2)"), "{e}");
        let e = steps_error(&repo, &history, "v3", &[]);
        assert!(e.contains("--to v3: neither a version domain 'staging' had nor a commit"), "{e}");
    }

    fn steps_error(repo: &Repo, history: &[Record], to: &str, named: &[String]) -> String {
        let e = steps(repo, history, "staging", to, named).unwrap_err();
        assert!(error::is_user_error(&e), "{e}");
        e.to_string()
    }
}
