//! `cargo xtask plan`: which workflows a change reaches and what each needs; the stage is
//! `flyte_deploy::plan`.

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Plan;

pub(crate) fn run(args: Plan) -> Result<ExitCode> {
    flyte_deploy::plan::run(args)
}
