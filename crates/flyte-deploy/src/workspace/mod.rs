//! Workflow discovery: which workflows a state of the repository holds, with their
//! manifests resolved against the files that are there, and the rule that no two workflows
//! of a project share a Python package ([`check_packages`]). Reads through a [`Source`];
//! never writes, never runs programs.

pub(crate) mod catalog;
pub(crate) mod deps;
pub mod repo;
pub mod requirements;
pub mod source;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;

use crate::config::{self, Config, Located, Manifest, DEPLOY_TOML, WORKFLOW_TOML};
use crate::error;
use crate::workspace::source::{EntryKind, Source};

/// The workflows of one state of the repository, with the settings that govern them.
#[derive(Debug)]
pub struct Workspace {
    pub config: Config,
    /// Sorted by name.
    pub workflows: Vec<Workflow>,
}

/// One workflow package.
#[derive(Debug, Clone, Serialize)]
pub struct Workflow {
    pub name: String,
    /// The folder, relative to the repository root (`workflows/etl`).
    pub path: String,
    pub project: String,
    /// Python packages given to pyflyte (`--pkgs`).
    pub packages: Vec<String>,
    /// The Dockerfile, relative to the repository root, when the workflow has its own image.
    pub dockerfile: Option<String>,
    /// Dependency files found in the folder (and the Dockerfile), repository-relative.
    pub dependencies: Vec<String>,
    /// Declared shared paths, repository-relative.
    pub shared: Vec<String>,
    /// Named images the code refers to (`{{.image.NAME.fqn}}`): deploy.toml's `[images]
    /// named` with the workflow.toml's `images` over them.
    pub images: BTreeMap<String, String>,
    #[serde(skip)]
    pub matcher: DependencyMatcher,
    /// Where `name` was written, when workflow.toml sets it (boxed: most workflows do not,
    /// and plans hold thousands of workflows).
    #[serde(skip)]
    pub name_at: Option<Box<Located<String>>>,
}

impl Workflow {
    /// True when `path` (repository-relative) is one of this workflow's dependency files:
    /// its Dockerfile, or a file in its folder matching a dependency pattern.
    pub fn is_dependency(&self, path: &[u8]) -> bool {
        if self.dockerfile.as_deref().map(str::as_bytes) == Some(path) {
            return true;
        }
        match strip_dir(path, self.path.as_bytes()) {
            Some(rel) if !rel.is_empty() => self.matcher.is_match(rel),
            _ => false,
        }
    }
}

/// True when `path` is `dir` or lies below it (`dir` empty: everything).
pub fn under(path: &[u8], dir: &[u8]) -> bool {
    strip_dir(path, dir).is_some()
}

/// `path` relative to `dir`, when it lies in it (`dir` itself gives an empty path).
pub fn strip_dir<'p>(path: &'p [u8], dir: &[u8]) -> Option<&'p [u8]> {
    if dir.is_empty() {
        return Some(path);
    }
    let rest = path.strip_prefix(dir)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(b"/")
    }
}

/// Dependency patterns, as in `.gitignore`: a pattern without `/` matches a file name at any
/// depth of the workflow folder; a pattern with `/` matches the path relative to the folder.
/// The default matches nothing, and takes no memory beyond a pointer; a clone shares the
/// compiled patterns.
#[derive(Debug, Clone, Default)]
pub struct DependencyMatcher(Option<std::sync::Arc<Patterns>>);

#[derive(Debug, Clone)]
struct Patterns {
    names: GlobSet,
    paths: GlobSet,
}

impl DependencyMatcher {
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a Located<String>>) -> Result<Self> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p.value.trim_start_matches("./"))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| p.error(format!("'{}' is not a valid glob: {}", p.value, e.kind()), "fix the pattern"))?;
            if p.value.trim_end_matches('/').contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        Ok(DependencyMatcher(Some(std::sync::Arc::new(Patterns {
            names: names.build().context("building the dependency patterns")?,
            paths: paths.build().context("building the dependency patterns")?,
        }))))
    }

    /// True when a path relative to the workflow folder is a dependency file.
    pub fn is_match(&self, rel: &[u8]) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Some(p) = &self.0 else { return false };
        let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel);
        p.names.is_match(Path::new(std::ffi::OsStr::from_bytes(name)))
            || p.paths.is_match(Path::new(std::ffi::OsStr::from_bytes(rel)))
    }
}

impl Workspace {
    /// Reads `deploy.toml` and every workflow from `source`.
    pub fn load(source: &dyn Source) -> Result<Workspace> {
        let text = source.read(DEPLOY_TOML)?.ok_or_else(|| {
            error::user(
                format!("no {DEPLOY_TOML} at the repository root ({})", source.describe()),
                format!("run the tool inside a flyte-deploy monorepo, or create {DEPLOY_TOML} (an empty file uses the defaults)"),
            )
        })?;
        let text = String::from_utf8(text)
            .map_err(|_| error::user(format!("{DEPLOY_TOML} is not UTF-8"), "save it as UTF-8"))?;
        let config = Config::parse(Path::new(DEPLOY_TOML), &text)?;
        Workspace::load_with(source, config)
    }

    /// Reads every workflow from `source` under an already parsed configuration.
    pub fn load_with(source: &dyn Source, config: Config) -> Result<Workspace> {
        for g in &config.global {
            let path = config::repo_path(g, "global path")?;
            if source.kind(&path)?.is_none() {
                return Err(g.error(
                    format!("global path '{}' does not exist in {}", g.value, source.describe()),
                    "remove it from `global` or correct the path",
                ));
            }
        }
        let root = config.workflows.clone();
        let mut workflows: Vec<Workflow> = Vec::new();
        for entry in source.entries(&root)?.unwrap_or_default() {
            if entry.kind != EntryKind::Dir || entry.name.starts_with(b".") || entry.name == b"__pycache__" {
                continue;
            }
            let Some(folder) = entry.name_str() else {
                return Err(error::user(
                    format!("{root}/{}: a workflow folder name must be UTF-8", String::from_utf8_lossy(&entry.name)),
                    "rename the folder",
                ));
            };
            let wf = load_workflow(source, &config, &format!("{root}/{folder}"), folder)?;
            if let Some(other) = workflows.iter().find(|w| w.name == wf.name) {
                return Err(name_clash(other, &wf));
            }
            workflows.push(wf);
        }
        workflows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Workspace { config, workflows })
    }

    /// Refuses two workflows of one project that share a Python package ([`check_packages`]).
    pub fn check_packages(&self) -> Result<()> {
        check_packages(
            self.workflows.iter().map(|w| (w.path.as_str(), w.project.as_str(), w.packages.iter().map(String::as_str))),
        )
    }

    pub fn workflow(&self, name: &str) -> Option<&Workflow> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The named workflows, or a user error naming the unknown one and the known ones.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Workflow>> {
        names
            .iter()
            .map(|n| {
                self.workflow(n).ok_or_else(|| {
                    error::user(
                        format!("no workflow named '{n}'"),
                        format!(
                            "known workflows: {} (see `cargo xtask list`)",
                            self.workflows.iter().map(|w| w.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
            })
            .collect()
    }
}

/// Refuses two workflows of one project that share a top-level Python package. pyflyte names
/// every task, workflow and launch plan by its module path (`<package>.<module>.<function>`),
/// so two such workflows would register the same names and overwrite each other's. Takes
/// each workflow's folder, project and packages (`--pkgs`, dotted names); the error names
/// the package, the project and the folders (sorted), the first clash in (project, package)
/// order.
pub fn check_packages<'a, P>(workflows: impl IntoIterator<Item = (&'a str, &'a str, P)>) -> Result<()>
where
    P: IntoIterator<Item = &'a str>,
{
    // (project, top-level package, folder) of every package of every workflow.
    let mut claims: Vec<(&str, &str, &str)> = Vec::new();
    for (path, project, packages) in workflows {
        for p in packages {
            claims.push((project, p.split('.').next().unwrap_or(p), path));
        }
    }
    claims.sort_unstable();
    claims.dedup();
    let Some(clash) = claims.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).find(|run| run.len() > 1) else {
        return Ok(());
    };
    let (project, package) = (clash[0].0, clash[0].1);
    let folders: Vec<&str> = clash.iter().map(|c| c.2).collect();
    let (last, rest) = folders.split_last().expect("a clash has two folders");
    let which = if folders.len() == 2 { "one of them" } else { "all but one of them" };
    Err(error::user(
        format!(
            "Python package '{package}' is in {} workflows of project '{project}': {} and {last}; \
             pyflyte names their tasks, workflows and launch plans alike, so they would overwrite each other's",
            folders.len(),
            rest.join(", "),
        ),
        format!("rename the package in {which}, or set another `project` in the {WORKFLOW_TOML} of {which}"),
    ))
}

/// The files of a workflow folder its settings depend on, as a discovery path found them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FolderFiles {
    /// `Dockerfile` is a regular file of the folder.
    pub dockerfile: bool,
    /// `Containerfile` is a regular file of the folder.
    pub containerfile: bool,
}

/// The rules that make a workflow of a folder and its manifest — name, project, Dockerfile,
/// shared paths, Python packages, named images — in one place for both discovery paths:
/// [`load_workflow`] (through a [`Source`], then checks that what the manifest names exists)
/// and the plan's `catalog` (from the object database, checking nothing more). The result
/// has no dependency matcher or files yet. `found_packages` is asked only when the manifest
/// lists no packages.
pub(crate) fn resolve(
    config: &Config,
    manifest: &Manifest,
    dir: &str,
    folder: &str,
    files: FolderFiles,
    found_packages: impl FnOnce() -> Result<Vec<String>>,
) -> Result<Workflow> {
    // Shown in a message: a folder name may hold a newline or other control characters.
    let manifest_path = format!("{}/{WORKFLOW_TOML}", dir.escape_debug());
    let name = match &manifest.name {
        Some(n) => n.value.clone(),
        None => {
            if !folder.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                let at = Located { value: (), file: manifest_path.into(), line: 1, col: 1 };
                return Err(at.error(
                    format!("the folder name '{}' is not a valid workflow name", folder.escape_debug()),
                    "rename the folder, or set `name` in its workflow.toml",
                ));
            }
            folder.to_string()
        }
    };
    let project = manifest.project.as_ref().map_or_else(|| config.project.clone(), |p| p.value.clone());
    let dockerfile = match &manifest.dockerfile {
        Some(d) => {
            Some(config::normalise(&format!("{dir}/{}", d.value)).filter(|_| !d.value.starts_with('/')).ok_or_else(
                || {
                    d.error(
                        format!("dockerfile '{}' escapes the repository", d.value),
                        "give a path relative to the workflow folder that stays inside the repository",
                    )
                },
            )?)
        }
        None => [(files.dockerfile, "Dockerfile"), (files.containerfile, "Containerfile")]
            .into_iter()
            .find(|(present, _)| *present)
            .map(|(_, name)| format!("{dir}/{name}")),
    };
    let mut shared = manifest.shared.iter().map(|s| config::repo_path(s, "shared path")).collect::<Result<Vec<_>>>()?;
    shared.sort();
    shared.dedup();
    let packages = match &manifest.packages {
        Some(list) => list.iter().map(|p| p.value.clone()).collect(),
        None => {
            let mut found = found_packages()?;
            found.sort();
            found
        }
    };
    Ok(Workflow {
        name,
        path: dir.to_string(),
        project,
        packages,
        dockerfile,
        dependencies: Vec::new(),
        shared,
        images: named_images(config, manifest),
        matcher: DependencyMatcher::default(),
        name_at: manifest.name.clone().map(Box::new),
    })
}

/// The error for two workflows of one name, blaming the manifest that renamed a workflow onto
/// the other's name (both discovery paths report it so).
pub(crate) fn name_clash(a: &Workflow, b: &Workflow) -> anyhow::Error {
    let (renamed, kept) = if b.name_at.is_some() { (b, a) } else { (a, b) };
    let what = format!("workflow name '{}' is already used by {}", renamed.name, kept.path);
    let help = "give each workflow its own `name` in workflow.toml";
    match &renamed.name_at {
        Some(at) => at.error(what, help),
        None => error::user(format!("{}: {what}", renamed.path), help),
    }
}

/// Reads one workflow, the folder `dir` (named `folder`) of the workflows root, and checks its
/// manifest against the files that are there.
pub fn load_workflow(source: &dyn Source, config: &Config, dir: &str, folder: &str) -> Result<Workflow> {
    let manifest_path = format!("{dir}/{WORKFLOW_TOML}");
    let manifest = match source.read(&manifest_path)? {
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| error::user(format!("{manifest_path} is not UTF-8"), "save it as UTF-8"))?;
            Manifest::parse(Path::new(&manifest_path), &text)?
        }
        None => Manifest::default(),
    };
    let is_file = |name: &str| -> Result<bool> {
        Ok(matches!(source.kind(&format!("{dir}/{name}"))?, Some(EntryKind::File { .. })))
    };
    let files = FolderFiles { dockerfile: is_file("Dockerfile")?, containerfile: is_file("Containerfile")? };
    let found_packages = || -> Result<Vec<String>> {
        let mut found = Vec::new();
        for e in source.entries(dir)?.unwrap_or_default() {
            if let (EntryKind::Dir, Some(n)) = (e.kind, e.name_str()) {
                if source.kind(&format!("{dir}/{n}/__init__.py"))?.is_some() {
                    found.push(n.to_string());
                }
            }
        }
        Ok(found)
    };
    let mut wf = resolve(config, &manifest, dir, folder, files, found_packages)?;

    // What the manifest names must be there.
    for p in manifest.packages.iter().flatten() {
        let as_dir = format!("{dir}/{}", p.value.replace('.', "/"));
        let is_pkg =
            source.kind(&format!("{as_dir}/__init__.py"))?.is_some() || source.kind(&format!("{as_dir}.py"))?.is_some();
        if !is_pkg {
            return Err(p.error(
                format!("package '{}' is not in {dir} (no {as_dir}/__init__.py)", p.value),
                "list packages that exist in the workflow folder",
            ));
        }
    }
    if wf.packages.is_empty() {
        return Err(error::user(
            format!("{dir}: no Python package found (a folder with an __init__.py)"),
            format!("add one, or set `packages` in {manifest_path}"),
        ));
    }
    if let (Some(d), Some(joined)) = (&manifest.dockerfile, &wf.dockerfile) {
        if !matches!(source.kind(joined)?, Some(EntryKind::File { .. })) {
            return Err(d.error(
                format!("dockerfile '{}' does not exist ({joined})", d.value),
                "correct the path (relative to the workflow folder) or remove the key",
            ));
        }
    }
    for s in &manifest.shared {
        let path = config::repo_path(s, "shared path")?;
        if path.is_empty() || source.kind(&path)?.is_none() {
            return Err(s.error(
                format!("shared path '{}' does not exist in {}", s.value, source.describe()),
                "correct the path (relative to the repository root) or remove it from `shared`",
            ));
        }
        if under(dir.as_bytes(), path.as_bytes()) {
            return Err(s.error(
                format!("shared path '{}' contains the workflow folder itself", s.value),
                "name the shared library's own folder",
            ));
        }
    }

    wf.matcher = DependencyMatcher::new(config.dependencies.iter().chain(&manifest.dependencies))?;
    let mut dependencies: Vec<String> = source::walk(source, dir)?
        .into_iter()
        .filter(|(rel, kind)| *kind != EntryKind::Dir && wf.matcher.is_match(rel))
        .map(|(rel, _)| format!("{dir}/{}", String::from_utf8_lossy(&rel)))
        .collect();
    if let Some(d) = &wf.dockerfile {
        if !dependencies.contains(d) {
            dependencies.push(d.clone());
        }
    }
    dependencies.sort();
    wf.dependencies = dependencies;
    Ok(wf)
}

/// deploy.toml's named images with the manifest's over them.
pub fn named_images(config: &Config, manifest: &Manifest) -> BTreeMap<String, String> {
    let mut images = config.images.named.clone();
    images.extend(manifest.images.iter().map(|(k, v)| (k.clone(), v.value.clone())));
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> DependencyMatcher {
        let located: Vec<Located<String>> =
            patterns.iter().map(|p| Located { value: p.to_string(), file: "x".into(), line: 1, col: 1 }).collect();
        DependencyMatcher::new(&located).unwrap()
    }

    #[test]
    fn patterns_without_slash_match_names_at_any_depth() {
        let m = matcher(&["requirements*.txt", "deps/*.lock"]);
        assert!(m.is_match(b"requirements.txt"));
        assert!(m.is_match(b"sub/requirements-dev.txt"));
        assert!(m.is_match(b"deps/a.lock"));
        assert!(!m.is_match(b"x/deps/a.lock"));
        assert!(!m.is_match(b"etl/main.py"));
    }

    #[test]
    fn a_package_belongs_to_one_workflow_of_a_project() {
        let check = |wfs: &[(&'static str, &'static str, &[&'static str])]| {
            check_packages(wfs.iter().map(|(path, project, pkgs)| (*path, *project, pkgs.iter().copied())))
        };
        // Other projects, other packages, and one workflow naming a package twice are fine.
        check(&[
            ("workflows/a", "p", &["bq", "a"]),
            ("workflows/b", "q", &["bq"]),
            ("workflows/c", "p", &["c", "c.sub"]),
        ])
        .unwrap();
        // The same top-level package in one project: the package, the project and the folders,
        // sorted, whatever the order they came in.
        let err = check(&[
            ("workflows/z", "p", &["z"]),
            ("workflows/bigquery_plugin", "p", &["bigquery.plugin"]),
            ("workflows/other", "q", &["bigquery"]),
            ("workflows/bigquery_agent", "p", &["bigquery"]),
        ])
        .unwrap_err();
        assert!(error::is_user_error(&err), "{err:#}");
        assert_eq!(
            err.to_string(),
            "Python package 'bigquery' is in 2 workflows of project 'p': workflows/bigquery_agent and \
             workflows/bigquery_plugin; pyflyte names their tasks, workflows and launch plans alike, so they \
             would overwrite each other's\n  help: rename the package in one of them, or set another `project` in \
             the workflow.toml of one of them"
        );
        // Three workflows: all are named; the first clash by project, then package, is said.
        let err = check(&[
            ("workflows/c", "p", &["x"]),
            ("workflows/a", "p", &["x"]),
            ("workflows/b", "p", &["x", "w"]),
            ("workflows/d", "p", &["w"]),
            ("workflows/e", "o", &["y"]),
            ("workflows/f", "o", &["y"]),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("Python package 'y' is in 2 workflows of project 'o': workflows/e and workflows/f;"),
            "{err}"
        );
        let err = check(&[("workflows/c", "p", &["x"]), ("workflows/a", "p", &["x"]), ("workflows/b", "p", &["x"])])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'x' is in 3 workflows of project 'p': workflows/a, workflows/b and workflows/c;"),
            "{err}"
        );
        assert!(err.contains("help: rename the package in all but one of them"), "{err}");
    }

    #[test]
    fn strip_dir_respects_segment_boundaries() {
        assert_eq!(strip_dir(b"workflows/etl/a.py", b"workflows/etl"), Some(&b"a.py"[..]));
        assert_eq!(strip_dir(b"workflows/etl2/a.py", b"workflows/etl"), None);
        assert_eq!(strip_dir(b"workflows/etl", b"workflows/etl"), Some(&b""[..]));
    }
}
