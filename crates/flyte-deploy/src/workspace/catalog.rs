//! Cheap workflow discovery for the plan: the workflows of a commit read from each workflow
//! folder's own tree and `workflow.toml` only (name, project, Dockerfile, shared paths, Python
//! packages), by the same rules as `workspace/mod.rs` ([`workspace::resolve`]), without walking the folders (packages not
//! listed in workflow.toml are looked for one level down); or, for a folder whose tree the
//! versions cache knows, from the cache without reading the folder at all. A full [`Workflow`]
//! (dependency matcher included) is made only for the folders a change reaches. Refuses two
//! workflows of one name, or of one project sharing a package ([`workspace::check_packages`]).
//! Reads the object database only; decides nothing about the change.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use git2::{Oid, Repository, Tree};

use crate::config::{Config, Manifest, DEPLOY_TOML, WORKFLOW_TOML};
use crate::error;
use crate::plan::trees::{self, Entries, Trees};
use crate::plan::versions::{Entry, Facts, Learnt, Store};
use crate::workspace::{self, DependencyMatcher, Workflow};

/// One folder of the workflows root: its name and tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folder<'t> {
    pub name: &'t str,
    pub tree: Oid,
}

/// The configuration of a commit (`None` when it has no deploy.toml).
pub(crate) fn config(repo: &Repository, root: &Tree<'_>, what: &str) -> Result<Option<(Config, Oid)>> {
    let Some(entry) = root.get_name(DEPLOY_TOML) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id()).with_context(|| format!("reading {DEPLOY_TOML} in {what}"))?;
    let text = std::str::from_utf8(blob.content())
        .map_err(|_| error::user(format!("{DEPLOY_TOML} is not UTF-8"), "save it as UTF-8"))?;
    Ok(Some((Config::parse(Path::new(DEPLOY_TOML), text)?, entry.id())))
}

/// The workflows root (`workflows` of deploy.toml) in the tree `root`, when it is there.
pub(crate) fn root<'o>(trees: &Trees<'o>, root: Oid, config: &Config) -> Result<Option<trees::Tree>> {
    let dir = &config.workflows;
    trees.at_path(root, dir).with_context(|| format!("reading '{dir}'"))
}

/// The folders of the workflows root `root` that are workflows (as `Workspace::load` picks
/// them: directories not starting with `.`, not `__pycache__`), with a UTF-8 name.
pub(crate) fn folders<'t>(root: Option<&'t trees::Tree>, config: &Config) -> Result<Vec<Folder<'t>>> {
    let Some(root) = root else { return Ok(Vec::new()) };
    let entries = root.entries();
    let mut out = Vec::with_capacity(entries.remaining());
    for e in entries {
        if !is_folder(&e) {
            continue;
        }
        let Ok(name) = std::str::from_utf8(e.name) else {
            return Err(error::user(
                format!(
                    "{}/{}: a workflow folder name must be UTF-8",
                    config.workflows,
                    String::from_utf8_lossy(e.name)
                ),
                "rename the folder",
            ));
        };
        out.push(Folder { name, tree: e.id });
    }
    Ok(out)
}

/// The folders among `names` (folder names under the workflows root, sorted) that are
/// workflows in the workflows root `root`, as [`folders`] picks them.
pub(crate) fn folders_named<'t>(root: Option<&'t trees::Tree>, names: &[&str]) -> Result<Vec<Folder<'t>>> {
    let Some(root) = root else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for e in root.entries() {
        let name = std::str::from_utf8(e.name).ok().filter(|n| names.binary_search(n).is_ok());
        if let Some(name) = name.filter(|_| is_folder(&e)) {
            out.push(Folder { name, tree: e.id });
        }
    }
    Ok(out)
}

/// True when an entry of the workflows root is a workflow folder.
fn is_folder(e: &trees::Entry<'_>) -> bool {
    e.is_tree() && !e.name.starts_with(b".") && e.name != b"__pycache__"
}

/// A workflow at head as the plan knows it: from the versions cache's entry for its folder, or
/// read from the folder (then with the cache's entry when that holds the same facts).
/// `'s` is the cache's lifetime.
#[derive(Debug)]
pub enum Known<'s> {
    Cached { tree: Oid, entry: Entry<'s> },
    Read { tree: Oid, workflow: Box<Workflow>, entry: Option<Entry<'s>> },
}

impl<'s> Known<'s> {
    /// The tree id of the workflow's folder.
    pub fn tree(&self) -> Oid {
        match self {
            Known::Cached { tree, .. } | Known::Read { tree, .. } => *tree,
        }
    }

    /// The versions cache's entry for the folder, when it holds the folder's facts.
    pub fn entry(&self) -> Option<&Entry<'s>> {
        match self {
            Known::Cached { entry, .. } => Some(entry),
            Known::Read { entry, .. } => entry.as_ref(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Known::Cached { entry, .. } => entry.name(),
            Known::Read { workflow, .. } => &workflow.name,
        }
    }

    pub fn path(&self) -> &str {
        match self {
            Known::Cached { entry, .. } => entry.path(),
            Known::Read { workflow, .. } => &workflow.path,
        }
    }

    pub fn project(&self) -> &str {
        match self {
            Known::Cached { entry, .. } => entry.project(),
            Known::Read { workflow, .. } => &workflow.project,
        }
    }

    /// The Python packages (`--pkgs`).
    pub fn packages(&self) -> impl Iterator<Item = &str> {
        let (cached, read) = match self {
            Known::Cached { entry, .. } => (Some(entry.packages()), &[][..]),
            Known::Read { workflow, .. } => (None, workflow.packages.as_slice()),
        };
        cached.into_iter().flatten().chain(read.iter().map(String::as_str))
    }

    pub fn dockerfile(&self) -> Option<&str> {
        match self {
            Known::Cached { entry, .. } => entry.dockerfile(),
            Known::Read { workflow, .. } => workflow.dockerfile.as_deref(),
        }
    }

    /// The shared paths, sorted.
    pub fn shared(&self) -> impl Iterator<Item = &str> {
        let (cached, read) = match self {
            Known::Cached { entry, .. } => (Some(entry.shared()), &[][..]),
            Known::Read { workflow, .. } => (None, workflow.shared.as_slice()),
        };
        cached.into_iter().flatten().chain(read.iter().map(String::as_str))
    }

    /// True when `path` lies in the workflow's folder.
    pub fn contains(&self, path: &[u8]) -> bool {
        workspace::under(path, self.path().as_bytes())
    }

    /// True when `path` is one of the workflow's dependency files. Only a workflow read in
    /// full knows its dependency patterns; for any other only its Dockerfile is one.
    pub fn is_dependency(&self, path: &[u8]) -> bool {
        match self {
            Known::Read { workflow, .. } => workflow.is_dependency(path),
            Known::Cached { .. } => self.dockerfile().map(str::as_bytes) == Some(path),
        }
    }

    /// The name, path and project, borrowed from the cache where it holds them.
    pub fn texts(&self) -> [Cow<'s, str>; 3] {
        match self {
            Known::Cached { entry: e, .. } | Known::Read { entry: Some(e), .. } => {
                [e.name().into(), e.path().into(), e.project().into()]
            }
            Known::Read { workflow: w, entry: None, .. } => {
                [w.name.clone().into(), w.path.clone().into(), w.project.clone().into()]
            }
        }
    }

    /// The facts the versions cache keeps, owned.
    pub fn facts(&self) -> Facts {
        match self {
            Known::Read { workflow, .. } => facts_of(workflow),
            Known::Cached { entry, .. } => entry.facts(),
        }
    }
}

/// The workflows of `folders`, sorted by name. Those in `full` are read and get their
/// dependency matcher; the others come from `store` when it knows their folder's tree, else
/// are read without their matcher (classification asks it only about paths in the folder).
/// What the cache should learn, and which of its entries were used, go into `learnt`. Two
/// workflows of one name, or of one project sharing a Python package, are a user error.
pub(crate) fn workflows<'s>(
    repo: &Repository,
    trees: &Trees<'_>,
    config: &Config,
    folders: &[Folder<'_>],
    full: &HashSet<&str>,
    store: &'s Store,
    learnt: &mut Learnt,
) -> Result<Vec<Known<'s>>> {
    // The default dependency patterns, built when a workflow is read in full.
    let mut defaults = None;
    let mut out: Vec<Known<'s>> = Vec::with_capacity(folders.len());
    for folder in folders {
        let is_full = full.contains(folder.name);
        let entry = store.get(&config.workflows, folder.name, folder.tree);
        match entry {
            Some(entry) if !is_full => {
                learnt.used(&entry);
                out.push(Known::Cached { tree: folder.tree, entry });
            }
            _ => {
                let defaults = match (&defaults, is_full) {
                    (Some(d), _) => d,
                    (None, false) => &DependencyMatcher::default(),
                    (None, true) => defaults.insert(DependencyMatcher::new(&config.dependencies)?),
                };
                let workflow = workflow(repo, trees, config, folder, is_full, defaults)?;
                let facts = facts_of(&workflow);
                let entry = entry.filter(|e| e.has_facts(&facts));
                match &entry {
                    Some(e) => learnt.used(e),
                    None => learnt.facts(&workflow.path, folder.tree, &facts),
                }
                out.push(Known::Read { tree: folder.tree, workflow: Box::new(workflow), entry });
            }
        }
    }
    // Folders come in git's order, which is usually the names' order already.
    if !out.windows(2).all(|w| w[0].name() <= w[1].name()) {
        out.sort_by(|a, b| a.name().cmp(b.name()));
    }
    for pair in out.windows(2) {
        let [first, second] = pair else { continue };
        if first.name() == second.name() {
            // Read both manifests again: a cached workflow does not know where its name was set.
            let again = |k: &Known<'_>| -> Result<Workflow> {
                let folder = folders.iter().find(|f| format!("{}/{}", config.workflows, f.name) == k.path());
                let folder = folder.expect("every workflow has its folder");
                workflow(repo, trees, config, folder, false, &DependencyMatcher::default())
            };
            return Err(workspace::name_clash(&again(first)?, &again(second)?));
        }
    }
    workspace::check_packages(out.iter().map(|k| (k.path(), k.project(), k.packages())))?;
    Ok(out)
}

/// What the versions cache keeps of a workflow read from its folder.
pub(crate) fn facts_of(w: &Workflow) -> Facts {
    Facts {
        name: w.name.clone(),
        project: w.project.clone(),
        dockerfile: w.dockerfile.clone(),
        shared: w.shared.clone(),
        packages: w.packages.clone(),
    }
}

fn workflow(
    repo: &Repository,
    trees: &Trees<'_>,
    config: &Config,
    folder: &Folder<'_>,
    full: bool,
    defaults: &DependencyMatcher,
) -> Result<Workflow> {
    let dir = format!("{}/{}", config.workflows, folder.name);
    let tree = trees.get(folder.tree).with_context(|| format!("reading '{dir}'"))?;
    let [manifest_blob, dockerfile, containerfile] =
        files_named(tree.entries(), [WORKFLOW_TOML.as_bytes(), b"Dockerfile", b"Containerfile"]);
    let manifest_path = format!("{dir}/{WORKFLOW_TOML}");
    let manifest = match manifest_blob {
        Some((id, _)) => {
            let blob = repo.find_blob(id).with_context(|| format!("reading {manifest_path}"))?;
            let text = std::str::from_utf8(blob.content())
                .map_err(|_| error::user(format!("{manifest_path} is not UTF-8"), "save it as UTF-8"))?;
            Manifest::parse(Path::new(&manifest_path), text)?
        }
        None => Manifest::default(),
    };
    let is_file = |entry: Option<(Oid, i32)>| entry.is_some_and(|(_, mode)| mode == 0o100644 || mode == 0o100755);
    let files = workspace::FolderFiles { dockerfile: is_file(dockerfile), containerfile: is_file(containerfile) };
    let found = || packages_in(trees, &tree).with_context(|| format!("reading '{dir}'"));
    let mut wf = workspace::resolve(config, &manifest, &dir, folder.name, files, found)?;
    wf.matcher = match (full, manifest.dependencies.is_empty()) {
        (false, _) => DependencyMatcher::default(),
        (true, true) => defaults.clone(),
        (true, false) => DependencyMatcher::new(config.dependencies.iter().chain(&manifest.dependencies))?,
    };
    Ok(wf)
}

/// The workflows of `folders`, read without their dependency matchers (a base's).
pub(crate) fn read(
    repo: &Repository,
    trees: &Trees<'_>,
    config: &Config,
    folders: &[Folder<'_>],
) -> Result<Vec<Workflow>> {
    let defaults = DependencyMatcher::default();
    folders.iter().map(|f| workflow(repo, trees, config, f, false, &defaults)).collect()
}

/// The Python packages of a workflow folder whose workflow.toml lists none, as
/// `workspace::load_workflow` finds them: its folders (UTF-8 named) holding an `__init__.py`.
fn packages_in(trees: &Trees<'_>, folder: &trees::Tree) -> Result<Vec<String>> {
    let mut found = Vec::new();
    for e in folder.entries() {
        let Some(name) = std::str::from_utf8(e.name).ok().filter(|_| e.is_tree()) else { continue };
        if trees.get(e.id)?.entries().named(b"__init__.py").is_some() {
            found.push(name.to_string());
        }
    }
    Ok(found)
}

/// The id and mode of the non-directory entries called `names` among `entries`.
fn files_named<const N: usize>(entries: Entries<'_>, names: [&[u8]; N]) -> [Option<(Oid, i32)>; N] {
    let mut found = [None; N];
    for e in entries {
        if let Some(i) = names.iter().position(|n| *n == e.name).filter(|_| !e.is_tree()) {
            found[i] = Some((e.id, e.mode));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_by_name_and_folders_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let (one, three) = (repo.blob(b"1").unwrap(), repo.blob(b"3").unwrap());
        let folder = repo.treebuilder(None).unwrap().write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("Dockerfile", one, 0o100644).unwrap();
        root.insert("workflow.toml", folder, 0o040000).unwrap();
        root.insert("x", three, 0o100755).unwrap();
        let root = root.write().unwrap();
        let trees = Trees::new(&repo);
        let tree = trees.get(root).unwrap();
        let [d, w, x, missing] = files_named(tree.entries(), [b"Dockerfile", b"workflow.toml", b"x", b"y"]);
        assert_eq!(d, Some((one, 0o100644)));
        assert_eq!(w, None, "a folder named workflow.toml is not a file");
        assert_eq!(x, Some((three, 0o100755)));
        assert_eq!(missing, None);
    }
}
