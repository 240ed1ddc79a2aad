//! The `cargo xtask` binary: parses the command line, runs the command, maps errors to
//! exit statuses (2 for bad input, 1 for failures of the outside world).

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches};
use flyte_deploy::output::{self, Verbosity};
use flyte_deploy::{error, settings};

mod bench;
mod cli;
mod commands;

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader goes away (`| head`): end
    // quietly instead of panicking on a broken pipe.
    // SAFETY: called before any thread starts; restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = parse();
    output::set_verbosity(if cli.quiet {
        Verbosity::Quiet
    } else if cli.verbose {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    });
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if error::is_user_error(&err) {
                eprintln!("{} {err}", output::error_prefix());
                annotate(&err);
                ExitCode::from(2)
            } else {
                eprintln!("{} {err:#}", output::error_prefix());
                ExitCode::from(1)
            }
        }
    }
}

/// The command line, with clap's messages in colour as the tool's own are: never with
/// `NO_COLOR`, always with `CLICOLOR_FORCE`, else on terminals.
fn parse() -> cli::Cli {
    let choice = if !settings::colour(true) {
        clap::ColorChoice::Never
    } else if settings::colour(false) {
        clap::ColorChoice::Always
    } else {
        clap::ColorChoice::Auto
    };
    let matches = cli::Cli::command().color(choice).get_matches();
    cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cli::Cli::command()).exit())
}

/// Runs one command.
fn run(cli: cli::Cli) -> Result<ExitCode> {
    use cli::Command;
    match cli.command {
        Command::List(args) => commands::list::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Package(args) => commands::package::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Promote(args) => commands::promote::run(args),
        Command::Rollback(args) => commands::rollback::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Sandbox(args) => commands::sandbox::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Bench(args) => commands::bench::run(args),
    }
}

/// In GitHub Actions, also shows a bad-input error as an annotation on its file and line.
fn annotate(err: &anyhow::Error) {
    if settings::GITHUB_ACTIONS.get().as_deref() != Some("true") {
        return;
    }
    let Some(user) = err.chain().find_map(|e| e.downcast_ref::<error::UserError>()) else { return };
    let place = user.place();
    eprintln!(
        "{}",
        flyte_deploy::report::github::error_annotation(place.map(|p| p.0), place.map(|p| p.1), &user.to_string())
    );
}
