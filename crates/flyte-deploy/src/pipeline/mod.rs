//! The commands that run the stages end to end: `deploy` (plan, artifacts, registration,
//! report) and `promote` (the same versions into another domain).

pub mod deploy;
pub mod promote;
