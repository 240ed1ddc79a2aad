//! `cargo xtask bench`: each benchmark measures its subject and a named baseline in the
//! same run and prints the ratio. Dispatch only; each benchmark lives with its subject.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::{Bench, BenchKind};

pub fn run(args: Bench) -> Result<ExitCode> {
    match args.what {
        BenchKind::Plan => Err(crate::error::user("`bench plan` is not available yet", "")),
        BenchKind::Package => crate::package_bench::run(),
        BenchKind::Register => Err(crate::error::user("`bench register` is not available yet", "")),
    }
}
