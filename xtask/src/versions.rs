//! The versions cache: what `plan` learns about each workflow folder, kept under the git
//! object ids it was learnt from, so a plan reads only the folders that changed since the
//! last one. Reads and writes only its own files; computes nothing itself.
//!
//! Everything plan derives from a workflow folder is a function of immutable inputs:
//! - its facts (name, project, Dockerfile, shared paths): of the folder's path, its tree id
//!   and the configuration (deploy.toml's blob id);
//! - its version, image and code fingerprint: of those, and of the ids (and modes) at head of
//!   its shared paths and of a Dockerfile outside the folder; with `version_scheme =
//!   "git-sha"` also of the head commit and the SHA length.
//!
//! Equal ids mean equal content (git addresses objects by content), so a hit is exact, never
//! stale: a cached entry is only ever reused for the very inputs it was computed from.
//!
//! One file per configuration, `.flyte/cache/versions/<deploy.toml blob id>.tsv`: a header
//! line naming the format, the tool and the flytekit version (a file with another header is
//! ignored whole), then one folder a line, its 11 fields separated by tabs (list items by
//! U+001F). A line that does not parse is a miss; a folder whose strings hold a tab, a line
//! break or U+001F is not cached. Lookups read the file's lines in place, so a plan that
//! finds everything allocates little. The file is written whole to a temporary file and
//! renamed, so an interrupted or concurrent run leaves the old file or a new one, never a
//! torn one. Deleting the folder is always safe.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::Oid;

use crate::venv::FLYTEKIT_VERSION;

/// Where the cache files live, relative to the repository root.
pub const CACHE_DIR: &str = ".flyte/cache/versions";
/// Files of other configurations kept besides the current one.
const OTHER_FILES_KEPT: usize = 4;
/// Entries kept besides those used by the current run.
const SPARE_ENTRIES: usize = 2_000;
/// Fields of a line: tree, path, name, project, Dockerfile, shared paths (the facts), then
/// inputs, head, version, image, code (the stamp; all empty when there is none).
const FIELDS: usize = 11;
/// Separates the items of a list field.
const ITEM: char = '\x1f';

fn header() -> String {
    format!("flyte-deploy versions cache v1 (tool {}, flytekit {FLYTEKIT_VERSION})", env!("CARGO_PKG_VERSION"))
}

/// What a workflow folder's tree and workflow.toml say, under a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub project: String,
    pub dockerfile: Option<String>,
    pub shared: Vec<String>,
}

/// An input of a version outside the workflow folder, as it is at head: its tree or blob id
/// (`None` when the path does not exist) and mode. Which paths they are follows from the
/// facts (the shared paths, then a Dockerfile outside the folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Input {
    pub id: Option<Oid>,
    pub mode: i32,
}

/// A workflow's version and what it was computed from besides its folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub inputs: Vec<Input>,
    /// `git-sha` versions only: `<head commit>:<length>`.
    pub head: Option<String>,
    pub version: String,
    pub image: String,
    pub code: String,
}

/// A stamp as the cache holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampRef<'a> {
    inputs: &'a str,
    head: &'a str,
    pub version: &'a str,
    pub image: &'a str,
    pub code: &'a str,
}

impl StampRef<'_> {
    /// True when the stamp was made from these inputs (and head, for `git-sha`).
    pub fn made_from(&self, inputs: &[Input], head: Option<&str>) -> bool {
        if self.head != head.unwrap_or_default() {
            return false;
        }
        let mut items = self.inputs.split(',').filter(|i| !i.is_empty());
        let same = inputs.iter().all(|input| items.next().and_then(parse_input) == Some(*input));
        same && items.next().is_none()
    }
}

/// An input as [`render_inputs`] writes it: `<id or ->:<octal mode>`.
fn parse_input(item: &str) -> Option<Input> {
    let (id, mode) = item.split_once(':')?;
    let id = if id == "-" { None } else { Some(Oid::from_str(id).ok()?) };
    Some(Input { id, mode: i32::from_str_radix(mode, 8).ok()? })
}

fn render_inputs(inputs: &[Input]) -> String {
    let items: Vec<String> = inputs
        .iter()
        .map(|i| format!("{}:{:o}", i.id.map_or_else(|| "-".to_string(), |id| id.to_string()), i.mode))
        .collect();
    items.join(",")
}

/// A line of the cache, or `None` when a string holds a character the format cannot carry.
fn render(tree: Oid, path: &str, facts: &Facts, stamp: Option<&Stamp>) -> Option<String> {
    let shared = facts.shared.join(&ITEM.to_string());
    let mut fields = vec![tree.to_string(), path.into(), facts.name.clone(), facts.project.clone()];
    fields.push(facts.dockerfile.clone().unwrap_or_default());
    fields.push(shared);
    match stamp {
        Some(s) => {
            fields.push(render_inputs(&s.inputs));
            fields.push(s.head.clone().unwrap_or_default());
            fields.extend([s.version.clone(), s.image.clone(), s.code.clone()]);
        }
        None => fields.extend(std::iter::repeat_n(String::new(), 5)),
    }
    let clean = fields.iter().all(|f| !f.contains(['\t', '\n', '\r']))
        && [path, &facts.name, &facts.project].iter().all(|f| !f.is_empty() && !f.contains(ITEM))
        && facts.dockerfile.as_deref().is_none_or(|d| !d.is_empty() && !d.contains(ITEM))
        && facts.shared.iter().all(|s| !s.is_empty() && !s.contains(ITEM))
        && stamp.is_none_or(|s| !s.version.is_empty());
    clean.then(|| fields.join("\t"))
}

/// The fields of a line, when it has the right number.
fn fields(line: &str) -> Option<[&str; FIELDS]> {
    let mut out = [""; FIELDS];
    let mut parts = line.split('\t');
    for slot in out.iter_mut() {
        *slot = parts.next()?;
    }
    parts.next().is_none().then_some(out)
}

fn facts_of(f: &[&str; FIELDS]) -> Facts {
    Facts {
        name: f[2].to_string(),
        project: f[3].to_string(),
        dockerfile: (!f[4].is_empty()).then(|| f[4].to_string()),
        shared: if f[5].is_empty() { Vec::new() } else { f[5].split(ITEM).map(str::to_string).collect() },
    }
}

/// Where a line of the file is, where its path field is, and the next line of the same tree.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    path: (usize, usize),
    next: Option<usize>,
}

/// The cache of one configuration: the file's text, indexed by folder tree, and what this
/// run learnt. [`Store::save`] writes it back when that is anything.
#[derive(Debug, Default)]
pub struct Store {
    file: Option<PathBuf>,
    text: String,
    spans: Vec<Span>,
    /// The first span of each tree (identical folders at several paths share a tree id).
    index: HashMap<Oid, usize>,
    /// Lines learnt by this run, by tree, with their paths; they replace the file's.
    fresh: HashMap<Oid, Vec<(String, String)>>,
    used: Vec<bool>,
}

impl Store {
    /// The cache of the configuration `deploy_toml` in the repository at `root`. A missing or
    /// unreadable file is an empty cache; a line that does not parse is left out.
    pub fn open(root: &Path, deploy_toml: Oid) -> Store {
        let file = root.join(CACHE_DIR).join(format!("{deploy_toml}.tsv"));
        let mut store = Store { file: Some(file.clone()), ..Store::default() };
        let Ok(text) = std::fs::read_to_string(&file) else { return store };
        let Some(body) = text.strip_prefix(&header()).and_then(|t| t.strip_prefix('\n')) else { return store };
        let lines = body.bytes().filter(|b| *b == b'\n').count();
        store.spans.reserve_exact(lines);
        store.index.reserve(lines);
        let mut start = text.len() - body.len();
        for line in body.split_inclusive('\n') {
            let end = start + line.len();
            // The tree and the path; the other fields are checked when the line is read.
            let parsed = line.strip_suffix('\n').and_then(|l| {
                let (tree, rest) = l.split_once('\t')?;
                let path_len = rest.find('\t')?;
                Some((Oid::from_str(tree).ok()?, l.len(), tree.len() + 1, path_len))
            });
            if let Some((tree, len, path_at, path_len)) = parsed {
                let next = store.index.insert(tree, store.spans.len());
                let path = (start + path_at, start + path_at + path_len);
                store.spans.push(Span { start, end: start + len, path, next });
            }
            start = end;
        }
        store.used = vec![false; store.spans.len()];
        store.text = text;
        store
    }

    /// The current line of a folder, marking a file line used.
    fn line(&mut self, path: &str, tree: Oid) -> Option<&str> {
        if !self.fresh.is_empty() {
            if let Some(i) = self.fresh.get(&tree).and_then(|v| v.iter().position(|(p, _)| p == path)) {
                return Some(self.fresh[&tree][i].1.as_str());
            }
        }
        let mut at = self.index.get(&tree).copied();
        while let Some(i) = at {
            let span = self.spans[i];
            if &self.text[span.path.0..span.path.1] == path {
                self.used[i] = true;
                return Some(&self.text[span.start..span.end]);
            }
            at = span.next;
        }
        None
    }

    /// The facts of the folder at `path` with tree `tree`, when known.
    pub fn facts(&mut self, path: &str, tree: Oid) -> Option<Facts> {
        self.line(path, tree).and_then(fields).map(|f| facts_of(&f))
    }

    /// Remembers the facts of a folder (its stamp goes when the facts differ).
    pub fn put_facts(&mut self, path: &str, tree: Oid, facts: &Facts) {
        let known = self.line(path, tree).and_then(fields).map(|f| facts_of(&f));
        if known.as_ref() != Some(facts) {
            self.learn(tree, path, render(tree, path, facts, None));
        }
    }

    /// The stamp of a folder, when known.
    pub fn stamp(&mut self, path: &str, tree: Oid) -> Option<StampRef<'_>> {
        let f = fields(self.line(path, tree)?)?;
        (!f[8].is_empty()).then_some(StampRef { inputs: f[6], head: f[7], version: f[8], image: f[9], code: f[10] })
    }

    /// Remembers a folder's version; its facts must have been found or put first.
    pub fn put_stamp(&mut self, path: &str, tree: Oid, stamp: &Stamp) {
        let Some(facts) = self.facts(path, tree) else { return };
        self.learn(tree, path, render(tree, path, &facts, Some(stamp)));
    }

    fn learn(&mut self, tree: Oid, path: &str, line: Option<String>) {
        let Some(line) = line else { return };
        let lines = self.fresh.entry(tree).or_default();
        match lines.iter_mut().find(|(p, _)| p == path) {
            Some((_, l)) => *l = line,
            None => lines.push((path.to_string(), line)),
        }
    }

    /// Writes the cache back when this run learnt something: the lines this run learnt (by
    /// path), those it used, then up to [`SPARE_ENTRIES`] others; and keeps at most [`OTHER_FILES_KEPT`]
    /// files of other configurations. A cache that cannot be written is reported and
    /// otherwise ignored: it only saves time.
    pub fn save(self) {
        let Some(file) = &self.file else { return };
        if self.fresh.is_empty() {
            return;
        }
        if let Err(e) = self.write(file) {
            eprintln!(
                "warning: the versions cache {} could not be written ({e:#}); plans stay correct, only slower: \
                 make .flyte/cache writable, or remove what stands in its place",
                file.display()
            );
        }
    }

    fn write(&self, file: &Path) -> Result<()> {
        let dir = file.parent().expect("the cache file is in a folder");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        keep_out_of_git(dir.parent().unwrap_or(dir));
        let mut out = String::with_capacity(self.text.len() + 256 * self.fresh.len());
        out.push_str(&header());
        out.push('\n');
        let mut fresh: Vec<&(String, String)> = self.fresh.values().flatten().collect();
        fresh.sort();
        for (_, line) in fresh {
            out.push_str(line);
            out.push('\n');
        }
        let replaced = |s: &Span| {
            let tree = Oid::from_str(&self.text[s.start..s.path.0 - 1]).ok();
            let path = &self.text[s.path.0..s.path.1];
            tree.and_then(|t| self.fresh.get(&t)).is_some_and(|v| v.iter().any(|(p, _)| p == path))
        };
        let used = self.spans.iter().zip(&self.used).filter(|(_, u)| **u).map(|(s, _)| s);
        let spare = self.spans.iter().zip(&self.used).filter(|(_, u)| !**u).map(|(s, _)| s).take(SPARE_ENTRIES);
        for span in used.chain(spare).filter(|s| !replaced(s)) {
            out.push_str(&self.text[span.start..span.end]);
            out.push('\n');
        }
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(out.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", file.display()));
        }
        prune(dir, file);
        Ok(())
    }
}

/// Writes a `.gitignore` of `*` into the caches' folder (`.flyte/cache`) when it has none, so a
/// cache never shows in `git status` nor lands in a commit, whatever the project ignores.
pub fn keep_out_of_git(caches: &Path) {
    let ignore = caches.join(".gitignore");
    if !ignore.exists() {
        let _ = std::fs::write(ignore, "# flyte-deploy's caches: never committed\n*\n");
    }
}

/// Removes all but the [`OTHER_FILES_KEPT`] newest cache files of other configurations.
fn prune(dir: &Path, keep: &Path) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut others: Vec<(std::time::SystemTime, PathBuf)> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p != keep && p.extension().is_some_and(|x| x == "tsv"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (_, p) in others.into_iter().skip(OTHER_FILES_KEPT) {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> Facts {
        Facts { name: name.into(), project: "p".into(), dockerfile: None, shared: vec!["libs/x".into(), "y".into()] }
    }

    fn stamp(version: &str) -> Stamp {
        Stamp {
            inputs: vec![
                Input { id: Some(Oid::from_bytes(&[9; 20]).unwrap()), mode: 0o040000 },
                Input { id: None, mode: 0 },
            ],
            head: None,
            version: version.into(),
            image: "img".into(),
            code: "c".repeat(64),
        }
    }

    #[test]
    fn entries_survive_a_save_and_bad_lines_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let (a, b) = (Oid::from_bytes(&[1; 20]).unwrap(), Oid::from_bytes(&[2; 20]).unwrap());
        let mut s = Store::open(dir.path(), config);
        assert_eq!(s.facts("workflows/a", a), None);
        s.put_facts("workflows/a", a, &facts("a"));
        s.put_stamp("workflows/a", a, &stamp("v1"));
        s.put_facts("workflows/b", b, &facts("b"));
        s.put_facts("workflows/tab", b, &facts("a\tb"));
        s.save();

        let file = dir.path().join(CACHE_DIR).join(format!("{config}.tsv"));
        let mut text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 3, "a header and two lines (a tab cannot be stored): {text}");
        text.push_str("not\ta line\n");
        std::fs::write(&file, text).unwrap();
        let mut s = Store::open(dir.path(), config);
        assert_eq!(s.facts("workflows/a", a), Some(facts("a")));
        let got = s.stamp("workflows/a", a).unwrap();
        assert_eq!((got.version, got.image), ("v1", "img"));
        assert!(got.made_from(&stamp("v1").inputs, None));
        assert!(!got.made_from(&stamp("v1").inputs[..1], None));
        assert!(!got.made_from(&stamp("v1").inputs, Some("abc:12")));
        assert_eq!(s.facts("workflows/other", a), None, "the same tree at another path is another folder");
        assert_eq!(s.stamp("workflows/b", b), None);

        // New facts for a folder drop its stamp.
        s.put_facts("workflows/a", a, &facts("renamed"));
        assert_eq!(s.stamp("workflows/a", a), None);
        // Another configuration has its own file; another header is ignored whole.
        assert_eq!(Store::open(dir.path(), a).facts("workflows/b", b), None);
        std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replacen("v1", "v0", 1)).unwrap();
        assert_eq!(Store::open(dir.path(), config).facts("workflows/b", b), None);
    }
}
