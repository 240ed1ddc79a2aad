//! The sandbox's state in SQLite under its data directory: projects, registered entities
//! (spec bytes exactly as received), launch-plan states, project-domain attributes, and
//! where uploaded archives live. Storage only: FlyteAdmin's rules are applied by the service.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use flyte_api::Kind;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// Identifies one registered entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub kind: Kind,
    pub project: String,
    pub domain: String,
    pub name: String,
    pub version: String,
}

/// An entity as stored.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub key: Key,
    /// The spec bytes exactly as the create request carried them.
    pub spec: Vec<u8>,
    /// Nanoseconds since the Unix epoch (rows written before nanoseconds were kept hold
    /// seconds; they are read as whole seconds).
    pub created_at: i64,
    /// Launch plans only: true when ACTIVE.
    pub active: bool,
}

/// What an insert found.
#[derive(Debug)]
pub(crate) enum Inserted {
    New,
    /// An entity with this key was there already; its spec bytes.
    Existing(Vec<u8>),
}

/// A registered project.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// The sandbox's state. One connection behind a mutex: every operation is a short
/// transaction, committed before it returns (a killed sandbox keeps what it answered).
pub(crate) struct Store {
    conn: Mutex<Connection>,
    uploads: PathBuf,
    secret: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entities (
  kind INTEGER NOT NULL, project TEXT NOT NULL, domain TEXT NOT NULL, name TEXT NOT NULL,
  version TEXT NOT NULL, spec BLOB NOT NULL, created_at INTEGER NOT NULL,
  active INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (kind, project, domain, name, version));
CREATE TABLE IF NOT EXISTS attributes (
  project TEXT NOT NULL, domain TEXT NOT NULL, resource_type INTEGER NOT NULL,
  attributes BLOB NOT NULL, PRIMARY KEY (project, domain, resource_type));
";

impl Store {
    /// Opens (creating when missing) the state under `data`.
    pub(crate) fn open(data: &Path) -> Result<Store> {
        std::fs::create_dir_all(data).with_context(|| format!("creating the sandbox data dir {}", data.display()))?;
        let db = data.join(crate::DATABASE);
        let mut conn = Connection::open(&db).with_context(|| format!("opening {}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Several processes may open a new store at once (concurrent deploys of one clone):
        // switching to WAL takes the file's exclusive lock, and SQLite answers BUSY there
        // without waiting, so it is retried for as long as the busy timeout.
        let started = std::time::Instant::now();
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(e) if is_busy(&e) && started.elapsed() < std::time::Duration::from_secs(10) => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.with_context(|| format!("setting WAL on {}", db.display()))?,
            }
        }
        // WAL with NORMAL sync: a commit survives the process being killed (what the
        // sandbox must survive), without an fsync per create.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .with_context(|| format!("setting sync on {}", db.display()))?;
        // The schema and the upload secret in one IMMEDIATE transaction: the write lock is
        // taken (waiting) before anything is read, so concurrent opens take turns.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA).with_context(|| format!("creating the schema in {}", db.display()))?;
        let secret: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = 'secret'", [], |r| r.get(0)).optional()?;
        let secret = match secret {
            Some(s) => s,
            None => {
                let fresh = fresh_secret();
                tx.execute("INSERT INTO meta (key, value) VALUES ('secret', ?1)", [&fresh])?;
                fresh
            }
        };
        tx.commit().with_context(|| format!("creating the schema in {}", db.display()))?;
        Ok(Store { conn: Mutex::new(conn), uploads: data.join("uploads"), secret })
    }

    /// The key that signs upload URLs (kept in the database, so URLs survive restarts).
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }

    /// Where an uploaded archive lives on disk.
    pub(crate) fn upload_path(&self, project: &str, domain: &str, root: &str, filename: &str) -> PathBuf {
        self.uploads.join(project).join(domain).join(root).join(filename)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn project(&self, id: &str) -> Result<Option<Project>> {
        Ok(self
            .conn()
            .query_row("SELECT id, name, description FROM projects WHERE id = ?1", [id], |r| {
                Ok(Project { id: r.get(0)?, name: r.get(1)?, description: r.get(2)? })
            })
            .optional()?)
    }

    /// Registers a project; false when it existed already.
    pub(crate) fn register_project(&self, project: &Project) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO projects (id, name, description) VALUES (?1, ?2, ?3)",
            params![project.id, project.name, project.description],
        )?;
        Ok(n == 1)
    }

    pub(crate) fn projects(&self) -> Result<Vec<Project>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, name, description FROM projects ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok(Project { id: r.get(0)?, name: r.get(1)?, description: r.get(2)? }))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Inserts an entity unless its key exists; says which happened, atomically.
    pub(crate) fn insert(&self, key: &Key, spec: &[u8]) -> Result<Inserted> {
        let mut conn = self.conn();
        // IMMEDIATE: the write lock is taken (waiting up to the busy timeout) before the
        // read, so another process's commit between the read and the write cannot make
        // the write fail with `database is locked` (a deferred read cannot be upgraded).
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<Vec<u8>> = tx
            .query_row(
                "SELECT spec FROM entities WHERE kind=?1 AND project=?2 AND domain=?3 AND name=?4 AND version=?5",
                params![key.kind.resource_type(), key.project, key.domain, key.name, key.version],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(spec) = existing {
            return Ok(Inserted::Existing(spec));
        }
        tx.execute(
            "INSERT INTO entities (kind, project, domain, name, version, spec, created_at, active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
            params![key.kind.resource_type(), key.project, key.domain, key.name, key.version, spec, now()],
        )?;
        tx.commit()?;
        Ok(Inserted::New)
    }

    pub(crate) fn get(&self, key: &Key) -> Result<Option<Stored>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT spec, created_at, active FROM entities
                 WHERE kind=?1 AND project=?2 AND domain=?3 AND name=?4 AND version=?5",
                params![key.kind.resource_type(), key.project, key.domain, key.name, key.version],
                |r| Ok(Stored { key: key.clone(), spec: r.get(0)?, created_at: nanos(r.get(1)?), active: r.get(2)? }),
            )
            .optional()?)
    }

    /// Every version of the entities of a kind in a project and domain (of one name when
    /// given), newest first; only the active ones when `active_only`.
    pub(crate) fn list(
        &self,
        kind: Kind,
        project: &str,
        domain: &str,
        name: Option<&str>,
        active_only: bool,
    ) -> Result<Vec<Stored>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT name, version, spec, created_at, active FROM entities
             WHERE kind=?1 AND project=?2 AND domain=?3 AND (?4 IS NULL OR name=?4) AND (?5 = 0 OR active = 1)
             ORDER BY created_at DESC, name, version",
        )?;
        let rows = stmt.query_map(params![kind.resource_type(), project, domain, name, active_only], |r| {
            Ok(Stored {
                key: Key {
                    kind,
                    project: project.to_string(),
                    domain: domain.to_string(),
                    name: r.get(0)?,
                    version: r.get(1)?,
                },
                spec: r.get(2)?,
                created_at: nanos(r.get(3)?),
                active: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The distinct names of a kind in a project and domain, sorted.
    pub(crate) fn names(&self, kind: Kind, project: &str, domain: &str) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT DISTINCT name FROM entities WHERE kind=?1 AND project=?2 AND domain=?3 ORDER BY name")?;
        let rows = stmt.query_map(params![kind.resource_type(), project, domain], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Sets a launch plan's state. Activating deactivates every other version of the same
    /// name, in one transaction. False when the launch plan does not exist.
    pub(crate) fn set_launch_plan_active(&self, key: &Key, active: bool) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if active {
            tx.execute(
                "UPDATE entities SET active = 0 WHERE kind=?1 AND project=?2 AND domain=?3 AND name=?4 AND version<>?5",
                params![Kind::LaunchPlan.resource_type(), key.project, key.domain, key.name, key.version],
            )?;
        }
        let n = tx.execute(
            "UPDATE entities SET active = ?6 WHERE kind=?1 AND project=?2 AND domain=?3 AND name=?4 AND version=?5",
            params![Kind::LaunchPlan.resource_type(), key.project, key.domain, key.name, key.version, active],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.commit()?;
        Ok(true)
    }

    /// Stores a `ProjectDomainAttributes` message (bytes as received) for one resource type.
    pub(crate) fn set_attributes(
        &self,
        project: &str,
        domain: &str,
        resource_type: i32,
        attributes: &[u8],
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO attributes (project, domain, resource_type, attributes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, domain, resource_type) DO UPDATE SET attributes = excluded.attributes",
            params![project, domain, resource_type, attributes],
        )?;
        Ok(())
    }

    pub(crate) fn attributes(&self, project: &str, domain: &str, resource_type: i32) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT attributes FROM attributes WHERE project=?1 AND domain=?2 AND resource_type=?3",
                params![project, domain, resource_type],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// Nanoseconds since the Unix epoch: two versions registered a millisecond apart are
/// ordered (as FlyteAdmin's timestamps order them).
fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// A stored time in nanoseconds: values below 10^12 were written as seconds.
fn nanos(stored: i64) -> i64 {
    if stored < 1_000_000_000_000 {
        stored.saturating_mul(1_000_000_000)
    } else {
        stored
    }
}

fn fresh_secret() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(format!("{:?}{}", SystemTime::now(), std::process::id()));
    let stack = 0u8;
    hasher.update(format!("{:p}", &stack));
    hex::encode(hasher.finalize())
}

/// SQLite's BUSY or LOCKED: another connection holds the lock asked for.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(version: &str) -> Key {
        Key {
            kind: Kind::LaunchPlan,
            project: "p".into(),
            domain: "development".into(),
            name: "lp".into(),
            version: version.into(),
        }
    }

    #[test]
    fn state_survives_reopening_and_activation_moves() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert!(matches!(store.insert(&key("v1"), b"one").unwrap(), Inserted::New));
            assert!(matches!(store.insert(&key("v2"), b"two").unwrap(), Inserted::New));
            assert!(store.set_launch_plan_active(&key("v1"), true).unwrap());
            assert!(store.set_launch_plan_active(&key("v2"), true).unwrap());
            assert!(!store.set_launch_plan_active(&key("v3"), true).unwrap());
        }
        let store = Store::open(dir.path()).unwrap();
        match store.insert(&key("v1"), b"changed").unwrap() {
            Inserted::Existing(spec) => assert_eq!(spec, b"one"),
            Inserted::New => panic!("v1 was stored before reopening"),
        }
        assert!(!store.get(&key("v1")).unwrap().unwrap().active);
        assert!(store.get(&key("v2")).unwrap().unwrap().active);
        let active = store.list(Kind::LaunchPlan, "p", "development", Some("lp"), true).unwrap();
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].key.version, "v2");
    }

    /// Many processes' sandboxes on one data directory (concurrent deploys from one clone
    /// with the embedded sandbox): every insert and activation succeeds, none is lost.
    #[test]
    fn concurrent_stores_on_one_directory_lose_no_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let store = Store::open(&path).unwrap();
                    for i in 0..40 {
                        let mine = Key { name: format!("lp{w}"), ..key(&format!("v{i}")) };
                        assert!(matches!(store.insert(&mine, b"spec").unwrap(), Inserted::New));
                        // Every writer also races for one shared key: one creates it.
                        store.insert(&key(&format!("shared{i}")), b"spec").unwrap();
                        assert!(store.set_launch_plan_active(&mine, true).unwrap());
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer failed");
        }
        let store = Store::open(&path).unwrap();
        for w in 0..8 {
            let all = store.list(Kind::LaunchPlan, "p", "development", Some(&format!("lp{w}")), false).unwrap();
            assert_eq!(all.len(), 40, "writer {w}'s launch plans");
            let active = store.list(Kind::LaunchPlan, "p", "development", Some(&format!("lp{w}")), true).unwrap();
            assert_eq!(active.len(), 1, "writer {w}: one active version");
        }
        assert_eq!(store.list(Kind::LaunchPlan, "p", "development", Some("lp"), false).unwrap().len(), 40);
    }
}
