//! `cargo xtask package`: one workflow's fast-registration archive; the stage is
//! `flyte_deploy::artifacts::package`.

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Package;

pub(crate) fn run(args: Package) -> Result<ExitCode> {
    flyte_deploy::artifacts::package::run(args)
}
