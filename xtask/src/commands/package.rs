//! `cargo xtask package`: one workflow's fast-registration archive; the stage is
//! `flyte_deploy::artifacts::package`. Packaging a commit warns once when the working tree
//! has uncommitted changes to a workflow being packaged.

use std::process::ExitCode;

use anyhow::Result;
use flyte_deploy::args::Package;
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::source::GitTree;
use flyte_deploy::workspace::Workspace;

pub(crate) fn run(args: Package) -> Result<ExitCode> {
    if !args.dirty {
        if let Some(warning) = uncommitted(&args) {
            flyte_deploy::output::warning(warning);
        }
    }
    flyte_deploy::artifacts::package::run(args)
}

/// The warning, when there is one; any error is left to the command itself to report.
fn uncommitted(args: &Package) -> Option<String> {
    let repo = Repo::discover().ok()?;
    let commit = repo.commit(&args.head).ok()?;
    let ws = Workspace::load(&GitTree::at_commit(&repo.git, &commit).ok()?).ok()?;
    let workflows = ws.select(&args.workflows).ok()?;
    flyte_deploy::pipeline::deploy::uncommitted(&repo, &args.head, &workflows, "packaged")
}
