//! Where a change starts, where it ends and where it goes: the base and head commits (from
//! flags, the GitHub Actions context, or the local branches) and the Flyte domain. The diff is
//! always merge-base..head. Reads refs and the environment; decides nothing about workflows.

use std::path::PathBuf;

use anyhow::{Context, Result};
use git2::Oid;

use crate::config::{Config, Domain};
use crate::error;
use crate::settings;
use crate::workspace::repo::Repo;

/// The CI context the base and domain may come from (GitHub Actions' variables, else GitLab
/// CI's: a GitLab job checks out a detached HEAD, so its branch is known only from them).
#[derive(Debug, Clone, Default)]
pub(crate) struct CiContext {
    /// `GITHUB_BASE_REF` (`CI_MERGE_REQUEST_TARGET_BRANCH_NAME`): a pull request's target branch.
    pub base_ref: Option<String>,
    /// `GITHUB_HEAD_REF` (`CI_MERGE_REQUEST_SOURCE_BRANCH_NAME`): a pull request's source branch.
    pub head_ref: Option<String>,
    /// `GITHUB_REF_NAME` (`CI_COMMIT_BRANCH`): the branch or tag pushed.
    pub ref_name: Option<String>,
    /// `GITHUB_EVENT_PATH`: the event payload (for a push, `before` is the commit pushed over).
    pub event_path: Option<PathBuf>,
}

impl CiContext {
    /// The context from the environment; empty variables count as unset.
    pub(crate) fn from_env() -> CiContext {
        CiContext {
            base_ref: settings::GITHUB_BASE_REF.get().or_else(|| settings::CI_MERGE_REQUEST_TARGET_BRANCH_NAME.get()),
            head_ref: settings::GITHUB_HEAD_REF.get().or_else(|| settings::CI_MERGE_REQUEST_SOURCE_BRANCH_NAME.get()),
            ref_name: settings::GITHUB_REF_NAME.get().or_else(|| settings::CI_COMMIT_BRANCH.get()),
            event_path: settings::GITHUB_EVENT_PATH.get_os().map(PathBuf::from),
        }
    }

    /// The branch being built in CI, if any: the PR's source branch, else the pushed ref.
    pub(crate) fn branch(&self) -> Option<&str> {
        self.head_ref.as_deref().or(self.ref_name.as_deref())
    }
}

/// The commit the change is measured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Base {
    /// The merge-base, and how it was found (for the text output).
    Found { commit: Oid, how: String },
    /// No base could be resolved; `why` says what is missing.
    Missing { why: String },
}

/// The base of `head`: `--base` when given, else a pull request's target branch, else the
/// commit a push went over, else the default branch. Always a merge-base with `head`.
pub(crate) fn resolve_base(repo: &Repo, explicit: Option<&str>, head: Oid, ci: &CiContext) -> Result<Base> {
    if let Some(rev) = explicit {
        return Ok(match revision(repo, rev) {
            Some(base) => merge_base(repo, base, head, &format!("merge-base of {rev} and head")),
            None => Base::Missing { why: format!("--base '{rev}' does not name a commit in this clone") },
        });
    }
    if let Some(target) = &ci.base_ref {
        let candidates = [format!("refs/remotes/origin/{target}"), format!("refs/heads/{target}")];
        return Ok(match candidates.iter().find_map(|r| revision(repo, r)) {
            Some(base) => merge_base(repo, base, head, &format!("merge-base with the pull request's base {target}")),
            None => Base::Missing { why: format!("the pull request's base branch '{target}' is not fetched") },
        });
    }
    let event = match &ci.event_path {
        Some(path) => Some(read_event(path)?),
        None => None,
    };
    if let Some(before) = event.as_ref().and_then(|e| e.before.as_deref()) {
        // A push: the commit pushed over, when it is in this clone and an ancestor of head
        // (a force push or a new branch falls back to the default branch below).
        if let Some(before) = Oid::from_str(before).ok().filter(|o| !o.is_zero()) {
            if repo.git.find_commit(before).is_ok() && repo.git.graph_descendant_of(head, before).unwrap_or(false) {
                return Ok(Base::Found { commit: before, how: format!("the commit pushed over ({before:.10})") });
            }
        }
    }
    let mut defaults = vec!["refs/remotes/origin/HEAD".to_string()];
    if let Some(branch) = event.as_ref().and_then(|e| e.default_branch.as_deref()) {
        defaults.push(format!("refs/remotes/origin/{branch}"));
        defaults.push(format!("refs/heads/{branch}"));
    }
    defaults.push("refs/heads/main".into());
    defaults.push("refs/remotes/origin/main".into());
    Ok(match defaults.iter().find_map(|r| revision(repo, r).map(|o| (r, o))) {
        Some((name, base)) => {
            let short = name.trim_start_matches("refs/heads/").trim_start_matches("refs/remotes/");
            merge_base(repo, base, head, &format!("merge-base with the default branch {short}"))
        }
        None => Base::Missing { why: "there is no default branch to compare with (no origin/HEAD, no main)".into() },
    })
}

/// A revision's commit, or `None` when it does not resolve here.
fn revision(repo: &Repo, rev: &str) -> Option<Oid> {
    // A full ref name is looked up as it is (revparse would also try it under refs/,
    // refs/tags/, refs/heads/, ... first).
    let object = match rev.starts_with("refs/") {
        true => repo.git.find_reference(rev).and_then(|r| r.peel(git2::ObjectType::Any)).ok()?,
        false => repo.git.revparse_single(rev).ok()?,
    };
    object.peel_to_commit().ok().map(|c| c.id())
}

fn merge_base(repo: &Repo, base: Oid, head: Oid, how: &str) -> Base {
    let shallow =
        || Base::Missing { why: format!("the clone is shallow and holds no common ancestor of {base:.10} and head") };
    match repo.git.merge_base(base, head) {
        // In a shallow clone a merge-base found across the cut history is not to be trusted
        // (libgit2 can answer with one tip): the history down to it must be complete.
        Ok(commit) if crosses_shallow_cut(repo, &[base, head], commit) => shallow(),
        Ok(commit) => Base::Found { commit, how: how.to_string() },
        Err(_) if repo.git.is_shallow() => shallow(),
        Err(_) => Base::Missing { why: format!("{base:.10} and head have no common history") },
    }
}

/// True when walking from `tips` down to `merge_base` meets a commit whose parents a shallow
/// clone cut off (listed in `.git/shallow`); errors count as true.
fn crosses_shallow_cut(repo: &Repo, tips: &[Oid], merge_base: Oid) -> bool {
    if !repo.git.is_shallow() {
        return false;
    }
    let cut: std::collections::HashSet<Oid> = std::fs::read_to_string(repo.git.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect();
    let walk = || -> Result<bool, git2::Error> {
        let mut walk = repo.git.revwalk()?;
        for tip in tips {
            walk.push(*tip)?;
        }
        walk.hide(merge_base)?;
        for oid in walk {
            if cut.contains(&oid?) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    walk().unwrap_or(true)
}

/// What the tool uses of a GitHub event payload.
struct Event {
    before: Option<String>,
    default_branch: Option<String>,
}

fn read_event(path: &std::path::Path) -> Result<Event> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the GitHub event at {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parsing the GitHub event at {} as JSON", path.display()))?;
    Ok(Event {
        before: json["before"].as_str().map(str::to_string),
        default_branch: json["repository"]["default_branch"].as_str().map(str::to_string),
    })
}

/// The help for a base that cannot be resolved.
pub(crate) const MISSING_BASE_HELP: &str =
    "fetch enough history (GitHub Actions: actions/checkout with `fetch-depth: 0`; \
     elsewhere `git fetch --unshallow origin`), or pass --base REV, or --on-missing-base=all to plan every workflow";

/// The branch deployed: the CI branch, else the branch `head` names (or that is checked
/// out, for `HEAD`). `None` for a detached HEAD or a commit outside CI.
pub(crate) fn branch(repo: &Repo, head: &str, ci: &CiContext) -> Option<String> {
    if let Some(b) = ci.branch() {
        return Some(b.to_string());
    }
    if head == "HEAD" {
        let r = repo.git.head().ok()?;
        return if r.is_branch() { r.shorthand().map(str::to_string) } else { None };
    }
    let name = head.strip_prefix("refs/heads/").unwrap_or(head);
    repo.git.find_branch(name, git2::BranchType::Local).ok().map(|_| name.to_string())
}

/// The domain a plan goes to: `--domain` (which must be declared), else by the branch
/// patterns of deploy.toml; without a branch (detached HEAD outside CI), `development`,
/// with a note saying so.
pub(crate) fn resolve_domain<'c>(
    config: &'c Config,
    flag: Option<&str>,
    branch: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<&'c Domain> {
    let declared = || config.domains.iter().map(|d| d.name.value.as_str()).collect::<Vec<_>>().join(", ");
    if let Some(name) = flag {
        return config.domain(name).ok_or_else(|| {
            error::user(
                format!("--domain '{name}' is not a domain of {}", config.file.display()),
                format!("use one of: {}", declared()),
            )
        });
    }
    let Some(branch) = branch else {
        notes.push("detached HEAD and no CI branch: domain development".into());
        return config.domain("development").ok_or_else(|| {
            error::user(
                "detached HEAD and no CI branch, and no domain 'development' is declared",
                format!("pass --domain (one of: {})", declared()),
            )
        });
    };
    config.domain_for_branch(branch)?.ok_or_else(|| {
        error::user(
            format!("branch '{branch}' matches no domain's `branches` in {}", config.file.display()),
            format!("add a pattern for it to a [[domains]] table, or pass --domain (one of: {})", declared()),
        )
    })
}
