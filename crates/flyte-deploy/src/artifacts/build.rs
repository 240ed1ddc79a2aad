//! `cargo xtask build WORKFLOW... [--push]`: builds the image of each named workflow that has
//! its own Dockerfile, unless the registry already has its tag. Reads top-down: load the
//! commit, decide for every workflow (registry check + policy) before anything is built, then
//! build from the committed files and push. Decisions come from image.rs, the tag from
//! fingerprint.rs, the context from codeset.rs, the registry check from registry.rs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::args::{Build, ReportFormat};
use crate::artifacts::codeset::CodeSet;
use crate::artifacts::image::{self, Destination, ImageDecision, ImageFacts};
use crate::artifacts::registry::{self, Credentials, ImageRef, Registry};
use crate::config::Config;
use crate::error;
use crate::plan::fingerprint;
use crate::workspace::repo::Repo;
use crate::workspace::source::{EntryKind, GitTree, Source};
use crate::workspace::{strip_dir, Workflow, Workspace};

/// What happened to one workflow's image (`build --format json`: one object each).
#[derive(Debug, serde::Serialize)]
struct Outcome {
    #[serde(rename = "name")]
    workflow: String,
    image: String,
    outcome: BuildOutcome,
    /// The pushed or found manifest's digest, when known.
    digest: Option<String>,
}

/// What `build` did for one workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum BuildOutcome {
    /// No Dockerfile: the default image, nothing to build.
    Default,
    /// The registry has the tag: nothing built.
    Exists,
    /// Built, not pushed.
    Built,
    /// Built and pushed.
    Pushed,
}

impl BuildOutcome {
    /// The text table's words.
    fn text(self) -> &'static str {
        match self {
            BuildOutcome::Default => "default image, nothing to build",
            BuildOutcome::Exists => "exists in the registry, build skipped",
            BuildOutcome::Built => "built, not pushed (pass --push)",
            BuildOutcome::Pushed => "built and pushed",
        }
    }
}

pub fn run(args: Build) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let commit = repo.commit("HEAD")?;
    let tree = GitTree::at_commit(&repo.git, &commit)?;
    let ws = Workspace::load(&tree)?;
    let mut selected = ws.select(&args.workflows)?;
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    selected.dedup_by(|a, b| a.name == b.name);
    let may_build = image::building_allowed(crate::settings::in_ci(), args.allow_local_build);
    let registry = Registry::new();

    // Decide for every workflow first: a refusal or an unreachable registry stops the command
    // before anything is built or pushed.
    let mut outcomes = Vec::new();
    let mut to_build: Vec<(&Workflow, ImageRef)> = Vec::new();
    for wf in selected {
        let Some(reference) = image_reference(&ws, &tree, wf)? else {
            outcomes.push(Outcome {
                workflow: wf.name.clone(),
                image: ws.config.images.default.clone(),
                outcome: BuildOutcome::Default,
                digest: None,
            });
            continue;
        };
        let image = ImageRef::parse(&reference)?;
        let digest = registry.manifest_digest(&image)?;
        let facts = ImageFacts {
            workflow: &wf.name,
            reference: &reference,
            own_image: true,
            exists: digest.is_some(),
            may_build,
            destination: Destination::Registry,
            dependencies: &wf.dependencies,
        };
        match image::decide(&facts) {
            ImageDecision::Reuse => outcomes.push(Outcome {
                workflow: wf.name.clone(),
                image: reference,
                outcome: BuildOutcome::Exists,
                digest,
            }),
            ImageDecision::Build => to_build.push((wf, image)),
            ImageDecision::Warn(message) => crate::output::warning(message),
            ImageDecision::Refuse(message) => return Err(error::user(message, "")),
        }
    }

    if !to_build.is_empty() {
        let builder = ImageBuilder::detect(&ws.config)?;
        for (wf, image) in to_build {
            let digest = builder.build(&tree, wf, &image, args.push, &registry)?;
            let outcome = if digest.is_some() { BuildOutcome::Pushed } else { BuildOutcome::Built };
            outcomes.push(Outcome { workflow: wf.name.clone(), image: image.to_string(), outcome, digest });
        }
    }

    outcomes.sort_by(|a, b| a.workflow.cmp(&b.workflow));
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&outcomes)?),
        ReportFormat::Text => {
            let mut rows = vec![["WORKFLOW".to_string(), "IMAGE".into(), "OUTCOME".into(), "DIGEST".into()]];
            rows.extend(
                outcomes
                    .into_iter()
                    .map(|o| [o.workflow, o.image, o.outcome.text().into(), o.digest.unwrap_or_default()]),
            );
            print!("{}", crate::report::columns(&rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds and pushes workflow images with the builder chosen once (for `build` and `deploy`).
pub struct ImageBuilder {
    builder: image::Builder,
    storage: image::Storage,
    platform: Option<String>,
}

impl ImageBuilder {
    /// Chooses the builder from `[images] builder` (detecting it for `auto`) and reads the
    /// storage and platform settings from the environment (image.rs).
    pub fn detect(config: &Config) -> Result<ImageBuilder> {
        Ok(ImageBuilder {
            builder: image::detect(config.images.builder)?,
            storage: image::Storage::from_env(),
            platform: image::platform_from_env(),
        })
    }

    /// Builds `image` for `wf` from the commit's files and, with `push`, pushes it with the
    /// credentials the registry check uses. Returns the digest the registry then has.
    pub fn build(
        &self,
        tree: &GitTree<'_>,
        wf: &Workflow,
        image: &ImageRef,
        push: bool,
        registry: &Registry,
    ) -> Result<Option<String>> {
        let dir = tempfile::Builder::new().prefix("flyte-deploy-build").tempdir().context("creating a temp dir")?;
        let spec = materialise(tree, wf, dir.path(), &image.to_string(), self.platform.clone())?;
        crate::output::status(format_args!(
            "building {image} for workflow {} with {}",
            wf.name,
            self.builder.program()
        ));
        image::run(&image::build_command(self.builder, &self.storage, &spec))?;
        if !push {
            return Ok(None);
        }
        let authfile = match registry::credentials_for(&image.registry)? {
            Some(Credentials { file: Some(file), .. }) => Some(file),
            Some(env_credentials) => {
                let file = dir.path().join("auth/config.json");
                write_private(&file, &env_credentials.docker_config(&image.registry))?;
                Some(file)
            }
            None => None,
        };
        image::run(&image::push_command(self.builder, &self.storage, image, authfile.as_deref()))?;
        let digest = registry
            .manifest_digest(image)?
            .ok_or_else(|| anyhow::anyhow!("pushed {image}, but the registry does not list the tag afterwards"))?;
        Ok(Some(digest))
    }
}

/// Writes a file readable only by us (it holds credentials).
fn write_private(file: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = file.parent().expect("an auth file lies in a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("creating {}", file.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", file.display()))
}

/// The workflow's image reference (`<registry>/<workflow>:<dependency hash prefix>`), or
/// `None` when it uses the default image.
pub fn image_reference(ws: &Workspace, tree: &dyn Source, wf: &Workflow) -> Result<Option<String>> {
    if wf.dockerfile.is_none() {
        return Ok(None);
    }
    let deps = fingerprint::deps_hash(tree, wf)?;
    Ok(Some(fingerprint::image_reference(&ws.config, wf, &deps)))
}

/// Writes the build context into `dir/context` and the Dockerfile to `dir/Dockerfile`, from
/// the commit's tree (committed files only): the workflow's code set (its folder as fast
/// registration ships it, shared paths under their last component) plus its dependency
/// files at their place in the folder; the Dockerfile's `ARG tag`, if any, gets `reference`. Files are 0644 or 0755 and folders 0755 whatever the
/// umask, so neither the checkout nor the machine reaches the image.
fn materialise(
    tree: &GitTree<'_>,
    wf: &Workflow,
    dir: &Path,
    reference: &str,
    platform: Option<String>,
) -> Result<image::BuildSpec> {
    use std::os::unix::fs::PermissionsExt;
    let context = dir.join("context");
    let set = CodeSet::at(tree.repo(), tree.tree(), wf)?;
    set.materialise(tree.repo(), &context)?;
    for dependency in &wf.dependencies {
        let Some(rel) = strip_dir(dependency.as_bytes(), wf.path.as_bytes()).filter(|r| !r.is_empty()) else {
            continue; // a Dockerfile outside the folder is given with --file
        };
        let rel = String::from_utf8_lossy(rel).into_owned();
        if set.entries.iter().any(|e| e.path == rel.as_bytes()) {
            continue;
        }
        let target = context.join(&rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let bytes = tree.read(dependency)?.with_context(|| format!("reading {dependency} in {}", tree.describe()))?;
        std::fs::write(&target, bytes).with_context(|| format!("writing {}", target.display()))?;
        let mode = match tree.kind(dependency)? {
            Some(EntryKind::File { executable: true }) => 0o755,
            _ => 0o644,
        };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", target.display()))?;
    }
    fix_dir_modes(&context)?;
    let dockerfile_path = wf.dockerfile.as_deref().expect("only workflows with a Dockerfile are built");
    let dockerfile = dir.join("Dockerfile");
    let text = tree.read(dockerfile_path)?.with_context(|| format!("reading {dockerfile_path}"))?;
    let build_args = image::build_args(&String::from_utf8_lossy(&text), reference);
    std::fs::write(&dockerfile, text).with_context(|| format!("writing {}", dockerfile.display()))?;
    Ok(image::BuildSpec { context, dockerfile, reference: reference.to_string(), platform, build_args })
}

/// Every folder 0755, whatever the umask.
fn fix_dir_modes(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fix_dir_modes(&entry.path())?;
        }
    }
    Ok(())
}
