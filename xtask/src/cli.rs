//! The command line: the subcommands, each with the flags the core declares for it
//! (`flyte_deploy::args`), and the project's own `test` and `bench`. The doc comments are the
//! `--help` text. Parsing only; each command lives in `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use flyte_deploy::args::{Build, Deploy, History, List, Package, Plan, Promote, Rollback};

/// `--version`: `flyte-deploy X.Y.Z (<commit>)`, the commit the binary was built from
/// (`build.rs`; "unknown" when it was not built in a git checkout).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("FLYTE_DEPLOY_COMMIT"), ")");

/// flyte-deploy: CI/CD for a monorepo of Flyte workflows.
///
/// Finds which workflows a git change touched, decides per workflow whether its image must be
/// rebuilt or fast registration of its code is enough, versions it by content, and registers
/// it to the Flyte domain of the branch. Works on the git repository containing the current
/// directory; settings come from its deploy.toml.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", display_name = "flyte-deploy", version = VERSION)]
pub(crate) struct Cli {
    /// Print only errors and the data asked for: no notes, warnings or progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print where the endpoint and sign-in came from (the precedence) and how long
    /// each stage took.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    List(List),
    Plan(Plan),
    Package(Package),
    Build(Build),
    Deploy(Deploy),
    Promote(Promote),
    Rollback(Rollback),
    History(History),
    Completions(Completions),
    Sandbox(Sandbox),
    Test(Test),
    Bench(Bench),
}

/// Print the completion script of a shell on stdout. It completes the `xtask` binary (as CI
/// builds it), or `cargo xtask` through an alias: `alias xtask='cargo xtask'`, then
/// `source <(xtask completions bash)`.
#[derive(Debug, Parser)]
pub(crate) struct Completions {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells completions are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl From<Shell> for clap_complete::Shell {
    fn from(shell: Shell) -> clap_complete::Shell {
        match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// Serve the embedded FlyteAdmin sandbox (the registration part of the API) on loopback.
#[derive(Debug, Parser)]
pub(crate) struct Sandbox {
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8089")]
    pub addr: String,
    /// Where the state (SQLite) and uploaded archives live.
    #[arg(long, value_name = "DIR", default_value = ".flyte/sandbox")]
    pub data: PathBuf,
    /// Delay every gRPC call by this many milliseconds (to measure concurrency).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,
    /// Require a bearer token on every call (but AuthMetadataService's), as FlyteAdmin with
    /// sign-in does: a JWT access token signed by this OAuth2 issuer (its keys from
    /// ISSUER/.well-known/openid-configuration), which clients discover through
    /// GetOAuth2Metadata.
    #[arg(long, value_name = "ISSUER", requires = "token_audience")]
    pub require_token: Option<String>,
    /// The audience (`aud`) the required tokens must name.
    #[arg(long, value_name = "AUDIENCE", requires = "require_token")]
    pub token_audience: Option<String>,
}

/// Install what the tests need (Debian packages when root, uv, and the default serialization
/// environment in target/flyte-envs, the folder every test shares), then run every test.
#[derive(Debug, Parser)]
pub(crate) struct Test {
    /// Extra arguments for `cargo test` (e.g. a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

/// Benchmarks, each printing a ratio against a baseline measured in the same run.
#[derive(Debug, Parser)]
pub(crate) struct Bench {
    #[arg(value_enum)]
    pub what: BenchKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BenchKind {
    /// `plan` vs `git diff-tree` on a synthetic monorepo of 2,000 workflows.
    Plan,
    /// Our code archive vs flytekit's fast packaging of the same folder.
    Package,
    /// Concurrent registration vs one entity at a time, against the sandbox.
    Register,
    /// The long-lived serializer vs one `pyflyte package` per workflow, on 200 workflows
    /// sharing one environment.
    Serialize,
}
