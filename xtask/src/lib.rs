//! flyte-deploy: CI/CD for a monorepo of Flyte workflows, as a library behind `cargo xtask`.
//! The pipeline (config → workspace → diff → plan → fingerprint → image/package/serialize →
//! hydrate → register → report) is described in ARCHITECTURE.md; each stage is a module.

use std::process::ExitCode;

use anyhow::Result;

pub mod admin;
pub mod base;
pub mod bench;
pub mod build;
pub mod caches;
pub mod catalog;
pub mod cli;
pub mod codeset;
pub mod config;
pub mod deploy;
pub mod deps;
pub mod diff;
pub mod dockerfile;
pub mod environment;
pub mod error;
pub mod fingerprint;
pub mod github;
pub mod history;
pub mod hydrate;
pub mod image;
pub mod list;
pub mod package;
pub mod package_bench;
pub mod plan;
pub mod policy;
pub mod promote;
pub mod rawtree;
pub mod record;
pub mod register;
pub mod registry;
pub mod repo;
pub mod report;
pub mod requirements;
pub mod sandbox;
pub mod serialize;
pub mod serialize_bench;
pub mod serializer;
pub mod settings;
pub mod source;
pub mod specs;
pub mod summary;
pub mod synthetic;
pub mod test;
pub mod versions;
pub mod wire;
pub mod workspace;

/// Runs one command.
pub fn run(cli: cli::Cli) -> Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::List(args) => list::run(args),
        Command::Package(args) => package::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Deploy(args) => deploy::run(args),
        Command::History(args) => history::run(args),
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Build(args) => build::run(args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Promote(args) => promote::run(args),
    }
}
