//! The record of what was registered where, from which commit: one `Record` per workflow
//! per deploy or promotion. Stored as git notes under `refs/notes/flyte-deploy` on the
//! deployed commit (for a remote FlyteAdmin; CI pushes them) or, for the embedded sandbox,
//! in a records database of their own beside its data (never in the sandbox's database).
//! Owns the record's shape and the notes format; decides nothing about deploying.

use anyhow::{Context, Result};
use git2::{Oid, Repository};
use serde::{Deserialize, Serialize};

use crate::settings;

/// The notes ref deploy records live under.
pub const NOTES_REF: &str = "refs/notes/flyte-deploy";

/// One workflow registered (or not) into one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The deployed commit (40 hex).
    pub commit: String,
    pub workflow: String,
    pub domain: String,
    pub version: String,
    pub image: String,
    /// Who ran it: the CI actor, else the git user, else the login name.
    pub actor: String,
    /// RFC 3339, UTC, seconds.
    pub time: String,
    /// As in deploy JSON (registered, already-registered, deactivated, skipped, failed), or
    /// `rolled-back` (`rollback` made this version the active one again).
    pub outcome: String,
    /// For a promotion: the domain the version came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// Names of the workflow's launch plans at this version: what a later run checks
    /// for completeness, and what removal deactivates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launch_plans: Vec<String>,
}

/// Now, as a record time.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Who is deploying: `GITHUB_ACTOR`, `GITLAB_USER_LOGIN`, the git user's email, or `USER`.
pub fn actor(repo: &Repository) -> String {
    for var in [settings::GITHUB_ACTOR, settings::GITLAB_USER_LOGIN] {
        if let Some(v) = var.get() {
            return v;
        }
    }
    if let Ok(email) = repo.config().and_then(|c| c.get_string("user.email")) {
        return email;
    }
    settings::USER.get().unwrap_or_else(|| "unknown".into())
}

/// The outcome of a record written by `rollback`.
pub const ROLLED_BACK: &str = "rolled-back";

/// True when the record says its version reached its domain (so the domain had it).
pub fn reached(r: &Record) -> bool {
    matches!(r.outcome.as_str(), "registered" | "already-registered" | ROLLED_BACK)
}

/// Appends records to the note of `commit` (one JSON object a line), keeping what is there.
/// Read, append and write happen under a lock file in the git directory, so concurrent
/// deploys from one clone never overwrite each other's notes.
pub fn append_notes(repo: &Repository, commit: Oid, records: &[Record]) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let lock_path = repo.commondir().join("flyte-deploy-notes.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    // A handle opened now sees the notes ref as the last writer left it.
    let repo = Repository::open(repo.path()).context("reopening the repository for its notes")?;
    let mut text = match repo.find_note(Some(NOTES_REF), commit) {
        Ok(note) => note.message().unwrap_or_default().to_string(),
        Err(_) => String::new(),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for r in records {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("flyte-deploy", "flyte-deploy@localhost"))
        .context("making a signature for the deploy note")?;
    repo.note(&sig, &sig, Some(NOTES_REF), commit, &text, true)
        .with_context(|| format!("writing the deploy note on commit {commit} ({NOTES_REF})"))?;
    drop(lock);
    Ok(())
}

/// Where records go: deploys to the embedded sandbox keep them in `records.sqlite` in its
/// data folder (beside, not inside, the sandbox's own database, which is the server's
/// business); a remote FlyteAdmin (or a sandbox at an address) gets git notes.
#[derive(Debug, Clone)]
pub enum Store {
    /// The sandbox's data folder.
    Sandbox(std::path::PathBuf),
    Notes,
}

impl Store {
    /// The store for deploys to `address`.
    pub fn for_address(address: &crate::registration::admin::Address) -> Store {
        match address {
            crate::registration::admin::Address::Sandbox { data } => Store::Sandbox(data.clone()),
            crate::registration::admin::Address::Remote { .. } => Store::Notes,
        }
    }

    /// Appends records (each on its own commit's note, or as rows).
    pub fn append(&self, repo: &Repository, records: &[Record]) -> Result<()> {
        match self {
            Store::Notes => {
                let mut commits: Vec<&str> = records.iter().map(|r| r.commit.as_str()).collect();
                commits.sort();
                commits.dedup();
                for c in commits {
                    let oid = Oid::from_str(c).with_context(|| format!("commit id {c}"))?;
                    let mine: Vec<Record> = records.iter().filter(|r| r.commit == c).cloned().collect();
                    append_notes(repo, oid, &mine)?;
                }
                Ok(())
            }
            Store::Sandbox(data) => {
                let db = records_db(data)?;
                for r in records {
                    db.execute("INSERT INTO deploy_records (json) VALUES (?1)", [serde_json::to_string(r)?])
                        .context("writing a deploy record")?;
                }
                Ok(())
            }
        }
    }

    /// Every record of this store, oldest first.
    pub fn load(&self, repo: &Repository) -> Result<Vec<Record>> {
        let mut out = match self {
            Store::Notes => read_notes(repo)?,
            Store::Sandbox(data) => {
                if !data.join(RECORDS_DB).exists() {
                    return Ok(Vec::new());
                }
                let db = records_db(data)?;
                let mut stmt = db.prepare("SELECT json FROM deploy_records ORDER BY id")?;
                let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
                let mut out = Vec::new();
                for row in rows {
                    if let Ok(r) = serde_json::from_str::<Record>(&row?) {
                        out.push(r);
                    }
                }
                out
            }
        };
        out.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(out)
    }
}

/// The records database in the sandbox's data folder.
const RECORDS_DB: &str = "records.sqlite";

fn records_db(data: &std::path::Path) -> Result<rusqlite::Connection> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let path = data.join(RECORDS_DB);
    let open = || -> Result<rusqlite::Connection> {
        let db = rusqlite::Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS deploy_records (id INTEGER PRIMARY KEY AUTOINCREMENT, json TEXT NOT NULL);",
        )
        .context("creating the deploy records table")?;
        Ok(db)
    };
    open().map_err(|e| damaged(e, &path, "the embedded sandbox's deploy records"))
}

/// `err` as a user error when it says the SQLite file at `path` (holding `what`) is
/// damaged (not a database, or corrupt): nothing the tool can repair, and the user can
/// only move the sandbox's data aside. Any other error is returned as it was.
pub(crate) fn damaged(err: anyhow::Error, path: &std::path::Path, what: &str) -> anyhow::Error {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    let code = err.chain().find_map(|c| c.downcast_ref::<rusqlite::Error>()).and_then(|e| e.sqlite_error_code());
    if !matches!(code, Some(NotADatabase | DatabaseCorrupt)) {
        return err;
    }
    // Named from the repository root, where the sandbox's data lives.
    let shown = path.iter().collect::<Vec<_>>();
    let shown = shown.iter().rposition(|c| *c == ".flyte").map_or(path.to_path_buf(), |i| shown[i..].iter().collect());
    let folder = shown.parent().unwrap_or(&shown);
    crate::error::user(
        format!("{} ({what}) is damaged: {}", shown.display(), err.root_cause()),
        format!(
            "the embedded sandbox is a local convenience: move {} aside (or remove it) and run again, \
             which starts a fresh sandbox and registers everything anew",
            folder.display()
        ),
    )
}

/// When records are kept in git notes and this clone has no notes ref: the advice to fetch
/// it (a clone does not fetch notes unless asked).
pub fn missing_notes_hint(store: &Store, repo: &Repository) -> Option<String> {
    if !matches!(store, Store::Notes) || repo.find_reference(NOTES_REF).is_ok() {
        return None;
    }
    let remote = repo.remotes().ok().and_then(|r| r.iter().flatten().next().map(str::to_string));
    let remote = remote.unwrap_or_else(|| "origin".into());
    Some(format!(
        "this clone has no {NOTES_REF}, where deploy records live (git does not fetch notes by default): \
         fetch them with `git fetch {remote} {NOTES_REF}:{NOTES_REF}`"
    ))
}

/// Every record in the notes, in no particular order. Lines that are not records are skipped.
pub fn read_notes(repo: &Repository) -> Result<Vec<Record>> {
    let notes = match repo.notes(Some(NOTES_REF)) {
        Ok(n) => n,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context("reading the deploy notes"),
    };
    let mut out = Vec::new();
    for item in notes {
        let (_, annotated) = item.context("reading the deploy notes")?;
        let note = repo.find_note(Some(NOTES_REF), annotated).context("reading a deploy note")?;
        for line in note.message().unwrap_or_default().lines() {
            if let Ok(r) = serde_json::from_str::<Record>(line) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(workflow: &str, domain: &str) -> Record {
        Record {
            commit: "0".repeat(40),
            workflow: workflow.into(),
            domain: domain.into(),
            version: "v1".into(),
            image: "img".into(),
            actor: "me".into(),
            time: "2026-01-01T00:00:00Z".into(),
            outcome: "registered".into(),
            promoted_from: None,
            launch_plans: vec!["lp".into()],
        }
    }

    #[test]
    fn notes_accumulate_per_commit() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let commit = repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[]).unwrap();
        append_notes(&repo, commit, &[record("a", "development")]).unwrap();
        append_notes(&repo, commit, &[record("b", "staging")]).unwrap();
        let mut got = read_notes(&repo).unwrap();
        got.sort_by(|x, y| x.workflow.cmp(&y.workflow));
        assert_eq!(got, vec![record("a", "development"), record("b", "staging")]);
    }

    #[test]
    fn concurrent_appends_to_the_notes_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = repo.find_tree(repo.index().unwrap().write_tree().unwrap()).unwrap();
        let commit = repo.commit(Some("HEAD"), &sig, &sig, "c", &tree, &[]).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let path = dir.path().to_path_buf();
                s.spawn(move || {
                    let repo = Repository::open(path).unwrap();
                    for i in 0..4 {
                        append_notes(&repo, commit, &[record(&format!("w{t}-{i}"), "development")]).unwrap();
                    }
                });
            }
        });
        assert_eq!(read_notes(&repo).unwrap().len(), 32);
    }

    #[test]
    fn concurrent_sandbox_records_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path().join("repo")).unwrap();
        let data = dir.path().join("sandbox");
        std::thread::scope(|s| {
            for t in 0..8 {
                let (data, path) = (data.clone(), repo.path().to_path_buf());
                s.spawn(move || {
                    let repo = Repository::open(path).unwrap();
                    for i in 0..4 {
                        Store::Sandbox(data.clone()).append(&repo, &[record(&format!("w{t}-{i}"), "d")]).unwrap();
                    }
                });
            }
        });
        assert_eq!(Store::Sandbox(data).load(&repo).unwrap().len(), 32);
    }

    #[test]
    fn sandbox_records_live_in_their_own_database() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path().join("repo")).unwrap();
        let data = dir.path().join("sandbox");
        let store = Store::Sandbox(data.clone());
        store.append(&repo, &[record("a", "development")]).unwrap();
        store.append(&repo, &[record("b", "development")]).unwrap();
        let got: Vec<String> = store.load(&repo).unwrap().into_iter().map(|r| r.workflow).collect();
        assert_eq!(got, ["a", "b"]);
        let files: Vec<String> =
            std::fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(files, [RECORDS_DB], "nothing of the sandbox's own state is touched");
    }
}
