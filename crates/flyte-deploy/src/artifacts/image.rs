//! Container images: which builder builds them (docker, podman or buildah, configured or
//! detected), the reproducible command lines that build and push (with the build arguments a
//! Dockerfile asks for: `ARG tag` gets the image's own reference), and the policy of when an
//! image may be built. The policy and the command lines are pure; [`detect`] and [`run`] are
//! the only side effects. Does not look at registries (registry.rs) or choose tags
//! (fingerprint.rs).
//!
//! Environment (the deploy.toml key set is fixed, so these are env vars):
//! - `FLYTE_DEPLOY_PLATFORM`: `--platform` for every build (e.g. `linux/amd64`).
//! - `FLYTE_DEPLOY_STORAGE_DRIVER`, `FLYTE_DEPLOY_STORAGE_ROOT`, `FLYTE_DEPLOY_STORAGE_RUNROOT`:
//!   buildah's and podman's `--storage-driver`, `--root` and `--runroot` (unset: their defaults).
//!   In a container without overlay support use `vfs`; tests use a temp dir for both roots.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::artifacts::dockerfile;
use crate::artifacts::registry;
use crate::config;
use crate::error;
use crate::settings::{self, Var};

pub(crate) const PLATFORM_ENV: Var = settings::FLYTE_DEPLOY_PLATFORM;
pub(crate) const STORAGE_DRIVER_ENV: Var = settings::FLYTE_DEPLOY_STORAGE_DRIVER;
pub(crate) const STORAGE_ROOT_ENV: Var = settings::FLYTE_DEPLOY_STORAGE_ROOT;
pub(crate) const STORAGE_RUNROOT_ENV: Var = settings::FLYTE_DEPLOY_STORAGE_RUNROOT;

/// The program that builds and pushes images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builder {
    /// `docker buildx build` (BuildKit): reproducible with `SOURCE_DATE_EPOCH` and
    /// `rewrite-timestamp`.
    DockerBuildx,
    /// `docker build` without the buildx plugin.
    Docker,
    Podman,
    Buildah,
}

impl Builder {
    pub(crate) fn program(self) -> &'static str {
        match self {
            Builder::DockerBuildx | Builder::Docker => "docker",
            Builder::Podman => "podman",
            Builder::Buildah => "buildah",
        }
    }
}

/// What is installed and working on this machine, as far as choosing a builder goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Installed {
    /// The docker CLI is on PATH.
    pub docker: bool,
    /// `docker info` answers: an engine runs.
    pub docker_engine: bool,
    /// `docker buildx version` answers.
    pub docker_buildx: bool,
    pub podman: bool,
    pub buildah: bool,
}

/// The builder to use: the configured one (which must be installed), or for `auto` the first
/// that works of docker (when its engine answers), podman, buildah.
pub(crate) fn choose(configured: config::Builder, installed: &Installed) -> Result<Builder> {
    let docker = if installed.docker_buildx { Builder::DockerBuildx } else { Builder::Docker };
    let missing = |name: &str| {
        error::user(
            format!("deploy.toml sets `[images] builder = \"{name}\"` but `{name}` is not on PATH"),
            format!("install {name}, or set `builder = \"auto\"` to use what is installed"),
        )
    };
    match configured {
        config::Builder::Docker if installed.docker => Ok(docker),
        config::Builder::Docker => Err(missing("docker")),
        config::Builder::Podman if installed.podman => Ok(Builder::Podman),
        config::Builder::Podman => Err(missing("podman")),
        config::Builder::Buildah if installed.buildah => Ok(Builder::Buildah),
        config::Builder::Buildah => Err(missing("buildah")),
        config::Builder::Auto if installed.docker && installed.docker_engine => Ok(docker),
        config::Builder::Auto if installed.podman => Ok(Builder::Podman),
        config::Builder::Auto if installed.buildah => Ok(Builder::Buildah),
        config::Builder::Auto => Err(error::user(
            "no image builder found: no running Docker engine, and neither podman nor buildah on PATH",
            "install buildah (or podman, or Docker), or build images in CI",
        )),
    }
}

/// Looks at this machine and chooses the builder (probes only what the choice needs).
pub(crate) fn detect(configured: config::Builder) -> Result<Builder> {
    let docker = which("docker").is_some();
    let wants_docker = matches!(configured, config::Builder::Docker | config::Builder::Auto);
    let answers = |args: &[&str]| {
        duct::cmd("docker", args).stdout_null().stderr_null().unchecked().run().is_ok_and(|o| o.status.success())
    };
    let docker_engine = docker && configured == config::Builder::Auto && answers(&["info"]);
    let docker_buildx = docker && wants_docker && answers(&["buildx", "version"]);
    let installed = Installed {
        docker,
        docker_engine,
        docker_buildx,
        podman: which("podman").is_some(),
        buildah: which("buildah").is_some(),
    };
    choose(configured, &installed)
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&settings::PATH.get_os()?).map(|d| d.join(program)).find(|p| p.is_file())
}

/// Where buildah and podman keep images (`None`: their own default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Storage {
    pub driver: Option<String>,
    pub root: Option<PathBuf>,
    pub runroot: Option<PathBuf>,
}

impl Storage {
    /// From `FLYTE_DEPLOY_STORAGE_DRIVER`, `_ROOT` and `_RUNROOT`.
    pub(crate) fn from_env() -> Storage {
        Storage {
            driver: STORAGE_DRIVER_ENV.get_os().map(|v| v.to_string_lossy().into_owned()),
            root: STORAGE_ROOT_ENV.get_os().map(PathBuf::from),
            runroot: STORAGE_RUNROOT_ENV.get_os().map(PathBuf::from),
        }
    }

    fn global_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(d) = &self.driver {
            args.extend(["--storage-driver".into(), d.into()]);
        }
        if let Some(r) = &self.root {
            args.extend(["--root".into(), r.into()]);
        }
        if let Some(r) = &self.runroot {
            args.extend(["--runroot".into(), r.into()]);
        }
        args
    }
}

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildSpec {
    /// The build context: a folder holding only committed files.
    pub context: PathBuf,
    /// The Dockerfile (may lie outside the context).
    pub dockerfile: PathBuf,
    /// The full reference the image is tagged with (`registry/name:tag`).
    pub reference: String,
    /// `--platform`, from `FLYTE_DEPLOY_PLATFORM`.
    pub platform: Option<String>,
    /// `--build-arg name=value`, in order (see [`build_args`]).
    pub build_args: Vec<(String, String)>,
}

/// The build argument through which a Dockerfile learns the reference of the image being
/// built: Flyte's examples (flytesnacks) declare `ARG tag` and set
/// `ENV FLYTE_INTERNAL_IMAGE $tag`.
pub(crate) const IMAGE_REFERENCE_ARG: &str = "tag";

/// The build arguments of `dockerfile` (its text) built as `reference`: `tag=<reference>` when
/// the Dockerfile declares `ARG tag` in any stage, else none (builders warn of an argument
/// that no `ARG` takes). The reference is content-addressed, so the image stays reproducible.
pub(crate) fn build_args(dockerfile: &str, reference: &str) -> Vec<(String, String)> {
    if dockerfile::declares_arg(dockerfile, IMAGE_REFERENCE_ARG) {
        vec![(IMAGE_REFERENCE_ARG.to_string(), reference.to_string())]
    } else {
        Vec::new()
    }
}

/// A program with its argv and extra environment: what [`run`] executes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub program: &'static str,
    pub args: Vec<OsString>,
    pub env: Vec<(&'static str, OsString)>,
}

impl Invocation {
    /// The command as one line, for messages.
    pub(crate) fn display(&self) -> String {
        std::iter::once(self.program.to_string())
            .chain(self.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The platform from `FLYTE_DEPLOY_PLATFORM`.
pub(crate) fn platform_from_env() -> Option<String> {
    PLATFORM_ENV.get()
}

/// The reproducible build command: every timestamp in the image is the epoch, so the same
/// context and Dockerfile give the same digest on any machine and at any time.
pub(crate) fn build_command(builder: Builder, storage: &Storage, spec: &BuildSpec) -> Invocation {
    let mut args: Vec<OsString> = Vec::new();
    let mut env = vec![("SOURCE_DATE_EPOCH", OsString::from("0"))];
    match builder {
        Builder::Buildah => {
            args.extend(storage.global_args());
            // chroot isolation runs RUN steps without user namespaces or a container runtime.
            args.extend(["bud", "--isolation", "chroot", "--timestamp", "0", "--layers=false"].map(OsString::from));
        }
        Builder::Podman => {
            args.extend(storage.global_args());
            args.extend(["build", "--timestamp", "0"].map(OsString::from));
        }
        Builder::DockerBuildx => {
            args.extend(["buildx", "build", "--provenance=false", "--sbom=false"].map(OsString::from));
            args.push(format!("--output=type=docker,name={},rewrite-timestamp=true", spec.reference).into());
        }
        Builder::Docker => {
            args.push("build".into());
            env.push(("DOCKER_BUILDKIT", "1".into()));
        }
    }
    if builder != Builder::DockerBuildx {
        args.extend(["--tag".into(), OsString::from(&spec.reference)]);
    }
    args.extend(["--file".into(), spec.dockerfile.clone().into_os_string()]);
    for (name, value) in &spec.build_args {
        args.extend(["--build-arg".into(), format!("{name}={value}").into()]);
    }
    if let Some(p) = &spec.platform {
        args.extend(["--platform".into(), p.into()]);
    }
    args.push(spec.context.clone().into_os_string());
    Invocation { program: builder.program(), args, env }
}

/// The push command. TLS verification is turned off only for loopback registries and those
/// listed in `FLYTE_DEPLOY_INSECURE_REGISTRIES` (Docker decides that itself from its own
/// daemon settings, and already treats 127.0.0.0/8 as insecure). `authfile` is a Docker
/// config.json with the registry's credentials (the one the registry check used).
pub(crate) fn push_command(
    builder: Builder,
    storage: &Storage,
    image: &registry::ImageRef,
    authfile: Option<&Path>,
) -> Invocation {
    let reference = image.to_string();
    let mut args: Vec<OsString> = Vec::new();
    let mut env = Vec::new();
    match builder {
        Builder::Buildah | Builder::Podman => {
            args.extend(storage.global_args());
            args.push("push".into());
            if registry::is_insecure(&image.registry) {
                args.push("--tls-verify=false".into());
            }
            if let Some(file) = authfile {
                args.extend(["--authfile".into(), file.as_os_str().to_owned()]);
            }
            args.push(OsString::from(&reference));
            args.push(format!("docker://{reference}").into());
        }
        Builder::DockerBuildx | Builder::Docker => {
            args.extend(["push".into(), OsString::from(&reference)]);
            if let Some(dir) = authfile.and_then(Path::parent) {
                env.push(("DOCKER_CONFIG", dir.as_os_str().to_owned()));
            }
        }
    }
    Invocation { program: builder.program(), args, env }
}

/// Runs an invocation with the builder's output going to our stderr (stdout stays ours).
pub(crate) fn run(invocation: &Invocation) -> Result<()> {
    let mut cmd = duct::cmd(invocation.program, &invocation.args).stdout_to_stderr().unchecked();
    for (k, v) in &invocation.env {
        cmd = cmd.env(k, v);
    }
    let out = cmd.run().with_context(|| format!("running {}", invocation.display()))?;
    if !out.status.success() {
        anyhow::bail!("`{}` failed ({})", invocation.display(), out.status);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Policy.

/// Where the image is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    /// `cargo xtask build`: only the registry.
    Registry,
    /// A deploy to the sandbox: it runs no executions, so a missing image does not stop it.
    Sandbox,
    /// A deploy to a real FlyteAdmin: the image must exist before anything is registered.
    FlyteAdmin,
}

/// What is known about one workflow's image.
#[derive(Debug, Clone)]
pub(crate) struct ImageFacts<'a> {
    pub workflow: &'a str,
    /// `registry/name:tag`.
    pub reference: &'a str,
    /// The workflow has its own Dockerfile (otherwise it uses `[images] default`).
    pub own_image: bool,
    /// The registry has the tag.
    pub exists: bool,
    /// Building is allowed here: in CI, or with `--allow-local-build` (see [`building_allowed`]).
    pub may_build: bool,
    pub destination: Destination,
    /// The dependency files whose change gave the new tag (when known; else the workflow's
    /// dependency files), repository-relative.
    pub dependencies: &'a [String],
}

/// What to do about one workflow's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageDecision {
    /// Build it (and push it).
    Build,
    /// It exists (or the workflow uses the default image): use it.
    Reuse,
    /// Go on without it, and say so in the report.
    Warn(String),
    /// Stop: nothing of this workflow may be registered.
    Refuse(String),
}

/// True in CI (`CI=true` or `CI=1`) or when the user passed `--allow-local-build`.
pub(crate) fn building_allowed(ci: bool, allow_local_build: bool) -> bool {
    ci || allow_local_build
}

/// The image policy: images are built where pushing is possible (CI, or a developer who
/// says so); code-only deploys from other machines need the image CI built. Pure.
pub(crate) fn decide(f: &ImageFacts) -> ImageDecision {
    if !f.own_image || f.exists {
        return ImageDecision::Reuse;
    }
    if f.may_build {
        return ImageDecision::Build;
    }
    let changed =
        if f.dependencies.is_empty() { "its dependency files".to_string() } else { f.dependencies.join(", ") };
    match f.destination {
        Destination::Sandbox => ImageDecision::Warn(format!(
            "image {} of workflow {} does not exist yet ({changed} changed); the sandbox runs no \
             executions, so it is registered anyway: CI builds the image",
            f.reference, f.workflow
        )),
        Destination::FlyteAdmin => ImageDecision::Refuse(format!(
            "image {} of workflow {} does not exist: {changed} changed, and CI must build the image first \
             (images are built in CI; push your commit and let CI deploy, or pass --allow-local-build \
             where you can push to the registry)",
            f.reference, f.workflow
        )),
        Destination::Registry => ImageDecision::Refuse(format!(
            "image {} of workflow {} does not exist, and images are built in CI ({changed} changed): \
             CI must build the image first, or pass --allow-local-build to build it on this machine",
            f.reference, f.workflow
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(exists: bool, may_build: bool, destination: Destination) -> ImageFacts<'static> {
        ImageFacts {
            workflow: "etl",
            reference: "reg.io/flyte/etl:abc",
            own_image: true,
            exists,
            may_build,
            destination,
            dependencies: Box::leak(Box::new(vec!["workflows/etl/requirements.txt".to_string()])),
        }
    }

    #[test]
    fn policy_builds_only_what_is_missing_and_allowed() {
        use Destination::*;
        for d in [Registry, Sandbox, FlyteAdmin] {
            assert_eq!(decide(&facts(true, false, d)), ImageDecision::Reuse);
            assert_eq!(decide(&facts(true, true, d)), ImageDecision::Reuse);
            assert_eq!(decide(&facts(false, true, d)), ImageDecision::Build);
        }
        let default_image = ImageFacts { own_image: false, ..facts(false, false, FlyteAdmin) };
        assert_eq!(decide(&default_image), ImageDecision::Reuse);
    }

    #[test]
    fn a_missing_image_warns_for_the_sandbox_and_refuses_for_flyteadmin() {
        let ImageDecision::Warn(w) = decide(&facts(false, false, Destination::Sandbox)) else { panic!() };
        assert!(w.contains("reg.io/flyte/etl:abc") && w.contains("sandbox"), "{w}");
        let ImageDecision::Refuse(r) = decide(&facts(false, false, Destination::FlyteAdmin)) else { panic!() };
        assert!(r.contains("workflows/etl/requirements.txt changed"), "{r}");
        assert!(r.contains("CI must build the image first"), "{r}");
        let ImageDecision::Refuse(r) = decide(&facts(false, false, Destination::Registry)) else { panic!() };
        assert!(r.contains("--allow-local-build"), "{r}");
    }

    #[test]
    fn building_is_allowed_in_ci_or_when_asked() {
        assert!(building_allowed(true, false));
        assert!(building_allowed(false, true));
        assert!(!building_allowed(false, false));
    }

    #[test]
    fn auto_prefers_a_running_docker_then_podman_then_buildah() {
        use config::Builder as C;
        let only_cli = Installed { docker: true, buildah: true, ..Installed::default() };
        assert_eq!(choose(C::Auto, &only_cli).unwrap(), Builder::Buildah, "a docker CLI without engine is skipped");
        let engine = Installed { docker_engine: true, docker_buildx: true, ..only_cli };
        assert_eq!(choose(C::Auto, &engine).unwrap(), Builder::DockerBuildx);
        let podman = Installed { podman: true, ..only_cli };
        assert_eq!(choose(C::Auto, &podman).unwrap(), Builder::Podman);
        assert_eq!(choose(C::Docker, &only_cli).unwrap(), Builder::Docker);
        assert!(error::is_user_error(&choose(C::Podman, &only_cli).unwrap_err()));
        assert!(error::is_user_error(&choose(C::Auto, &Installed::default()).unwrap_err()));
    }

    #[test]
    fn command_lines_are_reproducible_and_argv_safe() {
        let storage = Storage { driver: Some("vfs".into()), root: Some("/s r".into()), runroot: None };
        let spec = BuildSpec {
            context: "/tmp/ctx; rm -rf /".into(),
            dockerfile: "/tmp/Dockerfile".into(),
            reference: "127.0.0.1:5000/flyte/etl:abc".into(),
            platform: Some("linux/amd64".into()),
            build_args: Vec::new(),
        };
        let b = build_command(Builder::Buildah, &storage, &spec);
        assert_eq!(
            b.display(),
            "buildah --storage-driver vfs --root /s r bud --isolation chroot --timestamp 0 --layers=false \
             --tag 127.0.0.1:5000/flyte/etl:abc --file /tmp/Dockerfile --platform linux/amd64 /tmp/ctx; rm -rf /"
        );
        assert_eq!(b.args.last().unwrap(), "/tmp/ctx; rm -rf /", "the context is one argv entry");
        let d = build_command(Builder::DockerBuildx, &storage, &spec);
        assert!(d.env.contains(&("SOURCE_DATE_EPOCH", "0".into())));
        assert!(d.display().contains("rewrite-timestamp=true") && !d.display().contains("--root"));

        let local = registry::ImageRef::parse(&spec.reference).unwrap();
        let p = push_command(Builder::Buildah, &storage, &local, None);
        assert!(p.display().contains("push --tls-verify=false 127.0.0.1:5000/flyte/etl:abc docker://127.0.0.1"));
        let remote = registry::ImageRef::parse("ghcr.io/org/etl:abc").unwrap();
        let p = push_command(Builder::Podman, &storage, &remote, Some(Path::new("/c/config.json")));
        assert!(!p.display().contains("tls-verify") && p.display().contains("--authfile /c/config.json"));
        let p = push_command(Builder::Docker, &storage, &remote, Some(Path::new("/c/config.json")));
        assert_eq!(p.env, vec![("DOCKER_CONFIG", OsString::from("/c"))]);
    }

    #[test]
    fn a_dockerfile_declaring_arg_tag_gets_its_own_reference() {
        let reference = "127.0.0.1:5000/flyte/etl:0123456789abcdef";
        let flytesnacks = "FROM python:3.11-slim\nARG tag\nENV FLYTE_INTERNAL_IMAGE $tag\n";
        let want = vec![("tag".to_string(), reference.to_string())];
        assert_eq!(build_args(flytesnacks, reference), want);
        assert_eq!(build_args("FROM a AS b\nRUN x \\\n  y\nFROM b\narg tag=default\n", reference), want);
        for other in ["FROM a\n", "FROM a\nARG tags\n", "FROM a\nARG mytag\n", "FROM a\nARG Tag\n"] {
            assert_eq!(build_args(other, reference), [], "{other}");
        }
    }

    #[test]
    fn every_builder_passes_the_build_args_as_argv_entries() {
        let storage = Storage::default();
        let spec = BuildSpec {
            context: "/tmp/ctx".into(),
            dockerfile: "/tmp/Dockerfile".into(),
            reference: "reg.io/flyte/etl:abc".into(),
            platform: None,
            build_args: build_args("FROM a\nARG tag\n", "reg.io/flyte/etl:abc"),
        };
        for builder in [Builder::Buildah, Builder::Podman, Builder::Docker, Builder::DockerBuildx] {
            let args = build_command(builder, &storage, &spec).args;
            let at = args.iter().position(|a| a == "--build-arg").unwrap_or_else(|| panic!("{builder:?}: {args:?}"));
            assert_eq!(args[at + 1], "tag=reg.io/flyte/etl:abc", "{builder:?}: one argv entry");
            assert_eq!(args.iter().filter(|a| *a == "--build-arg").count(), 1, "{builder:?}");
            assert_eq!(args.last().unwrap(), "/tmp/ctx", "{builder:?}: the context stays last");
            let without = BuildSpec { build_args: Vec::new(), ..spec.clone() };
            let args = build_command(builder, &storage, &without).args;
            assert!(!args.iter().any(|a| a == "--build-arg"), "{builder:?}: {args:?}");
        }
        let b = build_command(Builder::Buildah, &storage, &spec);
        assert!(b.display().contains("--timestamp 0") && b.env.contains(&("SOURCE_DATE_EPOCH", "0".into())));
    }
}
