//! Fingerprints and versions: the content addresses of a workflow at a commit (code,
//! dependencies, settings), its image reference and its version. Pure hashing over git tree
//! entries, dependency-file contents and settings; writes nothing, runs no programs.
//!
//! - code: [`CodeSet::hash`] (paths, modes, blob ids; no file contents).
//! - deps: sha256 over each dependency file's repository path and normalised content
//!   ([`deps::normalised`]), then the Dockerfile's base image references (`FROM` lines).
//!   The image tag is its first [`IMAGE_TAG_LEN`] hex characters.
//! - environment: [`Environment::hash`], the flytekit version that serializes the specs and
//!   the normalised content of the dependency files installed into its environment.
//! - settings: sha256 of a canonical JSON (sorted keys) of the workflow's project, the
//!   default image, its named images (`--image NAME=URI`), and the settings of
//!   EVERY declared domain (name → settings). Every domain, not only the one deployed to:
//!   promotion registers the same version in the next domain, so a change to any domain's
//!   settings must make a new version, or that domain would meet the old version with other
//!   settings baked in and FlyteAdmin would refuse it as a "different structure".
//! - version, scheme `content`: the first [`VERSION_LEN`] hex characters of sha256 over
//!   the code, image, settings and environment fields, each named (domain-separated).
//! - version, scheme `git-sha`: the newest commit on the first-parent line from the head
//!   whose tree changed any input of the workflow (its folder, shared paths, global paths,
//!   deploy.toml, its Dockerfile): walking first parents, the last commit whose inputs'
//!   tree entries still equal the head's. An unrelated commit gives no new version. Short
//!   length [`DEFAULT_SHA_LEN`], changed with the `FLYTE_DEPLOY_SHA_LENGTH` environment
//!   variable (7 to 40).
//! - `--dirty`: the content version of the working tree's tracked files, suffixed `-dirty`
//!   (whatever the scheme: a commit SHA cannot name uncommitted content).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use git2::Oid;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::artifacts::codeset::CodeSet;
use crate::config::{Config, VersionScheme, DEPLOY_TOML};
use crate::error;
use crate::workspace::deps;
use crate::workspace::repo::Repo;
use crate::workspace::requirements::Environment;
use crate::workspace::source::{GitTree, Source, WorkDir};
use crate::workspace::{Workflow, Workspace};

/// Hex characters of a content version.
pub const VERSION_LEN: usize = 20;
/// Hex characters of an image tag (a prefix of the dependency fingerprint).
pub const IMAGE_TAG_LEN: usize = 16;
/// Default length of a `git-sha` version.
pub const DEFAULT_SHA_LEN: usize = 12;
/// Environment variable changing the length of `git-sha` versions.
pub const SHA_LEN_VAR: crate::settings::Var = crate::settings::FLYTE_DEPLOY_SHA_LENGTH;
/// Suffix of versions made from uncommitted work.
pub const DIRTY_SUFFIX: &str = "-dirty";

/// The content addresses of one workflow at one state of the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// sha256 hex of the code set's entries.
    pub code: String,
    /// sha256 hex of the dependency files and base images.
    pub deps: String,
    /// sha256 hex of the canonical settings JSON.
    pub settings: String,
    /// The image reference the workflow's tasks run in.
    pub image: String,
    /// sha256 hex of the serialization environment (flytekit and dependency files).
    pub environment: String,
    /// The version registered entities get.
    pub version: String,
}

/// The fingerprint of `wf` at `commit`; `ws` must be the workspace loaded from that commit.
pub fn fingerprint(repo: &Repo, commit: &git2::Commit<'_>, ws: &Workspace, wf: &Workflow) -> Result<Fingerprint> {
    let tree = GitTree::at_commit(&repo.git, commit)?;
    let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
    of_commit(commit, &tree, &set, &ws.config, wf)
}

/// The fingerprint of `wf` at `commit` from its already built code set; `config` is the
/// commit's configuration.
pub fn of_commit(
    commit: &git2::Commit<'_>,
    tree: &GitTree<'_>,
    set: &CodeSet,
    config: &Config,
    wf: &Workflow,
) -> Result<Fingerprint> {
    let parts = Parts::new(set, tree, config, wf)?;
    let version = match config.version_scheme {
        VersionScheme::Content => parts.content_version(),
        VersionScheme::GitSha => {
            let changed = last_input_change(commit, config, wf)?;
            changed.to_string()[..sha_len()?].to_string()
        }
    };
    Ok(parts.into_fingerprint(version))
}

/// The fingerprint of `wf` from the working tree's tracked files (`--dirty`); `ws` must be
/// loaded from the working tree. The version ends in [`DIRTY_SUFFIX`].
pub fn fingerprint_dirty(repo: &Repo, ws: &Workspace, wf: &Workflow) -> Result<(CodeSet, Fingerprint)> {
    let set = CodeSet::work_tree(&repo.git, &repo.root, wf)?;
    let parts = Parts::new(&set, &WorkDir::new(&repo.root), &ws.config, wf)?;
    let version = format!("{}{DIRTY_SUFFIX}", parts.content_version());
    Ok((set, parts.into_fingerprint(version)))
}

/// The only domain uncommitted work may be deployed to.
pub const DIRTY_DOMAIN: &str = "development";

/// Refuses a `-dirty` version for any domain but [`DIRTY_DOMAIN`].
pub fn check_dirty_allowed(domain: &str) -> Result<()> {
    if domain == DIRTY_DOMAIN {
        Ok(())
    } else {
        Err(error::user(
            format!("--dirty deploys uncommitted work, which only the {DIRTY_DOMAIN} domain takes (not '{domain}')"),
            "commit your changes and deploy without --dirty",
        ))
    }
}

/// Code, dependency and settings fingerprints and the image, before the version.
struct Parts {
    code: String,
    deps: String,
    settings: String,
    image: String,
    environment: String,
}

impl Parts {
    fn new(set: &CodeSet, source: &dyn Source, config: &Config, wf: &Workflow) -> Result<Parts> {
        let deps = deps_hash(source, wf)?;
        let image = image_reference(config, wf, &deps);
        let environment = Environment::of(source, config, wf)?.hash;
        Ok(Parts { code: set.hash(), settings: settings_hash(config, wf), deps, image, environment })
    }

    fn content_version(&self) -> String {
        content_version(&self.code, &self.image, &self.settings, &self.environment)
    }

    fn into_fingerprint(self, version: String) -> Fingerprint {
        Fingerprint {
            code: self.code,
            deps: self.deps,
            settings: self.settings,
            image: self.image,
            environment: self.environment,
            version,
        }
    }
}

/// The `content` version of a code fingerprint, an image, a settings fingerprint and an
/// environment hash.
pub fn content_version(code: &str, image: &str, settings: &str, environment: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"flyte-deploy version v2\n");
    for (name, value) in [("code", code), ("image", image), ("settings", settings), ("environment", environment)] {
        field(&mut h, name, value.as_bytes());
    }
    hex::encode(h.finalize())[..VERSION_LEN].to_string()
}

/// A named, length-prefixed field: no two different field lists hash alike.
fn field(h: &mut Sha256, name: &str, value: &[u8]) {
    h.update(name.as_bytes());
    h.update(format!("\0{}\0", value.len()).as_bytes());
    h.update(value);
    h.update(b"\n");
}

/// The dependency fingerprint: each dependency file's path and normalised content, then the
/// Dockerfile's base image references.
pub fn deps_hash(source: &dyn Source, wf: &Workflow) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"flyte-deploy dependencies v1\n");
    let mut files = wf.dependencies.clone();
    files.sort();
    files.dedup();
    for path in &files {
        let bytes = source.read(path)?.with_context(|| format!("reading {path} in {}", source.describe()))?;
        field(&mut h, "path", path.as_bytes());
        field(&mut h, "content", &deps::normalised(path.as_bytes(), &bytes));
    }
    if let Some(dockerfile) = &wf.dockerfile {
        let bytes =
            source.read(dockerfile)?.with_context(|| format!("reading {dockerfile} in {}", source.describe()))?;
        for base in base_images(&String::from_utf8_lossy(&bytes)) {
            field(&mut h, "from", base.as_bytes());
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The image references of a Dockerfile's `FROM` lines (flags and `AS name` left out).
pub fn base_images(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if !words.next()?.eq_ignore_ascii_case("FROM") {
                return None;
            }
            words.find(|w| !w.starts_with("--")).map(str::to_string)
        })
        .collect()
}

/// `<registry>/<workflow>:<tag>` for a workflow with its own Dockerfile, else the default.
pub fn image_reference(config: &Config, wf: &Workflow, deps: &str) -> String {
    if wf.dockerfile.is_some() {
        format!("{}/{}:{}", config.images.registry.trim_end_matches('/'), wf.name, &deps[..IMAGE_TAG_LEN])
    } else {
        config.images.default.clone()
    }
}

/// The canonical settings JSON (sorted keys, no spaces) of what reaches the specs.
pub fn settings_json(config: &Config, wf: &Workflow) -> String {
    let domains: BTreeMap<&str, Value> = config
        .domains
        .iter()
        .map(|d| (d.name.value.as_str(), serde_json::to_value(&d.settings).unwrap_or(Value::Null)))
        .collect();
    let value = json!({
        "project": wf.project,
        "default_image": config.images.default,
        "images": wf.images,
        "domains": domains,
    });
    canonical(&value)
}

fn settings_hash(config: &Config, wf: &Workflow) -> String {
    hex::encode(Sha256::digest(settings_json(config, wf).as_bytes()))
}

/// JSON with object keys sorted at every level, whatever serde_json's map order is.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k.as_str()])))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The length of `git-sha` versions: [`SHA_LEN_VAR`] or [`DEFAULT_SHA_LEN`].
pub fn sha_len() -> Result<usize> {
    match SHA_LEN_VAR.get() {
        None => Ok(DEFAULT_SHA_LEN),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if (7..=40).contains(&n) => Ok(n),
            _ => Err(error::user(
                format!("{SHA_LEN_VAR}='{v}' is not a length from 7 to 40"),
                format!("unset it (default {DEFAULT_SHA_LEN}) or give a number from 7 to 40"),
            )),
        },
    }
}

/// The repository paths whose tree entries make up the workflow's inputs.
fn input_paths(config: &Config, wf: &Workflow) -> Vec<String> {
    let mut paths = vec![wf.path.clone(), DEPLOY_TOML.to_string()];
    paths.extend(wf.shared.iter().cloned());
    paths.extend(config.global.iter().filter_map(|g| crate::config::normalise(&g.value)));
    paths.extend(wf.dockerfile.iter().cloned());
    paths.sort();
    paths.dedup();
    paths
}

/// The newest commit, walking first parents from `head`, at which the workflow's inputs
/// became what they are at `head`. In a shallow clone whose history ends before that commit
/// is found, the answer would depend on the clone's depth: that is a user error saying how
/// to fetch enough history.
pub fn last_input_change(head: &git2::Commit<'_>, config: &Config, wf: &Workflow) -> Result<Oid> {
    let paths = input_paths(config, wf);
    let inputs = |c: &git2::Commit<'_>| -> Result<Vec<Option<(Oid, i32)>>> {
        let tree = c.tree().with_context(|| format!("reading the tree of commit {}", c.id()))?;
        paths
            .iter()
            .map(|p| match tree.get_path(std::path::Path::new(p)) {
                Ok(e) => Ok(Some((e.id(), e.filemode()))),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading '{p}' in commit {}", c.id())),
            })
            .collect()
    };
    let at_head = inputs(head)?;
    let mut current = head.clone();
    loop {
        match current.parent(0) {
            Ok(parent) if inputs(&parent)? == at_head => current = parent,
            Ok(_) => return Ok(current.id()),
            Err(_) if has_parent(&current) => {
                return Err(error::user(
                    format!(
                        "the git-sha version of '{}' is the last commit that changed its inputs, and this shallow \
                         clone's history ends at {:.10} before reaching it: another clone depth would give \
                         another version",
                        wf.name,
                        current.id()
                    ),
                    "fetch the whole history (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout), \
                     or use version_scheme = \"content\", which does not depend on history",
                ))
            }
            // The root commit: the inputs have been what they are since the beginning.
            Err(_) => return Ok(current.id()),
        }
    }
}

/// True when the commit object names a parent (which a shallow clone may not have).
fn has_parent(commit: &git2::Commit<'_>) -> bool {
    commit.raw_header_bytes().split(|b| *b == b'\n').any(|line| line.starts_with(b"parent "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::codeset::fixture::Fixture;

    const TWO_DOMAINS: &str = "[[domains]]\nname = \"development\"\nbranches = [\"*\"]\n\
        [[domains]]\nname = \"production\"\nbranches = [\"main\"]\n[domains.settings]\nservice_account = \"p\"\n";

    #[test]
    fn any_domain_settings_change_the_version() {
        let f = Fixture::new();
        f.write("deploy.toml", TWO_DOMAINS);
        let a = f.fingerprint("a").unwrap();
        f.write("deploy.toml", &TWO_DOMAINS.replace("\"p\"", "\"q\""));
        let b = f.fingerprint("a").unwrap();
        assert_eq!(a.code, b.code);
        assert_ne!(a.settings, b.settings);
        assert_ne!(a.version, b.version);
        // Branch patterns do not reach the specs.
        f.write("deploy.toml", &TWO_DOMAINS.replace("\"p\"", "\"q\"").replace("\"main\"", "\"release\""));
        assert_eq!(f.fingerprint("a").unwrap().version, b.version);
    }

    #[test]
    fn image_follows_normalised_dependencies() {
        let f = Fixture::new();
        let plain = f.fingerprint("a").unwrap();
        assert_eq!(plain.image, crate::config::DEFAULT_IMAGE);
        f.write("workflows/a/Dockerfile", "FROM python:3.11\n");
        f.write("workflows/a/requirements.txt", "pandas\n");
        let built = f.fingerprint("a").unwrap();
        assert_eq!(built.image, format!("localhost:5000/flyte/a:{}", &built.deps[..IMAGE_TAG_LEN]));
        assert_eq!(built.code, plain.code, "dependency files are not code");
        assert_ne!(built.version, plain.version, "the image is part of the version");
        f.write("workflows/a/requirements.txt", "# pinned\npandas   \n\n");
        assert_eq!(f.fingerprint("a").unwrap().image, built.image);
        f.write("workflows/a/requirements.txt", "pandas==2\n");
        assert_ne!(f.fingerprint("a").unwrap().image, built.image);
    }

    #[test]
    fn git_sha_is_the_last_commit_changing_inputs() {
        let f = Fixture::new();
        f.write("deploy.toml", "version_scheme = \"git-sha\"\n");
        f.write("workflows/b/b/__init__.py", "");
        let first = f.fingerprint("a").unwrap();
        assert_eq!(first.version.len(), DEFAULT_SHA_LEN);
        f.write("workflows/b/b/__init__.py", "y = 1\n");
        f.write("README", "x");
        assert_eq!(f.fingerprint("a").unwrap().version, first.version, "unrelated commits");
        let b = f.fingerprint("b").unwrap();
        assert_ne!(b.version, first.version);
        f.write("workflows/a/a/wf.py", "x = 3\n");
        let changed = f.fingerprint("a").unwrap();
        assert_ne!(changed.version, first.version);
        let head = std::process::Command::new("git").current_dir(f.dir.path()).args(["rev-parse", "HEAD"]).output();
        assert!(String::from_utf8(head.unwrap().stdout).unwrap().starts_with(&changed.version));
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": {"y": 1, "x": [ {"d": 1, "c": 2} ]}, "a": "s"});
        assert_eq!(canonical(&v), r#"{"a":"s","b":{"x":[{"c":2,"d":1}],"y":1}}"#);
    }

    #[test]
    fn version_fields_are_separated() {
        let a = content_version("ab", "c", "d", "e");
        let b = content_version("a", "bc", "d", "e");
        assert_ne!(a, b);
        assert_eq!(a.len(), VERSION_LEN);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn from_lines() {
        let d = "# x\nFROM --platform=linux/amd64 python:3.11-slim AS base\nRUN x\nfrom base\nFROM \\\n  scratch\n";
        assert_eq!(base_images(d), ["python:3.11-slim", "base", "scratch"]);
    }
}
