//! The command-line contract of the product's commands (DESIGN.md): each command's flags,
//! declared once; the doc comments are the `--help` text. The `xtask` binary puts them
//! together into its command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Output format of `list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

/// List every workflow of the working tree: name, folder, project, packages, Dockerfile,
/// dependency files and shared paths.
#[derive(Debug, Parser)]
pub struct List {
    /// `text` (a table) or `json` (an array of objects sorted by name).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    GithubMatrix,
}

/// What to do when the diff base cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnMissingBase {
    /// Exit with status 2 and say how to fetch enough history.
    Fail,
    /// Plan every workflow as changed, and say so.
    All,
}

/// Show which workflows a change reaches and what each needs (rebuild, fast, unchanged,
/// removed), with the reasons. Computes without side effects.
#[derive(Debug, Parser)]
pub struct Plan {
    #[command(flatten)]
    pub range: Range,
    /// Output: a text table, the plan JSON (compact, one workflow a line), or a GitHub
    /// Actions matrix of the workflows needing work.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// With `--format github-matrix`: print chunk N (from 0) of at most 256 entries.
    #[arg(long, default_value_t = 0)]
    pub chunk: usize,
}

/// The change to look at and where it goes; shared by `plan` and `deploy`.
#[derive(Debug, Clone, Parser)]
pub struct Range {
    /// The revision the change is measured from (default: from the CI context, else the
    /// merge-base with the default branch). The diff is always merge-base..head.
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    /// The revision being deployed.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// The Flyte domain (default: from deploy.toml's branch patterns).
    #[arg(short, long, value_name = "D")]
    pub domain: Option<String>,
    /// Treat every workflow as changed.
    #[arg(long)]
    pub all: bool,
    /// When the base cannot be resolved (shallow clone, missing ref): fail, or plan all.
    #[arg(long, value_enum, default_value_t = OnMissingBase::Fail)]
    pub on_missing_base: OnMissingBase,
}

/// Write each workflow's fast-registration code archive, reproducibly, from the commit's
/// tree: DIR/<workflow>-<version>.tar.gz.
#[derive(Debug, Parser)]
pub struct Package {
    /// Workflows to package (names as `list` shows).
    #[arg(required = true, value_name = "WORKFLOW")]
    pub workflows: Vec<String>,
    /// Where to write the archives.
    #[arg(long, value_name = "DIR", default_value = "target/flyte-packages")]
    pub out: PathBuf,
    /// The commit to package.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub head: String,
    /// Package the working tree's tracked files instead of the commit (version gets
    /// `-dirty`; deployable only to development).
    #[arg(long)]
    pub dirty: bool,
    /// `text` (a table) or `json` (an array: name, version, image, path, size, sha256, md5).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Build the image of workflows that have their own Dockerfile, unless the registry has
/// its tag already.
#[derive(Debug, Parser)]
pub struct Build {
    /// Workflows to build.
    #[arg(required = true, value_name = "WORKFLOW")]
    pub workflows: Vec<String>,
    /// Push the built image to the registry.
    #[arg(long)]
    pub push: bool,
    /// Build on this machine even outside CI (images are built in CI by default).
    #[arg(long)]
    pub allow_local_build: bool,
    /// `text` (a table) or `json` (an array sorted by name: name, image, outcome
    /// `default` | `exists` | `built` | `pushed`, digest or null).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Output format of `deploy` and `promote`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

/// Register the workflows a change reaches into the domain of the branch: plan, image,
/// package, serialize, hydrate, register, record.
#[derive(Debug, Parser)]
pub struct Deploy {
    #[command(flatten)]
    pub range: Range,
    /// Print the plan with versions and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Deploy only these workflows of the plan (a CI matrix entry); the plan is computed as for all.
    #[arg(long = "workflow", value_name = "NAME")]
    pub workflows: Vec<String>,
    /// `text` (a table on stdout, each workflow's warnings and errors on stderr, console links
    /// when `[flyte] console` is set) or `json` (one object on stdout; each workflow's `url`
    /// is its console page, or null).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Build missing images on this machine even outside CI (images are built in CI by default).
    #[arg(long)]
    pub allow_local_build: bool,
    /// Deploy the working tree's tracked files instead of the commit (as `package --dirty`):
    /// a workflow with uncommitted changes gets a version ending in `-dirty`. Development
    /// only; refused elsewhere (exit 2).
    #[arg(long)]
    pub dirty: bool,
    /// Serialize with at most N workers at once (one long-lived serializer per environment;
    /// environments are built by the same workers). Default: the number of cores.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Deploy a change that removes more than half of the workflows (their launch plans are
    /// deactivated); without it such a change is refused, as a typo in `workflows` or a bad
    /// merge would look the same.
    #[arg(long)]
    pub allow_mass_removal: bool,
}

/// Register into one domain exactly the versions another domain has (same specs, image and
/// code archive), with the target domain's settings.
#[derive(Debug, Parser)]
pub struct Promote {
    /// The domain the versions come from.
    #[arg(long, value_name = "DOMAIN")]
    pub from: String,
    /// The domain they go to.
    #[arg(long, value_name = "DOMAIN")]
    pub to: String,
    /// Workflows to promote (default: all).
    #[arg(value_name = "WORKFLOW")]
    pub workflows: Vec<String>,
    /// The commit whose versions are promoted.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    pub commit: String,
    /// `text` (a table on stdout, each workflow's warnings and errors on stderr, console links
    /// when `[flyte] console` is set) or `json` (one object on stdout; each workflow's `url`
    /// is its console page, or null).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Make an earlier version that a domain had the active one again: its launch plans are
/// activated (their schedules move to them), anything of it missing in the domain is
/// registered again from the serialization cache, and the rollback is recorded in history.
/// Refused (exit 2) for a version the domain never had.
#[derive(Debug, Parser)]
pub struct Rollback {
    /// The domain to roll back (one that activates launch plans).
    #[arg(short, long, value_name = "D")]
    pub domain: String,
    /// A commit (each workflow goes back to its version at that commit) or a version
    /// (as `history` shows it).
    #[arg(long, value_name = "COMMIT|VERSION")]
    pub to: String,
    /// Workflows to roll back (default: every workflow the domain has records of).
    #[arg(value_name = "WORKFLOW")]
    pub workflows: Vec<String>,
    /// `text` (a table) or `json` (the deploy JSON, action `rollback`).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

/// Show what was registered where, from which commit.
#[derive(Debug, Parser)]
pub struct History {
    /// Only this workflow.
    #[arg(value_name = "WORKFLOW")]
    pub workflow: Option<String>,
    /// Only this domain.
    #[arg(short, long, value_name = "D")]
    pub domain: Option<String>,
    /// `text` (a table, and with a workflow each version's path through the domains) or
    /// `json` (an array of records, oldest first: commit, workflow, domain, version, image,
    /// actor, time, outcome, and promoted_from and launch_plans where known).
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}
