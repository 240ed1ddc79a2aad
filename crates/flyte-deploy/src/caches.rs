//! The caches' folder, `.flyte/cache`, and how its files are written: whole (written aside,
//! then renamed, so a reader sees the old file or the new one), kept out of git, and pruned
//! to the newest few. Each cache (`versions.rs`, `serialize.rs`) decides what
//! it keeps; this module only writes and removes files.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes a `.gitignore` of `*` into the caches' folder (`.flyte/cache`) when it has none, so a
/// cache never shows in `git status` nor lands in a commit, whatever the project ignores.
pub(crate) fn keep_out_of_git(caches: &Path) {
    let ignore = caches.join(".gitignore");
    if !ignore.exists() {
        let _ = std::fs::write(ignore, "# flyte-deploy's caches: never committed\n*\n");
    }
}

/// The caches' folder, relative to the repository root.
pub(crate) const DIR: &str = ".flyte/cache";

/// Why the caches are not to be used, when `.flyte/cache` is tracked by git in `commit` (the
/// one a command works on) or in the commit checked out: files a commit brought were not
/// written by this tool, and a cache trusted on its word could hide a change. `None`: use them.
pub(crate) fn committed(repo: &git2::Repository, commit: &git2::Commit<'_>) -> Option<String> {
    let tracked = |t: &git2::Tree<'_>| t.get_path(Path::new(DIR)).is_ok();
    let at = if commit.tree().is_ok_and(|t| tracked(&t)) {
        format!("commit {:.10}", commit.id())
    } else if repo.refname_to_id("HEAD").is_ok_and(|id| id != commit.id())
        && repo.head().ok().and_then(|h| h.peel_to_tree().ok()).is_some_and(|t| tracked(&t))
    {
        "the commit checked out".to_string()
    } else {
        return None;
    };
    Some(format!(
        "{DIR} is tracked by git in {at}: its caches are not used (they only save time); \
         remove it from git with `git rm -r --cached {DIR}` and commit"
    ))
}

/// Makes `.flyte/cache` of the repository at `root` a folder again when something else took
/// its place (a file, a dangling link): the caches only save time, so what is there is
/// removed, said once, and the caches start empty. A link to a folder is kept.
pub(crate) fn heal(root: &Path) {
    let dir = root.join(DIR);
    let Ok(meta) = dir.symlink_metadata() else { return };
    if meta.is_dir() || dir.metadata().is_ok_and(|m| m.is_dir()) {
        return;
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    match std::fs::remove_file(&dir) {
        Ok(()) => SAID.call_once(|| {
            crate::output::note(format_args!("{DIR} was not a folder: removed it; the caches start empty"))
        }),
        Err(e) => SAID.call_once(|| {
            crate::output::warning(format_args!("{DIR} is not a folder and cannot be removed ({e}): remove it"))
        }),
    }
}

/// Writes `file` (in a cache's folder, below the caches' folder) whole from `parts`: creates
/// the folder, keeps the caches out of git, writes a temporary file beside it and renames it.
pub(crate) fn write_whole(file: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = file.parent().expect("a cache file is in a folder");
    std::fs::create_dir_all(dir)?;
    keep_out_of_git(dir.parent().unwrap_or(dir));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    for part in parts {
        tmp.write_all(part)?;
    }
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Removes all but the `keep` newest files of `dir` that `counts` selects.
pub(crate) fn keep_newest(dir: &Path, keep: usize, counts: impl Fn(&Path) -> bool) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = read
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| counts(p))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_whole_out_of_git_and_the_newest_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache/kind");
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            write_whole(&dir.join(name), &[b"x", name.as_bytes()]).unwrap();
            let time = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            std::fs::File::options().write(true).open(dir.join(name)).unwrap().set_modified(time).unwrap();
        }
        assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"xb");
        assert!(std::fs::read_to_string(root.path().join("cache/.gitignore")).unwrap().contains("\n*\n"));
        keep_newest(&dir, 1, |p| p.file_name().is_some_and(|n| n != "a"));
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
        left.sort();
        assert_eq!(left, ["a", "c"], "the newest counted file and the uncounted one stay");
    }
}
