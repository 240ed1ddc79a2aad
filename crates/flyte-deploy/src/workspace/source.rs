//! Read-only views of the repository's files: a commit's git tree (what is deployed) or the
//! working directory (what a developer sees). Owns how paths and entries are read; decides
//! nothing about workflows.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{ObjectType, Repository, Tree};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool },
    Symlink,
    Dir,
    Submodule,
}

/// A directory entry: its name as bytes (git allows any bytes but `/` and NUL) and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: Vec<u8>,
    pub kind: EntryKind,
}

impl Entry {
    /// The name, if it is UTF-8.
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }
}

/// Files of one state of the repository, addressed by repository-relative `/` paths
/// (`""` is the root).
pub trait Source {
    /// What `path` is, or `None` when it does not exist.
    fn kind(&self, path: &str) -> Result<Option<EntryKind>>;
    /// The bytes of a file (the target of a symlink), or `None` when it is not a file.
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The entries of a directory, sorted by name, or `None` when it is not a directory.
    fn entries(&self, dir: &str) -> Result<Option<Vec<Entry>>>;
    /// Where the source is, for messages (`commit 1a2b3c4` or a folder).
    fn describe(&self) -> String;
}

/// The tree of a commit.
pub struct GitTree<'r> {
    repo: &'r Repository,
    tree: Tree<'r>,
    what: String,
}

impl<'r> GitTree<'r> {
    pub fn new(repo: &'r Repository, tree: Tree<'r>, what: impl Into<String>) -> Self {
        GitTree { repo, tree, what: what.into() }
    }

    /// The tree of the commit a revision names.
    pub fn at_commit(repo: &'r Repository, commit: &git2::Commit<'r>) -> Result<Self> {
        let tree = commit.tree().with_context(|| format!("reading the tree of commit {}", commit.id()))?;
        Ok(GitTree::new(repo, tree, format!("commit {:.10}", commit.id())))
    }

    pub fn tree(&self) -> &Tree<'r> {
        &self.tree
    }

    pub fn repo(&self) -> &'r Repository {
        self.repo
    }

    fn entry(&self, path: &str) -> Result<Option<git2::TreeEntry<'static>>> {
        match self.tree.get_path(Path::new(path)) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading '{path}' in {}", self.what)),
        }
    }
}

/// The kind of a tree entry from its file mode.
pub fn kind_of_mode(mode: i32) -> EntryKind {
    match mode {
        0o040000 => EntryKind::Dir,
        0o120000 => EntryKind::Symlink,
        0o160000 => EntryKind::Submodule,
        0o100755 => EntryKind::File { executable: true },
        _ => EntryKind::File { executable: false },
    }
}

impl Source for GitTree<'_> {
    fn kind(&self, path: &str) -> Result<Option<EntryKind>> {
        if path.is_empty() {
            return Ok(Some(EntryKind::Dir));
        }
        Ok(self.entry(path)?.map(|e| kind_of_mode(e.filemode())))
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.entry(path)? else {
            return Ok(None);
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self.repo.find_blob(entry.id()).with_context(|| format!("reading '{path}' in {}", self.what))?;
        Ok(Some(blob.content().to_vec()))
    }

    fn entries(&self, dir: &str) -> Result<Option<Vec<Entry>>> {
        let tree = if dir.is_empty() {
            self.tree.clone()
        } else {
            let Some(entry) = self.entry(dir)? else {
                return Ok(None);
            };
            if entry.kind() != Some(ObjectType::Tree) {
                return Ok(None);
            }
            self.repo.find_tree(entry.id()).with_context(|| format!("reading '{dir}' in {}", self.what))?
        };
        let mut out: Vec<Entry> =
            tree.iter().map(|e| Entry { name: e.name_bytes().to_vec(), kind: kind_of_mode(e.filemode()) }).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// The working directory, as it is on disk (untracked files included; `.git` excluded).
pub struct WorkDir {
    root: PathBuf,
}

impl WorkDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        WorkDir { root: root.into() }
    }

    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }
}

fn kind_of_metadata(meta: &std::fs::Metadata) -> EntryKind {
    use std::os::unix::fs::PermissionsExt;
    if meta.file_type().is_symlink() {
        EntryKind::Symlink
    } else if meta.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::File { executable: meta.permissions().mode() & 0o111 != 0 }
    }
}

impl Source for WorkDir {
    fn kind(&self, path: &str) -> Result<Option<EntryKind>> {
        match std::fs::symlink_metadata(self.full(path)) {
            Ok(m) => Ok(Some(kind_of_metadata(&m))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.full(path).display())),
        }
    }

    fn read(&self, path: &str) -> Result<Option<Vec<u8>>> {
        use std::os::unix::ffi::OsStrExt;
        let full = self.full(path);
        match self.kind(path)? {
            Some(EntryKind::File { .. }) => {
                Ok(Some(std::fs::read(&full).with_context(|| format!("reading {}", full.display()))?))
            }
            Some(EntryKind::Symlink) => {
                let target = std::fs::read_link(&full).with_context(|| format!("reading link {}", full.display()))?;
                Ok(Some(target.as_os_str().as_bytes().to_vec()))
            }
            _ => Ok(None),
        }
    }

    fn entries(&self, dir: &str) -> Result<Option<Vec<Entry>>> {
        use std::os::unix::ffi::OsStrExt;
        if self.kind(dir)? != Some(EntryKind::Dir) {
            return Ok(None);
        }
        let full = self.full(dir);
        let mut out = Vec::new();
        for item in std::fs::read_dir(&full).with_context(|| format!("listing {}", full.display()))? {
            let item = item.with_context(|| format!("listing {}", full.display()))?;
            let name = item.file_name().as_bytes().to_vec();
            if dir.is_empty() && name == b".git" {
                continue;
            }
            let meta =
                std::fs::symlink_metadata(item.path()).with_context(|| format!("reading {}", item.path().display()))?;
            out.push(Entry { name, kind: kind_of_metadata(&meta) });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(out))
    }

    fn describe(&self) -> String {
        format!("the working tree at {}", self.root.display())
    }
}

/// Every file (non-directory entry) under `dir`, recursively, as paths relative to `dir`
/// in bytes, sorted.
pub fn walk(source: &dyn Source, dir: &str) -> Result<Vec<(Vec<u8>, EntryKind)>> {
    fn go(source: &dyn Source, dir: &str, prefix: &[u8], out: &mut Vec<(Vec<u8>, EntryKind)>) -> Result<()> {
        for entry in source.entries(dir)?.unwrap_or_default() {
            let mut rel = prefix.to_vec();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&entry.name);
            if entry.kind == EntryKind::Dir {
                // Only UTF-8 directories can be addressed by the `&str` API; others are
                // walked through their lossless bytes below.
                match entry.name_str() {
                    Some(name) => {
                        let sub = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                        go(source, &sub, &rel, out)?;
                    }
                    None => out.push((rel, entry.kind)),
                }
            } else {
                out.push((rel, entry.kind));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    go(source, dir, b"", &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
