//! What changed between two commits' trees, path by path, on raw byte paths. Compares tree
//! ids and descends only into subtrees that differ, as `git diff-tree -r` does. No rename
//! detection: a rename (case-only ones included) is a deletion at the old path plus an
//! addition at the new one, so both ends always count, whatever the rename limits. Reads the
//! object database only; decides nothing about workflows.

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository, Tree, TreeEntry};

/// A file's identity on one side of a change: its object id and git file mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    pub id: Oid,
    pub mode: i32,
}

impl Blob {
    /// A regular file (executable or not), as opposed to a symlink or submodule.
    pub fn is_file(&self) -> bool {
        self.mode == 0o100644 || self.mode == 0o100755 || self.mode == 0o100664
    }
}

/// One path whose non-directory entry differs: added (`old` is `None`), deleted (`new` is
/// `None`) or modified (content, mode or kind). Symlinks and submodule pointers are entries
/// like files and count at their own path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Repository-relative, `/`-separated, as git stores it (any bytes but NUL).
    pub path: Vec<u8>,
    pub old: Option<Blob>,
    pub new: Option<Blob>,
}

const TREE_MODE: i32 = 0o040000;

/// Every changed path between `old` (`None`: the empty tree) and `new`.
pub fn changes(repo: &Repository, old: Option<&Tree<'_>>, new: &Tree<'_>) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    let mut prefix = Vec::new();
    match old {
        Some(old) if old.id() == new.id() => {}
        Some(old) => diff_trees(repo, Some(old), Some(new), &mut prefix, &mut out)?,
        None => diff_trees(repo, None, Some(new), &mut prefix, &mut out)?,
    }
    Ok(out)
}

/// The entries of a tree ordered by raw name, so that a file and a folder of the same name
/// meet (git's own order sorts a folder as if its name ended in `/`).
fn sorted<'t>(tree: Option<&'t Tree<'_>>) -> Vec<TreeEntry<'t>> {
    let mut entries: Vec<TreeEntry<'t>> = tree.map(|t| t.iter().collect()).unwrap_or_default();
    if !entries.windows(2).all(|w| w[0].name_bytes() <= w[1].name_bytes()) {
        entries.sort_by(|a, b| a.name_bytes().cmp(b.name_bytes()));
    }
    entries
}

fn diff_trees(
    repo: &Repository,
    old: Option<&Tree<'_>>,
    new: Option<&Tree<'_>>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let olds = sorted(old);
    let news = sorted(new);
    let (mut i, mut j) = (0, 0);
    while i < olds.len() || j < news.len() {
        let order = match (olds.get(i), news.get(j)) {
            (Some(a), Some(b)) => a.name_bytes().cmp(b.name_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (a, b) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (Some(&olds[i - 1]), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (None, Some(&news[j - 1]))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (Some(&olds[i - 1]), Some(&news[j - 1]))
            }
        };
        if let (Some(a), Some(b)) = (a, b) {
            if a.id() == b.id() && a.filemode() == b.filemode() {
                continue;
            }
        }
        let name = a.or(b).expect("one side is present").name_bytes();
        let len = prefix.len();
        prefix.extend_from_slice(name);
        entry_pair(repo, a, b, prefix, out)?;
        prefix.truncate(len);
    }
    Ok(())
}

/// Two entries of the same name (either may be missing) that differ.
fn entry_pair(
    repo: &Repository,
    a: Option<&TreeEntry<'_>>,
    b: Option<&TreeEntry<'_>>,
    path: &mut Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let is_tree = |e: &&TreeEntry<'_>| e.filemode() == TREE_MODE;
    let old_tree = a.filter(is_tree).map(|e| subtree(repo, e, path)).transpose()?;
    let new_tree = b.filter(is_tree).map(|e| subtree(repo, e, path)).transpose()?;
    let old_blob = a.filter(|e| !is_tree(e)).map(|e| Blob { id: e.id(), mode: e.filemode() });
    let new_blob = b.filter(|e| !is_tree(e)).map(|e| Blob { id: e.id(), mode: e.filemode() });
    if old_blob.is_some() || new_blob.is_some() {
        out.push(Change { path: path.clone(), old: old_blob, new: new_blob });
    }
    if old_tree.is_some() || new_tree.is_some() {
        path.push(b'/');
        diff_trees(repo, old_tree.as_ref(), new_tree.as_ref(), path, out)?;
        path.pop();
    }
    Ok(())
}

fn subtree<'r>(repo: &'r Repository, entry: &TreeEntry<'_>, path: &[u8]) -> Result<Tree<'r>> {
    repo.find_object(entry.id(), Some(ObjectType::Tree))
        .and_then(|o| o.peel_to_tree())
        .with_context(|| format!("reading the tree of {}", quote_path(path)))
}

/// A repository path as text, losslessly: UTF-8 paths as they are; a path that is not UTF-8
/// (or that starts with `"`) C-quoted the way git's `core.quotePath` does it: in double
/// quotes, with `\"`, `\\`, `\t`, `\n`, `\r` and every other byte below 0x20 or above 0x7e
/// of an invalid sequence as a three-digit octal escape (`caf\351.py`). A quoted path always
/// starts with `"`, an unquoted one never does, so the form is unambiguous.
pub fn quote_path(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s) if !s.starts_with('"') => s.to_string(),
        _ => c_quote(path),
    }
}

/// A path for one line of a text table: like [`quote_path`], but also quoted when it holds
/// control characters (a newline would break the line).
pub fn quote_path_for_line(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s) if !s.starts_with('"') && !s.chars().any(char::is_control) => s.to_string(),
        _ => c_quote(path),
    }
}

fn c_quote(path: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_paths_stay_as_they_are() {
        assert_eq!(quote_path("workflows/été/a b.py".as_bytes()), "workflows/été/a b.py");
        assert_eq!(quote_path(b"w/a\nb"), "w/a\nb");
        assert_eq!(quote_path_for_line(b"w/a\nb"), "\"w/a\\nb\"");
    }

    #[test]
    fn other_bytes_are_c_quoted() {
        assert_eq!(quote_path(b"w/caf\xe9.py"), "\"w/caf\\351.py\"");
        assert_eq!(quote_path(b"\"q\"/\xff"), "\"\\\"q\\\"/\\377\"");
        assert_eq!(quote_path(b"\"x"), "\"\\\"x\"");
    }
}
