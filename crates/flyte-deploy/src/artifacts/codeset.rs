//! The code set of a workflow: which files its fast-registration archive holds and where.
//! Decides membership (folder minus dependency files, `.flyteignore`, shared paths under
//! their last component, symlinks that stay inside) from git tree entries (path, mode, blob
//! id) without reading file contents. Writes files only in [`CodeSet::materialise`].
//!
//! The set is built from:
//! - every file of the workflow folder, at its path relative to the folder, except the
//!   workflow's dependency files ([`Workflow::is_dependency`]), the files `.flyteignore`
//!   excludes, and `.flyteignore` itself;
//! - every declared shared path, placed under its last component at the set's root
//!   (`libs/flyte_common/x.py` → `flyte_common/x.py`; a shared file `libs/util.py` →
//!   `util.py`), so `import flyte_common` works both when pyflyte runs in the materialised
//!   set and at run time from the archive. `.flyteignore` does not apply to shared paths.
//!
//! `.flyteignore` (at the workflow root; gitignore syntax, matched by the `ignore` crate): one
//! pattern a line; blank lines and lines starting with `#` are skipped (`\#` and `\!` start
//! a pattern with those characters; trailing spaces count only escaped); `!` re-includes; the
//! last matching line wins.
//! A pattern containing a `/` (other than a trailing one) matches the path relative to the
//! workflow folder (a leading `/` only anchors); without one it matches a file or folder
//! name at any depth. A trailing `/` matches folders only. `*` and `?` do not cross `/`,
//! `**` does. As in git, a file inside an ignored folder cannot be re-included.
//!
//! Symlinks are kept as links when their target, resolved lexically from the link's place
//! in the set, is the set's root, one of its files or one of its folders; any other link
//! (absolute, escaping, pointing at an ignored or dependency file) is refused, naming it.
//! Submodules are refused too: their content is not in this repository.

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository, Tree};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};

use crate::error;
use crate::workspace::{strip_dir, Workflow};

/// The name of the ignore file at a workflow's root.
pub const FLYTEIGNORE: &str = ".flyteignore";

/// What a code-set entry is; the archive stores only these modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// A regular file, stored as 0644.
    File,
    /// An executable file, stored as 0755.
    Executable,
    /// A symbolic link whose target stays inside the set.
    Symlink,
}

impl Mode {
    /// The git file mode, as hashed into the code fingerprint.
    pub fn git_mode(self) -> u32 {
        match self {
            Mode::File => 0o100644,
            Mode::Executable => 0o100755,
            Mode::Symlink => 0o120000,
        }
    }

    /// Permission bits in the archive and in a materialised set.
    pub fn permissions(self) -> u32 {
        match self {
            Mode::File => 0o644,
            Mode::Executable | Mode::Symlink => 0o755,
        }
    }
}

/// One file of a code set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeEntry {
    /// Where it is in the set (and the archive): `/`-separated, relative, bytes.
    pub path: Vec<u8>,
    /// Where it comes from, relative to the repository root.
    pub source: Vec<u8>,
    pub mode: Mode,
    /// The git blob id of its content (for a symlink: of its target).
    pub oid: Oid,
}

impl CodeEntry {
    /// The set path for messages.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Where a set's contents are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Blobs of the repository's object database (a commit's tree).
    Commit,
    /// Tracked files as they are in the working tree at this root (`--dirty`).
    WorkTree(PathBuf),
}

/// The files of a workflow's code archive, sorted by set path.
#[derive(Debug, Clone)]
pub struct CodeSet {
    pub entries: Vec<CodeEntry>,
    pub origin: Origin,
}

/// A tracked file as a snapshot lists it: repository path, git mode, blob id.
#[derive(Debug, Clone)]
struct Tracked {
    path: Vec<u8>,
    mode: i32,
    oid: Oid,
}

/// Sets libgit2's process-wide object reading up for many tree lookups, once:
/// - trees of any size stay in its object cache (its default caches only trees under 4 KiB,
///   so a `workflows/` tree of 2,000 entries was re-read and re-parsed for every lookup:
///   fingerprinting 2,000 workflows took 2 s instead of 0.3 s, workspace loading 10 s
///   instead of 0.5 s);
/// - objects are not re-hashed with SHA-1 on every read (git itself does not; `git fsck`
///   verifies a repository).
///
/// Called by [`CodeSet::at`]; callers that read many trees before should call it first.
pub fn tune_object_reads() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets one global size limit in libgit2 before the first code set is read;
        // concurrent readers see either limit, both valid.
        let _ = unsafe { git2::opts::set_cache_object_limit(ObjectType::Tree, 256 << 20) };
        git2::opts::strict_hash_verification(false);
    });
}

impl CodeSet {
    /// The code set of `wf` in a commit's tree. Reads tree entries, `.flyteignore` and
    /// symlink targets; no other file contents.
    pub fn at(repo: &Repository, tree: &Tree<'_>, wf: &Workflow) -> Result<CodeSet> {
        tune_object_reads();
        let folder = tracked_under_tree(repo, tree, &wf.path)?;
        let mut shared = Vec::new();
        for s in &wf.shared {
            shared.push((s.clone(), tracked_under_tree(repo, tree, s)?));
        }
        let read = |t: &Tracked| -> Result<Vec<u8>> {
            let blob = repo
                .find_blob(t.oid)
                .with_context(|| format!("reading {} from the repository", String::from_utf8_lossy(&t.path)))?;
            Ok(blob.content().to_vec())
        };
        let entries = assemble(wf, folder, shared, &read)?;
        Ok(CodeSet { entries, origin: Origin::Commit })
    }

    /// The code set of `wf` from the working tree's tracked files (those in the index), as
    /// they are on disk now: modified content counts, deleted files are left out, untracked
    /// files never enter. `root` is the working tree.
    pub fn work_tree(repo: &Repository, root: &Path, wf: &Workflow) -> Result<CodeSet> {
        let index = repo.index().context("reading the git index")?;
        let mut tracked = Vec::new();
        let mut real = std::collections::HashMap::new();
        for e in index.iter() {
            let stage = (e.flags >> 12) & 0x3;
            if stage != 0 {
                return Err(error::user(
                    format!("{} has merge conflicts", String::from_utf8_lossy(&e.path)),
                    "resolve the conflict and `git add` the file",
                ));
            }
            // A tracked file under a folder that is now a link (to anywhere, `/etc` say) is
            // not in the working tree any more: its path would read through the link.
            if !folders_are_real(root, &e.path, &mut real) {
                continue;
            }
            let full = root.join(std::ffi::OsStr::from_bytes(&e.path));
            let meta = match std::fs::symlink_metadata(&full) {
                Ok(m) => m,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("reading {}", full.display())),
            };
            let (mode, oid) = if e.mode == 0o160000 {
                (0o160000, e.id)
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&full).with_context(|| format!("reading link {}", full.display()))?;
                (0o120000, Oid::hash_object(ObjectType::Blob, target.as_os_str().as_bytes())?)
            } else if meta.is_file() {
                use std::os::unix::fs::PermissionsExt;
                let mode = if meta.permissions().mode() & 0o111 != 0 { 0o100755 } else { 0o100644 };
                let oid =
                    Oid::hash_file(ObjectType::Blob, &full).with_context(|| format!("hashing {}", full.display()))?;
                (mode, oid)
            } else {
                // A tracked file replaced by a folder: the folder's files are untracked.
                continue;
            };
            tracked.push(Tracked { path: e.path.clone(), mode, oid });
        }
        let under = |dir: &str| -> Vec<Tracked> {
            tracked.iter().filter(|t| strip_dir(&t.path, dir.as_bytes()).is_some()).cloned().collect()
        };
        let folder = under(&wf.path);
        let shared: Vec<(String, Vec<Tracked>)> = wf.shared.iter().map(|s| (s.clone(), under(s))).collect();
        let read = |t: &Tracked| -> Result<Vec<u8>> {
            let full = work_tree_path(root, &t.path)?;
            if t.mode == 0o120000 {
                let target = std::fs::read_link(&full).with_context(|| format!("reading link {}", full.display()))?;
                Ok(target.as_os_str().as_bytes().to_vec())
            } else {
                std::fs::read(&full).with_context(|| format!("reading {}", full.display()))
            }
        };
        let entries = assemble(wf, folder, shared, &read)?;
        Ok(CodeSet { entries, origin: Origin::WorkTree(root.to_path_buf()) })
    }

    /// The code fingerprint: sha256 (hex) over every entry's set path, git mode and blob id,
    /// in set-path order. Depends on nothing but those (not the checkout path, mtimes, umask
    /// or listing order).
    pub fn hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"flyte-deploy code set v1\n");
        for e in &self.entries {
            h.update(&e.path);
            h.update(format!("\0{:o}\0{}\n", e.mode.git_mode(), e.oid).as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The bytes of a file (a symlink's target).
    pub fn content(&self, repo: &Repository, entry: &CodeEntry) -> Result<Vec<u8>> {
        match &self.origin {
            Origin::Commit => {
                let blob = repo.find_blob(entry.oid).with_context(|| {
                    format!("reading {} from the repository", String::from_utf8_lossy(&entry.source))
                })?;
                Ok(blob.content().to_vec())
            }
            Origin::WorkTree(root) => {
                let full = work_tree_path(root, &entry.source)?;
                if entry.mode == Mode::Symlink {
                    let t = std::fs::read_link(&full).with_context(|| format!("reading link {}", full.display()))?;
                    Ok(t.as_os_str().as_bytes().to_vec())
                } else {
                    std::fs::read(&full).with_context(|| format!("reading {}", full.display()))
                }
            }
        }
    }

    /// The folders of the set (every proper ancestor of an entry), sorted, without the root.
    pub fn folders(&self) -> Vec<Vec<u8>> {
        let mut dirs: Vec<Vec<u8>> = self.entries.iter().flat_map(|e| ancestors(&e.path)).map(<[u8]>::to_vec).collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Writes the set's files into `dir` (created when missing): files with mode 0644 or
    /// 0755 whatever the umask, symlinks as links. This is where pyflyte runs.
    pub fn materialise(&self, repo: &Repository, dir: &Path) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for folder in self.folders() {
            let full = dir.join(std::ffi::OsStr::from_bytes(&folder));
            std::fs::create_dir_all(&full).with_context(|| format!("creating {}", full.display()))?;
        }
        for e in &self.entries {
            let full = dir.join(std::ffi::OsStr::from_bytes(&e.path));
            let bytes = self.content(repo, e)?;
            if e.mode == Mode::Symlink {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&bytes), &full)
                    .with_context(|| format!("creating link {}", full.display()))?;
            } else {
                std::fs::write(&full, &bytes).with_context(|| format!("writing {}", full.display()))?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(e.mode.permissions()))
                    .with_context(|| format!("setting the mode of {}", full.display()))?;
            }
        }
        Ok(())
    }
}

/// True when every folder on the way from the working tree `root` to `rel` is a folder, not
/// a link (`real` remembers the folders already looked at).
fn folders_are_real(root: &Path, rel: &[u8], real: &mut std::collections::HashMap<Vec<u8>, bool>) -> bool {
    ancestors(rel).all(|dir| {
        *real.entry(dir.to_vec()).or_insert_with(|| {
            std::fs::symlink_metadata(root.join(std::ffi::OsStr::from_bytes(dir))).is_ok_and(|m| m.is_dir())
        })
    })
}

/// The path of the tracked file `rel` in the working tree `root`, checked again when it is
/// read: a folder on the way that became a link since is refused, not read through.
fn work_tree_path(root: &Path, rel: &[u8]) -> Result<PathBuf> {
    if !folders_are_real(root, rel, &mut std::collections::HashMap::new()) {
        return Err(error::user(
            format!("{}: a folder on its way became a link while it was read", String::from_utf8_lossy(rel)),
            "leave the working tree alone while the tool runs, and run it again",
        ));
    }
    Ok(root.join(std::ffi::OsStr::from_bytes(rel)))
}

/// Every non-folder entry below `dir` in `tree` (or `dir` itself when it is a file).
fn tracked_under_tree(repo: &Repository, tree: &Tree<'_>, dir: &str) -> Result<Vec<Tracked>> {
    let entry = match tree.get_path(Path::new(dir)) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading '{dir}' from the commit")),
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(vec![Tracked { path: dir.as_bytes().to_vec(), mode: entry.filemode(), oid: entry.id() }]);
    }
    let sub = repo.find_tree(entry.id()).with_context(|| format!("reading '{dir}' from the commit"))?;
    let mut out = Vec::new();
    walk_tree(repo, &sub, dir.as_bytes(), &mut out)?;
    Ok(out)
}

/// Appends the non-folder entries below `tree` (at repository path `at`), names as bytes.
fn walk_tree(repo: &Repository, tree: &Tree<'_>, at: &[u8], out: &mut Vec<Tracked>) -> Result<()> {
    for e in tree.iter() {
        let mut path = at.to_vec();
        path.push(b'/');
        path.extend_from_slice(e.name_bytes());
        if e.kind() == Some(ObjectType::Tree) {
            let sub = repo
                .find_tree(e.id())
                .with_context(|| format!("reading '{}' from the commit", String::from_utf8_lossy(&path)))?;
            walk_tree(repo, &sub, &path, out)?;
        } else {
            out.push(Tracked { path, mode: e.filemode(), oid: e.id() });
        }
    }
    Ok(())
}

/// The membership decision, from the listed files of the folder and the shared paths.
fn assemble(
    wf: &Workflow,
    folder: Vec<Tracked>,
    shared: Vec<(String, Vec<Tracked>)>,
    read: &dyn Fn(&Tracked) -> Result<Vec<u8>>,
) -> Result<Vec<CodeEntry>> {
    let ignore_path = format!("{}/{FLYTEIGNORE}", wf.path);
    let ignore = match folder.iter().find(|t| t.path == ignore_path.as_bytes()) {
        Some(t) => Ignore::parse(&ignore_path, &read(t)?)?,
        None => Ignore::default(),
    };
    let mut entries: Vec<CodeEntry> = Vec::new();
    for t in folder {
        let rel = strip_dir(&t.path, wf.path.as_bytes()).unwrap_or(&t.path).to_vec();
        if rel == FLYTEIGNORE.as_bytes() || wf.is_dependency(&t.path) || ignore.is_ignored(&rel) {
            continue;
        }
        entries.push(entry(rel, t)?);
    }
    for (root, files) in shared {
        let last = root.rsplit('/').next().unwrap_or(&root).as_bytes().to_vec();
        for t in files {
            let rel = strip_dir(&t.path, root.as_bytes()).unwrap_or(&t.path);
            let mut path = last.clone();
            if !rel.is_empty() {
                path.push(b'/');
                path.extend_from_slice(rel);
            }
            entries.push(entry(path, t)?);
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    check_collisions(wf, &entries)?;
    check_symlinks(wf, &entries, read)?;
    Ok(entries)
}

fn entry(path: Vec<u8>, t: Tracked) -> Result<CodeEntry> {
    let mode = match t.mode {
        0o100755 => Mode::Executable,
        0o120000 => Mode::Symlink,
        0o160000 => {
            return Err(error::user(
                format!("{} is a git submodule, which cannot go into a code archive", String::from_utf8_lossy(&t.path)),
                format!("vendor its files into the repository, or list it in the workflow's {FLYTEIGNORE}"),
            ))
        }
        _ => Mode::File,
    };
    Ok(CodeEntry { path, source: t.path, mode, oid: t.oid })
}

/// Two sources landing on the same place, or a file where a folder of another entry is.
fn check_collisions(wf: &Workflow, entries: &[CodeEntry]) -> Result<()> {
    let clash = |a: &CodeEntry, b: &CodeEntry, what: String| {
        error::user(
            format!(
                "workflow '{}': {} and {} {what} in the code set",
                wf.name,
                String::from_utf8_lossy(&a.source),
                String::from_utf8_lossy(&b.source)
            ),
            "shared paths go under their last path component at the code set's root: rename the shared \
             folder or the workflow's file so the two do not meet",
        )
    };
    for pair in entries.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(clash(&pair[0], &pair[1], format!("both land on '{}'", pair[0].display())));
        }
    }
    let files: std::collections::HashMap<&[u8], &CodeEntry> = entries.iter().map(|e| (&e.path[..], e)).collect();
    for e in entries {
        for dir in ancestors(&e.path) {
            if let Some(file) = files.get(dir) {
                return Err(clash(
                    file,
                    e,
                    format!("meet at '{}' (a file and a folder)", String::from_utf8_lossy(dir)),
                ));
            }
        }
    }
    Ok(())
}

/// Refuses links whose target is not in the set.
fn check_symlinks(wf: &Workflow, entries: &[CodeEntry], read: &dyn Fn(&Tracked) -> Result<Vec<u8>>) -> Result<()> {
    if !entries.iter().any(|e| e.mode == Mode::Symlink) {
        return Ok(());
    }
    let mut places: HashSet<&[u8]> = entries.iter().map(|e| &e.path[..]).collect();
    for e in entries {
        places.extend(ancestors(&e.path));
    }
    let mut links: std::collections::HashMap<&[u8], Vec<u8>> = std::collections::HashMap::new();
    for e in entries.iter().filter(|e| e.mode == Mode::Symlink) {
        links.insert(&e.path, read(&Tracked { path: e.source.clone(), mode: 0o120000, oid: e.oid })?);
    }
    for e in entries.iter().filter(|e| e.mode == Mode::Symlink) {
        let target = &links[&e.path[..]];
        let parent = e.path.rsplit_once_byte().map(|(p, _)| p).unwrap_or(&[]);
        let inside = match resolve(parent, target, &links) {
            Some(resolved) => resolved.is_empty() || places.contains(&resolved[..]),
            None => false,
        };
        if !inside {
            return Err(error::user(
                format!(
                    "workflow '{}': symlink {} points to '{}', outside the code set",
                    wf.name,
                    String::from_utf8_lossy(&e.source),
                    String::from_utf8_lossy(target)
                ),
                "a link must point to a file or folder of the workflow's code set (not absolute, not above it, \
                 not at an ignored or dependency file): copy the file in, or change the link",
            ));
        }
    }
    Ok(())
}

/// Resolves a link target from the folder holding the link as the kernel will once the set
/// is on disk: component by component, following the set's own `links` wherever a component
/// is one (so `x/up/../..` through `x/up -> ..` climbs from where `x/up` leads, not from
/// `x`). `None` when the target is absolute, climbs above the set's root, or loops.
fn resolve(parent: &[u8], target: &[u8], links: &std::collections::HashMap<&[u8], Vec<u8>>) -> Option<Vec<u8>> {
    if target.first() == Some(&b'/') || target.is_empty() {
        return None;
    }
    let mut parts: Vec<Vec<u8>> = parent.split(|b| *b == b'/').filter(|p| !p.is_empty()).map(<[u8]>::to_vec).collect();
    let mut pending: std::collections::VecDeque<Vec<u8>> = target.split(|b| *b == b'/').map(<[u8]>::to_vec).collect();
    // As the kernel's limit on links followed while resolving one path.
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        match &part[..] {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            _ => {
                parts.push(part);
                let Some(next) = links.get(&parts.join(&b'/')[..]) else { continue };
                hops += 1;
                if hops > 40 || next.first() == Some(&b'/') || next.is_empty() {
                    return None;
                }
                parts.pop();
                for p in next.split(|b| *b == b'/').rev() {
                    pending.push_front(p.to_vec());
                }
            }
        }
    }
    Some(parts.join(&b'/'))
}

/// The proper ancestors of a `/` path (`a/b/c` → `a`, `a/b`).
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter().enumerate().filter(|(_, b)| **b == b'/').map(move |(i, _)| &path[..i])
}

trait SplitLast {
    fn rsplit_once_byte(&self) -> Option<(&[u8], &[u8])>;
}

impl SplitLast for [u8] {
    fn rsplit_once_byte(&self) -> Option<(&[u8], &[u8])> {
        let i = self.iter().rposition(|b| *b == b'/')?;
        Some((&self[..i], &self[i + 1..]))
    }
}

/// The rules of a `.flyteignore` (semantics in the module header), matched by the `ignore`
/// crate's gitignore matcher.
#[derive(Debug)]
pub struct Ignore {
    rules: Gitignore,
}

impl Default for Ignore {
    fn default() -> Ignore {
        Ignore { rules: Gitignore::empty() }
    }
}

impl Ignore {
    /// Parses a `.flyteignore`; `file` names it in messages.
    pub fn parse(file: &str, bytes: &[u8]) -> Result<Ignore> {
        let text = String::from_utf8_lossy(bytes);
        // Paths are matched as given, relative to the workflow folder: `.` strips nothing.
        let mut builder = GitignoreBuilder::new(".");
        for (i, line) in text.lines().enumerate() {
            builder.add_line(None, line).map_err(|e| {
                let why = match &e {
                    ignore::Error::Glob { err, .. } => err.clone(),
                    other => other.to_string(),
                };
                error::user(
                    format!("{file}:{}:1: '{line}' is not a valid pattern: {why}", i + 1),
                    "use gitignore syntax: '*', '?', '**', [..], '!' to re-include, a trailing '/' for folders",
                )
            })?;
        }
        let rules = builder.build().with_context(|| format!("reading the patterns of {file}"))?;
        Ok(Ignore { rules })
    }

    /// True when a file (path relative to the workflow folder) is excluded: a folder above
    /// it is ignored, or the last rule matching it ignores it. (The folders are asked first:
    /// as in git, and unlike `matched_path_or_any_parents`, a file in an ignored folder
    /// cannot be re-included.)
    pub fn is_ignored(&self, rel: &[u8]) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        fn as_path(bytes: &[u8]) -> &Path {
            Path::new(std::ffi::OsStr::from_bytes(bytes))
        }
        ancestors(rel).any(|dir| self.rules.matched(as_path(dir), true).is_ignore())
            || self.rules.matched(as_path(rel), false).is_ignore()
    }
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A temporary git repository with one workflow `a`, for unit tests.
    use super::*;
    use crate::workspace::source::GitTree;
    use crate::workspace::Workspace;
    use std::process::Command;

    pub(crate) struct Fixture {
        pub dir: tempfile::TempDir,
    }

    impl Fixture {
        pub(crate) fn new() -> Fixture {
            let f = Fixture { dir: tempfile::tempdir().unwrap() };
            f.git(&["init", "-q", "-b", "main"]);
            f.write("deploy.toml", "");
            f.write("workflows/a/a/__init__.py", "");
            f.write("workflows/a/a/wf.py", "x = 1\n");
            f
        }
        pub(crate) fn write(&self, rel: &str, text: &str) {
            let p = self.dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        pub(crate) fn git(&self, args: &[&str]) {
            let ok = Command::new("git")
                .current_dir(self.dir.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@e", "-c", "commit.gpgsign=false"])
                .args(args)
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        }
        pub(crate) fn set(&self) -> Result<(Vec<String>, String)> {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "--allow-empty", "-m", "x"]);
            let repo = Repository::open(self.dir.path()).unwrap();
            let commit = repo.head().unwrap().peel_to_commit().unwrap();
            let tree = GitTree::at_commit(&repo, &commit).unwrap();
            let ws = Workspace::load(&tree)?;
            let set = CodeSet::at(&repo, tree.tree(), ws.workflow("a").unwrap())?;
            Ok((set.entries.iter().map(CodeEntry::display).collect(), set.hash()))
        }
        /// Commits everything and returns the repository and workflow `a`'s code set at HEAD.
        pub(crate) fn code_set(&self) -> (Repository, CodeSet) {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "--allow-empty", "-m", "x"]);
            let repo = Repository::open(self.dir.path()).unwrap();
            let set = {
                let commit = repo.head().unwrap().peel_to_commit().unwrap();
                let tree = GitTree::at_commit(&repo, &commit).unwrap();
                let ws = Workspace::load(&tree).unwrap();
                CodeSet::at(&repo, tree.tree(), ws.workflow("a").unwrap()).unwrap()
            };
            (repo, set)
        }
        /// Commits everything and returns the fingerprint of workflow `name` at HEAD.
        pub(crate) fn fingerprint(&self, name: &str) -> Result<crate::plan::fingerprint::Fingerprint> {
            self.git(&["add", "-A"]);
            self.git(&["commit", "-q", "--allow-empty", "-m", "x"]);
            let repo = crate::workspace::repo::Repo::discover_from(self.dir.path())?;
            let commit = repo.commit("HEAD")?;
            let ws = Workspace::load(&GitTree::at_commit(&repo.git, &commit)?)?;
            crate::plan::fingerprint::fingerprint(&repo, &commit, &ws, ws.workflow(name).unwrap())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::Fixture;
    use super::*;

    #[test]
    fn folder_minus_dependencies_plus_shared_under_last_component() {
        let f = Fixture::new();
        f.write("workflows/a/requirements.txt", "pandas\n");
        f.write("workflows/a/Dockerfile", "FROM python:3.11\n");
        f.write("workflows/a/workflow.toml", "shared = [\"libs/common\", \"tools/util.py\"]\n");
        f.write("libs/common/__init__.py", "");
        f.write("libs/common/sub/x.py", "");
        f.write("tools/util.py", "");
        let (paths, _) = f.set().unwrap();
        assert_eq!(
            paths,
            ["a/__init__.py", "a/wf.py", "common/__init__.py", "common/sub/x.py", "util.py", "workflow.toml"]
        );
    }

    #[test]
    fn flyteignore_rules() {
        let f = Fixture::new();
        f.write("workflows/a/.flyteignore", "# data\n*.csv\n!keep.csv\ndata/\n/a/local.py\nnotes/**/*.md\n");
        for p in ["x.csv", "a/y.csv", "keep.csv", "data/big.bin", "a/data/z.py", "a/local.py", "b/a/local.py"] {
            f.write(&format!("workflows/a/{p}"), "");
        }
        f.write("workflows/a/notes/q/r.md", "");
        f.write("workflows/a/notes/r.txt", "");
        let (paths, _) = f.set().unwrap();
        assert_eq!(paths, ["a/__init__.py", "a/wf.py", "b/a/local.py", "keep.csv", "notes/r.txt"]);
    }

    #[test]
    fn flyteignore_follows_git_where_matchers_differ() {
        let rules = "\
            data/\n!data/keep.txt\n\
            **/build\nlogs/**\na/**/b.txt\n\
            /top.txt\nsub/x.py\ncache/\n\
            \\#literal\n\\!bang\n\
            trailing.txt   \n\
            *.log\n!important.log\n";
        let ignore = Ignore::parse(".flyteignore", rules.as_bytes()).unwrap();
        let ignored = |p: &str| ignore.is_ignored(p.as_bytes());
        // A file in an ignored folder cannot be re-included.
        assert!(ignored("data/keep.txt") && ignored("data/x/y"));
        // `**/` matches at any depth (the root too); `/**` everything inside; `/**/` zero or more folders.
        assert!(ignored("build/o") && ignored("x/y/build/o") && ignored("x/build"));
        assert!(ignored("logs/a") && ignored("logs/a/b") && !ignored("logs"));
        assert!(ignored("a/b.txt") && ignored("a/x/y/b.txt") && !ignored("x/a/b.txt"));
        // A leading `/`, or a `/` inside, anchors at the workflow folder.
        assert!(ignored("top.txt") && !ignored("x/top.txt"));
        assert!(ignored("sub/x.py") && !ignored("y/sub/x.py"));
        // A trailing `/` matches folders only.
        assert!(ignored("cache/f") && ignored("x/cache/f") && !ignored("cache") && !ignored("x/cache"));
        // `\#` and `\!` are the characters; unescaped trailing spaces are dropped.
        assert!(ignored("#literal") && ignored("!bang") && ignored("trailing.txt"));
        // The last matching line wins.
        assert!(ignored("x/debug.log") && !ignored("x/important.log"));
        assert!(!ignored("keep.py") && !ignored("a/c.txt"));
        let err = Ignore::parse("w/.flyteignore", b"# ok\n{a,b\n").unwrap_err();
        assert!(error::is_user_error(&err));
        assert!(err.to_string().starts_with("w/.flyteignore:2:1: '{a,b' is not a valid pattern"), "{err}");
    }

    #[test]
    fn collision_names_both_sources() {
        let f = Fixture::new();
        f.write("workflows/a/workflow.toml", "shared = [\"libs/a\"]\n");
        f.write("libs/a/wf.py", "");
        let e = f.set().unwrap_err();
        assert!(error::is_user_error(&e));
        let m = e.to_string();
        assert!(m.contains("libs/a/wf.py") && m.contains("workflows/a/a/wf.py") && m.contains("'a/wf.py'"), "{m}");
    }

    #[test]
    fn symlinks_inside_are_kept_escaping_ones_refused() {
        let f = Fixture::new();
        std::os::unix::fs::symlink("wf.py", f.dir.path().join("workflows/a/a/alias.py")).unwrap();
        std::os::unix::fs::symlink("a", f.dir.path().join("workflows/a/a2")).unwrap();
        let (paths, _) = f.set().unwrap();
        assert_eq!(paths, ["a/__init__.py", "a/alias.py", "a/wf.py", "a2"]);
        std::os::unix::fs::symlink("../../../deploy.toml", f.dir.path().join("workflows/a/a/out.toml")).unwrap();
        let m = f.set().unwrap_err().to_string();
        assert!(m.contains("symlink workflows/a/a/out.toml points to '../../../deploy.toml'"), "{m}");
    }

    #[test]
    fn a_link_through_an_inner_link_is_resolved_where_that_link_leads() {
        let f = Fixture::new();
        // `a/x/up` leads to the set's root; `leak` climbs two more folders from there, which
        // read lexically (from `a/x`) would land on the set's own `a/wf.py`.
        std::fs::create_dir_all(f.dir.path().join("workflows/a/a/x")).unwrap();
        std::os::unix::fs::symlink("../..", f.dir.path().join("workflows/a/a/x/up")).unwrap();
        let (paths, _) = f.set().unwrap();
        assert!(paths.contains(&"a/x/up".to_string()), "a link to the root is kept: {paths:?}");
        std::os::unix::fs::symlink("x/up/../../wf.py", f.dir.path().join("workflows/a/a/leak.py")).unwrap();
        let m = f.set().unwrap_err().to_string();
        assert!(m.contains("symlink workflows/a/a/leak.py points to 'x/up/../../wf.py'"), "{m}");
        // Through the inner link without climbing out, it is inside.
        std::fs::remove_file(f.dir.path().join("workflows/a/a/leak.py")).unwrap();
        std::os::unix::fs::symlink("x/up/a/wf.py", f.dir.path().join("workflows/a/a/ok.py")).unwrap();
        f.set().unwrap();
        // A loop of links is refused, not followed forever.
        std::os::unix::fs::symlink("loop2", f.dir.path().join("workflows/a/a/loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", f.dir.path().join("workflows/a/a/loop2")).unwrap();
        assert!(f.set().unwrap_err().to_string().contains("symlink workflows/a/a/loop1"));
    }

    #[test]
    fn hash_follows_content_mode_and_name_only() {
        let f = Fixture::new();
        let (_, h1) = f.set().unwrap();
        f.write("workflows/a/requirements.txt", "x\n");
        f.write("elsewhere.txt", "x\n");
        assert_eq!(f.set().unwrap().1, h1, "dependency and unrelated files do not count");
        f.write("workflows/a/a/wf.py", "x = 2\n");
        let (_, h2) = f.set().unwrap();
        assert_ne!(h2, h1);
        use std::os::unix::fs::PermissionsExt;
        let p = f.dir.path().join("workflows/a/a/wf.py");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_, h3) = f.set().unwrap();
        assert_ne!(h3, h2);
        f.git(&["mv", "workflows/a/a/wf.py", "workflows/a/a/flow.py"]);
        assert_ne!(f.set().unwrap().1, h3);
    }

    #[test]
    fn materialise_writes_the_set_with_fixed_modes() {
        use std::os::unix::fs::PermissionsExt;
        let f = Fixture::new();
        f.write("workflows/a/run.sh", "#!/bin/sh\n");
        std::fs::set_permissions(f.dir.path().join("workflows/a/run.sh"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::fs::set_permissions(f.dir.path().join("workflows/a/a/wf.py"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        std::os::unix::fs::symlink("a/wf.py", f.dir.path().join("workflows/a/link.py")).unwrap();
        let (repo, set) = f.code_set();
        let out = tempfile::tempdir().unwrap();
        let dir = out.path().join("set");
        set.materialise(&repo, &dir).unwrap();
        let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("run.sh"), 0o755);
        assert_eq!(mode("a/wf.py"), 0o644);
        assert_eq!(std::fs::read(dir.join("a/wf.py")).unwrap(), b"x = 1\n");
        assert_eq!(std::fs::read_link(dir.join("link.py")).unwrap(), Path::new("a/wf.py"));
        let mut found: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        found.sort();
        assert_eq!(found, ["a", "link.py", "run.sh"]);
    }

    #[test]
    fn resolve_is_lexical_and_bounded() {
        assert_eq!(resolve(b"a/b", b"../c", &Default::default()).unwrap(), b"a/c");
        assert_eq!(resolve(b"", b"./x/./y", &Default::default()).unwrap(), b"x/y");
        assert!(resolve(b"a", b"../../x", &Default::default()).is_none());
        assert!(resolve(b"a", b"/etc/passwd", &Default::default()).is_none());
    }
}
