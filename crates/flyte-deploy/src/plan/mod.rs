//! `cargo xtask plan`: which workflows a change reaches and what each needs (rebuild, fast,
//! unchanged, removed), with the reasons, and every workflow's version. Reads top-down:
//! resolve base, head and domain, diff the trees, read the workflows at head (from the
//! versions cache where it knows their folders) and those of base the diff touches, classify
//! (a pure function), fill the versions, print. Its only side effect is the versions cache
//! ([`crate::plan::versions`]); `deploy` calls [`compute_with_workspace`] for the same plan.

pub(crate) mod base;
pub(crate) mod diff;
pub mod fingerprint;
pub(crate) mod trees;
pub mod versions;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::args::{self, OnMissingBase, PlanFormat};
use crate::artifacts::codeset::CodeSet;
use crate::caches;
use crate::config::{self, DEPLOY_TOML};
use crate::error;
use crate::plan::base::{Base, CiContext};
use crate::plan::diff::Change;
use crate::plan::fingerprint::Fingerprint;
use crate::plan::trees::Trees;
use crate::plan::versions::{Input, Learnt, Stamp, Store};
use crate::workspace::catalog::{self, Known};
use crate::workspace::deps;
use crate::workspace::repo::Repo;
use crate::workspace::source::GitTree;
use crate::workspace::{self, Workflow, Workspace};

/// What a workflow needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A dependency file changed: a new image is needed.
    Rebuild,
    /// Only code the workflow reaches changed: fast registration of the code.
    Fast,
    /// Nothing the workflow reaches changed.
    Unchanged,
    /// The workflow exists at base and not at head: deactivate it.
    Removed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Rebuild => "rebuild",
            Action::Fast => "fast",
            Action::Unchanged => "unchanged",
            Action::Removed => "removed",
        }
    }
}

/// Why a workflow is reached by a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonKind {
    /// A dependency file of the workflow (its Dockerfile, a requirements file, ...).
    Dependency,
    /// Any other file of the workflow folder (or only its mode changed).
    Code,
    /// A file under a shared path the workflow declares.
    Shared,
    /// A file under a global path of deploy.toml.
    Global,
    /// The workflow folder is gone at head.
    Removed,
}

impl ReasonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::Dependency => "dependency",
            ReasonKind::Code => "code",
            ReasonKind::Shared => "shared",
            ReasonKind::Global => "global",
            ReasonKind::Removed => "removed",
        }
    }
}

/// One changed path and how it reaches a workflow. `path` is lossless text: see
/// [`diff::quote_path`] for names that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub path: String,
    pub kind: ReasonKind,
}

/// One workflow of the plan. `version` and `image` are filled by the fingerprint stage. Its
/// texts borrow from the versions cache (`'s`) where it holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWorkflow<'s> {
    pub name: Cow<'s, str>,
    pub path: Cow<'s, str>,
    pub project: Cow<'s, str>,
    pub action: Action,
    pub reasons: Vec<Reason>,
    pub version: Option<Cow<'s, str>>,
    pub image: Option<Cow<'s, str>>,
    /// The code fingerprint behind `version` (not in the JSON): deploy's serialize cache key.
    #[serde(skip)]
    pub code: Option<Cow<'s, str>>,
}

impl PlannedWorkflow<'_> {
    /// The same workflow, owning its texts.
    pub fn into_owned(self) -> PlannedWorkflow<'static> {
        let own = |t: Cow<'_, str>| Cow::Owned(t.into_owned());
        PlannedWorkflow {
            name: own(self.name),
            path: own(self.path),
            project: own(self.project),
            action: self.action,
            reasons: self.reasons,
            version: self.version.map(own),
            image: self.image.map(own),
            code: self.code.map(own),
        }
    }
}

/// The plan: DESIGN.md's plan JSON, plus `notes` for the reader (an unresolved base, a
/// detached HEAD). Every workflow of head appears once, sorted by name, with those removed
/// since base.
#[derive(Debug, Clone, Serialize)]
pub struct Plan<'s> {
    pub base: Option<String>,
    pub head: String,
    pub domain: String,
    pub workflows: Vec<PlannedWorkflow<'s>>,
    pub notes: Vec<String>,
    /// How the base was found (text output only).
    #[serde(skip)]
    pub base_how: Option<String>,
}

impl Plan<'_> {
    /// The same plan, owning its texts.
    pub fn into_owned(self) -> Plan<'static> {
        Plan {
            base: self.base,
            head: self.head,
            domain: self.domain,
            workflows: self.workflows.into_iter().map(PlannedWorkflow::into_owned).collect(),
            notes: self.notes,
            base_how: self.base_how,
        }
    }
}

/// One path that changed between base and head, as classification sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Touched {
    /// Repository-relative, raw bytes.
    pub path: Vec<u8>,
    /// False when only the file mode changed (content, after normalising requirement
    /// files, is the same).
    pub content: bool,
}

// ---------------------------------------------------------------------------------------
// The command.

pub fn run(args: args::Plan) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let store = OnceLock::new();
    let plan = compute(&repo, &args.range, &store)?;
    match args.format {
        PlanFormat::Json => {
            // Through a buffer: stdout is line-buffered, and a large plan has many lines.
            // Compact, one workflow a line: greppable and line-diffable (`jq` indents it).
            let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
            write_json(&mut out, &plan)?;
            writeln!(out)?;
            out.flush()?;
        }
        PlanFormat::Text => {
            for note in &plan.notes {
                crate::output::note(note);
            }
            print!("{}", table(&plan));
        }
        PlanFormat::GithubMatrix => {
            for note in &plan.notes {
                crate::output::note(note);
            }
            github_matrix(&plan, args.chunk)?;
        }
    }
    // The process ends here: what remains is freed with it, not piece by piece.
    std::mem::forget((plan, repo));
    Ok(ExitCode::SUCCESS)
}

/// The plan of `range` with every workflow's version, image and code fingerprint. Reads the
/// trees that differ between base and head; what it learns of the other folders comes from
/// the versions cache when it knows their trees ([`crate::plan::versions`]), opened into `store`,
/// and what it learns is put there.
pub fn compute<'s>(repo: &Repo, range: &args::Range, store: &'s OnceLock<Store>) -> Result<Plan<'s>> {
    // Every object is read once or twice here: libgit2's object cache costs more than it
    // saves. Like git, do not re-hash every object read (a corrupt pack is git fsck's
    // business). Both are process-wide libgit2 options.
    git2::opts::enable_caching(false);
    git2::opts::strict_hash_verification(false);
    let ci = CiContext::from_env();
    if range.head == "HEAD" && repo.git.head().is_err_and(|e| e.code() == git2::ErrorCode::UnbornBranch) {
        return Err(error::user(
            "the repository has no commits yet: there is nothing to plan",
            "commit deploy.toml and your workflows first",
        ));
    }
    let head = repo.commit(&range.head)?;
    let head_what = format!("commit {:.10}", head.id());
    let head_tree = head.tree().with_context(|| format!("reading the tree of {head_what}"))?;
    let Some((config, deploy_toml)) = catalog::config(&repo.git, &head_tree, &head_what)? else {
        return Err(error::user(
            format!("no {DEPLOY_TOML} at the repository root ({head_what})"),
            format!("run the tool inside a flyte-deploy monorepo, or create {DEPLOY_TOML} (an empty file uses the defaults)"),
        ));
    };
    let committed = caches::committed(&repo.git, &head);
    if committed.is_none() {
        caches::heal(&repo.root);
    }
    let store: &'s Store = store.get_or_init(|| match committed {
        None => Store::open(&repo.root, deploy_toml),
        Some(_) => Store::default(),
    });
    let global = global_paths(&config)?;
    for (g, path) in config.global.iter().zip(&global) {
        if !path.is_empty() && head_tree.get_path(std::path::Path::new(path)).is_err() {
            return Err(g.error(
                format!("global path '{}' does not exist in {head_what}", g.value),
                "remove it from `global` or correct the path",
            ));
        }
    }
    let mut notes: Vec<String> = committed.iter().cloned().collect();
    let branch = base::branch(repo, &range.head, &ci);
    let domain =
        base::resolve_domain(&config, range.domain.as_deref(), branch.as_deref(), &mut notes)?.name.value.clone();

    // With --all the change is not looked at, but a base given with it is still resolved
    // and reported (its merge-base), as without --all.
    let mut given_base = None;
    let base = if range.all {
        notes.push("--all: every workflow planned as changed".into());
        if range.base.is_some() {
            if let Base::Found { commit, how } = base::resolve_base(repo, range.base.as_deref(), head.id(), &ci)? {
                given_base = Some((commit, how));
            }
        }
        None
    } else {
        match base::resolve_base(repo, range.base.as_deref(), head.id(), &ci)? {
            Base::Found { commit, how } => Some((commit, how)),
            Base::Missing { why } => match range.on_missing_base {
                OnMissingBase::Fail => {
                    return Err(error::user(
                        format!("the base of the change cannot be resolved: {why}"),
                        base::MISSING_BASE_HELP,
                    ))
                }
                OnMissingBase::All => {
                    notes.push(format!("base could not be resolved ({why}); planning all workflows"));
                    None
                }
            },
        }
    };

    let trees = Trees::new(&repo.git);
    let head_root = catalog::root(&trees, head_tree.id(), &config)?;
    let head_folders = catalog::folders(head_root.as_ref(), &config)?;
    // What changed between base and head, when there is a base.
    let change = match &base {
        None => None,
        Some((commit, _)) => {
            let base_what = format!("commit {commit:.10}");
            let base_tree = repo
                .git
                .find_commit(*commit)
                .and_then(|c| c.tree())
                .with_context(|| format!("reading the tree of {base_what}"))?;
            let changes = diff::changes(&trees, Some(base_tree.id()), head_tree.id())?;
            let touched = touched(&repo.git, &changes)?;
            Some((base_what, base_tree, changes, touched))
        }
    };
    let mut learnt = Learnt::default();
    let (workflows, known) = match &change {
        None => {
            let known =
                catalog::workflows(&repo.git, &trees, &config, &head_folders, &HashSet::new(), store, &mut learnt)?;
            (everything(&known), known)
        }
        Some((base_what, base_tree, changes, touched)) => {
            let reached = folder_names(&config.workflows, touched.iter().map(|t| t.path.as_slice()));
            let known = catalog::workflows(&repo.git, &trees, &config, &head_folders, &reached, store, &mut learnt)?;
            let differ = folder_names(&config.workflows, changes.iter().map(|c| c.path.as_slice()));
            let before =
                before(repo, &trees, base_tree, base_what, (&config, deploy_toml), &differ).unwrap_or_else(|e| {
                    notes.push(format!(
                        "the workflows at base cannot be read ({e}); new and removed workflows are not detected"
                    ));
                    None
                });
            let at_head = |name: &str| known.binary_search_by(|k| k.name().cmp(name)).is_ok();
            let removed: Vec<Workflow> = match &before {
                Some(b) => b.read.iter().filter(|w| !at_head(&w.name)).cloned().collect(),
                None => Vec::new(),
            };
            let read_names: HashSet<&str> = before.iter().flat_map(|b| &b.read).map(|w| w.name.as_str()).collect();
            // A head workflow existed at base when its folder is the same there, or a folder
            // read at base had its name.
            let existed_at_base = |k: &Known<'_>| {
                let same = |d: &HashSet<&str>| !d.contains(folder_name(&config.workflows, k.path()));
                before.as_ref().and_then(|b| b.differ).is_some_and(same) || read_names.contains(k.name())
            };
            let existed = before.as_ref().map(|_| &existed_at_base as &dyn Fn(&Known<'_>) -> bool);
            let planned = classify(&config.workflows, &known, existed, &removed, &global, touched);
            (planned, known)
        }
    };

    // No workflows root at head, yet workflows at base: a typo in `workflows` (or a moved
    // root) would otherwise plan every workflow as removed.
    if head_root.is_none() && workflows.iter().any(|w| w.action == Action::Removed) {
        return Err(config.missing_root(&head_what));
    }
    let base = base.or(given_base);
    let mut plan = Plan {
        base: base.as_ref().map(|(c, _)| c.to_string()),
        head: head.id().to_string(),
        domain,
        workflows,
        notes,
        base_how: base.map(|(_, how)| how),
    };
    fill_versions(repo, &head, &head_tree, &config, &known, &mut plan, &mut learnt)?;
    store.save(learnt);
    Ok(plan)
}

/// The plan of `range` with versions, owning its texts, and the full workspace at head (what
/// `deploy` goes on with).
pub fn compute_with_workspace(repo: &Repo, range: &args::Range) -> Result<(Plan<'static>, Workspace)> {
    let store = OnceLock::new();
    let plan = compute(repo, range, &store)?.into_owned();
    let head = repo.commit(&plan.head)?;
    let workspace = Workspace::load(&GitTree::at_commit(&repo.git, &head)?)?;
    // The plan checked the packages it knows; deploy serializes with the workspace's.
    workspace.check_packages()?;
    Ok((plan, workspace))
}

// ---------------------------------------------------------------------------------------
// Versions.

/// Where history is cut in a shallow clone, for a stamp: `:shallow-<hash of .git/shallow>`,
/// or nothing in a full clone.
fn shallow_cut(repo: &Repo) -> String {
    if !repo.git.is_shallow() {
        return String::new();
    }
    let list = std::fs::read(repo.git.path().join("shallow")).unwrap_or_default();
    let id =
        git2::Oid::hash_object(git2::ObjectType::Blob, &list).map_or_else(|_| "unknown".into(), |id| id.to_string());
    format!(":shallow-{id}")
}

/// Fills `version`, `image` and `code` of every workflow present at head (`known`, sorted by
/// name like the plan): from the versions cache when it knows the workflow's inputs, else
/// from its fingerprint (computed in parallel, and put in the cache). Bad input in any
/// workflow (a submodule or a symlink out of its folder in its code set, a dependency file
/// outside it, a shallow clone too shallow for a git-sha version) fails the plan, naming
/// each such workflow; a failure of the outside world leaves that workflow without a
/// version, with a note.
fn fill_versions<'s>(
    repo: &Repo,
    commit: &git2::Commit<'_>,
    tree: &git2::Tree<'_>,
    config: &config::Config,
    known: &[Known<'s>],
    plan: &mut Plan<'s>,
    learnt: &mut Learnt,
) -> Result<()> {
    let stamp_head = match config.version_scheme {
        config::VersionScheme::Content => None,
        // The version names a commit found by walking history, which a shallow clone cuts:
        // the stamp says where (the commits listed in `.git/shallow`).
        config::VersionScheme::GitSha => {
            Some(format!("{}:{}{}", commit.id(), fingerprint::sha_len()?, shallow_cut(repo)))
        }
    };
    let mut at_head: HashMap<&str, Input> = HashMap::new();
    // (index in the plan, the workflow, inputs) of the workflows the cache does not know.
    let mut misses: Vec<(usize, &Known<'s>, Vec<Input>)> = Vec::new();
    // The plan's workflows present at head are `known`, in the same order.
    let mut present = known.iter();
    for (i, p) in plan.workflows.iter_mut().enumerate() {
        if p.action == Action::Removed {
            continue;
        }
        let k = present.next().expect("every workflow of head is planned");
        debug_assert_eq!(k.name(), p.name);
        let inputs = outer_inputs(k, tree, &mut at_head)?;
        match k.entry().and_then(|e| e.stamp()) {
            Some(s) if s.made_from(&inputs, stamp_head.as_deref()) => {
                p.version = Some(s.version.into());
                p.image = Some(s.image.into());
                p.code = Some(s.code.into());
            }
            _ => misses.push((i, k, inputs)),
        }
    }
    if misses.is_empty() {
        return Ok(());
    }
    let todo: Vec<&str> = misses.iter().map(|(_, k, _)| k.path()).collect();
    let outcomes = versions_of(repo, commit.id(), config, &todo)?;
    // Bad input in a workflow (a symlink out of its folder, a submodule, ...): the plan is
    // refused whole, naming each, so that nothing is registered from a tree with bad input.
    let mut bad: Vec<String> = Vec::new();
    for ((i, k, inputs), outcome) in misses.into_iter().zip(outcomes) {
        let p = &mut plan.workflows[i];
        match outcome? {
            Ok(fp) => {
                let stamp =
                    Stamp { inputs, head: stamp_head.clone(), version: fp.version, image: fp.image, code: fp.code };
                learnt.stamp(k.path(), k.tree(), &k.facts(), &stamp);
                p.version = Some(stamp.version.into());
                p.image = Some(stamp.image.into());
                p.code = Some(stamp.code.into());
            }
            Err(e) => match e.chain().find_map(|c| c.downcast_ref::<error::UserError>()) {
                Some(user) => bad.push(format!("{}: {}", p.name, user.to_string().replace('\n', "\n    "))),
                None => plan.notes.push(format!("{}: no version: {e:#}", p.name)),
            },
        }
    }
    match bad.len() {
        0 => Ok(()),
        1 => Err(error::user(bad.remove(0), "")),
        n => Err(error::user(format!("{n} workflows have bad input:\n  {}", bad.join("\n  ")), "")),
    }
}

/// The ids at head of a workflow's inputs outside its folder: its shared paths, and its
/// Dockerfile when that lies elsewhere. `memo` keeps the ids already looked up.
fn outer_inputs<'w>(k: &'w Known<'_>, tree: &git2::Tree<'_>, memo: &mut HashMap<&'w str, Input>) -> Result<Vec<Input>> {
    let outside = k.dockerfile().filter(|d| !k.contains(d.as_bytes()));
    let mut out = Vec::new();
    for path in k.shared().chain(outside) {
        if let Some(input) = memo.get(path) {
            out.push(*input);
            continue;
        }
        let input = match tree.get_path(std::path::Path::new(path)) {
            Ok(e) => Input { id: Some(e.id()), mode: e.filemode() },
            Err(e) if e.code() == git2::ErrorCode::NotFound => Input { id: None, mode: 0 },
            Err(e) => return Err(e).with_context(|| format!("reading '{path}' at head")),
        };
        memo.insert(path, input);
        out.push(input);
    }
    Ok(out)
}

/// The fingerprint of each workflow at `commit` (outer error: its manifest is wrong, or the
/// repository cannot be read; inner error: it cannot be versioned), in order. Spreads the
/// work over the cores, each thread with its own handle on the repository.
fn versions_of(
    repo: &Repo,
    commit: git2::Oid,
    config: &config::Config,
    todo: &[&str],
) -> Result<Vec<Result<Result<Fingerprint>>>> {
    // Fingerprinting reads many trees more than once (shared libraries): cache them.
    git2::opts::enable_caching(true);
    let one = |git: &git2::Repository, commit: &git2::Commit<'_>, path: &str| -> Result<Result<Fingerprint>> {
        let source = GitTree::at_commit(git, commit)?;
        let folder = path.rsplit('/').next().unwrap_or(path);
        let full = workspace::load_workflow(&source, config, path, folder)?;
        let fp = CodeSet::at(git, source.tree(), &full)
            .and_then(|set| fingerprint::of_commit(commit, &source, &set, config, &full));
        match fp {
            Ok(fp) => Ok(Ok(fp)),
            Err(e) if error::is_user_error(&e) => Ok(Err(e)),
            Err(e) => Err(e),
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(todo.len().div_ceil(16));
    if threads <= 1 {
        let commit = repo.git.find_commit(commit).context("reading the head commit")?;
        return Ok(todo.iter().map(|wf| one(&repo.git, &commit, wf)).collect());
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<Result<Fingerprint>>>>> =
        todo.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let path = repo.git.path();
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Result<()> {
                    let git = git2::Repository::open(path)
                        .with_context(|| format!("opening the repository at {}", path.display()))?;
                    let commit = git.find_commit(commit).context("reading the head commit")?;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(wf) = todo.get(i) else { return Ok(()) };
                        *slots[i].lock().expect("a fingerprint thread panicked") = Some(one(&git, &commit, wf));
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a fingerprint thread panicked")?;
        }
        Ok(())
    })?;
    Ok(slots
        .into_iter()
        .map(|s| s.into_inner().expect("a fingerprint thread panicked").expect("every workflow was fingerprinted"))
        .collect())
}

/// The base side of a change: the base workflows read (those of the folders that differ,
/// or all of them when the configuration differs), and which folders differ.
struct Before<'c> {
    /// When base has head's configuration: the names of the folders that differ between base
    /// and head; every other folder holds the same workflow at both ends. `None`: every base
    /// folder was read.
    differ: Option<&'c HashSet<&'c str>>,
    read: Vec<Workflow>,
}

/// The folder name of a workflow path under the workflows root.
fn folder_name<'p>(root: &str, path: &'p str) -> &'p str {
    path.strip_prefix(root).and_then(|f| f.strip_prefix('/')).unwrap_or(path)
}

/// The names of the workflow folders (under `root`) that `paths` lie in.
fn folder_names<'p>(root: &str, paths: impl Iterator<Item = &'p [u8]>) -> HashSet<&'p str> {
    paths
        .filter_map(|p| folder_of(root, p))
        .filter_map(|f| std::str::from_utf8(f).ok())
        .map(|f| folder_name(root, f))
        .collect()
}

/// What base had (no deploy.toml at base: no workflows). `differ` are the folder names under
/// the workflows root with a change between base and head.
fn before<'c>(
    repo: &Repo,
    trees: &Trees<'_>,
    base_tree: &git2::Tree<'_>,
    base_what: &str,
    (head_config, head_deploy_toml): (&config::Config, git2::Oid),
    differ: &'c HashSet<&'c str>,
) -> Result<Option<Before<'c>>> {
    // The same deploy.toml: every folder but those that differ holds the same workflow at
    // both ends, and only those are read.
    if base_tree.get_name(DEPLOY_TOML).map(|e| e.id()) == Some(head_deploy_toml) {
        let mut names: Vec<&str> = differ.iter().copied().collect();
        names.sort_unstable();
        let root = catalog::root(trees, base_tree.id(), head_config)?;
        let folders = catalog::folders_named(root.as_ref(), &names)?;
        let read = catalog::read(&repo.git, trees, head_config, &folders)?;
        return Ok(Some(Before { differ: Some(differ), read }));
    }
    let Some((config, _)) = catalog::config(&repo.git, base_tree, base_what)? else {
        return Ok(Some(Before { differ: None, read: Vec::new() }));
    };
    let root = catalog::root(trees, base_tree.id(), &config)?;
    let folders = catalog::folders(root.as_ref(), &config)?;
    Ok(Some(Before { differ: None, read: catalog::read(&repo.git, trees, &config, &folders)? }))
}

fn global_paths(config: &config::Config) -> Result<Vec<String>> {
    config.global.iter().map(|g| config::repo_path(g, "global path")).collect()
}

/// The changed paths that matter: a requirements file whose content differs only in
/// comments, blank lines or whitespace (and whose mode is the same) is dropped.
pub fn touched(repo: &git2::Repository, changes: &[Change]) -> Result<Vec<Touched>> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let content = match (c.old, c.new) {
            (Some(old), Some(new)) if old.id == new.id => false,
            (Some(old), Some(new)) if old.is_file() && new.is_file() && deps::is_requirements(&c.path) => {
                let read = |id| {
                    repo.find_blob(id)
                        .map(|b| deps::normalised(&c.path, b.content()))
                        .with_context(|| format!("reading {} ({id})", diff::quote_path(&c.path)))
                };
                read(old.id)? != read(new.id)?
            }
            _ => true,
        };
        let mode = c.old.map(|b| b.mode) != c.new.map(|b| b.mode);
        if content || mode {
            out.push(Touched { path: c.path.clone(), content });
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Classification: pure.

/// Every workflow as changed (`--all`, or a base that could not be resolved): a `code`
/// reason at its folder, and a `dependency` reason at its Dockerfile when it has its own
/// image (so: `rebuild` with a Dockerfile, else `fast`).
pub fn everything<'s>(head: &[Known<'s>]) -> Vec<PlannedWorkflow<'s>> {
    head.iter()
        .map(|k| {
            let mut reasons = vec![Reason { path: k.path().to_string(), kind: ReasonKind::Code }];
            if let Some(d) = k.dockerfile() {
                reasons.push(Reason { path: d.to_string(), kind: ReasonKind::Dependency });
            }
            reasons.sort_by(|a, b| a.path.cmp(&b.path));
            planned(k.texts(), action_of(&reasons), reasons)
        })
        .collect()
}

/// The plan of each workflow. `root` is the workflows root; `head` the workflows at head,
/// sorted by name; `existed` tells whether a workflow's name was a workflow's at base
/// (`None` when unknown: then nothing counts as new); `removed` the workflows of base that
/// are not at head; `global` the global paths; `touched` the changed paths.
///
/// A path in a workflow's folder is a `dependency` when
/// its content changed and it matches the workflow's dependency patterns, else `code`; else
/// a path under a shared path the workflow declares is `shared`; else a path under a global
/// path is `global`. One reason per path per workflow. A workflow whose name is new at head
/// is `rebuild` if it has its own Dockerfile, else `fast`; otherwise `rebuild` if any reason
/// is `dependency`, `fast` if there is any reason, else `unchanged`. Workflows of base that
/// are not at head are `removed`.
pub fn classify<'s>(
    root: &str,
    head: &[Known<'s>],
    existed: Option<&dyn Fn(&Known<'s>) -> bool>,
    removed: &[Workflow],
    global: &[String],
    touched: &[Touched],
) -> Vec<PlannedWorkflow<'s>> {
    // The workflows by folder, for the few folders a change touches (sorted by name, they
    // are usually sorted by folder already).
    let mut by_folder: Vec<usize> = Vec::new();
    if !head.windows(2).all(|w| w[0].path() <= w[1].path()) {
        by_folder = (0..head.len()).collect();
        by_folder.sort_by(|a, b| head[*a].path().cmp(head[*b].path()));
    }
    let folder_index = |folder: &[u8]| match by_folder.is_empty() {
        true => head.binary_search_by(|k| k.path().as_bytes().cmp(folder)).ok(),
        false => by_folder.binary_search_by(|i| head[*i].path().as_bytes().cmp(folder)).ok().map(|at| by_folder[at]),
    };
    let mut by_shared: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
    for (i, k) in head.iter().enumerate() {
        for s in k.shared() {
            by_shared.entry(s.as_bytes()).or_default().push(i);
        }
    }

    let mut sorted: Vec<&Touched> = touched.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); head.len()];
    let mut reached: Vec<usize> = Vec::new();
    for t in sorted {
        reached.clear();
        let text = diff::quote_path(&t.path);
        // A workflow's Dockerfile is always in its folder (workspace.rs refuses `..`).
        if let Some(i) = folder_of(root, &t.path).and_then(folder_index) {
            let kind =
                if t.content && head[i].is_dependency(&t.path) { ReasonKind::Dependency } else { ReasonKind::Code };
            reasons[i].push(Reason { path: text.clone(), kind });
            reached.push(i);
        }
        for (shared, users) in &by_shared {
            if workspace::under(&t.path, shared) {
                for &i in users {
                    if !reached.contains(&i) {
                        reasons[i].push(Reason { path: text.clone(), kind: ReasonKind::Shared });
                        reached.push(i);
                    }
                }
            }
        }
        if global.iter().any(|g| workspace::under(&t.path, g.as_bytes())) {
            let reached: HashSet<usize> = reached.iter().copied().collect();
            for (i, r) in reasons.iter_mut().enumerate() {
                if !reached.contains(&i) {
                    r.push(Reason { path: text.clone(), kind: ReasonKind::Global });
                }
            }
        }
    }

    let mut out: Vec<PlannedWorkflow<'s>> = Vec::with_capacity(head.len() + removed.len());
    out.extend(head.iter().zip(reasons).map(|(k, reasons)| {
        let is_new = existed.is_some_and(|existed| !existed(k));
        let action = match (is_new, k.dockerfile()) {
            (true, Some(_)) => Action::Rebuild,
            (true, None) => Action::Fast,
            (false, _) => action_of(&reasons),
        };
        planned(k.texts(), action, reasons)
    }));
    if !out.windows(2).all(|w| w[0].name <= w[1].name) {
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    // Few are removed: each goes in its place by name.
    for w in removed {
        let reasons = vec![Reason { path: w.path.clone(), kind: ReasonKind::Removed }];
        let texts = [w.name.clone().into(), w.path.clone().into(), w.project.clone().into()];
        let at = out.partition_point(|p| *p.name <= *w.name);
        out.insert(at, planned(texts, Action::Removed, reasons));
    }
    out
}

/// The workflow folder (`root/<name>`) a path lies in, if any.
fn folder_of<'p>(root: &str, path: &'p [u8]) -> Option<&'p [u8]> {
    let rest = workspace::strip_dir(path, root.as_bytes())?;
    let name_len = rest.iter().position(|b| *b == b'/')?;
    Some(&path[..path.len() - rest.len() + name_len])
}

/// `rebuild` if any reason is a dependency, `fast` if there is any reason, else `unchanged`.
pub fn action_of(reasons: &[Reason]) -> Action {
    if reasons.iter().any(|r| r.kind == ReasonKind::Dependency) {
        Action::Rebuild
    } else if reasons.is_empty() {
        Action::Unchanged
    } else {
        Action::Fast
    }
}

fn planned<'s>([name, path, project]: [Cow<'s, str>; 3], action: Action, reasons: Vec<Reason>) -> PlannedWorkflow<'s> {
    PlannedWorkflow { name, path, project, action, reasons, version: None, image: None, code: None }
}

// ---------------------------------------------------------------------------------------
// Output.

/// How many reasons of a workflow the text table shows.
const REASONS_SHOWN: usize = 3;

/// The text form: a header line, a table with the reasons, and a count per action.
pub fn table(plan: &Plan) -> String {
    let base = match (&plan.base, &plan.base_how) {
        (Some(b), Some(how)) => format!("{b:.10} ({how})"),
        (Some(b), None) => format!("{b:.10}"),
        (None, _) => "none (every workflow planned)".into(),
    };
    let mut out = format!("base {base}, head {:.10}, domain {}\n", plan.head, plan.domain);
    if plan.workflows.is_empty() {
        out.push_str("no workflows\n");
        return out;
    }
    let mut rows = vec![["WORKFLOW".to_string(), "ACTION".into(), "PROJECT".into(), "REASONS".into()]];
    for w in &plan.workflows {
        let mut shown: Vec<String> = w
            .reasons
            .iter()
            .take(REASONS_SHOWN)
            .map(|r| format!("{} ({})", line_safe(&r.path), r.kind.as_str()))
            .collect();
        if w.reasons.len() > REASONS_SHOWN {
            shown.push(format!("and {} more", w.reasons.len() - REASONS_SHOWN));
        }
        let reasons = if shown.is_empty() { "-".to_string() } else { shown.join(", ") };
        rows.push([w.name.to_string(), w.action.as_str().into(), w.project.to_string(), reasons]);
    }
    out.push_str(&crate::report::columns(&rows));
    let count = |a: Action| plan.workflows.iter().filter(|w| w.action == a).count();
    out.push_str(&format!(
        "{} rebuild, {} fast, {} unchanged, {} removed\n",
        count(Action::Rebuild),
        count(Action::Fast),
        count(Action::Unchanged),
        count(Action::Removed)
    ));
    out
}

/// A reason path fit for one line (JSON paths may hold newlines; the table may not).
fn line_safe(path: &str) -> String {
    if path.starts_with('"') {
        path.to_string()
    } else {
        diff::quote_path_for_line(path.as_bytes())
    }
}

/// The plan JSON: [`Plan`]'s `Serialize` through serde_json, compact, with each top-level key
/// and each element of a top-level array (each workflow, each note) on its own line. (For
/// 2,000 workflows serde_json's serializer takes about 0.2 ms, 0.1 ms more than the writer
/// by hand it replaced: about 2% of a warm plan, within `bench plan`'s budget.)
pub fn write_json(out: &mut impl Write, plan: &Plan<'_>) -> Result<()> {
    let mut json = serde_json::Serializer::with_formatter(out, OneRowALine::default());
    plan.serialize(&mut json).context("writing the plan JSON")?;
    Ok(())
}

/// serde_json's compact layout, with a line break before every top-level key but the first,
/// before each element of an array that is a top-level value, and before the closing
/// bracket of such an array when it is not empty. Only whitespace differs from compact JSON.
#[derive(Default)]
struct OneRowALine {
    /// How many objects and arrays are open.
    depth: usize,
    /// The top-level array being written has an element.
    rows: bool,
}

impl serde_json::ser::Formatter for OneRowALine {
    fn begin_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        out.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        out.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        match (first, self.depth) {
            (true, _) => Ok(()),
            (false, 1) => out.write_all(b",\n"),
            (false, _) => out.write_all(b","),
        }
    }

    fn begin_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        if self.depth == 2 {
            self.rows = false;
        }
        out.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, out: &mut W) -> std::io::Result<()> {
        if self.depth == 2 && self.rows {
            out.write_all(b"\n")?;
        }
        self.depth -= 1;
        out.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, out: &mut W, first: bool) -> std::io::Result<()> {
        match (first, self.depth) {
            (true, 2) => {
                self.rows = true;
                out.write_all(b"\n")
            }
            (false, 2) => out.write_all(b",\n"),
            (true, _) => Ok(()),
            (false, _) => out.write_all(b","),
        }
    }
}

/// The most entries a GitHub Actions matrix may hold.
pub const MATRIX_CHUNK: usize = 256;

/// One entry of the GitHub Actions matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatrixEntry {
    pub workflow: String,
    pub action: Action,
    pub project: String,
    pub domain: String,
    pub version: Option<String>,
}

/// The workflows needing work (every action but `unchanged`; `removed` ones are deactivated),
/// in chunks of at most [`MATRIX_CHUNK`]. No work gives one empty chunk.
pub fn matrix_chunks(plan: &Plan) -> Vec<Vec<MatrixEntry>> {
    let entries: Vec<MatrixEntry> = plan
        .workflows
        .iter()
        .filter(|w| w.action != Action::Unchanged)
        .map(|w| MatrixEntry {
            workflow: w.name.to_string(),
            action: w.action,
            project: w.project.to_string(),
            domain: plan.domain.clone(),
            version: w.version.as_deref().map(str::to_string),
        })
        .collect();
    if entries.is_empty() {
        return vec![Vec::new()];
    }
    entries.chunks(MATRIX_CHUNK).map(<[MatrixEntry]>::to_vec).collect()
}

fn github_matrix(plan: &Plan, chunk: usize) -> Result<()> {
    let chunks = matrix_chunks(plan);
    let total: usize = chunks.iter().map(Vec::len).sum();
    let Some(entries) = chunks.get(chunk) else {
        return Err(error::user(
            format!("--chunk {chunk} does not exist: the matrix has {} chunk(s) (numbered from 0)", chunks.len()),
            format!("pass --chunk between 0 and {}", chunks.len() - 1),
        ));
    };
    #[derive(Serialize)]
    struct Matrix<'a> {
        include: &'a [MatrixEntry],
    }
    let json = serde_json::to_string(&Matrix { include: entries })?;
    println!("{json}");
    crate::output::status(format_args!(
        "matrix: chunk {chunk} of {} chunk(s) ({} of {total} workflows needing work)",
        chunks.len(),
        entries.len()
    ));
    if let Some(path) = crate::settings::GITHUB_OUTPUT.get_os() {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening GITHUB_OUTPUT ({})", path.to_string_lossy()))?;
        writeln!(file, "matrix={json}\nany={}", total > 0)
            .with_context(|| format!("writing GITHUB_OUTPUT ({})", path.to_string_lossy()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_of_takes_the_first_segment_below_the_root() {
        assert_eq!(folder_of("workflows", b"workflows/etl/a/b.py"), Some(&b"workflows/etl"[..]));
        assert_eq!(folder_of("workflows", b"workflows/README.md"), None);
        assert_eq!(folder_of("workflows", b"workflowsx/etl/a.py"), None);
        assert_eq!(folder_of("a/wf", b"a/wf/x/y"), Some(&b"a/wf/x"[..]));
    }

    #[test]
    fn action_follows_the_strongest_reason() {
        let r = |kind| Reason { path: "p".into(), kind };
        assert_eq!(action_of(&[]), Action::Unchanged);
        assert_eq!(action_of(&[r(ReasonKind::Shared), r(ReasonKind::Global)]), Action::Fast);
        assert_eq!(action_of(&[r(ReasonKind::Code), r(ReasonKind::Dependency)]), Action::Rebuild);
    }

    #[test]
    fn the_json_is_the_serialized_plan_one_workflow_a_line() {
        let row = |name: &'static str, action, version: Option<&'static str>| PlannedWorkflow {
            name: name.into(),
            path: format!("workflows/{name}").into(),
            project: "p".into(),
            action,
            reasons: vec![
                Reason { path: "a \"quoted\"\tpath\n".into(), kind: ReasonKind::Code },
                Reason { path: "été/\u{1}".into(), kind: ReasonKind::Shared },
                Reason { path: "back\\slash/été \u{7f}".into(), kind: ReasonKind::Global },
            ],
            version: version.map(Cow::Borrowed),
            image: version.map(|_| Cow::Borrowed("r/x:1")),
            code: None,
        };
        let plans = [
            Plan {
                base: Some("b".into()),
                head: "h".into(),
                domain: "development".into(),
                workflows: vec![row("a", Action::Fast, Some("v1")), row("b", Action::Removed, None)],
                notes: vec!["one".into(), "two \"2\"".into()],
                base_how: None,
            },
            Plan { base: None, head: "h".into(), domain: "d".into(), workflows: vec![], notes: vec![], base_how: None },
        ];
        for plan in plans {
            let mut out = Vec::new();
            write_json(&mut out, &plan).unwrap();
            let text = String::from_utf8(out).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, serde_json::to_value(&plan).unwrap(), "{text}");
            let rows = text.lines().filter(|l| l.starts_with("{\"name\":")).count();
            assert_eq!(rows, plan.workflows.len(), "one workflow a line: {text}");
        }
        let mut out = Vec::new();
        let one = Plan {
            base: None,
            head: "h".into(),
            domain: "d".into(),
            workflows: vec![PlannedWorkflow {
                reasons: vec![Reason { path: "p/x".into(), kind: ReasonKind::Code }],
                ..row("a", Action::Fast, None)
            }],
            notes: vec!["n".into()],
            base_how: None,
        };
        write_json(&mut out, &one).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"base\":null,\n\"head\":\"h\",\n\"domain\":\"d\",\n\"workflows\":[\n{\"name\":\"a\",\"path\":\"workflows/a\",\
             \"project\":\"p\",\"action\":\"fast\",\"reasons\":[{\"path\":\"p/x\",\"kind\":\"code\"}],\"version\":null,\
             \"image\":null}\n],\n\"notes\":[\n\"n\"\n]}"
        );
        let mut out = Vec::new();
        write_json(&mut out, &Plan { workflows: vec![], notes: vec![], ..one }).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"base\":null,\n\"head\":\"h\",\n\"domain\":\"d\",\n\"workflows\":[],\n\"notes\":[]}"
        );
    }
}
