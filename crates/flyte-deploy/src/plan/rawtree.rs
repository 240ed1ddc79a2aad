//! Tree objects as git stores them, read in place: `<octal mode> <name>\0<20-byte id>`
//! entries, in git's order. [`Trees`] reads each tree of a run once (a plan reads the
//! workflows root of head and base both to diff them and to list their folders), and keeps
//! the largest trees uncompressed in a cache folder: a monorepo's workflows root, thousands
//! of entries, is what a plan spends most of its reading on (inflating it from the pack),
//! and it is the same tree from one plan to the next. A cached tree is named by its id (so
//! it is exact) and carries a checksum (so a damaged file is a miss, never a wrong tree).
//! Reads the object database; writes only its cache; knows nothing of workflows.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{bail, Context, Result};
use git2::{ObjectType, Odb, OdbObject, Oid};

/// A directory's mode.
pub(crate) const TREE_MODE: i32 = 0o040000;

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub mode: i32,
    pub name: &'a [u8],
    pub id: Oid,
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

/// A tree object's entries, read in place; a malformed entry is an error.
#[derive(Debug, Clone)]
pub(crate) struct Entries<'a> {
    rest: &'a [u8],
    id: Oid,
    /// The entries as libgit2 parsed them, when the tree was read that way ([`Trees::git2`]).
    parsed: Option<(&'a [u8], std::slice::Iter<'a, Parsed>)>,
}

impl<'a> Entries<'a> {
    /// The entries of the raw tree object `raw` (whose id is `id`, for errors).
    pub(crate) fn new(raw: &'a [u8], id: Oid) -> Entries<'a> {
        Entries { rest: raw, id, parsed: None }
    }

    /// The bytes left to read (for sizing what is collected from the entries).
    pub(crate) fn len_hint(&self) -> usize {
        self.parsed.as_ref().map_or(self.rest.len(), |(_, entries)| entries.len() * 30)
    }

    /// The next entry, if any.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry<'a>>> {
        if let Some((names, entries)) = &mut self.parsed {
            return Ok(entries.next().map(|p| Entry { mode: p.mode, name: &names[p.name.clone()], id: p.id }));
        }
        if self.rest.is_empty() {
            return Ok(None);
        }
        let malformed = || format!("tree {} is malformed (the repository is damaged: run `git fsck`)", self.id);
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
    pub(crate) fn find(mut self, name: &[u8]) -> Result<Option<Entry<'a>>> {
        while let Some(e) = self.next_entry()? {
            if e.name == name {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
}

/// A tree object, shared: read from the object database, or mapped from the cache.
#[derive(Clone)]
pub(crate) struct Tree<'o> {
    id: Oid,
    data: Rc<Data<'o>>,
}

enum Data<'o> {
    Odb(OdbObject<'o>),
    /// A cache file: the header, the object, the checksum.
    Cached(memmap2::Mmap),
    /// The entries as libgit2's parser gave them: their names one after another, and each
    /// entry's mode, name and id.
    Git2(Vec<u8>, Vec<Parsed>),
}

/// An entry as libgit2 parsed it: where its name is among the tree's names.
#[derive(Debug, Clone)]
struct Parsed {
    mode: i32,
    name: std::ops::Range<usize>,
    id: Oid,
}

impl Tree<'_> {
    pub(crate) fn entries(&self) -> Entries<'_> {
        let data = match &*self.data {
            Data::Odb(object) => object.data(),
            Data::Cached(map) => &map[CACHE_MAGIC.len()..map.len() - 4],
            Data::Git2(names, entries) => {
                return Entries { rest: &[], id: self.id, parsed: Some((names, entries.iter())) };
            }
        };
        Entries::new(data, self.id)
    }
}

/// Where plan keeps large trees, relative to the repository root.
pub(crate) const CACHE_DIR: &str = ".flyte/cache/trees";
/// Trees at least this large are kept in the cache.
pub(crate) const CACHED_SIZE: usize = 32 << 10;
/// Cached trees kept: those of the last few plans' workflows roots.
const CACHED_TREES: usize = 8;
/// The first bytes of a cache file.
const CACHE_MAGIC: &[u8] = b"flyte-deploy tree v1\n";

/// The trees read from an object database, each once; large ones also through a cache
/// folder when there is one.
pub(crate) struct Trees<'o> {
    odb: &'o Odb<'o>,
    read: RefCell<HashMap<Oid, Tree<'o>>>,
    cache: Option<PathBuf>,
    /// Trees are read through libgit2's parser instead ([`Trees::git2`]).
    git2: Option<&'o git2::Repository>,
}

impl<'o> Trees<'o> {
    pub(crate) fn new(odb: &'o Odb<'o>) -> Trees<'o> {
        Trees { odb, read: RefCell::new(HashMap::new()), cache: None, git2: None }
    }

    /// Trees read the way a plan without this module would read them, for `bench plan`'s
    /// comparison: `Repository::find_tree` and libgit2's entries (their names copied once),
    /// no cache folder.
    pub(crate) fn git2(odb: &'o Odb<'o>, repo: &'o git2::Repository) -> Trees<'o> {
        Trees { git2: Some(repo), ..Trees::new(odb) }
    }

    /// Trees that keep the large ones in the folder `cache`, and look for them there first.
    /// A cache that cannot be written is ignored: it only saves time.
    pub(crate) fn with_cache(odb: &'o Odb<'o>, cache: PathBuf) -> Trees<'o> {
        Trees { cache: Some(cache), ..Trees::new(odb) }
    }

    /// The tree `id`.
    pub(crate) fn get(&self, id: Oid) -> Result<Tree<'o>> {
        self.read(id, false)
    }

    /// The tree `id`, looked for in the cache folder first and put there when it is large.
    fn read(&self, id: Oid, cache: bool) -> Result<Tree<'o>> {
        if let Some(tree) = self.read.borrow().get(&id) {
            return Ok(tree.clone());
        }
        if let Some(repo) = self.git2 {
            let tree = repo.find_tree(id).with_context(|| format!("reading tree {id}"))?;
            let mut names = Vec::with_capacity(tree.len() * 16);
            let mut entries = Vec::with_capacity(tree.len());
            for e in tree.iter() {
                let start = names.len();
                names.extend_from_slice(e.name_bytes());
                entries.push(Parsed { mode: e.filemode(), name: start..names.len(), id: e.id() });
            }
            let tree = Tree { id, data: Rc::new(Data::Git2(names, entries)) };
            self.read.borrow_mut().insert(id, tree.clone());
            return Ok(tree);
        }
        let cache = self.cache.as_deref().filter(|_| cache);
        let tree = match cache.and_then(|dir| cached(dir, id)) {
            Some(map) => Tree { id, data: Rc::new(Data::Cached(map)) },
            None => {
                let object = self.odb.read(id).with_context(|| format!("reading tree {id}"))?;
                if object.kind() != ObjectType::Tree {
                    bail!("object {id} is a {}, not a tree", object.kind());
                }
                if let Some(dir) = cache.filter(|_| object.len() >= CACHED_SIZE) {
                    keep(dir, id, object.data());
                }
                Tree { id, data: Rc::new(Data::Odb(object)) }
            }
        };
        self.read.borrow_mut().insert(id, tree.clone());
        Ok(tree)
    }

    /// The tree at `path` (`/`-separated, relative) below the tree `root`: `None` when there
    /// is nothing there, or not a tree. The tree at `path` goes through the cache folder.
    pub(crate) fn at_path(&self, root: Oid, path: &str) -> Result<Option<Tree<'o>>> {
        let mut tree = self.get(root)?;
        let mut parts = path.split('/').filter(|p| !p.is_empty()).peekable();
        while let Some(part) = parts.next() {
            match tree.entries().find(part.as_bytes())? {
                Some(e) if e.is_tree() => tree = self.read(e.id, parts.peek().is_none())?,
                _ => return Ok(None),
            }
        }
        Ok(Some(tree))
    }
}

/// The cached tree `id`, when its file is there and whole.
fn cached(dir: &Path, id: Oid) -> Option<memmap2::Mmap> {
    let file = std::fs::File::open(dir.join(id.to_string())).ok()?;
    // SAFETY: cache files are only ever replaced by a rename, never written in place.
    let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    let body = map.strip_prefix(CACHE_MAGIC)?;
    let (data, sum) = body.split_at_checked(body.len().checked_sub(4)?)?;
    (crc32fast::hash(data).to_le_bytes() == sum).then_some(map)
}

/// Puts a tree in the cache, and keeps only the [`CACHED_TREES`] newest there. A cache that
/// cannot be written only saves nothing.
fn keep(dir: &Path, id: Oid, data: &[u8]) {
    let sum = crc32fast::hash(data).to_le_bytes();
    if crate::caches::write_whole(&dir.join(id.to_string()), &[CACHE_MAGIC, data, &sum]).is_ok() {
        crate::caches::keep_newest(dir, CACHED_TREES, |p| {
            p.file_name().is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        });
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

    /// The names and ids of a tree's entries.
    fn listing(tree: &Tree<'_>) -> Vec<(Vec<u8>, Oid)> {
        let mut entries = tree.entries();
        std::iter::from_fn(|| entries.next_entry().unwrap()).map(|e| (e.name.to_vec(), e.id)).collect()
    }

    #[test]
    fn large_trees_go_through_the_cache_and_a_damaged_copy_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let mut big = repo.treebuilder(None).unwrap();
        for i in 0..1200 {
            big.insert(format!("workflow-{i:05}"), blob, 0o100644).unwrap();
        }
        let big = big.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("workflows", big, TREE_MODE).unwrap();
        let root = root.write().unwrap();
        let odb = repo.odb().unwrap();
        let cache = dir.path().join("cache");
        let file = cache.join(big.to_string());

        let fresh = listing(&Trees::with_cache(&odb, cache.clone()).at_path(root, "workflows").unwrap().unwrap());
        assert_eq!(fresh.len(), 1200);
        assert!(file.exists(), "a tree of {CACHED_SIZE} bytes or more is kept");
        assert!(!cache.join(root.to_string()).exists(), "a small tree is not");
        let trees = Trees::with_cache(&odb, cache.clone());
        let tree = trees.at_path(root, "workflows").unwrap().unwrap();
        assert!(matches!(*tree.data, Data::Cached(_)), "the second read maps the cached copy");
        assert_eq!(listing(&tree), fresh);

        // A damaged copy (one byte changed, or cut short) is ignored: the tree is read again.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[CACHE_MAGIC.len() + 100] ^= 1;
        std::fs::write(&file, &bytes).unwrap();
        let tree = Trees::with_cache(&odb, cache.clone()).at_path(root, "workflows").unwrap().unwrap();
        assert!(matches!(*tree.data, Data::Odb(_)));
        assert_eq!(listing(&tree), fresh);
        let git2 = Trees::git2(&odb, &repo);
        assert_eq!(listing(&git2.at_path(root, "workflows").unwrap().unwrap()), fresh, "libgit2 reads the same");
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
        let tree = Trees::with_cache(&odb, cache).at_path(root, "workflows").unwrap().unwrap();
        assert!(matches!(*tree.data, Data::Odb(_)));
        assert_eq!(listing(&tree), fresh);
    }
}
