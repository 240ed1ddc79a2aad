//! The part of Flyte's API that flyte-deploy speaks, and the one place that names its field
//! numbers: FlyteAdmin's messages written by hand on prost (only the fields the tool and the
//! sandbox read), the field numbers of the lossless wire edits, the gRPC method paths, and
//! gRPC over bytes (a pass-through codec, a server that hands bytes to a handler).
//!
//! The modules follow Flyte's protobuf packages: [`core`] (`flyteidl.core`), [`admin`]
//! (`flyteidl.admin`), [`service`] (`flyteidl.service`). Decoding skips undeclared fields,
//! so these types are for reading and for small requests; specs are edited on the wire.

pub mod admin;
pub mod codec;
pub mod core;
pub mod fields;
pub mod method;
pub mod server;
pub mod service;

pub use crate::core::{Identifier, Kind};
pub use prost::Message;
pub use {prost, prost_types};
