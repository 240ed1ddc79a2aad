//! `cargo xtask plan`: which workflows a change reaches and what each needs (rebuild, fast,
//! unchanged, removed), with the reasons. Reads top-down: resolve base, head and domain, load
//! the workspace at both ends, diff the trees, classify (a pure function), print. Computes
//! without side effects; `deploy` calls [`compute`] for the same plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::base::{self, Base, CiContext};
use crate::catalog;
use crate::cli::{self, OnMissingBase, PlanFormat};
use crate::config::{self, DEPLOY_TOML};
use crate::deps;
use crate::diff::{self, Change};
use crate::error;
use crate::repo::Repo;
use crate::source::GitTree;
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

/// One workflow of the plan. `version` and `image` are filled by the fingerprint stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedWorkflow {
    pub name: String,
    pub path: String,
    pub project: String,
    pub action: Action,
    pub reasons: Vec<Reason>,
    pub version: Option<String>,
    pub image: Option<String>,
    /// The code fingerprint behind `version` (not in the JSON): deploy's serialize cache key.
    #[serde(skip)]
    pub code: Option<String>,
}

/// The plan: DESIGN.md's plan JSON, plus `notes` for the reader (an unresolved base, a
/// detached HEAD). Every workflow of head appears once, sorted by name, with those removed
/// since base.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub base: Option<String>,
    pub head: String,
    pub domain: String,
    pub workflows: Vec<PlannedWorkflow>,
    pub notes: Vec<String>,
    /// How the base was found (text output only).
    #[serde(skip)]
    pub base_how: Option<String>,
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

pub fn run(args: cli::Plan) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    // Versions need the full workspace at head (dependency patterns, settings).
    let (plan, _) = compute(&repo, &args.range)?;
    match args.format {
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        PlanFormat::Text => {
            for note in &plan.notes {
                eprintln!("note: {note}");
            }
            print!("{}", table(&plan));
        }
        PlanFormat::GithubMatrix => {
            for note in &plan.notes {
                eprintln!("note: {note}");
            }
            github_matrix(&plan, args.chunk)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The plan of `range`, and the full workspace at head (what `deploy` goes on with).
pub fn compute(repo: &Repo, range: &cli::Range) -> Result<(Plan, Workspace)> {
    let plan = plan(repo, range)?;
    // The full load looks paths up from the root again and again: cache every tree (the
    // workflows root is above libgit2's default 4 KiB limit).
    git2::opts::enable_caching(true);
    // SAFETY: sets a process-wide libgit2 option; no other thread uses libgit2 here.
    unsafe {
        git2::opts::set_cache_object_limit(git2::ObjectType::Tree, 64 << 20).context("configuring libgit2")?;
    }
    let mut plan = plan;
    let head = repo.commit(&plan.head)?;
    let tree = GitTree::at_commit(&repo.git, &head)?;
    let workspace = Workspace::load(&tree)?;
    fill_fingerprints(repo, &head, &tree, &workspace, &mut plan.workflows, &mut plan.notes)?;
    Ok((plan, workspace))
}

/// The plan of `range`. Reads the trees that differ between base and head, and of every
/// workflow folder only its own tree and manifest.
pub fn plan(repo: &Repo, range: &cli::Range) -> Result<Plan> {
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
    let global = global_paths(&config)?;
    for (g, path) in config.global.iter().zip(&global) {
        if !path.is_empty() && head_tree.get_path(std::path::Path::new(path)).is_err() {
            return Err(g.error(
                format!("global path '{}' does not exist in {head_what}", g.value),
                "remove it from `global` or correct the path",
            ));
        }
    }
    let mut notes = Vec::new();
    let branch = base::branch(repo, &range.head, &ci);
    let domain =
        base::resolve_domain(&config, range.domain.as_deref(), branch.as_deref(), &mut notes)?.name.value.clone();

    let base = if range.all {
        notes.push("--all: every workflow planned as changed".into());
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

    let head_folders = catalog::folders(&repo.git, &head_tree, &config)?;
    let workflows = match &base {
        None => everything(&catalog::workflows(&repo.git, &config, &head_folders, &HashSet::new())?),
        Some((commit, _)) => {
            let base_what = format!("commit {commit:.10}");
            let base_tree = repo
                .git
                .find_commit(*commit)
                .and_then(|c| c.tree())
                .with_context(|| format!("reading the tree of {base_what}"))?;
            let changes = diff::changes(&repo.git, Some(&base_tree), &head_tree)?;
            let touched = touched(&repo.git, &changes)?;
            let reached: HashSet<&str> = touched
                .iter()
                .filter_map(|t| folder_of(&config.workflows, &t.path))
                .filter_map(|f| std::str::from_utf8(f).ok())
                .map(|f| &f[config.workflows.len() + 1..])
                .collect();
            let head_workflows = catalog::workflows(&repo.git, &config, &head_folders, &reached)?;
            let before = before(repo, &base_tree, &base_what, (&config, deploy_toml), &head_folders, &head_workflows)
                .unwrap_or_else(|e| {
                    notes.push(format!(
                        "the workflows at base cannot be read ({e}); new and removed workflows are not detected"
                    ));
                    None
                });
            let head_names: HashSet<&str> = head_workflows.iter().map(|w| w.name.as_str()).collect();
            let (base_names, removed) = match &before {
                Some((names, read)) => {
                    (Some(names), read.iter().filter(|w| !head_names.contains(w.name.as_str())).cloned().collect())
                }
                None => (None, Vec::new()),
            };
            classify(&config.workflows, &head_workflows, base_names, &removed, &global, &touched)
        }
    };

    Ok(Plan {
        base: base.as_ref().map(|(c, _)| c.to_string()),
        head: head.id().to_string(),
        domain,
        workflows,
        notes,
        base_how: base.map(|(_, how)| how),
    })
}

/// Fills `version` and `image` of every workflow present at head from its fingerprint.
fn fill_fingerprints(
    repo: &Repo,
    head: &git2::Commit<'_>,
    tree: &GitTree<'_>,
    ws: &Workspace,
    planned: &mut [PlannedWorkflow],
    notes: &mut Vec<String>,
) -> Result<()> {
    for p in planned.iter_mut().filter(|p| p.action != Action::Removed) {
        let Some(wf) = ws.workflow(&p.name) else { continue };
        let fp = crate::codeset::CodeSet::at(&repo.git, tree.tree(), wf)
            .and_then(|set| crate::fingerprint::of_commit(head, tree, &set, ws, wf));
        match fp {
            Ok(fp) => {
                p.version = Some(fp.version);
                p.image = Some(fp.image);
                p.code = Some(fp.code);
            }
            // A workflow that cannot be packaged (e.g. it holds a submodule) is still
            // planned; it has no version, and deploying it fails with this message.
            Err(e) if error::is_user_error(&e) => notes.push(format!("{}: no version: {e}", p.name)),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The workflow names at base, and the base workflows that had to be read to learn them
/// (folders that differ from head's). No deploy.toml at base: no workflows.
fn before(
    repo: &Repo,
    base_tree: &git2::Tree<'_>,
    base_what: &str,
    (head_config, head_deploy_toml): (&config::Config, git2::Oid),
    head_folders: &[catalog::Folder],
    head_workflows: &[Workflow],
) -> Result<Option<(HashSet<String>, Vec<Workflow>)>> {
    let Some((config, deploy_toml)) = catalog::config(&repo.git, base_tree, base_what)? else {
        return Ok(Some((HashSet::new(), Vec::new())));
    };
    let folders = catalog::folders(&repo.git, base_tree, &config)?;
    let mut known = HashMap::new();
    if deploy_toml == head_deploy_toml {
        let name_of: HashMap<String, &str> = head_workflows.iter().map(|w| (w.path.clone(), w.name.as_str())).collect();
        for f in head_folders {
            if let Some(name) = name_of.get(&format!("{}/{}", head_config.workflows, f.name)) {
                known.insert((f.name.as_str(), f.tree), *name);
            }
        }
    }
    Ok(Some(catalog::names(&repo.git, &config, &folders, &known)?))
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
pub fn everything(head: &[Workflow]) -> Vec<PlannedWorkflow> {
    head.iter()
        .map(|w| {
            let mut reasons = vec![Reason { path: w.path.clone(), kind: ReasonKind::Code }];
            if let Some(d) = &w.dockerfile {
                reasons.push(Reason { path: d.clone(), kind: ReasonKind::Dependency });
            }
            reasons.sort_by(|a, b| a.path.cmp(&b.path));
            planned(w, action_of(&reasons), reasons)
        })
        .collect()
}

/// The plan of each workflow. `root` is the workflows root; `head` the workflows at head;
/// `base_names` the workflow names at base (`None` when unknown: then nothing counts as
/// new); `removed` the workflows of base that are not at head; `global` the global paths;
/// `touched` the changed paths.
///
/// A path in a workflow's folder is a `dependency` when
/// its content changed and it matches the workflow's dependency patterns, else `code`; else
/// a path under a shared path the workflow declares is `shared`; else a path under a global
/// path is `global`. One reason per path per workflow. A workflow whose name is new at head
/// is `rebuild` if it has its own Dockerfile, else `fast`; otherwise `rebuild` if any reason
/// is `dependency`, `fast` if there is any reason, else `unchanged`. Workflows of base that
/// are not at head are `removed`.
pub fn classify(
    root: &str,
    head: &[Workflow],
    base_names: Option<&HashSet<String>>,
    removed: &[Workflow],
    global: &[String],
    touched: &[Touched],
) -> Vec<PlannedWorkflow> {
    let by_folder: HashMap<&[u8], usize> = head.iter().enumerate().map(|(i, w)| (w.path.as_bytes(), i)).collect();
    let mut by_shared: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
    for (i, w) in head.iter().enumerate() {
        for s in &w.shared {
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
        if let Some(&i) = folder_of(root, &t.path).and_then(|f| by_folder.get(f)) {
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

    let mut out: Vec<PlannedWorkflow> = head
        .iter()
        .zip(reasons)
        .map(|(w, reasons)| {
            let is_new = base_names.is_some_and(|names| !names.contains(&w.name));
            let action = match (is_new, &w.dockerfile) {
                (true, Some(_)) => Action::Rebuild,
                (true, None) => Action::Fast,
                (false, _) => action_of(&reasons),
            };
            planned(w, action, reasons)
        })
        .collect();
    for w in removed {
        let reasons = vec![Reason { path: w.path.clone(), kind: ReasonKind::Removed }];
        out.push(planned(w, Action::Removed, reasons));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
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

fn planned(w: &Workflow, action: Action, reasons: Vec<Reason>) -> PlannedWorkflow {
    PlannedWorkflow {
        name: w.name.clone(),
        path: w.path.clone(),
        project: w.project.clone(),
        action,
        reasons,
        version: None,
        image: None,
        code: None,
    }
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
        rows.push([w.name.clone(), w.action.as_str().into(), w.project.clone(), reasons]);
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
            workflow: w.name.clone(),
            action: w.action,
            project: w.project.clone(),
            domain: plan.domain.clone(),
            version: w.version.clone(),
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
    eprintln!(
        "matrix: chunk {chunk} of {} chunk(s) ({} of {total} workflows needing work)",
        chunks.len(),
        entries.len()
    );
    if let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) {
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
}
