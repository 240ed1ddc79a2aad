//! flyte-deploy: CI/CD for a monorepo of Flyte workflows, as a library behind `cargo xtask`.
//! The pipeline (config → workspace → diff → plan → fingerprint → image/package/serialize →
//! hydrate → register → report) is described in ARCHITECTURE.md; each stage is a module.

use std::process::ExitCode;

use anyhow::Result;

pub mod bench;
pub mod cli;
pub mod codeset;
pub mod config;
pub mod deps;
pub mod error;
pub mod fingerprint;
pub mod list;
pub mod package;
pub mod package_bench;
pub mod repo;
pub mod report;
pub mod source;
pub mod test;
pub mod venv;
pub mod workspace;

/// Runs one command.
pub fn run(cli: cli::Cli) -> Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::List(args) => list::run(args),
        Command::Package(args) => package::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        other => Err(error::user(
            format!("`{}` is not available in this build yet", command_name(&other)),
            "see README.md for the commands this version provides",
        )),
    }
}

fn command_name(command: &cli::Command) -> &'static str {
    use cli::Command;
    match command {
        Command::List(_) => "list",
        Command::Plan(_) => "plan",
        Command::Package(_) => "package",
        Command::Build(_) => "build",
        Command::Deploy(_) => "deploy",
        Command::Promote(_) => "promote",
        Command::History(_) => "history",
        Command::Sandbox(_) => "sandbox",
        Command::Test(_) => "test",
        Command::Bench(_) => "bench",
    }
}
