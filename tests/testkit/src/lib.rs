//! Test support for kaudit's tests and benchmarks, kept out of the shipped engine
//! (`publish = false`; a dev-dependency only):
//!
//! * [`corpus`]: a deterministic generator of realistic audit logs (benchmarks, load and
//!   memory tests);
//! * [`mmdb`]: a MaxMind DB writer, so tests build GeoIP databases of known content.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod corpus;
pub mod mmdb;
