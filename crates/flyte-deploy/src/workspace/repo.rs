//! Finding the git repository the tool works on: the one containing the current directory,
//! found the way git finds it. Owns opening it and resolving revisions to commits.

use std::path::{Path, PathBuf};

use anyhow::Result;
use git2::Repository;

use crate::error;

/// The repository and its working directory.
pub struct Repo {
    pub git: Repository,
    pub root: PathBuf,
}

impl Repo {
    /// Opens the repository that contains the current directory.
    pub fn discover() -> Result<Repo> {
        let cwd = std::env::current_dir()?;
        Repo::discover_from(&cwd)
    }

    pub fn discover_from(dir: &Path) -> Result<Repo> {
        crate::artifacts::codeset::tune_object_reads();
        // Found and opened in one pass (discover, then open, walks the path twice), across
        // file systems as discover does.
        let git =
            Repository::open_ext(dir, git2::RepositoryOpenFlags::CROSS_FS, std::iter::empty::<&std::ffi::OsStr>())
                .map_err(|e| {
                    error::user(
                        format!("{} is not inside a git repository ({})", dir.display(), e.message()),
                        "run the command inside your workflows monorepo (a git checkout with a deploy.toml)",
                    )
                })?;
        let root = git
            .workdir()
            .ok_or_else(|| error::user("the git repository is bare", "run the command inside a checkout"))?
            .to_path_buf();
        Ok(Repo { git, root })
    }

    /// The commit a revision names, or a user error naming the revision.
    pub fn commit(&self, rev: &str) -> Result<git2::Commit<'_>> {
        // HEAD directly: revparse would look for refs/HEAD, refs/tags/HEAD, ... first.
        if rev == "HEAD" {
            if let Ok(commit) = self.git.head().and_then(|h| h.peel_to_commit()) {
                return Ok(commit);
            }
        }
        let obj = self.git.revparse_single(rev).map_err(|e| {
            let help = if rev == "HEAD" && self.git.is_empty().unwrap_or(false) {
                "the repository has no commits yet: commit your workflows first".to_string()
            } else {
                "name an existing branch, tag or commit; in CI, fetch enough history (e.g. fetch-depth: 0)".to_string()
            };
            error::user(format!("ref '{rev}' cannot be resolved: {}", e.message()), help)
        })?;
        obj.peel_to_commit()
            .map_err(|_| error::user(format!("ref '{rev}' does not name a commit"), "name a branch, tag or commit"))
    }
}
