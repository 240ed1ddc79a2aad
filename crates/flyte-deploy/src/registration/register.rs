//! Registration of one package's entities with FlyteAdmin: upload the code archive, then
//! every entity in dependency levels (tasks first, each workflow after what it references,
//! launch plans after their workflow), each level concurrently (bounded), then activation of
//! the launch plans. ALREADY_EXISTS is success; different content under an existing version
//! is an immutability error that stops what depends on it. Never decides versions or edits
//! specs (hydration does); only sends and counts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use flyte_api::{Identifier, Kind};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use anyhow::{Context, Result};

use crate::artifacts::specs::Package;
use crate::registration::admin::{is_different_structure, Admin, Created};
use crate::registration::hydrate::{self, Hydrated, Target};

/// How many creates are in flight at once by default.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// One entity ready to send.
#[derive(Debug, Clone)]
pub struct Entity {
    pub kind: Kind,
    /// Project, domain, name and version filled in.
    pub id: Identifier,
    /// The wire bytes of the Create request, sent as they are.
    pub request: Vec<u8>,
    /// The entities it references (task, workflow and launch-plan ids); those in the same
    /// registration are sent first.
    pub needs: Vec<Identifier>,
}

/// What happened to one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    AlreadyThere,
    /// Refused or not sent; the message says why (and names entity and version).
    Failed(String),
}

/// Options of a registration.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Creates in flight at once (1 = one at a time, as flytectl does).
    pub concurrency: usize,
    /// Activate the launch plans afterwards (also those that existed already).
    pub activate: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { concurrency: DEFAULT_CONCURRENCY, activate: true }
    }
}

/// The result of registering one package (one workflow of the monorepo).
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Each entity and its outcome, in the order they were decided.
    pub entities: Vec<(Kind, Identifier, Outcome)>,
    /// Launch plans made active by this run (already active ones are not counted).
    pub activated: usize,
    /// One line per failure (immutability errors first).
    pub errors: Vec<String>,
}

impl Summary {
    pub fn created(&self) -> usize {
        self.entities.iter().filter(|e| e.2 == Outcome::Created).count()
    }
    pub fn existing(&self) -> usize {
        self.entities.iter().filter(|e| e.2 == Outcome::AlreadyThere).count()
    }
    pub fn failed(&self) -> usize {
        self.entities.iter().filter(|e| matches!(e.2, Outcome::Failed(_))).count()
    }
    /// True when every entity is registered and every activation done.
    pub fn is_success(&self) -> bool {
        self.errors.is_empty() && self.failed() == 0
    }

    /// `3 created, 2 already there, 0 failed, 1 activated`.
    pub fn counts(&self) -> String {
        format!(
            "{} created, {} already there, {} failed, {} activated",
            self.created(),
            self.existing(),
            self.failed(),
            self.activated
        )
    }

    /// True when something was refused because different content exists under its version.
    pub fn immutability_violated(&self) -> bool {
        self.errors.iter().any(|e| e.contains(IMMUTABLE))
    }
}

const IMMUTABLE: &str = "exists with different content";

/// `task flytesnacks/development/wf.say_hello@v1` (`entity …` for a kind not registered).
pub fn describe(kind: Option<Kind>, id: &Identifier) -> String {
    let noun = kind.map_or("entity", Kind::noun);
    format!("{noun} {}/{}/{}@{}", id.project, id.domain, id.name, id.version)
}

fn key(kind: Option<Kind>, id: &Identifier) -> (Option<Kind>, String, String, String, String) {
    (kind, id.project.clone(), id.domain.clone(), id.name.clone(), id.version.clone())
}

/// The code archive of a package: its file name and bytes.
#[derive(Debug, Clone, Copy)]
pub struct Archive<'a> {
    pub filename: &'a str,
    pub bytes: &'a [u8],
}

/// Registers one package (what `pyflyte package` wrote for one workflow of the monorepo):
/// makes sure the project exists, uploads the code archive (when given), hydrates every
/// spec for `base` with the archive's native URL, then [`register_entities`]. An `Err` is a
/// failure before anything was created (upload, hydration); refusals are in the summary.
pub async fn register_package(
    admin: &Admin,
    package: &Package,
    base: &Target,
    archive: Option<Archive<'_>>,
    options: &Options,
) -> Result<Summary> {
    let target = upload(admin, base, archive).await?;
    let hydrated = hydrate::hydrate_package(package, &target)?;
    Ok(register_entities(admin, hydrated.iter().map(entity).collect(), options).await)
}

/// Makes sure the target's project exists and uploads the code archive (if any): `base`
/// with the archive's code URL, what hydration needs before anything is registered.
pub async fn upload(admin: &Admin, base: &Target, archive: Option<Archive<'_>>) -> Result<Target> {
    admin.ensure_project(&base.project).await?;
    let mut target = base.clone();
    if let Some(archive) = archive {
        let native = admin
            .upload(&base.project, &base.domain, archive.filename, archive.bytes)
            .await
            .with_context(|| format!("uploading the code archive {}", archive.filename))?;
        target.code_url = Some(native);
    }
    Ok(target)
}

/// A hydrated spec as an entity to send.
pub fn entity(hydrated: &Hydrated) -> Entity {
    Entity {
        kind: hydrated.kind,
        id: hydrated.id.clone(),
        request: hydrate::create_request(hydrated),
        needs: hydrated.references.clone(),
    }
}

/// Dependency levels: level 0 needs nothing in the set, level n needs something of level
/// n-1. Entities in a cycle come back separately.
pub fn levels(entities: &[Entity]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let index: HashMap<_, usize> = entities.iter().enumerate().map(|(i, e)| (key(Some(e.kind), &e.id), i)).collect();
    let needs: Vec<Vec<usize>> = entities
        .iter()
        .map(|e| {
            let mut n: Vec<usize> = e.needs.iter().filter_map(|id| index.get(&key(id.kind(), id)).copied()).collect();
            n.sort_unstable();
            n.dedup();
            n
        })
        .collect();
    let mut level: Vec<Option<usize>> = vec![None; entities.len()];
    let mut out: Vec<Vec<usize>> = Vec::new();
    loop {
        let ready: Vec<usize> = (0..entities.len())
            .filter(|&i| level[i].is_none() && needs[i].iter().all(|&n| level[n].is_some()))
            .collect();
        if ready.is_empty() {
            break;
        }
        for &i in &ready {
            level[i] = Some(out.len());
        }
        out.push(ready);
    }
    let cyclic = (0..entities.len()).filter(|&i| level[i].is_none()).collect();
    (out, cyclic)
}

/// Registers `entities` level by level, `options.concurrency` creates in flight; an entity
/// whose dependency failed is not sent. Then activates the launch plans, unless something
/// failed. Failures are in the summary, never an `Err`.
pub async fn register_entities(admin: &Admin, entities: Vec<Entity>, options: &Options) -> Summary {
    let mut summary = Summary::default();
    let (levels, cyclic) = levels(&entities);
    let entities: Vec<Arc<Entity>> = entities.into_iter().map(Arc::new).collect();
    let mut failed: HashSet<(Option<Kind>, String, String, String, String)> = HashSet::new();
    for i in cyclic {
        let e = &entities[i];
        let message = format!("{}: its references form a cycle; not registered", describe(Some(e.kind), &e.id));
        failed.insert(key(Some(e.kind), &e.id));
        summary.errors.push(message.clone());
        summary.entities.push((e.kind, e.id.clone(), Outcome::Failed(message)));
    }
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));
    for level in levels {
        let mut running = JoinSet::new();
        for i in level {
            let entity = entities[i].clone();
            if let Some(dep) = entity.needs.iter().find(|id| failed.contains(&key(id.kind(), id))) {
                let message = format!(
                    "{}: not registered because {} failed",
                    describe(Some(entity.kind), &entity.id),
                    describe(dep.kind(), dep)
                );
                failed.insert(key(Some(entity.kind), &entity.id));
                summary.entities.push((entity.kind, entity.id.clone(), Outcome::Failed(message)));
                continue;
            }
            let admin = admin.clone();
            let limit = limit.clone();
            running.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
                let outcome = create_one(&admin, &entity).await;
                (entity, outcome)
            });
        }
        while let Some(joined) = running.join_next().await {
            let (entity, outcome) = match joined {
                Ok(done) => done,
                Err(e) => {
                    summary.errors.push(format!("a registration worker failed: {e}"));
                    continue;
                }
            };
            if let Outcome::Failed(message) = &outcome {
                failed.insert(key(Some(entity.kind), &entity.id));
                summary.errors.push(message.clone());
            }
            summary.entities.push((entity.kind, entity.id.clone(), outcome));
        }
    }
    summary.errors.sort_by_key(|e| !e.contains(IMMUTABLE));
    if options.activate && summary.failed() == 0 {
        activate(admin, &entities, options, &mut summary).await;
    }
    summary
}

async fn create_one(admin: &Admin, entity: &Entity) -> Outcome {
    match admin.create(entity.kind, &entity.request).await {
        Ok(Created::New) => Outcome::Created,
        Ok(Created::AlreadyThere) => Outcome::AlreadyThere,
        Err(status) if is_different_structure(&status) => {
            let differences = differences_from_registered(admin, entity).await;
            Outcome::Failed(format!(
                "{}: {IMMUTABLE}; registered versions are immutable, so register this content under a new \
                 version{differences} (FlyteAdmin: {})",
                describe(Some(entity.kind), &entity.id),
                status.message().trim()
            ))
        }
        Err(status) => Outcome::Failed(format!(
            "{}: {:?}: {}",
            describe(Some(entity.kind), &entity.id),
            status.code(),
            status.message().trim()
        )),
    }
}

/// What differs between the registered entity and the one sent, by FlyteAdmin's identity
/// rule (`flyte_api::canonical`: field and map-entry order do not count), as
/// `; differences (registered -, sent +): ...`; empty when it cannot be read. FlyteAdmin's
/// verdict stands either way: this only says where to look.
async fn differences_from_registered(admin: &Admin, entity: &Entity) -> String {
    use flyte_api::{canonical, fields, wire};
    let Ok(Some(registered)) = admin.get_spec(entity.kind, &entity.id).await else { return String::new() };
    let Ok(Some(sent)) = wire::last_len(&entity.request, fields::create_request::SPEC) else { return String::new() };
    // Compared as FlyteAdmin returns them: a task's template, a workflow's templates, a
    // launch plan's spec (what `get_spec` gives back).
    let (spec, registered, sent) = match entity.kind {
        Kind::Task | Kind::Workflow => {
            let numbers: &[u32] = match entity.kind {
                Kind::Task => &[fields::task_spec::TEMPLATE],
                _ => &[fields::workflow_spec::TEMPLATE, fields::workflow_spec::SUB_WORKFLOWS],
            };
            let keep = |m: &[u8]| {
                let mut out = Vec::new();
                for &n in numbers {
                    for part in wire::all_len(m, n).unwrap_or_default() {
                        out.extend(wire::len_field(n, part));
                    }
                }
                out
            };
            (canonical::Spec::of(entity.kind), keep(&registered), keep(sent))
        }
        Kind::LaunchPlan => {
            let spec = wire::last_len(&registered, fields::launch_plan::SPEC).ok().flatten().unwrap_or_default();
            (canonical::Spec::LaunchPlanSpec, spec.to_vec(), sent.to_vec())
        }
    };
    let lines = canonical::differences(spec, &registered, &sent, 12);
    if lines.is_empty() {
        return String::new();
    }
    format!("; differences by field path (registered -, sent +): {}", lines.join(" "))
}

/// Activates every launch plan of the registration that is not active yet: the versions
/// just deployed become the current ones (schedules move to them). Done also for launch
/// plans that existed already, so a re-run after a failed activation finishes the job.
async fn activate(admin: &Admin, entities: &[Arc<Entity>], options: &Options, summary: &mut Summary) {
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut running = JoinSet::new();
    for entity in entities.iter().filter(|e| e.kind == Kind::LaunchPlan) {
        let (admin, limit, entity) = (admin.clone(), limit.clone(), entity.clone());
        running.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("the semaphore is never closed");
            let what = describe(Some(entity.kind), &entity.id);
            match admin.launch_plan_active(&entity.id).await {
                Ok(Some(true)) => Ok(false),
                Ok(_) => match admin.set_launch_plan_active(&entity.id, true).await {
                    Ok(()) => Ok(true),
                    Err(status) => Err(format!("activating {what}: {:?}: {}", status.code(), status.message())),
                },
                Err(e) => Err(format!("activating {what}: {e:#}")),
            }
        });
    }
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(Ok(true)) => summary.activated += 1,
            Ok(Ok(false)) => {}
            Ok(Err(message)) => summary.errors.push(message),
            Err(e) => summary.errors.push(format!("an activation worker failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(kind: Kind, name: &str, needs: &[(Kind, &str)]) -> Entity {
        let id = |kind: Kind, name: &str| Identifier::new(kind, "p", "d", name, "v");
        Entity { kind, id: id(kind, name), request: Vec::new(), needs: needs.iter().map(|(k, n)| id(*k, n)).collect() }
    }

    #[test]
    fn levels_put_everything_after_what_it_references() {
        use Kind::*;
        let entities = vec![
            entity(LaunchPlan, "outer", &[(Workflow, "outer")]),
            entity(Workflow, "outer", &[(Task, "t1"), (LaunchPlan, "inner")]),
            entity(LaunchPlan, "inner", &[(Workflow, "inner")]),
            entity(Workflow, "inner", &[(Task, "t1"), (Task, "elsewhere")]),
            entity(Task, "t1", &[]),
            entity(Task, "t2", &[]),
        ];
        let (levels, cyclic) = levels(&entities);
        assert!(cyclic.is_empty());
        assert_eq!(levels, vec![vec![4, 5], vec![3], vec![2], vec![1], vec![0]]);

        let cycle = vec![entity(Workflow, "a", &[(LaunchPlan, "b")]), entity(LaunchPlan, "b", &[(Workflow, "a")])];
        let (levels, cyclic) = super::levels(&cycle);
        assert!(levels.is_empty());
        assert_eq!(cyclic, vec![0, 1]);
    }
}

/// `cargo xtask bench register`: 500 entities to the sandbox with 10 ms added to every
/// call, registered concurrently and one at a time (flytectl's way); prints the ratio.
pub mod bench {
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result};
    use flyte_api::fields::create_request;
    use flyte_api::{admin, core, Identifier, Kind, Message};

    use super::{register_entities, Entity, Options, DEFAULT_CONCURRENCY};
    use crate::registration::admin::Admin;

    const TASKS: usize = 200;
    const WORKFLOWS: usize = 150;
    const DELAY: Duration = Duration::from_millis(10);

    pub fn run() -> Result<ExitCode> {
        let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
        runtime.block_on(async {
            let total = TASKS + 2 * WORKFLOWS;
            println!(
                "bench register: {total} entities ({TASKS} tasks, {WORKFLOWS} workflows, {WORKFLOWS} launch plans) \
                 to the sandbox, {} ms added to every call",
                DELAY.as_millis()
            );
            let sequential = measure(1).await?;
            println!("  one at a time (flytectl's way): {:>8.2} s", sequential.as_secs_f64());
            let concurrent = measure(DEFAULT_CONCURRENCY).await?;
            println!("  concurrent ({DEFAULT_CONCURRENCY} in flight):      {:>8.2} s", concurrent.as_secs_f64());
            println!("  ratio: {:.1}x", sequential.as_secs_f64() / concurrent.as_secs_f64());
            Ok(ExitCode::SUCCESS)
        })
    }

    /// Registers the synthetic package into a fresh sandbox; the time of the registration.
    async fn measure(concurrency: usize) -> Result<Duration> {
        let data = tempfile::tempdir().context("creating a temp dir for the sandbox")?;
        let mut options = flyte_sandbox::Options::loopback(data.path());
        options.delay = DELAY;
        let running = flyte_sandbox::start(options).await?;
        let admin = Admin::remote(&running.endpoint(), None)?;
        admin.ensure_project("bench").await?;
        let entities = synthetic_package("bench", "development", "v1");
        let total = entities.len();
        let started = Instant::now();
        let summary = register_entities(&admin, entities, &Options { concurrency, activate: false }).await;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            summary.created() == total,
            "the benchmark registration failed: {} of {total} created; {:?}",
            summary.created(),
            summary.errors.first()
        );
        running.stop().await?;
        Ok(elapsed)
    }

    fn request(id: &Identifier, spec: Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(flyte_api::wire::len_field(create_request::ID, &id.encode_to_vec()));
        out.extend(flyte_api::wire::len_field(create_request::SPEC, &spec));
        out
    }

    /// Tasks, workflows of two tasks each, and a launch plan per workflow.
    pub fn synthetic_package(project: &str, domain: &str, version: &str) -> Vec<Entity> {
        let mut out = Vec::new();
        let task_ids: Vec<Identifier> = (0..TASKS)
            .map(|i| Identifier::new(Kind::Task, project, domain, &format!("bench.task_{i}"), version))
            .collect();
        for task in &task_ids {
            let template = core::TaskTemplate {
                id: Some(task.clone()),
                r#type: "python-task".into(),
                metadata: Some(core::TaskMetadata::default()),
                interface: Some(core::TypedInterface::default()),
                target: Some(core::task_template::Target::Container(core::Container {
                    image: "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31".into(),
                    args: vec!["pyflyte-execute".into(), "--task".into(), task.name.clone()],
                    ..Default::default()
                })),
            };
            let spec = admin::TaskSpec { template: Some(template) }.encode_to_vec();
            out.push(Entity { kind: Kind::Task, id: task.clone(), request: request(task, spec), needs: vec![] });
        }
        for i in 0..WORKFLOWS {
            let name = format!("bench.workflow_{i}");
            let workflow = Identifier::new(Kind::Workflow, project, domain, &name, version);
            let uses = vec![task_ids[i % TASKS].clone(), task_ids[(i + 1) % TASKS].clone()];
            let nodes = uses
                .iter()
                .enumerate()
                .map(|(n, task)| core::Node {
                    id: format!("n{n}"),
                    target: Some(core::node::Target::TaskNode(core::TaskNode {
                        reference: Some(core::task_node::Reference::ReferenceId(task.clone())),
                    })),
                    ..Default::default()
                })
                .collect();
            let template = core::WorkflowTemplate { id: Some(workflow.clone()), nodes, ..Default::default() };
            let spec = admin::WorkflowSpec { template: Some(template), ..Default::default() }.encode_to_vec();
            out.push(Entity {
                kind: Kind::Workflow,
                id: workflow.clone(),
                request: request(&workflow, spec),
                needs: uses,
            });
            let plan = Identifier::new(Kind::LaunchPlan, project, domain, &name, version);
            let spec =
                admin::LaunchPlanSpec { workflow_id: Some(workflow.clone()), ..Default::default() }.encode_to_vec();
            out.push(Entity {
                kind: Kind::LaunchPlan,
                id: plan.clone(),
                request: request(&plan, spec),
                needs: vec![workflow],
            });
        }
        out
    }
}
