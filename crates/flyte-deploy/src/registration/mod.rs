//! Stage 5, registration: who may register where, the FlyteAdmin client, specs hydrated
//! with ids and settings, registration in dependency order, and the record of what was
//! registered where.

pub mod admin;
pub mod hydrate;
pub(crate) mod oauth;
pub(crate) mod policy;
pub mod record;
pub mod register;
pub(crate) mod signin;
