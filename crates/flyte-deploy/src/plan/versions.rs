//! The versions cache: what `plan` learns about each workflow folder, kept under the git
//! object ids it was learnt from, so a plan reads only the folders that changed since the
//! last one. Reads and writes only its own files; computes nothing itself.
//!
//! Everything plan derives from a workflow folder is a function of immutable inputs:
//! - its facts (name, project, Dockerfile, shared paths, Python packages): of the folder's
//!   path, its tree id and the configuration (deploy.toml's blob id);
//! - its version, image and code fingerprint: of those, and of the ids (and modes) at head of
//!   its shared paths and of a Dockerfile outside the folder; with `version_scheme =
//!   "git-sha"` also of the head commit and the SHA length.
//!
//! Equal ids mean equal content (git addresses objects by content), so a hit is exact, never
//! stale: a cached entry is only ever reused for the very inputs it was computed from.
//!
//! One file per configuration, `.flyte/cache/versions/<deploy.toml blob id>.tsv`: a header
//! line naming the format, the tool and the flytekit version (a file with another header is
//! ignored whole), then one folder a line, its 13 fields separated by tabs (list items by
//! U+001F), the lines sorted, so that they are ordered by path and tree id. The file is
//! mapped into memory and searched in place: opening the cache reads nothing, a plan that
//! finds everything allocates little, and as a plan looks folders up in the order of their
//! paths, each lookup starts where the last one ended and reads the file front to back. A line that does not parse is a miss; a
//! folder whose strings hold a tab, a line break or U+001F is not cached. The file is written
//! whole to a temporary file and renamed, so an interrupted or concurrent run leaves the old
//! file or a new one, never a torn one (and a mapped file never changes under a reader).
//! Deleting the folder is always safe.
//!
//! Why a format of its own rather than a well-kept one: `cargo xtask bench plan` times plan
//! with the same entries in SQLite (rusqlite, one table read in key order) and serialized
//! with postcard, in the same runs as this file (`Format`; `FLYTE_DEPLOY_BENCH_PLAN`). On its
//! 2,000-workflow monorepo (2-core machine, busy; three runs) plan with its cache warm took
//! 1.78×, 1.85× and 1.72× `git diff-tree` with this file; its median run took 1.37–1.55×
//! as long with SQLite (best 2.45–3.30× diff-tree) and 1.08–1.28× with postcard (best
//! 2.14–2.80×): reading a whole file of either costs more than the budget (plan at most 2×
//! diff-tree) leaves.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use git2::Oid;

use crate::caches;

/// Where the cache files live, relative to the repository root.
pub const CACHE_DIR: &str = ".flyte/cache/versions";
/// Files of other configurations kept besides the current one.
const OTHER_FILES_KEPT: usize = 4;
/// Entries kept besides those used by the current run (the most recently used ones).
const SPARE_ENTRIES: usize = 2_000;
/// Fields of a line: path, tree, name, project, Dockerfile, shared paths, packages (the
/// facts), then inputs, head, version, image, code (the stamp; all empty when there is
/// none), then age (how many writes of the file ago a run last used the line).
const FIELDS: usize = 13;
/// Separates the items of a list field.
const ITEM: char = '\x1f';

fn header() -> String {
    format!("flyte-deploy versions cache v3 (tool {} {})", env!("CARGO_PKG_VERSION"), env!("XTASK_SOURCE_HASH"))
}

/// What a workflow folder's tree and workflow.toml say, under a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub project: String,
    pub dockerfile: Option<String>,
    pub shared: Vec<String>,
    /// The Python packages (`--pkgs`), as workflow.toml lists them or as found.
    pub packages: Vec<String>,
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
    let mut fields = vec![path.into(), tree.to_string(), facts.name.clone(), facts.project.clone()];
    fields.push(facts.dockerfile.clone().unwrap_or_default());
    fields.push(facts.shared.join(&ITEM.to_string()));
    fields.push(facts.packages.join(&ITEM.to_string()));
    match stamp {
        Some(s) => {
            fields.push(render_inputs(&s.inputs));
            fields.push(s.head.clone().unwrap_or_default());
            fields.extend([s.version.clone(), s.image.clone(), s.code.clone()]);
        }
        None => fields.extend(std::iter::repeat_n(String::new(), 5)),
    }
    fields.push("0".into());
    let clean = fields.iter().all(|f| !f.contains(['\t', '\n', '\r']))
        && [path, &facts.name, &facts.project].iter().all(|f| !f.is_empty() && !f.contains(ITEM))
        && facts.dockerfile.as_deref().is_none_or(|d| !d.is_empty() && !d.contains(ITEM))
        && facts.shared.iter().chain(&facts.packages).all(|s| !s.is_empty() && !s.contains(ITEM))
        && stamp.is_none_or(|s| !s.version.is_empty());
    // Entries index their fields with 16 bits.
    clean.then(|| fields.join("\t")).filter(|line| line.len() <= usize::from(u16::MAX))
}

/// A folder's line of the cache, read in place: its facts, and its stamp when it has one.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    line: &'a str,
    /// Where each field but the last ends in `line`.
    ends: [u16; FIELDS - 1],
    /// Where the line starts in the file.
    at: u32,
}

impl<'a> Entry<'a> {
    /// The line's fields, when it has the right number (and the line, at most 64 KiB, is
    /// UTF-8).
    fn parse(line: &'a [u8], at: usize) -> Option<Entry<'a>> {
        if line.len() > usize::from(u16::MAX) {
            return None;
        }
        let mut ends = [0u16; FIELDS - 1];
        let mut tabs = memchr::memchr_iter(b'\t', line);
        for end in ends.iter_mut() {
            *end = tabs.next()? as u16;
        }
        let line = std::str::from_utf8(line).ok()?;
        tabs.next().is_none().then_some(Entry { line, ends, at: u32::try_from(at).ok()? })
    }

    fn field(&self, i: usize) -> &'a str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize + 1 };
        let end = if i == FIELDS - 1 { self.line.len() } else { self.ends[i] as usize };
        &self.line[start..end]
    }

    /// The folder, relative to the repository root.
    pub fn path(&self) -> &'a str {
        self.field(0)
    }

    pub fn name(&self) -> &'a str {
        self.field(2)
    }

    pub fn project(&self) -> &'a str {
        self.field(3)
    }

    pub fn dockerfile(&self) -> Option<&'a str> {
        Some(self.field(4)).filter(|d| !d.is_empty())
    }

    /// The shared paths, sorted.
    pub fn shared(&self) -> impl Iterator<Item = &'a str> {
        self.field(5).split(ITEM).filter(|s| !s.is_empty())
    }

    /// The Python packages.
    pub fn packages(&self) -> impl Iterator<Item = &'a str> {
        self.field(6).split(ITEM).filter(|s| !s.is_empty())
    }

    /// The facts, owned.
    pub fn facts(&self) -> Facts {
        Facts {
            name: self.name().to_string(),
            project: self.project().to_string(),
            dockerfile: self.dockerfile().map(str::to_string),
            shared: self.shared().map(str::to_string).collect(),
            packages: self.packages().map(str::to_string).collect(),
        }
    }

    /// True when the line holds these facts.
    pub fn has_facts(&self, facts: &Facts) -> bool {
        self.name() == facts.name
            && self.project() == facts.project
            && self.dockerfile() == facts.dockerfile.as_deref()
            && self.shared().eq(facts.shared.iter().map(String::as_str))
            && self.packages().eq(facts.packages.iter().map(String::as_str))
    }

    /// The stamp, when the line has one.
    pub fn stamp(&self) -> Option<StampRef<'a>> {
        let version = self.field(9);
        (!version.is_empty()).then(|| StampRef {
            inputs: self.field(7),
            head: self.field(8),
            version,
            image: self.field(10),
            code: self.field(11),
        })
    }
}

/// The cache of one configuration as the file holds it. Read only: what a run learns goes
/// into a [`Learnt`], which [`Store::save`] writes back.
#[derive(Debug, Default)]
pub struct Store {
    file: Option<PathBuf>,
    /// The file, mapped (`None`: no cache, or one of another format); or, for the formats
    /// `bench plan` compares, its lines as the file of this format would hold them.
    map: Option<Lines>,
    format: Format,
    /// Where the lines start in the mapping (after the header).
    body: usize,
    /// Where the last lookup ended, in the lines: the next one starts there.
    cursor: AtomicUsize,
}

/// What a run learnt (lines by tree, with their paths; they replace the file's) and which of
/// the file's lines it used.
#[derive(Debug, Default)]
pub struct Learnt {
    fresh: HashMap<Oid, Vec<(String, String)>>,
    used: Vec<u32>,
}

impl Learnt {
    /// Keeps a line of the file (it was used).
    pub fn used(&mut self, entry: &Entry<'_>) {
        self.used.push(entry.at);
    }

    /// Remembers the facts of a folder (without a stamp).
    pub fn facts(&mut self, path: &str, tree: Oid, facts: &Facts) {
        self.learn(tree, path, render(tree, path, facts, None));
    }

    /// Remembers a folder's facts and version.
    pub fn stamp(&mut self, path: &str, tree: Oid, facts: &Facts, stamp: &Stamp) {
        self.learn(tree, path, render(tree, path, facts, Some(stamp)));
    }

    fn learn(&mut self, tree: Oid, path: &str, line: Option<String>) {
        let Some(line) = line else { return };
        let lines = self.fresh.entry(tree).or_default();
        match lines.iter_mut().find(|(p, _)| p == path) {
            Some((_, l)) => *l = line,
            None => lines.push((path.to_string(), line)),
        }
    }

    fn replaces(&self, line: &[u8]) -> bool {
        let mut fields = line.splitn(3, |b| *b == b'\t');
        let (Some(path), Some(tree)) = (fields.next(), fields.next()) else { return false };
        let tree = std::str::from_utf8(tree).ok().and_then(|t| Oid::from_str(t).ok());
        tree.and_then(|t| self.fresh.get(&t)).is_some_and(|v| v.iter().any(|(p, _)| p.as_bytes() == path))
    }
}

impl Store {
    /// The cache of the configuration `deploy_toml` in the repository at `root`, mapped. A
    /// missing or unreadable file, or one of another format, is an empty cache.
    pub fn open(root: &Path, deploy_toml: Oid) -> Store {
        Store::open_as(root, deploy_toml, Format::chosen())
    }

    fn open_as(root: &Path, deploy_toml: Oid, format: Format) -> Store {
        let file = root.join(CACHE_DIR).join(format!("{deploy_toml}.{}", format.extension()));
        let head = header();
        let body = head.len() + 1;
        let map = match format {
            Format::Tsv => std::fs::File::open(&file).ok().and_then(|f| {
                // SAFETY: the file is only ever replaced by a rename, never written in place, so
                // the mapped contents do not change while they are read. (A program that
                // truncated it in place could make reads fault; nothing does.)
                unsafe { memmap2::Mmap::map(&f) }.ok().map(Lines::Mapped)
            }),
            Format::Sqlite => sqlite::load(&file, &head).map(Lines::Loaded),
            Format::Postcard => postcard_format::load(&file, &head).map(Lines::Loaded),
        };
        let map = map.filter(|m| m.len() >= body && m[..head.len()] == *head.as_bytes() && m[head.len()] == b'\n');
        Store { file: Some(file), map, format, body, cursor: AtomicUsize::new(0) }
    }

    fn lines(&self) -> &[u8] {
        self.map.as_deref().map_or(&[][..], |m| &m[self.body..])
    }

    /// The entry of the folder `dir/name` with tree `tree`, when the file holds a line for it
    /// that parses.
    pub fn get(&self, dir: &str, name: &str, tree: Oid) -> Option<Entry<'_>> {
        let lines = self.lines();
        // A folder whose name holds a separator has no line (they are never written): its
        // key could otherwise match another folder's line.
        if lines.is_empty() || [dir, name].iter().any(|s| s.contains(['\t', '\n', '\r'])) {
            return None;
        }
        let mut key = Vec::with_capacity(dir.len() + name.len() + 43);
        key.extend_from_slice(dir.as_bytes());
        key.push(b'/');
        key.extend_from_slice(name.as_bytes());
        key.push(b'\t');
        let tree_at = key.len();
        key.extend_from_slice(&[0; 40]);
        hex::encode_to_slice(tree.as_bytes(), &mut key[tree_at..]).ok()?;
        key.push(b'\t');
        let start = seek(lines, self.cursor.load(Ordering::Relaxed), &key);
        let end = memchr::memchr(b'\n', &lines[start..]).map_or(lines.len(), |n| start + n);
        self.cursor.store(start, Ordering::Relaxed);
        let line = &lines[start..end];
        if !line.starts_with(&key) {
            return None;
        }
        self.cursor.store((end + 1).min(lines.len()), Ordering::Relaxed);
        Entry::parse(line, self.body + start)
    }

    /// Writes the cache back when this run learnt something: the lines it learnt, the
    /// file's lines it used, then up to [`SPARE_ENTRIES`] others, the most recently used
    /// first; and keeps at most [`OTHER_FILES_KEPT`] files of other configurations. A cache
    /// that cannot be written is reported and otherwise ignored: it only saves time.
    pub fn save(&self, learnt: Learnt) {
        let Some(file) = &self.file else { return };
        if learnt.fresh.is_empty() {
            return;
        }
        if let Err(e) = self.write(file, learnt) {
            crate::output::warning(format_args!(
                "the versions cache {} could not be written ({e:#}); plans stay correct, only slower: \
                 make .flyte/cache writable, or remove what stands in its place",
                file.display()
            ));
        }
    }

    fn write(&self, file: &Path, mut learnt: Learnt) -> Result<()> {
        learnt.used.sort_unstable();
        let mut kept: Vec<Cow<'_, [u8]>> = Vec::new();
        // (age, line) of the lines not used, one write older.
        let mut spare: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut at = self.body;
        for line in self.lines().split(|b| *b == b'\n') {
            let used = learnt.used.binary_search(&(at as u32)).is_ok();
            at += line.len() + 1;
            // Lines that do not parse go, as do those this run learnt anew.
            let parses = Entry::parse(line, 0).is_some();
            if !parses || learnt.replaces(line) {
                continue;
            }
            if used {
                kept.push(Cow::Owned(aged(line, 0)));
            } else {
                let age = line.rsplit(|b| *b == b'\t').next().and_then(|a| std::str::from_utf8(a).ok()?.parse().ok());
                spare.push((age.unwrap_or(u64::MAX).saturating_add(1), aged(line, age.unwrap_or(0).saturating_add(1))));
            }
        }
        spare.sort_by_key(|(age, _)| *age);
        kept.extend(spare.into_iter().take(SPARE_ENTRIES).map(|(_, l)| Cow::Owned(l)));
        kept.extend(learnt.fresh.values().flatten().map(|(_, l)| Cow::Borrowed(l.as_bytes())));
        kept.sort_unstable();
        let mut out = Vec::with_capacity(self.lines().len() + 256 * learnt.fresh.len());
        out.extend_from_slice(header().as_bytes());
        out.push(b'\n');
        for line in kept {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
        match self.format {
            Format::Tsv => caches::write_whole(file, &[&out]).with_context(|| format!("writing {}", file.display()))?,
            Format::Sqlite => sqlite::save(file, &out)?,
            Format::Postcard => postcard_format::save(file, &out)?,
        }
        // Files of other configurations: the newest few stay.
        let dir = file.parent().expect("the cache file is in a folder");
        let extension = self.format.extension();
        caches::keep_newest(dir, OTHER_FILES_KEPT, |p| p != file && p.extension().is_some_and(|x| x == extension));
        Ok(())
    }
}

/// A line with its last field (the age) set to `age`.
fn aged(line: &[u8], age: u64) -> Vec<u8> {
    let keep = line.iter().rposition(|b| *b == b'\t').map_or(line.len(), |t| t + 1);
    let mut out = Vec::with_capacity(keep + 4);
    out.extend_from_slice(&line[..keep]);
    if keep == line.len() {
        out.push(b'\t');
    }
    out.extend_from_slice(age.to_string().as_bytes());
    out
}

/// Where the first line not less than `key` starts in `lines` (sorted lines, each ending in
/// a line break; a line is compared by its first `key.len()` bytes), or `lines.len()`.
/// Looks from `cursor` (a line start) on first: a few lines forward, then a binary search
/// in the part of the file the answer is in.
fn seek(lines: &[u8], cursor: usize, key: &[u8]) -> usize {
    let less = |at: usize| at < lines.len() && lines[at..].get(..key.len()).unwrap_or(&lines[at..]) < key;
    let next = |at: usize| memchr::memchr(b'\n', &lines[at..]).map_or(lines.len(), |n| at + n + 1);
    let cursor = cursor.min(lines.len());
    if less(cursor) {
        let mut at = cursor;
        for _ in 0..8 {
            if !less(at) {
                return at;
            }
            at = next(at);
        }
        return lower_bound(lines, at, lines.len(), key);
    }
    // The answer is `cursor` unless the line before it is not less than `key` either.
    match cursor.checked_sub(1).map(|end| memchr::memrchr(b'\n', &lines[..end]).map_or(0, |n| n + 1)) {
        Some(previous) if !less(previous) => lower_bound(lines, 0, previous, key),
        _ => cursor,
    }
}

/// Where the first line that is not less than `key` (comparing the line's first
/// `key.len()` bytes) starts in `lines[lo..hi]` (sorted lines, each ending in a line
/// break; `lo` and `hi` line starts), or `hi`.
fn lower_bound(lines: &[u8], mut lo: usize, mut hi: usize, key: &[u8]) -> usize {
    let line_at = |start: usize| {
        let end = memchr::memchr(b'\n', &lines[start..]).map_or(lines.len(), |n| start + n);
        (&lines[start..end], end + 1)
    };
    // Invariant: lines before `lo` are less than `key`, lines from `hi` on are not.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // The first line starting at or after `mid`, if it starts before `hi`; else `lo`'s.
        let start = match lines[..mid].last() {
            None | Some(b'\n') => mid,
            Some(_) => memchr::memchr(b'\n', &lines[mid..hi]).map_or(hi, |n| mid + n + 1),
        };
        let start = if start >= hi { lo } else { start };
        let (line, next) = line_at(start);
        if line.get(..key.len()).unwrap_or(line) < key {
            lo = next.min(hi);
        } else {
            hi = start;
        }
    }
    lo
}

/// The cache's lines: the file mapped, or what another format's file holds.
#[derive(Debug)]
enum Lines {
    Mapped(memmap2::Mmap),
    Loaded(Vec<u8>),
}

impl std::ops::Deref for Lines {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Lines::Mapped(map) => map,
            Lines::Loaded(bytes) => bytes,
        }
    }
}

/// The format of the cache file: sorted lines mapped in place; or one `bench plan` measures
/// it against (`FLYTE_DEPLOY_BENCH_PLAN`): the same facts in a SQLite table, or serialized
/// with postcard, read whole into the lines the rest of this module searches (so what they
/// cost beyond the mapped file is reading their file, the least any reader of it does).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Format {
    #[default]
    Tsv,
    Sqlite,
    Postcard,
}

impl Format {
    fn chosen() -> Format {
        if crate::settings::bench_plan_variant("sqlite-versions") {
            Format::Sqlite
        } else if crate::settings::bench_plan_variant("postcard-versions") {
            Format::Postcard
        } else {
            Format::Tsv
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Tsv => "tsv",
            Format::Sqlite => "sqlite",
            Format::Postcard => "postcard",
        }
    }
}

/// The fields of each line of `lines` (header first, then one folder a line), for the
/// formats that store fields.
fn fields_of(lines: &[u8]) -> Result<(&str, Vec<Vec<&str>>)> {
    let text = std::str::from_utf8(lines).context("the cache's lines are not UTF-8")?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    Ok((header, lines.map(|l| l.split('\t').collect()).collect()))
}

/// The versions cache in SQLite: one table, a row per line, read in key order.
mod sqlite {
    use super::*;
    use std::io::Write as _;

    const COLUMNS: &str =
        "path, tree, name, project, dockerfile, shared, packages, inputs, head, version, image, code, age";

    pub(super) fn load(file: &Path, header: &str) -> Option<Vec<u8>> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = rusqlite::Connection::open_with_flags(file, flags).ok()?;
        let found: String = db.query_row("SELECT header FROM meta", [], |r| r.get(0)).ok()?;
        if found != header {
            return None;
        }
        let mut out = Vec::with_capacity(256 << 10);
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        let mut select = db.prepare(&format!("SELECT {COLUMNS} FROM folders ORDER BY path, tree")).ok()?;
        let mut rows = select.query([]).ok()?;
        while let Some(row) = rows.next().ok()? {
            for i in 0..FIELDS - 1 {
                out.extend_from_slice(row.get_ref(i).ok()?.as_str().ok()?.as_bytes());
                out.push(b'\t');
            }
            let age: i64 = row.get(FIELDS - 1).ok()?;
            writeln!(out, "{age}").ok()?;
        }
        Some(out)
    }

    pub(super) fn save(file: &Path, lines: &[u8]) -> Result<()> {
        let dir = file.parent().expect("the cache file is in a folder");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let aside = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("writing in {}", dir.display()))?;
        let (header, rows) = fields_of(lines)?;
        let mut db = rusqlite::Connection::open(aside.path()).context("creating the SQLite cache")?;
        let tx = db.transaction()?;
        tx.execute_batch(
            "CREATE TABLE meta (header TEXT NOT NULL);
             CREATE TABLE folders (path TEXT, tree TEXT, name TEXT, project TEXT, dockerfile TEXT, shared TEXT,
               packages TEXT, inputs TEXT, head TEXT, version TEXT, image TEXT, code TEXT, age INTEGER,
               PRIMARY KEY (path, tree)) WITHOUT ROWID;",
        )?;
        tx.execute("INSERT INTO meta VALUES (?1)", [header])?;
        {
            let mut insert = tx.prepare(&format!(
                "INSERT OR REPLACE INTO folders ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ))?;
            for f in rows.iter().filter(|f| f.len() == FIELDS) {
                let age = f[FIELDS - 1].parse::<u64>().unwrap_or(u64::MAX).min(i64::MAX as u64) as i64;
                let mut values: Vec<&dyn rusqlite::ToSql> = f[..FIELDS - 1].iter().map(|v| v as _).collect();
                values.push(&age);
                insert.execute(values.as_slice())?;
            }
        }
        tx.commit()?;
        drop(db);
        aside.persist(file).map_err(|e| e.error).with_context(|| format!("writing {}", file.display()))?;
        Ok(())
    }
}

/// The versions cache serialized with postcard: the header line, then the rows.
mod postcard_format {
    use super::*;
    use serde::{Deserialize, Serialize};
    use std::io::Write as _;

    #[derive(Serialize, Deserialize)]
    struct Row<'a> {
        path: &'a str,
        tree: &'a str,
        name: &'a str,
        project: &'a str,
        dockerfile: &'a str,
        #[serde(borrow)]
        shared: Vec<&'a str>,
        #[serde(borrow)]
        packages: Vec<&'a str>,
        inputs: &'a str,
        head: &'a str,
        version: &'a str,
        image: &'a str,
        code: &'a str,
        age: u64,
    }

    pub(super) fn load(file: &Path, header: &str) -> Option<Vec<u8>> {
        let file = std::fs::File::open(file).ok()?;
        // SAFETY: as for the mapped lines: the file is only ever replaced by a rename.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let body = map.strip_prefix(header.as_bytes())?.strip_prefix(b"\n")?;
        let rows: Vec<Row<'_>> = postcard::from_bytes(body).ok()?;
        let mut out = Vec::with_capacity(map.len() + rows.len() * 16);
        out.extend_from_slice(header.as_bytes());
        out.push(b'\n');
        let field = |out: &mut Vec<u8>, f: &str| {
            out.extend_from_slice(f.as_bytes());
            out.push(b'\t');
        };
        let list = |out: &mut Vec<u8>, items: &[&str]| {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(ITEM as u8);
                }
                out.extend_from_slice(item.as_bytes());
            }
            out.push(b'\t');
        };
        for r in &rows {
            [r.path, r.tree, r.name, r.project, r.dockerfile].iter().for_each(|f| field(&mut out, f));
            list(&mut out, &r.shared);
            list(&mut out, &r.packages);
            [r.inputs, r.head, r.version, r.image, r.code].iter().for_each(|f| field(&mut out, f));
            writeln!(out, "{}", r.age).ok()?;
        }
        Some(out)
    }

    pub(super) fn save(file: &Path, lines: &[u8]) -> Result<()> {
        let (header, rows) = fields_of(lines)?;
        fn list(field: &str) -> Vec<&str> {
            field.split(ITEM).filter(|s| !s.is_empty()).collect()
        }
        let rows: Vec<Row<'_>> = rows
            .iter()
            .filter(|f| f.len() == FIELDS)
            .map(|f| Row {
                path: f[0],
                tree: f[1],
                name: f[2],
                project: f[3],
                dockerfile: f[4],
                shared: list(f[5]),
                packages: list(f[6]),
                inputs: f[7],
                head: f[8],
                version: f[9],
                image: f[10],
                code: f[11],
                age: f[12].parse().unwrap_or(u64::MAX),
            })
            .collect();
        let body = postcard::to_allocvec(&rows).context("serializing the versions cache")?;
        caches::write_whole(file, &[header.as_bytes(), b"\n", &body])
            .with_context(|| format!("writing {}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> Facts {
        Facts {
            name: name.into(),
            project: "p".into(),
            dockerfile: None,
            shared: vec!["libs/x".into(), "y".into()],
            packages: vec![name.replace('-', "_"), "util.sub".into()],
        }
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

    fn facts_at<'a>(s: &'a Store, name: &str, tree: Oid) -> Option<Facts> {
        s.get("workflows", name, tree).map(|e: Entry<'a>| e.facts())
    }

    #[test]
    fn entries_survive_a_save_and_bad_lines_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let (a, b) = (Oid::from_bytes(&[1; 20]).unwrap(), Oid::from_bytes(&[2; 20]).unwrap());
        let s = Store::open(dir.path(), config);
        assert_eq!(facts_at(&s, "a", a), None);
        let mut learnt = Learnt::default();
        learnt.facts("workflows/a", a, &facts("a"));
        learnt.stamp("workflows/a", a, &facts("a"), &stamp("v1"));
        learnt.facts("workflows/b", b, &facts("b"));
        learnt.facts("workflows/tab", b, &facts("a\tb"));
        s.save(learnt);

        let file = dir.path().join(CACHE_DIR).join(format!("{config}.tsv"));
        let mut text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text.lines().count(), 3, "a header and two lines (a tab cannot be stored): {text}");
        // A line that does not parse, in its sorted place (an unsorted file only makes misses).
        let body = text.find('\n').unwrap() + 1;
        text.insert_str(body, "not\ta line\n");
        std::fs::write(&file, text).unwrap();
        let s = Store::open(dir.path(), config);
        assert_eq!(facts_at(&s, "a", a), Some(facts("a")));
        let got = s.get("workflows", "a", a).unwrap().stamp().unwrap();
        assert_eq!((got.version, got.image), ("v1", "img"));
        assert!(got.made_from(&stamp("v1").inputs, None));
        assert!(!got.made_from(&stamp("v1").inputs[..1], None));
        assert!(!got.made_from(&stamp("v1").inputs, Some("abc:12")));
        assert_eq!(facts_at(&s, "other", a), None, "the same tree at another path is another folder");
        assert_eq!(facts_at(&s, "a", b), None, "another tree at the same path is another folder");
        assert!(s.get("workflows", "b", b).unwrap().stamp().is_none());
        // A folder named to spell another's line up to a field is not that folder: the line
        // of `workflows/b` at tree b, whose name is b's id, starts with the key this name
        // would make for tree b.
        let mut learnt = Learnt::default();
        learnt.facts("workflows/b", b, &facts(&b.to_string()));
        s.save(learnt);
        let s = Store::open(dir.path(), config);
        assert_eq!(facts_at(&s, "b", b).map(|f| f.name), Some(b.to_string()));
        assert_eq!(facts_at(&s, &format!("b\t{b}"), b), None);

        // New facts for a folder replace its line, stamp and all; the line that does not
        // parse is dropped.
        let mut learnt = Learnt::default();
        learnt.facts("workflows/a", a, &facts("renamed"));
        s.save(learnt);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("not\ta line"), "{text}");
        let s = Store::open(dir.path(), config);
        assert_eq!(facts_at(&s, "a", a), Some(facts("renamed")));
        assert!(s.get("workflows", "a", a).unwrap().stamp().is_none());
        // Another configuration has its own file; another header is ignored whole.
        assert_eq!(facts_at(&Store::open(dir.path(), a), "b", b), None);
        std::fs::write(&file, text.replacen("v3", "v0", 1)).unwrap();
        assert_eq!(facts_at(&Store::open(dir.path(), config), "b", b), None);
    }

    #[test]
    fn the_formats_bench_plan_compares_hold_the_same_lines() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let (a, b) = (Oid::from_bytes(&[1; 20]).unwrap(), Oid::from_bytes(&[2; 20]).unwrap());
        let mut learnt = Learnt::default();
        learnt.stamp("workflows/a", a, &facts("a"), &stamp("v1"));
        learnt.facts("workflows/b", b, &facts("b"));
        Store::open_as(dir.path(), config, Format::Tsv).save(learnt);
        let tsv = Store::open_as(dir.path(), config, Format::Tsv);
        for format in [Format::Sqlite, Format::Postcard] {
            assert!(Store::open_as(dir.path(), config, format).map.is_none());
            let mut learnt = Learnt::default();
            learnt.stamp("workflows/a", a, &facts("a"), &stamp("v1"));
            learnt.facts("workflows/b", b, &facts("b"));
            Store::open_as(dir.path(), config, format).save(learnt);
            let other = Store::open_as(dir.path(), config, format);
            assert_eq!(other.lines(), tsv.lines(), "{format:?}");
            assert_eq!(other.get("workflows", "a", a).unwrap().stamp().unwrap().version, "v1");
        }
    }

    #[test]
    fn lookups_in_any_order_find_exactly_the_lines_there() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let tree = |i: u8| Oid::from_bytes(&[i; 20]).unwrap();
        // Folders 0..60 at even trees; odd names have two lines (two trees).
        let mut learnt = Learnt::default();
        for i in 0..60u8 {
            learnt.facts(&format!("workflows/w{i:02}"), tree(2 * i), &facts(&format!("w{i:02}")));
            if i % 2 == 1 {
                learnt.facts(&format!("workflows/w{i:02}"), tree(2 * i + 1), &facts(&format!("w{i:02}-old")));
            }
        }
        Store::open(dir.path(), config).save(learnt);
        let s = Store::open(dir.path(), config);
        let order: Vec<u8> = (0..60).collect();
        let descending: Vec<u8> = order.iter().rev().copied().collect();
        let scrambled: Vec<u8> = (0..60u32).map(|i| ((i * 37) % 60) as u8).collect();
        for queries in [&order, &descending, &scrambled] {
            for &i in queries.iter() {
                let name = format!("w{i:02}");
                assert_eq!(facts_at(&s, &name, tree(2 * i)).map(|f| f.name), Some(name.clone()));
                let older = facts_at(&s, &name, tree(2 * i + 1)).map(|f| f.name);
                assert_eq!(older, (i % 2 == 1).then(|| format!("{name}-old")), "{name}");
                assert_eq!(facts_at(&s, &format!("{name}x"), tree(2 * i)), None);
            }
        }
    }

    #[test]
    fn the_most_recently_used_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let tree = Oid::from_bytes(&[1; 20]).unwrap();
        let path = |i: usize| format!("workflows/w{i:05}");
        // One run learns SPARE_ENTRIES + 10 folders; the next one uses the first 5 and learns one.
        let mut learnt = Learnt::default();
        for i in 0..SPARE_ENTRIES + 10 {
            learnt.facts(&path(i), tree, &facts("x"));
        }
        Store::open(dir.path(), config).save(learnt);
        let s = Store::open(dir.path(), config);
        let mut learnt = Learnt::default();
        for i in 0..5 {
            learnt.used(&s.get("workflows", &format!("w{i:05}"), tree).unwrap());
        }
        learnt.facts(&path(99_999), tree, &facts("x"));
        s.save(learnt);
        let s = Store::open(dir.path(), config);
        let mut learnt = Learnt::default();
        learnt.facts(&path(99_998), tree, &facts("x"));
        s.save(learnt);
        // Used twice ago (age 1) and new last time (age 1) beat the others (age 2).
        let s = Store::open(dir.path(), config);
        let kept = |i: usize| s.get("workflows", &format!("w{i:05}"), tree).is_some();
        assert!((0..5).all(kept) && kept(99_999) && kept(99_998));
        let others = (5..SPARE_ENTRIES + 10).filter(|i| kept(*i)).count();
        assert_eq!(others, SPARE_ENTRIES - 6, "{SPARE_ENTRIES} spare lines in all");
    }

    #[test]
    fn the_oldest_age_stays_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let config = Oid::from_bytes(&[7; 20]).unwrap();
        let (a, b) = (Oid::from_bytes(&[1; 20]).unwrap(), Oid::from_bytes(&[2; 20]).unwrap());
        let mut learnt = Learnt::default();
        learnt.facts("workflows/a", a, &facts("a"));
        Store::open(dir.path(), config).save(learnt);
        let file = dir.path().join(CACHE_DIR).join(format!("{config}.tsv"));
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replace("\t0\n", &format!("\t{}\n", u64::MAX))).unwrap();
        // The next write ages the line past the largest age: it stays there, no overflow.
        let mut learnt = Learnt::default();
        learnt.facts("workflows/b", b, &facts("b"));
        Store::open(dir.path(), config).save(learnt);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(&format!("\t{}\n", u64::MAX)), "{text}");
        assert!(facts_at(&Store::open(dir.path(), config), "a", a).is_some());
    }
}
