//! `cargo xtask build`: builds and pushes the images a change needs; the stage is
//! `flyte_deploy::artifacts::build`.

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Build;

pub(crate) fn run(args: Build) -> Result<ExitCode> {
    flyte_deploy::artifacts::build::run(args)
}
