//! The trees a plan reads, each once per run (a plan reads the workflows root of head and
//! base both to diff them and to list their folders), through git2: `Repository::find_tree`
//! and its entries, in git's order, their names copied once so the run can borrow them.
//! Reads the object database only; knows nothing of workflows.
//!
//! This replaced a hand-written parser of raw tree objects that kept the largest trees
//! uncompressed in `.flyte/cache/trees`: `cargo xtask bench plan` measured the two in the
//! same runs (its `git2-trees` alternative, until commit 4079a7d; 2,000 workflows, plan
//! with its versions cache warm against `git diff-tree`) at 1.81× and 1.77× diff-tree with
//! git2 against 1.83× and 1.77× with the parser and its cache, git2's median run 1.01–1.02×
//! the parser's: the parser saved nothing measurable. (Peak memory: about 1 MiB more.)

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{Context, Result};
use git2::{Oid, Repository};

/// A directory's mode.
pub(crate) const TREE_MODE: i32 = 0o040000;

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) mode: i32,
    pub(crate) name: &'a [u8],
    pub(crate) id: Oid,
}

impl Entry<'_> {
    pub(crate) fn is_tree(&self) -> bool {
        self.mode == TREE_MODE
    }
}

/// Git's order of tree entries: by name, a directory's name as if it ended in `/`.
pub(crate) fn git_order(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    let n = a.name.len().min(b.name.len());
    a.name[..n].cmp(&b.name[..n]).then_with(|| {
        let after = |e: &Entry<'_>| match e.name.get(n) {
            Some(byte) => *byte,
            None if e.is_tree() => b'/',
            None => 0,
        };
        after(a).cmp(&after(b))
    })
}

/// A tree's entries, in the order git stores them.
#[derive(Debug, Clone)]
pub(crate) struct Entries<'a> {
    names: &'a [u8],
    listed: std::slice::Iter<'a, Listed>,
}

impl<'a> Entries<'a> {
    /// No entries (a missing tree's).
    pub(crate) fn empty() -> Entries<'static> {
        Entries { names: &[], listed: [].iter() }
    }

    /// The entries left.
    pub(crate) fn remaining(&self) -> usize {
        self.listed.len()
    }

    /// The entry called `name`, if any.
    pub(crate) fn named(mut self, name: &[u8]) -> Option<Entry<'a>> {
        self.find(|e| e.name == name)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        self.listed.next().map(|l| Entry { mode: l.mode, name: &self.names[l.name.clone()], id: l.id })
    }
}

/// An entry as read: where its name is among the tree's names.
#[derive(Debug, Clone)]
struct Listed {
    mode: i32,
    name: std::ops::Range<usize>,
    id: Oid,
}

/// A tree, shared: its entries' names one after another, and its entries.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    data: Rc<(Vec<u8>, Vec<Listed>)>,
}

impl Tree {
    pub(crate) fn entries(&self) -> Entries<'_> {
        Entries { names: &self.data.0, listed: self.data.1.iter() }
    }
}

/// The trees read from a repository, each once.
pub(crate) struct Trees<'r> {
    repo: &'r Repository,
    read: RefCell<HashMap<Oid, Tree>>,
}

impl<'r> Trees<'r> {
    pub(crate) fn new(repo: &'r Repository) -> Trees<'r> {
        Trees { repo, read: RefCell::new(HashMap::new()) }
    }

    /// The tree `id`.
    pub(crate) fn get(&self, id: Oid) -> Result<Tree> {
        if let Some(tree) = self.read.borrow().get(&id) {
            return Ok(tree.clone());
        }
        let tree = self.repo.find_tree(id).with_context(|| format!("reading tree {id}"))?;
        let mut names = Vec::with_capacity(tree.len() * 16);
        let mut listed = Vec::with_capacity(tree.len());
        for e in tree.iter() {
            let start = names.len();
            names.extend_from_slice(e.name_bytes());
            listed.push(Listed { mode: e.filemode(), name: start..names.len(), id: e.id() });
        }
        let tree = Tree { data: Rc::new((names, listed)) };
        self.read.borrow_mut().insert(id, tree.clone());
        Ok(tree)
    }

    /// The tree at `path` (`/`-separated, relative) below the tree `root`: `None` when there
    /// is nothing there, or not a tree.
    pub(crate) fn at_path(&self, root: Oid, path: &str) -> Result<Option<Tree>> {
        let mut tree = self.get(root)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match tree.entries().named(part.as_bytes()) {
                Some(e) if e.is_tree() => tree = self.get(e.id)?,
                _ => return Ok(None),
            }
        }
        Ok(Some(tree))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_sorts_as_if_its_name_ended_in_a_slash() {
        let e = |name: &'static str, mode| Entry { mode, name: name.as_bytes(), id: Oid::zero() };
        assert_eq!(git_order(&e("a", 0o100644), &e("a-b", 0o100644)), Ordering::Less);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a-b", 0o100644)), Ordering::Greater);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a0", 0o100644)), Ordering::Less);
        assert_eq!(git_order(&e("a", 0o100644), &e("a", TREE_MODE)), Ordering::Less);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a", TREE_MODE)), Ordering::Equal);
    }

    #[test]
    fn entries_come_in_git_order_each_tree_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("f", blob, 0o100755).unwrap();
        let sub = sub.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        for (name, id, mode) in [("a-b", blob, 0o100644), ("a", sub, TREE_MODE), ("link", blob, 0o120000)] {
            root.insert(name, id, mode).unwrap();
        }
        let root = root.write().unwrap();
        let trees = Trees::new(&repo);
        let listing: Vec<(Vec<u8>, i32)> =
            trees.get(root).unwrap().entries().map(|e| (e.name.to_vec(), e.mode)).collect();
        let expected = [(&b"a-b"[..], 0o100644), (b"a", TREE_MODE), (b"link", 0o120000)];
        assert_eq!(listing, expected.map(|(n, m)| (n.to_vec(), m)), "git's order: `a/` after `a-b`");
        let at = trees.at_path(root, "a").unwrap().unwrap();
        assert_eq!(at.entries().named(b"f").map(|e| (e.id, e.mode)), Some((blob, 0o100755)));
        assert!(Rc::ptr_eq(&at.data, &trees.get(sub).unwrap().data), "read once");
        assert!(trees.at_path(root, "link").unwrap().is_none() && trees.at_path(root, "a/f/g").unwrap().is_none());
        assert!(trees.get(blob).is_err(), "a blob is not a tree");
    }
}
