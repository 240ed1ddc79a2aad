//! `deploy.toml` and `workflow.toml`: parsing, defaults and validation of everything that
//! can be checked without looking at the repository's files. Owns the configuration contract
//! of DESIGN.md; reads only the text it is given and performs no I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use globset::{Glob, GlobMatcher};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error;

pub mod flyte_config;

/// The name of the monorepo settings file at the repository root.
pub const DEPLOY_TOML: &str = "deploy.toml";
/// The name of a workflow's optional manifest, at the workflow folder's root.
pub const WORKFLOW_TOML: &str = "workflow.toml";

/// The default image of workflows without a Dockerfile.
pub const DEFAULT_IMAGE: &str = "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31";
/// The flytekit of an environment whose dependency files do not pin one (`[python] flytekit`).
pub const DEFAULT_FLYTEKIT: &str = "1.16.31";

/// The dependency-file patterns used when `dependencies` is not set.
pub const DEFAULT_DEPENDENCIES: &[&str] = &[
    "Dockerfile",
    "Containerfile",
    "requirements*.txt",
    "requirements*.in",
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "environment.yml",
];

/// How workflow versions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionScheme {
    /// A hash of everything that reaches the registered specs.
    Content,
    /// The commit that last changed the workflow's inputs.
    GitSha,
}

/// Which program builds images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builder {
    Auto,
    Docker,
    Podman,
    Buildah,
}

/// `deploy.toml`, validated, with defaults applied.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file the settings came from (for messages).
    pub file: PathBuf,
    pub project: String,
    /// The workflows root, relative to the repository root, without a trailing `/`.
    pub workflows: String,
    /// Where `workflows` was set (or deploy.toml's start, for the default).
    pub workflows_at: Located<String>,
    pub version_scheme: VersionScheme,
    /// Paths (relative to the repository root) whose change reaches every workflow.
    pub global: Vec<Located<String>>,
    /// Dependency-file patterns.
    pub dependencies: Vec<Located<String>>,
    pub flyte: Flyte,
    pub images: Images,
    pub python: Python,
    pub domains: Vec<Domain>,
}

/// `[python]`: how serialization environments are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Python {
    /// The flytekit version of an environment whose dependency files do not pin flytekit.
    pub flytekit: Located<String>,
}

/// A value with the place in a file it came from, for messages about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl<T> Located<T> {
    /// The place as `file:line:col`.
    pub fn place(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.col)
    }
    /// A user error at this value's place.
    pub fn error(&self, what: impl std::fmt::Display, help: impl Into<String>) -> anyhow::Error {
        error::user(format!("{}: {what}", self.place()), help)
    }
}

/// `[flyte]`: where FlyteAdmin is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flyte {
    /// `sandbox` (the embedded one), or an address such as `dns:///host:443`.
    pub endpoint: String,
    /// Plain gRPC instead of TLS.
    pub insecure: bool,
    /// The Flyte console's base URL (`https://host/console`), without a trailing slash, for
    /// links in reports; `None` for no links (`console = ""`, the default).
    pub console: Option<String>,
}

/// What a console URL may be, for messages.
pub const CONSOLE_HELP: &str =
    "write the Flyte console's address as a browser shows it, such as \"https://flyte.example.com/console\", or \"\" for no links";

/// What is wrong with a `[flyte] console` URL as written, or `None` when it is an http or
/// https URL naming a host, without query or fragment.
pub fn console_problem(console: &str) -> Option<&'static str> {
    let Ok(url) = url::Url::parse(console.trim()) else { return Some("is not a URL") };
    if !matches!(url.scheme(), "http" | "https") {
        return Some("is not an http:// or https:// URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("names no host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Some("has a query or fragment: links are made by adding to its path");
    }
    None
}

/// What a Flyte endpoint may be, for messages.
pub const ENDPOINT_HELP: &str =
    "write `sandbox`, `flyte-config`, dns:///HOST:PORT, HOST:PORT, or an http:// or https:// URL";

/// What is wrong with an endpoint as written, or `None` when it has one of the accepted
/// forms ([`ENDPOINT_HELP`]); the one syntax rule for deploy.toml and `FLYTE_ENDPOINT`.
pub fn endpoint_problem(endpoint: &str) -> Option<&'static str> {
    let endpoint = endpoint.trim();
    let rest = ["http://", "https://", "dns:///"].iter().find_map(|p| endpoint.strip_prefix(p));
    match rest {
        _ if endpoint.is_empty() => Some("is empty"),
        Some("") => Some("names no host"),
        Some(_) => None,
        None if endpoint.contains("://") => Some("has a scheme other than http, https or dns"),
        None if endpoint.chars().any(char::is_whitespace) => Some("contains white space"),
        None => None,
    }
}

impl Default for Flyte {
    fn default() -> Self {
        Flyte { endpoint: "sandbox".into(), insecure: false, console: None }
    }
}

/// `[images]`: where workflow images go and how they are built.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Images {
    /// Prefix of images built for workflows with a Dockerfile.
    pub registry: String,
    pub builder: Builder,
    /// Image of workflows without a Dockerfile.
    pub default: String,
    /// Images the code names (`{{.image.NAME.fqn}}`): NAME → URI, given to pyflyte as
    /// `--image NAME=URI`.
    pub named: BTreeMap<String, String>,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            registry: "localhost:5000/flyte".into(),
            builder: Builder::Auto,
            default: DEFAULT_IMAGE.into(),
            named: BTreeMap::new(),
        }
    }
}

/// A Flyte domain and the branches that deploy to it.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: Located<String>,
    /// Glob patterns of branch names; the most specific match over all domains wins.
    pub branches: Vec<Located<String>>,
    /// When set, the domain takes only promotions from this domain, no direct deploys.
    pub promote_from: Option<Located<String>>,
    /// Whether deploys and promotions activate launch plans (and so schedules) here. Where
    /// false, launch plans are registered inactive and a removed workflow's are left alone:
    /// pull requests sharing the domain never flip each other's state.
    pub activate: bool,
    pub settings: DomainSettings,
}

/// `[domains.settings]`: what each domain's registered launch plans carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainSettings {
    /// The data directory: where task outputs are written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_output_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
}

/// `workflows/<name>/workflow.toml`, with only what was written (defaults are applied by
/// the workspace, which knows the folder).
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub file: PathBuf,
    pub name: Option<Located<String>>,
    pub project: Option<Located<String>>,
    pub packages: Option<Vec<Located<String>>>,
    pub dockerfile: Option<Located<String>>,
    pub dependencies: Vec<Located<String>>,
    pub shared: Vec<Located<String>>,
    /// Named images (NAME → URI); they win over deploy.toml's `[images] named`.
    pub images: BTreeMap<String, Located<String>>,
}

// ---------------------------------------------------------------------------------------
// Raw (as written) forms. `Spanned` keeps where each value was so later checks can say
// `file:line:col`.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    project: Option<Spanned<String>>,
    workflows: Option<Spanned<String>>,
    version_scheme: Option<VersionScheme>,
    global: Option<Vec<Spanned<String>>>,
    dependencies: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    flyte: RawFlyte,
    #[serde(default)]
    images: RawImages,
    #[serde(default)]
    python: RawPython,
    domains: Option<Spanned<Vec<RawDomain>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFlyte {
    endpoint: Option<Spanned<String>>,
    insecure: Option<bool>,
    console: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawImages {
    registry: Option<String>,
    builder: Option<Builder>,
    default: Option<String>,
    #[serde(default)]
    named: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPython {
    flytekit: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    branches: Vec<Spanned<String>>,
    promote_from: Option<Spanned<String>>,
    activate: Option<bool>,
    #[serde(default)]
    settings: DomainSettings,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Option<Spanned<String>>,
    project: Option<Spanned<String>>,
    packages: Option<Vec<Spanned<String>>>,
    dockerfile: Option<Spanned<String>>,
    #[serde(default)]
    dependencies: Vec<Spanned<String>>,
    #[serde(default)]
    shared: Vec<Spanned<String>>,
    #[serde(default)]
    images: BTreeMap<String, Spanned<String>>,
}

/// Turns spans into places within one file.
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn locate<T>(&self, spanned: Spanned<T>) -> Located<T> {
        let (line, col) = error::line_col(self.text, spanned.span().start);
        Located { value: spanned.into_inner(), file: self.file.to_path_buf(), line, col }
    }
    fn all<T>(&self, values: Vec<Spanned<T>>) -> Vec<Located<T>> {
        values.into_iter().map(|v| self.locate(v)).collect()
    }
    /// A value that was not written anywhere: located at the file's start.
    fn default<T>(&self, value: T) -> Located<T> {
        Located { value, file: self.file.to_path_buf(), line: 1, col: 1 }
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_string();
        let help = if message.starts_with("unknown field") {
            "remove the key or correct its spelling; README.md lists every key"
        } else if message.starts_with("invalid type") || message.starts_with("unknown variant") {
            "give the key a value of the type README.md's configuration reference shows"
        } else {
            "fix the TOML syntax at that place"
        };
        error::at(file, text, offset, message, help)
    })
}

impl Config {
    /// Parses and validates `deploy.toml` text. `file` names it in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Config> {
        let raw: RawDeploy = parse_toml(file, text)?;
        let at = Locator { file, text };
        let project = raw.project.map(|p| at.locate(p)).unwrap_or_else(|| at.default("flytesnacks".into()));
        check_identifier(&project, "project")?;
        let workflows = raw.workflows.map(|p| at.locate(p)).unwrap_or_else(|| at.default("workflows".into()));
        let workflows_dir = repo_path(&workflows, "workflows root")?;
        if workflows_dir.is_empty() {
            return Err(workflows.error(
                "the workflows root cannot be the repository root",
                "set `workflows` to a folder such as \"workflows\"",
            ));
        }
        let global = match raw.global {
            Some(list) => at.all(list),
            None => vec![at.default(DEPLOY_TOML.to_string())],
        };
        for g in &global {
            repo_path(g, "global path")?;
        }
        // Only patterns deploy.toml writes are checked: the defaults are valid (a test says so).
        let dependencies = match raw.dependencies {
            Some(list) => {
                let list = at.all(list);
                for d in &list {
                    pattern(d, "dependency pattern")?;
                }
                list
            }
            None => DEFAULT_DEPENDENCIES.iter().map(|p| at.default(p.to_string())).collect(),
        };
        let domains = match raw.domains {
            Some(list) if list.get_ref().is_empty() => {
                return Err(at.locate(list).error(
                    "`domains` is empty",
                    "declare at least one [[domains]] table, or remove `domains` to get the defaults",
                ));
            }
            Some(list) => list
                .into_inner()
                .into_iter()
                .map(|d| Domain {
                    name: at.locate(d.name),
                    branches: at.all(d.branches),
                    promote_from: d.promote_from.map(|p| at.locate(p)),
                    activate: d.activate.unwrap_or(true),
                    settings: d.settings,
                })
                .collect(),
            None => default_domains(&at),
        };
        check_domains(&domains)?;
        let defaults = Images::default();
        let mut named = BTreeMap::new();
        for (name, uri) in raw.images.named {
            let uri = at.locate(uri);
            check_named_image(&name, &uri)?;
            named.insert(name, uri.value);
        }
        let images = Images {
            registry: raw.images.registry.unwrap_or(defaults.registry),
            builder: raw.images.builder.unwrap_or(defaults.builder),
            default: raw.images.default.unwrap_or(defaults.default),
            named,
        };
        let mut flyte = Flyte { insecure: raw.flyte.insecure.unwrap_or(false), ..Flyte::default() };
        if let Some(endpoint) = raw.flyte.endpoint.map(|e| at.locate(e)) {
            if let Some(problem) = endpoint_problem(&endpoint.value) {
                return Err(endpoint.error(format!("endpoint {:?} {problem}", endpoint.value), ENDPOINT_HELP));
            }
            flyte.endpoint = endpoint.value;
        }
        if let Some(console) = raw.flyte.console.map(|c| at.locate(c)).filter(|c| !c.value.is_empty()) {
            if let Some(problem) = console_problem(&console.value) {
                return Err(console.error(format!("console {:?} {problem}", console.value), CONSOLE_HELP));
            }
            flyte.console = Some(console.value.trim().trim_end_matches('/').to_string());
        }
        let flytekit = raw.python.flytekit.map(|v| at.locate(v)).unwrap_or_else(|| at.default(DEFAULT_FLYTEKIT.into()));
        check_version(&flytekit)?;
        Ok(Config {
            file: file.to_path_buf(),
            project: project.value,
            workflows: workflows_dir,
            workflows_at: workflows,
            version_scheme: raw.version_scheme.unwrap_or(VersionScheme::Content),
            global,
            dependencies,
            flyte,
            images,
            python: Python { flytekit },
            domains,
        })
    }

    /// The error for a workflows root that is not a folder of `what` (a commit, or the
    /// working tree): a typo there would otherwise read as "every workflow removed".
    pub fn missing_root(&self, what: &str) -> anyhow::Error {
        self.workflows_at.error(
            format!("the workflows root '{}' is not a folder in {what}", self.workflows),
            "correct `workflows` in deploy.toml, or create the folder with a workflow in it",
        )
    }

    /// The domain named `name`.
    pub fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains.iter().find(|d| d.name.value == name)
    }

    /// The domain a branch deploys to: the most specific matching pattern wins.
    /// `Ok(None)` when no pattern matches; an error when two domains match equally well.
    pub fn domain_for_branch(&self, branch: &str) -> Result<Option<&Domain>> {
        let mut best: Option<(Specificity, &Domain, &Located<String>)> = None;
        for domain in &self.domains {
            for pat in &domain.branches {
                if !branch_matches(&pat.value, branch) {
                    continue;
                }
                let spec = specificity(&pat.value);
                match &best {
                    Some((s, d, p)) if *s == spec && d.name.value != domain.name.value => {
                        return Err(error::user(
                            format!(
                                "branch '{branch}' matches '{}' ({}, domain {}) and '{}' ({}, domain {}) equally well",
                                p.value,
                                p.place(),
                                d.name.value,
                                pat.value,
                                pat.place(),
                                domain.name.value
                            ),
                            "make one of the two branch patterns more specific, or pass --domain",
                        ))
                    }
                    Some((s, _, _)) if *s >= spec => {}
                    _ => best = Some((spec, domain, pat)),
                }
            }
        }
        Ok(best.map(|(_, d, _)| d))
    }
}

impl Manifest {
    /// Parses a `workflow.toml`. `file` names it in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Manifest> {
        let raw: RawManifest = parse_toml(file, text)?;
        let at = Locator { file, text };
        let manifest = Manifest {
            file: file.to_path_buf(),
            name: raw.name.map(|v| at.locate(v)),
            project: raw.project.map(|v| at.locate(v)),
            packages: raw.packages.map(|v| at.all(v)),
            dockerfile: raw.dockerfile.map(|v| at.locate(v)),
            dependencies: at.all(raw.dependencies),
            shared: at.all(raw.shared),
            images: raw.images.into_iter().map(|(k, v)| (k, at.locate(v))).collect(),
        };
        for (name, uri) in &manifest.images {
            check_named_image(name, uri)?;
        }
        if let Some(name) = &manifest.name {
            check_identifier(name, "workflow name")?;
        }
        if let Some(project) = &manifest.project {
            check_identifier(project, "project")?;
        }
        for p in manifest.packages.iter().flatten() {
            let ok = !p.value.is_empty()
                && p.value.split('.').all(|part| {
                    !part.is_empty()
                        && !part.starts_with(|c: char| c.is_ascii_digit())
                        && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if !ok {
                return Err(p.error(
                    format!("'{}' is not a Python package name", p.value),
                    "list importable packages (dotted names such as \"etl\" or \"etl.jobs\")",
                ));
            }
        }
        for d in &manifest.dependencies {
            pattern(d, "dependency pattern")?;
        }
        for s in &manifest.shared {
            repo_path(s, "shared path")?;
        }
        Ok(manifest)
    }
}

fn default_domains(at: &Locator) -> Vec<Domain> {
    let domain = |name: &str, branches: &[&str], promote_from: Option<&str>| Domain {
        name: at.default(name.to_string()),
        branches: branches.iter().map(|b| at.default(b.to_string())).collect(),
        promote_from: promote_from.map(|p| at.default(p.to_string())),
        // Development is shared by every pull request: none of them activates there.
        activate: name != "development",
        settings: DomainSettings::default(),
    };
    vec![
        domain("development", &["*"], None),
        domain("staging", &["main"], None),
        domain("production", &["release/*"], Some("staging")),
    ]
}

/// A named image: NAME as pyflyte's `--image NAME=URI` takes it, a URI without spaces.
fn check_named_image(name: &str, uri: &Located<String>) -> Result<()> {
    let name_ok = !name.is_empty()
        && name != "default"
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !name_ok {
        return Err(uri.error(
            format!("'{name}' is not a name for an image"),
            "name images with letters, digits, '_' and '-' ('default' is [images] default)",
        ));
    }
    if uri.value.is_empty() || uri.value.chars().any(|c| c.is_whitespace() || c == '=') {
        return Err(uri.error(
            format!("image '{name}' = '{}' is not an image reference", uri.value),
            "give a reference such as \"ghcr.io/org/trainer:1.2\"",
        ));
    }
    Ok(())
}

/// A flytekit version as pip writes one after `==` (PEP 440 characters only).
fn check_version(value: &Located<String>) -> Result<()> {
    let v = &value.value;
    let ok = v.starts_with(|c: char| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(value.error(
            format!("'{v}' is not a flytekit version"),
            "give an exact version such as \"1.16.31\" (it is installed as flytekit==VERSION)",
        ))
    }
}

fn check_identifier(value: &Located<String>, what: &str) -> Result<()> {
    let v = &value.value;
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !v.starts_with(['-', '_']);
    if ok {
        Ok(())
    } else {
        Err(value.error(
            format!("{what} '{v}' is not a valid Flyte name"),
            "use letters, digits, '-' and '_' (at most 63, starting with a letter or digit)",
        ))
    }
}

fn check_domains(domains: &[Domain]) -> Result<()> {
    for (i, d) in domains.iter().enumerate() {
        check_identifier(&d.name, "domain name")?;
        if let Some(first) = domains[..i].iter().find(|o| o.name.value == d.name.value) {
            return Err(d.name.error(
                format!("domain '{}' is declared twice (first at {})", d.name.value, first.name.place()),
                "give each [[domains]] table its own name",
            ));
        }
        for b in &d.branches {
            if b.value.is_empty() || Glob::new(&b.value).is_err() {
                return Err(b.error(
                    format!("branch pattern '{}' is not a valid glob", b.value),
                    "use '*' and '?' wildcards, e.g. \"release/*\"",
                ));
            }
        }
    }
    for d in domains {
        if let Some(from) = &d.promote_from {
            if from.value == d.name.value {
                return Err(from.error(
                    format!("domain '{}' cannot be promoted from itself", d.name.value),
                    "name the domain whose versions it receives, e.g. promote_from = \"staging\"",
                ));
            }
            if !domains.iter().any(|o| o.name.value == from.value) {
                return Err(from.error(
                    format!("promote_from names domain '{}', which is not declared", from.value),
                    format!(
                        "use one of: {}",
                        domains.iter().map(|o| o.name.value.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    // A branch may not map to two domains: no two domains may hold patterns that are equally
    // specific and match each other's example branch (identical patterns above all).
    let all: Vec<(&Domain, &Located<String>)> =
        domains.iter().flat_map(|d| d.branches.iter().map(move |b| (d, b))).collect();
    for (i, (d1, p1)) in all.iter().enumerate() {
        for (d2, p2) in &all[..i] {
            if d1.name.value == d2.name.value || specificity(&p1.value) != specificity(&p2.value) {
                continue;
            }
            let overlap = p1.value == p2.value
                || branch_glob(&p1.value).is_match(example_branch(&p2.value))
                || branch_glob(&p2.value).is_match(example_branch(&p1.value));
            if overlap {
                return Err(p1.error(
                    format!(
                        "branch pattern '{}' of domain '{}' matches the same branches as '{}' of domain '{}' ({})",
                        p1.value,
                        d1.name.value,
                        p2.value,
                        d2.name.value,
                        p2.place()
                    ),
                    "a branch must map to one domain: remove one pattern or make it more specific",
                ));
            }
        }
    }
    Ok(())
}

/// How specific a branch pattern is: exact names beat globs; more literal characters win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Specificity {
    exact: bool,
    literal_chars: usize,
}

fn specificity(pattern: &str) -> Specificity {
    let is_meta = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}');
    Specificity {
        exact: !pattern.chars().any(is_meta),
        literal_chars: pattern.chars().filter(|c| !is_meta(*c)).count(),
    }
}

/// A branch that the pattern matches, to test two patterns for overlap.
fn example_branch(pattern: &str) -> String {
    pattern.replace(['*', '?'], "x")
}

/// Branch globs: `*` also crosses `/`, as branch names are not paths to users.
/// Whether a branch pattern matches a branch, as [`branch_glob`] decides; a literal or a
/// literal followed by `*` (`main`, `release/*`) is compared as text, without compiling a
/// glob.
fn branch_matches(pattern: &str, branch: &str) -> bool {
    let is_meta = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\');
    match pattern.strip_suffix('*') {
        _ if !pattern.contains(is_meta) => pattern == branch,
        Some(prefix) if !prefix.contains(is_meta) => branch.starts_with(prefix),
        _ => branch_glob(pattern).is_match(branch),
    }
}

fn branch_glob(pattern: &str) -> GlobMatcher {
    Glob::new(pattern)
        .map(|g| g.compile_matcher())
        .unwrap_or_else(|_| Glob::new("").expect("the empty glob is valid").compile_matcher())
}

/// Checks a repository-relative path as written and returns it normalised (no `.`, no
/// trailing `/`). Absolute paths, `..` and backslashes are refused.
pub fn repo_path(value: &Located<String>, what: &str) -> Result<String> {
    normalise(&value.value).ok_or_else(|| {
        value.error(
            format!("{what} '{}' escapes the repository or is not a relative path", value.value),
            "write a path relative to the repository root, with '/' and without '..'",
        )
    })
}

/// `a/./b/` → `a/b`; `None` for absolute paths, `..` segments or backslashes.
pub fn normalise(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return None;
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

fn pattern(value: &Located<String>, what: &str) -> Result<()> {
    if normalise(&value.value).is_none_or(|p| p.is_empty()) {
        return Err(value.error(
            format!("{what} '{}' escapes the workflow folder or is empty", value.value),
            "write a glob relative to the workflow folder, without '..' or a leading '/'",
        ));
    }
    if let Err(e) = Glob::new(&value.value) {
        return Err(value.error(
            format!("{what} '{}' is not a valid glob: {}", value.value, e.kind()),
            "use '*', '?', '**' and [..] as in .gitignore",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("deploy.toml"), text)
    }

    fn message(r: Result<Config>) -> String {
        let e = r.expect_err("should be refused");
        assert!(error::is_user_error(&e));
        e.to_string()
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.project, "flytesnacks");
        assert_eq!(c.workflows, "workflows");
        assert_eq!(c.version_scheme, VersionScheme::Content);
        assert_eq!(c.flyte.endpoint, "sandbox");
        assert_eq!(c.images.default, DEFAULT_IMAGE);
        let names: Vec<_> = c.domains.iter().map(|d| d.name.value.as_str()).collect();
        assert_eq!(names, ["development", "staging", "production"]);
        assert_eq!(c.domain_for_branch("main").unwrap().unwrap().name.value, "staging");
        assert_eq!(c.domain_for_branch("release/1.2").unwrap().unwrap().name.value, "production");
        assert_eq!(c.domain_for_branch("feature/x").unwrap().unwrap().name.value, "development");
        assert_eq!(c.dependencies.len(), DEFAULT_DEPENDENCIES.len());
        assert_eq!(c.python.flytekit.value, DEFAULT_FLYTEKIT);
        assert!(c.images.named.is_empty());
    }

    #[test]
    fn python_and_named_images_are_checked_where_written() {
        let c = parse("[python]\nflytekit = \"1.15.4\"\n[images]\nnamed = { gpu = \"ghcr.io/o/gpu:1\" }\n").unwrap();
        assert_eq!(c.python.flytekit.value, "1.15.4");
        assert_eq!(c.images.named["gpu"], "ghcr.io/o/gpu:1");
        assert_eq!(c.images.registry, "localhost:5000/flyte", "other [images] keys keep their defaults");
        let e = message(parse("[python]\nflytekit = \">=1.10\"\n"));
        assert!(e.starts_with("deploy.toml:2:12: '>=1.10' is not a flytekit version"), "{e}");
        let e = message(parse("[python]\nflytekt = \"1\"\n"));
        assert!(e.contains("unknown field `flytekt`"), "{e}");
        let e = message(parse("[images]\nnamed = { default = \"a:1\" }\n"));
        assert!(e.starts_with("deploy.toml:2:21: 'default' is not a name for an image"), "{e}");
        let e = message(parse("[images]\nnamed = { gpu = \"a b\" }\n"));
        assert!(e.contains("image 'gpu' = 'a b' is not an image reference"), "{e}");
        let f = Path::new("workflows/a/workflow.toml");
        let e = Manifest::parse(f, "images = { \"x y\" = \"a:1\" }\n").unwrap_err().to_string();
        assert!(e.starts_with("workflows/a/workflow.toml:1:20: 'x y' is not a name for an image"), "{e}");
        let m = Manifest::parse(f, "images = { trainer = \"ghcr.io/o/t:2\" }\n").unwrap();
        assert_eq!(m.images["trainer"].value, "ghcr.io/o/t:2");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let m = message(parse("project = \"p\"\n[flyte]\nendpont = \"x\"\n"));
        assert!(m.starts_with("deploy.toml:3:1: unknown field `endpont`"), "{m}");
        assert!(m.contains("help:"), "{m}");
    }

    #[test]
    fn wrong_type_is_located() {
        let m = message(parse("version_scheme = 3\n"));
        assert!(m.starts_with("deploy.toml:1:18:"), "{m}");
    }

    #[test]
    fn duplicate_domain_is_refused() {
        let m = message(parse("[[domains]]\nname = \"dev\"\n[[domains]]\nname = \"dev\"\nbranches = [\"x\"]\n"));
        assert!(m.starts_with("deploy.toml:4:8: domain 'dev' is declared twice"), "{m}");
    }

    #[test]
    fn same_pattern_in_two_domains_is_refused() {
        let m = message(parse(
            "[[domains]]\nname = \"a\"\nbranches = [\"main\"]\n[[domains]]\nname = \"b\"\nbranches = [\"main\"]\n",
        ));
        assert!(m.starts_with("deploy.toml:6:13: branch pattern 'main'"), "{m}");
    }

    #[test]
    fn escaping_paths_are_refused() {
        assert!(message(parse("global = [\"../x\"]\n")).contains("escapes the repository"));
        assert!(message(parse("workflows = \"/abs\"\n")).contains("escapes the repository"));
        assert!(message(parse("dependencies = [\"../req.txt\"]\n")).contains("escapes"));
    }

    #[test]
    fn activation_defaults_to_true_but_not_in_the_builtin_development_domain() {
        let c = parse("").unwrap();
        let active: Vec<(&str, bool)> = c.domains.iter().map(|d| (d.name.value.as_str(), d.activate)).collect();
        assert_eq!(active, [("development", false), ("staging", true), ("production", true)]);
        let c = parse("[[domains]]\nname = \"development\"\nbranches = [\"*\"]\n[[domains]]\nname = \"s\"\nbranches = [\"main\"]\nactivate = false\n").unwrap();
        assert!(c.domain("development").unwrap().activate, "a declared domain activates unless it says not to");
        assert!(!c.domain("s").unwrap().activate);
        let m = message(parse("[[domains]]\nname = \"d\"\nactivate = \"no\"\n"));
        assert!(m.starts_with("deploy.toml:3:12:"), "{m}");
        assert!(m.contains("boolean"), "{m}");
    }

    #[test]
    fn unknown_promote_source_is_refused() {
        let m = message(parse("[[domains]]\nname = \"p\"\npromote_from = \"q\"\n"));
        assert!(m.contains("promote_from names domain 'q'"), "{m}");
    }

    #[test]
    fn manifest_checks_packages_and_paths() {
        let f = Path::new("workflows/a/workflow.toml");
        let e = Manifest::parse(f, "packages = [\"a-b\"]\n").unwrap_err().to_string();
        assert!(e.starts_with("workflows/a/workflow.toml:1:13:"), "{e}");
        let e = Manifest::parse(f, "shared = [\"/etc\"]\n").unwrap_err().to_string();
        assert!(e.contains("escapes the repository"), "{e}");
        let m = Manifest::parse(f, "name = \"x\"\nshared = [\"lib/\"]\n").unwrap();
        assert_eq!(m.shared[0].value, "lib/");
    }

    #[test]
    fn literal_and_prefix_patterns_match_as_globs_do() {
        let patterns = ["*", "main", "release/*", "release-*", "r?l*", "feat/**", "a[bc]", "{x,y}*", "re\\*", ""];
        let branches = ["main", "mainline", "release/1.2", "release/a/b", "release-", "release", "ab", "x1", "re*", ""];
        for p in patterns {
            for b in branches {
                assert_eq!(branch_matches(p, b), branch_glob(p).is_match(b), "pattern {p:?}, branch {b:?}");
            }
        }
    }

    #[test]
    fn the_default_dependency_patterns_are_valid() {
        for p in DEFAULT_DEPENDENCIES {
            let at = Located { value: p.to_string(), file: "deploy.toml".into(), line: 1, col: 1 };
            pattern(&at, "dependency pattern").unwrap();
        }
    }

    #[test]
    fn empty_domains_are_refused_where_written() {
        let m = message(parse("project = \"p\"\ndomains = []\n"));
        assert!(m.starts_with("deploy.toml:2:11: `domains` is empty"), "{m}");
        assert!(m.contains("help: declare at least one [[domains]] table"), "{m}");
    }

    #[test]
    fn endpoints_are_checked_where_written() {
        for ok in ["sandbox", "flyte-config", "dns:///flyte.example.com:443", "flyte.example.com:443", "http://h:1"] {
            assert_eq!(endpoint_problem(ok), None, "{ok}");
            let c = parse(&format!("[flyte]\nendpoint = \"{ok}\"\n")).unwrap();
            assert_eq!(c.flyte.endpoint, ok);
        }
        for (bad, says) in [("", "is empty"), ("ftp://x", "other than http"), ("https://", "no host"), ("a b", "white")]
        {
            let m = message(parse(&format!("[flyte]\ninsecure = true\nendpoint = \"{bad}\"\n")));
            assert!(m.starts_with("deploy.toml:3:12: endpoint ") && m.contains(says), "{bad}: {m}");
            assert!(m.contains("help: write `sandbox`"), "{m}");
        }
        assert!(parse("[flyte]\ninsecure = true\n").unwrap().flyte.insecure);
    }

    #[test]
    fn console_urls_are_checked_where_written() {
        assert_eq!(parse("").unwrap().flyte.console, None);
        assert_eq!(parse("[flyte]\nconsole = \"\"\n").unwrap().flyte.console, None);
        for (ok, kept) in [
            ("https://flyte.example.com/console", "https://flyte.example.com/console"),
            ("https://flyte.example.com/console/", "https://flyte.example.com/console"),
            ("http://localhost:30080/console", "http://localhost:30080/console"),
        ] {
            let c = parse(&format!("[flyte]\nconsole = \"{ok}\"\n")).unwrap();
            assert_eq!(c.flyte.console.as_deref(), Some(kept), "{ok}");
        }
        for (bad, says) in [
            ("flyte.example.com/console", "is not a URL"),
            ("ftp://flyte.example.com", "not an http"),
            ("https://flyte.example.com/console?x=1", "query"),
            (" ", "is not a URL"),
        ] {
            let m = message(parse(&format!("[flyte]\ninsecure = true\nconsole = \"{bad}\"\n")));
            assert!(m.starts_with("deploy.toml:3:11: console ") && m.contains(says), "{bad}: {m}");
            assert!(m.contains("help: write the Flyte console's address"), "{m}");
        }
    }
}
