//! `cargo xtask deploy`: plan, artifacts, registration and report end to end
//! (`flyte_deploy::pipeline::deploy`).

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Deploy;

pub(crate) fn run(args: Deploy) -> Result<ExitCode> {
    flyte_deploy::pipeline::deploy::run(args)
}
