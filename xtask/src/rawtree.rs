//! Tree objects as git stores them, read in place: `<octal mode> <name>\0<20-byte id>`
//! entries, in git's order. [`Trees`] reads each tree of a run once (a plan reads the
//! workflows root of head and base both to diff them and to list their folders). Reads the
//! object database only; knows nothing of workflows.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use git2::{ObjectType, Odb, OdbObject, Oid};

/// A directory's mode.
pub const TREE_MODE: i32 = 0o040000;

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub mode: i32,
    pub name: &'a [u8],
    pub id: Oid,
}

impl Entry<'_> {
    pub fn is_tree(&self) -> bool {
        self.mode == TREE_MODE
    }
}

/// Git's order of tree entries: by name, a directory's name as if it ended in `/`.
pub fn git_order(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
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

/// A tree object's entries, read in place; a malformed entry is an error.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    rest: &'a [u8],
    id: Oid,
}

impl<'a> Entries<'a> {
    /// The entries of the raw tree object `raw` (whose id is `id`, for errors).
    pub fn new(raw: &'a [u8], id: Oid) -> Entries<'a> {
        Entries { rest: raw, id }
    }

    /// The bytes left to read (for sizing what is collected from the entries).
    pub fn len_hint(&self) -> usize {
        self.rest.len()
    }

    /// The next entry, if any.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'a>>> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let malformed = || format!("tree {} is malformed", self.id);
        let space = memchr::memchr(b' ', self.rest).with_context(malformed)?;
        let nul = memchr::memchr(0, &self.rest[space..]).map(|n| space + n).with_context(malformed)?;
        let (Some(id), true) = (self.rest.get(nul + 1..nul + 21), space > 0) else { bail!(malformed()) };
        let mut mode = 0i32;
        for digit in &self.rest[..space] {
            if !(b'0'..=b'7').contains(digit) || mode > 0o777777 {
                bail!(malformed());
            }
            mode = mode * 8 + i32::from(digit - b'0');
        }
        let entry = Entry { mode, name: &self.rest[space + 1..nul], id: Oid::from_bytes(id)? };
        self.rest = &self.rest[nul + 21..];
        Ok(Some(entry))
    }

    /// The entry called `name`, if any.
    pub fn find(mut self, name: &[u8]) -> Result<Option<Entry<'a>>> {
        while let Some(e) = self.next_entry()? {
            if e.name == name {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
}

/// A tree object, shared.
#[derive(Clone)]
pub struct Tree<'o> {
    object: Rc<OdbObject<'o>>,
}

impl Tree<'_> {
    pub fn id(&self) -> Oid {
        self.object.id()
    }

    pub fn entries(&self) -> Entries<'_> {
        Entries::new(self.object.data(), self.object.id())
    }
}

/// The trees read from an object database, each once.
pub struct Trees<'o> {
    odb: &'o Odb<'o>,
    read: RefCell<HashMap<Oid, Tree<'o>>>,
}

impl<'o> Trees<'o> {
    pub fn new(odb: &'o Odb<'o>) -> Trees<'o> {
        Trees { odb, read: RefCell::new(HashMap::new()) }
    }

    /// The tree `id`.
    pub fn get(&self, id: Oid) -> Result<Tree<'o>> {
        if let Some(tree) = self.read.borrow().get(&id) {
            return Ok(tree.clone());
        }
        let object = self.odb.read(id).with_context(|| format!("reading tree {id}"))?;
        if object.kind() != ObjectType::Tree {
            bail!("object {id} is a {}, not a tree", object.kind());
        }
        let tree = Tree { object: Rc::new(object) };
        self.read.borrow_mut().insert(id, tree.clone());
        Ok(tree)
    }

    /// The tree at `path` (`/`-separated, relative) below the tree `root`: `None` when there
    /// is nothing there, or not a tree.
    pub fn at_path(&self, root: Oid, path: &str) -> Result<Option<Tree<'o>>> {
        let mut tree = self.get(root)?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            match tree.entries().find(part.as_bytes())? {
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

    fn raw(entries: &[(&str, &str, u8)]) -> Vec<u8> {
        let mut raw = Vec::new();
        for (mode, name, byte) in entries {
            raw.extend_from_slice(format!("{mode} {name}\0").as_bytes());
            raw.extend_from_slice(&[*byte; 20]);
        }
        raw
    }

    #[test]
    fn entries_are_read_in_place_and_malformed_ones_are_errors() {
        let id = Oid::zero();
        let data = raw(&[("100644", "Dockerfile", 1), ("40000", "src", 2), ("120000", "link", 3)]);
        let mut entries = Entries::new(&data, id);
        let first = entries.next_entry().unwrap().unwrap();
        assert_eq!(
            (first.mode, first.name, first.id),
            (0o100644, &b"Dockerfile"[..], Oid::from_bytes(&[1; 20]).unwrap())
        );
        assert!(entries.next_entry().unwrap().unwrap().is_tree());
        assert_eq!(entries.next_entry().unwrap().unwrap().mode, 0o120000);
        assert_eq!(entries.next_entry().unwrap(), None);
        assert_eq!(Entries::new(&data, id).find(b"src").unwrap().unwrap().id, Oid::from_bytes(&[2; 20]).unwrap());
        assert_eq!(Entries::new(&data, id).find(b"nothing").unwrap(), None);
        for bad in
            [&data[..data.len() - 1], b"100644 x", b"10x644 a\0aaaaaaaaaaaaaaaaaaaa", b" a\0aaaaaaaaaaaaaaaaaaaa"]
        {
            let mut entries = Entries::new(bad, id);
            let all = std::iter::from_fn(|| entries.next_entry().transpose()).collect::<Result<Vec<_>>>();
            assert!(all.is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_directory_sorts_as_if_its_name_ended_in_a_slash() {
        let e = |name: &'static str, mode| Entry { mode, name: name.as_bytes(), id: Oid::zero() };
        assert_eq!(git_order(&e("a", 0o100644), &e("a-b", 0o100644)), Ordering::Less);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a-b", 0o100644)), Ordering::Greater);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a0", 0o100644)), Ordering::Less);
        assert_eq!(git_order(&e("a", 0o100644), &e("a", TREE_MODE)), Ordering::Less);
        assert_eq!(git_order(&e("a", TREE_MODE), &e("a", TREE_MODE)), Ordering::Equal);
    }
}
