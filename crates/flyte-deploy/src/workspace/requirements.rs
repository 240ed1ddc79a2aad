//! A workflow's serialization environment as data: which of its dependency files install
//! into it (pip requirement files, `pyproject.toml`, `uv.lock`, at the folder's root), the
//! flytekit version it gets, and the environment hash that names it. Pure: reads files only
//! through a `Source`, builds nothing (`environment.rs` builds).
//!
//! flytekit: an exact pin in the files (`flytekit==X`, or the `uv.lock` entry) is the
//! workflow's own; otherwise `[python] flytekit` is added as `flytekit==X`, so the flytekit
//! that serializes a workflow is always known from its files alone, before anything is
//! installed, and enters its version.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error;
use crate::workspace::deps;
use crate::workspace::source::Source;
use crate::workspace::Workflow;

/// One dependency file that installs into the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFile {
    /// The name relative to the workflow folder (`requirements.txt`).
    pub name: String,
    /// The repository path (`workflows/etl/requirements.txt`), for messages.
    pub path: String,
    /// The committed bytes.
    pub bytes: Vec<u8>,
    /// True for the files installed (`-r`); false for those they name (`-r`/`-c` inside).
    pub installed: bool,
}

/// What a workflow's serialization environment is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// The files installed, by name.
    pub files: Vec<EnvFile>,
    /// The flytekit version that serializes the workflow.
    pub flytekit: String,
    /// True when the files pin it; else `[python] flytekit` is added.
    pub pinned: bool,
    /// sha256 hex over the flytekit version and the files' normalised contents: equal for
    /// every workflow with the same dependency set, whatever its folder.
    pub hash: String,
}

impl Environment {
    /// The environment of `wf`, read from `source` (a commit's tree, or the working tree).
    pub fn of(source: &dyn Source, config: &Config, wf: &Workflow) -> Result<Environment> {
        let prefix = format!("{}/", wf.path);
        let mut files = Vec::new();
        for path in &wf.dependencies {
            let Some(name) = path.strip_prefix(&prefix) else { continue };
            if name.contains('/') || !installs(name, &wf.dependencies, &prefix) {
                continue;
            }
            let bytes = source.read(path)?.with_context(|| format!("reading {path} in {}", source.describe()))?;
            files.push(EnvFile { name: name.to_string(), path: path.clone(), bytes, installed: true });
        }
        // The files they name (`-r other.txt`, `-c constraints.txt`), at any depth.
        let mut i = 0;
        while i < files.len() {
            if deps::is_requirements(files[i].name.as_bytes()) || files[i].name.ends_with(".txt") {
                for (line, target) in references(&files[i].bytes) {
                    let from = files[i].path.clone();
                    let dir = from.rsplit_once('/').map_or("", |(d, _)| d);
                    let joined = resolve(dir, &target);
                    let Some(joined) = joined else {
                        return Err(error::user(
                            format!("{from}:{line}: '{target}' is outside the repository"),
                            "name requirement and constraint files inside the repository",
                        ));
                    };
                    if files.iter().any(|f| f.path == joined) {
                        continue;
                    }
                    // Outside the folder it must lie in a declared shared path: the diff and
                    // the versions cache see only the folder and those.
                    let under = |root: &str| joined.starts_with(&format!("{root}/"));
                    if !under(&wf.path) && !wf.shared.iter().any(|s| under(s)) {
                        return Err(error::user(
                            format!("{from}:{line}: '{target}' ({joined}) is outside the workflow folder"),
                            format!(
                                "add the folder that holds it to `shared` in {}/workflow.toml, so that its \
                                 changes reach this workflow",
                                wf.path
                            ),
                        ));
                    }
                    let Some(bytes) = source.read(&joined)? else {
                        return Err(error::user(
                            format!("{from}:{line}: '{target}' ({joined}) is not in {}", source.describe()),
                            "commit the file it names, or correct the reference",
                        ));
                    };
                    let name = joined.strip_prefix(&prefix).unwrap_or(&joined).to_string();
                    files.push(EnvFile { name, path: joined, bytes, installed: false });
                }
            }
            i += 1;
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let pin = files.iter().find_map(|f| flytekit_pin(&f.name, &f.bytes));
        let (flytekit, pinned) = match pin {
            Some(v) => (v, true),
            None => (config.python.flytekit.value.clone(), false),
        };
        let hash = environment_hash(&flytekit, &files);
        Ok(Environment { files, flytekit, pinned, hash })
    }

    /// The environment of a workflow without dependency files: flytekit `flytekit` alone.
    pub fn flytekit_only(flytekit: &str) -> Environment {
        let hash = environment_hash(flytekit, &[]);
        Environment { files: Vec::new(), flytekit: flytekit.to_string(), pinned: false, hash }
    }

    /// The requirement added to the files' own: `flytekit==X` unless they pin it.
    pub fn added_requirement(&self) -> Option<String> {
        (!self.pinned).then(|| format!("flytekit=={}", self.flytekit))
    }

    /// The files' repository paths, for messages (`(no dependency files)` when none).
    pub fn describe(&self) -> String {
        if self.files.is_empty() {
            format!("flytekit=={} (no dependency files)", self.flytekit)
        } else {
            self.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")
        }
    }
}

/// `target` relative to the folder `dir` (repository paths), `..` resolved; `None` when it
/// leaves the repository or is absolute.
fn resolve(dir: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains(['\\', '\0']) {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/")).filter(|p| !p.is_empty())
}

/// The files a requirements file names with `-r`/`--requirement`/`-c`/`--constraint`, with
/// their line numbers.
fn references(bytes: &[u8]) -> Vec<(usize, String)> {
    let text = String::from_utf8_lossy(bytes);
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        for flag in ["--requirement", "--constraint", "-r", "-c"] {
            let Some(rest) = line.strip_prefix(flag) else { continue };
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            if !(rest.starts_with(char::is_whitespace) || line.as_bytes().get(flag.len()) == Some(&b'=')) {
                continue;
            }
            if let Some(target) = rest.split_whitespace().next().filter(|t| !t.contains("://")) {
                found.push((n + 1, target.to_string()));
            }
            break;
        }
    }
    found
}

/// True when a root-level dependency file named `name` installs into the environment:
/// `requirements*.txt`; `requirements*.in` unless the `.txt` of the same stem (its compiled
/// lock) is there too; `pyproject.toml`; `uv.lock` next to a `pyproject.toml`.
fn installs(name: &str, all: &[String], prefix: &str) -> bool {
    let has = |other: &str| all.iter().any(|p| p.strip_prefix(prefix) == Some(other));
    if name.starts_with("requirements") && name.ends_with(".txt") {
        return true;
    }
    if let Some(stem) = name.strip_suffix(".in").filter(|_| name.starts_with("requirements")) {
        return !has(&format!("{stem}.txt"));
    }
    name == "pyproject.toml" || (name == "uv.lock" && has("pyproject.toml"))
}

fn environment_hash(flytekit: &str, files: &[EnvFile]) -> String {
    let mut h = Sha256::new();
    h.update(b"flyte-deploy environment v1\n");
    h.update(format!("flytekit\0{flytekit}\n").as_bytes());
    for f in files {
        let content = deps::normalised(f.name.as_bytes(), &f.bytes);
        h.update(format!("{}\0{}\0", f.name, content.len()).as_bytes());
        h.update(&content);
    }
    hex::encode(h.finalize())
}

/// The exact flytekit version a dependency file pins, if it does.
pub fn flytekit_pin(name: &str, bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    if name == "uv.lock" {
        return uv_lock_pin(&text);
    }
    if name == "pyproject.toml" {
        let doc: toml::Value = toml::from_str(&text).ok()?;
        let deps = doc.get("project")?.get("dependencies")?.as_array()?;
        return deps.iter().filter_map(|d| d.as_str()).find_map(requirement_pin);
    }
    let normalised = deps::normalised(b"requirements.txt", bytes);
    String::from_utf8_lossy(&normalised).lines().find_map(requirement_pin)
}

/// `flytekit==X` (extras and an environment marker allowed) → X.
fn requirement_pin(line: &str) -> Option<String> {
    let line = line.split(';').next()?.trim();
    let end = line.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(line.len());
    let name = line[..end].to_ascii_lowercase().replace(['_', '.'], "-");
    if name != "flytekit" {
        return None;
    }
    let mut rest = line[end..].trim_start();
    if rest.starts_with('[') {
        rest = rest[rest.find(']')? + 1..].trim_start();
    }
    // A hash-pinned line goes on with ` --hash=…` options.
    let version = rest.strip_prefix("==")?.split_whitespace().next().unwrap_or_default();
    let exact = !version.is_empty()
        && !version.contains(['*', ',', ' '])
        && version.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'));
    exact.then(|| version.to_string())
}

/// The version of the `flytekit` package a `uv.lock` resolved.
fn uv_lock_pin(text: &str) -> Option<String> {
    let doc: toml::Value = toml::from_str(text).ok()?;
    doc.get("package")?.as_array()?.iter().find_map(|p| {
        (p.get("name")?.as_str()? == "flytekit").then(|| p.get("version")?.as_str().map(str::to_string))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_pin_counts() {
        let pin = |text: &str| flytekit_pin("requirements.in", text.as_bytes());
        assert_eq!(pin("pandas\nflytekit==1.15.0\n"), Some("1.15.0".into()));
        assert_eq!(pin("Flytekit[all] == 1.7.1b1 ; python_version>'3'\n"), Some("1.7.1b1".into()));
        assert_eq!(pin("flytekit>=1.10\n"), None);
        assert_eq!(pin("flytekit==1.*\n"), None);
        assert_eq!(pin("flytekitplugins-pandera==1.10\n"), None);
        assert_eq!(pin("# flytekit==1.2.3\nflytekit\n"), None);
        assert_eq!(
            pin("flytekit==1.15.0 \\\n    --hash=sha256:ab12\n"),
            Some("1.15.0".into()),
            "pip-compile --generate-hashes"
        );
    }

    #[test]
    fn pyproject_and_uv_lock_pins_are_read() {
        let pyproject = "[project]\nname = \"x\"\ndependencies = [\"pandas\", \"flytekit==1.14.2\"]\n";
        assert_eq!(flytekit_pin("pyproject.toml", pyproject.as_bytes()), Some("1.14.2".into()));
        let lock = "version = 1\n[[package]]\nname = \"pandas\"\nversion = \"2.0\"\n[[package]]\nname = \"flytekit\"\nversion = \"1.13.0\"\n";
        assert_eq!(flytekit_pin("uv.lock", lock.as_bytes()), Some("1.13.0".into()));
    }

    #[test]
    fn references_resolve_inside_the_repository_only() {
        assert_eq!(resolve("workflows/a", "../../constraints/pins.txt"), Some("constraints/pins.txt".into()));
        assert_eq!(resolve("workflows/a", "./base.txt"), Some("workflows/a/base.txt".into()));
        assert_eq!(resolve("workflows/a", "../../../etc/passwd"), None);
        assert_eq!(resolve("workflows/a", "/etc/passwd"), None);
    }

    #[test]
    fn referenced_files_are_found_with_their_lines() {
        let text = "pandas\n-r base.txt\n--constraint=../constraints.txt\n-c  pins.txt # pinned\n-rx\n-e ../lib\n";
        assert_eq!(
            references(text.as_bytes()),
            [(2, "base.txt".to_string()), (3, "../constraints.txt".into()), (4, "pins.txt".into())]
        );
    }

    #[test]
    fn a_compiled_lock_wins_over_its_source() {
        let all: Vec<String> = ["requirements.in", "requirements.txt", "requirements-gpu.in", "uv.lock", "Dockerfile"]
            .iter()
            .map(|n| format!("w/{n}"))
            .collect();
        let taken: Vec<&str> = ["requirements.in", "requirements.txt", "requirements-gpu.in", "uv.lock", "Dockerfile"]
            .into_iter()
            .filter(|n| installs(n, &all, "w/"))
            .collect();
        assert_eq!(taken, ["requirements.txt", "requirements-gpu.in"]);
    }

    #[test]
    fn the_hash_is_content_and_flytekit_only() {
        let file = |name: &str, path: &str, text: &str| EnvFile {
            name: name.into(),
            path: path.into(),
            bytes: text.as_bytes().to_vec(),
            installed: true,
        };
        let a = environment_hash("1.16.31", &[file("requirements.txt", "a/requirements.txt", "pandas\n")]);
        let b = environment_hash("1.16.31", &[file("requirements.txt", "b/requirements.txt", "# x\npandas \n")]);
        let c = environment_hash("1.16.30", &[file("requirements.txt", "b/requirements.txt", "pandas\n")]);
        let d = environment_hash("1.16.31", &[file("requirements.txt", "a/requirements.txt", "pandas<2\n")]);
        assert_eq!(a, b, "the folder and comments do not matter");
        assert_ne!(a, c, "the flytekit version does");
        assert_ne!(a, d, "the requirements do");
    }
}
