//! `cargo xtask completions bash|zsh|fish`: the shell's completion script for this command
//! line, on stdout (clap_complete writes it from the clap definition in `cli.rs`).

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::{Cli, Completions};

/// The name the script completes: the binary's own (`target/release/xtask` in CI). `cargo
/// xtask` itself is cargo's to complete; an alias `xtask='cargo xtask'` gets these.
const BIN_NAME: &str = "xtask";

pub(crate) fn run(args: Completions) -> Result<ExitCode> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(clap_complete::Shell::from(args.shell), &mut command, BIN_NAME, &mut out);
    use std::io::Write;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}
