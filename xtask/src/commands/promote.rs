//! `cargo xtask promote`: the same versions into another domain
//! (`flyte_deploy::pipeline::promote`).

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Promote;

pub(crate) fn run(args: Promote) -> Result<ExitCode> {
    flyte_deploy::pipeline::promote::run(args)
}
