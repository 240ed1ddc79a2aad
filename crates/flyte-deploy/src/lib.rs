//! flyte-deploy's core: CI/CD for a monorepo of Flyte workflows. One folder per stage of the
//! pipeline, in the order data flows (ARCHITECTURE.md):
//! `config` → `workspace` → `plan` → `artifacts` → `registration` → `report`, with
//! `pipeline` running them end to end. `args` is the command-line contract of each command;
//! the `xtask` binary parses it and calls in here.

pub mod args;
pub mod artifacts;
pub(crate) mod caches;
pub mod config;
pub mod error;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod registration;
pub mod report;
pub mod settings;
pub mod workspace;
