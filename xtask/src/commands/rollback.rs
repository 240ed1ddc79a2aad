//! `cargo xtask rollback`: an earlier version that a domain had made active again
//! (`flyte_deploy::pipeline::rollback`).

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Rollback;

pub(crate) fn run(args: Rollback) -> Result<ExitCode> {
    flyte_deploy::pipeline::rollback::run(args)
}
