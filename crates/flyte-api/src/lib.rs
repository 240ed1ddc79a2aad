//! The Flyte API as flyte-deploy speaks it, and the one place that names its field numbers:
//! FlyteAdmin's messages written by hand on prost (only the fields the tool and the sandbox
//! read), the field numbers of the lossless wire edits and the wire reader/editor that makes
//! them (changing chosen fields of a spec while copying every other byte), the gRPC method
//! paths, and gRPC over bytes (a pass-through codec, a server that hands bytes to a
//! handler). Used by the client (`flyte-deploy`) and the server (`flyte-sandbox`); knows
//! nothing of either.
//!
//! The message modules follow Flyte's protobuf packages: [`core`] (`flyteidl.core`),
//! [`admin`] (`flyteidl.admin`), [`service`] (`flyteidl.service`). Decoding skips undeclared
//! fields, so these types are for reading and for small requests; specs are edited on the
//! wire ([`wire`], with the numbers of [`fields`]).

pub mod admin;
pub mod canonical;
pub mod codec;
pub mod core;
pub mod fields;
pub mod method;
pub mod query;
pub mod server;
pub mod service;
pub mod wire;
#[cfg(test)]
mod wire_props;

pub use crate::core::{Identifier, Kind};
pub use prost::Message;
pub use {prost, prost_types};
