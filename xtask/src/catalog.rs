//! Cheap workflow discovery for the plan: the workflows of a commit read from each workflow
//! folder's own tree and `workflow.toml` only (name, project, Dockerfile, shared paths), by
//! the same rules as `workspace.rs`, without walking the folders; or, for a folder whose tree
//! the versions cache knows, from the cache without reading the folder at all. A full [`Workflow`]
//! (dependency matcher included) is made only for the folders a change reaches. Reads the
//! object database only; decides nothing about the change.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository, Tree};

use crate::config::{self, Config, Located, Manifest, DEPLOY_TOML, WORKFLOW_TOML};
use crate::error;
use crate::versions::{Entry, Facts, Learnt, Store};
use crate::workspace::{DependencyMatcher, Workflow};

/// One folder of the workflows root: its name and tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub name: String,
    pub tree: Oid,
}

/// The configuration of a commit (`None` when it has no deploy.toml).
pub fn config(repo: &Repository, root: &Tree<'_>, what: &str) -> Result<Option<(Config, Oid)>> {
    let Some(entry) = root.get_name(DEPLOY_TOML) else {
        return Ok(None);
    };
    let blob = repo.find_blob(entry.id()).with_context(|| format!("reading {DEPLOY_TOML} in {what}"))?;
    let text = std::str::from_utf8(blob.content())
        .map_err(|_| error::user(format!("{DEPLOY_TOML} is not UTF-8"), "save it as UTF-8"))?;
    Ok(Some((Config::parse(Path::new(DEPLOY_TOML), text)?, entry.id())))
}

/// The folders of the workflows root that are workflows (as `Workspace::load` picks them:
/// directories not starting with `.`, not `__pycache__`), with a UTF-8 name.
pub fn folders(repo: &Repository, root: &Tree<'_>, config: &Config) -> Result<Vec<Folder>> {
    let dir = &config.workflows;
    let entry = match root.get_path(Path::new(dir)) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading '{dir}'")),
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(Vec::new());
    }
    let tree = repo.find_tree(entry.id()).with_context(|| format!("reading '{dir}'"))?;
    let mut out = Vec::with_capacity(tree.len());
    for e in tree.iter() {
        let name = e.name_bytes();
        if e.kind() != Some(ObjectType::Tree) || name.starts_with(b".") || name == b"__pycache__" {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            return Err(error::user(
                format!("{dir}/{}: a workflow folder name must be UTF-8", String::from_utf8_lossy(name)),
                "rename the folder",
            ));
        };
        out.push(Folder { name: name.to_string(), tree: e.id() });
    }
    Ok(out)
}

/// The folders among `names` (folder names under the workflows root) that are workflows in
/// `root`, as [`folders`] picks them. Reads the workflows root's tree once.
pub fn folders_named(repo: &Repository, root: &Tree<'_>, config: &Config, names: &[&str]) -> Result<Vec<Folder>> {
    let dir = &config.workflows;
    let tree = match root.get_path(Path::new(dir)) {
        Ok(e) if e.kind() == Some(ObjectType::Tree) => {
            repo.find_tree(e.id()).with_context(|| format!("reading '{dir}'"))?
        }
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading '{dir}'")),
    };
    let mut out = Vec::new();
    for name in names {
        if name.starts_with('.') || *name == "__pycache__" {
            continue;
        }
        if let Some(e) = tree.get_name(name).filter(|e| e.kind() == Some(ObjectType::Tree)) {
            out.push(Folder { name: name.to_string(), tree: e.id() });
        }
    }
    Ok(out)
}

/// A workflow at head as the plan knows it: from the versions cache's entry for its folder, or
/// read from the folder (then with the cache's entry when that holds the same facts).
/// `'s` is the cache's lifetime, `'r` that of the workflows read.
#[derive(Debug, Clone, Copy)]
pub enum Known<'s, 'r> {
    Cached { tree: Oid, entry: Entry<'s> },
    Read { tree: Oid, workflow: &'r Workflow, entry: Option<Entry<'s>> },
}

impl<'s: 'r, 'r> Known<'s, 'r> {
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

    pub fn name(&self) -> &'r str {
        match self {
            Known::Cached { entry, .. } => entry.name(),
            Known::Read { workflow, .. } => &workflow.name,
        }
    }

    pub fn path(&self) -> &'r str {
        match self {
            Known::Cached { entry, .. } => entry.path(),
            Known::Read { workflow, .. } => &workflow.path,
        }
    }

    pub fn dockerfile(&self) -> Option<&'r str> {
        match self {
            Known::Cached { entry, .. } => entry.dockerfile(),
            Known::Read { workflow, .. } => workflow.dockerfile.as_deref(),
        }
    }

    /// The shared paths, sorted.
    pub fn shared(&self) -> impl Iterator<Item = &'r str> {
        let (cached, read) = match self {
            Known::Cached { entry, .. } => (Some(entry.shared()), &[][..]),
            Known::Read { workflow, .. } => (None, workflow.shared.as_slice()),
        };
        cached.into_iter().flatten().chain(read.iter().map(String::as_str))
    }

    /// True when `path` lies in the workflow's folder.
    pub fn contains(&self, path: &[u8]) -> bool {
        crate::workspace::under(path, self.path().as_bytes())
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
        match (self, self.entry()) {
            (_, Some(e)) => [e.name().into(), e.path().into(), e.project().into()],
            (Known::Read { workflow: w, .. }, None) => {
                [w.name.clone().into(), w.path.clone().into(), w.project.clone().into()]
            }
            (Known::Cached { .. }, None) => unreachable!("a cached workflow has its entry"),
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
/// Workflows read go into `read`; what the cache should learn, and which of its entries
/// were used, into `learnt`.
pub fn workflows<'s, 'r>(
    repo: &Repository,
    config: &Config,
    folders: &[Folder],
    full: &HashSet<&str>,
    store: &'s Store,
    learnt: &mut Learnt,
    read: &'r mut Vec<Workflow>,
) -> Result<Vec<Known<'s, 'r>>> {
    let defaults = DependencyMatcher::new(&config.dependencies)?;
    let odb = repo.odb().context("opening the object database")?;
    // Where each folder's workflow is: its cache entry, or its place in `read`.
    let mut slots: Vec<Result<Entry<'s>, (usize, Option<Entry<'s>>)>> = Vec::with_capacity(folders.len());
    for folder in folders {
        let is_full = full.contains(folder.name.as_str());
        let entry = store.get(&config.workflows, &folder.name, folder.tree);
        match entry {
            Some(e) if !is_full => {
                learnt.used(&e);
                slots.push(Ok(e));
            }
            _ => {
                let w = workflow(repo, &odb, config, folder, is_full, &defaults)?;
                let facts = facts_of(&w);
                let entry = entry.filter(|e| e.has_facts(&facts));
                match &entry {
                    Some(e) => learnt.used(e),
                    None => learnt.facts(&w.path, folder.tree, &facts),
                }
                slots.push(Err((read.len(), entry)));
                read.push(w);
            }
        }
    }
    let read: &'r Vec<Workflow> = read;
    let mut out: Vec<Known<'s, 'r>> = folders
        .iter()
        .zip(slots)
        .map(|(f, slot)| match slot {
            Ok(entry) => Known::Cached { tree: f.tree, entry },
            Err((i, entry)) => Known::Read { tree: f.tree, workflow: &read[i], entry },
        })
        .collect();
    // Folders come in git's order, which is usually the names' order already.
    if !out.windows(2).all(|w| w[0].name() <= w[1].name()) {
        out.sort_by(|a, b| a.name().cmp(b.name()));
    }
    for pair in out.windows(2) {
        let [first, second] = pair else { continue };
        if first.name() == second.name() {
            // Read both manifests again: a cached workflow does not know where its name was set.
            let again = |k: &Known<'_, '_>| -> Result<Workflow> {
                let folder = folders.iter().find(|f| format!("{}/{}", config.workflows, f.name) == k.path());
                workflow(repo, &odb, config, folder.expect("every workflow has its folder"), false, &defaults)
            };
            let (a, b) = (again(first)?, again(second)?);
            let (renamed, kept) = if b.name_at.is_some() { (&b, &a) } else { (&a, &b) };
            let what = format!("workflow name '{}' is already used by {}", renamed.name, kept.path);
            let help = "give each workflow its own `name` in workflow.toml";
            return Err(match &renamed.name_at {
                Some(at) => at.error(what, help),
                None => error::user(format!("{}: {what}", renamed.path), help),
            });
        }
    }
    Ok(out)
}

/// What the versions cache keeps of a workflow read from its folder.
pub fn facts_of(w: &Workflow) -> Facts {
    Facts {
        name: w.name.clone(),
        project: w.project.clone(),
        dockerfile: w.dockerfile.clone(),
        shared: w.shared.clone(),
    }
}

fn workflow(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    config: &Config,
    folder: &Folder,
    full: bool,
    defaults: &DependencyMatcher,
) -> Result<Workflow> {
    let dir = format!("{}/{}", config.workflows, folder.name);
    // The folder's raw tree, not a parsed `git2::Tree`: only three names are looked up, and
    // this runs for every workflow.
    let raw = odb.read(folder.tree).with_context(|| format!("reading '{dir}'"))?;
    let [manifest_blob, dockerfile, containerfile] =
        files_named(raw.data(), [WORKFLOW_TOML.as_bytes(), b"Dockerfile", b"Containerfile"]);
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
    let name = match &manifest.name {
        Some(n) => n.value.clone(),
        None => {
            if !folder.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                let at = Located { value: (), file: manifest_path.clone().into(), line: 1, col: 1 };
                return Err(at.error(
                    format!("the folder name '{}' is not a valid workflow name", folder.name),
                    "rename the folder, or set `name` in its workflow.toml",
                ));
            }
            folder.name.clone()
        }
    };
    let project = manifest.project.as_ref().map_or_else(|| config.project.clone(), |p| p.value.clone());
    let dockerfile = match &manifest.dockerfile {
        Some(d) => {
            Some(config::normalise(&format!("{dir}/{}", d.value)).filter(|_| !d.value.starts_with('/')).ok_or_else(
                || {
                    d.error(
                        format!("dockerfile '{}' escapes the repository", d.value),
                        "give a path relative to the workflow folder that stays inside the repository",
                    )
                },
            )?)
        }
        None => [(dockerfile, "Dockerfile"), (containerfile, "Containerfile")]
            .into_iter()
            .find(|(entry, _)| entry.is_some_and(|(_, mode)| mode == 0o100644 || mode == 0o100755))
            .map(|(_, name)| format!("{dir}/{name}")),
    };
    let mut shared = manifest.shared.iter().map(|s| config::repo_path(s, "shared path")).collect::<Result<Vec<_>>>()?;
    shared.sort();
    shared.dedup();
    let matcher = match (full, manifest.dependencies.is_empty()) {
        (false, _) => DependencyMatcher::default(),
        (true, true) => defaults.clone(),
        (true, false) => DependencyMatcher::new(config.dependencies.iter().chain(&manifest.dependencies))?,
    };
    Ok(Workflow {
        name,
        path: dir,
        project,
        packages: Vec::new(),
        dockerfile,
        dependencies: Vec::new(),
        shared,
        matcher,
        name_at: manifest.name.clone().map(Box::new),
    })
}

/// The workflows of `folders`, read without their dependency matchers (a base's).
pub fn read(repo: &Repository, config: &Config, folders: &[Folder]) -> Result<Vec<Workflow>> {
    let defaults = DependencyMatcher::default();
    let odb = repo.odb().context("opening the object database")?;
    folders.iter().map(|f| workflow(repo, &odb, config, f, false, &defaults)).collect()
}

/// The id and mode of the non-directory entries called `names` in a raw tree object
/// (`<octal mode> <name>\0<20-byte id>`, repeated).
fn files_named<const N: usize>(mut raw: &[u8], names: [&[u8]; N]) -> [Option<(Oid, i32)>; N] {
    let mut found = [None; N];
    while let Some(space) = raw.iter().position(|b| *b == b' ') {
        let Some(nul) = raw[space..].iter().position(|b| *b == 0).map(|n| space + n) else { break };
        if raw.len() < nul + 21 {
            break;
        }
        let mode = raw[..space].iter().fold(0i32, |m, d| m * 8 + i32::from(d.wrapping_sub(b'0') & 7));
        let name = &raw[space + 1..nul];
        if mode != 0o040000 {
            if let Some(i) = names.iter().position(|n| *n == name) {
                found[i] = Oid::from_bytes(&raw[nul + 1..nul + 21]).ok().map(|id| (id, mode));
            }
        }
        raw = &raw[nul + 21..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_trees_are_read_by_name() {
        let mut raw = Vec::new();
        for (mode, name, byte) in [("100644", "Dockerfile", 1u8), ("40000", "workflow.toml", 2), ("100755", "x", 3)] {
            raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            raw.extend_from_slice(&[byte; 20]);
        }
        let [d, w, x, missing] = files_named(&raw, [b"Dockerfile", b"workflow.toml", b"x", b"y"]);
        assert_eq!(d, Some((Oid::from_bytes(&[1; 20]).unwrap(), 0o100644)));
        assert_eq!(w, None, "a folder named workflow.toml is not a file");
        assert_eq!(x, Some((Oid::from_bytes(&[3; 20]).unwrap(), 0o100755)));
        assert_eq!(missing, None);
    }
}
