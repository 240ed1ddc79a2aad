//! What the benchmarks measure, beside their subjects' code: the synthetic monorepos and the
//! package and serialize benchmarks (`commands/bench.rs` dispatches and measures plan).

pub(crate) mod package;
pub(crate) mod serialize;
pub(crate) mod synthetic;
