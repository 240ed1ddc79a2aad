//! What changed between two commits' trees, path by path, on raw byte paths. Compares tree
//! ids and descends only into subtrees that differ, as `git diff-tree -r` does, reading the
//! trees once each ([`crate::plan::trees`]). No rename detection: a rename (case-only ones
//! included) is a deletion at the old path plus an addition at the new one, so both ends
//! always count, whatever the rename limits. Reads the object database only; decides nothing
//! about workflows.

use anyhow::Result;
use git2::Oid;

use crate::plan::trees::{self, Entries, Entry, Tree, Trees};

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

/// Every changed path between the trees `old` (`None`: the empty tree) and `new`, sorted by
/// path.
pub(crate) fn changes(trees: &Trees<'_>, old: Option<Oid>, new: Oid) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    if old != Some(new) {
        let old = old.map(|id| trees.get(id)).transpose()?;
        diff_trees(trees, old.as_ref(), Some(&trees.get(new)?), &mut Vec::new(), &mut out)?;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Walks two trees' entries side by side in git's order (a file and a folder of the same
/// name do not meet: the file counts as deleted or added, the folder's files likewise). A
/// tree whose entries are out of order (which git itself never writes) can only make a path
/// count as deleted and added rather than modified: a change is never missed.
fn diff_trees(
    trees: &Trees<'_>,
    old: Option<&Tree>,
    new: Option<&Tree>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let (mut olds, mut news) = (entries(old), entries(new));
    let (mut a, mut b) = (olds.next(), news.next());
    while a.is_some() || b.is_some() {
        let order = match (&a, &b) {
            (Some(x), Some(y)) => trees::git_order(x, y),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (x, y) = match order {
            std::cmp::Ordering::Less => (std::mem::replace(&mut a, olds.next()), None),
            std::cmp::Ordering::Greater => (None, std::mem::replace(&mut b, news.next())),
            std::cmp::Ordering::Equal => {
                (std::mem::replace(&mut a, olds.next()), std::mem::replace(&mut b, news.next()))
            }
        };
        if let (Some(x), Some(y)) = (&x, &y) {
            if x.id == y.id && x.mode == y.mode {
                continue;
            }
        }
        let name = x.or(y).expect("one side is present").name;
        let len = prefix.len();
        prefix.extend_from_slice(name);
        entry_pair(trees, x, y, prefix, out)?;
        prefix.truncate(len);
    }
    Ok(())
}

/// A tree's entries; none for a missing tree.
fn entries(tree: Option<&Tree>) -> Entries<'_> {
    tree.map_or(Entries::empty(), |t| t.entries())
}

/// Two entries of the same name (either may be missing) that differ.
fn entry_pair(
    trees: &Trees<'_>,
    a: Option<Entry<'_>>,
    b: Option<Entry<'_>>,
    path: &mut Vec<u8>,
    out: &mut Vec<Change>,
) -> Result<()> {
    let subtree = |e: Entry<'_>| trees.get(e.id).map_err(|err| err.context(format!("reading {}", quote_path(path))));
    let old_tree = a.filter(Entry::is_tree).map(subtree).transpose()?;
    let new_tree = b.filter(Entry::is_tree).map(subtree).transpose()?;
    let old_blob = a.filter(|e| !e.is_tree()).map(|e| Blob { id: e.id, mode: e.mode });
    let new_blob = b.filter(|e| !e.is_tree()).map(|e| Blob { id: e.id, mode: e.mode });
    if old_blob.is_some() || new_blob.is_some() {
        out.push(Change { path: path.clone(), old: old_blob, new: new_blob });
    }
    if old_tree.is_some() || new_tree.is_some() {
        path.push(b'/');
        diff_trees(trees, old_tree.as_ref(), new_tree.as_ref(), path, out)?;
        path.pop();
    }
    Ok(())
}

/// A repository path as text, losslessly: UTF-8 paths as they are; a path that is not UTF-8
/// (or that starts with `"`) C-quoted the way git's `core.quotePath` does it: in double
/// quotes, with `\"`, `\\`, `\t`, `\n`, `\r` and every other byte below 0x20 or above 0x7e
/// of an invalid sequence as a three-digit octal escape (`caf\351.py`). A quoted path always
/// starts with `"`, an unquoted one never does, so the form is unambiguous.
pub(crate) fn quote_path(path: &[u8]) -> String {
    match std::str::from_utf8(path) {
        Ok(s) if !s.starts_with('"') => s.to_string(),
        _ => c_quote(path),
    }
}

/// A path for one line of a text table: like [`quote_path`], but also quoted when it holds
/// control characters (a newline would break the line).
pub(crate) fn quote_path_for_line(path: &[u8]) -> String {
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
