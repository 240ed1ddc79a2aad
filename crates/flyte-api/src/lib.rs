//! The Flyte API as flyte-deploy speaks it: FlyteAdmin's messages, the pass-through gRPC
//! codec, and the protobuf wire reader/editor that changes chosen fields of a spec while
//! copying every other byte. Used by the client (`flyte-deploy`) and the server
//! (`flyte-sandbox`); knows nothing of either.

pub mod codec;
pub mod wire;

/// FlyteAdmin's messages.
pub use flyteidl::flyteidl::{admin, core, service};
