//! The commands that run the stages end to end: `deploy` (plan, artifacts, registration,
//! report), `promote` (the same versions into another domain) and `rollback` (an earlier
//! version active again).

pub mod deploy;
pub mod promote;
pub mod rollback;
