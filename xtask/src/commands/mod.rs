//! One file per command; each takes its parsed flags and returns the exit status.

pub(crate) mod bench;
pub(crate) mod build;
pub(crate) mod completions;
pub(crate) mod deploy;
pub(crate) mod history;
pub(crate) mod list;
pub(crate) mod package;
pub(crate) mod plan;
pub(crate) mod promote;
pub(crate) mod rollback;
pub(crate) mod sandbox;
pub(crate) mod test;
