//! Stage 4, artifacts: what a planned workflow turns into before registration — its code
//! set and fast-registration archive, its image (checked or built), its serialization
//! environment, and the specs pyflyte writes from it.

pub mod build;
pub mod canonical;
pub mod codeset;
pub(crate) mod dockerfile;
pub mod environment;
pub(crate) mod image;
pub mod package;
pub(crate) mod registry;
pub mod serialize;
pub mod serializer;
pub mod specs;
#[cfg(test)]
mod specs_props;
